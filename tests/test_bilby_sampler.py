"""bilby.run_sampler(..., sampler="flowprior"): evidence and posterior of a linear fit against the closed form.

A straight line with Gaussian noise of known sigma under a uniform prior
much wider than the posterior: the likelihood is Gaussian in (m, c), so
Z = L_max * 2 pi / sqrt(det F) / (prior area) and the posterior mean is the
least-squares fit (F = A^T A / sigma^2 for the design matrix A = [x, 1]).
"""

import importlib.util
import logging

import numpy as np
import pytest

bilby = pytest.importorskip("bilby", reason="bilby is not installed: pip install 'flowprior[bilby]'")
from flowprior.integrations.bilby_sampler import Flowprior  # noqa: E402

# bilby 2.8's own GaussianLikelihood reads its parameters the deprecated way on every call.
pytestmark = pytest.mark.filterwarnings("ignore:Parameter attribute queried:FutureWarning")

X = np.linspace(0.0, 10.0, 30)
SIGMA = 1.0
Y = 0.5 * X + 1.0 + np.random.default_rng(0).normal(0.0, SIGMA, X.size)
BOX = {"m": (-2.0, 3.0), "c": (-4.0, 6.0)}
NLIVE = 200


def model(x, m, c):
    return m * x + c


class CountingLikelihood(bilby.core.likelihood.GaussianLikelihood):
    """bilby's GaussianLikelihood, counting its calls."""

    calls = 0

    def log_likelihood(self, parameters=None):
        self.calls += 1
        return super().log_likelihood(parameters)


def priors():
    return {k: bilby.core.prior.Uniform(lo, hi, k) for k, (lo, hi) in BOX.items()}


def analytic():
    """log Z, posterior mean and posterior standard deviations of (m, c)."""
    A = np.column_stack([X, np.ones_like(X)])
    fisher = A.T @ A / SIGMA**2
    mean = np.linalg.solve(A.T @ A, A.T @ Y)
    r = Y - A @ mean
    log_lmax = -0.5 * r @ r / SIGMA**2 - 0.5 * X.size * np.log(2 * np.pi * SIGMA**2)
    area = np.prod([hi - lo for lo, hi in BOX.values()])
    log_z = log_lmax + np.log(2 * np.pi) - 0.5 * np.log(np.linalg.det(fisher)) - np.log(area)
    return log_z, mean, np.sqrt(np.diag(np.linalg.inv(fisher)))


def log_l(m, c):
    m, c = np.asarray(m, dtype=float), np.asarray(c, dtype=float)
    r = Y[:, None] - (np.outer(X, m) + c)
    return -0.5 * np.sum(r**2, axis=0) / SIGMA**2 - 0.5 * X.size * np.log(2 * np.pi * SIGMA**2)


def run(outdir, label, count=False, **kwargs):
    """A run through bilby; with ``count``, also the likelihood calls made while sampling (not bilby's set-up)."""
    like = CountingLikelihood(X, Y, model, SIGMA)
    bilby.core.utils.random.seed(11)
    with pytest.MonkeyPatch.context() as mp:
        sampling = Flowprior.run_sampler
        if count:  # bilby calls the likelihood ~100 times to time it before sampling; start counting after
            mp.setattr(Flowprior, "run_sampler", lambda self: (setattr(like, "calls", 0), sampling(self))[1])
        res = bilby.run_sampler(like, priors(), outdir=str(outdir), label=label, save=False, nlive=NLIVE, **kwargs)
    return res, like.calls


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return run(tmp_path_factory.mktemp("plain"), "plain", count=True, sampler="flowprior", seed=1)


@pytest.fixture(scope="module")
def enhanced(tmp_path_factory):
    return run(tmp_path_factory.mktemp("enhanced"), "enhanced", count=True, sampler="flowprior", seed=1,
               enhanced=True)


def check_against_closed_form(res):
    log_z, mean, std = analytic()
    assert abs(res.log_evidence - log_z) < 3 * res.log_evidence_err
    post = res.posterior
    assert len(post) > 100
    for k, name in enumerate(["m", "c"]):
        assert abs(post[name].mean() - mean[k]) < 4 * std[k] / np.sqrt(len(post))
        assert 0.7 < post[name].std() / std[k] < 1.3
    ns = res.nested_samples
    assert np.isclose(ns["weights"].sum(), 1.0)
    finite = np.isfinite(ns["log_likelihood"])
    assert np.allclose(ns["log_likelihood"][finite], log_l(ns["m"][finite], ns["c"][finite]), rtol=0, atol=1e-8)
    assert np.allclose(post["log_likelihood"], log_l(post["m"], post["c"]), rtol=0, atol=1e-8)
    assert res.sampler == "flowprior" and res.sampling_time > 0


@pytest.mark.slow
def test_plain_run_matches_the_closed_form(plain):
    check_against_closed_form(plain[0])


@pytest.mark.slow
def test_enhanced_run_matches_the_closed_form(enhanced):
    check_against_closed_form(enhanced[0])


@pytest.mark.slow
def test_calls_are_counted_and_the_enhanced_run_makes_fewer(plain, enhanced):
    (res_plain, calls_plain), (res_enh, calls_enh) = plain, enhanced
    assert res_plain.num_likelihood_evaluations == calls_plain
    assert res_enh.num_likelihood_evaluations == calls_enh
    assert calls_enh < calls_plain
    ncall = res_enh.meta_data["run_statistics"]["ncall"]
    assert ncall["total"] + ncall["fingerprint"] == calls_enh


@pytest.mark.slow
def test_an_enhanced_rerun_resumes_from_its_directory(enhanced):
    res, _ = enhanced
    outdir, label = res.outdir, res.label
    assert (Flowprior.get_expected_outputs(outdir, label)[1][0].rstrip("/").endswith(f"flowprior_{label}"))
    again, calls = run(outdir, label, count=True, sampler="flowprior", seed=1, enhanced=True)
    assert again.log_evidence == res.log_evidence
    assert calls < 50  # only the directory's check against the likelihood
    fresh, calls = run(outdir, label, count=True, sampler="flowprior", seed=1, enhanced=True, resume=False)
    assert calls == fresh.num_likelihood_evaluations > 500  # redone from the start


@pytest.mark.slow
def test_bilby_dynesty_agrees(plain, tmp_path):
    """bilby's own dynesty (about 4 s here) on the same problem: the evidences agree within their errors."""
    res, _ = run(tmp_path, "dynesty", sampler="dynesty", seed=1, check_point=False, print_method="interval-1000")
    mine = plain[0]
    assert abs(res.log_evidence - mine.log_evidence) < 3 * np.hypot(res.log_evidence_err, mine.log_evidence_err)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("pypolychord") is None,
                    reason="pypolychord is not installed (not on PyPI; build PolyChordLite)")
def test_polychord_inside(tmp_path):
    res, calls = run(tmp_path, "pc", count=True, sampler="flowprior", inner_sampler="polychord", seed=1)
    log_z, _, _ = analytic()
    assert abs(res.log_evidence - log_z) < 3 * res.log_evidence_err
    assert res.num_likelihood_evaluations == calls


def test_an_unknown_inner_sampler_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"inner_sampler: expected one of .*'dynesty'.*got 'nestle'"):
        run(tmp_path, "bad", sampler="flowprior", inner_sampler="nestle")


def test_enhanced_options_without_enhanced_are_an_error(tmp_path):
    with pytest.raises(ValueError, match="nlive_low: options of the enhanced run; pass enhanced=True"):
        run(tmp_path, "bad", sampler="flowprior", nlive_low=40)


def test_bad_seed_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="seed: expected a non-negative integer or None, got -3"):
        run(tmp_path, "bad", sampler="flowprior", seed=-3)


def test_an_unknown_option_is_named_and_dropped(tmp_path, caplog):
    """bilby's way for every sampler: a warning naming it (bilby's logger does not propagate; listen to it)."""
    logger = logging.getLogger("bilby")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger="bilby"):
            sampler = Flowprior(CountingLikelihood(X, Y, model, SIGMA), bilby.core.prior.PriorDict(priors()),
                                outdir=str(tmp_path), npoints=50, enhance=True)
    finally:
        logger.removeHandler(caplog.handler)
    assert "Supplied argument 'enhance' not an argument of 'Flowprior', removing." in caplog.text
    assert "enhance" not in sampler.kwargs and sampler.kwargs["nlive"] == 50


def test_constraints_and_fixed_parameters(tmp_path):
    """A point failing a prior constraint has log L = -inf, not bilby's stand-in; a DeltaFunction is fixed."""
    pri = bilby.core.prior.PriorDict(priors())
    pri["c"] = bilby.core.prior.DeltaFunction(1.0, "c")
    pri["m_pos"] = bilby.core.prior.Constraint(0.0, 10.0, "m_pos")
    pri.conversion_function = lambda p: {**p, "m_pos": p["m"]}
    sampler = Flowprior(CountingLikelihood(X, Y, model, SIGMA), pri, outdir=str(tmp_path))
    assert sampler.search_parameter_keys == ["m"]
    assert sampler.log_likelihood(np.array([-1.0])) == -np.inf
    assert sampler.log_likelihood(np.array([0.5])) == pytest.approx(log_l(np.array([0.5]), 1.0)[0])


def test_nan_likelihood_is_an_error_naming_the_point(tmp_path):
    """As dynesty refuses a NaN live point, flowprior stops at the first NaN (no silent -inf or 0)."""

    class NanAbove(CountingLikelihood):
        def log_likelihood(self, parameters=None):
            return np.nan if (parameters or self.parameters)["m"] > 2.0 else super().log_likelihood(parameters)

    with pytest.raises(ValueError, match=r"loglike returned nan at theta=\["):
        bilby.run_sampler(NanAbove(X, Y, model, SIGMA), priors(), sampler="flowprior", nlive=50, seed=2,
                          outdir=str(tmp_path), label="nan", save=False, soft_init=True)
