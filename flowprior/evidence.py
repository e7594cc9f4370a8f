"""The error of a nested-sampling evidence: the spread of logZ over simulated volume compressions.

Nested sampling does not measure the prior volume each dead point
encloses; it knows only its distribution (each step shrinks it by
``t ~ Beta(nlive, 1)``).  Redrawing those shrinkages many times and
recomputing ``logZ`` each time gives the spread of the estimate from the
run itself (Skilling 2006; anesthetic's ``logZ(nsamples)``; Higson et al.
2018).  It replaces the samplers' own figures (dynesty's and PolyChord's
error propagations), which can be several times too large or too small on
the near-flat likelihoods of the enhanced run's high stage
(benchmarks/RESULTS.md, "Error bars: coverage over seeds").

The draws are seeded by the run's own log-likelihoods, so a result and the
same result loaded from disk quote the same error.

Example
-------
>>> import numpy as np
>>> from anesthetic import NestedSamples
>>> rng = np.random.default_rng(0)
>>> x = rng.uniform(-1, 1, size=(2000, 2))  # stand-in points; only logL and nlive matter here
>>> logl = np.sort(-0.5 * np.sum(x**2, axis=1) / 0.01)
>>> samples = NestedSamples(data=x, logL=logl, logL_birth=100)
>>> 0.1 < simulated_logz_error(samples) < 0.5
True

References
----------
J. Skilling, "Nested sampling for general Bayesian computation", Bayesian Analysis 1 (2006) 833.
E. Higson et al., "Sampling errors in nested sampling parameter estimation", Bayesian Analysis 13 (2018) 873.
"""

from __future__ import annotations

import hashlib

import numpy as np
from scipy.special import logsumexp

from flowprior.data import unlabelled
from flowprior.numerics import simulated_log_dx

#: Simulated compressions: the spread's own relative error is about ``1 / sqrt(2 (n - 1))``, 5 % at 200.
NSIM = 200
#: Simulations drawn at once (memory: rows x CHUNK floats).
CHUNK = 25


def simulated_logz_error(samples, nsim: int = NSIM, rng: np.random.Generator | None = None) -> float:
    """The standard deviation of ``logZ`` over ``nsim`` simulated compressions of a run's dead points.

    Parameters
    ----------
    samples : anesthetic.NestedSamples
        The run's dead (and final live) points, with ``logL`` and ``nlive``.
    nsim : int
        Simulated compressions (default :data:`NSIM`).
    rng : numpy Generator, optional
        Default: one seeded by the run's log-likelihoods (the same run, the same error).

    Returns
    -------
    float
        NaN where fewer than two simulations give a finite ``logZ`` (no point with ``L > 0``).
    """
    frame = unlabelled(samples)
    logl = frame["logL"].to_numpy(dtype=float)
    nlive = frame["nlive"].to_numpy(dtype=float)
    if rng is None:
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(logl.tobytes()).digest()[:8], "little"))
    logz = []
    for start in range(0, int(nsim), CHUNK):
        logdx = simulated_log_dx(nlive, rng.uniform(size=(len(logl), min(CHUNK, int(nsim) - start))))
        with np.errstate(invalid="ignore"):
            logz.append(logsumexp(logl[:, None] + logdx, axis=0))
    logz = np.concatenate(logz)
    logz = logz[np.isfinite(logz)]
    return float(np.std(logz, ddof=1)) if len(logz) > 1 else float("nan")


def logz_error(samples, fallback: float) -> float:
    """:func:`simulated_logz_error` of ``samples``, or ``fallback`` (the sampler's figure) where it is NaN."""
    err = simulated_logz_error(samples)
    return err if np.isfinite(err) else float(fallback)
