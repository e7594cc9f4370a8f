"""Likelihood reweighting from a fast run to a slow likelihood, upsampling from a flow.

Everything happens in the fast run's unit hypercube ``u``, where the prior
density is exactly 1, so no prior density is needed from the user.

Estimators (and why they stay valid):

1. **The fast run's own samples.**  Posterior draws of ``P_A`` are taken
   from the run's weights by systematic resampling (by default as many as its
   effective sample size, so that nearly every slow call is a distinct point
   carrying weight), and each gets ``r = L_B / L_A``.  ``mean(r)`` estimates
   ``Z_B / Z_A`` without bias; its error adds to the run's ``logZ`` error.
2. **Importance sampling from a flow.**  A proposal ``q_t`` (a MAF, or a
   piecewise flow where the samples cluster, trained on the weighted slow
   samples so far and mixed with a Gaussian fit twice as wide so that the
   weights stay bounded in the tails) draws a batch; each
   point gets ``W = L_B(u) / q_t(u)`` (``0`` outside the cube, without a
   call).  ``q_t`` depends only on earlier batches, so each batch mean is
   unbiased given the past, and their mean weighted by batch size, over
   all batches, is an unbiased estimate of ``Z_B`` (a martingale).
3. **Combination.**  The two estimates of ``Z_B`` are combined with
   inverse-variance weights (estimated variances: consistent, with a bias
   of order 1/n), and the posterior samples of both parts are pooled with
   each part's weights scaled to its share.  ``neff`` is Kish's
   ``(sum w)^2 / sum w^2`` of the pooled weights.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flowprior.flows.base import make_rng
from flowprior.workflows.checked import ScalarLikelihood
from flowprior.data import in_unit_cube, is_real, is_whole
from flowprior.numerics import kish_ess
from flowprior.workflows.repartition import physical

#: Share of the total weight one sample may hold before the result warns.
DOMINANT_SHARE = 0.1


@dataclass
class Reweighted:
    """Result of :func:`reweight`.

    Attributes
    ----------
    samples : anesthetic.Samples
        Weighted posterior samples under ``L_B`` in physical parameters, with
        the slow log-likelihood as ``logL``.
    logZ, logZerr : float
        Log-evidence under ``L_B`` and its error.
    neff : float
        Effective sample size of ``samples``' weights.
    ncall : int
        Slow-likelihood calls (draws outside the prior cost none).
    efficiency : float
        ``neff / ncall``.
    stopped : str
        ``"target_neff"`` or ``"max_calls"``.
    max_weight_share : float
        The largest single weight's share of the total.
    parts : dict
        Per part (``"existing"``, ``"flow"``): calls, ``logZ``, ``logZerr``,
        ``neff`` and (flow) the number of batches.
    proposal : object
        The last proposal (a :class:`Proposal`), or ``None``.
    """

    samples: Any
    logZ: float
    logZerr: float
    neff: float
    ncall: int
    efficiency: float
    stopped: str
    max_weight_share: float
    parts: dict = field(default_factory=dict)
    proposal: Any = field(default=None, repr=False)


class Proposal:
    """``(1 - eps) * flow + eps * N(mean, width^2 * cov)`` on the (unbounded) hypercube coordinates.

    The wide Gaussian keeps ``L_B / q`` bounded where the flow's tails are
    too light: a proposal lighter-tailed than the target gives importance
    weights of infinite variance.
    """

    def __init__(self, u: np.ndarray, weights: np.ndarray, rng: np.random.Generator, eps: float = 0.1,
                 width: float = 2.0):
        from flowprior.flows.choice import choose_flow

        # A piecewise flow where the samples cluster, a small MAF otherwise (as flow="auto").  A few
        # dominant weights are reported by reweight itself (DOMINANT_SHARE), not as the flow's input.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="weights: effective sample size", category=UserWarning)
            self.flow = choose_flow(u, weights, rng).fit(u, weights=weights)
        self.eps = eps
        self.mean = np.average(u, axis=0, weights=weights)
        cov = np.atleast_2d(np.cov(u.T, aweights=weights)) * width**2
        self.chol = np.linalg.cholesky(cov + 1e-12 * np.eye(len(cov)) * np.trace(cov))
        self._log_norm = -np.log(np.diag(self.chol)).sum() - 0.5 * len(self.mean) * math.log(2 * math.pi)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        wide = rng.uniform(size=n) < self.eps
        out = np.empty((n, len(self.mean)))
        out[~wide] = self.flow.sample(int((~wide).sum()), seed=rng)
        out[wide] = self.mean + rng.standard_normal((int(wide.sum()), len(self.mean))) @ self.chol.T
        return out

    def log_prob(self, u: np.ndarray) -> np.ndarray:
        z = np.linalg.solve(self.chol, (u - self.mean).T).T
        log_wide = -0.5 * np.sum(z**2, axis=1) + self._log_norm
        return np.logaddexp(math.log1p(-self.eps) + self.flow.log_prob(u), math.log(self.eps) + log_wide)


def _systematic(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` draws proportional to ``weights`` (systematic resampling)."""
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    return np.searchsorted(cdf, (rng.uniform() + np.arange(n)) / n, side="right")


class _Slow:
    """Evaluates the slow likelihood on hypercube rows, checking what it returns."""

    def __init__(self, loglike, prior_transform, vectorized: bool, pool):
        self.loglike, self.prior_transform = loglike, prior_transform
        self.vectorized, self.pool = vectorized, pool
        self.ncall = 0
        self.n_neg_inf = 0

    def __call__(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        theta = physical(self.prior_transform, u).astype(float).reshape(len(u), -1)
        if self.vectorized:
            logl = self._vectorized(theta)
        else:
            # Each value is read as one number (text, bools and arrays raise, naming the point).
            mapper = self.pool.map if self.pool is not None else map
            logl = np.array(list(mapper(ScalarLikelihood(self.loglike), list(theta))), dtype=float)
        self.ncall += len(u)
        bad = np.isnan(logl) | (logl == np.inf)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"loglike returned {logl[i]} at theta={theta[i].tolist()} "
                             f"({int(bad.sum())} of {len(u)} points in this batch); return -inf for excluded points")
        self.n_neg_inf += int(np.sum(logl == -np.inf))
        return theta, logl

    def _vectorized(self, theta: np.ndarray) -> np.ndarray:
        raw = np.asarray(self.loglike(theta))
        n = len(theta)
        if raw.dtype.kind not in "fiu":
            raise ValueError(f"loglike (vectorized=True) returned an array of dtype {raw.dtype} for {n} points; "
                             f"expected {n} real numbers (text and bools are refused)")
        if raw.shape != (n,):
            raise ValueError(f"loglike (vectorized=True) returned shape {raw.shape} for {n} points; "
                             f"expected ({n},)")
        return raw.astype(float)


def _no_support(slow: _Slow, n_existing: int) -> ValueError:
    """The error for a slow likelihood that is ``-inf`` at every point evaluated."""
    n_flow = slow.ncall - n_existing
    where = f"{n_existing} distinct draws of the fast posterior" + (f" and {n_flow} draws of a flow trained on it"
                                                                   if n_flow else "")
    return ValueError(
        f"loglike: -inf at all {slow.ncall} points evaluated ({where}): the slow posterior has no support "
        "where the fast posterior has mass, so reweighting cannot estimate it. Check loglike (and that it "
        "takes the same parameters as the fast likelihood), or run the sampler on it directly")


def reweight(result, loglike, *, target_neff: float = 2000, max_calls: int | None = None, prior_transform=None,
             bounds=None, max_existing: int | None = None, batch_size: int = 500, vectorized: bool = False,
             pool=None, seed=None, progress: bool = True) -> Reweighted:
    """Posterior and evidence under a slow likelihood from a run with a fast one.

    Parameters
    ----------
    result : Result or anesthetic.NestedSamples
        The fast run: a flowprior :class:`~flowprior.Result` (from
        :func:`~flowprior.run`, which carries its prior transform) or nested
        samples read with anesthetic (then give ``prior_transform`` and the
        samples' hypercube coordinates cannot be recovered in general, so give
        ``bounds`` of a uniform prior instead).
    loglike : callable
        The slow log-likelihood, ``theta -> float`` (or ``(n, d) -> (n,)``
        with ``vectorized=True``).  ``-inf`` gives weight zero (counted);
        NaN or ``+inf`` raise, and so do text, bools and arrays of more than
        one value.
    target_neff : float
        Effective sample size to reach.
    max_calls : int, optional
        Cap on slow calls (default: no cap beyond ``20 * target_neff``).
    prior_transform : callable, optional
        ``u -> theta``; defaults to ``result.prior_transform``.
    bounds : sequence of (lo, hi), optional
        For anesthetic samples from a uniform prior on this box.
    max_existing : int, optional
        How many of the fast run's posterior draws to reweight (default: its
        effective sample size).
    batch_size : int
        Flow draws per batch.
    vectorized, pool
        How to call ``loglike``: on an (n, d) array, or with ``pool.map``.
    seed : int or numpy Generator
    progress : bool
        Show a tqdm bar of neff against the target.

    Returns
    -------
    Reweighted

    Raises
    ------
    ValueError
        For bad settings; for a ``loglike`` value that is not one real
        number, NaN or ``+inf`` (naming the point); and where ``loglike`` is
        ``-inf`` at every point evaluated (the fast posterior's draws and a
        first batch of the flow's): the slow posterior then has no support
        where the fast one has mass.
    """
    from anesthetic import Samples

    if not (is_real(target_neff) and 0 < target_neff < math.inf):
        raise ValueError(f"target_neff: expected a positive number (and finite), got {target_neff!r}")
    if max_calls is None:
        max_calls = int(20 * target_neff)
    if not is_whole(max_calls, 1):
        raise ValueError(f"max_calls: expected a positive integer, got {max_calls!r}")
    if not is_whole(batch_size, 10):
        raise ValueError(f"batch_size: expected an integer >= 10, got {batch_size!r}")
    if max_existing is not None and not is_whole(max_existing, 1):
        raise ValueError(f"max_existing: expected a positive integer (how many of the fast run's posterior draws "
                         f"to reweight) or None (its effective sample size); got {max_existing!r}")
    u, logw_a, logl_a, logZ_a, logZerr_a, names, prior_transform = _read_fast(result, prior_transform, bounds)
    rng = make_rng(seed)
    slow = _Slow(loglike, prior_transform, vectorized, pool)
    d = u.shape[1]

    # 1. The fast run's own posterior draws, reweighted.
    w_a = np.exp(logw_a - logw_a.max())
    n_keep = int(max_existing) if max_existing is not None else max(int(round(kish_ess(w_a))), 1)
    n_keep = min(n_keep, int(max_calls))
    idx = np.unique(_systematic(w_a, n_keep, rng), return_counts=True)
    rows, counts = idx
    theta_ex, logl_ex = slow(u[rows])
    r, logZ_ex, logZerr_ex = _existing_estimate(logl_ex - logl_a[rows], counts, logZ_a, logZerr_a)
    parts = {"existing": {"calls": len(rows), "logZ": logZ_ex, "logZerr": logZerr_ex, "neff": kish_ess(r)}}

    # 2. Importance sampling from an adapting flow until neff or calls run out.
    u_is, theta_is, logl_is, logW_is, batch_of = [np.empty((0, d)), np.empty((0, d)), np.empty(0), np.empty(0),
                                                  np.empty(0, dtype=int)]
    proposal = None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=float(target_neff), desc="neff", unit="", leave=False)

    def pooled():
        return _combine(logZ_ex, logZerr_ex, r, logW_is, batch_of)

    logZ, logZerr, w_ex, w_is = pooled()
    neff = kish_ess(np.concatenate([w_ex, w_is]))
    t = 0
    while neff < target_neff and slow.ncall < max_calls:
        # Train on every weighted slow sample so far: the proposal moves towards P_B.
        train_u = np.concatenate([u[rows], u_is])
        train_w = np.concatenate([w_ex, w_is])
        pos = train_w > 0
        if pos.sum() < 20:
            train_u, train_w, pos = u, w_a, w_a > 0  # too few slow samples yet: fit the fast posterior
        proposal = Proposal(train_u[pos], train_w[pos], rng)
        n = min(int(batch_size), int(max_calls - slow.ncall))
        draw = proposal.sample(n, rng)
        inside = in_unit_cube(draw)
        logq = proposal.log_prob(draw)
        logl = np.full(n, -np.inf)
        theta = np.zeros((n, d))  # points outside the prior have weight zero; their parameters are never used
        if inside.any():
            theta[inside], logl[inside] = slow(draw[inside])
        u_is = np.concatenate([u_is, draw])
        theta_is = np.concatenate([theta_is, theta])
        logl_is = np.concatenate([logl_is, logl])
        logW_is = np.concatenate([logW_is, logl - logq])
        batch_of = np.concatenate([batch_of, np.full(n, t)])
        t += 1
        logZ, logZerr, w_ex, w_is = pooled()
        if slow.n_neg_inf == slow.ncall:  # the fast posterior and one batch of the flow: all -inf
            break
        neff = kish_ess(np.concatenate([w_ex, w_is]))
        if bar is not None:
            bar.n = min(neff, float(target_neff))
            bar.set_postfix(calls=slow.ncall)
            bar.refresh()
    if bar is not None:
        bar.close()
    if slow.n_neg_inf == slow.ncall:  # no point with L_B > 0: no estimate to give
        raise _no_support(slow, len(rows))
    if len(logW_is):
        z_is, zerr_is = _is_estimate(logW_is, batch_of)
        parts["flow"] = {"calls": slow.ncall - len(rows), "logZ": z_is, "logZerr": zerr_is, "neff": kish_ess(w_is),
                         "batches": t}
    weights = np.concatenate([w_ex, w_is])
    keep = weights > 0
    data = np.concatenate([theta_ex, theta_is])[keep]
    samples = Samples(data=data, weights=weights[keep], columns=names)
    samples["logL"] = np.concatenate([logl_ex, logl_is])[keep]
    share = float(weights.max() / weights.sum()) if weights.sum() > 0 else 1.0
    if share > DOMINANT_SHARE:
        warnings.warn(f"one sample holds {share:.0%} of the reweighted posterior's weight: the fast posterior (and "
                      "the flow) miss where the slow likelihood lives; the estimates are unreliable", stacklevel=2)
    out = Reweighted(samples=samples, logZ=logZ, logZerr=logZerr, neff=neff, ncall=slow.ncall,
                     efficiency=neff / max(slow.ncall, 1), stopped="target_neff" if neff >= target_neff else "max_calls",
                     max_weight_share=share, parts=parts, proposal=proposal)
    out.n_neg_inf = slow.n_neg_inf
    return out


def _existing_estimate(log_lr: np.ndarray, counts: np.ndarray, logZ_a: float, logZerr_a: float):
    """Weights ``r`` (scaled), ``log Z_B`` and its error from the fast posterior's draws.

    ``log_lr`` is ``log L_B - log L_A`` at each distinct draw and ``counts``
    how often it was drawn.  Everything is scaled by the largest ratio, so a
    slow likelihood far below the fast one does not underflow to zero.
    """
    n = int(counts.sum())
    top = log_lr.max()
    if top == -math.inf:
        return np.zeros(len(log_lr)), -math.inf, math.inf
    lr = np.exp(log_lr - top)  # L_B / L_A at each distinct draw, divided by the largest
    r = counts * lr  # each draw counted as often as it was drawn
    ratio = r.sum() / n
    var_ratio = np.sum(counts * (lr - ratio) ** 2) / max(n - 1, 1) / n
    return r, logZ_a + top + math.log(ratio), math.sqrt(logZerr_a**2 + var_ratio / ratio**2)


def _is_estimate(logW: np.ndarray, batch_of: np.ndarray) -> tuple[float, float]:
    """Log of the mean importance weight over all batches, and its error (batch variances)."""
    m = logW.max() if np.isfinite(logW.max()) else 0.0
    W = np.exp(logW - m)
    N = len(W)
    mean = W.mean()
    var = 0.0
    for b in np.unique(batch_of):
        Wb = W[batch_of == b]
        var += len(Wb) * Wb.var(ddof=1 if len(Wb) > 1 else 0) / N**2
    if mean <= 0:
        return -math.inf, math.inf
    return m + math.log(mean), math.sqrt(var) / mean


def _combine(logZ_ex, logZerr_ex, r, logW_is, batch_of):
    """Inverse-variance combination of the two evidence estimates; pooled posterior weights."""
    w_ex = r / r.sum() if r.sum() > 0 else np.zeros_like(r)
    if len(logW_is) == 0:
        return logZ_ex, logZerr_ex, w_ex, np.empty(0)
    logZ_is, logZerr_is = _is_estimate(logW_is, batch_of)
    # Relative variances, i.e. variances of log Z: combine Z's with weights 1 / var.
    a_ex = 1 / logZerr_ex**2 if np.isfinite(logZerr_ex) and logZerr_ex > 0 else 0.0
    a_is = 1 / logZerr_is**2 if np.isfinite(logZerr_is) and logZerr_is > 0 else 0.0
    if a_ex + a_is == 0:
        a_ex, a_is = (0.0, 1.0) if np.isfinite(logZ_is) else (1.0, 0.0)
    alpha = a_ex / (a_ex + a_is)
    ref = max(logZ_ex, logZ_is)
    if ref == -math.inf:  # no point with L_B > 0 yet: zero evidence, zero weights (never NaN)
        return -math.inf, math.inf, np.zeros_like(w_ex), np.zeros(len(logW_is))
    z = alpha * math.exp(logZ_ex - ref) + (1 - alpha) * math.exp(logZ_is - ref)
    logZ = ref + math.log(z)
    logZerr = 1 / math.sqrt(a_ex + a_is) if a_ex + a_is > 0 else math.inf
    W = np.exp(logW_is - logW_is.max()) if np.isfinite(logW_is.max()) else np.zeros_like(logW_is)
    w_is = (1 - alpha) * W / W.sum() if W.sum() > 0 else W
    return logZ, logZerr, alpha * w_ex, w_is


def _logz_error(samples, rng: np.random.Generator, n: int = 200) -> float:
    """Spread of logZ over simulated compressions (anesthetic's ``logZ(n)`` draws from the global RNG)."""
    from scipy.special import logsumexp

    frame = samples.drop_labels()
    logl = frame["logL"].to_numpy(dtype=float)
    nlive = frame["nlive"].to_numpy(dtype=float)
    logt = np.log(rng.uniform(size=(len(logl), n))) / nlive[:, None]
    logx = np.cumsum(logt, axis=0)
    logx_prev = np.vstack([np.zeros((1, n)), logx[:-1]])
    logdx = logx_prev + np.log1p(-np.exp(logx - logx_prev))
    return float(np.std(logsumexp(logl[:, None] + logdx, axis=0)))


def _read_fast(result, prior_transform, bounds):
    """Hypercube points, log-weights, fast logL, logZ and its error, names and the prior transform."""
    from flowprior.result import Result

    if isinstance(result, Result):
        pt = prior_transform if prior_transform is not None else result.prior_transform
        if pt is None:
            raise ValueError("result: this run carries no prior transform; pass prior_transform=")
        if result.flow is not None:
            raise ValueError("result: an enhanced run's logL is the repartitioned one; reweight a plain run "
                             "(fp.run) with the fast likelihood")
        samples = result.samples
        u = np.asarray(result.samples_u, dtype=float)
        logZ, logZerr = float(result.logZ), float(result.logZerr)
    elif hasattr(result, "logZ") and hasattr(result, "logL"):
        samples = result
        if bounds is None:
            raise ValueError("result: anesthetic samples need bounds= (a uniform prior box) to evaluate the prior; "
                             "or pass a flowprior Result, which carries its prior transform")
        from flowprior.flows.spaces import parse_bounds

        frame = samples.drop_labels()
        params = [c for c in frame.columns if c not in ("logL", "logL_birth", "nlive")]
        lo, hi = parse_bounds(bounds, len(params))
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise ValueError("bounds: a uniform prior needs finite (lo, hi) for every parameter")
        u = (frame[params].to_numpy(dtype=float) - lo) / (hi - lo)
        inside = in_unit_cube(u)
        if not inside.all():
            raise ValueError(f"result: rows {np.flatnonzero(~inside)[:10].tolist()} lie outside bounds")
        pt = prior_transform if prior_transform is not None else (lambda v, lo=lo, hi=hi: lo + (hi - lo) * v)
        logZ = float(samples.logZ())
        logZerr = _logz_error(samples, make_rng(0))
    else:
        raise ValueError(f"result: expected a flowprior Result or anesthetic NestedSamples, got {type(result).__name__}")
    frame = samples.drop_labels() if hasattr(samples, "drop_labels") else samples
    d = u.shape[1]
    names = list(frame.columns[:d])
    with np.errstate(divide="ignore"):  # zero weights -> -inf, never drawn
        logw = np.log(np.asarray(samples.get_weights(), dtype=float))
    logl = np.asarray(frame["logL"], dtype=float)
    return u, logw, logl, logZ, logZerr, names, pt
