"""How the enhanced run's cost grows with dimension: a correlated Gaussian at d = 6, 12, 24 (and more).

For each dimension and seed: a plain run and an enhanced run of the same
problem (``flowprior.examples.correlated_gaussian``: sigma 0.1 with random
correlations in ``[-5, 5]^d``, closed-form logZ), with the chosen sampler.
Prints each run's likelihood calls (enhanced: low + check + high, with each
low level's nlive and check score), the enhanced/plain ratio, the logZ pull
``(logZ - truth) / logZerr``, the largest error of a posterior mean in
posterior widths (``mean``, against the exact Gaussian posterior) and wall
time, then a per-dimension summary.
``--no-plain`` skips the plain runs (they cost millions of calls at d = 24);
``--plain-calls d=N ...`` then gives their figures for the ratio.
``--problem planck-nuisances`` runs ``flowprior.examples.planck_nuisances``
instead: the Planck-like Gaussian plus ``d - 6`` nuisance parameters with
Gaussian priors, each measured together with one or two cosmological ones.

    python benchmarks/scaling.py [--dims 6 12 24] [--seeds 1] [--first-seed 0] [--nlive 500]
                                 [--sampler dynesty|polychord] [--no-plain] [--plain-calls 12=666428 ...]
                                 [--enhanced-kwargs JSON] [--problem gaussian|planck-nuisances] [--plot PNG]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings

import numpy as np

import flowprior as fp
from flowprior.examples import CorrelatedGaussian, calls_text, correlated_gaussian, nuisance_posterior, planck_nuisances


def mean_error(res, p) -> float:
    """The largest ``|posterior mean - exact mean| / exact sd`` over the parameters."""
    if isinstance(p.loglike, CorrelatedGaussian):
        mean, cov = np.zeros(p.ndim), p.loglike.cov
    else:
        mean, cov = nuisance_posterior(p)
    w = res.samples.get_weights()
    x = res.samples.iloc[:, :p.ndim].to_numpy(dtype=float)
    return float(np.max(np.abs(w @ x / w.sum() - mean) / np.sqrt(np.diag(cov))))


def one_run(enhanced: bool, d: int, seed: int, args) -> dict:
    """A plain or enhanced run at dimension ``d``: calls, pull, posterior-mean error and wall time."""
    p = correlated_gaussian(d) if args.problem == "gaussian" else planck_nuisances(d - 6)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if enhanced:
            res = fp.enhanced_run(p.loglike, p.prior, d, sampler=args.sampler, nlive=args.nlive, seed=seed,
                                  **args.enhanced_kwargs)
        else:
            res = fp.run(p.loglike, p.prior, d, sampler=args.sampler, nlive=args.nlive, seed=seed)
    return {"res": res, "calls": res.ncall["total"], "pull": (res.logZ - p.logZ) / res.logZerr,
            "mean": mean_error(res, p), "wall": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", type=int, nargs="+", default=[6, 12, 24])
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--nlive", type=int, default=500)
    ap.add_argument("--sampler", default="dynesty", choices=["dynesty", "polychord"])
    ap.add_argument("--no-plain", action="store_true")
    ap.add_argument("--plain-calls", nargs="*", default=[], help="d=N: a plain run's calls, for the ratio")
    ap.add_argument("--enhanced-kwargs", type=json.loads, default={})
    ap.add_argument("--problem", default="gaussian", choices=["gaussian", "planck-nuisances"])
    ap.add_argument("--plot", help="write calls against dimension to this PNG")
    args = ap.parse_args()
    given = {int(k): int(v) for k, v in (s.split("=") for s in args.plain_calls)}
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {args.problem}; sampler {args.sampler}, nlive {args.nlive}, "
          f"enhanced kwargs {args.enhanced_kwargs}")
    print(f"{'d':>3s} {'seed':>4s} {'run':9s} {'calls':>40s} {'ratio':>6s} {'pull':>6s} {'mean':>5s} {'wall s':>7s}",
          flush=True)
    summary, points = {}, []
    for d in args.dims:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            plain = None if args.no_plain else one_run(False, d, seed, args)
            if plain:
                print(f"{d:3d} {seed:4d} {'plain':9s} {plain['calls']:>40d} {'':>6s} {plain['pull']:+6.2f} "
                      f"{plain['mean']:5.2f} {plain['wall']:7.0f}", flush=True)
            enh = one_run(True, d, seed, args)
            base = plain["calls"] if plain else given.get(d)
            ratio = enh["calls"] / base if base else float("nan")
            print(f"{d:3d} {seed:4d} {'enhanced':9s} {calls_text(enh['res']):>40s} {ratio:6.1%} "
                  f"{enh['pull']:+6.2f} {enh['mean']:5.2f} {enh['wall']:7.0f}", flush=True)
            summary.setdefault(d, []).append((ratio, enh["pull"]))
            points.append((d, base or np.nan, enh["calls"]))
    for d, rows in summary.items():
        ratios, pulls = np.array(rows).T
        print(f"d = {d}: enhanced/plain median {np.nanmedian(ratios):.1%} (range {np.nanmin(ratios):.1%}-"
              f"{np.nanmax(ratios):.1%}); |pull| <= 2 in {int(np.sum(np.abs(pulls) <= 2))}/{len(pulls)}")

    if args.plot:
        plot(points, args)


def plot(points: list, args) -> None:
    """Plain and enhanced calls against dimension, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d, plain, enhanced = np.array(points, dtype=float).T
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.semilogy(d, plain, "o", label="plain")
    ax.semilogy(d, enhanced, "s", label="enhanced")
    ax.set(xlabel="dimension d", ylabel="likelihood calls", title=f"{args.problem}, {args.sampler}, nlive {args.nlive}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.plot, dpi=120)
    print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
