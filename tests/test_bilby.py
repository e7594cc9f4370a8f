"""A flow as a bilby prior: rescale, ln_prob and sample are the flow's, and a bilby run uses it."""

import numpy as np
import pytest

import flowprior as fp
from conftest import QUICK

bilby = pytest.importorskip("bilby", reason="bilby is not installed: pip install 'flowprior[bilby]'")
from flowprior.integrations import bilby as fpb  # noqa: E402

MEAN, COV = np.array([0.3, -1.0]), np.array([[0.04, 0.018], [0.018, 0.09]])


@pytest.fixture(scope="module")
def flow():
    x = np.random.default_rng(0).multivariate_normal(MEAN, COV, size=3000)
    return fp.MAF(seed=0, **QUICK).fit(x, bounds=[(-1.0, 2.0), (None, None)], names=["a", "b"])


def test_the_prior_dict_is_the_flow(flow):
    priors = fpb.flow_prior_dict(flow)
    assert list(priors) == ["a", "b"]
    u = np.random.default_rng(1).uniform(size=(20, 2))
    # bilby returns a joint prior's values at its last parameter (``[[], array([a, b])]``); flatten as bilby does
    rescaled = np.array([np.concatenate([np.atleast_1d(v) for v in priors.rescale(["a", "b"], row)]) for row in u])
    assert np.allclose(rescaled, flow.prior_transform(u), rtol=0, atol=1e-12)
    theta = flow.sample(50, seed=2)
    lp = priors.ln_prob({"a": theta[:, 0], "b": theta[:, 1]}, axis=0)
    assert np.allclose(lp, flow.log_prob(theta), rtol=0, atol=1e-10)
    assert priors.ln_prob({"a": 2.5, "b": 0.0}) == -np.inf  # outside a's bounds
    bilby.core.utils.random.seed(3)
    draws = priors.sample(4000)
    x = np.column_stack([draws["a"], draws["b"]])
    assert np.all(np.abs(x.mean(axis=0) - MEAN) < 4 * np.sqrt(np.diag(COV) / 4000) + 0.01)


@pytest.mark.xfail(raises=ValueError, reason="bilby 2.8.2's run_sampler fails on every joint prior, its own "
                   "MultivariateGaussian too (joint.py: 'Each parameter must have the same number of requested "
                   "values'; bilby-dev/bilby#1031 is the same inconsistency)")
def test_a_bilby_run_with_the_flow_as_its_prior(flow, tmp_path):
    """log Z = log E_flow[L], estimated independently from the flow's own draws."""

    class Gauss(bilby.Likelihood):
        def __init__(self):
            super().__init__(parameters={"a": None, "b": None})

        def log_likelihood(self):
            r = np.array([self.parameters["a"] - 0.35, self.parameters["b"] + 0.9]) / 0.2
            return float(-0.5 * r @ r - np.log(2 * np.pi * 0.04))

    like = Gauss()
    theta = flow.sample(200_000, seed=4)
    r = (theta - [0.35, -0.9]) / 0.2
    logl = -0.5 * np.sum(r**2, axis=1) - np.log(2 * np.pi * 0.04)
    truth = np.log(np.mean(np.exp(logl)))
    res = bilby.run_sampler(like, fpb.flow_prior_dict(flow), sampler="dynesty", nlive=200, outdir=str(tmp_path),
                            label="flow", seed=5, save=False, plot=False, bootstrap=0)
    assert abs(res.log_evidence - truth) < 3 * res.log_evidence_err + 0.01
    assert res.posterior["a"].between(-1.0, 2.0).all()


def test_bad_input(flow):
    with pytest.raises(ValueError, match="names: expected 2 names"):
        fpb.flow_prior_dict(flow, names=["a"])
    nameless = fp.MAF(seed=0, **QUICK).fit(np.random.default_rng(6).normal(size=(300, 2)))
    with pytest.raises(ValueError, match="names: this flow has no parameter names"):
        fpb.flow_prior_dict(nameless)
    assert list(fpb.flow_prior_dict(nameless, names=["m1", "m2"])) == ["m1", "m2"]
