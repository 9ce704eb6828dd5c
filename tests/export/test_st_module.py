"""The `DiveCompression` module alone (no base model): the runtime's computation in torch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dive.compressors.frozen import Frozen  # noqa: E402
from dive.compressors.pca import PCA  # noqa: E402
from dive.compressors.truncate import Truncate  # noqa: E402
from dive.export.st_module import DiveCompression  # noqa: E402
from tests.export.conftest import near_the_tolerance  # noqa: E402


def test_module_normalises_rows_of_extreme_norm_like_numpy(make_runtime: Any,
                                                           make_inputs: Any) -> None:
    """numpy takes the norm of a row off unit norm in float64; in float32 (and clamped at
    1e-12) a row scaled by 1e-20 or 1e20 came out as the image of a zero row, without a word."""
    runtime = make_runtime(input_dim=32, output_dim=8, rank=16)
    module = DiveCompression(runtime)
    x = make_inputs(20, 32, seed=3)
    for scale in (1e-20, 1e20):
        got = module.compress(torch.from_numpy(x * np.float32(scale))).numpy()
        np.testing.assert_allclose(got, runtime(x), atol=1e-5, rtol=0)
    wide = x.astype(np.float64)
    for scale in (1e-200, 1e-300, 1e160):  # float64 squares: 0 (NaN, a wrong row) and inf
        got = module.compress(torch.from_numpy(wide * scale)).numpy()
        np.testing.assert_allclose(got, runtime(x), atol=1e-5, rtol=0)
    zero = module.embed(torch.zeros(1, 32)).numpy()  # the image of a zero vector, as before
    np.testing.assert_allclose(zero, runtime._apply(np.zeros((1, 32), np.float32)), atol=1e-6)


def test_module_normalises_an_output_of_tiny_norm_like_numpy(make_inputs: Any) -> None:
    """As the ONNX graph: an output row of norm 1e-8 (above numpy's floor of 1e-12) is a unit
    row; a floor of 1e-6 divided it by that floor instead, a row of norm 0.01."""
    from dive.compressors.runtime import Runtime

    runtime = Runtime(input_dim=16, projection=np.eye(8, 16, dtype=np.float32))
    x = make_inputs(3, 16, seed=2)
    x[0] = 0.0
    x[0, 15], x[0, 0] = 1.0, 1e-8  # outside what the projection keeps, but for 1e-8
    got = DiveCompression(runtime).compress(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got[0], np.eye(1, 8)[0], atol=1e-6)
    np.testing.assert_allclose(got, runtime(x), atol=1e-6, rtol=0)


def test_module_rescales_the_rows_numpy_rescales_at_the_tolerance(make_runtime: Any) -> None:
    """As the ONNX graph: the float64 test of |norm - 1| against numpy's float32 one."""
    runtime = make_runtime(input_dim=32, output_dim=8, rank=16)
    x = near_the_tolerance(400, 32)
    got = DiveCompression(runtime).compress(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, runtime(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", [Frozen, Truncate, PCA])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.float32])
def test_module_outputs_float32_whatever_the_input_dtype(method: Any, dtype: Any,
                                                         make_inputs: Any) -> None:
    # frozen has no arrays, and returned the input's dtype where every other method
    # returned float32, as the numpy runtime does
    x = make_inputs(40, 16, seed=2)
    compressor = method(dim=8).fit(x)
    got = DiveCompression(compressor).compress(torch.from_numpy(x).to(dtype))
    assert got.dtype == torch.float32
    tol = 2e-3 if dtype == torch.float16 else 1e-6
    np.testing.assert_allclose(got.numpy(), compressor.transform(x), atol=tol, rtol=0)


@pytest.mark.parametrize("method", [Frozen, Truncate])
def test_module_binary_codes_an_exact_zero_as_the_numpy_runtime_does(
        method: Any, make_inputs: Any) -> None:
    """An output of exactly 0 is bit 0 (`z > 0`), as the numpy runtime codes it; coded as
    bit 1, the exported model's codes differed from dive's own for such rows."""
    x = make_inputs(20, 16, seed=5)
    x[:, ::3] = 0.0  # exact zeros the compressor passes through
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    runtime = method(dim=8).fit(x).fitted_runtime().with_precision("binary", x)
    assert runtime.precision == "binary"
    got = DiveCompression(runtime).compress(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(got, runtime(x))
