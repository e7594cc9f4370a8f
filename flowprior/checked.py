"""Picklable wrappers that check what the user's functions return.

A NaN from a likelihood, or a prior transform returning the wrong shape,
otherwise surfaces deep inside a sampler (or not at all); these raise a
``ValueError`` that names the function and the point.
"""

from __future__ import annotations

import math

import numpy as np


class CheckedLikelihood:
    """``loglike`` that must return a float or ``-inf``; NaN or ``+inf`` raise."""

    def __init__(self, loglike):
        self.loglike = loglike

    def __call__(self, theta) -> float:
        value = self.loglike(theta)
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"loglike returned {value!r} (type {type(value).__name__}) at theta={np.asarray(theta).tolist()}; "
                "expected one float"
            ) from None
        if math.isnan(value) or value == math.inf:
            raise ValueError(f"loglike returned {value} at theta={np.asarray(theta).tolist()}; "
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
