"""What every flowprior density shares: a weighted mixture of trained MAFs
(one piece for a plain MAF) on a common bounded space, with the prior
transform, density, sampling and inverse built on the compiled kernels."""

from __future__ import annotations

import numpy as np
import torch
from scipy.linalg import solve_triangular
from scipy.special import logsumexp, ndtr, ndtri

from flowprior.flows import fast, rosenblatt
from flowprior.flows.spaces import INTERVAL, INTERVAL_B, Z_MAX
from flowprior.data import as_points, check_inside, named_points, unit_cube_error
from flowprior.numerics import in_unit_cube


def make_rng(seed) -> np.random.Generator:
    """A Generator from an int, a SeedSequence, a Generator (used as is) or None."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def slab_of(v0: np.ndarray, cumw: np.ndarray) -> np.ndarray:
    """The piece whose slab holds each first cube coordinate ``v0``.

    A piecewise flow lays its pieces' slabs along the first coordinate by
    cumulative weight ``cumw``; the compiled transform makes the same choice.
    """
    return np.minimum(np.searchsorted(cumw, v0, side="right"), len(cumw) - 1)


def slab_left(cumw: np.ndarray) -> np.ndarray:
    """The left edge of each piece's slab (see :func:`slab_of`)."""
    return np.concatenate([[0.0], cumw[:-1]])


class FlowDensity:
    """Shared interface of :class:`~flowprior.MAF` and :class:`~flowprior.PiecewiseFlow`.

    Fitted attributes (set by ``fit`` or ``load``): ``pieces_`` (zuko flows),
    ``spaces_`` (one :class:`~flowprior.flows.spaces.Space` each, same bounds),
    ``weights_`` (piece weights, summing to one), ``ndim_``, ``names_``,
    ``latex_labels_``, ``bounds_`` and ``records_`` (training records).
    """

    # ------------------------------------------------------------ bookkeeping
    def _check_fitted(self) -> None:
        if not hasattr(self, "pieces_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet; call fit(...) or flowprior.load(...)")

    def _finish(self) -> None:
        if self._bijective:
            rosenblatt.check_order(self.pieces_, self.ndim_)
        self._fast = fast.export(self.pieces_, self.spaces_, self.weights_, self.base_scale_, self.base_,
                                 getattr(self, "bins", None) or 0)

    @property
    def _bijective(self) -> bool:
        """Whether the prior transform is the mixture's Rosenblatt transform (``transform="rosenblatt"``)."""
        return getattr(self, "transform", "slab") == "rosenblatt" and len(self.pieces_) > 1

    @property
    def base_scale_(self):
        """Standard deviation of the Gaussian base at inference (1 unless :meth:`broadened`).

        A float, or an array with one entry per piece after :meth:`broadened`
        with per-piece scales.
        """
        return self.__dict__.get("_base_scale", 1.0)

    @property
    def base_(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The Gaussian base's ``(mean, cholesky)`` per piece, shapes (K, d) and (K, d, d), set by
        :meth:`rebased`; None for the standard base.  :attr:`base_scale_` multiplies the Cholesky factor."""
        return self.__dict__.get("_base")

    @property
    def piece_scales_(self) -> np.ndarray:
        """The base scale of each piece, shape ``(len(pieces_),)``."""
        self._check_fitted()
        return np.broadcast_to(np.asarray(self.base_scale_, dtype=float), (len(self.pieces_),)).copy()

    def broadened(self, scale) -> "FlowDensity":
        """The same trained flow with its Gaussian base widened by ``scale``.

        Every piece's base ``N(0, I)`` becomes ``N(0, scale^2 I)`` (a
        :meth:`rebased` base ``N(m, L L^T)`` becomes ``N(m, scale^2 L L^T)``): the density
        is still exact, ``q_s(x) = N(f(x); 0, scale^2 I) |det df/dx|``, and the
        prior transform is ``f^-1(scale * Phi^-1(u))``.  For a flow close to a
        Gaussian this inflates its covariance by ``scale^2``; in general it
        fattens the tails, which is what a prior built from a few hundred
        effective samples needs so that it does not miss the posterior's.

        Parameters
        ----------
        scale : float or array_like of shape (n_pieces,)
            Positive and finite; 1 gives back an equivalent flow.  One value
            per piece widens each piece by its own factor (the piece weights
            are unchanged: see :meth:`reweighted`).

        Returns
        -------
        A new flow of the same class sharing the trained networks (the
        original is unchanged).
        """
        import copy

        self._check_fitted()
        arr = np.asarray(scale, dtype=float) if not isinstance(scale, (str, bytes)) else np.array(np.nan)
        if arr.ndim == 0:
            ok = isinstance(scale, (int, float, np.integer, np.floating)) and np.isfinite(scale) and scale > 0
        else:
            ok = arr.shape == (len(self.pieces_),) and bool(np.all(np.isfinite(arr) & (arr > 0)))
        if not ok:
            raise ValueError(f"scale: expected a positive finite number or one per piece "
                             f"({len(self.pieces_)}), got {scale!r}")
        out = copy.copy(self)
        out._base_scale = float(arr) if arr.ndim == 0 else arr.copy()
        out._finish()
        return out

    def rebased(self, mean, cov) -> "FlowDensity":
        """The same trained flow with the Gaussian base ``N(mean, cov)`` instead of ``N(0, I)``.

        Where a flow misses a posterior's width or centre, the posterior seen
        through the flow (in its base coordinates) is close to a Gaussian
        other than the standard one; with that Gaussian as its base the flow
        is that much closer to the posterior.  The density stays exact,
        ``q(x) = N(f(x); mean, cov) |det df/dx|``, and the prior transform is
        ``f^-1(mean + L Phi^-1(u))`` with ``L L^T = cov``.  A later
        :meth:`broadened` multiplies ``L`` by its scale.

        Parameters
        ----------
        mean : array_like of shape (d,)
        cov : array_like of shape (d, d)
            Symmetric positive definite.

        Returns
        -------
        A new flow sharing the trained networks, its base scale reset to 1.

        Example
        -------
        >>> import numpy as np, flowprior as fp
        >>> flow = fp.MAF(n_transforms=1, max_epochs=5).fit(np.random.default_rng(0).normal(size=(200, 2)))
        >>> wide = flow.rebased(np.zeros(2), np.diag([4.0, 1.0]))
        >>> bool(np.isclose(wide.log_prob(np.zeros(2)), flow.log_prob(np.zeros(2)) - np.log(2)))
        True
        """
        import copy

        self._check_fitted()
        if len(self.pieces_) != 1:
            raise ValueError(f"rebased: a flow of {len(self.pieces_)} pieces has one base per piece; "
                             "rebase a single-piece flow")
        if np.any(self.spaces_[0].kinds == INTERVAL):
            raise ValueError("rebased: this flow's interval coordinates (link='interval') have a uniform base, "
                             "not a Gaussian one")
        d = self.ndim_
        mean, cov = np.asarray(mean, dtype=float), np.asarray(cov, dtype=float)
        if mean.shape != (d,) or not np.all(np.isfinite(mean)):
            raise ValueError(f"mean: expected {d} finite numbers, got shape {mean.shape}")
        try:
            tril = np.linalg.cholesky(cov) if cov.shape == (d, d) and np.allclose(cov, cov.T) else None
        except np.linalg.LinAlgError:
            tril = None
        if tril is None or not np.all(np.isfinite(tril)):
            raise ValueError(f"cov: expected a symmetric positive definite ({d}, {d}) matrix, got shape {cov.shape}")
        out = copy.copy(self)
        out._base_scale = 1.0
        out._base = (mean[None].copy(), tril[None].copy())
        out._finish()
        return out

    def reweighted(self, weights) -> "FlowDensity":
        """The same trained pieces mixed with other weights.

        Parameters
        ----------
        weights : array_like of shape (n_pieces,)
            Non-negative, finite, not all zero; normalised to sum to one.
            A zero weight removes that piece from the density and from the
            prior transform.

        Returns
        -------
        A new flow of the same class sharing the trained networks (the
        original is unchanged).
        """
        import copy

        self._check_fitted()
        w = np.asarray(weights, dtype=float)
        if w.shape != (len(self.pieces_),) or not np.all(np.isfinite(w) & (w >= 0)) or not w.sum() > 0:
            raise ValueError(f"weights: expected {len(self.pieces_)} non-negative finite numbers, not all zero; "
                             f"got {weights!r}")
        out = copy.copy(self)
        out.weights_ = w / w.sum()
        out._finish()
        return out

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_fast", None)  # rebuilt on unpickling; keeps pickles small
        state.pop("_torch64", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "pieces_" in state:
            self._finish()

    @property
    def bounds_(self) -> list[tuple[float | None, float | None]]:
        """The support, as ``(lo, hi)`` pairs with ``None`` for an open side."""
        self._check_fitted()
        lo, hi = self.spaces_[0].lo, self.spaces_[0].hi
        return [(float(a) if np.isfinite(a) else None, float(b) if np.isfinite(b) else None) for a, b in zip(lo, hi)]

    def _points(self, theta, what: str = "theta") -> tuple[np.ndarray, bool]:
        """Read parameter points, matching DataFrame columns to the flow's names."""
        return named_points(theta, self.names_, self.ndim_, what, "flow")

    # --------------------------------------------------------------- density
    def log_prob(self, theta, backend: str = "numpy") -> np.ndarray:
        """Exact log-density in parameter space; ``-inf`` outside the bounds.

        Parameters
        ----------
        theta : array_like of shape (n, d) or (d,), or a DataFrame
            A DataFrame's columns are matched to the flow's parameter names.
        backend : {"numpy", "torch"}
            ``"numpy"`` uses the compiled kernels (fast, float64); ``"torch"``
            evaluates the zuko flows themselves in float64 (a reference).

        Returns
        -------
        ndarray of shape (n,), or a float for a single point
        """
        self._check_fitted()
        x, single = self._points(theta)
        if backend == "numpy":
            out = self._fast.log_prob(x)
        elif backend == "torch":
            out = self._torch_log_prob(x)
        else:
            raise ValueError(f"backend: expected 'numpy' or 'torch', got {backend!r}")
        return float(out[0]) if single else out

    def prob(self, theta) -> np.ndarray:
        """Density in parameter space."""
        return np.exp(self.log_prob(theta))

    # -------------------------------------------------------- prior transform
    def prior_transform(self, u, backend: str = "numpy") -> np.ndarray:
        """Map the unit hypercube to parameters, deterministically.

        The pushforward of the uniform distribution on the cube is exactly the
        flow's density.  For a piecewise flow the first coordinate picks the
        piece by cumulative weight and is rescaled within that piece's slab,
        or, with ``transform="rosenblatt"``, the mixture's conditional CDFs
        are inverted (:mod:`flowprior.flows.rosenblatt`).
        ``u`` exactly 0 or 1 gives a finite point strictly inside the bounds.

        Parameters
        ----------
        u : array_like of shape (d,) or (n, d), values in [0, 1]

        Returns
        -------
        ndarray of the same shape as ``u``
        """
        self._check_fitted()
        arr, single = as_points(u, self.ndim_, "u")
        if backend == "numpy":
            if self._bijective:
                x, _, ok = rosenblatt.prior_transform(self._fast, arr)
            else:
                x, ok = self._fast.prior_transform(arr)
            if not ok:
                raise unit_cube_error(arr)
        elif backend == "torch" and self._bijective:
            raise ValueError("backend: the Rosenblatt transform has no torch reference; use 'numpy'")
        elif backend == "torch":
            x = self._torch_prior_transform(arr)
        else:
            raise ValueError(f"backend: expected 'numpy' or 'torch', got {backend!r}")
        return x[0] if single else x

    def __call__(self, u) -> np.ndarray:
        """Same as :meth:`prior_transform`, so a flow is a dynesty/PolyChord prior."""
        return self.prior_transform(u)

    def prior_transform_and_log_prob(self, u) -> tuple[np.ndarray, np.ndarray]:
        """Parameters for ``u`` and their log-density (for repartitioned likelihoods)."""
        self._check_fitted()
        arr, single = as_points(u, self.ndim_, "u")
        transform = rosenblatt.prior_transform if self._bijective else fast.FastFlow.prior_transform_log_prob
        x, logq, ok = transform(self._fast, arr)
        if not ok:
            raise unit_cube_error(arr)
        return (x[0], float(logq[0])) if single else (x, logq)

    @property
    def bijective(self) -> bool:
        """Whether :meth:`prior_transform` is a bijection of the cube (one piece, or ``transform="rosenblatt"``)."""
        self._check_fitted()
        return len(self.pieces_) == 1 or self._bijective

    def responsibilities(self, theta) -> np.ndarray:
        """Each piece's share of the density at ``theta``: ``W_k q_k(theta) / q(theta)``, shape (n, n_pieces).

        Rows sum to one inside the bounds; a row outside them raises a ``ValueError``.
        """
        self._check_fitted()
        x, single = self._points(theta)
        check_inside(x, self.spaces_[0].lo, self.spaces_[0].hi)
        lps = self._weighted_piece_log_probs(x)
        r = np.exp(lps - logsumexp(lps, axis=1, keepdims=True))
        return r[0] if single else r

    def _piece_of(self, x: np.ndarray) -> np.ndarray:
        """Most responsible piece of each row (the only one for a MAF)."""
        if len(self.pieces_) == 1:
            return np.zeros(len(x), dtype=np.int64)
        return np.argmax(self._weighted_piece_log_probs(x), axis=1).astype(np.int64)

    def _weighted_piece_log_probs(self, x: np.ndarray) -> np.ndarray:
        """``log W_k + log q_k(x)`` per row and piece, shape (n, n_pieces)."""
        return np.stack([self._piece_log_prob(x, k) for k in range(len(self.pieces_))], axis=1) + self._fast.logw

    def _piece_log_prob(self, x: np.ndarray, k: int) -> np.ndarray:
        one = fast.FastFlow(**{**self._fast.__dict__})
        one.logw = np.full(len(self.weights_), -np.inf)
        one.logw[k] = 0.0
        return one.log_prob(x)

    def base_coordinates(self, theta) -> np.ndarray:
        """Where ``theta`` lands in the base of its most responsible piece, in standard-normal units.

        ``Phi`` of these is :meth:`inverse_transform` (before a piecewise
        flow's slab rescaling); unlike it, they keep their precision far in
        the tails.  A :meth:`broadened` or :meth:`rebased` base's affine map
        is undone, so they are standard normal under the flow.
        """
        self._check_fitted()
        x, single = self._points(theta)
        z, _ = self._base_and_piece(x)
        return z[0] if single else z

    def _base_and_piece(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        check_inside(x, self.spaces_[0].lo, self.spaces_[0].hi)
        piece = self._piece_of(x)
        return self._fast.to_base(x, piece), piece

    def inverse_transform(self, theta) -> np.ndarray:
        """Map parameters back to the unit hypercube.

        For a MAF, and a piecewise flow with ``transform="rosenblatt"``, this
        is the exact inverse of :meth:`prior_transform`.  For a piecewise flow
        with slabs (a many-to-one map: every slab covers the whole support)
        it returns the preimage in the slab of the most responsible piece, so
        that ``prior_transform(inverse_transform(theta)) == theta``.

        Raises
        ------
        ValueError
            Where a row lies outside the bounds.
        """
        self._check_fitted()
        x, single = self._points(theta)
        if self._bijective:
            check_inside(x, self.spaces_[0].lo, self.spaces_[0].hi)
            u = rosenblatt.inverse_transform(self._fast, x)
            return u[0] if single else u
        z, piece = self._base_and_piece(x)
        u = ndtr(z)
        if len(self.pieces_) > 1:
            left = slab_left(self._fast.cumw)
            u[:, 0] = left[piece] + u[:, 0] * self.weights_[piece]
        return u[0] if single else u

    # --------------------------------------------------------------- sampling
    def sample(self, n: int, seed=None) -> np.ndarray:
        """Draw ``n`` samples (pieces chosen by weight), shape (n, d).

        Draws uniform points with ``seed`` (an int or a ``numpy.random.Generator``)
        and pushes them through :meth:`prior_transform`.
        """
        self._check_fitted()
        if int(n) != n or n < 0:
            raise ValueError(f"n: expected a non-negative integer, got {n!r}")
        rng = make_rng(seed)
        return self.prior_transform(rng.uniform(size=(int(n), self.ndim_)))

    # ------------------------------------------------------ torch reference
    def _torch_pieces(self) -> list:
        if getattr(self, "_torch64", None) is None:
            import copy

            self._torch64 = [copy.deepcopy(p).double().eval() for p in self.pieces_]
        return self._torch64

    def _torch_log_prob(self, x: np.ndarray) -> np.ndarray:
        space0 = self.spaces_[0]
        inside = space0.inside(x)
        out = np.full(len(x), -np.inf)
        xi = x[inside]
        lps = []
        for k, (flow, space, w) in enumerate(zip(self._torch_pieces(), self.spaces_, self.weights_)):
            y, logdet = space.to_real(xi)
            with torch.no_grad():
                z, ladj = flow().transform.call_and_ladj(torch.as_tensor(y, dtype=torch.float64))
            lp = ladj.numpy() + self._base_log_prob(z.numpy(), k, space.kinds == INTERVAL)
            with np.errstate(divide="ignore"):
                lps.append(np.log(w) + lp + logdet)
        out[inside] = logsumexp(np.stack(lps), axis=0)
        return out

    def _base_log_prob(self, z: np.ndarray, k: int, interval: np.ndarray) -> np.ndarray:
        """Piece ``k``'s base log-density at ``z``: its Gaussian on the others, uniform on ``interval`` coordinates."""
        keep = ~interval
        shift, tril = self._fast.bshift[k][keep], self._fast.btril[k][np.ix_(keep, keep)]
        e = solve_triangular(tril, (z[:, keep] - shift).T, lower=True).T
        flat = np.where(np.all(np.abs(z[:, interval]) <= INTERVAL_B, axis=1), -np.log(2 * INTERVAL_B) * interval.sum(),
                        -np.inf)
        return flat - 0.5 * np.sum(e**2, axis=1) - np.sum(np.log(np.diag(tril))) - keep.sum() * 0.5 * np.log(2 * np.pi)

    def _torch_prior_transform(self, u: np.ndarray) -> np.ndarray:
        if not in_unit_cube(u).all():
            raise unit_cube_error(u)
        u = u.copy()
        cumw = self._fast.cumw
        piece = slab_of(u[:, 0], cumw)
        if len(self.pieces_) > 1:
            left = slab_left(cumw)
            u[:, 0] = np.clip((u[:, 0] - left[piece]) / self.weights_[piece], 0.0, 1.0)
        interval = self.spaces_[0].kinds == INTERVAL
        y = np.where(interval, 0.0, np.clip(ndtri(u), -Z_MAX, Z_MAX))
        z = self._fast.bshift[piece] + np.einsum("nij,nj->ni", self._fast.btril[piece], y)
        z[:, interval] = INTERVAL_B * (2 * u[:, interval] - 1)
        x = np.empty_like(u)
        for k, (flow, space) in enumerate(zip(self._torch_pieces(), self.spaces_)):
            rows = piece == k
            if rows.any():
                with torch.no_grad():
                    y = flow().transform.inv(torch.as_tensor(z[rows], dtype=torch.float64)).numpy()
                x[rows] = space.from_real(y)
        return x

    # -------------------------------------------------------------- saving
    def save(self, path) -> None:
        """Write the flow to one file (safetensors with JSON metadata; no pickle)."""
        from flowprior.flows.files import save

        save(self, path)
