"""Nested-sampling workflows: the plain run and the enhanced (flow-prior) pipeline.

The orchestrators (``run``, ``enhanced``) sit over small building blocks
that never import them: checked user functions (``checked``), the
repartitioned likelihood (``repartition``), the flow check (``lowcheck``),
piece masses (``mixing``), stage files and resume (``stages``), problem
fingerprints (``fingerprint``) and the outdir lock (``lock``).
"""

from flowprior.workflows.enhanced import enhanced_run
from flowprior.workflows.run import run

__all__ = ["run", "enhanced_run"]
