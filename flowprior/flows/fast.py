"""Compiled per-point inference for trained masked autoregressive flows (affine or spline).

Samplers call a prior transform one point at a time.  A torch call costs
milliseconds there, so trained MAFs are exported to flat NumPy arrays and
evaluated by the numba kernels below (microseconds per point).  torch stays
for training and for architectures without an export.

The sampling direction of a MAF is sequential: feature ``i`` needs the
features before it.  Rather than rerunning the whole masked network once per
feature (``d`` full passes), the kernels sort each hidden layer's units by the
first step at which all their inputs are known and evaluate every unit
exactly once, so the inverse costs one network pass, like the density.

A mixture of flows ("pieces", for piecewise flows) is stored in the same
buffers; a single MAF is the one-piece case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from flowprior.flows import links, splines
from flowprior.flows.spaces import INTERVAL, INTERVAL_B

LOG_SLOPE = math.log(1e-3)  # zuko's MonotonicAffineTransform default slope
LOG_2PI = math.log(2.0 * math.pi)
LOG_2B = math.log(2.0 * INTERVAL_B)


@dataclass
class FastFlow:
    """Flat arrays holding one or more exported MAFs (pieces) and their spaces.

    Transform ``t`` of piece ``k`` is global transform ``k * n_transforms + t``;
    layer ``l`` of transform ``g`` has weights ``w[woff[g, l]:]`` (row-major,
    ``nout[g, l]`` by ``nin[g, l]``) and biases ``b[boff[g, l]:]``.
    """

    w: np.ndarray
    b: np.ndarray
    woff: np.ndarray
    boff: np.ndarray
    nin: np.ndarray
    nout: np.ndarray
    nlayers: np.ndarray
    ready: np.ndarray  # (G, Lmax, d): units of layer l needed to emit position p
    pos2feat: np.ndarray  # (G, d)
    n_transforms: int
    kinds: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    mean: np.ndarray  # (K, d)
    chol: np.ndarray  # (K, d, d) lower-triangular
    logw: np.ndarray  # (K,)
    cumw: np.ndarray  # (K,)
    hmax: int
    bshift: np.ndarray = None  # (K, d) mean of each piece's Gaussian base
    btril: np.ndarray = None  # (K, d, d) its lower-triangular Cholesky factor (scale * I when broadened)
    bins: int = 0  # spline bins of every transform (0: zuko's monotonic affine map)

    @property
    def args(self) -> tuple:
        return (
            self.w, self.b, self.woff, self.boff, self.nin, self.nout, self.nlayers,
            self.ready, self.pos2feat, self.n_transforms, self.kinds, self.lo, self.hi,
            self.mean, self.chol, self.logw, self.cumw, self.hmax, self.bshift, self.btril, self.bins,
        )

    def prior_transform(self, u: np.ndarray) -> tuple[np.ndarray, bool]:
        """Map rows of ``u`` to parameters; the flag is False if ``u`` left [0, 1]."""
        x = np.empty_like(u)
        ok = _prior_transform(u, x, *self.args)
        return x, ok

    def prior_transform_log_prob(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """Parameters and their log-density under the (mixture) flow."""
        x = np.empty_like(u)
        ok = _prior_transform(u, x, *self.args)
        return x, _log_prob(x, *self.args), ok

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """Log-density; ``-inf`` outside the box."""
        return _log_prob(x, *self.args)

    def to_base(self, x: np.ndarray, piece: np.ndarray) -> np.ndarray:
        """Standard-normal coordinates of ``x`` under the given pieces (the base's affine map undone)."""
        z = np.empty_like(x)
        _to_base(x, piece, z, *self.args)
        return z


# --------------------------------------------------------------------------- export


def _unit_stages(masks: list[np.ndarray], pos_of_feat: np.ndarray) -> list[np.ndarray]:
    """Stage of every hidden unit: 1 + the last input position it depends on (0: none)."""
    stage = pos_of_feat + 1
    stages = []
    for mask in masks[:-1]:
        dep = np.where(mask, stage[None, :], 0)
        stage = dep.max(axis=1) if dep.shape[1] else np.zeros(mask.shape[0], dtype=np.int64)
        stages.append(stage)
    return stages


def _export_transform(transform, d: int, P: int) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, np.ndarray]:
    """Weights, biases, per-layer readiness and feature order of one zuko transform with ``P`` outputs per feature."""
    from zuko.nn import MaskedLinear

    if hasattr(transform, "hyper"):
        layers = [m for m in transform.hyper if isinstance(m, MaskedLinear)]
        ws = [(m.weight * m.mask).detach().cpu().double().numpy() for m in layers]
        bs = [m.bias.detach().cpu().double().numpy() for m in layers]
        masks = [m.mask.cpu().numpy().astype(bool) for m in layers]
        order = transform.order.cpu().numpy()
    else:  # one feature: zuko's element-wise transform holds constant parameters
        params = [p.detach().cpu().double().numpy().reshape(d, -1) for p in transform.phi]
        ws = [np.zeros((P * d, d))]
        bs = [np.concatenate(params, axis=1).reshape(-1)]
        masks = [np.zeros((P * d, d), dtype=bool)]
        order = np.arange(d)
    # Outputs P f .. P f + P - 1 hold feature f's parameters; inputs reach an
    # output only through lower positions, so positions follow the order.
    pos2feat = np.argsort(order, kind="stable")
    pos_of_feat = np.empty(d, dtype=np.int64)
    pos_of_feat[pos2feat] = np.arange(d)
    stages = _unit_stages(masks, pos_of_feat)
    # Sort every hidden layer by stage and permute weights to match.
    perm_prev = None
    for l, stage in enumerate(stages):
        perm = np.argsort(stage, kind="stable")
        ws[l] = ws[l][perm]
        bs[l] = bs[l][perm]
        if perm_prev is not None:
            ws[l] = ws[l][:, perm_prev]
        stages[l] = stage[perm]
        perm_prev = perm
    if perm_prev is not None:
        ws[-1] = ws[-1][:, perm_prev]
    ready = np.zeros((max(len(stages), 1), d), dtype=np.int64)
    for l, stage in enumerate(stages):
        ready[l] = np.searchsorted(stage, np.arange(d), side="right")
    return ws, bs, ready, pos2feat


def export(pieces: list, spaces: list, weights: np.ndarray, scale=1.0, base=None, bins: int = 0) -> FastFlow:
    """Export trained zuko MAFs or NSFs (one per piece) with their spaces, piece weights and Gaussian base.

    Piece ``k``'s base is ``N(shift_k, scale_k^2 T_k T_k^T)``, where ``base``
    holds ``(shift, T)`` of shapes (K, d) and (K, d, d) (default: 0 and I).
    ``bins`` is the splines' bin count (0 for affine transforms).
    """
    d, bins = len(spaces[0].lo), int(bins)
    wlist, blist, readies, orders, layout = [], [], [], [], []
    for flow in pieces:
        for transform in flow.transform.transforms:
            ws, bs, ready, pos2feat = _export_transform(transform, d, splines.n_params(bins))
            layout.append([(w.shape[0], w.shape[1]) for w in ws])
            wlist.append(ws)
            blist.append(bs)
            readies.append(ready)
            orders.append(pos2feat)
    n_transforms = len(pieces[0].transform.transforms)
    G = len(layout)
    lmax = max(len(x) for x in layout)
    woff = np.zeros((G, lmax), dtype=np.int64)
    boff = np.zeros((G, lmax), dtype=np.int64)
    nin = np.zeros((G, lmax), dtype=np.int64)
    nout = np.zeros((G, lmax), dtype=np.int64)
    ready = np.zeros((G, max(lmax - 1, 1), d), dtype=np.int64)
    nlayers = np.array([len(x) for x in layout], dtype=np.int64)
    flat_w, flat_b, wo, bo = [], [], 0, 0
    for g in range(G):
        for l, (w, b) in enumerate(zip(wlist[g], blist[g])):
            woff[g, l], boff[g, l] = wo, bo
            nout[g, l], nin[g, l] = w.shape
            flat_w.append(w.reshape(-1))
            flat_b.append(b)
            wo += w.size
            bo += b.size
        ready[g, : readies[g].shape[0]] = readies[g]
    hmax = int(max([1] + [nout[g, l] for g in range(G) for l in range(nlayers[g] - 1)]))
    weights = np.asarray(weights, dtype=float)
    weights = weights / weights.sum()
    with np.errstate(divide="ignore"):  # a zero-weight piece (FlowDensity.reweighted) has log-weight -inf
        logw = np.log(weights)
    return FastFlow(
        w=np.concatenate(flat_w), b=np.concatenate(flat_b), woff=woff, boff=boff, nin=nin, nout=nout,
        nlayers=nlayers, ready=ready, pos2feat=np.array(orders, dtype=np.int64), n_transforms=n_transforms,
        kinds=spaces[0].kinds, lo=spaces[0].lo.copy(), hi=spaces[0].hi.copy(),
        mean=np.array([s.mean for s in spaces]), chol=np.array([s.chol for s in spaces]),
        logw=logw, cumw=np.cumsum(weights), hmax=hmax,
        **_base_arrays(len(pieces), d, scale, base), bins=bins,
    )


def _base_arrays(n_pieces: int, d: int, scale, base) -> dict:
    """``bshift`` and ``btril`` of :class:`FastFlow` from per-piece scales and an optional ``(shift, T)``."""
    scale = np.broadcast_to(np.asarray(scale, dtype=float), (n_pieces,))
    shift, tril = (np.zeros((n_pieces, d)), np.broadcast_to(np.eye(d), (n_pieces, d, d))) if base is None else base
    return {"bshift": np.array(shift, dtype=float), "btril": scale[:, None, None] * np.asarray(tril, dtype=float)}


# --------------------------------------------------------------------------- kernels


@njit(cache=True)
def _log_scale(raw):
    return raw / (1.0 + abs(raw / LOG_SLOPE))


@njit(cache=True)
def _forward_transform(x, z, g, w, b, woff, boff, nin, nout, nlayers, h, bins, phi, kn):
    """Data -> base through transform g (one masked-network pass). Returns its log-Jacobian."""
    d = x.shape[0]
    nl = nlayers[g]
    for l in range(nl - 1):
        wo, bo, ni, no = woff[g, l], boff[g, l], nin[g, l], nout[g, l]
        for j in range(no):
            acc = b[bo + j]
            if l == 0:
                for i in range(ni):
                    acc += w[wo + j * ni + i] * x[i]
            else:
                for i in range(ni):
                    acc += w[wo + j * ni + i] * h[l - 1, i]
            h[l, j] = acc if acc > 0.0 else 0.0
    L = nl - 1
    sa = 0.0
    for f in range(d):
        outputs(f, x, h, L, nin[g, L], nin[g, L], g, w, b, woff, boff, bins, phi)
        y, ladj = univariate(phi, bins, x[f], kn)
        z[f] = y
        sa += ladj
    return sa


@njit(cache=True)
def outputs(f, x, h, L, ni, n_in, g, w, b, woff, boff, bins, phi):
    """The last layer's raw outputs for feature ``f`` (``ni`` inputs, the first ``n_in`` known) into ``phi``.

    Output ``P f + j`` is parameter ``j`` of feature ``f`` (``P`` = 2 for
    an affine map: shift and log-scale; ``3 bins - 1`` for a spline).
    """
    P = 3 * bins - 1 if bins else 2
    wo, bo = woff[g, L], boff[g, L]
    for j in range(P):
        acc = b[bo + P * f + j]
        for i in range(n_in):
            hi = x[i] if L == 0 else h[L - 1, i]
            acc += w[wo + (P * f + j) * ni + i] * hi
        phi[j] = acc


@njit(cache=True)
def univariate(phi, bins, v, kn):
    """``(y, log dy/dv)`` of one feature's map: zuko's monotonic affine, or its rational-quadratic spline."""
    if bins:
        return splines.forward(phi, bins, v, kn)
    a = _log_scale(phi[1])
    return v * math.exp(a) + phi[0], a


@njit(cache=True)
def univariate_inverse(phi, bins, y, kn):
    """The inverse of :func:`univariate`."""
    if bins:
        return splines.inverse(phi, bins, y, kn)
    return (y - phi[0]) * math.exp(-_log_scale(phi[1]))


@njit(cache=True)
def _inverse_transform(z, x, g, w, b, woff, boff, nin, nout, nlayers, ready, pos2feat, h, done, bins, phi, kn):
    """Base -> data through transform g, evaluating each hidden unit once."""
    d = z.shape[0]
    nl = nlayers[g]
    L = nl - 1
    for i in range(d):
        x[i] = 0.0
    for l in range(L):
        done[l] = 0
    for p in range(d):
        for l in range(L):
            stop = ready[g, l, p]
            wo, bo, ni = woff[g, l], boff[g, l], nin[g, l]
            nprev = ni if l == 0 else done[l - 1]
            for j in range(done[l], stop):
                acc = b[bo + j]
                if l == 0:
                    for i in range(nprev):
                        acc += w[wo + j * ni + i] * x[i]
                else:
                    for i in range(nprev):
                        acc += w[wo + j * ni + i] * h[l - 1, i]
                h[l, j] = acc if acc > 0.0 else 0.0
            if stop > done[l]:
                done[l] = stop
        f = pos2feat[g, p]
        outputs(f, x, h, L, nin[g, L], nin[g, L] if L == 0 else done[L - 1], g, w, b, woff, boff, bins, phi)
        x[f] = univariate_inverse(phi, bins, z[f], kn)


@njit(cache=True)
def _piece_log_prob(xrow, k, zrow, yrow, tmp, h, w, b, woff, boff, nin, nout, nlayers, n_transforms,
                    kinds, lo, hi, mean, chol, bshift, btril, bins, phi, kn):
    d = xrow.shape[0]
    lp = 0.0
    for i in range(d):
        gv, ld = links.unbound(xrow[i], kinds[i], lo[i], hi[i])
        # Forward substitution: y = chol^-1 (g - mean).
        acc = gv - mean[k, i]
        for j in range(i):
            acc -= chol[k, i, j] * yrow[j]
        yrow[i] = acc / chol[k, i, i]
        lp += ld - math.log(chol[k, i, i])
    for t in range(n_transforms):
        g = k * n_transforms + t
        lp += _forward_transform(yrow, tmp, g, w, b, woff, boff, nin, nout, nlayers, h, bins, phi, kn)
        for i in range(d):
            yrow[i] = tmp[i]
    # The base N(bshift_k, T T^T): forward substitution z = T^-1 (y - bshift_k).  An interval
    # coordinate's base is uniform on [-B, B]; its z is the standard normal with the same CDF.
    for i in range(d):
        if kinds[i] == INTERVAL:
            zrow[i] = links.ndtri(min(max((yrow[i] + INTERVAL_B) / (2.0 * INTERVAL_B), 0.0), 1.0))
            lp += -LOG_2B if abs(yrow[i]) <= INTERVAL_B else -math.inf
            continue
        acc = yrow[i] - bshift[k, i]
        for j in range(i):
            if kinds[j] != INTERVAL:
                acc -= btril[k, i, j] * zrow[j]
        zrow[i] = acc / btril[k, i, i]
        lp += -0.5 * zrow[i] * zrow[i] - math.log(btril[k, i, i]) - 0.5 * LOG_2PI
    return lp


@njit(cache=True)
def _log_prob(x, w, b, woff, boff, nin, nout, nlayers, ready, pos2feat, n_transforms, kinds, lo, hi,
              mean, chol, logw, cumw, hmax, bshift, btril, bins):
    n, d = x.shape
    K = logw.shape[0]
    out = np.empty(n)
    h = np.empty((max(woff.shape[1] - 1, 1), hmax))
    phi, kn = np.empty(3 * bins + 2), np.empty(3 * bins + 3)
    zrow = np.empty(d)
    yrow = np.empty(d)
    tmp = np.empty(d)
    lps = np.empty(K)
    for r in range(n):
        inside = True
        for i in range(d):
            v = x[r, i]
            if not (v > lo[i] and v < hi[i]):  # NaN fails too
                inside = False
        if not inside:
            out[r] = -np.inf
            continue
        m = -np.inf
        for k in range(K):
            lps[k] = logw[k] + _piece_log_prob(x[r], k, zrow, yrow, tmp, h, w, b, woff, boff, nin, nout,
                                               nlayers, n_transforms, kinds, lo, hi, mean, chol, bshift, btril, bins, phi, kn)
            if lps[k] > m:
                m = lps[k]
        if m == -np.inf:
            out[r] = m
            continue
        s = 0.0
        for k in range(K):
            s += math.exp(lps[k] - m)
        out[r] = m + math.log(s)
    return out


@njit(cache=True)
def _to_base(x, piece, z, w, b, woff, boff, nin, nout, nlayers, ready, pos2feat, n_transforms, kinds, lo,
             hi, mean, chol, logw, cumw, hmax, bshift, btril, bins):
    n, d = x.shape
    h = np.empty((max(woff.shape[1] - 1, 1), hmax))
    phi, kn = np.empty(3 * bins + 2), np.empty(3 * bins + 3)
    yrow = np.empty(d)
    tmp = np.empty(d)
    for r in range(n):
        _piece_log_prob(x[r], piece[r], z[r], yrow, tmp, h, w, b, woff, boff, nin, nout, nlayers,
                        n_transforms, kinds, lo, hi, mean, chol, bshift, btril, bins, phi, kn)


@njit(cache=True)
def _prior_transform(u, x, w, b, woff, boff, nin, nout, nlayers, ready, pos2feat, n_transforms, kinds, lo,
                     hi, mean, chol, logw, cumw, hmax, bshift, btril, bins):
    """Rows of the unit cube -> parameters. Returns False (and stops) on u outside [0, 1]."""
    n, d = u.shape
    K = logw.shape[0]
    L = max(woff.shape[1] - 1, 1)
    h = np.empty((L, hmax))
    phi, kn = np.empty(3 * bins + 2), np.empty(3 * bins + 3)
    done = np.zeros(L, dtype=np.int64)
    zrow = np.empty(d)
    yrow = np.empty(d)
    tmp = np.empty(d)
    for r in range(n):
        for i in range(d):
            if not (u[r, i] >= 0.0 and u[r, i] <= 1.0):
                return False
        # Piecewise: the first coordinate picks the piece by cumulative weight
        # and is rescaled within that piece's slab; no random numbers.
        u0 = u[r, 0]
        k = 0
        while k < K - 1 and u0 >= cumw[k]:
            k += 1
        left = cumw[k - 1] if k > 0 else 0.0
        width = cumw[k] - left
        if K > 1:
            u0 = (u0 - left) / width if width > 0.0 else 0.5
            u0 = min(max(u0, 0.0), 1.0)
        for i in range(d):
            tmp[i] = u0 if i == 0 else u[r, i]
            yrow[i] = links.ndtri(tmp[i])
        for i in range(d):  # the base's affine map z = bshift_k + T_k y; an interval's uniform base
            if kinds[i] == INTERVAL:
                zrow[i] = INTERVAL_B * (2.0 * tmp[i] - 1.0)
                continue
            acc = bshift[k, i]
            for j in range(i + 1):
                if kinds[j] != INTERVAL:
                    acc += btril[k, i, j] * yrow[j]
            zrow[i] = acc
        for t in range(n_transforms - 1, -1, -1):
            g = k * n_transforms + t
            _inverse_transform(zrow, yrow, g, w, b, woff, boff, nin, nout, nlayers, ready, pos2feat, h, done, bins,
                               phi, kn)
            for i in range(d):
                zrow[i] = yrow[i]
        for i in range(d):
            gv = mean[k, i]
            for j in range(i + 1):
                gv += chol[k, i, j] * zrow[j]
            x[r, i] = links.bound(gv, kinds[i], lo[i], hi[i])
    return True
