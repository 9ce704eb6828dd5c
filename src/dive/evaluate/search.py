"""Exact (brute-force) inner-product retrieval in bounded memory.

`top_k` streams query blocks against corpus blocks and keeps a running top-k, so memory is
O(chunk_size^2 + m*k) however large the corpus; `search` wraps it into the run dict the metrics
read. Ties are broken by corpus row (lower row first), which makes the result independent of the
chunk size. Left out: approximate indexes (FAISS, HNSW) and cosine normalisation — callers pass
vectors already normalised if they want cosine similarity.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from dive.arrays import as_embeddings
from dive.errors import DataError

logger = logging.getLogger(__name__)

_LOW32 = np.uint64(0xFFFFFFFF)
_SIGN32 = np.uint32(0x80000000)
_SHIFT = np.uint64(32)


def _score_keys(scores: np.ndarray, offset: int) -> np.ndarray:
    """Unique uint64 keys that order (score descending, row ascending) as plain integers.

    The high half is the float32 score mapped to an order-preserving unsigned integer, the low
    half the complement of the corpus row. Selecting on these keys instead of on scores makes
    argpartition's choice among exactly tied scores deterministic, whatever the block layout.
    """
    # +0.0 turns -0.0 into +0.0 so that the two zeros stay tied, as they compare equal.
    bits = (scores + np.float32(0.0)).view(np.uint32)
    ordered = np.where(bits & _SIGN32, ~bits, bits | _SIGN32).astype(np.uint64)
    rows = np.arange(offset, offset + scores.shape[1], dtype=np.uint64)
    return (ordered << _SHIFT) | (~rows & _LOW32)


def _decode_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of `_score_keys`: (rows int64, scores float32)."""
    rows = (~keys & _LOW32).astype(np.int64)
    ordered = (keys >> _SHIFT).astype(np.uint32)
    bits = np.where(ordered & _SIGN32, ordered ^ _SIGN32, ~ordered)
    return rows, np.ascontiguousarray(bits.view(np.float32))


def _largest(keys: np.ndarray, k: int) -> np.ndarray:
    """The k largest keys of each row, unordered."""
    if keys.shape[1] <= k:
        return keys
    # ~key turns "largest" into "smallest" for unsigned integers without overflow.
    part = np.argpartition(~keys, k - 1, axis=1)[:, :k]
    return np.take_along_axis(keys, part, axis=1)


def top_k(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int = 100,
    *,
    exclude: np.ndarray | None = None,
    chunk_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k of every query over the corpus.

    Returns (indices int64 (m, k'), scores float32 (m, k')), each row sorted by score
    descending and, among equal scores, by corpus row ascending. k' = min(k, n_corpus), or
    min(k, n_corpus - 1) when `exclude` removes a row from some query, so every returned index
    is a real, allowed row. `exclude[i]` is a corpus row query i must never retrieve (-1 for
    none), used for BEIR's ignore_identical_ids. Queries and corpus are processed in blocks of
    `chunk_size` rows, so the full m x n score matrix is never held.
    """
    q = as_embeddings(queries, name="queries")
    c = as_embeddings(corpus, name="corpus", dim=q.shape[1])
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    m, n = q.shape[0], c.shape[0]
    if n == 0:
        raise DataError("corpus: no rows to search")
    if n >= 2**32:
        raise DataError(f"corpus: {n} rows exceeds the 2**32 rows top_k can index")

    excl: np.ndarray | None = None
    if exclude is not None:
        excl = np.asarray(exclude)
        if excl.shape != (m,) or excl.dtype.kind not in "iu":
            raise DataError(
                f"exclude: expected {m} integer row indices (one per query), "
                f"got shape {excl.shape} dtype {excl.dtype}"
            )
        excl = excl.astype(np.int64)
        bad = np.flatnonzero((excl < -1) | (excl >= n))
        if bad.size:
            i = int(bad[0])
            raise DataError(f"exclude: row {i} is {int(excl[i])}, outside [-1, {n})")
        if not (excl >= 0).any():
            excl = None
    kk = min(k, n - 1 if excl is not None else n)
    if kk == 0:
        # A one-row corpus whose only row is excluded: nothing can be returned.
        return np.zeros((m, 0), dtype=np.int64), np.zeros((m, 0), dtype=np.float32)

    indices = np.empty((m, kk), dtype=np.int64)
    scores = np.empty((m, kk), dtype=np.float32)
    for q0 in range(0, m, chunk_size):
        qb = q[q0 : q0 + chunk_size]
        best = np.zeros((qb.shape[0], 0), dtype=np.uint64)
        for c0 in range(0, n, chunk_size):
            block = qb @ c[c0 : c0 + chunk_size].T
            keys = _score_keys(block, c0)
            if excl is not None:
                e = excl[q0 : q0 + chunk_size] - c0
                hit = np.flatnonzero((e >= 0) & (e < block.shape[1]))
                # Key 0 is below every real key (a real key's high half is at least that of
                # -inf), and k' <= n - 1 guarantees enough real rows push it out.
                keys[hit, e[hit]] = 0
            best = _largest(np.concatenate([best, _largest(keys, kk)], axis=1), kk)
        best = np.ascontiguousarray(np.sort(best, axis=1)[:, ::-1])
        rows, vals = _decode_keys(best)
        indices[q0 : q0 + qb.shape[0]] = rows
        scores[q0 : q0 + qb.shape[0]] = vals
    return indices, scores


def search(
    queries: np.ndarray,
    corpus: np.ndarray,
    query_ids: Sequence[str],
    corpus_ids: Sequence[str],
    k: int = 100,
    chunk_size: int = 1024,
) -> dict[str, dict[str, float]]:
    """Run dict (query id -> doc id -> score) of the exact top-k, for the metrics.

    A query never retrieves a document with its own id (BEIR's ignore_identical_ids). Scores
    are the float32 inner products as Python floats. At the cut-off, tied documents are kept in
    corpus-row order (see `top_k`); the metrics then order the kept ones as trec_eval does.
    """
    q = as_embeddings(queries, name="queries")
    c = as_embeddings(corpus, name="corpus", dim=q.shape[1])
    if len(query_ids) != q.shape[0]:
        raise DataError(f"query_ids: {len(query_ids)} ids for {q.shape[0]} query rows")
    if len(corpus_ids) != c.shape[0]:
        raise DataError(f"corpus_ids: {len(corpus_ids)} ids for {c.shape[0]} corpus rows")
    row_of: dict[str, int] = {}
    for row, doc_id in enumerate(corpus_ids):
        if doc_id in row_of:
            raise DataError(
                f"corpus_ids: row {row} repeats id {doc_id!r} (first at row {row_of[doc_id]})"
            )
        row_of[doc_id] = row
    if len(set(query_ids)) != len(query_ids):
        seen: set[str] = set()
        for row, qid in enumerate(query_ids):
            if qid in seen:
                raise DataError(f"query_ids: row {row} repeats id {qid!r}")
            seen.add(qid)
    exclude = np.array([row_of.get(qid, -1) for qid in query_ids], dtype=np.int64)
    indices, scores = top_k(q, c, k, exclude=exclude, chunk_size=chunk_size)
    run: dict[str, dict[str, float]] = {}
    for qid, rows, vals in zip(query_ids, indices.tolist(), scores.tolist(), strict=True):
        run[qid] = {corpus_ids[r]: v for r, v in zip(rows, vals, strict=True)}
    return run
