"""A resumable verb's hidden work folder (`.<name>.partial`) beside its output: named
(`work_folder`), held by one run at a time (`held`) and emptied only of what dive left there.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from dive._io.locks import flock
from dive._io.temporaries import is_temporary_name
from dive.errors import DiveError


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
            flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, output)
        except BlockingIOError:
            raise DiveError(f"{output}: another run is writing this output now; wait for it to "
                            "finish or choose another output") from None
        yield
    finally:
        os.close(fd)
