"""Broadened flows: the trained flow with a wider Gaussian base."""

import numpy as np
import pytest
from scipy.special import ndtr, ndtri

import flowprior as fp
from conftest import QUICK


def test_density_is_the_wider_base_through_the_same_map(maf, gauss_samples):
    s = 1.3
    wide = maf.broadened(s)
    x = gauss_samples[:500]
    z = ndtri(maf.inverse_transform(x))  # base coordinates of the trained map
    d = x.shape[1]
    expected = maf.log_prob(x) - 0.5 * np.sum(z**2, axis=1) * (1 / s**2 - 1) - d * np.log(s)
    assert np.allclose(wide.log_prob(x), expected, rtol=0, atol=1e-8)
    # The original is untouched, and the torch reference agrees.
    assert maf.base_scale_ == 1.0 and wide.base_scale_ == s
    assert np.allclose(wide.log_prob(x), wide.log_prob(x, backend="torch"), rtol=0, atol=1e-10)
    u = np.random.default_rng(3).uniform(size=(300, 3))
    assert np.allclose(wide.prior_transform(u), wide.prior_transform(u, backend="torch"), rtol=1e-12, atol=1e-12)
    assert np.allclose(wide.prior_transform(u), maf.prior_transform(ndtr(s * ndtri(u))), rtol=1e-9, atol=1e-12)


def test_transform_and_inverse_and_pushforward():
    from scipy import stats

    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 0.5, size=(3000, 1))
    flow = fp.MAF(seed=0, **QUICK).fit(x).broadened(1.5)
    u = rng.uniform(0.001, 0.999, size=(500, 1))
    assert np.allclose(flow.inverse_transform(flow.prior_transform(u)), u, atol=1e-9)
    grid = np.linspace(-8, 12, 200001)
    pdf = flow.prob(grid[:, None])
    cdf = np.concatenate([[0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(grid))])
    assert cdf[-1] == pytest.approx(1.0, abs=1e-4)
    draws = flow.sample(5000, seed=2)[:, 0]
    assert stats.kstest(draws, lambda t: np.interp(t, grid, cdf)).pvalue > 0.01
    # A near-Gaussian flow's spread grows by the scale (sd error ~ 1 %).
    assert draws.std() == pytest.approx(1.5 * 0.5, rel=0.05)


def test_piecewise_broadened_agrees_with_torch_and_keeps_weights(piecewise, blobs):
    wide = piecewise.broadened(1.2)
    x = blobs[0][:300]
    assert np.allclose(wide.log_prob(x), wide.log_prob(x, backend="torch"), rtol=0, atol=1e-10)
    u = np.random.default_rng(5).uniform(size=(300, 2))
    assert np.allclose(wide.prior_transform(u), wide.prior_transform(u, backend="torch"), rtol=1e-12, atol=1e-12)
    assert np.array_equal(wide.weights_, piecewise.weights_)
    assert np.allclose(wide.prior_transform(wide.inverse_transform(x)), x, rtol=1e-9, atol=1e-9)


def test_save_load_and_pickle_keep_the_scale(maf, tmp_path):
    import pickle

    wide = maf.broadened(1.25)
    wide.save(tmp_path / "wide.flow")
    back = fp.load(tmp_path / "wide.flow")
    assert back.base_scale_ == 1.25
    u = np.random.default_rng(0).uniform(size=(50, 3))
    assert np.array_equal(back.prior_transform(u), wide.prior_transform(u))
    assert np.array_equal(pickle.loads(pickle.dumps(wide)).prior_transform(u), wide.prior_transform(u))


@pytest.mark.parametrize("bad", [0, -1.0, np.inf, np.nan, "2"])
def test_bad_scale(maf, bad):
    with pytest.raises(ValueError, match="scale"):
        maf.broadened(bad)
