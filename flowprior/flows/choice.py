"""The ``flow="auto"`` choice of estimator for a low-resolution run's samples: piecewise when they cluster.

Used by the enhanced run (:func:`flowprior.enhanced_run`) and by
:func:`flowprior.reweight`'s proposal.
"""

from __future__ import annotations

import numpy as np

from flowprior.flows.base import FlowDensity
from flowprior.flows.clustering import kmeans_silhouette
from flowprior.flows.maf import MAF
from flowprior.flows.piecewise import PiecewiseFlow
from flowprior.flows.spaces import Space

#: Best k-means silhouette at which ``flow="auto"`` trains a piecewise flow: between what
#: one Gaussian and two touching ones score (docs/design.md, "Which flow: `flow="auto"`").
AUTO_SILHOUETTE = 0.5


def choose_flow(u: np.ndarray, weights: np.ndarray, rng: np.random.Generator) -> FlowDensity:
    """The ``flow="auto"`` estimator for hypercube samples: piecewise when they cluster.

    Small data wants small flows: a low-resolution run has an effective
    sample size of a few hundred, so pieces are 3 x 32 MAFs
    (docs/design.md, "Which flow: `flow="auto"`").
    """
    small = dict(n_transforms=3, hidden_features=(32, 32), seed=rng, progress=False)
    keep = weights > 0
    d = u.shape[1]
    space = Space.fit(u[keep], weights[keep], np.zeros(d), np.ones(d), whiten=False)
    y, _ = space.to_real(u[keep])
    _, scores = kmeans_silhouette(y, weights[keep], 10, rng)
    if scores and max(scores.values()) >= AUTO_SILHOUETTE:
        return PiecewiseFlow(clusters=max(scores, key=scores.get), **small)
    return MAF(**small)
