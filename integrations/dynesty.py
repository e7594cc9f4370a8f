"""dynesty adapter: runs a static nested sampler and returns a flowprior Result.

It also holds the enhanced run's policy for dynesty (:class:`Dynesty`, with
its defaults in :class:`DynestyDefaults`; docs/design.md explains each one
and links to the measurements).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from flowprior.workflows import fingerprint
from flowprior.flows.base import make_rng
from flowprior.flows.files import atomic_write, file_digest
from flowprior.workflows.checked import CheckedLikelihood, CheckedPrior, derived_names
from flowprior.workflows.counting import CountingPool
from flowprior.workflows.repartition import CountedLikelihood
from flowprior.integrations.base import HighStart, SamplerAdapter, StageSettings
from flowprior.evidence import logz_error
from flowprior.result import Result


def _import():
    try:
        import dynesty
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("sampler='dynesty' needs dynesty: pip install dynesty") from err
    return dynesty


def check_settings(ndim: int, sampler_kwargs: dict | None, run_kwargs: dict | None) -> None:
    """Refuse settings that ``NestedSampler`` or ``run_nested`` do not take, before anything runs.

    Raises
    ------
    ValueError
        Naming the unknown key and the ones that are accepted.
    """
    import inspect

    dynesty = _import()
    owned = {"loglikelihood", "prior_transform", "ndim", "nlive", "rstate"}
    for what, func, given in (("sampler_kwargs", dynesty.NestedSampler, sampler_kwargs),
                              ("run_kwargs", dynesty.NestedSampler.run_nested, run_kwargs)):
        known = set(inspect.signature(func).parameters) - owned - {"self"}
        for key in given or {}:
            if key in owned:
                raise ValueError(f"{what}[{key!r}]: set by flowprior (pass {key} to the run itself)")
            if key not in known:
                raise ValueError(f"{what}: unknown dynesty setting {key!r}; expected some of {sorted(known)}")


def _picklable(*objs) -> str | None:
    """Why ``objs`` cannot go into a dynesty checkpoint, or None if they can."""
    from dynesty.utils import pickle_module

    try:
        pickle_module.dumps(objs)
    except Exception as err:  # pickling raises many types (PicklingError, TypeError, AttributeError...)
        return f"{type(err).__name__}: {err}"
    return None


def run(loglike, prior_transform, ndim: int, *, nlive: int, seed=None, names=None, pool=None,
        sampler_kwargs: dict | None = None, run_kwargs: dict | None = None, checkpoint=None) -> Result:
    """Run ``dynesty.NestedSampler`` and collect its output.

    ``sampler_kwargs`` go to ``NestedSampler`` (``bound``, ``sample``,
    ``walks``...), ``run_kwargs`` to ``run_nested`` (``dlogz``, ``maxcall``,
    ``checkpoint_every``...).

    With ``checkpoint`` (a file path), dynesty saves its state there every
    ``checkpoint_every`` seconds (60 by default) and at the end; if the file
    already exists the sampler is restored from it and the run continues
    where it stopped, with the ``loglike`` and ``prior_transform`` given now
    (the restored state includes the random generator, so the answer is the
    uninterrupted run's).  dynesty pickles the likelihood and prior into the
    file: if they do not pickle, the run goes on without checkpoints and
    says why in a warning.  Before a restored run goes on, the functions
    given now are evaluated at its best live points and must give the saved
    values, else the checkpoint belongs to another problem (a ValueError
    names it); an unreadable checkpoint is an error that says to delete it.

    ``ncall["total"]`` is the number of times the user's ``loglike`` ran,
    carried across a resume (calls after the last checkpoint of a killed
    run are lost with it); ``ncall["fingerprint"]`` the calls that checked a
    restored checkpoint (not in the total).  A ``loglike`` that counts its own calls of the
    user's function (``user_calls``, as the enhanced run's repartitioned
    likelihood does, which skips points outside the cube) gives that count.
    With a ``pool`` the calls made in its workers are counted too: each task
    reports them (:class:`~flowprior.workflows.counting.CountingPool`).
    """
    dynesty = _import()
    from anesthetic import NestedSamples

    rng = make_rng(seed)
    kwargs = dict(sampler_kwargs or {})
    counted = CountedLikelihood(loglike)
    pool = kwargs.get("pool", pool)
    if pool is not None:
        kwargs["queue_size"] = kwargs.get("queue_size") or pool_size(pool)
        # Tasks report the calls they make in the workers (flowprior.workflows.counting).
        kwargs["pool"] = CountingPool(pool, counted)
    like, prior = CheckedLikelihood(counted), CheckedPrior(prior_transform, ndim)
    derived = derived_names(loglike)
    # dynesty keeps each point's derived values as its "blob".
    func = Blobbed(like) if derived else like
    verified = 0
    rk = {"print_progress": False, **(run_kwargs or {})}
    if checkpoint is not None:
        why = _picklable(like, prior)
        if why is not None:
            warnings.warn(f"dynesty checkpoints are off: the likelihood or prior transform does not pickle ({why}); "
                          "an interrupted stage will restart from its beginning", stacklevel=3)
            checkpoint = None
    if checkpoint is not None and os.path.exists(checkpoint):
        sampler = _restore(dynesty, checkpoint, kwargs.get("pool"), ndim, nlive)
        # The checkpoint holds pickled copies of the functions as they were;
        # the run goes on with the ones given now (a likelihood that wraps an
        # external code, or one fixed after a crash, is not frozen at save time).
        try:
            saved = sampler.loglikelihood.loglikelihood.func
            sampler.loglikelihood.loglikelihood.func = func
            sampler.prior_transform.func = prior
        except AttributeError:  # pragma: no cover - another dynesty layout
            saved = None
            warnings.warn(f"checkpoint {checkpoint}: resuming with the functions saved in it", stacklevel=3)
        verified = _verify_live(sampler, like, prior, checkpoint)
        counted.restart(_calls_before(saved))
        if not sampler.added_live:  # else it had finished; only its file was left to read
            sampler.run_nested(checkpoint_file=str(checkpoint), resume=True, **rk)
    else:
        sampler = dynesty.NestedSampler(func, prior, ndim, nlive=nlive, rstate=rng, blob=bool(derived), **kwargs)
        if checkpoint is not None:
            sampler.save = ChecksummedSave(sampler)
            rk["checkpoint_file"] = str(checkpoint)
        sampler.run_nested(**rk)
    res = sampler.results
    columns = (list(names) if names is not None else list(range(ndim))) + list(derived)
    data = np.column_stack([res.samples, np.asarray(res.blob, dtype=float)]) if derived else res.samples
    samples = NestedSamples(data=data, logL=res.logl, logL_birth=nlive, columns=columns)
    ncall = counted.user_calls
    return Result(samples=samples, logZ=float(res.logz[-1]), logZerr=logz_error(samples, float(res.logzerr[-1])),
                  sampler_logZerr=float(res.logzerr[-1]),
                  ncall={"total": ncall, **({"fingerprint": verified} if verified else {})},
                  samples_u=np.asarray(res.samples_u), sampler="dynesty", raw=res)


class Blobbed:
    """``like`` for dynesty's ``blob=True``: it returns ``(logL, derived)`` and dynesty stores the second."""

    def __init__(self, like):
        self.loglike = like

    def __call__(self, theta) -> tuple:
        return self.loglike.both(theta)


def _calls_before(saved) -> int:
    """The user's calls a checkpoint's pickled likelihood had counted (the first ``user_calls`` inside it)."""
    while saved is not None and not hasattr(saved, "user_calls"):
        saved = getattr(saved, "loglike", None)
    return int(getattr(saved, "user_calls", 0))


def pool_size(pool) -> int:
    """How many workers ``pool`` has: multiprocessing's ``_processes``, schwimmbad's ``size``,
    ``mpi4py.futures``' ``num_workers``; 1 where it does not say."""
    for name in ("_processes", "size", "num_workers"):
        value = getattr(pool, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 1


def _restore(dynesty, checkpoint, pool, ndim: int, nlive: int):
    """A sampler restored from ``checkpoint``, or an error that names the file and what to do.

    A save file written by :class:`ChecksummedSave` must match its checksum.
    """
    why = ChecksummedSave.mismatch(checkpoint)
    try:
        if why is not None:
            raise ValueError(why)
        sampler = dynesty.NestedSampler.restore(str(checkpoint), pool=pool)
    except Exception as err:  # unpickling a damaged file raises many types
        raise ValueError(f"checkpoint {checkpoint}: unreadable dynesty save file ({type(err).__name__}: {err}); "
                         "delete it to restart this stage from its beginning") from None
    # Checkpoints of this run keep their checksums (older save files get them from now on).
    sampler.save = ChecksummedSave(sampler)
    if sampler.ndim != ndim or sampler.nlive != nlive:
        raise ValueError(f"checkpoint {checkpoint}: a run with ndim {sampler.ndim}, nlive {sampler.nlive}; "
                         f"this one has ndim {ndim}, nlive {nlive}")
    return sampler


def _verify_live(sampler, like, prior, checkpoint) -> int:
    """Check that the functions given now reproduce a restored sampler's best live points; return the calls made.

    dynesty stores ``-inf`` log-likelihoods as a large negative number, so
    only points well above that are compared.
    """
    logl = np.asarray(sampler.live_logl, dtype=float)
    rows = fingerprint.best_rows(np.where(logl > -1e250, logl, -np.inf))
    stored = {"u": np.asarray(sampler.live_u)[rows], "theta": np.asarray(sampler.live_v)[rows],
              "logl": logl[rows].tolist()}
    return fingerprint.verify(stored, like, prior, f"checkpoint {checkpoint}")


class ChecksummedSave:
    """dynesty's ``save`` for one sampler, with a SHA-256 of each save file beside it (``<file>.sha256``).

    dynesty's save file is a pickle: a flipped bit in its arrays unpickles to
    a silently different state.  The checksum file is written before the
    save file is renamed into place and lists the new and the previous
    checksum, so whenever the process is killed the save file matches one
    of them.  The object is kept on the sampler (``sampler.save``), so it
    is saved with it and goes on after a restore.
    """

    def __init__(self, sampler):
        self.sampler = sampler

    def __call__(self, fname) -> None:
        from dynesty.utils import save_sampler

        sums = _sums_path(Path(fname))

        def write(tmp: Path) -> None:  # the checksums go in place before the save file does
            save_sampler(self.sampler, str(tmp))
            old = sums.read_text().split()[:1] if sums.exists() else []
            atomic_write(sums, lambda p: p.write_text("\n".join([file_digest(tmp).hex(), *old]) + "\n"))

        atomic_write(fname, write)

    @staticmethod
    def mismatch(fname) -> str | None:
        """Why the save file ``fname`` fails its checksum, or None (also when it has none)."""
        sums = _sums_path(Path(fname))
        if not sums.exists():
            return None
        if file_digest(fname).hex() not in sums.read_text().split():
            return f"checksum mismatch with {sums.name}: the file changed after it was written"
        return None


def _sums_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")



@dataclass(frozen=True)
class DynestyDefaults:
    """The enhanced run's named defaults for dynesty (docs/design.md, the section named beside each).

    Attributes
    ----------
    nlive_low_unif, nlive_low_mcmc : int
        Low-stage live points with uniform sampling and with dynesty's MCMC
        methods: enough live points to keep a small mode; MCMC gets fewer,
        since 25 suffice for a unimodal posterior and a failing flow grows
        the low stage ("Low-stage live points").
    nlive_low_per_dim : int
        With MCMC, at least this many low-stage live points per dimension:
        a flow in 12-30 dimensions trained on 25 points fails its check
        ("Low-stage live points").
    mcmc_low_share : int
        Those per-dimension points may exceed the enhanced run's cap
        (``nlive // 5``) up to ``nlive // mcmc_low_share``: at 27 dimensions
        100 random-walk live points gave flows behind which the high stage's
        posterior means strayed ("Low-stage live points").
    low_walks_extra : int
        Where dynesty chooses an MCMC method itself (``sample="auto"``, 10
        dimensions and more), the low stage random-walks ``ndim +
        low_walks_extra`` steps per new point instead of dynesty's ``ndim +
        20`` (or its slices above 20 dimensions): it only has to find the
        posterior's bulk for the flow ("Low-stage MCMC steps").
    low_enlarge, low_enlarge_below : float, int
        Fixed ellipsoid enlargement of a uniform low stage with fewer than
        ``low_enlarge_below`` live points: ellipsoids fitted to so few
        points cut into the contour without it, while dynesty's bootstrapped
        factor collapses the efficiency ("dynesty low-stage bounds").
    low_first_update : dict
        dynesty's ``first_update`` in a uniform low stage: ellipsoids from
        the start, since drawing from the whole cube costs calls in a phase
        that holds no posterior mass ("dynesty low-stage bounds").
    low_update_interval : float
        dynesty's ``update_interval`` in a uniform low stage below
        ``low_enlarge_below`` points: bounds fitted to few points go stale
        while the contour shrinks, and refitting costs no calls ("dynesty
        low-stage bounds").
    broaden_small_unif : float
        Base width of flows trained on such small uniform low stages, which
        come out narrower than others ("Base broadening").
    high_first_update : dict
        dynesty's ``first_update`` in the high stage behind a tame flow:
        ellipsoids once fewer than half the draws are accepted, instead of
        drawing from the whole cube down to 10 % ("Early bounds in the high
        stage").
    tame_tail : float
        Largest check tail (nats) of a tame flow: behind a flow with
        missing tails early ellipsoids split around the spikes of ``L / q``
        ("Early bounds in the high stage").
    high_dlogz : float
        dynesty's ``dlogz`` in the high stage: behind the flow ``L / q`` is
        a plateau, so stopping sooner costs little accuracy ("High-stage
        stopping rules").
    high_rwalk_from : int
        Dimension from which the high stage random-walks instead of drawing
        uniformly in ellipsoids: there the ellipsoids around a flow-whitened
        cube reach far outside it, and dynesty's rejection of those draws
        can stall a run ("Early bounds in the high stage").
    high_rwalk_first_update : dict
        dynesty's ``first_update`` in a random-walk high stage: independent
        draws from the whole cube until 3 % of all draws were accepted, not
        dynesty's 10 %, so fewer of the posterior's points come from the
        walk's correlated chains ("Early bounds in the high stage").
    """

    nlive_low_unif: int = 100
    nlive_low_mcmc: int = 25
    nlive_low_per_dim: int = 4
    mcmc_low_share: int = 4
    low_walks_extra: int = 4
    low_enlarge: float = 2.0
    low_enlarge_below: int = 100
    low_first_update: dict = field(default_factory=lambda: {"min_eff": 60.0, "min_ncall": 0})
    low_update_interval: float = 0.2
    broaden_small_unif: float = 1.35
    high_first_update: dict = field(default_factory=lambda: {"min_eff": 50.0, "min_ncall": 0})
    tame_tail: float = 0.5
    high_dlogz: float = 1.0
    high_rwalk_from: int = 20
    high_rwalk_first_update: dict = field(default_factory=lambda: {"min_eff": 3.0})


def uniform_sampling(ndim: int, sampler_kwargs: dict | None) -> bool:
    """Whether dynesty samples uniformly in its bounds with these settings (its ``"auto"``: below 10-D)."""
    sample = (sampler_kwargs or {}).get("sample", "auto")
    return sample == "unif" or (sample == "auto" and ndim < 10)


class Dynesty(SamplerAdapter):
    """dynesty behind flowprior's workflows, with the enhanced run's policy for it.

    Parameters
    ----------
    defaults : DynestyDefaults
    """

    name = "dynesty"
    widens_passing_tails = True

    def __init__(self, defaults: DynestyDefaults = DynestyDefaults()):
        self.defaults = defaults

    def check_settings(self, ndim, sampler_kwargs, run_kwargs) -> None:
        check_settings(ndim, sampler_kwargs, run_kwargs)

    def run(self, loglike, prior_transform, ndim, **kwargs) -> Result:
        return run(loglike, prior_transform, ndim, **kwargs)

    def nlive_low(self, ndim, sampler_kwargs) -> int:
        d = self.defaults
        if uniform_sampling(ndim, sampler_kwargs):
            return d.nlive_low_unif
        return max(d.nlive_low_mcmc, d.nlive_low_per_dim * ndim, ndim + 1)

    def mcmc(self, ndim, sampler_kwargs) -> bool:
        return not uniform_sampling(ndim, sampler_kwargs)

    def low_cap(self, ndim, sampler_kwargs, nlive, cap) -> int:
        if not self.mcmc(ndim, sampler_kwargs):
            return cap
        d = self.defaults
        return max(cap, min(d.nlive_low_per_dim * ndim, nlive // d.mcmc_low_share))

    def small_fixed_bounds(self, ndim: int, nlive_low: int, sampler_kwargs: dict | None) -> bool:
        """Whether a low stage gets the fixed ``low_enlarge``: uniform, few points, no user enlargement."""
        user = sampler_kwargs or {}
        return (uniform_sampling(ndim, user) and nlive_low < self.defaults.low_enlarge_below
                and "bootstrap" not in user and "enlarge" not in user)

    def low_settings(self, ndim, nlive_low, settings: StageSettings) -> StageSettings:
        """Uniform sampling gets fixed, early, often refitted bounds; dynesty's own MCMC choice, fewer steps.

        Each setting only where the user set none.
        """
        user = settings.sampler_kwargs or {}
        if not uniform_sampling(ndim, user):
            if user.get("sample", "auto") != "auto":
                return settings
            walks = user.get("walks", ndim + self.defaults.low_walks_extra)
            return StageSettings({**user, "sample": "rwalk", "walks": walks}, settings.run_kwargs)
        d, out = self.defaults, dict(user)
        if "bootstrap" not in user and "enlarge" not in user:
            out["bootstrap"] = 0
        if self.small_fixed_bounds(ndim, nlive_low, user):
            out["enlarge"] = d.low_enlarge
        out.setdefault("first_update", dict(d.low_first_update))
        if "bound" not in user and out.get("bootstrap") == 0:
            from flowprior.integrations.dynesty_bounds import ModeEllipsoids

            out["bound"] = ModeEllipsoids(ndim)
        if nlive_low < d.low_enlarge_below:
            out.setdefault("update_interval", d.low_update_interval)
        return StageSettings(out, settings.run_kwargs)

    def broaden(self, ndim, nlive_low, sampler_kwargs, default) -> float:
        small = self.small_fixed_bounds(ndim, nlive_low, sampler_kwargs)
        return self.defaults.broaden_small_unif if small else default

    def high_settings(self, ndim, nlive, settings: StageSettings, high_sampler_kwargs,
                      start: HighStart) -> StageSettings:
        """Uniform draws (a random walk from ``high_rwalk_from`` dimensions) in the flow-whitened cube.

        dynesty draws its own first live points: the check's draws decided
        whether the flow was accepted, and as live points they bias the
        evidence (docs/design.md, "The high stage's own live points").
        Anything in ``high_sampler_kwargs`` (or ``dlogz`` in ``run_kwargs``) wins.
        """
        high = dict(high_sampler_kwargs or {})
        out = {**(settings.sampler_kwargs or {}), **high}
        if "sample" not in high:
            out["sample"] = "unif" if ndim < self.defaults.high_rwalk_from else "rwalk"
            for key in ("walks", "slices"):  # dynesty's own number of steps
                if key not in high:
                    out.pop(key, None)
            if out["sample"] == "unif":  # uniform draws: fixed enlargement, early bounds
                if "bootstrap" not in high:
                    out["bootstrap"] = 0
                if self.tame(start):
                    out.setdefault("first_update", dict(self.defaults.high_first_update))
            else:  # a random walk: late bounds, more independent draws first
                out.setdefault("first_update", dict(self.defaults.high_rwalk_first_update))
        user = settings.run_kwargs or {}
        rk = {**user, "dlogz": self.defaults.high_dlogz} if "dlogz" not in user else settings.run_kwargs
        return StageSettings(out, rk)

    def tame(self, start: HighStart) -> bool:
        """Whether the high stage may bound early: one piece, and a check tail of at most ``tame_tail``."""
        return start.tail is not None and start.tail <= self.defaults.tame_tail and start.pieces == 1


ADAPTER = Dynesty()
