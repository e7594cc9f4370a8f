"""Picklable wrappers that check what the user's functions return.

A NaN from a likelihood, or a prior transform returning the wrong shape,
otherwise surfaces deep inside a sampler (or not at all); these raise a
``ValueError`` that names the function and the point.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def loglike_value(value, theta) -> float:
    """One log-likelihood value as a float, or a ``ValueError`` naming ``loglike`` and the point.

    Accepted: real numbers (Python or NumPy; not ``bool``) and numeric
    arrays of size 1 (``np.float64(1.5)``, ``np.array(1.5)``,
    ``np.array([1.5])``).  Refused: text (``"1.5"`` would otherwise convert
    silently), booleans, complex numbers and arrays of more than one value.
    NaN and infinities pass through (see :class:`CheckedLikelihood`).
    """
    if isinstance(value, (bool, np.bool_)):
        raise _refused(value, theta, "a bool is not a log-likelihood")
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (str, bytes)):
        raise _refused(value, theta, "text is not a number; return a float")
    try:
        arr = np.asarray(value)
    except Exception:  # objects numpy cannot read at all
        raise _refused(value, theta, "expected one real number") from None
    if arr.dtype.kind not in "fiu":
        raise _refused(value, theta, f"an array of dtype {arr.dtype} is not a real number")
    if arr.size != 1:
        raise ValueError(f"loglike returned an array of shape {arr.shape} at theta={_point(theta)}; expected one "
                         "number (a float, or an array of size 1)")
    return float(arr.reshape(()))


def _point(theta) -> list:
    return np.asarray(theta).tolist()


def _refused(value, theta, why: str) -> ValueError:
    return ValueError(f"loglike returned {value!r} (type {type(value).__name__}) at theta={_point(theta)}: {why}")


class ScalarLikelihood:
    """``loglike`` whose value is read as one float by :func:`loglike_value` (NaN and infinities pass)."""

    def __init__(self, loglike):
        self.loglike = loglike

    def __call__(self, theta) -> float:
        return loglike_value(self.loglike(theta), theta)


class CheckedLikelihood(ScalarLikelihood):
    """``loglike`` that must return one real number or ``-inf``; NaN or ``+inf`` raise."""

    def __call__(self, theta) -> float:
        value = super().__call__(theta)
        if math.isnan(value) or value == math.inf:
            raise ValueError(f"loglike returned {value} at theta={_point(theta)}; "
                             "return -inf for excluded points")
        return value


class CheckedPrior:
    """``prior_transform`` that must map a (d,) point to a finite (d,) point."""

    def __init__(self, prior_transform, ndim: int):
        self.prior_transform = prior_transform
        self.ndim = ndim

    def __call__(self, u) -> np.ndarray:
        theta = np.asarray(self.prior_transform(u), dtype=float)
        if theta.shape != (self.ndim,):
            raise ValueError(f"prior_transform returned shape {theta.shape} for u={np.asarray(u).tolist()}; "
                             f"expected ({self.ndim},)")
        if not np.all(np.isfinite(theta)):
            raise ValueError(f"prior_transform returned non-finite values {theta.tolist()} "
                             f"for u={np.asarray(u).tolist()}")
        return theta
