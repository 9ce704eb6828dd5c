"""Synthetic results records for the report tests: a realistic grid and a record builder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

FULL = 384
RATIOS = (2, 4, 8, 16)
BUDGETS = ("16", "64", "256", "all")
# Rough shapes of the real curves: (score at full dim, drop per halving) per method.
SHAPES = {
    "scifact": {"frozen": (0.645, 0.0), "truncate": (0.64, 0.045), "random": (0.63, 0.05),
                "pca": (0.64, 0.03), "pca-uncentered": (0.645, 0.028), "dive": (0.66, 0.022)},
    "nfcorpus": {"frozen": (0.316, 0.0), "truncate": (0.31, 0.03), "random": (0.30, 0.035),
                 "pca": (0.31, 0.02), "pca-uncentered": (0.315, 0.017), "dive": (0.318, 0.015)},
}


def record(dataset: str = "scifact", method: str = "pca", dim: int = 96, budget: str = "64",
           seed: int = 0, ndcg: float = 0.5, recall: float | None = None,
           **extra: Any) -> dict[str, Any]:
    """One results record with every required field."""
    r: dict[str, Any] = {
        "dataset": dataset, "model": "all-MiniLM-L6-v2", "method": method, "dim": dim,
        "ratio": FULL // dim, "budget": budget, "seed": seed, "ndcg@10": ndcg,
        "recall@100": min(ndcg + 0.25, 1.0) if recall is None else recall,
        "mrr@10": ndcg - 0.02,
        "fit_seconds": 0.01 * (seed + 1), "n_params": dim * FULL, "config": {"dim": dim},
        "diagnostics": {},
    }
    r.update(extra)
    return r


def grid(datasets: tuple[str, ...] = ("scifact", "nfcorpus"), seeds: tuple[int, ...] = (0, 1, 2),
         budgets: tuple[str, ...] = BUDGETS) -> list[dict[str, Any]]:
    """A full synthetic grid with seed noise; supervised `dive` improves with the budget."""
    rng = np.random.default_rng(0)
    out = []
    for dataset in datasets:
        for budget in budgets:
            gain = {"16": 0.0, "64": 0.005, "256": 0.01, "all": 0.015}[budget]
            for seed in seeds:
                for method, (top, drop) in SHAPES[dataset].items():
                    dims = [FULL] if method == "frozen" else [FULL // r for r in RATIOS]
                    for dim in dims:
                        halvings = np.log2(FULL / dim) - 1 if method != "frozen" else 0
                        score = top - drop * halvings ** 1.3 + (gain if method == "dive" else 0)
                        noise = 0 if method in ("frozen", "truncate", "pca", "pca-uncentered") \
                            else rng.normal(0, 0.006)
                        out.append(record(dataset, method, dim, budget, seed,
                                          round(float(score + noise), 6)))
    return out


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture()
def grid_records() -> list[dict[str, Any]]:
    return grid()


@pytest.fixture()
def make_record():  # type: ignore[no-untyped-def]
    """`record(...)`: one synthetic results record."""
    return record


@pytest.fixture()
def make_grid():  # type: ignore[no-untyped-def]
    """`grid(datasets=..., seeds=..., budgets=...)`: a synthetic results grid."""
    return grid


@pytest.fixture()
def jsonl():  # type: ignore[no-untyped-def]
    """`write_jsonl(path, records)`."""
    return write_jsonl


def byte_row(method: str, dim: int, precision: str, size: int, ndcg: float, *,
             rescore: int = 0, seed: int = 0, budget: str = "64",
             dataset: str = "scifact") -> dict[str, Any]:
    """One results record of a configuration storing `size` bytes per vector."""
    r: dict[str, Any] = {
        "dataset": dataset, "model": "m", "method": method, "dim": dim, "ratio": 384 // dim,
        "budget": budget, "seed": seed, "ndcg@10": ndcg, "recall@100": 0.9, "mrr@10": 0.5,
        "fit_seconds": 0.1, "n_params": 0, "config": {}, "precision": precision,
        "rescore": rescore, "bytes_per_vector": size,
    }
    if rescore:
        r.update(rescore_with="full", rescore_bytes_per_vector=1536)
    return r


# Frozen 0.60. Ours: pca at 96 / 48 dims in three precisions, one funnel; anchors: PQ at 16 and
# 48 bytes (PQ48 beats our 48-byte int8), sentence-transformers int8.
BYTE_RECORDS = [
    byte_row("frozen", 384, "float32", 1536, 0.600),
    byte_row("frozen", 384, "int8", 384, 0.598),
    byte_row("frozen", 384, "binary", 48, 0.540),
    byte_row("pca", 96, "float32", 384, 0.580),
    byte_row("pca", 96, "int8", 96, 0.581),
    byte_row("pca", 96, "binary", 12, 0.400),
    byte_row("pca", 96, "binary", 12, 0.590, rescore=10),
    byte_row("pca", 48, "int8", 48, 0.550),
    byte_row("pca", 48, "float32", 192, 0.549),
    byte_row("faiss-pq:16", 384, "pq", 16, 0.500),
    byte_row("faiss-pq:48", 384, "pq", 48, 0.570),
    byte_row("faiss-pq:48", 384, "pq", 48, 0.599, rescore=10),
    byte_row("st-int8", 384, "int8", 384, 0.590),
]


@pytest.fixture()
def byte_records() -> list[dict[str, Any]]:
    """Hand-made records at several bytes per vector (see `BYTE_RECORDS`)."""
    return [dict(r) for r in BYTE_RECORDS]


@pytest.fixture(name="byte_row")
def byte_row_fixture():  # type: ignore[no-untyped-def]
    """`byte_row(method, dim, precision, bytes, ndcg, ...)`: one record with its bytes."""
    return byte_row
