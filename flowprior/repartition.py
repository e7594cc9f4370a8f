"""The enhanced run's likelihood: the user's likelihood repartitioned by a flow prior.

The sampler draws ``v`` uniformly, the flow maps it to ``u = flow(v)`` in the
user's hypercube (the flow is the new prior, density ``q(u)`` there; the old
prior density in ``u`` is exactly 1), and the likelihood it sees is

    log L'(u) = log L(prior_transform(u)) - log q(u),

so that ``∫ L' q du = ∫ L du = Z``: same evidence and posterior, while the
new prior already sits on the posterior.  ``q`` may put mass outside the
cube; ``L'`` is ``-inf`` there (the old prior is zero), so the identity
still holds.
"""

from __future__ import annotations

import numpy as np

from .data import in_unit_cube


class RepartitionedLikelihood:
    """``log L(prior_transform(u)) - log q(u)``; picklable for pools and MPI."""

    def __init__(self, loglike, prior_transform, flow):
        self.loglike = loglike
        self.prior_transform = prior_transform
        self.flow = flow

    def __call__(self, u) -> float:
        u = np.asarray(u, dtype=float)
        # The flow's support may extend past the cube (see workflows._train):
        # there the old prior, and so the likelihood, is zero.  The user's
        # functions are never called outside the cube.
        if not in_unit_cube(u):
            return -np.inf
        logq = self.flow.log_prob(u)
        return float(self.loglike(self.prior_transform(u))) - logq


def physical(prior_transform, u: np.ndarray) -> np.ndarray:
    """Map rows of the user's hypercube to parameters with their prior transform."""
    return np.array([prior_transform(row) for row in u])
