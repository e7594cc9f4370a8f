"""Compiled per-point inference for trained masked autoregressive flows.

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

from flowprior.flows.spaces import BOTH, LOWER, PROBIT, UPPER, Z_MAX

LOG_SLOPE = math.log(1e-3)  # zuko's MonotonicAffineTransform default slope
LOG_2PI = math.log(2.0 * math.pi)


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

    @property
    def args(self) -> tuple:
        return (
            self.w, self.b, self.woff, self.boff, self.nin, self.nout, self.nlayers,
            self.ready, self.pos2feat, self.n_transforms, self.kinds, self.lo, self.hi,
            self.mean, self.chol, self.logw, self.cumw, self.hmax, self.bshift, self.btril,
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


def _export_transform(transform, d: int) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, np.ndarray]:
    """Weights, biases, per-layer readiness and feature order of one zuko MAF transform."""
    from zuko.nn import MaskedLinear

    if hasattr(transform, "hyper"):
        layers = [m for m in transform.hyper if isinstance(m, MaskedLinear)]
        ws = [(m.weight * m.mask).detach().cpu().double().numpy() for m in layers]
        bs = [m.bias.detach().cpu().double().numpy() for m in layers]
        masks = [m.mask.cpu().numpy().astype(bool) for m in layers]
        order = transform.order.cpu().numpy()
    else:  # one feature: zuko's element-wise transform holds constant parameters
        shift, scale = (p.detach().cpu().double().numpy() for p in transform.phi)
        ws = [np.zeros((2 * d, d))]
        bs = [np.stack([shift, scale], axis=-1).reshape(-1)]
        masks = [np.zeros((2 * d, d), dtype=bool)]
        order = np.arange(d)
    # Outputs (2f, 2f+1) hold (shift, log-scale) of feature f; inputs reach an
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


def export(pieces: list, spaces: list, weights: np.ndarray, scale=1.0, base=None) -> FastFlow:
    """Export trained zuko MAFs (one per piece) with their spaces, piece weights and Gaussian base.

    Piece ``k``'s base is ``N(shift_k, scale_k^2 T_k T_k^T)``, where ``base``
    holds ``(shift, T)`` of shapes (K, d) and (K, d, d) (default: 0 and I).
    """
    d = len(spaces[0].lo)
    wlist, blist, readies, orders, layout = [], [], [], [], []
    for flow in pieces:
        for transform in flow.transform.transforms:
            ws, bs, ready, pos2feat = _export_transform(transform, d)
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
        **_base_arrays(len(pieces), d, scale, base),
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
def _forward_transform(x, z, g, w, b, woff, boff, nin, nout, nlayers, h):
    """Data -> base through transform g (one masked-network pass). Returns sum log-scale."""
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
    wo, bo, ni = woff[g, L], boff[g, L], nin[g, L]
    sa = 0.0
    for f in range(d):
        shift = b[bo + 2 * f]
        raw = b[bo + 2 * f + 1]
        for i in range(ni):
            hi = x[i] if L == 0 else h[L - 1, i]
            shift += w[wo + 2 * f * ni + i] * hi
            raw += w[wo + (2 * f + 1) * ni + i] * hi
        a = _log_scale(raw)
        z[f] = x[f] * math.exp(a) + shift
        sa += a
    return sa


@njit(cache=True)
def _inverse_transform(z, x, g, w, b, woff, boff, nin, nout, nlayers, ready, pos2feat, h, done):
    """Base -> data through transform g, evaluating each hidden unit once. Returns sum log-scale."""
    d = z.shape[0]
    nl = nlayers[g]
    L = nl - 1
    for i in range(d):
        x[i] = 0.0
    for l in range(L):
        done[l] = 0
    sa = 0.0
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
        wo, bo, ni = woff[g, L], boff[g, L], nin[g, L]
        shift = b[bo + 2 * f]
        raw = b[bo + 2 * f + 1]
        n_in = ni if L == 0 else done[L - 1]
        for i in range(n_in):
            hi = x[i] if L == 0 else h[L - 1, i]
            shift += w[wo + 2 * f * ni + i] * hi
            raw += w[wo + (2 * f + 1) * ni + i] * hi
        a = _log_scale(raw)
        x[f] = (z[f] - shift) * math.exp(-a)
        sa += a
    return sa


@njit(cache=True)
def _bound(gv, kind, lo, hi):
    """Real coordinate -> box coordinate, clipped strictly inside the box."""
    if kind == BOTH:
        if gv >= 0.0:
            s = 1.0 / (1.0 + math.exp(-gv))
        else:
            e = math.exp(gv)
            s = e / (1.0 + e)
        xv = lo + (hi - lo) * s
    elif kind == PROBIT:
        xv = lo + (hi - lo) * 0.5 * math.erfc(-gv / math.sqrt(2.0))
    elif kind == LOWER:
        xv = lo + math.exp(min(gv, 709.0))
    elif kind == UPPER:
        xv = hi - math.exp(min(-gv, 709.0))
    else:
        xv = gv
    inner_lo = np.nextafter(lo, np.inf)
    inner_hi = np.nextafter(hi, -np.inf)
    if xv < inner_lo:
        xv = inner_lo
    if xv > inner_hi:
        xv = inner_hi
    return xv


@njit(cache=True)
def _unbound(xv, kind, lo, hi):
    """Box coordinate -> real coordinate and log|dg/dx| (caller checks the box)."""
    if kind == BOTH:
        a = math.log(xv - lo)
        c = math.log(hi - xv)
        return a - c, math.log(hi - lo) - a - c
    elif kind == PROBIT:
        z = _ndtri((xv - lo) / (hi - lo))
        return z, 0.5 * z * z + 0.5 * LOG_2PI - math.log(hi - lo)
    elif kind == LOWER:
        a = math.log(xv - lo)
        return a, -a
    elif kind == UPPER:
        c = math.log(hi - xv)
        return -c, -c
    return xv, 0.0


@njit(cache=True)
def _ndtri(p):
    """Inverse standard-normal CDF: Acklam's rational approximation and one Halley step."""
    if p <= 0.0:
        return -Z_MAX
    if p >= 1.0:
        return Z_MAX
    plow = 0.02425
    if p < plow:
        q = math.sqrt(-2.0 * math.log(p))
        x = (((((-7.784894002430293e-03 * q - 3.223964580411365e-01) * q - 2.400758277161838e00) * q
               - 2.549732539343734e00) * q + 4.374664141464968e00) * q + 2.938163982698783e00) / (
            (((7.784695709041462e-03 * q + 3.224671290700398e-01) * q + 2.445134137142996e00) * q
             + 3.754408661907416e00) * q + 1.0)
    elif p <= 1.0 - plow:
        q = p - 0.5
        r = q * q
        x = (((((-3.969683028665376e01 * r + 2.209460984245205e02) * r - 2.759285104469687e02) * r
               + 1.383577518672690e02) * r - 3.066479806614716e01) * r + 2.506628277459239e00) * q / (
            ((((-5.447609879822406e01 * r + 1.615858368580409e02) * r - 1.556989798598866e02) * r
              + 6.680131188771972e01) * r - 1.328068155288572e01) * r + 1.0)
    else:
        q = math.sqrt(-2.0 * math.log1p(-p))
        x = -(((((-7.784894002430293e-03 * q - 3.223964580411365e-01) * q - 2.400758277161838e00) * q
                - 2.549732539343734e00) * q + 4.374664141464968e00) * q + 2.938163982698783e00) / (
            (((7.784695709041462e-03 * q + 3.224671290700398e-01) * q + 2.445134137142996e00) * q
             + 3.754408661907416e00) * q + 1.0)
    # One Halley step against erfc brings the error to double precision;
    # Phi(x) - p is formed from whichever tail keeps it accurate.
    if x < 0.0:
        e = 0.5 * math.erfc(-x / math.sqrt(2.0)) - p
    else:
        e = (1.0 - p) - 0.5 * math.erfc(x / math.sqrt(2.0))
    if abs(x) < 37.0:  # beyond, exp(x^2 / 2) overflows and Acklam's 1e-9 is kept
        u = e * math.sqrt(2.0 * math.pi) * math.exp(0.5 * x * x)
        x = x - u / (1.0 + 0.5 * x * u)
    return max(-Z_MAX, min(Z_MAX, x))


@njit(cache=True)
def _piece_log_prob(xrow, k, zrow, yrow, tmp, h, w, b, woff, boff, nin, nout, nlayers, n_transforms,
                    kinds, lo, hi, mean, chol, bshift, btril):
    d = xrow.shape[0]
    lp = 0.0
    for i in range(d):
        gv, ld = _unbound(xrow[i], kinds[i], lo[i], hi[i])
        # Forward substitution: y = chol^-1 (g - mean).
        acc = gv - mean[k, i]
        for j in range(i):
            acc -= chol[k, i, j] * yrow[j]
        yrow[i] = acc / chol[k, i, i]
        lp += ld - math.log(chol[k, i, i])
    for t in range(n_transforms):
        g = k * n_transforms + t
        lp += _forward_transform(yrow, tmp, g, w, b, woff, boff, nin, nout, nlayers, h)
        for i in range(d):
            yrow[i] = tmp[i]
    # The base N(bshift_k, T T^T): forward substitution z = T^-1 (y - bshift_k).
    for i in range(d):
        acc = yrow[i] - bshift[k, i]
        for j in range(i):
            acc -= btril[k, i, j] * zrow[j]
        zrow[i] = acc / btril[k, i, i]
        lp += -0.5 * zrow[i] * zrow[i] - math.log(btril[k, i, i]) - 0.5 * LOG_2PI
    return lp


@njit(cache=True)
def _log_prob(x, w, b, woff, boff, nin, nout, nlayers, ready, pos2feat, n_transforms, kinds, lo, hi,
              mean, chol, logw, cumw, hmax, bshift, btril):
    n, d = x.shape
    K = logw.shape[0]
    out = np.empty(n)
    h = np.empty((max(woff.shape[1] - 1, 1), hmax))
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
                                               nlayers, n_transforms, kinds, lo, hi, mean, chol, bshift, btril)
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
             hi, mean, chol, logw, cumw, hmax, bshift, btril):
    n, d = x.shape
    h = np.empty((max(woff.shape[1] - 1, 1), hmax))
    yrow = np.empty(d)
    tmp = np.empty(d)
    for r in range(n):
        _piece_log_prob(x[r], piece[r], z[r], yrow, tmp, h, w, b, woff, boff, nin, nout, nlayers,
                        n_transforms, kinds, lo, hi, mean, chol, bshift, btril)


@njit(cache=True)
def _prior_transform(u, x, w, b, woff, boff, nin, nout, nlayers, ready, pos2feat, n_transforms, kinds, lo,
                     hi, mean, chol, logw, cumw, hmax, bshift, btril):
    """Rows of the unit cube -> parameters. Returns False (and stops) on u outside [0, 1]."""
    n, d = u.shape
    K = logw.shape[0]
    L = max(woff.shape[1] - 1, 1)
    h = np.empty((L, hmax))
    done = np.zeros(L, dtype=np.int64)
    zrow = np.empty(d)
    yrow = np.empty(d)
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
        yrow[0] = _ndtri(u0)
        for i in range(1, d):
            yrow[i] = _ndtri(u[r, i])
        for i in range(d):  # the base's affine map: z = bshift_k + T_k y
            acc = bshift[k, i]
            for j in range(i + 1):
                acc += btril[k, i, j] * yrow[j]
            zrow[i] = acc
        for t in range(n_transforms - 1, -1, -1):
            g = k * n_transforms + t
            _inverse_transform(zrow, yrow, g, w, b, woff, boff, nin, nout, nlayers, ready, pos2feat, h, done)
            for i in range(d):
                zrow[i] = yrow[i]
        for i in range(d):
            gv = mean[k, i]
            for j in range(i + 1):
                gv += chol[k, i, j] * zrow[j]
            x[r, i] = _bound(gv, kinds[i], lo[i], hi[i])
    return True
