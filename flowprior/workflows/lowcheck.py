"""Is a low-resolution run's flow good enough to be the high-resolution prior?

The high-resolution stage samples the flow's cube ``v`` uniformly under the
repartitioned likelihood ``L'(v) = L(u) / q(u)`` with ``u = flow(v)``.  If
the flow were the posterior, ``L'`` would be the constant ``Z``; the
further it is from that, the longer the high stage runs (a flow too narrow
somewhere leaves spikes of ``L'`` that the sampler has to find).  ``L'`` at
uniform draws of ``v`` are importance weights of the flow for the
posterior, so their effective sample size per draw measures exactly that.
The level is judged by that fraction divided by the one a perfect flow
would reach with the same broadened base (:func:`perfect_ess_fraction`),
since broadening alone lowers it, the more so the more dimensions.

What it cannot see: a mode the low run missed altogether, since no draw
from the flow lands there.  Only more live points in the low run help
against that (docs/design.md, "Growing the low stage" and "Low-stage
live points").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import logsumexp

from flowprior.workflows.checked import evaluate_in_cube


@dataclass
class LowCheck:
    """One low-resolution level of an enhanced run and how its flow fared.

    Attributes
    ----------
    nlive_low : int
        Live points of the low-resolution run.
    low_calls : int
        Its likelihood calls.
    ess_fraction : float
        Effective sample size per draw of the flow's importance weights
        (1: the flow is the posterior; 0 if no draw had positive weight).
    check_calls : int
        Likelihood calls the check made (draws that landed in the cube).
    perfect : float
        The ESS fraction a flow equal to the posterior would score, broadened
        as this one was (:func:`perfect_ess_fraction`; 1 in records written
        before it was kept).
    broaden : float or None
        The base width of the flow this check judged: the run's ``broaden``,
        or a wider one where the last level widened its failing flow (None in
        records written before it was kept).
    tail : float or None
        :func:`tail_excess` of that flow (None in records written before it
        was kept, or where the low run's points were not at hand).
    masses : list of float or None
        A piecewise flow's piece masses re-estimated from this check's
        draws, which set the high stage's piece weights
        (:mod:`flowprior.workflows.mixing`); None for one-piece flows, failing
        levels and records written before it was kept.
    base : list or None
        ``[mean, cov]`` of the Gaussian base the accepted flow was rebased on
        (:mod:`flowprior.workflows.rebase`); the fields above then describe
        the rebased flow.  None where the flow kept its standard base.

    The level passes when ``score = ess_fraction / perfect`` reaches the
    threshold: broadening, which the high stage wants, lowers the raw ESS of
    even a perfect flow, and more so the more dimensions there are.
    """

    nlive_low: int
    low_calls: int
    ess_fraction: float
    check_calls: int
    perfect: float = 1.0
    broaden: float | None = None
    tail: float | None = None
    masses: list | None = None
    base: list | None = None

    @property
    def score(self) -> float:
        """ESS fraction relative to that of a perfect flow broadened the same way."""
        return self.ess_fraction / self.perfect

    def to_dict(self) -> dict:
        return asdict(self)


def ess_fraction(log_weights: np.ndarray) -> float:
    """Kish's effective sample size of ``exp(log_weights)``, divided by their number.

    ``-inf`` weights count as draws with zero weight; all ``-inf`` gives 0.
    """
    lw = np.asarray(log_weights, dtype=float)
    if lw.ndim != 1 or len(lw) == 0:
        raise ValueError(f"log_weights: expected a non-empty 1-D array, got shape {lw.shape}")
    if np.isnan(lw).any():
        raise ValueError(f"log_weights: NaN at rows {np.flatnonzero(np.isnan(lw))[:10].tolist()}")
    if not np.isfinite(lw).any():
        return 0.0
    return float(np.exp(2 * logsumexp(lw) - logsumexp(2 * lw)) / len(lw))


def perfect_ess_fraction(scale: float, ndim: int) -> float:
    """ESS per draw of a flow equal to the posterior with its Gaussian base widened by ``scale``.

    Its weights are ``N(z; 0, I) / N(z; 0, scale^2 I)`` at ``z ~ N(0, scale^2 I)``,
    whatever the flow: per dimension ``E[w^2] / E[w]^2 = scale / sqrt(2 - 1 / scale^2)``,
    so the fraction is ``(sqrt(2 - 1 / scale^2) / scale) ** ndim``: 0.75 for
    ``scale`` 1.2 in 6-D, 0.37 in 20-D.  A uniform defensive component is
    not included (it only raises the ESS of a perfect flow a little).
    """
    if not (np.isfinite(scale) and scale >= 1):
        raise ValueError(f"scale: expected a base scale >= 1, got {scale!r}")
    return float((np.sqrt(2 - 1 / scale**2) / scale) ** ndim)


def check_flow(repartitioned, ndim: int, n: int, rng: np.random.Generator,
               pool=None) -> tuple[float, int, dict]:
    """ESS fraction of the high stage's likelihood at ``n`` uniform draws of the flow's cube.

    Parameters
    ----------
    repartitioned : flowprior.workflows.repartition.RepartitionedLikelihood
        The high stage's likelihood; its ``flow`` maps ``v`` to ``u``.
    ndim : int
    n : int
        Draws (at most ``n`` likelihood calls: draws the flow puts outside
        the user's cube have weight 0 and cost nothing).
    rng : numpy Generator
    pool : optional
        Anything with ``map``; the likelihood calls go through it.

    Returns
    -------
    ess_fraction : float
    calls : int
        Likelihood calls made.
    draws : dict
        ``v`` (the uniform draws, (n, ndim)), ``u = flow(v)`` and ``logl``,
        the high stage's log-likelihood there (``-inf`` outside the cube):
        independent draws from the high stage's prior, which dynesty takes
        as its initial live points so that these calls are not wasted;
        ``derived``, their derived parameters, where the likelihood has them.
    """
    v = rng.uniform(size=(n, ndim))
    u = np.asarray(repartitioned.flow(v), dtype=float)
    logw, derived, calls = evaluate_in_cube(repartitioned, u, pool)
    return ess_fraction(logw), calls, {"v": v, "u": u, "logl": logw, **({"derived": derived} if derived.shape[1] else {})}


def tail_excess(check_logw: np.ndarray, low_u: np.ndarray, low_logl: np.ndarray, low_weights: np.ndarray,
                log_q, scale: float, ndim: int, mass: float = 0.999, log_bound: float | None = None) -> float:
    """How far the largest posterior-to-flow ratio seen exceeds a perfect flow's bound, in nats.

    A flow equal to the posterior, with its base widened by ``scale``, has
    ``P / q <= scale^ndim`` everywhere, so ``log(P / q) - ndim log(scale)``
    is at most 0; a flow narrower than the posterior somewhere exceeds it
    there, and that is what makes the high stage dear (its likelihood
    ``L / q`` has spikes the sampler must chase).  Two places are looked at,
    both free of likelihood calls:

    - the check's draws from the flow (``check_logw = log L - log q``),
      where ``log(P / q)`` is their log-weight minus the log of their mean
      (the flow's estimate of ``log Z``);
    - the low-resolution run's points that hold its top ``mass`` of
      posterior weight, with the same estimate of ``log Z``: they reach into
      tails that the flow's own draws rarely visit.

    A flow close to the posterior scores near 0; missing tails score tens
    of nats (docs/design.md, "Widening a failing flow").

    Parameters
    ----------
    check_logw : ndarray
        The check's log-weights (``-inf`` for draws outside the cube).
    low_u, low_logl, low_weights : ndarray
        The low-resolution run's points in the user's cube, their
        log-likelihoods and posterior weights.
    log_q : callable
        ``u -> log q(u)`` of the high stage's prior (the same ``q`` as in
        ``check_logw``).
    scale : float
        The flow's base scale.
    ndim : int
    mass : float
        Share of the low run's posterior weight whose points are looked at.
    log_bound : float, optional
        The perfect flow's bound on ``log(P / q)`` where it is not
        ``ndim log(scale)``: pieces widened and weighted one by one
        (:func:`flowprior.workflows.mixing.log_peak`).

    Returns
    -------
    float
        ``+inf`` if no check draw had positive weight.
    """
    lw = np.asarray(check_logw, dtype=float)
    if not np.isfinite(lw).any():
        return float("inf")
    log_z = check_log_z(lw)
    worst = max(np.max(lw) - log_z, low_tail(low_u, low_logl, low_weights, log_q, log_z, mass))
    bound = ndim * np.log(scale) if log_bound is None else log_bound
    return float(worst - bound)


def check_log_z(check_logw: np.ndarray) -> float:
    """The flow's importance-sampling estimate of ``log Z``: the log of the check's mean weight."""
    lw = np.asarray(check_logw, dtype=float)
    return float(logsumexp(lw) - np.log(len(lw)))


def low_tail(low_u: np.ndarray, low_logl: np.ndarray, low_weights: np.ndarray, log_q, log_z: float,
             mass: float = 0.999) -> float:
    """Largest ``log(P / q)`` at the low run's points holding its top ``mass`` of posterior weight.

    ``P = L / Z`` with ``log Z = log_z`` (the user's prior is uniform in
    the cube); ``-inf`` if there are no such points.  See :func:`tail_excess`.
    """
    w = np.asarray(low_weights, dtype=float)
    if not len(w) or not w.sum() > 0:
        return -np.inf
    order = np.argsort(-w)
    top = order[: np.searchsorted(np.cumsum(w[order]) / w.sum(), mass) + 1]
    ratio = np.asarray(low_logl, dtype=float)[top] - log_q(np.asarray(low_u, dtype=float)[top]) - log_z
    ratio = ratio[~np.isnan(ratio)]
    return float(np.max(ratio)) if len(ratio) else -np.inf
