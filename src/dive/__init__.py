"""dive: compress embedding vectors for vector search with few labelled queries.

The pipeline reads as the package layout: `data` (BEIR loading, label budgets) -> `embed`
(encoding and the embeddings folder) -> `compressors` (DIVE, the baselines, classical) ->
`evaluate` (exact search, metrics, the protocol grid) -> `report` -> `export` -> `scale`.
Heavy modules are imported lazily, so `import dive` stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "load", "save"]

# name -> module holding it, imported on first access (PEP 562) to keep `import dive` light.
_LAZY = {"load": "dive.export.folder", "save": "dive.export.folder"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dive' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
