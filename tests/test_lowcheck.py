"""The effective-sample-size check of a low-resolution run's flow."""

import numpy as np
import pytest

from scipy import stats

from flowprior.workflows.lowcheck import check_flow, ess_fraction, tail_excess


def test_ess_fraction_of_known_weights():
    assert ess_fraction(np.zeros(50)) == pytest.approx(1.0)
    assert ess_fraction(np.array([0.0] + [-np.inf] * 9)) == pytest.approx(0.1)
    assert ess_fraction(np.full(5, -np.inf)) == 0.0
    # Two weights 1 and 3: (1 + 3)^2 / (1 + 9) / 2 = 0.8, whatever the scale.
    assert ess_fraction(np.log([1.0, 3.0]) + 700) == pytest.approx(0.8)


@pytest.mark.parametrize("bad, match", [(np.array([0.0, np.nan]), "NaN at rows \\[1\\]"),
                                        (np.zeros((2, 2)), "1-D"), (np.array([]), "non-empty")])
def test_ess_fraction_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        ess_fraction(bad)


class Identity:
    """A 'flow' mapping v to u unchanged, with density 1 on the cube."""

    def __call__(self, v):
        return np.asarray(v)


class Repartitioned:
    def __init__(self, logl):
        self.flow, self.logl, self.calls = Identity(), logl, 0

    def __call__(self, u):
        self.calls += 1
        return self.logl(u)


def test_check_flow_is_one_for_the_posterior_and_small_for_a_spike():
    flat = Repartitioned(lambda u: 0.0)
    ess, calls, draws = check_flow(flat, 3, 200, np.random.default_rng(0))
    assert ess == pytest.approx(1.0) and calls == flat.calls == 200
    # The draws come back for reuse as the high stage's live points: v uniform, u = flow(v), logl at u.
    assert draws["v"].shape == draws["u"].shape == (200, 3) and draws["logl"].shape == (200,)
    np.testing.assert_array_equal(draws["u"], flat.flow(draws["v"]))
    np.testing.assert_array_equal(draws["logl"], 0.0)
    # A likelihood 1e6 times higher in 1 % of the cube: a few draws carry all the weight.
    spike = Repartitioned(lambda u: np.log(1e6) if u[0] < 0.01 else 0.0)
    ess, _, _ = check_flow(spike, 3, 2000, np.random.default_rng(0))
    assert ess < 0.05


def test_perfect_ess_fraction_matches_a_broadened_gaussian():
    from flowprior.workflows.lowcheck import LowCheck, perfect_ess_fraction

    assert perfect_ess_fraction(1.0, 6) == 1.0
    assert perfect_ess_fraction(1.2, 6) == pytest.approx(0.745, abs=1e-3)
    # Monte Carlo: a posterior N(0, I) drawn from N(0, 1.5^2 I) in 4-D, 200 000 draws
    # (the fraction's sampling error there is below 0.005).
    rng = np.random.default_rng(1)
    z = rng.normal(scale=1.5, size=(200_000, 4))
    logw = -0.5 * (z**2).sum(1) * (1 - 1 / 1.5**2)
    assert ess_fraction(logw) == pytest.approx(perfect_ess_fraction(1.5, 4), abs=0.01)
    level = LowCheck(nlive_low=25, low_calls=100, ess_fraction=0.6, check_calls=500, perfect=0.75)
    assert level.score == pytest.approx(0.8)
    with pytest.raises(ValueError, match="scale"):
        perfect_ess_fraction(0.9, 3)


def test_check_draws_are_kept_per_level(tmp_path):
    from flowprior.workflows import stages

    draws = {"v": np.full((3, 2), 0.5), "u": np.full((3, 2), 0.25), "logl": np.array([0.0, -np.inf, 1.0])}
    stages.save_draws(tmp_path / "check.npz", draws, nlive_low=25)
    back = stages.load_draws(tmp_path / "check.npz", 25)
    for key in draws:
        np.testing.assert_array_equal(back[key], draws[key])
    assert stages.load_draws(tmp_path / "check.npz", 100) is None  # another level's draws
    assert stages.load_draws(tmp_path / "absent.npz", 25) is None


def _tail_case(posterior, q, scale, d=3, log_z=2.0, n=500, seed=0):
    """tail_excess with the check drawn from ``q`` and the low run's points from ``posterior``."""
    rng = np.random.default_rng(seed)
    xq = q.rvs(size=(n, d), random_state=rng)
    xp = posterior.rvs(size=(2000, d), random_state=rng)

    def log_q(x):
        return q.logpdf(x).sum(axis=1)

    check_logw = posterior.logpdf(xq).sum(axis=1) + log_z - log_q(xq)
    return tail_excess(check_logw, xp, posterior.logpdf(xp).sum(axis=1) + log_z, np.ones(len(xp)), log_q, scale, d)


def test_tail_excess_separates_a_wide_flow_from_missing_tails():
    # q = the posterior widened by 1.3: P / q <= 1.3^d everywhere, so the excess is at most ~0.
    wide = _tail_case(stats.norm(), stats.norm(scale=1.3), 1.3)
    assert -1.0 < wide <= 0.1
    # The same q against a Student-t posterior (nu 3) of the same core: P / q grows without
    # bound in the tails, which the low run's points reach.
    heavy = _tail_case(stats.t(3), stats.norm(scale=1.3), 1.3)
    assert heavy > 3.0
    # Narrower than the posterior: the ratio exceeds its bound in the tails.
    assert _tail_case(stats.norm(), stats.norm(scale=0.8), 1.0) > 1.0


def test_tail_excess_edge_cases():
    # No draw with positive weight: nothing is known, so it is as bad as it gets.
    assert tail_excess(np.full(4, -np.inf), np.zeros((1, 2)), np.zeros(1), np.ones(1),
                       lambda x: np.zeros(len(x)), 1.2, 2) == np.inf
    # Without low-run points only the check's draws count: equal weights give max/mean = 1.
    assert tail_excess(np.zeros(10), np.zeros((0, 2)), np.zeros(0), np.zeros(0),
                       lambda x: np.zeros(len(x)), 1.5, 2) == pytest.approx(-2 * np.log(1.5))


@pytest.mark.parametrize("tail, warns", [(16.0, True), (1.2, False), (None, False)])
def test_a_flow_missing_a_tail_warns_that_the_error_may_be_too_small(tail, warns):
    import warnings

    from flowprior.workflows.high import warn_if_tailed
    from flowprior.workflows.lowcheck import LowCheck

    check = LowCheck(100, 1000, 0.8, 200, 1.0, 1.2, tail)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_if_tailed(check, 5.0)
    assert bool(caught) == warns
    if warns:
        assert "logZerr may be too small" in str(caught[0].message) and "16.0 nats" in str(caught[0].message)
