"""Resuming an enhanced run from its ``outdir``: the lock, the settings and problem checks, stale files.

Under MPI every read and write of ``outdir`` is rank 0's and what it finds
is sent to the other ranks (:func:`flowprior.mpi.on_root`): a rank that saw
a stage file appear as rank 0 wrote it would skip a sampler run the others
are waiting in.  Rank 0 holds the lock until the run returns.
"""

from __future__ import annotations

import contextlib

from flowprior.mpi import on_root, rank
from flowprior.workflows import fingerprint, stages
from flowprior.workflows.checked import CheckedLikelihood, CheckedPrior, derived_names
from flowprior.workflows.lock import OutdirLock
from flowprior.workflows.plan import Plan


def settings_repr(kwargs: dict | None) -> str:
    """Sampler settings as text for ``config.json``.

    Objects without a stable text form (a pool, a callback) are recorded by
    type only, so that rerunning with a new pool still matches.
    """
    plain = (str, int, float, bool, type(None), list, tuple)
    return repr(sorted((k, v if isinstance(v, plain) else f"<{type(v).__name__}>") for k, v in (kwargs or {}).items()))


def config(plan: Plan) -> dict:
    """The settings an ``outdir``'s files are reused for (``config.json``)."""
    flow = plan.flow
    if not isinstance(flow, str):  # a flow object: its class and constructor settings
        flow = type(flow).__name__ + settings_repr({k: v for k, v in flow.get_params().items() if k != "progress"})
    derived = derived_names(plan.loglike)
    return {**({"derived_names": list(derived)} if derived else {}), "sampler": plan.adapter.name, "ndim": int(plan.ndim), "nlive": int(plan.nlive),
            "nlive_low": int(plan.nlive_low), "flow": flow, "transform": plan.transform,
            "defensive": float(plan.defensive), "broaden": None if plan.broaden is None else float(plan.broaden),
            "sampler_kwargs": settings_repr(plan.settings.sampler_kwargs),
            "run_kwargs": settings_repr(plan.settings.run_kwargs),
            "high_sampler_kwargs": settings_repr(plan.high_sampler_kwargs), "seed": plan.streams.seed,
            "names": list(plan.names) if plan.names is not None else None,
            "grow_below": None if plan.grow_below is None else float(plan.grow_below)}


@contextlib.contextmanager
def outdir_lock(comm, outdir):
    """Hold ``outdir``'s lock on rank 0 (:class:`~flowprior.workflows.lock.OutdirLock`); nothing without ``outdir``."""
    if outdir is None:
        yield
        return
    lock = OutdirLock(outdir) if rank(comm) == 0 else None

    def acquire() -> None:  # every rank learns whether rank 0 got it
        lock.acquire()

    on_root(comm, acquire)
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def check_outdir(plan: Plan) -> int:
    """Refuse an ``outdir`` written with other settings or for another problem; return the calls made."""
    if plan.paths is None:
        return 0
    checked = (CheckedLikelihood(plan.loglike), CheckedPrior(plan.prior_transform, plan.ndim))
    return on_root(plan.comm, lambda: stages.check_config(plan.outdir, config(plan), *checked, int(plan.ndim)))


def forget(plan: Plan, files: tuple, checkpoints: tuple) -> None:
    """Delete stage ``files`` and sampler ``checkpoints`` that belong to a low stage now redone or rejected."""
    def remove() -> None:
        for stage in files:
            plan.paths[stage].unlink(missing_ok=True)
        for stage in checkpoints:
            stages.remove_checkpoint(plan.outdir, stage, plan.adapter.name)

    if plan.paths:
        on_root(plan.comm, remove)


def verify_low(plan: Plan, low) -> int:
    """Check the user's functions against a saved low stage's best points; return the calls made.

    The fixed points of ``problem.json`` may all lie where the likelihood is
    ``-inf``; these points lie where the posterior is.
    """
    def verify() -> int:
        rows = fingerprint.best_rows(low.samples.logL.to_numpy(dtype=float))
        stored = {"u": low.samples_u[rows], "theta": low.samples.iloc[rows, :plan.ndim].to_numpy(dtype=float),
                  "logl": low.samples.logL.to_numpy(dtype=float)[rows].tolist()}
        return fingerprint.verify(stored, CheckedLikelihood(plan.loglike),
                                  CheckedPrior(plan.prior_transform, plan.ndim), str(plan.paths["low"]))

    return on_root(plan.comm, verify)
