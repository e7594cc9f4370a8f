"""Choices made from a low-resolution run's hypercube samples: the estimator, and the space of each coordinate.

``flow="auto"`` trains a piecewise flow when the samples cluster
(:func:`choose_flow`); the coordinates whose marginal a Gaussian fits
better through the probit link than on the cube itself are the
candidates for it (:func:`cube_bounds`; the enhanced run then keeps the
fit with the better held-out likelihood).  Used by the enhanced run (:func:`flowprior.enhanced_run`)
and by :func:`flowprior.reweight`'s proposal.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from flowprior.flows.base import FlowDensity
from flowprior.flows.clustering import kmeans_silhouette
from flowprior.flows.maf import LOW_RUN_PATIENCE, MAF
from flowprior.flows.piecewise import PiecewiseFlow
from flowprior.flows.spaces import Space

#: Nats per sample by which a Gaussian in ``ndtri(u)`` must fit a coordinate better than one in ``u``
#: for :func:`cube_bounds` to choose the probit link: interior Gaussian posteriors differ by
#: under 0.002, edge-piled or Gaussian-prior ones by 0.02-0.35 (docs/design.md,
#: "The flow's space in the enhanced run").
PROBIT_GAIN = 0.01

#: Best k-means silhouette at which ``flow="auto"`` trains a piecewise flow: between what
#: one Gaussian and two touching ones score (docs/design.md, "Which flow: `flow="auto"`").
AUTO_SILHOUETTE = 0.5


#: Share of the samples held out when ``flow="auto"`` compares a piecewise flow with one MAF.
HOLD_OUT = 0.25


def auto_flow(u: np.ndarray, weights: np.ndarray, rng: np.random.Generator, transform: str = "slab") -> FlowDensity:
    """The enhanced run's ``flow="auto"``: :func:`choose_flow`, and where that is piecewise, the better on held-out rows.

    A curved unimodal posterior clusters too (a banana scores a silhouette
    above ``AUTO_SILHOUETTE``), and its pieces can have worse tails than one
    MAF.  So a piecewise candidate is compared with one MAF: both are fitted
    to the same ``1 - HOLD_OUT`` of the samples and scored by the weighted
    mean log-density of the rest; the better is returned, unfitted.  The
    comparison draws from a copy of ``rng``, so a piecewise flow that wins
    trains as it would without it (docs/design.md, "Which flow: `flow="auto"`").
    ``transform`` is a piecewise candidate's prior transform.
    """
    import copy

    estimator = choose_flow(u, weights, rng, transform)
    if not isinstance(estimator, PiecewiseFlow):
        return estimator
    single = MAF(**{**_SMALL, "seed": rng})
    scores = held_out_scores([estimator, single], u, weights, copy.deepcopy(rng))
    return single if scores[1] > scores[0] else estimator


def held_out_scores(estimators: list, u: np.ndarray, weights: np.ndarray, rng: np.random.Generator) -> list[float]:
    """Weighted mean log-density of held-out rows under each estimator fitted (a copy) to the other rows."""
    import copy
    import warnings

    keep = weights > 0
    x, w = u[keep], weights[keep]
    test = rng.uniform(size=len(x)) < HOLD_OUT
    scores = []
    for est in estimators:
        fit = type(est)(**{**est.get_params(), "seed": copy.deepcopy(rng)})
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="weights: effective sample size", category=UserWarning)
            fit.fit(x[~test], weights=w[~test])
        scores.append(float(np.sum(w[test] * fit.log_prob(x[test])) / w[test].sum()))
    return scores


#: The estimators :func:`choose_flow` returns: small, for the few hundred effective samples of a low run.
_SMALL = dict(n_transforms=3, hidden_features=(32, 32), patience=LOW_RUN_PATIENCE, progress=False)


def choose_flow(u: np.ndarray, weights: np.ndarray, rng: np.random.Generator, transform: str = "slab") -> FlowDensity:
    """The ``flow="auto"`` estimator for hypercube samples: piecewise when they cluster.

    Small data wants small flows: a low-resolution run has an effective
    sample size of a few hundred, so pieces are 3 x 32 MAFs
    (docs/design.md, "Which flow: `flow="auto"`").
    """
    small = {**_SMALL, "seed": rng}
    k = clusters(u, weights, rng)
    return MAF(**small) if k is None else PiecewiseFlow(clusters=k, transform=transform, **small)


def clusters(u: np.ndarray, weights: np.ndarray, rng: np.random.Generator) -> int | None:
    """The number of clusters of weighted hypercube samples, or None where they do not cluster.

    k-means (2 to 10 clusters) in the probit-linked space; the best
    silhouette must reach ``AUTO_SILHOUETTE``.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> u = np.concatenate([rng.normal(0.2, 0.02, (200, 2)), rng.normal(0.8, 0.02, (200, 2))])
    >>> clusters(u, np.ones(400), rng), clusters(rng.normal(0.5, 0.05, (400, 2)), np.ones(400), rng)
    (2, None)
    """
    keep = weights > 0
    d = u.shape[1]
    space = Space.fit(u[keep], weights[keep], np.zeros(d), np.ones(d), whiten=False)
    y, _ = space.to_real(u[keep])
    _, scores = kmeans_silhouette(y, weights[keep], 10, rng)
    if scores and max(scores.values()) >= AUTO_SILHOUETTE:
        return max(scores, key=scores.get)
    return None


def cube_bounds(u: np.ndarray, weights: np.ndarray) -> list:
    """Per coordinate of hypercube samples: ``(0, 1)`` to fit it through the probit link, or None (unbounded).

    A coordinate's marginal is compared under two Gaussian fits, both as
    densities on the cube: one of ``u`` itself, one of ``ndtri(u)`` (with
    its Jacobian).  The probit link wins where the second fits the weighted
    samples better by ``PROBIT_GAIN``: a parameter whose prior is an inverse CDF (its
    posterior is Gaussian in ``ndtri(u)``), a flat one or one piled at a
    face of the cube.  A Gaussian likelihood under a uniform prior stays
    on the cube, where it is exactly Gaussian (docs/design.md, "The flow's
    space in the enhanced run").  Samples on a face keep the coordinate
    unbounded.

    Parameters
    ----------
    u : ndarray of shape (n, d)
        Samples in the unit hypercube.
    weights : ndarray of shape (n,)
        Their weights (zero-weight rows are ignored).

    Returns
    -------
    list of ``(0.0, 1.0)`` or None, one per coordinate
        ``bounds`` for a flow with ``link="probit"``.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> n = 2000
    >>> u = np.column_stack([rng.uniform(size=n), 0.5 + 0.01 * rng.normal(size=n), np.abs(0.1 * rng.normal(size=n))])
    >>> cube_bounds(u, np.ones(n))
    [(0.0, 1.0), None, (0.0, 1.0)]
    """
    keep = weights > 0
    u, w = u[keep], weights[keep] / weights[keep].sum()
    out = []
    for col in u.T:
        if not np.all((col > 0) & (col < 1)):
            out.append(None)
            continue
        z = ndtri(col)
        # Gaussian log-likelihoods at their weighted fits: -log(s) - (1 + log 2 pi) / 2 each,
        # plus log|dz/du| = z^2 / 2 + log(2 pi) / 2 for the probit fit.
        fit_u = -0.5 * np.log(w @ (col - w @ col) ** 2)
        fit_z = -0.5 * np.log(w @ (z - w @ z) ** 2) + w @ (0.5 * z**2 + 0.5 * np.log(2 * np.pi))
        out.append((0.0, 1.0) if fit_z > fit_u + PROBIT_GAIN else None)
    return out
