"""Likelihood reweighting: plain reweighting vs flowprior's upsampling (Planck-like box, or a bimodal 4-D case).

``--case planck`` (default): ``L_A`` is the Planck-like Gaussian of
``flowprior.examples`` (as in benchmarks/planck.py).  ``L_B`` has its mean
moved by 1 sigma along the leading principal axis, its covariance shrunk to
0.7x and its normalisation scaled by e^-3, so that
``logZ_B = -sum(log(hi - lo)) - 3`` exactly.

``--case bimodal``: ``L_A`` is a normalised mixture of two well-separated,
differently shaped Gaussians (weights 0.6 / 0.4) in the box [-10, 10]^4.
``L_B`` moves each mode by 1 sigma along its own leading principal axis,
shrinks each covariance to 0.7x, swaps the mode weights to 0.4 / 0.6 and
scales the total by e^-3.  Both are normalised mixtures whose every mode is
at least 7 marginal sigma inside the box (the mass outside, bounded by the
sum of per-coordinate Gaussian tails, is below 2e-12 of the total, printed),
so ``logZ_A = -4 log 20`` and ``logZ_B = logZ_A - 3`` to that precision.
The mode columns give the posterior mass of mode 1 (samples nearest its
centre) in the fast run (truth under A: 0.6) and after reweighting (truth
under B: 0.4, error ``sqrt(p (1 - p) / neff)``).  Its fast run uses dynesty's
``bootstrap=0``, as benchmarks/multimodal.py does: with the default
bootstrapped enlargement, seed 0's nlive-100 run took about 4 minutes
instead of 3 s.

A fast run (dynesty, nlive 100) with ``L_A`` is reweighted to ``L_B`` two
ways, per seed:

- plain: every positive-weight sample of the fast run gets ``L_B / L_A``;
- flowprior: ``fp.reweight(..., target_neff)`` (fast posterior draws, then
  importance sampling from an adapting flow); the last proposal's flow is
  printed (``piecewise(k)``: a piecewise flow with k pieces).

Prints neff, slow calls, efficiency (neff / calls), logZ_B ± err and
|dlogZ_B| / err, then the coverage of the error bar over the seeds.

    python benchmarks/reweighting.py [--case planck|bimodal] [--seeds 10] [--first-seed 0]
                                     [--target-neff 2000] [--max-calls 5000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings

import numpy as np
from scipy.special import logsumexp
from scipy.stats import norm

import flowprior as fp
from flowprior import examples as ex
from flowprior.numerics import kish_ess

EVALS, EVECS = np.linalg.eigh(ex.PLANCK_COV)
MEAN_B = ex.PLANCK_MEAN + np.sqrt(EVALS[-1]) * EVECS[:, -1]
COV_B = 0.7 * ex.PLANCK_COV
TRUTH_B = ex.PLANCK_LOGZ - 3.0


class GaussianB(ex.GaussianLikelihood):
    """``L_B``: shifted, narrower, and e^-3 lower in total."""

    def __init__(self):
        super().__init__(MEAN_B, COV_B)
        self.norm -= 3.0


# --- The bimodal case -------------------------------------------------------------------------------------------

BI_D = 4
BI_HALF = 10.0
BI_NAMES = ["x0", "x1", "x2", "x3"]
BI_CENTRES = np.array([[-4.0, -4.0, 2.0, 0.0], [3.0, 3.0, -2.0, 1.0]])
BI_COVS = np.array([0.6**2 * (0.5 * np.eye(BI_D) + 0.5 * np.ones((BI_D, BI_D))),  # correlated, leading axis (1,1,1,1)/2
                    np.diag([1.0, 0.6, 0.5, 0.4]) ** 2])  # axis-aligned, leading axis x0
BI_WEIGHTS_A = np.array([0.6, 0.4])
BI_WEIGHTS_B = np.array([0.4, 0.6])
BI_TRUTH_A = -BI_D * np.log(2 * BI_HALF)
BI_TRUTH_B = BI_TRUTH_A - 3.0


def _leading_shift(cov: np.ndarray) -> np.ndarray:
    """1 sigma along the leading principal axis (sign fixed: largest component positive)."""
    evals, evecs = np.linalg.eigh(cov)
    v = evecs[:, -1] * np.sign(evecs[np.argmax(np.abs(evecs[:, -1])), -1])
    return np.sqrt(evals[-1]) * v


BI_CENTRES_B = BI_CENTRES + np.array([_leading_shift(c) for c in BI_COVS])
BI_COVS_B = 0.7 * BI_COVS


class Mixture:
    """Normalised Gaussian-mixture log-likelihood times ``exp(shift)`` (a class, so it pickles for pools)."""

    def __init__(self, centres, covs, weights, shift=0.0):
        self.centres = np.asarray(centres)
        self.precs = np.linalg.inv(covs)
        self.logc = np.log(weights) - 0.5 * np.linalg.slogdet(2 * np.pi * np.asarray(covs))[1] + shift

    def __call__(self, x) -> float:
        r = np.asarray(x) - self.centres
        return float(logsumexp(self.logc - 0.5 * np.einsum("ki,kij,kj->k", r, self.precs, r)))


def outside_mass_bound() -> float:
    """Upper bound on any mode's (A or B) mass outside the box: the sum of per-coordinate Gaussian tails."""
    out = 0.0
    for centres, covs in [(BI_CENTRES, BI_COVS), (BI_CENTRES_B, BI_COVS_B)]:
        for m, c in zip(centres, covs):
            sd = np.sqrt(np.diag(c))
            out = max(out, float(np.sum(norm.cdf((-BI_HALF - m) / sd) + norm.sf((BI_HALF - m) / sd))))
    return out


def mode1_mass(theta: np.ndarray, w: np.ndarray) -> float:
    """Weighted share of the samples nearer mode 1's centre than mode 2's (A's centres)."""
    d = ((theta[:, None, :] - BI_CENTRES[None]) ** 2).sum(-1)
    return float(w[np.argmin(d, axis=1) == 0].sum() / w.sum())


def case(name: str) -> dict:
    if name == "planck":
        return dict(fast=ex.GaussianLikelihood(), slow=GaussianB(), prior=ex.planck_prior(), d=6,
                    names=ex.PLANCK_NAMES, truth=TRUTH_B, note="", sampler_kwargs=None)
    return dict(fast=Mixture(BI_CENTRES, BI_COVS, BI_WEIGHTS_A), slow=Mixture(BI_CENTRES_B, BI_COVS_B, BI_WEIGHTS_B, -3.0),
                prior=fp.UniformPrior([(-BI_HALF, BI_HALF)] * BI_D), d=BI_D, names=BI_NAMES, truth=BI_TRUTH_B,
                sampler_kwargs={"bootstrap": 0},
                note=f"; truth logZ_A = {BI_TRUTH_A:.4f}; box truncation of any mode < {outside_mass_bound():.1e}; "
                     f"mode-1 mass A {BI_WEIGHTS_A[0]}, B {BI_WEIGHTS_B[0]}; fast run bootstrap=0")


def plain_reweighting(fast, slow, names):
    """Every positive-weight sample of the fast run reweighted by ``L_B / L_A``: neff, calls, logZ, err, weights."""
    w = fast.samples.get_weights()
    keep = w > 0
    theta = fast.samples[names].to_numpy()[keep]
    logl_a = fast.samples["logL"].to_numpy()[keep]
    logl_b = np.array([slow(x) for x in theta])
    r = w[keep] * np.exp(logl_b - logl_a)
    ratio = r.sum() / w[keep].sum()
    wn = w[keep] / w[keep].sum()
    var = np.sum(wn**2 * (np.exp(logl_b - logl_a) - ratio) ** 2)
    logz = fast.logZ + np.log(ratio)
    err = np.hypot(fast.logZerr, np.sqrt(var) / ratio)
    neff = kish_ess(r)
    return neff, int(keep.sum()), logz, err, theta, r


def proposal_name(rw) -> str:
    flow = getattr(rw.proposal, "flow", None)
    if flow is None:
        return "-"
    k = len(getattr(flow, "weights_", [1]))
    return f"piecewise({k})" if type(flow).__name__ == "PiecewiseFlow" else type(flow).__name__


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default="planck", choices=["planck", "bimodal"])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--target-neff", type=float, default=2000)
    ap.add_argument("--max-calls", type=int, default=5000)
    args = ap.parse_args()
    warnings.simplefilter("ignore", UserWarning)
    c = case(args.case)
    bimodal = args.case == "bimodal"
    truth_b = c["truth"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; case {args.case}; truth logZ_B = {truth_b:.4f}"
          f"{c['note']}", flush=True)
    extra = f" {'fast logZ_A':>16s} {'m1 A':>5s} {'m1 B':>13s} {'proposal':>12s}" if bimodal else ""
    print(f"{'method':9s} {'seed':>4s} {'neff':>7s} {'calls':>6s} {'eff':>6s} {'logZ_B ± err':>17s} {'dZ/err':>6s} "
          f"{'stopped':>11s} {'wall s':>6s}{extra}")
    pulls = {"plain": [], "flowprior": []}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        fast = fp.run(c["fast"], c["prior"], c["d"], nlive=100, seed=seed, names=c["names"],
                      sampler_kwargs=c["sampler_kwargs"])
        t0 = time.perf_counter()
        neff, calls, logz, err, theta, r = plain_reweighting(fast, c["slow"], c["names"])
        rows = [("plain", neff, calls, logz, err, "-", time.perf_counter() - t0, theta, r, "-")]
        t0 = time.perf_counter()
        rw = fp.reweight(fast, c["slow"], target_neff=args.target_neff, max_calls=args.max_calls, seed=seed,
                         progress=False)
        rows.append(("flowprior", rw.neff, rw.ncall, rw.logZ, rw.logZerr, rw.stopped, time.perf_counter() - t0,
                     rw.samples[c["names"]].to_numpy(), rw.samples.get_weights(), proposal_name(rw)))
        if bimodal:  # the fast run's columns, the same on both rows
            za = f"{fast.logZ:.3f} ± {fast.logZerr:.3f}"
            m_a = mode1_mass(fast.samples[c["names"]].to_numpy(), fast.samples.get_weights())
        for name, neff, calls, logz, err, stopped, wall, theta, w, prop in rows:
            pulls[name].append((logz - truth_b) / err)
            z = f"{logz:.3f} ± {err:.3f}"
            line = (f"{name:9s} {seed:4d} {neff:7.0f} {calls:6d} {neff / calls:6.1%} {z:>17s} "
                    f"{abs(logz - truth_b) / err:6.2f} {stopped:>11s} {wall:6.1f}")
            if bimodal:
                m_b = mode1_mass(theta, w)
                mb = f"{m_b:.3f} ± {np.sqrt(m_b * (1 - m_b) / neff):.3f}"
                line += f" {za:>16s} {m_a:5.3f} {mb:>13s} {prop:>12s}"
            print(line, flush=True)
    for name, p in pulls.items():
        p = np.abs(p)
        print(f"{name}: |dlogZ_B|/err within 1 sigma in {np.sum(p < 1)}/{len(p)}, within 2 sigma in "
              f"{np.sum(p < 2)}/{len(p)}; signed pulls mean {np.mean(pulls[name]):+.2f}, sd {np.std(pulls[name]):.2f}")


if __name__ == "__main__":
    sys.exit(main())
