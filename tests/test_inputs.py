"""Bad input: a ValueError naming the argument, the rows and what was expected."""

import numpy as np
import pytest

import flowprior as fp
from conftest import QUICK


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(size=(100, 2))


@pytest.mark.parametrize("Flow", [fp.MAF, fp.PiecewiseFlow])
def test_bad_samples_and_weights(Flow, x):
    f = Flow(seed=0, **QUICK)
    bad = x.copy()
    bad[[3, 17], 1] = [np.nan, np.inf]
    with pytest.raises(ValueError, match=r"theta: non-finite values .* rows \[3, 17\]"):
        f.fit(bad)
    w = np.ones(100)
    w[5] = np.nan
    with pytest.raises(ValueError, match=r"weights: non-finite values in rows \[5\]"):
        f.fit(x, weights=w)
    w = np.ones(100)
    w[[2, 9]] = -1
    with pytest.raises(ValueError, match=r"weights: negative values in rows \[2, 9\]"):
        f.fit(x, weights=w)
    with pytest.raises(ValueError, match="weights: sum to zero"):
        f.fit(x, weights=np.zeros(100))
    with pytest.raises(ValueError, match=r"weights: expected shape \(100,\)"):
        f.fit(x, weights=np.ones(99))
    with pytest.raises(ValueError, match="theta: expected a 2-D array"):
        f.fit(x[:, 0])
    with pytest.raises(ValueError, match="too few samples with positive weight.*: 10, need at least 20"):
        f.fit(x[:10])
    with pytest.raises(ValueError, match=r"theta: samples outside the bounds .* rows \[.*\].*; e\.g\. row 2, column 0: -0.53"):
        f.fit(x, bounds=[(0, None), (None, None)])
    with pytest.raises(ValueError, match=r"bounds: expected 2 \(lo, hi\) pairs"):
        f.fit(x, bounds=[(0, 1)])
    with pytest.raises(ValueError, match=r"bounds\[0\]: need lo < hi"):
        f.fit(x, bounds=[(1, 0), None])
    with pytest.raises(ValueError, match="bounds: unknown parameter names"):
        f.fit(x, bounds={"z": (0, 1)}, names=["a", "b"])


def test_bad_points(maf):
    with pytest.raises(ValueError, match=r"u: values outside \[0, 1\] \(or NaN\) in rows \[1\]"):
        maf.prior_transform(np.array([[0.5, 0.5, 0.5], [0.5, 1.2, 0.5]]))
    with pytest.raises(ValueError, match=r"u: values outside \[0, 1\] \(or NaN\) in rows \[0\]"):
        maf(np.array([np.nan, 0.5, 0.5]))
    with pytest.raises(ValueError, match=r"u: expected shape \(3,\) or \(n, 3\); got \(2,\)"):
        maf([0.5, 0.5])
    with pytest.raises(ValueError, match=r"theta: samples outside the bounds"):
        maf.inverse_transform(np.array([[2.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="backend"):
        maf.log_prob(np.zeros((1, 3)), backend="jax")
    with pytest.raises(ValueError, match="n: expected a non-negative integer"):
        maf.sample(-1)


def test_unfitted_and_bad_settings(x):
    with pytest.raises(RuntimeError, match="not fitted"):
        fp.MAF().prior_transform([0.5, 0.5])
    with pytest.raises(ValueError, match="n_transforms"):
        fp.MAF(n_transforms=0).fit(x)
    with pytest.raises(ValueError, match="val_fraction"):
        fp.MAF(val_fraction=1.5).fit(x)
    with pytest.raises(ValueError, match="clusters: expected 'auto'"):
        fp.PiecewiseFlow(clusters="dbscan", **QUICK).fit(x)
