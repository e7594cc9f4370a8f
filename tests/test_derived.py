"""Derived parameters: ``loglike`` returning ``(logL, derived)`` through run, enhanced_run, reweight and resume."""

import numpy as np
import pytest

import flowprior as fp
from flowprior.integrations import adapter
from flowprior.workflows.checked import CheckedLikelihood, DerivedLikelihood

PRIOR = fp.UniformPrior([(-1, 1)] * 2)
NAMES, DERIVED = ["a", "b"], ["s", "r2"]


def like(x):
    """A Gaussian of width 0.1 with two derived parameters: the sum and the squared radius."""
    return -0.5 * float(x @ x) / 0.01, [x[0] + x[1], float(x @ x)]


def plain(x):
    return like(x)[0]


def assert_derived(samples) -> None:
    """The derived columns hold the functions of the parameters that ``like`` gives."""
    assert list(samples.columns[:4]) == NAMES + DERIVED
    np.testing.assert_allclose(samples["s"], samples["a"] + samples["b"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(samples["r2"], samples["a"] ** 2 + samples["b"] ** 2, rtol=0, atol=1e-12)


def test_run_keeps_derived_and_changes_nothing_else():
    with_derived = fp.run(like, PRIOR, 2, nlive=50, seed=0, names=NAMES, derived_names=DERIVED)
    without = fp.run(plain, PRIOR, 2, nlive=50, seed=0, names=NAMES)
    assert_derived(with_derived.samples)
    # The same seed gives the same run: the derived values ride along without changing the sampler's path.
    assert with_derived.logZ == without.logZ
    np.testing.assert_array_equal(with_derived.samples[NAMES].to_numpy(), without.samples[NAMES].to_numpy())
    assert with_derived.ncall == without.ncall


def test_dynesty_checkpoint_restores_derived(tmp_path):
    path = tmp_path / "stage.save"
    run = adapter("dynesty").run
    first = run(DerivedLikelihood(like, DERIVED), PRIOR, 2, nlive=50, seed=0, names=NAMES, checkpoint=path)
    again = run(DerivedLikelihood(like, DERIVED), PRIOR, 2, nlive=50, seed=0, names=NAMES, checkpoint=path)
    assert_derived(again.samples)
    np.testing.assert_array_equal(again.samples[DERIVED].to_numpy(), first.samples[DERIVED].to_numpy())


@pytest.mark.slow
def test_enhanced_run_keeps_derived_across_resume(tmp_path):
    kwargs = dict(nlive=200, seed=0, names=NAMES, derived_names=DERIVED, outdir=tmp_path / "run")
    first = fp.enhanced_run(like, PRIOR, 2, **kwargs)
    assert_derived(first.samples)
    assert first.ncall["high"] > 0
    again = fp.enhanced_run(like, PRIOR, 2, **kwargs)  # every stage read back from outdir
    assert_derived(again.samples)
    np.testing.assert_array_equal(again.samples[DERIVED].to_numpy(), first.samples[DERIVED].to_numpy())
    assert again.ncall["total"] == first.ncall["total"]


def test_enhanced_run_refuses_outdir_of_other_derived(tmp_path):
    kwargs = dict(nlive=100, seed=0, names=NAMES, outdir=tmp_path / "run", grow_below=None)
    fp.enhanced_run(plain, PRIOR, 2, **kwargs)
    with pytest.raises(ValueError, match="derived_names"):
        fp.enhanced_run(like, PRIOR, 2, derived_names=DERIVED, **kwargs)


@pytest.mark.parametrize("vectorized", [False, True])
def test_reweight_keeps_derived(vectorized):
    fast = fp.run(lambda x: -0.5 * float(x @ x) / 0.012, PRIOR, 2, nlive=50, seed=0, names=NAMES)

    def vlike(x):
        r2 = np.sum(x * x, axis=1)
        return -0.5 * r2 / 0.01, np.column_stack([x[:, 0] + x[:, 1], r2])

    out = fp.reweight(fast, vlike if vectorized else like, target_neff=200, seed=1, derived_names=DERIVED,
                      vectorized=vectorized, progress=False)
    assert_derived(out.samples)


@pytest.mark.parametrize("value, match", [
    (1.0, r"must return \(logL, derived\) with 2 derived values"),
    ((1.0, [1.0]), "expected 2 real numbers"),
    ((1.0, ["x", "y"]), "expected 2 real numbers"),
    ((1.0, [np.nan, 1.0]), r"NaN for derived parameters \['s'\]"),
])
def test_bad_derived_values_are_named(value, match):
    checked = CheckedLikelihood(DerivedLikelihood(lambda x: value, DERIVED))
    with pytest.raises(ValueError, match=match):
        checked(np.zeros(2))


def test_nan_derived_allowed_at_excluded_points():
    checked = CheckedLikelihood(DerivedLikelihood(lambda x: (-np.inf, [np.nan, 1.0]), DERIVED))
    assert checked(np.zeros(2)) == -np.inf


def test_pair_without_derived_names_says_what_to_pass():
    with pytest.raises(ValueError, match="pass derived_names"):
        fp.run(like, PRIOR, 2, nlive=20, seed=0)


@pytest.mark.parametrize("derived, match", [
    (["a"], r"\['a'\] already name parameters"),
    (["logL"], "already name parameters or anesthetic's columns"),
    (["s", "s"], "names repeat"),
    ("s", "expected a list of non-empty strings"),
])
def test_bad_derived_names(derived, match):
    with pytest.raises(ValueError, match=match):
        fp.run(like, PRIOR, 2, nlive=20, seed=0, names=NAMES, derived_names=derived)


@pytest.fixture
def polychord():
    pytest.importorskip("pypolychord", reason="pypolychord is not on PyPI; build PolyChordLite to test it")


@pytest.mark.slow
def test_polychord_run_and_resume_keep_derived(polychord, tmp_path):
    res = fp.run(like, PRIOR, 2, sampler="polychord", nlive=50, seed=0, names=NAMES, derived_names=DERIVED)
    assert_derived(res.samples)
    kwargs = dict(sampler="polychord", nlive=100, seed=0, names=NAMES, derived_names=DERIVED,
                  outdir=tmp_path / "run")
    first = fp.enhanced_run(like, PRIOR, 2, **kwargs)
    again = fp.enhanced_run(like, PRIOR, 2, **kwargs)
    assert_derived(again.samples)
    np.testing.assert_array_equal(again.samples[DERIVED].to_numpy(), first.samples[DERIVED].to_numpy())


@pytest.mark.slow
def test_polychord_resumes_mid_run_with_derived(polychord, tmp_path):
    run = adapter("polychord").run
    like_d = DerivedLikelihood(like, DERIVED)
    run(like_d, PRIOR, 2, nlive=50, seed=0, names=NAMES, checkpoint=tmp_path, sampler_kwargs={"max_ndead": 60})
    resumed = run(like_d, PRIOR, 2, nlive=50, seed=0, names=NAMES, checkpoint=tmp_path)
    assert resumed.raw.resumed is not None
    assert_derived(resumed.samples)
