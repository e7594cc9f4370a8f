"""Nested-sampling workflows: a plain run, and the enhanced (flow-prior) run."""

from __future__ import annotations

import importlib
import time
import warnings

import numpy as np

from .base import FlowDensity, make_rng
from .defensive import DefensiveFlow
from .repartition import RepartitionedLikelihood, physical
from .result import Result

SAMPLERS = ("dynesty", "polychord")
#: Default weight of the uniform cube in the enhanced run's prior (see benchmarks/RESULTS.md).
DEFENSIVE = 0.0


def _adapter(sampler: str):
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler: expected one of {SAMPLERS}, got {sampler!r}")
    if sampler == "polychord":
        raise NotImplementedError("sampler='polychord': the PolyChord adapter is not written yet (issue 3)")
    return importlib.import_module(f"flowprior.integrations.{sampler}")


def _check_common(ndim, nlive) -> None:
    if int(ndim) != ndim or ndim < 1:
        raise ValueError(f"ndim: expected a positive integer, got {ndim!r}")
    if int(nlive) != nlive or nlive < 2:
        raise ValueError(f"nlive: expected an integer >= 2, got {nlive!r}")


def run(loglike, prior_transform, ndim: int, *, sampler: str = "dynesty", nlive: int = 500, seed=None,
        names=None, pool=None, sampler_kwargs: dict | None = None, run_kwargs: dict | None = None) -> Result:
    """A plain nested-sampling run.

    Parameters
    ----------
    loglike : callable
        ``theta -> float`` log-likelihood.
    prior_transform : callable
        ``u -> theta`` from the unit hypercube; a trained flow works too
        (a previous posterior as the prior).
    ndim : int
    sampler : {"dynesty", "polychord"}
    nlive : int
    seed : int or numpy Generator
    names : list of str, optional
        Parameter names for the anesthetic samples.
    pool : optional
        A pool with ``map`` (multiprocessing or MPI) for dynesty.
    sampler_kwargs, run_kwargs : dict, optional
        Passed through to the sampler.

    Returns
    -------
    Result
    """
    _check_common(ndim, nlive)
    adapter = _adapter(sampler)
    return adapter.run(loglike, prior_transform, ndim, nlive=nlive, seed=seed, names=names, pool=pool,
                       sampler_kwargs=sampler_kwargs, run_kwargs=run_kwargs)


def _train(flow, low: Result, ndim: int, rng: np.random.Generator) -> FlowDensity:
    from .maf import MAF
    from .piecewise import PiecewiseFlow

    weights = low.samples.get_weights()
    bounds = [(0.0, 1.0)] * ndim
    if isinstance(flow, FlowDensity):
        estimator = flow
    elif flow == "auto":
        # Small data wants small flows (DESIGN.md): a low-resolution run has
        # an effective sample size of a few hundred.
        estimator = MAF(n_transforms=3, hidden_features=(32, 32), seed=rng, progress=False)
    elif flow in ("maf", "piecewise"):
        cls = MAF if flow == "maf" else PiecewiseFlow
        estimator = cls(seed=rng, progress=False)
    else:
        raise ValueError(f"flow: expected 'auto', 'maf', 'piecewise' or a flowprior flow, got {flow!r}")
    return estimator.fit(low.samples_u, weights=weights, bounds=bounds)


def enhanced_run(loglike, prior_transform, ndim: int, *, sampler: str = "dynesty", nlive: int = 500,
                 nlive_low: int = 25, flow="auto", defensive: float = DEFENSIVE, seed=None, names=None,
                 pool=None, sampler_kwargs: dict | None = None, run_kwargs: dict | None = None) -> Result:
    """Low-resolution run -> flow trained on its posterior -> high-resolution run with the flow as prior.

    The high-resolution run samples the flow's hypercube ``v``; the flow maps
    it to the user's hypercube ``u`` and the likelihood is repartitioned,
    ``log L - log q_u`` (see :mod:`flowprior.repartition`), so the evidence
    and posterior are those of the plain run.

    ``defensive`` is the weight of the uniform cube mixed into the flow prior
    (:class:`~flowprior.defensive.DefensiveFlow`): it bounds ``L / q`` where the
    flow is too narrow.  0 uses the flow alone.

    Returns
    -------
    Result
        ``samples`` in physical parameters (with the repartitioned
        log-likelihood the sampler saw), ``logZ``, ``logZerr``, ``ncall``
        (low, high, total), ``flow`` and ``low``.
    """
    _check_common(ndim, nlive)
    _check_common(ndim, nlive_low)
    if not 0 <= defensive < 1:
        raise ValueError(f"defensive: expected a weight in [0, 1), got {defensive!r}")
    if nlive_low >= nlive:
        raise ValueError(f"nlive_low ({nlive_low}) must be smaller than nlive ({nlive})")
    adapter = _adapter(sampler)
    rng = make_rng(seed)
    low = adapter.run(loglike, prior_transform, ndim, nlive=nlive_low, seed=rng, names=names, pool=pool,
                      sampler_kwargs=sampler_kwargs, run_kwargs=run_kwargs)
    t0 = time.perf_counter()
    trained = _train(flow, low, ndim, rng)
    train_time = time.perf_counter() - t0
    prior = DefensiveFlow(trained, defensive) if defensive else trained
    like = RepartitionedLikelihood(loglike, prior_transform, prior)
    high = adapter.run(like, prior, ndim, nlive=nlive, seed=rng, names=names, pool=pool,
                       sampler_kwargs=sampler_kwargs, run_kwargs=run_kwargs)
    # The high run's points are in the user's hypercube u; map them to parameters.
    u = np.array(high.samples.iloc[:, :ndim].to_numpy(dtype=float))
    theta = physical(prior_transform, u)
    samples = high.samples.copy()
    samples.iloc[:, :ndim] = theta
    result = Result(samples=samples, logZ=high.logZ, logZerr=high.logZerr,
                    ncall={"low": low.ncall["total"], "high": high.ncall["total"],
                           "total": low.ncall["total"] + high.ncall["total"]},
                    samples_u=u, sampler=sampler, raw=high.raw, flow=trained, low=low)
    result.train_time = train_time
    _warn_if_flow_too_narrow(result)
    return result


def _warn_if_flow_too_narrow(result: Result, share: float = 0.05) -> None:
    """Warn when the high-resolution posterior sits where the flow has little mass.

    Under the flow, its own hypercube coordinates ``v = flow^-1(u)`` are
    uniform, so a 1 % outer shell of any coordinate holds about
    ``1 - 0.99^d`` of its mass.  Posterior weight piling up there means the
    flow is narrower than the posterior (the defensive component, if any,
    is what is holding the answer up there).
    """
    flow = result.flow
    tiny = 1e-12
    v = flow.inverse_transform(np.clip(result.samples_u, tiny, 1 - tiny))
    w = result.samples.get_weights()
    w = w / w.sum()
    edge = np.any((v < 0.005) | (v > 0.995), axis=1)
    expected = 1 - 0.99 ** v.shape[1]
    result.tail_weight = float(w[edge].sum())
    if result.tail_weight > max(share, 3 * expected):
        warnings.warn(
            f"{result.tail_weight:.1%} of the high-resolution posterior lies in the flow's outer 1 % tails "
            f"(expected {expected:.1%}): the flow is narrower than the posterior there, so the result may "
            "be biased; retrain with more low-resolution samples or a broader flow",
            stacklevel=3,
        )
