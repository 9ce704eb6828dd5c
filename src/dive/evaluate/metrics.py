"""Retrieval metrics with trec_eval's conventions (checked against pytrec_eval to 1e-6).

The conventions, as pytrec_eval (trec_eval 9) applies them:
- A run is ordered by score descending, ties by document id descending (byte order). Scores
  are compared as float32, as trec_eval stores them, so scores equal in float32 tie. The run
  itself is the search's top k (`dive.evaluate.search`), which keeps the lower corpus row of
  documents tied at its k-th place: where trec_eval would rank the whole corpus, a document
  tied at rank k (100 for Recall@100) with one left out may count otherwise (NFCorpus has a
  query whose two duplicate documents tie at rank 100).
- nDCG is linear gain: gain = grade, discount log2(rank + 1) with rank from 1. Grades <= 0
  give no gain. The ideal DCG uses every judged grade > 0 of the query, truncated at k, whether
  or not the run retrieved those documents. A query with no positive grade scores 0.
- Relevant (recall, MRR) means grade > 0. Recall@k = relevant retrieved in the top k / all
  relevant judged (0 when none is judged relevant). MRR@k = 1 / rank of the first relevant
  document within the top k, 0 if there is none (trec_eval's recip_rank on the run cut at k).
- Queries evaluated: those in the run and in the qrels with at least one judgement (of any
  grade). Queries judged only non-relevant count, with 0; qrels queries missing from the run
  are skipped (pytrec_eval's behaviour, unlike `trec_eval -c`).

Each metric turns the run into a (queries x k) matrix of grades once, then is a few numpy
lines on it. Left out: other cut-offs' names, MAP, significance tests; `ndcg_from_rankings` is
the fast path on corpus-row rankings for validation during training.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Mapping, Sequence

import numpy as np

from dive.arrays import is_integer
from dive.errors import DataError

logger = logging.getLogger(__name__)

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]


def _check_k(k: int) -> None:
    if not is_integer(k) or k < 1:
        raise DataError(f"k must be an integer >= 1, got {k!r}")


def _discounts(k: int) -> np.ndarray:
    """1 / log2(rank + 1) for ranks 1..k."""
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def _trec_top(qid: str, scores: Mapping[str, float], k: int) -> list[str]:
    """The first k document ids of one query's run, in trec_eval order."""
    ids = list(scores)
    try:
        values = np.fromiter(scores.values(), dtype=np.float64, count=len(ids))
    except (TypeError, ValueError) as exc:
        raise DataError(f"run: query {qid!r} has a non-numeric score ({exc})") from None
    if np.isnan(values).any():
        doc = ids[int(np.flatnonzero(np.isnan(values))[0])]
        raise DataError(f"run: query {qid!r}, document {doc!r}: score is NaN")
    # trec_eval keeps scores as C floats: round to float32 so that what ties there ties here.
    with np.errstate(over="ignore"):
        values32 = values.astype(np.float32).tolist()
    # Ids are unique, so (score, id) pairs are too and the order is total.
    return [doc for _, doc in heapq.nlargest(k, zip(values32, ids, strict=True))]


def _is_grade(value: object) -> bool:
    """A finite real number, not a bool (NaN would score 0, inf would make nDCG NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int beyond float's range (10**400): a traceback, not a grade
        return False


def _evaluated(run: Run, qrels: Qrels) -> list[str]:
    for name, value in (("run", run), ("qrels", qrels)):  # TREC triples read as no query
        if not isinstance(value, Mapping):
            raise DataError(f"{name}: expected {{query_id: {{doc_id: "
                            f"{'score' if name == 'run' else 'grade'}}}}}, got "
                            f"{type(value).__name__}")
    qids = [qid for qid in run if qrels.get(qid)]
    for qid in qids:  # a list of pairs or text grades failed deep inside (AttributeError)
        judged, ranked = qrels[qid], run[qid]
        if not isinstance(judged, Mapping) or not all(map(_is_grade, judged.values())):
            raise DataError(f"qrels: query {qid!r}: expected {{doc_id: grade}} with finite "
                            f"numeric grades, got {judged!r:.80}")
        if not isinstance(ranked, Mapping):  # a ranked list of ids: AttributeError inside
            raise DataError(f"run: query {qid!r}: expected {{doc_id: score}}, got "
                            f"{type(ranked).__name__} {ranked!r:.60}")
    return qids


def _grades(run: Run, qrels: Qrels, qids: Sequence[str], k: int) -> np.ndarray:
    """(len(qids), k) float64 grades of the top-k retrieved documents; 0 for unjudged/absent."""
    out = np.zeros((len(qids), k), dtype=np.float64)
    for i, qid in enumerate(qids):
        judged = qrels[qid]
        top = _trec_top(qid, run[qid], k)
        out[i, : len(top)] = [judged.get(doc, 0) for doc in top]
    return out


def _ideal(qrels: Qrels, qids: Sequence[str], k: int) -> np.ndarray:
    """(len(qids), k) positive grades of each query sorted descending, 0-padded."""
    out = np.zeros((len(qids), k), dtype=np.float64)
    for i, qid in enumerate(qids):
        best = heapq.nlargest(k, (g for g in qrels[qid].values() if g > 0))
        out[i, : len(best)] = best
    return out


def _num_relevant(qrels: Qrels, qids: Sequence[str]) -> np.ndarray:
    return np.array([sum(1 for g in qrels[q].values() if g > 0) for q in qids], dtype=np.float64)


def _ndcg(grades: np.ndarray, ideal: np.ndarray) -> np.ndarray:
    """Per-row nDCG from retrieved grades and ideal grades, both (m, <=k) and rank-ordered."""
    dcg = np.clip(grades, 0.0, None) @ _discounts(grades.shape[1])
    idcg = ideal @ _discounts(ideal.shape[1])
    return np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)


def _recall(grades: np.ndarray, num_rel: np.ndarray) -> np.ndarray:
    hits = (grades > 0).sum(axis=1).astype(np.float64)
    return np.divide(hits, num_rel, out=np.zeros_like(hits), where=num_rel > 0)


def _reciprocal_rank(grades: np.ndarray) -> np.ndarray:
    relevant = grades > 0
    first = relevant.argmax(axis=1)
    return np.where(relevant.any(axis=1), 1.0 / (first + 1.0), 0.0)


def ndcg_at_k(run: Run, qrels: Qrels, k: int = 10) -> dict[str, float]:
    """Per-query nDCG@k, linear gain (trec_eval `ndcg_cut_k`); conventions in the module doc."""
    _check_k(k)
    qids = _evaluated(run, qrels)
    values = _ndcg(_grades(run, qrels, qids, k), _ideal(qrels, qids, k))
    return dict(zip(qids, values.tolist(), strict=True))


def recall_at_k(run: Run, qrels: Qrels, k: int = 100) -> dict[str, float]:
    """Per-query Recall@k, relevant = grade > 0 (trec_eval `recall_k`)."""
    _check_k(k)
    qids = _evaluated(run, qrels)
    values = _recall(_grades(run, qrels, qids, k), _num_relevant(qrels, qids))
    return dict(zip(qids, values.tolist(), strict=True))


def mrr_at_k(run: Run, qrels: Qrels, k: int = 10) -> dict[str, float]:
    """Per-query reciprocal rank of the first relevant (grade > 0) document in the top k, else 0.

    Equals trec_eval `recip_rank` on the run truncated to its top k in trec_eval order.
    """
    _check_k(k)
    qids = _evaluated(run, qrels)
    values = _reciprocal_rank(_grades(run, qrels, qids, k))
    return dict(zip(qids, values.tolist(), strict=True))


def evaluate_run(run: Run, qrels: Qrels) -> dict[str, float]:
    """Means over the evaluated queries: {"ndcg@10", "recall@100", "mrr@10"}.

    Raises `DataError` when no query of the run has judgements, as a mean over nothing would
    silently be NaN.
    """
    qids = _evaluated(run, qrels)
    if not qids:
        raise DataError(
            f"run: none of its {len(run)} queries has judgements in the qrels "
            f"({len(qrels)} queries); check the query ids and the split"
        )
    grades = _grades(run, qrels, qids, 100)
    top10 = grades[:, :10]
    return {
        "ndcg@10": float(_ndcg(top10, _ideal(qrels, qids, 10)).mean()),
        "recall@100": float(_recall(grades, _num_relevant(qrels, qids)).mean()),
        "mrr@10": float(_reciprocal_rank(top10).mean()),
    }


def ndcg_from_rankings(
    ranked: np.ndarray, relevant: Sequence[Mapping[int, int]], k: int = 10
) -> float:
    """Mean nDCG@k (linear gain, as `ndcg_at_k`) of row-index rankings (`ndcg_per_query`)."""
    return float(ndcg_per_query(ranked, relevant, k).mean())


def ndcg_per_query(
    ranked: np.ndarray, relevant: Sequence[Mapping[int, int]], k: int = 10
) -> np.ndarray:
    """nDCG@k (linear gain, as `ndcg_at_k`) of each query of row-index rankings, float64 (m,).

    `ranked[i]` holds distinct corpus row indices of query i in rank order (e.g. from `top_k`;
    only the first k columns are read; -1 is an empty slot) and `relevant[i]` maps corpus row
    -> grade. Every query counts, one with no positive grade as 0. Vectorised, for validation
    every few training steps: the only Python loop is over the judgements to flatten them.
    """
    _check_k(k)
    ranks = np.asarray(ranked)
    if ranks.ndim != 2 or ranks.dtype.kind not in "iu":
        raise DataError(
            f"ranked: expected a 2-d integer array, got shape {ranks.shape} dtype {ranks.dtype}"
        )
    m = ranks.shape[0]
    if len(relevant) != m:
        raise DataError(f"relevant: {len(relevant)} entries for {m} ranked queries")
    if m == 0:
        raise DataError("ranked: no queries to evaluate")
    top = ranks[:, :k].astype(np.int64)
    if top.size and top.min() < -1:  # -1: an empty slot (`top_k` on a corpus of <= k rows)
        row = int(np.flatnonzero((top < -1).any(axis=1))[0])
        raise DataError(f"ranked: row {row} holds a negative corpus index")

    qi_list: list[int] = []
    rows_list: list[int] = []
    grade_list: list[float] = []
    for i, rel in enumerate(relevant):
        for row, grade in rel.items():
            if not _is_grade(grade):
                raise DataError(f"relevant: query {i}, row {row}: grade {grade!r} is not a "
                                "finite number")
            if grade > 0:
                qi_list.append(i)
                rows_list.append(int(row))
                grade_list.append(float(grade))
    if not qi_list:
        return np.zeros(m)
    qi = np.asarray(qi_list, dtype=np.int64)
    rows = np.asarray(rows_list, dtype=np.int64)
    grades = np.asarray(grade_list, dtype=np.float64)

    # Look every retrieved (query, row) up among the judgements with one searchsorted on
    # combined keys query * width + row, which are unique because rows are < width.
    width = int(max(rows.max(), top.max(initial=-1))) + 1
    judged_keys = qi * width + rows
    order = np.argsort(judged_keys)
    judged_keys, judged_grades = judged_keys[order], grades[order]
    keys = np.arange(m, dtype=np.int64)[:, None] * width + top
    pos = np.minimum(np.searchsorted(judged_keys, keys), judged_keys.size - 1)
    gains = np.where((judged_keys[pos] == keys) & (top >= 0), judged_grades[pos], 0.0)
    dcg = gains @ _discounts(top.shape[1])

    # Ideal: each query's grades sorted descending, ranked within the query, cut at k.
    order = np.lexsort((-grades, qi))
    qi_s, grades_s = qi[order], grades[order]
    rank = np.arange(qi_s.size) - np.searchsorted(qi_s, qi_s)
    keep = rank < k
    idcg = np.bincount(qi_s[keep], weights=grades_s[keep] * _discounts(k)[rank[keep]], minlength=m)
    ndcg: np.ndarray = np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)
    return ndcg
