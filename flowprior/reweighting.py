"""Likelihood reweighting from a fast run to a slow likelihood, upsampling from a flow.

Everything happens in the fast run's unit hypercube ``u``, where the prior
density is exactly 1, so no prior density is needed from the user.

Estimators (and why they stay valid):

1. **The fast run's own samples.**  Posterior draws of ``P_A`` are taken
   from the run's weights by systematic resampling (by default as many as its
   effective sample size, so that nearly every slow call is a distinct point
   carrying weight), and each gets ``r = L_B / L_A``.  ``mean(r)`` estimates
   ``Z_B / Z_A`` without bias; its error adds to the run's ``logZ`` error.
2. **Importance sampling from a flow.**  A proposal ``q_t`` (``flow``: by
   default a MAF, or a piecewise flow where the samples cluster, trained on the weighted slow
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
from typing import Any, NamedTuple

import numpy as np
from tqdm.auto import tqdm

from flowprior.flows.base import make_rng
from flowprior.proposal import Proposal
from flowprior.workflows.inputs import check_derived, check_flow_choice
from flowprior.data import ANESTHETIC_COLUMNS, is_real, is_whole, unlabelled
from flowprior.evidence import simulated_logz_error
from flowprior.numerics import in_unit_cube, kish_ess
from flowprior.slow import SlowLikelihood

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
    n_neg_inf : int
        Slow calls that returned ``-inf`` (weight zero).
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
    n_neg_inf: int = 0


def _systematic(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` draws proportional to ``weights`` (systematic resampling)."""
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    return np.searchsorted(cdf, (rng.uniform() + np.arange(n)) / n, side="right")


def _no_support(slow: SlowLikelihood, n_existing: int) -> ValueError:
    """The error for a slow likelihood that is ``-inf`` at every point evaluated."""
    n_flow = slow.ncall - n_existing
    where = f"{n_existing} distinct draws of the fast posterior" + (f" and {n_flow} draws of a flow trained on it"
                                                                   if n_flow else "")
    return ValueError(
        f"loglike: -inf at all {slow.ncall} points evaluated ({where}): the slow posterior has no support "
        "where the fast posterior has mass, so reweighting cannot estimate it. Check loglike (and that it "
        "takes the same parameters as the fast likelihood), or run the sampler on it directly")


def reweight(result, loglike, *, target_neff: float = 2000, max_calls: int | None = None, prior_transform=None,
             bounds=None, max_existing: int | None = None, batch_size: int = 500, flow="auto",
             derived_names=None, vectorized: bool = False, pool=None, seed=None,
             progress: bool = True) -> Reweighted:
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
    flow : "auto", "maf", "nsf", "piecewise" or a flowprior flow
        The proposal's flow, refitted to the weighted slow samples before
        every batch: as :func:`~flowprior.enhanced_run`'s ``flow`` ("auto": a
        piecewise flow where the samples cluster, else a small MAF); a flow
        object gives its class and settings.
    derived_names : list of str, optional
        ``loglike`` returns ``(logL, derived)``, one derived value per name
        (vectorized: ``(n,)`` and ``(n, k)`` arrays); they become columns of
        ``samples``.
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
    budget = _checked_budget(target_neff, max_calls, batch_size, max_existing)
    check_flow_choice(flow)
    fast = _read_fast(result, prior_transform, bounds)
    rng = make_rng(seed)
    slow = SlowLikelihood(check_derived(loglike, derived_names, fast.names), fast.prior_transform, vectorized, pool)
    est = _Estimates(fast, slow, rng, max_existing, budget.max_calls, flow)
    neff, proposal = _upsample(est, slow, rng, budget, progress)
    if slow.n_neg_inf == slow.ncall:  # no point with L_B > 0: no estimate to give
        raise _no_support(slow, len(est.rows))
    return _result(est, slow, neff, proposal, budget.target_neff)


class _Budget(NamedTuple):
    """When reweighting stops (``target_neff`` reached or ``max_calls`` spent) and the flow's batch size."""

    target_neff: float
    max_calls: int
    batch_size: int


def _checked_budget(target_neff, max_calls, batch_size, max_existing) -> _Budget:
    """The settings, checked before any slow call is spent; ``max_calls`` defaults to ``20 * target_neff``."""
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
    return _Budget(target_neff, max_calls, batch_size)


class _Fast(NamedTuple):
    """The fast run: hypercube rows, posterior weights (largest 1), ``log L_A``, evidence, names, transform."""

    u: np.ndarray
    w: np.ndarray
    logl: np.ndarray
    logZ: float
    logZerr: float
    names: list
    prior_transform: Any


class _Estimates:
    """The estimators' state: the fast posterior's draws (1), the flow's draws so far (2) and their pooling (3).

    ``logZ``, ``logZerr``, ``w_ex`` and ``w_is`` hold the current pooled
    estimate and weights (:func:`_combine`); every flow batch updates them.
    """

    def __init__(self, fast: _Fast, slow: SlowLikelihood, rng: np.random.Generator, max_existing, max_calls, flow="auto"):
        """Estimator 1: the fast run's own posterior draws, each distinct one evaluated once under ``L_B``.

        Systematic resampling draws as many points as the fast run's effective
        sample size (or ``max_existing``, at most ``max_calls``), so that nearly
        every slow call is a distinct point that carries weight.
        """
        self.fast, self.flow = fast, flow
        n_keep = int(max_existing) if max_existing is not None else max(int(round(kish_ess(fast.w))), 1)
        self.rows, counts = np.unique(_systematic(fast.w, min(n_keep, int(max_calls)), rng), return_counts=True)
        self.theta_ex, self.logl_ex = slow(fast.u[self.rows])
        self.r, self.logZ_ex, self.logZerr_ex = _existing_estimate(self.logl_ex - fast.logl[self.rows], counts,
                                                                   fast.logZ, fast.logZerr)
        d = fast.u.shape[1]
        self.u, self.theta = np.empty((0, d)), np.empty((0, slow.width(d)))
        self.logl, self.logW = np.empty(0), np.empty(0)
        self.batch_of, self.batches = np.empty(0, dtype=int), 0
        self._pool()

    def _pool(self) -> None:
        self.logZ, self.logZerr, self.w_ex, self.w_is = _combine(self.logZ_ex, self.logZerr_ex, self.r, self.logW,
                                                                 self.batch_of)

    def neff(self) -> float:
        """Kish's effective sample size of the pooled weights."""
        return kish_ess(np.concatenate([self.w_ex, self.w_is]))

    def proposal(self, rng: np.random.Generator) -> Proposal:
        """A proposal trained on every weighted slow sample so far, so that it moves towards ``P_B``.

        While fewer than 20 slow samples carry weight, it fits the fast posterior instead.
        """
        train_u = np.concatenate([self.fast.u[self.rows], self.u])
        train_w = np.concatenate([self.w_ex, self.w_is])
        pos = train_w > 0
        if pos.sum() < 20:
            train_u, train_w = self.fast.u, self.fast.w
            pos = train_w > 0
        return Proposal(train_u[pos], train_w[pos], rng, flow=self.flow)

    def add_batch(self, proposal: Proposal, n: int, rng: np.random.Generator, slow: SlowLikelihood) -> None:
        """Estimator 2: ``n`` draws of ``proposal`` weighted ``L_B / q`` (0 outside the cube, without a call)."""
        draw = proposal.sample(n, rng)
        inside = in_unit_cube(draw)
        logq = proposal.log_prob(draw)
        logl = np.full(n, -np.inf)
        theta = np.zeros((n, self.theta.shape[1]))  # parameters of points outside the prior are never used
        if inside.any():
            theta[inside], logl[inside] = slow(draw[inside])
        self.u = np.concatenate([self.u, draw])
        self.theta = np.concatenate([self.theta, theta])
        self.logl = np.concatenate([self.logl, logl])
        self.logW = np.concatenate([self.logW, logl - logq])
        self.batch_of = np.concatenate([self.batch_of, np.full(n, self.batches)])
        self.batches += 1
        self._pool()


def _upsample(est: _Estimates, slow: SlowLikelihood, rng: np.random.Generator, budget: _Budget,
              progress: bool) -> tuple[float, Proposal | None]:
    """Batches from an adapting flow until ``neff`` reaches the target or the calls run out.

    Returns the final ``neff`` and the last proposal (``None`` where
    estimator 1 alone reached the target).  Stops early where every slow
    value so far is ``-inf``: the caller then raises.
    """
    bar = tqdm(total=float(budget.target_neff), desc="neff", unit="", leave=False, disable=not progress)
    proposal = None
    neff = est.neff()
    while neff < budget.target_neff and slow.ncall < budget.max_calls:
        proposal = est.proposal(rng)
        est.add_batch(proposal, min(int(budget.batch_size), int(budget.max_calls - slow.ncall)), rng, slow)
        if slow.n_neg_inf == slow.ncall:  # the fast posterior and one batch of the flow: all -inf
            break
        neff = est.neff()
        bar.n = min(neff, float(budget.target_neff))
        bar.set_postfix(calls=slow.ncall)
    bar.close()
    return neff, proposal


def _result(est: _Estimates, slow: SlowLikelihood, neff: float, proposal, target_neff: float) -> Reweighted:
    """The pooled weighted samples and each part's estimate; warns where one sample holds the posterior."""
    from anesthetic import Samples

    parts = {"existing": {"calls": len(est.rows), "logZ": est.logZ_ex, "logZerr": est.logZerr_ex,
                          "neff": kish_ess(est.r)}}
    if len(est.logW):
        z_is, zerr_is = _is_estimate(est.logW, est.batch_of)
        parts["flow"] = {"calls": slow.ncall - len(est.rows), "logZ": z_is, "logZerr": zerr_is,
                         "neff": kish_ess(est.w_is), "batches": est.batches}
    weights = np.concatenate([est.w_ex, est.w_is])
    keep = weights > 0
    samples = Samples(data=np.concatenate([est.theta_ex, est.theta])[keep], weights=weights[keep],
                      columns=list(est.fast.names) + slow.derived_names)
    samples["logL"] = np.concatenate([est.logl_ex, est.logl])[keep]
    share = float(weights.max() / weights.sum()) if weights.sum() > 0 else 1.0
    if share > DOMINANT_SHARE:
        warnings.warn(f"one sample holds {share:.0%} of the reweighted posterior's weight: the fast posterior (and "
                      "the flow) miss where the slow likelihood lives; the estimates are unreliable", stacklevel=3)
    return Reweighted(samples=samples, logZ=est.logZ, logZerr=est.logZerr, neff=neff, ncall=slow.ncall,
                      efficiency=neff / max(slow.ncall, 1),
                      stopped="target_neff" if neff >= target_neff else "max_calls",
                      max_weight_share=share, parts=parts, proposal=proposal, n_neg_inf=slow.n_neg_inf)


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


def _read_fast(result, prior_transform, bounds) -> _Fast:
    """The fast run, from a flowprior Result or from anesthetic nested samples on a uniform box."""
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
        params = [c for c in frame.columns if c not in ANESTHETIC_COLUMNS]
        lo, hi = parse_bounds(bounds, len(params))
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise ValueError("bounds: a uniform prior needs finite (lo, hi) for every parameter")
        u = (frame[params].to_numpy(dtype=float) - lo) / (hi - lo)
        inside = in_unit_cube(u)
        if not inside.all():
            raise ValueError(f"result: rows {np.flatnonzero(~inside)[:10].tolist()} lie outside bounds")
        pt = prior_transform if prior_transform is not None else (lambda v, lo=lo, hi=hi: lo + (hi - lo) * v)
        logZ = float(samples.logZ())
        logZerr = simulated_logz_error(samples)
    else:
        raise ValueError(f"result: expected a flowprior Result or anesthetic NestedSamples, got {type(result).__name__}")
    frame = unlabelled(samples)
    d = u.shape[1]
    names = list(frame.columns[:d])
    with np.errstate(divide="ignore"):  # zero weights -> -inf, never drawn
        logw = np.log(np.asarray(samples.get_weights(), dtype=float))
    logl = np.asarray(frame["logL"], dtype=float)
    return _Fast(u, np.exp(logw - logw.max()), logl, logZ, logZerr, names, pt)
