"""Per-piece widths and weights of a piecewise flow in the high stage's prior (flowprior.workflows.mixing)."""

import copy
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.special import logsumexp

import flowprior as fp
from conftest import QUICK
from flowprior import load
from flowprior.workflows.lowcheck import ess_fraction, perfect_ess_fraction
from flowprior.workflows.mixing import (MASS_FLOOR, MAX_PIECE_FACTOR, check_masses, log_peak, perfect_ess, piece_scales,
                              volume_weights)


def test_pieces_record_their_effective_sample_size(piecewise, blobs, maf):
    x, w = blobs
    for rec in piecewise.records_:
        assert 50 < rec.ess <= len(x)
    # A MAF on unweighted samples: the ESS is the number of samples.
    assert maf.records_[0].ess == pytest.approx(4000)


def test_piece_scales_widen_pieces_with_few_samples(piecewise, maf):
    assert piece_scales(maf, 1.2, 3) == 1.2  # one piece: the run's scale, a float
    flow = copy.copy(piecewise)
    flow.records_ = [copy.copy(r) for r in piecewise.records_]
    flow.records_[0].ess, flow.records_[1].ess = 1e6, 32.0
    s = piece_scales(flow, 1.2, 2)
    assert s[0] == 1.2  # many samples: the base
    assert s[1] == pytest.approx(1 / (1 - np.sqrt(2 / 32)))  # 1.333
    flow.records_[1].ess = 2.0  # no more samples than dimensions: capped
    assert piece_scales(flow, 1.2, 2)[1] == pytest.approx(MAX_PIECE_FACTOR * 1.2)
    flow.records_[1].ess = None  # a record from before ess was kept: the run's scale
    assert piece_scales(flow, 1.2, 2) == 1.2


def test_one_scale_reduces_to_the_single_flow_formulas():
    m = np.array([0.7, 0.3])
    assert np.allclose(volume_weights(m, 1.3, 4), m)
    assert log_peak(m, 1.3, 4) == pytest.approx(4 * np.log(1.3))
    assert perfect_ess(m, 1.3, 4) == pytest.approx(perfect_ess_fraction(1.3, 4))
    assert perfect_ess(np.ones(1), 1.5, 6) == pytest.approx(perfect_ess_fraction(1.5, 6))


def test_perfect_mixture_ess_and_peak_by_simulation():
    # Two perfect pieces, widened by 1.2 and 1.8 in 3-D and weighted by volume_weights:
    # in piece k's slab the weight is (m_k / W_k) N(z; 0, I) / N(z; 0, s_k^2 I) at z ~ N(0, s_k^2 I).
    rng = np.random.default_rng(3)
    d, m, s = 3, np.array([0.8, 0.2]), np.array([1.2, 1.8])
    w = volume_weights(m, s, d)
    assert w[1] / w[0] == pytest.approx(0.2 * 1.8**3 / (0.8 * 1.2**3))
    n = 400_000
    k = rng.choice(2, size=n, p=w)
    z = rng.normal(size=(n, d)) * s[k][:, None]
    logw = np.log(m[k] / w[k]) + d * np.log(s[k]) - 0.5 * np.sum(z**2, axis=1) * (1 - 1 / s[k] ** 2)
    assert np.exp(logsumexp(logw) - np.log(n)) == pytest.approx(1.0, abs=0.01)  # P / q averages to 1
    # The ESS fraction of 400 000 weights has a relative error of well under 1 %.
    assert ess_fraction(logw) == pytest.approx(perfect_ess(m, s, d), rel=0.02)
    # Equal peaks: every slab's largest ratio is the same, log sum m s^d.
    peaks = np.log(m / w) + d * np.log(s)
    assert np.allclose(peaks, log_peak(m, s, d))


def test_broadened_per_piece_is_each_piece_widened(piecewise):
    x = piecewise.sample(300, seed=1)
    wide = piecewise.broadened([1.0, 2.0])
    one = [piecewise.broadened(s) for s in (1.0, 2.0)]
    parts = []
    for k, flow in enumerate(one):
        only = flow.reweighted(np.eye(2)[k])  # piece k alone
        parts.append(np.log(piecewise.weights_[k]) + only.log_prob(x))
    assert np.allclose(wide.log_prob(x), logsumexp(np.stack(parts), axis=0))
    assert np.allclose(wide.log_prob(x), wide.log_prob(x, backend="torch"))
    v = np.random.default_rng(2).uniform(size=(200, 2))
    assert np.allclose(wide.prior_transform(v), wide.prior_transform(v, backend="torch"))
    # Piece 1's draws spread twice as wide about the same centre.
    piece = v[:, 0] >= piecewise.weights_[0]
    narrow = piecewise.prior_transform(v)
    assert np.std(wide.prior_transform(v)[piece], axis=0) == pytest.approx(2 * np.std(narrow[piece], axis=0),
                                                                        rel=0.05)
    assert np.allclose(wide.prior_transform(v)[~piece], narrow[~piece])
    assert np.array_equal(wide.piece_scales_, [1.0, 2.0]) and np.array_equal(piecewise.piece_scales_, [1.0, 1.0])


def test_per_piece_scales_survive_save_and_load(piecewise, tmp_path):
    wide = piecewise.broadened([1.1, 1.7])
    wide.save(tmp_path / "f.safetensors")
    back = load(tmp_path / "f.safetensors")
    assert np.array_equal(back.piece_scales_, [1.1, 1.7])
    x = piecewise.sample(50, seed=0)
    assert np.allclose(back.log_prob(x), wide.log_prob(x))


@pytest.mark.parametrize("bad", [[1.0], [1.0, 0.0], [1.0, np.nan], [[1.0, 1.0]], "2"])
def test_bad_per_piece_scales(piecewise, bad):
    with pytest.raises(ValueError, match="scale: expected a positive finite number or one per piece"):
        piecewise.broadened(bad)


@pytest.mark.parametrize("bad", [[1.0], [-0.1, 1.1], [0.0, 0.0], [np.inf, 1.0]])
def test_bad_weights(piecewise, bad):
    with pytest.raises(ValueError, match="weights: expected 2 non-negative finite numbers"):
        piecewise.reweighted(bad)


def test_reweighted_mixes_the_same_pieces(piecewise):
    x = piecewise.sample(200, seed=4)
    new = piecewise.reweighted([3.0, 1.0])
    assert np.allclose(new.weights_, [0.75, 0.25])
    lp = [piecewise.reweighted(np.eye(2)[k]).log_prob(x) for k in range(2)]
    assert np.allclose(new.log_prob(x), np.logaddexp(np.log(0.75) + lp[0], np.log(0.25) + lp[1]))
    assert np.allclose(piecewise.weights_.sum(), 1.0) and not np.allclose(piecewise.weights_, [0.75, 0.25])


def test_check_masses_from_slabs():
    flow = SimpleNamespace(weights_=np.array([0.5, 0.5]), bijective=False)  # a two-piece flow with slabs
    v = np.array([[0.1, 0.5], [0.3, 0.5], [0.6, 0.5], [0.9, 0.5]])
    logl = np.log([1.0, 1.0, 2.0, -0.0 + 4.0])
    m = check_masses({"v": v, "logl": logl}, flow, floor=np.array([0.5, 0.5]))
    assert np.allclose(m, [2 / 8, 6 / 8])
    # A piece whose draws hold nothing keeps MASS_FLOOR of the low run's mass.
    logl = np.array([-np.inf, -np.inf, 0.0, 0.0])
    m = check_masses({"v": v, "logl": logl}, flow, floor=np.array([0.4, 0.6]))
    assert m[0] / m[1] == pytest.approx(MASS_FLOOR * 0.4 / 1.0)
    assert check_masses({"v": v, "logl": np.full(4, -np.inf)}, flow, np.array([0.5, 0.5])) is None


@pytest.fixture(scope="module")
def cube_bijective(blobs):
    """The same two pieces with the bijective (Rosenblatt) transform."""
    x, w = blobs
    return fp.PiecewiseFlow(seed=0, k_max=4, split=1, transform="rosenblatt", **QUICK).fit(
        (x + 6) / 12, weights=w, bounds=[(0, 1)] * 2)


def test_check_masses_of_a_bijective_flow_share_draws_by_responsibility(cube_bijective):
    """Draws of the flow weighted towards a target with masses (0.2, 0.8) of the same pieces give those masses."""
    flow = cube_bijective
    target = flow.reweighted([0.2, 0.8])
    v = np.random.default_rng(7).uniform(size=(2000, 2))
    u = flow.prior_transform(v)
    logl = target.log_prob(u) - flow.log_prob(u)
    m = check_masses({"v": v, "u": u, "logl": logl}, flow, floor=np.array([0.5, 0.5]))
    w = np.exp(logl - logl.max())
    r = flow.responsibilities(u)[:, 1]
    se = np.sqrt(np.sum(w**2 * (r - m[1]) ** 2)) / w.sum()  # delta-method error of a ratio estimate
    assert abs(m[1] - 0.8) < 4 * se + 1e-3  # 1e-3: the pieces' overlap, which shares a draw between them
