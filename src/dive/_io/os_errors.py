"""File-system errors as one line: `describe_os_error` names the user's path (disk full,
permission denied, a file where a folder should be), not a temporary name or a file in a
resumable verb's hidden work folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Iterator
from pathlib import Path


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


# The names of `temporaries.temporary` (".<target name>.<random>.tmp") and of what
# `atomic.replace_path` sets aside (".<target name>.<random>.old").
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
