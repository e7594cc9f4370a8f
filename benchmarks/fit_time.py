"""Fit time and held-out log-likelihood: 5 000 samples of a correlated 2-D Gaussian.

The data protocol matches benchmarks/margarine_baseline.md (rho = 0.8;
seed s: ``np.random.default_rng(s)`` draws 5 000 training then 20 000 test
points), so the two are directly comparable.  Early stopping is on (flowprior
defaults).  The held-out log-likelihood's optimum is the exact Gaussian's
mean log-density, -(1 + log 2 pi + log det C / 2).

    python benchmarks/fit_time.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

import flowprior as fp

COV = np.array([[1.0, 0.8], [0.8, 1.0]])
OPTIMUM = -(1 + np.log(2 * np.pi) + 0.5 * np.log(np.linalg.det(COV)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    fp.MAF(max_epochs=2, progress=False).fit(np.random.default_rng(0).normal(size=(100, 2)))  # compile kernels
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; optimum held-out logL {OPTIMUM:.4f}")
    print(f"{'seed':>4s} {'fit s':>7s} {'epochs':>7s} {'best':>5s} {'held-out logL':>14s} {'- optimum':>10s}")
    fits, gaps = [], []
    for s in range(args.seeds):
        rng = np.random.default_rng(s)
        x_train = rng.multivariate_normal([0.0, 0.0], COV, size=5000)
        x_test = rng.multivariate_normal([0.0, 0.0], COV, size=20000)
        t0 = time.perf_counter()
        flow = fp.MAF(seed=s, progress=False).fit(x_train)
        fit = time.perf_counter() - t0
        logl = flow.log_prob(x_test).mean()
        fits.append(fit)
        gaps.append(logl - OPTIMUM)
        print(f"{s:4d} {fit:7.2f} {len(flow.record_.val_loss):7d} {flow.record_.best_epoch:5d} {logl:14.4f} {logl - OPTIMUM:10.4f}")
    print(f"median fit {np.median(fits):.2f} s (target <= 3 s); median held-out logL - optimum {np.median(gaps):+.4f} "
          f"(margarine 1.4.2: -0.049 at its defaults in 11.7 s, -0.013 with 1000 epochs in 20.9 s)")


if __name__ == "__main__":
    main()
