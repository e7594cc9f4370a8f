"""Compiled monotonic rational-quadratic splines, as zuko's ``MonotonicRQSTransform`` computes them.

A neural spline flow's autoregressive network gives each feature ``3K - 1``
raw numbers: ``K`` bin widths, ``K`` bin heights and ``K - 1`` inner knot
derivatives.  Softly clipped and normalised, they define a monotone
piecewise rational-quadratic map of ``[-B, B]`` onto itself (``B = 5``),
the identity outside.  Between knots ``(x_k, y_k)`` with derivatives
``d_k``, for ``xi = (x - x_k) / (x_k+1 - x_k)`` and bin slope ``s``::

    y = y_k + dy (s xi^2 + d_k xi (1 - xi)) / (s + (d_k + d_k+1 - 2 s) xi (1 - xi))

and its inverse is the root of a quadratic in ``xi`` (taken in the stable
form).  The functions below evaluate one feature at a time for the per-point
kernels of :mod:`flowprior.flows.fast`, in float64, agreeing with zuko's own
to rounding.

References
----------
Durkan, Bekasov, Murray & Papamakarios, "Neural Spline Flows" (2019), arXiv:1906.04032.
"""

from __future__ import annotations

import math

from numba import njit

#: Half-width of the interval the splines act on (zuko's default ``bound``).
BOUND = 5.0
#: ``log`` of zuko's smallest bin ratio and knot slope (its default ``slope`` 1e-3).
LOG_SLOPE = math.log(1e-3)


def n_params(bins: int) -> int:
    """Raw network outputs per feature of a spline with ``bins`` bins (an affine map: 2).

    Example
    -------
    >>> n_params(8), n_params(0)
    (23, 2)
    """
    return 3 * bins - 1 if bins else 2


@njit(cache=True)
def _clip(raw, bound):
    return raw / (1.0 + abs(raw / bound))


@njit(cache=True)
def _cumulative(phi, off, K, kn, out):
    """Knots ``B (2 cumsum(softmax) - 1)`` of ``K`` clipped raw sizes ``phi[off:off+K]`` into ``kn[out:out+K+1]``."""
    m = -math.inf
    for i in range(K):
        v = _clip(phi[off + i], 0.5 * LOG_SLOPE)
        kn[out + 1 + i] = v
        if v > m:
            m = v
    total = 0.0
    for i in range(K):
        e = math.exp(kn[out + 1 + i] - m)
        kn[out + 1 + i] = e
        total += e
    kn[out] = -BOUND
    c = 0.0
    for i in range(K):
        c += kn[out + 1 + i] / total
        kn[out + 1 + i] = BOUND * (2.0 * c - 1.0)


@njit(cache=True)
def knots(phi, K, kn):
    """Fill ``kn`` (length ``3K + 3``) with the x-knots, y-knots and knot derivatives of ``phi``."""
    _cumulative(phi, 0, K, kn, 0)
    _cumulative(phi, K, K, kn, K + 1)
    d = 2 * K + 2
    kn[d] = 1.0
    kn[d + K] = 1.0
    for k in range(1, K):
        kn[d + k] = math.exp(_clip(phi[2 * K + k - 1], LOG_SLOPE))


@njit(cache=True)
def _bin(kn, start, K, v):
    """Index ``k`` of the bin holding ``v`` among knots ``kn[start:start+K+1]``; -1 or K outside."""
    k = -1
    for j in range(K + 1):
        if kn[start + j] < v:
            k += 1
    return k


@njit(cache=True)
def forward(phi, K, x, kn):
    """``(y, log dy/dx)`` of the spline with raw parameters ``phi`` at ``x``; ``kn`` is scratch (``3K + 3``)."""
    knots(phi, K, kn)
    k = _bin(kn, 0, K, x)
    if k < 0 or k >= K:
        return x, 0.0
    x0, dx = kn[k], kn[k + 1] - kn[k]
    y0, dy = kn[K + 1 + k], kn[K + 2 + k] - kn[K + 1 + k]
    d0, d1 = kn[2 * K + 2 + k], kn[2 * K + 3 + k]
    s = dy / dx
    xi = (x - x0) / dx
    t = xi * (1.0 - xi)
    den = s + (d0 + d1 - 2.0 * s) * t
    y = y0 + dy * (s * xi * xi + d0 * t) / den
    ladj = math.log(s * s * (d1 * xi * xi + 2.0 * s * t + d0 * (1.0 - xi) * (1.0 - xi))) - 2.0 * math.log(den)
    return y, ladj


@njit(cache=True)
def inverse(phi, K, y, kn):
    """``x`` with ``forward(phi, K, x)[0] == y``; ``kn`` is scratch (``3K + 3``)."""
    knots(phi, K, kn)
    k = _bin(kn, K + 1, K, y)
    if k < 0 or k >= K:
        return y
    x0, dx = kn[k], kn[k + 1] - kn[k]
    y0, dy = kn[K + 1 + k], kn[K + 2 + k] - kn[K + 1 + k]
    d0, d1 = kn[2 * K + 2 + k], kn[2 * K + 3 + k]
    s = dy / dx
    eta = y - y0
    q = d0 + d1 - 2.0 * s
    a = dy * (s - d0) + eta * q
    b = dy * d0 - eta * q
    c = -s * eta
    xi = 2.0 * c / (-b - math.sqrt(max(b * b - 4.0 * a * c, 0.0)))
    return x0 + xi * dx
