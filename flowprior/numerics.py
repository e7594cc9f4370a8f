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
