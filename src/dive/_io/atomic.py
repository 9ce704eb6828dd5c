"""Atomic writes: write to a temporary name beside the target, then rename.

A crash or interruption leaves either the old file or the new one, never half of either.
A new file gets the mode the umask says (as `open` would give it); a replaced file keeps its
mode, and so does a folder (`folder_mode`). `replace_path` does the final rename for folders
too (which rename() cannot replace; one atomic swap where Linux has it); `publish` does it
without ever replacing anything unless told to overwrite, so a concurrent run's output that
appeared meanwhile is kept; a folder it puts in place lists its files (`MANIFEST`).
A writer replaces the name it was given, a link included (the file it led to is kept as it
was); only a read-modify-write cycle writes where a link leads (`locks.resolve_link`).
`made_folder` takes back an output folder a failed writer made.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
import tempfile
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import IO, Any

from dive._io.args import check_overwrite
from dive._io.os_errors import naming_os_errors
from dive._io.signals import publishing, uninterrupted
from dive._io.temporaries import named, remove, temporary, temporary_prefix
from dive.errors import DiveError


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
        # named as a temporary is, cut short: a 250-byte name's ".<name>.<random>.old" was
        # "file name too long"
        aside = Path(tempfile.mkdtemp(prefix=temporary_prefix(dst), suffix=".old",
                                      dir=dst.parent))
        os.rmdir(aside)
        os.replace(dst, aside)
        try:
            os.replace(src, dst)
        except BaseException:
            with contextlib.suppress(OSError):
                os.replace(aside, dst)
            raise
    remove(aside)


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
        remove(tmp)
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
