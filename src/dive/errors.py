"""User-facing errors.

`DiveError` is the one exception the CLI turns into a one-line message (no traceback unless
`--debug`). Library code raises it, or a subclass, for bad input: it always names the file,
line or row and the problem. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations


class DiveError(Exception):
    """Bad input or an impossible request, with a message fit to show a user as is."""


class DataError(DiveError, ValueError):
    """A dataset, embeddings or results file is malformed or inconsistent."""


class NotFittedError(DiveError, RuntimeError):
    """`transform` (or export) was called on a compressor that has not been fitted."""
