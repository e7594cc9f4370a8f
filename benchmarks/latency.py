"""Per-point prior-transform latency, as a sampler calls it (one point at a time).

d = 6, 5 transforms, 2 x 64 hidden units: a MAF and an 8-piece flow (slabs,
and the bijective Rosenblatt transform at the piecewise default of 3
transforms and at 5), through flowprior's compiled path, and a plain zuko
call for scale.  Prints a table of
medians and 90th percentiles in microseconds.

    python benchmarks/latency.py
"""

from __future__ import annotations

import platform
import time

import numpy as np
import torch

import flowprior as fp

D, N_CALLS = 6, 20000
ARCH = dict(n_transforms=5, hidden_features=(64, 64), max_epochs=30, progress=False)


def per_call(fn, points) -> np.ndarray:
    for p in points[:200]:  # warm-up (compilation, caches)
        fn(p)
    out = np.empty(len(points))
    clock = time.perf_counter_ns
    for i, p in enumerate(points):
        t0 = clock()
        fn(p)
        out[i] = clock() - t0
    return out / 1e3


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, D))
    centres = rng.normal(scale=6.0, size=(8, D))
    blobs = np.concatenate([c + rng.normal(size=(500, D)) for c in centres])
    maf = fp.MAF(seed=0, **ARCH).fit(x)
    pw = fp.PiecewiseFlow(clusters=8, seed=0, **ARCH).fit(blobs)
    ros5 = fp.PiecewiseFlow(clusters=8, seed=0, transform="rosenblatt", **ARCH).fit(blobs)
    ros3 = fp.PiecewiseFlow(clusters=8, seed=0, transform="rosenblatt", **{**ARCH, "n_transforms": 3}).fit(blobs)
    u = rng.uniform(size=(N_CALLS, D))
    zuko_flow = maf.flow_
    ndtri = torch.distributions.Normal(0.0, 1.0).icdf

    def zuko_call(p):
        with torch.no_grad():
            return zuko_flow().transform.inv(ndtri(torch.as_tensor(p, dtype=torch.float32))).numpy()

    rows = [
        ("MAF prior_transform (flowprior)", per_call(maf.prior_transform, u), 30),
        (f"{len(pw.pieces_)}-piece prior_transform (flowprior)", per_call(pw.prior_transform, u), 60),
        (f"{len(ros3.pieces_)}-piece Rosenblatt, 3 transforms", per_call(ros3.prior_transform, u[:5000]), 200),
        (f"{len(ros5.pieces_)}-piece Rosenblatt, 5 transforms", per_call(ros5.prior_transform, u[:5000]), 200),
        ("  its inverse_transform, 5 transforms", per_call(ros5.inverse_transform, ros5(u[:5000])), None),
        ("MAF log_prob (flowprior)", per_call(maf.log_prob, maf(u[:5000])), None),
        ("MAF prior_transform_and_log_prob", per_call(maf.prior_transform_and_log_prob, u[:5000]), None),
        ("plain zuko inverse call (torch)", per_call(zuko_call, u[:2000]), None),
    ]
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, torch threads {torch.get_num_threads()}")
    print(f"d={D}, {ARCH['n_transforms']} transforms, hidden {ARCH['hidden_features']}")
    print(f"{'call':45s} {'median us':>10s} {'p90 us':>8s} {'target':>8s}")
    for name, t, target in rows:
        tgt = f"<= {target}" if target else ""
        print(f"{name:45s} {np.median(t):10.1f} {np.percentile(t, 90):8.1f} {tgt:>8s}")


if __name__ == "__main__":
    main()
