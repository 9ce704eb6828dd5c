"""The command line's standard output: its write errors name it, and are reported before exit;
and its standard error, whose write errors are dropped (`unfailing_stderr`).

A verb's results go to stdout through `print`, which names no file when the write fails (a
full disk: "dive: error: No space left on device"), and what is still buffered at the end was
left to the interpreter's exit, where a closed pipe or a full disk printed "Exception ignored
..." and exit status 120 after the verb had returned. `named_stdout` names stdout in its
errors (and escapes what its encoding cannot write); `flush_stdout` writes what is buffered
while the error is still ours to report.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from dive._io import describe_os_error

STDOUT = "standard output"


class _Named:
    """A text stream whose write and flush errors carry `STDOUT` as their file name (a closed
    pipe stays a `BrokenPipeError`: `OSError` picks the subclass from the errno)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, STDOUT) from exc

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, STDOUT) from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _escape(exc: UnicodeError) -> tuple[bytes, int]:
    """The codec error handler `ESCAPE`: a byte of a file name that the file system encoding
    could not decode (kept by Python as a lone surrogate) is written as that byte, so a printed
    path is the path; any other character the encoding cannot write, as a backslash escape."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    out = bytearray()
    for char in exc.object[exc.start:exc.end]:
        code = ord(char)
        out += bytes([code - 0xDC00]) if 0xDC80 <= code <= 0xDCFF else \
            char.encode("ascii", "backslashreplace")
    return bytes(out), exc.end


ESCAPE = "dive-escape"
codecs.register_error(ESCAPE, _escape)


@contextlib.contextmanager
def named_stdout() -> Iterator[None]:
    """stdout as `_Named`; one that cannot write every string (`LC_ALL=C` with UTF-8 mode off,
    whose errors are "surrogateescape", `PYTHONIOENCODING=ascii`, "strict", or UTF-8 "strict",
    which cannot write a file name's undecodable byte) writes as `ESCAPE` says, where a ± in a
    table, an id's ü or a saved path's byte was a traceback (after the work was done)."""
    stream = sys.stdout
    errors = stream.errors if isinstance(stream, io.TextIOWrapper) else None
    escape = errors in ("strict", "surrogateescape")
    if escape:
        stream.reconfigure(errors=ESCAPE)  # type: ignore[union-attr]
    sys.stdout = _Named(stream)
    try:
        yield
    finally:
        sys.stdout = stream
        if escape:
            stream.reconfigure(errors=errors)  # type: ignore[union-attr]


class _Unfailing:
    """A text stream for stderr whose failed write (its reader gone, `2>&1 | head`; a full
    disk) sends it and every later write to /dev/null, as a closed stderr does: the first
    progress line that failed abandoned a fit or a grid half done, and the error line about
    it failed again (a traceback to nowhere, exit 1)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def _lost(self) -> None:
        # /dev/null under the stream's own descriptor: what its buffer still holds then goes
        # there too, where the interpreter's last flush failed again (exit status 120)
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())
        except (OSError, ValueError, io.UnsupportedOperation):  # no descriptor of its own
            self._stream = open(os.devnull, "w")  # noqa: SIM115 - for the process's life

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError:
            self._lost()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError:
            self._lost()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def unfailing_stderr() -> Iterator[None]:
    """stderr as `_Unfailing` while a verb runs; a closed one (None) is /dev/null for the
    process's life (`print(file=None)` writes to stdout)."""
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    stream = sys.stderr
    sys.stderr = _Unfailing(stream)
    try:
        yield
    finally:
        sys.stderr = stream


def flush_stdout() -> int | None:
    """Writes what is buffered for stdout; None if it went, else `stdout_failed`'s status."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        return stdout_failed(exc)
    return None


def stdout_failed(exc: OSError, written: str | Path | None = None) -> int:
    """The exit status for a write to stdout that failed with `exc`: 128 + SIGPIPE for a
    reader that stopped early (`dive search ... | head`, not an error of ours), silently; 2
    with one error line for anything else, naming the verb's output when it was already in
    place (`written`: a rerun finds it there). Stdout then goes to /dev/null, so the exit's
    own flush of what is left cannot fail again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if isinstance(exc, BrokenPipeError):
        return 128 + signal.SIGPIPE
    kept = "" if written is None else (f" ({written} was written in full: only what this "
                                       "verb printed is lost)")
    print(f"dive: error: {describe_os_error(exc)}{kept}", file=sys.stderr)
    return 2
