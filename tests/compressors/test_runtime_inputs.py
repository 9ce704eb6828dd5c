"""The runtime's input contract: unit rows pass bit for bit, others are normalised or refused."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from dive.compressors import LabelledQueries, TrainingData, make_compressor
from dive.compressors.pca import PCA
from dive.compressors.runtime import Adapter, Runtime
from dive.errors import DataError, DiveError


def adapter_runtime(dim: int = 16, out: int = 4, seed: int = 0) -> Runtime:
    rng = np.random.default_rng(seed)

    def arr(*shape: int) -> np.ndarray:
        return (0.3 * rng.standard_normal(shape)).astype(np.float32)

    return Runtime(dim, Adapter(arr(8, dim), arr(8), arr(dim, 8), arr(dim)),
                   center=arr(dim), projection=arr(out, dim))


def test_scaled_inputs_give_the_output_of_the_unit_inputs(corpus: np.ndarray) -> None:
    runtime = adapter_runtime()
    want = runtime(corpus)
    for scale in (0.2, 50.0, 1e30, 1e-30):
        np.testing.assert_allclose(runtime(corpus * np.float32(scale)), want, atol=1e-6, rtol=0)
    pca = PCA(dim=4).fit(corpus)
    np.testing.assert_array_equal(
        np.argsort(-(pca.transform(corpus[:5] * 50) @ pca.transform(corpus).T), axis=1),
        np.argsort(-(pca.transform(corpus[:5]) @ pca.transform(corpus).T), axis=1))


def test_unit_rows_pass_bit_for_bit(corpus: np.ndarray) -> None:
    runtime = adapter_runtime()
    x = corpus.copy()
    np.testing.assert_array_equal(runtime(x), runtime._apply(x))
    np.testing.assert_array_equal(x, corpus)  # the caller's array is never rescaled in place
    x[3] *= 50
    runtime(x)
    np.testing.assert_array_equal(x[3], corpus[3] * 50)


def test_real_scifact_embeddings_pass_bit_for_bit(shared_embeddings: Path) -> None:
    corpus = np.load(shared_embeddings / "all-MiniLM-L6-v2" / "scifact" / "corpus.npy")
    runtime = PCA(dim=96).fit(corpus[:2000]).fitted_runtime()
    np.testing.assert_array_equal(runtime(corpus), runtime._apply(corpus))


def test_a_row_that_cannot_be_normalised_is_refused_with_its_number(corpus: np.ndarray) -> None:
    x = corpus[:6].copy()
    x[4] = 0
    with pytest.raises(DataError, match=r"input: row 4 has norm 0 and cannot be L2-normalised"):
        adapter_runtime()(x)


def test_fit_normalises_the_corpus_it_learns_from(corpus: np.ndarray) -> None:
    a = PCA(dim=4).fit(corpus).transform(corpus)
    b = PCA(dim=4).fit(corpus * 50).transform(corpus)
    np.testing.assert_allclose(a, b, atol=1e-5)
    x = corpus.copy()
    x[7] = 0
    with pytest.raises(DataError, match="corpus embeddings: row 7 has norm 0"):
        PCA(dim=4).fit(x)


def test_validation_queries_of_another_dimension_are_one_data_error(
    corpus: np.ndarray, make_labels: Callable[..., TrainingData]
) -> None:
    """Guards checking the validation queries like the training ones: a wrong dimension was
    torch's "mat1 and mat2 shapes cannot be multiplied" from inside the fit."""
    train = make_labels(10).train
    wrong = LabelledQueries(np.random.default_rng(2).standard_normal((6, 12)).astype(np.float32),
                            train.relevant[:6])
    with pytest.raises(DataError, match=r"^validation queries: expected dimension 16, got 12"):
        make_compressor("search-adaptor:steps=5:eval_every=5", 8).fit(
            corpus, TrainingData(train, wrong))


@pytest.mark.parametrize("spec", ["dive:steps=2", "search-adaptor:steps=2"])
def test_a_learned_fit_takes_a_read_only_memory_mapped_corpus_without_a_warning(
    spec: str, tmp_path: Path
) -> None:
    # torch warned once per process that writing to the array was "undefined behavior", and
    # under -W error no learned method could fit a corpus read with np.load(mmap_mode="r")
    corpus = np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32)
    np.save(tmp_path / "corpus.npy", corpus / np.linalg.norm(corpus, axis=1, keepdims=True))
    code = f"""
import numpy as np
from dive.compressors import make_compressor
mapped = np.load({str(tmp_path / "corpus.npy")!r}, mmap_mode="r")
copy = np.array(mapped)
same = np.array_equal(make_compressor({spec!r}, 4).fit(mapped).transform(copy),
                      make_compressor({spec!r}, 4).fit(copy).transform(copy))
print(same)
"""
    run = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                         text=True)
    assert (run.returncode, run.stderr, run.stdout) == (0, "", "True\n")


@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.uint8, np.bool_])
def test_integer_or_bool_input_is_refused_not_cast(corpus: np.ndarray, dtype: type) -> None:
    # Token ids, int8 codes or a mask are not embeddings: casting them compresses nonsense.
    pca = PCA(dim=4).fit(corpus)
    codes = (corpus * 100).astype(dtype)
    name = np.dtype(dtype).name
    with pytest.raises(DataError, match=rf"^input: expected float embeddings, got dtype {name}$"):
        pca.transform(codes)
    with pytest.raises(DataError, match=rf"^corpus embeddings: expected float embeddings, got "
                                        rf"dtype {name}$"):
        PCA(dim=4).fit(codes)
    pca.transform(corpus.astype(np.float64))  # any float width is fine


def test_blocks_compress_each_chunk_and_name_a_bad_row_over_all_of_them(
    corpus: np.ndarray,
) -> None:
    runtime = adapter_runtime()
    x = corpus[:40].copy()
    chunks = [x[i : i + 16] for i in range(0, 40, 16)]
    got = np.concatenate(list(runtime.blocks(chunks)))
    np.testing.assert_allclose(got, runtime(x), atol=1e-6, rtol=0)  # BLAS splits differ by ulps
    x[35] = 0
    with pytest.raises(DataError, match=r"^corpus\.npy: row 35 has norm 0 and cannot be"):
        list(runtime.blocks(chunks, name="corpus.npy"))


@pytest.mark.parametrize("batch_size", [-1, 0, 2.5, True])
@pytest.mark.parametrize("call", ["__call__", "embed"])
def test_a_batch_size_below_one_or_not_an_integer_is_refused(corpus: np.ndarray, call: str,
                                                             batch_size: object) -> None:
    """-1 skipped every batch and returned uninitialised memory as the output; 0 was range()'s
    ValueError."""
    with pytest.raises(DiveError, match=f"^batch_size must be a positive integer, got "
                                        f"{batch_size!r}$"):
        getattr(adapter_runtime(), call)(corpus, batch_size=batch_size)


def test_a_row_with_no_part_in_the_compressed_space_is_refused_not_output_as_zeros() -> None:
    """truncate to 8 of a vector with nothing in its first 8 coordinates gave an all-zero
    output (search ranked every document at score 0, exit 0)."""
    x = np.zeros((3, 32), np.float32)
    x[:, 0] = 1.0
    x[1] = 0.0
    x[1, 20] = 1.0
    with pytest.raises(DataError, match=r"^input: row 1 has no part in the compressed space"):
        Runtime(32, projection=np.eye(8, 32, dtype=np.float32))(x)


def test_an_output_beyond_float32_range_is_refused_not_output_as_zeros() -> None:
    """A projection scaled by 1e20 (finite weights) overflowed the norm to inf, and every
    row came out as zeros, exit 0."""
    x = np.zeros((3, 32), np.float32)
    x[:, 0] = 1.0
    projection = np.eye(8, 32, dtype=np.float32) * np.float32(1e20)
    with pytest.raises(DataError, match=r"^input: row 0 has an output beyond float32's range"):
        Runtime(32, projection=projection)(x)
    np.testing.assert_array_equal(Runtime(32, projection=projection / 1e20)(x)[:, 0], 1.0)


def test_an_output_of_rounding_size_is_refused_naming_its_row_in_the_whole_input() -> None:
    """A row with 1e-14 in the kept coordinates came out of norm 0.028 (divided by the floor),
    and a refused row was named by its place in its batch (row 3 of row 7)."""
    x = np.zeros((8, 32), np.float32)
    x[:, 0] = 1.0
    x[7] = 0.0
    x[7, 20], x[7, 1] = 1.0, 1e-14
    runtime = Runtime(32, projection=np.eye(8, 32, dtype=np.float32))
    for batch_size in (65536, 4):
        with pytest.raises(DataError, match=r"^input: row 7 has no part in the compressed "
                                            r"space \(its output's norm is 1\.0e-14\)"):
            runtime.embed(x, batch_size=batch_size)
