"""`check_output`: the one rule of every writer that may replace an earlier output, checked
before the work (and a folder it cannot write in found then, `check_writable`).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Collection
from pathlib import Path

from dive._io.args import check_overwrite
from dive._io.atomic import exists_error, files_added
from dive._io.temporaries import named, remove_dead_temporaries, temporary
from dive.errors import DiveError


def check_suffix(path: Path, suffix: str, what: str) -> None:
    """Raise `DiveError` if `path` has a suffix other than `suffix` (a plot named .svg or .csv
    would hold PNG bytes); a name without one is taken as it is."""
    if path.suffix and path.suffix.lower() != suffix:
        raise DiveError(f"{path}: {what} goes here, but the name ends {path.suffix!r}; name it "
                        f"*{suffix}")


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
