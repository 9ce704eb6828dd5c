"""Ctrl-C, SIGTERM and SIGHUP while a verb runs: the same clean-up, and one line saying what
the verb kept."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dive._io import nothing_finished, reached_the_work


def file_size(path: Path) -> int:
    """The bytes of the file at `path` (a results file only grows), 0 where there is none."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


NOTHING_WRITTEN = "no output was written"


# What Ctrl-C keeps, per verb that keeps anything: every other verb writes its output only
# at the end, in one rename, so an interrupted one left nothing and its rerun starts over.
# Once a verb's output is in place (`written_in_full`), an interruption says that instead.
_AFTER_INTERRUPT = {
    "evaluate": "finished runs are saved and a rerun resumes",
    "demo": "finished runs are saved and a rerun resumes",
    "embed": "finished chunks are saved and a rerun resumes",
    "compress": "finished chunks are saved and a rerun resumes",
}


WRITTEN = "written_in_full"  # set on a verb's arguments once its output is in place


def written_in_full(args: argparse.Namespace, path: str | Path) -> None:
    """Note that the verb's output at `path` is in place and whole, so that an interruption
    from here on (while the verb prints what it did) says so: it said "no output was
    written", or that a rerun resumes, where a rerun would find the output already there."""
    setattr(args, WRITTEN, path)


def kept_after_interrupt(args: argparse.Namespace | None, exc: KeyboardInterrupt) -> str:
    """What the run of `args` interrupted by `exc` kept, in words (None: stopped before its
    arguments were read)."""
    if args is None:
        return NOTHING_WRITTEN
    if getattr(args, WRITTEN, None) is not None:  # the work was done: the rest is printing
        redraw = "; a rerun without --overwrite draws its plot" if args.verb == "demo" else ""
        return f"{getattr(args, WRITTEN)} was already written in full{redraw}"
    # demo --overwrite's new runs go to a file of their own
    if args.verb == "demo" and args.overwrite and file_size(Path(args.output) / "results.jsonl"):
        return "this run's results were discarded and the earlier ones kept"
    if nothing_finished(exc):
        return ("no chunk was finished yet; a rerun starts over"
                if args.verb in ("embed", "compress") else NOTHING_WRITTEN)
    if args.verb in ("embed", "compress") and not reached_the_work(exc):
        # stopped before its resumable work began (while it loaded its model or data), or a
        # run that does not resume: an import (written in one go), the Ray engine (a rerun
        # starts over)
        return NOTHING_WRITTEN
    return _AFTER_INTERRUPT.get(args.verb, NOTHING_WRITTEN)


class _Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP (`timeout`, a job scheduler, `docker stop`, a closed terminal)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stopped_like_ctrl_c() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into `_Stopped` while a verb runs, so they clean up as Ctrl-C
    does (temporary files removed, finished work kept) instead of killing the process where
    it stands; after the first of these or of Ctrl-C, the others are ignored while the verb
    cleans up. The previous handlers come back afterwards. Only the main thread may."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        # The clean-up runs while the exception unwinds (a fit's workers told to stop and
        # joined, temporaries removed); a second signal landing there broke off the join,
        # leaving torch threads running at exit (an abort, exit 134) or printed a traceback.
        # Later signals are ignored until the verb has ended.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt if signum == signal.SIGINT else _Stopped(signum)

    def redeliver(unraisable: Any) -> None:
        # The raise landed in a finaliser (`__del__`, a weakref callback: matplotlib's, a
        # regex cache's), where Python drops it: the verb ran on to exit 0, every signal
        # ignored. Sent again shortly, it lands outside (or is dropped and sent again).
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            unraisable_hook(unraisable)
            return
        for sig in previous:
            signal.signal(sig, stop)
        signum = getattr(unraisable.exc_value, "signum", signal.SIGINT)
        resend = threading.Timer(0.05, os.kill, (os.getpid(), signum))
        resends.append(resend)
        resend.start()

    # not the ones a parent set to ignored: `nohup` (SIGHUP), a background job (SIGINT)
    caught = [sig for sig in (signal.SIGTERM, signal.SIGHUP)
              if signal.getsignal(sig) not in (signal.SIG_IGN, None)]  # None: from C
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        caught.append(signal.SIGINT)
    previous = {sig: signal.signal(sig, stop) for sig in caught}
    resends: list[threading.Timer] = []
    unraisable_hook, sys.unraisablehook = sys.unraisablehook, redeliver
    try:
        yield
    finally:
        for resend in resends:  # the verb has stopped: not sent after it
            resend.cancel()
        sys.unraisablehook = unraisable_hook
        for sig, handler in previous.items():
            signal.signal(sig, handler)

