"""The enhanced (flow-prior) run: a cheap low-resolution run, a flow trained on it, a high-resolution run behind it.

The pipeline reads like the method:

1. **Resume state** (:mod:`~flowprior.workflows.resume`): with ``outdir``,
   finished stages are reused, but only for the same settings and the same
   problem (the user's functions are re-evaluated at stored points).
2. **Low stage, grown while the check fails** (:mod:`~flowprior.workflows.levels`):
   a run with few live points and a flow trained on its posterior; a flow
   that fails its check is retrained on a low stage with four times the
   live points, up to ``nlive // 5``.
3. **Check and widen** (:mod:`~flowprior.workflows.widening`): the high
   stage's likelihood at uniform draws of the flow's cube scores the flow;
   a base that is too narrow is widened.
4. **High stage** (:mod:`~flowprior.workflows.high`): the sampler samples
   the flow's cube ``v``; the flow maps it to the user's cube ``u`` and the
   likelihood is repartitioned, ``log L - log q_u``
   (:mod:`~flowprior.workflows.repartition`), so the evidence and posterior
   are those of the plain run.
5. **Result**: the high stage's samples and evidence, with every stage's
   calls of the user's likelihood.

Each sampler's settings for each stage come from its adapter
(:mod:`flowprior.integrations`); docs/design.md explains every default and
links to its measurements.

References
----------
Petrosyan & Handley, "SuperNest: accelerated nested sampling applied to
astrophysics and cosmology" (2022), arXiv:2212.01760.
"""

from __future__ import annotations

from flowprior.result import Result
from flowprior.workflows import stages
from flowprior.workflows.high import (high_stage, tail_weight, warn_if_flow_too_narrow, warn_if_poor_flow,
                                     warn_if_tailed)
from flowprior.workflows.augmented import augmented_run, is_marginalizing
from flowprior.workflows.inputs import (adapter_nlive_low, check_derived, check_flow_choice, check_inputs,
                                        check_knobs)
from flowprior.workflows.levels import REDONE, accept, low_level, next_level, recorded_levels
from flowprior.workflows.plan import DEFAULTS, Plan, Streams
from flowprior.workflows.resume import check_outdir, forget, outdir_lock
from flowprior.workflows.widening import check_level, stage_prior
from flowprior.integrations.base import StageSettings
from flowprior.mpi import on_root


def enhanced_run(loglike, prior_transform, ndim: int, *, sampler: str = "dynesty", nlive: int = 500,
                 nlive_low: int | None = None, flow="auto", defensive: float = DEFAULTS.defensive,
                 broaden: float | None = None, seed=None, names=None, derived_names=None, outdir=None, pool=None,
                 sampler_kwargs: dict | None = None, run_kwargs: dict | None = None,
                 high_sampler_kwargs: dict | None = None, grow_below: float | None = DEFAULTS.grow_below,
                 transform: str = DEFAULTS.transform) -> Result:
    """Low-resolution run -> flow trained on its posterior -> high-resolution run with the flow as prior.

    Parameters
    ----------
    loglike, prior_transform, ndim, sampler, nlive, seed, names, derived_names, pool
        As in :func:`flowprior.run`; the high stage's derived values are
        columns of ``samples`` (and are saved in ``outdir`` with its result).
    nlive_low : int, optional
        The low stage's live points; default: the sampler's (its adapter's
        ``nlive_low``), at most ``nlive // 5``.
    flow : "auto", "maf", "nsf", "piecewise", "marginalizing" or a flowprior flow
        "auto" trains a piecewise flow when the low run's samples cluster.
        "marginalizing" (or a :class:`~flowprior.MarginalizingFlow`, for its
        ``aux_dims`` and flow settings) samples an augmented problem whose flows
        have auxiliary dimensions (:mod:`flowprior.workflows.augmented`).
        A MAF is also fitted with some coordinates through the probit link
        where their marginals ask, and the better held-out fit is kept
        (:func:`flowprior.workflows.levels.train`).  A flow object (e.g.
        ``fp.MAF(blocks=...)``) is fitted as given.
    defensive : float
        Weight of the uniform cube mixed into the flow prior (bounds ``L / q``).
    broaden : float, optional
        Width of the trained flow's Gaussian base; default: the adapter's choice.
    outdir : path, optional
        Each stage's result is written there; a rerun resumes at the first
        unfinished stage (same settings and problem only; one process at a time).
    sampler_kwargs, run_kwargs : dict, optional
        To both stages, except the settings of how the high stage explores,
        which the adapter sets unless ``high_sampler_kwargs`` does.
    high_sampler_kwargs : dict, optional
        Override ``sampler_kwargs`` in the high stage only.
    grow_below : float or None
        Check score below which the low stage grows; None skips the check.
    transform : {"rosenblatt", "slab"}
        The prior transform of a piecewise flow the run trains
        (:class:`~flowprior.PiecewiseFlow`'s ``transform``): by default the
        bijective one, which joins the copies of a mode that slabs show the
        sampler (docs/design.md, "The bijective piecewise transform").

    Returns
    -------
    Result
        The high stage's ``samples`` (physical parameters, with the
        repartitioned log-likelihood the sampler saw), ``logZ``,
        ``logZerr``; ``ncall`` (calls of ``loglike`` in the low, check and
        high stages and their total, across resumes; ``fingerprint``, the
        calls made to check ``outdir`` against the functions, not in the
        total); ``flow`` (the high stage's prior apart from any defensive
        component); ``low`` (the last low run); ``low_checks`` (one
        :class:`~flowprior.workflows.lowcheck.LowCheck` per level).

    Example
    -------
    >>> import flowprior as fp
    >>> res = fp.enhanced_run(lambda x: -0.5 * float(x @ x) / 0.01, fp.UniformPrior([(-1, 1)] * 2), 2,
    ...                       nlive=200, seed=0)  # doctest: +SKIP
    >>> res.ncall["total"] < fp.run(...).ncall["total"]  # doctest: +SKIP
    """
    args = (dict(loglike=loglike, prior_transform=prior_transform, ndim=ndim, sampler=sampler, nlive=nlive,
                      nlive_low=nlive_low, flow=flow, defensive=defensive, broaden=broaden, seed=seed, names=names,
                      derived_names=derived_names, outdir=outdir, pool=pool, sampler_kwargs=sampler_kwargs, run_kwargs=run_kwargs,
                      high_sampler_kwargs=high_sampler_kwargs, grow_below=grow_below, transform=transform))
    return augmented_run(_run, args) if is_marginalizing(flow) else _run(args)


def _run(args: dict) -> Result:
    """The enhanced run of :func:`enhanced_run`'s checked arguments ``args``."""
    plan = _plan(args)
    with outdir_lock(plan.comm, plan.outdir):
        calls = check_outdir(plan)
        levels, n_low = recorded_levels(plan)
        level, sp, verified = _grow(plan, levels, n_low)
        if plan.grow_below is not None:
            warn_if_poor_flow(plan, levels[-1], sp.scale)
            warn_if_tailed(levels[-1], DEFAULTS.warn_tail)
        high = high_stage(plan, level, sp, levels[-1] if plan.grow_below is not None else None)
        calls += verified + high.ncall.get("fingerprint", 0)
        return _result(plan, levels, level, sp, high, calls)


def _plan(a: dict) -> Plan:
    """The checked arguments of :func:`enhanced_run` (by name in ``a``) as a :class:`~flowprior.workflows.plan.Plan`."""
    ndim, nlive, sk = a["ndim"], a["nlive"], a["sampler_kwargs"]
    names, seed, adapter = check_inputs(ndim, nlive, a["names"], a["seed"], a["sampler"])
    loglike = check_derived(a["loglike"], a["derived_names"], names)
    nlive_low = adapter_nlive_low(adapter, a["nlive_low"], nlive, ndim, sk)
    check_knobs(a["grow_below"], a["defensive"], a["broaden"])
    check_flow_choice(a["flow"], a["transform"])
    adapter.check_settings(int(ndim), sk, a["run_kwargs"])
    streams = Streams(seed)
    if a["outdir"] is not None and streams.seed is None:
        raise ValueError("outdir: resuming needs a reproducible run; pass an int seed with outdir")
    return Plan(loglike, a["prior_transform"], ndim, nlive, nlive_low, a["flow"], a["defensive"], a["broaden"],
                a["grow_below"], names, a["pool"], StageSettings(sk, a["run_kwargs"]), a["high_sampler_kwargs"],
                adapter, streams, comm=adapter.mpi_comm(), outdir=a["outdir"],
                paths=None if a["outdir"] is None else stages.stage_paths(a["outdir"]), transform=a["transform"])


def _grow(plan: Plan, levels: list, n_low: int):
    """Low levels from ``n_low`` on until one is accepted; returns it, its prior and the checking calls.

    ``levels`` (the records) is updated in place and saved to ``outdir``.
    A level checked before keeps the width and masses its check settled on.
    """
    verified = 0
    while True:
        level = low_level(plan, n_low)
        verified += level.verified
        recorded = bool(levels) and levels[-1].nlive_low == n_low
        draws = None
        if plan.grow_below is not None and plan.paths and recorded and not level.fresh:
            draws = on_root(plan.comm, lambda: stages.load_draws(plan.paths["draws"], n_low))
        base = plan.broaden if plan.broaden is not None else plan.adapter.broaden(
            plan.ndim, n_low, plan.settings.sampler_kwargs, DEFAULTS.broaden)
        scale = float(base) if draws is None or levels[-1].broaden is None else levels[-1].broaden
        sp = stage_prior(plan, level.trained, scale, *((None, None) if draws is None else
                                                        (levels[-1].masses, levels[-1].base)))
        if plan.grow_below is None:
            return level, sp, verified
        nxt = next_level(n_low, plan.nlive)
        if draws is None:  # a new level, a redone low run, or lost draws: check (again)
            checked = check_level(plan, level, sp, nxt)
            sp, draws = checked.stage, checked.draws
            if recorded:  # its old check belongs to a low run that was redone
                levels.pop()
            levels.append(checked.record)
            _save_level(plan, levels, n_low, draws)
        if accept(levels[-1], plan.grow_below, nxt):
            return level, sp, verified
        n_low = nxt
        forget(plan, ("low", "flow", "draws", "high"), ("low", REDONE, "high"))


def _save_level(plan: Plan, levels: list, n_low: int, draws: dict) -> None:
    """Write the levels' records and the accepted level's check draws to ``outdir``."""
    if plan.paths:
        snapshot = [lv.to_dict() for lv in levels]
        on_root(plan.comm, lambda: stages.save_draws(plan.paths["draws"], draws, n_low))
        on_root(plan.comm, lambda: stages.save_checks(plan.paths["checks"], snapshot))


def _result(plan: Plan, levels: list, level, sp, high: Result, fingerprint_calls: int) -> Result:
    """The enhanced run's Result: the high stage's samples, every level's calls (failed levels' too)."""
    low_calls = sum(lv.low_calls for lv in levels[:-1]) + level.low.ncall["total"]
    check_calls = sum(lv.check_calls for lv in levels)
    ncall = {"low": low_calls, "check": check_calls, "high": high.ncall["total"],
             "total": low_calls + check_calls + high.ncall["total"], "fingerprint": fingerprint_calls}
    result = Result(samples=high.samples, logZ=high.logZ, logZerr=high.logZerr, ncall=ncall,
                    samples_u=high.samples_u, sampler=plan.adapter.name, raw=high.raw, flow=sp.wide, low=level.low,
                    prior_transform=plan.prior_transform, train_time=level.train_time, low_checks=levels,
                    tail_weight=tail_weight(sp.wide, high.samples_u, high.samples),
                    sampler_logZerr=high.sampler_logZerr)
    warn_if_flow_too_narrow(result)
    return result
