"""Marginal KL divergence and Bayesian model dimensionality against lsbi's analytic linear-Gaussian models.

For each dimension d and seed: a random ``lsbi.model.LinearModel``
(D | theta ~ N(m + M theta, C), theta ~ N(mu, Sigma)), data drawn from its
evidence, and the analytic posterior.  flowprior fits a MAF to draws of the
posterior and another to draws of the prior (as a user with chains would),
then estimates the KL divergence and the BMD; also with the analytic
Gaussian prior in place of the prior flow.  Truth: lsbi's ``dkl`` and
BMD = tr[(I - A)^2] + 2 delta^T S_pi^-1 S_P S_pi^-1 delta, A = S_pi^-1 S_P,
delta = mu_P - mu_pi.  Target: |estimate - truth| <= 2 sigma + 2 % of truth.

All random draws use numpy Generators (lsbi is only asked for means and
covariances, never to sample, as its sampler uses the global RNG).

    python benchmarks/marginal.py [--dims 2 5 10] [--seeds 5] [--n-train 5000] [--n-mc 20000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

import flowprior as fp


def model(d: int, rng: np.random.Generator):
    from lsbi.model import LinearModel

    k = d + 2  # data points
    M = rng.normal(size=(k, d))
    C = np.diag(rng.uniform(0.5, 2.0, k))
    mu = rng.normal(size=d)
    A = rng.normal(size=(d, d))
    Sigma = A @ A.T / d + np.eye(d)
    lm = LinearModel(M=M, m=rng.normal(size=k), C=C, mu=mu, Sigma=Sigma)
    theta0 = rng.multivariate_normal(mu, Sigma)
    D = rng.multivariate_normal(lm.m + M @ theta0, C)
    return lm, D


def truths(lm, D) -> tuple[float, float]:
    post, prior = lm.posterior(D), lm.prior()
    S_p, S_pi = np.atleast_2d(post.cov), np.atleast_2d(prior.cov)
    inv = np.linalg.inv(S_pi)
    A = inv @ S_p
    delta = post.mean - prior.mean
    eye = np.eye(len(delta))
    bmd = np.trace((eye - A) @ (eye - A)) + 2 * delta @ inv @ S_p @ inv @ delta
    return float(lm.dkl(D)), float(bmd)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", type=int, nargs="+", default=[2, 5, 10])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--n-train", type=int, default=5000)
    ap.add_argument("--n-mc", type=int, default=20000)
    args = ap.parse_args()
    flow_kw = dict(n_transforms=3, hidden_features=(32, 32), progress=False)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; flows MAF {flow_kw['n_transforms']}x"
          f"{flow_kw['hidden_features'][0]} on {args.n_train} draws each; {args.n_mc} Monte Carlo draws")
    print(f"{'d':>3s} {'seed':>4s} {'prior':>8s} {'KL true':>8s} {'KL est ± err':>16s} {'dev/tol':>7s} "
          f"{'BMD true':>8s} {'BMD est ± err':>16s} {'dev/tol':>7s} {'fit s':>6s}")
    passed = total = 0
    for d in args.dims:
        for seed in range(args.seeds):
            rng = np.random.default_rng([d, seed])
            lm, D = model(d, rng)
            kl_true, bmd_true = truths(lm, D)
            post, prior = lm.posterior(D), lm.prior()
            names = [f"p{i}" for i in range(d)]
            t0 = time.perf_counter()
            post_flow = fp.MAF(seed=rng, **flow_kw).fit(
                rng.multivariate_normal(post.mean, np.atleast_2d(post.cov), args.n_train), names=names)
            prior_flow = fp.MAF(seed=rng, **flow_kw).fit(
                rng.multivariate_normal(prior.mean, np.atleast_2d(prior.cov), args.n_train), names=names)
            fit = time.perf_counter() - t0
            analytic = fp.GaussianPrior(prior.mean, np.atleast_2d(prior.cov), names=names)
            for label, pr in (("flow", prior_flow), ("analytic", analytic)):
                kl = fp.kl_divergence(post_flow, pr, n=args.n_mc, seed=seed)
                bmd = fp.model_dimensionality(post_flow, pr, n=args.n_mc, seed=seed)
                dev_kl = abs(kl.value - kl_true) / (2 * kl.error + 0.02 * abs(kl_true))
                dev_bmd = abs(bmd.value - bmd_true) / (2 * bmd.error + 0.02 * abs(bmd_true))
                total += 2
                passed += (dev_kl <= 1) + (dev_bmd <= 1)
                print(f"{d:3d} {seed:4d} {label:>8s} {kl_true:8.3f} {kl.value:8.3f} ± {kl.error:5.3f} {dev_kl:7.2f} "
                      f"{bmd_true:8.3f} {bmd.value:8.3f} ± {bmd.error:5.3f} {dev_bmd:7.2f} {fit:6.1f}", flush=True)
    print(f"within 2 sigma + 2 % of the truth: {passed}/{total}")


if __name__ == "__main__":
    sys.exit(main())
