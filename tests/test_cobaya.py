"""The cobaya front door: cobaya's priors as a prior transform, its likelihoods (with derived parameters)
sampled plain and enhanced to the closed-form evidence, GetDist chains, and a flow file as a cobaya likelihood."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

import flowprior as fp
from conftest import QUICK

pytest.importorskip("cobaya", reason="cobaya is not installed: pip install 'flowprior[cobaya]'")
from cobaya.model import get_model  # noqa: E402

from flowprior.integrations import cobaya as fpc  # noqa: E402

QUIET = 30  # cobaya's "debug" option: log warnings and errors only

MEAN_G, COV_G = [0.1, -0.2], [[0.04, 0.01], [0.01, 0.09]]
MEAN_E, SIGMA_E = np.array([0.3, -0.2]), 0.1


def gauss(a, b):
    """A normalised 2-D Gaussian likelihood with the derived parameter ``s = a + b``."""
    r2 = ((a - MEAN_E[0]) ** 2 + (b - MEAN_E[1]) ** 2) / SIGMA_E**2
    return -0.5 * r2 - np.log(2 * np.pi * SIGMA_E**2), {"s": a + b}


def picky(a, b):
    """A likelihood that fails (so cobaya rejects the point) where a < -0.5."""
    if a < -0.5:
        raise RuntimeError("outside the code's range")
    return -0.5 * (a**2 + b**2) / 0.01


def bowl(a, b):
    return -0.5 * (a**2 + b**2)


def box(*names, lo=-1.0, hi=1.0):
    return {n: {"prior": {"min": lo, "max": hi}} for n in names}


#: cobaya's gaussian_mixture over (gx, gy) on [-2, 2]^2 and an external Gaussian over (a, b) on [-1, 1]^2;
#: both normalised, so Z = (1/16) (1/4).
INFO = {"likelihood": {"gm": {"class": "gaussian_mixture", "means": [MEAN_G], "covs": [COV_G],
                              "input_params_prefix": "g", "output_params_prefix": "g"},
                       "ext": {"external": gauss, "output_params": ["s"]}},
        "params": {**box("gx", "gy", lo=-2.0, hi=2.0), **box("a", "b"),
                   "s": {"latex": "a+b"}, "gxy": {"derived": "lambda gx, gy: gx * gy", "latex": r"g_x g_y"}},
        "debug": QUIET}
INFO["params"]["gx"]["latex"] = r"\gamma_x"
LOGZ = -np.log(64.0)
MEANS = {"gx": 0.1, "gy": -0.2, "a": 0.3, "b": -0.2, "s": 0.1}


def weighted_means(samples, names):
    frame = samples.drop_labels(axis=1) if samples.islabelled(axis=1) else samples
    w = frame.get_weights()
    return {n: float(np.sum(w * frame[n].to_numpy()) / np.sum(w)) for n in names}


@pytest.fixture(scope="module")
def runs():
    return {"plain": fpc.run(INFO, nlive=150, seed=0), "enhanced": fpc.enhanced_run(INFO, nlive=150, seed=1)}


# ----------------------------------------------------------------------------------------------- model and prior
def test_prior_transform_is_each_priors_ppf():
    info = {"likelihood": {"p": lambda a, b, c: -0.5 * (a**2 + b**2 + c**2)}, "debug": QUIET,
            "params": {"a": {"prior": {"min": -1, "max": 3}},
                       "b": {"prior": {"dist": "norm", "loc": 1.0, "scale": 2.0}},
                       "c": {"prior": {"dist": "truncnorm", "min": 0.0, "max": 5.0, "loc": 1.0, "scale": 1.0}}}}
    like, prior = fpc.problem(info)
    assert like.names == prior.names == ["a", "b", "c"]
    u = np.array([0.25, 0.9, 0.5])
    theta = prior(u)
    truth = [-1 + 4 * 0.25, stats.norm(1, 2).ppf(0.9), stats.truncnorm(-1, 4, loc=1).ppf(0.5)]
    assert np.allclose(theta, truth, rtol=0, atol=1e-12)
    assert np.isfinite(prior(np.array([0.0, 0.0, 1.0]))).all()  # the normal's tails read just inside
    assert np.allclose(prior.bounds, [[-1, 3], [-np.inf, np.inf], [0, 5]])
    assert prior.ranges()["b"] == [None, None]
    model = like.model
    assert np.isclose(prior.logpdf(theta)[0], model.prior.logp(theta))


def test_loglike_is_the_likelihoods_sum_with_derived_and_chi2():
    info = {"likelihood": {"ext": {"external": gauss, "output_params": ["s"]},
                           "p": bowl},
            "params": {**box("a", "b"), "s": None}, "debug": QUIET}
    like, _ = fpc.problem(info)
    assert like.derived == ["s", "chi2", "chi2__ext", "chi2__p"]
    theta = np.array([0.25, -0.5])
    logl, derived = like(theta)
    ext, p = gauss(*theta)[0], -0.5 * float(theta @ theta)
    assert np.isclose(logl, ext + p)  # the prior (log 1/4) is not in it
    assert np.allclose(derived, [-0.25, -2 * (ext + p), -2 * ext, -2 * p])
    # Unpickled (as a pool's worker gets it with each batch), it rebuilds the model once per process.
    again, more = pickle.loads(pickle.dumps(like)), pickle.loads(pickle.dumps(like))
    assert np.allclose(again(theta)[1], derived) and np.allclose(more(theta)[1], derived)
    assert again.model is more.model and again.model is not like.model


def test_a_point_cobaya_rejects_has_minus_infinity():
    like, _ = fpc.problem({"likelihood": {"p": picky}, "params": {**box("a", "b"), "t": {
        "derived": "lambda a: 2 * a"}}, "debug": QUIET})
    logl, derived = like(np.array([-0.8, 0.0]))
    assert logl == -np.inf and np.isnan(derived).all()
    assert np.isfinite(like(np.array([0.1, 0.0]))[0])


def test_a_yaml_file_and_text(tmp_path):
    text = ("likelihood:\n  p: 'lambda a: -0.5 * a**2 / 0.01'\nparams:\n  a:\n    prior: {min: -1, max: 1}\n"
            "    latex: \\alpha\nsampler:\n  mcmc:\ndebug: 30\n")
    path = tmp_path / "in.yaml"
    path.write_text(text)
    with pytest.warns(UserWarning, match=r"sampler block \{'mcmc': None\} is ignored"):
        like, prior = fpc.problem(str(path))
    assert like.names == ["a"] and like.labels["a"] == r"\alpha"
    with pytest.warns(UserWarning):
        assert np.isclose(fpc.problem(text)[0](np.array([0.1]))[0], -0.5)
    with pytest.warns(UserWarning):
        res = fpc.run_yaml(path, enhanced=False, nlive=50, seed=0)
    assert abs(res.logZ - np.log(0.1 * np.sqrt(2 * np.pi) / 2)) < 3 * res.logZerr + 0.1
    assert res.samples.get_labels_map(axis=1)["a"] == r"$\alpha$"


# --------------------------------------------------------------------------------------------------- the runs
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["plain", "enhanced"])
def test_runs_reach_the_closed_form(runs, kind):
    res = runs[kind]
    assert abs(res.logZ - LOGZ) < 3 * res.logZerr + 0.05, (res.logZ, res.logZerr)
    names = list(MEANS)
    got = weighted_means(res.samples, names)
    assert all(abs(got[n] - MEANS[n]) < 0.05 for n in names), got
    cols = [c for c in res.samples.drop_labels(axis=1).columns]
    assert cols[:9] == ["gx", "gy", "a", "b", "s", "gxy", "chi2", "chi2__gm", "chi2__ext"]
    labels = res.samples.get_labels_map(axis=1)
    assert labels["gx"] == r"$\gamma_x$" and labels["s"] == "$a+b$" and labels["chi2__gm"] == r"$\chi^2_\mathrm{gm}$"
    frame = res.samples.drop_labels(axis=1)
    assert np.allclose(frame["s"], frame["a"] + frame["b"]) and np.allclose(frame["gxy"], frame["gx"] * frame["gy"])


@pytest.mark.slow
def test_enhanced_uses_fewer_calls(runs):
    assert runs["enhanced"].ncall["total"] < runs["plain"].ncall["total"] / 2, (runs["enhanced"].ncall,
                                                                               runs["plain"].ncall)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["plain", "enhanced"])
def test_chains_read_back_with_the_same_means(runs, kind, tmp_path):
    getdist = pytest.importorskip("getdist", reason="getdist is not installed: pip install getdist")
    from anesthetic import read_chains

    res = runs[kind]
    root = fpc.write_chains(res, tmp_path / "chains" / "run")
    names = ["gx", "gy", "a", "b", "s", "gxy", "chi2"]
    truth = weighted_means(res.samples, names)
    mc = getdist.loadMCSamples(root, settings={"ignore_rows": 0})
    by_getdist = dict(zip(mc.getParamNames().list(), mc.getMeans()))
    by_anesthetic = weighted_means(read_chains(root), names)
    for n in names:
        assert np.isclose(by_getdist[n], truth[n], rtol=0, atol=1e-6)
        assert np.isclose(by_anesthetic[n], truth[n], rtol=0, atol=1e-6)
    assert mc.getParamNames().parWithName("s").isDerived and not mc.getParamNames().parWithName("a").isDerived
    assert mc.getParamNames().parWithName("gx").label == r"\gamma_x"
    assert mc.ranges.getLower("gx") == -2.0 and mc.ranges.getUpper("b") == 1.0
    # minuslogpost = chi2 / 2 - log prior, as cobaya writes it
    table = np.loadtxt(root + ".txt")
    assert np.allclose(table[:, 1], table[:, 2 + names.index("chi2")] / 2 + np.log(16 * 4))


# ---------------------------------------------------------------------------------------------- FlowLikelihood
MEAN_A, COV_A = np.array([0.2, -0.1]), np.array([[0.04, 0.012], [0.012, 0.0225]])
MEAN_B, COV_B = np.array([0.35, 0.05]), np.diag([0.15**2, 0.1**2])


@pytest.fixture(scope="module")
def flow_file(tmp_path_factory):
    """An experiment's posterior P = N(MEAN_A, COV_A) under a uniform prior on [-1, 1]^2, so Z_A = 1/4."""
    x = np.random.default_rng(0).multivariate_normal(MEAN_A, COV_A, size=4000)
    flow = fp.MAF(seed=0, **QUICK).fit(x, bounds=[(-1.0, 1.0), (-1.0, 1.0)], names=["h", "om"])
    path = tmp_path_factory.mktemp("flow") / "a.flow"
    flow.save(path)
    return str(path)


def flow_info(flow_file, **options):
    entry = {"external": "flowprior.integrations.cobaya.FlowLikelihood", "flow": flow_file, "logZ": -np.log(4.0),
             "prior": "uniform", **options}
    return {"likelihood": {"marginal": entry}, "params": box("h", "om"), "debug": QUIET}


def test_flow_likelihood_is_the_nuisance_free_likelihood(flow_file):
    like, _ = fpc.problem(flow_info(flow_file))
    theta = np.random.default_rng(1).multivariate_normal(MEAN_A, COV_A, size=50)
    got = np.array([like(t)[0] for t in theta])
    # P Z / pi = N(theta; MEAN_A, COV_A) (1/4) / (1/4), to the flow's accuracy (worst in the tails)
    error = np.abs(got - stats.multivariate_normal(MEAN_A, COV_A).logpdf(theta))
    assert np.median(error) < 0.1 and np.quantile(error, 0.9) < 0.25, np.quantile(error, [0.5, 0.9, 1])


def test_flow_likelihood_in_plain_cobaya(flow_file):
    """cobaya's own get_model, with ``class:`` and ``flow_prior:``, and the flow's parameters from flow_params."""
    info = {"likelihood": {"marginal": {"class": "flowprior.integrations.cobaya.FlowLikelihood", "flow": flow_file,
                                        "logZ": -np.log(4.0), "flow_prior": {"h": [-1, 1], "om": [-1, 1]}}},
            "params": fpc.flow_params(flow_file), "debug": QUIET}
    assert info["params"]["h"]["prior"] == {"min": -1.0, "max": 1.0}
    model = get_model(info)
    point = {"h": 0.25, "om": -0.05}
    assert abs(model.loglike(point, return_derived=False)
               - stats.multivariate_normal(MEAN_A, COV_A).logpdf([0.25, -0.05])) < 0.2
    assert model.loglike({"h": 0.25, "om": 0.0}, return_derived=False) > model.loglike(
        {"h": 0.9, "om": 0.0}, return_derived=False)


@pytest.mark.slow
def test_flow_likelihood_combines_with_another_likelihood(flow_file):
    info = flow_info(flow_file)
    info["likelihood"]["b"] = lambda h, om: float(stats.multivariate_normal(MEAN_B, COV_B).logpdf([h, om]))
    res = fpc.run(info, nlive=100, seed=2)
    prec = np.linalg.inv(COV_A) + np.linalg.inv(COV_B)
    mean = np.linalg.solve(prec, np.linalg.solve(COV_A, MEAN_A) + np.linalg.solve(COV_B, MEAN_B))
    got = weighted_means(res.samples, ["h", "om"])
    assert np.allclose([got["h"], got["om"]], mean, rtol=0, atol=0.03), (got, mean)
    logz = np.log(0.25) + stats.multivariate_normal(MEAN_B, COV_A + COV_B).logpdf(MEAN_A)
    assert abs(res.logZ - logz) < 3 * res.logZerr + 0.1, (res.logZ, res.logZerr, logz)


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("info, match", [
    ({"likelihood": {"no_such_likelihood": None}, "params": box("a")}, "'no_such_likelihood' could not be found"),
    ({"likelihood": {"p": picky}, "theory": {"camb": None}, "params": box("a", "b")}, "(?i)camb"),
    ({"likelihood": {"p": picky}, "params": box("a", "b"), "prior": {"band": "lambda a, b: -(a + b)**2"}},
     r"external priors \['band'\].*likelihood block"),
    ({"likelihood": {"p": picky}, "params": {"a": {"prior": {"dist": "poisson", "mu": 3}}, **box("b")}},
     r"discrete priors of \['a'\]"),
    ({"likelihood": {"p": picky}, "params": {"a": {"prior": {"min": 0.2, "max": 0.2}}, **box("b")}},
     "'a' .*zero width"),
    ("/no/such/input.yaml", "cannot read cobaya input"),
])
def test_bad_cobaya_input_is_named(info, match):
    if isinstance(info, dict):
        info = {**info, "debug": 50}
    with pytest.raises(fpc.CobayaInputError, match=match):
        fpc.problem(info)


def test_a_derived_parameter_never_computed_is_named():
    info = {"likelihood": {"ext": {"external": lambda a, b: (-a * a, {"s": a}), "output_params": ["s", "t"]}},
            "params": {**box("a", "b"), "s": None, "t": None}, "debug": QUIET}
    like, _ = fpc.problem(info)
    with pytest.raises(ValueError, match="derived parameter 't' was not computed"):
        like(np.array([0.1, 0.2]))


def test_arguments_the_model_sets_are_refused():
    with pytest.raises(TypeError, match="names.*set by the cobaya model"):
        fpc.run({"likelihood": {"p": picky}, "params": box("a", "b")}, names=["x", "y"])


def test_bad_flow_likelihood_options(flow_file, tmp_path):
    unnamed = tmp_path / "unnamed.flow"
    x = np.random.default_rng(0).normal(size=(600, 2)) * 0.2
    fp.MAF(seed=0, **QUICK).fit(x).save(unnamed)
    cases = [(flow_info(str(unnamed)), "no parameter names"),
             (flow_info(flow_file, logZ=None), "logZ"),
             ({**flow_info(flow_file), "params": box("h", "omega")}, "Requirement om of marginal"),
             (flow_info(flow_file, prior={"h": [-1, 1]}), r"flow_prior: expected bounds for .*\['h', 'om'\]"),
             (flow_info(flow_file, flow_prior="uniform"), "prior or flow_prior, not both")]
    for info, match in cases:
        info["debug"] = 50
        with pytest.raises(ValueError, match=match):
            fpc.problem(info)


def test_write_chains_needs_a_cobaya_result(tmp_path):
    res = fp.run(lambda x: -0.5 * float(x @ x) / 0.01, fp.UniformPrior([(-1, 1)]), 1, nlive=30, seed=0)
    with pytest.raises(TypeError, match="flowprior.integrations.cobaya.run"):
        fpc.write_chains(res, tmp_path / "x")


def test_imports_without_cobaya():
    """``flowprior.integrations.available()`` imports these modules: they import without cobaya, and are
    no sampler adapters."""
    code = ("import sys; sys.modules['cobaya'] = None; sys.modules['cobaya.likelihood'] = None\n"
            "import flowprior.integrations as I; from flowprior.integrations import cobaya as fpc\n"
            "assert 'cobaya' not in I.available(); print(fpc.FlowLikelihood.__mro__[1].__name__)\n"
            "try:\n    fpc.problem({})\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["object", "cobaya is not installed; pip install 'flowprior[cobaya]' (or cobaya)"]


@pytest.mark.slow
def test_command_line_run_writes_chains_and_resumes(tmp_path, monkeypatch, capsys):
    """``flowprior run input.yaml --enhanced``: the closed-form evidence, chains at the input's output, a rerun
    read back from its outdir."""
    from flowprior.cli.commands import main

    (tmp_path / "in.yaml").write_text(
        "likelihood:\n  gauss:\n    external: 'lambda a, b: -0.5 * (((a - 0.3) / 0.05) ** 2 + ((b - 0.5) / 0.08) ** 2)'\n"
        "params:\n  a: {prior: {min: 0, max: 1}}\n  b: {prior: {min: 0, max: 1}}\n"
        "  c: {derived: 'lambda a, b: a + b'}\noutput: chains/g\ndebug: 30\n")
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["run", "in.yaml", "--enhanced", "--nlive", "200"]) == 0
    out = capsys.readouterr().out
    logz, err = (float(x) for x in out.split("logZ ")[1].split(";")[0].split(" ± "))
    assert abs(logz - np.log(2 * np.pi * 0.05 * 0.08)) < 3 * err, out
    from getdist import loadMCSamples

    chains = loadMCSamples(str(tmp_path / "chains" / "g"))
    assert [p.name for p in chains.paramNames.names][:3] == ["a", "b", "c"]
    assert main(["run", "in.yaml", "--enhanced", "--nlive", "200"]) == 0
    again = capsys.readouterr().out
    assert again.split(";")[0] == out.split(";")[0]  # every stage read back: the same evidence
    assert main(["run", "missing.yaml"]) == 1
    assert "no such file" in capsys.readouterr().err
