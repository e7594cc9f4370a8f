"""Enhanced runs on posteriors piled against a prior edge, against plain runs, with closed-form truths.

Targets (issue 24):

- ``half``: ``log L = sum_i log N(x_i; 0, 0.1)`` under ``U(0, 1)^3``: a half-Gaussian at the lower face of the
  cube in every coordinate; ``log Z = 3 log(1/2)``;
- ``planck-tau``: the 6-D Planck-like Gaussian whose ``tau`` is independent and a half-Gaussian at its lower
  bound (mean at the bound, Planck's sigma); ``log Z = log(1/2) - log(volume)``.

Printed per run: calls (low + check + high for the enhanced run), the ratio to the plain run, the logZ pull and
the pull of the posterior mean of the edge coordinate(s) against the half-normal mean (its error from the run's
effective sample size).  Issue 24's goal: the enhanced run at most 15 % of a plain run's calls, logZ within
2 sigma in 9 of 10 seeds, for both samplers.

    python benchmarks/edge.py [--target half|planck-tau] [--sampler dynesty|polychord] [--seeds 3] [--no-plain]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
from scipy import stats

import flowprior as fp
import flowprior.examples as ex

SIGMA_HALF = 0.1


class HalfGaussian:
    """``log L = sum_i log N(x_i; 0, 0.1)``: piled against the lower face of the unit cube."""

    def __call__(self, x) -> float:
        return float(np.sum(stats.norm.logpdf(x, 0.0, SIGMA_HALF)))


class PlanckTau:
    """The Planck-like Gaussian with ``tau`` independent and half-Gaussian at its lower bound."""

    def __init__(self):
        self.tau = ex.PLANCK_NAMES.index("tau")
        rest = [i for i in range(6) if i != self.tau]
        self.rest = rest
        self.gauss = ex.GaussianLikelihood(ex.PLANCK_MEAN[rest], ex.PLANCK_COV[np.ix_(rest, rest)])
        self.sigma = float(np.sqrt(ex.PLANCK_COV[self.tau, self.tau]))

    def __call__(self, x) -> float:
        x = np.asarray(x)
        return self.gauss(x[self.rest]) + float(stats.norm.logpdf(x[self.tau], ex.PLANCK_LO[self.tau], self.sigma))


def target(name: str):
    """Likelihood, prior, ndim, truth logZ, edge columns, their lower bound and sigma."""
    if name == "half":
        return HalfGaussian(), fp.UniformPrior([(0.0, 1.0)] * 3), 3, 3 * np.log(0.5), [0, 1, 2], 0.0, SIGMA_HALF
    like = PlanckTau()
    lo = ex.PLANCK_LO[like.tau]
    return like, ex.planck_prior(), 6, np.log(0.5) + ex.PLANCK_LOGZ, [like.tau], lo, like.sigma


def edge_pull(res, cols, lo: float, sigma: float) -> float:
    """Largest |pull| of the edge coordinates' posterior means against the half-normal mean ``lo + sigma sqrt(2/pi)``."""
    w = res.samples.get_weights()
    x = res.samples.iloc[:, cols].to_numpy(dtype=float)
    ess = w.sum() ** 2 / (w**2).sum()
    err = sigma * np.sqrt(1 - 2 / np.pi) / np.sqrt(ess)
    pulls = (np.average(x, weights=w, axis=0) - (lo + sigma * np.sqrt(2 / np.pi))) / err
    return float(pulls[np.argmax(np.abs(pulls))])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="half", choices=["half", "planck-tau"])
    ap.add_argument("--sampler", default="dynesty", choices=["dynesty", "polychord"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--nlive", type=int, default=500)
    ap.add_argument("--nlive-low", type=int, default=None, help="default: flowprior's")
    ap.add_argument("--no-plain", action="store_true")
    ap.add_argument("--plain-calls", type=json.loads, default=None, help='JSON {seed: calls} for --no-plain ratios')
    args = ap.parse_args()
    like, prior, d, truth, cols, lo, sigma = target(args.target)
    print(f"machine: {platform.machine()}; target {args.target} (d = {d}); sampler {args.sampler}; nlive {args.nlive}; "
          f"nlive_low {args.nlive_low or 'default'}; truth logZ {truth:.4f}")
    print(f"{'run':9s} {'seed':>4s} {'calls':>34s} {'ratio':>6s} {'logZ ± err':>18s} {'pull':>6s} {'edge pull':>9s} "
          f"{'wall s':>7s}")
    plain_calls = {int(k): v for k, v in (args.plain_calls or {}).items()}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        runs = [] if args.no_plain else [("plain", fp.run, {})]
        runs.append(("enhanced", fp.enhanced_run, {"nlive_low": args.nlive_low}))
        for name, fn, extra in runs:
            t0 = time.perf_counter()
            res = fn(like, prior, d, sampler=args.sampler, nlive=args.nlive, seed=seed, **extra)
            wall = time.perf_counter() - t0
            if name == "plain":
                plain_calls[seed] = res.ncall["total"]
            ratio = res.ncall["total"] / plain_calls[seed] if seed in plain_calls else float("nan")
            print(f"{name:9s} {seed:4d} {ex.calls_text(res):>34s} {ratio:6.1%} {res.logZ:9.3f} ± {res.logZerr:.3f} "
                  f"{(res.logZ - truth) / res.logZerr:+6.2f} {edge_pull(res, cols, lo, sigma):+9.2f} {wall:7.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
