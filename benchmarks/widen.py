"""What widening a failing flow's base does to the high-resolution stage (dynesty).

Runs one low-resolution dynesty run on the 4-D banana or Student-t of
benchmarks/banana.py, trains flowprior's ``flow="auto"`` flow on it, and for
each base scale prints the check (ESS per draw of the high stage's
likelihood at 500 uniform draws of the flow's cube, the perfect flow's, and
their ratio, the score) and the high stage's calls and logZ, capped at
``--maxcall``.  This is the measurement behind ``enhanced_run`` widening the
base of a last level that fails its check (``EnhancedDefaults.widen``).

    python benchmarks/widen.py [--target banana|student] [--seed 1] [--nlive-low 100]
                               [--scales 1.2 1.8 2.7] [--maxcall 300000] [--sampler-kwargs JSON]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from flowprior.examples import problem
from flowprior.integrations import adapter
from flowprior.integrations.base import HighStart, StageSettings
from flowprior.workflows.checked import CheckedLikelihood, CheckedPrior
from flowprior.workflows.levels import train
from flowprior.workflows.lowcheck import check_flow, perfect_ess_fraction
from flowprior.workflows.repartition import RepartitionedLikelihood


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="banana", choices=["banana", "student"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--nlive-low", type=int, default=100)
    ap.add_argument("--nlive", type=int, default=500)
    ap.add_argument("--scales", type=float, nargs="+", default=[1.2, 1.8, 2.7])
    ap.add_argument("--maxcall", type=int, default=300_000, help="cap on each high stage's likelihood calls")
    ap.add_argument("--sampler-kwargs", type=json.loads, default={"sample": "rwalk"})
    args = ap.parse_args()
    target = problem(args.target)
    d, like, box, truth = target.ndim, target.loglike, target.prior, target.logZ
    dynesty = adapter("dynesty")
    settings = StageSettings(args.sampler_kwargs, None)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; target {args.target}, seed {args.seed}, "
          f"nlive_low {args.nlive_low}, nlive {args.nlive}, sampler_kwargs {args.sampler_kwargs}")
    t0 = time.perf_counter()
    low = dynesty.run(like, box, d, nlive=args.nlive_low, seed=np.random.default_rng(args.seed),
                      sampler_kwargs=dynesty.low_settings(d, args.nlive_low, settings).sampler_kwargs)
    flow = train("auto", low, np.random.default_rng(args.seed + 100))
    print(f"low run: {low.ncall['total']} calls, logZ {low.logZ:.3f} ± {low.logZerr:.3f} (truth {truth:.4f}); "
          f"flow {type(flow).__name__}, {len(flow.weights_)} piece(s); {time.perf_counter() - t0:.0f} s")
    print(f"{'scale':>6s} {'check ESS':>10s} {'perfect':>8s} {'score':>6s} {'high calls':>11s} {'logZ ± err':>17s} "
          f"{'dZ/err':>7s} {'wall s':>7s}")
    for s in args.scales:
        wide = flow.broadened(s)
        rl = RepartitionedLikelihood(CheckedLikelihood(like), CheckedPrior(box, d), wide)
        ess, _, draws = check_flow(rl, d, args.nlive, np.random.default_rng(args.seed + 200))
        perfect = perfect_ess_fraction(s, d)
        start = HighStart(tail=None, pieces=len(flow.pieces_), draws=draws)
        hk = dynesty.high_settings(d, args.nlive, settings, None, start).sampler_kwargs
        t1 = time.perf_counter()
        high = dynesty.run(rl, wide, d, nlive=args.nlive, seed=np.random.default_rng(args.seed + 300),
                           sampler_kwargs=hk, run_kwargs={"maxcall": args.maxcall})
        capped = " (cap)" if high.ncall["total"] >= args.maxcall else ""
        print(f"{s:6.2f} {ess:10.3f} {perfect:8.3f} {ess / perfect:6.2f} {high.ncall['total']:11d}{capped} "
              f"{high.logZ:8.3f} ± {high.logZerr:.3f} {abs(high.logZ - truth) / high.logZerr:7.2f} "
              f"{time.perf_counter() - t1:7.0f}", flush=True)


if __name__ == "__main__":
    main()
