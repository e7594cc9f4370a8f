"""A flat box prior given as samples, in a nuisance-free likelihood (fp.MarginalLikelihood).

An experiment with a uniform prior on a 2-D box and a correlated Gaussian likelihood well inside it: its
posterior, evidence and likelihood are closed-form.  ``fp.MarginalLikelihood(post, prior, logZ)`` rebuilds the
likelihood as ``logZ + log P(theta) - log pi(theta)`` from a flow fitted to exact posterior draws and a prior
density, which is either the analytic ``fp.UniformPrior`` or a flow fitted to uniform draws of the box (MAF
through the logit link; NSF through the probit link; NSF on the box's interval itself, ``link="interval"``).
Printed: the median and 90th percentile of ``|log L_rebuilt - log L_true|`` over fresh posterior draws, per
prior and seed, and the prior's own part, ``|log pi(theta) - log pi_true(theta)|`` (the rest is the posterior
flow's), with the epoch the prior's training kept (0: its flat or Gaussian start).  Issue 24's goal: a median of at most 0.03 nats with the box given as samples.

    python benchmarks/box_prior.py [--seeds 3] [--n 5000]
"""

from __future__ import annotations

import argparse
import platform

import numpy as np
from scipy import stats

import flowprior as fp

BOX = [(-3.0, 3.0), (0.0, 10.0)]
MEAN, COV = np.array([0.5, 4.0]), np.array([[0.25, 0.375], [0.375, 2.25]])  # sds 0.5 and 1.5, correlation 0.5
NAMES = ["a", "b"]
SETTINGS = dict(progress=False, max_epochs=500)


def posterior_draws(n: int, rng: np.random.Generator) -> np.ndarray:
    """Exact draws of the posterior (the Gaussian truncated to the box; the cut removes under 1e-6)."""
    x = rng.multivariate_normal(MEAN, COV, size=2 * n)
    inside = np.all((x > [b[0] for b in BOX]) & (x < [b[1] for b in BOX]), axis=1)
    return x[inside][:n]


def priors(n: int, seed: int) -> dict:
    """The box prior as an analytic density and as flows fitted to ``n`` uniform draws."""
    rng = np.random.default_rng(seed)
    u = rng.uniform([b[0] for b in BOX], [b[1] for b in BOX], size=(n, 2))
    fit = dict(bounds=BOX, names=NAMES)
    return {
        "UniformPrior": fp.UniformPrior(BOX, names=NAMES),
        "MAF (logit)": fp.MAF(seed=seed, **SETTINGS).fit(u, **fit),
        "NSF (probit)": fp.NSF(seed=seed, link="probit", **SETTINGS).fit(u, **fit),
        "NSF (interval)": fp.NSF(seed=seed, link="interval", **SETTINGS).fit(u, **fit),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n", type=int, default=5000, help="draws of the posterior and of the prior box")
    args = ap.parse_args()
    volume = np.prod([hi - lo for lo, hi in BOX])
    log_like = stats.multivariate_normal(MEAN, COV).logpdf  # normalised: Z = 1 / volume (mass inside ~ 1)
    print(f"machine: {platform.machine()}; box {BOX}; n {args.n}; |log L_rebuilt - log L_true| in nats over 5 000 "
          f"posterior draws")
    print(f"{'seed':>4s} {'prior':16s} {'median':>8s} {'p90':>8s} {'prior part':>10s} {'epoch':>5s}")
    for seed in range(args.seeds):
        rng = np.random.default_rng(1000 + seed)
        post = fp.MAF(seed=seed, **SETTINGS).fit(posterior_draws(args.n, rng), bounds=BOX, names=NAMES)
        theta = posterior_draws(5000, rng)
        for name, prior in priors(args.n, seed).items():
            rebuilt = fp.MarginalLikelihood(post, prior, logZ=-np.log(volume))
            err = np.abs(rebuilt(theta) - log_like(theta))
            part = np.median(np.abs(prior.log_prob(theta) + np.log(volume)))
            epoch = prior.records_[0].best_epoch if hasattr(prior, "records_") else "-"
            print(f"{seed:4d} {name:16s} {np.median(err):8.4f} {np.percentile(err, 90):8.4f} {part:10.4f} {epoch:>5}",
                  flush=True)


if __name__ == "__main__":
    main()
