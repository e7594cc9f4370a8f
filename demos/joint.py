"""Joint analysis without nuisance parameters: two Gaussian experiments sharing cosmological parameters.

Experiment A is Planck-like: the 6 parameters, mean and covariance of
anesthetic's ``planck_gaussian`` (``flowprior.examples``), plus two
nuisance parameters correlated with them.  Experiment B constrains three of those parameters (omegach2,
logA, ns), more weakly and slightly offset, with two nuisances of its own.
Every likelihood is a normalised Gaussian well inside a uniform prior box,
so the joint evidence and posterior are known in closed form.

It runs
  (i)  the full joint nested sampling over all 10 parameters, and
  (ii) each experiment alone -> a flow on its core parameters ->
       the nuisance-free joint run over the 6 cosmological parameters with
       ``MarginalLikelihood(A) + MarginalLikelihood(B)``,
and prints logZ ± err, posterior means and widths against the analytic
truth, likelihood calls and wall time.

    python demos/joint.py [--seed 0] [--nlive 500] [--sampler dynesty|polychord]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import flowprior as fp
from flowprior import examples as ex

MEAN, COV, LO, HI, NAMES = ex.PLANCK_MEAN, ex.PLANCK_COV, ex.PLANCK_LO, ex.PLANCK_HI, ex.PLANCK_NAMES

SHARED = ["omegach2", "logA", "ns"]
S = [NAMES.index(n) for n in SHARED]
SD = np.sqrt(np.diag(COV))


def gaussian_with_nuisances(mean_t, cov_t, gain, noise, offset):
    """Mean and covariance of (theta, alpha) with alpha = offset + gain (theta - mean_t) / sd + noise."""
    k = gain / np.sqrt(np.diag(cov_t))  # alpha responds to theta in units of its width
    mean = np.concatenate([mean_t, offset])
    cross = cov_t @ k.T
    cov = np.block([[cov_t, cross], [cross.T, k @ cov_t @ k.T + np.diag(noise)]])
    return mean, cov


# Experiment A: Planck-like, nuisances a1, a2.
MEAN_A, COV_A = gaussian_with_nuisances(MEAN, COV, np.array([[0.5, 0.0, 0.0, 0.3, 0.4, 0.0],
                                                              [0.0, -0.4, 0.2, 0.0, 0.0, 0.5]]),
                                        noise=np.array([0.5, 0.8]), offset=np.array([1.0, 0.0]))
# Experiment B: omegach2, logA, ns at twice Planck's widths, shifted by half of
# B's own widths, with its own correlations; nuisances b1, b2.
_corr_b = np.array([[1.0, -0.3, 0.2], [-0.3, 1.0, 0.1], [0.2, 0.1, 1.0]])
COV_BT = np.outer(2 * SD[S], 2 * SD[S]) * _corr_b
MEAN_BT = MEAN[S] + 0.5 * 2 * SD[S] * np.array([1.0, -1.0, 0.5])
MEAN_B, COV_B = gaussian_with_nuisances(MEAN_BT, COV_BT, np.array([[0.6, 0.3, 0.0], [0.0, -0.5, 0.4]]),
                                        noise=np.array([1.0, 0.6]), offset=np.array([0.0, 2.0]))
NUIS_BOX = (-8.0, 12.0)  # every nuisance's uniform prior; all four Gaussians lie well inside
NAMES_A = NAMES + ["a1", "a2"]
NAMES_B = SHARED + ["b1", "b2"]
NAMES_J = NAMES + ["a1", "a2", "b1", "b2"]


class Normal(ex.GaussianLikelihood):
    """A normalised Gaussian log-likelihood evaluated on selected columns (picklable)."""

    def __init__(self, mean, cov, cols=None):
        super().__init__(mean, cov)
        self.cols = cols

    def __call__(self, x) -> float:
        x = np.asarray(x)
        return super().__call__(x if self.cols is None else x[self.cols])


class Sum:
    def __init__(self, *parts):
        self.parts = parts

    def __call__(self, x) -> float:
        return float(sum(p(x) for p in self.parts))


def box(lo, hi, names):
    return fp.UniformPrior(np.stack([lo, hi], axis=1), names=names)


def truth():
    """Analytic joint evidence, posterior mean and sd over the 6 cosmological parameters."""
    nb = NUIS_BOX[1] - NUIS_BOX[0]
    ca, cb = COV_A[:6, :6], COV_B[:3, :3]
    r = MEAN_A[:6][S] - MEAN_B[:3]
    c = ca[np.ix_(S, S)] + cb
    log_overlap = -0.5 * r @ np.linalg.solve(c, r) - 0.5 * np.linalg.slogdet(2 * np.pi * c)[1]
    logz = log_overlap - np.sum(np.log(HI - LO)) - 4 * np.log(nb)
    e = np.zeros((3, 6))
    e[np.arange(3), S] = 1.0
    prec = np.linalg.inv(ca) + e.T @ np.linalg.inv(cb) @ e
    cov = np.linalg.inv(prec)
    mean = cov @ (np.linalg.solve(ca, MEAN_A[:6]) + e.T @ np.linalg.solve(cb, MEAN_B[:3]))
    return float(logz), mean, np.sqrt(np.diag(cov))


def moments(samples, names):
    x = samples[names].to_numpy(dtype=float)
    w = samples.get_weights()
    mean = np.average(x, axis=0, weights=w)
    return mean, np.sqrt(np.average((x - mean) ** 2, axis=0, weights=w))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nlive", type=int, default=500)
    ap.add_argument("--sampler", default="dynesty", choices=["dynesty", "polychord"])
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    seeds = [int(s) for s in rng.integers(2**31, size=4)]
    run = dict(sampler=args.sampler, nlive=args.nlive)
    nl, nh = np.full(2, NUIS_BOX[0]), np.full(2, NUIS_BOX[1])
    z_true, mean_true, sd_true = truth()

    # (i) everything at once.
    t0 = time.perf_counter()
    full = fp.run(Sum(Normal(MEAN_A, COV_A, list(range(8))), Normal(MEAN_B, COV_B, S + [8, 9])),
                  box(np.r_[LO, nl, nl], np.r_[HI, nh, nh], NAMES_J), 10, names=NAMES_J, seed=seeds[0], **run)
    t_full = time.perf_counter() - t0

    # (ii) each experiment alone (what each collaboration publishes) ...
    t0 = time.perf_counter()
    prior_t = box(LO, HI, NAMES)
    alone_a = fp.run(Normal(MEAN_A, COV_A), box(np.r_[LO, nl], np.r_[HI, nh], NAMES_A), 8, names=NAMES_A,
                     seed=seeds[1], **run)
    alone_b = fp.run(Normal(MEAN_B, COV_B), box(np.r_[LO[S], nl], np.r_[HI[S], nh], NAMES_B), 5, names=NAMES_B,
                     seed=seeds[2], **run)
    t_alone = time.perf_counter() - t0
    # ... flows on the core parameters ...
    t0 = time.perf_counter()
    flow_kw = dict(n_transforms=3, hidden_features=(32, 32), progress=False)
    post_a = fp.MAF(seed=seeds[3], **flow_kw).fit(alone_a.samples[NAMES])
    post_b = fp.MAF(seed=seeds[3], **flow_kw).fit(alone_b.samples[SHARED])
    like = (fp.MarginalLikelihood(post_a, prior_t, alone_a.logZ, alone_a.logZerr)
            + fp.MarginalLikelihood(post_b, prior_t, alone_b.logZ, alone_b.logZerr))
    t_flows = time.perf_counter() - t0
    # ... and the joint run over the cosmological parameters only.
    t0 = time.perf_counter()
    nf = fp.run(like, prior_t, 6, names=like.names_, seed=seeds[0], **run)
    t_nf = time.perf_counter() - t0
    # The experiments' evidence errors shift the joint evidence as a whole.
    nf_err = float(np.hypot(nf.logZerr, like.logZerr))

    print(f"Joint analysis of a Planck-like experiment (6 + 2 nuisance parameters) and a second one sharing "
          f"{SHARED} (+ 2 nuisances); {args.sampler}, nlive {args.nlive}, seed {args.seed}")
    print(f"{'':28s} {'calls':>9s} {'logZ ± err':>17s} {'dZ/err':>6s} {'wall s':>7s}")
    print(f"{'analytic':28s} {'':>9s} {z_true:9.3f}")
    print(f"{'(i) full joint, 10-D':28s} {full.ncall['total']:9d} {full.logZ:9.3f} ± {full.logZerr:5.3f} "
          f"{abs(full.logZ - z_true) / full.logZerr:6.2f} {t_full:7.1f}")
    print(f"{'(ii) nuisance-free joint, 6-D':28s} {nf.ncall['total']:9d} {nf.logZ:9.3f} ± {nf_err:5.3f} "
          f"{abs(nf.logZ - z_true) / nf_err:6.2f} {t_nf:7.1f}")
    print(f"{'    experiments alone':28s} {alone_a.ncall['total'] + alone_b.ncall['total']:9d} "
          f"{'':17s} {'':6s} {t_alone:7.1f}   (A: {alone_a.logZ:.3f} ± {alone_a.logZerr:.3f}, "
          f"B: {alone_b.logZ:.3f} ± {alone_b.logZerr:.3f})")
    print(f"{'    two flows':28s} {'':9s} {'':17s} {'':6s} {t_flows:7.1f}")
    print(f"full / nuisance-free joint calls: {full.ncall['total'] / nf.ncall['total']:.1f}x")
    print()
    print(f"{'parameter':10s} {'true mean':>11s} {'true sd':>10s} {'(i) dmean/sd':>12s} {'(i) sd ratio':>12s} "
          f"{'(ii) dmean/sd':>13s} {'(ii) sd ratio':>13s}")
    m_full, s_full = moments(full.samples, NAMES)
    m_nf, s_nf = moments(nf.samples, NAMES)
    for i, n in enumerate(NAMES):
        print(f"{n:10s} {mean_true[i]:11.5g} {sd_true[i]:10.3g} {(m_full[i] - mean_true[i]) / sd_true[i]:12.3f} "
              f"{s_full[i] / sd_true[i]:12.3f} {(m_nf[i] - mean_true[i]) / sd_true[i]:13.3f} "
              f"{s_nf[i] / sd_true[i]:13.3f}")
    print(f"worst nuisance-free: |dmean|/sd {np.max(np.abs(m_nf - mean_true) / sd_true):.3f} (target 0.1), "
          f"|sd ratio - 1| {np.max(np.abs(s_nf / sd_true - 1)):.3f} (target 0.05)")
    kl = fp.kl_divergence(post_a, prior_t, seed=args.seed)
    bmd = fp.model_dimensionality(post_a, prior_t, seed=args.seed)
    print(f"experiment A on the cosmological parameters: KL {kl.value:.2f} ± {kl.error:.2f} nats, "
          f"BMD {bmd.value:.2f} ± {bmd.error:.2f}")


if __name__ == "__main__":
    main()
