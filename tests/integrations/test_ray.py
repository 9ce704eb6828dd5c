"""`CompressBatch`, the Ray Data callable, on one Arrow batch (no cluster needed)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from dive.compressors.runtime import Runtime
from dive.errors import DataError

pa = pytest.importorskip("pyarrow")

from dive.integrations.ray import CompressBatch  # noqa: E402


def test_a_zero_row_is_a_data_error_naming_its_id_that_ray_can_carry() -> None:
    """A zero vector raised the runtime's BadRowError, which names the row within Ray's batch
    ("input: row 2") and does not pickle, so Ray reported a "Failed to deserialize exception"
    instead of the bad row."""
    x = np.eye(4, dtype=np.float32)
    x[2] = 0
    batch = pa.table({"id": ["a", "b", "c", "d"],
                      "vector": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 4)})
    step = CompressBatch(Runtime(input_dim=4), "vector", "vector", id_column="id")
    with pytest.raises(DataError, match=r"column 'vector': the row with id 'c' has norm 0 ") as err:
        step(batch)
    assert str(pickle.loads(pickle.dumps(err.value))) == str(err.value)


def test_integer_vectors_are_refused_as_codes_not_compressed_as_floats() -> None:
    """A list column of integers (int8 codes) read through `compress_dataset` was cast to
    floats and compressed without a word, where the local engine refuses it."""
    codes = np.arange(8, dtype=np.int8).reshape(2, 4) + 1
    batch = pa.table({"vector": pa.FixedSizeListArray.from_arrays(pa.array(codes.reshape(-1)),
                                                                  4)})
    step = CompressBatch(Runtime(input_dim=4), "vector", "vector")
    with pytest.raises(DataError, match=r"column 'vector' holds integers \(int8\), not float "
                                        "embeddings"):
        step(batch)
    floats = batch.set_column(0, "vector", pa.FixedSizeListArray.from_arrays(
        pa.array(codes.reshape(-1).astype(np.float32)), 4))
    assert step(floats).num_rows == 2


@pytest.mark.parametrize("scale", [1e-43, 1e-50])
def test_a_float64_row_far_below_float32_is_compressed_as_transform_does(scale: float) -> None:
    """Read as float32 first, a row of 1e-43s came out in another direction and one of 1e-50s
    was refused; `transform` normalises from the float64 values."""
    x = np.random.default_rng(0).standard_normal((3, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    runtime = Runtime(input_dim=8, projection=np.eye(4, 8, dtype=np.float32))
    batch = pa.table({"vector": pa.FixedSizeListArray.from_arrays(
        pa.array((x * [[1], [scale], [1]]).reshape(-1)), 8)})
    out = CompressBatch(runtime, "vector", "vector")(batch).column("vector").combine_chunks()
    got = out.flatten().to_numpy().reshape(3, 4)
    np.testing.assert_allclose(got, runtime(x), atol=1e-6)


def test_a_parquet_file_ray_would_skip_is_refused_before_ray_starts(tmp_path: Path) -> None:
    """Ray Data skips files named with a leading '_' where the local engine reads them: the
    Ray run compressed 1000 of 3000 rows, exit 0."""
    from dive.integrations.ray import _parquet_files

    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"id": ["a"], "vector": pa.FixedSizeListArray.from_arrays(
        pa.array(np.ones(4, np.float32)), 4)})
    (tmp_path / "in" / "part").mkdir(parents=True)
    pq.write_table(table, tmp_path / "in" / "a.parquet")
    pq.write_table(table, tmp_path / "in" / ".hidden.parquet")
    assert _parquet_files(tmp_path / "in") == [tmp_path / "in" / "a.parquet"]
    for name in ("_b.parquet", "_part/c.parquet"):
        path = tmp_path / "in" / name
        path.parent.mkdir(exist_ok=True)
        pq.write_table(table, path)
        with pytest.raises(DataError, match=rf"^{path}: Ray Data skips Parquet files and "
                                            r"folders whose names start with '_'"):
            _parquet_files(tmp_path / "in")
        path.unlink()
