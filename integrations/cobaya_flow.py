"""An experiment's nuisance-free likelihood, from a flow file, as a cobaya likelihood.

:class:`FlowLikelihood` is :class:`flowprior.MarginalLikelihood` inside
cobaya: ``log L(theta) = logZ + log P(theta) - log pi(theta)``, with ``P`` a
flow fitted to the experiment's posterior over its core parameters, ``pi``
their prior in that run and ``logZ`` its evidence (Bevins et al. 2023).  It
asks cobaya for the flow's parameters by name (sampled, fixed or derived by
a theory code), so a marginal posterior combines with any other cobaya
likelihood without the experiment's nuisance parameters or its code.

Example
-------
>>> info = {"likelihood": {"planck_marginal": {                          # doctest: +SKIP
...     "class": "flowprior.integrations.cobaya.FlowLikelihood",
...     "flow": "planck.flow", "logZ": -1234.5, "flow_prior": "uniform"}},
...     "params": fpc.flow_params("planck.flow")}
>>> cobaya.model.get_model(info).loglike({"omegam": 0.3, "H0": 68.0})   # doctest: +SKIP

References
----------
Bevins et al., "Marginal Bayesian statistics using masked autoregressive
flows and kernel density estimators", MNRAS 526, 4613 (2023),
arXiv:2207.11457.  Torrado & Lewis, JCAP 05 (2021) 057, arXiv:2005.05290.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

try:
    from cobaya.likelihood import Likelihood
except ImportError:  # FlowLikelihood says what to install
    Likelihood = object

INSTALL = "cobaya is not installed; pip install 'flowprior[cobaya]' (or cobaya)"


class FlowLikelihood(Likelihood):
    """A flowprior marginal (nuisance-free) likelihood as a cobaya likelihood class.

    Its options are given in the cobaya input, beside ``class`` (or ``external``).

    Parameters
    ----------
    flow : str or flow
        The experiment's posterior flow: a file written by ``flow.save``, or
        (from Python) a fitted flow.  It must carry parameter names.
    logZ : float
        The experiment's log-evidence.
    flow_prior : "uniform", str, flow or dict
        The experiment's prior over the flow's parameters: ``"uniform"``
        over the flow's bounds (all finite), another flow file, or
        ``{name: [lo, hi]}`` (uniform).  cobaya reserves the option name
        ``prior`` of a component for external priors; :mod:`flowprior.integrations.cobaya`'s
        own functions accept ``prior`` and pass it on as ``flow_prior``.
    logZerr : float
        Its error (kept, not used).

    The flow's parameters are cobaya requirements: each must be sampled,
    fixed or derived in the model, else cobaya stops naming it.
    """

    flow = None
    logZ = None
    flow_prior = "uniform"
    logZerr = 0.0

    def initialize(self):
        from cobaya.log import LoggedError

        try:
            self.marginal = marginal_likelihood(self.flow, self.logZ, self.flow_prior, self.logZerr)
        except (ValueError, OSError) as err:
            raise LoggedError(self.log, "%s: %s", self.get_name(), err) from err
        self.flow_names = list(self.marginal.names_)

    def get_requirements(self):
        return {name: None for name in self.flow_names}

    def logp(self, **params_values):
        theta = np.asarray(self.provider.get_param(self.flow_names), dtype=float)
        return float(self.marginal(theta))


def marginal_likelihood(flow, logZ, prior="uniform", logZerr: float = 0.0):
    """:class:`flowprior.MarginalLikelihood` of the options of :class:`FlowLikelihood`.

    Raises
    ------
    ValueError
        Naming the option: a flow without parameter names, a missing
        ``logZ``, a ``"uniform"`` prior over an unbounded flow, a prior whose
        parameters differ from the flow's.
    """
    from flowprior import MarginalLikelihood

    post = _flow(flow, "flow")
    if not post.names_:
        raise ValueError("flow: this flow has no parameter names, so cobaya cannot match its parameters; "
                         "fit it on named samples (a DataFrame or anesthetic samples)")
    if logZ is None:
        raise ValueError("logZ: the experiment's log-evidence is needed (the option logZ)")
    return MarginalLikelihood(post, _prior(prior, post), float(logZ), float(logZerr))


def _flow(flow, what: str):
    """A fitted flow: ``flow`` itself, or loaded from its path."""
    from flowprior import load
    from flowprior.flows.base import FlowDensity

    if isinstance(flow, FlowDensity):
        return flow
    if flow is None:
        raise ValueError(f"{what}: a flow file is needed (the option {what})")
    return load(flow)


def _prior(prior, post):
    """The experiment's prior density over ``post``'s parameters (see :class:`FlowLikelihood`)."""
    from flowprior import UniformPrior

    if isinstance(prior, str) and prior == "uniform":
        open_ = [n for n, (lo, hi) in zip(post.names_, post.bounds_) if lo is None or hi is None]
        if open_:
            raise ValueError(f"flow_prior: 'uniform' needs a flow with finite bounds, but {open_} are open; "
                             "give {name: [lo, hi]} or a prior flow file")
        return UniformPrior(post.bounds_, names=post.names_)
    if isinstance(prior, Mapping):
        names = [str(n) for n in prior]
        if set(names) != set(post.names_):
            raise ValueError(f"flow_prior: expected bounds for the flow's parameters {post.names_}, got {names}")
        return UniformPrior([prior[n] for n in post.names_], names=post.names_)
    found = _flow(prior, "flow_prior")
    if found.names_ is None or set(found.names_) != set(post.names_):
        raise ValueError(f"flow_prior: the prior flow is over {found.names_}, the flow over {post.names_}")
    return found


def flow_params(flow) -> dict:
    """cobaya's ``params`` block for a flow's parameters: uniform priors over its bounds, its LaTeX labels.

    Parameters
    ----------
    flow : str or flow
        A flow file or a fitted flow, with names and finite bounds.

    Returns
    -------
    dict
        ``{name: {"prior": {"min": lo, "max": hi}, "latex": label}}``.
    """
    found = _flow(flow, "flow")
    if not found.names_:
        raise ValueError("flow: this flow has no parameter names")
    labels = found.latex_labels_ or found.names_
    out = {}
    for name, (lo, hi), label in zip(found.names_, found.bounds_, labels):
        if lo is None or hi is None:
            raise ValueError(f"flow: parameter {name!r} has an open bound; give its prior in params yourself")
        out[name] = {"prior": {"min": lo, "max": hi}, "latex": str(label).strip("$")}
    return out
