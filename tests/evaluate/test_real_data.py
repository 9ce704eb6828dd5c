"""Real BEIR data (skipped without ../shared): frozen scores match the published ones, and the
protocol's PCA matches an independent numpy + pytrec_eval computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dive.data import load_beir
from dive.evaluate.protocol import GridSpec, run_grid
from dive.evaluate.records import ResultsFile

pytestmark = pytest.mark.shared_data


def grid(beir: Path, emb: Path, dataset: str, methods: list[str], tmp: Path) -> list[dict]:
    spec = GridSpec(
        datasets=[str(beir / dataset)],
        methods=methods,
        ratios=[4],
        budgets=[16],
        seeds=[0],
        embeddings_dir=str(emb / "all-MiniLM-L6-v2" / dataset),
    )
    return run_grid(spec, ResultsFile(tmp / "r.jsonl"))


@pytest.mark.parametrize(("dataset", "published"), [("scifact", 0.6451), ("nfcorpus", 0.3159)])
def test_frozen_reproduces_published_ndcg(
    shared_beir: Path, shared_embeddings: Path, tmp_path: Path, dataset: str, published: float
) -> None:
    (record,) = grid(shared_beir, shared_embeddings, dataset, ["frozen"], tmp_path)
    assert record["ndcg@10"] == pytest.approx(published, abs=0.002)


def test_pca_matches_independent_numpy_and_pytrec_eval(
    shared_beir: Path, shared_embeddings: Path, tmp_path: Path
) -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    (record,) = grid(shared_beir, shared_embeddings, "scifact", ["pca"], tmp_path)

    folder = shared_embeddings / "all-MiniLM-L6-v2" / "scifact"
    corpus = np.load(folder / "corpus.npy").astype(np.float64)
    queries = np.load(folder / "queries.npy").astype(np.float64)
    doc_ids = (folder / "corpus_ids.txt").read_text().split()
    query_ids = (folder / "query_ids.txt").read_text().split()
    qrels = load_beir(shared_beir / "scifact").split("test")
    mean = corpus.mean(axis=0)
    _, _, vt = np.linalg.svd(corpus - mean, full_matrices=False)

    def compress(x: np.ndarray) -> np.ndarray:
        z = (x - mean) @ vt[:96].T
        return z / np.linalg.norm(z, axis=1, keepdims=True)

    rows = [query_ids.index(q) for q in qrels]
    scores = compress(queries[rows]) @ compress(corpus).T
    run = {}
    for i, q in enumerate(qrels):
        top = np.argsort(-scores[i])[:100]
        run[q] = {doc_ids[j]: float(scores[i, j]) for j in top}
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10"})
    expected = np.mean([m["ndcg_cut_10"] for m in evaluator.evaluate(run).values()])
    assert record["ndcg@10"] == pytest.approx(expected, abs=1e-4)
