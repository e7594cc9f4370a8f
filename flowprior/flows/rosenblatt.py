"""A continuous, bijective prior transform for a mixture of autoregressive flows (the Rosenblatt transform).

The slab transform of a piecewise flow spends the first cube coordinate on
choosing a piece, so every piece covers the whole cube and the map is
many-to-one.  When every piece's transforms share one variable order (the
natural order ``0, 1, ..., d-1``), the mixture ``q = sum_k W_k q_k`` has
conditional CDFs that the pieces give in closed form:

    F(x_i | x_<i) = sum_k r_k(x_<i) F_k(x_i | x_<i),   r_k ∝ W_k q_k(x_<i),

where ``q_k(x_<i)`` is piece ``k``'s marginal of the leading coordinates
(an autoregressive flow gives it as the product of its first conditionals)
and ``F_k(x_i | x_<i) = Phi(e_i)``, ``e`` being the piece's standard-normal
base coordinates (``x -> e`` is lower triangular).  ``u_i = F(x_i | x_<i)``
maps the mixture's samples to uniform ones and back: each step is a 1-D
monotone root find, bracketed by the pieces' own quantiles and solved by
Newton steps safeguarded by bisection.  Nearby ``u`` map to nearby points
and the pushforward of the cube is exactly ``q``.

The kernel walks the coordinates once.  At coordinate ``i`` it evaluates,
for every piece and transform, the hidden units that coordinates ``< i``
make ready (each unit once per point, as :mod:`flowprior.flows.fast` does)
and the transform's parameters for coordinate ``i``; the root find then only
composes 1-D monotone maps.

References
----------
Rosenblatt, "Remarks on a multivariate transformation", Ann. Math. Statist.
23, 470 (1952).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from flowprior.flows import links
from flowprior.flows.fast import FastFlow, outputs, univariate, univariate_inverse
from flowprior.flows.spaces import INTERVAL, INTERVAL_B

LOG_2PI = math.log(2.0 * math.pi)
LOG_2B = math.log(2.0 * INTERVAL_B)
#: Relative width at which a root's bracket counts as closed (the round trip is then exact to ~1e-13).
TOL = 1e-14
#: Most root-finding steps per coordinate; bisection alone closes a bracket of 80 in fewer.
MAX_STEPS = 200
#: Responsibility below which a piece is left out of the root find (it moves the CDF by less than
#: rounding); it still enters the density and the later responsibilities.
R_CUT = 1e-17


def prior_transform(flow: FastFlow, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Rows of the unit cube to parameters, with their log-density; the flag is False if ``u`` left [0, 1]."""
    x, logq = np.empty_like(u), np.empty(len(u))
    ok = _rosenblatt(u, x, logq, True, *flow.args)
    return x, logq, ok


def inverse_transform(flow: FastFlow, x: np.ndarray) -> np.ndarray:
    """Parameters (strictly inside the box) to the unit cube: the exact inverse of :func:`prior_transform`."""
    u, logq = np.empty_like(x), np.empty(len(x))
    _rosenblatt(x, u, logq, False, *flow.args)
    return u


def check_order(pieces: list, ndim: int) -> None:
    """Raise a ``ValueError`` unless every transform of every piece follows the natural variable order."""
    natural = np.arange(ndim)
    for k, piece in enumerate(pieces):
        for t, transform in enumerate(piece.transform.transforms):
            order = getattr(transform, "order", None)
            if order is not None and not np.array_equal(order.cpu().numpy(), natural):
                raise ValueError(
                    f"transform: 'rosenblatt' needs pieces whose transforms share the variable order {list(natural)}; "
                    f"piece {k}'s transform {t} has order {order.tolist()}")


@njit(cache=True)
def _advance(g, p, xin, h, done, w, b, woff, boff, nin, nlayers, ready):
    """Evaluate transform ``g``'s hidden units that inputs before position ``p`` make ready."""
    for l in range(nlayers[g] - 1):
        stop = ready[g, l, p]
        wo, bo, ni = woff[g, l], boff[g, l], nin[g, l]
        nprev = ni if l == 0 else done[l - 1]
        for j in range(done[l], stop):
            acc = b[bo + j]
            for i in range(nprev):
                acc += w[wo + j * ni + i] * (xin[i] if l == 0 else h[l - 1, i])
            h[l, j] = acc if acc > 0.0 else 0.0
        if stop > done[l]:
            done[l] = stop


@njit(cache=True)
def _piece_cdf(gv, k, i, Y, E, PHI, T, kinds, mean, chol, bshift, btril, bins, kn):
    """Piece ``k``'s conditional CDF of coordinate ``i`` at real value ``gv`` and its log-density there.

    Writes the chain's values at ``i`` into ``Y`` (each transform's input and
    output) and ``E`` (standard-normal base), which later coordinates read.
    """
    acc = gv - mean[k, i]
    for j in range(i):
        acc -= chol[k, i, j] * Y[k, 0, j]
    y = acc / chol[k, i, i]
    lp = -math.log(chol[k, i, i])
    Y[k, 0, i] = y
    for t in range(T):
        y, ladj = univariate(PHI[k, t], bins, y, kn)
        lp += ladj
        Y[k, t + 1, i] = y
    if kinds[i] == INTERVAL:
        E[k, i] = 0.0
        if abs(y) > INTERVAL_B:
            return (0.0 if y < 0.0 else 1.0), -math.inf
        return (y + INTERVAL_B) / (2.0 * INTERVAL_B), lp - LOG_2B
    acc = y - bshift[k, i]
    for j in range(i):
        if kinds[j] != INTERVAL:
            acc -= btril[k, i, j] * E[k, j]
    e = acc / btril[k, i, i]
    E[k, i] = e
    return 0.5 * math.erfc(-e / math.sqrt(2.0)), lp - 0.5 * e * e - math.log(btril[k, i, i]) - 0.5 * LOG_2PI


@njit(cache=True)
def _piece_quantile(c, k, i, Y, E, PHI, T, kinds, mean, chol, bshift, btril, bins, kn):
    """The real value at which piece ``k``'s conditional CDF of coordinate ``i`` is ``c``."""
    if kinds[i] == INTERVAL:
        y = INTERVAL_B * (2.0 * c - 1.0)
    else:
        y = bshift[k, i] + btril[k, i, i] * links.ndtri(c)
        for j in range(i):
            if kinds[j] != INTERVAL:
                y += btril[k, i, j] * E[k, j]
    for t in range(T - 1, -1, -1):
        y = univariate_inverse(PHI[k, t], bins, y, kn)
    gv = mean[k, i] + chol[k, i, i] * y
    for j in range(i):
        gv += chol[k, i, j] * Y[k, 0, j]
    return gv


@njit(cache=True)
def _mixture(gv, i, r, Y, E, PHI, T, kinds, mean, chol, bshift, btril, bins, kn, lps):
    """The mixture's conditional CDF of coordinate ``i`` at ``gv`` and its density; pieces' log-densities to ``lps``."""
    c, dens = 0.0, 0.0
    for k in range(r.shape[0]):
        if r[k] > 0.0:
            ck, lp = _piece_cdf(gv, k, i, Y, E, PHI, T, kinds, mean, chol, bshift, btril, bins, kn)
            c += r[k] * ck
            dens += r[k] * math.exp(lp)
            lps[k] = lp
        else:
            lps[k] = -math.inf
    return c, dens


@njit(cache=True)
def _solve(ui, i, r, Y, E, PHI, T, kinds, mean, chol, bshift, btril, bins, kn, lps):
    """The real value where the mixture's conditional CDF of coordinate ``i`` reaches ``ui``.

    Each piece's own quantile at ``ui`` brackets the root: the mixture's CDF is
    a weighted mean of CDFs that each pass ``ui`` there.  ``r`` holds the
    responsibilities, zero for pieces left out.
    """
    lo, hi, gv, best = math.inf, -math.inf, 0.0, -1.0
    for k in range(r.shape[0]):
        if r[k] > 0.0:
            gk = _piece_quantile(ui, k, i, Y, E, PHI, T, kinds, mean, chol, bshift, btril, bins, kn)
            lo, hi = min(lo, gk), max(hi, gk)
            if r[k] > best:  # Newton starts at the most responsible piece's quantile
                gv, best = gk, r[k]
    for _ in range(MAX_STEPS):
        if not hi - lo > TOL * (1.0 + abs(gv)):
            break
        c, dens = _mixture(gv, i, r, Y, E, PHI, T, kinds, mean, chol, bshift, btril, bins, kn, lps)
        f = c - ui
        if f == 0.0:
            break
        if f < 0.0:
            lo = gv
        else:
            hi = gv
        step = gv - f / dens if dens > 0.0 else math.nan
        if not lo < step < hi:
            step = 0.5 * (lo + hi)
        converged = abs(step - gv) <= TOL * (1.0 + abs(gv))
        gv = step
        if converged:
            break
    return gv


@njit(cache=True)
def _rosenblatt(src, out, logq, forward, w, b, woff, boff, nin, nout, nlayers, ready, pos2feat, n_transforms,
                kinds, lo, hi, mean, chol, logw, cumw, hmax, bshift, btril, bins):
    """Cube -> parameters (``forward``) or parameters -> cube, row by row; ``logq`` gets the log-density.

    Returns False (and stops) where a forward row leaves [0, 1].
    """
    n, d = src.shape
    K, T = logw.shape[0], n_transforms
    lmax = max(woff.shape[1] - 1, 1)
    H = np.empty((K * T, lmax, hmax))
    done = np.zeros((K * T, lmax), dtype=np.int64)
    PHI = np.empty((K, T, 3 * bins + 2))
    kn = np.empty(3 * bins + 3)
    Y = np.zeros((K, T + 1, d))
    E = np.zeros((K, d))
    lw, r, lps, rcut = np.empty(K), np.empty(K), np.empty(K), np.empty(K)
    for row in range(n):
        if forward:
            for i in range(d):
                if not (src[row, i] >= 0.0 and src[row, i] <= 1.0):
                    return False
        Y[:] = 0.0
        E[:] = 0.0
        done[:] = 0
        lw[:] = logw
        ljac = 0.0
        for i in range(d):
            for k in range(K):
                for t in range(T):
                    g = k * T + t
                    _advance(g, i, Y[k, t], H[g], done[g], w, b, woff, boff, nin, nlayers, ready)
                    L = nlayers[g] - 1
                    outputs(i, Y[k, t], H[g], L, nin[g, L], nin[g, L] if L == 0 else done[g, L - 1], g, w, b,
                             woff, boff, bins, PHI[k, t])
            top = lw.max()
            for k in range(K):
                r[k] = math.exp(lw[k] - top)
            r /= r.sum()
            if forward:
                for k in range(K):
                    rcut[k] = r[k] if r[k] > R_CUT else 0.0
                gv = _solve(src[row, i], i, rcut, Y, E, PHI, T, kinds, mean, chol, bshift, btril, bins, kn, lps)
                xv = links.bound(gv, kinds[i], lo[i], hi[i])
                ld = links.unbound(xv, kinds[i], lo[i], hi[i])[1]  # at the point returned, clipped into the box
            else:
                xv = src[row, i]
                gv, ld = links.unbound(xv, kinds[i], lo[i], hi[i])
            c, _ = _mixture(gv, i, r, Y, E, PHI, T, kinds, mean, chol, bshift, btril, bins, kn, lps)
            out[row, i] = xv if forward else min(max(c, 0.0), 1.0)
            ljac += ld
            for k in range(K):
                lw[k] += lps[k]
        top = lw.max()
        logq[row] = top + math.log(np.exp(lw - top).sum()) + ljac if top > -math.inf else -math.inf
    return True
