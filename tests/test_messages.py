"""Never a wrong answer in silence: bad input gets an early error naming the argument, the rows and what
was expected; odd input a warning; never a NaN, a deep traceback or a hang."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest

import flowprior as fp
from conftest import QUICK
from flowprior.cli import commands as cli
from flowprior.workflows.checked import CheckedLikelihood
from flowprior.data import check_inside
from flowprior.reweighting import _combine
from flowprior.flows.training import TrainingRecord, _diverged

BOX = [(0.0, 1.0), (0.0, 1.0)]
MU, SD = np.array([0.5, 0.4]), 0.1


def loglike_fast(x):
    r = (np.asarray(x) - MU) / SD
    return float(-0.5 * r @ r)


@pytest.fixture(scope="module")
def nested():
    """Nested samples on the unit square: 2000 prior draws all live at once (births at -inf)."""
    from anesthetic import NestedSamples

    x = np.random.default_rng(1).uniform(size=(2000, 2))
    logl = np.array([loglike_fast(p) for p in x])
    order = np.argsort(logl)
    return NestedSamples(data=x[order], logL=logl[order], logL_birth=np.full(len(x), -np.inf), columns=["a", "b"])


def reweight(nested, loglike, **kw):
    return fp.reweight(nested, loglike, bounds=BOX, seed=0, progress=False, **kw)


# --------------------------------------------------------------- A. reweight: -inf everywhere
def test_reweight_slow_likelihood_minus_inf_everywhere_raises(nested):
    with pytest.raises(ValueError, match=r"loglike: -inf at all \d+ points evaluated \(\d+ distinct draws of the "
                                         r"fast posterior and \d+ draws of a flow trained on it\): the slow "
                                         r"posterior has no support where the fast posterior has mass"):
        reweight(nested, lambda x: -np.inf, target_neff=100, batch_size=50, max_calls=1000)


def test_reweight_minus_inf_everywhere_when_calls_run_out_first(nested):
    with pytest.raises(ValueError, match=r"loglike: -inf at all \d+ points evaluated \(\d+ distinct draws of the "
                                         r"fast posterior\): the slow posterior has no support"):
        reweight(nested, lambda x: -np.inf, target_neff=100, max_calls=20)


def test_reweight_far_below_the_fast_likelihood_does_not_underflow(nested):
    # L_B = L_A e^-800: every ratio underflows exp(), the log-space estimate does not.
    rw = reweight(nested, lambda x: loglike_fast(x) - 800.0, target_neff=50)
    assert rw.parts["existing"]["logZ"] == pytest.approx(float(nested.logZ()) - 800.0, abs=1e-9)
    assert np.isfinite(rw.logZ) and np.isfinite(rw.logZerr) and np.isfinite(rw.neff)


def test_combine_without_support_gives_no_nan():
    logZ, logZerr, w_ex, w_is = _combine(-math.inf, math.inf, np.zeros(3), np.full(4, -np.inf), np.zeros(4, int))
    assert logZ == -math.inf and logZerr == math.inf
    assert not np.isnan(w_ex).any() and not np.isnan(w_is).any() and w_is.shape == (4,)


# --------------------------------------------------------------- D. reweight settings
@pytest.mark.parametrize("bad", [0, -3, 2.5, True, np.nan])
def test_reweight_max_existing(nested, bad):
    with pytest.raises(ValueError, match=r"max_existing: expected a positive integer .* got "):
        reweight(nested, loglike_fast, max_existing=bad)


def test_reweight_infinite_counts(nested):
    with pytest.raises(ValueError, match="max_calls: expected a positive integer, got inf"):
        reweight(nested, loglike_fast, max_calls=np.inf)
    with pytest.raises(ValueError, match=r"target_neff: expected a positive number \(and finite\), got inf"):
        reweight(nested, loglike_fast, target_neff=np.inf)


# --------------------------------------------------------------- E. reweight: what loglike returns
def test_reweight_loglike_returning_an_array_names_the_point_and_shape(nested):
    with pytest.raises(ValueError, match=r"loglike returned an array of shape \(2,\) at theta=\[[-0-9.e]+, "
                                         r"[-0-9.e]+\]; expected one number"):
        reweight(nested, lambda x: np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"loglike returned '1.5' \(type str\) at theta=\[.*text is not a number"):
        reweight(nested, lambda x: "1.5")
    with pytest.raises(ValueError, match=r"loglike \(vectorized=True\) returned an array of dtype <U3 for \d+ "
                                         "points; expected"):
        reweight(nested, lambda x: np.full(len(x), "1.5"), vectorized=True)


def test_reweight_accepts_a_size_one_array(nested):
    rw = reweight(nested, lambda x: np.array([loglike_fast(x)]), target_neff=50)
    assert rw.parts["existing"]["logZ"] == pytest.approx(float(nested.logZ()), abs=1e-9)


# --------------------------------------------------------------- C. DataFrames that are not parameters
@pytest.fixture
def frame():
    x = np.random.default_rng(0).normal(size=(60, 2))
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1]})


def test_text_column_is_named(frame):
    frame["label"] = "run1"
    with pytest.raises(ValueError, match=r"theta: column 'label' holds non-numbers \(dtype .*\) in rows \[0, 1, "
                                         r".*\] and 50 more; e\.g\. row 0: 'run1'; expected numbers"):
        fp.MAF(**QUICK).fit(frame)


def test_one_bad_cell_names_its_row(frame):
    b = frame["b"].astype(object)
    b[7] = "1.2.3"
    frame["b"] = b
    with pytest.raises(ValueError, match=r"theta: column 'b' holds non-numbers .* in rows \[7\]; e\.g\. row 7: "
                                         r"'1\.2\.3'"):
        fp.MAF(**QUICK).fit(frame)


def test_bool_column_and_text_array(frame):
    frame["flag"] = frame["a"] > 0
    with pytest.raises(ValueError, match=r"theta: column 'flag' holds booleans"):
        fp.MAF(**QUICK).fit(frame)
    with pytest.raises(ValueError, match=r"theta: holds text \(dtype <U3\); expected numbers"):
        fp.MAF(**QUICK).fit(np.full((60, 2), "1.5"))


def test_duplicated_columns_are_named(frame):
    frame.columns = ["a", "a"]
    with pytest.raises(ValueError, match=r"theta: duplicated column names \['a'\]; each parameter needs one column"):
        fp.MAF(**QUICK).fit(frame)


# --------------------------------------------------------------- F. NaN points
def test_nan_points_are_refused_naming_rows(maf):
    x = np.array([[0.5, -1.0, 2.0], [np.nan, -1.0, 2.0], [0.5, -1.0, 2.0], [0.5, np.nan, np.nan]])
    with pytest.raises(ValueError, match=r"theta: NaN in rows \[1, 3\]; e\.g\. row 1: \[nan, -1\.0, 2\.0\]"):
        maf.log_prob(x)
    with pytest.raises(ValueError, match=r"theta: NaN in rows \[1, 3\]"):
        maf.log_prob(x, backend="torch")
    with pytest.raises(ValueError, match=r"theta: NaN in rows \[1, 3\]"):
        maf.inverse_transform(x)
    with pytest.raises(ValueError, match=r"theta: NaN in rows \[0\]"):
        maf.log_prob(x[1])
    with pytest.raises(ValueError, match=r"theta: NaN in rows \[0\]"):
        fp.UniformPrior([(0, 1)] * 3).log_prob(x[1])
    # Outside the bounds (infinite included) is a zero density, not an error.
    assert np.all(maf.log_prob(np.array([[np.inf, 0.0, 0.0], [0.5, -np.inf, 0.0]])) == -np.inf)


def test_check_inside_names_a_nan_column():
    x = np.array([[0.5, 0.5], [0.5, np.nan]])
    with pytest.raises(ValueError, match=r"theta: samples outside the bounds .* rows \[1\]; e\.g\. row 1, column 1: "
                                         "nan"):
        check_inside(x, np.zeros(2), np.ones(2))


# --------------------------------------------------------------- G. training settings and divergence
@pytest.mark.parametrize("lr", [np.inf, np.nan, 0, -1e-3, "0.01", True])
def test_learning_rate_refused_at_construction(lr):
    settings = {**QUICK, "learning_rate": lr}
    with pytest.raises(ValueError, match=r"learning_rate: expected a positive finite number .* got "):
        fp.MAF(**settings)
    with pytest.raises(ValueError, match=r"learning_rate: expected a positive finite number"):
        fp.PiecewiseFlow(**settings)


@pytest.mark.parametrize("key, bad", [("max_epochs", 0), ("batch_size", 2.5), ("patience", 0),
                                      ("hidden_features", "64"), ("n_transforms", np.inf)])
def test_other_settings_name_themselves(key, bad):
    with pytest.raises(ValueError, match=rf"{key}: expected"):
        fp.MAF(**{**QUICK, key: bad})


def test_settings_changed_after_construction_are_checked_by_fit():
    f = fp.MAF(**QUICK)
    f.learning_rate = np.inf
    with pytest.raises(ValueError, match="learning_rate: expected a positive finite number"):
        f.fit(np.random.default_rng(0).normal(size=(50, 2)))


def test_divergence_raises_instead_of_returning_an_untrained_flow():
    x = np.random.default_rng(0).normal(size=(200, 2))
    with pytest.raises(RuntimeError, match=r"loss became (nan|-?inf) at epoch 1 \(learning_rate=1e\+30\), before any "
                                           r"epoch improved on the untrained flow: training diverged"):
        fp.MAF(seed=0, **{**QUICK, "learning_rate": 1e30}).fit(x)


def test_divergence_after_progress_warns_and_keeps_the_best_epoch():
    record = TrainingRecord(best_epoch=7)
    with pytest.warns(UserWarning, match=r"MAF: the training loss became nan at epoch 9 .* kept epoch 7"):
        _diverged("MAF", 9, float("nan"), "training", 3e-3, record, 1.25)


# --------------------------------------------------------------- H. warnings on what a flow cannot learn
def test_constant_column_warns_naming_it():
    x = np.random.default_rng(0).normal(size=(100, 3))
    x[:, 1] = 3.0
    w = np.ones(100)
    x[0, 1], w[0] = 5.0, 0.0  # a zero-weight row does not count as spread
    with pytest.warns(UserWarning, match=r"theta: column\(s\) \['b'\] take one value \(3\) in all 99 samples with "
                                         "positive weight"):
        fp.MAF(seed=0, **{**QUICK, "max_epochs": 3}).fit(x, weights=w, names=["a", "b", "c"])


def test_tiny_effective_sample_size_warns():
    x = np.random.default_rng(0).normal(size=(100, 2))
    w = np.full(100, 1e-6)
    w[0] = 1.0
    with pytest.warns(UserWarning, match=r"weights: effective sample size \(Kish\) 1\.0 of 100 samples with "
                                         r"positive weight, below 10"):
        fp.MAF(seed=0, **{**QUICK, "max_epochs": 3}).fit(x, weights=w)


def test_ordinary_samples_do_not_warn():
    x = np.random.default_rng(0).normal(size=(100, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        fp.MAF(seed=0, **{**QUICK, "max_epochs": 3}).fit(x)


# --------------------------------------------------------------- I. what a likelihood may return
@pytest.mark.parametrize("value, expected", [(1.5, 1.5), (3, 3.0), (np.float32(1.5), 1.5), (np.int64(2), 2.0),
                                             (np.array(2.5), 2.5), (np.array([2.5]), 2.5), (-np.inf, -np.inf)])
def test_loglike_accepts_real_numbers_and_size_one_arrays(value, expected):
    assert CheckedLikelihood(lambda t: value)(np.zeros(2)) == expected


@pytest.mark.parametrize("value, message", [
    ("1.5", r"loglike returned '1\.5' \(type str\) at theta=\[0\.0, 0\.0\]: text is not a number"),
    (True, r"loglike returned True \(type bool\) at theta=\[0\.0, 0\.0\]: a bool is not a log-likelihood"),
    (np.True_, r"a bool is not a log-likelihood"),
    (np.array([1.0, 2.0]), r"loglike returned an array of shape \(2,\) at theta=\[0\.0, 0\.0\]; expected one number"),
    (1j, r"an array of dtype complex128 is not a real number"),
    (None, r"loglike returned None \(type NoneType\)"),
    (np.nan, r"loglike returned nan at theta=\[0\.0, 0\.0\]; return -inf for excluded points"),
])
def test_loglike_refuses_text_bools_and_arrays(value, message):
    with pytest.raises(ValueError, match=message):
        CheckedLikelihood(lambda t: value)(np.zeros(2))


# --------------------------------------------------------------- B, J. the command line
@pytest.fixture(scope="module")
def chains(tmp_path_factory, nested):
    """A flow and chains on the unit square: clean, all-NaN and partly-NaN logL (CSV and PolyChord files)."""
    d = tmp_path_factory.mktemp("chains")
    nested.to_csv(d / "run.csv")
    table = pd.read_csv(d / "run.csv", index_col=0)
    table.assign(logL=np.nan).to_csv(d / "allnan.csv")
    part = table.copy()
    part.loc[::10, "logL"] = np.nan
    part.to_csv(d / "partnan.csv")
    births = np.full(len(table), -np.inf)
    np.savetxt(d / "pcnan_dead-birth.txt", np.column_stack([table[["a", "b"]], np.full(len(table), np.nan), births]))
    (d / "pcnan.paramnames").write_text("a a\nb b\n")
    (d / "sub").mkdir()
    fp.MAF(seed=0, **{**QUICK, "max_epochs": 20}).fit(nested, bounds=BOX).save(d / "run.flow")
    return d


def main(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_refuses_chains_whose_logL_is_all_nan(chains, capsys, monkeypatch):
    monkeypatch.chdir(chains)
    code, out, err = main(["check", "run.flow", "allnan", "-o", "c.png"], capsys)
    assert code == 1 and "spread" not in out
    assert err.strip() == ("flowprior: error: chains allnan: logL is NaN in all 2000 rows; nothing to use (check "
                           "the likelihood that wrote these chains)")
    code, out, err = main(["check", "run.flow", "pcnan", "-o", "c.png"], capsys)
    assert code == 1
    assert "chains pcnan: no samples (anesthetic dropped every row: logL is NaN in all of them)" in err


def test_check_counts_dropped_nan_rows_and_skips_the_evidence(chains, capsys, monkeypatch):
    monkeypatch.chdir(chains)
    code, out, err = main(["check", "run.flow", "partnan", "-o", "c.png", "-n", "300"], capsys)
    assert code == 0, err
    assert ("flowprior: warning: chains partnan: dropped 200 of 2000 rows whose logL is NaN (rows [0, 10, 20, 30, "
            "40 and 195 more]); 1800 rows are used") in err
    assert "1800 samples" in out
    assert "posterior tracking: skipped: 200 of 2000 rows have a NaN logL, so the chains' evidence is unknown" in out
    assert "KL(P || flow)" not in out


def test_check_on_clean_chains_tracks_the_posterior(chains, capsys, monkeypatch):
    monkeypatch.chdir(chains)
    code, out, err = main(["check", "run.flow", "run", "-o", "c.png", "-n", "300"], capsys)
    assert code == 0, err
    kl = float(out.split("KL(P || flow)")[1].split()[0])
    zerr = float(out.split("KL(P || flow)")[1].split()[2])
    assert np.isfinite(kl) and np.isfinite(zerr) and "warning" not in err


def test_sample_refuses_a_huge_n(chains, capsys, tmp_path):
    code, _, err = main(["sample", chains / "run.flow", "-n", 10**11, "-o", tmp_path / "s.csv"], capsys)
    assert code == 1
    assert err == ("flowprior: error: -n: 100000000000 is more than 100000000 (the most one command draws); split "
                   "the work into several commands with different --seed\n")
    assert not (tmp_path / "s.csv").exists()


def test_sample_in_chunks_writes_what_one_draw_gives(chains, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(cli, "SAMPLE_CHUNK", 7)
    code, _, err = main(["sample", chains / "run.flow", "-n", 20, "--seed", 3, "-o", tmp_path / "s.csv"], capsys)
    assert code == 0, err
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0] == "a,b" and len(lines) == 21
    x = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(x, fp.load(chains / "run.flow").sample(20, seed=3))
    assert [f.name for f in tmp_path.iterdir()] == ["s.csv"]  # no temporary file left behind


def test_missing_output_directory_is_named_before_training(chains, capsys, monkeypatch):
    monkeypatch.chdir(chains)

    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking the output path")

    monkeypatch.setattr(fp.MAF, "fit", no_training)
    code, _, err = main(["train", "run", "-o", "missing_dir/x.flow"], capsys)
    assert code == 1
    assert err == "flowprior: error: -o missing_dir/x.flow: directory missing_dir does not exist; create it first\n"
    code, _, err = main(["sample", "run.flow", "-n", 5, "-o", "missing_dir/s.csv"], capsys)
    assert code == 1 and "directory missing_dir does not exist" in err
    code, _, err = main(["check", "run.flow", "run", "-o", "sub"], capsys)
    assert code == 1 and "-o sub: is a directory; give a file name" in err


def test_chains_directory_says_what_was_expected_in_plain_words(chains, capsys, monkeypatch):
    monkeypatch.chdir(chains.parent)
    code, _, err = main(["train", chains.name, "-o", "x.flow"], capsys)
    assert code == 1 and err.count("\n") == 1 and "<function" not in err
    assert (f"chains {chains.name}: a directory without UltraNest or NestedFit output; give a chain root inside it, "
            f"e.g. {chains.name}/run for {chains.name}/run_dead-birth.txt (roots found in {chains.name}: "
            f"{chains.name}/allnan, {chains.name}/partnan, {chains.name}/pcnan, {chains.name}/run)") in err


def test_chain_root_without_chain_files_lists_the_formats_tried(chains, capsys, monkeypatch):
    monkeypatch.chdir(chains)
    code, _, err = main(["train", "ru", "-o", "x.flow"], capsys)  # run.csv starts with 'ru' but is not ru's chain
    assert code == 1 and err.count("\n") == 1 and "<function" not in err
    assert ("chains ru: no chain files for this root; looked for PolyChord ru_dead-birth.txt; MultiNest "
            "rudead-birth.txt or ruev.dat; Cobaya ru.1.txt, ru.2.txt, ...; UltraNest ru/results/points.hdf5; "
            "NestedFit ru/nf_output_points.txt; GetDist ru.txt or ru_1.txt, ...; CSV written by anesthetic "
            "ru.csv (roots found in .: allnan, partnan, pcnan, run)") in err


def test_defensive_flow_names_nan_u():
    from flowprior.flows.defensive import DefensiveFlow

    cube = fp.MAF(seed=0, **QUICK).fit(np.random.default_rng(1).uniform(0.2, 0.8, size=(500, 2)),
                                       bounds=[(0, 1), (0, 1)])
    with pytest.raises(ValueError, match=r"^u: NaN in rows \[1\]"):
        DefensiveFlow(cube, 0.1).log_prob([[0.5, 0.5], [np.nan, 0.5]])
