"""FAISS indexes over quantized codes: the same ranking as dive's own code search, and the
bytes per vector a written index file really stores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dive.compressors.precision import PRECISIONS, bytes_per_vector, calibrate
from dive.errors import DataError, DiveError
from dive.evaluate.search import top_k_codes

faiss = pytest.importorskip("faiss")

from dive.export.faiss_index import (  # noqa: E402
    build_index,
    load_index,
    meta_path,
    save_index,
    search_index,
)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    faiss.omp_set_num_threads(1)


def assert_same_top_k(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray],
                      atol: float) -> None:
    """Same scores rank by rank; every row scored clearly above the k-th is in both lists."""
    np.testing.assert_allclose(got[1], want[1], atol=atol, rtol=0)
    for rows, want_rows, want_scores in zip(got[0], want[0], want[1], strict=True):
        sure = want_rows[want_scores > want_scores[-1] + atol]
        assert set(sure.tolist()) <= set(rows.tolist())


@pytest.mark.parametrize("precision", ["float16", "int8", "binary"])
def test_code_index_ranks_like_the_evaluator_on_the_same_codes(precision: str,
                                                               make_inputs: Any) -> None:
    corpus, queries = make_inputs(600, 20, seed=1), make_inputs(40, 20, seed=2)
    quantizer = calibrate(precision, corpus)
    codes = quantizer.encode(corpus)
    index = build_index(codes, quantizer=quantizer)
    assert (index.precision, index.dim, len(index)) == (precision, 20, 600)
    got = search_index(index, queries, 15)
    want = top_k_codes(queries, codes, quantizer, 15)
    assert_same_top_k(got, want, atol=0 if precision == "binary" else 1e-5)


def test_int8_index_holds_the_model_codes_byte_for_byte(make_inputs: Any) -> None:
    corpus = make_inputs(50, 12, seed=3)
    quantizer = calibrate("int8", corpus)
    codes = quantizer.encode(corpus)
    index = build_index(codes, quantizer=quantizer)
    stored = faiss.vector_to_array(index.index.codes).reshape(50, 12)
    np.testing.assert_array_equal(stored.astype(np.int16) - 128, codes)
    # FAISS would have made the same codes from the float vectors, on the same grid.
    np.testing.assert_array_equal(index.index.sa_encode(corpus), stored)
    np.testing.assert_allclose(index.index.reconstruct_n(0, 50), quantizer.decode(codes),
                               atol=1e-6, rtol=0)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_bytes_per_vector_is_what_the_written_index_stores(precision: str, tmp_path: Path,
                                                           make_inputs: Any) -> None:
    dim = 13  # not a multiple of 8: binary pads its last byte
    sizes = {}
    for n in (100, 300):
        corpus = make_inputs(n, dim, seed=n)
        quantizer = calibrate(precision, corpus)
        path = save_index(build_index(quantizer.encode(corpus), quantizer=quantizer),
                          tmp_path / f"{n}.faiss")
        sizes[n] = path.stat().st_size
        assert load_index(path).bytes_per_vector == bytes_per_vector(precision, dim)
    assert (sizes[300] - sizes[100]) / 200 == bytes_per_vector(precision, dim)


@pytest.mark.parametrize("precision", ["int8", "binary"])
def test_code_index_saves_and_loads_with_its_precision(precision: str, tmp_path: Path,
                                                      make_inputs: Any) -> None:
    corpus, queries = make_inputs(200, 16, seed=1), make_inputs(10, 16, seed=2)
    quantizer = calibrate(precision, corpus)
    index = build_index(quantizer.encode(corpus), quantizer=quantizer,
                        ids=[f"d{i}" for i in range(200)], model_sha256="ab" * 32)
    path = save_index(index, tmp_path / "i.faiss")
    again = load_index(path)
    assert (again.precision, again.dim, again.model_sha256) == (precision, 16, "ab" * 32)
    assert again.ids == index.ids
    for before, after in zip(search_index(index, queries, 5), search_index(again, queries, 5),
                             strict=True):
        np.testing.assert_array_equal(before, after)


def test_a_meta_file_that_disagrees_with_the_index_is_refused(tmp_path: Path,
                                                              make_inputs: Any) -> None:
    path = save_index(build_index(make_inputs(20, 8)), tmp_path / "i.faiss")
    meta = json.loads(meta_path(path).read_text())
    meta_path(path).write_text(json.dumps({**meta, "precision": "int8"}))
    with pytest.raises(DataError, match=r"i\.faiss: holds 32-byte vectors of dimension 8, but "
                                         r"i\.faiss\.meta\.json says int8 of dimension 8$"):
        load_index(path)
    without = {k: v for k, v in meta.items() if k != "dim"}  # it read "of dimension None"
    meta_path(path).write_text(json.dumps({**without, "precision": "int8"}))
    with pytest.raises(DataError, match=r"i\.faiss\.meta\.json says int8$"):
        load_index(path)
    meta_path(path).write_text(json.dumps({**meta, "precision": "int4"}))
    with pytest.raises(DataError, match="precision 'int4' is not one of"):
        load_index(path)
    codes = save_index(build_index(calibrate("int8", make_inputs(20, 8)).encode(make_inputs(20, 8)),
                                   quantizer=calibrate("int8", make_inputs(20, 8))),
                       tmp_path / "c.faiss")
    meta_path(codes).unlink()  # a file that is not there says nothing
    with pytest.raises(DataError, match=r"c\.faiss: holds 8-byte vectors of dimension 8, but "
                                         r"c\.faiss\.meta\.json, which says its precision, is "
                                         "missing"):
        load_index(codes)


def test_a_binary_index_whose_meta_lacks_its_dim_is_refused(tmp_path: Path,
                                                           make_inputs: Any) -> None:
    """A binary index stores whole bytes: without the meta's dim, 12-d codes loaded as 16-d,
    the 4 padding bits counted as dimensions."""
    vectors = make_inputs(20, 12)
    quantizer = calibrate("binary", vectors)
    path = save_index(build_index(quantizer.encode(vectors), quantizer=quantizer),
                      tmp_path / "b.faiss")
    assert load_index(path).dim == 12
    meta = json.loads(meta_path(path).read_text())
    del meta["dim"]
    meta_path(path).write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"b\.faiss\.meta\.json: a binary index needs its "
                                        "vectors' dim$"):
        load_index(path)


def test_codes_go_into_the_flat_index_only(make_inputs: Any) -> None:
    corpus = make_inputs(20, 8)
    quantizer = calibrate("int8", corpus)
    with pytest.raises(DiveError, match="int8 codes go into the exact flat index"):
        build_index(quantizer.encode(corpus), "hnsw", quantizer=quantizer)
    with pytest.raises(DataError, match="compressed codes: expected int8 codes of dtype int8"):
        build_index(corpus, quantizer=quantizer)
