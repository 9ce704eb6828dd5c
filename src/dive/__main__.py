"""The `dive` console script and `python -m dive`: `dive.cli.main`, with Ctrl-C covered from
the first moment.

The script imports this module, which imports nothing but `sys`, so a Ctrl-C while
`dive.cli` loads ends as one line with exit status 130, as it does once `main` runs (which
covers its own parsing and set-up). Left out: the interpreter's own start-up, before any
module of dive runs.
"""

from __future__ import annotations

import sys


def main() -> int:
    """Run the `dive` command line with the process's arguments; return its exit status."""
    try:
        from dive.cli import main as cli_main
    except KeyboardInterrupt:
        print("dive: interrupted; no output was written", file=sys.stderr)
        return 130  # 128 + SIGINT, as `dive.cli.main` returns
    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
