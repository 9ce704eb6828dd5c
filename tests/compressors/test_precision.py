"""Precision: int8 round trips within its calibrated step, binary is np.packbits of the signs."""

from __future__ import annotations

import numpy as np
import pytest

from dive.compressors.pca import PCA
from dive.compressors.precision import (
    PRECISIONS,
    Quantizer,
    bytes_per_vector,
    calibrate,
    check_precision,
    pack_weights,
)
from dive.errors import DataError, DiveError
from tests.conftest import traced_peak


def unit_rows(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_int8_round_trip_is_within_half_a_calibrated_step() -> None:
    z = unit_rows(500, 24)
    quantizer = calibrate("int8", z)
    codes = quantizer.encode(z)
    assert codes.dtype == np.int8 and codes.shape == (500, 24)
    assert codes.min() == -128 and codes.max() == 127  # the range is used end to end
    assert quantizer.width is not None
    step = quantizer.width / 255
    error = np.abs(quantizer.decode(codes) - z)
    assert (error <= step / 2 + 1e-6).all()  # 1e-6: float32 rounding of values near 1
    assert error.max() > step.min() / 4  # the test could fail: errors are not all ~0


def test_int8_clips_values_outside_the_calibrated_range() -> None:
    quantizer = calibrate("int8", unit_rows(100, 8))
    assert quantizer.low is not None and quantizer.width is not None
    outside = np.stack([quantizer.low - 1, quantizer.low + quantizer.width + 1])
    np.testing.assert_array_equal(quantizer.encode(outside), [[-128] * 8, [127] * 8])


def test_int8_range_of_a_constant_dimension_is_still_positive() -> None:
    z = unit_rows(50, 4)
    z[:, 2] = 0.25
    quantizer = calibrate("int8", z)
    assert quantizer.width is not None and (quantizer.width > 0).all()
    np.testing.assert_allclose(quantizer.decode(quantizer.encode(z))[:, 2], 0.25, atol=1e-7)


@pytest.mark.parametrize("dim", [8, 13, 96])
def test_binary_codes_are_packbits_of_the_signs(dim: int) -> None:
    z = unit_rows(40, dim, seed=dim)
    quantizer = calibrate("binary", z)
    codes = quantizer.encode(z)
    np.testing.assert_array_equal(codes, np.packbits(z > 0, axis=1))
    assert codes.dtype == np.uint8 and codes.shape == (40, -(-dim // 8))
    np.testing.assert_array_equal(quantizer.decode(codes), np.where(z > 0, 1.0, -1.0))
    bits = (z > 0).astype(np.float32)
    np.testing.assert_array_equal((bits @ pack_weights(dim)).astype(np.uint8), codes)
    # an output of exactly 0 (a PCA axis past the corpus's rank) is a 0 bit, as
    # sentence-transformers' quantize_embeddings codes it
    z[:, 0] = 0.0
    assert not (quantizer.encode(z)[:, 0] & 0x80).any()


def test_binary_inner_product_is_dim_minus_twice_the_hamming_distance() -> None:
    z = unit_rows(30, 20)
    quantizer = calibrate("binary", z)
    codes = quantizer.encode(z)
    scores = quantizer.query_vectors(z[:5]) @ quantizer.decode(codes).T
    hamming = np.unpackbits(codes[:5, None] ^ codes[None], axis=2).sum(axis=2, dtype=np.int64)
    np.testing.assert_array_equal(scores, 20 - 2 * hamming)


def test_float16_codes_are_half_floats() -> None:
    z = unit_rows(10, 6)
    quantizer = calibrate("float16", z)
    np.testing.assert_array_equal(quantizer.encode(z), z.astype(np.float16))
    assert quantizer.decode(quantizer.encode(z)).dtype == np.float32


@pytest.mark.parametrize(("precision", "expected"), [
    ("float32", 96 * 4), ("float16", 96 * 2), ("int8", 96), ("binary", 12),
])
def test_bytes_per_vector(precision: str, expected: int) -> None:
    assert bytes_per_vector(check_precision(precision), 96) == expected
    assert bytes_per_vector("binary", 97) == 13


@pytest.mark.parametrize("name", ["int4", "INT8", "", "fp16"])
def test_a_bad_precision_name_is_one_clear_error(name: str) -> None:
    with pytest.raises(DiveError, match=f"precision '{name}' is not one of "
                                        "float32, float16, int8, binary$"):
        check_precision(name)


def test_int8_quantizer_needs_its_range() -> None:
    with pytest.raises(DataError, match=r"low must have shape \(4,\)"):
        Quantizer("int8", 4)
    with pytest.raises(DataError, match="every width must be > 0"):
        Quantizer("int8", 2, low=np.zeros(2, np.float32), width=np.zeros(2, np.float32))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("field", ["low", "width"])
def test_int8_quantizer_refuses_a_range_that_is_not_finite(field: str, bad: float) -> None:
    """A NaN or inf low (only width was checked) decoded every code of that dimension to NaN."""
    arrays = {"low": np.zeros(2, np.float32), "width": np.ones(2, np.float32)}
    arrays[field][0] = bad
    with pytest.raises(DataError, match=r"^int8 quantizer: low and width must be finite$"):
        Quantizer("int8", 2, **arrays)


@pytest.mark.parametrize("precision", ["float32", "float16", "binary"])
@pytest.mark.parametrize("name", ["low", "width"])
def test_a_quantizer_without_a_range_refuses_range_arrays(precision: str, name: str) -> None:
    """A float32, float16 or binary quantizer given int8's range arrays took them without a
    word, and no code used them."""
    with pytest.raises(DataError, match=f"^{precision} quantizer: takes no {name} array$"):
        Quantizer(precision, 2, **{name: np.ones(2, np.float32)})  # type: ignore[arg-type]
    assert Quantizer(precision, 2).n_params == 0


@pytest.mark.parametrize("precision", ["float32", "float16"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_float_codes_that_are_not_finite_are_refused(precision: str, bad: float) -> None:
    """A NaN or inf float code (a damaged file) decoded and ranked as a vector without a word."""
    quantizer = Quantizer(precision, 2)  # type: ignore[arg-type]
    codes = np.array([[0.5, 1.0], [bad, 1.0]], dtype=quantizer.dtype)
    with pytest.raises(DataError, match=r"^codes: contains NaN or inf$"):
        quantizer.decode(codes)
    with pytest.raises(DataError, match=r"^corpus codes: contains NaN or inf$"):
        quantizer.check_codes(codes, name="corpus codes")
    np.testing.assert_array_equal(quantizer.decode(codes[:1]), [[0.5, 1.0]])


def test_runtime_with_precision_returns_codes_and_embeds_floats() -> None:
    corpus = unit_rows(300, 16, seed=3)
    runtime = PCA(dim=8).fit(corpus).fitted_runtime()
    for precision in PRECISIONS:
        quantized = runtime.with_precision(precision, corpus)
        assert quantized.precision == precision
        np.testing.assert_array_equal(quantized.embed(corpus), runtime(corpus))
        codes = quantized(corpus)
        assert codes.shape == (300, quantized.code_width)
        want = calibrate(precision, runtime(corpus)).encode(runtime(corpus))
        np.testing.assert_array_equal(codes, want)
    assert runtime.with_precision("int8", corpus).with_precision("float32", corpus) == runtime


@pytest.mark.parametrize("n", [0, 1])
def test_int8_refuses_fewer_than_two_calibration_rows(n: int) -> None:
    # One row gives every dimension an empty range: every code would be -128 or 127.
    with pytest.raises(DataError, match=rf"^calibration vectors: {n} rows?; int8 needs at "
                                        "least 2 to calibrate each dimension's range"):
        calibrate("int8", unit_rows(n, 8))
    assert calibrate("float16", unit_rows(n, 8)).dim == 8  # the others need no range


def test_int8_warns_when_most_dimensions_are_constant_over_the_calibration_rows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    z = np.repeat(unit_rows(1, 8), 5, axis=0)
    z[1, :3] += 0.1  # 3 of 8 dimensions vary; 5 are constant
    calibrate("int8", z)
    assert "5 of 8 dimensions are constant over the 5 rows" in caplog.text
    caplog.clear()
    calibrate("int8", unit_rows(5, 8))
    assert "constant" not in caplog.text


def test_int8_constant_dimensions_are_judged_relative_to_the_vectors_scale(
    caplog: pytest.LogCaptureFixture
) -> None:
    """Copies of one row of values ~1000 differ by float32 rounding there (~1e-4), above the
    bar of unit rows: the warning about repeated rows was not given for unnormalised ones."""
    rng = np.random.default_rng(0)
    z = np.repeat(rng.standard_normal((1, 8)).astype(np.float32) * 1000, 10, axis=0)
    z[:, :2] += rng.standard_normal((10, 2)).astype(np.float32) * 100  # 2 of 8 vary
    z[:, 2:] += rng.standard_normal((10, 6)).astype(np.float32) * 1e-4  # rounding noise
    assert (np.ptp(z[:, 2:], axis=0) > 1e-5).all()  # not constant by the unit-row bar
    calibrate("int8", z)
    assert "6 of 8 dimensions are constant over the 10 rows" in caplog.text


@pytest.mark.parametrize(("constant", "warned"), [(2, False), (3, True)])
def test_int8_warns_only_when_more_than_half_the_dimensions_are_constant(
    caplog: pytest.LogCaptureFixture, constant: int, warned: bool
) -> None:
    """Guards the strict majority: exactly half the dimensions constant (2 of 4) is not
    "most", and warned of vectors that calibrate well enough."""
    z = np.repeat(unit_rows(1, 4), 5, axis=0)
    z[:, constant:] += np.linspace(0, 0.4, 5, dtype=np.float32)[:, None]  # the rest vary
    calibrate("int8", z)
    assert (f"{constant} of 4 dimensions are constant over the 5 rows" in caplog.text) is warned
    assert ("constant" in caplog.text) is warned


@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.bool_])
def test_calibration_refuses_integer_vectors(dtype: type) -> None:
    with pytest.raises(DataError, match=f"^calibration vectors: expected float embeddings, "
                                        f"got dtype {np.dtype(dtype)}$"):
        calibrate("int8", (unit_rows(10, 4) * 100).astype(dtype))


@pytest.mark.parametrize("dim", ["8", -5, 2.5, 0, True])
def test_bytes_per_vector_refuses_a_dim_that_is_not_a_positive_integer(dim: object) -> None:
    """"8" gave '8888', -5 gave -5 and 2.5 gave 5.0 bytes, without a word."""
    with pytest.raises(DiveError, match=rf"^dim must be a positive integer, got {dim!r}$"):
        bytes_per_vector("int8", dim)  # type: ignore[arg-type]
    assert bytes_per_vector("binary", np.int64(12)) == 2


def test_the_public_encode_and_decode_check_their_input() -> None:
    # (n, 1) int8 codes were broadcast to (n, dim), a NaN row coded as zeros, 6-d vectors
    # packed into one byte by an 8-d binary quantizer
    z = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    int8 = calibrate("int8", z)
    with pytest.raises(DataError, match=r"codes: expected int8 codes of shape \(n, 8\), got "
                       r"\(50, 1\)"):
        int8.decode(int8.encode(z)[:, :1])
    nan = z[:2].copy()
    nan[1, 3] = np.nan
    with pytest.raises(DataError, match="vectors to quantize: row 1 contains NaN or inf"):
        int8.encode(nan)
    binary = Quantizer("binary", 8)
    with pytest.raises(DataError, match="vectors to quantize: expected dimension 8, got 6"):
        binary.encode(z[:, :6])
    with pytest.raises(DataError, match=r"expected binary codes of shape \(n, 1\), got \(1,\)"):
        binary.decode(binary.encode(z)[0])
    with pytest.raises(DataError, match="queries: expected dimension 8, got 6"):
        int8.query_vectors(z[:, :6])
    np.testing.assert_array_equal(int8.decode(int8.encode(z)).shape, (50, 8))  # still works


def test_int8_codes_are_made_a_block_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole corpus went through three float32 temporaries at once (3x its size: +879 MB
    for 200k 384-d rows in `evaluate --precisions int8`); the blocks give the same codes."""
    from dive.compressors import precision

    z = np.random.default_rng(0).standard_normal((20000, 64)).astype(np.float32)
    quantizer = precision.calibrate("int8", z)
    whole = quantizer.encode(z)
    monkeypatch.setattr(precision, "ENCODE_ROWS", 1000)
    blocks, peak = traced_peak(lambda: quantizer.encode(z))
    np.testing.assert_array_equal(blocks, whole)
    assert peak < z.nbytes  # the int8 codes (a quarter) and a block's temporaries
