"""The bijective piecewise transform: round trip, continuity, an independent reference, exact pushforward."""

import copy

import numpy as np
import pytest
import torch
from scipy.special import logsumexp, ndtr
from scipy.stats import kstest

import flowprior as fp
from conftest import QUICK

BOX = [(-6.0, 6.0), (-6.0, 6.0), (0.0, 8.0)]


@pytest.fixture(scope="module")
def modes():
    rng = np.random.default_rng(3)
    centres = np.array([[-3.0, -2.0, 2.0], [3.0, 1.0, 6.0], [0.0, 3.0, 4.0], [-2.0, 3.0, 1.0]])
    x = np.concatenate([c + rng.normal(scale=[0.4, 0.3, 0.5], size=(600, 3)) for c in centres])
    return np.clip(x, [-5.9, -5.9, 0.05], [5.9, 5.9, 7.95])


@pytest.fixture(scope="module")
def bijective(modes):
    return fp.PiecewiseFlow(transform="rosenblatt", seed=0, **QUICK).fit(modes, bounds=BOX)


def _as_slabs(flow):
    """The same pieces and weights with the slab transform (whose draws are exact draws of the mixture)."""
    out = copy.copy(flow)
    out.transform = "slab"
    out._finish()
    return out


def test_round_trip_is_exact_on_10000_points(bijective):
    assert len(bijective.pieces_) >= 4
    u = np.random.default_rng(0).uniform(size=(10_000, 3))
    x, logq = bijective.prior_transform_and_log_prob(u)
    assert np.abs(bijective.inverse_transform(x) - u).max() <= 1e-8
    assert np.allclose(logq, bijective.log_prob(x), rtol=0, atol=1e-9)


def test_nearby_points_map_to_nearby_points(bijective):
    """No step of 1e-6 in the cube moves the point 10x more than the steps beside it (the slabs jump)."""
    rng = np.random.default_rng(1)
    h = 1e-6

    def worst(flow, u):
        ratios = []
        for j in range(3):
            e = np.zeros(3)
            e[j] = h
            steps = [np.linalg.norm(flow.prior_transform(u + (s + 1) * e) - flow.prior_transform(u + s * e), axis=1)
                     for s in (-1, 0, 1)]
            ratios.append(steps[1] / np.maximum(steps[0], steps[2]))
        return np.max(ratios)

    u = rng.uniform(0.01, 0.99, size=(2000, 3))
    assert worst(bijective, u) <= 10
    # The slab transform fails the same test at a slab's edge.
    edge = np.column_stack([np.full(50, bijective._fast.cumw[0] - 0.5 * h), rng.uniform(0.2, 0.8, size=(50, 2))])
    assert worst(_as_slabs(bijective), edge) > 10


def test_inverse_agrees_with_an_autograd_reference(bijective):
    """u_i = sum_k r_k(x_<i) Phi(e_ki), with e from the torch flows and the prefix densities from their Jacobians."""
    x = bijective.sample(20, seed=2)
    logs, cdfs = [], []
    for k, (flow, space) in enumerate(zip(bijective._torch_pieces(), bijective.spaces_)):
        g, _ = space._unbound(x)
        chol = torch.as_tensor(space.chol)
        mean = torch.as_tensor(space.mean)
        shift, tril = (torch.as_tensor(a[k]) for a in (bijective._fast.bshift, bijective._fast.btril))

        def to_base(gt):
            y = torch.linalg.solve_triangular(chol, (gt - mean)[:, None], upper=False)[:, 0]
            z = flow().transform(y)
            return torch.linalg.solve_triangular(tril, (z - shift)[:, None], upper=False)[:, 0]

        e = np.array([to_base(torch.as_tensor(row)).detach().numpy() for row in g])
        diag = np.array([np.diag(torch.autograd.functional.jacobian(to_base, torch.as_tensor(row)).numpy())
                         for row in g])
        logs.append(-0.5 * e**2 - 0.5 * np.log(2 * np.pi) + np.log(np.abs(diag)))
        cdfs.append(ndtr(e))
    logs, cdfs = np.array(logs), np.array(cdfs)
    prefix = np.concatenate([np.zeros_like(logs[:, :, :1]), np.cumsum(logs, axis=2)[:, :, :-1]], axis=2)
    prefix += np.log(bijective.weights_)[:, None, None]
    r = np.exp(prefix - logsumexp(prefix, axis=0))
    assert np.allclose(bijective.inverse_transform(x), np.sum(r * cdfs, axis=0), rtol=0, atol=1e-10)


def test_the_mixture_maps_to_the_uniform_cube(bijective):
    """Exact draws of the mixture (by slabs) come out uniform and independent under the bijection."""
    x = _as_slabs(bijective).sample(4000, seed=3)
    u = bijective.inverse_transform(x)
    critical = 1.95 / np.sqrt(len(u))  # the KS statistic's 0.1 % point
    for j in range(3):
        assert kstest(u[:, j], "uniform").statistic < critical
    assert np.abs(np.corrcoef(u.T) - np.eye(3)).max() < 4 / np.sqrt(len(u))


def test_widened_reweighted_saved_and_spline_flows_stay_bijective(bijective, modes, tmp_path):
    u = np.random.default_rng(4).uniform(size=(500, 3))
    w = np.ones(len(bijective.pieces_))
    w[0] = 0.0
    bijective.save(tmp_path / "b.flow")
    loaded = fp.load(tmp_path / "b.flow")
    assert np.array_equal(loaded.prior_transform(u), bijective.prior_transform(u))
    spline = fp.PiecewiseFlow(transform="rosenblatt", seed=0, bins=4, link="interval", clusters=3,
                              **QUICK).fit(modes, bounds=BOX)
    for flow in (bijective.broadened(1.5), bijective.reweighted(w), loaded, spline):
        x = flow.prior_transform(u)
        assert np.abs(flow.inverse_transform(x) - u).max() <= 1e-8
        assert np.allclose(flow.log_prob(x), flow.prior_transform_and_log_prob(u)[1], rtol=0, atol=1e-9)


def test_bad_transform_settings_are_refused(bijective):
    with pytest.raises(ValueError, match="transform: expected one of"):
        fp.PiecewiseFlow(transform="bijective")
    slabs = fp.PiecewiseFlow(seed=0, clusters=2, **QUICK).fit(np.random.default_rng(5).normal(size=(400, 3)))
    mixed = copy.copy(slabs)
    mixed.transform = "rosenblatt"
    with pytest.raises(ValueError, match="share the variable order"):
        mixed._finish()
    with pytest.raises(ValueError, match="no torch reference"):
        bijective.prior_transform(np.full(3, 0.5), backend="torch")
