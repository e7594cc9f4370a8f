"""Test problems in many dimensions, each with a closed-form evidence.

- **Correlated Gaussian** (any d): sigma 0.1 in every coordinate with
  random correlations, centred in ``[-5, 5]^d`` (:func:`correlated_gaussian`).
- **Planck with nuisances** (6 + n): the Planck-like Gaussian on its box,
  plus ``n`` nuisance parameters with Gaussian priors, each measured by a
  Gaussian term that also depends on one or two cosmological parameters
  (:func:`planck_nuisances`).  The model is linear-Gaussian, so the
  nuisances integrate out in closed form.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtri
from scipy.stats import multivariate_normal

from flowprior.examples.problems import PLANCK_COV, PLANCK_HI, PLANCK_LO, PLANCK_MEAN, PLANCK_NAMES, Problem
from flowprior.priors import UniformPrior

__all__ = ["CorrelatedGaussian", "correlated_gaussian", "NuisanceLikelihood", "NuisancePrior", "planck_nuisances",
           "nuisance_posterior"]


class CorrelatedGaussian:
    """A normalised Gaussian ``N(0, cov)`` as ``theta -> log L`` (picklable)."""

    def __init__(self, cov: np.ndarray):
        self.cov = np.asarray(cov, dtype=float)
        self.precision = np.linalg.inv(self.cov)
        self.log_norm = -0.5 * float(np.linalg.slogdet(2 * np.pi * self.cov)[1])

    def __call__(self, theta) -> float:
        x = np.asarray(theta, dtype=float)
        return self.log_norm - 0.5 * float(x @ self.precision @ x)


def correlated_gaussian(ndim: int, sigma: float = 0.1, half: float = 5.0, seed: int = 0) -> Problem:
    """A Gaussian of width ``sigma`` per coordinate with random correlations, in ``[-half, half]^ndim``.

    The correlation matrix is ``A A^T`` of a standard normal ``A`` (seeded),
    rescaled to unit diagonal; the box holds all but a negligible mass, so
    ``logZ = -ndim log(2 half)``.

    Example
    -------
    >>> p = correlated_gaussian(3)
    >>> round(p.logZ, 4), round(float(np.sqrt(p.loglike.cov[0, 0])), 3)
    (-6.9078, 0.1)
    """
    a = np.random.default_rng(seed).normal(size=(ndim, ndim))
    c = a @ a.T
    s = np.sqrt(np.diag(c))
    cov = sigma**2 * c / np.outer(s, s)
    names = [f"x{i}" for i in range(ndim)]
    return Problem(CorrelatedGaussian(cov), UniformPrior([(-half, half)] * ndim, names=names), ndim, names,
                   -ndim * math.log(2 * half))


class NuisancePrior:
    """Prior transform: the Planck-like box for the first 6 parameters, ``N(mean, sd^2)`` for the nuisances."""

    def __init__(self, mean: np.ndarray, sd: np.ndarray):
        self.mean, self.sd = np.asarray(mean, dtype=float), np.asarray(sd, dtype=float)
        self.box = UniformPrior(list(zip(PLANCK_LO, PLANCK_HI)))

    def __call__(self, u) -> np.ndarray:
        u = np.asarray(u, dtype=float)
        tail = np.clip(u[..., 6:], 1e-15, 1 - 1e-15)  # the cube's faces map to finite values
        return np.concatenate([self.box(u[..., :6]), self.mean + self.sd * ndtri(tail)], axis=-1)


class NuisanceLikelihood:
    """``log N(theta_c; mu, C) + sum_j log N(y_j; nu_j + b_j . (theta_c - mu), t_j^2)`` (picklable)."""

    def __init__(self, b: np.ndarray, y: np.ndarray, t: np.ndarray):
        self.b, self.y, self.t = np.asarray(b), np.asarray(y), np.asarray(t)
        self.prec = np.linalg.inv(PLANCK_COV)
        self.norm = -0.5 * float(np.linalg.slogdet(2 * np.pi * PLANCK_COV)[1])

    def __call__(self, theta) -> float:
        theta = np.asarray(theta, dtype=float)
        x = theta[:6] - PLANCK_MEAN
        r = (self.y - theta[6:] - self.b @ x) / self.t
        return float(self.norm - 0.5 * x @ self.prec @ x - 0.5 * r @ r - np.sum(np.log(self.t)) - 0.5 * len(r) * math.log(2 * math.pi))


def planck_nuisances(n: int = 21, seed: int = 0) -> Problem:
    """The Planck-like Gaussian plus ``n`` nuisance parameters, with its closed-form evidence.

    Each nuisance ``nu_j`` has a prior ``N(m_j, s_j^2)`` and is measured as
    ``y_j ~ N(nu_j + b_j . (theta_c - mu), t_j^2)``, where ``b_j`` couples it
    to one or two cosmological parameters (in units of their posterior
    widths).  Integrating ``nu_j`` out leaves ``N(y - m; B x, diag(s^2 +
    t^2))`` with ``x = theta_c - mu ~ N(0, C)``, so ``Z = N(y - m; 0, B C B^T +
    diag(s^2 + t^2)) / V`` with ``V`` the box volume (the Gaussian lies well
    inside it).

    Example
    -------
    >>> p = planck_nuisances(3)
    >>> p.ndim, len(p.names)
    (9, 9)
    """
    rng = np.random.default_rng(seed)
    sd_c = np.sqrt(np.diag(PLANCK_COV))
    m, s, t = rng.normal(size=n), rng.uniform(0.5, 2.0, n), rng.uniform(0.2, 1.0, n)
    b = np.zeros((n, 6))
    for j in range(n):
        for k in rng.choice(6, size=1 + rng.integers(2), replace=False):
            b[j, k] = rng.normal(0, 0.5) / sd_c[k]
    y = m + rng.normal(size=n) * np.sqrt(s**2 + t**2)
    cov_r = b @ PLANCK_COV @ b.T + np.diag(s**2 + t**2)
    log_z = multivariate_normal(np.zeros(n), cov_r).logpdf(y - m) - float(np.sum(np.log(PLANCK_HI - PLANCK_LO)))
    names = list(PLANCK_NAMES) + [f"nu{j}" for j in range(n)]
    return Problem(NuisanceLikelihood(b, y, t), NuisancePrior(m, s), 6 + n, names, float(log_z))


def nuisance_posterior(p: Problem) -> tuple[np.ndarray, np.ndarray]:
    """The exact posterior of a :func:`planck_nuisances` problem: its mean and covariance.

    The model is linear-Gaussian in ``w = (theta_c - mu, nu)``: the
    residuals are ``y - [B I] w``, so the posterior precision is
    ``blockdiag(C^-1, S^-2) + [B I]^T T^-2 [B I]`` (the box, far from the
    posterior, is ignored).

    Example
    -------
    >>> mean, cov = nuisance_posterior(planck_nuisances(2))
    >>> mean.shape, cov.shape
    ((8,), (8, 8))
    """
    like, prior = p.loglike, p.prior
    n = len(like.y)
    a = np.hstack([like.b, np.eye(n)])
    t2 = 1 / like.t**2
    precision = np.zeros((6 + n, 6 + n))
    precision[:6, :6] = like.prec
    precision[6:, 6:] = np.diag(1 / prior.sd**2)
    precision += a.T @ (t2[:, None] * a)
    h = a.T @ (t2 * like.y)
    h[6:] += prior.mean / prior.sd**2
    cov = np.linalg.inv(precision)
    mean = cov @ h
    mean[:6] += PLANCK_MEAN
    return mean, cov
