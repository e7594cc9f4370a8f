"""Marginal Bayesian statistics and nuisance-free likelihoods.

Given densities ``P(theta)`` (posterior) and ``pi(theta)`` (prior) over the
core parameters alone -- flows, or analytic priors from
:mod:`flowprior.priors` -- the marginal statistics are moments of the log
ratio ``f = log P - log pi`` under ``P``:

- KL divergence ``D = E_P[f]``;
- Bayesian model dimensionality ``d = 2 Var_P[f]`` (Handley & Lemos 2019).

A :class:`~flowprior.MarginalizingFlow`'s density is an importance-sampled
estimate; its Monte Carlo error is folded into these errors and into a
:class:`MarginalLikelihood`'s ``logZerr``.

Both are Monte Carlo estimates from ``n`` draws of the posterior density;
the error of ``D`` is ``std(f) / sqrt(n)``, that of ``d`` the standard error
of a sample variance, ``2 sqrt((m4 - m2^2) / n)``.  They describe the
densities given: when those are flows, their own fitting error (the flows'
KL from the true densities, measured in benchmarks/RESULTS.md) adds to that.

The nuisance-free likelihood of an experiment is ``L(theta) = P(theta) Z /
pi(theta)`` (Bevins et al. 2023): the experiment's likelihood with its
nuisance parameters marginalised over their prior.  :class:`MarginalLikelihood`
evaluates it, and ``L_a + L_b`` multiplies two experiments' likelihoods,
matching their parameters by name.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from flowprior.flows.base import FlowDensity, make_rng
from flowprior.flows.marginalizing import MarginalizingFlow
from flowprior.data import rows_text, as_points, column_names
from flowprior.priors import AnalyticPrior


class Estimate(NamedTuple):
    """A Monte Carlo estimate and its standard error; unpacks as ``value, error``."""

    value: float
    error: float


def _is_density(obj) -> bool:
    return isinstance(obj, (FlowDensity, AnalyticPrior, MarginalizingFlow))


def _log_prob_and_error(density, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log density`` at ``x`` and each value's Monte Carlo error (zero for an exact density)."""
    if isinstance(density, MarginalizingFlow):
        return density.log_prob(x, return_error=True)
    return density.log_prob(x), np.zeros(len(x))


def _is_samples(obj) -> bool:
    return hasattr(obj, "columns") and hasattr(obj, "to_numpy")


def _names_of(density) -> list[str] | None:
    return getattr(density, "names_", None)


def _select(density, params, what: str):
    """``density`` restricted to ``params``: exact for analytic priors, a check for flows."""
    names = _names_of(density)
    if params is None or (names is not None and list(names) == list(params)):
        return density
    if isinstance(density, AnalyticPrior):
        return density.marginal(params)
    if names is None:
        raise ValueError(f"{what}: this flow has no parameter names, so params={list(params)} cannot be "
                         "matched; fit it on named samples (a DataFrame or anesthetic samples)")
    if set(names) != set(params):
        raise ValueError(f"{what}: the flow is over {names}, not params={list(params)}; a flow cannot be "
                         "marginalised after fitting, so fit one on those parameters")
    return density  # same parameters in another order: matched by name when evaluated


def _resolve(obj, params, what: str, seed, bounds, flow_kwargs):
    """A density for ``obj``: used as is, or a MAF fitted to anesthetic/pandas samples."""
    if _is_density(obj):
        return _select(obj, params, what)
    if _is_samples(obj):
        from flowprior.flows.maf import MAF

        frame = obj
        if params is not None:
            have = column_names(obj)
            missing = [p for p in params if p not in have]
            if missing:
                raise ValueError(f"{what}: parameters {missing} not among the samples' columns {have}")
            frame = obj[list(params)]
        return MAF(**{"seed": seed, "progress": False, **(flow_kwargs or {})}).fit(frame, bounds=bounds)
    raise TypeError(f"{what}: expected a flowprior flow, an analytic prior (flowprior.UniformPrior, "
                    f"GaussianPrior, LogUniformPrior) or anesthetic/pandas samples; got {type(obj).__name__}")


def align(names_from, names_to, ndim_from: int, ndim_to: int, what: str) -> np.ndarray:
    """Columns of a ``names_from`` array that give the ``names_to`` parameters, in order.

    Without names on both sides the parameters are taken in the same order,
    which needs equal dimensions.
    """
    if names_from is None or names_to is None:
        if ndim_from != ndim_to:
            raise ValueError(f"{what}: {ndim_from} parameters against {ndim_to}, and without parameter names "
                             "on both they cannot be matched; fit the flows on named samples")
        return np.arange(ndim_to)
    missing = [n for n in names_to if n not in names_from]
    if missing:
        raise ValueError(f"{what}: parameters {missing} are not among {list(names_from)}")
    return np.array([list(names_from).index(n) for n in names_to], dtype=int)


def _log_ratio(post, prior, params, n: int, seed, bounds, flow_kwargs) -> tuple[np.ndarray, np.ndarray]:
    """``log P - log pi`` at ``n`` draws of the posterior density, and its Monte Carlo error at each (the
    importance sampling of a marginalizing flow's density; zero for exact densities)."""
    if int(n) != n or n < 2:
        raise ValueError(f"n: expected an integer >= 2, got {n!r}")
    rng = make_rng(seed)
    post_d = _select(post, params, "post") if _is_density(post) else None
    # Without params, a named posterior flow says which parameters the prior must cover.
    wanted = params if params is not None else (_names_of(post_d) if post_d is not None else None)
    prior_d = _resolve(prior, wanted, "prior", rng, bounds, flow_kwargs)
    if post_d is None:
        if bounds is None and _is_samples(post):
            bounds = _prior_bounds(prior_d, params if params is not None else column_names(post))
        post_d = _resolve(post, params, "post", rng, bounds, flow_kwargs)
    idx = align(_names_of(post_d), _names_of(prior_d), post_d.ndim_, prior_d.ndim_, "post and prior")
    x = post_d.sample(int(n), seed=rng)
    lp, err = _log_prob_and_error(post_d, x)
    lpi, err_pi = _log_prob_and_error(prior_d, x[:, idx])
    outside = ~np.isfinite(lpi)
    if outside.any():
        raise ValueError(f"prior: {outside.mean():.2%} of {n} draws of the posterior lie where the prior density "
                         "is zero; fit the posterior flow with the prior's bounds")
    return lp - lpi, np.hypot(err, err_pi)


def _prior_bounds(prior, columns):
    """The prior's bounds for the posterior's columns: the posterior's support is the prior's."""
    names = _names_of(prior)
    if names is not None and columns is not None and set(columns) <= set(names):
        return [prior.bounds_[names.index(c)] for c in columns]
    if names is None and columns is not None and len(columns) == prior.ndim_:
        return prior.bounds_
    return None


def kl_divergence(post, prior, *, params=None, n: int = 20_000, seed=None, bounds=None,
                  flow_kwargs: dict | None = None) -> Estimate:
    """Marginal KL divergence ``D(P || pi)`` in nats, with its Monte Carlo error.

    Parameters
    ----------
    post, prior : flow, analytic prior, or anesthetic/pandas samples
        Densities over the same parameters (matched by name where both have
        names).  Samples are turned into a :class:`~flowprior.MAF` first
        (weights from the samples; the posterior's bounds default to the
        prior's).  Give a uniform or log-uniform prior as the analytic
        prior, not as samples: an affine MAF fits a flat box poorly and
        overestimates the KL (benchmarks/RESULTS.md, "Marginal KL divergence
        and BMD").
    params : list of str, optional
        Compute over these parameters only (an analytic prior is
        marginalised exactly; samples are fitted on those columns; a flow
        must already be over exactly these parameters).
    n : int
        Draws of the posterior density.
    seed : int or numpy Generator
        Seeds the draws and any flow fitted here.
    bounds : list of (lo, hi), optional
        Bounds for flows fitted to samples.
    flow_kwargs : dict, optional
        :class:`~flowprior.MAF` options for flows fitted to samples.

    Returns
    -------
    Estimate
        ``(value, error)``.

    Raises
    ------
    ValueError
        Where the posterior density puts draws outside the prior's support,
        or the parameters do not match.
    """
    f, e = _log_ratio(post, prior, params, n, seed, bounds, flow_kwargs)
    # A marginalizing flow's density errors share its importance draws, so they add coherently.
    return Estimate(float(f.mean()), float(np.hypot(f.std(ddof=1) / np.sqrt(len(f)), e.mean())))


def model_dimensionality(post, prior, *, params=None, n: int = 20_000, seed=None, bounds=None,
                         flow_kwargs: dict | None = None) -> Estimate:
    """Bayesian model dimensionality ``2 Var_P[log P - log pi]``, with its Monte Carlo error.

    Same arguments as :func:`kl_divergence`.  A Gaussian posterior under a
    uniform prior has dimensionality exactly its number of parameters.
    """
    f, e = _log_ratio(post, prior, params, n, seed, bounds, flow_kwargs)
    d = f - f.mean()
    m2, m4 = np.mean(d**2), np.mean(d**4)
    # Density errors add up to their mean square to the variance.
    error = np.hypot(2 * np.sqrt(max(m4 - m2**2, 0.0) / len(f)), 2 * np.mean(e**2))
    return Estimate(float(2 * np.var(f, ddof=1)), float(error))


def _density_error(post, n: int = 500) -> float:
    """The mean Monte Carlo error of ``post``'s log-density at ``n`` of its draws (0 for an exact density)."""
    if not isinstance(post, MarginalizingFlow):
        return 0.0
    return float(np.mean(post.log_prob(post.sample(n, seed=0), return_error=True)[1]))


class MarginalLikelihood:
    """An experiment's nuisance-free likelihood ``log L = logZ + log P(theta) - log pi(theta)``.

    A callable ``theta -> logL`` for :func:`~flowprior.run` and
    :func:`~flowprior.enhanced_run` (either sampler), vectorised over rows,
    picklable (for pools and MPI), and ``-inf`` wherever the prior density
    is zero.  ``L_a + L_b`` is the product of two experiments' likelihoods
    over the union of their parameters (:class:`JointLikelihood`).

    Parameters
    ----------
    post : flow
        The experiment's posterior density over its core parameters.
    prior : flow or analytic prior
        Its prior density over the same parameters (matched by name).
    logZ : float
        The experiment's log-evidence (over all its parameters, nuisances
        included).
    logZerr : float
        Its error, kept in :attr:`logZerr` for error budgets (a constant
        offset: it shifts a joint evidence, not the posterior); with a
        :class:`~flowprior.MarginalizingFlow` posterior, its density's mean
        Monte Carlo error is added in quadrature.

    Attributes
    ----------
    names_ : list of str or None
        The parameters ``theta`` holds, in order (the posterior flow's).
    ndim_ : int
    """

    def __init__(self, post, prior, logZ: float, logZerr: float = 0.0):
        for what, obj in (("post", post), ("prior", prior)):
            if not _is_density(obj):
                raise TypeError(f"{what}: expected a fitted flowprior flow or an analytic prior, got "
                                f"{type(obj).__name__}; fit a flowprior.MAF on the samples first")
        if isinstance(post, FlowDensity):
            post._check_fitted()
        if isinstance(prior, FlowDensity):
            prior._check_fitted()
        if not np.isfinite(logZ):
            raise ValueError(f"logZ: expected a finite log-evidence, got {logZ!r}")
        if not (np.isfinite(logZerr) and logZerr >= 0):
            raise ValueError(f"logZerr: expected a finite non-negative error, got {logZerr!r}")
        if _names_of(post) is not None and _names_of(prior) is not None:
            prior = _select(prior, _names_of(post), "prior")
        self.post, self.prior = post, prior
        self.logZ, self.logZerr = float(logZ), float(np.hypot(logZerr, _density_error(post)))
        self.names_ = _names_of(post)
        self.ndim_ = post.ndim_
        self._idx = align(self.names_, _names_of(prior), self.ndim_, prior.ndim_, "post and prior")

    def __call__(self, theta):
        """``log L`` at a point ``(d,)`` (a float) or at rows ``(n, d)`` (an array).

        With a :class:`~flowprior.MarginalizingFlow` posterior the value is its
        importance-sampled estimate (deterministic); its typical error is in ``logZerr``.
        """
        x, single = as_points(theta, self.ndim_, "theta")
        bad = ~np.isfinite(x).all(axis=1)
        if bad.any():
            raise ValueError(f"theta: NaN or infinite values in {rows_text(bad)}; e.g. {x[bad][0].tolist()}")
        lpi = self.prior.log_prob(x[:, self._idx])
        out = np.full(len(x), -np.inf)
        ok = np.isfinite(lpi)
        if ok.any():
            out[ok] = self.logZ + self.post.log_prob(x[ok]) - lpi[ok]
        return float(out[0]) if single else out

    def __add__(self, other):
        return JointLikelihood([self, other])

    def __radd__(self, other):
        if isinstance(other, (int, float)) and other == 0:  # sum([...])
            return JointLikelihood([self])
        return NotImplemented

    def __repr__(self) -> str:
        return f"MarginalLikelihood(names={self.names_}, logZ={self.logZ:.4g})"


class JointLikelihood:
    """The product of experiments' likelihoods over the union of their parameters.

    Parameters are matched by name: the joint ``theta`` holds :attr:`names_`
    (each part's names, first appearance first, unless ``names`` gives the
    order), and each part is handed its own columns.  Parts without names
    must all lack them and share one dimension (then the order is theirs).

    Parameters
    ----------
    parts : list of MarginalLikelihood (or JointLikelihood, flattened)
    names : list of str, optional
        Order of the joint parameters (a permutation of the union).
    """

    def __init__(self, parts, names=None):
        flat = []
        for p in parts:
            if isinstance(p, JointLikelihood):
                flat.extend(p.parts)
            elif isinstance(p, MarginalLikelihood):
                flat.append(p)
            else:
                raise TypeError(f"parts: expected MarginalLikelihood objects, got {type(p).__name__}")
        if not flat:
            raise ValueError("parts: at least one likelihood is needed")
        named = [p.names_ is not None for p in flat]
        if any(named) and not all(named):
            raise ValueError("parts: some likelihoods have parameter names and some do not, so their "
                             "parameters cannot be matched; fit every flow on named samples")
        if all(named):
            union = []
            for p in flat:
                union += [n for n in p.names_ if n not in union]
            if names is not None:
                names = [str(n) for n in names]
                if sorted(names) != sorted(union):
                    raise ValueError(f"names: expected an ordering of the joint parameters {union}, got {names}")
                union = names
            self.names_ = union
            self._idx = [align(union, p.names_, len(union), p.ndim_, "joint") for p in flat]
        else:
            dims = {p.ndim_ for p in flat}
            if len(dims) > 1:
                raise ValueError(f"parts: unnamed likelihoods over different numbers of parameters {sorted(dims)} "
                                 "cannot be matched; fit every flow on named samples")
            self.names_ = None
            self._idx = [np.arange(flat[0].ndim_) for _ in flat]
        self.parts = flat
        self.ndim_ = len(self.names_) if self.names_ is not None else flat[0].ndim_
        self.logZerr = float(np.sqrt(sum(p.logZerr**2 for p in flat)))

    def __call__(self, theta):
        """Sum of the parts' ``log L``; a float for one point, an array for rows."""
        x, single = as_points(theta, self.ndim_, "theta")
        out = np.zeros(len(x))
        for p, idx in zip(self.parts, self._idx):
            out += p(x[:, idx])
        return float(out[0]) if single else out

    def __add__(self, other):
        return JointLikelihood([self, other])

    def __repr__(self) -> str:
        return f"JointLikelihood({len(self.parts)} parts, names={self.names_})"
