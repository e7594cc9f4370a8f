"""An exclusive lock on a run's ``outdir``, so that two processes never write one set of stage files.

The lock is an advisory ``flock`` on ``outdir/.lock``, which holds the
owner's process id and host for the error message.  The operating system
drops it when its process ends, however it ends (a killed run leaves no
stale lock behind).  On a file system without locks (some NFS and Lustre
mounts) the run goes on with a warning.

Example
-------
>>> with OutdirLock("runs/a"):
...     pass  # only this process reads or writes runs/a's stage files here
"""

from __future__ import annotations

import fcntl
import os
import socket
import warnings
from pathlib import Path

LOCK = ".lock"


class OutdirInUse(RuntimeError):
    """Another process holds the lock on the ``outdir``."""


class OutdirLock:
    """Hold ``outdir/.lock`` exclusively while in use (a context manager).

    Parameters
    ----------
    outdir : str or Path
        Created if missing.

    Raises
    ------
    OutdirInUse
        On entry, if another process (or another lock in this one) holds it,
        naming that process.
    """

    def __init__(self, outdir):
        self.outdir = outdir
        self._fd: int | None = None

    def acquire(self) -> "OutdirLock":
        """Take the lock without waiting; see the class for what it raises."""
        outdir = Path(self.outdir)
        outdir.mkdir(parents=True, exist_ok=True)
        path = outdir / LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise OutdirInUse(f"outdir {outdir}: in use by {owner} (lock {path}); wait for that run to end, "
                              "or use another outdir") from None
        except OSError as err:  # a file system without locks (some NFS and Lustre mounts)
            os.close(fd)
            warnings.warn(f"outdir {outdir}: cannot be locked on this file system ({err}); make sure no other "
                          "process uses it at the same time", stacklevel=3)
            return self
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (the file stays; its content is only for messages)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "OutdirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
