"""dynesty adapter: runs a static nested sampler and returns a flowprior Result."""

from __future__ import annotations

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


def run(loglike, prior_transform, ndim: int, *, nlive: int, seed=None, names=None, pool=None,
        sampler_kwargs: dict | None = None, run_kwargs: dict | None = None) -> Result:
    """Run ``dynesty.NestedSampler`` and collect its output.

    ``sampler_kwargs`` go to ``NestedSampler`` (``bound``, ``sample``,
    ``walks``...), ``run_kwargs`` to ``run_nested`` (``dlogz``, ``maxcall``...).
    """
    dynesty = _import()
    from anesthetic import NestedSamples

    rng = make_rng(seed)
    kwargs = dict(sampler_kwargs or {})
    if pool is not None:
        kwargs.setdefault("pool", pool)
        kwargs.setdefault("queue_size", getattr(pool, "_processes", None) or getattr(pool, "size", None) or 1)
    sampler = dynesty.NestedSampler(CheckedLikelihood(loglike), CheckedPrior(prior_transform, ndim), ndim,
                                    nlive=nlive, rstate=rng, **kwargs)
    rk = {"print_progress": False, **(run_kwargs or {})}
    sampler.run_nested(**rk)
    res = sampler.results
    columns = list(names) if names is not None else list(range(ndim))
    samples = NestedSamples(data=res.samples, logL=res.logl, logL_birth=nlive, columns=columns)
    return Result(samples=samples, logZ=float(res.logz[-1]), logZerr=float(res.logzerr[-1]),
                  ncall={"total": int(np.sum(res.ncall))}, samples_u=np.asarray(res.samples_u),
                  sampler="dynesty", raw=res)
