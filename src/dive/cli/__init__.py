"""The `dive` command line: a module per verb (or pair of verbs), the only package that prints.

- `parsers`: every verb's arguments (one builder per verb), testable without running anything;
- `run`: `main`, which parses, runs the verb's handler and turns what stops it into one line
  and an exit status, with `errors` (a fixable error's line), `interrupts` (Ctrl-C, SIGTERM,
  SIGHUP), `logs` (what the library logs, as shown) and `stdout` (a standard output that cannot
  be written is reported);
- the verbs, in pipeline order: `embed`; `fit`; `evaluate` (`evaluate`, `demo`) and `report`
  (`report`, `recommend`); `export` (`export`, `index`) and `search`, with `loading` (the saved
  compressor they read); `compress` (stored vectors at scale).

Errors the user can fix (`DiveError`, file-system `OSError`s, bad arguments) print as one
line on stderr with exit status 2; `--debug` shows the traceback instead. Every verb that
writes refuses to replace an existing output unless given `--overwrite`, which replaces only
what dive wrote there (checked before any work, and again by the final no-replace rename,
`dive._io.publish`, against a concurrent run); `demo` instead resumes the run in its folder,
and `--overwrite` starts it over.
"""

from __future__ import annotations

from dive.cli.run import main

__all__ = ["main"]
