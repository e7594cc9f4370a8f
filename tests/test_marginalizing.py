"""Marginalizing flows: the importance-sampled marginal, the exact augmented prior, files, bad input, and the
enhanced run in the augmented space."""

import numpy as np
import pytest
from scipy.stats import chi2, norm

import flowprior as fp
from flowprior.flows.marginalizing import AuxiliaryMAF

SETTINGS = dict(n_transforms=2, hidden_features=(16, 16), max_epochs=40, progress=False)


@pytest.fixture(scope="module")
def folded():
    """x = z^2 in the first coordinate (a fold), a normal second one; and a fitted flow with 2 auxiliary variables."""
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.standard_normal(3000) ** 2, rng.standard_normal(3000)])
    flow = fp.MarginalizingFlow(aux_dims=2, n_marginal=64, seed=0, **SETTINGS).fit(x, bounds=[(0, None), None])
    return x, flow


def test_marginal_density_normalises_and_is_deterministic(folded):
    x, flow = folded
    # Its integral by importance sampling from the true density (chi-square(1) x normal).
    rng = np.random.default_rng(5)
    h = np.column_stack([rng.standard_normal(4000) ** 2, rng.standard_normal(4000)])
    log_h = chi2.logpdf(h[:, 0], 1) + norm.logpdf(h[:, 1])
    ratio = np.exp(flow.log_prob(h) - log_h)
    mass, se = ratio.mean(), ratio.std(ddof=1) / np.sqrt(len(ratio))
    assert abs(mass - 1) < 4 * se + 0.03  # the density estimate's own error is a few per cent
    np.testing.assert_array_equal(flow.log_prob(x[:10]), flow.log_prob(x[:10]))
    other = flow.log_prob(x[:10], seed=1)
    value, err = flow.log_prob(x[:10], return_error=True)
    assert np.all(err > 0) and np.all(np.abs(other - value) < 6 * err)  # other draws: within their errors


def test_augmented_prior_transform_is_exact_and_bijective(folded):
    _, flow = folded
    u = np.random.default_rng(1).uniform(size=(50, 4))
    theta_eps = flow.prior_transform(u)
    assert theta_eps.shape == (50, 4)
    np.testing.assert_allclose(flow.inverse_transform(theta_eps), u, atol=1e-6)
    assert flow.prior_transform(u[0]).shape == (4,)
    assert np.all(theta_eps[:, 0] >= 0)  # the parameters keep their bounds
    np.testing.assert_allclose(flow.augmented_log_prob(theta_eps), flow.inner_.log_prob(theta_eps))


def test_save_and_load_give_the_same_flow(folded, tmp_path):
    x, flow = folded
    flow.save(tmp_path / "m.flow")
    same = fp.load(tmp_path / "m.flow")
    assert isinstance(same, fp.MarginalizingFlow) and same.aux_dims == 2 and same.names_ == flow.names_
    np.testing.assert_array_equal(same.log_prob(x[:20]), flow.log_prob(x[:20]))


def test_no_auxiliary_dimensions_is_the_inner_flow_exactly():
    x = np.random.default_rng(2).standard_normal((500, 2))
    flow = fp.MarginalizingFlow(aux_dims=0, seed=0, **SETTINGS).fit(x)
    value, err = flow.log_prob(x[:5], return_error=True)
    np.testing.assert_array_equal(value, flow.inner_.log_prob(x[:5]))
    assert np.all(err == 0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(aux_dims=-1), "aux_dims: expected an integer >= 0"),
    (dict(n_marginal=0), "n_marginal: expected an integer >= 1"),
    (dict(flow="gmm"), "flow: expected one of"),
    (dict(max_epochs=0), "max_epochs"),
])
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fp.MarginalizingFlow(**kwargs)


def test_wrong_widths_say_which_method_takes_what(folded):
    _, flow = folded
    with pytest.raises(ValueError, match="log_prob takes the 2 parameters alone"):
        flow.log_prob(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="expected rows of 4 values"):
        flow.augmented_log_prob(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="expected rows of 4 values"):
        flow.prior_transform(np.full((3, 2), 0.5))


def test_auxiliary_maf_keeps_auxiliary_coordinates_in_the_cube():
    rng = np.random.default_rng(3)
    u = np.column_stack([rng.normal(0.5, 0.1, 800), rng.uniform(size=800)])
    flow = AuxiliaryMAF(aux_dims=1, seed=0, **SETTINGS).fit(u)
    assert flow.bounds_ == [(None, None), (0.0, 1.0)] and flow.link == "probit"
    draws = flow.sample(2000, seed=1)
    assert draws[:, 1].min() >= 0 and draws[:, 1].max() <= 1
    assert abs(np.mean(draws[:, 1] < 0.5) - 0.5) < 0.05  # the auxiliary coordinate stays uniform


def test_marginal_statistics_take_it(folded):
    _, flow = folded
    prior = fp.UniformPrior([(0, 1e4), (-20, 20)], names=flow.names_)  # the log link gives x0 a heavy tail
    kl = fp.kl_divergence(flow, prior, n=2000, seed=0)
    # log V minus the entropies of chi-square(1) and N(0, 1); the flow's own misfit is well below 0.2 nats.
    truth = np.log(1e4 * 40) - chi2(1).entropy() - norm.entropy()
    assert abs(kl.value - truth) < 0.2
    f = flow.log_prob(flow.sample(2000, seed=0)) + np.log(1e4 * 40)
    assert kl.error > f.std() / np.sqrt(2000)  # the density's Monte Carlo error is folded in
    like = fp.MarginalLikelihood(flow, prior, logZ=0.0, logZerr=0.0)
    assert like.logZerr > 0


def _folded_problem(d: int = 3, s: float = 0.1, shift: float = 0.15):
    """Two mirrored modes touching at theta_0 = 0 (the likelihood sees |theta_0|), in [-1, 1]^d."""

    def loglike(x):
        r = np.concatenate([[abs(x[0]) - shift], x[1:]]) / s
        return float(-0.5 * r @ r)

    i0 = 2 * s * np.sqrt(2 * np.pi) * (norm.cdf((1 - shift) / s) - norm.cdf(-shift / s))
    truth = np.log(i0) + (d - 1) * np.log(s * np.sqrt(2 * np.pi)) - d * np.log(2)
    return loglike, fp.UniformPrior([(-1, 1)] * d, names=[f"t{i}" for i in range(d)]), truth


@pytest.mark.slow
def test_enhanced_run_in_the_augmented_space_keeps_the_evidence_and_posterior():
    loglike, prior, truth = _folded_problem()
    res = fp.enhanced_run(loglike, prior, 3, nlive=200, seed=0, names=prior.names_,
                          flow=fp.MarginalizingFlow(aux_dims=2, n_transforms=3, hidden_features=(32, 32)))
    assert abs(res.logZ - truth) < 3 * res.logZerr
    assert list(res.samples.columns.get_level_values(0)[:3]) == prior.names_
    assert "aux0" not in res.samples.columns.get_level_values(0) and res.samples_u.shape[1] == 3
    w = res.samples.get_weights() / res.samples.get_weights().sum()
    right = float(np.sum(w * (res.samples["t0"] > 0)))
    neff = 1 / np.sum(w**2)
    assert abs(right - 0.5) < 4 * np.sqrt(0.25 / neff)  # the two mirrored modes hold equal mass
    assert res.flow.ndim_ == 5  # the high stage's prior is over (u, e)
