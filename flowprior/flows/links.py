"""Compiled maps between a box coordinate and the real line, as :class:`flowprior.flows.spaces.Space` defines them.

The per-point kernels of :mod:`flowprior.flows.fast` call these for each
coordinate: ``bound`` (real line, or a spline's interval, to box, strictly
inside), ``unbound`` (box to real line or interval, with the log-Jacobian)
and ``ndtri`` (the probit link's inverse normal CDF, to double precision).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from flowprior.flows.spaces import BOTH, INTERVAL, INTERVAL_B, LOWER, PROBIT, UPPER, Z_MAX

LOG_2PI = math.log(2.0 * math.pi)


@njit(cache=True)
def bound(gv, kind, lo, hi):
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
    elif kind == INTERVAL:
        xv = lo + (hi - lo) * (gv + INTERVAL_B) / (2.0 * INTERVAL_B)
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
def unbound(xv, kind, lo, hi):
    """Box coordinate -> real coordinate and log|dg/dx| (caller checks the box)."""
    if kind == BOTH:
        a = math.log(xv - lo)
        c = math.log(hi - xv)
        return a - c, math.log(hi - lo) - a - c
    elif kind == PROBIT:
        z = ndtri((xv - lo) / (hi - lo))
        return z, 0.5 * z * z + 0.5 * LOG_2PI - math.log(hi - lo)
    elif kind == LOWER:
        a = math.log(xv - lo)
        return a, -a
    elif kind == UPPER:
        c = math.log(hi - xv)
        return -c, -c
    elif kind == INTERVAL:
        return INTERVAL_B * (2.0 * (xv - lo) / (hi - lo) - 1.0), math.log(2.0 * INTERVAL_B / (hi - lo))
    return xv, 0.0


@njit(cache=True)
def ndtri(p):
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
