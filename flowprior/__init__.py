"""flowprior: trained normalizing flows as nested-sampling priors.

Masked autoregressive flows (:class:`MAF`), neural spline flows (:class:`NSF`)
piecewise flows (:class:`PiecewiseFlow`, one flow per cluster) and marginalizing flows
(:class:`MarginalizingFlow`, auxiliary dimensions marginalized out) fitted to weighted samples on a
bounded space, each a deterministic unit-hypercube -> parameter transform with
an exact log-density, fast enough to be called once per point by dynesty or
PolyChord; the enhanced (flow-prior) nested-sampling workflow; likelihood
reweighting; marginal KL divergence, model dimensionality and nuisance-free
likelihoods for joint analyses.
"""

from flowprior.flows.base import FlowDensity
from flowprior.flows.loading import load
from flowprior.workflows.lock import OutdirInUse
from flowprior.flows.maf import MAF
from flowprior.flows.marginalizing import MarginalizingFlow
from flowprior.flows.nsf import NSF
from flowprior.marginal import Estimate, JointLikelihood, MarginalLikelihood, kl_divergence, model_dimensionality
from flowprior.flows.piecewise import PiecewiseFlow
from flowprior.priors import GaussianPrior, LogUniformPrior, UniformPrior
from flowprior.result import Result
from flowprior.reweighting import Reweighted, reweight
from flowprior.flows.spaces import Space
from flowprior.workflows import enhanced_run, run

__all__ = [
    "MAF", "NSF", "PiecewiseFlow", "MarginalizingFlow", "FlowDensity", "Space", "Result", "load", "run", "enhanced_run", "OutdirInUse",
    "reweight", "Reweighted",
    "kl_divergence", "model_dimensionality", "Estimate", "MarginalLikelihood", "JointLikelihood",
    "UniformPrior", "LogUniformPrior", "GaussianPrior",
]
__version__ = "0.1.0"
