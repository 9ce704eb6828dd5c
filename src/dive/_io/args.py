"""Checks of the paths and yes/no options a caller passes to a writer or reader.
"""

from __future__ import annotations

import os
from pathlib import Path

from dive.errors import DataError, DiveError, kind_of


def check_flag(value: object, name: str) -> None:
    """Refuse a yes/no option `name` that is not a bool (`progress="no"` is true)."""
    if not isinstance(value, bool):
        raise DiveError(f"{name} must be True or False, got {value!r}", param=name)


def check_overwrite(overwrite: object) -> None:
    """Refuse an `overwrite` that is not a bool: `overwrite="no"` is true, and replaced."""
    check_flag(overwrite, "overwrite")


def user_path(value: str | os.PathLike[str]) -> Path:
    """`value` with a leading `~` or `~user` expanded, as a shell does: a `~user` of no known
    user stays as typed (`Path.expanduser` raised RuntimeError: a traceback)."""
    return Path(os.path.expanduser(value))


def as_path(value: object, what: str, expected: str = "a path") -> Path:
    """`value` as a Path, `~` expanded as the command line's paths are, or `DiveError` naming
    the parameter `what` and what it should be (not os.fspath's "expected str, bytes or
    os.PathLike object, not NoneType" from deep inside a writer). `dive.save(m, "~/pca8")`
    made a folder named `~` in the working folder."""
    if not isinstance(value, (str, os.PathLike)) or value == "":
        shown = "empty" if isinstance(value, str) else kind_of(value)  # (an array's == is not)
        raise DiveError(f"{what} is {shown}; expected {expected} (str or os.PathLike)")
    return user_path(value)


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
