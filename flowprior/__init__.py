"""flowprior: trained normalizing flows as nested-sampling priors.

Masked autoregressive flows (:class:`MAF`) and piecewise flows
(:class:`PiecewiseFlow`, one MAF per cluster) fitted to weighted samples on a
bounded space, each a deterministic unit-hypercube -> parameter transform with
an exact log-density, fast enough to be called once per point by dynesty or
PolyChord; the enhanced (flow-prior) nested-sampling workflow; likelihood
reweighting; marginal KL divergence, model dimensionality and nuisance-free
likelihoods for joint analyses.
"""

from .base import FlowDensity
from .loading import load
from .lock import OutdirInUse
from .maf import MAF
from .marginal import Estimate, JointLikelihood, MarginalLikelihood, kl_divergence, model_dimensionality
from .piecewise import PiecewiseFlow
from .priors import GaussianPrior, LogUniformPrior, UniformPrior
from .result import Result
from .reweighting import Reweighted, reweight
from .spaces import Space
from .workflows import enhanced_run, run

__all__ = [
    "MAF", "PiecewiseFlow", "FlowDensity", "Space", "Result", "load", "run", "enhanced_run", "OutdirInUse",
    "reweight", "Reweighted",
    "kl_divergence", "model_dimensionality", "Estimate", "MarginalLikelihood", "JointLikelihood",
    "UniformPrior", "LogUniformPrior", "GaussianPrior",
]
__version__ = "0.1.0"
