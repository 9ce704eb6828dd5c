"""Real SciFact data (skipped without ../shared): the byte-level figures `dive evaluate` records
are what the indexes users build give.

For PCA at d=96 and d=48, every precision (and `opq12`) is scored again through the index the
product ships (`with_precision`, `build_index`, `save_index`, `load_index`, `search_index`,
as `dive fit --precision`, `dive index` and `dive search` do), with the project's metrics;
funnels are re-implemented in a few lines (the shipped index's top r x k, re-ranked by the
L2-normalised full embeddings); `bytes_per_vector` is checked against what a serialised FAISS
index grows by per vector (ids, kept in a sidecar, are not counted); and the anchors are
scored again from their codes with numpy. Left out: other methods (the scoring path after
`transform` is the same for every method) and HNSW (approximate, not in the grid).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dive.compressors.registry import make_compressor
from dive.data import load_dataset
from dive.data.splits import QuerySplit, make_split
from dive.embed import Embeddings, load_embeddings
from dive.evaluate.anchors import parse_anchor
from dive.evaluate.metrics import evaluate_run
from dive.evaluate.protocol import GridSpec, run_grid
from dive.evaluate.records import ResultsFile
from dive.export.faiss_index import build_index, load_index, save_index, search_index
from dive.export.folder import with_precision
from dive.report.frontier import best_per_budget, configs

faiss = pytest.importorskip("faiss")
pytestmark = [pytest.mark.shared_data, pytest.mark.slow]  # one grid and its indexes: ~50 s

DIMS = (96, 48)
STAGES = ("float32", "float16", "int8", "binary", "opq12")
FACTOR = 4  # the funnel's rescore factor
ANCHORS = ("faiss-pq:48", "faiss-pca-sq8", "faiss-pca-sq4", "st-int8", "st-binary")
METRICS = ("ndcg@10", "recall@100", "mrr@10")


@pytest.fixture(scope="module")
def scifact(shared_beir: Path, shared_embeddings: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> dict[str, Any]:
    """The grid's records and what the test needs to score the same queries again."""
    folder = shared_embeddings / "all-MiniLM-L6-v2" / "scifact"
    spec = GridSpec(datasets=[str(shared_beir / "scifact")], methods=["pca"], ratios=[4, 8],
                    budgets=[16], seeds=[0], embeddings_dir=str(folder), precisions=STAGES,
                    rescores=[0, FACTOR], anchors=ANCHORS)
    records = run_grid(spec, ResultsFile(tmp_path_factory.mktemp("grid") / "r.jsonl"))
    emb = load_embeddings(folder)
    split = make_split(load_dataset(str(shared_beir / "scifact")), 16, 0)
    assert not split.identical_ids  # else the index, which excludes nothing, would differ
    return {"records": records, "emb": emb, "split": split,
            "tmp": tmp_path_factory.mktemp("indexes")}


def record(records: list[dict[str, Any]], method: str, dim: int, precision: str,
           rescore: int) -> dict[str, Any]:
    (found,) = [r for r in records if (r["method"], r["dim"], r["precision"], r["rescore"])
                == (method, dim, precision, rescore)]
    return found


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def stored_bytes(index: Any, binary: bool) -> float:
    """What the serialised index grows by per vector: its file minus the same index emptied."""
    serialise, deserialise = ((faiss.serialize_index_binary, faiss.deserialize_index_binary)
                              if binary else (faiss.serialize_index, faiss.deserialize_index))
    written = serialise(index)
    empty = deserialise(written)
    empty.reset()
    return (len(written) - len(serialise(empty))) / index.ntotal


def run_of(rows: np.ndarray, scores: np.ndarray, query_ids: list[str], ids: list[str]
           ) -> dict[str, dict[str, float]]:
    return {q: {ids[r]: float(s) for r, s in zip(rows[i].tolist(), scores[i].tolist(),
                                                  strict=True) if r >= 0}
            for i, q in enumerate(query_ids)}


def funnel_metrics(rows: np.ndarray, emb: Embeddings, split: QuerySplit) -> dict[str, float]:
    """The funnel, independently: each query's first FACTOR x k rows re-ranked by the cosine of
    the full embeddings (ties: lower row first), cut to k; nDCG@10 and MRR@10 at k=10,
    Recall@100 at k=100."""
    query_ids = list(split.eval_ids)
    queries, corpus = unit(emb.query_rows(query_ids)), unit(emb.corpus)
    out = {}
    for k, names in ((10, ("ndcg@10", "mrr@10")), (100, ("recall@100",))):
        run = {}
        for i, q in enumerate(query_ids):
            cand = rows[i, : FACTOR * k]
            cand = cand[cand >= 0]
            score = (corpus[cand] @ queries[i]).astype(np.float32)
            order = np.lexsort((cand, -score))[:k]
            run[q] = {emb.corpus_ids[cand[j]]: float(score[j]) for j in order}
        metrics = evaluate_run(run, split.eval_qrels)
        out.update({name: metrics[name] for name in names})
    return out


@pytest.mark.parametrize("dim", DIMS)
def test_precisions_score_and_store_as_the_shipped_faiss_index(scifact: dict[str, Any],
                                                               dim: int) -> None:
    emb, split, records = scifact["emb"], scifact["split"], scifact["records"]
    query_ids = list(split.eval_ids)
    queries = emb.query_rows(query_ids)
    compressor = make_compressor("pca", dim, 0).fit(emb.corpus)
    for stage in STAGES:
        if stage == "opq12":  # `dive index --opq 12` of a float32 model
            model = with_precision(compressor, "float32")
            built = build_index(model.transform(emb.corpus), ids=emb.corpus_ids, product=12)
        else:  # `dive fit --precision`, then `dive index`
            model = with_precision(compressor, stage, emb.corpus)
            built = build_index(model.transform(emb.corpus), ids=emb.corpus_ids,
                                quantizer=model.fitted_runtime().quantizer)
        index = load_index(save_index(built, scifact["tmp"] / f"{dim}-{stage}.faiss"))
        rows, scores = search_index(index, model.embed(queries), 100 * FACTOR)

        plain = record(records, "pca", dim, stage, 0)
        shipped = evaluate_run(run_of(rows[:, :100], scores[:, :100], query_ids, index.ids),
                               split.eval_qrels)
        assert {m: plain[m] for m in METRICS} == pytest.approx(
            {m: shipped[m] for m in METRICS}, abs=1e-12), stage
        funnel = record(records, "pca", dim, stage, FACTOR)
        assert {m: funnel[m] for m in METRICS} == pytest.approx(
            funnel_metrics(rows, emb, split), abs=1e-12), f"{stage} + rescore {FACTOR}"

        stored = stored_bytes(index.index, stage == "binary")
        assert plain["bytes_per_vector"] == funnel["bytes_per_vector"] == stored, stage
        assert index.bytes_per_vector == stored, stage
        assert funnel["rescore_bytes_per_vector"] == 4 * emb.dim  # the float32 copy, apart


def test_anchors_store_what_their_index_does_and_score_as_their_codes(
    scifact: dict[str, Any]
) -> None:
    """Each anchor's recorded bytes are what its FAISS index grows by per vector, and its
    recorded metrics are those of its codes scored with numpy (PQ: decoded codes, asymmetric
    distance; st-int8: int8 x int8 with the corpus ranges; st-binary: D - 2 x Hamming)."""
    from sentence_transformers import quantize_embeddings

    emb, split, records = scifact["emb"], scifact["split"], scifact["records"]
    query_ids = list(split.eval_ids)
    corpus, queries = unit(emb.corpus).astype(np.float32), unit(
        emb.query_rows(query_ids)).astype(np.float32)
    full = emb.dim
    for name in ANCHORS:
        anchor = parse_anchor(name)
        for dim in [full] if anchor.full_dim else list(DIMS):
            built = anchor.build(corpus, dim, 0)
            binary = name == "st-binary"
            mine = record(records, name, dim, anchor.code, 0)
            assert mine["bytes_per_vector"] == stored_bytes(built.index, binary), (name, dim)
            assert record(records, name, dim, anchor.code, FACTOR)["bytes_per_vector"] == (
                mine["bytes_per_vector"])
            if name == "faiss-pq:48":
                decoded = built.index.sa_decode(built.index.sa_encode(corpus))
                scores = queries @ decoded.T
            elif name == "st-int8":
                codes = quantize_embeddings(corpus, "int8", calibration_embeddings=corpus)
                asked = quantize_embeddings(queries, "int8", calibration_embeddings=corpus)
                scores = (asked.astype(np.int64) @ codes.astype(np.int64).T).astype(np.float32)
            elif binary:
                bits = quantize_embeddings(corpus, "ubinary")
                asked = quantize_embeddings(queries, "ubinary")
                ones = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(1)
                hamming = ones[asked[:, None, :] ^ bits[None, :, :]].sum(axis=2, dtype=np.int64)
                scores = (full - 2 * hamming).astype(np.float32)
            else:  # PCA + SQ: FAISS's own transform; its bytes are checked above
                continue
            rows = np.argsort(-scores, axis=1, kind="stable")[:, :100]
            run = run_of(rows, np.take_along_axis(scores, rows, axis=1), query_ids,
                         list(emb.corpus_ids))
            # float rounding of PQ's distance tables may swap near-ties: nDCG to 1e-3
            tolerance = 1e-3 if name == "faiss-pq:48" else 1e-12
            assert mine["ndcg@10"] == pytest.approx(
                evaluate_run(run, split.eval_qrels)["ndcg@10"], abs=tolerance), name


def test_frontier_pairs_ours_and_anchors_within_each_byte_budget(scifact: dict[str, Any]
                                                                 ) -> None:
    """The frontier's row at B bytes holds the best of ours and the best anchor storing at
    most B: PQ48 (48 B) sits in the row of pca d=48 int8 (48 B), never in a smaller one."""
    cells = configs(scifact["records"])
    rows = {row.bytes_per_vector: row for row in best_per_budget(cells, rescoring=False)}
    for row in rows.values():
        for side in (row.ours, row.anchor):
            assert side is None or side.bytes_per_vector <= row.bytes_per_vector
    pq48 = next(c for c in cells if c.method == "faiss-pq:48" and not c.rescore)
    int8 = next(c for c in cells if (c.method, c.dim, c.precision, c.rescore)
                == ("pca", 48, "int8", 0))
    assert pq48.bytes_per_vector == int8.bytes_per_vector == 48
    assert rows[48].anchor is not None and rows[48].anchor.mean >= pq48.mean
    assert rows[24].anchor is not None and rows[24].anchor.method != "faiss-pq:48"
