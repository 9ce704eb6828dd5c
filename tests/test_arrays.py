"""`dive.arrays.as_embeddings` checks every row without a corpus-sized temporary."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from dive import arrays
from dive.arrays import BadRowError, as_embeddings


def test_checking_a_float32_corpus_allocates_about_one_block() -> None:
    # np.isfinite over the whole corpus took n x d bytes (368 MB at 1M x 384)
    corpus = np.random.default_rng(0).standard_normal((400_000, 64)).astype(np.float32)
    tracemalloc.start()
    try:
        assert as_embeddings(corpus, name="corpus") is corpus  # float32 C-order: no copy
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
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


def test_row_blocks_read_a_mapped_npy_from_its_file(tmp_path: Path) -> None:
    from dive.arrays import _mapped_file, load_npy, row_blocks

    x = np.arange(70 * 3, dtype=np.float32).reshape(70, 3)
    np.save(tmp_path / "x.npy", x)
    mapped = load_npy(tmp_path / "x.npy", mmap=True)
    viewed = np.ascontiguousarray(mapped, dtype=np.float32)  # a plain view, as Embeddings keeps
    assert _mapped_file(viewed) == (mapped.filename, mapped.offset)
    blocks = list(row_blocks(viewed, 32))
    assert [len(b) for b in blocks] == [32, 32, 6]
    assert not any(isinstance(b, np.memmap) or b.base is not None for b in blocks)  # own buffers
    np.testing.assert_array_equal(np.concatenate(blocks), x)
    # part of a file, or an array in memory: sliced as it is
    assert _mapped_file(mapped[1:]) is None and _mapped_file(x) is None
    np.testing.assert_array_equal(np.concatenate(list(row_blocks(mapped[5:], 32))), x[5:])
