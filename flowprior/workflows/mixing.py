"""How an enhanced run mixes a piecewise flow's pieces into the high stage's prior.

A piece trained on few effective samples comes out narrower than its mode
in some direction (the smallest eigenvalue of a covariance estimated from
``n`` samples in ``d`` dimensions is low by about ``(1 - sqrt(d / n))^2``),
and the low run's share of each mode is noisy, and biased against small
modes (docs/design.md, "Piece masses from the check").  Both make spikes of the high stage's
likelihood ``L / q`` in that piece's slab of the cube, which the sampler
must compress into.  Three things remove them:

- :func:`piece_scales`: each piece's base is widened by
  ``1 / (1 - sqrt(d / n_k))`` for its training samples' effective size
  ``n_k``, at least the run's ``broaden``;
- :func:`volume_weights`: each piece's weight is its mode's mass times
  ``scale_k^d``, so that widening a piece does not lower ``L / q`` in the
  other slabs: a perfect piece widened by ``s`` peaks at ``s^d`` times its
  mean ratio, and these weights give every slab the same peak;
- :func:`check_masses`: after the check, the masses are re-estimated from
  its importance weights (one population Monte Carlo step).
"""

from __future__ import annotations

import numpy as np

from flowprior.flows.base import slab_of
from flowprior.workflows.lowcheck import perfect_ess_fraction

#: A piece is widened at most this many times the run's base scale: the widening ladder's widest
#: step, so a piece of barely ``d`` effective samples is not spread over the cube (docs/design.md,
#: "Piece-widening cap and mass floor").
MAX_PIECE_FACTOR = 2.25
#: The check's estimate of a piece's mass is kept at least this share of the low run's, so that a
#: piece its draws happened to miss keeps a slab (docs/design.md, "Piece-widening cap and mass floor").
MASS_FLOOR = 0.25


def piece_scales(flow, scale: float, ndim: int):
    """Each piece's base scale: ``scale``, or wider for a piece trained on few effective samples.

    One-piece flows (and flows whose training records predate ``ess``)
    get ``scale`` itself, a float; piecewise flows an array.
    """
    ess = [getattr(r, "ess", None) for r in flow.records_]
    if len(flow.pieces_) == 1 or any(e is None for e in ess):
        return float(scale)
    ess = np.asarray(ess, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rule = np.where(ess > ndim, 1 / (1 - np.sqrt(ndim / ess)), np.inf)
    return np.minimum(np.maximum(scale, rule), MAX_PIECE_FACTOR * scale)


def volume_weights(masses: np.ndarray, scales, ndim: int) -> np.ndarray:
    """Piece weights proportional to ``mass_k * scale_k^ndim`` (normalised)."""
    m = np.asarray(masses, dtype=float)
    logw = np.log(m) + ndim * np.log(np.broadcast_to(np.asarray(scales, dtype=float), m.shape))
    w = np.exp(logw - np.max(logw))
    return w / w.sum()


def log_peak(masses: np.ndarray, scales, ndim: int) -> float:
    """``log max P / q`` of perfect pieces widened by ``scales`` and mixed by :func:`volume_weights`.

    ``log sum_k mass_k scale_k^ndim``: ``ndim log(scale)`` for one scale.
    """
    m = np.asarray(masses, dtype=float)
    s = np.broadcast_to(np.asarray(scales, dtype=float), m.shape)
    logs = np.log(m) + ndim * np.log(s)
    top = np.max(logs)
    return float(top + np.log(np.sum(np.exp(logs - top))))


def perfect_ess(masses: np.ndarray, scales, ndim: int) -> float:
    """ESS per draw of perfect pieces widened by ``scales`` and mixed by :func:`volume_weights`.

    In piece ``k``'s slab the weight is ``(mass_k / W_k)`` times a perfect
    widened flow's, so ``E[w^2] = sum_k mass_k^2 / W_k / f(scale_k)`` with
    ``f`` :func:`~flowprior.workflows.lowcheck.perfect_ess_fraction`; one scale gives
    ``f(scale)``.
    """
    m = np.asarray(masses, dtype=float)
    s = np.broadcast_to(np.asarray(scales, dtype=float), m.shape)
    w = volume_weights(m, s, ndim)
    f = np.array([perfect_ess_fraction(float(x), ndim) for x in s])
    return float(1 / np.sum(m[m > 0] ** 2 / w[m > 0] / f[m > 0]))


def memberships(draws: dict, flow) -> np.ndarray:
    """Each draw's share in each piece of ``flow``, shape (n, n_pieces).

    With slabs a draw belongs to the piece whose slab holds its first cube
    coordinate (one-hot rows).  A bijective flow (``transform="rosenblatt"``)
    has no slabs: a draw's shares are the pieces' responsibilities at it,
    ``W_k q_k(u) / q(u)``.
    """
    if flow.bijective:
        return flow.responsibilities(np.asarray(draws["u"], dtype=float))
    k = slab_of(np.asarray(draws["v"])[:, 0], np.cumsum(flow.weights_))
    return np.eye(len(flow.weights_))[k]


def check_masses(draws: dict, flow, floor: np.ndarray) -> np.ndarray | None:
    """Each piece's share of the posterior, from the check's importance weights.

    A draw's weight ``P / q`` shared among the pieces by :func:`memberships`
    (the draws in piece ``k``'s slab come from that piece), summed over all
    draws' weights, estimates ``int P W_k q_k / q``: the piece's mass.  Each
    is kept at least ``MASS_FLOOR`` times ``floor`` (the low run's masses);
    None when no draw had positive weight.
    """
    logl = np.asarray(draws["logl"], dtype=float)
    if not np.isfinite(logl).any():
        return None
    w = np.exp(logl - np.max(logl))
    m = w @ memberships(draws, flow) / w.sum()
    m = np.maximum(m, MASS_FLOOR * np.asarray(floor, dtype=float))
    return m / m.sum()
