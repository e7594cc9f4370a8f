"""PolyChord's likelihood callback: the user's functions behind a callback that never raises.

PolyChord is given the identity prior, so it samples the unit hypercube
``u`` itself: :class:`Likelihood` applies the user's ``prior_transform``,
calls ``loglike`` and hands the physical parameters back as derived
parameters, followed by the user's own derived parameters (a ``loglike``
with ``derived_names``: :mod:`flowprior.workflows.checked`).

A Python exception raised inside PolyChord's callbacks unwinds through
Fortran frames: it is swallowed (prior) or leaves the library broken for the
next run in the same process (likelihood).  So no exception ever leaves the
callback: the first one is stored, PolyChord is steered to a quick finish
and the adapter re-raises the exception after ``run_polychord`` returns.

The adapter's ``ncall`` is counted here, not read from PolyChord's
``.stats`` file: PolyChord's own ``nlike`` counts only points with logL
above ``logzero`` (so it misses ``-inf`` points), can overflow to ``*****``
in the file, and can be one call short of the real count.
:attr:`Likelihood.ncall` counts the calls of ``loglike``; a ``loglike``
object with an integer attribute ``user_calls`` (the enhanced run's
repartitioned likelihood, which answers ``-inf`` outside the cube without
calling the user's function) is trusted for the count instead: the increase
of ``user_calls`` during the run.
"""

from __future__ import annotations

import math
import os
import shutil

import numpy as np

from flowprior.workflows.checked import CheckedLikelihood, CheckedPrior, derived_names
from flowprior.integrations.polychord_resume import CallLog

#: Suffix of the copy of PolyChord's resume file taken when the user's code fails.
GOOD = ".good"


class Likelihood:
    """PolyChord's likelihood: hypercube ``u`` -> ``(logL, physical theta)``.

    Never raises: PolyChord cannot carry a Python exception through its
    Fortran core.  The first exception is kept in :attr:`error`, and every
    later call returns the constant :attr:`poison` without calling the
    user's code, which steers PolyChord to a quick, quiet finish:

    - after valid points, ``poison`` is one above the highest logL seen, so
      above every contour: each new point is accepted at once, the live
      points become a plateau and the precision criterion ends the run with
      trivial calls only.  A poison *below* the contour makes every slice
      shrink 101 times, print "Non deterministic loglikelihood" and fail,
      until ``nfail`` failures stop the run: many times the calls and
      thousands of lines of output (measured: docs/design.md, "Fault
      handling").
    - before any valid point, ``poison`` lies just above ``logzero``: a
      value at or below ``logzero`` is redrawn while PolyChord generates its
      live points, which never ends if every call fails.

    PolyChord also draws forever when the likelihood is at or below
    ``logzero`` everywhere: after ``max_invalid`` such calls and no valid
    one, a ``ValueError`` becomes the stored error (:meth:`no_support`).

    :attr:`ncall` counts the calls of the user's function (see the module's
    notes).  With a :class:`~flowprior.integrations.polychord_resume.CallLog`
    the count is also kept on disk.
    """

    def __init__(self, loglike, prior_transform, ndim: int, logzero: float, resume_file: str | None = None, *,
                 max_invalid: int | None = None, log: CallLog | None = None):
        """Wrap the user's functions for PolyChord; ``resume_file`` is the checkpoint to protect, if any."""
        self.resume_file = resume_file
        self.loglike = CheckedLikelihood(loglike)
        self.prior = CheckedPrior(prior_transform, ndim)
        self.ndim = ndim
        self.nderived = len(derived_names(loglike))
        self.logzero = logzero
        self.floor = 0.5 * logzero if math.isfinite(logzero) and logzero < 0 else -1e300
        self.best = -math.inf
        self.poison = self.floor
        self.error: BaseException | None = None
        self.max_invalid = max_invalid
        self.invalid = 0  # calls at or below logzero before the first valid one
        self.valid = False
        self.log = log
        self.own = 0
        self.counter = loglike if keeps_count(loglike) else None
        self.counter_start = int(loglike.user_calls) if self.counter is not None else 0

    @property
    def ncall(self) -> int:
        """Calls of the user's function made through this object."""
        if self.counter is None:
            return self.own
        return int(self.counter.user_calls) - self.counter_start

    def __call__(self, u) -> tuple[float, list[float]]:
        """``(logL, theta + derived)`` at ``u``; the poison, never an exception, once the user's code has failed."""
        if self.error is not None:
            return self._poisoned()
        if self.log is not None:
            self.log.watch()
        try:
            # Copy: PolyChord hands over a view of its own buffer, which a
            # user's function must not keep or modify.
            theta = self.prior(np.array(u, dtype=float))
            self.own += 1
            self._store()  # before the call too: a process killed inside it still counts it
            logl, derived = self.loglike.both(theta)
        except BaseException as err:  # noqa: BLE001 - re-raised after the run (KeyboardInterrupt too)
            self.fail(err)
            return self._poisoned()
        self._store()
        if logl > self.logzero:
            self.valid = True
            if logl > self.best and math.isfinite(logl):
                self.best = logl
        elif not self.valid and self.max_invalid is not None:
            self.invalid += 1
            if self.invalid >= self.max_invalid:
                self.fail(self.no_support())
                return self._poisoned()
        # -inf is a legitimate "excluded point"; PolyChord treats anything at
        # or below logzero as outside the prior (see polychord_output's notes).
        return float(logl), theta.tolist() + derived.tolist()

    def _poisoned(self) -> tuple[float, list[float]]:
        """The poison and zero parameters: what PolyChord gets once the user's code has failed."""
        return self.poison, [0.0] * (self.ndim + self.nderived)

    def _store(self) -> None:
        """Write the call count to the call log, so that a killed process leaves it behind."""
        if self.log is not None:
            self.log.store(self.ncall)

    def no_support(self) -> ValueError:
        """The error for a likelihood that was invalid at every prior draw so far."""
        return ValueError(f"loglike was -inf (or at most PolyChord's logzero, {self.logzero:g}) at all "
                          f"{self.invalid} prior draws: the likelihood has no support in the prior; check loglike "
                          "and prior_transform (PolyChord would draw forever)")

    def fail(self, err: BaseException) -> None:
        """Keep ``err`` to raise after the run, and steer PolyChord to a stop."""
        self.error = err
        if self.resume_file is not None and os.path.exists(self.resume_file):
            # The poisoned finish would overwrite the checkpoint with a
            # plateau of fake points; keep the last good one to put back.
            try:
                shutil.copyfile(self.resume_file, self.resume_file + GOOD)
            except OSError:
                pass  # restore_checkpoint then removes the poisoned file
        self.poison = max(self.best + 1.0, self.floor)  # never at or below logzero

    def dump(self, *_) -> None:
        """pypolychord's ``dumper``: PolyChord has just written a new resume file."""
        if self.error is not None or self.log is None:
            return  # a poisoned finish's resume files are never the checkpoint
        try:
            self.log.mark()
        except BaseException as err:  # noqa: BLE001 - KeyboardInterrupt while hashing
            self.fail(err)

    def restore_checkpoint(self) -> None:
        """After a failed run, put back the resume file from before the error.

        Without a copy (the error came before PolyChord first wrote one) the
        file there is the poisoned finish's only, so it goes.
        """
        if self.resume_file is None:
            return
        if os.path.exists(self.resume_file + GOOD):
            os.replace(self.resume_file + GOOD, self.resume_file)
        elif os.path.exists(self.resume_file):
            os.remove(self.resume_file)


def keeps_count(loglike) -> bool:
    """Whether ``loglike`` counts the user's calls itself, in an integer ``user_calls``."""
    count = getattr(loglike, "user_calls", None)
    return isinstance(count, (int, np.integer)) and not isinstance(count, bool)
