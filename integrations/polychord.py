"""PolyChord adapter: runs pypolychord and returns a flowprior Result.

PolyChord is given the identity prior, so it samples the unit hypercube
``u`` itself; the user's ``prior_transform`` is applied inside the likelihood
(:mod:`~flowprior.integrations.polychord_likelihood`) and the physical
parameters ride along as derived parameters.  Each point then comes back in
both coordinates, ``samples_u`` and the physical ``samples``: the enhanced
run trains its flow in the hypercube, where the prior density is exactly 1.

pypolychord is not on PyPI: build it from PolyChordLite's source (see
``INSTALL_HINT``).  It is imported lazily, so flowprior works without it.

Known PolyChord behaviours this adapter works around:

- ``read_resume`` defaults to true, so a rerun with the same output root
  silently returns the old result: every run writes to a fresh root and
  ``read_resume`` is false unless the caller asks for it.
- A Python exception raised inside PolyChord's callbacks unwinds through
  Fortran frames: it is swallowed (prior) or leaves the library broken for
  the next run in the same process (likelihood).  Here no exception ever
  leaves the callback: the first one is stored, PolyChord is steered to a
  quick finish (see :class:`~flowprior.integrations.polychord_likelihood.Likelihood`)
  and the exception is re-raised after ``run_polychord`` returns.
- The likelihood must return a Python ``float``.
- While generating its initial live points PolyChord redraws every point
  at or below ``logzero``: a likelihood with no support in the prior keeps
  it drawing forever.  The adapter stops it with an error after as many
  draws as dynesty makes (``NO_SUPPORT_ROUNDS``).  PolyChord's evidence is
  then over the part of the prior above ``logzero`` only; the adapter
  corrects it to the whole prior (:mod:`~flowprior.integrations.polychord_output`).
- Reading a resume file that is cut short, or written for other
  dimensions, stops the whole process (a Fortran "End of file", exit 2):
  the adapter reads the file through first and raises a ``ValueError``
  naming it (:mod:`~flowprior.integrations.polychord_resume`, which also
  says what a resumed run reproduces).
- PolyChord's own call count misses calls at or below ``logzero``: the
  adapter counts the calls of the user's function itself
  (:mod:`~flowprior.integrations.polychord_likelihood`).

Under ``mpirun`` an MPI-built pypolychord runs every PolyChord on all ranks of
``MPI.COMM_WORLD`` at once (it takes no communicator): rank 0 hands out the
work and writes every file, the other ranks slice sample (they make nearly
all the likelihood calls), and all ranks leave the run together (PolyChord
ends it with a barrier).  So the output root must be the
same on every rank: it is made on rank 0 and broadcast, rank 0 reads the
files and broadcasts what it read (the other ranks need not see rank 0's
temporary directory), and every rank returns the same Result (see
:func:`mpi_comm` and :mod:`flowprior.mpi`).  Each rank counts its own
calls; ``ncall`` is their sum.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import warnings

from dataclasses import dataclass

from flowprior.flows.base import make_rng
from flowprior.integrations.base import HighStart, SamplerAdapter, StageSettings
from flowprior.integrations.polychord_likelihood import Likelihood
from flowprior.integrations.polychord_output import full_prior_evidence, nested_samples, prior_info, read_points
from flowprior.integrations.polychord_resume import NCALL_SUFFIX, CallLog, output_root, verify_live
from flowprior.mpi import on_root, raise_if_failed_elsewhere, rank
from flowprior.workflows.checked import derived_names
from flowprior.evidence import logz_error
from flowprior.result import Result

INSTALL_HINT = (
    "pypolychord is not on PyPI; build it from PolyChordLite's source (needs gfortran and a C++ compiler):\n"
    "    git clone https://github.com/PolyChord/PolyChordLite\n"
    "    cd PolyChordLite\n"
    "    python setup.py --no-mpi install    # serial build; or: pip install .  (MPI build if mpicc is found)\n"
    "An MPI build also wants mpi4py (pip install mpi4py): without it, it can run only once per process."
)

#: As dynesty does: a run stops with an error when its first ``NO_SUPPORT_ROUNDS * nlive`` prior
#: draws all have logL at or below ``logzero`` (PolyChord itself would draw forever).
NO_SUPPORT_ROUNDS = 1000
# Settings this adapter owns: they come from run()'s own arguments.
_OWNED = {"nlive": "pass nlive= to run()", "seed": "pass seed= to run()"}
# Output files the adapter reads back; switching them off would leave it nothing to read.
_NEEDED_FILES = ("write_dead", "write_stats")


def _import():
    """pypolychord and its settings class, imported only when a PolyChord run needs them."""
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

def run(loglike, prior_transform, ndim: int, *, nlive: int, seed=None, names=None, pool=None,
        sampler_kwargs: dict | None = None, run_kwargs: dict | None = None, checkpoint=None) -> Result:
    """Run PolyChord and collect its output.

    Parameters
    ----------
    loglike, prior_transform : callable
        ``theta -> float`` in physical parameters; ``u -> theta`` from the unit hypercube.
    ndim, nlive : int
    seed : int or numpy Generator, optional
        Drawn into PolyChord's (positive, 32-bit) ``seed``; ``None`` draws one from fresh entropy.
    names : list of str, optional
        Column names of the physical parameters (default ``0 .. ndim-1``).
    pool : None
        Not supported: PolyChord parallelises with MPI (see the module's notes); under ``mpirun`` every
        rank calls :func:`run` with the same arguments and gets the same Result.
    sampler_kwargs, run_kwargs : dict, optional
        ``PolyChordSettings`` attributes, merged into one settings object.  Without ``base_dir`` the run
        writes to a temporary directory, deleted afterwards.  ``read_resume`` and ``write_resume`` are
        false unless given: to resume, pass ``base_dir``, ``file_root`` and both as true (the resume file
        is checked as with ``checkpoint``; ``ncall`` carries PolyChord's own count of the calls before it).
    checkpoint : str or Path, optional
        A directory for PolyChord's resume files (and ``stage.ncall``, the user's calls): a run continues
        from the one there; if the user's code raises, the one from before the error is put back.
        Excludes ``base_dir`` and ``file_root`` (:mod:`~flowprior.integrations.polychord_resume`).

    Returns
    -------
    Result
        ``samples`` (physical, with logL and birth contours), ``samples_u``, ``logZ`` and ``logZerr`` over the
        whole prior, ``ncall["total"]`` (the user's calls, summed over MPI ranks); ``raw``, pypolychord's
        ``PolyChordOutput`` with ``version``, ``files`` (the output root, None once deleted), ``prior_info``,
        ``ncall`` and ``resumed`` (None, or the calls carried over and ``counted_by``) added.

    Raises
    ------
    ImportError
        If pypolychord is not installed (it is not on PyPI).
    ValueError
        For ``pool``; unknown or conflicting settings; a resume file PolyChord could not read through
        (the message names the file to delete); after the run, a NaN likelihood, a badly shaped prior
        point, or no support in the first ``NO_SUPPORT_ROUNDS * nlive`` prior draws.
    Exception
        What the user's functions raised, after PolyChord stops (on that MPI rank; the others name it).
    RuntimeError
        If an MPI-built pypolychord already finalised MPI in this process (see ``INSTALL_HINT``).
    """
    if pool is not None:
        raise ValueError("pool: PolyChord does not take a Python pool; it parallelises with MPI "
                         "(build pypolychord with MPI and run the script under mpirun)")
    pypolychord, PolyChordSettings = _import()
    lib = _library()
    _check_mpi_usable(lib)
    comm = mpi_comm(lib)
    kwargs = _merged(sampler_kwargs, run_kwargs)
    settings = _settings(PolyChordSettings, ndim, nlive, _seed(seed), kwargs)  # validates before any directory exists
    _check_checkpoint(checkpoint, kwargs)
    own_dir = "base_dir" not in kwargs and checkpoint is None
    derived = derived_names(loglike)
    extra = len(derived)
    start = _place(settings, kwargs, checkpoint, own_dir, ndim, comm, extra)
    root = os.path.join(settings.base_dir, settings.file_root)
    # The functions given now must reproduce the resumed run's live points (else it is another problem's).
    verified = on_root(comm, lambda: verify_live(start, loglike, prior_transform, ndim, root + ".resume")
                       if start["resume"] else 0)
    log = _call_log(settings, root, checkpoint, start, comm)
    like = Likelihood(loglike, prior_transform, ndim, float(settings.logzero),
                      root + ".resume" if checkpoint is not None else None, log=log,
                      max_invalid=None if start["resume"] else NO_SUPPORT_ROUNDS * int(nlive))
    try:
        ran = _execute(pypolychord, like, ndim, settings, comm)
        points, output = on_root(comm, lambda: _read(pypolychord, ran, root, ndim, extra, own_dir))
        # Each rank counted its own calls (under MPI mostly the workers').
        output.ncall = start["ncall"] + (like.ncall if comm is None else comm.allreduce(like.ncall))
        output.resumed = {"ncall": start["ncall"], "counted_by": start["counted_by"]} if start["resume"] else None
    finally:
        if log is not None:
            log.close()
        if own_dir and rank(comm) == 0:
            shutil.rmtree(settings.base_dir, ignore_errors=True)
    return _result(points, output, ndim, names, derived, verified)


def _seed(seed) -> int:
    """PolyChord's seed, drawn from ``seed``: a C int that must be positive (a negative one seeds from the clock)."""
    return int(make_rng(seed).integers(1, 2**31 - 1))


def _check_checkpoint(checkpoint, kwargs: dict) -> None:
    """Refuse the settings that ``checkpoint`` sets itself, so that they cannot disagree with it."""
    if checkpoint is not None:
        clash = sorted({"base_dir", "file_root", "read_resume", "write_resume"} & kwargs.keys())
        if clash:
            raise ValueError(f"{clash}: set from checkpoint= (the stage's directory); do not pass them as well")


def _place(settings, kwargs: dict, checkpoint, own_dir: bool, ndim: int, comm, extra: int) -> dict:
    """Set the run's output root and whether it resumes; return the resume state (``output_root``'s).

    Under MPI all ranks run one PolyChord, which needs one output root and one
    decision to resume (else the ranks take different branches): rank 0's.
    """
    settings.base_dir, settings.file_root, start = on_root(
        comm, lambda: output_root(settings, kwargs, checkpoint, own_dir, ndim, serial=comm is None, extra=extra))
    settings.read_resume = start["resume"]
    return start


def _call_log(settings, root: str, checkpoint, start: dict, comm) -> CallLog | None:
    """For a ``checkpoint``, turn on resume files and open the log of the user's calls beside them.

    The log is kept in a serial run only: under MPI each rank counts its own
    calls, and PolyChord's count in the resume file is carried instead.
    """
    if checkpoint is None:
        return None
    settings.write_resume = True
    if comm is not None:
        return None
    log = CallLog(root + NCALL_SUFFIX, root + ".resume", start["ncall"], start["digest"])
    if start["counted_by"] == "polychord":
        warnings.warn(f"{root + NCALL_SUFFIX} is missing or recorded no resume file: ncall carries "
                      f"PolyChord's own count of the calls before {root + '.resume'} was written "
                      f"({start['ncall']}), which leaves out calls at or below logzero and calls made "
                      "after it", UserWarning, stacklevel=4)
    return log


def _execute(pypolychord, like: Likelihood, ndim: int, settings, comm):
    """Run PolyChord; raise the user's error first, then PolyChord's, on every rank together.

    Identity prior (pypolychord's default): PolyChord samples ``u`` itself.
    Errors wait until ``run_polychord`` returns, because they cannot pass
    through its Fortran core; under MPI a failure on any rank stops all.
    """
    failure = output = None
    try:
        output = pypolychord.run_polychord(like, ndim, ndim + like.nderived, settings, dumper=like.dump)
    except Exception as err:  # e.g. reading a cut-short run's .stats; the user's error comes first
        failure = err
    if comm is not None:
        if rank(comm) != 0:
            # Only rank 0's files count (read by _read); run_polychord's own read of the
            # .stats fails on a rank that does not share rank 0's file system.
            failure = None
        # Also the barrier before rank 0 deletes the files: every rank has left run_polychord.
        raise_if_failed_elsewhere(comm, like.error or failure)
    if like.error is not None:
        like.restore_checkpoint()
        raise like.error
    if failure is not None:
        raise failure
    return output


def _read(pypolychord, output, root: str, ndim: int, extra: int, own_dir: bool) -> tuple:
    """On rank 0: the run's points from its files, and ``output`` with the adapter's fields added."""
    output.version = str(pypolychord.__version__)
    # PolyChordOutput.root names the files; say whether they still exist.
    output.files = None if own_dir else root
    output.prior_info = prior_info(root)
    return read_points(root, ndim, extra), output


def _result(points: tuple, output, ndim: int, names, derived, verified: int) -> Result:
    """The Result: anesthetic samples in physical parameters (then ``derived``) and PolyChord's evidence over the
    whole prior."""
    u, theta, logl, logl_birth = points
    columns = (list(names) if names is not None else list(range(ndim))) + list(derived)
    samples, u = nested_samples(u, theta, logl, logl_birth, columns)
    logZ, own = full_prior_evidence(float(output.logZ), float(output.logZerr), output.prior_info)
    _, logZerr = full_prior_evidence(float(output.logZ), logz_error(samples, float(output.logZerr)), output.prior_info)
    return Result(samples=samples, logZ=logZ, logZerr=logZerr, sampler_logZerr=own,
                  ncall={"total": int(output.ncall), **({"fingerprint": verified} if verified else {})}, samples_u=u,
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
    long_repeats, long_tail : float
        ``num_repeats`` (a fraction of ``ndim``) of a low stage redone because
        its posterior clusters, and of a high stage behind a flow of several
        pieces or whose check tail exceeds ``long_tail`` nats: short chains
        lose and misweigh modes, and miss the spikes of ``L / q`` behind a
        flow with missing tails ("PolyChord repeats").
    long_live : float
        A redone low stage runs ``long_live`` times the low stage's live
        points (at most ``nlive // 2``): few live points lose modes however
        long the chains ("PolyChord repeats").
    high_repeats_wide, high_repeats_wide_from : float, int
        From ``high_repeats_wide_from`` dimensions the high stage repeats
        ``high_repeats_wide * ndim`` times: fewer leave its posterior means
        off by more than a tenth of a width ("PolyChord repeats").
    high_precision : float
        ``precision_criterion`` of the high stage (PolyChord's default 0.001;
        "High-stage stopping rules").
    high_prior : float
        The high stage draws ``high_prior * nlive`` points from its prior
        (PolyChord's ``nprior``) before it compresses: behind a flow close to
        the posterior these are independent posterior-like draws at one call
        each, where slice chains cost ``num_repeats`` and leave correlated
        points ("High-stage prior draws").
    """

    nlive_low: int = 100
    low_repeats: float = 0.5
    long_repeats: float = 2.0
    long_tail: float = 5.0
    long_live: float = 2.0
    high_repeats: float = 0.5
    high_repeats_wide: float = 1.0
    high_repeats_wide_from: int = 20
    high_precision: float = 0.1
    high_prior: float = 20.0


def repeats(fraction: float, ndim: int) -> int:
    """PolyChord's ``num_repeats`` as a fraction of ``ndim``, at least 1."""
    return max(1, int(fraction * ndim))


def _with_repeats(settings: StageSettings, fraction: float, ndim: int) -> StageSettings | None:
    """``settings`` with ``num_repeats`` at ``fraction`` of ``ndim``; None where the user set it in either dict."""
    user = settings.sampler_kwargs or {}
    if "num_repeats" in user or "num_repeats" in (settings.run_kwargs or {}):
        return None
    return StageSettings({**user, "num_repeats": repeats(fraction, ndim)}, settings.run_kwargs)


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
        """An adapter with the enhanced run's ``defaults`` for PolyChord."""
        self.defaults = defaults

    def check_settings(self, ndim, sampler_kwargs, run_kwargs) -> None:
        """Refuse settings :func:`run` would refuse, before any stage runs."""
        check_settings(ndim, sampler_kwargs, run_kwargs)

    def run(self, loglike, prior_transform, ndim, **kwargs) -> Result:
        """One PolyChord run: :func:`run`."""
        return run(loglike, prior_transform, ndim, **kwargs)

    def mpi_comm(self):
        """The communicator PolyChord runs on, or None: :func:`mpi_comm`."""
        return mpi_comm()

    def mcmc(self, ndim, sampler_kwargs) -> bool:
        """True: PolyChord slice samples along directions from the live points' covariance."""
        return True

    def low_settings(self, ndim, nlive_low, settings: StageSettings) -> StageSettings:
        """Fewer slice repeats than PolyChord's default: the low stage needs live points, not decorrelated chains."""
        return _with_repeats(settings, self.defaults.low_repeats, ndim) or settings

    def multimodal_low(self, ndim, nlive_low, nlive, settings: StageSettings) -> tuple[int, StageSettings] | None:
        """More live points and longer slice chains for a low stage that clusters; None where the user set
        ``num_repeats``."""
        redo = _with_repeats(settings, self.defaults.long_repeats, ndim)
        if redo is None:
            return None
        return max(nlive_low, min(int(self.defaults.long_live * nlive_low), nlive // 2)), redo

    def high_settings(self, ndim, nlive, settings: StageSettings, high_sampler_kwargs,
                      start: HighStart) -> StageSettings:
        """Few slice repeats in the flow-whitened cube, many independent draws from the flow before
        compressing, and an earlier stop; the user's settings win."""
        high = dict(high_sampler_kwargs or {})
        sk = {**(settings.sampler_kwargs or {}), **high}
        user = settings.run_kwargs or {}
        if "num_repeats" not in high:
            sk["num_repeats"] = repeats(self._high_repeats(ndim, start), ndim)
        if "nprior" not in sk and "nprior" not in user:
            sk["nprior"] = int(self.defaults.high_prior * nlive)
        rk = {k: v for k, v in user.items() if k not in sk}
        if "precision_criterion" not in user and "precision_criterion" not in sk:
            rk["precision_criterion"] = self.defaults.high_precision
        return StageSettings(sk, rk if rk or settings.run_kwargs is not None else None)

    def _high_repeats(self, ndim: int, start: HighStart) -> float:
        """The high stage's ``num_repeats`` as a fraction of ``ndim``: more in many dimensions, behind pieces
        or behind a flow whose check found missing tails."""
        d = self.defaults
        wide = d.high_repeats_wide if ndim >= d.high_repeats_wide_from else d.high_repeats
        hard = start.pieces > 1 or (start.tail is not None and start.tail > d.long_tail)
        return max(wide, d.long_repeats) if hard else wide


ADAPTER = PolyChord()
