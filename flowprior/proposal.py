"""The importance-sampling proposal of :func:`flowprior.reweight`: a flow mixed with a wide Gaussian."""

from __future__ import annotations

import math
import warnings

import numpy as np

from flowprior.flows.base import FlowDensity


def proposal_flow(flow, u: np.ndarray, weights: np.ndarray, rng: np.random.Generator) -> FlowDensity:
    """An unfitted flow for ``flow`` ("auto", "maf", "nsf", "piecewise" or a flow object to copy the settings of)."""
    from flowprior.flows.choice import choose_flow
    from flowprior.flows.maf import LOW_RUN_PATIENCE, MAF
    from flowprior.flows.nsf import NSF
    from flowprior.flows.piecewise import PiecewiseFlow

    if isinstance(flow, FlowDensity):
        params = flow.get_params()
        return type(flow)(**{**params, "seed": rng if params["seed"] is None else params["seed"]})
    if flow == "auto":
        return choose_flow(u, weights, rng)
    return {"maf": MAF, "nsf": NSF, "piecewise": PiecewiseFlow}[flow](seed=rng, progress=False,
                                                                      patience=LOW_RUN_PATIENCE)


class Proposal:
    """``(1 - eps) * flow + eps * N(mean, width^2 * cov)`` on the (unbounded) hypercube coordinates.

    ``flow`` is fitted to ``u`` with ``weights`` (see :func:`proposal_flow`).

    The wide Gaussian keeps ``L_B / q`` bounded where the flow's tails are
    too light: a proposal lighter-tailed than the target gives importance
    weights of infinite variance.
    """

    def __init__(self, u: np.ndarray, weights: np.ndarray, rng: np.random.Generator, eps: float = 0.1,
                 width: float = 2.0, flow="auto"):
        # A few dominant weights are reported by reweight itself (DOMINANT_SHARE), not as the flow's input.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="weights: effective sample size", category=UserWarning)
            self.flow = proposal_flow(flow, u, weights, rng).fit(u, weights=weights)
        self.eps = eps
        self.mean = np.average(u, axis=0, weights=weights)
        cov = np.atleast_2d(np.cov(u.T, aweights=weights)) * width**2
        self.chol = np.linalg.cholesky(cov + 1e-12 * np.eye(len(cov)) * np.trace(cov))
        self._log_norm = -np.log(np.diag(self.chol)).sum() - 0.5 * len(self.mean) * math.log(2 * math.pi)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        wide = rng.uniform(size=n) < self.eps
        out = np.empty((n, len(self.mean)))
        out[~wide] = self.flow.sample(int((~wide).sum()), seed=rng)
        out[wide] = self.mean + rng.standard_normal((int(wide.sum()), len(self.mean))) @ self.chol.T
        return out

    def log_prob(self, u: np.ndarray) -> np.ndarray:
        z = np.linalg.solve(self.chol, (u - self.mean).T).T
        log_wide = -0.5 * np.sum(z**2, axis=1) + self._log_norm
        return np.logaddexp(math.log1p(-self.eps) + self.flow.log_prob(u), math.log(self.eps) + log_wide)
