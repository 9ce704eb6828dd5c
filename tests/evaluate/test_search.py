"""Exact top-k search: agreement with a brute-force argsort, exclusion, edge cases, speed."""

from __future__ import annotations

import numpy as np
import pytest

from dive.errors import DataError, DiveError
from dive.evaluate.search import search, top_k


def _brute_force(
    q: np.ndarray, c: np.ndarray, k: int, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    scores = (q.astype(np.float64) @ c.astype(np.float64).T).astype(np.float32)
    if exclude is not None:
        rows = np.flatnonzero(exclude >= 0)
        scores[rows, exclude[rows]] = -np.inf
    # Stable sort of -score: score descending, ties by row ascending.
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def _random(m: int, n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((m, d)).astype(np.float32)
    c = rng.standard_normal((n, d)).astype(np.float32)
    return q, c


@pytest.mark.parametrize("chunk_size", [1, 7, 32, 333, 4096])
def test_top_k_matches_brute_force_argsort(chunk_size: int) -> None:
    q, c = _random(37, 517, 16, seed=chunk_size)
    idx, scores = top_k(q, c, k=50, chunk_size=chunk_size)
    ref_idx, ref_scores = _brute_force(q, c, 50)
    assert idx.dtype == np.int64 and scores.dtype == np.float32
    assert idx.shape == scores.shape == (37, 50)
    assert idx.flags.c_contiguous and scores.flags.c_contiguous
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("chunk_size", [3, 10, 64, 1000])
def test_top_k_breaks_exact_ties_by_lower_row_whatever_the_chunking(chunk_size: int) -> None:
    # Small integer vectors give exact float32 scores with many ties, including at the cut-off.
    rng = np.random.default_rng(1)
    q = rng.integers(-1, 2, size=(20, 3)).astype(np.float32)
    c = rng.integers(-1, 2, size=(200, 3)).astype(np.float32)
    idx, scores = top_k(q, c, k=40, chunk_size=chunk_size)
    ref_idx, ref_scores = _brute_force(q, c, 40)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(scores, ref_scores)


def test_top_k_treats_negative_zero_as_tied_with_zero() -> None:
    q = np.array([[-0.0, 1.0]], dtype=np.float32)
    # Scores: +0, -0, -1, +0 -> the three zeros tie and keep row order.
    c = np.array([[1.0, 0.0], [1.0, -0.0], [0.0, -1.0], [-1.0, 0.0]], dtype=np.float32)
    idx, scores = top_k(q, c, k=4)
    np.testing.assert_array_equal(idx, [[0, 1, 3, 2]])
    np.testing.assert_array_equal(scores, [[0.0, 0.0, 0.0, -1.0]])


@pytest.mark.parametrize("chunk_size", [4, 50, 1024])
def test_top_k_never_returns_the_excluded_row(chunk_size: int) -> None:
    q, c = _random(30, 120, 8, seed=2)
    # Make each excluded row the query's best match, so excluding it changes the answer.
    exclude = np.full(30, -1, dtype=np.int64)
    exclude[::2] = np.arange(15) * 7
    # Unit direction times 10: by Cauchy-Schwarz no other planted row beats a query's own.
    c[exclude[::2]] = 10 * q[::2] / np.linalg.norm(q[::2], axis=1, keepdims=True)
    idx, scores = top_k(q, c, k=10, exclude=exclude, chunk_size=chunk_size)
    for i in range(0, 30, 2):
        assert exclude[i] not in idx[i]
    ref_idx, ref_scores = _brute_force(q, c, 10, exclude)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-5)
    # The excluded row is a real hit without exclusion.
    plain, _ = top_k(q, c, k=10, chunk_size=chunk_size)
    assert all(plain[i, 0] == exclude[i] for i in range(0, 30, 2))


def test_top_k_with_k_above_corpus_size_returns_whole_corpus_sorted() -> None:
    q, c = _random(5, 9, 4, seed=3)
    idx, scores = top_k(q, c, k=100, chunk_size=4)
    ref_idx, ref_scores = _brute_force(q, c, 9)
    assert idx.shape == (5, 9)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-6)


def test_top_k_with_k_above_corpus_size_and_exclusion_pads_only_that_query() -> None:
    # every query lost its last row when any one had an excluded row
    q, c = _random(3, 6, 4, seed=4)
    exclude = np.array([2, -1, 5])
    idx, scores = top_k(q, c, k=100, exclude=exclude, chunk_size=4)
    assert idx.shape == (3, 6)
    assert sorted(idx[1]) == [0, 1, 2, 3, 4, 5]  # the query without an excluded row
    assert sorted(idx[0][:5]) == [0, 1, 3, 4, 5] and sorted(idx[2][:5]) == [0, 1, 2, 3, 4]
    assert idx[0, 5] == idx[2, 5] == -1 and scores[0, 5] == scores[2, 5] == -np.inf
    assert np.isfinite(scores[:, :5]).all()
    assert top_k(q[:1], c[:1], k=3, exclude=np.array([0]))[0].tolist() == [[-1]]


def test_top_k_rejects_bad_input() -> None:
    q, c = _random(3, 6, 4, seed=5)
    with pytest.raises(DataError, match="corpus: expected dimension 4"):
        top_k(q, c[:, :3])
    with pytest.raises(DataError, match=r"exclude: row 1 is 6, outside \[-1, 6\)"):
        top_k(q, c, exclude=np.array([0, 6, -1]))
    with pytest.raises(DataError, match="exclude: expected 3 integer"):
        top_k(q, c, exclude=np.array([0, 1]))
    with pytest.raises(DataError, match="corpus: no rows"):
        top_k(q, c[:0])
    # DiveError, as search_index and ndcg_at_k raise: ValueError (k=0) or numpy's TypeError
    # (k=2.5) escaped an `except DiveError`
    for bad in (0, 2.5, "3"):
        with pytest.raises(DiveError, match=rf"^k must be a positive integer, got {bad!r}$"):
            top_k(q, c, k=bad)  # type: ignore[arg-type]
    with pytest.raises(DiveError, match="chunk_size must be a positive integer, got 0"):
        top_k(q, c, chunk_size=0)
    from dive.evaluate.search import rescore

    with pytest.raises(DiveError, match="k must be a positive integer, got 0"):
        rescore(q, c, np.zeros((3, 2), dtype=np.int64), k=0)


def test_integer_codes_given_where_float_vectors_go_are_refused() -> None:
    # int8 codes of a quantized model were ranked as if they were vectors (build_index and
    # transform refuse them); rescore refused integer vectors but took integer queries
    from dive.api import fit
    from dive.evaluate.search import rescore, top_k_codes
    from dive.export.folder import with_precision

    q, c = _random(5, 40, 16, seed=6)
    model = with_precision(fit(c, method="pca", dim=8), "int8", c)
    codes, queries = model.transform(c), model.embed(q)
    for call in (lambda: top_k(queries, codes), lambda: top_k(codes, c[:, :8]),
                 lambda: search(queries, codes, [str(i) for i in range(5)],
                                [str(i) for i in range(40)])):
        with pytest.raises(DataError, match="expected float embeddings, got dtype int8"):
            call()
    with pytest.raises(DataError, match="queries: expected float embeddings, got dtype int8"):
        top_k_codes(codes[:5], codes, model.runtime_.quantizer)
    with pytest.raises(DataError, match="rescoring queries: expected float embeddings"):
        rescore(codes[:5], c[:, :8], np.zeros((5, 2), dtype=np.int64), k=1)
    top_k_codes(queries, codes, model.runtime_.quantizer)  # the right call still runs


def test_search_builds_run_and_skips_identical_ids() -> None:
    q, c = _random(4, 30, 8, seed=6)
    corpus_ids = [f"d{i}" for i in range(30)]
    # Query "d3" is its own best match, and must not retrieve document "d3".
    c[3] = q[0] * 10
    query_ids = ["d3", "q1", "q2", "q3"]
    run = search(q, c, query_ids, corpus_ids, k=5, chunk_size=7, ignore_identical_ids=True)
    assert list(run) == query_ids
    assert "d3" not in run["d3"]
    # by default a shared id is a coincidence of numbering: the document stays a hit
    assert next(iter(search(q, c, query_ids, corpus_ids, k=5)["d3"])) == "d3"
    assert all(len(docs) == 5 for docs in run.values())
    ref_idx, ref_scores = _brute_force(q, c, 5, np.array([3, -1, -1, -1]))
    for i, qid in enumerate(query_ids):
        assert list(run[qid]) == [corpus_ids[r] for r in ref_idx[i]]
        np.testing.assert_allclose(list(run[qid].values()), ref_scores[i], rtol=1e-5, atol=1e-6)
        assert all(type(v) is float for v in run[qid].values())


def test_search_rejects_inconsistent_ids() -> None:
    q, c = _random(2, 3, 4, seed=7)
    with pytest.raises(DataError, match="query_ids: 1 ids for 2 query rows"):
        search(q, c, ["a"], ["x", "y", "z"])
    with pytest.raises(DataError, match="corpus_ids: 2 ids for 3 corpus rows"):
        search(q, c, ["a", "b"], ["x", "y"])
    with pytest.raises(DataError, match="corpus_ids: row 2 repeats id 'x'"):
        search(q, c, ["a", "b"], ["x", "y", "x"])
    with pytest.raises(DataError, match="query_ids: row 1 repeats id 'a'"):
        search(q, c, ["a", "a"], ["x", "y", "z"])


