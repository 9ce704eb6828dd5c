"""Holding Ctrl-C (and SIGTERM, SIGHUP) while an output is put in place, and marking an
interruption by what it landed after: the output in place (`written_before`), or before a
resumable verb saved its first chunk (`nothing_finished`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP until the block ends, then raise the first one held
    to the handler that was there: a block of renames (milliseconds) ends whole, and the
    interruption lands after it. Python runs signal handlers in the main thread only, so
    elsewhere this holds nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    # not a handler installed from C (an embedding host's): getsignal says None, which cannot
    # be put back, so the restore raised TypeError and left every signal held for good
    previous = {sig: signal.signal(sig, lambda signum, _frame: held.append(signum))
                for sig in HELD_SIGNALS if signal.getsignal(sig) is not None}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if held:
            signal.raise_signal(held[0])


WRITTEN_BEFORE = "dive_written_before"  # set on an interruption that landed after the output


@contextlib.contextmanager
def publishing() -> Iterator[None]:
    """A block that puts an output in place (renames) or tidies up once it is (a work
    folder), `uninterrupted`: a Ctrl-C during it lands after it, marked as such
    (`written_before`), so the command line says the output was written, not that nothing
    was (or that a rerun resumes, where the rerun finds the output in place). A block that
    failed leaves its interruption unmarked."""
    done = False
    try:
        with uninterrupted():
            yield
            done = True
    except KeyboardInterrupt as exc:
        if done:
            mark_written_before(exc)
        raise


def mark_written_before(exc: BaseException) -> None:
    setattr(exc, WRITTEN_BEFORE, True)


def written_before(exc: BaseException) -> bool:
    """Whether the interruption `exc` landed once the output was in place (`publishing`)."""
    return bool(getattr(exc, WRITTEN_BEFORE, False))


NOTHING_FINISHED = "dive_nothing_finished"  # set on an interruption before a resumable
# verb's first chunk was saved


@contextlib.contextmanager
def nothing_finished_unless(finished: Callable[[], bool]) -> Iterator[None]:
    """A resumable verb's work, whose interruption is marked as landed in it
    (`reached_the_work`), and `nothing_finished` when `finished()` says no chunk of it was
    saved."""
    try:
        yield
    except KeyboardInterrupt as exc:
        setattr(exc, REACHED_THE_WORK, True)
        if not finished() and not written_before(exc):  # its work folder went once published
            setattr(exc, NOTHING_FINISHED, True)
        raise


REACHED_THE_WORK = "dive_reached_the_work"  # set on an interruption in a resumable verb's work


def reached_the_work(exc: BaseException) -> bool:
    """Whether the interruption `exc` landed in a resumable verb's work, not before it (while
    the verb loaded its model or data): only then can a chunk of it have been saved."""
    return bool(getattr(exc, REACHED_THE_WORK, False))


def nothing_finished(exc: BaseException) -> bool:
    """Whether the interruption `exc` landed before a resumable verb (embed, compress) had
    saved any chunk: a rerun starts over, not after its last finished chunk."""
    return bool(getattr(exc, NOTHING_FINISHED, False))
