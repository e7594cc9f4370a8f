"""KL(P || q) of flows trained on one low run of the Planck-like problem with nuisances, on the cube and through the probit link.

For each dimension ``d`` (``flowprior.examples.planck_nuisances(d - 6)``,
whose posterior is known exactly: ``nuisance_posterior``): a low-resolution
dynesty run as the enhanced run makes it at nlive 500 (``min(4 d, 100)`` live points, a random walk
of ``d + 4`` steps), then a 3 x 32 MAF fitted to its hypercube samples
unbounded on the cube, and one with the coordinates that
``flowprior.flows.choice.cube_bounds`` picks seen through the probit link.
Prints, for each and at base widths 1, 1.2 and 1.35, the KL divergence from
the exact posterior (in the cube, over 20 000 exact draws) with its Monte
Carlo error, the held-out log-likelihood each fit reports, and which fit
the enhanced run keeps.  docs/design.md, "The flow's space in the enhanced run".

    python benchmarks/flow_space.py [--dims 12 18] [--seed 0]
"""

from __future__ import annotations

import argparse
import platform
import warnings

import numpy as np
from scipy.special import ndtr
from scipy.stats import multivariate_normal

import flowprior as fp
from flowprior.examples import PLANCK_HI, PLANCK_LO, nuisance_posterior, planck_nuisances
from flowprior.flows.choice import cube_bounds


def exact_draws(p, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """``n`` exact posterior draws in the cube and their log-density there."""
    mean, cov = nuisance_posterior(p)
    theta = rng.multivariate_normal(mean, cov, size=n)
    z = (theta[:, 6:] - p.prior.mean) / p.prior.sd
    u = np.column_stack([(theta[:, :6] - PLANCK_LO) / (PLANCK_HI - PLANCK_LO), ndtr(z)])
    log_jac = np.sum(np.log(PLANCK_HI - PLANCK_LO)) + np.sum(0.5 * z**2 + 0.5 * np.log(2 * np.pi) + np.log(p.prior.sd), axis=1)
    return u, multivariate_normal(mean, cov).logpdf(theta) + log_jac


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", type=int, nargs="+", default=[12, 18])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, seed {args.seed}")
    print(f"{'d':>3} {'fit':8s} {'held-out':>9s} " + " ".join(f"{'KL @' + str(s):>14s}" for s in (1.0, 1.2, 1.35)))
    for d in args.dims:
        p = planck_nuisances(d - 6)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            low = fp.run(p.loglike, p.prior, d, nlive=min(4 * d, 100), seed=args.seed,
                         sampler_kwargs=dict(sample="rwalk", walks=d + 4))
        u, w = low.samples_u, low.samples.get_weights()
        test_u, logp = exact_draws(p, 20000, np.random.default_rng(args.seed + 1))
        bounds = cube_bounds(u, w)
        print(f"{d:>3} low run: {min(4 * d, 100)} live, {low.ncall['total']} calls; probit coordinates: "
              f"{sum(b is not None for b in bounds)} of {d}")
        held = {}
        for name, link, b in (("cube", "logit", None), ("probit", "probit", bounds)):
            flow = fp.MAF(n_transforms=3, hidden_features=(32, 32), link=link, seed=args.seed,
                          progress=False).fit(u, weights=w, bounds=b)
            held[name] = flow.records_[0].held_out_log_prob
            cells = []
            for s in (1.0, 1.2, 1.35):
                diff = logp - flow.broadened(s).log_prob(test_u)
                cells.append(f"{diff.mean():7.3f} ± {diff.std() / np.sqrt(len(diff)):.3f}")
            print(f"{d:>3} {name:8s} {held[name]:9.2f} " + " ".join(f"{c:>14s}" for c in cells))
        print(f"{d:>3} the enhanced run keeps: {max(held, key=held.get)}")


if __name__ == "__main__":
    main()
