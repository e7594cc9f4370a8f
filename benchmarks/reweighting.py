"""Likelihood reweighting on the Planck-like box: plain reweighting vs flowprior's upsampling.

``L_A`` is the Planck-like Gaussian of benchmarks/planck.py.  ``L_B`` has
its mean moved by 1 sigma along the leading principal axis, its covariance
shrunk to 0.7x and its normalisation scaled by e^-3, so that
``logZ_B = -sum(log(hi - lo)) - 3`` exactly.  A fast run (dynesty, nlive
100) with ``L_A`` is reweighted to ``L_B`` two ways, per seed:

- plain: every positive-weight sample of the fast run gets ``L_B / L_A``;
- flowprior: ``fp.reweight(..., target_neff)`` (fast posterior draws, then
  importance sampling from an adapting flow).

Prints neff, slow calls, efficiency (neff / calls), logZ_B ± err and
|dlogZ_B| / err, then the coverage of the error bar over the seeds.

    python benchmarks/reweighting.py [--seeds 10] [--target-neff 2000] [--max-calls 5000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings

import numpy as np

import flowprior as fp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from planck import COV, MEAN, NAMES, TRUTH, Box, Gaussian  # noqa: E402

EVALS, EVECS = np.linalg.eigh(COV)
MEAN_B = MEAN + np.sqrt(EVALS[-1]) * EVECS[:, -1]
COV_B = 0.7 * COV
TRUTH_B = TRUTH - 3.0


class GaussianB(Gaussian):
    """``L_B``: shifted, narrower, and e^-3 lower in total."""

    def __init__(self):
        super().__init__(MEAN_B, COV_B)
        self.norm -= 3.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--target-neff", type=float, default=2000)
    ap.add_argument("--max-calls", type=int, default=5000)
    args = ap.parse_args()
    warnings.simplefilter("ignore", UserWarning)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; truth logZ_B = {TRUTH_B:.4f}", flush=True)
    print(f"{'method':9s} {'seed':>4s} {'neff':>7s} {'calls':>6s} {'eff':>6s} {'logZ_B ± err':>17s} {'dZ/err':>6s} "
          f"{'stopped':>11s} {'wall s':>6s}")
    pulls = {"plain": [], "flowprior": []}
    slow = GaussianB()
    for seed in range(args.seeds):
        fast = fp.run(Gaussian(), Box(), 6, nlive=100, seed=seed, names=NAMES)
        # Plain reweighting of every positive-weight sample.
        t0 = time.perf_counter()
        w = fast.samples.get_weights()
        keep = w > 0
        theta = fast.samples[NAMES].to_numpy()[keep]
        logl_a = fast.samples["logL"].to_numpy()[keep]
        logl_b = np.array([slow(x) for x in theta])
        r = w[keep] * np.exp(logl_b - logl_a)
        ratio = r.sum() / w[keep].sum()
        wn = w[keep] / w[keep].sum()
        var = np.sum(wn**2 * (np.exp(logl_b - logl_a) - ratio) ** 2)
        logz = fast.logZ + np.log(ratio)
        err = np.hypot(fast.logZerr, np.sqrt(var) / ratio)
        neff = r.sum() ** 2 / np.sum(r**2)
        rows = [("plain", neff, int(keep.sum()), logz, err, "-", time.perf_counter() - t0)]
        t0 = time.perf_counter()
        rw = fp.reweight(fast, slow, target_neff=args.target_neff, max_calls=args.max_calls, seed=seed,
                         progress=False)
        rows.append(("flowprior", rw.neff, rw.ncall, rw.logZ, rw.logZerr, rw.stopped, time.perf_counter() - t0))
        for name, neff, calls, logz, err, stopped, wall in rows:
            pulls[name].append((logz - TRUTH_B) / err)
            z = f"{logz:.3f} ± {err:.3f}"
            print(f"{name:9s} {seed:4d} {neff:7.0f} {calls:6d} {neff / calls:6.1%} {z:>17s} "
                  f"{abs(logz - TRUTH_B) / err:6.2f} {stopped:>11s} {wall:6.1f}", flush=True)
    for name, p in pulls.items():
        p = np.abs(p)
        print(f"{name}: |dlogZ_B|/err within 1 sigma in {np.sum(p < 1)}/{len(p)}, within 2 sigma in "
              f"{np.sum(p < 2)}/{len(p)}")


if __name__ == "__main__":
    sys.exit(main())
