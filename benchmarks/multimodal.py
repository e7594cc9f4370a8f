"""Multimodal target: plain vs enhanced nested sampling on a 4-D mixture of four Gaussians.

The likelihood is ``flowprior.examples``' four-mode mixture: a normalised
mixture of four well-separated Gaussians (weights 0.4, 0.3, 0.2, 0.1; sigma
0.5) well inside the uniform prior box [-10, 10]^4, so the analytic
log-evidence is ``-4 log 20`` and each mode's posterior mass is its weight.
Prints, per seed and run: likelihood calls, logZ ± err against the truth,
the posterior mass of each mode (samples assigned to the nearest centre)
with its error from simulated prior-volume shrinkages, the largest
deviation in units of that error, and wall time.

    python benchmarks/multimodal.py [--seeds 3] [--first-seed 0] [--nlive 500] [--nlive-low N]
                                    [--sampler dynesty|polychord] [--no-plain] [--sampler-kwargs JSON]

dynesty runs use ``bootstrap=0`` (both runs, both stages) unless
``--sampler-kwargs`` says otherwise: dynesty's default bootstrapped
ellipsoid enlargement lets the plain run's efficiency collapse on these
separated modes, a fixed enlargement does not (benchmarks/RESULTS.md,
"Multimodal: 4-D mixture of four Gaussians").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

import flowprior as fp
from flowprior import examples as ex
from flowprior.numerics import simulated_log_dx

D = ex.MIXTURE_NDIM
WEIGHTS = ex.MIXTURE_WEIGHTS
TRUTH = ex.MIXTURE_LOGZ


def mode_masses(res, nsim: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mass of each mode (nearest centre) and its nested-sampling error.

    The error comes from simulating the run's prior-volume shrinkages
    (``t ~ Beta(nlive, 1)`` per dead point, as anesthetic does, but with a
    seeded Generator): it carries the random split of live points between
    modes, which a binomial error from the effective sample size misses
    (measured: plain runs then looked 7 sigma off).
    """
    s = res.samples
    x = s.iloc[:, :D].to_numpy(dtype=float)
    nearest = ex.nearest_mode(x)
    logl = s["logL"].to_numpy(dtype=float)
    nlive = s["nlive"].to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    logw = logl + simulated_log_dx(nlive, rng.uniform(size=(nsim, len(logl))).T).T
    w = np.exp(logw - logw.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    masses = np.stack([w[:, nearest == k].sum(axis=1) for k in range(len(WEIGHTS))], axis=1)
    return masses.mean(axis=0), masses.std(axis=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--nlive", type=int, default=500)
    ap.add_argument("--nlive-low", type=int, default=None, help="default: flowprior's")
    ap.add_argument("--sampler", default="dynesty", choices=["dynesty", "polychord"])
    ap.add_argument("--no-plain", action="store_true")
    ap.add_argument("--transform", default=None, choices=["slab", "rosenblatt"],
                    help="a piecewise flow's prior transform in the enhanced run (default: flowprior's)")
    ap.add_argument("--sampler-kwargs", type=json.loads, default=None,
                    help='JSON dict for the sampler (default for dynesty: {"bootstrap": 0})')
    args = ap.parse_args()
    like, prior = ex.FourModes(), ex.mixture_prior()
    transform = {} if args.transform is None else {"transform": args.transform}
    sk = args.sampler_kwargs if args.sampler_kwargs is not None else (
        {"bootstrap": 0} if args.sampler == "dynesty" else {})
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; sampler {args.sampler}; truth logZ = {TRUTH:.4f}; "
          f"mode masses {WEIGHTS.tolist()}; sampler_kwargs {sk}; transform {args.transform or 'default'}", flush=True)
    print(f"{'run':9s} {'seed':>4s} {'flow':>9s} {'calls':>15s} {'logZ ± err':>16s} {'dZ/err':>6s} "
          f"{'mode masses':>27s} {'max dm/err':>10s} {'wall s':>7s}")
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        rows = []
        if not args.no_plain:
            t0 = time.perf_counter()
            res = fp.run(like, prior, D, sampler=args.sampler, nlive=args.nlive, seed=seed, sampler_kwargs=sk)
            rows.append(("plain", res, time.perf_counter() - t0))
        t0 = time.perf_counter()
        res = fp.enhanced_run(like, prior, D, sampler=args.sampler, nlive=args.nlive, nlive_low=args.nlive_low,
                              seed=seed, sampler_kwargs=sk, **transform)
        rows.append(("enhanced", res, time.perf_counter() - t0))
        for name, res, wall in rows:
            calls = ex.calls_text(res)
            flow = "-" if name == "plain" else type(res.flow).__name__.replace("PiecewiseFlow", "piecewise")
            if name != "plain" and hasattr(res.flow, "weights_") and len(res.flow.weights_) > 1:
                flow += f"({len(res.flow.weights_)})"
            mass, err = mode_masses(res)
            z = f"{res.logZ:.3f} ± {res.logZerr:.3f}"
            masses = " ".join(f"{m:.3f}" for m in mass)
            print(f"{name:9s} {seed:4d} {flow:>9s} {calls:>15s} {z:>16s} {abs(res.logZ - TRUTH) / res.logZerr:6.2f} "
                  f"{masses:>27s} {np.max(np.abs(mass - WEIGHTS) / err):10.2f} {wall:7.1f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
