"""ONNX export: onnxruntime reproduces the numpy runtime to 1e-5, for every runtime shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dive.compressors.frozen import Frozen
from dive.compressors.pca import PCA
from dive.compressors.runtime import Adapter, Runtime
from dive.compressors.truncate import Truncate
from dive.errors import DiveError
from dive.export.folder import save
from tests.export.conftest import near_the_tolerance

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from dive.export.onnx import INPUT_NAME, OUTPUT_NAME, export_onnx  # noqa: E402


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    out: np.ndarray = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    return out


@pytest.mark.parametrize(("rank", "activation", "center", "output_dim"), [
    (16, "gelu", True, 8),
    (16, "relu", True, 8),
    (32, "gelu", False, None),  # adapter only, full dimension
    (None, "gelu", True, 12),  # centre + projection (PCA-like)
    (None, "gelu", False, None),  # identity: normalisation only
])
def test_onnx_matches_numpy(rank: int | None, activation: str, center: bool,
                            output_dim: int | None, tmp_path: Path, make_runtime: Any,
                            make_inputs: Any) -> None:
    runtime = make_runtime(input_dim=32, output_dim=output_dim, rank=rank,
                           activation=activation, center=center)
    path = export_onnx(runtime, tmp_path / "m.onnx")
    for n in (1, 37):  # the batch axis is dynamic
        x = make_inputs(n, 32, seed=n)
        got = run_onnx(path, x)
        assert got.shape == (n, runtime.output_dim) and got.dtype == np.float32
        np.testing.assert_allclose(got, runtime(x), atol=1e-5, rtol=0)


def test_onnx_from_a_saved_folder_of_a_fitted_pca(tmp_path: Path, make_inputs: Any) -> None:
    corpus = make_inputs(200, 24, seed=5)
    pca = PCA(dim=6).fit(corpus)
    save(pca, tmp_path / "pca")
    path = export_onnx(tmp_path / "pca", tmp_path / "out" / "pca.onnx")
    x = make_inputs(50, 24, seed=6)
    np.testing.assert_allclose(run_onnx(path, x), pca.transform(x), atol=1e-5, rtol=0)
    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    assert props["method"] == "pca" and props["output_dim"] == "6"
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == "batch"
    # onnx writes its own newest IR version unless told: older onnxruntime builds refuse it
    assert (model.ir_version, model.opset_import[0].version) == (8, 17)


def test_onnx_gelu_matches_numpy_where_its_cubic_term_counts(tmp_path: Path,
                                                            make_inputs: Any) -> None:
    """The tanh GELU's 0.044715 written 0.0447 stayed within the 1e-5 above (6e-6 off):
    pre-activations of a few units, where the cube counts, and 2e-6 tell them apart (the graph
    is ~2e-7 from numpy here; another CPU's tanh kernel may round a little differently)."""
    rng = np.random.default_rng(5)

    def arr(*shape: int, scale: float = 1.0) -> np.ndarray:
        return (scale * rng.standard_normal(shape)).astype(np.float32)

    adapter = Adapter(arr(32, 16, scale=3.0), arr(32), arr(16, 32), np.zeros(16, np.float32),
                      activation="gelu")
    runtime = Runtime(input_dim=16, adapter=adapter, projection=arr(8, 16))
    path = export_onnx(runtime, tmp_path / "m.onnx")
    x = make_inputs(300, 16, seed=5)
    np.testing.assert_allclose(run_onnx(path, x), runtime(x), atol=2e-6, rtol=0)


def test_onnx_normalises_an_output_of_tiny_norm_like_numpy(tmp_path: Path,
                                                           make_inputs: Any) -> None:
    """An output row of norm 1e-8 (above numpy's floor of 1e-12) is a unit row: a floor of
    1e-6 in the graph divided it by that floor instead, a row of norm 0.01."""
    runtime = Runtime(input_dim=16, projection=np.eye(8, 16, dtype=np.float32))
    path = export_onnx(runtime, tmp_path / "m.onnx")
    x = make_inputs(3, 16, seed=2)
    x[0] = 0.0
    x[0, 15], x[0, 0] = 1.0, 1e-8  # outside what the projection keeps, but for 1e-8
    got = run_onnx(path, x)
    np.testing.assert_allclose(got[0], np.eye(1, 8)[0], atol=1e-6)
    np.testing.assert_allclose(got, runtime(x), atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", [Frozen, Truncate])
def test_onnx_binary_codes_an_exact_zero_as_the_numpy_runtime_does(
        method: Any, tmp_path: Path, make_inputs: Any) -> None:
    """An output of exactly 0 is bit 0 (`z > 0`), as the numpy runtime codes it (as the
    sentence-transformers module is tested to); coded as bit 1, the graph's codes differed
    from dive's own for such rows."""
    x = make_inputs(20, 16, seed=5)
    x[:, ::3] = 0.0  # exact zeros the compressor passes through
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    runtime = method(dim=8).fit(x).fitted_runtime().with_precision("binary", x)
    assert runtime.precision == "binary"
    np.testing.assert_array_equal(run_onnx(export_onnx(runtime, tmp_path / "m.onnx"), x),
                                  runtime(x))


def test_onnx_handles_zero_rows_like_numpy(tmp_path: Path) -> None:
    # A zero vector stays zero (norm clamped at 1e-12) instead of becoming NaN.
    runtime = Runtime(input_dim=4, projection=np.eye(2, 4, dtype=np.float32))
    path = export_onnx(runtime, tmp_path / "m.onnx")
    x = np.array([[0, 0, 1, 1], [3, 4, 0, 0]], dtype=np.float32)
    got = run_onnx(path, x)
    np.testing.assert_allclose(got, [[0, 0], [0.6, 0.8]], atol=1e-6)


def test_onnx_normalises_inputs_like_numpy(tmp_path: Path, make_runtime: Any,
                                           make_inputs: Any) -> None:
    runtime = make_runtime(input_dim=32, output_dim=8, rank=16)
    path = export_onnx(runtime, tmp_path / "m.onnx")
    x = make_inputs(20, 32, seed=3)
    for scale in (0.2, 50.0):
        np.testing.assert_allclose(run_onnx(path, x * np.float32(scale)), runtime(x),
                                   atol=1e-5, rtol=0)


def test_onnx_normalises_rows_of_extreme_norm_like_numpy(tmp_path: Path, make_runtime: Any,
                                                         make_inputs: Any) -> None:
    """numpy takes the norm of a row off unit norm in float64; in float32 the sum of squares
    of a row scaled by 1e-20 underflowed (and by 1e20 overflowed), so the graph returned the
    image of a zero row for a valid one, without a word."""
    runtime = make_runtime(input_dim=32, output_dim=8, rank=16)
    path = export_onnx(runtime, tmp_path / "m.onnx")
    x = make_inputs(20, 32, seed=3)
    for scale in (1e-20, 1e20):
        np.testing.assert_allclose(run_onnx(path, x * np.float32(scale)), runtime(x),
                                   atol=1e-5, rtol=0)


def test_onnx_rescales_the_rows_numpy_rescales_at_the_tolerance(
    tmp_path: Path, make_runtime: Any
) -> None:
    """The graph tests |norm - 1| in float64, numpy tested a float32 sum of squares: rows
    within float32's rounding of 1.001 came out up to 3e-4 apart (one side rescaled)."""
    runtime = make_runtime(input_dim=32, output_dim=8, rank=16)
    path = export_onnx(runtime, tmp_path / "m.onnx")
    x = near_the_tolerance(400, 32)
    np.testing.assert_allclose(run_onnx(path, x), runtime(x), atol=1e-5, rtol=0)


def test_onnx_rejects_a_bad_source(tmp_path: Path) -> None:
    with pytest.raises(DiveError, match="compressor is an int; expected a fitted Compressor"):
        export_onnx(42, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_onnx_export_replaces_only_an_onnx_file_dive_wrote(tmp_path: Path) -> None:
    """As `save` and the CLI do: the library's overwrite (once True by default) replaced any
    file at the path, a user's .npy or another tool's ONNX model."""
    from dive.errors import DiveError

    runtime = Runtime(input_dim=4)
    theirs = tmp_path / "theirs.onnx"
    theirs.write_bytes(b"another tool's model")
    with pytest.raises(DiveError, match=r"theirs\.onnx: exists and is not an ONNX file dive "
                                        "exported; refusing"):
        export_onnx(runtime, theirs, overwrite=True)
    assert theirs.read_bytes() == b"another tool's model"
    with pytest.raises(DiveError, match=r"m\.txt: .* the name ends '\.txt'; name it \*\.onnx"):
        export_onnx(runtime, tmp_path / "m.txt")
    assert not (tmp_path / "m.txt").exists()
    ours = export_onnx(runtime, tmp_path / "m.onnx")
    with pytest.raises(DiveError, match=r"m\.onnx: already exists; pass overwrite=True"):
        export_onnx(runtime, ours)  # kept by default
    export_onnx(Runtime(input_dim=6), ours, overwrite=True)  # replaced when asked
    assert run_onnx(ours, np.eye(6, dtype=np.float32)).shape == (6, 6)


def test_without_onnx_replacing_an_export_names_the_missing_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check that the file is dive's own swallowed the missing package: "exists and is
    not an ONNX file dive exported", of the file dive had exported."""
    import sys

    ours = export_onnx(Runtime(input_dim=4), tmp_path / "m.onnx")
    before = ours.read_bytes()
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(DiveError, match=r"^ONNX export needs the onnx package; install "
                                        r"dive-compress\[onnx\]$"):
        export_onnx(Runtime(input_dim=4), ours, overwrite=True)
    assert ours.read_bytes() == before
