"""PolyChord under ``mpirun -n 2``: the enhanced run's ranks agree, and its flow is trained once.

Needs ``mpirun``, mpi4py and a pypolychord built with MPI; each test skips,
saying which is missing, without them.  The MPI runs are subprocesses, so the
test process itself never joins an MPI job.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import flowprior as fp
from flowprior.integrations import polychord

pytest.importorskip(
    "pypolychord",
    reason="pypolychord is not installed: it is not on PyPI; build it from PolyChordLite's source "
           "(see integrations/polychord.py)",
)

NRANKS = 2
MU = [0.4, 0.5]
SIGMA = [0.05, 0.08]
LO, HI = [0.0, -1.0], [1.0, 2.0]
TRUTH = -float(np.sum(np.log(np.subtract(HI, LO))))  # a normalised Gaussian well inside the box

# Shared by every script: the problem, and this rank's report written to a JSON file of its own
# (the ranks' stdout interleaves).
PROLOGUE = f"""
import json, sys, time
from pathlib import Path
import numpy as np
from mpi4py import MPI
import flowprior as fp

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
out = Path(sys.argv[1])
MU, SIGMA, LO, HI = np.array({MU}), np.array({SIGMA}), np.array({LO}), np.array({HI})


def loglike(x):
    r = (x - MU) / SIGMA
    return -0.5 * r @ r - np.sum(np.log(SIGMA * np.sqrt(2 * np.pi)))


def prior_transform(u):
    return LO + (HI - LO) * u


def report(**values):
    (out / f"rank{{rank}}.json").write_text(json.dumps(dict(rank=rank, size=comm.Get_size(), **values)))
"""

ENHANCED = """
from flowprior.workflows import levels, stages

# Count, on each rank, the flow trainings and the stage files written.
trained, written = [], []
train, save_result = levels.train, stages.save_result
levels.train = lambda *a, **k: trained.append(1) or train(*a, **k)
stages.save_result = lambda *a, **k: written.append(str(a[0])) or save_result(*a, **k)

kwargs = dict(sampler="polychord", nlive=100, nlive_low=25, seed=3, outdir=out / "stages")
t0 = time.perf_counter()
res = fp.enhanced_run(loglike, prior_transform, 2, **kwargs)
wall = time.perf_counter() - t0
# The same outdir again: every stage loads (on rank 0) and nothing reruns.
again = fp.enhanced_run(loglike, prior_transform, 2, **kwargs)
grid = np.linspace(0.1, 0.9, 5)
report(logZ=res.logZ, logZerr=res.logZerr, ncall=res.ncall, wall=wall, trained=len(trained), written=written,
       nsamples=len(res.samples), low_logZ=res.low.logZ, flow_logpdf=res.flow.log_prob(np.c_[grid, grid]).tolist(),
       again_logZ=again.logZ, again_ncall=again.ncall)
"""

FAILING = """
from flowprior.integrations import polychord

ncall = 0


def failing(x):
    # Only one rank's likelihood fails: the other must not wait for it forever.
    global ncall
    ncall += 1
    if rank == 1 and ncall > 50:
        raise ValueError("boom on rank 1")
    return loglike(x)


try:
    fp.run(failing, prior_transform, 2, sampler="polychord", nlive=50, seed=1)
    report(error=None)
except Exception as err:
    report(error=f"{type(err).__name__}: {err}")
"""


def _env(**extra: str) -> dict:
    """Environment for a subprocess: it imports the flowprior under test, not whichever its script's folder finds."""
    path = os.pathsep.join(filter(None, [str(Path(fp.__file__).parents[1]), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def _mpirun() -> str:
    """``mpirun``'s path, or skip with the reason MPI runs cannot happen here."""
    mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
    if mpirun is None:
        pytest.skip("mpirun not found: install an MPI (e.g. Open MPI) to run PolyChord under MPI")
    if importlib.util.find_spec("mpi4py") is None:  # found without importing: that would start MPI here
        pytest.skip("mpi4py is not installed (pip install mpi4py); flowprior shares work between ranks with it")
    if not polychord._built_with_mpi(polychord._library()):
        pytest.skip("pypolychord was built without MPI (setup.py --no-mpi); rebuild it with MPI")
    return mpirun


def _run_ranks(script: str, tmp_path: Path) -> list[dict]:
    """Run ``PROLOGUE + script`` under ``mpirun -n 2``; each rank's report, by rank."""
    mpirun = _mpirun()
    path = tmp_path / "script.py"
    path.write_text(PROLOGUE + textwrap.dedent(script))
    # Open MPI refuses root (as in CI containers) and more ranks than cores unless told;
    # other MPIs ignore these variables.
    env = _env(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1",
               PRTE_MCA_rmaps_default_mapping_policy=":oversubscribe")
    r = subprocess.run([mpirun, "-n", str(NRANKS), sys.executable, str(path), str(tmp_path)], env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"mpirun failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    reports = [tmp_path / f"rank{i}.json" for i in range(NRANKS)]
    missing = [p.name for p in reports if not p.exists()]
    assert not missing, f"no report from {missing}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return [json.loads(p.read_text()) for p in reports]


def test_polychord_runs_alone_outside_mpirun():
    # A plain process is one rank: nothing to share, the serial code path.
    assert polychord.mpi_comm() is None


@pytest.mark.slow
def test_enhanced_run_under_mpirun(tmp_path):
    ranks = _run_ranks(ENHANCED, tmp_path)
    first, second = ranks
    assert [r["size"] for r in ranks] == [NRANKS] * NRANKS
    # Every rank returns the same Result: rank 0's files, read once and broadcast.
    for key in ("logZ", "logZerr", "ncall", "nsamples", "low_logZ", "flow_logpdf"):
        assert first[key] == second[key], key
    assert abs(first["logZ"] - TRUTH) < 3 * first["logZerr"], (first["logZ"], first["logZerr"], TRUTH)
    # One flow, trained on rank 0 and sent to rank 1 (same log-density above); only rank 0 wrote stage files.
    assert [r["trained"] for r in ranks] == [1, 0]
    assert sorted(Path(p).name for p in first["written"]) == ["high.npz", "low.npz"] and second["written"] == []
    # (A low stage at 25 live points may cluster and be redone, with its own checkpoint.)
    assert sorted(p.name for p in (tmp_path / "stages").iterdir() if p.name != "low_redone.polychord") == [
        ".lock", "check.npz", "checks.json", "config.json", "flow.flow", "high.npz", "high.polychord", "low.npz",
        "low.polychord", "problem.json"]
    # Calls summed over the ranks (rank 1 makes most of them).
    assert first["ncall"]["total"] == first["ncall"]["low"] + first["ncall"]["check"] + first["ncall"]["high"] > 0
    # The rerun on the same outdir loaded every stage, on both ranks alike; its only calls are the
    # fingerprint's (problem.json's 3 fixed points and the low stage's 3 best, on rank 0).
    assert [r["ncall"]["fingerprint"] for r in ranks] == [3, 3]
    for r in ranks:
        assert r["again_logZ"] == first["logZ"] and r["again_ncall"] == {**first["ncall"], "fingerprint": 6}


@pytest.mark.slow
def test_a_failure_on_one_rank_stops_every_rank(tmp_path):
    first, second = _run_ranks(FAILING, tmp_path)
    assert second["error"] == "ValueError: boom on rank 1"
    assert first["error"].startswith("RuntimeError: PolyChord failed on MPI rank 1: ValueError: boom on rank 1")


def test_mpi_build_without_mpi4py_refuses_a_second_run(tmp_path):
    # Without mpi4py an MPI-built PolyChord initialises MPI itself and finalises it after the run;
    # a second run would then abort the whole process. It must raise instead.
    if not polychord._built_with_mpi(polychord._library()):
        pytest.skip("pypolychord was built without MPI: it never finalises MPI")
    script = tmp_path / "twice.py"
    script.write_text(textwrap.dedent("""
        import sys
        sys.modules["mpi4py"] = None  # as if mpi4py were not installed
        import flowprior as fp
        for seed in (1, 2):
            try:
                fp.run(lambda x: -50.0 * ((x - 0.5) @ (x - 0.5)), lambda u: u, 2, sampler="polychord", nlive=25,
                       seed=seed)
                print("ran")
            except RuntimeError as err:
                print("refused:", err)
    """))
    r = subprocess.run([sys.executable, str(script)], env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [line for line in r.stdout.splitlines() if line.startswith(("ran", "refused"))]
    assert lines[0] == "ran" and lines[1].startswith("refused: this pypolychord was built with MPI"), r.stdout
