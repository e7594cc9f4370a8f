"""The ``flowprior`` command line, run as a subprocess on chains written by anesthetic."""

import os
import subprocess
import sys

import numpy as np
import pytest

import flowprior as fp
from flowprior.cli import commands as cli

NAMES = ["a", "b", "c"]
LABELS = {"a": r"$\alpha$", "b": r"$\beta$", "c": r"$\gamma$"}
MU = np.array([0.3, 0.5, 0.6])
SD = np.array([0.05, 0.08, 0.1])


class Like:
    def __call__(self, x):
        r = (x - MU) / SD
        return float(-0.5 * r @ r - np.sum(np.log(SD * np.sqrt(2 * np.pi))))


@pytest.fixture(scope="module")
def chains(tmp_path_factory):
    """A nested-sampling run on [0, 1]^3 written with anesthetic's ``to_csv`` (read back by ``read_chains``)."""
    from anesthetic import NestedSamples

    res = fp.run(Like(), lambda u: u, 3, nlive=100, seed=0, names=NAMES)
    s = res.samples
    out = NestedSamples(data=s[NAMES].to_numpy(), logL=s["logL"].to_numpy(), logL_birth=100, columns=NAMES,
                        labels=LABELS)
    d = tmp_path_factory.mktemp("chains")
    out.to_csv(d / "run.csv")
    (d / "bounds.yaml").write_text("a: [0, 1]\nb: [0, 1]\nc: [0, 1]\n")
    return d


def flowprior(*args, cwd):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "flowprior.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_train_info_sample_check_stats(chains):
    r = flowprior("train", "run", "--params", "a", "b", "c", "--bounds", "bounds.yaml", "--max-epochs", "200",
                  "--quiet", "-o", "run.flow", cwd=chains)
    assert r.returncode == 0, r.stderr
    assert "held-out log-likelihood" in r.stdout and "wrote run.flow" in r.stdout
    held = float(r.stdout.split("held-out log-likelihood")[1].split()[0].rstrip(","))
    flow = fp.load(chains / "run.flow")
    assert flow.names_ == NAMES and flow.latex_labels_ == [LABELS[n] for n in NAMES]
    assert flow.bounds_ == [(0.0, 1.0)] * 3

    r = flowprior("info", "run.flow", cwd=chains)
    assert r.returncode == 0, r.stderr
    assert r"$\beta$" in r.stdout and "piece 0: weight 1.000" in r.stdout

    r = flowprior("sample", "run.flow", "-n", "500", "-o", "s.csv", cwd=chains)
    assert r.returncode == 0, r.stderr
    x = np.loadtxt(chains / "s.csv", delimiter=",", skiprows=1)
    assert (chains / "s.csv").read_text().splitlines()[0] == "a,b,c"
    assert x.shape == (500, 3)
    np.testing.assert_allclose(x.mean(0), MU, atol=4 * SD.max() / np.sqrt(500) * 3)

    r = flowprior("check", "run.flow", "run", "-o", "check.png", "-n", "1000", cwd=chains)
    assert r.returncode == 0, r.stderr
    assert "posterior tracking" in r.stdout and "mean log-density" in r.stdout
    in_sample = float(r.stdout.split("under the flow:")[1].split()[0])
    assert abs(held - in_sample) < 0.5  # held-out and in-sample fit agree for a well-fitted flow
    png = (chains / "check.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000

    r = flowprior("stats", "run.flow", "--prior", "uniform", "-n", "5000", cwd=chains)
    assert r.returncode == 0, r.stderr
    kl = float(r.stdout.split("KL divergence")[1].split()[0])
    truth = -np.sum(np.log(SD * np.sqrt(2 * np.pi * np.e)))  # Gaussian well inside the unit cube
    assert abs(kl - truth) < 0.15  # a 100-live run's flow: a few hundred effective samples


def test_piecewise_training(chains):
    r = flowprior("train", "run", "--piecewise", "--clusters", "2", "--params", "a", "b", "--max-epochs", "50",
                  "--quiet", "-o", "pw.flow", cwd=chains)
    assert r.returncode == 0, r.stderr
    assert "piece 1" in r.stdout
    assert isinstance(fp.load(chains / "pw.flow"), fp.PiecewiseFlow)


def test_spline_training(chains):
    r = flowprior("train", "run", "--flow", "nsf", "--bins", "5", "--params", "a", "b", "--max-epochs", "30",
                  "--quiet", "-o", "nsf.flow", cwd=chains)
    assert r.returncode == 0, r.stderr
    assert "trained NSF" in r.stdout
    flow = fp.load(chains / "nsf.flow")
    assert isinstance(flow, fp.NSF) and flow.bins == 5
    r = flowprior("train", "run", "--bins", "5", "-o", "x.flow", cwd=chains)
    assert r.returncode == 1 and "--bins needs --flow nsf" in r.stderr


def test_bijective_piecewise_training(chains):
    r = flowprior("train", "run", "--piecewise", "--clusters", "2", "--transform", "rosenblatt", "--params", "a",
                  "b", "--max-epochs", "20", "--n-transforms", "2", "--quiet", "-o", "pw.flow", cwd=chains)
    assert r.returncode == 0, r.stderr
    flow = fp.load(chains / "pw.flow")
    u = np.random.default_rng(0).uniform(size=(100, 2))
    assert flow.transform == "rosenblatt" and np.abs(flow.inverse_transform(flow(u)) - u).max() <= 1e-8
    r = flowprior("train", "run", "--transform", "rosenblatt", "-o", "x.flow", cwd=chains)
    assert r.returncode == 1 and "--transform needs --piecewise" in r.stderr


def test_error_is_one_line_without_traceback_unless_debug(chains):
    r = flowprior("info", "missing.flow", cwd=chains)
    assert r.returncode == 1
    assert r.stderr.strip() == "flowprior: error: missing.flow: no such file"
    r = flowprior("--debug", "info", "missing.flow", cwd=chains)
    assert r.returncode == 1 and "Traceback" in r.stderr


@pytest.mark.parametrize("argv, message", [
    (["train", "nowhere/run", "-o", "x.flow"], "directory nowhere does not exist"),
    (["train", "nothing", "-o", "x.flow"], "no files starting with 'nothing'"),
    (["train", "bad", "-o", "x.flow"], "could not read them with anesthetic"),
    (["train", "run", "--params", "a", "zeta", "-o", "x.flow"], "unknown parameter(s) ['zeta']; the chains have ['a', 'b', 'c']"),
    (["train", "run", "--bounds", "a=0,x", "-o", "x.flow"], "'x' is not a number"),
    (["train", "run", "--params", "a", "--bounds", "b=0,1", "-o", "x.flow"], "['b'] are not being trained on"),
    (["train", "run", "--clusters", "3", "-o", "x.flow"], "--clusters needs --piecewise"),
    (["train", "run", "--split", "3", "-o", "x.flow"], "--split needs --piecewise"),
    (["train", "run", "--piecewise", "--split", "0", "-o", "x.flow"], "split: expected a positive integer"),
    (["info", "bounds.yaml"], "not a flowprior flow file"),
    (["sample", "run.csv", "-n", "10", "-o", "y.csv"], "not a flowprior flow file"),
    (["stats", "missing.flow", "--prior", "uniform"], "missing.flow: no such file"),
])
def test_error_paths(chains, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(chains)
    (chains / "bad_dead-birth.txt").write_text("not numbers\n")
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("flowprior: error: ") and message in err and err.count("\n") == 1


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    assert "flowprior train chains/planck" in capsys.readouterr().out


def test_a_getdist_root_without_a_directory_part(tmp_path):
    """anesthetic reads GetDist (and cobaya) chains only through a path with a directory part: "gd" as "./gd"."""
    x = np.random.default_rng(0).normal(size=(600, 2))
    np.savetxt(tmp_path / "gd.txt", np.column_stack([np.ones(600), 0.5 * np.sum(x**2, axis=1), x]))
    (tmp_path / "gd.paramnames").write_text("a a\nb b\n")
    r = flowprior("train", "gd", "--params", "a", "b", "--max-epochs", "20", "--quiet", "-o", "gd.flow", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert fp.load(tmp_path / "gd.flow").names_ == ["a", "b"]


def test_getdist_and_cobaya_chains_train_on_their_sampled_parameters_within_their_ranges(tmp_path):
    """The chains' own metadata pick the parameters (derived only with --derived) and give the bounds."""
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.2, 0.8, 600), rng.normal(size=600)
    c = a + b  # derived
    np.savetxt(tmp_path / "gd.txt", np.column_stack([np.ones(600), np.zeros(600), a, b, c]))
    (tmp_path / "gd.paramnames").write_text("a a\nb b\nc* c\n")
    (tmp_path / "gd.ranges").write_text("a 0 1\nb N N\n")
    cobaya = np.column_stack([np.ones(600), np.zeros(600), a, b, c, np.zeros(600), np.zeros(600), np.ones(600)])
    np.savetxt(tmp_path / "cb.1.txt", cobaya, header="weight minuslogpost a b c minuslogprior minuslogprior__0 chi2",
               comments="# ")
    (tmp_path / "cb.updated.yaml").write_text(
        "likelihood:\n  gauss: {}\nparams:\n  a:\n    prior: {min: 0, max: 1}\n    latex: a\n  b:\n    prior: {dist: norm, loc: 0, scale: 1}\n"
        "  c:\n    derived: true\n  fixed: 3.0\n")
    for root in ("gd", "cb"):
        r = flowprior("train", root, "--max-epochs", "20", "--quiet", "-o", f"{root}.flow", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        flow = fp.load(tmp_path / f"{root}.flow")
        assert flow.names_ == ["a", "b"] and flow.bounds_ == [(0.0, 1.0), (None, None)], root
        assert "bounds from" in r.stdout
        r = flowprior("train", root, "--derived", "--max-epochs", "20", "--quiet", "-o", f"{root}d.flow", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert fp.load(tmp_path / f"{root}d.flow").names_ == ["a", "b", "c"], root


def test_ultranest_output_without_h5py_says_what_to_install(tmp_path, monkeypatch):
    import importlib.util

    from flowprior.cli.inputs import CLIError, read_chains

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "h5py" else find_spec(name, *a))
    (tmp_path / "un" / "results").mkdir(parents=True)
    (tmp_path / "un" / "results" / "points.hdf5").write_bytes(b"")
    with pytest.raises(CLIError, match=r"pip install 'flowprior\[ultranest\]'"):
        read_chains(str(tmp_path / "un"))
