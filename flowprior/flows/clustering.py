"""Choosing the clusters of a piecewise flow."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

#: Points used to score a clustering: the silhouette costs O(m^2) memory, so it is scored
#: on a subsample of at most this many (docs/design.md, "Which flow: `flow="auto"`").
SILHOUETTE_SAMPLE = 2000


def _weighted_subsample(w: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of up to ``m`` distinct rows drawn in proportion to their weights.

    Even when all rows would fit, unequal weights are drawn by: a nested
    sampling run's early dead points carry almost no weight but would
    otherwise swamp the score, and separated modes would then score too
    low for ``flow="auto"`` to give them pieces (docs/design.md, "Which
    flow: `flow="auto"`").
    """
    n = len(w)
    if n <= m and np.all(w == w[0]):
        return np.arange(n)
    idx = rng.choice(n, size=m, replace=True, p=w / w.sum())
    return np.unique(idx)


def kmeans_silhouette(y: np.ndarray, w: np.ndarray, k_max: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """k-means labels with k in 2..k_max chosen by the largest silhouette score.

    The score is computed on a weight-proportional subsample of at most
    ``SILHOUETTE_SAMPLE`` rows, so memory stays linear in the number of samples.

    Returns
    -------
    labels : ndarray of int, shape (n,)
    scores : dict k -> silhouette score
    """
    sub = _weighted_subsample(w, SILHOUETTE_SAMPLE, rng)
    scores, fits = {}, {}
    for k in range(2, k_max + 1):
        if k >= len(sub):
            break
        km = KMeans(n_clusters=k, n_init=4, random_state=int(rng.integers(2**31)))
        labels = km.fit_predict(y, sample_weight=w)
        if len(np.unique(labels[sub])) < 2:
            continue
        scores[k] = float(silhouette_score(y[sub], labels[sub]))
        fits[k] = labels
    if not scores:
        return np.zeros(len(y), dtype=np.int64), {}
    best = max(scores, key=scores.get)
    return fits[best].astype(np.int64), scores


def split_clusters(y: np.ndarray, w: np.ndarray, labels: np.ndarray, split: int, min_size: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Divide each cluster into ``split`` pieces by weighted k-means on its own samples.

    A cluster is left whole when any of its pieces would have fewer than
    ``min_size`` positive-weight samples, so splitting never creates a piece
    that :func:`merge_small` would have to undo.  Pieces never straddle two
    clusters.  Returns labels 0..K-1.
    """
    if split == 1:
        return labels
    out = np.empty_like(labels)
    nxt = 0
    for k in np.unique(labels):
        m = labels == k
        sub = None
        if np.sum(w[m] > 0) >= split * min_size:
            km = KMeans(n_clusters=split, n_init=4, random_state=int(rng.integers(2**31)))
            sub = km.fit_predict(y[m], sample_weight=w[m])
            sizes = [np.sum((sub == j) & (w[m] > 0)) for j in range(split)]
            if min(sizes) < min_size:
                sub = None
        if sub is None:
            out[m] = nxt
            nxt += 1
        else:
            out[m] = nxt + sub
            nxt += split
    return out.astype(np.int64)


def merge_small(y: np.ndarray, w: np.ndarray, labels: np.ndarray, min_size: int) -> np.ndarray:
    """Merge clusters with fewer than ``min_size`` positive-weight rows into the nearest one.

    Nearest is by distance between weighted centroids.  A warning lists what
    was merged, so nothing happens silently.
    """
    labels = labels.copy()
    while True:
        ids = np.unique(labels)
        sizes = {k: int(np.sum((labels == k) & (w > 0))) for k in ids}
        small = [k for k in ids if sizes[k] < min_size]
        if not small or len(ids) == 1:
            break
        k = min(small, key=lambda c: sizes[c])
        cent = {c: np.average(y[labels == c], axis=0, weights=w[labels == c] + 1e-300) for c in ids}
        others = [c for c in ids if c != k]
        target = min(others, key=lambda c: np.sum((cent[c] - cent[k]) ** 2))
        warnings.warn(
            f"cluster {k} has {sizes[k]} samples with positive weight (< {min_size}, too few to train a flow); "
            f"merged into the nearest cluster {target}",
            stacklevel=3,
        )
        labels[labels == k] = target
    # Relabel 0..K-1 in order of first appearance of the sorted ids.
    _, labels = np.unique(labels, return_inverse=True)
    return labels.astype(np.int64)


def soft_memberships(y: np.ndarray, w: np.ndarray, labels: np.ndarray, overlap: float) -> np.ndarray:
    """Responsibilities of each cluster for each row, shape (n, k); rows sum to 1.

    Cluster ``k`` is a Gaussian with its weighted mean and ``overlap`` times
    its weighted covariance, weighted by its summed sample weight.  Computed
    in log space, so rows far from every cluster do not underflow to 0/0;
    ``y`` is standardised, so the 1e-9 ridge only matters for a cluster
    whose samples are degenerate (all on a line, say).
    """
    from scipy.stats import multivariate_normal

    ids = np.unique(labels)
    logr = np.empty((len(y), len(ids)))
    for j, k in enumerate(ids):
        m = labels == k
        mean = np.average(y[m], axis=0, weights=w[m])
        cov = np.atleast_2d(np.cov(y[m], rowvar=False, aweights=w[m])) * overlap + 1e-9 * np.eye(y.shape[1])
        logr[:, j] = np.log(w[m].sum()) + multivariate_normal(mean, cov).logpdf(y)
    logr -= logr.max(axis=1, keepdims=True)
    r = np.exp(logr)
    return r / r.sum(axis=1, keepdims=True)
