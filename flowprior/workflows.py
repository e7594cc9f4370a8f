"""Nested-sampling workflows: a plain run, and the enhanced (flow-prior) run."""

from __future__ import annotations

import contextlib
import importlib
import time
import warnings

import numpy as np

from .base import FlowDensity, make_rng
from .checked import CheckedLikelihood, CheckedPrior
from .data import check_names, in_unit_cube
from .defensive import DefensiveFlow
from .choice import choose_flow
from .lock import OutdirLock
from .lowcheck import LowCheck, check_flow, check_log_z, low_tail, tail_excess
from .mixing import check_masses, log_peak, perfect_ess, piece_scales, redraw, volume_weights
from .mpi import on_root, rank
from .repartition import RepartitionedLikelihood, physical
from .result import Result

SAMPLERS = ("dynesty", "polychord")
#: Fewest live points in the enhanced run's low stage: fewer leave too few samples to train a flow on.
MIN_NLIVE_LOW = 5
#: Default weight of the uniform cube in the enhanced run's prior (see benchmarks/RESULTS.md).
DEFENSIVE = 0.0
#: Default widening of the trained flow's Gaussian base in the enhanced run (see benchmarks/RESULTS.md),
#: and its value after a low stage that dynesty sampled uniformly from fewer
#: than LOW_ENLARGE_BELOW live points (see _level_broaden).
BROADEN = 1.2
BROADEN_SMALL_UNIF = 1.35


def _adapter(sampler: str):
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler: expected one of {SAMPLERS}, got {sampler!r}")
    return importlib.import_module(f"flowprior.integrations.{sampler}")


def _check_common(ndim, nlive) -> None:
    if int(ndim) != ndim or ndim < 1:
        raise ValueError(f"ndim: expected a positive integer, got {ndim!r}")
    if int(nlive) != nlive or nlive < 2:
        raise ValueError(f"nlive: expected an integer >= 2, got {nlive!r}")


def _check_seed(seed):
    """``seed`` as an int (NumPy integers too), a Generator, a SeedSequence or None; anything else is an error."""
    if seed is None or isinstance(seed, (np.random.Generator, np.random.SeedSequence)):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)) and seed >= 0:
        return int(seed)
    raise ValueError(f"seed: expected a non-negative integer, a numpy Generator or SeedSequence, or None; "
                     f"got {seed!r}")


def _checked_nlive_low(nlive_low, nlive: int, ndim: int, sampler: str, sampler_kwargs: dict | None) -> int:
    """The enhanced run's low-stage nlive: the user's, checked, else the default (at most ``nlive // 5``)."""
    if nlive_low is None:
        if nlive // 5 < MIN_NLIVE_LOW:
            raise ValueError(f"nlive: the enhanced run's low stage runs nlive // 5 live points, at least "
                             f"{MIN_NLIVE_LOW}: expected nlive >= {5 * MIN_NLIVE_LOW}, got {nlive!r} "
                             "(or pass nlive_low)")
        nlive_low = min(_default_nlive_low(sampler, ndim, sampler_kwargs), nlive // 5)
    _check_common(ndim, nlive_low)
    if nlive_low < MIN_NLIVE_LOW:
        raise ValueError(f"nlive_low: expected at least {MIN_NLIVE_LOW} live points (fewer leave too few "
                         f"samples to train a flow on), got {nlive_low!r}")
    return nlive_low


def _check_inputs(ndim, nlive, names, seed, sampler):
    """The arguments every workflow shares, checked before anything runs; returns ``(names, seed)``."""
    _check_common(ndim, nlive)
    adapter = _adapter(sampler)
    return check_names(names, int(ndim)), _check_seed(seed), adapter


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
    names, seed, adapter = _check_inputs(ndim, nlive, names, seed, sampler)
    result = adapter.run(loglike, prior_transform, ndim, nlive=nlive, seed=seed, names=names, pool=pool,
                         sampler_kwargs=sampler_kwargs, run_kwargs=run_kwargs)
    result.prior_transform = prior_transform
    return result


#: PolyChord defaults for the enhanced run (benchmarks/RESULTS.md): low-stage
#: nlive, and the low and high stages' slice repeats as a fraction of ndim
#: (PolyChord's own default is 5 * ndim).  The low stage trades repeats for
#: live points: a mode is kept by live points, not by decorrelated chains
#: (see _low_sampler_kwargs).
POLYCHORD_NLIVE_LOW = 100
POLYCHORD_LOW_REPEATS = 0.5
POLYCHORD_HIGH_REPEATS = 0.5
#: PolyChord's ``precision_criterion`` in the high stage (its default 0.001; see _high_run_kwargs).
POLYCHORD_HIGH_PRECISION = 0.1
#: Low-stage nlive for dynesty's uniform sampling and for its MCMC methods.
DYNESTY_NLIVE_LOW_UNIF = 100
DYNESTY_NLIVE_LOW_MCMC = 25
#: Volume enlargement of dynesty's ellipsoids in a low stage that samples
#: uniformly with fewer than LOW_ENLARGE_BELOW live points (see _low_sampler_kwargs).
LOW_ENLARGE = 2.0
LOW_ENLARGE_BELOW = 100
#: dynesty's first_update and update_interval in such a low stage (see _low_sampler_kwargs).
LOW_FIRST_UPDATE = {"min_eff": 60.0, "min_ncall": 0}
LOW_UPDATE_INTERVAL = 0.2
#: dynesty's high stage behind a flow that passed _tame: ellipsoids once fewer
#: than half the cube's draws are accepted (see _high_sampler_kwargs).
HIGH_FIRST_UPDATE = {"min_eff": 50.0, "min_ncall": 0}
#: dynesty's stopping tolerance (``dlogz``) in the high stage, where it
#: defaults to 0.01 + 0.001 (nlive - 1) = 0.51 at nlive 500 (see _high_run_kwargs).
HIGH_DLOGZ = 1.0
#: Largest tail (flowprior.lowcheck.tail_excess, nats) of a flow that _tame
#: accepts: Planck-like flows measured -0.83 to +0.18, Student-t flows 17-101.
TAME_TAIL = 0.5
#: Check score (ESS fraction relative to a perfect flow broadened the same
#: way, see flowprior.lowcheck) below which the low stage grows.  Measured on
#: 25-live rwalk runs at broaden 1.2 (benchmarks/RESULTS.md): Planck-like
#: Gaussian (6-D) 0.95-1.10, whose high stages then take 3 000-8 000 calls;
#: Student-t (4-D) 0.28-0.51 and banana 0.005-0.10, whose high stages took
#: 77 000 to over 3 million.  (Until the fifth session the raw ESS fraction
#: was compared with 0.5: the same decisions on these runs, but a perfect
#: flow broadened 1.2 fails that in 13-D and above.)
GROW_BELOW = 0.6

#: Factors by which a level widens ``broaden`` when its flow fails the check
#: and nlive_low cannot grow, or (dynesty) shows a tail beyond ``WIDEN_TAIL``
#: nats (see ``_wider_scale``).
WIDEN = (1.125, 1.25, 1.5, 2.25)
WIDEN_TAIL = 1.0

def _train(flow, low: Result, rng: np.random.Generator) -> FlowDensity:
    from .maf import MAF
    from .piecewise import PiecewiseFlow

    weights = low.samples.get_weights()
    u = low.samples_u
    # Unbounded on purpose (the repartitioned likelihood is -inf outside the
    # cube, so the flow's mass there is only wasted draws).  A flow bounded to
    # the cube by a logit has tails far lighter than the posterior's wherever
    # the posterior is within a few widths of an edge relative to its own
    # width: on the Planck-like Gaussian, log(P/q) reached 40-50 nats at 1 in
    # 20 000 posterior points, and the high stage chased those spikes (3 000
    # to 45 000 calls by seed).  Unbounded: max log(P/q) 1.3, KL 0.02 instead
    # of 0.10, and 2 200-4 200 calls (benchmarks/RESULTS.md).
    bounds = None
    if isinstance(flow, FlowDensity):
        estimator = flow
    elif flow == "auto":
        estimator = choose_flow(u, weights, rng)
    elif flow in ("maf", "piecewise"):
        cls = MAF if flow == "maf" else PiecewiseFlow
        estimator = cls(seed=rng, progress=False)
    else:
        raise ValueError(f"flow: expected 'auto', 'maf', 'piecewise' or a flowprior flow, got {flow!r}")
    return estimator.fit(u, weights=weights, bounds=bounds)


def enhanced_run(loglike, prior_transform, ndim: int, *, sampler: str = "dynesty", nlive: int = 500,
                 nlive_low: int | None = None, flow="auto", defensive: float = DEFENSIVE, broaden: float | None = None,
                 seed=None, names=None,
                 outdir=None, pool=None, sampler_kwargs: dict | None = None,
                 run_kwargs: dict | None = None, high_sampler_kwargs: dict | None = None,
                 grow_below: float | None = GROW_BELOW) -> Result:
    """Low-resolution run -> flow trained on its posterior -> high-resolution run with the flow as prior.

    The high-resolution run samples the flow's hypercube ``v``; the flow maps
    it to the user's hypercube ``u`` and the likelihood is repartitioned,
    ``log L - log q_u`` (see :mod:`flowprior.repartition`), so the evidence
    and posterior are those of the plain run.

    ``nlive_low`` defaults to 100 for PolyChord (with ``num_repeats =
    ndim // 2`` in that stage, a fifth or a tenth of PolyChord's default,
    so it costs less than 25 live points at the default repeats did), 25 for
    dynesty's MCMC methods (``rwalk``, ``slice``...), 100 for dynesty's
    uniform sampling (``"auto"`` below 10 dimensions), at most ``nlive // 5`` (see
    ``_default_nlive_low`` for the measurements; with uniform sampling, 25
    is cheaper on a unimodal posterior but lost a mode of a 4-mode mixture).

    **Growing the low stage.**  After each low-resolution run the flow is
    checked: the high stage's likelihood is evaluated at ``max(100, nlive)``
    uniform draws of the flow's cube, and if the effective sample size of
    these importance weights, relative to the one a perfect flow broadened
    by ``broaden`` would reach, is below ``grow_below`` (the flow
    is far from the posterior somewhere), the low stage is redone with four
    times the live points, up to ``nlive // 5``, and the flow retrained
    (:mod:`flowprior.lowcheck`).  Every level's calls count in ``ncall``.
    If the last level (``nlive // 5``) fails too, its flow's base is widened
    along ``broaden`` times ``WIDEN`` (1.125 to 2.25), checking each, and the
    first that passes is kept, else the widest: on failing flows of the
    banana and Student-t benchmarks this took the high stage from over
    200 000 calls to about 20 000.  ``low_checks[-1].broaden`` says which.
    With dynesty a flow that passes is widened the same way while its check
    shows a tail (``low_checks[-1].tail``, :func:`flowprior.lowcheck.tail_excess`,
    above ``WIDEN_TAIL``): the largest posterior-to-flow ratio at the
    check's draws and the low run's points, beyond what a perfect flow
    broadened as much allows.  Widths whose tails the low run's points
    already show are skipped without a check (``_wider_scale``).  Behind a
    one-piece flow with a tail of at most ``TAME_TAIL`` dynesty's high stage
    also bounds its live points early (``_high_sampler_kwargs``).
    Behind a piecewise flow each piece is widened for its own training
    samples' effective size and weighted by its mass times that widening's
    volume, and the masses are re-estimated from the check's draws
    (``low_checks[-1].masses``; :mod:`flowprior.mixing`): on the 4-mode
    mixture this took dynesty's high stages from 3 400-20 500 calls to
    2 700-8 400.
    A mode that the low run missed altogether is invisible to this check:
    for problems with small, well-separated modes keep ``nlive_low`` large.
    ``grow_below=None`` skips the check.  ``flow="auto"`` trains a piecewise flow when the low run's
    samples cluster (k-means silhouette >= 0.5) and a small MAF otherwise;
    ``"maf"``, ``"piecewise"`` or a flowprior flow object (refitted on the
    low run) choose explicitly.

    Two defences against a flow narrower than the posterior:
    ``broaden`` widens the trained flow's Gaussian base (see
    :meth:`~flowprior.base.FlowDensity.broadened`; ``None``: 1.2, or 1.35
    after a low stage that dynesty sampled uniformly from fewer than 100
    live points, whose flows come out narrow, see ``_level_broaden``), and ``defensive`` is the
    weight of the uniform cube mixed into the flow prior
    (:class:`~flowprior.defensive.DefensiveFlow`), which bounds ``L / q``
    anywhere.  ``broaden=1`` and ``defensive=0`` use the trained flow alone.

    ``sampler_kwargs`` and ``run_kwargs`` go to both stages, except the
    settings of *how* the high-resolution stage explores: its target is the
    flow-whitened, nearly uniform cube rather than your problem, so it uses
    dynesty's ``sample="unif"`` with ``bootstrap=0``, starting from the
    check's draws as live points, and PolyChord's ``num_repeats = ndim // 2``,
    unless ``high_sampler_kwargs`` sets them.  PolyChord's low stage also
    uses ``num_repeats = ndim // 2`` unless ``sampler_kwargs`` or
    ``run_kwargs`` set it: it
    only has to find the modes and give the flow samples, and live points
    do that better than repeats per point.  The high stage stops sooner than
    the samplers' defaults (dynesty ``dlogz=1.0``, PolyChord
    ``precision_criterion=0.1``; ``_high_run_kwargs``) unless you set them.
    A low stage that samples
    uniformly with dynesty uses a fixed ellipsoid enlargement
    (``bootstrap=0``, and ``enlarge=2`` below 100 live points) unless you
    set one, ellipsoids from the start (``first_update``), and below 100
    live points ``update_interval=0.2``, unless you set them.  ``high_sampler_kwargs``
    override ``sampler_kwargs`` in the high-resolution stage only.  All
    these defaults were chosen by measurement (benchmarks/RESULTS.md).

    With ``outdir``, each stage writes its result there (see
    :mod:`flowprior.stages`); rerunning after an interruption loads the
    finished stages and resumes at the first unfinished one.  The files are
    reused only for the same settings and the same problem: your
    ``loglike`` and ``prior_transform`` are re-evaluated at a few stored
    points (:mod:`flowprior.fingerprint`), and a difference is an error.
    One process at a time may use an ``outdir`` (a second gets an
    :class:`~flowprior.lock.OutdirInUse` error).  Each stage has
    its own seed drawn from ``seed``, so a run resumed at a stage boundary
    gives the uninterrupted run's answer, and so does a dynesty stage
    resumed from its save file (it holds dynesty's random state).  A
    PolyChord stage resumed from its own resume files gives a valid but
    different answer: those files do not hold PolyChord's random state
    (see :func:`flowprior.integrations.polychord.run`, Notes).  ``ncall``
    counts every call of your ``loglike`` across the resumes, except, with
    dynesty, calls made after its last save file by a killed process
    (the resumed stage makes them again, and counts them once).

    With PolyChord built with MPI and the script launched with ``mpirun -n
    N`` (and mpi4py installed), every rank calls this with the same
    arguments: both PolyChord runs use all ranks, the flow is trained once,
    on rank 0, and sent to the others, only rank 0 reads and writes
    ``outdir``, and every rank returns the same Result.

    Returns
    -------
    Result
        ``samples`` in physical parameters (with the repartitioned
        log-likelihood the sampler saw), ``logZ``, ``logZerr``, ``ncall``
        (the calls of your ``loglike`` in each stage: low, check, high and
        their total, carried over from the interrupted runs a resume
        continues; and ``fingerprint``, the calls made in this call to
        check ``outdir``'s files against your functions, not in the total),
        ``flow`` (the trained flow, broadened, and
        a piecewise flow's pieces re-weighted: the high stage's prior apart
        from any defensive component), ``low`` (the
        last low-resolution run) and ``low_checks`` (a
        :class:`~flowprior.lowcheck.LowCheck` per level).
    """
    names, seed, adapter = _check_inputs(ndim, nlive, names, seed, sampler)
    nlive_low = _checked_nlive_low(nlive_low, nlive, ndim, sampler, sampler_kwargs)
    if grow_below is not None and not (isinstance(grow_below, (int, float, np.integer, np.floating))
                                       and 0 < grow_below <= 1):
        raise ValueError(f"grow_below: expected a check score (relative effective sample size) in (0, 1] or None, "
                         f"got {grow_below!r}")
    if not 0 <= defensive < 1:
        raise ValueError(f"defensive: expected a weight in [0, 1), got {defensive!r}")
    if broaden is not None and not (isinstance(broaden, (int, float, np.integer, np.floating))
                                    and np.isfinite(broaden) and broaden >= 1):
        raise ValueError(f"broaden: expected a base scale >= 1 or None, got {broaden!r}")
    if nlive_low >= nlive:
        raise ValueError(f"nlive_low ({nlive_low}) must be smaller than nlive ({nlive})")
    adapter.check_settings(int(ndim), sampler_kwargs, run_kwargs)
    # Not None only for PolyChord under mpirun: then what runs once is done on
    # rank 0 and shared, while the PolyChord runs themselves take every rank.
    comm = adapter.mpi_comm() if sampler == "polychord" else None
    if isinstance(seed, (np.random.Generator, np.random.SeedSequence)):
        seed = int(make_rng(seed).integers(2**63))
    seeds = np.random.SeedSequence(seed).spawn(4)
    low_seed, flow_seed, high_seed = (np.random.default_rng(s) for s in seeds[:3])
    # Levels after the first, and the checks, draw from their own streams,
    # keyed by nlive_low: a resumed run gives the same answer.
    extra = seeds[3]

    def stream(*key: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(extra.entropy, spawn_key=extra.spawn_key + key))
    paths = None
    if outdir is not None:
        from . import stages

        if seed is None:
            raise ValueError("outdir: resuming needs a reproducible run; pass an int seed with outdir")
        config = {"sampler": sampler, "ndim": int(ndim), "nlive": int(nlive), "nlive_low": int(nlive_low),
                  "flow": flow if isinstance(flow, str) else type(flow).__name__, "defensive": float(defensive),
                  "broaden": None if broaden is None else float(broaden),
                  "sampler_kwargs": _settings_repr(sampler_kwargs),
                  "run_kwargs": _settings_repr(run_kwargs), "high_sampler_kwargs": _settings_repr(high_sampler_kwargs),
                  "seed": seed,
                  "names": list(names) if names is not None else None,
                  "grow_below": None if grow_below is None else float(grow_below)}
        paths = stages.stage_paths(outdir)
    # Under MPI every read and write of outdir is rank 0's, and what it
    # finds is sent to the others (on_root): a rank that saw a stage file
    # appear as rank 0 wrote it would skip a PolyChord run the others are
    # waiting in.  Rank 0 holds the outdir's lock until the run returns.
    with _outdir_lock(comm, outdir):
        fingerprint_calls = 0
        if paths:
            checked = (CheckedLikelihood(loglike), CheckedPrior(prior_transform, ndim))
            fingerprint_calls = on_root(comm, lambda: stages.check_config(outdir, config, *checked, int(ndim)))
        kwargs = dict(names=names, pool=pool, sampler_kwargs=sampler_kwargs, run_kwargs=run_kwargs)
        checks_path = paths["checks"] if paths else None
        levels = [LowCheck(**d) for d in on_root(comm, lambda: stages.load_checks(checks_path))] if paths else []
        # Replay the recorded levels: which nlive_low is the current one?
        n_low = int(nlive_low)
        for i, rec in enumerate(levels):
            if rec.nlive_low != n_low:
                raise ValueError(f"outdir {outdir}: {checks_path.name} records level {i} at nlive_low {rec.nlive_low}, "
                                 f"expected {n_low} for these settings; delete it (and low.npz) to redo the low stage")
            if i < len(levels) - 1:
                n_low = _next_level(n_low, nlive)
                if n_low is None:
                    raise ValueError(f"outdir {outdir}: {checks_path.name} records more levels than nlive "
                                     f"{nlive} allows; delete it (and low.npz) to redo the low stage")
        if levels and not _accept(levels[-1], grow_below, _next_level(n_low, nlive)):
            n_low = _next_level(n_low, nlive)

        def stage_prior(trained: FlowDensity, scale: float, masses=None):
            """A level's flow widened by ``scale``, the high stage's prior and its likelihood.

            A piecewise flow's pieces are widened one by one and weighted by
            ``masses`` (default: the low run's) times their widening volume
            (:mod:`flowprior.mixing`).
            """
            scales = piece_scales(trained, scale, int(ndim))
            wide = trained.broadened(scales) if np.any(np.asarray(scales) != 1) else trained
            if len(trained.pieces_) > 1:
                mass = trained.weights_ if masses is None else masses
                wide = wide.reweighted(volume_weights(mass, scales, int(ndim)))
            pri = DefensiveFlow(wide, defensive) if defensive else wide
            # Checked inside the repartition so that a NaN names the physical
            # parameters the user's likelihood saw, not the flow's hypercube point.
            like = RepartitionedLikelihood(CheckedLikelihood(loglike), CheckedPrior(prior_transform, ndim), pri)
            return wide, pri, like

        draws = None  # the accepted level's check draws, for dynesty's high stage to start from
        while True:
            first = n_low == nlive_low  # the first level keeps the streams it always had
            low_kwargs = {**kwargs,
                          "sampler_kwargs": _low_sampler_kwargs(sampler, ndim, sampler_kwargs, n_low, run_kwargs)}
            low, trained, train_time, fresh, verified = _low_level(
                adapter, loglike, prior_transform, ndim, n_low, low_seed if first else stream(n_low, 0), flow,
                flow_seed if first else stream(n_low, 1), low_kwargs, comm, paths, outdir, sampler, names)
            fingerprint_calls += verified
            recorded = bool(levels) and levels[-1].nlive_low == n_low
            draws = None
            if grow_below is not None and paths and recorded and not fresh:
                level = n_low
                draws = on_root(comm, lambda: stages.load_draws(paths["draws"], level))
            # A level checked before keeps the width its check settled on.
            base_scale = _level_broaden(broaden, sampler, ndim, sampler_kwargs, n_low)
            scale = base_scale if draws is None or levels[-1].broaden is None else levels[-1].broaden
            wide, prior, like = stage_prior(trained, scale, None if draws is None else levels[-1].masses)
            if grow_below is None:
                break
            nxt = _next_level(n_low, nlive)
            if draws is None:  # a new level, a redone low run, or lost draws: check (again)
                n_draws = max(100, int(nlive))
                # The base is widened along WIDEN, each width checked, where the
                # flow fails at the last level (it cannot grow) or, with dynesty,
                # where it passes but shows a tail (tail_excess above WIDEN_TAIL):
                # see _wider_scale for the measurements.
                low_points = (low.samples_u, low.samples.logL.to_numpy(dtype=float), low.samples.get_weights())
                check_calls, i = 0, 0
                while True:
                    ess, calls, draws = on_root(
                        comm, lambda: check_flow(like, ndim, n_draws, stream(n_low, 2 + i), pool))
                    check_calls += calls
                    low_masses, scales = trained.weights_, piece_scales(trained, scale, int(ndim))
                    perfect = perfect_ess(low_masses, scales, int(ndim))
                    tail = on_root(comm, lambda: tail_excess(
                        draws["logl"], *low_points, like.flow.log_prob, scale, int(ndim),
                        log_bound=log_peak(low_masses, scales, int(ndim))))
                    passes = ess / perfect >= grow_below
                    widen_tail = sampler == "dynesty" and tail > WIDEN_TAIL
                    if (passes and not widen_tail) or (not passes and nxt is not None):
                        break
                    log_z = check_log_z(draws["logl"]) if np.isfinite(draws["logl"]).any() else None
                    wider = on_root(comm, lambda: _wider_scale(
                        scale, base_scale, log_z, low_points, lambda s: stage_prior(trained, s)[1].log_prob, int(ndim),
                        widest=not passes,
                        log_bound_at=lambda s: log_peak(trained.weights_, piece_scales(trained, s, int(ndim)),
                                                        int(ndim))))
                    if wider is None:
                        break
                    scale, i = wider, i + 1
                    wide, prior, like = stage_prior(trained, scale)
                if recorded:  # this level's low run was redone (or its draws lost), so its old check is void
                    levels.pop()
                checked = LowCheck(n_low, int(low.ncall["total"]), ess, check_calls, perfect, scale, tail)
                if len(trained.pieces_) > 1 and not defensive and _accept(checked, grow_below, nxt):
                    # The check's weights say how much of the posterior each piece
                    # holds, better than the low run did (mixing module).
                    masses = check_masses(draws, wide.weights_, trained.weights_)
                    if masses is not None:
                        old = prior
                        wide, prior, like = stage_prior(trained, scale, masses)
                        checked.masses = masses.tolist()
                        if sampler == "dynesty":  # its live points are the check's draws, now of the new prior
                            draws, calls = on_root(comm, lambda: redraw(draws, old, prior, like, stream(n_low, 1000),
                                                                        pool))
                            checked.check_calls += calls
                levels.append(checked)
                if paths:
                    snapshot, level, last = [lv.to_dict() for lv in levels], n_low, draws
                    on_root(comm, lambda: stages.save_draws(paths["draws"], last, level))
                    on_root(comm, lambda: stages.save_checks(checks_path, snapshot))
            if _accept(levels[-1], grow_below, nxt):
                break
            n_low = nxt
            if paths:
                def forget_level() -> None:  # this level's files belong to a flow that failed its check
                    for stage in ("low", "flow", "draws", "high"):
                        paths[stage].unlink(missing_ok=True)
                    stages.remove_checkpoint(outdir, "low", sampler)
                    stages.remove_checkpoint(outdir, "high", sampler)

                on_root(comm, forget_level)
        if grow_below is not None and levels[-1].score < grow_below:
            warnings.warn(
                f"the flow from the low-resolution run (nlive_low {levels[-1].nlive_low}, base scale "
                f"{scale:g}) is a poor importance "
                f"sampler of the posterior (effective sample size {levels[-1].ess_fraction:.1%} of its draws, "
                f"{levels[-1].score:.2f} of a perfect flow's, below grow_below={grow_below}) and nlive_low cannot "
                f"grow further (limit nlive // 5 = {nlive // 5}); "
                "the high-resolution stage may need many calls: pass a larger nlive",
                stacklevel=2,
            )
        if paths and on_root(comm, paths["high"].exists):
            high = on_root(comm, lambda: stages.load_result(paths["high"], sampler, names))
        else:
            high_sk = _high_sampler_kwargs(sampler, ndim, sampler_kwargs, high_sampler_kwargs,
                                           early_bounds=_tame(levels[-1] if grow_below is not None else None, trained))
            if sampler == "dynesty" and draws is not None and "live_points" not in high_sk:
                high_sk["live_points"] = _live_points(draws, nlive)
            high_kwargs = {**kwargs, "sampler_kwargs": high_sk,
                           "run_kwargs": _high_run_kwargs(sampler, run_kwargs, high_sk)}
            high = _to_physical(adapter.run(like, prior, ndim, nlive=nlive, seed=high_seed, **high_kwargs,
                                            **_checkpoint(outdir, "high", sampler)), prior_transform)
            fingerprint_calls += high.ncall.get("fingerprint", 0)
            if paths:
                on_root(comm, lambda: stages.save_result(paths["high"], high))
        # Every level's low run counts, the ones whose flows failed their check too.
        low_calls = sum(lv.low_calls for lv in levels[:-1]) + low.ncall["total"]
        check_calls = sum(lv.check_calls for lv in levels)
        result = Result(samples=high.samples, logZ=high.logZ, logZerr=high.logZerr,
                        ncall={"low": low_calls, "check": check_calls, "high": high.ncall["total"],
                               "total": low_calls + check_calls + high.ncall["total"],
                               "fingerprint": fingerprint_calls},
                        samples_u=high.samples_u, sampler=sampler, raw=high.raw, flow=wide, low=low,
                        prior_transform=prior_transform, train_time=train_time, low_checks=levels,
                        tail_weight=_tail_weight(wide, high.samples_u, high.samples))
        _warn_if_flow_too_narrow(result)
        return result


@contextlib.contextmanager
def _outdir_lock(comm, outdir):
    """Hold ``outdir``'s lock on rank 0 (:class:`~flowprior.lock.OutdirLock`); nothing without ``outdir``."""
    if outdir is None:
        yield
        return
    lock = OutdirLock(outdir) if rank(comm) == 0 else None

    def acquire() -> None:  # every rank learns whether rank 0 got it
        lock.acquire()

    on_root(comm, acquire)
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def _level_broaden(broaden: float | None, sampler: str, ndim: int, sampler_kwargs: dict | None,
                   n_low: int) -> float:
    """The base scale of a level's flow: the user's ``broaden``, else the measured default.

    ``BROADEN`` (1.2), except after a low stage that dynesty sampled
    uniformly with the fixed ``LOW_ENLARGE`` of fewer than
    ``LOW_ENLARGE_BELOW`` points: those ellipsoids still cut into the
    contour (25-live Planck-like runs put logZ 1-4 nats above the truth), the
    low run's posterior comes out narrow and so do its flows (exact
    posterior draws had a mean |z|^2 of 7.3-9.2 in their base instead of 6).
    With ellipsoids early in the high stage (``HIGH_FIRST_UPDATE``, which
    ``_tame`` flows get), 1.35 took the Planck-like high stages from
    2 100-12 800 calls at 1.2 to 2 100-3 400 (10 seeds); at 1.35 they took
    1 900-3 700 over 20 seeds, all tame (eighth session), and 2 800-7 000
    with dynesty's default first_update (seventh session;
    benchmarks/RESULTS.md).  At 100 live points 1.2 was cheaper (1 400-1 800
    against 2 100-2 500, early ellipsoids).
    """
    if broaden is not None:
        return float(broaden)
    return BROADEN_SMALL_UNIF if _small_fixed_bounds(sampler, ndim, sampler_kwargs, n_low) else BROADEN


def _small_fixed_bounds(sampler: str, ndim: int, sampler_kwargs: dict | None, nlive_low: int) -> bool:
    """Whether the low stage gets flowprior's fixed ``LOW_ENLARGE`` (see ``_low_sampler_kwargs``).

    dynesty sampling uniformly from fewer than ``LOW_ENLARGE_BELOW`` live
    points, with neither ``bootstrap`` nor ``enlarge`` set by the user.
    """
    user = sampler_kwargs or {}
    return (sampler == "dynesty" and _uniform_sampling(ndim, user) and nlive_low < LOW_ENLARGE_BELOW
            and "bootstrap" not in user and "enlarge" not in user)


def _wider_scale(scale: float, base_scale: float, log_z: float | None, low_points: tuple, log_q_at,
                 ndim: int, widest: bool = True, log_bound_at=None) -> float | None:
    """The next base width to check after ``scale`` failed, or None to keep ``scale``.

    Candidates are ``base_scale`` times ``WIDEN``, wider than ``scale``.  The
    low run's points show, at no likelihood cost, how far each candidate's
    tails reach (:func:`flowprior.lowcheck.low_tail`, with the check's
    ``log Z``): the first candidate whose excess is within ``WIDEN_TAIL`` is
    taken, so widths that cannot help are not paid a check.  If none is,
    the widest when ``widest`` (a flow that failed its score), else None (a
    flow that passed but shows a tail no width removes, as a Student-t's
    power-law tails under a Gaussian base: widening those to 2.7 made one
    high stage 8 400 -> 19 900 calls and doubled the logZ error).
    ``log_bound_at(c)`` is a perfect flow's bound at width ``c``
    (:func:`flowprior.mixing.log_peak`; default ``ndim log(c)``).

    Measured with dynesty (benchmarks/RESULTS.md, eighth session): the
    4-mode mixture's flows (piecewise, nlive_low 100) with tails of 1.5-9.8
    nats at 1.2 made high stages of 18 000-21 500 calls, those at 0.3-0.9
    3 400-7 400; widened to the first width whose tail is within 1 they
    took 6 900, 7 900, 14 600, 17 900 and 21 600.  Failing banana and
    Student-t flows (sixth session): unfinished after 200 000-300 000 calls
    at 1.2, done in 20 000-24 000 at 1.8 and 2.7.
    """
    candidates = [base_scale * f for f in WIDEN if base_scale * f > scale * (1 + 1e-9)]
    if not candidates:
        return None
    if log_z is not None:
        for c in candidates:
            bound = ndim * np.log(c) if log_bound_at is None else log_bound_at(c)
            if low_tail(*low_points, log_q_at(c), log_z) - bound <= WIDEN_TAIL:
                return c
    return candidates[-1] if widest else None


def _next_level(n_low: int, nlive: int) -> int | None:
    """The next low-resolution nlive (4 times more, at most ``nlive // 5``), or None at the limit."""
    nxt = min(4 * n_low, nlive // 5)
    return nxt if nxt > n_low else None


def _accept(level: LowCheck, grow_below: float | None, nxt: int | None) -> bool:
    """Whether to keep this level's flow: it passed its check, or nlive_low cannot grow."""
    return grow_below is None or level.score >= grow_below or nxt is None


def _low_level(adapter, loglike, prior_transform, ndim, n_low, low_rng, flow, flow_rng, kwargs, comm, paths,
               outdir, sampler, names):
    """One low-resolution level: its run and flow, loaded from ``outdir`` where finished.

    Returns the low Result, the trained (not broadened) flow, the training
    time and whether the run was made now (then its flow is new too).
    """
    from . import stages

    def saved_low() -> bool:
        return paths["low"].exists() and stages.saved_nlive(paths["low"]) == n_low

    fresh = not (paths and on_root(comm, saved_low))
    verified = 0
    if not fresh:
        low = on_root(comm, lambda: stages.load_result(paths["low"], sampler, names))
        verified = on_root(comm, lambda: _verify_low(low, loglike, prior_transform, ndim, paths["low"]))
    else:
        if paths:
            def forget_later_stages() -> None:  # results of a previous low stage
                for later in ("low", "flow", "draws", "high"):
                    paths[later].unlink(missing_ok=True)
                stages.remove_checkpoint(outdir, "high", sampler)

            on_root(comm, forget_later_stages)
        low = adapter.run(loglike, prior_transform, ndim, nlive=n_low, seed=low_rng, **kwargs,
                          **_checkpoint(outdir, "low", sampler))
        verified = low.ncall.get("fingerprint", 0)
        if paths:
            on_root(comm, lambda: stages.save_result(paths["low"], low, nlive=n_low))

    def train() -> tuple[FlowDensity, float]:
        t0 = time.perf_counter()
        if paths and not fresh and paths["flow"].exists():
            from .loading import load

            trained = load(paths["flow"])
        else:
            trained = _train(flow, low, flow_rng)
            if paths:
                # A high-stage checkpoint belongs to the flow it sampled; never
                # continue it with a newly trained one.
                stages.remove_checkpoint(outdir, "high", sampler)
                trained.save(paths["flow"])
        return trained, time.perf_counter() - t0

    # Once, on rank 0 (every rank has the same low run), then pickled to the others.
    trained, train_time = on_root(comm, train)
    return low, trained, train_time, fresh, verified


def _verify_low(low: Result, loglike, prior_transform, ndim: int, path) -> int:
    """Check the user's functions against a saved low stage's best points; return the calls made.

    The fixed points of ``problem.json`` may all lie where the likelihood is
    ``-inf``; these points lie where the posterior is.
    """
    from . import fingerprint

    rows = fingerprint.best_rows(low.samples.logL.to_numpy(dtype=float))
    stored = {"u": low.samples_u[rows], "theta": low.samples.iloc[rows, :ndim].to_numpy(dtype=float),
              "logl": low.samples.logL.to_numpy(dtype=float)[rows].tolist()}
    return fingerprint.verify(stored, CheckedLikelihood(loglike), CheckedPrior(prior_transform, ndim), str(path))


def _settings_repr(kwargs: dict | None) -> str:
    """Sampler settings as text for ``config.json``.

    Objects without a stable text form (a pool, a callback) are recorded by
    type only, so that rerunning with a new pool still matches.
    """
    plain = (str, int, float, bool, type(None), list, tuple)
    return repr(sorted((k, v if isinstance(v, plain) else f"<{type(v).__name__}>") for k, v in (kwargs or {}).items()))


def _checkpoint(outdir, stage: str, sampler: str) -> dict:
    """The adapter's ``checkpoint`` argument for a stage (none without ``outdir``)."""
    if outdir is None:
        return {}
    from .stages import checkpoint_path

    return {"checkpoint": checkpoint_path(outdir, stage, sampler)}


def _default_nlive_low(sampler: str, ndim: int, sampler_kwargs: dict | None) -> int:
    """Low-stage nlive before the ``nlive // 5`` cap (measured; benchmarks/RESULTS.md).

    PolyChord: 100, at ``num_repeats = ndim // 2`` (``_low_sampler_kwargs``;
    tenth session).  At PolyChord's default ``5 * ndim`` repeats 25 live
    points cost 120 000-165 000 calls on the Planck-like Gaussian (760 000
    at 100) and, on the 4-mode mixture, 35 000-42 000 calls, but lost or
    all but lost (mass <= 0.024) a mode in 4 of 10 runs.  100 points at
    ``ndim // 2`` repeats: 49 000-56 000 calls on the Planck-like Gaussian,
    14 400-15 900 on the mixture with every mode kept (smallest mass 0.043)
    in 10 of 10 and an effective sample size of 510-550 (25 live: 89-136).
    dynesty's uniform sampling: 100.  With
    25 (and the settings of ``_low_sampler_kwargs``) the Planck-like run
    totals 6.5-9.6 % of plain (median 7.2 %, 20 seeds) instead of
    15.4-16.8 % (10 seeds; tenth session, with ``HIGH_DLOGZ``), but on
    the 4-mode mixture its low runs cost 7 000-27 000 calls, and with an
    enlargement of 1.5 one lost a mode of mass 0.2 and its flow still
    passed the check (benchmarks/RESULTS.md): pass ``nlive_low=25`` for a
    posterior you know to be unimodal.
    dynesty's MCMC methods: 25, which met the Planck target (6-7 % of
    plain) with rwalk; where 25 points gave a poor flow (banana, Student-t:
    high stages of 77 000 to over 3 million calls) the low stage's check
    fails and it grows to 100 (``grow_below``).  rwalk at 25 also lost a
    mode of mass 0.1 on the multimodal benchmark, which no check can see;
    rwalk's plain runs there were off by 8 sigma in their mode masses too.
    """
    if sampler == "polychord":
        return POLYCHORD_NLIVE_LOW
    return DYNESTY_NLIVE_LOW_UNIF if _uniform_sampling(ndim, sampler_kwargs) else DYNESTY_NLIVE_LOW_MCMC


def _live_points(draws: dict, nlive: int) -> list:
    """dynesty's ``live_points`` for the high stage: the check's first ``nlive`` draws.

    They are independent uniform draws of the high stage's cube with the
    high stage's likelihood already evaluated, which is all dynesty asks of
    initial live points, so the check's calls are not spent twice.  The
    draws also decided whether this flow was accepted; conditioning on that
    biases them only when the flow sits near the ``grow_below`` threshold
    (simulated with log-normal weights, 500 draws: a shift of -0.0004 in the
    log of their mean at a true ESS fraction of 0.6, -0.012 at 0.5, against
    logZ errors of 0.06; benchmarks/RESULTS.md).  Copies: dynesty
    overwrites ``-inf`` log-likelihoods in place.
    """
    return [draws["v"][:nlive].copy(), draws["u"][:nlive].copy(), draws["logl"][:nlive].copy()]


def _uniform_sampling(ndim: int, sampler_kwargs: dict | None) -> bool:
    """Whether dynesty will sample uniformly in its bounds with these settings."""
    sample = (sampler_kwargs or {}).get("sample", "auto")
    # dynesty's "auto": uniform sampling below 10 dimensions, MCMC above.
    return sample == "unif" or (sample == "auto" and ndim < 10)


def _low_sampler_kwargs(sampler: str, ndim: int, sampler_kwargs: dict | None, nlive_low: int,
                        run_kwargs: dict | None = None) -> dict | None:
    """The low-resolution stage's sampler settings: the user's, with exceptions for PolyChord and uniform sampling.

    PolyChord: ``num_repeats = max(1, ndim // 2)`` (``POLYCHORD_LOW_REPEATS``)
    unless ``sampler_kwargs`` or ``run_kwargs`` set it (PolyChord has one
    settings object); see ``_default_nlive_low`` for the measurements.

    dynesty's uniform sampling, each setting only where the user did not set it:

    - ``bootstrap=0``: dynesty's default bootstrapped enlargement of the
      ellipsoids, estimated from 25 points in 6-D, made the Planck-like low
      run cost 63 000 calls (1.5 % efficiency), and 16 700-18 700 at 100
      points; a fixed one took 12 100-12 800 at 100.  With ``bootstrap=0``
      and no ``enlarge``, dynesty 3.1.0 enlarges by 1 (none; its 1.25 is
      for the MCMC methods), so these runs' ellipsoids hug the live points.
    - ``enlarge=LOW_ENLARGE`` (2) below ``LOW_ENLARGE_BELOW`` live points
      (these two only if neither ``bootstrap`` nor ``enlarge`` is set;
      ``_small_fixed_bounds``): at 25 points no enlargement took 2 700 calls but its
      bounds cut into the contour and the flows came out narrow (4 of 10
      failed the check, some that passed made high stages of 15 000-19 000
      calls); 2 took 3 300-3 700 and every flow passed.
    - ``first_update=LOW_FIRST_UPDATE``: ellipsoids from the start (with
      ``min_ncall`` 0 dynesty switches at its first test: ``min_eff`` 20,
      30 and 60 gave identical runs), instead of drawing from the whole
      cube until fewer than 10 % of the draws are accepted.  That pays about
      ``nlive / X`` calls to reach prior volume ``X``: 900 of the 3 500 calls
      of a 25-live Planck-like run.  That early phase holds no posterior
      mass, so bounding it early loses nothing the flow is trained on.
    - ``bound=ModeEllipsoids(ndim)`` (``flowprior.integrations.dynesty_bounds``)
      when the bootstrap is 0 and the user set no ``bound``: dynesty's
      ellipsoids, plus one of its own for each detached cluster of fewer
      than ``2 * ndim`` live points, which dynesty makes share an ellipsoid
      spanning two modes.  4-mode mixture, 100-live low runs alone, seeds
      0-19: 2 800-4 900 calls (median 3 600) instead of 3 700-7 500 (median
      6 000), mode masses closer to the truth (largest deviation 4.1
      instead of 8.3 errors); no cluster was carved on the Planck-like
      Gaussian at 25 or 100 live points (eleventh session).
    - ``update_interval=LOW_UPDATE_INTERVAL`` (0.2) below
      ``LOW_ENLARGE_BELOW`` live points: bounds from 25 points go stale
      while the contour shrinks; refitting them every 5 points cost no
      calls, only the (tiny) fit time.

    Measured (benchmarks/RESULTS.md, seventh session): 25-live Planck-like
    low runs 3 465-3 686 calls before, 2 250-2 330 with both; 100-live
    8 400-8 800 instead of 11 400-12 200; 100-live runs of the 4-mode
    mixture 4 500-7 600 instead of 8 100-9 000 (5 seeds).  (An update interval of 0.5
    at 100 points made the mixture's runs erratic, 5 600-11 500.)
    """
    user = sampler_kwargs or {}
    if sampler == "polychord":
        if "num_repeats" in user or "num_repeats" in (run_kwargs or {}):
            return sampler_kwargs
        return {**user, "num_repeats": _polychord_repeats(POLYCHORD_LOW_REPEATS, ndim)}
    if sampler != "dynesty" or not _uniform_sampling(ndim, user):
        return sampler_kwargs
    out = dict(user)
    if "bootstrap" not in user and "enlarge" not in user:
        out["bootstrap"] = 0
    if _small_fixed_bounds(sampler, ndim, user, nlive_low):
        out["enlarge"] = LOW_ENLARGE
    out.setdefault("first_update", dict(LOW_FIRST_UPDATE))
    if "bound" not in user and out.get("bootstrap") == 0:
        from .integrations.dynesty_bounds import ModeEllipsoids

        out["bound"] = ModeEllipsoids(ndim)
    if nlive_low < LOW_ENLARGE_BELOW:
        out.setdefault("update_interval", LOW_UPDATE_INTERVAL)
    return out


def _polychord_repeats(fraction: float, ndim: int) -> int:
    """PolyChord's ``num_repeats`` as a fraction of ``ndim``, at least 1."""
    return max(1, int(fraction * ndim))


def _high_sampler_kwargs(sampler: str, ndim: int, sampler_kwargs: dict | None,
                         high_sampler_kwargs: dict | None, early_bounds: bool = False) -> dict:
    """The high-resolution stage's sampler settings.

    With the flow as prior the target is nearly uniform in the cube, so the
    settings tuned for the user's problem are not the right ones there:
    PolyChord's default 5 * ndim slice repeats per iteration dominate the
    cost and ndim / 2 gave the same evidence for an eighth of the calls;
    dynesty's uniform draws from the cube (then ellipsoids) accept most
    proposals, where rwalk spends its fixed walks per iteration (benchmarks/
    RESULTS.md).  Anything in ``high_sampler_kwargs`` wins.
    """
    high = dict(high_sampler_kwargs or {})
    out = {**(sampler_kwargs or {}), **high}
    if sampler == "polychord" and "num_repeats" not in high:
        out["num_repeats"] = _polychord_repeats(POLYCHORD_HIGH_REPEATS, ndim)
    if sampler == "dynesty" and "sample" not in high:
        out["sample"] = "unif"
        for key in ("walks", "slices"):  # settings of the MCMC methods only
            if key not in high:
                out.pop(key, None)
        if "bootstrap" not in high:
            # The contours of L / q are noise around a plateau, not ellipses:
            # bootstrapped enlargement factors blew up on them and the
            # efficiency collapsed (multimodal benchmark); a fixed one did not.
            out["bootstrap"] = 0
        if early_bounds:
            # dynesty draws from the whole cube until fewer than 10 % are
            # accepted, about nlive / X calls to reach volume X: most of a
            # flow-whitened run.  Ellipsoids below 50 % acceptance took the
            # Planck-like high stages behind a one-piece flow from 3 500-6 200
            # calls to 2 100-3 400; but behind a flow with missing tails
            # (Student-t, score 0.69) the ellipsoids split around L / q's
            # spikes (400 of them, 1 % efficiency) and a 38 s stage was
            # unfinished after 9 minutes, and behind a piecewise flow they clip
            # the pieces' slabs (4.9 sigma mode-mass bias), hence _tame.
            out.setdefault("first_update", dict(HIGH_FIRST_UPDATE))
    return out


def _high_run_kwargs(sampler: str, run_kwargs: dict | None, high_sk: dict | None = None) -> dict | None:
    """The high-resolution stage's run settings, with its stopping rule (``HIGH_DLOGZ``, ``POLYCHORD_HIGH_PRECISION``).

    ``high_sk`` are the stage's sampler settings.  PolyChord has one settings
    object, so a ``precision_criterion`` there is the user's too, and a key
    that ``high_sk`` sets is dropped from ``run_kwargs`` (the stage's
    ``num_repeats`` wins over the user's).

    Behind the flow the high stage's likelihood ``L / q`` is nearly flat, so
    the evidence is mostly in the first live points (draws of the flow) and
    the run's last iterations only shrink a plateau.  dynesty stops when the
    live points could add at most ``exp(dlogz) - 1`` of the evidence so far
    and then adds them (``add_live``), so a larger ``dlogz`` changes which
    iteration ends the run, not the estimator.  Measured (benchmarks/
    RESULTS.md, tenth session), same seeds and flows, 0.51 -> 1.0: Planck-like
    high stages (nlive_low 25) 1 900-6 100 -> 1 200-2 800 calls, logZ moved
    by at most 0.008 (seed-to-seed spread 0.02); 4-mode mixture 2 600-13 500
    -> 1 100-3 900, mode masses within 2.6 sigma (2.9 before); Student-t
    3-4 % fewer.  dynesty's quoted logZerr grows (0.06-0.09 -> 0.09-0.12 on the
    Planck-like runs), though both are 3-5 times the seeds' spread: it
    resolves the live points' share with ever fewer points.  ``dlogz`` in
    ``run_kwargs`` wins.

    PolyChord stops when the live points hold ``precision_criterion`` of the
    evidence (default 0.001) and then adds them too.  Same seeds and flows,
    0.001 -> 0.1: Planck-like high stages 40 900-50 100 -> 12 900-16 200
    calls, 4-mode mixture 26 900-41 900 -> 10 200-13 000; logZ moved by at
    most 0.006 and PolyChord's logZerr by at most 0.001.  A
    ``precision_criterion`` in ``sampler_kwargs``, ``run_kwargs`` or
    ``high_sampler_kwargs`` wins.
    """
    user = run_kwargs or {}
    if sampler == "dynesty" and "dlogz" not in user:
        return {**user, "dlogz": HIGH_DLOGZ}
    if sampler == "polychord":
        stage = high_sk or {}
        out = {k: v for k, v in user.items() if k not in stage}
        if "precision_criterion" not in user and "precision_criterion" not in stage:
            out["precision_criterion"] = POLYCHORD_HIGH_PRECISION
        return out if out or run_kwargs is not None else None
    return run_kwargs


def _tame(level: LowCheck | None, trained: FlowDensity) -> bool:
    """Whether the high stage may bound its live points early (``HIGH_FIRST_UPDATE``).

    Only behind a one-piece flow (early ellipsoids clip a piecewise flow's
    slabs) whose check saw no posterior-to-flow ratio above a perfect
    flow's bound by more than ``TAME_TAIL`` nats (:func:`flowprior.lowcheck.tail_excess`).
    """
    return (level is not None and level.tail is not None and level.tail <= TAME_TAIL
            and len(trained.pieces_) == 1)


def _to_physical(run_v: Result, prior_transform) -> Result:
    """A flow-prior run's result in the user's terms.

    The sampler's parameters were the user's hypercube ``u`` (the flow's
    output); map them to physical parameters and keep ``u`` as ``samples_u``.
    """
    ndim = run_v.samples_u.shape[1]
    u = run_v.samples.iloc[:, :ndim].to_numpy(dtype=float)
    samples = run_v.samples.copy()
    # A draw the flow put outside the cube has zero likelihood (the sampler
    # keeps it as a zero-weight point that carries prior volume).  The user's
    # prior transform is only defined on the cube, so such a row gets the
    # parameters of the nearest cube point and logL = -inf; samples_u keeps
    # where it really was.
    outside = ~in_unit_cube(u)
    samples.iloc[:, :ndim] = physical(prior_transform, np.clip(u, 0.0, 1.0))
    if outside.any():
        samples.loc[outside, "logL"] = -np.inf
    return Result(samples=samples, logZ=run_v.logZ, logZerr=run_v.logZerr, ncall=run_v.ncall, samples_u=u,
                  sampler=run_v.sampler, raw=run_v.raw)


def _tail_weight(flow: FlowDensity, samples_u: np.ndarray, samples) -> float:
    """The posterior weight in the flow's outer 1 % shells: where ``v = flow^-1(u)`` is within 0.005 of an edge."""
    tiny = 1e-12
    v = flow.inverse_transform(np.clip(samples_u, tiny, 1 - tiny))
    w = samples.get_weights()
    w = w / w.sum()
    edge = np.any((v < 0.005) | (v > 0.995), axis=1)
    return float(w[edge].sum())


def _warn_if_flow_too_narrow(result: Result, share: float = 0.05) -> None:
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
