"""Datasets: BEIR-layout loading (`beir`), lookup by name and download (`download`).

Label budgets and query splits live in `dive.data.splits`; embedding lives in `dive.embed`.
"""

from __future__ import annotations

from dive.data.beir import SPLITS, Dataset, Qrels, load_beir
from dive.data.download import (
    BEIR_URL,
    default_cache_dir,
    download_beir,
    load_dataset,
    resolve_dataset,
)

__all__ = [
    "BEIR_URL",
    "SPLITS",
    "Dataset",
    "Qrels",
    "default_cache_dir",
    "download_beir",
    "load_beir",
    "load_dataset",
    "resolve_dataset",
]
