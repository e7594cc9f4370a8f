"""The low stage's dynesty bound: small detached clusters get an ellipsoid of their own, nothing else changes."""

import pickle

import numpy as np
import pytest

pytest.importorskip("dynesty")
from dynesty.bounding import MultiEllipsoid, bounding_ellipsoid  # noqa: E402

from flowprior.integrations.dynesty_bounds import MIN_GAP, ModeEllipsoids, carve, carve_all  # noqa: E402


def ball(rng, n, ctr, radius, d):
    """``n`` points uniform in a ball."""
    x = rng.normal(size=(n, d))
    x *= (radius * rng.uniform(size=(n, 1)) ** (1 / d)) / np.linalg.norm(x, axis=1, keepdims=True)
    return ctr + x


def two_modes(seed, d=4, n_big=60, n_few=5):
    """Live points of a big mode and a dying one far from it, as dynesty gets them."""
    rng = np.random.default_rng(seed)
    big = ball(rng, n_big, np.full(d, 0.3), 0.05, d)
    few = ball(rng, n_few, np.full(d, 0.7), 0.02, d)
    return big, few


@pytest.mark.parametrize("n_few", [1, 3, 7])
def test_a_dying_mode_gets_its_own_ellipsoid(n_few):
    d = 4
    big, few = two_modes(0, d, n_few=n_few)
    points = np.vstack([big, few])
    # dynesty itself keeps one ellipsoid spanning both: the small side is under 2 ndim points.
    dyn = MultiEllipsoid(d)
    dyn.update(points, rstate=np.random.default_rng(0))
    assert dyn.nells == 1
    ells = carve_all(list(dyn.ells), points)
    assert len(ells) == 2
    # Every live point stays inside the bound, and the bound is much smaller.
    inside = np.stack([e.distance_many(points) <= 1 for e in ells]).any(axis=0)
    assert inside.all()
    assert np.logaddexp(*[e.logvol for e in ells]) < dyn.logvol - np.log(10)
    # The carved ellipsoid sits on the few points and is sized by their share of points, not by their spread.
    small = min(ells, key=lambda e: e.logvol)
    assert np.allclose(small.ctr, few.mean(axis=0))
    rest = bounding_ellipsoid(big)
    assert small.logvol >= rest.logvol + np.log(3 * n_few / len(big)) - 1e-9


def test_a_unimodal_contour_is_not_carved():
    # The outermost live points of one mode are not a cluster: carving them would cut the contour.
    for d, n in [(4, 100), (6, 25), (6, 100), (10, 50)]:
        for seed in range(20):
            points = ball(np.random.default_rng(seed), n, np.full(d, 0.5), 0.2, d)
            ell = bounding_ellipsoid(points)
            assert carve(ell, points, 2 * d) is None, (d, n, seed)


def test_a_near_cluster_is_not_carved():
    # A small group just beyond the rest's surface (under MIN_GAP of its radii) stays in the shared ellipsoid.
    d = 4
    rng = np.random.default_rng(1)
    big = ball(rng, 60, np.zeros(d), 1.0, d)
    few = ball(rng, 4, np.array([0.5 * (1 + MIN_GAP), 0, 0, 0]), 0.05, d)
    points = np.vstack([big, few])
    assert carve(bounding_ellipsoid(points), points, 2 * d) is None
    # ... and the same group far away is.
    far = few + np.array([6.0, 0, 0, 0])
    points = np.vstack([big, far])
    assert carve(bounding_ellipsoid(points), points, 2 * d) is not None


def test_mode_ellipsoids_as_dynestys_bound():
    d = 4
    big, few = two_modes(2, d)
    points = np.vstack([big, few])
    bound = ModeEllipsoids(d)
    bound.update(points, rstate=np.random.default_rng(0))
    assert bound.nells == 2 and len(bound.ctrs) == 2 and len(bound.logvol_ells) == 2
    assert all(bound.contains(p) for p in points)
    assert np.isclose(bound.logvol, np.logaddexp(*bound.logvol_ells))
    # Draws come from both ellipsoids, about in proportion to their volumes.
    rng = np.random.default_rng(3)
    draws = bound.samples(2000, rstate=rng)
    near_few = np.linalg.norm(draws - few.mean(axis=0), axis=1) < np.linalg.norm(draws - big.mean(axis=0), axis=1)
    share = np.exp(bound.logvol_ells.min() - bound.logvol)
    assert abs(near_few.mean() - share) < 5 * np.sqrt(share * (1 - share) / len(draws)) + 0.01
    # It pickles (dynesty checkpoints and pools carry it) and then bounds the same points.
    again = pickle.loads(pickle.dumps(bound))
    assert again.nells == 2 and all(again.contains(p) for p in points)
    # With dynesty's bootstrapped enlargement it is dynesty's bound, unchanged.
    boot = ModeEllipsoids(d)
    boot.update(points, rstate=np.random.default_rng(0), bootstrap=5)
    plain = MultiEllipsoid(d)
    plain.update(points, rstate=np.random.default_rng(0), bootstrap=5)
    assert boot.nells == plain.nells == 1 and np.isclose(boot.logvol, plain.logvol)
