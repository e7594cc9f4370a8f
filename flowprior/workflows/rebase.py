"""A flow's Gaussian base refitted to the posterior, from the check's draws.

A flow trained on a small MCMC low run can be narrower than the posterior in
some directions and off-centre in others.  Widening its base by one factor
covers the narrow directions only by widening all of them, and the high
stage pays for the volume (docs/design.md, "Rebasing a widened flow").  Seen
through the flow, in its base coordinates ``z``, a roughly Gaussian
posterior is still roughly Gaussian, just not the standard one.  The check
has already evaluated ``log L - log q`` at draws of the flow, so
``log P(z) - log N(z; 0, I)`` is known there up to a constant; a quadratic
fitted to it by least squares gives that Gaussian, ``N(mean, cov)``, without
new likelihood calls.  Unlike an importance-weighted covariance it uses
every draw's value, not just the few heaviest weights.  The flow rebased on
it (:meth:`flowprior.flows.base.FlowDensity.rebased`) is then checked like
any other, and kept only if it is the better importance sampler.
"""

from __future__ import annotations

import numpy as np

#: Draws per coefficient of the quadratic below which no fit is made.
DRAWS_PER_TERM = 2


def quadratic_terms(z: np.ndarray) -> np.ndarray:
    """Regressors of a full quadratic in the rows of ``z``: ``1``, ``z_i`` and ``z_i z_j`` for ``i <= j``."""
    i, j = np.triu_indices(z.shape[1])
    return np.hstack([np.ones((len(z), 1)), z, z[:, i] * z[:, j]])


def draws_needed(ndim: int) -> int:
    """Finite draws :func:`latent_gaussian` needs in ``ndim`` dimensions: ``DRAWS_PER_TERM`` per coefficient.

    Example
    -------
    >>> draws_needed(18), draws_needed(27)
    (380, 812)
    """
    return DRAWS_PER_TERM * (1 + ndim + ndim * (ndim + 1) // 2)


def latent_gaussian(z: np.ndarray, log_ratio: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The Gaussian ``N(mean, cov)`` whose log-density, minus ``log N(z; 0, I)``, best fits ``log_ratio``.

    Parameters
    ----------
    z : ndarray of shape (n, d)
        Points in a flow's base coordinates.
    log_ratio : ndarray of shape (n,)
        ``log P - log q`` there, up to a constant (``P`` the target, ``q``
        the flow with its standard base); non-finite rows are left out.

    Returns
    -------
    (mean, cov) or None
        None where fewer than ``DRAWS_PER_TERM`` finite rows per coefficient
        are at hand, or the fitted quadratic has no maximum.

    Example
    -------
    >>> import numpy as np
    >>> z = np.random.default_rng(0).normal(size=(200, 2))
    >>> mean, cov = latent_gaussian(z, -0.5 * ((z - 0.5) ** 2 / 4).sum(1) + 0.5 * (z ** 2).sum(1))
    >>> np.round(mean, 6).tolist(), np.round(np.diag(cov), 6).tolist()
    ([0.5, 0.5], [4.0, 4.0])
    """
    z, y = np.asarray(z, dtype=float), np.asarray(log_ratio, dtype=float)
    ok = np.isfinite(y) & np.all(np.isfinite(z), axis=1)
    d = z.shape[1]
    if ok.sum() < draws_needed(d):
        return None
    x = quadratic_terms(z[ok])
    beta = np.linalg.lstsq(x, y[ok], rcond=None)[0]
    q = np.zeros((d, d))
    q[np.triu_indices(d)] = beta[1 + d:]
    precision = np.eye(d) - (q + q.T)  # log_ratio = c + b.z - z.(A/2)z with A = -(q + q^T)
    try:
        chol = np.linalg.cholesky(precision)
    except np.linalg.LinAlgError:
        return None
    cov = np.linalg.inv(chol).T @ np.linalg.inv(chol)
    return cov @ beta[1:1 + d], (cov + cov.T) / 2


def rebase_gain(mean: np.ndarray, cov: np.ndarray, widened: float, scale: float) -> float:
    """KL divergence (nats) from ``N(mean, cov)`` that the rebased base at ``scale`` removes against the widened one.

    ``KL(N(mean, cov) || N(0, widened^2 I)) - KL(N(mean, cov) || N(mean, scale^2 cov))``: how much closer to
    the posterior, if it is the fitted Gaussian, the rebased flow is than the widened flow.

    Example
    -------
    >>> round(rebase_gain(np.zeros(2), np.eye(2), 1.2, 1.2), 12)
    0.0
    """
    d = len(mean)
    widened_kl = 0.5 * ((np.trace(cov) + mean @ mean) / widened**2 - d + 2 * d * np.log(widened)
                        - np.linalg.slogdet(cov)[1])
    rebased_kl = 0.5 * (d / scale**2 - d + 2 * d * np.log(scale))
    return float(widened_kl - rebased_kl)
