"""The PolyChord adapter (needs a pypolychord built from PolyChordLite's source)."""

import math
import shutil
import signal
import subprocess
import sys

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


def test_prior_draws_before_compressing_keep_the_evidence():
    # nprior > nlive: the extra prior draws die first with logzero births; PolyChord's evidence and
    # anesthetic's from the birth contours both count them (the enhanced run's high stage relies on it).
    res = fp.run(loglike, prior_transform, D, sampler="polychord", nlive=100, seed=2, names=NAMES,
                 sampler_kwargs={"nprior": 1000})
    assert abs(res.logZ - TRUTH) < 3 * res.logZerr
    assert res.samples.logZ() == pytest.approx(res.logZ, abs=res.logZerr)
    assert len(res.samples) >= 1000 and res.ncall["total"] >= 1000
    assert res.samples.nlive.iloc[0] >= 1000 and res.samples.nlive.iloc[-1] <= 100


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
    assert res.ncall["high"] >= 2000  # the high stage's high_prior * nlive draws of the flow
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
    # The interrupted run's calls, the failed one included; the resumed run's, less the three that
    # checked the checkpoint's live points (res.ncall["fingerprint"]).
    assert res.ncall["total"] == 6000 + len(rest) - res.ncall["fingerprint"] and res.ncall["fingerprint"] == 3
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


def test_likelihood_without_support_raises_instead_of_hanging():
    # PolyChord redraws initial points until nlive of them have logL above logzero:
    # with -inf everywhere it drew forever.  The adapter stops after 1000 nlive
    # draws without one valid point, as dynesty does.
    calls = []

    def nowhere(x):
        calls.append(1)
        if len(calls) > 200_000:  # the old behaviour: fail the test, not hang it
            raise RuntimeError("still drawing")
        return -np.inf

    with pytest.raises(ValueError, match=r"loglike was -inf .* at all 50000 prior draws"):
        fp.run(nowhere, prior_transform, D, sampler="polychord", nlive=50, seed=1)
    assert len(calls) == 50_000
    # Stopping leaves nothing behind that breaks the next run.
    res = fp.run(loglike, prior_transform, D, sampler="polychord", nlive=50, seed=1)
    assert abs(res.logZ - TRUTH) < 3 * res.logZerr


def test_sparse_support_is_not_mistaken_for_none():
    # One prior draw in 1 600 is valid: more invalid draws in all than the cap
    # (50 000), but the first valid one comes long before it.
    half = np.array([0.0125, 0.0125])  # half-widths of the support, in the hypercube

    def sparse(x):
        u = (x - LO) / (HI - LO)
        return loglike(x) if np.all(np.abs(u - (MU - LO) / (HI - LO)) < half) else -np.inf

    res = fp.run(sparse, prior_transform, D, sampler="polychord", nlive=50, seed=2)
    assert res.raw.prior_info["ndiscarded"] > 50_000
    # The Gaussian's mass inside the box (centred on its mean) over the prior volume.
    mass = np.prod([math.erf(h * (hi - lo) / (s * math.sqrt(2))) for h, lo, hi, s in zip(half, LO, HI, SIGMA)])
    assert abs(res.logZ - (TRUTH + math.log(mass))) < 3 * res.logZerr


@pytest.fixture(scope="module")
def finished_checkpoint(tmp_path_factory):
    """A checkpoint directory of a finished 2-D run, and that run's Result."""
    from flowprior.integrations import polychord

    path = tmp_path_factory.mktemp("finished") / "cp"
    res = polychord.run(loglike, prior_transform, D, nlive=50, seed=6, checkpoint=path)
    return path, res


@pytest.mark.parametrize("keep", [0.0, 0.002, 0.3, 0.5, 0.97])
def test_cut_short_resume_file_is_an_error_naming_it(finished_checkpoint, tmp_path, keep):
    # PolyChord reads a cut-short resume file to its end and stops the whole
    # process ("End of file", exit 2); the adapter checks the file first.
    from flowprior.integrations import polychord

    source, _ = finished_checkpoint
    cp = tmp_path / "cp"
    shutil.copytree(source, cp)
    resume = cp / "stage.resume"
    text = resume.read_bytes()
    cut = int(keep * len(text))
    if keep == 0.5:
        cut = text.index(b"\n", cut) + 1  # whole lines missing, the last one ends cleanly
    resume.write_bytes(text[:cut])
    with pytest.raises(ValueError, match=rf"{resume}.*delete it"):
        polychord.run(loglike, prior_transform, D, nlive=50, seed=6, checkpoint=cp)
    assert resume.read_bytes() == text[:cut]  # left as it was, for the user to look at


def test_resume_file_of_another_problem_is_an_error(finished_checkpoint):
    # PolyChord stops the process on a resume file with other dimensions.
    from flowprior.integrations import polychord

    source, _ = finished_checkpoint
    with pytest.raises(ValueError, match=r"stage.resume.*nDims 2.*3"):
        polychord.run(lambda x: 0.0, lambda u: u, 3, nlive=50, seed=6, checkpoint=source)


def test_rerun_of_a_finished_checkpoint_returns_its_result(finished_checkpoint):
    from flowprior.integrations import polychord

    path, first = finished_checkpoint
    calls = []

    def counting(x):
        calls.append(1)
        return loglike(x)

    again = polychord.run(counting, prior_transform, D, nlive=50, seed=6, checkpoint=path)
    # Only the checkpoint's best live points are evaluated again, to check the functions.
    assert len(calls) == again.ncall["fingerprint"] == 3
    assert again.logZ == first.logZ and again.ncall["total"] == first.ncall["total"]
    np.testing.assert_array_equal(again.samples_u, first.samples_u)


def test_resume_with_another_likelihood_is_an_error(finished_checkpoint):
    from flowprior.integrations import polychord

    path, _ = finished_checkpoint
    with pytest.raises(ValueError, match=r"checkpoint .*stage.resume: loglike gives other values"):
        polychord.run(lambda x: loglike(x) + 1e-3, prior_transform, D, nlive=50, seed=6, checkpoint=path)


def test_resume_file_changed_after_it_was_written_is_an_error(finished_checkpoint, tmp_path):
    # One digit of a dead point changed: a valid file, but not the one PolyChord wrote.
    import shutil

    from flowprior.integrations import polychord

    source, _ = finished_checkpoint
    path = tmp_path / "cp"
    shutil.copytree(source, path)
    resume = path / "stage.resume"
    lines = resume.read_text().split("\n")
    i = next(k for k, line in enumerate(lines) if line.startswith("=== dead")) + 2
    digit = lines[i].index("E") - 1
    lines[i] = lines[i][:digit] + ("1" if lines[i][digit] != "1" else "2") + lines[i][digit + 1:]
    resume.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"stage.resume: not the resume file PolyChord last wrote here"):
        polychord.run(loglike, prior_transform, D, nlive=50, seed=6, checkpoint=path)


KILLED_CHILD = """
import os, signal, sys
import numpy as np
from flowprior.integrations import polychord

checkpoint, log, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
mu, sigma, lo, hi = (np.array(v) for v in {constants})
fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)


def loglike(x):
    os.write(fd, b".")  # one byte per call, on disk whatever happens next
    if os.fstat(fd).st_size == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    r = (x - mu) / sigma
    return -0.5 * r @ r - np.sum(np.log(sigma * np.sqrt(2 * np.pi)))


polychord.run(loglike, lambda u: lo + (hi - lo) * u, 2, nlive=50, seed=5, checkpoint=checkpoint,
              sampler_kwargs={{"num_repeats": 4}})
"""


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """A checkpoint of a run SIGKILLed at its 6 000th call (num_repeats 4), and the calls it made."""
    tmp = tmp_path_factory.mktemp("killed")
    constants = repr([MU.tolist(), SIGMA.tolist(), LO.tolist(), HI.tolist()])
    log, cp = tmp / "calls.log", tmp / "cp"
    proc = subprocess.run([sys.executable, "-c", KILLED_CHILD.format(constants=constants), str(cp), str(log), "6000"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert (cp / "stage.resume").exists()
    return cp, log.stat().st_size


def _resume_copy(source, copy, like=loglike):
    """Resume the killed run from a copy of its checkpoint directory."""
    from flowprior.integrations import polychord

    shutil.copytree(source, copy)
    return polychord.run(like, prior_transform, D, nlive=50, seed=5, checkpoint=copy,
                         sampler_kwargs={"num_repeats": 4})


def test_resume_after_a_kill_counts_every_call(killed, tmp_path):
    source, before = killed
    assert before == 6000
    rest = []

    def counting(x):
        rest.append(1)
        return loglike(x)

    res = _resume_copy(source, tmp_path / "a", counting)
    # Every call of the user's function counts: the killed process's, those
    # after its last resume file included, and the resumed run's (less the checkpoint's check).
    assert res.ncall["total"] == before + len(rest) - res.ncall["fingerprint"]
    assert res.raw.resumed == {"ncall": before, "counted_by": "flowprior"}
    assert abs(res.logZ - TRUTH) < 3 * res.logZerr
    # A resume is reproducible: the same resume file and seed give the same run ...
    again = _resume_copy(source, tmp_path / "b")
    assert again.logZ == res.logZ and again.ncall == res.ncall
    np.testing.assert_array_equal(again.samples_u, res.samples_u)
    # ... but not the uninterrupted run: PolyChord's resume file holds no random state.
    from flowprior.integrations import polychord

    whole = polychord.run(loglike, prior_transform, D, nlive=50, seed=5, sampler_kwargs={"num_repeats": 4})
    assert whole.logZ != res.logZ


def test_resume_without_the_call_count_carries_polychords_own(killed, tmp_path):
    source, before = killed
    shutil.copytree(source, tmp_path / "source")
    (tmp_path / "source" / "stage.ncall").unlink()
    with pytest.warns(UserWarning, match="stage.ncall"):
        res = _resume_copy(tmp_path / "source", tmp_path / "c")
    # PolyChord's count stops at its last resume file and skips nothing valid here.
    assert 0 < res.raw.resumed["ncall"] < before and res.raw.resumed["counted_by"] == "polychord"
    assert res.ncall["total"] > res.raw.resumed["ncall"]
    assert abs(res.logZ - TRUTH) < 3 * res.logZerr


def test_counts_the_users_calls_a_wrapper_reports():
    # A likelihood that keeps ``user_calls`` (the enhanced run's repartitioned
    # one) reports how often it called the user's function: points it answers
    # -inf without calling it do not count.
    class Gate:
        def __init__(self):
            self.user_calls = self.skipped = 0

        def __call__(self, x):
            if x[0] > 0.75:
                self.skipped += 1
                return -np.inf
            self.user_calls += 1
            return loglike(x)

    gate = Gate()
    res = fp.run(gate, prior_transform, D, sampler="polychord", nlive=50, seed=9)
    assert gate.skipped > 0
    assert res.ncall["total"] == gate.user_calls


def test_enhanced_run_counts_the_users_calls():
    # A posterior at the edge of the prior: the flow prior puts mass outside
    # the cube, where the high stage's likelihood is -inf without a call of
    # the user's function (those points were counted: 4 034 reported, 3 729 made).
    calls = []
    edge = np.array([0.02, 0.5])

    def counting(x):
        calls.append(1)
        r = (x - edge) / SIGMA
        return -0.5 * r @ r

    res = fp.enhanced_run(counting, prior_transform, D, sampler="polychord", nlive=100, nlive_low=30, seed=3)
    assert res.ncall["total"] == len(calls)
