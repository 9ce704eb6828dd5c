"""Atomic writes: write to a temporary name beside the target, then rename.

A crash or interruption leaves either the old file or the new one, never half of either.
A new file gets the mode the umask says (as `open` would give it); a replaced file keeps its
mode, and so does a folder (`folder_mode`). `replace_path` does the final rename for folders
too (which rename() cannot replace; one atomic swap where Linux has it); `publish` does it
without ever replacing anything unless told to overwrite, so a concurrent run's output that
appeared meanwhile is kept.
`locked` serialises read-modify-write cycles across processes (a results file's appends);
such a cycle writes where it read: a symbolic link is followed (`resolve_link`), so the file
it leads to gets the records and the link stays. Every other writer replaces the name it was
given, a link included (the file it led to is kept as it was), and a new file is made as
before. `held` keeps a second run off a resumable run's work folder; `made_folder` takes back
an output folder a failed writer made; `uninterrupted` holds Ctrl-C (and SIGTERM, SIGHUP)
while a writer puts several files in place, so they all land before it does.
`check_output` is the one rule of every writer that may replace an earlier output (and
finds a folder it cannot write in before the work, `check_writable`); a folder
`publish` puts in place lists its files (`MANIFEST`), so that rule can refuse to replace one
that holds files added since.
`describe_os_error` turns a file-system error (disk full, permission denied, a file where a
folder should be) into one line naming the path the user gave, not a temporary name.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from dive.errors import DataError, DiveError, kind_of

T = TypeVar("T")

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "w", *, overwrite: bool = True,
    output: bool = False,
) -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on clean exit fsync it and `publish` it at `path`.

    `overwrite=False`: a file that appeared at `path` meanwhile is kept (`DiveError`).
    `output`: the file is the verb's output (`publish`).
    """
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, expected a file path", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    with temporary(target) as tmp:
        encoding = None if "b" in mode else "utf-8"
        with naming_os_errors(target), open(tmp, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        publish(tmp, target, overwrite=overwrite, output=output)


@contextlib.contextmanager
def temporary(target: Path, *, folder: bool = False) -> Iterator[Path]:
    """A new hidden temporary file (or `folder`) beside `target`, `.<name>.<random>.tmp`, mode
    0600 (0700), removed if the block raises. Its name is chosen before it is made, so an
    interruption (Ctrl-C, SIGTERM) that lands while it is being made cannot leave it behind,
    as one between `tempfile.mkstemp` making a file and returning its name could."""
    target = named(target)
    tmp = target.parent / f"{_temporary_prefix(target)}{secrets.token_hex(8)}.tmp"
    try:
        held = _make_temporary(tmp, folder=folder)
        try:
            # its lock, which the kernel lets go however the process ends: a temporary no
            # process holds is one a killed process left (`remove_dead_temporaries`)
            _flock(held, fcntl.LOCK_EX, target)
            yield tmp
        finally:
            os.close(held)
    except BaseException:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise


def read_one_save(folder: Path, read: Callable[[], T], attempts: int = 10) -> T:
    """`read()` (of files in `folder`), again while `folder` was swapped during it: a save
    with overwrite swaps whole folders (`replace_path`), so files read one by one meanwhile
    could pair one save's file with the next one's. What it returns was read from one save
    (a file of the old one removed under the read is read again, from the new one). The
    folder read is held open meanwhile, so its inode number cannot pass to a newer save's."""
    for attempt in range(1, attempts + 1):
        try:
            held = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return read()  # no folder there: `read` says so, as it would have
        try:
            before = os.fstat(held)
            try:
                value = read()
            except (OSError, DataError):
                if attempt == attempts or _same(folder, before):
                    raise
                continue
            if attempt == attempts or _same(folder, before):
                return value
        finally:
            os.close(held)
    raise AssertionError("unreachable")


def _same(path: Path, held: os.stat_result) -> bool:
    """Whether the folder at `path` is still the one `held` describes."""
    try:
        now = os.stat(path)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)


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


# Errors of flock() meaning "no file locks here" (Lustre mounted noflock, some FUSE and NFS
# set-ups).
_NO_LOCKS = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP}


def _flock(fd: int, operation: int, path: str | os.PathLike[str]) -> None:
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


_TEMPORARY_TAIL = re.compile(r"[0-9a-f]{16}\.tmp")  # what `temporary` adds to ".<name>."
DEAD_AFTER = 60.0  # seconds: a temporary is locked from the moment it is made, give or take


def _temporary_prefix(target: Path) -> str:
    """`.<name>.`, what `temporary` names a temporary of `target` with before its random tail;
    a name too long to take the 22 bytes it adds (a file system's limit is 255 bytes) is cut
    short in it, where a 240-byte output was refused as "file name too long"."""
    room = 255 - len(".") - len(".") - len(secrets.token_hex(8) + ".tmp")
    name = os.fsencode(target.name)
    return f".{os.fsdecode(name[:room])}."


def work_folder(target: Path, kind: str = "partial") -> Path:
    """`.<name>.<kind>` beside `target`: where a resumable verb keeps its finished chunks. A
    name too long to take the bytes this adds (a file system's limit is 255) is cut, with a
    digest of the whole name, so two long names sharing their start share no work folder (a
    250-byte output was refused as "file name too long")."""
    name, tail = os.fsencode(target.name), f".{kind}"
    if len(name) + 1 + len(tail) <= 255:
        return target.parent / f".{target.name}{tail}"
    digest = hashlib.sha256(name).hexdigest()[:16]
    room = 255 - 1 - len(tail) - 1 - len(digest)
    return target.parent / f".{os.fsdecode(name[:room])}-{digest}{tail}"


def is_temporary_name(name: str) -> bool:
    """Whether `name` is one `temporary` gives (`.<name>.<16 hex>.tmp`)."""
    return name.startswith(".") and _TEMPORARY_TAIL.fullmatch(name[-20:]) is not None


def clear_work_folder(folder: Path, ours: Callable[[str], bool]) -> None:
    """Empty `folder`, a hidden work folder this run holds (`held`), keeping the folder itself
    and so the lock on it; only when `ours` knows the name of every entry as one a run of dive
    writes there (temporaries always are). A folder of that name holding anything else was not
    left by dive: emptying it deleted a user's files (an input given there); `DiveError`."""
    entries = list(folder.iterdir())
    foreign = sorted(e.name for e in entries if not (ours(e.name) or is_temporary_name(e.name)))
    if foreign:
        raise DiveError(f"{folder}: holds {foreign[0]!r}, which no run of dive leaves there; "
                        "it is the work folder of this output, so move it (or what it holds) "
                        "away")
    for child in entries:
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def remove_dead_temporaries(target: Path) -> list[Path]:
    """Remove the temporary files and folders (`temporary`) of writes to `target` that a
    process killed outright (SIGKILL, the OOM killer) left beside it, hidden and often as large
    as the output; return them. One is dead when no process holds its lock and it has not
    changed for `DEAD_AFTER` seconds. A live write's, another run's, is never touched."""
    target = named(target)
    prefix = _temporary_prefix(target)
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


@contextlib.contextmanager
def made_folder(path: Path) -> Iterator[Path]:
    """`path` made a folder, with its missing parents, for the block; if the block fails or is
    interrupted, the folders made here are removed again while empty (never one that another
    run has put something in), so a failed writer leaves no empty output folder behind."""
    missing = []
    for folder in (path, *path.parents):  # deepest first
        if folder.exists() or folder.is_symlink():
            break
        missing.append(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        yield path
    except BaseException:
        for folder in missing:
            try:
                folder.rmdir()
            except FileNotFoundError:
                continue  # interrupted before it was made
            except OSError:
                break  # not empty: kept, and the folders holding it
        raise


HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP until the block ends, then raise the first one held
    to the handler that was there: a block of renames (milliseconds) ends whole, and the
    interruption lands after it. Python runs signal handlers in the main thread only, so
    elsewhere this holds nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    # not a handler installed from C (an embedding host's): getsignal says None, which cannot
    # be put back, so the restore raised TypeError and left every signal held for good
    previous = {sig: signal.signal(sig, lambda signum, _frame: held.append(signum))
                for sig in HELD_SIGNALS if signal.getsignal(sig) is not None}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if held:
            signal.raise_signal(held[0])


WRITTEN_BEFORE = "dive_written_before"  # set on an interruption that landed after the output


@contextlib.contextmanager
def publishing() -> Iterator[None]:
    """A block that puts an output in place (renames) or tidies up once it is (a work
    folder), `uninterrupted`: a Ctrl-C during it lands after it, marked as such
    (`written_before`), so the command line says the output was written, not that nothing
    was (or that a rerun resumes, where the rerun finds the output in place). A block that
    failed leaves its interruption unmarked."""
    done = False
    try:
        with uninterrupted():
            yield
            done = True
    except KeyboardInterrupt as exc:
        if done:
            mark_written_before(exc)
        raise


def mark_written_before(exc: BaseException) -> None:
    setattr(exc, WRITTEN_BEFORE, True)


def written_before(exc: BaseException) -> bool:
    """Whether the interruption `exc` landed once the output was in place (`publishing`)."""
    return bool(getattr(exc, WRITTEN_BEFORE, False))


NOTHING_FINISHED = "dive_nothing_finished"  # set on an interruption before a resumable
# verb's first chunk was saved


@contextlib.contextmanager
def nothing_finished_unless(finished: Callable[[], bool]) -> Iterator[None]:
    """A resumable verb's work, whose interruption is marked `nothing_finished` when
    `finished()` says no chunk of it was saved."""
    try:
        yield
    except KeyboardInterrupt as exc:
        if not finished() and not written_before(exc):  # its work folder went once published
            setattr(exc, NOTHING_FINISHED, True)
        raise


def nothing_finished(exc: BaseException) -> bool:
    """Whether the interruption `exc` landed before a resumable verb (embed, compress) had
    saved any chunk: a rerun starts over, not after its last finished chunk."""
    return bool(getattr(exc, NOTHING_FINISHED, False))


@contextlib.contextmanager
def naming_os_errors(path: str | os.PathLike[str], work: Path | None = None) -> Iterator[None]:
    """Give an `OSError` that names no file (a failed write: disk full...) the name `path`;
    one without an errno too (numpy's short write: "537600 requested and 76768 written"); and
    one naming a file in the work folder `work`, when given (a LanceDB table's staged parts)."""
    try:
        yield
    except OSError as exc:
        inside = (work is not None and exc.filename is not None
                  and Path(os.fsdecode(exc.filename)).is_relative_to(work))
        if exc.filename is not None and not inside:
            raise
        if exc.errno is None:
            raise OSError(None, f"written in part only ({exc}): is the disk full, or a file-size "
                          "limit (ulimit -f) reached?",
                          os.fspath(path)) from exc
        raise type(exc)(exc.errno, exc.strerror, os.fspath(path)) from exc


def _mode_for(target: Path) -> int:
    """The existing file's permission bits, else those `open` would give a new file."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return new_file_mode()


def new_file_mode() -> int:
    """The permission bits `open` gives a new file under the process's umask."""
    return 0o666 & ~_umask()


def folder_mode(target: Path) -> int:
    """The existing folder's permission bits, else those `mkdir` would give a new folder.

    For a folder built under a `temporary` name (always 0700) before it is renamed to `target`.
    """
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return 0o777 & ~_umask()


def _umask() -> int:
    # Read, not set-and-restore: os.umask() changes it for every thread in between.
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
            _flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, path)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                break
            time.sleep(0.02)
    logger.warning("%s: waiting for another process writing there", path)
    _flock(fd, fcntl.LOCK_EX, path)


@contextlib.contextmanager
def held(folder: str | os.PathLike[str], output: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the work folder `folder` (created if needed) of `output` while this run uses it: a
    second run given the same output fails at once, naming it, instead of clearing or mixing
    the first one's work.

    An flock on the folder, so the lock ends with the process, even killed; the holder must
    clear the folder's contents rather than replace the folder, which would drop the lock.
    """
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            _flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, output)
        except BlockingIOError:
            raise DiveError(f"{output}: another run is writing this output now; wait for it to "
                            "finish or choose another output") from None
        yield
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, overwrite: bool = True) -> None:
    """Replace `path` with `text` atomically (`overwrite=False`: only if nothing is there)."""
    with atomic_open(path, "w", overwrite=overwrite) as handle:
        handle.write(text)


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes, *, overwrite: bool = True, output: bool = False
) -> None:
    """Replace `path` with `data` atomically (`overwrite=False`: only if nothing is there;
    `output`: see `publish`)."""
    with atomic_open(path, "wb", overwrite=overwrite, output=output) as handle:
        handle.write(data)


def replace_path(src: Path, dst: Path) -> None:
    """Move `src` to `dst`, replacing a file or folder there; the old one goes last.

    Where the system can swap two names in one step (Linux `renameat2` with RENAME_EXCHANGE),
    readers of `dst` see the old one or the new one, never neither, and two runs replacing
    `dst` at once each swap whole folders; elsewhere the old one is renamed aside first.
    """
    if not dst.exists() and not dst.is_symlink():
        os.replace(src, dst)
        return
    if _exchange(src, dst):
        aside = src  # now the old one
    else:
        aside = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".old", dir=dst.parent))
        os.rmdir(aside)
        os.replace(dst, aside)
        try:
            os.replace(src, dst)
        except BaseException:
            with contextlib.suppress(OSError):
                os.replace(aside, dst)
            raise
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside, ignore_errors=True)
    else:
        aside.unlink()


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2  # <fcntl.h>, <linux/fs.h>


def _exchange(a: Path, b: Path) -> bool:
    """Swap the names `a` and `b` atomically; False where the system cannot (then nothing
    moved). Both must exist."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # not on this kernel or file system
    raise OSError(err, os.strerror(err), os.fspath(b))


# Errors of link() meaning "no hard links here" (some network and FUSE file systems: a FUSE
# file system without a link handler answers ENOSYS).
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS}


def publish(tmp: Path, target: Path, *, overwrite: bool, keep_tmp: bool = False,
            output: bool = False) -> None:
    """Move the finished temporary file or folder `tmp` (beside `target`) to `target`.

    `overwrite=True`: whatever is there is replaced (`os.replace`, `replace_path` for a
    folder). `overwrite=False`: nothing is ever replaced, even what appeared after the
    caller's `check_output` (a concurrent run's output): a file is hard-linked to `target`,
    which fails if anything is there, then its temporary name removed; a folder claims
    `target` with `mkdir` and is renamed onto that empty folder, which POSIX does atomically
    and refuses once the folder holds anything (an empty folder already there, which
    `check_output` allows, is claimed the same way). Something there raises `DiveError`
    saying to pass overwrite. A folder gets a manifest (`MANIFEST`) of its files, so that
    `check_output` can tell files added to it later, which replacing it would delete. On any
    failure `target` is left as it was and `tmp` removed,
    unless `keep_tmp` (a caller keeping finished work to publish later: it is left whole).
    A file or folder gets the mode of the one it replaces, or the umask's (the files in a
    folder are new: theirs is the umask's). A signal during the renames lands after them; with
    `output` (this is the verb's output, not a part, a state or a staged file) it is marked
    `written_before`, so the command line says the output was written.
    """
    target = named(target)
    try:
        check_overwrite(overwrite)
        if tmp.is_dir() and not tmp.is_symlink():  # the files a later overwrite may replace
            with open(tmp / MANIFEST, "w", encoding="utf-8") as manifest:  # on disk before
                manifest.write("".join(f"{name}\n" for name in _files_in(tmp)))  # the rename,
                manifest.flush()  # as the files it lists are: a crash left it empty
                os.fsync(manifest.fileno())
        if not tmp.is_symlink():  # a replaced file or folder keeps its mode, a new one umask's
            os.chmod(tmp, folder_mode(target) if tmp.is_dir() else _mode_for(target))
        with publishing() if output else uninterrupted():
            if overwrite:
                if tmp.is_dir() and not tmp.is_symlink():
                    replace_path(tmp, target)
                else:
                    os.replace(tmp, target)
            elif tmp.is_dir() and not tmp.is_symlink():
                _publish_folder(tmp, target)
            else:
                _publish_file(tmp, target)
    except BaseException:
        if keep_tmp:
            raise
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise


def _publish_file(tmp: Path, target: Path) -> None:
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise exists_error(target) from None
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        # No hard links on this file system: the check and the rename are two steps here.
        if target.exists() or target.is_symlink():
            raise exists_error(target) from None
        os.replace(tmp, target)
        return
    os.unlink(tmp)


def _publish_folder(tmp: Path, target: Path) -> None:
    try:
        # With the mode a new folder gets: a claim that outlives its run (SIGKILL before the
        # rename) passes its mode on to the folder renamed onto it, as a replaced one does.
        os.mkdir(target)
        claimed = True
    except FileExistsError:
        if not target.is_dir() or target.is_symlink():
            raise exists_error(target) from None
        claimed = False  # an empty folder may be written into; rename refuses a full one
    try:
        os.rename(tmp, target)
    except BaseException as exc:
        if claimed:
            with contextlib.suppress(OSError):
                os.rmdir(target)  # only while still empty: never another run's folder
        if isinstance(exc, OSError) and exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise exists_error(target) from None
        raise


def exists_error(path: Path) -> DiveError:
    """The error for an output already at `path` that may be replaced only with overwrite."""
    return DiveError(f"{path}: already exists; pass overwrite=True to replace it",
                     param="overwrite")


# mkstemp/mkdtemp names made above: ".<target name>.<random>.tmp" (or ".old" when set aside).
_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.[^.]+\.(?:tmp|old)")


# `work_folder` names: ".<target name>.<kind>"
_WORK_NAME = re.compile(r"\.(?P<name>.+)\.(?P<kind>partial|ray-partial)")


def describe_os_error(exc: OSError) -> str:
    """One line for a file-system error, naming the user's path rather than a temporary one
    or a file in a resumable verb's hidden work folder (which names its output)."""
    path = exc.filename2 if exc.filename2 is not None else exc.filename
    if path is None:
        return str(exc.strerror or exc)
    where = Path(os.fsdecode(path))
    match = _TEMP_NAME.fullmatch(where.name)
    if match:
        where = where.with_name(match["name"])
    where = _output_of(where)
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        reason = "a file is in the way of a folder needed here"
    else:
        reason = (exc.strerror or str(exc)).rstrip(".")
        reason = reason[:1].lower() + reason[1:]
        if match and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            # the temporary beside it was refused: the file itself may well be writable
            reason += (" in its folder (every output is written beside its place, then "
                       "renamed into it)")
    return f"{where}: {reason}"


def _output_of(path: Path) -> Path:
    """The output whose work folder (`work_folder`) holds `path`, else `path`: an error there
    named `.out.npy.partial/chunk-000003.npy`, a hidden file the user never asked for."""
    for folder in (path, *path.parents):
        match = _WORK_NAME.fullmatch(folder.name)
        # a name of 255 bytes may be a long name's, cut (`work_folder`): named as it is
        if match and len(os.fsencode(folder.name)) < 255:
            return folder.with_name(match["name"])
    return path


def os_error_in_text(exc: BaseException, path: str | os.PathLike[str]) -> OSError | None:
    """The `OSError` (naming `path`) behind an error of a Rust library (LanceDB, safetensors)
    whose text ends in Rust's "(os error 28)", else None: their own exception types named a
    source file of the library, or came out as a traceback."""
    found = re.search(r"\(os error (\d+)\)", str(exc))
    if found is None:
        return None
    code = int(found[1])
    return OSError(code, os.strerror(code), os.fspath(path))


def check_suffix(path: Path, suffix: str, what: str) -> None:
    """Raise `DiveError` if `path` has a suffix other than `suffix` (a plot named .svg or .csv
    would hold PNG bytes); a name without one is taken as it is."""
    if path.suffix and path.suffix.lower() != suffix:
        raise DiveError(f"{path}: {what} goes here, but the name ends {path.suffix!r}; name it "
                        f"*{suffix}")


def check_overwrite(overwrite: object) -> None:
    """Refuse an `overwrite` that is not a bool: `overwrite="no"` is true, and replaced."""
    check_flag(overwrite, "overwrite")


def check_flag(value: object, name: str) -> None:
    """Refuse a yes/no option `name` that is not a bool (`progress="no"` is true)."""
    if not isinstance(value, bool):
        raise DiveError(f"{name} must be True or False, got {value!r}", param=name)


def check_output(
    path: Path, *, overwrite: bool, ours: Callable[[Path], bool], what: str, folder: bool = False,
    suffix: str | None = None, layout: Collection[str] = (), added: bool = True,
) -> None:
    """Raise `DiveError` unless writing at `path` replaces nothing or is allowed to.

    A name ending in another suffix than `suffix` (when given) is refused (`check_suffix`).
    What would stop the write where it goes (no permission, a read-only file system, a file
    where a folder is needed) raises its `OSError` now, before the work (`check_writable`).
    Nothing there (or, when a `folder` is written, an empty folder): fine. Something `ours`
    recognises as `what` (written by dive): replaced only with `overwrite`, and a folder only
    while it holds no file added since dive wrote it (`files_added`; `layout`: the files such
    a folder holds, for one written before manifests; `added=False` for a folder whose own
    format adds files, a Lance table's). Anything else is never replaced, whatever
    `overwrite` says.
    """
    check_overwrite(overwrite)
    if suffix is not None:
        check_suffix(path, suffix, what)
    check_writable(path)
    _check_not_around_cwd(path)
    # a container's volume (`-v out:/out`): the final rename failed "busy", after the work
    if os.path.ismount(path):
        raise DiveError(f"{path}: is a mount point, which an output put in place whole (by one "
                        "rename) cannot replace; give a path inside it")
    remove_dead_temporaries(path)
    if not path.exists() and not path.is_symlink():
        return
    if folder and path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        return
    if not ours(path):
        raise DiveError(f"{path}: exists and is not {what}; refusing to replace it "
                        "(overwrite replaces only what dive wrote)")
    if not overwrite:
        raise exists_error(path)
    extra = files_added(path, layout) if added else []
    if extra:
        shown = ", ".join(extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
        raise DiveError(f"{path}: holds files dive did not write ({shown}); replacing the "
                        "folder would delete them, so move them out first")


def _check_not_around_cwd(path: Path) -> None:
    """Refuse an output that is the current folder or holds it (`--output .`): it is put in
    place whole, by a rename, and the folder it replaces is removed, which left the shell in a
    deleted folder (its next command failed with an error naming no file)."""
    try:
        here = Path.cwd()
    except OSError:  # already in a deleted folder: nothing to keep
        return
    target = named(path)
    if target == here or target in here.parents:
        raise DiveError(f"{path}: is the current folder{'' if target == here else ' or holds it'}"
                        ", which an output put in place whole (by one rename) would replace "
                        "under the shell; give a path inside it or elsewhere")


def check_writable(path: Path) -> None:
    """Raise the `OSError` that writing at `path` would meet where it writes first: a file
    put beside `path`, or, where its folder is not made yet, beside the first folder to make.
    A temporary file is made and removed there, so a fit or an index build is refused at the
    start, not after it ran (named by `describe_os_error` as the write's error would be)."""
    first = path  # what the write makes first: `path`, or the first of its missing folders
    while not first.parent.exists() and first.parent != first:
        first = first.parent
    if not first.parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(first.parent))
    with temporary(first) as probe:
        os.unlink(probe)


MANIFEST = ".dive-files"  # in every folder `publish` puts in place: the files dive wrote there


def _files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if (p.is_file() or p.is_symlink()) and p.name != MANIFEST)


def files_added(folder: Path, layout: Collection[str] = ()) -> list[str]:
    """Files in the dive-written `folder` that are not in its manifest (added since, by someone
    else); for a folder written before manifests, those not in `layout` (none without one);
    none for a path that is not a folder."""
    if folder.is_symlink() or not folder.is_dir():
        return []
    try:
        written = set((folder / MANIFEST).read_text(encoding="utf-8").splitlines())
    except (FileNotFoundError, UnicodeDecodeError):  # none, or one that is no list of names
        written = set()
    if not written:  # none, or damaged (emptied by a crash): the layout's files are dive's
        if not layout:
            return []
        written = set(layout)
    return [name for name in _files_in(folder) if name not in written]


def parse_json(text: str, where: str) -> Any:
    """`json.loads(text)`, or one `DataError` naming `where`: text that is not JSON, an integer
    of over 4300 digits (which `json` reads no further) or nesting too deep for its parser
    (both were tracebacks)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not valid JSON ({exc.msg}, column {exc.colno})") from None
    except ValueError:
        raise DataError(f"{where}: not valid JSON (a number with too many digits)") from None
    except RecursionError:
        raise DataError(f"{where}: not valid JSON (nested too deeply)") from None


def parse_json_object(data: bytes, where: str, *, encoding: str = "utf-8") -> dict[str, Any]:
    """`data` decoded and parsed as one JSON object (a config or meta file), or one
    `DataError` naming `where`."""
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(f"{where}: not valid JSON ({exc})") from None
    value = parse_json(text, where)
    if not isinstance(value, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def refuse_special_file(path: str | os.PathLike[str]) -> None:
    """`DataError` if something is at `path` that is neither a regular file nor a folder: a
    pipe, socket or device reads once, or waits for a writer forever (pyarrow's open, which
    not even Ctrl-C ends), and was called "no such file" or "no .npy header". A missing path
    or a folder is left to the caller's own message."""
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        raise DataError(f"{os.fspath(path)}: not a regular file (a pipe, socket or device); "
                        "save its contents to a file and give that")


def user_path(value: str | os.PathLike[str]) -> Path:
    """`value` with a leading `~` or `~user` expanded, as a shell does: a `~user` of no known
    user stays as typed (`Path.expanduser` raised RuntimeError: a traceback)."""
    return Path(os.path.expanduser(value))


def cache_base() -> Path | None:
    """`$DIVE_CACHE`, `~` expanded, or None when unset or empty. A value with blanks at an end
    is refused: " " or " /data" wrote the cache into a folder named " " in the working
    folder."""
    value = os.environ.get("DIVE_CACHE")
    if not value:
        return None
    if value != value.strip():  # `DIVE_CACHE= /data` in an env file keeps the blank
        raise DataError(f"$DIVE_CACHE is {value!r}, with blanks at an end; unset it (the "
                        "default cache) or name a folder without them")
    return user_path(value)


def as_path(value: object, what: str, expected: str = "a path") -> Path:
    """`value` as a Path, `~` expanded as the command line's paths are, or `DiveError` naming
    the parameter `what` and what it should be (not os.fspath's "expected str, bytes or
    os.PathLike object, not NoneType" from deep inside a writer). `dive.save(m, "~/pca8")`
    made a folder named `~` in the working folder."""
    if not isinstance(value, (str, os.PathLike)) or value == "":
        shown = "empty" if isinstance(value, str) else kind_of(value)  # (an array's == is not)
        raise DiveError(f"{what} is {shown}; expected {expected} (str or os.PathLike)")
    return user_path(value)


def refuse_folder_form(value: str | os.PathLike[str], writes: str = "this writes a file") -> None:
    """`DiveError` if the output path `value` ends in a separator, `/.` or `/..`: it names a
    folder, and Path drops the first two, so `--output new/` (or `new/.`) wrote the file `new`
    (`writes`: why a file); `r.jsonl/..` left an empty folder `r.jsonl`."""
    text = os.fspath(value)
    last = os.path.basename(text)
    end = ("a separator" if text.endswith(("/", os.sep)) else
           repr(last) if last in (".", "..") else None)
    if end is not None:
        raise DiveError(f"{text!r} ends in {end}, naming a folder; {writes}: give its path")
