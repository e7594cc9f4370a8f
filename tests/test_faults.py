"""Faults never give an old or half-read answer: reused outdirs, corrupt and raced files, two processes at once."""

import multiprocessing as mp
import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import flowprior as fp
from flowprior.workflows import fingerprint
from flowprior.workflows import stages
from flowprior.workflows.lock import OutdirInUse, OutdirLock

pytest.importorskip("dynesty", reason="dynesty is not installed")

D = 2
MU = np.array([0.45, 0.55])


def loglike_a(x):
    r = (x - MU) / 0.08
    return -0.5 * float(r @ r)


def loglike_b(x):
    r = (x - MU - 0.1) / 0.05
    return -0.5 * float(r @ r)


def prior_transform(u):
    return np.asarray(u, dtype=float)


def other_prior(u):
    return 0.9 * np.asarray(u, dtype=float)


class Counting:
    def __init__(self, loglike):
        self.loglike, self.calls = loglike, 0

    def __call__(self, x):
        self.calls += 1
        return self.loglike(x)


class FailsAfter:
    """A likelihood that raises after ``n`` calls: an interruption inside a stage."""

    def __init__(self, loglike, n):
        self.loglike, self.n, self.calls = loglike, n, 0

    def __call__(self, x):
        self.calls += 1
        if self.calls > self.n:
            raise RuntimeError("interrupted")
        return self.loglike(x)


class Narrow:
    """A Gaussian likelihood cut to a strip that misses problem.json's fixed points."""

    def __init__(self, shift):
        self.shift = shift

    def __call__(self, x):
        r = (x - MU - self.shift) / 0.05
        return -0.5 * float(r @ r) if abs(x[0] - 0.45) < 0.04 else -np.inf


class EditedAwayFromFixedPoints:
    """``loglike_a`` at problem.json's fixed points, 0.001 above it elsewhere (picklable, for checkpoints)."""

    def __call__(self, x):
        fixed = fingerprint.fixed_points(D)
        return loglike_a(x) + (0.0 if np.isclose(fixed, x).all(axis=1).any() else 1e-3)


SETTINGS = dict(nlive=100, nlive_low=20, seed=3)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("finished") / "run"
    res = fp.enhanced_run(loglike_a, prior_transform, D, outdir=outdir, **SETTINGS)
    return outdir, res


@pytest.mark.parametrize("loglike, prior, function", [(loglike_b, prior_transform, "loglike"),
                                                      (loglike_a, other_prior, "prior_transform")])
def test_a_finished_outdir_refuses_another_problem(finished, loglike, prior, function):
    outdir, _ = finished
    with pytest.raises(ValueError, match=rf"problem.json: {function} gives other values.*use a new outdir"):
        fp.enhanced_run(loglike, prior, D, outdir=outdir, **SETTINGS)


def test_the_same_problem_reuses_a_finished_outdir(finished):
    outdir, first = finished
    again = fp.enhanced_run(loglike_a, prior_transform, D, outdir=outdir, **SETTINGS)
    assert again.logZ == first.logZ and again.ncall["fingerprint"] == 6


def test_stage_files_are_checked_where_the_posterior_is(tmp_path):
    # -inf at the fixed points, so only the low stage's best points tell the two apart.
    outdir = tmp_path / "run"
    fp.enhanced_run(Narrow(0.0), prior_transform, D, outdir=outdir, grow_below=None, **SETTINGS)
    (outdir / "high.npz").unlink()
    with pytest.raises(ValueError, match=r"low.npz: loglike gives other values"):
        fp.enhanced_run(Narrow(0.01), prior_transform, D, outdir=outdir, grow_below=None, **SETTINGS)


def test_a_checkpoint_refuses_another_likelihood(tmp_path):
    settings = dict(SETTINGS, run_kwargs={"checkpoint_every": 0})
    with pytest.raises(RuntimeError, match="interrupted"):
        fp.enhanced_run(FailsAfter(loglike_a, 300), prior_transform, D, outdir=tmp_path / "cut", **settings)
    assert (tmp_path / "cut" / "low.dynesty").exists() and not (tmp_path / "cut" / "low.npz").exists()
    # Same values at problem.json's points, other values at the checkpoint's live points.
    with pytest.raises(ValueError, match=r"low.dynesty: loglike gives other values"):
        fp.enhanced_run(EditedAwayFromFixedPoints(), prior_transform, D, outdir=tmp_path / "cut", **settings)


def test_a_killed_stage_resumes_with_every_call_counted(tmp_path):
    settings = dict(SETTINGS, run_kwargs={"checkpoint_every": 0})
    whole = fp.enhanced_run(loglike_a, prior_transform, D, **settings)
    cut = FailsAfter(loglike_a, whole.ncall["low"] + whole.ncall["check"] + whole.ncall["high"] // 2)
    with pytest.raises(RuntimeError, match="interrupted"):
        fp.enhanced_run(cut, prior_transform, D, outdir=tmp_path / "cut", **settings)
    counter = Counting(loglike_a)
    resumed = fp.enhanced_run(counter, prior_transform, D, outdir=tmp_path / "cut", **settings)
    keys = ("low", "check", "high", "total")
    assert resumed.logZ == whole.logZ
    assert [resumed.ncall[k] for k in keys] == [whole.ncall[k] for k in keys]
    # The resumed process made only the rest of the high stage, plus the fingerprint's calls.
    assert 0 < counter.calls - resumed.ncall["fingerprint"] < whole.ncall["high"]


def test_settings_are_checked_before_anything_is_written(tmp_path):
    outdir = tmp_path / "run"
    with pytest.raises(ValueError, match=r"sampler_kwargs: unknown dynesty setting 'bootstap'"):
        fp.enhanced_run(loglike_a, prior_transform, D, outdir=outdir, sampler_kwargs={"bootstap": 0}, **SETTINGS)
    with pytest.raises(ValueError, match=r"run_kwargs: unknown dynesty setting 'dlgz'"):
        fp.enhanced_run(loglike_a, prior_transform, D, outdir=outdir, run_kwargs={"dlgz": 0.5}, **SETTINGS)
    assert not outdir.exists()
    # An outdir that holds no stage yet takes new settings.
    stages.check_config(outdir, {"seed": 99}, loglike_a, prior_transform, D)
    res = fp.enhanced_run(loglike_a, prior_transform, D, outdir=outdir, sampler_kwargs={"bootstrap": 0}, **SETTINGS)
    assert np.isfinite(res.logZ)


def test_a_numpy_integer_seed_matches_a_stored_int(finished):
    outdir, first = finished
    again = fp.enhanced_run(loglike_a, prior_transform, D, outdir=outdir, **{**SETTINGS, "seed": np.int64(3)})
    assert again.logZ == first.logZ
    for bad in (3.5, -1, True, "3"):
        with pytest.raises(ValueError, match="seed: expected a non-negative integer"):
            fp.run(loglike_a, prior_transform, D, nlive=50, seed=bad)
    # A SeedSequence works as it does for numpy's default_rng.
    one, two = (fp.run(loglike_a, prior_transform, D, nlive=50, seed=np.random.SeedSequence(7)) for _ in range(2))
    assert one.logZ == two.logZ


@pytest.mark.parametrize("names, message", [(["a"], "expected 2 names"), (["a", "a"], "duplicates")])
def test_bad_names_fail_before_any_call(names, message):
    counter = Counting(loglike_a)
    with pytest.raises(ValueError, match=f"names: {message}"):
        fp.run(counter, prior_transform, D, nlive=50, seed=1, names=names)
    with pytest.raises(ValueError, match=f"names: {message}"):
        fp.enhanced_run(counter, prior_transform, D, nlive=100, seed=1, names=names)
    assert counter.calls == 0


def test_too_few_live_points_fail_before_any_call():
    counter = Counting(loglike_a)
    with pytest.raises(ValueError, match=r"nlive: .* expected nlive >= 25, got 10 \(or pass nlive_low\)"):
        fp.enhanced_run(counter, prior_transform, D, nlive=10, seed=1)
    with pytest.raises(ValueError, match=r"nlive_low: expected at least 5 live points"):
        fp.enhanced_run(counter, prior_transform, D, nlive=100, nlive_low=3, seed=1)
    # An MCMC low stage needs more live points than dimensions (dynesty's walks here, PolyChord's slices).
    with pytest.raises(ValueError, match=r"nlive_low: .* expected at least ndim \+ 1 = 13, got 12$"):
        fp.enhanced_run(counter, lambda u: u, 12, nlive=100, nlive_low=12, seed=1)
    with pytest.raises(ValueError, match=r"ndim \+ 1 = 31, got 25 \(the cap at nlive 100; pass a larger nlive\)"):
        fp.enhanced_run(counter, lambda u: u, 30, nlive=100, seed=1)
    assert counter.calls == 0


@pytest.mark.parametrize("stage", ["low.npz", "high.npz", "check.npz", "flow.flow", "checks.json", "config.json",
                                   "problem.json"])
def test_a_corrupt_stage_file_is_named(tmp_path, finished, stage):
    import shutil

    outdir = tmp_path / "run"
    shutil.copytree(finished[0], outdir)
    data = bytearray((outdir / stage).read_bytes())
    (outdir / stage).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"{stage}: (unreadable|not a flowprior|corrupt)"):
        fp.enhanced_run(loglike_a, prior_transform, D, outdir=outdir, **SETTINGS)


@pytest.mark.parametrize("damage", ["truncated", "bit flip"])
def test_a_corrupt_dynesty_checkpoint_is_named(tmp_path, damage):
    settings = dict(SETTINGS, run_kwargs={"checkpoint_every": 0})
    with pytest.raises(RuntimeError, match="interrupted"):
        fp.enhanced_run(FailsAfter(loglike_a, 300), prior_transform, D, outdir=tmp_path / "cut", **settings)
    path = tmp_path / "cut" / "low.dynesty"
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[:1000]
    else:  # in the arrays' bytes, which unpickle to another state without a checksum
        data[int(0.8 * len(data))] ^= 0x04
    path.write_bytes(data)
    with pytest.raises(ValueError, match=r"low.dynesty: unreadable dynesty save file .* delete it"):
        fp.enhanced_run(loglike_a, prior_transform, D, outdir=tmp_path / "cut", **settings)


def test_an_outdir_in_use_is_refused(tmp_path):
    outdir = tmp_path / "run"
    with OutdirLock(outdir):
        with pytest.raises(OutdirInUse, match=rf"in use by process {os.getpid()}"):
            fp.enhanced_run(loglike_a, prior_transform, D, outdir=outdir, **SETTINGS)
    # Another process holding it is named; a killed holder leaves no stale lock.
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from flowprior.workflows.lock import OutdirLock
        OutdirLock({str(outdir)!r}).acquire()
        print("held", flush=True)
        time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutdirInUse, match=rf"in use by process {holder.pid}"):
            fp.enhanced_run(loglike_a, prior_transform, D, outdir=outdir, **SETTINGS)
    finally:
        holder.kill()
        holder.wait()
    res = fp.enhanced_run(loglike_a, prior_transform, D, outdir=outdir, **SETTINGS)
    assert np.isfinite(res.logZ)


# ------------------------------------------------------------------ flow files
def _tiny_flow(seed):
    x = np.random.default_rng(seed).normal(size=(300, 2))
    return fp.MAF(n_transforms=1, hidden_features=(8,), max_epochs=3, progress=False, seed=seed).fit(x)


def test_every_bit_flip_in_a_flow_file_is_refused(tmp_path):
    path = tmp_path / "a.flow"
    _tiny_flow(0).save(path)
    data = path.read_bytes()
    rng = random.Random(0)
    for _ in range(60):
        flipped = bytearray(data)
        pos = rng.randrange(len(data))
        flipped[pos] ^= 1 << rng.randrange(8)
        path.write_bytes(flipped)
        with pytest.raises(ValueError, match=r"a.flow: (corrupt|not a flowprior)"):
            fp.load(path)


def test_saved_flows_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        _tiny_flow(0).save(tmp_path / "a.flow")
    finally:
        os.umask(old)
    assert (tmp_path / "a.flow").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["a.flow"]  # no temporary file left


def _save_loop(path, seeds, n):
    flows = [_tiny_flow(s) for s in seeds]
    for i in range(n):
        flows[i % 2].save(path)


def test_loads_racing_saves_see_one_whole_file(tmp_path):
    path = tmp_path / "raced.flow"
    flows = [_tiny_flow(1), _tiny_flow(2)]
    flows[0].save(path)
    x = np.random.default_rng(5).normal(size=(20, 2))
    expected = [f.log_prob(x) for f in flows]
    ctx = mp.get_context("spawn")
    writers = [ctx.Process(target=_save_loop, args=(path, (1, 2), 150)) for _ in range(2)]
    for w in writers:
        w.start()
    loads = 0
    try:
        while any(w.is_alive() for w in writers):
            got = fp.load(path).log_prob(x)
            assert any(np.array_equal(got, e) for e in expected)
            loads += 1
    finally:
        for w in writers:
            w.join()
    assert all(w.exitcode == 0 for w in writers) and loads > 10
    assert [p.name for p in tmp_path.iterdir()] == ["raced.flow"]


@pytest.mark.parametrize("stage", ["checks.json", "config.json", "problem.json"])
def test_a_json_stage_file_edited_into_other_valid_values_is_refused(tmp_path, finished, stage):
    import re
    import shutil

    outdir = tmp_path / "run"
    shutil.copytree(finished[0], outdir)
    text = (outdir / stage).read_text()
    digit = re.search(r"\d", text[:text.index('"sha256"')])  # the first digit of a number in the data
    (outdir / stage).write_text(text[:digit.start()] + str((int(digit.group()) + 1) % 10) + text[digit.end():])
    with pytest.raises(ValueError, match=rf"{stage}: corrupt .* \(checksum mismatch"):
        fp.enhanced_run(loglike_a, prior_transform, D, outdir=outdir, **SETTINGS)


def test_a_file_system_without_locks_warns_and_runs(tmp_path, monkeypatch):
    import errno
    import fcntl

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.warns(UserWarning, match=r"cannot be locked on this file system .*No locks available"):
        with OutdirLock(tmp_path / "run"):
            pass
