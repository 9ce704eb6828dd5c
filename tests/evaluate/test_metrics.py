"""Retrieval metrics: agreement with pytrec_eval (trec_eval), hand-computed cases, fast nDCG."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from dive.errors import DataError
from dive.evaluate.metrics import (
    evaluate_run,
    mrr_at_k,
    ndcg_at_k,
    ndcg_from_rankings,
    ndcg_per_query,
    recall_at_k,
)
from dive.evaluate.search import search, top_k

Run = dict[str, dict[str, float]]
Qrels = dict[str, dict[str, int]]


def _random_case(seed: int) -> tuple[Run, Qrels]:
    """Runs full of ties (a few score levels, some only tied in float32) and graded qrels.

    Includes queries only in the run, only in the qrels, with an empty run, with empty qrels
    and with only non-relevant (grade <= 0) judgements.
    """
    rng = np.random.default_rng(seed)
    docs = [f"d{j}" for j in range(150)] + [f"D{j}" for j in range(30)] + ["a", "aa", "b"]
    run: Run = {}
    qrels: Qrels = {}
    for i in range(60):
        qid = f"q{i}"
        if rng.random() < 0.9:
            n = int(rng.integers(0, 140))
            picked = rng.choice(len(docs), size=n, replace=False)
            # Levels 0..2.5; adding 1e-9 keeps the float32 value, so trec_eval still ties them.
            run[qid] = {
                docs[j]: float(rng.integers(0, 6)) * 0.5 + (1e-9 if rng.random() < 0.2 else 0.0)
                for j in picked
            }
        if rng.random() < 0.9:
            n = int(rng.integers(0, 25))
            picked = rng.choice(len(docs), size=n, replace=False)
            qrels[qid] = {docs[j]: int(rng.integers(-1, 4)) for j in picked}
    qrels["only_nonrelevant"] = {"d1": 0, "d2": -1}
    run["only_nonrelevant"] = {"d1": 1.0, "d2": 0.5}
    qrels["empty_run"] = {"d1": 1}
    run["empty_run"] = {}
    qrels["empty_qrels"] = {}
    run["empty_qrels"] = {"d1": 1.0}
    return run, qrels


def _trec_truncate(run: Run, k: int) -> Run:
    """Independent restatement of trec_eval's order: float32 score desc, then doc id desc."""
    return {
        qid: dict(sorted(docs.items(), key=lambda t: (np.float32(t[1]), t[0]), reverse=True)[:k])
        for qid, docs in run.items()
    }


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_metrics_match_pytrec_eval_on_runs_with_ties(seed: int) -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    run, qrels = _random_case(seed)
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut", "recall"}).evaluate(run)
    ref_rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(_trec_truncate(run, 10))

    ndcg, recall, mrr = ndcg_at_k(run, qrels), recall_at_k(run, qrels), mrr_at_k(run, qrels)
    assert set(ndcg) == set(recall) == set(mrr) == set(ref) == set(ref_rr)
    assert "only_nonrelevant" in ndcg and "empty_run" in ndcg and "empty_qrels" not in ndcg
    for qid in ref:
        assert ndcg[qid] == pytest.approx(ref[qid]["ndcg_cut_10"], abs=1e-6)
        assert recall[qid] == pytest.approx(ref[qid]["recall_100"], abs=1e-6)
        assert mrr[qid] == pytest.approx(ref_rr[qid]["recip_rank"], abs=1e-6)

    # Other cut-offs go through the same code; check a few against trec_eval's defaults.
    for k in (5, 20):
        ndcg_k, recall_k = ndcg_at_k(run, qrels, k=k), recall_at_k(run, qrels, k=k)
        for qid in ref:
            assert ndcg_k[qid] == pytest.approx(ref[qid][f"ndcg_cut_{k}"], abs=1e-6)
            assert recall_k[qid] == pytest.approx(ref[qid][f"recall_{k}"], abs=1e-6)

    means = evaluate_run(run, qrels)
    assert means == pytest.approx(
        {
            "ndcg@10": np.mean([v["ndcg_cut_10"] for v in ref.values()]),
            "recall@100": np.mean([v["recall_100"] for v in ref.values()]),
            "mrr@10": np.mean([v["recip_rank"] for v in ref_rr.values()]),
        },
        abs=1e-6,
    )


def test_ndcg_hand_computed() -> None:
    qrels = {"q": {"a": 2, "b": 1, "c": 0, "n": -1, "unretrieved": 3}}
    run = {"q": {"n": 0.9, "a": 0.8, "x": 0.7, "b": 0.6}}
    # Negative grade: no gain (not a penalty); the ideal includes the unretrieved grade 3.
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    idcg = 3 + 2 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(run, qrels, k=10)["q"] == pytest.approx(dcg / idcg, abs=1e-12)
    # Cut at 2: only "a" counts, the ideal is cut at 2 as well.
    assert ndcg_at_k(run, qrels, k=2)["q"] == pytest.approx(
        (2 / math.log2(3)) / (3 + 2 / math.log2(3)), abs=1e-12
    )


def test_recall_and_mrr_hand_computed() -> None:
    qrels = {"q": {"a": 1, "b": 2, "c": 1, "z": 0}}
    run = {"q": {"z": 0.9, "y": 0.8, "b": 0.7, "a": 0.6, "w": 0.5}}
    assert recall_at_k(run, qrels, k=100)["q"] == pytest.approx(2 / 3)
    assert recall_at_k(run, qrels, k=3)["q"] == pytest.approx(1 / 3)
    assert mrr_at_k(run, qrels, k=10)["q"] == pytest.approx(1 / 3)
    assert mrr_at_k(run, qrels, k=2)["q"] == 0.0


def test_ties_are_ordered_by_doc_id_descending() -> None:
    qrels = {"q": {"a": 1}, "r": {"d9": 1}}
    # "b" > "a" and "d9" > "d10" as strings, so the relevant doc is second in "q", first in "r".
    run = {"q": {"a": 1.0, "b": 1.0}, "r": {"d10": 1.0, "d9": 1.0}}
    assert mrr_at_k(run, qrels) == {"q": 0.5, "r": 1.0}
    assert ndcg_at_k(run, qrels, k=1) == {"q": 0.0, "r": 1.0}


def test_scores_equal_in_float32_are_ties() -> None:
    qrels = {"q": {"a": 1}}
    # 1 + 1e-12 rounds to 1.0 in float32, so "x" (> "a") comes first as in trec_eval...
    assert mrr_at_k({"q": {"x": 1.0, "a": 1.0 + 1e-12}}, qrels)["q"] == 0.5
    # ...while 1 + 1e-6 survives the rounding and wins.
    assert mrr_at_k({"q": {"x": 1.0, "a": 1.0 + 1e-6}}, qrels)["q"] == 1.0


def test_queries_evaluated_are_those_judged_and_in_the_run() -> None:
    qrels = {"judged": {"a": 1}, "not_run": {"a": 1}, "no_judgements": {}, "nonrel": {"a": 0}}
    run = {"judged": {"a": 1.0}, "unjudged": {"a": 1.0}, "no_judgements": {"a": 1.0},
           "nonrel": {"a": 1.0}}  # fmt: skip
    assert ndcg_at_k(run, qrels) == {"judged": 1.0, "nonrel": 0.0}
    assert recall_at_k(run, qrels) == {"judged": 1.0, "nonrel": 0.0}
    # The query judged only non-relevant counts in the mean, with 0.
    assert evaluate_run(run, qrels) == {"ndcg@10": 0.5, "recall@100": 0.5, "mrr@10": 0.5}


def test_metrics_reject_bad_input() -> None:
    with pytest.raises(DataError, match="none of its 1 queries has judgements"):
        evaluate_run({"q": {"a": 1.0}}, {"other": {"a": 1}})
    with pytest.raises(DataError, match="query 'q', document 'b': score is NaN"):
        ndcg_at_k({"q": {"a": 1.0, "b": float("nan")}}, {"q": {"a": 1}})
    with pytest.raises(DataError, match="query 'q' has a non-numeric score"):
        recall_at_k({"q": {"a": "high"}}, {"q": {"a": 1}})  # type: ignore[dict-item]
    with pytest.raises(DataError, match="k must be an integer >= 1, got 0"):
        mrr_at_k({"q": {"a": 1.0}}, {"q": {"a": 1}}, k=0)
    with pytest.raises(DataError, match="k must be an integer >= 1, got '10'"):  # a TypeError
        ndcg_at_k({"q": {"a": 1.0}}, {"q": {"a": 1}}, k="10")  # type: ignore[arg-type]
    # TREC-style triples: no query was read, and nDCG was {} without a word
    with pytest.raises(DataError, match=r"run: expected \{query_id: \{doc_id: score\}\}, "
                                        "got list"):
        ndcg_at_k([("q", "a", 1.0)], {"q": {"a": 1}})  # type: ignore[arg-type]
    # a query's judgements as pairs, or grades as text: AttributeError / TypeError deep inside
    # and non-finite grades: NaN was scored 0 without a word, inf made the mean NaN
    for judged in ([("a", 1)], {"a": "1"}, {"a": True}, {"a": float("nan")}, {"a": np.inf}):
        with pytest.raises(DataError, match=r"^qrels: query 'q': expected \{doc_id: grade\} "
                                            r"with finite numeric grades, got "):
            ndcg_at_k({"q": {"a": 1.0}}, {"q": judged})  # type: ignore[dict-item]
    # a query's run as a ranked list of ids: AttributeError deep inside
    with pytest.raises(DataError, match=r"^run: query 'q': expected \{doc_id: score\}, got list"):
        evaluate_run({"q": ["a", "b"]}, {"q": {"a": 1}})  # type: ignore[dict-item]


def _rankings_case(seed: int) -> tuple[np.ndarray, list[dict[int, int]]]:
    rng = np.random.default_rng(seed)
    m, n = 200, 3000
    ranked = np.stack([rng.choice(n, size=100, replace=False) for _ in range(m)])
    relevant: list[dict[int, int]] = []
    for i in range(m):
        # Mix judged rows from inside the ranking (so there are hits) and from outside it.
        rows = np.concatenate([ranked[i, rng.integers(0, 30, 3)], rng.integers(0, n, 4)])
        relevant.append({int(r): int(rng.integers(-1, 4)) for r in rows})
    relevant[0] = {}
    relevant[1] = {int(ranked[1, 0]): 0}
    return ranked, relevant


@pytest.mark.parametrize("k", [1, 10, 150])
def test_ndcg_from_rankings_matches_ndcg_at_k(k: int) -> None:
    ranked, relevant = _rankings_case(seed=k)
    run = {f"q{i}": {f"d{r}": float(-j) for j, r in enumerate(row)} for i, row in enumerate(ranked)}
    qrels = {f"q{i}": {f"d{r}": g for r, g in rel.items()} for i, rel in enumerate(relevant)}
    per_query = ndcg_at_k(run, qrels, k=k)
    # ndcg_from_rankings counts every query; one with no judgements at all scores 0.
    expected = np.mean([per_query.get(f"q{i}", 0.0) for i in range(len(ranked))])
    assert expected > 0.02  # not all zeros, so the comparison means something
    assert ndcg_from_rankings(ranked, relevant, k=k) == pytest.approx(expected, abs=1e-9)


def test_ndcg_from_rankings_hand_computed() -> None:
    ranked = np.array([[4, 2, 7], [1, 0, 3]])
    relevant = [{2: 2, 9: 1}, {5: 1}]
    first = (2 / math.log2(3)) / (2 + 1 / math.log2(3))
    assert ndcg_from_rankings(ranked, relevant, k=10) == pytest.approx(first / 2, abs=1e-12)
    assert ndcg_from_rankings(ranked, relevant, k=1) == 0.0
    assert ndcg_from_rankings(ranked, [{}, {}], k=10) == 0.0


def test_ndcg_from_rankings_rejects_bad_input() -> None:
    with pytest.raises(DataError, match="relevant: 1 entries for 2 ranked queries"):
        ndcg_from_rankings(np.zeros((2, 3), dtype=np.int64), [{0: 1}])
    with pytest.raises(DataError, match="ranked: row 1 holds a negative corpus index"):
        ndcg_from_rankings(np.array([[0, 1], [2, -2]]), [{0: 1}, {0: 1}])
    # -1 is an empty slot (a corpus of at most k rows with a row left out), never a hit
    assert ndcg_from_rankings(np.array([[1, -1], [2, -1]]), [{0: 1}, {1: 1}]) == 0.0
    # nor the row just before the query's first, the previous query's last (the validation
    # scores' keys): its judged row 2 made query 1's empty slot a hit
    np.testing.assert_array_equal(
        ndcg_per_query(np.array([[0, 1], [1, -1]]), [{2: 1}, {0: 1}], k=2), [0.0, 0.0])
    with pytest.raises(DataError, match="expected a 2-d integer array"):
        ndcg_from_rankings(np.zeros((2, 3)), [{0: 1}, {0: 1}])


def test_ndcg_of_rankings_of_no_queries_is_refused_not_nan() -> None:
    """Zero ranked queries gave a mean nDCG of NaN (and numpy's "Mean of empty slice"
    warning) instead of the error naming the problem."""
    for score in (ndcg_from_rankings, ndcg_per_query):
        with pytest.raises(DataError, match="ranked: no queries to evaluate"):
            score(np.zeros((0, 3), dtype=np.int64), [])


@pytest.mark.parametrize("grade", [float("nan"), float("inf"), "1", None, True, 10**400])
def test_ndcg_per_query_refuses_a_grade_that_is_not_a_finite_number(grade: object) -> None:
    # NaN was skipped as "not > 0" (a judged hit scored 0), inf made nDCG NaN, text raised
    # TypeError deep inside.
    ranked = np.array([[0, 1], [1, 0]])
    with pytest.raises(DataError, match=r"relevant: query 1, row 0: grade .* is not a finite"):
        ndcg_per_query(ranked, [{0: 1}, {0: grade, 1: 1}])




def _shared(kind: str, *parts: str) -> Path | None:
    """A shared-data path: `$DIVE_DATA` (BEIR folders by name, os.pathsep-separated) or
    `$DIVE_EMBEDDINGS` (<model>/<dataset>), else `<repo>/../shared/data/{beir,embeddings}`."""
    env = os.environ.get("DIVE_EMBEDDINGS" if kind == "embeddings" else "DIVE_DATA", "")
    roots = [Path(entry) for entry in env.split(os.pathsep) if entry]
    roots.append(Path(__file__).resolve().parents[3] / "shared" / "data" / kind)
    for root in roots:
        if root.joinpath(*parts).exists():
            return root.joinpath(*parts)
    return None


@pytest.mark.shared_data
def test_frozen_minilm_on_scifact_matches_pytrec_eval_and_published_score() -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    emb = _shared("embeddings", "all-MiniLM-L6-v2", "scifact")
    qrels_path = _shared("beir", "scifact", "qrels", "test.tsv")
    if emb is None or qrels_path is None:
        pytest.skip("SciFact embeddings or qrels not found (set DIVE_EMBEDDINGS / DIVE_DATA)")
    qrels: Qrels = {}
    for line in qrels_path.read_text(encoding="utf-8").splitlines()[1:]:
        qid, doc, grade = line.split("\t")
        qrels.setdefault(qid, {})[doc] = int(grade)
    query_ids = (emb / "query_ids.txt").read_text(encoding="utf-8").splitlines()
    corpus_ids = (emb / "corpus_ids.txt").read_text(encoding="utf-8").splitlines()
    queries = np.load(emb / "queries.npy")
    keep = [i for i, qid in enumerate(query_ids) if qid in qrels]
    run = search(queries[keep], np.load(emb / "corpus.npy"), [query_ids[i] for i in keep],
                 corpus_ids, k=100)  # fmt: skip
    ours = evaluate_run(run, qrels)
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10", "recall_100"}).evaluate(run)
    assert ours["ndcg@10"] == pytest.approx(
        np.mean([v["ndcg_cut_10"] for v in ref.values()]), abs=1e-6
    )
    assert ours["recall@100"] == pytest.approx(
        np.mean([v["recall_100"] for v in ref.values()]), abs=1e-6
    )
    # all-MiniLM-L6-v2 on SciFact test is reported at nDCG@10 ~0.645.
    assert 0.62 < ours["ndcg@10"] < 0.67
    # The fast path agrees on the same retrieval.
    idx, _ = top_k(queries[keep], np.load(emb / "corpus.npy"), k=10)
    row = {d: r for r, d in enumerate(corpus_ids)}
    relevant = [{row[d]: g for d, g in qrels[query_ids[i]].items() if d in row} for i in keep]
    assert ndcg_from_rankings(idx, relevant) == pytest.approx(ours["ndcg@10"], abs=1e-6)
