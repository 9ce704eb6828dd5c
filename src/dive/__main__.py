"""The `dive` console script and `python -m dive`: `dive.cli.main`, with Ctrl-C covered from
the first moment.

The script imports this module, which imports nothing but `sys` and `signal`, so a Ctrl-C,
SIGTERM or SIGHUP while `dive.cli` loads ends as one line with exit status 128 + the signal,
as it does once `main` runs (which covers its own parsing and set-up), and one once the verb
is done is ignored: the process ends with the verb's status. Left out: the interpreter's own
start-up, before any module of dive runs.
"""

from __future__ import annotations

import signal
import sys


class _Early(KeyboardInterrupt):
    """SIGTERM or SIGHUP before `dive.cli.main` took them over."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, _frame: object) -> None:
    raise _Early(signum)


def main() -> int:
    """Run the `dive` command line with the process's arguments; return its exit status."""
    # SIGTERM and SIGHUP too: their default killed the process without a word in the first
    # half second, while the modules load (not where a parent set them to ignored: `nohup`)
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGHUP)
                if signal.getsignal(sig) not in (signal.SIG_IGN, None)}  # None: from C
    try:
        from dive.cli import main as cli_main
    except KeyboardInterrupt as exc:
        print("dive: interrupted; no output was written", file=sys.stderr)
        return 128 + getattr(exc, "signum", signal.SIGINT)  # as `dive.cli.main` returns
    finally:  # `dive.cli.main` takes them over while a verb runs, and gives these back
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    code = cli_main()
    # The verb is done, its output written and its lines printed: a signal while the
    # interpreter shuts down (torch's teardown takes a second) killed the process without a
    # word, its status saying it was stopped. It is ignored from here, so the process ends
    # with the verb's status: a Python handler would not do, since the interpreter puts the
    # default action back before it tears the modules down; an ignored signal stays ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not None:  # None: a handler from C, left as it is
            signal.signal(sig, signal.SIG_IGN)
    return code


if __name__ == "__main__":
    sys.exit(main())
