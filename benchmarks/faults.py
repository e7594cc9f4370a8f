"""Fault injection: an enhanced run killed at each stage, its files corrupted, its outdir shared.

Every row says what happened after the fault: the resumed run's evidence
against the uninterrupted run's (bit-identical or not, and its pull against
the closed-form evidence), or the error it raised.  A wrong answer shows as
"WRONG" in the table.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/faults.py [--sampler polychord] [--workdir /tmp/faults]

Figures: benchmarks/RESULTS.md, section "Fault injection".
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import flowprior as fp

D = 3
MU = np.array([0.4, 0.5, 0.6])
SIGMA = np.array([0.03, 0.05, 0.04])
TRUTH = 0.0  # a normalised Gaussian well inside the unit cube
SETTINGS = dict(nlive=200, nlive_low=40, seed=3)
#: Each sampler checkpoints as often as it can: dynesty at every iteration, PolyChord at its default.
CHECKPOINTS = {"dynesty": {"run_kwargs": {"checkpoint_every": 0}}, "polychord": {}}


def loglike(x):
    r = (np.asarray(x) - MU) / SIGMA
    return -0.5 * float(r @ r) - float(np.sum(np.log(SIGMA * np.sqrt(2 * np.pi))))


def edited_loglike(x):
    return loglike(x) + 0.5


def prior_transform(u):
    return np.asarray(u, dtype=float)


class KillAfter:
    """``loglike`` that SIGKILLs its own process at call ``n + 1`` (picklable, for checkpoints)."""

    def __init__(self, n: int):
        self.n, self.calls = n, 0

    def __call__(self, x):
        self.calls += 1
        if self.calls > self.n:
            os.kill(os.getpid(), signal.SIGKILL)
        return loglike(x)


def run(outdir, sampler: str, like=loglike):
    return fp.enhanced_run(like, prior_transform, D, sampler=sampler, outdir=outdir, **SETTINGS,
                           **CHECKPOINTS[sampler])


def child(args) -> None:
    """The process that is killed: an enhanced run with a kill after ``--kill-after`` calls or seconds."""
    like = loglike
    if args.kill_after_calls is not None:
        like = KillAfter(args.kill_after_calls)
    if args.kill_after_seconds is not None:
        threading.Timer(args.kill_after_seconds, os.kill, (os.getpid(), signal.SIGKILL)).start()
    try:
        res = run(args.child, args.sampler, like)
        print(f"finished {res.logZ!r}", flush=True)
    except fp.OutdirInUse as err:
        print(f"refused {err}", flush=True)
    os._exit(0)


def spawn(outdir, sampler: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--child", str(outdir), "--sampler", sampler, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def _stages_done(outdir: Path) -> str:
    """Which stage files and sampler checkpoints a killed run left."""
    names = sorted(p.name for p in outdir.iterdir() if p.suffix in (".npz", ".flow", ".dynesty", ".polychord"))
    return " ".join(names) or "no stage file"


def _said(proc: subprocess.Popen) -> list[str]:
    """What a child reported ("finished", "refused"), among anything the sampler printed."""
    out, _ = proc.communicate()
    return [line.split(" ", 1)[0] for line in out.splitlines() if line.startswith(("finished ", "refused "))]


def outcome(ref, outdir, sampler: str, like=loglike) -> str:
    """What a rerun on ``outdir`` gives, against the uninterrupted ``ref``."""
    try:
        res = run(outdir, sampler, like)
    except Exception as err:  # the outcome is the error's text
        return f"error: {type(err).__name__}: {str(err)[:110]}"
    same = res.logZ == ref.logZ
    pull = (res.logZ - TRUTH) / res.logZerr
    keys = ("low", "check", "high", "total")
    calls = "same ncall" if [res.ncall[k] for k in keys] == [ref.ncall[k] for k in keys] else \
        f"ncall {res.ncall['total']} (ref {ref.ncall['total']})"
    if same:
        return f"same logZ bit for bit, {calls}"
    verdict = "valid" if abs(pull) < 3 else "WRONG"
    return f"{verdict}: logZ {res.logZ:.3f} ± {res.logZerr:.3f} (ref {ref.logZ:.3f}, pull {pull:+.1f}), {calls}"


def kills(ref, sampler: str, work: Path, duration: float) -> list[tuple[str, str]]:
    n = ref.ncall
    # The child's count starts with the fingerprint's calls of a new outdir.
    first = n["fingerprint"]
    at_calls = {"mid low stage": first + n["low"] // 2, "first check call (flow saved)": first + n["low"],
                "mid check": first + n["low"] + n["check"] // 2, "first high call": first + n["low"] + n["check"],
                "mid high stage": first + n["low"] + n["check"] + n["high"] // 2,
                "last high call": first + n["total"] - 1}
    rows = []
    for what, calls in at_calls.items():
        outdir = work / f"kill-{calls}"
        spawn(outdir, sampler, "--kill-after-calls", str(calls)).wait()
        if what.startswith("mid"):
            rows += damaged_checkpoints(ref, sampler, outdir, what)
        rows.append((f"SIGKILL at {what} (call {calls})", outcome(ref, outdir, sampler)))
    for t in np.linspace(0.1, 0.95, 6) * duration:
        outdir = work / f"time-{t:.2f}"
        proc = spawn(outdir, sampler, "--kill-after-seconds", f"{t:.3f}")
        where = "finished first" if _said(proc) == ["finished"] else f"killed with {_stages_done(outdir)}"
        rows.append((f"SIGKILL at {t:.2f} s ({where})", outcome(ref, outdir, sampler)))
    return rows


def damage(path: Path, how: str) -> None:
    """Cut ``path`` to half its length, or flip one bit in its middle."""
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0x10
    path.write_bytes(data)


def damaged_checkpoints(ref, sampler: str, killed: Path, what: str) -> list[tuple[str, str]]:
    """Each sampler checkpoint of a killed run, damaged, then the run resumed."""
    rows = []
    found = [p for p in killed.glob("*.dynesty")] + [p for p in killed.glob("*.polychord/stage.resume")]
    for path in found:
        for how in ("truncated", "bit flip"):
            where = str(path.relative_to(killed)).replace("/", "-")
            outdir = killed.with_name(f"{killed.name}-{where}-{how.replace(' ', '')}")
            shutil.copytree(killed, outdir)
            damage(outdir / path.relative_to(killed), how)
            rows.append((f"killed at {what}, its {path.relative_to(killed)} {how}", outcome(ref, outdir, sampler)))
    return rows


def corruptions(ref, sampler: str, finished: Path, work: Path) -> list[tuple[str, str]]:
    rows = []
    names = sorted(p.name for p in finished.iterdir() if p.is_file() and p.name != ".lock")
    for name in names:
        for how in ("truncated", "bit flip"):
            outdir = work / f"corrupt-{name}-{how.replace(' ', '')}"
            shutil.copytree(finished, outdir)
            damage(outdir / name, how)
            rows.append((f"{name} {how}", outcome(ref, outdir, sampler)))
    outdir = work / "edited"
    shutil.copytree(finished, outdir)
    rows.append(("rerun with an edited likelihood", outcome(ref, outdir, sampler, edited_loglike)))
    return rows


def two_runs(ref, sampler: str, work: Path) -> list[tuple[str, str]]:
    outdir = work / "shared"
    procs = [spawn(outdir, sampler), spawn(outdir, sampler)]
    outs = [word for p in procs for word in _said(p)]
    return [("two processes on one outdir at once", f"{outs.count('finished')} finished, "
             f"{outs.count('refused')} refused (in use); rerun: {outcome(ref, outdir, sampler)}")]


def _save_loop(path: str, n: int) -> None:
    flows = [_flow(1), _flow(2)]
    for i in range(n):
        flows[i % 2].save(path)


def _flow(seed: int):
    x = np.random.default_rng(seed).normal(size=(300, 2))
    return fp.MAF(n_transforms=1, hidden_features=(8,), max_epochs=3, progress=False, seed=seed).fit(x)


def flow_files(work: Path) -> list[tuple[str, str]]:
    import multiprocessing as mp

    path = work / "raced.flow"
    flows = [_flow(1), _flow(2)]
    flows[0].save(path)
    x = np.random.default_rng(5).normal(size=(20, 2))
    expected = [f.log_prob(x) for f in flows]
    ctx = mp.get_context("spawn")
    writers = [ctx.Process(target=_save_loop, args=(str(path), 300)) for _ in range(2)]
    for w in writers:
        w.start()
    good = wrong = errors = 0
    while any(w.is_alive() for w in writers):
        try:
            got = fp.load(path).log_prob(x)
        except Exception:  # counted: any failure of a load is a fault here
            errors += 1
            continue
        good += any(np.array_equal(got, e) for e in expected)
        wrong += not any(np.array_equal(got, e) for e in expected)
    for w in writers:
        w.join()
    failed = sum(w.exitcode != 0 for w in writers)
    rows = [("2 processes x 300 saves to one path, loads meanwhile",
             f"{good} whole loads, {wrong} WRONG, {errors} errors; {failed} writers failed")]
    flows[0].save(path)
    data = path.read_bytes()
    rng = random.Random(0)
    detected = 0
    for _ in range(500):
        flipped = bytearray(data)
        flipped[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        path.write_bytes(flipped)
        try:
            fp.load(path)
        except ValueError:
            detected += 1
    rows.append(("500 single-bit flips anywhere in a flow file", f"{detected} refused, {500 - detected} loaded"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sampler", default="dynesty", choices=["dynesty", "polychord"])
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--kill-after-calls", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--kill-after-seconds", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        return child(args)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="flowprior-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ref = run(work / "reference", args.sampler)
    duration = time.perf_counter() - t0
    print(f"sampler {args.sampler}; uninterrupted: logZ {ref.logZ:.4f} ± {ref.logZerr:.4f} (truth {TRUTH}), "
          f"ncall {ref.ncall}, {duration:.1f} s")
    rows = kills(ref, args.sampler, work, duration)
    rows += corruptions(ref, args.sampler, work / "reference", work)
    rows += two_runs(ref, args.sampler, work)
    rows += flow_files(work)
    print("\n| fault | what the rerun gave |\n|---|---|")
    for fault, result in rows:
        print(f"| {fault} | {result} |")


if __name__ == "__main__":
    main()
