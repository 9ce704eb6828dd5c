"""Bridges to other engines; each module imports its optional dependency lazily.

`ray`: compress a Ray Dataset's vector column across workers (`compress_dataset`).
`lancedb`: compress a LanceDB table's vector column into a new table or column, resumably
(`compress_table`), and search it, optionally rescoring with the full vectors (`search`).
Spark and Dask need no module: docs/scale.md shows how to call the same numpy runtime from
them.
"""

from __future__ import annotations
