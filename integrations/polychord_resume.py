"""PolyChord's resume files: read through before PolyChord reads them, and the user's calls counted beside them.

PolyChord stops the whole process (Fortran "End of file", exit 2, nothing
to catch) on a resume file that is cut short or made for another problem:
:func:`check_resume` reads it through first, as PolyChord would, and raises
a ``ValueError`` that names it.  PolyChord's own call count skips points at
or below ``logzero`` and restarts with each process: :class:`CallLog` keeps
the user's calls for a checkpoint, tied to the resume file they led to.

Reference: PolyChordLite, ``src/polychord/read_write.F90``
(``write_resume_file`` / ``read_resume_file``).
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct

from flowprior.flows.files import atomic_write, file_digest


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
    recorded by :meth:`flowprior.integrations.polychord._Likelihood.dump`.
    """

    TAG = b"flowprior-ncall1"
    SIZE = len(TAG) + 8 + 32

    def __init__(self, path: str, resume_file: str, carried: int, digest: bytes | None):
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
        self.lines = text.split("\n")
        if self.lines[-1] == "":
            self.lines.pop()  # after the last newline
        self.pos = 0

    def _next(self, what: str) -> str:
        if self.pos >= len(self.lines):
            raise ResumeFileError(f"it ends at line {self.pos + 1}, before {what}")
        self.pos += 1
        return self.lines[self.pos - 1]

    def header(self, what: str) -> None:
        if not self._next(what).startswith(("===", "---")):
            raise ResumeFileError(f"line {self.pos} should be the header of {what}")

    def _fields(self, n: int, width: int, parse, what: str) -> list:
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
        (value,) = self.ints(1, what)
        if value < 0:
            raise ResumeFileError(f"line {self.pos} ({what}) is negative: {value}")
        return value

    def counts(self, n: int, what: str) -> list[int]:
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
    parameters, the birth contour and the log-likelihood.
    """
    import numpy as np

    live = np.asarray(header["live"], dtype=float).reshape(-1, 2 * ndim + nderived + 2)
    return {"u": live[:, :ndim], "theta": live[:, 2 * ndim:2 * ndim + nderived], "logl": live[:, -1].tolist()}


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
