"""`dive.arrays.as_embeddings` checks every row without a corpus-sized temporary."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from dive import arrays
from dive.arrays import BadRowError, as_embeddings
from dive.errors import DataError
from tests.conftest import traced_peak


def test_checking_a_float32_corpus_allocates_about_one_block() -> None:
    # np.isfinite over the whole corpus took n x d bytes (368 MB at 1M x 384)
    corpus = np.random.default_rng(0).standard_normal((400_000, 64)).astype(np.float32)
    checked, peak = traced_peak(lambda: as_embeddings(corpus, name="corpus"))
    assert checked is corpus  # float32 C-order: no copy
    assert peak < corpus.size // 4, f"{peak / 1e6:.1f} MB for {corpus.nbytes / 1e6:.0f} MB"


def test_the_first_bad_row_is_named_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arrays, "FINITE_BLOCK", 16)  # 2 rows of 8 a block
    x = np.ones((9, 8), dtype=np.float32)
    x[7, 3], x[8, 0] = np.inf, np.nan
    with pytest.raises(BadRowError, match=r"^corpus: row 7 contains NaN or inf$"):
        as_embeddings(x, name="corpus")
    wide = np.ones((9, 8))
    wide[5, 1] = 1e39
    with pytest.raises(BadRowError, match=r"^corpus: row 5 has a value beyond float32's range"):
        as_embeddings(wide, name="corpus")


def test_a_float64_row_too_small_for_float32_is_normalised_from_its_own_values() -> None:
    # float32 rounds 1e-50 to 0: the row was refused as "norm 0", though it has a direction
    from dive.arrays import as_unit_rows

    wide = np.array([[3e-50, 4e-50], [3.0, 4.0]])
    np.testing.assert_allclose(as_unit_rows(wide), [[0.6, 0.8], [0.6, 0.8]], rtol=1e-6)
    with pytest.raises(BadRowError, match=r"^x: row 1 has norm 0 and cannot be L2-normalised"):
        as_unit_rows(np.array([[1.0, 0.0], [0.0, 0.0]]), name="x")


def test_a_float64_row_whose_squares_underflow_is_normalised_too() -> None:
    """A row of 1e-200s (norm 5e-200, which float64 holds) was refused as "norm 0": its
    squares, 1e-400, are 0 in float64 too."""
    from dive.arrays import as_unit_rows

    wide = np.array([[3e-200, 4e-200], [3.0, 4.0], [0.0, 5e-324]])
    np.testing.assert_allclose(as_unit_rows(wide), [[0.6, 0.8], [0.6, 0.8], [0.0, 1.0]],
                               rtol=1e-6)


def test_a_row_off_unit_norm_by_more_than_the_tolerance_is_rescaled() -> None:
    """Guards `UNIT_NORM_TOLERANCE` (1e-3): a row of norm 1.005 is rescaled; one of norm
    1.0005, within it, passes through bit for bit."""
    from dive.arrays import as_unit_rows

    x = (np.array([[0.6, 0.8], [0.8, 0.6]]) * [[1.005], [1.0005]]).astype(np.float32)
    unit = as_unit_rows(x)
    assert np.linalg.norm(unit[0]) == pytest.approx(1, abs=1e-6)
    np.testing.assert_array_equal(unit[1], x[1])


def _resident_file_kb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("RssFile:"))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_row_blocks_release_a_mapped_arrays_pages_as_they_go(tmp_path: Path) -> None:
    from dive.arrays import load_npy, row_blocks

    x = np.random.default_rng(0).standard_normal((16384, 512), dtype=np.float32)  # 32 MiB
    np.save(tmp_path / "x.npy", x)
    mapped = np.ascontiguousarray(load_npy(tmp_path / "x.npy", mmap=True), dtype=np.float32)
    before, peak, blocks = _resident_file_kb(), 0, []
    for block in row_blocks(mapped, 1024):  # 2 MiB blocks
        assert not isinstance(block, np.memmap) and block.base is None  # a copy of its own
        blocks.append(block)
        peak = max(peak, _resident_file_kb() - before)
    np.testing.assert_array_equal(np.concatenate(blocks), x)
    assert peak < 8 * 1024  # KiB: a block or two, where reading through the map keeps 32 MiB
    # read through the map with no release, the same rows stay resident (the check can fail)
    before = _resident_file_kb()
    assert float(mapped.sum()) == pytest.approx(float(x.sum()), rel=1e-3)
    assert _resident_file_kb() - before > 24 * 1024


def test_row_blocks_read_the_file_that_was_opened(tmp_path: Path) -> None:
    from dive.arrays import load_npy, row_blocks

    x = np.arange(4096 * 8, dtype=np.float32).reshape(4096, 8)
    np.save(tmp_path / "x.npy", x)
    mapped = load_npy(tmp_path / "x.npy", mmap=True)
    np.save(tmp_path / "y.npy", x[::-1])
    os.replace(tmp_path / "y.npy", tmp_path / "x.npy")  # another writer replaces it meanwhile
    np.testing.assert_array_equal(np.concatenate(list(row_blocks(mapped, 1000))), x)
    # a file shortened in place: one clear error, where reading through the map is a bus error
    np.save(tmp_path / "z.npy", x)
    shortened = load_npy(tmp_path / "z.npy", mmap=True)
    os.truncate(tmp_path / "z.npy", 128 + 1000 * 8 * 4)
    with pytest.raises(DataError, match=r"z\.npy: now holds 32128 bytes, fewer than when it was"):
        list(row_blocks(shortened, 1000))
    # an array in memory, or not in C order: its slices as they are
    assert all(np.shares_memory(b, x) for b in row_blocks(x, 1000))
    assert [len(b) for b in row_blocks(np.asfortranarray(x), 1000)] == [1000] * 4 + [96]


def test_row_blocks_keep_the_edits_of_a_copy_on_write_map(tmp_path: Path) -> None:
    # releasing a private map's pages threw the caller's edits away: fit and transform read
    # the file's rows, and the caller's array held them again afterwards
    import dive
    from dive.arrays import row_blocks

    x = np.random.default_rng(0).standard_normal((300, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    np.save(tmp_path / "x.npy", x)
    edited = np.load(tmp_path / "x.npy", mmap_mode="c")
    edited[:] = -x
    np.testing.assert_array_equal(np.concatenate(list(row_blocks(edited, 64))), -x)
    np.testing.assert_array_equal(edited, -x)
    pca = dive.fit(x, method="pca", dim=8)
    np.testing.assert_allclose(pca.transform(edited), pca.transform(-x), atol=1e-6)
    np.testing.assert_array_equal(edited, -x)
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), x)  # the file is untouched


@pytest.mark.parametrize("wrap", ["torch", "memoryview"])
def test_rows_rescaled_to_unit_norm_never_write_into_the_callers_buffer(wrap: str) -> None:
    # np.asarray reads a torch tensor or a memoryview without a copy: the caller's rows were
    # rescaled in place by fit and transform
    x = np.full((3, 4), 2.0, np.float32)
    before = x.copy()
    if wrap == "torch":
        torch = pytest.importorskip("torch")
        given: object = torch.from_numpy(x)
    else:
        given = memoryview(x)
    out = arrays.as_unit_rows(given)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(x, before)


def test_rescaling_rows_costs_about_one_copy_of_them() -> None:
    """Rows none of unit norm (raw vectors) were rescaled all at once in float64: a chunk's
    gather, a float64 copy and a float64 quotient beside it, about twice the peak memory
    docs/scale.md gives for `dive compress`. A block at a time, the peak is the one float32
    copy the caller's buffer requires plus a block (and a row the block check finds bad is
    still named by its row in the whole array)."""
    x = np.random.default_rng(0).standard_normal((100_000, 64)).astype(np.float32)
    out, peak = traced_peak(lambda: arrays.as_unit_rows(x))
    assert peak < 1.5 * x.nbytes
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(out, arrays.l2_normalize(x.astype(np.float64)))
    x[arrays.RESCALE_BLOCK + 7] = 0.0
    with pytest.raises(BadRowError, match=rf"row {arrays.RESCALE_BLOCK + 7}\b"):
        arrays.as_unit_rows(x)


def test_rows_of_different_lengths_are_one_error_naming_the_input() -> None:
    """A ragged list given to `transform` (or as queries) was numpy's ValueError about an
    "inhomogeneous shape", from deep inside."""
    import dive

    corpus = np.random.default_rng(0).standard_normal((100, 16)).astype(np.float32)
    model = dive.fit(corpus, method="pca", dim=4)
    ragged = [[0.1] * 16, [0.1] * 15]
    with pytest.raises(DataError, match=r"^input: not one \(n, dim\) array: its rows have "
                                        r"different lengths$"):
        model.transform(ragged)
    with pytest.raises(DataError, match=r"^queries: not one \(n, dim\) array"):
        dive.fit(corpus, method="dive", dim=4, queries=ragged, relevant=[[0], [1]])


def test_vectors_of_dimension_zero_are_named_as_such() -> None:
    """They were refused as 'row 0 has norm 0 and cannot be L2-normalised'."""
    import dive

    with pytest.raises(DataError, match=r"^corpus embeddings: the vectors have dimension 0 "
                                        r"\(shape \(5, 0\)\)$"):
        dive.fit(np.zeros((5, 0), np.float32), method="pca")


def test_labelled_queries_of_one_dimension_name_their_shape() -> None:
    from dive.compressors import LabelledQueries

    with pytest.raises(DataError, match=r"2-d numpy array \(m, D\), got shape \(32,\)$"):
        LabelledQueries(np.ones(32, np.float32), ({0: 1},))


def _appended_past_header(path: Path) -> Path:
    """An .npy file whose header says 2 rows, holding 5: an appending writer stopped before
    it rewrote the header."""
    with path.open("wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<f4", "fortran_order": False, "shape": (2, 4)})
        handle.write(np.ones((5, 4), np.float32).tobytes())
    return path


def test_rows_past_what_an_npy_header_declares_are_refused_by_every_reader(
    tmp_path: Path,
) -> None:
    """numpy reads the 2 rows and drops the rest without a word: `dive compress` wrote 2
    vectors of 5, exit 0, and imports read 2."""
    from dive.scale.formats import read_npy_header

    path = _appended_past_header(tmp_path / "x.npy")
    said = (rf"^{path}: 48 bytes follow the \(2, 4\) array its header declares \(rows appended "
            r"without updating the header\?\), which would be left out unread$")
    for mmap in (False, True):
        with pytest.raises(DataError, match=said):
            arrays.load_npy(path, mmap=mmap)
    with pytest.raises(DataError, match=said):
        read_npy_header(path)
    np.save(tmp_path / "whole.npy", np.ones((5, 4), np.float32))
    assert arrays.load_npy(tmp_path / "whole.npy").shape == (5, 4)
    assert read_npy_header(tmp_path / "whole.npy").shape == (5, 4)
    for version in ((2, 0), (3, 0)):  # headers of 4-byte length (3.0 was let through)
        with (tmp_path / "v.npy").open("wb") as handle:
            np.lib.format.write_array(handle, np.ones((5, 4), np.float32), version=version)
        assert arrays.load_npy(tmp_path / "v.npy").shape == (5, 4)
        with (tmp_path / "v.npy").open("ab") as handle:
            handle.write(bytes(32))
        with pytest.raises(DataError, match=r"32 bytes follow the \(5, 4\) array"):
            arrays.load_npy(tmp_path / "v.npy")
