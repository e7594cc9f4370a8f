"""Normalizing flows on bounded parameter spaces, usable as nested-sampling priors.

One concept per module: parameter spaces and their maps to the real line
(``spaces``), training (``training``), the compiled per-point kernels
(``fast``, with ``links`` and ``splines``), the shared flow interface
(``base``), masked autoregressive flows (``maf``), neural spline flows
(``nsf``), piecewise flows with one MAF per cluster (``piecewise``,
``clustering``), marginalizing flows with auxiliary dimensions
(``marginalizing``), the defensive mixture with the uniform cube
(``defensive``), the automatic choice between them (``choice``) and flow
files (``files``, ``loading``).
"""

from flowprior.flows.base import FlowDensity
from flowprior.flows.defensive import DefensiveFlow
from flowprior.flows.loading import load
from flowprior.flows.maf import MAF
from flowprior.flows.marginalizing import MarginalizingFlow
from flowprior.flows.nsf import NSF
from flowprior.flows.piecewise import PiecewiseFlow
from flowprior.flows.spaces import Space

__all__ = ["FlowDensity", "DefensiveFlow", "MAF", "MarginalizingFlow", "NSF", "PiecewiseFlow", "Space", "load"]
