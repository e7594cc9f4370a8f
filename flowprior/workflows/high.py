"""The enhanced run's high stage: the full run with the flow as prior, and its result in the user's terms."""

from __future__ import annotations

import warnings

import numpy as np

from flowprior.numerics import in_unit_cube
from flowprior.flows.base import FlowDensity
from flowprior.integrations.base import HighStart
from flowprior.mpi import on_root
from flowprior.result import Result
from flowprior.workflows import stages
from flowprior.workflows.levels import Level
from flowprior.workflows.lowcheck import LowCheck
from flowprior.workflows.plan import DEFAULTS, Plan
from flowprior.workflows.repartition import physical
from flowprior.workflows.widening import StagePrior


def high_stage(plan: Plan, level: Level, sp: StagePrior, check: LowCheck | None) -> Result:
    """The high-resolution run behind ``sp`` (loaded from ``outdir`` where finished), in physical parameters.

    Its settings come from the adapter (:meth:`~flowprior.integrations.base.SamplerAdapter.high_settings`):
    the target is the flow-whitened, nearly uniform cube, not the user's
    problem, so the settings tuned for the problem are not the right ones there.
    """
    paths = plan.paths
    if paths and on_root(plan.comm, paths["high"].exists):
        return on_root(plan.comm, lambda: stages.load_result(paths["high"], plan.adapter.name, plan.names))
    start = HighStart(tail=None if check is None else check.tail, pieces=len(level.trained.pieces_))
    settings = plan.adapter.high_settings(plan.ndim, plan.nlive, plan.settings, plan.high_sampler_kwargs, start)
    run_v = plan.adapter.run(sp.like, sp.prior, plan.ndim, nlive=plan.nlive, seed=plan.streams.high,
                             **plan.stage_kwargs(settings), **plan.checkpoint("high"))
    high = to_physical(run_v, plan.prior_transform)
    if paths:
        on_root(plan.comm, lambda: stages.save_result(paths["high"], high))
    return high


def to_physical(run_v: Result, prior_transform) -> Result:
    """A flow-prior run's result in the user's terms.

    The sampler's parameters were the user's hypercube ``u`` (the flow's
    output); map them to physical parameters and keep ``u`` as ``samples_u``.
    A draw the flow put outside the cube has zero likelihood (the sampler
    keeps it as a zero-weight point that carries prior volume); the user's
    prior transform is only defined on the cube, so such a row gets the
    parameters of the nearest cube point and ``logL = -inf``, while
    ``samples_u`` keeps where it really was.
    """
    ndim = run_v.samples_u.shape[1]
    u = run_v.samples.iloc[:, :ndim].to_numpy(dtype=float)
    samples = run_v.samples.copy()
    outside = ~in_unit_cube(u)
    samples.iloc[:, :ndim] = physical(prior_transform, np.clip(u, 0.0, 1.0))
    if outside.any():
        samples.loc[outside, "logL"] = -np.inf
    return Result(samples=samples, logZ=run_v.logZ, logZerr=run_v.logZerr, ncall=run_v.ncall, samples_u=u,
                  sampler=run_v.sampler, raw=run_v.raw, sampler_logZerr=run_v.sampler_logZerr)


def tail_weight(flow: FlowDensity, samples_u: np.ndarray, samples) -> float:
    """The posterior weight in the flow's outer 1 % shells: where ``v = flow^-1(u)`` is within 0.005 of an edge."""
    tiny = 1e-12
    v = flow.inverse_transform(np.clip(samples_u, tiny, 1 - tiny))
    w = samples.get_weights()
    w = w / w.sum()
    edge = np.any((v < 0.005) | (v > 0.995), axis=1)
    return float(w[edge].sum())


def warn_if_flow_too_narrow(result: Result, share: float = 0.05) -> None:
    """Warn when the high-resolution posterior sits where the flow has little mass (``result.tail_weight``).

    Under the flow, its own hypercube coordinates ``v = flow^-1(u)`` are
    uniform, so a 1 % outer shell of any coordinate holds about
    ``1 - 0.99^d`` of its mass.  Posterior weight piling up there means the
    flow is narrower than the posterior (the defensive component, if any,
    is what is holding the answer up there).
    """
    expected = 1 - 0.99 ** result.samples_u.shape[1]
    if result.tail_weight > max(share, 3 * expected):
        warnings.warn(
            f"{result.tail_weight:.1%} of the high-resolution posterior lies in the flow's outer 1 % tails "
            f"(expected {expected:.1%}): the flow is narrower than the posterior there, so the result may "
            "be biased; retrain with more low-resolution samples or a broader flow",
            stacklevel=3,
        )


def warn_if_tailed(check: LowCheck | None, limit: float) -> None:
    """Warn when the accepted flow's check tail exceeds ``limit`` nats: the high stage then meets a spike of
    ``L / q`` where the flow misses the posterior, and its evidence error can be several times too small."""
    if check is None or check.tail is None or not check.tail > limit:
        return
    warnings.warn(
        f"the flow misses a tail of the posterior (its check saw log(P / q) {check.tail:.1f} nats above a "
        f"perfect flow's, more than {limit:g}): logZerr may be too small; rerun with a larger nlive_low, or "
        "compare with a plain run",
        stacklevel=3,
    )


def warn_if_poor_flow(plan: Plan, check: LowCheck, scale: float) -> None:
    """Warn when the accepted flow (at base width ``scale``) failed its check: the low stage cannot grow further."""
    if plan.grow_below is None or check.score >= plan.grow_below or check.base is not None:
        return
    warnings.warn(
        f"the flow from the low-resolution run (nlive_low {check.nlive_low}, base scale "
        f"{scale:g}) is a poor importance "
        f"sampler of the posterior (effective sample size {check.ess_fraction:.1%} of its draws, "
        f"{check.score:.2f} of a perfect flow's, below grow_below={plan.grow_below}) and nlive_low cannot "
        f"grow (a next level must be at least twice as large and at most nlive // {DEFAULTS.low_share} = "
        f"{plan.nlive // DEFAULTS.low_share}); "
        "the high-resolution stage may need many calls: pass a larger nlive",
        stacklevel=3,
    )
