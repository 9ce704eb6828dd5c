"""Search over quantized codes and funnel rescoring, against brute-force references."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dive.compressors.precision import Quantizer, calibrate
from dive.errors import DataError
from dive.evaluate.search import rescore, top_k, top_k_codes


def unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def reference_top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Full sort of a score matrix: score descending, row ascending."""
    rows = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    order = np.lexsort((rows, -scores), axis=-1)[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


@pytest.fixture()
def data() -> tuple[np.ndarray, np.ndarray]:
    return unit_rows(40, 24, seed=1), unit_rows(500, 24, seed=2)


@pytest.mark.parametrize("precision", ["float16", "int8"])
def test_dequantised_search_equals_brute_force_on_the_same_codes(
    precision: str, data: tuple[np.ndarray, np.ndarray]
) -> None:
    queries, corpus = data
    quantizer = calibrate(precision, corpus)
    codes = quantizer.encode(corpus)
    # The brute force, written out: the values each code stands for, scored in one product.
    values = (corpus.astype(np.float16).astype(np.float32) if precision == "float16" else
              quantizer.low + (codes.astype(np.float32) + 128.5) / 255 * quantizer.width)
    want_rows, want_scores = reference_top_k(queries @ values.T, 20)
    rows, scores = top_k_codes(queries, codes, quantizer, 20, chunk_size=1000)
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_array_equal(scores, want_scores)
    # In small blocks the products round differently, by float32 rounding only.
    rows, scores = top_k_codes(queries, codes, quantizer, 20, chunk_size=7)
    np.testing.assert_allclose(scores, want_scores, atol=1e-6, rtol=0)
    assert (rows == want_rows).mean() > 0.98


def test_binary_search_ranks_by_hamming_distance_with_ties_by_row(
    data: tuple[np.ndarray, np.ndarray]
) -> None:
    queries, corpus = data
    quantizer = calibrate("binary", corpus)
    codes = quantizer.encode(corpus)
    query_codes = np.packbits(queries > 0, axis=1)
    hamming = np.unpackbits(query_codes[:, None] ^ codes[None], axis=2).sum(axis=2,
                                                                            dtype=np.int64)
    want_rows, want_scores = reference_top_k((24 - 2 * hamming).astype(np.float32), 30)
    assert len(np.unique(want_scores)) < want_scores.size  # there are ties to break
    for chunk in (7, 1000):
        rows, scores = top_k_codes(queries, codes, quantizer, 30, chunk_size=chunk)
        np.testing.assert_array_equal(rows, want_rows)
        np.testing.assert_array_equal(scores, want_scores)


def test_code_search_keeps_the_exclusions(data: tuple[np.ndarray, np.ndarray]) -> None:
    queries, corpus = data
    quantizer = calibrate("int8", corpus)
    exclude = np.arange(40, dtype=np.int64)
    rows, _ = top_k_codes(queries, quantizer.encode(corpus), quantizer, 500, exclude=exclude)
    assert rows.shape == (40, 500) and (rows[:, -1] == -1).all()  # the corpus, less one row
    assert not (rows == exclude[:, None]).any()


def test_codes_of_another_precision_or_width_are_refused(
    data: tuple[np.ndarray, np.ndarray]
) -> None:
    queries, corpus = data
    quantizer = calibrate("binary", corpus)
    with pytest.raises(DataError, match=r"corpus codes: expected binary codes of dtype uint8, "
                                         "got int8"):
        top_k_codes(queries, np.zeros((5, 3), np.int8), quantizer)
    with pytest.raises(DataError, match=r"expected binary codes of shape \(n, 3\), got \(5, 24\)"):
        top_k_codes(queries, np.zeros((5, 24), np.uint8), quantizer)


@pytest.mark.parametrize("precision", ["int8", "binary"])
def test_rescoring_a_candidate_list_covering_the_corpus_equals_exact_float32_search(
    precision: str, data: tuple[np.ndarray, np.ndarray]
) -> None:
    queries, corpus = data
    quantizer = calibrate(precision, corpus)
    exclude = np.where(np.arange(40) % 3 == 0, np.arange(40), -1).astype(np.int64)
    candidates, _ = top_k_codes(queries, quantizer.encode(corpus), quantizer, 10 * 100,
                                exclude=exclude)
    assert candidates.shape[1] == 500  # the factor covers the corpus
    assert ((candidates[:, -1] == -1) == (exclude >= 0)).all()  # less each excluded row
    rows, scores = rescore(queries, corpus, candidates, 10)
    want_rows, want_scores = top_k(queries, corpus, 10, exclude=exclude)
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_allclose(scores, want_scores, atol=1e-6, rtol=0)
    # A short candidate list is a real funnel: its first stage loses some of the exact top 10.
    short, _ = top_k_codes(queries, quantizer.encode(corpus), quantizer, 12, exclude=exclude)
    rows, _ = rescore(queries, corpus, short, 10)
    assert set(rows[:, 0]) <= set(short.ravel())
    if precision == "binary":
        assert (rows != want_rows).any()


def test_rescore_orders_ties_by_row_and_keeps_missing_candidates_last() -> None:
    vectors = np.array([[1, 0], [0, 1], [1, 0], [0.6, 0.8]], np.float32)
    queries = np.array([[1, 0]], np.float32)
    rows, scores = rescore(queries, vectors, np.array([[-1, 3, 2, 1, 0]]), 5)
    np.testing.assert_array_equal(rows, [[0, 2, 3, 1, -1]])
    np.testing.assert_allclose(scores, [[1, 1, 0.6, 0, -np.inf]])


def test_rescore_orders_candidates_tied_in_float32_by_row_whatever_finer_scores_say() -> None:
    """Near-duplicate rows (one vector, its last bits nudged) score within a float32 step of
    each other: ranked on float64 products, rows whose returned float32 scores are equal came
    out in float64 order (row 7 before row 2), not by row ascending as documented."""
    rng = np.random.default_rng(0)
    ties = 0
    for _ in range(20):
        base = np.repeat(rng.standard_normal((1, 16)).astype(np.float32), 8, axis=0)
        nudged = (base.view(np.int32) + rng.integers(-2, 3, base.shape, dtype=np.int32))
        vectors = nudged.view(np.float32)
        query = rng.standard_normal((1, 16)).astype(np.float32)
        candidates = rng.permutation(8)[None, :]
        (rows,), (scores,) = rescore(query, vectors, candidates, 8)
        assert scores.dtype == np.float32 and sorted(rows) == list(range(8))
        assert (np.diff(scores) <= 0).all()
        tied = scores[1:] == scores[:-1]
        assert (rows[1:][tied] > rows[:-1][tied]).all(), (rows, scores)
        ties += int(tied.sum())
    assert ties > 0  # the property was put to the test


def test_rescore_reads_a_memory_mapped_store_in_bounded_blocks(tmp_path: Path) -> None:
    corpus = unit_rows(300, 16, seed=4)
    np.save(tmp_path / "full.npy", corpus)
    stored = np.load(tmp_path / "full.npy", mmap_mode="r")
    queries = unit_rows(25, 16, seed=5)
    candidates = np.tile(np.arange(300), (25, 1))
    rows, _ = rescore(queries, stored, candidates, 5, max_floats=16 * 300)  # one query a block
    np.testing.assert_array_equal(rows, top_k(queries, corpus, 5)[0])


def test_rescore_takes_its_vectors_as_a_list_or_a_tensor_as_it_takes_its_queries() -> None:
    torch = pytest.importorskip("torch")
    vectors = np.array([[1, 0], [0, 1], [0.6, 0.8]], np.float32)
    queries, candidates = np.array([[0, 1]], np.float32), np.array([[0, 1, 2]])
    want = rescore(queries, vectors, candidates, 2)
    for given in (vectors.tolist(), torch.from_numpy(vectors)):  # each an AttributeError
        rows, scores = rescore(queries, given, candidates, 2)
        np.testing.assert_array_equal(rows, want[0])
        np.testing.assert_array_equal(scores, want[1])


def test_rescore_ranks_vectors_off_unit_norm_by_cosine(data: tuple[np.ndarray, np.ndarray]
                                                      ) -> None:
    # Imported vectors need not be unit-norm; a long row must not win on its length alone.
    queries, corpus = data
    candidates = np.tile(np.arange(len(corpus)), (len(queries), 1))
    scales = np.random.default_rng(3).uniform(0.2, 50, (len(corpus), 1)).astype(np.float32)
    want = rescore(queries, corpus, candidates, 10)
    got = rescore(3 * queries, corpus * scales, candidates, 10)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], atol=1e-5)
    corpus[7] = 0
    with pytest.raises(DataError, match=r"full\.npy: row 7 has norm 0"):
        rescore(queries, corpus, candidates, 10, name="full.npy")


def test_rescore_refuses_vectors_of_another_dimension() -> None:
    with pytest.raises(DataError, match=r"rescoring vectors: expected float \(n, 4\) rows"):
        rescore(np.ones((2, 4), np.float32), np.ones((9, 3), np.float32),
                np.zeros((2, 3), np.int64), 2)
    with pytest.raises(DataError, match=r"row indices outside \[-1, 9\)"):
        rescore(np.ones((2, 4), np.float32), np.ones((9, 4), np.float32),
                np.full((2, 3), 9), 2)


def test_quantizer_dimension_must_match_the_queries() -> None:
    quantizer = Quantizer("binary", 16)
    with pytest.raises(DataError, match="queries: expected dimension 16, got 8"):
        top_k_codes(np.ones((1, 8), np.float32), np.zeros((3, 2), np.uint8), quantizer)
