"""FAISS indexes over compressed vectors, carrying the document ids.

`build_index` puts compressed (unit-norm) vectors in an inner-product index: `flat` (exact,
ranks as `dive.evaluate.search.top_k` does) or `hnsw` (approximate, graph-based). FAISS knows
rows only, so `SearchIndex` keeps the ids beside it and `save_index` writes them to a sidecar
text file, `<file>.ids.txt`, one id per line; `load_index` checks that the two agree.
`search_index` returns (rows, scores) like `top_k`; `SearchIndex.ids` maps rows to ids.

Left out: IVF/PQ indexes and GPU FAISS (build them from the compressed vectors directly), and
adding to or deleting from a saved index.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dive._io import atomic_open
from dive.arrays import as_embeddings
from dive.errors import DataError, DiveError

logger = logging.getLogger(__name__)

IndexKind = Literal["flat", "hnsw"]
INDEX_KINDS: tuple[IndexKind, ...] = ("flat", "hnsw")
IDS_SUFFIX = ".ids.txt"


def _import_faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise DiveError("FAISS indexes need faiss-cpu; install dive-compress[faiss]") from None
    return faiss


@dataclass
class SearchIndex:
    """A FAISS index and the id of each of its rows."""

    index: Any  # faiss.Index (inner product)
    ids: list[str]

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def __len__(self) -> int:
        return int(self.index.ntotal)


def ids_path(file: str | os.PathLike[str]) -> Path:
    """The sidecar ids file of an index file."""
    path = Path(file)
    return path.with_name(path.name + IDS_SUFFIX)


def _check_ids(ids: Sequence[object], n: int, where: str) -> list[str]:
    out = [str(i) for i in ids]
    if len(out) != n:
        raise DataError(f"{where}: {len(out)} ids for {n} vectors")
    seen: dict[str, int] = {}
    for row, ident in enumerate(out):
        if not ident or "\n" in ident or "\r" in ident:
            raise DataError(f"{where}: row {row}: id {ident!r} is empty or contains a newline")
        if ident in seen:
            raise DataError(f"{where}: row {row} repeats id {ident!r} (first at row {seen[ident]})")
        seen[ident] = row
    return out


def build_index(
    compressed: np.ndarray,
    kind: IndexKind = "flat",
    *,
    ids: Sequence[str] | None = None,
    hnsw_m: int = 32,
    ef_construction: int = 200,
    ef_search: int = 128,
) -> SearchIndex:
    """An inner-product index over `compressed` (n, d); ids default to the row numbers.

    `hnsw_m`, `ef_construction` and `ef_search` tune the HNSW graph (ignored for `flat`);
    `ef_search` is saved with the index.
    """
    if kind not in INDEX_KINDS:
        raise DiveError(f"index kind {kind!r} is not one of {', '.join(INDEX_KINDS)}")
    faiss = _import_faiss()
    x = as_embeddings(compressed, name="compressed vectors")
    if x.shape[0] == 0:
        raise DataError("compressed vectors: empty (0 rows); nothing to index")
    row_ids = _check_ids(ids if ids is not None else range(x.shape[0]), x.shape[0], "ids")
    d = x.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
    else:
        index = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
    index.add(x)
    logger.info("built %s index: %d vectors of dimension %d", kind, x.shape[0], d)
    return SearchIndex(index, row_ids)


def save_index(index: SearchIndex, file: str | os.PathLike[str]) -> Path:
    """Write the index to `file` and its ids to `<file>.ids.txt`, each atomically."""
    faiss = _import_faiss()
    target = Path(file)
    ids = _check_ids(index.ids, len(index), "ids")
    data = faiss.serialize_index(index.index).tobytes()
    # Both are written to temporary files before either is renamed, so a bad path (a folder
    # at FILE) leaves nothing behind. The ids are renamed first (the inner block exits first):
    # a crash between the two renames leaves a count mismatch load_index reports.
    with atomic_open(target, "wb") as index_file, atomic_open(ids_path(target)) as ids_file:
        index_file.write(data)
        ids_file.write("".join(f"{i}\n" for i in ids))
    return target


def load_index(file: str | os.PathLike[str]) -> SearchIndex:
    """Read an index written by `save_index`, checking it against its ids file."""
    faiss = _import_faiss()
    path = Path(file)
    if not path.is_file():
        raise DataError(f"{path}: no such index file")
    sidecar = ids_path(path)
    if not sidecar.is_file():
        raise DataError(f"{sidecar}: missing (the ids of {path.name}'s rows)")
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise DataError(f"{path}: not a readable FAISS index ({first})") from None
    try:
        text = sidecar.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{sidecar}: not UTF-8 text ({exc})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    ids = _check_ids([line.rstrip("\r") for line in lines], int(index.ntotal), str(sidecar))
    return SearchIndex(index, ids)


def search_index(
    index: SearchIndex, queries: np.ndarray, k: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k rows of every query: (rows int64 (m, k'), scores float32 (m, k')), best first.

    k' = min(k, len(index)). HNSW may return fewer than k' hits for a query; the missing
    slots hold row -1 and score -inf.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    q = as_embeddings(queries, name="queries", dim=index.dim)
    kk = min(k, len(index))
    scores, rows = index.index.search(q, kk)
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    scores[rows < 0] = -np.inf
    return rows, scores
