"""dive: compress embedding vectors for vector search with few labelled queries.

The pipeline reads as the package layout: `data` (BEIR loading, label budgets) -> `embed`
(encoding and the embeddings folder) -> `compressors` (DIVE, the baselines, classical) ->
`evaluate` (exact search, metrics, the protocol grid) -> `report` -> `export` -> `scale`.
Heavy modules are imported lazily, so `import dive` stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
