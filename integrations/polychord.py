"""PolyChord adapter: runs pypolychord and returns a flowprior Result.

PolyChord is given the identity prior, so it samples the unit hypercube
``u`` itself; the user's ``prior_transform`` is applied inside the likelihood
and the physical parameters ride along as derived parameters.  Each point
then comes back in both coordinates, ``samples_u`` and the physical
``samples``, which is what the enhanced run trains its flow on (DESIGN.md,
"Work in the sampler's hypercube").

pypolychord is not on PyPI: build it from PolyChordLite's source (see
:func:`_import`).  It is imported lazily, so flowprior works without it.

Known PolyChord behaviours this adapter works around:

- ``read_resume`` defaults to true, so a rerun with the same output root
  silently returns the old result: every run writes to a fresh root and
  ``read_resume`` is false unless the caller asks for it.
- A Python exception raised inside PolyChord's callbacks unwinds through
  Fortran frames: it is swallowed (prior) or leaves the library broken for
  the next run in the same process (likelihood).  Here no exception ever
  leaves the callback: the first one is stored, PolyChord is steered to a
  quick finish (see ``_Likelihood``) and the exception is re-raised after
  ``run_polychord`` returns.
- The likelihood must return a Python ``float``.
- While generating its initial live points PolyChord redraws every point
  at or below ``logzero``: a likelihood with no support in the prior keeps
  it drawing forever.  The adapter stops it with an error after as many
  draws as dynesty makes (``NO_SUPPORT_ROUNDS``).
- Reading a resume file that is cut short, or written for other
  dimensions, stops the whole process (a Fortran "End of file", exit 2):
  the adapter reads the file through first and raises a ``ValueError``
  naming it.

Under ``mpirun`` an MPI-built pypolychord runs every PolyChord on all ranks of
``MPI.COMM_WORLD`` at once (it takes no communicator): rank 0 hands out the
work and writes every file, the other ranks slice sample (they make nearly
all the likelihood calls), and all ranks leave the run together (PolyChord
ends it with a barrier).  So the output root must be the
same on every rank: it is made on rank 0 and broadcast, rank 0 reads the
files and broadcasts what it read (the other ranks need not see rank 0's
temporary directory), and every rank returns the same Result (see
:func:`mpi_comm` and :mod:`flowprior.mpi`).
"""

from __future__ import annotations

import ctypes
import math
import os
import shutil
import tempfile
import uuid
import warnings

from dataclasses import dataclass

import numpy as np

from flowprior.flows.base import make_rng
from flowprior.workflows.checked import CheckedLikelihood, CheckedPrior
from flowprior.workflows import fingerprint
from flowprior.integrations.base import HighStart, SamplerAdapter, StageSettings
from flowprior.integrations.polychord_resume import CallLog, check_resume, live_points
from flowprior.mpi import on_root, raise_if_failed_elsewhere, rank
from flowprior.result import Result

INSTALL_HINT = (
    "pypolychord is not on PyPI; build it from PolyChordLite's source (needs gfortran and a C++ compiler):\n"
    "    git clone https://github.com/PolyChord/PolyChordLite\n"
    "    cd PolyChordLite\n"
    "    python setup.py --no-mpi install    # serial build; or: pip install .  (MPI build if mpicc is found)\n"
    "An MPI build also wants mpi4py (pip install mpi4py): without it, it can run only once per process."
)

#: Suffix of the copy of PolyChord's resume file taken when the user's code fails.
GOOD = ".good"
#: PolyChord's file_root inside a ``checkpoint`` directory.
CHECKPOINT_ROOT = "stage"
#: Suffix of the file beside a checkpoint's resume file that counts the user's calls (see ``CallLog``).
NCALL_SUFFIX = ".ncall"
#: As dynesty does: a run stops with an error when its first ``NO_SUPPORT_ROUNDS * nlive`` prior
#: draws all have logL at or below ``logzero`` (PolyChord itself would draw forever).
NO_SUPPORT_ROUNDS = 1000
# Settings this adapter owns: they come from run()'s own arguments.
_OWNED = {"nlive": "pass nlive= to run()", "seed": "pass seed= to run()"}
# Output files the adapter reads back; switching them off would leave it nothing to read.
_NEEDED_FILES = ("write_dead", "write_stats")


def _import():
    try:
        import pypolychord
        from pypolychord.settings import PolyChordSettings
    except ImportError as err:
        raise ImportError(f"sampler='polychord' needs pypolychord, which is not installed.\n{INSTALL_HINT}") from err
    return pypolychord, PolyChordSettings


def version() -> str:
    """The version of the pypolychord that :func:`run` would use.

    Raises
    ------
    ImportError
        If pypolychord is not installed (with build instructions).
    """
    pypolychord, _ = _import()
    return str(pypolychord.__version__)


def _library():
    """pypolychord's compiled module opened with ctypes, to look up symbols; None if that fails."""
    try:
        import _pypolychord

        return ctypes.CDLL(_pypolychord.__file__)
    except (ImportError, OSError, AttributeError):
        return None


def _built_with_mpi(lib) -> bool:
    """Whether pypolychord's compiled module links an MPI library.

    Looked up through the module's own handle, which searches it and the
    libraries it was linked against only: an MPI library that mpi4py loaded
    into the process does not count, and MPI is not initialised by looking.
    A serial build (``--no-mpi``) has no MPI symbols there at all.
    """
    return lib is not None and hasattr(lib, "MPI_Comm_dup")


def mpi_comm(lib=None):
    """The communicator PolyChord runs on, or None when it runs in this process alone.

    ``lib`` is pypolychord's module as :func:`_library` opens it (opened
    here if not given).

    Not None only when pypolychord was built with MPI, mpi4py imports and
    ``MPI.COMM_WORLD`` has more than one rank (the script was launched with
    ``mpirun -n N``, N > 1).  Importing mpi4py initialises MPI; that adds
    nothing here, because pypolychord's ``run_polychord`` imports mpi4py on
    every call anyway, and only the PolyChord code paths call this.  A
    serial build under ``mpirun`` gets None: each rank then runs its own
    independent PolyChord, as without MPI.  So does a missing pypolychord,
    which :func:`run` reports.
    """
    if not _built_with_mpi(_library() if lib is None else lib):
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    comm = MPI.COMM_WORLD
    return comm if comm.Get_size() > 1 else None


def _check_mpi_usable(lib) -> None:
    """Refuse to start PolyChord once MPI is finalised, which would abort the process.

    An MPI build initialises MPI itself when nothing else has (no mpi4py),
    and then finalises it at the end of the run; the next run's
    ``MPI_Comm_dup`` aborts the whole process with no Python traceback.
    """
    if not _built_with_mpi(lib):
        return
    done = ctypes.c_int(0)
    lib.MPI_Finalized(ctypes.byref(done))
    if done.value:
        raise RuntimeError("this pypolychord was built with MPI and finalised MPI at the end of an earlier run "
                           "in this process (it does so when mpi4py is not installed); a second run would "
                           "abort the process. pip install mpi4py, or rebuild pypolychord with --no-mpi")


class _Likelihood:
    """PolyChord's likelihood: hypercube ``u`` -> ``(logL, physical theta)``.

    Never raises: PolyChord cannot carry a Python exception through its
    Fortran core.  The first exception is kept in :attr:`error`, and every
    later call returns the constant :attr:`poison` without calling the
    user's code, which steers PolyChord to a quick, quiet finish:

    - after valid points, ``poison`` is one above the highest logL seen, so
      above every contour: each new point is accepted at once, the live
      points become a plateau and the precision criterion ends the run
      (measured: 16 000-37 000 trivial calls, 0.3-0.5 s, for 3-D,
      nlive=200).  A poison *below* the contour makes every slice shrink
      101 times, print "Non deterministic loglikelihood" and fail, until
      ``nfail`` failures stop the run: 10x the calls and thousands of lines
      of output.
    - before any valid point, ``poison`` lies just above ``logzero``: a
      value at or below ``logzero`` is redrawn while PolyChord generates its
      live points, which never ends if every call fails.

    PolyChord also draws forever when the likelihood is at or below
    ``logzero`` everywhere: after ``max_invalid`` such calls and no valid
    one, a ``ValueError`` becomes the stored error (:meth:`no_support`).

    :attr:`ncall` counts the calls of the user's function: the calls of
    ``loglike``, or, when ``loglike`` keeps its own count ``user_calls``
    (the enhanced run's repartitioned likelihood, which answers ``-inf``
    outside the cube without calling the user's function), the increase of
    that count.  With a :class:`CallLog` the count is also kept on disk.
    """

    def __init__(self, loglike, prior_transform, ndim: int, logzero: float, resume_file: str | None = None, *,
                 max_invalid: int | None = None, log: CallLog | None = None):
        self.resume_file = resume_file
        self.loglike = CheckedLikelihood(loglike)
        self.prior = CheckedPrior(prior_transform, ndim)
        self.ndim = ndim
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
        self.counter = loglike if _keeps_count(loglike) else None
        self.counter_start = int(loglike.user_calls) if self.counter is not None else 0

    @property
    def ncall(self) -> int:
        """Calls of the user's function made through this object."""
        if self.counter is None:
            return self.own
        return int(self.counter.user_calls) - self.counter_start

    def __call__(self, u) -> tuple[float, list[float]]:
        if self.error is not None:
            return self.poison, [0.0] * self.ndim
        if self.log is not None:
            self.log.watch()
        try:
            # Copy: PolyChord hands over a view of its own buffer, which a
            # user's function must not keep or modify.
            theta = self.prior(np.array(u, dtype=float))
            self.own += 1
            self._store()  # before the call too: a process killed inside it still counts it
            logl = self.loglike(theta)
        except BaseException as err:  # noqa: BLE001 - re-raised after the run (KeyboardInterrupt too)
            self.fail(err)
            return self.poison, [0.0] * self.ndim
        self._store()
        if logl > self.logzero:
            self.valid = True
            if logl > self.best and math.isfinite(logl):
                self.best = logl
        elif not self.valid and self.max_invalid is not None:
            self.invalid += 1
            if self.invalid >= self.max_invalid:
                self.fail(self.no_support())
                return self.poison, [0.0] * self.ndim
        # -inf is a legitimate "excluded point"; PolyChord treats anything at
        # or below logzero as outside the prior (see run()'s Notes).
        return float(logl), theta.tolist()

    def _store(self) -> None:
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


def _keeps_count(loglike) -> bool:
    """Whether ``loglike`` counts the user's calls itself, in an integer ``user_calls``."""
    count = getattr(loglike, "user_calls", None)
    return isinstance(count, (int, np.integer)) and not isinstance(count, bool)


def _check_keys(known: set, kwargs: dict) -> None:
    """Refuse settings PolyChord does not have, the adapter's own, and switching off files it reads."""
    for key in kwargs:
        if key in _OWNED:
            raise ValueError(f"sampler_kwargs[{key!r}]: {_OWNED[key]}")
        if key not in known:
            raise ValueError(f"sampler_kwargs: unknown PolyChord setting {key!r}; "
                             f"expected some of {sorted(known - set(_OWNED))}")
    for key in _NEEDED_FILES:
        if key in kwargs and not kwargs[key]:
            raise ValueError(f"sampler_kwargs[{key!r}]=False: the adapter reads that output file back")


def _merged(sampler_kwargs: dict | None, run_kwargs: dict | None) -> dict:
    """The two settings dicts as one (PolyChord has one settings object); a key in both is an error."""
    sk, rk = dict(sampler_kwargs or {}), dict(run_kwargs or {})
    both = sk.keys() & rk.keys()
    if both:
        raise ValueError(f"sampler_kwargs and run_kwargs both set {sorted(both)}; PolyChord has one settings object")
    return {**sk, **rk}


def check_settings(ndim: int, sampler_kwargs: dict | None, run_kwargs: dict | None) -> None:
    """Refuse settings that :func:`run` would refuse, before anything runs.

    Raises
    ------
    ImportError
        If pypolychord is not installed.
    ValueError
        For a key in both dicts, an unknown PolyChord setting, ``nlive`` or
        ``seed`` (set by the run itself), or switching off an output file
        the adapter reads back.
    """
    _, PolyChordSettings = _import()
    _check_keys(set(vars(PolyChordSettings(int(ndim), int(ndim)))), _merged(sampler_kwargs, run_kwargs))


def _settings(PolyChordSettings, ndim: int, nlive: int, seed: int, kwargs: dict):
    """A PolyChordSettings with the adapter's defaults and the caller's overrides."""
    settings = PolyChordSettings(ndim, ndim)
    _check_keys(set(vars(settings)), kwargs)
    settings.nlive = int(nlive)
    settings.seed = int(seed)
    settings.feedback = 0
    # PolyChord's default read_resume=True silently returns an old run found
    # at a caller-chosen base_dir/file_root; resuming is opt-in here.
    settings.read_resume = False
    settings.write_resume = False
    for key, value in kwargs.items():
        setattr(settings, key, value)
    return settings


def _read_points(root: str, ndim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Dead (and final live) points from ``<root>_dead-birth.txt``, sorted by logL.

    Columns are ``u (ndim), theta (ndim), logL, logL_birth``.  As anesthetic's
    ``read_polychord`` does, the final live points are merged in and
    duplicates dropped (at a normal finish they are already among the dead).
    """
    data = np.loadtxt(root + "_dead-birth.txt", ndmin=2)
    live_file = root + "_phys_live-birth.txt"
    if os.path.exists(live_file):
        live = np.loadtxt(live_file, ndmin=2)
        if live.size:
            data = np.unique(np.concatenate([data, live]), axis=0)
    data = data[np.argsort(data[:, -2], kind="stable")]
    return data[:, :ndim], data[:, ndim:2 * ndim], data[:, -2], data[:, -1]


def _prior_info(root: str) -> dict:
    """``nprior`` and ``ndiscarded`` (all prior draws) from ``<root>.prior_info``, if written."""
    info = {}
    try:
        with open(root + ".prior_info") as f:
            for line in f:
                key, _, value = line.partition("=")
                info[key.strip()] = int(value)
    except (OSError, ValueError):
        pass
    return info


def _full_prior_evidence(logZ: float, logZerr: float, info: dict) -> tuple[float, float]:
    """PolyChord's evidence over the whole prior, not only where ``logL > logzero``.

    PolyChord redraws initial points at or below ``logzero`` (``-inf``
    included), so its ``logZ`` is over the part of the prior where the
    likelihood is valid.  That part's prior mass is estimated by the
    fraction of valid draws, ``p = nprior / ndiscarded`` (binomial:
    ``var(log p) = (1 - p) / nprior``); dynesty's evidence already counts it.
    """
    nprior, drawn = info.get("nprior"), info.get("ndiscarded")
    if not nprior or not drawn or drawn <= nprior:
        return logZ, logZerr
    p = nprior / drawn
    return logZ + math.log(p), math.sqrt(logZerr**2 + (1 - p) / nprior)


def _output_root(settings, kwargs: dict, checkpoint, own_dir: bool, ndim: int, serial: bool) -> tuple:
    """``(base_dir, file_root, start)`` of a run, on rank 0; ``start`` from :func:`_resume_state`.

    A ``checkpoint`` directory resumes whenever it holds a resume file; a
    caller's own ``base_dir``/``file_root`` only with ``read_resume``.
    """
    if checkpoint is not None:
        os.makedirs(checkpoint, exist_ok=True)
        base_dir, file_root = str(checkpoint), CHECKPOINT_ROOT
        log_file = os.path.join(base_dir, file_root + NCALL_SUFFIX)
        start = _resume_state(os.path.join(base_dir, file_root + ".resume"), log_file, ndim, settings.grade_dims)
        if not serial and os.path.exists(log_file):
            os.remove(log_file)  # not kept under MPI (see run's Notes), so never left stale
        return base_dir, file_root, start
    base_dir = tempfile.mkdtemp(prefix="flowprior-polychord-") if own_dir else settings.base_dir
    file_root = settings.file_root if "file_root" in kwargs else "flowprior_" + uuid.uuid4().hex[:12]
    resume_file = os.path.join(base_dir, file_root + ".resume")
    start = _resume_state(resume_file if settings.read_resume else None, None, ndim, settings.grade_dims)
    return base_dir, file_root, start


def _resume_state(resume_file: str | None, log_file: str | None, ndim: int, grade_dims) -> dict:
    """Whether a run resumes, and the user's calls it carries over.

    ``resume``: a resume file exists (it is checked: :func:`check_resume`).
    ``ncall``: calls before this run, from the call log ``log_file`` when it
    goes with that resume file (``counted_by`` "flowprior"), else PolyChord's
    own count in the resume file ("polychord").  ``digest``: the resume
    file's SHA-256.
    """
    if resume_file is None or not os.path.exists(resume_file):
        return {"resume": False, "ncall": 0, "counted_by": None, "digest": None}
    header, digest = check_resume(resume_file, ndim, ndim, [int(d) for d in grade_dims])
    live = live_points(header, ndim, ndim)
    logged = CallLog.read(log_file) if log_file is not None else None
    if logged is not None and logged[1] == digest:
        return {"resume": True, "ncall": logged[0], "counted_by": "flowprior", "digest": digest, "live": live}
    if logged is not None and logged[1] != bytes(32):
        folder = os.path.dirname(resume_file)
        raise ValueError(f"{resume_file}: not the resume file PolyChord last wrote here ({os.path.basename(log_file)} "
                         "records another SHA-256): it changed after it was written, or the run was killed while "
                         f"PolyChord wrote its files; delete it (or the whole directory {folder}) "
                         "to restart this stage from the beginning")
    return {"resume": True, "ncall": header["nlike"], "counted_by": "polychord", "digest": digest, "live": live}


def _verify_live(start: dict, loglike, prior_transform, ndim: int, resume_file: str) -> int:
    """Check the functions given now against a resume file's best live points; return the calls made."""
    live = start["live"]
    rows = fingerprint.best_rows(np.asarray(live["logl"]))
    stored = {"u": live["u"][rows], "theta": live["theta"][rows], "logl": [live["logl"][i] for i in rows]}
    return fingerprint.verify(stored, CheckedLikelihood(loglike), CheckedPrior(prior_transform, ndim),
                              f"checkpoint {resume_file}")


def run(loglike, prior_transform, ndim: int, *, nlive: int, seed=None, names=None, pool=None,
        sampler_kwargs: dict | None = None, run_kwargs: dict | None = None, checkpoint=None) -> Result:
    """Run PolyChord and collect its output.

    Parameters
    ----------
    loglike : callable
        ``theta -> float`` log-likelihood in physical parameters.
    prior_transform : callable
        ``u -> theta`` from the unit hypercube.
    ndim : int
    nlive : int
        PolyChord's ``nlive``.
    seed : int or numpy Generator, optional
        Drawn into PolyChord's (positive, 32-bit) ``seed``.  ``None`` draws
        one from fresh entropy.
    names : list of str, optional
        Column names of the physical parameters (default ``0 .. ndim-1``).
    pool : None
        Not supported: PolyChord parallelises with MPI (build it with MPI,
        install mpi4py and launch the script with ``mpirun``), not with a
        Python pool.  Under ``mpirun`` every rank must call :func:`run`
        with the same arguments, and every rank gets the same Result.
    sampler_kwargs, run_kwargs : dict, optional
        ``PolyChordSettings`` attributes (``num_repeats``,
        ``precision_criterion``, ``do_clustering``, ``base_dir``,
        ``file_root``...).  PolyChord has one settings object, so the two
        dicts are merged; a key in both is an error, as is an unknown key.
        Without ``base_dir`` the run writes to a fresh temporary directory
        that is deleted afterwards; pass ``base_dir`` to keep the files.
        ``read_resume`` and ``write_resume`` are false unless given: to
        resume, pass ``base_dir``, ``file_root`` and both as true (the
        resume file is checked as with ``checkpoint``, and ``ncall``
        carries PolyChord's own count of the calls before it).
    checkpoint : str or Path, optional
        A directory for PolyChord's resume files (``write_resume``): if it
        already holds a resume file, the run continues from it
        (``read_resume``) after checking that PolyChord can read it through.
        If the user's code raises, the last resume file written before the
        error is put back, not the one PolyChord writes while being steered
        to a stop.  Beside it, ``stage.ncall`` counts the user's calls made
        for the stage (see Notes).  Excludes ``base_dir`` and ``file_root``.

    Returns
    -------
    Result
        ``samples`` (physical parameters, with PolyChord's logL and birth
        contours), ``samples_u`` (the same points in the hypercube),
        ``logZ`` and ``logZerr`` from PolyChord's ``.stats`` file, and
        ``ncall["total"]``: the calls of the user's function (see Notes;
        summed over the ranks under MPI).
        ``raw`` is pypolychord's ``PolyChordOutput``, with ``version``,
        ``files`` (the output root, or None when the temporary directory
        was deleted), ``prior_info``, ``ncall`` and ``resumed`` added
        (None, or ``{"ncall": calls before this run, "counted_by":
        "flowprior" or "polychord"}``).

    Raises
    ------
    ImportError
        If pypolychord is not installed (it is not on PyPI).
    ValueError
        For ``pool``, unknown or conflicting settings, a resume file that
        PolyChord could not read through (cut short, damaged, or written
        for another ``ndim`` or ``grade_dims``: PolyChord would stop the
        whole process; the message names the file to delete), or (after the
        run) a NaN likelihood, a badly shaped prior point
        (:mod:`flowprior.workflows.checked`) or a likelihood with no support: at or
        below ``logzero`` at each of the first ``1000 * nlive`` prior draws
        (``NO_SUPPORT_ROUNDS``, dynesty's limit; PolyChord would draw
        forever).
    Exception
        Whatever the user's ``loglike`` or ``prior_transform`` raised,
        re-raised after PolyChord has stopped (under MPI on the rank where
        it happened; the other ranks raise a ``RuntimeError`` naming it).
    RuntimeError
        If an MPI-built pypolychord already finalised MPI in this process
        (see ``INSTALL_HINT``).

    Notes
    -----
    ``ncall`` is counted here, not read from the ``.stats`` file: PolyChord's
    own ``nlike`` counts only points with logL above ``logzero`` (so it
    misses ``-inf`` points), can overflow to ``*****`` in the file, and in
    the measured runs was one call short of the real count.  It counts the
    calls of ``loglike``; a ``loglike`` object with an integer attribute
    ``user_calls`` (the enhanced run's repartitioned likelihood, which
    answers ``-inf`` outside the cube without calling the user's function)
    is trusted for the count instead: the increase of ``user_calls`` during
    the run.

    A run resumed from ``checkpoint`` continues from PolyChord's last
    resume file, which PolyChord writes after the initial live points,
    each time the live points' volume shrinks by ``compression_factor``
    (``e**-1`` by default) and at the end.  What it reproduces:

    - the same checkpoint, seed and settings give the same run, point for
      point (PolyChord is deterministic given its seed);
    - a finished checkpoint gives back the finished run's result, with no
      new calls;
    - ``ncall`` is every call of the user's function made for the stage
      since it started afresh, in every process: those before the resume
      file, those made after it by a process that was then stopped or
      killed (kept in ``stage.ncall`` at each call), and the resumed
      run's.  If ``stage.ncall`` is missing or has recorded no resume
      file yet (and always under MPI, where each rank counts its own
      calls), it is PolyChord's own count up to the resume file instead,
      with a warning outside MPI; ``raw.resumed`` says which.  A resume
      file other than the one ``stage.ncall`` recorded is refused (it
      changed after PolyChord wrote it).

    What it does not: the result of the uninterrupted run.  PolyChord's
    resume file holds no random state, and PolyChord seeds its generator
    from ``seed`` at every start, so the continuation draws other random
    numbers than the uninterrupted run would have, and redoes the work
    done after the resume file was written.  Its ``logZ`` and samples are
    a valid nested sampling run from the same point, statistically
    equivalent, not equal.

    PolyChord treats a point with logL at or below ``logzero`` (including
    ``-inf``) as outside the prior and redraws it while generating the
    initial live points, so its own ``logZ`` (kept in ``raw.logZ``) is the
    evidence of the prior restricted to ``logL > logzero``.  The returned
    ``logZ`` adds ``log(nprior / ndiscarded)`` from ``raw.prior_info`` (valid
    out of all initial draws), with its binomial error, so that it is the
    evidence over the whole prior, as dynesty's is.  The enhanced run relies
    on this: its flow prior can put mass outside the cube, where the
    likelihood is ``-inf``.  ``samples.logZ()`` (anesthetic, from the saved
    points only) does not include the correction.
    """
    if pool is not None:
        raise ValueError("pool: PolyChord does not take a Python pool; it parallelises with MPI "
                         "(build pypolychord with MPI and run the script under mpirun)")
    pypolychord, PolyChordSettings = _import()
    lib = _library()
    _check_mpi_usable(lib)
    comm = mpi_comm(lib)
    kwargs = _merged(sampler_kwargs, run_kwargs)

    rng = make_rng(seed)
    # PolyChord's seed is a C int and must be positive (negative = clock).
    pc_seed = int(rng.integers(1, 2**31 - 1))
    settings = _settings(PolyChordSettings, ndim, nlive, pc_seed, kwargs)  # validates before any directory exists
    if checkpoint is not None:
        clash = sorted({"base_dir", "file_root", "read_resume", "write_resume"} & kwargs.keys())
        if clash:
            raise ValueError(f"{clash}: set from checkpoint= (the stage's directory); do not pass them as well")
    own_dir = "base_dir" not in kwargs and checkpoint is None

    # Under MPI all ranks run one PolyChord, which needs one output root (and
    # one decision to resume, else the ranks take different branches): rank 0's.
    settings.base_dir, settings.file_root, start = on_root(
        comm, lambda: _output_root(settings, kwargs, checkpoint, own_dir, ndim, serial=comm is None))
    settings.read_resume = start["resume"]
    root = os.path.join(settings.base_dir, settings.file_root)
    # The functions given now must reproduce the resumed run's live points (else it is another problem's).
    verified = on_root(comm, lambda: _verify_live(start, loglike, prior_transform, ndim, root + ".resume")
                       if start["resume"] else 0)
    resume_file = log = None
    if checkpoint is not None:
        resume_file = root + ".resume"
        settings.write_resume = True
        if comm is None:
            log = CallLog(root + NCALL_SUFFIX, resume_file, start["ncall"], start["digest"])
            if start["counted_by"] == "polychord":
                warnings.warn(f"{root + NCALL_SUFFIX} is missing or recorded no resume file: ncall carries "
                              f"PolyChord's own count of the calls before {resume_file} was written "
                              f"({start['ncall']}), which leaves out calls at or below logzero and calls made "
                              "after it", UserWarning, stacklevel=3)
    like = _Likelihood(loglike, prior_transform, ndim, float(settings.logzero), resume_file, log=log,
                       max_invalid=None if start["resume"] else NO_SUPPORT_ROUNDS * int(nlive))
    try:
        # Identity prior (pypolychord's default): PolyChord samples u itself.
        failure = output = None
        try:
            output = pypolychord.run_polychord(like, ndim, ndim, settings, dumper=like.dump)
        except Exception as err:  # e.g. reading a cut-short run's .stats; the user's error comes first
            failure = err
        if comm is not None:
            if rank(comm) != 0:
                # Only rank 0's files count (read below); run_polychord's own read of the
                # .stats fails on a rank that does not share rank 0's file system.
                failure = None
            # Also the barrier before rank 0 deletes the files: every rank has left run_polychord.
            raise_if_failed_elsewhere(comm, like.error or failure)
        if like.error is not None:
            like.restore_checkpoint()
            raise like.error
        if failure is not None:
            raise failure

        def read() -> tuple:
            output.version = str(pypolychord.__version__)
            # PolyChordOutput.root names the files; say whether they still exist.
            output.files = None if own_dir else root
            output.prior_info = _prior_info(root)
            return _read_points(root, ndim), output

        (u, theta, logl, logl_birth), output = on_root(comm, read)
        # Each rank counted its own calls (under MPI mostly the workers').
        ncall = start["ncall"] + (like.ncall if comm is None else comm.allreduce(like.ncall))
        output.ncall = ncall
        output.resumed = {"ncall": start["ncall"], "counted_by": start["counted_by"]} if start["resume"] else None
    finally:
        if log is not None:
            log.close()
        if own_dir and rank(comm) == 0:
            shutil.rmtree(settings.base_dir, ignore_errors=True)

    from anesthetic import NestedSamples

    columns = list(names) if names is not None else list(range(ndim))
    samples = NestedSamples(data=theta, logL=logl, logL_birth=logl_birth, columns=columns)
    logZ, logZerr = _full_prior_evidence(float(output.logZ), float(output.logZerr), output.prior_info)
    return Result(samples=samples, logZ=logZ, logZerr=logZerr,
                  ncall={"total": int(ncall), **({"fingerprint": verified} if verified else {})}, samples_u=u,
                  sampler="polychord", raw=output)


@dataclass(frozen=True)
class PolyChordDefaults:
    """The enhanced run's named defaults for PolyChord (docs/design.md, the section named beside each).

    Attributes
    ----------
    nlive_low : int
        Low-stage live points ("Low-stage live points").
    low_repeats, high_repeats : float
        ``num_repeats`` of the low and high stages as a fraction of ``ndim``
        (PolyChord's own default is ``5 * ndim``; "PolyChord repeats").
    high_precision : float
        ``precision_criterion`` of the high stage (PolyChord's default 0.001;
        "High-stage stopping rules").
    """

    nlive_low: int = 100
    low_repeats: float = 0.5
    high_repeats: float = 0.5
    high_precision: float = 0.1


def repeats(fraction: float, ndim: int) -> int:
    """PolyChord's ``num_repeats`` as a fraction of ``ndim``, at least 1."""
    return max(1, int(fraction * ndim))


class PolyChord(SamplerAdapter):
    """PolyChord behind flowprior's workflows, with the enhanced run's policy for it.

    PolyChord has one settings object, so a key in either of the user's
    dicts counts as set, and a key that a stage sets is taken out of
    ``run_kwargs``.

    Parameters
    ----------
    defaults : PolyChordDefaults
    """

    name = "polychord"

    def __init__(self, defaults: PolyChordDefaults = PolyChordDefaults()):
        self.defaults = defaults

    def check_settings(self, ndim, sampler_kwargs, run_kwargs) -> None:
        check_settings(ndim, sampler_kwargs, run_kwargs)

    def run(self, loglike, prior_transform, ndim, **kwargs) -> Result:
        return run(loglike, prior_transform, ndim, **kwargs)

    def mpi_comm(self):
        return mpi_comm()

    def low_settings(self, ndim, nlive_low, settings: StageSettings) -> StageSettings:
        """Fewer slice repeats than PolyChord's default: the low stage needs live points, not decorrelated chains."""
        user = settings.sampler_kwargs or {}
        if "num_repeats" in user or "num_repeats" in (settings.run_kwargs or {}):
            return settings
        return StageSettings({**user, "num_repeats": repeats(self.defaults.low_repeats, ndim)}, settings.run_kwargs)

    def high_settings(self, ndim, nlive, settings: StageSettings, high_sampler_kwargs,
                      start: HighStart) -> StageSettings:
        """Few slice repeats in the flow-whitened cube and an earlier stop; the user's settings win."""
        high = dict(high_sampler_kwargs or {})
        sk = {**(settings.sampler_kwargs or {}), **high}
        if "num_repeats" not in high:
            sk["num_repeats"] = repeats(self.defaults.high_repeats, ndim)
        user = settings.run_kwargs or {}
        rk = {k: v for k, v in user.items() if k not in sk}
        if "precision_criterion" not in user and "precision_criterion" not in sk:
            rk["precision_criterion"] = self.defaults.high_precision
        return StageSettings(sk, rk if rk or settings.run_kwargs is not None else None)


ADAPTER = PolyChord()
