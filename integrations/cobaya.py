"""cobaya's front door: nested sampling (plain or enhanced) of a cobaya input, chains, flow likelihoods.

cobaya (Torrado & Lewis 2021) is how cosmologists state a problem:
parameters with 1-D priors, likelihoods and theory codes, in a dict or a
YAML file.  This module runs flowprior on such an input: cobaya builds the
model (``cobaya.model.get_model``), its sampled parameters' priors become a
prior transform (each 1-D prior's ``ppf``), the sum of its log-likelihoods
is the likelihood, and the result's samples carry cobaya's names, LaTeX
labels and derived parameters (with ``chi2`` and ``chi2__<likelihood>``).
:func:`enhanced_run` reaches the same evidence with fewer calls of the
likelihood (and so of the theory code), :func:`write_chains` writes GetDist
chains, and :class:`FlowLikelihood` puts an experiment's nuisance-free
likelihood, from a flow file, into any cobaya model.

cobaya is optional (``pip install 'flowprior[cobaya]'``); this module
imports without it.

Example
-------
>>> from flowprior.integrations import cobaya as fpc
>>> info = {"likelihood": {"gaussian_mixture": {"means": [0.2], "covs": [[0.01]]}},
...         "params": {"a": {"prior": {"min": -1, "max": 1}, "latex": r"\\alpha"}}}
>>> res = fpc.run(info, nlive=100, seed=0)                      # doctest: +SKIP
>>> round(res.logZ, 1)                                          # log(1/2)  # doctest: +SKIP
-0.7
>>> res = fpc.enhanced_run("lcdm.yaml", sampler="polychord", nlive=500, outdir="runs/lcdm")  # doctest: +SKIP
>>> fpc.write_chains(res, "chains/lcdm")                        # doctest: +SKIP

A nuisance-free likelihood from a flow file (``flow_prior``, or ``prior``
through this module's functions: cobaya reserves ``prior``)::

    info = {"likelihood": {"planck_marginal": {
                "external": "flowprior.integrations.cobaya.FlowLikelihood",
                "flow": "planck.flow", "logZ": -1234.5, "prior": "uniform"}}, ...}

In a YAML file for ``cobaya-run``, write ``class:`` instead of
``external:`` and ``flow_prior:`` instead of ``prior:``.

References
----------
Torrado & Lewis, "Cobaya: code for Bayesian analysis of hierarchical
physical models", JCAP 05 (2021) 057, arXiv:2005.05290.
Petrosyan & Handley, "SuperNest" (2022), arXiv:2212.01760.
"""

from __future__ import annotations

from collections.abc import Mapping

from flowprior.integrations.cobaya_chains import label_samples, write_chains
from flowprior.integrations.cobaya_flow import FlowLikelihood, flow_params
from flowprior.integrations.cobaya_model import (CobayaInputError, CobayaLikelihood, CobayaPrior, load_info,
                                                 load_model)

__all__ = ["run", "enhanced_run", "run_yaml", "problem", "write_chains", "FlowLikelihood", "flow_params",
           "load_model", "CobayaInputError", "CobayaLikelihood", "CobayaPrior"]

#: Arguments of flowprior's workflows that the cobaya model sets.
_FROM_MODEL = ("loglike", "prior_transform", "ndim", "names", "derived_names")


def problem(info) -> tuple[CobayaLikelihood, CobayaPrior]:
    """The likelihood and prior transform flowprior samples for a cobaya input.

    Parameters
    ----------
    info : dict, str or Path
        cobaya input: a dict, a YAML file's path, or YAML text.

    Returns
    -------
    (CobayaLikelihood, CobayaPrior)
        ``like(theta) -> (logL, derived)`` with ``like.names``,
        ``like.derived`` and ``like.labels``; ``prior(u) -> theta``.

    Raises
    ------
    CobayaInputError
        Where cobaya cannot build the model, or its priors have no
        prior transform (external priors, a prior that cannot be inverted).

    Example
    -------
    >>> like, prior = fpc.problem("lcdm.yaml")                       # doctest: +SKIP
    >>> fp.reweight(res, like, derived_names=like.derived)          # doctest: +SKIP
    """
    loaded = _flow_options(load_info(info))
    like = CobayaLikelihood(loaded)
    return like, CobayaPrior(like.model)


def run(info, *, sampler: str = "dynesty", nlive: int = 500, seed=None, **kwargs):
    """A plain nested-sampling run of a cobaya input.

    Parameters
    ----------
    info : dict, str or Path
        cobaya input (its ``sampler`` and ``output`` blocks are ignored).
    sampler, nlive, seed
        As in :func:`flowprior.run`.
    **kwargs
        Passed to :func:`flowprior.run` (``pool``, ``sampler_kwargs``, ...).

    Returns
    -------
    Result
        ``samples`` with cobaya's names and LaTeX labels, derived parameters
        after the sampled ones; ``prior_transform`` the :class:`CobayaPrior`.
    """
    import flowprior

    like, prior = _checked(info, kwargs)
    res = flowprior.run(like, prior, len(like.names), sampler=sampler, nlive=nlive, seed=seed, names=like.names,
                        derived_names=like.derived, **kwargs)
    return _labelled(res, like)


def enhanced_run(info, *, sampler: str = "dynesty", nlive: int = 500, seed=None, outdir=None, **kwargs):
    """An enhanced run (low-resolution run -> flow -> high-resolution run) of a cobaya input.

    Same evidence and posterior as :func:`run`, for fewer likelihood calls.

    Parameters
    ----------
    info, sampler, nlive, seed
        As in :func:`run`.
    outdir : path, optional
        As in :func:`flowprior.enhanced_run` (resuming needs an int ``seed``).
    **kwargs
        Passed to :func:`flowprior.enhanced_run` (``nlive_low``, ``flow``, ...).

    Returns
    -------
    Result
        As :func:`flowprior.enhanced_run`'s, labelled as in :func:`run`.
    """
    import flowprior

    like, prior = _checked(info, kwargs)
    res = flowprior.enhanced_run(like, prior, len(like.names), sampler=sampler, nlive=nlive, seed=seed,
                                 outdir=outdir, names=like.names, derived_names=like.derived, **kwargs)
    return _labelled(res, like)


def run_yaml(path, enhanced: bool = True, **kwargs):
    """:func:`enhanced_run` (or :func:`run`) of a YAML input file; what ``flowprior run input.yaml`` calls."""
    return (enhanced_run if enhanced else run)(path, **kwargs)


def _checked(info, kwargs: dict):
    """The problem of ``info``, after refusing keyword arguments the model sets."""
    taken = [k for k in _FROM_MODEL if k in kwargs]
    if taken:
        raise TypeError(f"{taken}: set by the cobaya model, not to be passed")
    return problem(info)


def _labelled(res, like: CobayaLikelihood):
    """``res`` with cobaya's LaTeX labels on its samples (and its low run's)."""
    res.samples = label_samples(res.samples, like.labels)
    if getattr(res, "low", None) is not None:
        res.low.samples = label_samples(res.low.samples, like.labels)
    return res


def _flow_options(info: dict) -> dict:
    """``prior`` of each :class:`FlowLikelihood` entry renamed ``flow_prior`` (cobaya reserves ``prior``)."""
    for name, options in (info.get("likelihood") or {}).items():
        if isinstance(options, Mapping) and "prior" in options and _is_flow_likelihood(options):
            if "flow_prior" in options:
                raise CobayaInputError(f"likelihood {name!r}: give prior or flow_prior, not both")
            options["flow_prior"] = options.pop("prior")
    return info


def _is_flow_likelihood(options: Mapping) -> bool:
    target = options.get("external", options.get("class"))
    return target is FlowLikelihood or (isinstance(target, str) and target.endswith("FlowLikelihood"))
