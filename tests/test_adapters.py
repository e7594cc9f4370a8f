"""The sampler adapters' interface and each one's stage policy for the enhanced run."""

import pytest

from flowprior.integrations import adapter, available
from flowprior.integrations.base import HighStart, SamplerAdapter, StageSettings
from flowprior.integrations.dynesty import DynestyDefaults
from flowprior.integrations.dynesty_bounds import ModeEllipsoids
from flowprior.integrations.polychord import PolyChordDefaults

DYNESTY, POLYCHORD = adapter("dynesty"), adapter("polychord")
NO_START = HighStart(tail=None, pieces=1)


def low(a, ndim, sk, nlive_low, rk=None):
    return a.low_settings(ndim, nlive_low, StageSettings(sk, rk)).sampler_kwargs


def high(a, ndim, sk=None, hk=None, rk=None, start=NO_START):
    return a.high_settings(ndim, 500, StageSettings(sk, rk), hk, start)


def test_every_sampler_is_an_adapter_found_by_name():
    assert available() == ("dynesty", "polychord")
    assert all(isinstance(adapter(n), SamplerAdapter) and adapter(n).name == n for n in available())
    with pytest.raises(ValueError, match=r"sampler: expected one of \('dynesty', 'polychord'\), got 'base'"):
        adapter("base")
    with pytest.raises(ValueError, match="sampler: expected one of"):
        adapter(None)


def test_defaults_are_frozen():
    with pytest.raises(AttributeError):
        DynestyDefaults().high_dlogz = 2.0
    with pytest.raises(AttributeError):
        PolyChordDefaults().nlive_low = 5


def test_low_stage_live_points():
    assert DYNESTY.nlive_low(6, None) == 100 and DYNESTY.nlive_low(6, {"sample": "rwalk"}) == 25
    assert DYNESTY.nlive_low(9, {"sample": "rwalk"}) == 36 and POLYCHORD.nlive_low(6, None) == 100
    # An MCMC low stage gets nlive_low_per_dim live points per dimension (at least nlive_low_mcmc; PolyChord ndim + 1).
    assert DYNESTY.nlive_low(12, None) == 48 and DYNESTY.nlive_low(30, None) == 120
    assert DYNESTY.nlive_low(5, {"sample": "slice"}) == 25 and POLYCHORD.nlive_low(120, None) == 121
    assert DYNESTY.mcmc(12, None) and not DYNESTY.mcmc(6, None) and POLYCHORD.mcmc(6, None)


def test_random_walk_low_stage_keeps_its_points_per_dimension_past_the_cap():
    from flowprior.workflows.inputs import adapter_nlive_low

    def default(adapter, ndim, nlive, sk=None):
        return adapter_nlive_low(adapter, None, nlive, ndim, sk)

    # nlive // 5 caps uniform sampling and PolyChord; dynesty's MCMC low stage keeps 4 per dimension up to nlive // 4.
    assert default(DYNESTY, 6, 500) == 100 and default(DYNESTY, 6, 200) == 40 and default(POLYCHORD, 27, 200) == 40
    assert default(DYNESTY, 24, 500) == 96 and default(DYNESTY, 27, 500) == 108 and default(DYNESTY, 30, 500) == 120
    assert default(DYNESTY, 27, 400) == 100 and default(DYNESTY, 12, 150) == 37
    assert default(DYNESTY, 27, 500, {"sample": "unif"}) == 100


def test_dynesty_low_stage_settings():
    first = DynestyDefaults().low_first_update

    def unbound(kwargs):  # the settings apart from the bound, which is checked on its own
        bound = kwargs.pop("bound")
        assert type(bound) is ModeEllipsoids and bound.ndim == 6
        return kwargs

    # Uniform sampling (dynesty's "auto" below 10-D): fixed enlargement, wider with few points,
    # ellipsoids from the start, refitted more often with few points, small clusters carved out.
    assert unbound(low(DYNESTY, 6, None, 25)) == {
        "bootstrap": 0, "enlarge": 2.0, "first_update": first, "update_interval": 0.2}
    assert unbound(low(DYNESTY, 6, {"sample": "unif"}, 100)) == {"sample": "unif", "bootstrap": 0, "first_update": first}
    assert unbound(low(DYNESTY, 6, {"bootstrap": 0}, 100)) == {"bootstrap": 0, "first_update": first}
    # Each call has its own bound: dynesty updates it in place.
    assert low(DYNESTY, 6, None, 100)["bound"] is not low(DYNESTY, 6, None, 100)["bound"]
    # The user's bound is kept; with dynesty's bootstrapped enlargement the bound stays dynesty's.
    assert low(DYNESTY, 6, {"bound": "single"}, 100)["bound"] == "single"
    assert low(DYNESTY, 6, {"enlarge": 1.5}, 100) == {"enlarge": 1.5, "first_update": first}
    # The user's own choices are kept, and MCMC methods and high dimensions are left alone.
    assert low(DYNESTY, 6, {"bootstrap": 5}, 100) == {"bootstrap": 5, "first_update": first}
    assert low(DYNESTY, 6, {"enlarge": 1.1, "first_update": {"min_eff": 5}, "update_interval": 1.0}, 25) == {
        "enlarge": 1.1, "first_update": {"min_eff": 5}, "update_interval": 1.0}
    assert low(DYNESTY, 6, {"sample": "rwalk"}, 25) == {"sample": "rwalk"}
    # Where dynesty picks an MCMC method itself (10-D and up), the low stage random-walks ndim + 4 steps.
    assert low(DYNESTY, 12, None, 48) == {"sample": "rwalk", "walks": 16}
    assert low(DYNESTY, 24, {"sample": "auto", "walks": 9}, 96) == {"sample": "rwalk", "walks": 9}
    assert low(DYNESTY, 24, {"sample": "rslice"}, 96) == {"sample": "rslice"}
    # The default setting is not shared: a run's settings dict must not change the defaults.
    low(DYNESTY, 6, None, 25)["first_update"]["min_eff"] = 1.0
    assert DynestyDefaults().low_first_update["min_eff"] == DYNESTY.defaults.low_first_update["min_eff"] == 60.0


def test_polychord_low_stage_settings():
    # Slice repeats traded for live points (ndim // 2, at least 1), unless the user set them.
    assert low(POLYCHORD, 6, None, 100) == {"num_repeats": 3}
    assert low(POLYCHORD, 1, {"precision_criterion": 0.01}, 100) == {"precision_criterion": 0.01, "num_repeats": 1}
    assert low(POLYCHORD, 6, {"num_repeats": 30}, 25) == {"num_repeats": 30}
    # ... set in run_kwargs (PolyChord's one settings object), it is not set twice.
    assert low(POLYCHORD, 6, None, 100, {"num_repeats": 30}) is None
    assert low(POLYCHORD, 6, {"nprior": 10}, 100, {"num_repeats": 30}) == {"nprior": 10}


def test_a_clustered_low_stage_is_redone_with_more_points_and_longer_chains_by_polychord_only():
    # 40 live points lost a mixture mode on 13 of 20 seeds at ndim // 2 repeats, 7 of 30 at 2 ndim; 80 at 2 ndim
    # on none of 30 (RESULTS.md).
    n, redo = POLYCHORD.multimodal_low(4, 40, 200, StageSettings({"nprior": 10}, None))
    assert n == 80 and redo.sampler_kwargs == {"nprior": 10, "num_repeats": 8} and redo.run_kwargs is None
    assert POLYCHORD.multimodal_low(4, 40, 100, StageSettings(None, None))[0] == 50  # at most nlive // 2
    assert POLYCHORD.multimodal_low(4, 60, 100, StageSettings(None, None))[0] == 60  # never fewer
    assert POLYCHORD.multimodal_low(4, 40, 200, StageSettings({"num_repeats": 2}, None)) is None
    assert POLYCHORD.multimodal_low(4, 40, 200, StageSettings(None, {"num_repeats": 2})) is None
    assert DYNESTY.multimodal_low(4, 40, 200, StageSettings(None, None)) is None


def test_dynesty_high_stage_settings():
    d = DynestyDefaults()
    assert high(DYNESTY, 6, {"sample": "rwalk", "walks": 50}).sampler_kwargs == {"sample": "unif", "bootstrap": 0}
    # From high_rwalk_from dimensions a random walk with dynesty's own walks, unless the user says otherwise.
    assert high(DYNESTY, d.high_rwalk_from - 1).sampler_kwargs["sample"] == "unif"
    assert high(DYNESTY, d.high_rwalk_from, {"walks": 50}, start=HighStart(0.0, 1)).sampler_kwargs == {
        "sample": "rwalk", "first_update": {"min_eff": 3.0}}
    assert high(DYNESTY, 27, hk={"first_update": {"min_eff": 7}}).sampler_kwargs["first_update"] == {"min_eff": 7}
    assert high(DYNESTY, 27, hk={"sample": "unif"}).sampler_kwargs == {"sample": "unif"}
    # Early ellipsoids only behind a tame flow (one piece, small tail), never over the user's first_update.
    tame = HighStart(tail=d.tame_tail, pieces=1)
    early = high(DYNESTY, 6, start=tame).sampler_kwargs
    assert early == {"sample": "unif", "bootstrap": 0, "first_update": d.high_first_update}
    early["first_update"]["min_eff"] = 1.0
    assert DYNESTY.defaults.high_first_update["min_eff"] == 50.0
    assert high(DYNESTY, 6, hk={"first_update": {"min_eff": 5}}, start=tame).sampler_kwargs["first_update"] == {
        "min_eff": 5}
    for untame in (HighStart(d.tame_tail + 0.1, 1), HighStart(0.0, 2), NO_START):
        assert "first_update" not in high(DYNESTY, 6, start=untame).sampler_kwargs
    assert high(DYNESTY, 6, hk={"bootstrap": 5}).sampler_kwargs["bootstrap"] == 5
    # dynesty draws its own live points (the check's were selected by the check); the user's win.
    assert "live_points" not in high(DYNESTY, 2, start=HighStart(0.0, 1)).sampler_kwargs
    assert high(DYNESTY, 2, hk={"live_points": "mine"}).sampler_kwargs["live_points"] == "mine"


def test_polychord_high_stage_settings():
    assert "first_update" not in high(POLYCHORD, 6, start=HighStart(0.0, 1)).sampler_kwargs
    assert high(POLYCHORD, 6).sampler_kwargs == {"num_repeats": 3, "nprior": 10000}
    assert high(POLYCHORD, 6, hk={"num_repeats": 9}).sampler_kwargs["num_repeats"] == 9
    # From 20 dimensions, ndim repeats (ndim // 2 left its posterior means 0.11-0.15 widths off at d = 24-30).
    assert high(POLYCHORD, 19).sampler_kwargs["num_repeats"] == 9
    assert high(POLYCHORD, 24).sampler_kwargs["num_repeats"] == 24
    assert high(POLYCHORD, 24, hk={"num_repeats": 5}).sampler_kwargs["num_repeats"] == 5
    # Behind a flow of several pieces or with missing tails, 2 ndim (ndim // 2 misweighed the mixture's
    # modes, and left a Planck-like seed with a check tail of 16 nats 4.3 sigma off).
    assert high(POLYCHORD, 4, start=HighStart(0.0, 3)).sampler_kwargs["num_repeats"] == 8
    assert high(POLYCHORD, 6, start=HighStart(16.0, 1)).sampler_kwargs["num_repeats"] == 12
    assert high(POLYCHORD, 6, start=HighStart(4.0, 1)).sampler_kwargs["num_repeats"] == 3
    assert high(POLYCHORD, 4, hk={"num_repeats": 2}, start=HighStart(0.0, 3)).sampler_kwargs["num_repeats"] == 2


def test_polychord_high_stage_draws_its_prior_first():
    # high_prior * nlive independent draws of the flow before compressing (ndim repeats left posterior means
    # 0.15 widths off at d = 27, where these draws brought them to 0.07 for fewer calls; RESULTS.md).
    assert PolyChordDefaults().high_prior * 500 == high(POLYCHORD, 27).sampler_kwargs["nprior"] == 10000
    # The user's nprior wins, wherever it is set, and is not set twice.
    assert high(POLYCHORD, 6, hk={"nprior": 700}).sampler_kwargs["nprior"] == 700
    assert high(POLYCHORD, 6, sk={"nprior": 800}).sampler_kwargs["nprior"] == 800
    stage = high(POLYCHORD, 6, rk={"nprior": 900})
    assert "nprior" not in stage.sampler_kwargs and stage.run_kwargs["nprior"] == 900
    # The low stage keeps PolyChord's own nprior: its prior is the user's, far wider than the posterior.
    assert "nprior" not in low(POLYCHORD, 6, None, 100)


def test_base_width_after_small_uniform_low_stages():
    # Wider after a small uniformly sampled dynesty low stage; otherwise the enhanced run's default.
    wide = DynestyDefaults().broaden_small_unif
    assert DYNESTY.broaden(6, 25, None, 1.2) == wide
    assert DYNESTY.broaden(6, 100, None, 1.2) == 1.2
    assert DYNESTY.broaden(6, 25, {"bootstrap": 0}, 1.2) == 1.2
    assert DYNESTY.broaden(6, 25, {"sample": "rwalk"}, 1.2) == 1.2
    assert POLYCHORD.broaden(6, 25, None, 1.2) == 1.2


def test_high_stage_stopping_rules():
    dlogz, precision = DynestyDefaults().high_dlogz, PolyChordDefaults().high_precision
    # dynesty stops at high_dlogz unless the user set dlogz; other keys pass through.
    assert high(DYNESTY, 6).run_kwargs == {"dlogz": dlogz}
    assert high(DYNESTY, 6, rk={"maxcall": 10}).run_kwargs == {"maxcall": 10, "dlogz": dlogz}
    assert high(DYNESTY, 6, rk={"dlogz": 0.1}).run_kwargs == {"dlogz": 0.1}
    # PolyChord stops at high_precision unless the user set precision_criterion anywhere
    # (run_kwargs, or sampler_kwargs / high_sampler_kwargs, which reach the stage's settings).
    assert high(POLYCHORD, 6).run_kwargs == {"precision_criterion": precision}
    assert high(POLYCHORD, 6, rk={"precision_criterion": 0.01}).run_kwargs == {"precision_criterion": 0.01}
    assert high(POLYCHORD, 6, hk={"precision_criterion": 0.01}).run_kwargs is None
    assert high(POLYCHORD, 6, sk={"precision_criterion": 0.01}, rk={"max_ndead": 9}).run_kwargs == {"max_ndead": 9}
    # One settings object: a key the stage's sampler settings hold is not also passed as run_kwargs.
    assert high(POLYCHORD, 6, rk={"num_repeats": 7}).run_kwargs == {"precision_criterion": precision}
    # The user's dict is not changed.
    user = {"maxcall": 10}
    high(DYNESTY, 6, rk=user)
    assert user == {"maxcall": 10}


def test_polychord_points_keep_their_cube_coordinates_when_anesthetic_drops_and_sorts_rows():
    """A row with logL <= logL_birth (PolyChord's "non deterministic loglikelihood") is dropped with its u."""
    import numpy as np

    from flowprior.integrations.polychord_output import nested_samples

    rng = np.random.default_rng(0)
    u = rng.uniform(size=(40, 2))
    theta = 10 * u
    logl = np.sort(rng.normal(size=40))
    logl[[5, 6]] = logl[7]  # ties
    birth = np.concatenate([[-np.inf] * 10, logl[:30] - 0.1])
    birth[20] = logl[20] + 1.0  # invalid: dies below its birth contour
    with pytest.warns(RuntimeWarning, match="logL <= logL_birth"):
        samples, u_kept = nested_samples(u, theta, logl, birth, ["a", "b"])
    assert len(samples) == len(u_kept) == 39 and list(samples.columns[:2]) == ["a", "b"]
    assert "__row__" not in samples.columns
    assert np.array_equal(samples[["a", "b"]].to_numpy(), 10 * u_kept)
    assert np.isfinite(samples.logZ())


def test_listing_the_samplers_imports_no_framework():
    """``available()`` reads the modules' text: the bilby and cobaya front doors beside the adapters stay unimported."""
    import subprocess
    import sys

    code = ("import sys; from flowprior.integrations import available; print(available()); "
            "print(sorted(m for m in ('bilby', 'cobaya', 'dynesty') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "('dynesty', 'polychord')" and out[1] == "[]"
