"""The Python API's types as a user's checker sees them: `make test` runs mypy on this file
(pyproject's `files`), and a wrong type fails there. `dive.embed` was "Module not callable"
to mypy, and `dive.fit`, `load` and `save` were `Any` (a misspelt name passed unchecked)."""

from __future__ import annotations

from typing import assert_type

import numpy as np

import dive
import dive.embed.store  # a user's import of the package `dive.embed` keeps `dive.embed` callable
from dive.compressors.base import Compressor
from dive.embed import DEFAULT_MODEL  # the package's names, as its docstring says to import them
from dive.embed.store import Embeddings
from dive.export.folder import LoadedCompressor


def never_called() -> None:
    """Checked, never run (it would embed and fit)."""
    assert_type(dive.embed(["how do I keep bread fresh?"]), np.ndarray)
    assert_type(dive.embed("scifact", "runs/emb"), Embeddings)
    assert_type(dive.fit("scifact", method="pca", dim=96), Compressor)
    assert_type(dive.load("runs/pca96"), LoadedCompressor)
    assert_type(DEFAULT_MODEL, str)
    misspelt = dive.fitt  # type: ignore[attr-defined]  # unused (an error) if any name passed
    del misspelt
