"""The check of a level's flow, and widening its base until the high stage can use it.

The check evaluates the high stage's likelihood at uniform draws of the
flow's cube (:func:`flowprior.workflows.lowcheck.check_flow`): the effective
sample size of those weights, relative to a perfect flow's, is the level's
score.  A flow that fails where the low stage cannot grow, or (for samplers
whose adapter asks) passes but shows a tail, has its base widened along
``EnhancedDefaults.widen``: the low run's points show, at no likelihood
cost, which widths cannot help, so those are not paid a check
(docs/design.md, "Widening a failing flow").  A widened one-piece flow is
then tried rebased on the Gaussian its check's draws show
(:mod:`flowprior.workflows.rebase`).  Behind a piecewise flow the check's
weights re-estimate the pieces' masses (:mod:`flowprior.workflows.mixing`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flowprior.flows.base import FlowDensity
from flowprior.flows.defensive import defended
from flowprior.mpi import on_root
from flowprior.workflows.checked import CheckedLikelihood, CheckedPrior
from flowprior.workflows.levels import Level, accept
from flowprior.workflows.lowcheck import LowCheck, check_flow, check_log_z, low_tail, tail_excess
from flowprior.workflows.mixing import check_masses, log_peak, perfect_ess, piece_scales, volume_weights
from flowprior.workflows.plan import DEFAULTS, Plan
from flowprior.workflows.rebase import draws_needed, latent_gaussian, rebase_gain
from flowprior.workflows.repartition import RepartitionedLikelihood


@dataclass
class StagePrior:
    """A level's flow at one width: the widened flow, the high stage's prior and its likelihood.

    Attributes
    ----------
    scale : float
        The base width.
    wide : FlowDensity
        The flow widened (and a piecewise flow's pieces re-weighted).
    prior : FlowDensity
        ``wide``, mixed with the uniform cube when ``defensive`` is set.
    like : RepartitionedLikelihood
        The high stage's likelihood behind ``prior``.
    """

    scale: float
    wide: FlowDensity
    prior: FlowDensity
    like: RepartitionedLikelihood


def stage_prior(plan: Plan, trained: FlowDensity, scale: float, masses=None, base=None) -> StagePrior:
    """``trained`` widened by ``scale`` as the high stage's prior, with its repartitioned likelihood.

    A piecewise flow's pieces are widened one by one and weighted by
    ``masses`` (default: the low run's) times their widening volume
    (:mod:`flowprior.workflows.mixing`).  ``base``, ``[mean, cov]``,
    rebases the flow first (:mod:`flowprior.workflows.rebase`).
    """
    ndim = int(plan.ndim)
    if base is not None:
        trained = trained.rebased(*base)
    scales = piece_scales(trained, scale, ndim)
    wide = trained.broadened(scales) if np.any(np.asarray(scales) != 1) else trained
    if len(trained.pieces_) > 1:
        mass = trained.weights_ if masses is None else masses
        wide = wide.reweighted(volume_weights(mass, scales, ndim))
    prior = defended(wide, plan.defensive)
    # Checked inside the repartition so that a NaN names the physical
    # parameters the user's likelihood saw, not the flow's hypercube point.
    like = RepartitionedLikelihood(CheckedLikelihood(plan.loglike), CheckedPrior(plan.prior_transform, plan.ndim),
                                   prior)
    return StagePrior(scale, wide, prior, like)


@dataclass
class Checked:
    """A checked level: its record, the prior the check settled on and the check's draws."""

    record: LowCheck
    stage: StagePrior
    draws: dict


def check_level(plan: Plan, level: Level, sp: StagePrior, nxt: int | None) -> Checked:
    """Check the level's flow at ``sp`` (its default width), widening where that helps; then weigh its pieces.

    ``nxt`` is the next level's ``nlive_low``, None where the low stage cannot grow.
    Behind an MCMC low stage a failing flow is widened first, and grows
    only where no width passes (docs/design.md, "Widening a failing flow").
    A widened one-piece flow that is kept is tried rebased (:func:`_rebase`).
    """
    # An MCMC low stage costs far more per live point than the check's draws: widen before growing.
    widen_first = plan.adapter.mcmc(int(plan.ndim), plan.settings.sampler_kwargs)
    base_scale = sp.scale
    sp, record, draws = _check_and_widen(plan, level, sp, can_grow=nxt is not None and not widen_first)
    if sp.scale > base_scale and len(level.trained.pieces_) == 1 and accept(record, plan.grow_below, nxt):
        sp, draws = _rebase(plan, level, sp, base_scale, record, draws)
    if len(level.trained.pieces_) > 1 and not plan.defensive and accept(record, plan.grow_below, nxt):
        sp = _reweigh_pieces(plan, level, sp, record, draws)
    return Checked(record, sp, draws)


def _check_and_widen(plan: Plan, level: Level, sp: StagePrior, can_grow: bool):
    """The check at ``sp``, then at wider bases while the flow fails (or shows a tail) and cannot grow."""
    ndim, trained, n_low, base_scale = int(plan.ndim), level.trained, level.n_low, sp.scale
    n_draws = max(100, int(plan.nlive))
    low = level.low
    low_points = (low.samples_u, low.samples.logL.to_numpy(dtype=float), low.samples.get_weights())
    check_calls, i = 0, 0
    while True:
        ess, calls, draws = on_root(plan.comm, lambda: check_flow(sp.like, ndim, n_draws, plan.streams(n_low, 2 + i),
                                                                  plan.pool))
        check_calls += calls
        scales = piece_scales(trained, sp.scale, ndim)
        perfect = perfect_ess(trained.weights_, scales, ndim)
        tail = on_root(plan.comm, lambda: tail_excess(draws["logl"], *low_points, sp.like.flow.log_prob, sp.scale,
                                                      ndim, log_bound=log_peak(trained.weights_, scales, ndim)))
        passes = ess / perfect >= plan.grow_below
        tailed = plan.adapter.widens_passing_tails and tail > DEFAULTS.widen_tail
        if (passes and not tailed) or (not passes and can_grow):
            break
        log_z = check_log_z(draws["logl"]) if np.isfinite(draws["logl"]).any() else None
        tail_at = None if log_z is None else _tail_at(plan, trained, low_points, log_z)
        wider = on_root(plan.comm, lambda: wider_scale(sp.scale, base_scale, tail_at, widest=not passes))
        if wider is None:
            break
        sp, i = stage_prior(plan, trained, wider), i + 1
    record = LowCheck(n_low, int(low.ncall["total"]), ess, check_calls, perfect, sp.scale, tail)
    return sp, record, draws


def wider_scale(scale: float, base_scale: float, tail_at, widest: bool = True) -> float | None:
    """The next base width to check after ``scale`` failed, or None to keep ``scale``.

    Candidates are ``base_scale`` times ``EnhancedDefaults.widen``, wider than
    ``scale``; ``tail_at(c)`` is the tail a candidate shows at the low run's
    points, in nats beyond a perfect flow's (None where there is no
    evidence estimate to judge by).  The first candidate whose tail is
    within ``widen_tail`` is taken.  If none is: the widest when ``widest``
    (a flow that failed its score), else None (a flow that passed but
    shows a tail no width removes, as power-law tails under a Gaussian base).

    Example
    -------
    >>> wider_scale(1.0, 1.0, lambda c: 0.0)
    1.125
    >>> wider_scale(1.0, 1.0, lambda c: 9.0, widest=False) is None
    True
    """
    candidates = [base_scale * f for f in DEFAULTS.widen if base_scale * f > scale * (1 + 1e-9)]
    if not candidates:
        return None
    if tail_at is not None:
        for c in candidates:
            if tail_at(c) <= DEFAULTS.widen_tail:
                return c
    return candidates[-1] if widest else None


def _tail_at(plan: Plan, trained: FlowDensity, low_points: tuple, log_z: float):
    """``tail_at`` for :func:`wider_scale`: the low run's :func:`~flowprior.workflows.lowcheck.low_tail`
    under the prior at width ``c``, beyond a perfect flow's bound there (:func:`~flowprior.workflows.mixing.log_peak`)."""
    ndim = int(plan.ndim)

    def tail_at(c: float) -> float:
        bound = log_peak(trained.weights_, piece_scales(trained, c, ndim), ndim)
        return low_tail(*low_points, stage_prior(plan, trained, c).prior.log_prob, log_z) - bound

    return tail_at


def _rebase(plan: Plan, level: Level, sp: StagePrior, scale: float, record: LowCheck, draws: dict):
    """A widened flow rebased on the Gaussian its check's draws show, at width ``scale``, where that is better.

    A rebase expected to gain less than ``rebase_gain`` nats is not checked.
    The rebased flow is checked like the others; it replaces the widened one
    if its ESS fraction is higher and it shows no tail beyond ``widen_tail``
    (or the widened flow's), and ``record`` then describes it
    (docs/design.md, "Rebasing a widened flow").
    """
    ndim, trained = int(plan.ndim), level.trained
    u, logl = _fit_draws(plan, level, sp, record, draws)

    def fit():
        log_ratio = logl + sp.prior.log_prob(u) - trained.log_prob(u)
        return latent_gaussian(trained.base_coordinates(u), log_ratio)

    base = on_root(plan.comm, fit)
    if base is None or rebase_gain(*base, sp.scale, scale) < DEFAULTS.rebase_gain:
        return sp, draws
    new = stage_prior(plan, trained, scale, base=base)
    ess, calls, new_draws = on_root(plan.comm, lambda: check_flow(new.like, ndim, len(draws["v"]),
                                                                  plan.streams(level.n_low, 100), plan.pool))
    record.check_calls += calls
    low = level.low
    low_points = (low.samples_u, low.samples.logL.to_numpy(dtype=float), low.samples.get_weights())
    tail = on_root(plan.comm, lambda: tail_excess(new_draws["logl"], *low_points, new.prior.log_prob, scale, ndim))
    if not (ess > record.ess_fraction and tail <= max(DEFAULTS.widen_tail, record.tail)):
        return sp, draws
    record.tail, record.ess_fraction, record.broaden = tail, ess, scale
    record.perfect = perfect_ess(trained.weights_, scale, ndim)
    record.base = [base[0].tolist(), base[1].tolist()]
    return new, new_draws


def _fit_draws(plan: Plan, level: Level, sp: StagePrior, record: LowCheck, draws: dict):
    """The check's draws inside the cube (``u``, ``logl``), topped up with more draws of ``sp`` where the fit needs them.

    The quadratic's coefficients grow as ``d^2 / 2``: from about 20 dimensions
    a check of ``nlive`` draws is too small, and the few hundred calls more
    are a small part of such a run.  They count as check calls.
    """
    ok = np.isfinite(draws["logl"])
    u, logl = draws["u"][ok], draws["logl"][ok]
    short = draws_needed(int(plan.ndim)) - len(u)
    if short > 0:
        inside = max(ok.mean(), 0.5)
        n = int(np.ceil(1.1 * short / inside))
        _, calls, more = on_root(plan.comm, lambda: check_flow(sp.like, int(plan.ndim), n,
                                                               plan.streams(level.n_low, 101), plan.pool))
        record.check_calls += calls
        keep = np.isfinite(more["logl"])
        u, logl = np.vstack([u, more["u"][keep]]), np.concatenate([logl, more["logl"][keep]])
    return u, logl


def _reweigh_pieces(plan: Plan, level: Level, sp: StagePrior, record: LowCheck, draws: dict) -> StagePrior:
    """Pieces weighted by the masses the check's weights show, better than the low run's."""
    masses = check_masses(draws, sp.wide, level.trained.weights_)
    if masses is None:
        return sp
    record.masses = masses.tolist()
    return stage_prior(plan, level.trained, sp.scale, masses)
