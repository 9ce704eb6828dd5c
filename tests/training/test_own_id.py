"""A query never retrieves the document with its own id, in the fit as in the evaluation.

BEIR's evaluation ignores identical query and document ids (`top_k`'s `exclude`); on
collections where a query is itself in the corpus (ArguAna, Quora), that document is the
nearest one. A fit that ranked it would mine it as the hardest negative and score every
validation query with a document at rank 1 the evaluation never shows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from dive.compressors._baseline_modules import Supervision
from dive.compressors.base import LabelledQueries, TrainingData
from dive.compressors.registry import make_compressor
from dive.compressors.search_adaptor import SearchAdaptorConfig
from dive.embed.store import Embeddings
from dive.errors import DataError
from dive.evaluate.protocol import labelled_queries
from dive.training import mine_pools
from dive.training.gate import validation_scores
from dive.training.labels import Labels


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_labelled_queries_name_the_row_with_the_query_id() -> None:
    vectors = _unit(np.random.default_rng(0).normal(size=(4, 8)))
    emb = Embeddings(vectors, ["d0", "q1", "d2", "d3"], vectors[:2], ["q0", "q1"], {})
    qrels = {"q0": {"d2": 1}, "q1": {"d3": 1}}
    assert labelled_queries(["q0", "q1"], qrels, emb, {"q1"}).exclude == (-1, 1)
    # a query not named identical keeps the document with its id (a coincidence of numbering)
    assert labelled_queries(["q0", "q1"], qrels, emb, set()).exclude == (-1, -1)


def test_labels_carry_the_excluded_rows_through_every_constructor() -> None:
    q = LabelledQueries(np.eye(3, 4, dtype=np.float32), ({0: 1}, {}, {2: 1}), exclude=(-1, 3, 1))
    judged = Labels.judged(q, 4, "training")  # the query without a positive goes
    assert judged is not None and judged.exclude.tolist() == [-1, 1]
    assert judged.subset(np.array([1])).exclude.tolist() == [1]
    plain = Labels.judged(LabelledQueries(q.embeddings, q.relevant), 4, "training")
    assert plain is not None and plain.exclude is None
    assert Labels.joined([plain, judged]).exclude.tolist() == [-1, -1, -1, 1]


def test_excluded_rows_are_integers_given_as_any_sequence() -> None:
    # a row 1.5 or True became row 1 without a word; a numpy array raised numpy's "truth
    # value of an array ... is ambiguous"
    embeddings, relevant = np.eye(2, 4, dtype=np.float32), ({0: 1}, {1: 1})
    for bad in (1.5, True, "1"):
        with pytest.raises(DataError, match=f"^labelled queries: query 1 excludes {bad!r}; "
                                            r"an excluded corpus row is an integer \(-1: none\)$"):
            LabelledQueries(embeddings, relevant, exclude=(-1, bad))  # type: ignore[arg-type]
    given = LabelledQueries(embeddings, relevant, exclude=np.array([-1, 3]))  # type: ignore[arg-type]
    assert given.exclude == (-1, 3) and all(type(row) is int for row in given.exclude)


def test_excluded_rows_are_one_per_query() -> None:
    """A list of excluded rows of another length than the queries was taken: the rows then
    paired with the wrong queries, or an evaluation indexed past its end."""
    embeddings, relevant = np.eye(2, 4, dtype=np.float32), ({0: 1}, {1: 1})
    with pytest.raises(DataError, match=r"^labelled queries: 3 excluded rows for 2 queries$"):
        LabelledQueries(embeddings, relevant, exclude=(-1, 3, 1))
    assert LabelledQueries(embeddings, relevant, exclude=()).excluded() is None


def test_the_excluded_row_is_never_a_hard_negative_nor_ranked_in_validation() -> None:
    corpus = np.eye(6, dtype=np.float32)
    queries = np.array([[1.0, 0.9, 0.8, 0.1, 0.0, 0.0]], dtype=np.float32)
    pools = mine_pools(queries, corpus, [{2: 1}], band=2, exclude=np.array([0]))
    assert pools.candidates.tolist() == [[1, 3]]
    # row 0 (its own id) would take rank 1 and push the relevant row 2 to rank 3
    seen = validation_scores(queries, corpus, [{2: 1}], exclude=np.array([-1]))
    unseen = validation_scores(queries, corpus, [{2: 1}], exclude=np.array([0]))
    assert unseen[0] > seen[0]
    assert unseen[0] == validation_scores(queries[:, 1:], corpus[1:, 1:], [{1: 1}])[0]


def test_a_dive_fit_scores_its_start_without_each_querys_own_document() -> None:
    """Queries that are themselves in the corpus (ArguAna): told their own rows, the fit
    scores its start as the evaluation will, without a document at rank 1 it never shows."""
    rng = np.random.default_rng(0)
    docs = _unit(rng.normal(size=(300, 32)))
    queries = _unit(docs[:40] + 0.3 * rng.normal(size=(40, 32)))
    corpus = np.concatenate([docs, queries])  # row 300 + i is query i itself
    relevant = tuple({i: 1} for i in range(40))
    own = tuple(300 + i for i in range(40))

    def start_score(exclude: tuple[int, ...]) -> float:
        train = TrainingData(LabelledQueries(queries, relevant, exclude=exclude))
        dive = make_compressor("dive:start=uncentered:steps=25:threads=1", 8).fit(corpus, train)
        summary = dive.fit_info_.summary
        assert summary is not None and summary.start_score is not None
        return summary.start_score

    start = make_compressor("pca-uncentered", 8).fit(corpus)
    z_q, z_c = start.transform(queries), start.transform(corpus)
    shown = validation_scores(z_q, z_c, list(relevant), exclude=np.array(own)).mean()
    assert shown > validation_scores(z_q, z_c, list(relevant)).mean() + 0.05
    assert start_score(own) > start_score(()) + 0.05


def test_the_baselines_mine_and_validate_without_the_own_document() -> None:
    corpus = np.eye(6, dtype=np.float32)
    query = np.array([[1.0, 0.9, 0.8, 0.1, 0.0, 0.0]], dtype=np.float32)
    own = LabelledQueries(query, ({2: 1},), exclude=(0,))
    # mine_every=None: a refresh mines every query's pool at once (with 5, the coming
    # batches' pools as they are drawn)
    config = SearchAdaptorConfig(mine_every=None)
    sup = Supervision(TrainingData(own, own), torch.from_numpy, 6, config)
    sup.band = 2
    identity: Callable[[torch.Tensor], torch.Tensor] = lambda x: x  # noqa: E731
    sup.refresh(identity, torch.from_numpy(corpus))
    assert sup.pools is not None and sup.pools.candidates.tolist() == [[1, 3]]
    unseen = validation_scores(query[:, 1:], corpus[1:, 1:], [{1: 1}])
    assert sup.scores(identity, torch.from_numpy(corpus)).tolist() == unseen.tolist()


def test_mining_a_corpus_no_larger_than_its_depth_skips_the_empty_slot() -> None:
    # top_k over a corpus of <= k rows ends a query with an excluded row with row -1
    corpus = np.eye(3, dtype=np.float32)
    queries = np.array([[0.9, 0.5, 0.1]], dtype=np.float32)
    pools = mine_pools(queries, corpus, [{0: 1}], band=5, exclude=np.array([1]))
    assert pools.lengths.tolist() == [1] and pools.candidates[0, 0] == 2
    among = mine_pools(queries, corpus[1:], [{0: 1}], band=5, exclude=np.array([1]),
                       rows=np.array([1, 2]))
    assert among.lengths.tolist() == [1] and among.candidates[0, 0] == 2
