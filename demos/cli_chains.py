"""Write example chains for the command-line walkthrough in the README.

A dynesty run (nlive 200, seed 0) on the Planck-like 6-D Gaussian of
``benchmarks/planck.py``, with LaTeX labels, written with anesthetic's
``to_csv`` to ``chains/planck.csv`` (``flowprior train chains/planck`` reads
it with ``anesthetic.read_chains``), plus a bounds file ``prior.yaml``.

    python demos/cli_chains.py [OUTDIR]
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "benchmarks"))
from planck import HI, LO, NAMES, Box, Gaussian  # noqa: E402

import flowprior as fp  # noqa: E402

LABELS = {"omegabh2": r"$\Omega_b h^2$", "omegach2": r"$\Omega_c h^2$", "theta": r"$100\theta_{MC}$",
          "tau": r"$\tau$", "logA": r"$\ln(10^{10}A_s)$", "ns": r"$n_s$"}


def main() -> None:
    from anesthetic import NestedSamples

    out = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(os.path.join(out, "chains"), exist_ok=True)
    s = fp.run(Gaussian(), Box(), 6, nlive=200, seed=0, names=NAMES).samples
    chains = NestedSamples(data=s[NAMES].to_numpy(), logL=s["logL"].to_numpy(), logL_birth=200, columns=NAMES,
                           labels=LABELS)
    chains.to_csv(os.path.join(out, "chains", "planck.csv"))
    with open(os.path.join(out, "prior.yaml"), "w") as f:
        f.writelines(f"{n}: [{lo}, {hi}]\n" for n, lo, hi in zip(NAMES, LO, HI))
    print(f"wrote {len(chains)} samples to {out}/chains/planck.csv and the prior box to {out}/prior.yaml")


if __name__ == "__main__":
    main()
