import numpy as np
import pytest

import flowprior as fp

# Small, quick settings: the tests check behaviour, benchmarks check quality.
QUICK = dict(n_transforms=2, hidden_features=(16, 16), max_epochs=200, batch_size=512, learning_rate=3e-3,
             progress=False)

MEAN = np.array([0.5, -1.0, 2.0])
COV = np.array([[0.0064, 0.006, 0.0], [0.006, 0.040, 0.01], [0.0, 0.01, 0.25]])
BOUNDS = [(0.0, 1.0), (-5.0, None), (None, None)]


@pytest.fixture(scope="session")
def gauss_samples():
    rng = np.random.default_rng(42)
    x = rng.multivariate_normal(MEAN, COV, size=4000)
    return x


@pytest.fixture(scope="session")
def maf(gauss_samples):
    return fp.MAF(seed=0, **QUICK).fit(gauss_samples, bounds=BOUNDS, names=["a", "b", "c"])


@pytest.fixture(scope="session")
def blobs():
    rng = np.random.default_rng(7)
    a = rng.normal([-2.0, 0.0], 0.3, size=(1500, 2))
    b = rng.normal([2.0, 1.0], 0.5, size=(1000, 2))
    x = np.vstack([a, b])
    return x, rng.uniform(0.5, 1.5, size=len(x))


@pytest.fixture(scope="session")
def piecewise(blobs):
    x, w = blobs
    # split=1: one piece per blob, so tests can reason about the two pieces.
    return fp.PiecewiseFlow(seed=0, k_max=4, split=1, **QUICK).fit(x, weights=w, bounds=[(-6, 6), (-6, 6)])
