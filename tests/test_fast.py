"""The compiled per-point path against torch, across architectures."""

import numpy as np
import pytest
from scipy.special import ndtri

import flowprior as fp
from flowprior.flows.links import ndtri as _ndtri


def test_normal_quantile_matches_scipy():
    p = np.concatenate([np.logspace(-300, -1, 300), np.linspace(0.01, 0.99, 99), 1 - np.logspace(-16, -1, 100)])
    ours = np.array([_ndtri(v) for v in p])
    exact = ndtri(p)
    # Double precision where the Halley step runs (|z| < 37, p > 1e-299)...
    inner = np.abs(exact) < 37
    assert np.allclose(ours[inner], exact[inner], rtol=1e-14, atol=1e-14)
    # ...and Acklam's approximation beyond.
    assert np.allclose(ours, exact, rtol=1e-8)
    assert np.isfinite(_ndtri(0.0)) and np.isfinite(_ndtri(1.0))


@pytest.mark.parametrize("d, hidden, transforms", [(1, (8,), 2), (2, (8, 16, 8), 3), (5, (32, 32), 4)])
def test_kernels_agree_with_zuko(d, hidden, transforms):
    rng = np.random.default_rng(d)
    a = rng.normal(size=(600, d))
    x = np.column_stack([a[:, 0], *(a[:, i] + 0.5 * a[:, 0] ** 2 for i in range(1, d))]) if d > 1 else a
    bounds = [(-10.0, 10.0)] + [(None, None)] * (d - 1)
    f = fp.MAF(n_transforms=transforms, hidden_features=hidden, max_epochs=5, seed=0,
               progress=False).fit(x, bounds=bounds)
    # Perturb every parameter so the comparison is of a generic flow, not the
    # identity it starts from (a 1-D MAF is affine and stays at its Gaussian fit).
    import torch

    with torch.no_grad():
        for p in f.flow_.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    f._finish()
    f._torch64 = None
    u = rng.uniform(size=(300, d))
    assert np.allclose(f.prior_transform(u), f.prior_transform(u, backend="torch"), rtol=1e-11, atol=1e-11)
    assert np.allclose(f.log_prob(x[:300]), f.log_prob(x[:300], backend="torch"), rtol=1e-11, atol=1e-10)
    theta, logq = f.prior_transform_and_log_prob(u)
    assert np.allclose(logq, f.log_prob(theta), atol=1e-12)
