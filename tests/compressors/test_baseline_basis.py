"""`basis=select`: a learned baseline starts from the basis (the raw prefix, or PCA) that ranks
its validation queries better, through the selection component DIVE's start choice uses."""

from __future__ import annotations

import numpy as np
import pytest

from dive.compressors import LabelledQueries, TrainingData, make_compressor

FAST = {"matryoshka-adaptor": "steps=10:supervised_steps=10:eval_every=10",
        "search-adaptor": "steps=10:eval_every=10", "smec": "stage_steps=10:eval_every=10"}


def planted(signal_at: str, seed: int = 0) -> tuple[np.ndarray, TrainingData]:
    """16-d vectors whose relevance lives in 4 dims: the first 4 with low variance (the raw
    prefix keeps them, PCA keeps noise), or the last 4 with high variance (PCA keeps them,
    the prefix keeps noise). 20 topics; a query's relevant documents are its topic's."""
    rng = np.random.default_rng(seed)
    topics = rng.normal(size=(20, 4))
    scale, noise = (0.4, 1.0) if signal_at == "prefix" else (3.0, 0.3)

    def vectors(of: np.ndarray) -> np.ndarray:
        signal = scale * (topics[of] + 0.2 * rng.normal(size=(len(of), 4)))
        rest = noise * rng.normal(size=(len(of), 12))
        return np.hstack([signal, rest] if signal_at == "prefix" else [rest, signal])

    docs = np.repeat(np.arange(20), 20)
    corpus = vectors(docs)

    def labels(n: int) -> LabelledQueries:
        of = rng.integers(0, 20, size=n)
        return LabelledQueries(vectors(of), tuple(
            {int(d): 1 for d in np.flatnonzero(docs == t)} for t in of))

    return corpus.astype(np.float32), TrainingData(labels(40), labels(40))


@pytest.mark.parametrize("method", sorted(FAST))
@pytest.mark.parametrize("signal_at", ["prefix", "spread"])
def test_select_starts_from_the_basis_that_ranks_the_validation_queries_better(
    method: str, signal_at: str
) -> None:
    corpus, data = planted(signal_at)
    model = make_compressor(f"{method}:basis=select:{FAST[method]}", 4).fit(corpus, data)
    starts = model.fit_info_.diagnostics["start_ndcg@10"]
    chosen = model.fit_info_.summary.selected["basis"]
    assert set(starts) == {"identity", "pca"} and starts[chosen] == max(starts.values())
    if method != "smec":  # SMEC's identity start keeps the highest-energy dims, not the prefix
        assert chosen == {"prefix": "identity", "spread": "pca"}[signal_at]
        assert abs(starts["identity"] - starts["pca"]) > 0.1  # a choice that matters


def test_without_select_the_configured_basis_is_kept() -> None:
    corpus, data = planted("prefix")
    model = make_compressor(f"search-adaptor:basis=pca:{FAST['search-adaptor']}", 4)
    assert model.fit(corpus, data).fit_info_.summary.selected["basis"] == "pca"
