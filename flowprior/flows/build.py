"""Building the zuko flows flowprior trains: MAF or NSF transforms, initialised to the identity."""

from __future__ import annotations

import numpy as np
import torch


def build_maf(ndim: int, n_transforms: int, hidden_features, blocks: list[list[int]] | None = None,
              bins: int | None = None, interval=None, same_order: bool = False) -> torch.nn.Module:
    """The zuko MAF (or, with ``bins``, NSF) flowprior trains and exports, initialised to the identity.

    Each transform's output layer starts at zero (shift 0, scale 1; a
    spline's equal bins and unit slopes), so the untrained flow is the base
    Gaussian: on whitened coordinates, the weighted Gaussian fit.  Training
    starts from there rather than from a random distortion, which matters
    with the few hundred effective samples of a low-resolution
    nested-sampling run.  With ``blocks`` (lists of column indices that
    partition the coordinates) each transform lets a coordinate depend only
    on coordinates of its own block (:mod:`flowprior.flows.blocks`).  The
    orders alternate as in zuko's MAF, or with ``same_order`` all follow the
    natural order, which the bijective piecewise transform needs
    (:mod:`flowprior.flows.rosenblatt`).  ``interval`` (a boolean mask, with
    ``bins``) gives those coordinates a uniform base on the splines'
    interval (:mod:`flowprior.flows.interval`).
    """
    import zuko
    from zuko.nn import MaskedLinear

    hidden = tuple(hidden_features)
    if bins:
        flow = zuko.flows.NSF(ndim, bins=int(bins), transforms=n_transforms, hidden_features=hidden)
    else:
        flow = zuko.flows.MAF(ndim, transforms=n_transforms, hidden_features=hidden)
    if (blocks is not None or same_order) and ndim > 1:
        from zuko.flows.autoregressive import MaskedAutoregressiveTransform

        from flowprior.flows.blocks import adjacency

        spline = {} if not bins else {"univariate": flow.transform.transforms[0].univariate,
                                      "shapes": flow.transform.transforms[0].shapes}
        for t in range(n_transforms):
            position = np.arange(ndim) if t % 2 == 0 or same_order else np.arange(ndim)[::-1].copy()
            if blocks is None:
                transform = MaskedAutoregressiveTransform(ndim, order=torch.as_tensor(position),
                                                          hidden_features=hidden, **spline)
            else:
                transform = MaskedAutoregressiveTransform(
                    ndim, adjacency=torch.as_tensor(adjacency(blocks, position)), hidden_features=hidden, **spline)
                transform.order = torch.as_tensor(position)  # the total order the compiled kernels invert along
            flow.transform.transforms[t] = transform
    if interval is not None and np.any(interval):
        from flowprior.flows.interval import interval_base

        flow.base = interval_base(interval)
    with torch.no_grad():
        for transform in flow.transform.transforms:
            if hasattr(transform, "hyper"):
                last = [m for m in transform.hyper if isinstance(m, MaskedLinear)][-1]
                last.weight.zero_()
                last.bias.zero_()
            else:
                for p in transform.phi:
                    p.zero_()
    return flow
