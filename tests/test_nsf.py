"""Neural spline flows: the compiled splines against zuko's, and NSF wherever a MAF goes."""

import numpy as np
import pytest
import torch

import flowprior as fp
from conftest import QUICK
from flowprior.flows import splines


def _zuko_spline(phi, K):
    from zuko.transforms import MonotonicRQSTransform

    t = torch.as_tensor(phi, dtype=torch.float64)
    return MonotonicRQSTransform(t[:K], t[K:2 * K], t[2 * K:])


@pytest.mark.parametrize("K", [2, 5, 8])
def test_compiled_spline_agrees_with_zuko_inside_and_outside_its_interval(K):
    rng = np.random.default_rng(K)
    kn = np.empty(3 * K + 3)
    for _ in range(20):
        phi = rng.normal(scale=3.0, size=3 * K - 1)
        ref = _zuko_spline(phi, K)
        x = np.concatenate([rng.uniform(-6, 6, size=30), [-5.0, 5.0, -7.5, 9.0]])
        y_ref, ladj_ref = (v.numpy() for v in ref.call_and_ladj(torch.as_tensor(x, dtype=torch.float64)))
        ours = np.array([splines.forward(phi, K, v, kn) for v in x])
        assert np.allclose(ours[:, 0], y_ref, rtol=0, atol=1e-12)
        assert np.allclose(ours[:, 1], ladj_ref, rtol=0, atol=1e-10)
        back = np.array([splines.inverse(phi, K, v, kn) for v in ours[:, 0]])
        assert np.allclose(back, x, rtol=0, atol=1e-10)
        assert np.allclose(back, ref.inv(torch.as_tensor(y_ref)).numpy(), rtol=0, atol=1e-9)


@pytest.mark.parametrize("d, blocks", [(1, None), (3, None), (4, [[0, 2], [1, 3]])])
def test_nsf_kernels_agree_with_torch(d, blocks):
    rng = np.random.default_rng(d)
    a = rng.normal(size=(600, d))
    x = np.column_stack([a[:, 0], *(a[:, i] + 0.5 * a[:, 0] ** 2 for i in range(1, d))]) if d > 1 else a
    bounds = [(-10.0, 10.0)] + [(None, None)] * (d - 1)
    f = fp.NSF(n_transforms=2, hidden_features=(16,), bins=6, blocks=blocks, max_epochs=5, seed=0,
               progress=False).fit(x, bounds=bounds)
    with torch.no_grad():  # a generic spline flow, not the identity it starts from
        for p in f.flow_.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    f._finish()
    f._torch64 = None
    u = rng.uniform(size=(300, d))
    assert np.allclose(f.prior_transform(u), f.prior_transform(u, backend="torch"), rtol=1e-10, atol=1e-10)
    assert np.allclose(f.log_prob(x[:300]), f.log_prob(x[:300], backend="torch"), rtol=1e-10, atol=1e-9)
    assert np.allclose(f.inverse_transform(f.prior_transform(u)), u, rtol=0, atol=1e-9)
    theta, logq = f.prior_transform_and_log_prob(u)
    assert np.allclose(logq, f.log_prob(theta), atol=1e-12)


def test_nsf_fits_a_bimodal_conditional_an_affine_flow_cannot():
    """x2 | x1 is bimodal: one MAF transform shifts and scales a Gaussian, one spline transform can split it."""
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=4000)
    x2 = np.where(rng.uniform(size=4000) < 0.5, -2.0, 2.0) + 0.3 * rng.normal(size=4000) + 0.5 * x1
    x = np.column_stack([x1, x2])
    settings = dict(n_transforms=1, hidden_features=(32, 32), max_epochs=200, seed=0, progress=False)
    maf = fp.MAF(**settings).fit(x)
    nsf = fp.NSF(bins=8, **settings).fit(x)
    held_maf, held_nsf = maf.record_.held_out_log_prob, nsf.record_.held_out_log_prob
    # The exact density's mean log-density: -1.419 (x1) + (-0.5 log(2 pi 0.09) - 0.5 - log 2) = -2.327.
    assert held_nsf > held_maf + 0.5 and held_nsf > -2.45


def test_nsf_saves_loads_and_pickles_with_its_bins(tmp_path, gauss_samples):
    import pickle

    flow = fp.NSF(bins=5, seed=0, **QUICK).fit(gauss_samples[:1000], bounds=[(0.0, 1.0), (-5.0, None), None])
    flow.save(tmp_path / "n.flow")
    back = fp.load(tmp_path / "n.flow")
    again = pickle.loads(pickle.dumps(flow))
    u = np.random.default_rng(2).uniform(size=(50, 3))
    assert type(back) is fp.NSF and back.bins == 5 and back.get_params() == flow.get_params()
    assert np.array_equal(back.prior_transform(u), flow.prior_transform(u))
    assert np.array_equal(again.log_prob(flow.prior_transform(u)), flow.log_prob(flow.prior_transform(u)))


def test_piecewise_flow_of_spline_pieces(blobs, tmp_path):
    x, w = blobs
    flow = fp.PiecewiseFlow(seed=0, k_max=4, split=1, bins=4, **QUICK).fit(x, weights=w, bounds=[(-6, 6)] * 2)
    u = np.random.default_rng(3).uniform(size=(100, 2))
    assert flow.bins == 4 and np.allclose(flow.prior_transform(u), flow.prior_transform(u, backend="torch"),
                                          atol=1e-10)
    flow.save(tmp_path / "p.flow")
    assert fp.load(tmp_path / "p.flow").bins == 4


@pytest.mark.parametrize("bins", [0, 1, 2.5, "8", True, -3])
def test_bad_bins(bins):
    with pytest.raises(ValueError, match="bins: expected an integer >= 2"):
        fp.NSF(bins=bins)


def test_interval_link_keeps_bounded_coordinates_on_the_splines_interval(tmp_path):
    """link="interval": a two-sided coordinate is mapped onto [-5, 5] with a uniform base; the density is exact."""
    rng = np.random.default_rng(4)
    x = np.column_stack([np.abs(rng.normal(0, 0.1, 3000)), rng.uniform(2, 4, 3000), rng.normal(size=3000)])
    x[:, 2] += x[:, 1]
    bounds = [(0.0, 1.0), (2.0, 4.0), (None, None)]
    flow = fp.NSF(link="interval", seed=0, **QUICK).fit(x, bounds=bounds)
    with torch.no_grad():  # a generic flow, not the fitted one alone
        for p in flow.flow_.parameters():
            if p.dtype.is_floating_point and p.requires_grad:
                p.add_(0.2 * torch.randn(p.shape, generator=torch.Generator().manual_seed(2)))
    flow._finish()
    flow._torch64 = None
    u = rng.uniform(size=(300, 3))
    theta = flow.prior_transform(u)
    assert np.all((theta[:, 0] > 0) & (theta[:, 0] < 1) & (theta[:, 1] > 2) & (theta[:, 1] < 4))
    assert np.allclose(theta, flow.prior_transform(u, backend="torch"), rtol=1e-10, atol=1e-10)
    assert np.allclose(flow.log_prob(theta), flow.log_prob(theta, backend="torch"), rtol=1e-10, atol=1e-9)
    assert np.allclose(flow.inverse_transform(theta), u, rtol=0, atol=1e-9)
    flow.save(tmp_path / "i.flow")
    assert np.array_equal(fp.load(tmp_path / "i.flow").log_prob(theta), flow.log_prob(theta))
    # A 1-D flow's density integrates to one over its interval.
    one = fp.NSF(link="interval", seed=0, **QUICK).fit(x[:, :1], bounds=bounds[:1])
    grid = np.linspace(0, 1, 400_001)[1:-1]
    assert np.trapezoid(one.prob(grid[:, None]), grid) == pytest.approx(1.0, abs=1e-5)


def test_interval_link_needs_splines_and_a_gaussian_base_for_rebasing():
    with pytest.raises(ValueError, match="link: 'interval' .* needs spline transforms"):
        fp.MAF(link="interval")
    flow = fp.NSF(link="interval", seed=0, **QUICK).fit(np.random.default_rng(5).uniform(size=(500, 2)),
                                                          bounds=[(0, 1), (0, 1)])
    with pytest.raises(ValueError, match="rebased: this flow's interval coordinates"):
        flow.rebased(np.zeros(2), np.eye(2))
