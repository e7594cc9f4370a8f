"""The enhanced run's low stage, level by level: a low-resolution run and the flow trained on it.

A level is one ``nlive_low``.  When a level's flow fails its check
(:mod:`flowprior.workflows.widening`) the low stage is redone with four times
the live points, up to ``nlive // 5``: more live points give the flow more
and better samples, and a level that passes costs far less in the high
stage than it costs here (docs/design.md, "Growing the low stage").  With
``outdir`` the levels already checked are replayed from their records.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np

from flowprior.flows.base import FlowDensity
from flowprior.flows.choice import auto_flow, clusters, cube_bounds
from flowprior.mpi import on_root
from flowprior.result import Result
from flowprior.workflows import resume, stages
from flowprior.workflows.inputs import check_flow_choice
from flowprior.workflows.lowcheck import LowCheck
from flowprior.workflows.merge import has_births, merged
from flowprior.workflows.plan import DEFAULTS, Plan


def next_level(n_low: int, nlive: int) -> int | None:
    """The next low-resolution nlive (4 times more, at most ``nlive // DEFAULTS.low_share``), or None at the limit.

    A level less than twice as large is not worth a new low run (it costs
    as much again for a flow hardly better): the base is widened instead.

    Example
    -------
    >>> next_level(25, 500), next_level(96, 500), next_level(100, 500)
    (100, None, None)
    """
    nxt = min(4 * n_low, nlive // DEFAULTS.low_share)
    return nxt if nxt >= 2 * n_low else None


def accept(level: LowCheck, grow_below: float | None, nxt: int | None) -> bool:
    """Whether to keep this level's flow: it passed its check (a rebased flow did), or nlive_low cannot grow."""
    return grow_below is None or level.score >= grow_below or level.base is not None or nxt is None


def recorded_levels(plan: Plan) -> tuple[list[LowCheck], int]:
    """The levels ``outdir`` records, replayed: which ``nlive_low`` the run goes on at.

    Records that these settings could not have written are an error that
    says which files to delete.
    """
    if plan.paths is None:
        return [], plan.nlive_low
    path = plan.paths["checks"]
    levels = [LowCheck(**d) for d in on_root(plan.comm, lambda: stages.load_checks(path))]
    n_low = plan.nlive_low
    for i, rec in enumerate(levels):
        if rec.nlive_low != n_low:
            raise ValueError(f"outdir {plan.outdir}: {path.name} records level {i} at nlive_low {rec.nlive_low}, "
                             f"expected {n_low} for these settings; delete it (and low.npz) to redo the low stage")
        if i < len(levels) - 1:
            n_low = next_level(n_low, plan.nlive)
            if n_low is None:
                raise ValueError(f"outdir {plan.outdir}: {path.name} records more levels than nlive "
                                 f"{plan.nlive} allows; delete it (and low.npz) to redo the low stage")
    if levels and not accept(levels[-1], plan.grow_below, next_level(n_low, plan.nlive)):
        n_low = next_level(n_low, plan.nlive)
    return levels, n_low


@dataclass
class Level:
    """One level's low run and flow.

    Attributes
    ----------
    n_low : int
    low : Result
        The low-resolution run.
    trained : FlowDensity
        The flow trained on it (not broadened).
    train_time : float
        Seconds spent training (or loading) the flow.
    fresh : bool
        Whether the low run was made now (then its flow is new too).
    verified : int
        Calls made to check a reused low run against the user's functions.
    """

    n_low: int
    low: Result
    trained: FlowDensity
    train_time: float
    fresh: bool
    verified: int


def train(flow, low: Result, rng: np.random.Generator, transform: str = "slab") -> FlowDensity:
    """A flow fitted to the low run's hypercube samples: ``flow`` is "auto", "maf", "nsf", "piecewise" or a flow object.

    Fitted unbounded: the high stage's likelihood is ``-inf`` outside the
    cube, so mass there costs only draws, while a flow bounded by a logit
    has tails lighter than a posterior near an edge (docs/design.md,
    "Unbounded flows in the high stage").  A single MAF is also fitted with
    the coordinates :func:`~flowprior.flows.choice.cube_bounds` picks seen
    through the probit link, on the same held-out rows, and the fit with
    the better held-out likelihood is kept ("The flow's space in the
    enhanced run").  A flow object given by the user is fitted as given;
    a piecewise flow trained here takes ``transform``.
    """
    from flowprior.flows.maf import LOW_RUN_PATIENCE, MAF
    from flowprior.flows.nsf import NSF
    from flowprior.flows.piecewise import PiecewiseFlow

    weights = low.samples.get_weights()
    u = low.samples_u
    if isinstance(flow, FlowDensity):
        return flow.fit(u, weights=weights, bounds=None)
    if flow == "auto":
        estimator = auto_flow(u, weights, rng, transform)
    else:
        check_flow_choice(flow)
        estimator = {"maf": MAF, "nsf": NSF, "piecewise": PiecewiseFlow}[flow](seed=rng, progress=False,
                                                                          patience=LOW_RUN_PATIENCE)
        if flow == "piecewise":
            estimator.transform = transform
    bounds = cube_bounds(u, weights)
    if isinstance(estimator, PiecewiseFlow) or all(b is None for b in bounds):
        return estimator.fit(u, weights=weights, bounds=None)
    twin = type(estimator)(**{**estimator.get_params(), "link": "probit", "seed": copy.deepcopy(rng)})
    fits = [estimator.fit(u, weights=weights, bounds=None), twin.fit(u, weights=weights, bounds=bounds)]
    held = [f.records_[0].held_out_log_prob for f in fits]
    return fits[1] if None not in held and held[1] > held[0] else fits[0]


def low_level(plan: Plan, n_low: int) -> Level:
    """Run the level (or load it from ``outdir``) and train its flow (or load it).

    The first level keeps the run's first streams; later ones draw from
    streams keyed by ``n_low``.
    """
    first = n_low == plan.nlive_low
    low, fresh, verified = _low_run(plan, n_low, plan.streams.low if first else plan.streams(n_low, 0))
    rng = plan.streams.flow if first else plan.streams(n_low, 1)

    def fit() -> tuple[FlowDensity, float]:
        t0 = time.perf_counter()
        if plan.paths and not fresh and plan.paths["flow"].exists():
            from flowprior.flows.loading import load

            trained = load(plan.paths["flow"])
        else:
            trained = train(plan.flow, low, rng, plan.transform)
            if plan.paths:
                # A high-stage checkpoint belongs to the flow it sampled.
                stages.remove_checkpoint(plan.outdir, "high", plan.adapter.name)
                trained.save(plan.paths["flow"])
        return trained, time.perf_counter() - t0

    # Once, on rank 0 (every rank has the same low run), then pickled to the others.
    trained, train_time = on_root(plan.comm, fit)
    return Level(n_low, low, trained, train_time, fresh, verified)


def _low_run(plan: Plan, n_low: int, rng: np.random.Generator) -> tuple[Result, bool, int]:
    """The level's low run, loaded where ``outdir`` holds it; whether it is new, and the checking calls."""
    paths = plan.paths

    def saved() -> bool:
        return paths["low"].exists() and stages.saved_nlive(paths["low"]) == n_low

    if paths and on_root(plan.comm, saved):
        low = on_root(plan.comm, lambda: stages.load_result(paths["low"], plan.adapter.name, plan.names))
        return low, False, resume.verify_low(plan, low)
    resume.forget(plan, ("low", "flow", "draws", "high"), ("high",))
    low = _run(plan, n_low, rng, plan.adapter.low_settings(plan.ndim, n_low, plan.settings), "low")
    low = _redo_if_clustered(plan, n_low, low, rng)
    if paths:
        on_root(plan.comm, lambda: stages.save_result(paths["low"], low, nlive=n_low))
    return low, True, low.ncall.get("fingerprint", 0)


#: The checkpoint name of a low stage redone because it clusters (:func:`_redo_if_clustered`).
REDONE = "low_redone"


def _redo_if_clustered(plan: Plan, n_low: int, low: Result, rng: np.random.Generator) -> Result:
    """The low run redone with the adapter's multimodal live points and settings where its posterior clusters,
    else ``low``.

    Short chains and few live points lose modes, and a mode the low run
    lost the flow never learns, so the high stage cannot find it
    (docs/design.md, "PolyChord repeats").  Runs with birth contours are
    merged (:func:`~flowprior.workflows.merge.merged`), so a mode either
    run found is kept; otherwise the second run is.  ``ncall`` counts both.
    """
    redo = plan.adapter.multimodal_low(plan.ndim, n_low, plan.nlive, plan.settings)
    if redo is None:
        return low
    weights = low.samples.get_weights()
    found = on_root(plan.comm, lambda: clusters(low.samples_u, weights, plan.streams(n_low, 500)))
    if found is None:
        return low
    n_redo, settings = redo
    again = _run(plan, n_redo, rng, settings, REDONE)
    both = merged(low, again) if has_births(low) and has_births(again) else again
    both.ncall = {**again.ncall, "total": again.ncall["total"] + low.ncall["total"]}
    return both


def _run(plan: Plan, n_low: int, rng: np.random.Generator, settings, checkpoint: str) -> Result:
    """One low-resolution run at ``n_low`` live points with the stage ``settings``, checkpointed as ``checkpoint``."""
    return plan.adapter.run(plan.loglike, plan.prior_transform, plan.ndim, nlive=n_low, seed=rng,
                            **plan.stage_kwargs(settings), **plan.checkpoint(checkpoint))
