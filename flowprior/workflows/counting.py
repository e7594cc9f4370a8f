"""Counting the user's likelihood calls across processes: a per-process tally and a pool that reports it.

Every call of a user's likelihood, in whatever process it runs, adds one
to that process's tally (:func:`note_call`, made by
:class:`~flowprior.workflows.repartition.CountedLikelihood` and
:class:`~flowprior.workflows.repartition.RepartitionedLikelihood`).  A
:class:`CountingPool` wraps a user's pool (multiprocessing,
``mpi4py.futures.MPIPoolExecutor``, schwimmbad): each task it sends out
returns, beside its result, how much the worker's tally grew while it ran,
so the calls made in workers are counted exactly, on any pool and any
number of machines, with no shared file or memory.
"""

from __future__ import annotations

import os

_TALLY = [0]


def note_call() -> None:
    """Add one call of a user's likelihood to this process's tally."""
    _TALLY[0] += 1


def process_calls() -> int:
    """Calls of users' likelihoods made in this process so far."""
    return _TALLY[0]


class _Tallied:
    """``func`` run as a pool task: its result, the calls it made and the process it ran in (picklable)."""

    def __init__(self, func):
        self.func = func

    def __call__(self, item):
        before = process_calls()
        out = self.func(item)
        return out, process_calls() - before, os.getpid()


class CountingPool:
    """A pool whose ``map`` counts the user's likelihood calls its tasks make in other processes.

    Those calls go to ``counter.add`` (and ``calls``).  Calls made by tasks
    that ran in this process are not added: the likelihood objects here
    count those themselves.  Anything else (``size``, ``_processes``,
    ``close``...) is the wrapped pool's.

    Parameters
    ----------
    pool
        Anything with ``map(func, iterable)``.
    counter : optional
        An object with ``add(n)``, told of each task's calls
        (:class:`~flowprior.workflows.repartition.CountedLikelihood`).

    Example
    -------
    >>> from multiprocessing.dummy import Pool  # threads: tasks run in this process
    >>> with Pool(2) as threads:
    ...     pool = CountingPool(threads)
    ...     pool.map(abs, [-1, 2]), pool.calls
    ([1, 2], 0)
    """

    def __init__(self, pool, counter=None):
        self.pool = pool
        self.counter = counter
        self.calls = 0

    def map(self, func, iterable) -> list:
        here = os.getpid()
        out = list(self.pool.map(_Tallied(func), iterable))
        calls = sum(n for _, n, pid in out if pid != here)
        self.calls += calls
        if self.counter is not None and calls:
            self.counter.add(calls)
        return [result for result, _, _ in out]

    def __getattr__(self, name):
        if name == "pool":  # not yet set (unpickling)
            raise AttributeError(name)
        return getattr(self.pool, name)

    def __getstate__(self):
        raise TypeError("a CountingPool is not pickled: it wraps a live pool")
