"""Piecewise flows: clustering, mixture density, deterministic transform."""

import numpy as np
import pytest
import torch

import flowprior as fp
from conftest import QUICK


def test_finds_two_clusters_with_summed_weights(blobs):
    x, w = blobs
    hard = fp.PiecewiseFlow(seed=0, k_max=4, split=1, overlap=None, **QUICK).fit(x, weights=w)
    assert len(hard.pieces_) == 2 and hard.n_clusters_ == 2
    # Hard clusters: piece weights are the summed sample weights of each cluster.
    first = hard.cluster_labels_[0]
    w_first = w[hard.cluster_labels_ == first].sum() / w.sum()
    assert hard.weights_[first] == pytest.approx(w_first, rel=1e-12)
    assert hard.weights_.sum() == pytest.approx(1.0)


def test_auto_clusters_split_into_pieces_within_each_cluster(blobs):
    x, w = blobs
    pw = fp.PiecewiseFlow(seed=0, k_max=4, overlap=None, **QUICK).fit(x, weights=w)
    assert pw.n_clusters_ == 2 and len(pw.pieces_) == 4
    blob = (np.arange(len(x)) >= 1500).astype(int)
    # Each piece lies inside one blob (k-means gives a handful of blob 1's
    # 4-sigma outliers to blob 0's cluster), and each blob has two pieces.
    owner = []
    for k in range(4):
        share = np.mean(blob[pw.cluster_labels_ == k])
        assert min(share, 1 - share) < 0.01
        owner.append(round(share))
    assert sorted(owner) == [0, 0, 1, 1]
    # A cluster whose pieces would be too small stays whole (the smaller blob has 1 000 samples).
    pw = fp.PiecewiseFlow(seed=0, k_max=4, split=2, min_cluster_size=600, overlap=None, **QUICK).fit(x, weights=w)
    assert pw.n_clusters_ == 2 and len(pw.pieces_) == 3
    # Explicit clusters are the pieces.
    assert len(fp.PiecewiseFlow(clusters=2, seed=0, **QUICK).fit(x, weights=w).pieces_) == 2


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_bad_split(blobs, bad):
    x, w = blobs
    with pytest.raises(ValueError, match="split: expected a positive integer"):
        fp.PiecewiseFlow(split=bad, **QUICK).fit(x, weights=w)


def test_soft_pieces_weigh_samples_by_responsibility(piecewise, blobs):
    from flowprior.flows.clustering import soft_memberships
    from flowprior.flows.piecewise import MIN_MEMBERSHIP
    from flowprior.flows.spaces import Space, parse_bounds

    x, w = blobs
    assert piecewise.overlap == 2.0 and len(piecewise.pieces_) == 2
    lo, hi = parse_bounds([(-6, 6), (-6, 6)], 2, None)
    y, _ = Space.fit(x, w, lo, hi, whiten=False).to_real(x)  # the coordinates the clustering saw
    r = soft_memberships(y, w, piecewise.cluster_labels_, piecewise.overlap)
    assert np.allclose(r.sum(axis=1), 1.0)
    # Each sample's largest responsibility is its own cluster's on these well-separated blobs...
    assert np.mean(r.argmax(axis=1) == piecewise.cluster_labels_) > 0.99
    # ...and the piece weights are the responsibility-weighted sums over the rows each piece trains on.
    expect = np.array([(w * r[:, k] * (r[:, k] >= MIN_MEMBERSHIP)).sum() for k in range(2)])
    assert np.allclose(piecewise.weights_, expect / expect.sum(), rtol=1e-10)
    hard = np.array([w[piecewise.cluster_labels_ == k].sum() for k in range(2)]) / w.sum()
    assert np.allclose(piecewise.weights_, hard, atol=0.01)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_bad_overlap(blobs, bad):
    x, w = blobs
    with pytest.raises(ValueError, match="overlap: expected a positive number or None"):
        fp.PiecewiseFlow(overlap=bad, **QUICK).fit(x, weights=w)


def test_transform_is_deterministic_in_input_order_without_rng(piecewise):
    np_state = np.random.get_state()[1].copy()
    torch_state = torch.get_rng_state().clone()
    u = np.random.default_rng(0).uniform(size=(50, 2))
    batch = np.vstack([u, u[::-1], u])
    out = piecewise(batch)
    # Identical rows give identical outputs, wherever they sit in the batch.
    assert np.array_equal(out[:50], out[100:])
    assert np.array_equal(out[50:100], out[:50][::-1])
    assert np.array_equal(np.vstack([piecewise(p) for p in u]), out[:50])
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_first_coordinate_picks_piece_by_cumulative_weight(piecewise):
    W = piecewise.weights_
    u = np.full((2, 2), 0.5)
    u[0, 0] = 0.5 * W[0]  # middle of the first slab
    u[1, 0] = W[0] + 0.5 * W[1]  # middle of the second slab
    out = piecewise(u)
    for k in range(2):
        single = piecewise.pieces_[k]
        # The piece's own transform at the rescaled coordinate (0.5, 0.5).
        assert np.allclose(out[k], _piece_transform(piecewise, k, np.array([[0.5, 0.5]]))[0])
        del single


def _piece_transform(pw, k, u):
    from flowprior.flows import fast

    one = fast.export([pw.pieces_[k]], [pw.spaces_[k]], np.ones(1))
    x, ok = one.prior_transform(u)
    assert ok
    return x


def test_mixture_log_prob_is_weighted_logsumexp(piecewise):
    from scipy.special import logsumexp

    x = piecewise.sample(300, seed=1)
    per_piece = np.stack([piecewise._piece_log_prob(x, k) for k in range(2)])
    expect = logsumexp(per_piece + np.log(piecewise.weights_)[:, None], axis=0)
    assert np.allclose(piecewise.log_prob(x), expect, atol=1e-12)
    assert np.allclose(piecewise.log_prob(x), piecewise.log_prob(x, backend="torch"), atol=1e-10)


def test_pushforward_matches_mixture_density(piecewise):
    """Chi-square of 2-D histogram counts of transformed uniforms against the integrated density."""
    from scipy import stats

    n = 40000
    draws = piecewise.sample(n, seed=3)
    edges = np.linspace(-4, 4, 17)
    counts, _, _ = np.histogram2d(draws[:, 0], draws[:, 1], bins=[edges, edges])
    fine = np.linspace(-4, 4, 16 * 20 + 1)
    mids = 0.5 * (fine[1:] + fine[:-1])
    X, Y = np.meshgrid(mids, mids, indexing="ij")
    p = piecewise.prob(np.column_stack([X.ravel(), Y.ravel()])).reshape(X.shape) * (fine[1] - fine[0]) ** 2
    expected = p.reshape(16, 20, 16, 20).sum(axis=(1, 3)) * n
    keep = expected > 20
    chi2 = ((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum()
    # Midpoint-rule error is far below Poisson noise at this grid spacing.
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 0.001


def test_right_inverse(piecewise):
    theta = piecewise.sample(500, seed=4)
    u = piecewise.inverse_transform(theta)
    assert np.all((u >= 0) & (u <= 1))
    assert np.allclose(piecewise(u), theta, atol=1e-9)


def test_fixed_k_labels_and_clusterer(blobs):
    from sklearn.cluster import AgglomerativeClustering

    x, w = blobs
    by_k = fp.PiecewiseFlow(clusters=2, seed=0, **QUICK).fit(x, weights=w)
    labels = (x[:, 0] > 0).astype(int)
    by_labels = fp.PiecewiseFlow(clusters=labels, seed=0, overlap=None, **QUICK).fit(x, weights=w)
    assert np.allclose(sorted(by_labels.weights_), sorted([w[labels == 0].sum() / w.sum(), w[labels == 1].sum() / w.sum()]))
    by_clusterer = fp.PiecewiseFlow(clusters=AgglomerativeClustering(2), seed=0, **QUICK).fit(x[::3], weights=w[::3])
    assert len(by_k.pieces_) == len(by_clusterer.pieces_) == 2


def test_small_clusters_merged_with_warning_or_refused(blobs):
    x, w = blobs
    labels = (x[:, 0] > 0).astype(int)
    labels[:10] = 2  # a 10-sample cluster
    with pytest.raises(ValueError, match=r"labels \[2\] have too few positive-weight samples \(\[10\]"):
        fp.PiecewiseFlow(clusters=labels, seed=0, **QUICK).fit(x, weights=w)
    with pytest.warns(UserWarning, match="merged into the nearest cluster"):
        pw = fp.PiecewiseFlow(clusters=12, seed=0, min_cluster_size=300, **QUICK).fit(x, weights=w)
    assert all(np.sum(pw.cluster_labels_ == k) >= 300 for k in range(len(pw.pieces_)))


def test_parallel_training_matches_serial(blobs):
    x, w = blobs
    serial = fp.PiecewiseFlow(clusters=2, seed=5, **QUICK).fit(x, weights=w)
    parallel = fp.PiecewiseFlow(clusters=2, seed=5, n_jobs=2, **QUICK).fit(x, weights=w)
    assert np.array_equal(serial.cluster_labels_, parallel.cluster_labels_)
    u = np.random.default_rng(0).uniform(size=(100, 2))
    # Same seeds per piece; only thread counts differ, so outputs agree closely.
    assert np.allclose(serial(u), parallel(u), atol=1e-4)
