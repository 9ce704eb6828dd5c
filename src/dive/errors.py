"""User-facing errors.

`DiveError` is the one exception the CLI turns into a one-line message (no traceback unless
`--debug`). Library code raises it, or a subclass, for bad input: it always names the file,
line or row and the problem. Its messages speak of values and parameters (`overwrite=True`),
never of a front end's flags: `param` names the parameter an error is about, so that the CLI
can add its own spelling of it (`--overwrite`). Programming errors stay ordinary exceptions.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def quoted(value: object, limit: int = 60) -> str:
    """`value`'s repr for a message, a string cut to about `limit` characters: an id of
    megabytes (a whole file read as one line) made a warning or an error line of megabytes."""
    if not isinstance(value, str) or len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} chars)"


def one_line(text: str) -> str:
    """`text` with each control character (a line break, a tab, a terminal escape) written as
    its escape: a path or id holding one split an error line in two or restyled the terminal."""
    return "".join(repr(c)[1:-1] if unicodedata.category(c) == "Cc" else c for c in text)


def kind_of(value: object) -> str:
    """What a wrongly typed argument is, for an error message: 'None', 'a list'."""
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"


class DiveError(Exception):
    """Bad input or an impossible request, with a message fit to show a user as is.

    `param`, when given, is the name of the function parameter whose value the error is
    about (e.g. "overwrite", "data_dir").
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its message and attributes, not through `__init__` again: subclasses
        # word the message there (`BadRowError(name, row, problem)` could not be unpickled, so
        # a bad row in a multiprocessing worker hung the pool; `TrainingDiverged` doubled it).
        return _rebuilt, (type(self), self.args, self.__dict__)


def _rebuilt(cls: type[DiveError], args: tuple[Any, ...], state: dict[str, Any]) -> DiveError:
    error = BaseException.__new__(cls, *args)
    error.__dict__.update(state)
    return error


class DataError(DiveError, ValueError):
    """A dataset, embeddings or results file is malformed or inconsistent."""


@contextmanager
def about(param: str) -> Iterator[None]:
    """A `DiveError` raised inside without a `param` is about `param`: the value it rejects
    came in through that parameter (a method spec's option through `methods`)."""
    try:
        yield
    except DiveError as exc:
        if exc.param is None:
            exc.param = param
        raise


class NotFittedError(DiveError, RuntimeError):
    """`transform` (or export) was called on a compressor that has not been fitted."""


class TrainingDiverged(DiveError, ArithmeticError):
    """A fit's training left the finite numbers (its loss, a step or the model's outputs):
    the settings, most often a learning rate too large, not the data."""

    def __init__(self, what: str) -> None:
        super().__init__(f"training diverged: {what}; try a smaller learning rate (lr)")
