"""Write example chains for the command-line walkthrough in the README.

A dynesty run (nlive 200, seed 0) on the Planck-like 6-D Gaussian of
``flowprior.examples``, with LaTeX labels, written with anesthetic's
``to_csv`` to ``chains/planck.csv`` (``flowprior train chains/planck`` reads
it with ``anesthetic.read_chains``), plus a bounds file ``prior.yaml``.

    python demos/cli_chains.py [OUTDIR]
"""

from __future__ import annotations

import os
import sys

import flowprior as fp
from flowprior import examples as ex


def main() -> None:
    from anesthetic import NestedSamples

    out = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(os.path.join(out, "chains"), exist_ok=True)
    names = ex.PLANCK_NAMES
    s = fp.run(ex.GaussianLikelihood(), ex.planck_prior(), 6, nlive=200, seed=0, names=names).samples
    chains = NestedSamples(data=s[names].to_numpy(), logL=s["logL"].to_numpy(), logL_birth=200, columns=names,
                           labels=ex.PLANCK_LABELS)
    chains.to_csv(os.path.join(out, "chains", "planck.csv"))
    with open(os.path.join(out, "prior.yaml"), "w") as f:
        f.writelines(f"{n}: [{lo}, {hi}]\n" for n, lo, hi in zip(names, ex.PLANCK_LO, ex.PLANCK_HI))
    print(f"wrote {len(chains)} samples to {out}/chains/planck.csv and the prior box to {out}/prior.yaml")


if __name__ == "__main__":
    main()
