"""Exact (brute-force) inner-product retrieval in bounded memory, over floats or codes.

`top_k` streams query blocks against corpus blocks and keeps a running top-k, so memory is
O(chunk_size^2 + m*k) however large the corpus; `search` wraps it into the run dict the metrics
read. Ties are broken by corpus row (lower row first), which makes the result independent of the
chunk size. `top_k_codes` is the same search over quantized codes (`dive.compressors.precision`):
each corpus block is decoded as it streams past, so only the codes are held; float32 queries
score int8/float16 codes by the inner product with the values the codes stand for, and binary
codes by the +-1 inner product of the query's sign bits (d - 2 * Hamming distance).
`rescore` is the second stage of a funnel: it re-ranks each query's candidates by the inner
product with float32 vectors (the compressed float ones or the original full ones), reading only
the candidates' rows, which it L2-normalises as every step normalises its inputs (unit rows
pass unchanged), so vectors imported off unit norm rescore by cosine like the first stage.
Left out: approximate indexes (FAISS, HNSW) and cosine normalisation in `top_k` — callers pass
vectors already normalised if they want cosine similarity.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container, Sequence

import numpy as np

from dive.arrays import (
    BadRowError,
    as_embeddings,
    as_unit_rows,
    check_floating,
    positive_integer,
)
from dive.compressors.precision import Quantizer
from dive.errors import DataError, DiveError, kind_of, quoted

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


def _float_rows(x: object, name: str, dim: int | None = None) -> np.ndarray:
    """`x` as float32 (n, dim) rows (`as_embeddings`), refusing integer or bool arrays: int8
    or binary codes given where float vectors go were ranked as if they were vectors."""
    check_floating(x, name=name)
    return as_embeddings(x, name=name, dim=dim)


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
    descending and, among equal scores, by corpus row ascending. k' = min(k, n_corpus); a
    query whose excluded row leaves fewer than k' rows ends with row -1, score -inf (only when
    k >= n_corpus). `exclude[i]` is a corpus row query i must never retrieve (-1 for none),
    used for BEIR's ignore_identical_ids. Queries and corpus are processed in blocks of
    `chunk_size` rows, so the full m x n score matrix is never held.
    """
    q = _float_rows(queries, "queries")
    c = _float_rows(corpus, "corpus", q.shape[1])
    return _stream_top_k(q, c, k, exclude, chunk_size, None)


def top_k_codes(
    queries: np.ndarray,
    codes: np.ndarray,
    quantizer: Quantizer,
    k: int = 100,
    *,
    exclude: np.ndarray | None = None,
    chunk_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """`top_k` of float32 `queries` (m, d) over `codes` (n, code width) made by `quantizer`.

    Scores are `quantizer.query_vectors(queries) @ quantizer.decode(codes).T`: the dequantised
    inner product (int8, float16), or d - 2 * Hamming distance (binary), with the same order,
    ties and `exclude` as `top_k`. Codes are decoded one block of `chunk_size` rows at a time.
    """
    if not isinstance(quantizer, Quantizer):  # None was an AttributeError deep inside
        raise DiveError(f"top_k_codes: quantizer is {kind_of(quantizer)}; expected the "
                        "Quantizer that made the codes (runtime.quantizer of a saved model)")
    check_floating(queries, name="queries")
    q = quantizer.query_vectors(queries)  # which checks their shape and values
    c = quantizer.check_codes(codes, name="corpus codes")
    return _stream_top_k(q, c, k, exclude, chunk_size, quantizer.decode)


def _stream_top_k(
    q: np.ndarray,
    c: np.ndarray,
    k: int,
    exclude: np.ndarray | None,
    chunk_size: int,
    decode: Callable[[np.ndarray], np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray]:
    # DiveError, as search_index and ndcg_at_k raise (k=2.5 was a TypeError from numpy)
    k, chunk_size = positive_integer(k, "k"), positive_integer(chunk_size, "chunk_size")
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
    kk = min(k, n)
    indices = np.empty((m, kk), dtype=np.int64)
    scores = np.empty((m, kk), dtype=np.float32)
    for q0 in range(0, m, chunk_size):
        qb = q[q0 : q0 + chunk_size]
        best = np.zeros((qb.shape[0], 0), dtype=np.uint64)
        for c0 in range(0, n, chunk_size):
            rows = c[c0 : c0 + chunk_size]
            block = qb @ (rows if decode is None else decode(rows)).T
            keys = _score_keys(block, c0)
            if excl is not None:
                e = excl[q0 : q0 + chunk_size] - c0
                hit = np.flatnonzero((e >= 0) & (e < block.shape[1]))
                # Key 0 is below every real key (a real key's high half is at least that of
                # -inf): real rows push it out, and where too few are left it comes last.
                keys[hit, e[hit]] = 0
            best = _largest(np.concatenate([best, _largest(keys, kk)], axis=1), kk)
        best = np.ascontiguousarray(np.sort(best, axis=1)[:, ::-1])
        rows, vals = _decode_keys(best)
        empty = best == 0  # an excluded row in a query's last slot: no row there
        rows[empty], vals[empty] = -1, -np.inf
        indices[q0 : q0 + qb.shape[0]] = rows
        scores[q0 : q0 + qb.shape[0]] = vals
    return indices, scores


def rescore(
    queries: np.ndarray,
    vectors: np.ndarray,
    candidates: np.ndarray,
    k: int,
    *,
    max_floats: int = 1 << 22,
    name: str = "rescoring vectors",
) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank each query's `candidates` (m, K) rows by the inner product with `vectors`.

    `queries` (m, D) and `vectors` (n, D) are float vectors in the same space (the compressed
    float outputs, or the original embeddings); `vectors` may be memory-mapped, as only the
    candidates' rows are read. Both are L2-normalised as `as_unit_rows` does (unit rows pass
    unchanged): a first stage ranks by cosine, so un-normalised full vectors would rank by
    their norms instead. A candidate row with NaN/inf or norm 0 is a `DataError` naming `name`
    (the vectors' file) and its row. Returns the best k' = min(k, K) of each row of candidates,
    (indices int64 (m, k'), scores float32 (m, k')), by score descending, ties by row
    ascending; a candidate -1 (none) stays last with score -inf. Queries go in blocks whose
    gathered rows hold at most `max_floats` values, so memory does not grow with m.
    """
    k = positive_integer(k, "k")
    check_floating(queries, name="rescoring queries")
    q = as_unit_rows(queries, name="rescoring queries")
    cand = np.asarray(candidates)
    if cand.ndim != 2 or cand.shape[0] != q.shape[0] or cand.dtype.kind not in "iu":
        raise DataError(f"candidates: expected {q.shape[0]} rows of integer row indices, got "
                        f"shape {cand.shape} dtype {cand.dtype}")
    if not isinstance(vectors, np.ndarray):  # a list, a tensor (a memmap stays one: rows read)
        vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[1] != q.shape[1] or vectors.dtype.kind != "f":
        raise DataError(f"{name}: expected float (n, {q.shape[1]}) rows, got shape "
                        f"{vectors.shape} dtype {vectors.dtype}")
    n = vectors.shape[0]
    cand = cand.astype(np.int64)
    if cand.size and (cand.max() >= n or cand.min() < -1):
        raise DataError(f"candidates: row indices outside [-1, {n}) for {n} rescoring vectors")
    kk = min(k, cand.shape[1])
    indices = np.empty((q.shape[0], kk), dtype=np.int64)
    scores = np.empty((q.shape[0], kk), dtype=np.float32)
    step = max(1, max_floats // max(1, cand.shape[1] * q.shape[1]))
    for q0 in range(0, q.shape[0], step):
        rows = cand[q0 : q0 + step]
        valid = rows >= 0
        gathered = np.asarray(vectors[np.where(valid, rows, 0)], dtype=np.float32)
        try:  # only real candidates: a -1 gathered row 0, which may be any row
            gathered[valid] = as_unit_rows(gathered[valid], name=name)
        except BadRowError as exc:
            raise BadRowError(name, int(rows[valid][exc.row]), exc.problem) from None
        block = np.einsum("bkd,bd->bk", gathered, q[q0 : q0 + step])
        block[~valid] = -np.inf
        order = np.lexsort((np.where(valid, rows, n), -block), axis=-1)[:, :kk]
        indices[q0 : q0 + step] = np.take_along_axis(rows, order, axis=1)
        scores[q0 : q0 + step] = np.take_along_axis(block, order, axis=1)
    return indices, scores


def identical_id_rows(
    query_ids: Sequence[str], corpus_ids: Sequence[str], only: Container[str] | None = None
) -> np.ndarray:
    """Per query, the corpus row with its own id (-1 if none, or if the query is not in
    `only`): `top_k`'s `exclude` for BEIR's ignore_identical_ids. Repeated ids are an error."""
    row_of = _row_of(corpus_ids, "corpus_ids")
    _row_of(query_ids, "query_ids")
    return np.array([row_of.get(qid, -1) if only is None or qid in only else -1
                     for qid in query_ids], dtype=np.int64)


def _row_of(ids: Sequence[str], name: str) -> dict[str, int]:
    """Each id's row; a repeated id is a `DataError` naming both rows."""
    row_of: dict[str, int] = {}
    for row, one in enumerate(ids):
        if one in row_of:
            raise DataError(f"{name}: row {row} repeats id {quoted(one)} (first at row "
                            f"{row_of[one]})")
        row_of[one] = row
    return row_of


def to_run(
    query_ids: Sequence[str], corpus_ids: Sequence[str], indices: np.ndarray, scores: np.ndarray
) -> dict[str, dict[str, float]]:
    """The run dict (query id -> doc id -> score) of a search's rows and scores."""
    run: dict[str, dict[str, float]] = {}
    for qid, rows, vals in zip(query_ids, indices.tolist(), scores.tolist(), strict=True):
        run[qid] = {corpus_ids[r]: v for r, v in zip(rows, vals, strict=True) if r >= 0}
    return run


def search(
    queries: np.ndarray,
    corpus: np.ndarray,
    query_ids: Sequence[str],
    corpus_ids: Sequence[str],
    k: int = 100,
    chunk_size: int = 1024,
    *,
    ignore_identical_ids: bool = False,
) -> dict[str, dict[str, float]]:
    """Run dict (query id -> doc id -> score) of the exact top-k, for the metrics.

    With `ignore_identical_ids` (BEIR's option, for queries that are documents of the corpus
    too) a query never retrieves the document with its own id. Scores are the float32 inner
    products as Python floats. At the cut-off, tied documents are kept in corpus-row order
    (see `top_k`); the metrics then order the kept ones as trec_eval does.
    """
    q = _float_rows(queries, "queries")
    c = _float_rows(corpus, "corpus", q.shape[1])
    check_ids(query_ids, corpus_ids, q.shape[0], c.shape[0])
    exclude = identical_id_rows(query_ids, corpus_ids) if ignore_identical_ids else None
    indices, scores = top_k(q, c, k, exclude=exclude, chunk_size=chunk_size)
    return to_run(query_ids, corpus_ids, indices, scores)


def check_ids(query_ids: Sequence[str], corpus_ids: Sequence[str], m: int, n: int) -> None:
    """One id per query row (m) and per corpus row (n), none repeated."""
    for name, ids in (("query_ids", query_ids), ("corpus_ids", corpus_ids)):
        if isinstance(ids, (str, bytes)):  # 'abc' was three ids, one a character
            raise DataError(f"{name}: a {type(ids).__name__}, not a sequence of ids")
    if len(query_ids) != m:
        raise DataError(f"query_ids: {len(query_ids)} ids for {m} query rows")
    if len(corpus_ids) != n:
        raise DataError(f"corpus_ids: {len(corpus_ids)} ids for {n} corpus rows")
    _row_of(corpus_ids, "corpus_ids")
    _row_of(query_ids, "query_ids")
