"""Marginal KL divergence, model dimensionality and nuisance-free likelihoods."""

import pickle

import numpy as np
import pandas as pd
import pytest

import flowprior as fp
from conftest import QUICK

MU = np.array([0.3, -0.2])
COV = np.array([[0.04, 0.01], [0.01, 0.09]])
BOX = fp.UniformPrior([(-3, 3), (-3, 3)], names=["a", "b"])
# KL of N(MU, COV) from the uniform box: log V - entropy.
KL_TRUE = np.log(36.0) - 0.5 * np.log(np.linalg.det(2 * np.pi * np.e * COV))


@pytest.fixture(scope="module")
def post_flow():
    x = np.random.default_rng(3).multivariate_normal(MU, COV, 8000)
    return fp.MAF(seed=0, **QUICK).fit(pd.DataFrame(x, columns=["a", "b"]), bounds=BOX.bounds_)


def test_estimators_exact_on_analytic_gaussian():
    # The posterior density is exact here, so only Monte Carlo error remains.
    post = fp.GaussianPrior(MU, COV, names=["a", "b"])
    kl, kl_err = fp.kl_divergence(post, BOX, seed=1)
    bmd, bmd_err = fp.model_dimensionality(post, BOX, seed=1)
    assert abs(kl - KL_TRUE) < 3 * kl_err
    assert abs(bmd - 2.0) < 3 * bmd_err  # a Gaussian under a uniform prior: d exactly
    assert 0 < kl_err < 0.02 and 0 < bmd_err < 0.1


def test_flow_kl_and_bmd(post_flow):
    kl, kl_err = fp.kl_divergence(post_flow, BOX, seed=2)
    bmd, bmd_err = fp.model_dimensionality(post_flow, BOX, seed=2)
    # Slack for the flow's own fitting error: a Gaussian fitted to n = 8000
    # draws in d = 2 misses the entropy by O(d / n) and the log-density
    # variance by O(sqrt(d / n)) ~ 0.02; 0.02 nats and 0.1 in BMD cover it.
    assert abs(kl - KL_TRUE) < 3 * kl_err + 0.02
    assert abs(bmd - 2.0) < 3 * bmd_err + 0.1


def test_same_seed_same_estimate(post_flow):
    assert fp.kl_divergence(post_flow, BOX, seed=5) == fp.kl_divergence(post_flow, BOX, seed=5)


def test_directly_on_anesthetic_samples_and_subset():
    from anesthetic import Samples

    rng = np.random.default_rng(4)
    cov3 = np.diag([0.04, 0.09, 0.25])
    x = rng.multivariate_normal([0.3, -0.2, 1.0], cov3, 6000)
    samples = Samples(x, columns=["a", "b", "c"], weights=rng.uniform(0.5, 1.5, 6000))
    box3 = fp.UniformPrior([(-3, 3), (-3, 3), (-4, 4)], names=["a", "b", "c"])
    kl, err = fp.kl_divergence(samples, box3, params=["b", "a"], seed=0, flow_kwargs=QUICK)
    truth = np.log(36.0) - 0.5 * np.log((2 * np.pi * np.e) ** 2 * 0.04 * 0.09)
    assert abs(kl - truth) < 3 * err + 0.03  # weights cut the effective sample size: a little more slack


def test_prior_as_samples_is_fitted_too(post_flow):
    # A broad Gaussian prior known only through draws; an affine MAF fits a
    # Gaussian well (a uniform box it does not: use the analytic prior there).
    prior = fp.GaussianPrior([0.0, 0.0], [[0.6, 0.1], [0.1, 0.5]], names=["a", "b"])
    draws = pd.DataFrame(prior.sample(8000, seed=6), columns=["a", "b"])
    kl, err = fp.kl_divergence(post_flow, draws, seed=0, flow_kwargs=QUICK)
    exact, exact_err = fp.kl_divergence(post_flow, prior, seed=0)
    # Same posterior draws (same seed), so only the prior flow's fitting error
    # separates the two: O(sqrt(d / n)) ~ 0.02 nats for n = 8000.
    assert abs(kl - exact) < 0.05


def test_posterior_outside_prior_support_is_an_error():
    post = fp.GaussianPrior([2.9, 0.0], [0.04, 0.04], names=["a", "b"])
    with pytest.raises(ValueError, match="prior density is zero"):
        fp.kl_divergence(post, BOX, seed=0)


def test_marginal_likelihood_matches_linear_gaussian():
    # Experiment: log L(theta, alpha) = log N([theta, alpha]; m, C) with a
    # uniform prior box on alpha of width 20 (the Gaussian lies well inside).
    # Its exact nuisance-free likelihood is N(theta; m_t, C_tt) / 20, its
    # posterior on theta N(m_t, C_tt) and its evidence 1 / (36 * 20).
    m = np.array([0.3, -0.2, 1.0])
    c = np.array([[0.04, 0.01, 0.02], [0.01, 0.09, -0.03], [0.02, -0.03, 0.25]])
    n = 8000
    theta = np.random.default_rng(8).multivariate_normal(m, c, n)[:, :2]
    post = fp.MAF(seed=0, **QUICK).fit(pd.DataFrame(theta, columns=["a", "b"]), bounds=BOX.bounds_)
    like = fp.MarginalLikelihood(post, BOX, logZ=-np.log(36 * 20))
    exact = fp.GaussianPrior(m[:2], c[:2, :2])
    pts = fp.GaussianPrior(m[:2], c[:2, :2]).sample(50, seed=9)
    r2 = np.einsum("ij,jk,ik->i", pts - m[:2], np.linalg.inv(c[:2, :2]), pts - m[:2])
    # Error of a fitted Gaussian's log-density at Mahalanobis radius r:
    # r^2 / n from the mean, about (d + r^4 / 2) / n from the covariance.
    tol = 4 * np.sqrt((r2 + 2 + r2**2 / 2) / n)
    assert np.all(np.abs(like(pts) - (exact.log_prob(pts) - np.log(20))) < tol)


def test_marginal_likelihood_in_a_run_gives_the_evidence(post_flow):
    # int P(theta) Z / pi(theta) pi(theta) dtheta = Z.
    like = fp.MarginalLikelihood(post_flow, BOX, logZ=-3.0)
    res = fp.run(like, BOX, 2, nlive=100, seed=0)
    assert abs(res.logZ + 3.0) < 3 * res.logZerr


def test_matching_by_name_and_joint():
    post_ab = fp.GaussianPrior(MU, COV, names=["a", "b"])
    prior_ba = fp.UniformPrior([(-2, 2), (-3, 3)], names=["b", "a"])
    like = fp.MarginalLikelihood(post_ab, prior_ba, logZ=1.0)
    p = np.array([0.1, 0.2])
    assert like(p) == pytest.approx(1.0 + post_ab.log_prob(p) + np.log(24.0))
    assert like(np.array([0.1, 2.5])) == -np.inf  # b outside its prior: -inf, not NaN

    post_bc = fp.GaussianPrior([0.0, 0.5], [0.1, 0.2], names=["b", "c"])
    box_bc = fp.UniformPrior([(-3, 3), (-1, 2)], names=["b", "c"])
    other = fp.MarginalLikelihood(post_bc, box_bc, logZ=-2.0)
    joint = like + other
    assert joint.names_ == ["a", "b", "c"] and joint.ndim_ == 3
    x = np.array([[0.1, 0.2, 0.4], [0.0, -0.1, 1.5]])
    np.testing.assert_allclose(joint(x), like(x[:, :2]) + other(x[:, 1:]))
    assert isinstance(joint(x[0]), float)
    three = sum([like, other, like])
    assert len(three.parts) == 3
    reordered = fp.JointLikelihood([like, other], names=["c", "a", "b"])
    assert reordered(x[0][[2, 0, 1]]) == pytest.approx(joint(x[0]))
    for obj in (like, joint):
        again = pickle.loads(pickle.dumps(obj))
        np.testing.assert_array_equal(again(x[:, :obj.ndim_]), obj(x[:, :obj.ndim_]))


def test_analytic_prior_is_marginalised_to_the_posterior_parameters():
    post = fp.GaussianPrior(MU, COV, names=["b", "a"])
    box3 = fp.UniformPrior([(-3, 3), (-3, 3), (0, 10)], names=["a", "b", "c"])
    like = fp.MarginalLikelihood(post, box3, logZ=0.0)
    assert like(np.array([0.1, 0.2])) == pytest.approx(post.log_prob(np.array([0.1, 0.2])) + np.log(36.0))
    kl, _ = fp.kl_divergence(post, box3, seed=0)
    kl2, _ = fp.kl_divergence(post, box3.marginal(["b", "a"]), seed=0)
    assert kl == kl2


def test_mismatches_are_clear_errors(post_flow):
    box_ac = fp.UniformPrior([(-3, 3), (-3, 3)], names=["a", "c"])
    with pytest.raises(ValueError, match=r"\['b'\] not among"):
        fp.MarginalLikelihood(post_flow, box_ac, logZ=0.0)
    with pytest.raises(ValueError, match="not among"):
        fp.kl_divergence(post_flow, box_ac, seed=0)
    unnamed3 = fp.UniformPrior([(-3, 3)] * 3)
    unnamed2 = fp.GaussianPrior(MU, COV)
    with pytest.raises(ValueError, match="cannot be matched"):
        fp.MarginalLikelihood(unnamed2, unnamed3, logZ=0.0)
    with pytest.raises(ValueError, match="flow is over"):
        fp.kl_divergence(post_flow, BOX, params=["a"], seed=0)
    like = fp.MarginalLikelihood(post_flow, BOX, logZ=0.0)
    with pytest.raises(ValueError, match="some likelihoods have parameter names"):
        like + fp.MarginalLikelihood(unnamed2, fp.UniformPrior([(-3, 3)] * 2), logZ=0.0)
    with pytest.raises(ValueError, match="NaN"):
        like(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="shape"):
        like(np.zeros(3))
    with pytest.raises(ValueError, match="logZ"):
        fp.MarginalLikelihood(post_flow, BOX, logZ=np.nan)
    with pytest.raises(TypeError, match="fit a flowprior.MAF"):
        fp.MarginalLikelihood(np.zeros((10, 2)), BOX, logZ=0.0)
    with pytest.raises(ValueError, match="n: expected"):
        fp.kl_divergence(post_flow, BOX, n=1)


def test_analytic_priors():
    g = fp.GaussianPrior([1.0, -1.0], [[1.0, 0.5], [0.5, 2.0]])
    x = g.sample(20000, seed=0)
    np.testing.assert_allclose(x.mean(0), [1.0, -1.0], atol=4 * np.sqrt(2.0 / 20000))
    np.testing.assert_allclose(np.cov(x.T), g.cov, atol=0.06)
    assert np.isfinite(g.prior_transform(np.array([0.0, 1.0]))).all()
    lu = fp.LogUniformPrior([(1e-3, 1e3)])
    xs = np.geomspace(1e-3, 1e3, 200001)
    mid = 0.5 * (xs[1:] + xs[:-1])
    assert np.sum(np.exp(lu.log_prob(mid[:, None])) * np.diff(xs)) == pytest.approx(1.0, abs=1e-6)
    assert lu.log_prob(np.array([2e3])) == -np.inf
    np.testing.assert_allclose(lu.prior_transform(np.array([[0.0], [0.5], [1.0]]))[:, 0], [1e-3, 1.0, 1e3])
    with pytest.raises(ValueError, match=r"bounds\[0\]: a log-uniform prior needs lo > 0"):
        fp.LogUniformPrior([(0.0, 1.0)])
    with pytest.raises(ValueError, match=r"bounds\[1\]: expected finite lo < hi"):
        fp.UniformPrior([(0, 1), (2, 1)])
    with pytest.raises(ValueError, match="not positive definite"):
        fp.GaussianPrior([0, 0], [[1, 2], [2, 1]])
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        BOX.prior_transform(np.array([0.5, 1.5]))


def test_marginal_likelihood_in_an_enhanced_run_and_a_pool(post_flow):
    import multiprocessing

    like = fp.MarginalLikelihood(post_flow, BOX, logZ=-3.0)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        res = fp.enhanced_run(like, BOX, 2, nlive=100, nlive_low=50, seed=1, pool=pool)
    assert abs(res.logZ + 3.0) < 3 * res.logZerr
