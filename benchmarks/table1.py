"""Paper Table 1: KL divergence of MAF and piecewise MAF against exact 2-D targets.

KL is the paper's eq. 16, ``E_q[log q - log p]`` over 20 000 flow samples,
with its Monte Carlo error; each flow is trained on 10 000 exact samples of
normflows' TwoMoons, CircularGaussianMixture(8) and RingMixture(2).  Repeats
use different training samples and seeds; the table gives the mean KL over
repeats with the error of that mean, their standard deviation and maximum,
and the median fit wall time (flowprior defaults, one process).

    python benchmarks/table1.py [--repeats 10] [--targets TwoMoons ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

import flowprior as fp
from flowprior import examples as ex

PAPER = {"TwoMoons": "0.004 ± 0.022", "CircularGaussianMixture": "0.001 ± 0.005", "RingMixture": "0.031 ± 0.032"}


class GaussianMixtureReference:
    """scikit-learn's GaussianMixture with a fixed number of components, as a reference density.

    Not a flow and not a prior transform: it calibrates how low the KL of a
    well-chosen classical density estimate gets from the same 10 000 samples.
    """

    def __init__(self, k: int, seed: int):
        from sklearn.mixture import GaussianMixture

        self.gmm = GaussianMixture(k, random_state=seed)
        self.pieces_ = [None] * k

    def fit(self, x):
        self.gmm.fit(x)
        return self

    def sample(self, n: int, seed: int) -> np.ndarray:
        self.gmm.random_state = seed  # GaussianMixture.sample draws from random_state
        return self.gmm.sample(n)[0]

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        return self.gmm.score_samples(x)


def run(name: str, kind: str, repeat: int, n_jobs: int = 1, flow_kwargs: dict | None = None) -> dict:
    x = ex.target_sample(name, 10000, seed=1000 + repeat)
    if kind.startswith("GMM"):
        est = GaussianMixtureReference(int(kind[3:]), seed=repeat)
    elif kind == "MAF":
        est = fp.MAF(seed=repeat, progress=False, **(flow_kwargs or {}))
    else:
        est = fp.PiecewiseFlow(seed=repeat, progress=False, n_jobs=n_jobs, **(flow_kwargs or {}))
    t0 = time.perf_counter()
    est.fit(x)
    fit = time.perf_counter() - t0
    kl, err = ex.target_kl(est, name, seed=repeat)
    return {"target": name, "kind": kind, "repeat": repeat, "kl": kl, "kl_err": err, "fit_s": fit,
            "pieces": len(est.pieces_)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--targets", nargs="*", default=list(PAPER))
    ap.add_argument("--kinds", nargs="*", default=["MAF", "Piecewise"],
                    help="MAF, Piecewise, or GMM<k> (a k-component GaussianMixture, as a reference)")
    ap.add_argument("--n-jobs", type=int, default=1, help="processes training the pieces of a piecewise flow")
    ap.add_argument("--flow-kwargs", type=json.loads, default=None,
                    help='JSON settings for the flows instead of the defaults, e.g. \'{"n_transforms": 3}\'')
    ap.add_argument("--json", help="also write every run to this file")
    args = ap.parse_args()
    rows = []
    for name in args.targets:
        for kind in args.kinds:
            for r in range(args.repeats):
                row = run(name, kind, r, args.n_jobs, args.flow_kwargs)
                rows.append(row)
                print(f"  {name:24s} {kind:9s} #{r}: KL {row['kl']:.4f} ± {row['kl_err']:.4f}, "
                      f"fit {row['fit_s']:.1f} s, {row['pieces']} piece(s)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores; {args.repeats} repeats; "
          f"piecewise n_jobs={args.n_jobs}; flow settings {args.flow_kwargs or 'default'}")
    print(f"{'target':24s} {'flow':9s} {'KL mean ± err':>18s} {'sd':>7s} {'max':>7s} {'median fit s':>13s} {'pieces':>7s}  paper (piecewise)")
    for name in args.targets:
        for kind in args.kinds:
            sel = [r for r in rows if r["target"] == name and r["kind"] == kind]
            kl = np.array([r["kl"] for r in sel])
            err = kl.std(ddof=1) / np.sqrt(len(kl)) if len(kl) > 1 else sel[0]["kl_err"]
            fits = np.median([r["fit_s"] for r in sel])
            pieces = np.median([r["pieces"] for r in sel])
            paper = PAPER[name] if kind == "Piecewise" else ""
            sd = kl.std(ddof=1) if len(kl) > 1 else float("nan")
            print(f"{name:24s} {kind:9s} {kl.mean():9.4f} ± {err:6.4f} {sd:7.4f} {kl.max():7.4f} {fits:13.1f} {pieces:7.0f}  {paper}")


if __name__ == "__main__":
    main()
