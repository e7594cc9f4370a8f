"""PolyChord's resume files: read through before PolyChord reads them, and the user's calls counted beside them.

PolyChord stops the whole process (Fortran "End of file", exit 2, nothing
to catch) on a resume file that is cut short or made for another problem:
:func:`check_resume` reads it through first, as PolyChord would, and raises
a ``ValueError`` that names it.  PolyChord's own call count skips points at
or below ``logzero`` and restarts with each process: :class:`CallLog` keeps
the user's calls for a checkpoint, tied to the resume file they led to.

Reference: PolyChordLite, ``src/polychord/read_write.F90``
(``write_resume_file`` / ``read_resume_file``).

:func:`output_root` chooses where a run writes and whether it resumes.  A run
resumed from a ``checkpoint`` continues from PolyChord's last resume file,
which PolyChord writes after the initial live points, each time the live
points' volume shrinks by ``compression_factor`` (``e**-1`` by default) and
at the end.  What it reproduces:

- the same checkpoint, seed and settings give the same run, point for point
  (PolyChord is deterministic given its seed);
- a finished checkpoint gives back the finished run's result, with no new
  calls;
- ``ncall`` is every call of the user's function made for the stage since it
  started afresh, in every process: those before the resume file, those made
  after it by a process that was then stopped or killed (kept in
  ``stage.ncall`` at each call), and the resumed run's.  If ``stage.ncall``
  is missing or has recorded no resume file yet (and always under MPI, where
  each rank counts its own calls), it is PolyChord's own count up to the
  resume file instead, with a warning outside MPI; ``raw.resumed`` says
  which.  A resume file other than the one ``stage.ncall`` recorded is
  refused (it changed after PolyChord wrote it).

What it does not: the result of the uninterrupted run.  PolyChord's resume
file holds no random state, and PolyChord seeds its generator from ``seed``
at every start, so the continuation draws other random numbers than the
uninterrupted run would have, and redoes the work done after the resume file
was written.  Its ``logZ`` and samples are a valid nested sampling run from
the same point, statistically equivalent, not equal.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
import tempfile
import uuid

import numpy as np

from flowprior.flows.files import atomic_write, file_digest
from flowprior.workflows import fingerprint
from flowprior.workflows.checked import CheckedLikelihood, CheckedPrior

#: PolyChord's file_root inside a ``checkpoint`` directory.
CHECKPOINT_ROOT = "stage"
#: Suffix of the file beside a checkpoint's resume file that counts the user's calls (see ``CallLog``).
NCALL_SUFFIX = ".ncall"


class CallLog:
    """The user's calls made for one checkpoint, kept in ``<checkpoint>/stage.ncall``.

    The file holds a tag, the count, and the SHA-256 of the last resume file
    PolyChord wrote (or read) in the runs that made those calls; zeros before
    the first.  A later run resumes with that count only if the resume file
    it reads has that digest: a count never goes with another run's file.

    The count is updated at every call through a shared memory map of the
    file, which costs one memory write and survives the process being
    killed (the kernel keeps the page and writes it back).  A run that
    starts afresh watches for PolyChord's first resume file (written after
    the initial live points, with no ``dumper`` call); later ones are
    recorded by :meth:`flowprior.integrations.polychord_likelihood.Likelihood.dump`.
    """

    TAG = b"flowprior-ncall1"
    SIZE = len(TAG) + 8 + 32

    def __init__(self, path: str, resume_file: str, carried: int, digest: bytes | None):
        """Write a fresh log of ``carried`` calls tied to ``digest`` at ``path``, and map it."""
        self.path, self.resume_file, self.carried = path, resume_file, int(carried)
        self.waiting = digest is None
        record = self.TAG + struct.pack("<q", self.carried) + (digest or bytes(32))
        atomic_write(path, lambda tmp: tmp.write_bytes(record))
        with open(path, "r+b") as f:
            self.map = mmap.mmap(f.fileno(), self.SIZE)

    @classmethod
    def read(cls, path: str) -> tuple[int, bytes] | None:
        """``(count, digest)`` from a call log file; None if there is none or it is not one."""
        try:
            with open(path, "rb") as f:
                record = f.read(cls.SIZE + 1)
        except OSError:
            return None
        if len(record) != cls.SIZE or not record.startswith(cls.TAG):
            return None
        (count,) = struct.unpack_from("<q", record, len(cls.TAG))
        return (count, record[-32:]) if count >= 0 else None

    def store(self, ncall: int) -> None:
        """Record ``ncall`` calls of this run on top of the carried ones (one memory write)."""
        struct.pack_into("<q", self.map, len(self.TAG), self.carried + ncall)

    def watch(self) -> None:
        """Until the first resume file of a fresh run is recorded, look for it."""
        if self.waiting and os.path.exists(self.resume_file):
            self.mark()

    def mark(self) -> None:
        """Record the resume file PolyChord has just written."""
        try:
            digest = file_digest(self.resume_file)
        except OSError:
            return  # the log keeps the previous file's digest: a resume from this file is refused, naming it
        self.map[-32:] = digest
        self.waiting = False

    def close(self) -> None:
        """Release the memory map; the file keeps the last count."""
        self.map.close()


class ResumeFileError(ValueError):
    """What is wrong with a resume file, before the file is named."""


class ResumeReader:
    """Reads a PolyChord resume file record by record, as PolyChord's ``read_resume_file`` does.

    PolyChordLite's ``src/polychord/read_write.F90``: each item is a header
    line (``=== ... ===`` or, before each cluster's block, ``---...``) and
    then, if it has any values, lines of fixed-width fields: ``I12``
    integers, or ``E24.15E3`` reals, one line per vector.  A line PolyChord
    would read past the end of, or a field it could not read, is an error
    here: PolyChord stops the whole process on either.
    """

    def __init__(self, text: str):
        """Split a resume file's ``text`` into lines, to read from the first."""
        self.lines = text.split("\n")
        if self.lines[-1] == "":
            self.lines.pop()  # after the last newline
        self.pos = 0

    def _next(self, what: str) -> str:
        """The next line; an error naming ``what`` was expected if the file has ended."""
        if self.pos >= len(self.lines):
            raise ResumeFileError(f"it ends at line {self.pos + 1}, before {what}")
        self.pos += 1
        return self.lines[self.pos - 1]

    def header(self, what: str) -> None:
        """Read the header line of ``what``."""
        if not self._next(what).startswith(("===", "---")):
            raise ResumeFileError(f"line {self.pos} should be the header of {what}")

    def _fields(self, n: int, width: int, parse, what: str) -> list:
        """``n`` fixed-width fields of the next line, each read with ``parse``, as Fortran reads them."""
        line = self._next(what)
        if len(line) < n * width:
            raise ResumeFileError(f"line {self.pos} ({what}) is cut short: {len(line)} characters of {n * width}")
        try:
            return [parse(line[i:i + width]) for i in range(0, n * width, width)]
        except ValueError:
            raise ResumeFileError(f"line {self.pos} ({what}) has a field that is not a number") from None

    def ints(self, n: int, what: str) -> list[int]:
        """A header and ``n`` integers on one line (none if ``n`` is 0)."""
        self.header(what)
        return self._fields(n, 12, int, what) if n > 0 else []

    def count(self, what: str) -> int:
        """A header and one count, which must not be negative."""
        (value,) = self.ints(1, what)
        if value < 0:
            raise ResumeFileError(f"line {self.pos} ({what}) is negative: {value}")
        return value

    def counts(self, n: int, what: str) -> list[int]:
        """A header and ``n`` counts on one line, none of them negative."""
        values = self.ints(n, what)
        if any(v < 0 for v in values):
            raise ResumeFileError(f"line {self.pos} ({what}) has a negative count")
        return values

    def reals(self, n: int, what: str) -> None:
        """A header and ``n`` reals on one line (none if ``n`` is 0)."""
        self.header(what)
        if n > 0:
            self._fields(n, 24, float, what)

    def rows(self, width: int, n: int, what: str) -> None:
        """A header and ``n`` lines of ``width`` reals."""
        self.header(what)
        for _ in range(n):
            self._fields(width, 24, float, what)

    def blocks(self, width: int, ns: list[int], what: str) -> list[list[float]]:
        """A header, then per cluster a ``---`` line and ``ns[i]`` lines of ``width`` reals; the lines' values."""
        self.header(what)
        rows = []
        for n in ns:
            self.header(what)
            for _ in range(n):
                rows.append(self._fields(width, 24, float, what))
        return rows


def read_resume(text: str, ndim: int, nderived: int, grade_dims: list[int]) -> dict:
    """Read a resume file's text through, as PolyChord would; ``ndead`` and ``nlike`` (all grades).

    Raises ``ResumeFileError`` where PolyChord would stop the process.
    """
    r = ResumeReader(text)
    for what, expected in (("nDims", ndim), ("nDerived", nderived)):
        found = r.count(what)
        if found != expected:
            raise ResumeFileError(f"it is a resume file for {what} {found}, not {expected}")
    ndead, ncluster, ncluster_dead, nposterior_global, nequals_global = (
        r.count(what) for what in ("ndead", "ncluster", "ncluster_dead", "nposterior_global", "nequals_global"))
    if r.count("the number of grades") != len(grade_dims) or r.ints(len(grade_dims), "grades") != list(grade_dims):
        raise ResumeFileError(f"its grades differ from this run's grade_dims {list(grade_dims)}")
    r.ints(len(grade_dims), "num_repeats")
    nlike = r.ints(len(grade_dims), "nlike")
    nlive, nphantom, nposterior, nequals = (r.counts(ncluster, what)
                                            for what in ("nlive", "nphantom", "nposterior", "nequals"))
    r.ints(ncluster, "the minimum positions")
    nposterior_dead, nequals_dead = (r.counts(ncluster_dead, what) for what in ("nposterior_dead", "nequals_dead"))
    for what in ("logZ", "logZ2", "thin_posterior"):
        r.reals(1, what)
    for what in ("logLp", "logXp"):
        r.reals(ncluster, what)
    r.reals(1, "logX_last_update")
    for what in ("logZXp", "logZp", "logZp2", "logZpXp"):
        r.reals(ncluster, what)
    r.rows(ncluster, ncluster, "logXpXq")
    r.reals(ncluster, "maxlogweight")
    for what in ("logZp_dead", "logZp2_dead", "maxlogweight_dead"):
        r.reals(ncluster_dead, what)
    for what in ("covmat", "cholesky"):
        r.blocks(ndim, [ndim] * ncluster, what)
    ntotal, nposterior_cols, nequals_cols = 2 * ndim + nderived + 2, ndim + nderived + 4, ndim + nderived + 2
    live = r.blocks(ntotal, nlive, "the live points")
    r.rows(ntotal, ndead, "the dead points")
    r.reals(ndead, "the dead points' log-weights")
    r.blocks(ntotal, nphantom, "the phantom points")
    r.blocks(nposterior_cols, nposterior, "the posterior points")
    r.blocks(nposterior_cols, nposterior_dead, "the dead clusters' posterior points")
    r.rows(nposterior_cols, nposterior_global, "the global posterior points")
    r.blocks(nequals_cols, nequals, "the equally weighted points")
    r.blocks(nequals_cols, nequals_dead, "the dead clusters' equally weighted points")
    r.rows(nequals_cols, nequals_global, "the global equally weighted points")
    return {"ndead": ndead, "nlike": sum(nlike), "live": live}


def live_points(header: dict, ndim: int, nderived: int) -> dict:
    """A resume file's live points as :func:`flowprior.workflows.fingerprint.verify` takes them.

    Each row holds, in PolyChordLite's order (``settings.f90``), the
    hypercube point, the physical point (``ndim`` each), the derived
    parameters, the birth contour and the log-likelihood.  The adapter's
    first ``ndim`` derived parameters are the user's physical parameters
    (PolyChord's own physical point is the cube point: identity prior);
    the user's derived parameters follow.
    """
    live = np.asarray(header["live"], dtype=float).reshape(-1, 2 * ndim + nderived + 2)
    return {"u": live[:, :ndim], "theta": live[:, 2 * ndim:3 * ndim], "logl": live[:, -1].tolist()}


def check_resume(path: str, ndim: int, nderived: int, grade_dims: list[int]) -> tuple[dict, bytes]:
    """Check the resume file at ``path`` before PolyChord reads it; its header counts and SHA-256.

    Raises
    ------
    ValueError
        Naming the file, what is wrong and what to delete, where PolyChord
        would stop the whole process ("End of file", or a mismatch).
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        header = read_resume(data.decode("ascii"), ndim, nderived, grade_dims)
    except (ResumeFileError, UnicodeDecodeError) as err:
        why = "it is not text" if isinstance(err, UnicodeDecodeError) else str(err)
        folder = os.path.dirname(path) or "."
        raise ValueError(f"{path}: PolyChord cannot resume from this file ({why}); it is cut short, damaged or "
                         f"from another problem: delete it (or the whole directory {folder}) to restart "
                         "this stage from the beginning") from None
    return header, hashlib.sha256(data).digest()


def output_root(settings, kwargs: dict, checkpoint, own_dir: bool, ndim: int, serial: bool, extra: int = 0) -> tuple:
    """``(base_dir, file_root, start)`` of a run, on rank 0; ``start`` from :func:`resume_state`.

    A ``checkpoint`` directory resumes whenever it holds a resume file; a
    caller's own ``base_dir``/``file_root`` only with ``read_resume``.
    ``extra`` is the number of the user's derived parameters.
    """
    if checkpoint is not None:
        os.makedirs(checkpoint, exist_ok=True)
        base_dir, file_root = str(checkpoint), CHECKPOINT_ROOT
        log_file = os.path.join(base_dir, file_root + NCALL_SUFFIX)
        start = resume_state(os.path.join(base_dir, file_root + ".resume"), log_file, ndim, settings.grade_dims,
                             extra)
        if not serial and os.path.exists(log_file):
            os.remove(log_file)  # not kept under MPI (see the module's notes), so never left stale
        return base_dir, file_root, start
    base_dir = tempfile.mkdtemp(prefix="flowprior-polychord-") if own_dir else settings.base_dir
    file_root = settings.file_root if "file_root" in kwargs else "flowprior_" + uuid.uuid4().hex[:12]
    resume_file = os.path.join(base_dir, file_root + ".resume")
    start = resume_state(resume_file if settings.read_resume else None, None, ndim, settings.grade_dims, extra)
    return base_dir, file_root, start


def resume_state(resume_file: str | None, log_file: str | None, ndim: int, grade_dims, extra: int = 0) -> dict:
    """Whether a run resumes, and the user's calls it carries over.

    ``resume``: a resume file exists (it is checked: :func:`check_resume`).
    ``ncall``: calls before this run, from the call log ``log_file`` when it
    goes with that resume file (``counted_by`` "flowprior"), else PolyChord's
    own count in the resume file ("polychord").  ``digest``: the resume
    file's SHA-256.
    """
    if resume_file is None or not os.path.exists(resume_file):
        return {"resume": False, "ncall": 0, "counted_by": None, "digest": None}
    header, digest = check_resume(resume_file, ndim, ndim + extra, [int(d) for d in grade_dims])
    live = live_points(header, ndim, ndim + extra)
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


def verify_live(start: dict, loglike, prior_transform, ndim: int, resume_file: str) -> int:
    """Check the functions given now against a resume file's best live points; return the calls made.

    A resume file is trusted only for the problem that wrote it: the functions
    must reproduce its best live points, else the run would continue another
    problem's.
    """
    live = start["live"]
    rows = fingerprint.best_rows(np.asarray(live["logl"]))
    stored = {"u": live["u"][rows], "theta": live["theta"][rows], "logl": [live["logl"][i] for i in rows]}
    return fingerprint.verify(stored, CheckedLikelihood(loglike), CheckedPrior(prior_transform, ndim),
                              f"checkpoint {resume_file}")
