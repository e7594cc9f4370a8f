"""MAF: density, transform, training and determinism."""

import numpy as np
import pytest
import torch

import flowprior as fp
from flowprior.flows.training import _weighted_nll
from conftest import BOUNDS, COV, MEAN, QUICK


def test_recovers_gaussian_mean_and_covariance(maf):
    n = 20000
    x = maf.sample(n, seed=1)
    # Error bars: standard error of the mean and of the covariance entries.
    sd = np.sqrt(np.diag(COV))
    err_mean = sd / np.sqrt(n)
    # Tolerance: 5 standard errors of sampling plus the fit error from 4000
    # training samples (~1/sqrt(3200) of a standard deviation each).
    tol = 5 * err_mean + 3 * sd / np.sqrt(3200)
    assert np.all(np.abs(x.mean(axis=0) - MEAN) < tol)
    corr_true = COV / np.outer(sd, sd)
    c = np.cov(x.T)
    assert np.allclose(np.sqrt(np.diag(c)), sd, rtol=0.06)
    assert np.allclose(c / np.outer(np.sqrt(np.diag(c)), np.sqrt(np.diag(c))), corr_true, atol=0.06)


def test_numpy_path_agrees_with_torch(maf, gauss_samples):
    x = gauss_samples[:500]
    assert np.allclose(maf.log_prob(x), maf.log_prob(x, backend="torch"), rtol=0, atol=1e-10)
    u = np.random.default_rng(3).uniform(size=(500, 3))
    assert np.allclose(maf.prior_transform(u), maf.prior_transform(u, backend="torch"), rtol=1e-12, atol=1e-12)


def test_transform_then_inverse_is_identity(maf):
    u = np.random.default_rng(4).uniform(0.001, 0.999, size=(1000, 3))
    assert np.allclose(maf.inverse_transform(maf.prior_transform(u)), u, atol=1e-9)
    theta = maf.sample(200, seed=5)
    assert np.allclose(maf.prior_transform(maf.inverse_transform(theta)), theta, rtol=1e-9, atol=1e-9)


def test_single_point_and_call(maf):
    u = np.array([0.2, 0.5, 0.7])
    x = maf(u)
    assert x.shape == (3,)
    assert np.array_equal(x, maf.prior_transform(u[None])[0])
    assert isinstance(maf.log_prob(x), float)


def test_unit_cube_edges_give_finite_points_inside(maf):
    corners = np.array([[0, 0, 0], [1, 1, 1], [0, 1, 0.5], [1, 0, 0]], dtype=float)
    x = maf(corners)
    assert np.all(np.isfinite(x))
    assert np.all((x[:, 0] > 0) & (x[:, 0] < 1)) and np.all(x[:, 1] > -5)
    assert np.all(np.isfinite(maf.log_prob(x)))


def test_support_is_the_bounds_not_the_sample_range(maf, gauss_samples):
    # Beyond the samples but inside the bounds: positive density.
    far = np.array([[0.999, gauss_samples[:, 1].max() + 1.0, gauss_samples[:, 2].min() - 2.0]])
    assert np.isfinite(maf.log_prob(far)[0])
    # Outside the bounds: zero density, not NaN.  A NaN point is an error (tests/test_messages.py).
    out = np.array([[1.5, 0.0, 0.0], [0.5, -6.0, 0.0], [np.inf, 0.0, 0.0]])
    assert np.all(maf.log_prob(out) == -np.inf)


def test_density_normalised_on_bounded_box():
    # 2-D: bounded on both sides and on one side; integrate on a grid.
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.beta(2, 5, 3000), rng.gamma(3.0, 0.5, 3000)])
    f = fp.MAF(seed=0, **QUICK).fit(x, bounds=[(0, 1), (0, None)])
    g0 = np.linspace(0, 1, 401)[1:-1]
    g1 = np.linspace(0, 12, 1201)[1:]
    X, Y = np.meshgrid(g0, g1, indexing="ij")
    p = f.prob(np.column_stack([X.ravel(), Y.ravel()])).reshape(X.shape)
    mass = np.trapezoid(np.trapezoid(p, g1, axis=1), g0)
    assert mass == pytest.approx(1.0, abs=0.01)


def test_pushforward_of_uniform_matches_density():
    """KS test of prior_transform(uniform) against the CDF integrated from log_prob (1-D)."""
    from scipy import stats

    rng = np.random.default_rng(1)
    x = rng.gamma(2.0, 1.0, size=(3000, 1))
    f = fp.MAF(seed=0, **QUICK).fit(x, bounds=[(0, None)])
    grid = np.concatenate([np.linspace(1e-9, 40, 200001)])
    pdf = f.prob(grid[:, None])
    cdf = np.concatenate([[0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(grid))])
    assert cdf[-1] == pytest.approx(1.0, abs=1e-3)
    draws = f.sample(5000, seed=2)[:, 0]
    res = stats.kstest(draws, lambda t: np.interp(t, grid, cdf))
    assert res.pvalue > 0.01


def banana(n, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    return np.column_stack([a, a**2 + 0.5 * rng.normal(size=n)])


def test_same_seed_same_flow_and_global_rng_untouched():
    x = banana(1000, 0)  # not Gaussian, so training moves away from the initial Gaussian fit
    np_state = np.random.get_state()[1].copy()
    torch_state = torch.get_rng_state().clone()
    threads = torch.get_num_threads()
    a = fp.MAF(seed=11, **QUICK).fit(x)
    assert torch.get_num_threads() == threads  # training's one-thread setting is undone
    b = fp.MAF(seed=11, **QUICK).fit(x)
    a.sample(10, seed=0)
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.get_rng_state(), torch_state)
    for (ka, va), (kb, vb) in zip(a.flow_.state_dict().items(), b.flow_.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert a.record_.best_epoch > 0
    c = fp.MAF(seed=12, **QUICK).fit(x)
    assert not np.array_equal(a.sample(5, seed=0), c.sample(5, seed=0))


def test_early_stopping_restores_best_epoch():
    # Few samples and a large flow: it first learns the banana, then overfits,
    # so the held-out loss turns up again.
    x = banana(300, 5)
    f = fp.MAF(seed=0, n_transforms=4, hidden_features=(128, 128), max_epochs=500, patience=10,
               batch_size=64, learning_rate=1e-2, progress=False).fit(x)
    rec = f.record_
    assert rec.stopped_early
    assert rec.best_epoch == int(np.argmin(rec.val_loss)) > 0
    assert rec.val_loss[-1] > min(rec.val_loss)  # the last epoch was worse...
    space = f.spaces_[0]
    y, _ = space.to_real(x[rec.val_rows])
    with torch.no_grad():
        restored = float(_weighted_nll(f.flow_, torch.as_tensor(y, dtype=torch.float32),
                                       torch.ones(len(y))))
    # ...and the model we hold has the minimum held-out loss, not the last one.
    assert restored == pytest.approx(min(rec.val_loss), rel=1e-5)


def test_gaussian_data_keeps_the_gaussian_fit(gauss_samples):
    """Whitening + identity initialisation: epoch 0 is the weighted Gaussian fit."""
    f = fp.MAF(seed=0, **QUICK).fit(gauss_samples[:400])
    # The untrained flow's held-out loss is recorded, and training only replaces
    # it if an epoch does better on held-out data.
    assert f.record_.val_loss[f.record_.best_epoch] <= f.record_.val_loss[0]
    space = f.spaces_[0]
    y, _ = space.to_real(gauss_samples[:400])
    assert np.allclose(y.mean(axis=0), 0, atol=1e-9) and np.allclose(np.cov(y.T, bias=True), np.eye(3), atol=1e-6)


def test_zero_weights_allowed_and_ignored(gauss_samples):
    w = np.ones(len(gauss_samples))
    w[::2] = 0.0
    a = fp.MAF(seed=3, **QUICK).fit(gauss_samples, weights=w)
    b = fp.MAF(seed=3, **QUICK).fit(gauss_samples[1::2])
    u = np.random.default_rng(0).uniform(size=(20, 3))
    assert np.array_equal(a(u), b(u))


def test_anesthetic_samples_bring_names_weights_labels():
    from anesthetic import Samples

    rng = np.random.default_rng(0)
    data = rng.normal(size=(500, 2))
    s = Samples(data, columns=["om", "h"], labels={"om": r"$\Omega_m$", "h": "$h$"},
                weights=rng.uniform(size=500))
    f = fp.MAF(seed=0, **QUICK).fit(s)
    assert f.names_ == ["om", "h"] and f.latex_labels_ == [r"$\Omega_m$", "$h$"]
    # Columns are matched by name, whatever their order.
    frame = s.drop_labels()[["h", "om"]]
    assert np.allclose(f.log_prob(frame), f.log_prob(data))
    with pytest.raises(ValueError, match=r"columns \['om'\] missing"):
        f.log_prob(frame[["h"]])


def test_bounds_by_name(gauss_samples):
    f = fp.MAF(seed=0, **QUICK).fit(gauss_samples, bounds={"a": (0, 1)}, names=["a", "b", "c"])
    assert f.bounds_ == [(0.0, 1.0), (None, None), (None, None)]


def test_pickle_keeps_outputs(maf):
    import pickle

    u = np.random.default_rng(0).uniform(size=(10, 3))
    assert np.array_equal(pickle.loads(pickle.dumps(maf))(u), maf(u))


def test_held_out_log_prob_is_the_parameter_space_figure(gauss_samples):
    from conftest import BOUNDS, QUICK

    flow = fp.MAF(seed=1, **QUICK).fit(gauss_samples, bounds=BOUNDS)
    rec = flow.records_[0]
    direct = np.mean(flow.log_prob(gauss_samples[rec.val_rows]))
    assert rec.held_out_log_prob == pytest.approx(direct, abs=1e-6)


def test_unbounded_coordinates_map_without_numpy_warnings():
    """The links' branches for other kinds of coordinate (logs of negative or zero values) stay silent."""
    import warnings

    from flowprior.flows.spaces import Space

    space = Space(np.array([-np.inf, 0.0]), np.array([np.inf, np.inf]), np.zeros(2), np.eye(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g, logdet = space._unbound(np.array([[0.0, 1.0], [-2.0, 3.0]]))
    assert np.array_equal(g[:, 0], [0.0, -2.0]) and np.allclose(g[:, 1], np.log([1.0, 3.0]))
