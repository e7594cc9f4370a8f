"""Planck-like Gaussian: plain vs enhanced nested sampling (dynesty).

The problem is ``flowprior.examples``' Planck-like Gaussian: the mean,
covariance and prior box of ``anesthetic.examples.perfect_ns.planck_gaussian``
(Planck 2018 TTTEEE+lowl+lowE+lensing).  The log-likelihood is a normalised
Gaussian well inside the box, so the analytic log-evidence is
``-sum(log(hi - lo)) = 0.4328``.  Prints, per seed: likelihood calls,
logZ ± err, |logZ - truth| / err and wall time, for a plain run and an
enhanced run.

    python benchmarks/planck.py [--seeds 1] [--first-seed 0] [--nlive 500] [--nlive-low N] [--no-plain]
                                [--sampler dynesty|polychord] [--sampler-kwargs JSON] [--broaden S]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import flowprior as fp
from flowprior import examples as ex

NAMES = ex.PLANCK_NAMES
TRUTH = ex.PLANCK_LOGZ


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--nlive", type=int, default=500)
    ap.add_argument("--nlive-low", type=int, default=None, help="default: flowprior's")
    ap.add_argument("--no-plain", action="store_true")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--sampler", default="dynesty", choices=["dynesty", "polychord"])
    ap.add_argument("--high-repeats", type=int, default=None, help="PolyChord num_repeats in the high-resolution stage")
    ap.add_argument("--defensive", type=float, default=None, help="uniform weight in the flow prior (default: flowprior's)")
    ap.add_argument("--broaden", type=float, default=None, help="flow base scale (default: flowprior's)")
    ap.add_argument("--flow", default="auto", choices=["auto", "maf", "nsf", "piecewise"],
                    help="the enhanced run's flow (default auto)")
    ap.add_argument("--sampler-kwargs", type=json.loads, default=None,
                    help='JSON dict for the sampler, both runs and both stages (e.g. {"sample": "rwalk"})')
    args = ap.parse_args()
    like, prior = ex.GaussianLikelihood(), ex.planck_prior()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; sampler {args.sampler}; truth logZ = {TRUTH:.4f}; "
          f"sampler_kwargs {args.sampler_kwargs or {}}", flush=True)
    print(f"{'run':10s} {'seed':>4s} {'calls':>18s} {'logZ ± err':>18s} {'|dlogZ|/err':>11s} {'wall s':>7s}")
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        rows = []
        if not args.no_plain:
            t0 = time.perf_counter()
            res = fp.run(like, prior, 6, sampler=args.sampler, nlive=args.nlive, seed=seed, names=NAMES,
                         sampler_kwargs=args.sampler_kwargs)
            rows.append(("plain", res, time.perf_counter() - t0))
        t0 = time.perf_counter()
        extra = {} if args.defensive is None else {"defensive": args.defensive}
        if args.broaden is not None:
            extra["broaden"] = args.broaden
        if args.high_repeats is not None:
            extra["high_sampler_kwargs"] = {"num_repeats": args.high_repeats}
        res = fp.enhanced_run(like, prior, 6, sampler=args.sampler, nlive=args.nlive, nlive_low=args.nlive_low, seed=seed,
                              names=NAMES, sampler_kwargs=args.sampler_kwargs, flow=args.flow, **extra)
        rows.append(("enhanced", res, time.perf_counter() - t0))
        for name, res, wall in rows:
            calls = ex.calls_text(res)
            z = f"{res.logZ:.3f} ± {res.logZerr:.3f}"
            print(f"{name:10s} {seed:4d} {calls:>18s} {z:>18s} {abs(res.logZ - TRUTH) / res.logZerr:11.2f} {wall:7.1f}",
                  flush=True)


if __name__ == "__main__":
    sys.exit(main())
