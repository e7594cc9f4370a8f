"""The effective-sample-size check of a low-resolution run's flow."""

import numpy as np
import pytest

from flowprior.lowcheck import check_flow, ess_fraction


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
    from flowprior.lowcheck import LowCheck, perfect_ess_fraction

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
    from flowprior import stages

    draws = {"v": np.full((3, 2), 0.5), "u": np.full((3, 2), 0.25), "logl": np.array([0.0, -np.inf, 1.0])}
    stages.save_draws(tmp_path / "check.npz", draws, nlive_low=25)
    back = stages.load_draws(tmp_path / "check.npz", 25)
    for key in draws:
        np.testing.assert_array_equal(back[key], draws[key])
    assert stages.load_draws(tmp_path / "check.npz", 100) is None  # another level's draws
    assert stages.load_draws(tmp_path / "absent.npz", 25) is None
