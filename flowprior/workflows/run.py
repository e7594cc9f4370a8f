"""A plain nested-sampling run through a sampler adapter."""

from __future__ import annotations

from flowprior.result import Result
from flowprior.workflows.inputs import check_derived, check_inputs


def run(loglike, prior_transform, ndim: int, *, sampler: str = "dynesty", nlive: int = 500, seed=None,
        names=None, derived_names=None, pool=None, sampler_kwargs: dict | None = None,
        run_kwargs: dict | None = None) -> Result:
    """A plain nested-sampling run.

    Parameters
    ----------
    loglike : callable
        ``theta -> float`` log-likelihood; with ``derived_names``,
        ``theta -> (float, derived)`` as PolyChord users write it.
    prior_transform : callable
        ``u -> theta`` from the unit hypercube; a trained flow works too
        (a previous posterior as the prior).
    ndim : int
    sampler : {"dynesty", "polychord"}
        Any name of :func:`flowprior.integrations.available`.
    nlive : int
    seed : int or numpy Generator
    names : list of str, optional
        Parameter names for the anesthetic samples.
    derived_names : list of str, optional
        Names of the derived parameters ``loglike`` returns beside its
        value; they become columns of ``samples`` after the parameters.
    pool : optional
        A pool with ``map`` (multiprocessing or MPI) for dynesty.
    sampler_kwargs, run_kwargs : dict, optional
        Passed through to the sampler.

    Returns
    -------
    Result

    Example
    -------
    >>> import flowprior as fp
    >>> res = fp.run(lambda x: -0.5 * float(x @ x) / 0.01, fp.UniformPrior([(-1, 1)] * 2), 2, nlive=50, seed=0)
    >>> round(res.logZ, 0)
    -4.0
    """
    names, seed, adapter = check_inputs(ndim, nlive, names, seed, sampler)
    loglike = check_derived(loglike, derived_names, names)
    result = adapter.run(loglike, prior_transform, ndim, nlive=nlive, seed=seed, names=names, pool=pool,
                         sampler_kwargs=sampler_kwargs, run_kwargs=run_kwargs)
    result.prior_transform = prior_transform
    return result
