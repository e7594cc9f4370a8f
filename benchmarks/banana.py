"""Non-Gaussian targets: plain vs enhanced nested sampling on a 4-D twisted Gaussian ("banana") or Student-t.

Both targets are defined in ``flowprior.examples``.

``--target banana`` (default).  Draw ``y ~ N(0, C)`` in R^4 with
``C = diag(1, s^2, 1, s^2)`` plus a correlation ``rho`` between ``y1`` and
``y3``, and twist each pair:

    x1 = y1,   x2 = y2 + b (x1^2 - 1),   x3 = y3,   x4 = y4 + b (x3^2 - 1)

with b = 1, s = 0.25, rho = 0.8.  The map ``x -> y`` is triangular with unit
diagonal, so its Jacobian is 1 and the likelihood ``L(x) = N(y(x); 0, C)``
integrates to exactly 1 over R^4.  Each pair is a banana: over
``|x1| < 2`` the ridge ``x2 = x1^2 - 1`` moves 4 units, 16 widths ``s``, and
the marginal of ``x2`` is a shifted chi-square plus noise, clearly
non-Gaussian (skewness 2.7); ``rho`` couples the two bananas.  The uniform
prior box, ``x1, x3`` in [-6, 6] and ``x2, x4`` in [-1 - 6 s, 35], holds
all but at most 4.4e-9 of that mass (printed: one-dimensional quadrature
of each pair's exact mass outside, plus a seeded Monte Carlo count from the
exact y-space Gaussian), so ``logZ = -sum(log(hi - lo)) = -12.2185`` to
within that.  The prior-to-posterior KL divergence is analytic too (the Jacobian is 1, so the
posterior's entropy is the Gaussian's): 9.83 nats.  Posterior checks: the
weighted means of ``x1`` (truth 0, sd 1) and ``x2^2`` (truth
``2 b^2 + s^2``, sd ``sqrt(56 b^4 + 8 b^2 s^2 + 2 s^4)``).

``--target student``: a product of four Student-t densities (nu = 3, scale
0.2) on the box [-10, 10]^4.  Their tails are not negligible there, so the
truncation is kept exactly: ``logZ = 4 log(T(50) - T(-50)) - 4 log 20``
with ``T`` the t_3 CDF (``scipy.stats.t.cdf``).  Checks: the weighted mean
of ``x1`` and the posterior mass of ``|x1| < 0.2``, truths and sds by
quadrature of the truncated density.

Per seed and run, prints likelihood calls, logZ ± err, |logZ - truth| / err,
wall time, the enhanced / plain call ratio, and each posterior check as
``mean (pull)`` with pull = (mean - truth) / err.  The check's error adds, in
quadrature, the sampling error ``sd / sqrt(ESS)`` (Kish's effective sample
size of the posterior weights, ``NestedSamples.neff(beta=2)``) and the
weights' own nested-sampling error (the spread of the estimate over 200
simulated prior-volume shrinkage sequences, seeded, as in
benchmarks/multimodal.py).  That error assumes independent draws from each
likelihood contour: with an MCMC sampler (dynesty's ``rwalk``) the split of
live points between the banana's two arms drifts from iteration to
iteration, which it does not cover (measured: plain ``rwalk`` runs at
nlive 500 put <x1> 3-7 of these errors from 0).  Under each enhanced row:
the low-resolution stage's nlive and logZ, and the share of the posterior in
the flow's outer 1 % shells.  Warnings raised during a run are counted and
listed under its row.  A summary line ends the table.

    python benchmarks/banana.py [--target banana|student] [--seeds 3] [--first-seed 0] [--nlive 500]
                                [--nlive-low N] [--sampler dynesty|polychord] [--no-plain]
                                [--sampler-kwargs JSON] [--mc 10000000] [--flow auto|maf|nsf|piecewise]

``--sampler-kwargs`` go to both ``fp.run`` and ``fp.enhanced_run`` (both
stages, less what ``enhanced_run`` sets for its high stage: for dynesty,
``sample="unif"`` and ``bootstrap=0``); without it each sampler runs on its
(and flowprior's) defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from collections import Counter

import numpy as np
from scipy import stats

import flowprior as fp
from flowprior import examples as ex
from flowprior.numerics import simulated_log_dx

D = 4
NAMES = ex.BANANA_NAMES


def make_target(name: str, mc: int):
    """Likelihood, prior, truth, checks ``{label: (fn, truth, sd)}`` and a description of the truth."""
    if name == "banana":
        truth = ex.BANANA_LOGZ
        kl = -truth - 0.5 * np.linalg.slogdet(2 * np.pi * np.e * ex.BANANA_COV)[1]
        pair = ex.banana_pair_outside()
        t0 = time.perf_counter()
        nout = ex.banana_mc_outside(mc) if mc else 0
        mc_s = time.perf_counter() - t0
        bound = (nout if nout else 3.0) / mc if mc else float("nan")  # 3/n: 95 % upper limit for 0 events
        info = (f"target banana: b {ex.BANANA_B}, s {ex.BANANA_S}, rho {ex.BANANA_RHO}; "
                f"box lo {ex.BANANA_LO.tolist()} hi {ex.BANANA_HI.tolist()}\n"
                f"truth logZ = {truth:.4f} (-sum log(hi - lo)); prior-to-posterior KL {kl:.2f} nats\n"
                f"truncation: each pair's mass outside its box (quadrature) {pair:.2e}, so all four "
                f"coordinates' mass outside is in [{pair:.2e}, {2 * pair:.2e}]; Monte Carlo: {nout} of {mc:.0e} "
                f"exact draws outside (seeded, {mc_s:.0f} s; {'95 % upper bound ' if not nout else ''}{bound:.1e})")
        b, s = ex.BANANA_B, ex.BANANA_S
        e2 = 2 * b**2 + s**2
        sd2 = np.sqrt(56 * b**4 + 8 * b**2 * s**2 + 2 * s**4)
        checks = {"x1": (lambda x: x[:, 0], 0.0, 1.0), "x2^2": (lambda x: x[:, 1] ** 2, e2, sd2)}
        return ex.Banana(), ex.banana_prior(), truth, checks, info
    if name == "student":
        nu, scale, half = ex.STUDENT_NU, ex.STUDENT_SCALE, ex.STUDENT_HALF
        mass, mom = ex.student_moments()
        truth = ex.student_logz(mass)
        kl = D * (np.log(2 * half) - stats.t(nu, scale=scale).entropy())  # untruncated entropy: approximate
        info = (f"target student: {D} x t(nu {nu:g}, scale {scale}) on [-{half:g}, {half:g}]^{D}\n"
                f"truth logZ = {truth:.6f} (in-box mass per coordinate 1 - {1 - mass:.3e}, exact, via t.cdf); "
                f"prior-to-posterior KL ~ {kl:.2f} nats")
        checks = {"x1": (lambda x: x[:, 0], *mom["x1"]),
                  "P(|x1|<0.2)": (lambda x: (np.abs(x[:, 0]) < scale).astype(float), *mom["P(|x1|<0.2)"])}
        return ex.StudentT(), ex.student_prior(), truth, checks, info
    raise ValueError(name)


def posterior_check(res, fn, truth: float, sd: float, nsim: int = 200, seed: int = 0) -> tuple[float, float]:
    """Weighted posterior mean of ``fn(x)`` and its pull against ``truth``.

    Error: ``sd / sqrt(ESS)`` (Kish) in quadrature with the spread of the
    estimate over ``nsim`` simulated volume-shrinkage sequences.
    """
    s = res.samples
    x = s.iloc[:, :D].to_numpy(dtype=float)
    f = fn(x)
    w = s.get_weights()
    keep = w > 0
    mean = float(np.sum(w[keep] * f[keep]) / np.sum(w[keep]))
    neff = float(s.neff(beta=2))
    logl = s["logL"].to_numpy(dtype=float)
    nlive = s["nlive"].to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    logw = logl + simulated_log_dx(nlive, rng.uniform(size=(nsim, len(logl))).T).T
    logw = np.where(np.isfinite(logl), logw, -np.inf)
    ws = np.exp(logw - logw.max(axis=1, keepdims=True))
    ws /= ws.sum(axis=1, keepdims=True)
    ff = np.where(np.isfinite(f), f, 0.0)
    sim = ws @ ff
    err = float(np.sqrt(sd**2 / neff + sim.var()))
    return mean, (mean - truth) / err


def short(message: str, n: int = 90) -> str:
    message = " ".join(str(message).split())
    return message if len(message) <= n else message[: n - 3] + "..."


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="banana", choices=["banana", "student"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--nlive", type=int, default=500)
    ap.add_argument("--nlive-low", type=int, default=None, help="default: flowprior's (100 for PolyChord and dynesty's uniform sampling, 25 for its MCMC methods, growing on a failed check)")
    ap.add_argument("--sampler", default="dynesty", choices=["dynesty", "polychord"])
    ap.add_argument("--no-plain", action="store_true")
    ap.add_argument("--flow", default="auto", choices=["auto", "maf", "nsf", "piecewise"],
                    help="the enhanced run's flow (default auto)")
    ap.add_argument("--transform", default=None, choices=["slab", "rosenblatt"],
                    help="a piecewise flow's prior transform in the enhanced run (default: flowprior's)")
    ap.add_argument("--sampler-kwargs", type=json.loads, default=None,
                    help="JSON dict for the sampler, both runs and both stages (default: the sampler's own defaults)")
    ap.add_argument("--mc", type=int, default=10_000_000, help="Monte Carlo draws for the banana's truncation check (0: skip)")
    args = ap.parse_args()
    like, prior, truth, checks, info = make_target(args.target, args.mc)
    labels = list(checks)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; sampler {args.sampler}; nlive {args.nlive}; "
          f"nlive_low {args.nlive_low if args.nlive_low is not None else 'default'}; sampler_kwargs {args.sampler_kwargs}")
    print(info, flush=True)
    print(f"{'run':9s} {'seed':>4s} {'flow':>5s} {'calls':>15s} {'logZ ± err':>16s} {'dZ/err':>6s} {'wall s':>7s} "
          f"{'enh/plain':>9s} " + " ".join(f"{'<' + c + '> (pull)':>20s}" for c in labels))
    summary = {"plain": [], "enhanced": []}
    ratios = []

    def timed(fn, **kwargs):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            res = fn(like, prior, D, sampler=args.sampler, nlive=args.nlive, names=NAMES,
                     sampler_kwargs=args.sampler_kwargs, **kwargs)
            return res, time.perf_counter() - t0, caught

    def report(name, seed, res, wall, caught, plain_calls=None):
        if name == "plain":
            calls, flow, ratio = str(res.ncall["total"]), "-", "-"
        else:
            calls = ex.calls_text(res)
            flow = type(res.flow).__name__.replace("PiecewiseFlow", "pw")
            if hasattr(res.flow, "weights_") and len(res.flow.weights_) > 1:
                flow += f"({len(res.flow.weights_)})"
            ratio = "-"
            if plain_calls:
                ratios.append(res.ncall["total"] / plain_calls)
                ratio = f"{ratios[-1]:.0%}"
        dz = abs(res.logZ - truth) / res.logZerr
        pulls = [posterior_check(res, *checks[c]) for c in labels]
        summary[name].append((dz, [p for _, p in pulls]))
        z = f"{res.logZ:.3f} ± {res.logZerr:.3f}"
        cols = " ".join(f"{f'{m:.3f} ({p:+.2f})':>20s}" for m, p in pulls)
        print(f"{name:9s} {seed:4d} {flow:>5s} {calls:>15s} {z:>16s} {dz:6.2f} {wall:7.1f} {ratio:>9s} {cols}",
              flush=True)
        counts = Counter((w.category.__name__, short(w.message)) for w in caught)
        for (cat, msg), k in counts.items():
            print(f"    warning x{k}: {cat}: {msg}", flush=True)
        if name == "enhanced":
            low = res.low
            nlow = int(low.samples["nlive"].iloc[0])
            print(f"    low stage: nlive {nlow}, logZ {low.logZ:.3f} ± {low.logZerr:.3f} "
                  f"(dZ/err {abs(low.logZ - truth) / low.logZerr:.2f})"
                  + (f"; flow tail weight {res.tail_weight:.1%} (posterior in the flow's outer 1 % shells)"
                     if getattr(res, "tail_weight", None) is not None else ""), flush=True)

    for seed in range(args.first_seed, args.first_seed + args.seeds):
        plain_calls = None
        if not args.no_plain:
            res, wall, caught = timed(fp.run, seed=seed)
            plain_calls = res.ncall["total"]
            report("plain", seed, res, wall, caught)
        res, wall, caught = timed(fp.enhanced_run, seed=seed, nlive_low=args.nlive_low, flow=args.flow,
                                  **({} if args.transform is None else {"transform": args.transform}))
        report("enhanced", seed, res, wall, caught, plain_calls)
    parts = []
    for name, rs in summary.items():
        if rs:
            within = sum(dz < 2 for dz, _ in rs)
            checks_ok = sum(all(abs(p) < 2 for p in ps) for _, ps in rs)
            parts.append(f"{name}: logZ within 2σ in {within}/{len(rs)}, all posterior checks within 2σ in "
                         f"{checks_ok}/{len(rs)}")
    if ratios:
        parts.append(f"median enhanced/plain calls {np.median(ratios):.0%} (range {min(ratios):.0%}-{max(ratios):.0%})")
    print("summary: " + "; ".join(parts), flush=True)


if __name__ == "__main__":
    sys.exit(main())
