"""A dynesty bound for multimodal low-resolution runs: dynesty's ellipsoids, plus one for each small cluster.

dynesty's multi-ellipsoid bound never gives fewer than ``2 * ndim`` live
points an ellipsoid of their own.  With 100 live points a mode of small
mass holds fewer than that as its contour closes, so it shares an
ellipsoid spanning two modes, and uniform draws from that ellipsoid are
mostly rejected.  ``ModeEllipsoids`` keeps dynesty's ellipsoids and then
carves such a cluster out of the ellipsoid it shares, which makes a
multimodal low stage cheaper and keeps its small modes' masses closer to
the truth (docs/design.md, "dynesty low-stage bounds" and "ModeEllipsoids'
constants").
"""

from __future__ import annotations

import numpy as np
from dynesty.bounding import Ellipsoid, MultiEllipsoid, bounding_ellipsoid
from scipy.cluster.hierarchy import fcluster, linkage

#: A carved cluster's ellipsoid gets this many times the volume its points would fill at the
#: density of the points beside it (``share_ellipsoid``): room for the few points' spread; the low
#: stage's cost barely depends on it (docs/design.md, "ModeEllipsoids' constants").
SHARE = 3.0
#: A carve is kept only if it shrinks the volume by at least this factor...: smaller shrinks are
#: mostly a unimodal contour's edge, and a stricter factor left one multimodal low stage dear
#: (docs/design.md, "ModeEllipsoids' constants").
MIN_SHRINK = 2.0
#: ...and the cluster lies at least this far from the rest, in units of the rest's ellipsoid (1 is
#: its surface): between where a unimodal contour's outermost points lie and where a dying mode
#: lies (docs/design.md, "ModeEllipsoids' constants").
MIN_GAP = 3.0


def share_ellipsoid(points: np.ndarray, beside: Ellipsoid, n_beside: int, share: float = SHARE) -> Ellipsoid:
    """An ellipsoid for a few points: the shape of ``beside``, sized by their share of its points.

    Fewer than ``2 * ndim`` points fix neither a shape nor a volume; the
    points beside them do both.  Live points are uniform within the
    contour, so ``len(points)`` of them fill about ``len(points) /
    n_beside`` of ``beside``'s volume; the ellipsoid takes ``share`` times
    that, centred on the points, and grows if it must to contain them all.
    """
    n, ndim = points.shape
    ctr = points.mean(axis=0)
    cov = beside.cov * (share * n / n_beside) ** (2.0 / ndim)
    delta = points - ctr
    reach = np.einsum("ij,jk,ik->i", delta, np.linalg.inv(cov), delta).max()
    if reach > 0.999:  # the margin keeps the furthest point inside after rounding
        cov = cov * reach / 0.999
    return Ellipsoid(ndim, ctr=ctr, cov=cov)


def carve(ell: Ellipsoid, points: np.ndarray, min_size: int, share: float = SHARE, min_shrink: float = MIN_SHRINK,
          min_gap: float = MIN_GAP) -> tuple[Ellipsoid, np.ndarray, Ellipsoid] | None:
    """Split a cluster of fewer than ``min_size`` of ``points`` from the rest, if that shrinks ``ell``.

    The points are divided in two at their widest gap (single linkage, in
    the ellipsoid's own coordinates, where it is a unit ball).  Returns
    ``(ellipsoid of the rest, the rest, ellipsoid of the cluster)`` or None:
    no small cluster, too few points left, a cluster nearer the rest than
    ``min_gap`` (the rest's ellipsoid's radii), or the two ellipsoids'
    volumes together are not ``min_shrink`` times smaller.  The gap
    matters: a unimodal contour's outermost few live points also form a
    "cluster", and giving them a small ellipsoid of their own cuts into the
    contour, which makes the flow narrow and the enhanced run dearer
    (docs/design.md, "ModeEllipsoids' constants").
    """
    n = len(points)
    if n <= min_size:
        return None
    # Single linkage cuts at the widest gap between the points, which is
    # where a detached cluster ends; k-means from the major axis's ends can
    # split a big mode in two and leave one far point with half of it.
    z = np.linalg.solve(ell.axes, (points - ell.ctr).T).T
    labels = fcluster(linkage(z, method="single"), 2, criterion="maxclust")
    sizes = np.bincount(labels, minlength=3)[1:]
    small = int(np.argmin(sizes))
    if not 0 < sizes[small] < min_size or sizes[1 - small] < min_size:
        return None
    small += 1
    rest, few = points[labels != small], points[labels == small]
    rest_ell = bounding_ellipsoid(rest)
    if rest_ell.distance_many(few).min() < min_gap:
        return None
    few_ell = share_ellipsoid(few, rest_ell, len(rest), share)
    if np.logaddexp(rest_ell.logvol, few_ell.logvol) > ell.logvol - np.log(min_shrink):
        return None
    return rest_ell, rest, few_ell


def carve_all(ells: list[Ellipsoid], points: np.ndarray) -> list[Ellipsoid]:
    """``ells`` with every small cluster carved out (``carve``), repeatedly, until none is left.

    Each point belongs to the ellipsoid it is nearest the centre of (in
    that ellipsoid's own scale) among those containing it, so that every
    point stays inside the ellipsoid that replaces its own.
    """
    ndim = points.shape[1]
    dist = np.stack([e.distance_many(points) for e in ells])
    dist[dist > 1] = np.inf
    owner = np.argmin(dist, axis=0)
    todo = [(e, points[owner == j]) for j, e in enumerate(ells)]
    out = []
    while todo:
        ell, pts = todo.pop()
        cut = carve(ell, pts, 2 * ndim)
        if cut is None:
            out.append(ell)
        else:
            rest_ell, rest, few_ell = cut
            out.append(few_ell)
            todo.append((rest_ell, rest))
    return out


class ModeEllipsoids(MultiEllipsoid):
    """dynesty's ``MultiEllipsoid`` bound with small clusters carved out (``carve_all``).

    Pass an instance as dynesty's ``bound``.  With ``bootstrap > 0``
    dynesty enlarges its ellipsoids by a factor the carved ones would not
    have, so the bound is then dynesty's own.
    """

    def update(self, points, rstate=None, bootstrap=0, pool=None, mc_integrate=False):
        super().update(points, rstate=rstate, bootstrap=bootstrap, pool=pool, mc_integrate=False)
        if not bootstrap:
            ells = carve_all(list(self.ells), np.asarray(points))
            if len(ells) != self.nells:
                self.__dict__.update(MultiEllipsoid(self.ndim, ells=ells).__dict__)
        if mc_integrate:
            self.logvol, self.funit = self.monte_carlo_logvol(rstate=rstate, return_overlap=True)
