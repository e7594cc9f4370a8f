"""Block-structured flows (``MAF(blocks=...)``): independent groups of parameters."""

import numpy as np
import pytest

import flowprior as fp

QUICK = dict(max_epochs=30, progress=False)


def two_blocks(n, seed):
    """A banana in (0, 2) and a correlated pair in (1, 3): two independent blocks, interleaved."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 2))
    c = rng.multivariate_normal([0, 0], [[1, 0.8], [0.8, 1]], size=n)
    return np.column_stack([a[:, 0], c[:, 0], a[:, 1] + 0.5 * a[:, 0] ** 2, c[:, 1]])


def test_density_and_transform_factorise_over_blocks():
    x = two_blocks(2000, 0)
    f = fp.MAF(blocks=[[0, 2], [1, 3]], seed=0, **QUICK).fit(x)
    # Swapping one block's values between two points leaves the summed log-density unchanged.
    p, q = x[:200].copy(), x[200:400].copy()
    p2, q2 = p.copy(), q.copy()
    p2[:, [1, 3]], q2[:, [1, 3]] = q[:, [1, 3]], p[:, [1, 3]]
    assert np.allclose(f.log_prob(p) + f.log_prob(q), f.log_prob(p2) + f.log_prob(q2), atol=1e-10)
    # The prior transform maps each block's cube coordinates on their own: no cross-block derivative.
    u = np.random.default_rng(1).uniform(0.1, 0.9, size=(20, 4))
    for j in range(4):
        du = np.zeros(4)
        du[j] = 1e-6
        dx = (f.prior_transform(u + du) - f.prior_transform(u - du)) / 2e-6
        other = [1, 3] if j in (0, 2) else [0, 2]
        assert np.abs(dx[:, other]).max() < 1e-6
    # The compiled kernels agree with torch and invert the transform.
    theta = f.prior_transform(u)
    assert np.allclose(theta, f.prior_transform(u, backend="torch"), atol=1e-10)
    assert np.allclose(f.log_prob(theta), f.log_prob(theta, backend="torch"), atol=1e-9)
    assert np.allclose(f.inverse_transform(theta), u, atol=1e-9)


def test_blocks_by_name_saved_and_in_piecewise_pieces(tmp_path):
    x = two_blocks(1500, 2)
    names = ["a", "c0", "b", "c1"]
    f = fp.MAF(blocks=[["a", "b"], ["c0", "c1"]], seed=0, **QUICK).fit(x, names=names)
    assert f.blocks_ == [[0, 2], [1, 3]]
    f.save(tmp_path / "b.flow")
    g = fp.load(tmp_path / "b.flow")
    assert g.blocks_ == [[0, 2], [1, 3]] and np.array_equal(g.log_prob(x[:50]), f.log_prob(x[:50]))
    pw = fp.PiecewiseFlow(clusters=2, blocks=[[0, 2], [1, 3]], seed=0, **QUICK).fit(
        np.vstack([x, x + 8]))
    assert all(np.allclose(s.chol[np.ix_([0, 2], [1, 3])], 0) for s in pw.spaces_)


@pytest.mark.parametrize("blocks, match", [
    ([[0, 1], [1, 2, 3]], r"blocks\[1\]: parameter 1 is already in blocks\[0\]"),
    ([[0, 1], [2]], r"parameters 3 are in no block"),
    ([[0, 1], [2, 7], [3]], r"blocks\[1\]: expected a parameter index in \[0, 4\)"),
    ([[0, 1], ["zz", 2, 3]], r"blocks\[1\]: unknown parameter name 'zz'"),
    ([[0, 1, 2, 3], []], r"blocks\[1\]: expected a non-empty list"),
    ("0123", r"blocks: expected a list of lists"),
])
def test_blocks_that_do_not_partition_are_refused(blocks, match):
    with pytest.raises(ValueError, match=match):
        fp.MAF(blocks=blocks, **QUICK).fit(two_blocks(100, 3))
