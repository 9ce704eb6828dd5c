"""Bridges to other engines; each module imports its optional dependency lazily.

`ray`: compress a Ray Dataset's vector column across workers (`compress_dataset`). Spark and
Dask need no module: docs/scale.md shows how to call the same numpy runtime from them.
"""

from __future__ import annotations
