"""The slow likelihood of :func:`flowprior.reweight`: evaluated on rows of the fast run's hypercube, checked.

Example
-------
>>> import numpy as np
>>> slow = SlowLikelihood(lambda x: -float(x @ x), lambda u: 2 * u - 1, vectorized=False, pool=None)
>>> theta, logl = slow(np.array([[0.5, 0.5], [1.0, 0.5]]))
>>> logl, slow.ncall
(array([-0., -1.]), 2)
"""

from __future__ import annotations

import numpy as np

from flowprior.workflows.checked import ScalarLikelihood, derived_names, evaluate_points
from flowprior.workflows.repartition import physical


class SlowLikelihood:
    """Evaluates the slow likelihood on hypercube rows, checking what it returns.

    It returns the points' parameters followed by their derived values
    (``width`` columns in all) and their log-likelihoods.
    """

    def __init__(self, loglike, prior_transform, vectorized: bool, pool):
        self.loglike = loglike
        self.derived_names = list(derived_names(loglike))
        self.prior_transform = prior_transform
        self.vectorized, self.pool = vectorized, pool
        self.ncall = 0
        self.n_neg_inf = 0

    def width(self, ndim: int) -> int:
        """Columns of the parameters and derived values of one point."""
        return ndim + len(self.derived_names)

    def __call__(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        theta = physical(self.prior_transform, u).astype(float).reshape(len(u), -1)
        if self.vectorized:
            logl, derived = self._vectorized(theta)
        else:
            # Each value is read as one number (text, bools and arrays raise, naming the point).
            logl, derived = evaluate_points(ScalarLikelihood(self.loglike), theta, self.pool)
        self.ncall += len(u)
        bad = np.isnan(logl) | (logl == np.inf)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"loglike returned {logl[i]} at theta={theta[i].tolist()} "
                             f"({int(bad.sum())} of {len(u)} points in this batch); return -inf for excluded points")
        self.n_neg_inf += int(np.sum(logl == -np.inf))
        return np.column_stack([theta, derived]), logl

    def _vectorized(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # With derived_names, check_derived wrapped the user's function to split (logL, derived) point by point;
        # a vectorized one returns whole arrays, so it is called unwrapped and checked here.
        user = getattr(self.loglike, "loglike", self.loglike) if self.derived_names else self.loglike
        out, n, k = user(theta), len(theta), len(self.derived_names)
        if not k:
            return self._values(out, n), np.empty((n, 0))
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise ValueError(f"loglike (vectorized=True) with derived_names={self.derived_names} must return "
                             f"(logL of shape ({n},), derived of shape ({n}, {k})); got {type(out).__name__}")
        derived = np.asarray(out[1])
        if derived.dtype.kind not in "fiu" or derived.shape != (n, k):
            raise ValueError(f"loglike (vectorized=True) returned derived values of shape {derived.shape} and "
                             f"dtype {derived.dtype} for {n} points; expected ({n}, {k}) real numbers, one column "
                             f"per derived_names={self.derived_names}")
        return self._values(out[0], n), derived.astype(float)

    @staticmethod
    def _values(out, n: int) -> np.ndarray:
        """A vectorized ``loglike``'s values, checked: ``n`` real numbers."""
        raw = np.asarray(out)
        if raw.dtype.kind not in "fiu":
            raise ValueError(f"loglike (vectorized=True) returned an array of dtype {raw.dtype} for {n} points; "
                             f"expected {n} real numbers (text and bools are refused)")
        if raw.shape != (n,):
            raise ValueError(f"loglike (vectorized=True) returned shape {raw.shape} for {n} points; "
                             f"expected ({n},)")
        return raw.astype(float)
