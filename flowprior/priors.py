"""Analytic priors (uniform box, log-uniform, Gaussian) with a flow's interface.

Each has ``names_``, ``ndim_``, ``bounds_``, ``log_prob``, ``sample``,
``prior_transform`` (so it is a dynesty/PolyChord prior too) and
``marginal(names)``, so it is accepted wherever a prior flow is: in
:func:`~flowprior.kl_divergence`, :func:`~flowprior.model_dimensionality` and
:class:`~flowprior.MarginalLikelihood`.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from flowprior.flows.base import make_rng
from flowprior.data import as_points, check_names, named_points, unit_cube_error
from flowprior.numerics import in_unit_cube


def _box(bounds, what: str = "bounds") -> tuple[np.ndarray, np.ndarray]:
    try:
        b = np.asarray(bounds, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what}: expected (lo, hi) pairs of numbers ({err})") from None
    if b.ndim != 2 or b.shape[1] != 2 or len(b) < 1:
        raise ValueError(f"{what}: expected a list of (lo, hi) pairs, one per parameter; got shape {b.shape}")
    bad = ~(np.isfinite(b).all(axis=1) & (b[:, 0] < b[:, 1]))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{what}[{i}]: expected finite lo < hi, got {tuple(b[i].tolist())}")
    return b[:, 0].copy(), b[:, 1].copy()


class AnalyticPrior:
    """What the analytic priors share: point reading, sampling, name lookup."""

    names_: list[str] | None
    ndim_: int

    def _points(self, theta, what: str = "theta") -> tuple[np.ndarray, bool]:
        return named_points(theta, self.names_, self.ndim_, what, "prior")

    def _cube(self, u) -> tuple[np.ndarray, bool]:
        arr, single = as_points(u, self.ndim_, "u")
        if not in_unit_cube(arr).all():
            raise unit_cube_error(arr)
        return arr, single

    def _index(self, names) -> np.ndarray:
        if self.names_ is None:
            raise ValueError(f"names: this {type(self).__name__} has no parameter names; pass names= to it")
        missing = [n for n in names if n not in self.names_]
        if missing:
            raise ValueError(f"names: {missing} not among the prior's parameters {self.names_}")
        return np.array([self.names_.index(n) for n in names], dtype=int)

    def __call__(self, u) -> np.ndarray:
        """Same as :meth:`prior_transform`."""
        return self.prior_transform(u)

    def sample(self, n: int, seed=None) -> np.ndarray:
        """``n`` draws, shape (n, d), from ``seed`` (int or Generator)."""
        if int(n) != n or n < 0:
            raise ValueError(f"n: expected a non-negative integer, got {n!r}")
        return self.prior_transform(make_rng(seed).uniform(size=(int(n), self.ndim_)))

    def log_prob(self, theta) -> np.ndarray:
        """Log-density; ``-inf`` outside the support."""
        x, single = self._points(theta)
        out = self._log_prob(x)
        return float(out[0]) if single else out

    def prior_transform(self, u) -> np.ndarray:
        """Map the unit hypercube to parameters, ``(d,)`` or ``(n, d)``."""
        arr, single = self._cube(u)
        x = self._transform(arr)
        return x[0] if single else x


class _BoxPrior(AnalyticPrior):
    """A product of independent one-dimensional priors on ``[lo, hi]`` boxes."""

    def __init__(self, bounds, names=None):
        self.lo, self.hi = _box(bounds)
        self.ndim_ = len(self.lo)
        self.names_ = check_names(names, self.ndim_)

    @property
    def bounds_(self) -> list[tuple[float, float]]:
        return [(float(a), float(b)) for a, b in zip(self.lo, self.hi)]

    def _inside(self, x) -> np.ndarray:
        return np.all((x >= self.lo) & (x <= self.hi), axis=1)

    def marginal(self, names):
        """The prior of the parameters ``names`` alone (in that order)."""
        i = self._index(names)
        return type(self)(np.stack([self.lo[i], self.hi[i]], axis=1), names=list(names))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.bounds_}, names={self.names_})"


class UniformPrior(_BoxPrior):
    """Uniform prior on a box.

    Parameters
    ----------
    bounds : sequence of (lo, hi)
        Finite bounds, one pair per parameter.
    names : list of str, optional
        Parameter names, matched against flows' and samples' names.
    """

    def __init__(self, bounds, names=None):
        super().__init__(bounds, names)
        self._logvol = float(np.sum(np.log(self.hi - self.lo)))

    def _log_prob(self, x):
        return np.where(self._inside(x), -self._logvol, -np.inf)

    def _transform(self, u):
        return self.lo + (self.hi - self.lo) * u


class LogUniformPrior(_BoxPrior):
    """Log-uniform (Jeffreys) prior on a positive box: density ``1 / (x log(hi / lo))`` per coordinate.

    Parameters
    ----------
    bounds : sequence of (lo, hi)
        ``0 < lo < hi`` for every parameter.
    names : list of str, optional
    """

    def __init__(self, bounds, names=None):
        super().__init__(bounds, names)
        bad = self.lo <= 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"bounds[{i}]: a log-uniform prior needs lo > 0, got {self.lo[i]}")
        self._loglo, self._span = np.log(self.lo), np.log(self.hi / self.lo)

    def _log_prob(self, x):
        inside = self._inside(x)
        out = np.full(len(x), -np.inf)
        out[inside] = -np.sum(np.log(x[inside]) + np.log(self._span), axis=1)
        return out

    def _transform(self, u):
        return np.exp(self._loglo + self._span * u)


class GaussianPrior(AnalyticPrior):
    """Multivariate normal prior.

    Parameters
    ----------
    mean : array_like of shape (d,)
    cov : array_like of shape (d, d) or (d,)
        Covariance matrix (symmetric positive definite), or its diagonal.
    names : list of str, optional
    """

    def __init__(self, mean, cov, names=None):
        self.mean = np.atleast_1d(np.asarray(mean, dtype=float))
        if self.mean.ndim != 1 or not np.isfinite(self.mean).all():
            raise ValueError(f"mean: expected a finite 1-D array, got shape {np.shape(mean)}")
        d = len(self.mean)
        cov = np.asarray(cov, dtype=float)
        if cov.ndim == 1:
            cov = np.diag(cov)
        if cov.shape != (d, d) or not np.isfinite(cov).all():
            raise ValueError(f"cov: expected a finite ({d}, {d}) matrix or ({d},) diagonal, got shape {cov.shape}")
        if not np.allclose(cov, cov.T, rtol=1e-10, atol=0):
            raise ValueError("cov: not symmetric")
        try:
            self._chol = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise ValueError("cov: not positive definite") from None
        self.cov = cov
        self.ndim_ = d
        self.names_ = check_names(names, d)
        self._lognorm = float(0.5 * d * np.log(2 * np.pi) + np.sum(np.log(np.diag(self._chol))))

    @property
    def bounds_(self) -> list[tuple[None, None]]:
        return [(None, None)] * self.ndim_

    def _log_prob(self, x):
        from scipy.linalg import solve_triangular

        z = solve_triangular(self._chol, (x - self.mean).T, lower=True)
        return -0.5 * np.sum(z * z, axis=0) - self._lognorm

    def _transform(self, u):
        # u exactly 0 or 1 would give an infinite point; keep it finite, as flows do.
        z = ndtri(np.clip(u, 1e-300, 1 - 2**-53))
        return self.mean + z @ self._chol.T

    def marginal(self, names) -> GaussianPrior:
        """The prior of the parameters ``names`` alone (a Gaussian's marginal is exact)."""
        i = self._index(names)
        return GaussianPrior(self.mean[i], self.cov[np.ix_(i, i)], names=list(names))

    def __repr__(self) -> str:
        return f"GaussianPrior(mean={self.mean.tolist()}, names={self.names_})"
