"""Piecewise flows: one MAF per cluster of the samples, mixed by cluster weight."""

from __future__ import annotations

import numpy as np

from flowprior.flows.base import FlowDensity, make_rng
from flowprior.flows.clustering import kmeans_silhouette, merge_small, soft_memberships, split_clusters
from flowprior.data import check_enough, check_inside, is_real, read_samples, warn_degenerate
from flowprior.flows.maf import MIN_SAMPLES, MAFSettings, default_patience
from flowprior.flows.spaces import Space, parse_bounds


#: Smallest responsibility for which a sample trains a piece (``overlap``): it leaves out rows of
#: almost no weight; a larger cut gained nothing (docs/design.md, "Piecewise flows and training defaults").
MIN_MEMBERSHIP = 0.01
#: The piecewise prior transforms: slabs of the first coordinate, or the mixture's conditional CDFs.
TRANSFORMS = ("slab", "rosenblatt")


def _train_one(estimator: MAFSettings, x, w, space, seed_seq, desc):
    """Train one piece (module-level so joblib can send it to a worker)."""
    return estimator._train_piece(x, w, space, np.random.default_rng(seed_seq), desc=desc)


class PiecewiseFlow(MAFSettings, FlowDensity):
    """A mixture of MAFs, one per cluster of the samples.

    The density is ``sum_k W_k p_k(theta)`` with ``W_k`` the summed sample
    weights of cluster ``k``.  Its prior transform is deterministic, and one
    of two maps (``transform``).

    Parameters
    ----------
    clusters : "auto", int, array_like of int, or a clusterer
        ``"auto"``: k-means with k in 2..``k_max`` chosen by the silhouette
        score.  An int: k-means with that k.  An array: one label per sample.
        An object with ``fit_predict`` (any scikit-learn clusterer): its
        labels on the standardised samples.  Explicit clusters are the
        pieces; ``"auto"`` clusters are split further (``split``).
    k_max : int
        Largest k tried by ``"auto"``: 20 lets the silhouette find the
        many arcs of a curved target; more costs time for no better KL
        (docs/design.md, "Piecewise flows and training defaults").
    split : int
        With ``clusters="auto"``, each cluster the silhouette chose is
        divided into this many pieces by k-means on its own samples (a
        cluster stays whole where a piece would get fewer than
        ``min_cluster_size`` samples).  The silhouette finds clusters, not
        the resolution a density needs: on a ring it picks arcs each too
        curved for a small flow, and halving them lowers the KL on curved
        targets at a small cost on Gaussian clusters (docs/design.md,
        "Piecewise flows and training defaults").  ``1`` gives the paper's
        one piece per cluster.
    n_jobs : int
        Pieces trained in parallel (processes, via joblib) when > 1.
    min_cluster_size : int
        Clusters with fewer positive-weight samples are merged into the
        nearest cluster, with a warning (user-given labels raise instead).
    overlap : float or None
        Soft cluster membership.  Each cluster gets a Gaussian fit (its
        weighted mean and covariance, the covariance scaled by ``overlap``)
        and each sample a responsibility ``r_k`` under the mixture of these
        fits; piece ``k`` trains on the samples with ``r_k >= 0.01``, their
        weights multiplied by ``r_k``, and its mixture weight is the summed
        product.  Pieces then fade out smoothly instead of ending at a hard
        cluster boundary, which a flow with a Gaussian base cannot follow.
        2 balances the two sides: a smaller overlap leaves the boundaries
        harder, a wider one trains pieces on far, thinly weighted rows that
        then draw outliers (docs/design.md, "Piecewise flows and training
        defaults").
        ``None``: hard clusters, each sample in one piece (faster to fit).
    transform : {"slab", "rosenblatt"}
        ``"slab"``: the first hypercube coordinate picks the piece by
        cumulative weight and is rescaled within that piece's slab, the rest
        goes to that piece's flow.  Every slab covers the whole support, so
        the map is many-to-one and :meth:`inverse_transform` is only a right
        inverse.  ``"rosenblatt"``: the mixture's own conditional CDFs
        ``u_i = F(x_i | x_<i)``, a continuous bijection of the cube whose
        exact inverse is :meth:`inverse_transform`; the pieces' transforms
        then all follow the natural variable order
        (:mod:`flowprior.flows.rosenblatt`).
    patience : int, optional
        As :class:`MAF`'s, but the default is 2 % of ``max_epochs`` without
        MAF's floor of optimizer steps: pieces trained longer fit worse.
    n_transforms : int
        Autoregressive transforms per piece: 3, not MAF's 5, because a
        piece only has to bend one cluster; it gives the same KL as 5 in
        shorter fits (docs/design.md, "Piecewise flows and training defaults").
    **maf_kwargs
        Passed to each piece's :class:`MAF` (hidden layers, training, seed...).

    Attributes
    ----------
    cluster_labels_ : ndarray of int
        The piece of each positive-weight training sample (its hard label,
        before any ``overlap``).
    n_clusters_ : int
        Clusters found before ``split`` divided them into pieces.
    silhouette_ : dict
        Silhouette score per k tried (``"auto"`` only).
    """

    def __init__(self, clusters="auto", k_max: int = 20, split: int = 2, n_jobs: int = 1,
                 min_cluster_size: int = 50, overlap: float | None = 2.0, transform: str = "slab",
                 n_transforms: int = 3, **maf_kwargs):
        super().__init__(n_transforms=n_transforms, **maf_kwargs)
        self.overlap = overlap
        self.transform = transform
        self.clusters = clusters
        self.k_max = k_max
        self.split = split
        self.n_jobs = n_jobs
        self.min_cluster_size = min_cluster_size
        self._check_params()

    def get_params(self) -> dict:
        params = super().get_params()
        params.update(
            clusters=self.clusters if isinstance(self.clusters, (str, int)) else None,
            k_max=self.k_max, split=self.split, n_jobs=self.n_jobs, min_cluster_size=self.min_cluster_size,
            overlap=self.overlap, transform=self.transform,
        )
        return params

    def _same_order(self) -> bool:
        return self.transform == "rosenblatt"

    def _default_patience(self, n_rows: int) -> int:
        # 2 % of max_epochs, not MAF's 200-step floor: pieces trained longer fit Table 1's targets 9-21 % worse
        # (benchmarks/RESULTS.md, "anesthetic's example chains through `flowprior train`").
        return default_patience(self.max_epochs, n_rows, self.val_fraction, self.batch_size, min_steps=0)

    def _check_params(self) -> None:
        super()._check_params()
        if self.overlap is not None and not (is_real(self.overlap) and 0 < self.overlap < np.inf):
            raise ValueError(f"overlap: expected a positive number or None, got {self.overlap!r}")
        if not (isinstance(self.split, (int, np.integer)) and not isinstance(self.split, bool) and self.split >= 1):
            raise ValueError(f"split: expected a positive integer (pieces per cluster), got {self.split!r}")
        if self.transform not in TRANSFORMS:
            raise ValueError(f"transform: expected one of {list(TRANSFORMS)} (the piecewise prior transform), "
                             f"got {self.transform!r}")

    def fit(self, theta, weights=None, bounds=None, names=None) -> "PiecewiseFlow":
        """Cluster the samples and train one MAF per cluster (see :meth:`MAF.fit`)."""
        self._check_params()
        data = read_samples(theta, weights, names)
        lo, hi = parse_bounds(bounds, data.x.shape[1], data.names)
        check_inside(data.x, lo, hi)
        n_all = len(data.x)
        keep = data.weights > 0
        check_enough(int(keep.sum()), MIN_SAMPLES)
        warn_degenerate(data.x[keep], data.weights[keep], data.names)
        rng = make_rng(self.seed)
        global_space = Space.fit(data.x[keep], data.weights[keep], lo, hi, whiten=False, link=self.link)
        y, _ = global_space.to_real(data.x[keep])
        x, w = data.x[keep], data.weights[keep]
        labels, self.silhouette_ = self._cluster(y, w, keep, n_all, rng)
        self.n_clusters_ = len(np.unique(labels))
        if isinstance(self.clusters, str):  # "auto" (_cluster refused any other string)
            labels = split_clusters(y, w, labels, int(self.split), self.min_cluster_size, rng)
        # Each piece keeps the common bounds, so the mixture's support is the box.
        ids = np.unique(labels)
        if self.overlap is None or len(ids) == 1:
            parts = [(x[labels == k], w[labels == k]) for k in ids]
        else:
            r = soft_memberships(y, w, labels, self.overlap)
            keep_k = r >= MIN_MEMBERSHIP
            parts = [(x[keep_k[:, j]], w[keep_k[:, j]] * r[keep_k[:, j], j]) for j in range(len(ids))]
        mask = self._resolve_blocks(x.shape[1], data.names)
        spaces = [Space.fit(xk, wk, lo, hi, whiten=self.whiten, link=self.link, same_block=mask) for xk, wk in parts]
        seeds = np.random.SeedSequence(int(rng.integers(2**63))).spawn(len(ids))
        jobs = [(xk, wk, sk, seeds[i], f"piece {i + 1}/{len(ids)}") for i, ((xk, wk), sk) in enumerate(zip(parts, spaces))]
        if self.n_jobs == 1 or len(ids) == 1:
            results = [_train_one(self, *job) for job in jobs]
        else:
            from joblib import Parallel, delayed

            import os

            n_workers = min(len(jobs), self.n_jobs if self.n_jobs > 0 else os.cpu_count() or 1)
            results = Parallel(n_jobs=n_workers)(delayed(_train_one)(self, *job) for job in jobs)
        self.ndim_ = x.shape[1]
        self.names_ = data.names
        self.cluster_labels_ = labels
        self.pieces_ = [r[0] for r in results]
        self.records_ = [r[1] for r in results]
        self.spaces_ = spaces
        totals = np.array([wk.sum() for _, wk in parts])
        self.weights_ = totals / totals.sum()
        self.latex_labels_ = data.labels
        self._finish()
        return self

    def _cluster(self, y, w, keep, n_all, rng):
        c = self.clusters
        if isinstance(c, str):
            if c != "auto":
                raise ValueError(f"clusters: expected 'auto', an int, labels or a clusterer; got {c!r}")
            labels, scores = kmeans_silhouette(y, w, self.k_max, rng)
            return merge_small(y, w, labels, self.min_cluster_size), scores
        if isinstance(c, (int, np.integer)):
            if c < 1:
                raise ValueError(f"clusters: expected a positive number of clusters, got {c}")
            if c == 1:
                return np.zeros(len(y), dtype=np.int64), {}
            from sklearn.cluster import KMeans

            km = KMeans(n_clusters=int(c), n_init=4, random_state=int(rng.integers(2**31)))
            labels = km.fit_predict(y, sample_weight=w)
            return merge_small(y, w, labels, self.min_cluster_size), {}
        if hasattr(c, "fit_predict"):
            labels = np.asarray(c.fit_predict(y))
            if labels.shape != (len(y),):
                raise ValueError(f"clusters: the clusterer returned labels of shape {labels.shape}, expected ({len(y)},)")
            if (labels < 0).any():
                raise ValueError(
                    f"clusters: the clusterer left {int((labels < 0).sum())} samples unassigned (label -1, noise); "
                    "every sample needs a cluster"
                )
            return merge_small(y, w, labels, self.min_cluster_size), {}
        labels = np.asarray(c)
        if labels.shape != (n_all,):
            raise ValueError(f"clusters: expected one label per sample, shape ({n_all},); got {labels.shape}")
        labels = labels[keep]
        ids, counts = np.unique(labels, return_counts=True)
        small = [(int(i), int(n)) for i, n in zip(ids, counts) if n < self.min_cluster_size]
        if small:
            raise ValueError(
                f"clusters: labels {[s[0] for s in small]} have too few positive-weight samples "
                f"({[s[1] for s in small]}, need {self.min_cluster_size}); merge them or lower min_cluster_size"
            )
        return np.unique(labels, return_inverse=True)[1].astype(np.int64), {}
