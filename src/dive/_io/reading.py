"""Reading what dive wrote: one save of a folder that may be swapped meanwhile
(`read_one_save`), JSON as one error line, and no pipe or device taken for a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from dive.errors import DataError

T = TypeVar("T")


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


def not_a_file(path: Path) -> str | None:
    """What is at `path` where a file goes, in words, when it is not one: a folder, a pipe,
    socket or device, or a symbolic link that leads nowhere (and where it points); None for
    a file or nothing. (Every loader said it its own way, or called these "missing".)"""
    if path.is_symlink() and not path.exists():
        return f"a broken symbolic link (to {os.readlink(path)})"
    if path.is_dir():
        return "a folder, not a file"
    if path.exists() and not path.is_file():
        return "not a regular file (a pipe, socket or device)"
    return None
