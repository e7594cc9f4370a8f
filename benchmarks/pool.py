"""Wall time of dynesty enhanced and plain runs spread over a pool of workers, with exact call counts.

The likelihood is the Planck-like 6-D Gaussian (``flowprior.examples``)
made to cost ``--cost`` seconds of CPU per call (a busy loop, as an
expensive likelihood would).  ``--pool none`` runs serially;
``--pool processes --workers N`` uses a ``multiprocessing`` pool; ``--pool
mpi`` uses ``mpi4py.futures.MPIPoolExecutor``, started as

    mpirun -n 3 python -m mpi4py.futures benchmarks/pool.py --pool mpi     (2 workers; -n 2: 1 worker)

Prints, per run, the workers, the likelihood calls flowprior reports, the
calls the workers made (each call appends a byte to a file: an independent
count), logZ against the truth and the wall time.

    python benchmarks/pool.py [--pool none|processes|mpi] [--workers 2] [--cost 0.002] [--seed 0] [--plain]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import warnings

import flowprior as fp
from flowprior.examples import PLANCK_LOGZ, GaussianLikelihood, planck_prior


class Costly:
    """The Planck-like Gaussian, burning ``cost`` seconds of CPU and appending a byte to ``path`` per call."""

    def __init__(self, cost: float, path: str):
        self.like, self.cost, self.path = GaussianLikelihood(), cost, path

    def __call__(self, theta) -> float:
        end = time.process_time() + self.cost
        while time.process_time() < end:
            pass
        with open(self.path, "a") as f:
            f.write("x")
        return self.like(theta)


def open_pool(kind: str, workers: int):
    """The pool to pass as ``pool=`` (None for a serial run) and its worker count."""
    if kind == "none":
        return None, 1
    if kind == "processes":
        import multiprocessing

        return multiprocessing.get_context("spawn").Pool(workers), workers
    from mpi4py.futures import MPIPoolExecutor

    pool = MPIPoolExecutor()
    return pool, pool.num_workers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", default="none", choices=["none", "processes", "mpi"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cost", type=float, default=0.002)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plain", action="store_true", help="also a plain run")
    args = ap.parse_args()
    pool, workers = open_pool(args.pool, args.workers)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; pool {args.pool}, {workers} workers, "
          f"{args.cost * 1e3:.1f} ms per call")
    runs = [("enhanced", fp.enhanced_run)] + ([("plain", fp.run)] if args.plain else [])
    try:
        for name, func in runs:
            with tempfile.TemporaryDirectory() as tmp:
                like = Costly(args.cost, os.path.join(tmp, "calls"))
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = func(like, planck_prior(), 6, nlive=500, seed=args.seed, pool=pool)
                wall = time.perf_counter() - t0
                made = os.path.getsize(like.path)
            counted = res.ncall["total"] + res.ncall.get("fingerprint", 0)
            print(f"{name:8s} calls reported {res.ncall['total']:>7d}, made {made:>7d} ({'exact' if counted == made else 'WRONG'}); "
                  f"logZ {res.logZ:.3f} ± {res.logZerr:.3f} (truth {PLANCK_LOGZ:.3f}); wall {wall:.1f} s", flush=True)
    finally:
        if pool is not None:
            pool.shutdown() if hasattr(pool, "shutdown") else pool.close()


if __name__ == "__main__":
    main()
