"""Numerics that several parts of flowprior share.

Example
-------
>>> import numpy as np
>>> kish_ess(np.array([1.0, 1.0, 0.0, 2.0]))
2.6666666666666665
"""

from __future__ import annotations

import numpy as np


def kish_ess(weights: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` of importance weights (0 if they sum to 0).

    Parameters
    ----------
    weights : array of non-negative floats
        Weights of any normalisation.

    References
    ----------
    L. Kish, *Survey Sampling* (Wiley, 1965).
    """
    w = np.asarray(weights, dtype=float)
    s = w.sum()
    return float(s * s / np.sum(w * w)) if s > 0 else 0.0


def in_unit_cube(u: np.ndarray) -> np.ndarray | np.bool_:
    """Whether each point (last axis) lies in the closed unit cube; NaN is outside."""
    return np.all((u >= 0) & (u <= 1), axis=-1)


def simulated_log_dx(nlive: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Log prior-volume shells of a nested-sampling run in simulated compressions, one column each.

    The volume shrinks at each dead point by ``t = r^(1/nlive)`` with
    ``r ~ U(0, 1)``; ``uniforms`` holds the ``r`` (one row per dead point, one
    column per simulation), so each caller keeps its own random stream.

    Parameters
    ----------
    nlive : (n,) array
        Live points when each dead point died (anesthetic's ``nlive`` column).
    uniforms : (n, nsim) array of U(0, 1) draws

    Returns
    -------
    (n, nsim) array of ``log(X_{i-1} - X_i)``.

    References
    ----------
    J. Skilling, "Nested sampling for general Bayesian computation", Bayesian Analysis 1 (2006) 833.

    Example
    -------
    >>> simulated_log_dx(np.array([1.0, 1.0]), np.array([[0.5], [0.5]])).ravel().round(3)
    array([-0.693, -1.386])
    """
    logx = np.cumsum(np.log(uniforms) / np.asarray(nlive, dtype=float)[:, None], axis=0)
    logx_prev = np.vstack([np.zeros((1, logx.shape[1])), logx[:-1]])
    with np.errstate(invalid="ignore", divide="ignore"):
        return logx_prev + np.log1p(-np.exp(logx - logx_prev))
