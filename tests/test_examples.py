"""The shared test problems are what they claim: normalised likelihoods, known evidences, boxes that hold them."""

import math
import pickle

import numpy as np
import pytest
from scipy import integrate, stats

from flowprior import examples as ex

PROBLEMS = ["planck", "mixture", "banana", "student"]


@pytest.mark.parametrize("name", PROBLEMS)
def test_prior_maps_the_cube_into_the_box_like_lo_plus_width_times_u(name):
    p = ex.problem(name)
    lo, hi = p.prior.lo, p.prior.hi
    u = np.vstack([np.zeros(p.ndim), np.ones(p.ndim), np.random.default_rng(0).uniform(size=(200, p.ndim))])
    x = p.prior(u)
    assert np.array_equal(x[0], lo) and np.array_equal(x[1], hi)
    assert np.all((x >= lo) & (x <= hi))
    for row in u[:20]:  # one point at a time, as a sampler calls it: the same bits as the plain formula
        assert p.prior(row).tobytes() == (lo + (hi - lo) * row).tobytes()
    assert p.prior.names_ == p.names and len(p.names) == p.ndim
    assert np.isfinite(p.loglike(p.prior(np.full(p.ndim, 0.5))))
    pickle.loads(pickle.dumps(p))  # likelihood and prior travel to pools and MPI ranks


def test_planck_evidence_is_minus_the_log_box_volume():
    assert ex.PLANCK_LOGZ == pytest.approx(0.4328, abs=1e-4)
    assert ex.PLANCK_LOGZ == -np.sum(np.log(ex.PLANCK_HI - ex.PLANCK_LO))
    sd = np.sqrt(np.diag(ex.PLANCK_COV))
    inside = np.minimum(ex.PLANCK_MEAN - ex.PLANCK_LO, ex.PLANCK_HI - ex.PLANCK_MEAN) / sd
    assert inside.min() > 6  # tau, the closest: the mass outside is below 1e-9, far below any logZ error


def test_planck_gaussian_is_normalised_by_quadrature_in_two_dimensions():
    i = [1, 4]  # omegach2 and logA: a correlated pair
    mean, cov = ex.PLANCK_MEAN[i], ex.PLANCK_COV[np.ix_(i, i)]
    like = ex.GaussianLikelihood(mean, cov)
    sd = np.sqrt(np.diag(cov))
    lo, hi = mean - 9 * sd, mean + 9 * sd
    # Integrate in units of sd so that quad sees an O(1) integrand.
    val, _ = integrate.dblquad(lambda b, a: math.exp(like(lo + (hi - lo) * np.array([a, b]))), 0, 1, 0, 1,
                               epsabs=1e-12, epsrel=1e-9)
    assert val * np.prod(hi - lo) == pytest.approx(1.0, abs=1e-6)
    assert like(mean) == pytest.approx(stats.multivariate_normal(mean, cov).logpdf(mean), abs=1e-9)


def test_mixture_modes_hold_their_weights_and_the_evidence_is_minus_4_log_20():
    assert ex.MIXTURE_WEIGHTS.sum() == pytest.approx(1.0)
    assert ex.MIXTURE_LOGZ == pytest.approx(-4 * math.log(20))
    like, rng = ex.FourModes(), np.random.default_rng(1)
    # Importance sampling from each mode's own Gaussian: the likelihood mass near mode k is its weight.
    for k, (c, w) in enumerate(zip(ex.MIXTURE_CENTRES, ex.MIXTURE_WEIGHTS)):
        x = c + ex.MIXTURE_SIGMA * rng.standard_normal((2000, 4))
        logq = stats.multivariate_normal(c, ex.MIXTURE_SIGMA**2 * np.eye(4)).logpdf(x)
        ratio = np.exp(np.array([like(p) for p in x]) - logq)
        assert np.all(ex.nearest_mode(x) == k)
        assert ratio.mean() == pytest.approx(w, rel=1e-6)  # the other modes are 14 sd or more away
    assert np.all(np.abs(ex.MIXTURE_CENTRES) + 10 * ex.MIXTURE_SIGMA <= ex.MIXTURE_HALF)  # 10 sd inside the box


def test_banana_twist_has_unit_jacobian_and_a_normalised_likelihood():
    rng = np.random.default_rng(2)
    y = rng.multivariate_normal(np.zeros(4), ex.BANANA_COV, size=200)
    x = ex.untwist(y)
    np.testing.assert_allclose(ex.twist(x), y, atol=1e-12)
    # Jacobian of twist by finite differences: triangular with a unit diagonal.
    h, x0 = 1e-6, x[0]
    jac = np.array([(ex.twist(x0 + h * e) - ex.twist(x0 - h * e)) / (2 * h) for e in np.eye(4)]).T
    assert np.linalg.det(jac) == pytest.approx(1.0, abs=1e-6)
    like = ex.Banana()
    ref = stats.multivariate_normal(np.zeros(4), ex.BANANA_COV).logpdf(y)
    np.testing.assert_allclose([like(p) for p in x], ref, atol=1e-9)
    assert 0 < ex.banana_pair_outside() < 1e-8
    assert ex.banana_mc_outside(20000) == 0
    assert ex.BANANA_LOGZ == pytest.approx(-12.2185, abs=1e-4)


def test_student_evidence_keeps_the_truncated_tails():
    mass, checks = ex.student_moments()
    dist = stats.t(ex.STUDENT_NU, scale=ex.STUDENT_SCALE)
    val, _ = integrate.quad(dist.pdf, -ex.STUDENT_HALF, ex.STUDENT_HALF, points=[0.0], limit=200)
    assert mass == pytest.approx(val, rel=1e-10) and 1 - mass > 1e-6  # tails outside the box: not negligible
    assert ex.student_logz() == pytest.approx(4 * math.log(mass) - 4 * math.log(20), abs=1e-12)
    assert ex.StudentT()(np.full(4, 0.1)) == pytest.approx(4 * dist.logpdf(0.1))
    assert checks["x1"][0] == 0.0 and 0 < checks["P(|x1|<0.2)"][0] < 1


def test_problem_refuses_an_unknown_name():
    with pytest.raises(ValueError, match="expected 'planck'"):
        ex.problem("rosenbrock")


def test_calls_text_of_plain_and_enhanced_runs():
    from types import SimpleNamespace as NS

    assert ex.calls_text(NS(ncall={"total": 61739})) == "61739"
    levels = [NS(nlive_low=25, score=0.412, tail=None), NS(nlive_low=100, score=0.99, tail=-0.31)]
    enh = NS(ncall={"low": 2320, "check": 500, "high": 2460, "total": 5280}, low_checks=levels)
    assert ex.calls_text(enh) == "2320+500+2460 [25: 0.41 > 100: 0.99 t-0.3]"


def test_two_dimensional_targets_are_normalised_and_sampled_in_their_box():
    pytest.importorskip("normflows", reason="normflows (the bench extra) is not installed")
    n = 300
    grid = np.linspace(-ex.TARGET_BOX, ex.TARGET_BOX, n)
    xx, yy = np.meshgrid(grid, grid)
    pts = np.column_stack([xx.ravel(), yy.ravel()])
    for name in ex.TARGET_LOG_NORMALISERS:
        dens = np.exp(ex.target_log_prob(name, pts)).reshape(n, n)
        assert integrate.trapezoid(integrate.trapezoid(dens, grid), grid) == pytest.approx(1.0, abs=0.01)
        x = ex.target_sample(name, 500, seed=0)
        assert x.shape == (500, 2) and np.all(np.abs(x) < ex.TARGET_BOX)
        np.testing.assert_array_equal(x, ex.target_sample(name, 500, seed=0))


def test_planck_with_nuisances_has_the_evidence_a_plain_run_finds():
    import flowprior as fp
    from flowprior.examples import planck_nuisances

    p = planck_nuisances(3)
    theta = p.prior(np.full(p.ndim, 0.5))
    assert np.allclose(theta[:6], (ex.PLANCK_LO + ex.PLANCK_HI) / 2) and np.isfinite(p.loglike(theta))
    res = fp.run(p.loglike, p.prior, p.ndim, nlive=200, seed=1)
    assert abs(res.logZ - p.logZ) < 3 * res.logZerr


def test_correlated_gaussian_has_unit_correlations_and_width_sigma():
    from flowprior.examples import correlated_gaussian

    p = correlated_gaussian(5, sigma=0.2)
    assert np.allclose(np.sqrt(np.diag(p.loglike.cov)), 0.2) and p.logZ == pytest.approx(-5 * np.log(10))


def test_nuisance_posterior_is_the_stationary_point_and_curvature_of_the_log_posterior():
    from flowprior.examples import nuisance_posterior, planck_nuisances

    p = planck_nuisances(4)
    mean, cov = nuisance_posterior(p)

    def log_post(theta):
        return p.loglike(theta) - 0.5 * float(np.sum(((theta[6:] - p.prior.mean) / p.prior.sd) ** 2))

    step = np.diag(np.sqrt(np.diag(cov)))
    grad = np.array([log_post(mean + e) - log_post(mean - e) for e in step]) / 2
    assert np.abs(grad).max() < 1e-8  # per posterior width
    hess = np.array([[log_post(mean + a + b) - log_post(mean + a - b) - log_post(mean - a + b) + log_post(mean - a - b)
                      for b in step] for a in step]) / 4
    expected = -np.linalg.inv(np.linalg.inv(step) @ cov @ np.linalg.inv(step))
    assert np.allclose(hess, expected, atol=1e-6)
