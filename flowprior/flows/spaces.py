"""Maps between a bounded parameter box and the real line.

A flow is trained on unbounded coordinates.  Each parameter coordinate is
mapped to the real line by a bijection chosen by its bounds (logit or probit
for two-sided, log for one-sided, identity for none) and then standardised.
Every map carries its log-Jacobian so that densities stay exact.

The probit link ``g = ndtri((x - lo) / (hi - lo))`` sends a uniform
coordinate to a standard normal one, and a coordinate whose prior was made
by an inverse CDF back to that prior's Gaussian variable: in a sampler's
unit cube, posteriors of Gaussian-prior parameters are Gaussian again, and
flat or edge-piled ones have Gaussian tails (docs/design.md, "The flow's
space in the enhanced run").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

#: Codes for the kind of each coordinate; shared with the compiled kernels.
NONE, LOWER, UPPER, BOTH, PROBIT, INTERVAL = 0, 1, 2, 3, 4, 5

#: Half-width of the interval a spline flow acts on (zuko's spline ``bound``): the interval link maps a
#: two-sided coordinate onto ``[-INTERVAL_B, INTERVAL_B]``, where the base is uniform.
INTERVAL_B = 5.0

#: ``|ndtri(u)|`` for the smallest positive double; ``u`` = 0 or 1 lands here.
Z_MAX = 38.5

#: The maps a two-sided coordinate may take to the real line (or, "interval", to a spline's interval).
LINKS = ("logit", "probit", "interval")


def parse_bounds(bounds, ndim: int, names: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Turn a user's bounds into two float arrays ``lo`` and ``hi``.

    Parameters
    ----------
    bounds : None, sequence of (lo, hi) or dict
        ``None`` means unbounded everywhere.  A sequence holds one ``(lo, hi)``
        pair per coordinate; ``None`` or an infinite value marks an open side,
        and a plain ``None`` entry an unbounded coordinate.  A dict maps
        parameter names to pairs; names not in it are unbounded.
    ndim : int
        Number of coordinates.
    names : list of str, optional
        Parameter names, needed when ``bounds`` is a dict.

    Returns
    -------
    lo, hi : ndarray of shape (ndim,)
        ``-inf`` / ``+inf`` where a side is open.
    """
    lo = np.full(ndim, -np.inf)
    hi = np.full(ndim, np.inf)
    if bounds is None:
        return lo, hi
    if isinstance(bounds, dict):
        if names is None:
            raise ValueError("bounds: a dict of bounds needs parameter names; pass names= or a DataFrame")
        unknown = [k for k in bounds if k not in names]
        if unknown:
            raise ValueError(f"bounds: unknown parameter names {unknown}; known names are {list(names)}")
        pairs = [bounds.get(n) for n in names]
    else:
        pairs = list(bounds)
        if len(pairs) != ndim:
            raise ValueError(f"bounds: expected {ndim} (lo, hi) pairs, one per coordinate; got {len(pairs)}")
    for i, pair in enumerate(pairs):
        if pair is None:
            continue
        try:
            a, b = pair
        except (TypeError, ValueError):
            raise ValueError(f"bounds[{i}]: expected a (lo, hi) pair, got {pair!r}") from None
        a = -np.inf if a is None else float(a)
        b = np.inf if b is None else float(b)
        if np.isnan(a) or np.isnan(b):
            raise ValueError(f"bounds[{i}]: NaN in {pair!r}; use None for an open side")
        if a == np.inf or b == -np.inf or not a < b:
            raise ValueError(f"bounds[{i}]: need lo < hi, got ({a}, {b})")
        lo[i], hi[i] = a, b
    return lo, hi


def kinds_of(lo: np.ndarray, hi: np.ndarray, link: str = "logit") -> np.ndarray:
    """Kind code of each coordinate from its bounds and the two-sided ``link``."""
    flo, fhi = np.isfinite(lo), np.isfinite(hi)
    both = {"probit": PROBIT, "interval": INTERVAL}.get(link, BOTH)
    return np.where(flo & fhi, both, np.where(flo, LOWER, np.where(fhi, UPPER, NONE))).astype(np.int64)


@dataclass
class Space:
    """A box (possibly open on any side) mapped to standardised real coordinates.

    ``to_real`` sends ``x`` in the box to ``y = chol^-1 (g(x) - mean)``;
    ``from_real`` is its inverse.  ``mean`` is the weighted mean of ``g(x)``
    over the training samples and ``chol`` the Cholesky factor of their
    weighted covariance (whitening), or its diagonal (standardisation).
    After whitening, a flow that starts as the identity starts as the
    weighted Gaussian fit, so training only has to learn departures from it.
    """

    lo: np.ndarray
    hi: np.ndarray
    mean: np.ndarray
    chol: np.ndarray
    link: str = "logit"

    @property
    def kinds(self) -> np.ndarray:
        return kinds_of(self.lo, self.hi, self.link)

    @classmethod
    def fit(cls, x: np.ndarray, weights: np.ndarray, lo: np.ndarray, hi: np.ndarray, whiten: bool = True,
            link: str = "logit", same_block: np.ndarray | None = None) -> "Space":
        """Centre and whiten (or standardise) with the weighted moments of ``g(x)``.

        ``same_block`` (a boolean matrix, :func:`flowprior.flows.blocks.same_block`)
        keeps only the correlations within blocks: the whitening is block-diagonal.
        """
        d = len(lo)
        space = cls(lo, hi, np.zeros(d), np.eye(d), link)
        g, _ = space._unbound(x)
        w = weights / weights.sum()
        mean = w @ g
        r = g - mean
        std = np.sqrt(w @ r**2)
        # A coordinate with no spread (one distinct sample) still needs a scale.
        std = np.where(std > 0, std, 1.0)
        # An interval coordinate stays on its interval: not centred, scaled or mixed with the others.
        interval = space.kinds == INTERVAL
        mean, std = np.where(interval, 0.0, mean), np.where(interval, 1.0, std)
        chol = np.diag(std)
        if whiten and d > 1:
            corr = (r / std).T @ ((r / std) * w[:, None])
            if same_block is not None:
                corr = np.where(same_block, corr, 0.0)
            corr = np.where(interval[:, None] | interval[None, :], np.eye(d), corr)
            try:
                chol = std[:, None] * np.linalg.cholesky(corr + 1e-10 * np.eye(d))
            except np.linalg.LinAlgError:
                pass  # degenerate samples (fewer than d independent directions): standardise only
            if not np.all(np.diag(chol) > 0):
                chol = np.diag(std)
        return cls(lo, hi, mean, chol, link)

    def inside(self, x: np.ndarray) -> np.ndarray:
        """Boolean mask of rows strictly inside the box."""
        return np.all((x > self.lo) & (x < self.hi), axis=-1)

    def _unbound(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kinds = self.kinds
        lo, hi = self.lo, self.hi
        two = (kinds == BOTH) | (kinds == PROBIT) | (kinds == INTERVAL)
        # Every branch is evaluated on every column; the ones np.select drops may be inf or NaN.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            llo = np.log(x - np.where(np.isfinite(lo), lo, 0.0))
            lhi = np.log(np.where(np.isfinite(hi), hi, 0.0) - x)
            z = np.clip(ndtri((x - lo) / np.where(kinds == PROBIT, hi - lo, 1.0)), -Z_MAX, Z_MAX)
            on_interval = INTERVAL_B * (2 * (x - lo) / np.where(two, hi - lo, 1.0) - 1)
            g = np.select([kinds == BOTH, kinds == PROBIT, kinds == LOWER, kinds == UPPER, kinds == INTERVAL],
                          [llo - lhi, z, llo, -lhi, on_interval], x)
            width = np.log(np.where(two, hi - lo, 1.0))
            # probit: dg/dx = 1 / ((hi - lo) phi(g))
            probit = -width + 0.5 * z**2 + 0.5 * np.log(2 * np.pi)
            logdet = np.select([kinds == BOTH, kinds == PROBIT, kinds == LOWER, kinds == UPPER, kinds == INTERVAL],
                               [width - llo - lhi, probit, -llo, -lhi, np.log(2 * INTERVAL_B) - width], 0.0)
        return g, logdet.sum(axis=-1)

    def to_real(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map box points to standardised real coordinates.

        Returns ``y`` and ``log|dy/dx|`` per row.
        """
        from scipy.linalg import solve_triangular

        g, logdet = self._unbound(x)
        y = solve_triangular(self.chol, (g - self.mean).T, lower=True).T
        return y, logdet - np.log(np.diag(self.chol)).sum()

    def from_real(self, y: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_real`, clipped to stay strictly inside the box."""
        kinds = self.kinds
        g = self.mean + y @ self.chol.T
        lo = np.where(np.isfinite(self.lo), self.lo, 0.0)
        hi = np.where(np.isfinite(self.hi), self.hi, 0.0)
        with np.errstate(over="ignore"):
            sig = 0.5 * (1.0 + np.tanh(0.5 * g))
            x = np.select(
                [kinds == BOTH, kinds == PROBIT, kinds == LOWER, kinds == UPPER, kinds == INTERVAL],
                [lo + (hi - lo) * sig, lo + (hi - lo) * ndtr(g), lo + np.exp(np.minimum(g, 709.0)),
                 hi - np.exp(np.minimum(-g, 709.0)), lo + (hi - lo) * (g + INTERVAL_B) / (2 * INTERVAL_B)],
                g,
            )
        inner_lo = np.nextafter(self.lo, np.inf)
        inner_hi = np.nextafter(self.hi, -np.inf)
        return np.clip(x, inner_lo, inner_hi)
