"""Marginalizing flows: a flow over the parameters and B auxiliary variables, marginalized by importance sampling.

A normalizing flow is a bijection, so a density that is a non-invertible
image of a Gaussian (a fold ``x = z^2``, a sign degeneracy, mirrored modes
touching at a point) is out of its reach.  A marginalizing flow appends B
auxiliary variables ``eps ~ g = N(0, I_B)`` to every sample (drawn afresh
each training epoch), fits an ordinary flow ``p_T(x, eps)`` in ``D + B``
dimensions, and marginalizes them out:

    p(x) = integral p_T(x, eps) d eps ~ (1/S) sum_s p_T(x, eps_s) / g(eps_s),    eps_s ~ g.

The marginal density is an estimate (deterministic: the ``eps_s`` are drawn
once, from a seed fixed at fit time; ``log_prob(..., return_error=True)``
gives its Monte Carlo error); the augmented density ``p_T`` is exact, and so
is the augmented prior transform on the ``(D + B)``-cube that a nested
sampler can use (the likelihood ignores ``eps``).  The enhanced run uses it
that way (``enhanced_run(flow="marginalizing")``: :mod:`flowprior.workflows.augmented`).

Example
-------
>>> import numpy as np, flowprior as fp
>>> z = np.random.default_rng(0).standard_normal((3000, 1))
>>> x = np.column_stack([z[:, 0] ** 2, np.random.default_rng(1).standard_normal(3000)])
>>> flow = fp.MarginalizingFlow(aux_dims=1, n_marginal=100, max_epochs=30, seed=0, progress=False).fit(x)
>>> flow.log_prob(x[:3], return_error=True)[0].shape
(3,)

References
----------
R. de Boer, "Marginalizing Flows", BSc thesis, Radboud University (2020).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

from flowprior.data import is_whole, named_points, read_samples
from flowprior.flows.base import make_rng
from flowprior.flows.files import save as save_file
from flowprior.flows.maf import MAF
from flowprior.flows.nsf import NSF
from flowprior.flows.spaces import parse_bounds

#: The inner flows by name.
INNER = {"maf": MAF, "nsf": NSF}
#: Points per block of importance-sampled densities (memory: rows x n_marginal x (D + B) floats).
BLOCK = 256


class Fresh:
    """``redraw`` for :meth:`MAF.fit`: the columns of the rows from ``ndim`` on drawn afresh.

    From ``N(0, 1)`` (``law="normal"``, a marginalizing flow's ``eps``) or ``U(0, 1)`` (``law="uniform"``, the
    auxiliary cube coordinates of :class:`AuxiliaryMAF`).
    """

    def __init__(self, ndim: int, law: str = "normal"):
        self.ndim, self.law = ndim, law

    def __call__(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        size = (len(rows), rows.shape[1] - self.ndim)
        fresh = rng.standard_normal(size) if self.law == "normal" else rng.uniform(size=size)
        return np.column_stack([rows[:, :self.ndim], fresh])


def aux_names(aux_dims: int, names) -> list[str]:
    """The auxiliary variables' names, ``aux0``...; an error where the parameters' ``names`` use one."""
    aux = [f"aux{j}" for j in range(aux_dims)]
    clash = sorted(set(aux) & set(names or ()))
    if clash:
        raise ValueError(f"names: {clash} name the auxiliary variables; rename those parameters")
    return aux


class AuxiliaryMAF(MAF):
    """A MAF whose last ``aux_dims`` coordinates are auxiliary cube coordinates ``e`` in [0, 1].

    The enhanced run's form of a marginalizing flow (:mod:`flowprior.workflows.augmented`): the sampler's
    augmented cube holds ``e`` uniform, which the probit link turns into ``eps ~ N(0, 1)`` in the flow's
    space, and every epoch draws them afresh.  The other coordinates are fitted as :meth:`MAF.fit` is told
    (the enhanced run leaves them unbounded).  ``bins`` makes it a spline flow.

    Parameters
    ----------
    aux_dims : int
    **settings
        :class:`~flowprior.MAF`'s (``link`` is "probit": it is the auxiliary coordinates' link).
    """

    def __init__(self, n_transforms: int = 5, hidden_features=(64, 64), *, aux_dims: int = 1, **settings):
        settings["link"] = "probit"
        super().__init__(n_transforms, hidden_features, **settings)
        if not is_whole(aux_dims, 1):
            raise ValueError(f"aux_dims: expected an integer >= 1, got {aux_dims!r}")
        self.aux_dims = aux_dims

    def get_params(self) -> dict:
        return {**super().get_params(), "aux_dims": int(self.aux_dims)}

    def fit(self, theta, weights=None, bounds=None, names=None) -> "AuxiliaryMAF":
        """:meth:`MAF.fit` with the auxiliary coordinates bounded on [0, 1] and drawn afresh every epoch."""
        data = read_samples(theta, weights, names)
        d = data.x.shape[1] - int(self.aux_dims)
        if d < 1:
            raise ValueError(f"theta: {data.x.shape[1]} columns, but aux_dims={self.aux_dims} of them are auxiliary")
        lo, hi = parse_bounds(bounds, data.x.shape[1], data.names)
        full = list(zip(lo[:d], hi[:d])) + [(0.0, 1.0)] * int(self.aux_dims)
        return super().fit(data.x, data.weights, bounds=full, names=data.names, redraw=Fresh(d, "uniform"))


class MarginalizingFlow:
    """A flow over ``(theta, eps)`` with ``eps ~ N(0, I_B)``, used through its importance-sampled marginal.

    Parameters
    ----------
    aux_dims : int
        Auxiliary variables B (0: the inner flow itself, exactly).
    n_marginal : int
        Importance draws S of ``eps`` per density evaluation.
    flow : {"maf", "nsf"}
        The inner flow's kind.
    seed : int, numpy Generator or None
        Seeds the auxiliary draws, the inner flow's fit and the importance draws.
    **settings
        The inner flow's other settings (``n_transforms``, ``max_epochs``, ``bins``...).

    Attributes
    ----------
    inner_ : MAF or NSF
        The fitted flow over ``D + B`` coordinates (auxiliary ones named ``aux0``...).
    ndim_, names_, latex_labels_ : int, list, list
        Of the parameters (without the auxiliary variables).
    """

    def __init__(self, aux_dims: int = 2, n_marginal: int = 200, flow: str = "maf", *, seed=None, **settings):
        self.aux_dims = aux_dims
        self.n_marginal = n_marginal
        self.flow = flow
        self.seed = seed
        self.settings = settings
        self._check_params()

    def _check_params(self) -> None:
        if not is_whole(self.aux_dims, 0):
            raise ValueError(f"aux_dims: expected an integer >= 0 (auxiliary variables), got {self.aux_dims!r}")
        if not is_whole(self.n_marginal, 1):
            raise ValueError(f"n_marginal: expected an integer >= 1 (importance draws), got {self.n_marginal!r}")
        if self.flow not in INNER:
            raise ValueError(f"flow: expected one of {list(INNER)}, got {self.flow!r}")
        self.template(seed=None)  # the inner flow checks its own settings

    def template(self, seed=None):
        """An unfitted inner flow with these settings."""
        return INNER[self.flow](seed=seed, **self.settings)

    def get_params(self) -> dict:
        """Constructor arguments (scikit-learn style)."""
        return {"aux_dims": int(self.aux_dims), "n_marginal": int(self.n_marginal), "flow": self.flow,
                "seed": self.seed if isinstance(self.seed, (int, type(None))) else None, **self.settings}

    def fit(self, theta, weights=None, bounds=None, names=None) -> "MarginalizingFlow":
        """Fit the inner flow to the samples, each paired with fresh auxiliary draws every epoch.

        Parameters
        ----------
        theta, weights, bounds, names
            As :meth:`flowprior.MAF.fit` (the bounds are the parameters'; the auxiliary variables are open).

        Returns
        -------
        self
        """
        self._check_params()
        data = read_samples(theta, weights, names)
        d, b = data.x.shape[1], int(self.aux_dims)
        lo, hi = parse_bounds(bounds, d, data.names)
        rng = make_rng(self.seed)
        names = list(data.names) if data.names is not None else [f"x{i}" for i in range(d)]
        aux = aux_names(b, names)
        x = np.column_stack([data.x, rng.standard_normal((len(data.x), b))])
        inner_bounds = list(zip(lo, hi)) + [(None, None)] * b
        self.inner_ = self.template(seed=rng).fit(x, data.weights, bounds=inner_bounds, names=names + aux,
                                                  redraw=Fresh(d) if b else None)
        self.ndim_, self.names_, self.latex_labels_ = d, names, data.labels
        self.eps_seed_ = int(rng.integers(2**63))
        return self

    # ------------------------------------------------------------ densities
    def _check_fitted(self) -> None:
        if not hasattr(self, "inner_"):
            raise RuntimeError("MarginalizingFlow is not fitted; call fit() first")

    @property
    def bounds_(self) -> list:
        self._check_fitted()
        return self.inner_.bounds_[:self.ndim_]

    def _eps(self, seed) -> np.ndarray:
        """The importance draws of ``eps``: ``(n_marginal, aux_dims)``, from ``seed`` or the one fixed at fit."""
        rng = make_rng(self.eps_seed_ if seed is None else seed)
        return rng.standard_normal((int(self.n_marginal), int(self.aux_dims)))

    def log_prob(self, theta, return_error: bool = False, seed=None):
        """The marginal log-density ``log p(theta)``, estimated by importance sampling over ``eps``.

        Parameters
        ----------
        theta : array_like of shape (n, D) or (D,), or a DataFrame
        return_error : bool
            Also return each value's Monte Carlo standard error (delta method).
        seed : optional
            Other importance draws than the ones fixed at fit time.

        Returns
        -------
        ndarray (or float), and the errors with ``return_error``
        """
        self._check_fitted()
        if self.aux_dims and np.shape(theta)[-1:] == (self.ndim_ + self.aux_dims,):
            raise ValueError(f"theta: rows of {self.ndim_ + self.aux_dims} values, but log_prob takes the "
                             f"{self.ndim_} parameters alone; augmented_log_prob takes (theta, eps)")
        x, single = named_points(theta, self.names_, self.ndim_, "theta", "marginalizing flow")
        if not self.aux_dims:
            out, err = self.inner_.log_prob(x), np.zeros(len(x))
        else:
            eps = self._eps(seed)
            log_g = -0.5 * np.sum(eps**2, axis=1) - 0.5 * eps.shape[1] * math.log(2 * math.pi)
            parts = [self._block(x[i:i + BLOCK], eps, log_g) for i in range(0, len(x), BLOCK)]
            out, err = (np.concatenate(p) for p in zip(*parts)) if parts else (np.empty(0), np.empty(0))
        if single:
            out, err = float(out[0]), float(err[0])
        return (out, err) if return_error else out

    def _block(self, x: np.ndarray, eps: np.ndarray, log_g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Estimates and errors for a block of points."""
        m, s = len(x), len(eps)
        pairs = np.column_stack([np.repeat(x, s, axis=0), np.tile(eps, (m, 1))])
        logw = self.inner_.log_prob(pairs).reshape(m, s) - log_g
        out = logsumexp(logw, axis=1) - math.log(s)
        err = np.zeros(m)
        ok = np.isfinite(out)
        if s > 1 and ok.any():
            w = np.exp(logw[ok] - out[ok, None])  # weights relative to their mean
            err[ok] = np.std(w, axis=1, ddof=1) / math.sqrt(s)
        return out, err

    def augmented_log_prob(self, theta_eps) -> np.ndarray:
        """The exact density ``log p_T(theta, eps)`` on rows of ``D + B`` values."""
        self._check_fitted()
        x, single = _width(theta_eps, self.ndim_ + self.aux_dims, "theta_eps")
        out = self.inner_.log_prob(x)
        return float(out[0]) if single else out

    # -------------------------------------------------------- transforms
    def sample(self, n: int, seed=None) -> np.ndarray:
        """``n`` draws of the parameters (the auxiliary variables dropped)."""
        self._check_fitted()
        return self.inner_.sample(n, seed=seed)[:, :self.ndim_]

    def prior_transform(self, u) -> np.ndarray:
        """The augmented prior transform: the ``(D + B)``-cube to ``(theta, eps)``, exact and bijective."""
        self._check_fitted()
        x, single = _width(u, self.ndim_ + self.aux_dims, "u")
        out = self.inner_.prior_transform(x)
        return out[0] if single else out

    def __call__(self, u) -> np.ndarray:
        return self.prior_transform(u)

    def inverse_transform(self, theta_eps) -> np.ndarray:
        """The inverse of :meth:`prior_transform`."""
        self._check_fitted()
        x, single = _width(theta_eps, self.ndim_ + self.aux_dims, "theta_eps")
        out = self.inner_.inverse_transform(x)
        return out[0] if single else out

    def save(self, path) -> None:
        """Write the inner flow and these settings to one flow file (:func:`flowprior.load` reads it back)."""
        self._check_fitted()
        extra = {"aux_dims": int(self.aux_dims), "n_marginal": int(self.n_marginal), "flow": self.flow,
                 "eps_seed": self.eps_seed_, "ndim": self.ndim_, "names": self.names_,
                 "latex_labels": self.latex_labels_}
        save_file(self.inner_, path, extra={"marginalizing": extra})

    @classmethod
    def from_inner(cls, inner, meta: dict) -> "MarginalizingFlow":
        """The flow saved by :meth:`save`, around its loaded inner flow."""
        settings = {k: v for k, v in inner.get_params().items() if k != "seed"}
        flow = cls(meta["aux_dims"], meta["n_marginal"], meta["flow"], **settings)
        flow.inner_, flow.ndim_ = inner, int(meta["ndim"])
        flow.names_, flow.latex_labels_ = meta["names"], meta["latex_labels"]
        flow.eps_seed_ = int(meta["eps_seed"])
        if flow.ndim_ + flow.aux_dims != inner.ndim_:
            raise ValueError(f"{flow.ndim_} parameters and {flow.aux_dims} auxiliary variables, but the inner "
                             f"flow has {inner.ndim_} coordinates")
        return flow


def _width(a, width: int, what: str) -> tuple[np.ndarray, bool]:
    """Rows of exactly ``width`` values (and whether ``a`` was one point), or an error naming the width."""
    a = np.asarray(a, dtype=float)
    x = np.atleast_2d(a)
    if a.ndim > 2 or x.shape[1] != width:
        raise ValueError(f"{what}: expected rows of {width} values (the parameters and the auxiliary variables), "
                         f"got shape {a.shape}; log_prob and sample take the parameters alone")
    return x, a.ndim == 1
