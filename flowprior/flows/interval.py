"""The base of a spline flow with interval coordinates: uniform on ``[-B, B]`` there, standard normal elsewhere.

A spline maps ``[-B, B]`` onto itself, so a two-sided coordinate sent
affinely onto that interval (the ``"interval"`` link of
:class:`~flowprior.flows.spaces.Space`) stays on it through every transform
of a neural spline flow.  With a uniform base there, the untrained flow is
flat on the coordinate's bounds, and a density that is flat, or highest at a
bound, is the spline's own shape rather than a Gaussian seen through a logit.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from flowprior.flows.spaces import INTERVAL_B


class IntervalNormal(torch.distributions.Distribution):
    """Independent coordinates: uniform on ``[-B, B]`` where ``interval`` is 1, standard normal where it is 0.

    Parameters
    ----------
    loc : Tensor of shape (d,)
        Zeros: it only carries the dtype and device (and the event size).
    interval : Tensor of shape (d,)
        1.0 for interval coordinates, 0.0 for the others.
    """

    arg_constraints: dict = {}

    def __init__(self, loc: torch.Tensor, interval: torch.Tensor):
        self.loc, self.interval = loc, interval.to(dtype=torch.bool)
        super().__init__(event_shape=loc.shape[-1:], validate_args=False)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        normal = -0.5 * z**2 - 0.5 * math.log(2 * math.pi)
        flat = torch.where(z.abs() <= INTERVAL_B, -math.log(2 * INTERVAL_B), -math.inf).to(z.dtype)
        return torch.where(self.interval, flat, normal).sum(dim=-1)

    def rsample(self, shape=torch.Size()) -> torch.Tensor:
        size = torch.Size(shape) + self.loc.shape
        normal = torch.randn(size, dtype=self.loc.dtype, device=self.loc.device)
        flat = (2 * torch.rand(size, dtype=self.loc.dtype, device=self.loc.device) - 1) * INTERVAL_B
        return torch.where(self.interval, flat, normal)


def interval_base(interval: np.ndarray):
    """zuko's lazy base for a flow whose ``interval`` coordinates (a boolean mask) have the uniform base."""
    from zuko.lazy import UnconditionalDistribution

    mask = torch.as_tensor(np.asarray(interval, dtype=float))
    return UnconditionalDistribution(IntervalNormal, loc=torch.zeros(len(mask)), interval=mask, buffer=True)
