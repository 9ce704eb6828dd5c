"""Temporary files and folders beside an output (`.<name>.<random>.tmp`), each locked while
its process lives, so those a killed process left are told apart and removed
(`remove_dead_temporaries`).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from dive._io.locks import flock

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def temporary(target: Path, *, folder: bool = False) -> Iterator[Path]:
    """A new hidden temporary file (or `folder`) beside `target`, `.<name>.<random>.tmp`, mode
    0600 (0700), removed if the block raises. Its name is chosen before it is made, so an
    interruption (Ctrl-C, SIGTERM) that lands while it is being made cannot leave it behind,
    as one between `tempfile.mkstemp` making a file and returning its name could."""
    target = named(target)
    tmp = target.parent / f"{temporary_prefix(target)}{secrets.token_hex(8)}.tmp"
    try:
        held = _make_temporary(tmp, folder=folder)
        try:
            # its lock, which the kernel lets go however the process ends: a temporary no
            # process holds is one a killed process left (`remove_dead_temporaries`)
            flock(held, fcntl.LOCK_EX, target)
            yield tmp
        finally:
            os.close(held)
    except BaseException:
        remove(tmp)
        raise


def remove(tmp: Path) -> None:
    """Remove the temporary file or folder `tmp`, if it is still there (a link: the link)."""
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def named(target: Path) -> Path:
    """`target` as an absolute path without "." or "..", where the file system puts it: its
    parent's real place (`link/../out` is `out` beside the folder the link leads to, as every
    check of `target` reads it, not `./out`), its last part as given (a link there is replaced,
    not followed). Its temporaries are named after that last part, and `.` or `models/..` has
    none that can be renamed (`--output .`): such a path is the folder it names."""
    path = Path(target)
    if path.name in ("", ".."):
        return Path(os.path.realpath(path))
    return Path(os.path.realpath(path.parent)) / path.name


def _make_temporary(tmp: Path, *, folder: bool) -> int:
    """Make the file or folder `temporary` named (never one already there); return a
    descriptor of it, for the caller to lock."""
    if folder:
        os.mkdir(tmp, 0o700)
        return os.open(tmp, os.O_RDONLY | os.O_DIRECTORY)
    return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


_TEMPORARY_TAIL = re.compile(r"[0-9a-f]{16}\.tmp")  # what `temporary` adds to ".<name>."


DEAD_AFTER = 60.0  # seconds: a temporary is locked from the moment it is made, give or take


def temporary_prefix(target: Path) -> str:
    """`.<name>.`, what `temporary` names a temporary of `target` with before its random tail;
    a name too long to take the 22 bytes it adds (a file system's limit is 255 bytes) is cut
    short in it, where a 240-byte output was refused as "file name too long"."""
    room = 255 - len(".") - len(".") - len(secrets.token_hex(8) + ".tmp")
    name = os.fsencode(target.name)
    return f".{os.fsdecode(name[:room])}."


def is_temporary_name(name: str) -> bool:
    """Whether `name` is one `temporary` gives (`.<name>.<16 hex>.tmp`)."""
    return name.startswith(".") and _TEMPORARY_TAIL.fullmatch(name[-20:]) is not None


def remove_dead_temporaries(target: Path) -> list[Path]:
    """Remove the temporary files and folders (`temporary`) of writes to `target` that a
    process killed outright (SIGKILL, the OOM killer) left beside it, hidden and often as large
    as the output; return them. One is dead when no process holds its lock and it has not
    changed for `DEAD_AFTER` seconds. A live write's, another run's, is never touched."""
    target = named(target)
    prefix = temporary_prefix(target)
    try:
        found = [p for p in target.parent.iterdir()
                 if p.name.startswith(prefix) and _TEMPORARY_TAIL.fullmatch(p.name[len(prefix):])]
    except OSError:
        return []
    removed = []
    for path in found:
        try:
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode) or time.time() - info.st_mtime < DEAD_AFTER:
                continue
            is_folder = stat.S_ISDIR(info.st_mode)
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | (os.O_DIRECTORY if is_folder else 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if is_folder:
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
        except OSError:  # held by a live write (BlockingIOError), or gone meanwhile
            continue
        finally:
            os.close(fd)
    for path in removed:
        logger.info("%s: removed, left by a write that was killed", path)
    return removed


@contextlib.contextmanager
def staging(target: Path) -> Iterator[Path]:
    """A temporary folder beside `target` (`temporary`) for files the block puts in place
    one by one; removed with whatever is left in it when the block ends, however it ends."""
    with temporary(target, folder=True) as stage:
        try:
            yield stage
        finally:
            shutil.rmtree(stage, ignore_errors=True)
