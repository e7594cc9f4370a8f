"""dynesty adapter: runs a static nested sampler and returns a flowprior Result."""

from __future__ import annotations

import os
import warnings

import numpy as np

from flowprior.base import make_rng
from flowprior.checked import CheckedLikelihood, CheckedPrior
from flowprior.result import Result


def _import():
    try:
        import dynesty
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("sampler='dynesty' needs dynesty: pip install dynesty") from err
    return dynesty


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
    says why in a warning.
    """
    dynesty = _import()
    from anesthetic import NestedSamples

    rng = make_rng(seed)
    kwargs = dict(sampler_kwargs or {})
    if pool is not None:
        kwargs.setdefault("pool", pool)
        kwargs.setdefault("queue_size", getattr(pool, "_processes", None) or getattr(pool, "size", None) or 1)
    like, prior = CheckedLikelihood(loglike), CheckedPrior(prior_transform, ndim)
    rk = {"print_progress": False, **(run_kwargs or {})}
    if checkpoint is not None:
        why = _picklable(like, prior)
        if why is not None:
            warnings.warn(f"dynesty checkpoints are off: the likelihood or prior transform does not pickle ({why}); "
                          "an interrupted stage will restart from its beginning", stacklevel=3)
            checkpoint = None
    if checkpoint is not None and os.path.exists(checkpoint):
        sampler = dynesty.NestedSampler.restore(str(checkpoint), pool=kwargs.get("pool"))
        if sampler.ndim != ndim or sampler.nlive != nlive:
            raise ValueError(f"checkpoint {checkpoint}: a run with ndim {sampler.ndim}, nlive {sampler.nlive}; "
                             f"this one has ndim {ndim}, nlive {nlive}")
        # The checkpoint holds pickled copies of the functions as they were;
        # the run goes on with the ones given now (a likelihood that wraps an
        # external code, or one fixed after a crash, is not frozen at save time).
        try:
            sampler.loglikelihood.loglikelihood.func = like
            sampler.prior_transform.func = prior
        except AttributeError:  # pragma: no cover - another dynesty layout
            warnings.warn(f"checkpoint {checkpoint}: resuming with the functions saved in it", stacklevel=3)
        if not sampler.added_live:  # else it had finished; only its file was left to read
            sampler.run_nested(checkpoint_file=str(checkpoint), resume=True, **rk)
    else:
        sampler = dynesty.NestedSampler(like, prior, ndim, nlive=nlive, rstate=rng, **kwargs)
        if checkpoint is not None:
            rk["checkpoint_file"] = str(checkpoint)
        sampler.run_nested(**rk)
    res = sampler.results
    columns = list(names) if names is not None else list(range(ndim))
    samples = NestedSamples(data=res.samples, logL=res.logl, logL_birth=nlive, columns=columns)
    # The sampler's own count, not the sum of results.ncall: that one also
    # counts one call per initial live point when they were passed in
    # (``live_points``), calls made before the run.
    return Result(samples=samples, logZ=float(res.logz[-1]), logZerr=float(res.logzerr[-1]),
                  ncall={"total": int(sampler.ncall)}, samples_u=np.asarray(res.samples_u),
                  sampler="dynesty", raw=res)
