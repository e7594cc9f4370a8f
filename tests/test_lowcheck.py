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
    ess, calls = check_flow(flat, 3, 200, np.random.default_rng(0))
    assert ess == pytest.approx(1.0) and calls == flat.calls == 200
    # A likelihood 1e6 times higher in 1 % of the cube: a few draws carry all the weight.
    spike = Repartitioned(lambda u: np.log(1e6) if u[0] < 0.01 else 0.0)
    ess, _ = check_flow(spike, 3, 2000, np.random.default_rng(0))
    assert ess < 0.05
