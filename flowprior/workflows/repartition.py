"""The enhanced run's likelihood: the user's likelihood repartitioned by a flow prior.

The sampler draws ``v`` uniformly, the flow maps it to ``u = flow(v)`` in the
user's hypercube (the flow is the new prior, density ``q(u)`` there; the old
prior density in ``u`` is exactly 1), and the likelihood it sees is

    log L'(u) = log L(prior_transform(u)) - log q(u),

so that ``∫ L' q du = ∫ L du = Z``: same evidence and posterior, while the
new prior already sits on the posterior.  ``q`` may put mass outside the
cube; ``L'`` is ``-inf`` there (the old prior is zero), so the identity
still holds.

The user's function is called only inside the cube, and ``user_calls``
counts those calls: that, not the sampler's count of its own calls, is what
the enhanced run reports as its cost (see :class:`CountedLikelihood`).
"""

from __future__ import annotations

import numpy as np

from flowprior.numerics import in_unit_cube
from flowprior.workflows.checked import Carrier, evaluate
from flowprior.workflows.counting import note_call


class RepartitionedLikelihood(Carrier):
    """``log L(prior_transform(u)) - log q(u)``; picklable for pools and MPI.

    ``user_calls`` counts the calls of ``loglike`` made by this object (in
    this process: a copy sent to a pool's worker counts there).  Derived
    parameters pass through; outside the cube they are NaN.
    """

    def __init__(self, loglike, prior_transform, flow):
        self.loglike = loglike
        self.prior_transform = prior_transform
        self.flow = flow
        self.user_calls = 0
        self.nderived = len(self.derived_names)  # fixed for the run; read on every draw outside the cube

    def both(self, u) -> tuple:
        u = np.asarray(u, dtype=float)
        # The flow's support may extend past the cube (see workflows.levels.train):
        # there the old prior, and so the likelihood, is zero.  The user's
        # functions are never called outside the cube.
        if not in_unit_cube(u):
            return -np.inf, np.full(self.nderived, np.nan)
        logq = self.flow.log_prob(u)
        theta = self.prior_transform(u)
        self.user_calls += 1
        note_call()
        value, derived = evaluate(self.loglike, theta)
        return float(value) - logq, derived


class CountedLikelihood(Carrier):
    """A likelihood that counts the calls of the user's function it makes.

    Wraps ``loglike``; if that keeps its own ``user_calls`` (a
    :class:`RepartitionedLikelihood`, which skips the user's function outside
    the cube) those made from now on are the count, else every call of this
    object is one.  ``offset`` adds calls made before (a resumed run's) or
    elsewhere (:meth:`add`).
    """

    def __init__(self, loglike, offset: int = 0):
        self.loglike = loglike
        self.offset = int(offset)
        self._own = 0
        self._inner_start = getattr(loglike, "user_calls", None)

    def add(self, calls: int) -> None:
        """Count ``calls`` made elsewhere (by a pool's workers: :class:`~flowprior.workflows.counting.CountingPool`)."""
        self.offset += int(calls)

    def restart(self, offset: int) -> None:
        """Count from ``offset`` on, forgetting the calls made so far."""
        self.offset, self._own = int(offset), 0
        self._inner_start = getattr(self.loglike, "user_calls", None)

    @property
    def user_calls(self) -> int:
        if self._inner_start is None:
            return self.offset + self._own
        return self.offset + int(self.loglike.user_calls) - int(self._inner_start)

    def both(self, theta) -> tuple:
        self._own += 1
        if self._inner_start is None:  # the user's function itself: this is one call of it
            note_call()
        return evaluate(self.loglike, theta)


def physical(prior_transform, u: np.ndarray) -> np.ndarray:
    """Map rows of the user's hypercube to parameters with their prior transform."""
    return np.array([prior_transform(row) for row in u])
