"""`dive.cli.main`: parse the verb, run its handler, and turn what stops it into one
line and an exit status."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable, Sequence

from dive._io import written_before
from dive.cli.compress import cmd_compress
from dive.cli.embed import cmd_embed
from dive.cli.errors import error_line, traceback_if_debug
from dive.cli.evaluate import cmd_demo, cmd_evaluate
from dive.cli.export import cmd_export, cmd_index
from dive.cli.fit import cmd_fit
from dive.cli.interrupts import WRITTEN, kept_after_interrupt, stopped_like_ctrl_c, written_in_full
from dive.cli.logs import show_embedding_sources, verb_logging
from dive.cli.parsers import build_parser
from dive.cli.report import cmd_recommend, cmd_report
from dive.cli.search import cmd_search
from dive.cli.stdout import STDOUT, flush_stdout, named_stdout, stdout_failed, unfailing_stderr
from dive.errors import DiveError, one_line, quoted

Handler = Callable[[argparse.Namespace], int]


HANDLERS: dict[str, Handler] = {
    "evaluate": cmd_evaluate, "demo": cmd_demo, "report": cmd_report,
    "recommend": cmd_recommend, "embed": cmd_embed, "fit": cmd_fit, "export": cmd_export,
    "index": cmd_index, "search": cmd_search, "compress": cmd_compress,
}


# The verbs whose result is what they print: with stdout closed (`>&-`) it was dropped without
# a word and exit 0. The others write files, and print only a summary of them, or what a flag
# asks them to print (`report --gains`), which counts as a result too.
PRINTED_RESULT = ("search", "recommend")


def _prints_a_result(args: argparse.Namespace) -> str | None:
    """The verb (with the flag asking it to print) whose result is what it prints, or None."""
    if args.verb in PRINTED_RESULT:
        return str(args.verb)
    return "report --gains" if args.verb == "report" and args.gains else None


def main(argv: Sequence[str] | None = None) -> int:
    # stderr that fails (`2>&1 | head`, a full disk) or is closed (`2>&-`: tqdm's bar written
    # to None ended the verb with exit 1): progress and warnings go nowhere, the work goes on
    with unfailing_stderr():
        if sys.stdout is None:  # `>&-`: prints go nowhere; a verb printing its result refuses
            return _main(argv)
        with named_stdout():
            try:
                status = _main(argv)
            except SystemExit:  # argparse's --help, --version and usage errors print too
                failed = flush_stdout()
                if failed is None:
                    raise
                return failed
            failed = flush_stdout()
        return status if failed is None else failed


def _main(argv: Sequence[str] | None) -> int:
    # Everything is inside the try, the parser and the logging set-up too: they take a good
    # part of a second (numpy and the embedding modules load), and Ctrl-C then printed a
    # traceback. The import of `dive.cli` is covered by `dive.__main__`, the console script.
    # SIGTERM and SIGHUP from the parser on: `dive.__main__` gives their handlers back before
    # `main`, and one landing while the parser loaded killed the process without a word.
    args: argparse.Namespace | None = None
    try:
        with stopped_like_ctrl_c():
            args = build_parser().parse_args(argv)
            printing = _prints_a_result(args)
            if sys.stdout is None and printing:
                raise DiveError(f"{STDOUT} is closed, where {printing} prints its result "
                                "(send it to /dev/null to discard it)")
            logging.basicConfig(level=logging.WARNING,
                                format="%(levelname)s %(name)s: %(message)s")
            show_embedding_sources()
            handler = HANDLERS[args.verb]
            with verb_logging(verbose=args.verbose):
                status = handler(args)
                if sys.stdout is not None:  # here, where a failure can name what was written
                    sys.stdout.flush()
                return status
    except BrokenPipeError as exc:
        return stdout_failed(exc)
    except UnicodeEncodeError as exc:  # pyarrow, LanceDB, tokenizers: UTF-8 paths only
        if args is None:
            raise
        traceback_if_debug(args)
        text = quoted(exc.object[max(0, exc.start - 30):exc.end + 30])  # not a whole CSV
        print(f"dive: error: {text} is not valid UTF-8, which a library this verb "
              "uses needs for a path or a name (a file name in another encoding, or LC_ALL=C "
              "without UTF-8 mode: set PYTHONUTF8=1)", file=sys.stderr)
        return 2
    except (DiveError, OSError) as exc:
        if args is None:
            raise
        if isinstance(exc, OSError) and exc.filename == STDOUT:
            return stdout_failed(exc, getattr(args, WRITTEN, None))
        traceback_if_debug(args)
        # File-system trouble (disk full, no permission, a file where a folder should be) is
        # the user's to fix too.
        print(f"dive: error: {one_line(error_line(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        from dive.data.download import interrupted_download

        # evaluate's last output is its --report folder, or its --plot
        output = next((getattr(args, name) for name in ("output", "report", "plot")
                       if getattr(args, name, None)), None)
        if args is not None and output is not None and written_before(exc):  # once in place
            written_in_full(args, output)
        downloading = interrupted_download(exc)  # before any run or chunk: none to resume
        kept = (f"the download of dataset {downloading} was discarded; a rerun downloads it "
                "again" if downloading else kept_after_interrupt(args, exc))
        print(f"dive: interrupted; {kept}", file=sys.stderr)
        return 128 + getattr(exc, "signum", signal.SIGINT)  # `_Stopped`, or __main__'s

