"""Rebased flows: a trained flow with a Gaussian base other than N(0, I), and the fit that chooses it."""

import numpy as np
import pytest
from scipy import stats

import flowprior as fp
from flowprior.workflows.rebase import DRAWS_PER_TERM, latent_gaussian, quadratic_terms

MEAN = np.array([0.4, -0.3, 0.2])
COV = np.array([[2.0, 0.4, 0.0], [0.4, 1.5, 0.3], [0.0, 0.3, 0.7]])


def _log_ratio(z):
    """log N(z; MEAN, COV) - log N(z; 0, I): what a check shows through a flow whose base misses by (MEAN, COV)."""
    return stats.multivariate_normal(MEAN, COV).logpdf(z) - stats.multivariate_normal(np.zeros(3)).logpdf(z)


def test_latent_gaussian_recovers_the_gaussian_and_ignores_draws_outside_the_cube():
    z = np.random.default_rng(0).normal(size=(200, 3))
    y = _log_ratio(z) + 7.0  # the constant (log Z) does not matter
    y[:20] = -np.inf  # draws outside the cube
    mean, cov = latent_gaussian(z, y)
    assert np.allclose(mean, MEAN, atol=1e-9) and np.allclose(cov, COV, atol=1e-9)


def test_latent_gaussian_declines_too_few_draws_or_a_quadratic_without_a_maximum():
    rng = np.random.default_rng(1)
    n_terms = quadratic_terms(np.zeros((1, 3))).shape[1]
    z = rng.normal(size=(DRAWS_PER_TERM * n_terms - 1, 3))
    assert latent_gaussian(z, _log_ratio(z)) is None
    z = rng.normal(size=(200, 3))
    assert latent_gaussian(z, 0.8 * np.sum(z**2, axis=1)) is None  # log P rises away from the centre


@pytest.fixture(scope="module")
def flow():
    x = np.random.default_rng(2).normal(size=(2000, 3)) @ np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0, 0, 1.0]])
    return fp.MAF(seed=0, n_transforms=2, hidden_features=(16, 16), max_epochs=30, progress=False).fit(x)


def test_rebased_density_transform_and_inverse_are_exact(flow):
    rebased = flow.rebased(MEAN, COV)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 3))
    z = flow.base_coordinates(x)
    expected = flow.log_prob(x) + _log_ratio(z)
    assert np.allclose(rebased.log_prob(x), expected, rtol=0, atol=1e-10)
    assert np.allclose(rebased.log_prob(x), rebased.log_prob(x, backend="torch"), rtol=0, atol=1e-10)
    u = rng.uniform(size=(300, 3))
    assert np.allclose(rebased.prior_transform(u), rebased.prior_transform(u, backend="torch"), atol=1e-10)
    assert np.allclose(rebased.inverse_transform(rebased.prior_transform(u)), u, atol=1e-9)
    # The base coordinates of its own draws are standard normal again.
    zz = rebased.base_coordinates(rebased.sample(4000, seed=4))
    assert np.all(np.abs(zz.mean(0)) < 4 / np.sqrt(4000)) and np.all(np.abs(zz.std(0) - 1) < 0.05)
    # Broadening widens the rebased base, and the original is untouched.
    wide = rebased.broadened(1.5)
    widened = stats.multivariate_normal(MEAN, 2.25 * COV).logpdf(z) - stats.multivariate_normal(np.zeros(3)).logpdf(z)
    assert np.allclose(wide.log_prob(x), flow.log_prob(x) + widened, rtol=0, atol=1e-10)
    assert flow.base_ is None and rebased.base_scale_ == 1.0


def test_rebased_flow_survives_save_and_load(flow, tmp_path):
    wide = flow.rebased(MEAN, COV).broadened(1.2)
    wide.save(tmp_path / "r.flow")
    back = fp.load(tmp_path / "r.flow")
    u = np.random.default_rng(5).uniform(size=(50, 3))
    assert np.array_equal(back.prior_transform(u), wide.prior_transform(u))
    assert np.array_equal(back.log_prob(wide.prior_transform(u)), wide.log_prob(wide.prior_transform(u)))


@pytest.mark.parametrize("mean, cov, match", [
    (np.zeros(2), COV, "mean: expected 3"),
    (np.array([0.0, np.nan, 0.0]), COV, "mean: expected 3"),
    (MEAN, -COV, "cov: expected a symmetric positive definite"),
    (MEAN, COV + np.triu(np.ones((3, 3)), 1), "cov: expected a symmetric"),
    (MEAN, np.eye(2), r"cov: expected a symmetric positive definite \(3, 3\)"),
])
def test_bad_rebase(flow, mean, cov, match):
    with pytest.raises(ValueError, match=match):
        flow.rebased(mean, cov)


def test_a_piecewise_flow_is_not_rebased(piecewise):
    with pytest.raises(ValueError, match="rebased: a flow of 2 pieces"):
        piecewise.rebased(np.zeros(2), np.eye(2))


def test_rebase_gain_is_the_kl_the_rebased_base_removes():
    from flowprior.workflows.rebase import rebase_gain

    # A fitted Gaussian equal to the trained base gains nothing at the widened width, and gains at a narrower one.
    assert rebase_gain(np.zeros(3), np.eye(3), 1.5, 1.5) == pytest.approx(0.0, abs=1e-12)
    assert rebase_gain(np.zeros(3), np.eye(3), 1.5, 1.2) > 0.2
    # A shifted, elongated one gains the closed-form KL divergence from the widened base.
    p = stats.multivariate_normal(MEAN, COV)
    z = p.rvs(size=200_000, random_state=6)
    kl_widened = np.mean(p.logpdf(z) - stats.multivariate_normal(np.zeros(3), 1.2**2 * np.eye(3)).logpdf(z))
    kl_rebased = np.mean(p.logpdf(z) - stats.multivariate_normal(MEAN, 1.2**2 * COV).logpdf(z))
    assert rebase_gain(MEAN, COV, 1.2, 1.2) == pytest.approx(kl_widened - kl_rebased, abs=0.02)
