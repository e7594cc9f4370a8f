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
  its importance weights (one population Monte Carlo step), and
  :func:`redraw` turns the check's draws into draws of the re-weighted
  prior for dynesty's live points.
"""

from __future__ import annotations

import numpy as np

from flowprior.flows.base import slab_left, slab_of
from flowprior.workflows.checked import evaluate_in_cube
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


def redraw(draws: dict, old, new, like, rng: np.random.Generator, pool=None) -> tuple[dict, int]:
    """Draws of ``new``'s cube made from draws of ``old``'s (the same pieces, other weights).

    A draw is given a piece (its slab's; for a bijective flow, one drawn
    from its responsibilities, so that it is a draw of that piece), keeps
    its ``u`` and moves to where ``new`` maps it from its piece: the same
    place in ``k``'s new slab, or ``new.inverse_transform(u)``; its
    log-likelihood changes by ``log q_old(u) - log q_new(u)``.
    Piece counts are drawn from the new weights, and pieces with too few
    old draws get fresh ones (each a likelihood call), so the result is as
    many independent draws of ``new`` as ``draws`` held.

    Returns the new draws and the likelihood calls made.
    """
    v, u, logl = (np.asarray(draws[key], dtype=float) for key in ("v", "u", "logl"))
    n, ndim = v.shape
    derived = np.asarray(draws.get("derived", np.empty((n, 0))), dtype=float)
    piece = _pieces(memberships(draws, old), old.bijective, rng)
    counts = rng.multinomial(n, np.asarray(new.weights_))
    out_v, out_u, out_l, out_d, fresh_v = [], [], [], [], []
    for k, c in enumerate(counts):
        mine = np.flatnonzero(piece == k)[:c]
        out_v.append(_moved(v[mine], u[mine], k, old, new))
        out_u.append(u[mine])
        out_d.append(derived[mine])
        lk = logl[mine].copy()
        ok = np.isfinite(lk)
        if ok.any():
            lk[ok] += old.log_prob(u[mine][ok]) - new.log_prob(u[mine][ok])
        out_l.append(lk)
        if c > len(mine):
            fresh_v.append(_fresh(new, k, c - len(mine), ndim, rng))
    calls = 0
    if fresh_v:
        vf = np.concatenate(fresh_v)
        uf = np.asarray(new(vf), dtype=float)
        lf, df, calls = evaluate_in_cube(like, uf, pool)
        out_v.append(vf)
        out_u.append(uf)
        out_l.append(lf)
        out_d.append(df)
    order = rng.permutation(n)
    moved = {"v": out_v, "u": out_u, "logl": out_l, **({"derived": out_d} if "derived" in draws else {})}
    return {key: np.concatenate(parts)[order] for key, parts in moved.items()}, calls


def _pieces(share: np.ndarray, draw: bool, rng: np.random.Generator) -> np.ndarray:
    """Each draw's piece: its one-hot row's, or (``draw``) one drawn from its responsibilities."""
    if not draw:
        return np.argmax(share, axis=1)
    picked = (rng.uniform(size=(len(share), 1)) > np.cumsum(share, axis=1)).sum(axis=1)
    return np.minimum(picked, share.shape[1] - 1)


def _moved(v: np.ndarray, u: np.ndarray, k: int, old, new) -> np.ndarray:
    """The cube points of ``new`` that map to ``u``, draws of piece ``k`` at ``v`` in ``old``'s cube."""
    if new.bijective:
        return new.inverse_transform(u) if len(u) else v.copy()
    left_old, left_new = slab_left(np.cumsum(old.weights_)), slab_left(np.cumsum(new.weights_))
    out = v.copy()
    out[:, 0] = left_new[k] + new.weights_[k] * np.clip((v[:, 0] - left_old[k]) / old.weights_[k], 0.0, 1.0)
    return out


def _fresh(new, k: int, m: int, ndim: int, rng: np.random.Generator) -> np.ndarray:
    """``m`` cube points of ``new`` whose images are independent draws of its piece ``k``."""
    if new.bijective:
        alone = np.zeros(len(new.weights_))
        alone[k] = 1.0
        return new.inverse_transform(new.reweighted(alone).sample(m, seed=rng))
    v = rng.uniform(size=(m, ndim))
    v[:, 0] = slab_left(np.cumsum(new.weights_))[k] + new.weights_[k] * v[:, 0]
    return v
