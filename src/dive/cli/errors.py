"""How an error the user can fix prints: one line naming the flag it is about, in the
command line's own spelling; `--debug` adds the traceback."""

from __future__ import annotations

import argparse
import traceback

from dive._io import describe_os_error
from dive.errors import DiveError

# The flag that sets each library parameter a `DiveError` can be about (its `param`).
FLAG_OF_PARAM = {
    "overwrite": "--overwrite", "verify": "--no-verify", "data_dir": "--data-dir",
    "embeddings_dir": "--embeddings", "methods": "--methods", "keep": "--keep",
    "column": "--vector-column", "id_column": "--id-column", "output_column": "--output-column",
    "precisions": "--precisions", "device": "--device", "budget": "--budget", "model": "--model",
    "ratios": "--ratios", "method": "--method", "budgets": "--budgets",
    "rescores": "--rescore-factors", "seeds": "--seeds", "ratio": "--ratio",
}


# Library spellings of a value that the command line spells otherwise, said its way instead.
CLI_SPELLING = {"id_column=None": "--id-column ''", "pass overwrite=True": "pass --overwrite",
                "load it with verify=False (dive.load)": "pass --no-verify",
                "rerun with overwrite=True": "rerun with --overwrite",
                "embeddings_dir is one dataset's": "--embeddings is one dataset's",
                "output_column is an empty name; give a column name, or None for the input's "
                "vector column": "--output-column is empty; give a column name, or leave the "
                "flag out for the input's vector column name"}


def error_line(exc: DiveError | OSError) -> str:
    """The one line an error prints as: a `DiveError` with the flag of the parameter it is
    about added (or its library spelling replaced); file-system trouble naming the path."""
    if isinstance(exc, OSError):
        return describe_os_error(exc)
    text = str(exc)
    for library, cli in CLI_SPELLING.items():
        if library in text:
            return text.replace(library, cli)
    flag = FLAG_OF_PARAM.get(exc.param or "")
    return f"{text} ({flag})" if flag else text


def traceback_if_debug(args: argparse.Namespace) -> None:
    """`--debug` shows the traceback of the error being handled, above its one line: the exit
    status stays 2 (re-raised, it was Python's 1, and the line lost the flag it names)."""
    if args.debug:
        traceback.print_exc()

