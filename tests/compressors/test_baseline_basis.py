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


def test_select_without_validation_queries_keeps_the_raw_basis() -> None:
    """With no validation queries there is nothing to choose a start on: the paper's raw
    basis ("identity") is kept, the same fit as asking for it."""
    corpus, data = planted("spread")  # where PCA would have won
    train = TrainingData(data.train)
    spec = f"search-adaptor:{FAST['search-adaptor']}:basis="
    chosen = make_compressor(spec + "select", 4).fit(corpus, train)
    raw = make_compressor(spec + "identity", 4).fit(corpus, train)
    assert chosen.fit_info_.summary.selected["basis"] == "identity"
    assert "start_ndcg@10" not in chosen.fit_info_.diagnostics
    np.testing.assert_array_equal(chosen.transform(corpus), raw.transform(corpus))


def test_select_scores_the_starts_without_the_rows_a_query_excludes() -> None:
    """Validation queries that are themselves documents (their rows excluded, as ArguAna's)
    never retrieve themselves in the start choice either: the chosen start's score is the
    one the checkpoint choice reads, not one with each query's own copy at rank 1."""
    corpus, data = planted("prefix")
    val = data.validation
    assert val is not None
    n = len(corpus)
    with_copies = np.vstack([corpus, val.embeddings]).astype(np.float32)
    own = LabelledQueries(val.embeddings, val.relevant, exclude=tuple(range(n, n + len(val))))
    model = make_compressor("search-adaptor:basis=select:steps=0", 4)
    model.fit(with_copies, TrainingData(data.train, own))
    starts, fit = model.fit_info_.diagnostics["start_ndcg@10"], model.fit_info_.summary
    assert fit.selected["basis"] == "identity"
    assert starts["identity"] == pytest.approx(fit.start_score, abs=1e-6)


@pytest.mark.parametrize("method", ["search-adaptor:steps=0", "smec:stage_steps=0"])
def test_each_start_is_scored_as_the_untrained_fit_in_its_basis(method: str) -> None:
    """`basis=select` compares the method's own starts: each start's score is the one an
    untrained fit in that basis reports (SMEC's keeps its top-energy dims, not others)."""
    corpus, data = planted("prefix")
    starts = make_compressor(f"{method}:basis=select", 4).fit(
        corpus, data).fit_info_.diagnostics["start_ndcg@10"]
    for basis in ("identity", "pca"):
        fit = make_compressor(f"{method}:basis={basis}", 4).fit(corpus, data).fit_info_.summary
        assert starts[basis] == pytest.approx(fit.start_score, abs=1e-6)
