"""``flowprior train``, ``check`` and ``stats`` on chains written by each package's own writer.

One posterior, a 2-D Gaussian on the prior box [0, 1]^2 with a derived
parameter ``c = a + b``, sampled (or drawn) and written by cobaya's MCMC,
getdist's ``MCSamples.saveAsText``, anesthetic's ``to_csv``, UltraNest and
PolyChord.  Each root is given as a user types it (no directory part).  The
flow must train on the sampled parameters only and its KL divergence from
the uniform prior must match the closed form.  MultiNest's writer is its
Fortran library, which no package index ships: its reader is exercised by
the anesthetic example chains (benchmarks/RESULTS.md, "anesthetic's example
chains through `flowprior train`").
"""

import numpy as np
import pytest

import flowprior as fp
from flowprior.cli import commands as cli

MU, SD = np.array([0.4, 0.55]), np.array([0.06, 0.09])
#: KL(P || U[0, 1]^2) of the Gaussian (its tails beyond the box are negligible).
KL = float(-np.sum(np.log(SD * np.sqrt(2 * np.pi * np.e))))


def loglike(a, b):
    return float(-0.5 * (((a - MU[0]) / SD[0]) ** 2 + ((b - MU[1]) / SD[1]) ** 2))


def write_cobaya(d):
    cobaya = pytest.importorskip("cobaya.run", reason="cobaya is not installed (pip install 'flowprior[cobaya]')")
    info = {"likelihood": {"gauss": {"external": loglike}},
            "params": {"a": {"prior": {"min": 0, "max": 1}, "latex": r"\alpha"},
                       "b": {"prior": {"min": 0, "max": 1}, "latex": r"\beta"},
                       "c": {"derived": "lambda a, b: a + b", "latex": "c"}},
            "sampler": {"mcmc": {"max_samples": 3000, "Rminus1_stop": 0.001, "burn_in": 100, "seed": 1}},
            "output": str(d / "cb"), "force": True}
    cobaya.run(info, stop_at_error=True)
    return "cb"


def _draws(n=3000):
    rng = np.random.default_rng(2)
    x = MU + SD * rng.standard_normal((n, 2))
    return np.column_stack([x, x.sum(axis=1)])


def write_getdist(d):
    getdist = pytest.importorskip("getdist", reason="getdist is not installed (pip install 'flowprior[cobaya]')")
    x = _draws()
    samples = getdist.MCSamples(samples=x, names=["a", "b", "c*"], labels=[r"\alpha", r"\beta", "c"],
                                ranges={"a": [0, 1], "b": [0, 1]})
    samples.saveAsText(str(d / "gd"))
    return "gd"


def _nested(sampler, **kwargs):
    return fp.run(lambda x: loglike(*x), lambda u: u, 2, sampler=sampler, nlive=150, seed=0, names=["a", "b"],
                  **kwargs)


def write_csv(d):
    _nested("dynesty").samples.to_csv(d / "ns.csv")
    return "ns"


def write_ultranest(d):
    ultranest = pytest.importorskip("ultranest", reason="ultranest is not installed (pip install ultranest h5py)")
    pytest.importorskip("h5py", reason="UltraNest output needs h5py (pip install 'flowprior[ultranest]')")
    sampler = ultranest.ReactiveNestedSampler(["a", "b"], lambda x: loglike(*x), lambda u: u, log_dir=str(d / "un"),
                                              resume="overwrite")
    sampler.run(min_num_live_points=150, show_status=False, viz_callback=False)
    return "un"


def write_polychord(d):
    pypolychord = pytest.importorskip("pypolychord", reason="pypolychord is not on PyPI; build PolyChordLite to "
                                      "test it")
    pypolychord.run(lambda x: (loglike(*x), [float(x.sum())]), 2, nDerived=1, nlive=150, seed=1, feedback=0,
                    base_dir=str(d), file_root="pc", paramnames=[("a", r"\alpha"), ("b", r"\beta"), ("c*", "c")])
    return "pc"


@pytest.mark.slow
@pytest.mark.parametrize("write", [write_cobaya, write_getdist, write_csv, write_ultranest, write_polychord])
def test_train_check_stats_on_each_format(write, tmp_path, monkeypatch, capsys):
    root = write(tmp_path)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    # cobaya's and getdist's chains give their prior ranges; the others' bounds are the user's to give.
    bounds = [] if root in ("cb", "gd") else ["--bounds", "a=0,1", "b=0,1"]
    assert cli.main(["train", root, *bounds, "--quiet", "-o", "f.flow"]) == 0
    flow = fp.load(tmp_path / "f.flow")
    assert flow.names_ == ["a", "b"], root  # never chain, weight, chi2... nor the derived c
    assert flow.bounds_ == [(0.0, 1.0)] * 2
    assert cli.main(["check", "f.flow", root, "-n", "300", "-o", "check.png"]) == 0
    out = capsys.readouterr().out
    in_sample = float(out.split("under the flow:")[1].split()[0])
    assert abs(in_sample - KL) < 0.25, out  # the flow's density on the chains: the posterior's own
    assert cli.main(["stats", "f.flow", "--prior", "uniform", "-n", "4000"]) == 0
    out = capsys.readouterr().out
    kl = float(out.split("KL divergence")[1].split()[0])
    assert abs(kl - KL) < 0.25, out


@pytest.mark.slow
def test_derived_parameters_on_request(tmp_path, monkeypatch, capsys):
    root = write_getdist(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", root, "--derived", "--quiet", "--max-epochs", "20", "-o", "d.flow"]) == 0
    assert fp.load(tmp_path / "d.flow").names_ == ["a", "b", "c"]
