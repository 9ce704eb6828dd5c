"""Fixtures for the streaming compressor: a small saved model and store writers.

The model is PCA 32 -> 8 fitted on random vectors and saved as a model folder, so the tests
go through the same numpy-only loading path as `dive compress`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dive.compressors.pca import PCA
from dive.compressors.runtime import Runtime

DIM, OUT_DIM = 32, 8


def vectors(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, dim)).astype(np.float32)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dive.export import save

    folder = tmp_path_factory.mktemp("model") / "pca"
    save(PCA(dim=OUT_DIM).fit(vectors(500, seed=123)), folder)
    return folder


@pytest.fixture(scope="session")
def runtime(model_dir: Path) -> Runtime:
    from dive.export import load

    return load(model_dir).runtime_


def write_parquet(
    path: Path,
    x: np.ndarray,
    *,
    ids: list[str] | None = None,
    row_group_size: int = 1000,
    fixed: bool = True,
    column: str = "vector",
) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    flat = pa.array(x.reshape(-1))
    if fixed:
        vec = pa.FixedSizeListArray.from_arrays(flat, x.shape[1])
    else:
        offsets = pa.array(np.arange(0, x.size + 1, x.shape[1], dtype=np.int32))
        vec = pa.ListArray.from_arrays(offsets, flat)
    ids = ids if ids is not None else [f"doc{i}" for i in range(len(x))]
    pq.write_table(pa.table({"id": ids, column: vec}), path, row_group_size=row_group_size)


def read_parquet(path: Path, column: str = "vector") -> tuple[list[str], np.ndarray, object]:
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    col = table.column(column).combine_chunks()
    y = col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), col.type.list_size)
    return table.column("id").to_pylist(), y, table.schema


class Stores:
    """Store helpers handed to tests as a fixture (conftest modules are not importable)."""

    dim, out_dim = DIM, OUT_DIM
    vectors = staticmethod(vectors)
    write_parquet = staticmethod(write_parquet)
    read_parquet = staticmethod(read_parquet)


@pytest.fixture()
def stores() -> type[Stores]:
    return Stores
