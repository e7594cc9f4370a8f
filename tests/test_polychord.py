"""The PolyChord adapter (needs a pypolychord built from PolyChordLite's source)."""

import numpy as np
import pytest

import flowprior as fp

pytest.importorskip(
    "pypolychord",
    reason="pypolychord is not installed: it is not on PyPI; build it from PolyChordLite's source "
           "(see integrations/polychord.py)",
)

D = 2
MU = np.array([0.4, 0.5])
SIGMA = np.array([0.05, 0.08])
LO, HI = np.array([0.0, -1.0]), np.array([1.0, 2.0])
TRUTH = -np.sum(np.log(HI - LO))  # a normalised Gaussian well inside the box
NAMES = ["a", "b"]


def loglike(x):
    r = (x - MU) / SIGMA
    return -0.5 * r @ r - np.sum(np.log(SIGMA * np.sqrt(2 * np.pi)))


def prior_transform(u):
    return LO + (HI - LO) * u


@pytest.fixture(scope="module")
def plain():
    return fp.run(loglike, prior_transform, D, sampler="polychord", nlive=100, seed=1, names=NAMES)


def test_plain_run_matches_analytic_evidence(plain):
    res = plain
    assert res.sampler == "polychord"
    assert abs(res.logZ - TRUTH) < 3 * res.logZerr
    # anesthetic's evidence from the same dead points agrees with PolyChord's.
    assert res.samples.logZ() == pytest.approx(res.logZ, abs=3 * res.logZerr)


def test_samples_are_physical_named_and_match_the_hypercube(plain):
    res = plain
    theta = res.samples[NAMES].to_numpy()
    assert list(res.samples.drop_labels().columns[:D]) == NAMES
    assert res.samples_u.shape == theta.shape
    assert np.all((res.samples_u >= 0) & (res.samples_u <= 1))
    # The same points in both coordinates (the files carry 15 significant digits).
    np.testing.assert_allclose(theta, prior_transform(res.samples_u), rtol=1e-12, atol=1e-12)
    w = res.samples.get_weights()
    neff = w.sum() ** 2 / (w**2).sum()
    mean = np.average(theta, axis=0, weights=w)
    assert np.all(np.abs(mean - MU) < 4 * SIGMA / np.sqrt(neff) + 1e-3)


def test_counts_likelihood_calls(plain):
    assert plain.ncall["total"] > 0
    assert plain.ncall["total"] == plain.raw.ncall
    # PolyChord's own count (points above logzero) is close to ours.
    assert abs(plain.raw.nlike - plain.ncall["total"]) <= 0.01 * plain.ncall["total"]
    assert isinstance(plain.raw.version, str)


def test_default_columns_are_integers():
    res = fp.run(loglike, prior_transform, D, sampler="polychord", nlive=50, seed=5)
    assert list(res.samples.drop_labels().columns[:D]) == [0, 1]


def test_nan_likelihood_raises_value_error_naming_the_point():
    def bad(x):
        return float("nan") if x[0] > 0.5 else loglike(x)

    with pytest.raises(ValueError, match=r"loglike returned nan at theta=\["):
        fp.run(bad, prior_transform, D, sampler="polychord", nlive=50, seed=2)


def test_prior_exception_is_raised_not_swallowed():
    def broken(u):
        raise RuntimeError("prior exploded")

    with pytest.raises(RuntimeError, match="prior exploded"):
        fp.run(loglike, broken, D, sampler="polychord", nlive=50, seed=3)


def test_run_after_a_failed_run_still_works():
    # An exception escaping into PolyChord used to break the next run in the process.
    calls = []

    def flaky(x):
        calls.append(1)
        if len(calls) == 200:  # fail mid-run, after the live points exist
            raise KeyError("late failure")
        return loglike(x)

    with pytest.raises(KeyError, match="late failure"):
        fp.run(flaky, prior_transform, D, sampler="polychord", nlive=50, seed=4)
    res = fp.run(loglike, prior_transform, D, sampler="polychord", nlive=50, seed=4)
    assert abs(res.logZ - TRUTH) < 3 * res.logZerr


def test_consecutive_runs_are_independent():
    # Same settings, different seeds: a resumed old run would repeat the first result.
    a = fp.run(loglike, prior_transform, D, sampler="polychord", nlive=50, seed=10)
    b = fp.run(loglike, prior_transform, D, sampler="polychord", nlive=50, seed=11)
    assert a.logZ != b.logZ
    assert not np.array_equal(a.samples_u[:50], b.samples_u[:50])
    # A different problem in the same process is not answered by the previous run either.
    shifted = fp.run(lambda x: loglike(x - 0.1), prior_transform, D, sampler="polychord", nlive=50, seed=10)
    mean = np.average(shifted.samples[[0, 1]].to_numpy(), axis=0, weights=shifted.samples.get_weights())
    assert np.all(np.abs(mean - (MU + 0.1)) < 0.03)


def test_same_seed_same_run():
    a = fp.run(loglike, prior_transform, D, sampler="polychord", nlive=50, seed=7)
    b = fp.run(loglike, prior_transform, D, sampler="polychord", nlive=50, seed=7)
    assert a.logZ == b.logZ
    np.testing.assert_array_equal(a.samples_u, b.samples_u)


def test_user_base_dir_keeps_files_and_never_resumes(tmp_path):
    kw = dict(sampler="polychord", nlive=50, sampler_kwargs={"base_dir": str(tmp_path), "file_root": "r"})
    a = fp.run(loglike, prior_transform, D, seed=20, **kw)
    assert (tmp_path / "r.stats").exists() and a.raw.files == str(tmp_path / "r")
    b = fp.run(loglike, prior_transform, D, seed=21, **kw)
    assert a.logZ != b.logZ


def test_rejects_pool_and_unknown_settings():
    with pytest.raises(ValueError, match="MPI"):
        fp.run(loglike, prior_transform, D, sampler="polychord", nlive=50, pool=object())
    with pytest.raises(ValueError, match="unknown PolyChord setting 'nlive_typo'"):
        fp.run(loglike, prior_transform, D, sampler="polychord", nlive=50, sampler_kwargs={"nlive_typo": 3})
    with pytest.raises(ValueError, match="nlive="):
        fp.run(loglike, prior_transform, D, sampler="polychord", nlive=50, sampler_kwargs={"nlive": 3})
    with pytest.raises(ValueError, match="both"):
        fp.run(loglike, prior_transform, D, sampler="polychord", nlive=50, sampler_kwargs={"num_repeats": 3},
               run_kwargs={"num_repeats": 4})


def test_enhanced_run_matches_analytic_evidence():
    res = fp.enhanced_run(loglike, prior_transform, D, sampler="polychord", nlive=100, nlive_low=30, seed=3,
                          names=NAMES)
    assert abs(res.logZ - TRUTH) < 3 * res.logZerr
    assert res.ncall["total"] == res.ncall["low"] + res.ncall["check"] + res.ncall["high"]
    theta = res.samples[NAMES].to_numpy()
    np.testing.assert_allclose(theta, prior_transform(res.samples_u), rtol=1e-10, atol=1e-10)


def test_enhanced_run_takes_polychord_settings_from_run_kwargs():
    """PolyChord has one settings object: the stages' defaults must not clash with the user's run_kwargs."""
    res = fp.enhanced_run(loglike, prior_transform, D, sampler="polychord", nlive=100, nlive_low=20, seed=4,
                          run_kwargs={"num_repeats": 2, "precision_criterion": 0.01})
    assert abs(res.logZ - TRUTH) < 3 * res.logZerr


def test_excluded_points_keep_the_full_prior_evidence():
    # PolyChord redraws prior points with logL = -inf, so its own logZ is that of
    # the prior restricted to the allowed region; the adapter corrects it with
    # the fraction of valid initial draws (raw.prior_info), as dynesty counts it.
    def cut(x):
        return -np.inf if x[0] > 0.75 else loglike(x)

    res = fp.run(cut, prior_transform, D, sampler="polychord", nlive=100, seed=8)
    info = res.raw.prior_info
    assert info["nprior"] == 100 and info["ndiscarded"] > info["nprior"]
    p = info["nprior"] / info["ndiscarded"]
    assert res.logZ == pytest.approx(res.raw.logZ + np.log(p), abs=1e-12)
    assert res.logZerr > res.raw.logZerr
    assert abs(res.logZ - TRUTH) < 3 * res.logZerr  # the cut holds no likelihood mass
    assert abs(res.raw.logZ - np.log(1 / 0.75) - TRUTH) < 3 * res.logZerr  # uncorrected: over 3/4 of the prior
    assert res.ncall["total"] > res.raw.nlike  # PolyChord's nlike skips the -inf points


def test_version():
    from flowprior.integrations import polychord

    import pypolychord

    assert polychord.version() == pypolychord.__version__


def test_marginal_likelihood_as_polychord_loglike():
    # A nuisance-free likelihood is a plain callable: PolyChord integrates it
    # back to the evidence it was built with.
    post = fp.GaussianPrior(MU, np.diag(SIGMA**2), names=NAMES)
    box = fp.UniformPrior(np.stack([LO, HI], axis=1), names=NAMES)
    like = fp.MarginalLikelihood(post, box, logZ=-2.0)
    res = fp.run(like, box, D, sampler="polychord", nlive=100, seed=3, names=like.names_)
    assert abs(res.logZ + 2.0) < 3 * res.logZerr


def test_checkpoint_resumes_after_an_interruption(tmp_path):
    calls = []

    def cut(x):
        calls.append(1)
        if len(calls) == 6000:  # after PolyChord has written a resume file
            raise KeyboardInterrupt
        return loglike(x)

    kw = dict(sampler_kwargs={"num_repeats": 4}, checkpoint=tmp_path / "cp")
    from flowprior.integrations import polychord

    whole = polychord.run(loglike, prior_transform, D, nlive=50, seed=5, sampler_kwargs={"num_repeats": 4})
    with pytest.raises(KeyboardInterrupt):
        polychord.run(cut, prior_transform, D, nlive=50, seed=5, **kw)
    resume = tmp_path / "cp" / "stage.resume"
    # The resume file is the last one written before the interruption, not
    # the one PolyChord wrote while being steered to a stop.
    assert resume.exists() and not (tmp_path / "cp" / "stage.resume.good").exists()
    rest = []

    def counting(x):
        rest.append(1)
        return loglike(x)

    res = polychord.run(counting, prior_transform, D, nlive=50, seed=5, **kw)
    assert 0 < len(rest) < whole.ncall["total"] - 3000
    assert abs(res.logZ - TRUTH) < 3 * res.logZerr
    mean = np.average(res.samples[[0, 1]].to_numpy(), axis=0, weights=res.samples.get_weights())
    assert np.all(np.abs(mean - MU) < 4 * SIGMA / np.sqrt(res.samples.neff()))


def test_checkpoint_excludes_own_output_settings(tmp_path):
    from flowprior.integrations import polychord

    with pytest.raises(ValueError, match="base_dir"):
        polychord.run(loglike, prior_transform, D, nlive=50, seed=5, checkpoint=tmp_path,
                      sampler_kwargs={"base_dir": str(tmp_path)})


def test_enhanced_run_outdir_keeps_polychord_checkpoints(tmp_path):
    res = fp.enhanced_run(loglike, prior_transform, D, sampler="polychord", nlive=60, nlive_low=20, seed=3,
                          outdir=tmp_path)
    assert (tmp_path / "low.polychord" / "stage.resume").exists()
    assert (tmp_path / "high.polychord" / "stage.resume").exists()
    again = fp.enhanced_run(loglike, prior_transform, D, sampler="polychord", nlive=60, nlive_low=20, seed=3,
                            outdir=tmp_path)
    assert again.logZ == res.logZ


def test_reweight_a_polychord_run_to_a_slow_likelihood(plain):
    # L_B: mean moved by about half a sigma, widths x 0.8, total e^-1.5; still many sigma inside the box.
    mu_b, sigma_b, shift_b = MU + np.array([0.03, -0.04]), 0.8 * SIGMA, -1.5

    def slow(x):
        r = (x - mu_b) / sigma_b
        return -0.5 * r @ r - np.sum(np.log(sigma_b * np.sqrt(2 * np.pi))) + shift_b

    rw = fp.reweight(plain, slow, target_neff=300, max_calls=3000, seed=0, batch_size=200, progress=False)
    assert rw.stopped == "target_neff" and rw.neff >= 300 and rw.ncall <= 3000
    assert abs(rw.logZ - (TRUTH + shift_b)) < 3 * rw.logZerr
    assert set(rw.parts) == {"existing", "flow"}
    theta = rw.samples[NAMES].to_numpy()
    mean = np.average(theta, axis=0, weights=rw.samples.get_weights())
    assert np.all(np.abs(mean - mu_b) < 4 * sigma_b / np.sqrt(rw.neff))
    np.testing.assert_allclose(rw.samples["logL"].to_numpy()[:5], [slow(p) for p in theta[:5]])
