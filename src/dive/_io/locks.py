"""Locks across processes: `locked` serialises read-modify-write cycles (a results file's
appends); such a cycle writes where it read: a symbolic link is followed (`resolve_link`), so
the file it leads to gets the records and the link stays.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from dive.errors import DiveError

logger = logging.getLogger(__name__)


# Errors of flock() meaning "no file locks here" (Lustre mounted noflock, some FUSE and NFS
# set-ups).
_NO_LOCKS = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP}


def flock(fd: int, operation: int, path: str | os.PathLike[str]) -> None:
    """`fcntl.flock`; a file system without locks is one line naming `path` (it was the bare
    "No locks available", naming nothing)."""
    try:
        fcntl.flock(fd, operation)
    except OSError as exc:
        if exc.errno not in _NO_LOCKS:
            raise
        raise DiveError(f"{path}: this file system refuses file locks (flock), which keep two "
                        "runs from writing the same output at once; write to another file "
                        "system (a local disk)") from None


def resolve_link(path: str | os.PathLike[str]) -> Path:
    """The file a symbolic link at `path` leads to (through every link); else `path` as given.

    For a file read, changed and written back (a results file): the rewrite must land where
    the read came from, and a run given the real path must share the lock. A broken link
    (nothing to read) is returned as it is, so it is replaced like any other file.
    """
    target = Path(path)
    if not target.is_symlink():
        return target
    try:
        return target.resolve(strict=True)
    except (OSError, RuntimeError):  # broken, or a loop of links
        return target


@contextlib.contextmanager
def locked(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock for `path` across processes (blocking until it is free).

    The lock is taken on the folder holding `path` (flock on the directory), not on `path`
    itself, which atomic writes replace, and not on a sidecar file, which would be left behind.
    A link at `path` is followed (`resolve_link`): the lock is the real file's, whichever name
    a run was given.
    """
    folder = resolve_link(path).parent
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        _lock(fd, path)
        yield
    finally:
        os.close(fd)  # closing releases the lock


LOCK_QUIET_SECONDS = 1.0  # a wait for the lock this long is said, not only waited


def _lock(fd: int, path: str | os.PathLike[str]) -> None:
    """flock `fd` exclusively; past `LOCK_QUIET_SECONDS` of waiting, say why nothing happens
    (another process's appends take milliseconds: a long wait is worth a line)."""
    deadline = time.monotonic() + LOCK_QUIET_SECONDS
    while True:
        try:
            flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, path)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                break
            time.sleep(0.02)
    logger.warning("%s: waiting for another process writing there", path)
    flock(fd, fcntl.LOCK_EX, path)
