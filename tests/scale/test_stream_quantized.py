"""`compress_store` with a model saved at another precision writes the model's codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dive.cli import main
from dive.compressors.runtime import Runtime
from dive.errors import DiveError
from dive.export import load, save
from dive.scale import compress_store


@pytest.fixture(scope="module", params=["int8", "binary"])
def quantized_dir(request: pytest.FixtureRequest, model_dir: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dive.export.folder import with_precision

    corpus = np.random.default_rng(5).standard_normal((400, 32)).astype(np.float32)
    folder = tmp_path_factory.mktemp("quantized") / request.param
    return save(with_precision(model_dir, request.param, corpus), folder)


def test_npy_output_is_the_model_codes(tmp_path: Path, quantized_dir: Path, stores) -> None:
    runtime: Runtime = load(quantized_dir).runtime_
    x = stores.vectors(500)
    np.save(tmp_path / "x.npy", x)
    result = compress_store(quantized_dir, tmp_path / "x.npy", tmp_path / "y.npy",
                            batch_size=128, progress=False)
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == runtime.quantizer.dtype and y.shape == (500, runtime.code_width)  # type: ignore[union-attr]
    assert result.dtype == y.dtype.name
    np.testing.assert_array_equal(y, runtime(x, batch_size=128))


def test_parquet_output_is_a_list_of_codes(tmp_path: Path, quantized_dir: Path, stores) -> None:
    pytest.importorskip("pyarrow")
    runtime: Runtime = load(quantized_dir).runtime_
    x = stores.vectors(300, seed=2)
    stores.write_parquet(tmp_path / "x.parquet", x)
    compress_store(quantized_dir, tmp_path / "x.parquet", tmp_path / "y.parquet",
                   batch_size=100, progress=False)
    ids, y, schema = stores.read_parquet(tmp_path / "y.parquet")
    assert ids == [f"doc{i}" for i in range(300)]
    assert str(schema.field("vector").type.value_type) == runtime.quantizer.dtype.name  # type: ignore[union-attr]
    np.testing.assert_array_equal(y, runtime(x, batch_size=100))


def test_a_dtype_cast_applies_to_float32_models_only(tmp_path: Path, quantized_dir: Path,
                                                     stores) -> None:
    np.save(tmp_path / "x.npy", stores.vectors(10))
    with pytest.raises(DiveError, match="codes; dtype float16 applies to float32 models only"):
        compress_store(quantized_dir, tmp_path / "x.npy", tmp_path / "y.npy", dtype="float16",
                       progress=False)
    assert main(["compress", str(quantized_dir), "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "y.npy"), "--no-progress"]) == 0
    assert np.load(tmp_path / "y.npy").dtype == load(quantized_dir).runtime_.quantizer.dtype  # type: ignore[union-attr]


def test_the_line_printed_says_what_a_vector_is_stored_as(
    tmp_path: Path, quantized_dir: Path, stores, capsys: pytest.CaptureFixture[str]
) -> None:
    """A binary model's 8 dims are 1 byte of sign bits, where the line said '(uint8)'."""
    np.save(tmp_path / "x.npy", stores.vectors(10))
    assert main(["compress", str(quantized_dir), "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "y.npy"), "--no-progress"]) == 0
    stored = "binary: 1 byte of sign bits" if quantized_dir.name == "binary" else "int8"
    assert f"compressed 10 vectors 32 -> 8 ({stored}) in " in capsys.readouterr().out
