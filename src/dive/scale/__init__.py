"""Compress embedding stores larger than memory: `.npy`, Parquet and folders of shards.

`compress_store` streams a store through a fitted compressor's numpy runtime in fixed-size
chunks, resumably; `dive.integrations.ray.compress_dataset` does the same on a Ray Dataset
across machines. Left out here: the Ray engine itself (optional extra `ray`).
"""

from __future__ import annotations

from dive.scale.model import OUTPUT_DTYPES
from dive.scale.stream import CompressResult, compress_store

__all__ = ["OUTPUT_DTYPES", "CompressResult", "compress_store"]
