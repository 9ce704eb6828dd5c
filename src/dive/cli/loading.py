"""The saved compressor a verb reads, and the warning when its input vectors name another
embedding model than the one it was fitted on."""

from __future__ import annotations

import argparse
import contextlib
import logging
from pathlib import Path
from typing import Any

from dive.errors import DiveError


def load_compressor(args: argparse.Namespace) -> Any:
    """The saved compressor at `args.model_dir`, its checksums checked unless --no-verify."""
    from dive.export.folder import load

    return load(args.model_dir, verify=not args.no_verify)


def warn_of_another_model(where: str | Path, made_with: Any, compressor: Any) -> None:
    """Warn when embeddings made with one model go through a compressor fitted on another
    model's: of the same width, nothing else tells (the hits are unrelated)."""
    from dive.embed.encode import same_model

    trained_on = compressor.summary.get("model")
    if trained_on and made_with and not same_model(str(made_with), str(trained_on)):
        logging.getLogger(__name__).warning(
            "%s: embeddings made with %s, compressor fitted on %s embeddings", where,
            made_with, trained_on)


def warn_of_another_model_beside(src: Path, compressor: Any) -> None:
    """`warn_of_another_model` for a `.npy` of an embeddings folder, by its meta.json (a
    file elsewhere names no model)."""
    from dive.embed.store import META_FILE, is_embeddings_folder, read_meta

    if src.suffix.lower() != ".npy" or not is_embeddings_folder(src.parent):
        return
    with contextlib.suppress(OSError, DiveError):  # an unreadable one says nothing
        warn_of_another_model(src, read_meta(src.parent / META_FILE).get("model"), compressor)

