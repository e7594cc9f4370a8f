"""flowprior: trained normalizing flows as nested-sampling priors.

Masked autoregressive flows (:class:`MAF`) and piecewise flows
(:class:`PiecewiseFlow`, one MAF per cluster) fitted to weighted samples on a
bounded space, each a deterministic unit-hypercube -> parameter transform with
an exact log-density, fast enough to be called once per point by dynesty or
PolyChord.
"""

from .base import FlowDensity
from .io import load
from .maf import MAF
from .piecewise import PiecewiseFlow
from .result import Result
from .reweighting import Reweighted, reweight
from .spaces import Space
from .workflows import enhanced_run, run

__all__ = ["MAF", "PiecewiseFlow", "FlowDensity", "Space", "Result", "load", "run", "enhanced_run", "reweight", "Reweighted"]
__version__ = "0.1.0"
