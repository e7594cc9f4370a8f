"""KL(P || q) of a full and a block-structured flow trained on one low run of a problem made of independent blocks.

The problem: ``k`` independent correlated Gaussians of ``m`` dimensions each
(``flowprior.examples.correlated_gaussian(m, seed=b)`` for block ``b``),
sampled together in ``[-5, 5]^(k m)``.  A low-resolution dynesty run as the
enhanced run makes it (``min(4 d, 100)`` live points, a random walk of
``d + 4`` steps), then 3 x 32 MAFs fitted to its hypercube samples: one
with a full whitening and full autoregressive transforms, one with the
true blocks (``fp.MAF(blocks=...)``).  Prints each one's KL divergence
from the exact posterior over 20 000 draws, at base widths 1, 1.2 and 1.35.
With ``--enhanced``, also an enhanced run with each flow (calls, pull).
docs/design.md, "Block-structured flows".

    python benchmarks/blocks.py [--blocks 3] [--size 6] [--seeds 1] [--enhanced]
"""

from __future__ import annotations

import argparse
import platform
import warnings

import numpy as np
from scipy.linalg import block_diag
from scipy.stats import multivariate_normal

import flowprior as fp
from flowprior.examples import CorrelatedGaussian, correlated_gaussian


def problem(k: int, m: int):
    """The block-diagonal Gaussian likelihood, its prior box and its closed-form logZ."""
    cov = block_diag(*[correlated_gaussian(m, seed=b).loglike.cov for b in range(k)])
    d = k * m
    return CorrelatedGaussian(cov), fp.UniformPrior([(-5.0, 5.0)] * d), cov, -d * np.log(10.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=3)
    ap.add_argument("--size", type=int, default=6)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--enhanced", action="store_true")
    args = ap.parse_args()
    k, m = args.blocks, args.size
    d = k * m
    like, prior, cov, log_z = problem(k, m)
    blocks = [list(range(b * m, (b + 1) * m)) for b in range(k)]
    theta = np.random.default_rng(12345).multivariate_normal(np.zeros(d), cov, size=20000)
    test_u, logp = (theta + 5) / 10, multivariate_normal(np.zeros(d), cov).logpdf(theta) + d * np.log(10.0)
    print(f"machine: {platform.machine()}; {k} blocks of {m} (d = {d})")
    print(f"{'seed':>4} {'flow':6s} " + " ".join(f"{'KL @' + str(s):>14s}" for s in (1.0, 1.2, 1.35))
          + ("   enhanced calls (low + check + high), pull" if args.enhanced else ""))
    small = dict(n_transforms=3, hidden_features=(32, 32), progress=False)
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        n_low = min(4 * d, 100)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            low = fp.run(like, prior, d, nlive=n_low, seed=seed, sampler_kwargs=dict(sample="rwalk", walks=d + 4))
        u, w = low.samples_u, low.samples.get_weights()
        for name, b in (("full", None), ("blocks", blocks)):
            flow = fp.MAF(blocks=b, seed=seed, **small).fit(u, weights=w)
            cells = []
            for s in (1.0, 1.2, 1.35):
                diff = logp - flow.broadened(s).log_prob(test_u)
                cells.append(f"{diff.mean():7.3f} ± {diff.std() / np.sqrt(len(diff)):.3f}")
            line = f"{seed:>4} {name:6s} " + " ".join(f"{c:>14s}" for c in cells)
            if args.enhanced:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = fp.enhanced_run(like, prior, d, nlive=500, seed=seed, flow=fp.MAF(blocks=b, seed=seed, **small))
                c = res.ncall
                line += f"   {c['low']} + {c['check']} + {c['high']} = {c['total']}, {(res.logZ - log_z) / res.logZerr:+.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
