"""Marginalizing flows against plain flows: the thesis' power-law table, moons, and a folded enhanced run.

``--part table``: x = z^psi per dimension of a standard normal (psi 1, 2, 3;
D 2-4); a :class:`flowprior.MarginalizingFlow` with B = 0..4 auxiliary
variables per model; the held-out log-likelihood (best and mean ± spread over
``--models`` seeds) beside de Boer's Table 2, and the KL divergence from the
closed-form density ``prod phi(x^(1/psi)) |d z / d x|``, which the thesis
could not give.

``--part moons``: sklearn's half-moons (noise 0.1; true density: the arcs'
uniform density convolved with the noise, by quadrature over the arcs) and
the piecewise-flows paper's two-moons (normflows' ``TwoMoons``, as in
benchmarks/table1.py); KL(P || q) on held-out samples for MAF, NSF,
piecewise and marginalizing flows.

``--part enhanced``: an enhanced run on a folded posterior, a likelihood of
``|theta_0|`` and ``theta_1..3`` in 4-D (two mirrored modes touching at
``theta_0 = 0``), with the default flow and ``flow="marginalizing"``: calls
and logZ pull per seed (``--sampler``).

    OMP_NUM_THREADS=1 python benchmarks/marginalizing.py --part table --models 10
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
from scipy.special import logsumexp
from scipy.stats import norm

import flowprior as fp

FLOW = dict(n_transforms=3, hidden_features=(32, 32), max_epochs=300, progress=False)


def power_law(psi: int, d: int, n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal((n, d)) ** psi


def power_law_logp(x: np.ndarray, psi: int) -> np.ndarray:
    """Closed-form log-density of ``x = z^psi`` per coordinate (both signs of the root for even psi)."""
    if psi == 1:
        return norm.logpdf(x).sum(axis=1)
    a = np.abs(x)
    root = a ** (1 / psi)
    jac = -np.log(psi) - (1 - 1 / psi) * np.log(a)
    fold = np.log(2) if psi % 2 == 0 else 0.0  # z and -z give the same x
    return (norm.logpdf(root) + jac + fold).sum(axis=1)


def table(models: int, n: int, powers=(1, 2, 3), dims=(2, 3, 4), inner: str = "maf", unbounded: bool = False) -> None:
    """The power-law table: ``inner`` the flow over ``(x, eps)``; even powers on ``(0, inf)`` unless ``unbounded``."""
    print(f"{'psi':>3s} {'D':>2s} {'B':>2s} {'held-out best':>13s} {'mean ± sd':>16s} {'KL mean ± sd':>16s} {'fit s':>6s}")
    for psi in powers:
        for d in dims:
            for b in range(5):
                held, kl, t0 = [], [], time.perf_counter()
                for m in range(models):
                    rng = np.random.default_rng([psi, d, m])
                    train, test = power_law(psi, d, n, rng), power_law(psi, d, n, rng)
                    bounds = [(0, None)] * d if psi % 2 == 0 and not unbounded else None
                    flow = fp.MarginalizingFlow(aux_dims=b, n_marginal=200, flow=inner, seed=m, **FLOW)
                    flow.fit(train, bounds=bounds)
                    lq = flow.log_prob(test)
                    held.append(np.mean(lq))
                    kl.append(np.mean(power_law_logp(test, psi) - lq))
                held, kl = np.array(held), np.array(kl)
                print(f"{psi:3d} {d:2d} {b:2d} {held.max():13.3f} {held.mean():8.3f} ± {held.std():5.3f} "
                      f"{kl.mean():8.3f} ± {kl.std():5.3f} {(time.perf_counter() - t0) / models:6.1f}", flush=True)


def arcs(t: np.ndarray) -> np.ndarray:
    """Points of sklearn's half-moons arcs at parameters ``t`` in [0, 1), half on each arc."""
    upper = t < 0.5
    a = np.pi * np.where(upper, 2 * t, 2 * t - 1)
    return np.where(upper[:, None], np.column_stack([np.cos(a), np.sin(a)]),
                    np.column_stack([1 - np.cos(a), 0.5 - np.sin(a)]))


def half_moons(n: int, rng: np.random.Generator, noise: float = 0.1) -> np.ndarray:
    return arcs(rng.uniform(size=n)) + noise * rng.standard_normal((n, 2))


def half_moons_logp(x: np.ndarray, noise: float = 0.1, grid: int = 4000) -> np.ndarray:
    """The true density: the arcs' uniform parameter density convolved with the noise (quadrature in t)."""
    out = []
    c = arcs((np.arange(grid) + 0.5) / grid)
    for rows in np.array_split(x, max(1, len(x) // 500)):
        d2 = ((rows[:, None, :] - c[None]) ** 2).sum(axis=2)
        out.append(logsumexp(-0.5 * d2 / noise**2, axis=1) - np.log(grid) - np.log(2 * np.pi * noise**2))
    return np.concatenate(out)


def moons(kind: str, n: int, seed) -> tuple[np.ndarray, np.ndarray]:
    """Training and test samples of ``kind`` and the test samples' true log-density."""
    if kind == "half":
        rng = np.random.default_rng([7, seed])
        train, test = half_moons(n, rng), half_moons(n, rng)
        return train, test, half_moons_logp(test)
    from flowprior import examples as ex

    train, test = ex.target_sample("TwoMoons", n, seed=1000 + seed), ex.target_sample("TwoMoons", n, seed=2000 + seed)
    return train, test, ex.target_log_prob("TwoMoons", test)


def moons_part(seeds: int, n: int) -> None:
    flows = {"MAF": lambda s: fp.MAF(seed=s, **FLOW), "NSF": lambda s: fp.NSF(seed=s, **FLOW),
             "piecewise": lambda s: fp.PiecewiseFlow(seed=s, **FLOW),
             "marginalizing B=2": lambda s: fp.MarginalizingFlow(aux_dims=2, seed=s, **FLOW),
             "marginalizing NSF B=2": lambda s: fp.MarginalizingFlow(aux_dims=2, flow="nsf", seed=s, **FLOW)}
    print(f"{'target':>10s} {'flow':>18s} {'KL mean ± sd':>16s}")
    for kind in ("half", "TwoMoons"):
        data = [moons(kind, n, s) for s in range(seeds)]
        for name, make in flows.items():
            kl = [np.mean(logp - make(s).fit(train).log_prob(test)) for s, (train, test, logp) in enumerate(data)]
            print(f"{kind:>10s} {name:>18s} {np.mean(kl):8.3f} ± {np.std(kl):5.3f}", flush=True)


FOLD_S, FOLD_SHIFT = 0.1, 0.15  # the folded likelihood's width and its modes' offset from theta_0 = 0


def folded(x: np.ndarray) -> float:
    r = np.concatenate([[abs(x[0]) - FOLD_SHIFT], x[1:]]) / FOLD_S
    return float(-0.5 * r @ r)


def enhanced_part(seeds: int, sampler: str, nlive: int, first: int = 0) -> None:
    d, s, shift = 4, FOLD_S, FOLD_SHIFT
    prior = fp.UniformPrior([(-1, 1)] * d)
    i0 = 2 * s * np.sqrt(2 * np.pi) * (norm.cdf((1 - shift) / s) - norm.cdf(-shift / s))
    truth = np.log(i0) + (d - 1) * np.log(s * np.sqrt(2 * np.pi)) - d * np.log(2)
    plain = [fp.run(folded, prior, d, sampler=sampler, nlive=nlive, seed=seed).ncall["total"] for seed in range(2)]
    print(f"plain {sampler} nlive {nlive}: {np.mean(plain):.0f} calls (mean of seeds 0-1); logZ truth {truth:.4f}")
    print(f"{'flow':>14s} {'seed':>4s} {'calls':>7s} {'% plain':>7s} {'logZ':>8s} {'± err':>6s} {'pull':>6s}")
    for flow in ("auto", "marginalizing"):
        for seed in range(first, first + seeds):
            res = fp.enhanced_run(folded, prior, d, sampler=sampler, nlive=nlive, seed=seed, flow=flow)
            calls = res.ncall["total"]
            print(f"{flow:>14s} {seed:4d} {calls:7d} {100 * calls / np.mean(plain):6.1f}% {res.logZ:8.3f} "
                  f"{res.logZerr:6.3f} {(res.logZ - truth) / res.logZerr:+6.2f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["table", "moons", "enhanced"], default="table")
    ap.add_argument("--models", type=int, default=10, help="models (seeds) per row of the table and of moons")
    ap.add_argument("--n", type=int, default=5000, help="training (and test) samples")
    ap.add_argument("--psi", type=int, nargs="+", default=[1, 2, 3], help="table: the powers")
    ap.add_argument("--dims", type=int, nargs="+", default=[2, 3, 4], help="table: the dimensions")
    ap.add_argument("--flow", choices=["maf", "nsf"], default="maf", help="table: the flow over (x, eps)")
    ap.add_argument("--unbounded", action="store_true", help="table: even powers on the real line, as in the thesis")
    ap.add_argument("--sampler", default="dynesty")
    ap.add_argument("--nlive", type=int, default=500)
    ap.add_argument("--first-seed", type=int, default=0, help="enhanced: the first of its --models seeds")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    print(f"{time.strftime('%Y-%m-%d')}; {platform.machine()}, {os.cpu_count()} cores; flows {FLOW}")
    if args.part == "table":
        table(args.models, args.n, args.psi, args.dims, args.flow, args.unbounded)
    elif args.part == "moons":
        moons_part(args.models, args.n)
    else:
        enhanced_part(args.models, args.sampler, args.nlive, args.first_seed)


if __name__ == "__main__":
    main()
