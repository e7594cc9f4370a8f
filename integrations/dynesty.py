"""dynesty adapter: runs a static nested sampler and returns a flowprior Result."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from flowprior import fingerprint
from flowprior.base import make_rng
from flowprior.io import atomic_write, file_digest
from flowprior.checked import CheckedLikelihood, CheckedPrior
from flowprior.repartition import CountedLikelihood
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
    With a ``pool`` the calls happen in other processes and dynesty's own
    count of likelihood calls is reported instead.
    """
    dynesty = _import()
    from anesthetic import NestedSamples

    rng = make_rng(seed)
    kwargs = dict(sampler_kwargs or {})
    if pool is not None:
        kwargs.setdefault("pool", pool)
        kwargs.setdefault("queue_size", getattr(pool, "_processes", None) or getattr(pool, "size", None) or 1)
    counted = CountedLikelihood(loglike)
    like, prior = CheckedLikelihood(counted), CheckedPrior(prior_transform, ndim)
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
            sampler.loglikelihood.loglikelihood.func = like
            sampler.prior_transform.func = prior
        except AttributeError:  # pragma: no cover - another dynesty layout
            saved = None
            warnings.warn(f"checkpoint {checkpoint}: resuming with the functions saved in it", stacklevel=3)
        verified = _verify_live(sampler, like, prior, checkpoint)
        counted.restart(int(getattr(getattr(saved, "loglike", None), "user_calls", 0)))
        if not sampler.added_live:  # else it had finished; only its file was left to read
            sampler.run_nested(checkpoint_file=str(checkpoint), resume=True, **rk)
    else:
        sampler = dynesty.NestedSampler(like, prior, ndim, nlive=nlive, rstate=rng, **kwargs)
        if checkpoint is not None:
            sampler.save = ChecksummedSave(sampler)
            rk["checkpoint_file"] = str(checkpoint)
        sampler.run_nested(**rk)
    res = sampler.results
    columns = list(names) if names is not None else list(range(ndim))
    samples = NestedSamples(data=res.samples, logL=res.logl, logL_birth=nlive, columns=columns)
    # With a pool (``pool=`` sets kwargs["pool"]) the calls run in other processes: dynesty's count.
    ncall = int(sampler.ncall) if "pool" in kwargs else counted.user_calls
    return Result(samples=samples, logZ=float(res.logz[-1]), logZerr=float(res.logzerr[-1]),
                  ncall={"total": ncall, **({"fingerprint": verified} if verified else {})},
                  samples_u=np.asarray(res.samples_u), sampler="dynesty", raw=res)


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

