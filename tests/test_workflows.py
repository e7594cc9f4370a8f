"""Plain and enhanced nested-sampling runs (dynesty) against a closed-form evidence."""

import dataclasses

import numpy as np
import pytest

import flowprior as fp

pytest.importorskip("dynesty", reason="dynesty is not installed")

D = 3
MU = np.array([0.4, 0.5, 0.6])
COV = np.diag([0.03, 0.05, 0.04]) ** 2
COV[0, 1] = COV[1, 0] = 0.6 * 0.03 * 0.05
CI = np.linalg.inv(COV)
LOGNORM = -0.5 * np.linalg.slogdet(2 * np.pi * COV)[1]
LO, HI = np.array([0.0, -1.0, 0.0]), np.array([1.0, 2.0, 2.0])
TRUTH = -np.sum(np.log(HI - LO))  # normalised Gaussian well inside the box


def loglike(x):
    r = x - MU
    return -0.5 * r @ CI @ r + LOGNORM


def prior_transform(u):
    return LO + (HI - LO) * u


@pytest.fixture(scope="module")
def enhanced():
    return fp.enhanced_run(loglike, prior_transform, D, nlive=150, nlive_low=40, seed=3, names=["a", "b", "c"])


@pytest.fixture(scope="module")
def plain():
    return fp.run(loglike, prior_transform, D, nlive=150, seed=1, names=["a", "b", "c"])


def test_plain_run_matches_analytic_evidence(plain):
    res = plain
    assert abs(res.logZ - TRUTH) < 3 * res.logZerr
    assert res.samples.logZ() == pytest.approx(res.logZ, abs=0.05)
    assert list(res.samples.drop_labels().columns[:3]) == ["a", "b", "c"]
    assert res.ncall["total"] > 0 and res.samples_u.shape[1] == D


def test_enhanced_run_unbiased_and_cheaper(enhanced, plain):
    res = enhanced
    assert abs(res.logZ - TRUTH) < 3 * res.logZerr
    # The posterior, in physical parameters, is the Gaussian's.
    post = res.samples[["a", "b", "c"]]
    w = res.samples.get_weights()
    mean = np.average(post.to_numpy(), axis=0, weights=w)
    neff = w.sum() ** 2 / (w**2).sum()
    assert np.all(np.abs(mean - MU) < 4 * np.sqrt(np.diag(COV) / neff))
    assert res.ncall["total"] == res.ncall["low"] + res.ncall["check"] + res.ncall["high"]
    # One level: nlive_low 40 is above nlive // 5, so the low stage cannot grow;
    # its check spent at most max(100, nlive) calls.
    assert [lv.nlive_low for lv in res.low_checks] == [40]
    assert 0 < res.ncall["check"] == res.low_checks[0].check_calls <= 150
    # With the flow as prior the sampler starts next to the posterior: far fewer
    # iterations than a plain run of the same nlive.  (Calls per iteration
    # depend on dynesty's sampler choice, so iterations are what is compared.)
    assert res.raw.niter < 0.6 * plain.raw.niter
    assert type(res.flow) is fp.MAF and res.low.ncall["total"] == res.ncall["low"]
    # A Gaussian's flow has no missing tails: the high stage may bound early.
    assert res.low_checks[0].tail is not None and _tame(res.low_checks[0], res.flow)


def test_a_trained_flow_is_a_prior_transform(enhanced):
    """A previous posterior (the flow over the hypercube) as the prior of a plain run.

    The evidence is then E_q[L], which Monte Carlo over flow samples gives closely.
    """
    flow = enhanced.flow

    def like_u(u):
        return loglike(prior_transform(u))

    res = fp.run(like_u, flow, D, nlive=100, seed=0)
    from scipy.special import logsumexp

    draws = flow.sample(20000, seed=1)
    logl = np.array([like_u(u) for u in draws])
    mc = logsumexp(logl) - np.log(len(logl))
    mc_err = np.sqrt(np.var(np.exp(logl - logl.max())) / len(logl)) / np.mean(np.exp(logl - logl.max()))
    assert abs(res.logZ - mc) < 3 * np.hypot(res.logZerr, mc_err)


def test_bad_input():
    with pytest.raises(ValueError, match="sampler: expected one of"):
        fp.run(loglike, prior_transform, D, sampler="multinest")
    with pytest.raises(ValueError, match=r"nlive_low \(200\) must be smaller than nlive \(100\)"):
        fp.enhanced_run(loglike, prior_transform, D, nlive=100, nlive_low=200)
    with pytest.raises(ValueError, match=r"loglike returned nan at theta="):
        fp.run(lambda x: np.nan, prior_transform, D, nlive=20, seed=0)
    with pytest.raises(ValueError, match=r"prior_transform returned shape \(2,\)"):
        fp.run(loglike, lambda u: u[:2], D, nlive=20, seed=0)
    with pytest.raises(ValueError, match="prior_transform returned non-finite values"):
        fp.run(loglike, lambda u: np.full(D, np.inf), D, nlive=20, seed=0)
    # A misspelt flow is refused before the low stage runs: the likelihood is never called.
    counter = Counting()
    with pytest.raises(ValueError, match=r"flow: expected one of \['auto', 'maf', 'nsf', 'piecewise'\]"):
        fp.enhanced_run(counter, prior_transform, D, nlive=100, flow="nfs")
    with pytest.raises(ValueError, match=r"transform: expected one of \['slab', 'rosenblatt'\]"):
        fp.enhanced_run(counter, prior_transform, D, nlive=100, transform="bijective")
    assert counter.calls == 0


def test_enhanced_run_with_a_spline_flow():
    res = fp.enhanced_run(loglike, prior_transform, D, nlive=200, seed=1, flow="nsf")
    assert isinstance(res.flow, fp.NSF) and res.flow.bins == 8
    assert abs(res.logZ - TRUTH) < 3 * res.logZerr


def test_repartitioned_likelihood_pickles(enhanced):
    import pickle

    from flowprior.workflows.repartition import RepartitionedLikelihood

    like = RepartitionedLikelihood(loglike, prior_transform, enhanced.flow)
    back = pickle.loads(pickle.dumps(like))
    u = enhanced.flow.sample(5, seed=0)
    assert [back(p) for p in u] == [like(p) for p in u]
    # log L' = log L - log q exactly.
    assert like(u[0]) == pytest.approx(loglike(prior_transform(u[0])) - enhanced.flow.log_prob(u[0]), abs=1e-12)


def test_defensive_mixture_transform_and_density(enhanced):
    from flowprior.flows.defensive import DefensiveFlow

    guard = DefensiveFlow(enhanced.flow, 0.2)
    v = np.random.default_rng(0).uniform(size=(4000, D))
    u = guard(v)
    # First coordinate below epsilon: the uniform component, rescaled within its slab.
    low = v[:, 0] < 0.2
    assert np.allclose(u[low, 0], v[low, 0] / 0.2) and np.array_equal(u[low, 1:], v[low, 1:])
    # Identical rows, identical outputs (no RNG).
    assert np.array_equal(guard(np.vstack([v[:5], v[:5]]))[5:], u[:5])
    # Density: (1 - eps) q + eps, never below eps.
    lp = guard.log_prob(u)
    assert np.allclose(lp, np.logaddexp(np.log(0.8) + enhanced.flow.log_prob(u), np.log(0.2)))
    assert np.all(lp >= np.log(0.2) - 1e-12)
    with pytest.raises(ValueError, match="epsilon"):
        DefensiveFlow(enhanced.flow, 1.5)


class Counting:
    """A likelihood that counts its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return loglike(x)


def test_outdir_resumes_at_the_unfinished_stage(tmp_path):
    settings = dict(nlive=100, nlive_low=40, seed=8, names=["a", "b", "c"])
    first = fp.enhanced_run(loglike, prior_transform, D, outdir=tmp_path / "run", **settings)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        ".lock", "check.npz", "checks.json", "config.json", "flow.flow", "high.dynesty", "high.dynesty.sha256",
        "high.npz", "low.dynesty", "low.dynesty.sha256", "low.npz", "problem.json"]
    # Finished: nothing is rerun; only the fingerprint's points are evaluated again.
    counter = Counting()
    again = fp.enhanced_run(counter, prior_transform, D, outdir=tmp_path / "run", **settings)
    stages = ("low", "check", "high", "total")
    assert counter.calls == again.ncall["fingerprint"] == 6 and again.logZ == first.logZ
    assert [again.ncall[k] for k in stages] == [first.ncall[k] for k in stages]
    assert again.samples.logZ() == pytest.approx(first.samples.logZ(), abs=1e-12)
    # Interrupted after the low stage: only the flow and the high stage are redone,
    # and per-stage seeds give exactly the uninterrupted answer.
    (tmp_path / "run" / "high.npz").unlink()
    (tmp_path / "run" / "flow.flow").unlink()
    counter = Counting()
    resumed = fp.enhanced_run(counter, prior_transform, D, outdir=tmp_path / "run", **settings)
    assert counter.calls == first.ncall["high"] + resumed.ncall["fingerprint"]
    assert resumed.logZ == first.logZ
    assert np.array_equal(resumed.samples_u, first.samples_u)


class FailsAfter:
    """A likelihood that raises after ``n`` calls: an interruption inside a stage."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def __call__(self, x):
        self.calls += 1
        if self.calls > self.n:
            raise RuntimeError("interrupted")
        return loglike(x)


def test_interrupted_stage_resumes_from_the_sampler_checkpoint(tmp_path):
    settings = dict(nlive=100, nlive_low=40, seed=8, names=["a", "b", "c"], run_kwargs={"checkpoint_every": 0})
    first = fp.enhanced_run(loglike, prior_transform, D, outdir=tmp_path / "whole", **settings)
    stop = first.ncall["low"] + first.ncall["check"] + first.ncall["high"] // 2
    with pytest.raises(RuntimeError, match="interrupted"):
        fp.enhanced_run(FailsAfter(stop), prior_transform, D, outdir=tmp_path / "cut", **settings)
    names = {p.name for p in (tmp_path / "cut").iterdir()}
    assert {"low.npz", "flow.flow", "high.dynesty"} <= names and "high.npz" not in names
    counter = Counting()
    resumed = fp.enhanced_run(counter, prior_transform, D, outdir=tmp_path / "cut", **settings)
    # Only the rest of the high stage ran, and it continued the same random
    # sequence: the answer is the uninterrupted run's, bit for bit.
    assert 0 < counter.calls <= first.ncall["high"] - first.ncall["high"] // 2 + 2 * settings["nlive"]
    assert resumed.logZ == first.logZ
    assert np.array_equal(resumed.samples_u, first.samples_u)


def test_unpicklable_likelihood_runs_without_checkpoints(tmp_path):
    with pytest.warns(UserWarning, match="checkpoints are off"):
        res = fp.enhanced_run(lambda x: loglike(x), prior_transform, D, nlive=60, nlive_low=30, seed=2,
                              outdir=tmp_path)
    assert np.isfinite(res.logZ) and not (tmp_path / "low.dynesty").exists()


def test_outdir_with_other_settings_is_refused(tmp_path):
    fp.enhanced_run(loglike, prior_transform, D, nlive=60, nlive_low=30, seed=1, outdir=tmp_path)
    with pytest.raises(ValueError, match=r"other settings \(nlive: 60 there, 80 now\)"):
        fp.enhanced_run(loglike, prior_transform, D, nlive=80, nlive_low=30, seed=1, outdir=tmp_path)
    with pytest.raises(ValueError, match=r"other settings \(transform: 'rosenblatt' there, 'slab' now\)"):
        fp.enhanced_run(loglike, prior_transform, D, nlive=60, nlive_low=30, seed=1, outdir=tmp_path,
                        transform="slab")
    # A flow object is recorded with its settings: other settings are other flows.
    maf = dict(max_epochs=20, hidden_features=(8, 8), progress=False)
    fp.enhanced_run(loglike, prior_transform, D, nlive=60, nlive_low=30, seed=1, outdir=tmp_path / "maf",
                    flow=fp.MAF(n_transforms=1, **maf))
    with pytest.raises(ValueError, match=r"other settings \(flow: .*n_transforms', 1.* there, .*n_transforms', 2"):
        fp.enhanced_run(loglike, prior_transform, D, nlive=60, nlive_low=30, seed=1, outdir=tmp_path / "maf",
                        flow=fp.MAF(n_transforms=2, **maf))
    with pytest.raises(ValueError, match="pass an int seed"):
        fp.enhanced_run(loglike, prior_transform, D, nlive=80, nlive_low=30, outdir=tmp_path / "new")
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "low.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="no config.json"):
        fp.enhanced_run(loglike, prior_transform, D, nlive=80, nlive_low=30, seed=1, outdir=stray)


MUS, SD = [np.array([0.25, 0.3]), np.array([0.75, 0.7])], 0.04


def bimodal(x):
    """Two separated Gaussian modes (weights 0.7, 0.3) in a unit box: analytic logZ = 0."""
    lps = [np.log(wk) - 0.5 * np.sum((x - m) ** 2) / SD**2 - np.log(2 * np.pi * SD**2) for wk, m in zip((0.7, 0.3), MUS)]
    return float(np.logaddexp(*lps))


def unit(u):
    return u


def _tame(check, flow) -> bool:
    """Whether dynesty's high stage bounds early behind ``flow`` after ``check``."""
    from flowprior.integrations.base import HighStart
    from flowprior.integrations.dynesty import ADAPTER

    return check is not None and ADAPTER.tame(HighStart(check.tail, len(flow.pieces_)))


@pytest.mark.parametrize("transform", ["slab", "rosenblatt"])
def test_auto_flow_is_piecewise_for_two_modes(transform):
    from flowprior.workflows.mixing import volume_weights

    res = fp.enhanced_run(bimodal, unit, 2, nlive=150, nlive_low=60, seed=4, transform=transform)
    assert isinstance(res.flow, fp.PiecewiseFlow) and len(res.flow.pieces_) == 2
    assert res.flow.transform == transform and res.flow.bijective == (transform == "rosenblatt")
    assert not _tame(res.low_checks[-1], res.flow)  # early ellipsoids would clip the pieces' slabs
    assert abs(res.logZ - 0.0) < 3 * res.logZerr
    w = res.samples.get_weights()
    right = res.samples.iloc[:, 0].to_numpy() > 0.5
    neff = w.sum() ** 2 / (w**2).sum()
    assert w[right].sum() / w.sum() == pytest.approx(0.3, abs=4 * np.sqrt(0.3 * 0.7 / neff))
    # The high stage's pieces are weighted by the check's masses times their widening volume.
    masses = np.array(res.low_checks[-1].masses)
    assert masses.sum() == pytest.approx(1.0) and (masses > 0).all()
    assert np.allclose(res.flow.weights_, volume_weights(masses, res.flow.piece_scales_, 2))


def test_a_low_stage_that_clusters_is_redone_where_the_adapter_asks(monkeypatch, tmp_path):
    from flowprior.integrations.dynesty import Dynesty

    settings = dict(nlive=150, nlive_low=60, seed=4)
    once = fp.enhanced_run(bimodal, unit, 2, **settings)
    single = fp.enhanced_run(loglike, prior_transform, D, nlive=100, nlive_low=40, seed=5)
    monkeypatch.setattr(Dynesty, "multimodal_low", lambda self, d, n, nlive, s: (n + 20, self.low_settings(d, n, s)))
    redone = fp.enhanced_run(bimodal, unit, 2, **settings, outdir=tmp_path / "run")
    # Two low runs, both counted, the second at the adapter's live points; a unimodal low stage is kept.
    assert redone.ncall["low"] > 1.5 * once.ncall["low"]
    assert redone.low.samples["nlive"].max() == 80 and once.low.samples["nlive"].max() == 60
    assert not np.array_equal(redone.low.samples_u, once.low.samples_u)
    assert fp.enhanced_run(loglike, prior_transform, D, nlive=100, nlive_low=40, seed=5).ncall == single.ncall
    # A resumed run reuses the redone low stage and reports its calls.
    (tmp_path / "run" / "high.npz").unlink()
    resumed = fp.enhanced_run(bimodal, unit, 2, **settings, outdir=tmp_path / "run")
    assert resumed.ncall["low"] == redone.ncall["low"] and resumed.logZ == redone.logZ


def test_piecewise_run_resumes_with_its_checked_masses(tmp_path):
    settings = dict(nlive=150, nlive_low=60, seed=4, outdir=tmp_path / "run")
    first = fp.enhanced_run(bimodal, unit, 2, **settings)
    assert first.low_checks[-1].masses is not None
    (tmp_path / "run" / "high.npz").unlink()
    resumed = fp.enhanced_run(bimodal, unit, 2, **settings)
    assert resumed.low_checks[-1].masses == first.low_checks[-1].masses
    assert np.allclose(resumed.flow.weights_, first.flow.weights_)
    assert resumed.logZ == first.logZ and np.array_equal(resumed.samples_u, first.samples_u)


def test_pool_runs_the_flow_prior_in_workers():
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(2) as pool:
        res = fp.enhanced_run(loglike, prior_transform, D, nlive=100, nlive_low=40, seed=5, pool=pool)
    assert abs(res.logZ - TRUTH) < 3 * res.logZerr


def test_nan_in_the_high_stage_names_the_physical_parameters(monkeypatch):
    """A NaN from the user's likelihood during the flow-prior stage reports theta, not the flow's u."""
    import flowprior.workflows.levels as levels

    state = {"armed": False}

    def shifted_prior(u):
        return 10.0 + prior_transform(u)  # every physical coordinate >= 9, every u in [0, 1]

    def flaky(x):
        return np.nan if state["armed"] else loglike(x - 10.0)

    train = levels.train

    def train_then_arm(*args, **kwargs):
        flow = train(*args, **kwargs)
        state["armed"] = True
        return flow

    monkeypatch.setattr(levels, "train", train_then_arm)
    with pytest.raises(ValueError, match=r"loglike returned nan at theta=\[") as err:
        fp.enhanced_run(flaky, shifted_prior, D, nlive=40, nlive_low=20, flow="maf", seed=0)
    theta = np.array(eval(str(err.value).split("theta=")[1].split("]")[0] + "]"))
    assert theta.shape == (D,) and np.all(theta >= 9.0)


def test_repartitioned_likelihood_is_zero_outside_the_cube_without_calling_the_user(enhanced):
    """The enhanced run's flow is unbounded; past the cube the old prior is zero."""
    from flowprior.workflows.repartition import RepartitionedLikelihood

    assert enhanced.flow.bounds_ == [(None, None)] * D

    def must_not_be_called(_):
        raise AssertionError("user function called outside the unit cube")

    like = RepartitionedLikelihood(must_not_be_called, must_not_be_called, enhanced.flow)
    for u in ([-1e-9, 0.5, 0.5], [0.5, 1.0 + 1e-9, 0.5], [np.nan, 0.5, 0.5]):
        assert like(np.array(u)) == -np.inf


def test_low_stage_grows_when_its_flow_fails_the_check(tmp_path):
    """grow_below=0.999 fails any real flow: the low stage goes from 10 to 40 live points.

    Unbroadened, so that the score is the raw ESS fraction, below 1 for any
    flow that is not the posterior itself.  At the last level (40 = nlive // 5)
    the failing flow's base is widened, and widened it passes (a flow wider
    than the posterior scores above 1).
    """
    settings = dict(nlive=200, nlive_low=10, seed=2, names=["a", "b", "c"], grow_below=0.999, broaden=1.0)
    res = fp.enhanced_run(loglike, prior_transform, D, outdir=tmp_path / "run", **settings)
    levels = res.low_checks
    assert [lv.nlive_low for lv in levels] == [10, 40]
    assert levels[0].broaden == 1.0 and 0 < levels[0].ess_fraction < 0.999
    # The last level: its check at broaden 1 failed, the first widening (x1.125) passed:
    # the low run's points showed no tail there, so no wider one was checked instead.  Its
    # draws show a Gaussian too close to the widened base for a rebase to be worth a check.
    assert levels[1].broaden == 1.125 and levels[1].score >= 0.999 and levels[1].base is None
    assert levels[1].check_calls > 200  # two checks of up to 200 draws each
    assert res.flow.base_scale_ == 1.125
    assert res.low.samples["nlive"].max() == 40
    # Both levels' calls count; the flow is the second level's.
    assert res.ncall["low"] == levels[0].low_calls + levels[1].low_calls
    assert res.ncall["check"] == levels[0].check_calls + levels[1].check_calls
    assert res.ncall["total"] == res.ncall["low"] + res.ncall["check"] + res.ncall["high"]
    assert abs(res.logZ - TRUTH) < 3 * res.logZerr
    # A rerun loads every level, widened base included: no call but the fingerprint's, same answer.
    counter = Counting()
    again = fp.enhanced_run(counter, prior_transform, D, outdir=tmp_path / "run", **settings)
    assert counter.calls == again.ncall["fingerprint"] > 0 and again.logZ == res.logZ
    assert {k: v for k, v in again.ncall.items() if k != "fingerprint"} == {
        k: v for k, v in res.ncall.items() if k != "fingerprint"}
    assert again.flow.base_scale_ == 1.125
    # Without outdir the same seed gives the same run.
    fresh = fp.enhanced_run(loglike, prior_transform, D, **settings)
    assert fresh.logZ == res.logZ and fresh.ncall == {**res.ncall, "fingerprint": 0}


def test_an_mcmc_low_stage_widens_its_failing_flow_before_growing():
    """The growth test's settings with a random-walk low stage: the 10-live flow is widened before it grows.

    Behind uniform sampling the failing first level grows at once (its
    base stays 1.0); here it is checked at wider bases first, and grows
    only because none reaches the (impossible) 0.999.  At a reachable
    threshold the first level's widened (then rebased) flow is kept.
    """
    settings = dict(nlive=200, nlive_low=10, seed=2, broaden=1.0, sampler_kwargs={"sample": "rwalk"})
    res = fp.enhanced_run(loglike, prior_transform, D, grow_below=0.999, **settings)
    first = res.low_checks[0]
    assert [lv.nlive_low for lv in res.low_checks] == [10, 40]
    assert first.broaden > 1.0 and first.check_calls > 200 and first.score < 0.999
    kept = fp.enhanced_run(loglike, prior_transform, D, grow_below=0.95, **settings)  # 0.91 at base 1
    assert [lv.nlive_low for lv in kept.low_checks] == [10]
    # Widened, it passed; rebased on the Gaussian its draws showed, it became all but the posterior.
    assert kept.low_checks[0].base is not None and kept.low_checks[0].ess_fraction > 0.99
    assert abs(kept.logZ - TRUTH) < 3 * kept.logZerr


def test_a_rebased_flow_resumes_from_its_record(tmp_path):
    """The widened, then rebased, flow of an MCMC low stage: a rerun on the same outdir rebuilds it from the record."""
    settings = dict(nlive=200, nlive_low=10, seed=2, broaden=1.0, sampler_kwargs={"sample": "rwalk"}, grow_below=0.95)
    res = fp.enhanced_run(loglike, prior_transform, D, outdir=tmp_path / "run", **settings)
    mean, cov = res.low_checks[0].base
    assert np.allclose(res.flow.base_[0][0], mean) and np.allclose(res.flow.base_[1][0], np.linalg.cholesky(cov))
    counter = Counting()
    again = fp.enhanced_run(counter, prior_transform, D, outdir=tmp_path / "run", **settings)
    assert counter.calls == again.ncall["fingerprint"] > 0 and again.logZ == res.logZ
    assert np.array_equal(again.flow.base_[1], res.flow.base_[1]) and again.low_checks == res.low_checks


def test_a_rebase_that_checks_worse_is_dropped(monkeypatch):
    """A rebased base far narrower than the posterior scores worse than the widened flow: the widened one is kept.

    Its check still counts: the level's calls include a third check.
    """
    import flowprior.workflows.widening as widening

    monkeypatch.setattr(widening, "latent_gaussian", lambda z, log_ratio: (np.zeros(z.shape[1]), 0.01 * np.eye(z.shape[1])))
    settings = dict(nlive=200, nlive_low=10, seed=2, broaden=1.0, sampler_kwargs={"sample": "rwalk"})
    res = fp.enhanced_run(loglike, prior_transform, D, grow_below=0.95, **settings)
    check = res.low_checks[0]
    assert check.base is None and check.broaden > 1.0 and check.score >= 0.95
    assert res.flow.base_ is None and res.flow.base_scale_ == check.broaden
    assert check.check_calls > 2 * 200 and res.ncall["check"] == check.check_calls
    assert abs(res.logZ - TRUTH) < 3 * res.logZerr


def test_last_level_that_still_fails_warns(monkeypatch):
    import dataclasses

    import flowprior.workflows.widening as widening

    # No widening: the last level's flow fails as trained.
    monkeypatch.setattr(widening, "DEFAULTS", dataclasses.replace(widening.DEFAULTS, widen=()))
    with pytest.warns(UserWarning, match=r"poor importance sampler.*nlive_low cannot grow"):
        res = fp.enhanced_run(loglike, prior_transform, D, nlive=200, nlive_low=10, seed=2, grow_below=0.999,
                              broaden=1.0)
    assert [lv.nlive_low for lv in res.low_checks] == [10, 40] and res.low_checks[1].broaden == 1.0


def test_a_flow_that_passes_its_check_keeps_the_first_level():
    counter = Counting()
    res = fp.enhanced_run(counter, prior_transform, D, nlive=200, nlive_low=10, seed=2, grow_below=1e-6)
    assert [lv.nlive_low for lv in res.low_checks] == [10]
    # The check's 200 draws are the high stage's initial live points: every
    # call is counted once, in "check", and none is made twice.
    assert counter.calls == res.ncall["total"] == res.ncall["low"] + res.ncall["check"] + res.ncall["high"]
    # One check of 200 draws, plus one per width tried if the 10-live flow showed a tail.
    from flowprior.workflows.plan import DEFAULTS

    assert res.ncall["check"] == res.low_checks[0].check_calls <= 200 * (1 + len(DEFAULTS.widen))
    skipped = fp.enhanced_run(loglike, prior_transform, D, nlive=200, nlive_low=10, seed=2, grow_below=None)
    assert skipped.low_checks == [] and skipped.ncall["check"] == 0
    # The check draws from its own stream: the low run and the flow are the same;
    # the high stage then starts from other live points, so it agrees within errors.
    assert skipped.ncall["low"] == res.ncall["low"]
    x = np.random.default_rng(3).uniform(size=(50, D))
    np.testing.assert_array_equal(skipped.flow.broadened(res.flow.base_scale_).log_prob(x), res.flow.log_prob(x))
    assert abs(skipped.logZ - res.logZ) < 3 * np.hypot(skipped.logZerr, res.logZerr)


@pytest.mark.parametrize("bad", [0, -0.5, 1.5, float("nan"), "half"])
def test_bad_grow_below(bad):
    with pytest.raises(ValueError, match="grow_below"):
        fp.enhanced_run(loglike, prior_transform, D, nlive=100, nlive_low=10, grow_below=bad)


@pytest.mark.parametrize("bad", [0.5, float("inf"), float("nan"), "wide"])
def test_bad_broaden(bad):
    with pytest.raises(ValueError, match=r"broaden: expected a base scale >= 1 or None"):
        fp.enhanced_run(loglike, prior_transform, D, nlive=100, nlive_low=10, broaden=bad)


def test_interrupted_grown_level_resumes_with_the_same_answer(tmp_path):
    settings = dict(nlive=200, nlive_low=10, seed=2, names=["a", "b", "c"], grow_below=0.999, broaden=1.0,
                    run_kwargs={"checkpoint_every": 0})
    whole = fp.enhanced_run(loglike, prior_transform, D, outdir=tmp_path / "whole", **settings)
    first, second = whole.low_checks
    # Stop halfway through the second level's low run.
    stop = first.low_calls + first.check_calls + second.low_calls // 2
    with pytest.raises(RuntimeError, match="interrupted"):
        fp.enhanced_run(FailsAfter(stop), prior_transform, D, outdir=tmp_path / "cut", **settings)
    names = {p.name for p in (tmp_path / "cut").iterdir()}
    assert {"checks.json", "low.dynesty"} <= names and "low.npz" not in names
    counter = Counting()
    resumed = fp.enhanced_run(counter, prior_transform, D, outdir=tmp_path / "cut", **settings)
    # The first level is not redone; the second continues from its checkpoint.
    assert counter.calls < whole.ncall["total"] - first.low_calls - first.check_calls - second.low_calls // 2 \
        + 2 * settings["nlive"]
    assert resumed.logZ == whole.logZ
    assert [resumed.ncall[k] for k in ("low", "check", "high", "total")] == [
        whole.ncall[k] for k in ("low", "check", "high", "total")]


def _spy_runs(monkeypatch, record):
    """Make every stage's adapter.run call ``record(kwargs)`` first."""
    import flowprior.workflows.enhanced as enhanced

    check_inputs = enhanced.check_inputs

    def spying(*args):
        names, seed, adapter = check_inputs(*args)

        class Spy(type(adapter)):
            def run(self, *a, **kwargs):
                record(kwargs)
                return adapter.run(*a, **kwargs)
        return names, seed, Spy(adapter.defaults)

    monkeypatch.setattr(enhanced, "check_inputs", spying)


def test_high_stage_takes_the_users_dlogz(monkeypatch):
    """A dlogz in run_kwargs reaches both stages; without one only the high stage gets the adapter's."""
    from flowprior.integrations.dynesty import DynestyDefaults

    seen = []
    _spy_runs(monkeypatch, lambda kw: seen.append((kw["nlive"], (kw.get("run_kwargs") or {}).get("dlogz"))))
    fp.enhanced_run(loglike, prior_transform, D, nlive=100, nlive_low=20, seed=5)
    assert seen == [(20, None), (100, DynestyDefaults().high_dlogz)]
    seen.clear()
    fp.enhanced_run(loglike, prior_transform, D, nlive=100, nlive_low=20, seed=5, run_kwargs={"dlogz": 0.3})
    assert seen == [(20, 0.3), (100, 0.3)]


def test_high_stage_bounds_early_only_behind_a_tame_flow(monkeypatch):
    """The check's tail statistic decides dynesty's first_update in the high stage."""
    from flowprior.integrations.dynesty import DynestyDefaults
    from flowprior.workflows.lowcheck import LowCheck

    seen, d = [], DynestyDefaults()
    _spy_runs(monkeypatch, lambda kw: seen.append((kw.get("sampler_kwargs") or {}).get("first_update")))
    res = fp.enhanced_run(loglike, prior_transform, D, nlive=100, nlive_low=20, seed=5)
    assert res.low_checks[-1].tail <= d.tame_tail and seen[-1] == d.high_first_update
    assert abs(res.logZ - TRUTH) < 3 * res.logZerr
    # A missing record (an outdir written before the tail was kept) or no check: dynesty's default.
    old = LowCheck(25, 100, 0.9, 100, 0.75, 1.2)
    assert old.tail is None and not _tame(old, res.flow) and not _tame(None, res.flow)
    assert not _tame(LowCheck(25, 100, 0.9, 100, 0.75, 1.2, d.tame_tail + 0.1), res.flow)
    fp.enhanced_run(loglike, prior_transform, D, nlive=100, nlive_low=20, seed=5, grow_below=None)
    assert seen[-1] is None


def test_wider_scale_skips_widths_whose_tails_the_low_points_already_show():
    from flowprior.workflows.plan import DEFAULTS
    from flowprior.workflows.widening import wider_scale

    base = 1.2
    widths = [round(base * f, 6) for f in DEFAULTS.widen]

    def tail_at(tails):
        return lambda c: tails[round(c, 6)]

    fine = {w: 0.0 for w in widths}
    assert wider_scale(base, base, tail_at(fine)) == pytest.approx(widths[0])
    # The first two candidates still show a tail: the third is checked next.
    tails = {**fine, widths[0]: DEFAULTS.widen_tail + 1, widths[1]: DEFAULTS.widen_tail + 0.1}
    assert wider_scale(base, base, tail_at(tails)) == pytest.approx(widths[2])
    # No candidate without a tail, or no log Z to judge by: the widest for a flow that failed
    # its score; a flow that passed keeps its width (no width removes such a tail).
    heavy = {w: 9.0 for w in widths}
    assert wider_scale(base, base, tail_at(heavy)) == pytest.approx(widths[-1])
    assert wider_scale(base, base, tail_at(heavy), widest=False) is None
    assert wider_scale(base, base, tail_at(tails), widest=False) == pytest.approx(widths[2])
    assert wider_scale(base, base, None) == pytest.approx(widths[-1])
    # From a width already checked, only wider ones; none past the widest.
    assert wider_scale(widths[1], base, tail_at(fine)) == pytest.approx(widths[2])
    assert wider_scale(widths[-1], base, tail_at(fine)) is None


def test_the_tail_of_a_width_is_measured_beyond_a_perfect_flows_bound():
    """``_tail_at``: log(P / q) at the low points under the widened prior, minus d log(width)."""
    from types import SimpleNamespace

    from flowprior.workflows.widening import _tail_at

    d = 2
    flow = fp.MAF(seed=0, progress=False, max_epochs=5).fit(np.random.default_rng(0).uniform(0.3, 0.7, (200, d)))
    plan = SimpleNamespace(ndim=d, defensive=0.0, loglike=loglike, prior_transform=prior_transform)
    u = np.full((3, d), 0.5)
    points = (u, np.zeros(3), np.ones(3))
    for c in (1.2, 1.8):
        expected = float(np.max(-flow.broadened(c).log_prob(u))) - d * np.log(c)
        assert _tail_at(plan, flow, points, 0.0)(c) == pytest.approx(expected, abs=1e-6)


def test_calls_are_counted_exactly_with_an_mcmc_low_stage():
    """In 10-D dynesty's low stage random-walks: every stage's count is the user's calls, nothing more."""
    from flowprior.examples import correlated_gaussian

    p = correlated_gaussian(10)
    calls = []

    def counted(x):
        calls.append(1)
        return p.loglike(x)

    res = fp.enhanced_run(counted, p.prior, 10, nlive=200, seed=0)
    assert res.low.raw.samples.shape[0] > 0 and res.low_checks[0].nlive_low == 40
    assert len(calls) == res.ncall["total"] == res.ncall["low"] + res.ncall["check"] + res.ncall["high"]
    assert abs(res.logZ - p.logZ) < 3 * res.logZerr


class FileCountedLike:
    """``loglike`` that appends one byte to ``path`` per call, in whatever process it runs."""

    def __init__(self, path):
        self.path = str(path)

    def __call__(self, x):
        with open(self.path, "a") as f:
            f.write("x")
        return loglike(x)


@pytest.mark.parametrize("sample", ["unif", "rwalk"])
def test_calls_in_pool_workers_are_counted_exactly(tmp_path, sample):
    """With a pool, ``ncall`` is the user's calls made in the workers (dynesty's own count is not)."""
    import multiprocessing
    import os

    like = FileCountedLike(tmp_path / "calls")
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        res = fp.run(like, prior_transform, D, nlive=60, seed=2, pool=pool, sampler_kwargs={"sample": sample})
        made = os.path.getsize(like.path)
        assert res.ncall["total"] == made
        assert res.raw.ncall.sum() != made or sample == "unif"  # dynesty counts rejected proposals too
        (tmp_path / "calls").unlink()
        enh = fp.enhanced_run(like, prior_transform, D, nlive=100, nlive_low=40, seed=5, pool=pool,
                              outdir=tmp_path / "run")
        assert enh.ncall["total"] + enh.ncall["fingerprint"] == os.path.getsize(like.path)  # 3 outdir checks


def _ideal_run(nlive: int, seed: int):
    """An exact nested-sampling run of ``L = N(x; 0.3, 0.05)`` under ``U(0, 1)``, with birth contours."""
    from anesthetic import NestedSamples
    from flowprior.result import Result

    rng = np.random.default_rng(seed)
    loglike = lambda x: -0.5 * ((x - 0.3) / 0.05) ** 2 - np.log(0.05 * np.sqrt(2 * np.pi))
    live, births = rng.uniform(size=nlive), np.full(nlive, -np.inf)
    dead, dead_births = [], []
    for _ in range(12 * nlive):
        i = np.argmin(loglike(live))
        dead.append(live[i]), dead_births.append(births[i])
        r = abs(live[i] - 0.3)  # the contour is the interval within r of the peak
        live[i], births[i] = rng.uniform(max(0.0, 0.3 - r), 0.3 + r), loglike(live[i])
    u = np.concatenate([dead, live])[:, None]
    s = NestedSamples(data=u, logL=loglike(u[:, 0]), logL_birth=np.concatenate([dead_births, births]), columns=["x"])
    u = s["x"].to_numpy()[:, None]  # in anesthetic's order
    return Result(samples=s, logZ=float(s.logZ()), logZerr=0.0, ncall={"total": len(u)}, samples_u=u, sampler="any")


def test_two_runs_with_birth_contours_merge_into_one_with_the_live_points_of_both():
    from flowprior.workflows.merge import merged

    first, second = _ideal_run(50, 0), _ideal_run(50, 1)
    both = merged(first, second)
    assert both.samples["nlive"].max() == 100 and both.ncall["total"] == first.ncall["total"] + second.ncall["total"]
    assert np.array_equal(both.samples["x"].to_numpy(), both.samples_u[:, 0])
    # The truth is log(1) (the Gaussian is well inside the box); twice the live points, about 1/sqrt(2) the error.
    from flowprior.evidence import simulated_logz_error

    assert abs(both.logZ) < 3 * both.logZerr and both.logZerr < 0.85 * simulated_logz_error(first.samples)
    bad = dataclasses.replace(second, samples=second.samples.drop(columns="logL_birth"))
    with pytest.raises(ValueError, match="second: expected a run with birth contours"):
        merged(first, bad)
