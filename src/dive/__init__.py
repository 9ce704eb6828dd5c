"""dive: compress embedding vectors for vector search with few labelled queries.

The pipeline reads as the package layout: `data` (BEIR loading, label budgets) -> `embed`
(encoding and the embeddings folder) -> `compressors` (DIVE, the baselines, classical) ->
`evaluate` (exact search, metrics, the protocol grid) -> `report` -> `export` -> `scale`.
Heavy modules are imported lazily, so `import dive` stays cheap. The Python API in a few calls:
`dive.embed` (texts or a dataset to embeddings), `dive.fit` (a compressor from a dataset or
arrays), `dive.save` / `dive.load` (its folder); see `dive.api`.
"""

from __future__ import annotations

import sys

if sys.platform == "win32":  # file locks (fcntl) and POSIX signals: a traceback deep inside
    raise ImportError("dive runs on Linux and macOS (it needs POSIX file locks and signals); "
                      "on Windows, run it under WSL")

# typing only for the checker: the console script (`dive.__main__`) imports this package
# before it can catch a Ctrl-C, so it imports nothing
TYPE_CHECKING = False
if TYPE_CHECKING:  # the lazy names' real signatures, for the checker (`__getattr__` is hidden)
    from dive.api import embed as embed
    from dive.api import fit as fit
    from dive.export.folder import load as load
    from dive.export.folder import save as save

__version__ = "0.1.0"

__all__ = ["__version__", "embed", "fit", "load", "save"]

# name -> module holding it, imported on first access (PEP 562) to keep `import dive` light.
# `embed` is the package `dive.embed` itself, which is callable (see its docstring).
_LAZY = {"load": "dive.export.folder", "save": "dive.export.folder", "fit": "dive.api",
         "embed": "dive.embed"}


if not TYPE_CHECKING:  # a checker sees the names above, so a misspelt one is an error

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'dive' has no attribute {name!r}")
        import importlib

        imported = importlib.import_module(module)
        return imported if module == f"dive.{name}" else getattr(imported, name)


def __dir__() -> list[str]:
    """The module's names and the lazy ones (tab completion and `dir(dive)` missed them)."""
    return sorted({*globals(), *_LAZY})
