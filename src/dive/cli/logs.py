"""What the library logs, shown by the command line: sources and progress as bare lines,
warnings once each, `-v` for dive's own INFO records."""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator

from tqdm.contrib.logging import logging_redirect_tqdm


class _Lines(logging.Handler):
    """Shows a library logger's records as bare lines on stdout (the verbs' own output) or
    stderr (progress)."""

    def __init__(self, stream: str) -> None:
        super().__init__()
        self.stream_name = stream

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=getattr(sys, self.stream_name))  # now: tests swap it


def _show_lines(logger: str, stream: str) -> None:
    """Route `logger`'s INFO records to bare lines on `stream` ("stdout" or "stderr")."""
    log = logging.getLogger(logger)
    if not any(isinstance(h, _Lines) for h in log.handlers):
        log.addHandler(_Lines(stream))
    log.setLevel(logging.INFO)
    log.propagate = False


def show_embedding_sources() -> None:
    """`evaluate` and `fit` say where each dataset's embeddings came from."""
    from dive.embed.encode import SOURCE_LOGGER

    _show_lines(SOURCE_LOGGER, "stdout")


def show_fit_progress() -> None:
    """`fit` shows each stage of a long fit on stderr (`evaluate` only with -v: many fits)."""
    from dive.compressors.base import PROGRESS_LOGGER

    _show_lines(PROGRESS_LOGGER, "stderr")


@contextlib.contextmanager
def verb_logging(*, verbose: bool) -> Iterator[None]:
    """`-v`: dive's INFO records (each finished run), not every library's (the root logger at
    INFO showed faiss's loader, which reads like an error); log lines go above the progress
    bar, not onto its line. Put back after the verb."""
    log = logging.getLogger("dive")
    level = log.level
    if verbose:
        log.setLevel(logging.INFO)
    shown: set[str] = set()

    def show(message: Warning | str, *_: object, **__: object) -> None:
        # a warning as one log line, once: Python's pointed at the console script's line
        # (`.../bin/dive:6: FutureWarning: ...` and `sys.exit(main())` under it)
        if str(message) not in shown:
            shown.add(str(message))
            log.warning("%s", message)

    previous = warnings.showwarning
    warnings.showwarning = show
    try:
        with logging_redirect_tqdm():
            # one filter per handler: each record passes every handler's filter in turn
            filters = {handler: _OnceEach() for handler in logging.getLogger().handlers}
            for handler, once in filters.items():
                handler.addFilter(once)
            try:
                yield
            finally:
                for handler, once in filters.items():
                    handler.removeFilter(once)
    finally:
        log.setLevel(level)
        warnings.showwarning = previous


class _OnceEach(logging.Filter):
    """Lets a warning through once per verb: one made per seed or per fit (a split's queries
    judged in train and test, a PCA's rank) printed the same line three times with
    `--seeds 0,1,2`."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[str, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.getMessage())
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

