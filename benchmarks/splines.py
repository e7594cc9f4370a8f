"""KL(true || flow) of MAFs and NSFs on shapes affine flows fit badly: a flat box, a half-Gaussian at a bound, power laws.

Targets, each with exact draws and an exact density:

- ``box``: uniform on ``[0, 1]^d`` (bounds given), d = 2 and 6;
- ``edge``: a half-Gaussian at the lower bound, ``|N(0, 0.1)|`` per coordinate on ``[0, 1]^3`` (bounds given);
- ``cube``: ``x = z^3`` per coordinate of a standard normal, D = 2, 3, 4 (unbounded; the seed thesis' power law).

Each flow (MAF and NSF, the two-sided bounds through the logit and through the probit link, and the NSF on
the bounded interval itself with a uniform base there: ``link="interval"``) is fitted to
``--n`` exact draws with ``--seeds`` seeds; KL is averaged over 20 000 fresh draws (its Monte Carlo error
printed) together with the held-out log-likelihood each fit reports.  Issue 24's goal for the box: KL <= 0.01.

    python benchmarks/splines.py [--targets box edge cube] [--n 5000] [--seeds 2]
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import numpy as np
from scipy import stats

import flowprior as fp


def box(d: int):
    """Uniform on the unit box: draws, log-density, bounds."""
    return (lambda n, rng: rng.uniform(size=(n, d))), (lambda x: np.zeros(len(x))), [(0.0, 1.0)] * d


def edge(d: int, sigma: float = 0.1):
    """A half-Gaussian at the lower bound of ``[0, 1]`` per coordinate (truncation at 1 is 10 sigma away)."""
    def draw(n, rng):
        return np.abs(rng.normal(0.0, sigma, size=(n, d)))

    def log_p(x):
        return np.sum(np.log(2.0) + stats.norm.logpdf(x, 0.0, sigma), axis=1)

    return draw, log_p, [(0.0, 1.0)] * d


def cube(d: int):
    """``x = z^3`` per coordinate of a standard normal (unbounded)."""
    def draw(n, rng):
        return rng.normal(size=(n, d)) ** 3

    def log_p(x):
        z = np.cbrt(x)
        return np.sum(stats.norm.logpdf(z) - np.log(3.0) - 2.0 * np.log(np.abs(z)), axis=1)

    return draw, log_p, None


TARGETS = {"box": [(box, 2), (box, 6)], "edge": [(edge, 3)], "cube": [(cube, 2), (cube, 3), (cube, 4)]}


def flows(bounded: bool) -> dict:
    """The flows compared: MAF and NSF, through the logit and (bounded targets) the probit link."""
    settings = dict(progress=False)
    out = {"MAF logit": lambda s: fp.MAF(seed=s, **settings), "NSF logit": lambda s: fp.NSF(seed=s, **settings)}
    if bounded:
        out.update({"MAF probit": lambda s: fp.MAF(link="probit", seed=s, **settings),
                    "NSF probit": lambda s: fp.NSF(link="probit", seed=s, **settings),
                    "NSF interval": lambda s: fp.NSF(link="interval", seed=s, **settings)})
    return out


def kl(flow, draw, log_p, rng, n: int = 20_000) -> tuple[float, float]:
    """KL(true || flow) over ``n`` fresh exact draws, and its Monte Carlo error."""
    x = draw(n, rng)
    diff = log_p(x) - flow.log_prob(x)
    return float(diff.mean()), float(diff.std() / np.sqrt(n))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    ap.add_argument("--n", type=int, default=5000, help="training draws (default 5000)")
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, training draws {args.n}, seeds {args.seeds}")
    print(f"{'target':8} {'d':>2} {'flow':12} {'KL (seeds)':>30} {'held-out':>18} {'fit s':>6}")
    for name in args.targets:
        for make, d in TARGETS[name]:
            draw, log_p, bounds = make(d)
            for label, build in flows(bounds is not None).items():
                kls, held, t0 = [], [], time.perf_counter()
                for s in range(args.seeds):
                    rng = np.random.default_rng(1000 + s)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        flow = build(s).fit(draw(args.n, rng), bounds=bounds)
                    kls.append(kl(flow, draw, log_p, rng))
                    held.append(flow.records_[0].held_out_log_prob)
                text = ", ".join(f"{k:.4f}±{e:.4f}" for k, e in kls)
                print(f"{name:8} {d:2d} {label:12} {text:>30} {np.mean(held):18.4f} "
                      f"{(time.perf_counter() - t0) / args.seeds:6.1f}", flush=True)


if __name__ == "__main__":
    main()
