"""Sharing one rank's work with the others when PolyChord runs under ``mpirun``.

An MPI-built pypolychord runs each PolyChord on every rank of
``MPI.COMM_WORLD`` together: rank 0 writes the files, the others only slice
sample.  Everything around a run (its output directory, reading the files
back, training the enhanced run's flow, writing stage files) must then
happen once, on rank 0, and be shared.  These helpers take the communicator
from :func:`flowprior.integrations.polychord.mpi_comm`, which is ``None``
whenever there is nothing to share; with ``None`` they just do the work
here, so the serial code path is unchanged and mpi4py is never imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def rank(comm) -> int:
    """This process's rank in ``comm`` (0 when ``comm`` is None)."""
    return 0 if comm is None else comm.Get_rank()


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def on_root(comm, work: Callable[[], T]) -> T:
    """``work()`` on rank 0, its result sent to every rank (collective).

    Parameters
    ----------
    comm : mpi4py communicator or None
        ``None`` calls ``work()`` here.
    work : callable
        No arguments; its result must pickle (numpy arrays, flows and
        ``Result`` objects do).

    Returns
    -------
    object
        Rank 0's ``work()``, on every rank.

    Raises
    ------
    Exception
        On rank 0, whatever ``work()`` raised; on the other ranks a
        ``RuntimeError`` quoting it.  Without that they would wait for the
        broadcast forever.
    """
    if comm is None:
        return work()
    if comm.Get_rank() == 0:
        try:
            value = work()
        except BaseException as err:
            comm.bcast((False, _describe(err)), root=0)
            raise
        comm.bcast((True, value), root=0)
        return value
    ok, value = comm.bcast(None, root=0)
    if not ok:
        raise RuntimeError(f"failed on MPI rank 0: {value}")
    return value


def raise_if_failed_elsewhere(comm, error: BaseException | None) -> None:
    """Make a failure on any rank a failure on every rank (collective).

    A rank whose own ``error`` is not None returns, to raise that error
    itself; the others raise a ``RuntimeError`` naming the first rank that
    failed.  A rank that went on alone would hang in the next collective.
    """
    errors = comm.allgather(None if error is None else _describe(error))
    if error is not None:
        return
    for where, message in enumerate(errors):
        if message is not None:
            raise RuntimeError(f"PolyChord failed on MPI rank {where}: {message}")
