"""A defensive mixture: a flow on the unit cube mixed with the uniform cube.

``q_eps(u) = (1 - eps) q(u) + eps`` never falls below ``eps``, so the
repartitioned likelihood ``L / q_eps`` stays bounded where the flow is too
narrow (missed tails or modes), and the sampler still explores the whole
cube.  As a prior transform it follows the piecewise rule: the first
coordinate picks the component by cumulative weight and is rescaled within
its slab, so the pushforward of the uniform cube is exactly ``q_eps``.
"""

from __future__ import annotations

import numpy as np

from flowprior.data import as_points, named_points, unit_cube_error
from flowprior.numerics import in_unit_cube


class DefensiveFlow:
    """``(1 - epsilon) * flow + epsilon * Uniform([0, 1]^d)`` on the unit cube.

    Parameters
    ----------
    flow : MAF or PiecewiseFlow
        A flow whose support is the unit cube or unbounded (the enhanced
        run's flows are unbounded; see :func:`flowprior.workflows.levels.train`).
    epsilon : float in (0, 1)
        Weight of the uniform component.
    """

    def __init__(self, flow, epsilon: float):
        if not 0 < epsilon < 1:
            raise ValueError(f"epsilon: expected a weight in (0, 1), got {epsilon!r}")
        if flow.bounds_ not in ([(0.0, 1.0)] * flow.ndim_, [(None, None)] * flow.ndim_):
            raise ValueError("flow: a defensive mixture needs a flow whose support is the unit cube or unbounded; "
                             f"its bounds are {flow.bounds_}")
        self.flow = flow
        self.epsilon = float(epsilon)
        self.ndim_ = flow.ndim_
        self._log_eps = np.log(self.epsilon)
        self._log_rest = np.log1p(-self.epsilon)

    def prior_transform(self, v) -> np.ndarray:
        """Unit cube -> unit cube; deterministic, pushforward ``q_eps``."""
        arr, single = as_points(v, self.ndim_, "v")
        if not in_unit_cube(arr).all():
            raise unit_cube_error(arr, "v")
        out = arr.copy()
        eps = self.epsilon
        uniform = arr[:, 0] < eps
        out[uniform, 0] = arr[uniform, 0] / eps
        rest = ~uniform
        if rest.any():
            inner = arr[rest].copy()
            inner[:, 0] = np.clip((inner[:, 0] - eps) / (1 - eps), 0.0, 1.0)
            out[rest] = self.flow.prior_transform(inner)
        return out[0] if single else out

    __call__ = prior_transform

    def log_prob(self, u) -> np.ndarray:
        """``log q_eps(u)``; outside the cube only the flow's share (``-inf`` for a cube-bounded flow)."""
        arr, single = named_points(u, None, self.ndim_, "u", "flow")
        inside = in_unit_cube(arr)
        out = self._log_rest + self.flow.log_prob(arr)
        out[inside] = np.logaddexp(out[inside], self._log_eps)
        return float(out[0]) if single else out

    def sample(self, n: int, seed=None) -> np.ndarray:
        from flowprior.flows.base import make_rng

        return self.prior_transform(make_rng(seed).uniform(size=(int(n), self.ndim_)))


def defended(flow, epsilon: float | None):
    """``flow`` mixed with the uniform cube at weight ``epsilon`` (a :class:`DefensiveFlow`); ``flow`` itself
    where ``epsilon`` is None or 0.

    Example
    -------
    >>> defended("any flow", None)
    'any flow'
    """
    return DefensiveFlow(flow, epsilon) if epsilon else flow
