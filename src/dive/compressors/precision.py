"""Precision: the runtime's last step, turning compressed float32 vectors into stored codes.

Four precisions, each with the bytes a vector of d dimensions takes in a first-stage index:

- `float32`: the runtime's output as is (4d bytes);
- `float16`: IEEE half floats (2d bytes);
- `int8`: one byte per dimension (d bytes), on a per-dimension range `[low, low + width]`
  calibrated on the corpus outputs (`calibrate`, on two rows or more). The code is FAISS's
  8-bit scalar quantizer (`IndexScalarQuantizer`, `QT_8bit`, min/max ranges) shifted to
  signed bytes: with `xi = clip((z - low) / width, 0, 1)`, the code is
  `floor(255 * xi) - 128`, and it decodes to `low + (code + 128 + 0.5) / 255 * width`, the
  middle of its bin, so values inside the range come back within half a step
  (`width / 255 / 2`) and a FAISS index holds the same bytes;
- `binary`: one sign bit per dimension, `np.packbits(z > 0, axis=1)` (ceil(d/8) bytes, the
  last byte zero-padded). Scored as the +-1 vectors the bits stand for, so the inner product
  of two codes is d - 2 * Hamming distance: exact search ranks as Hamming distance does.

A `Quantizer` is what a saved model keeps of a precision (the int8 range arrays included);
`encode` makes codes from float32 vectors, `decode` the float32 vectors the codes stand for,
and `query_vectors` what a float32 query becomes to be scored against codes (binary queries are
binarised, the others stay float32). Left out: 4-bit and product quantizers (FAISS has them;
they are measured as anchors, `dive.evaluate.anchors`). sentence-transformers 6.x's
`quantize_embeddings` floors on the same grid: its corpus codes equal these but for float
rounding and for dimensions constant over the corpus (here widened to `MIN_WIDTH`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from dive.arrays import ArrayFields, as_embeddings, check_floating, is_integer
from dive.errors import DataError, DiveError

logger = logging.getLogger(__name__)

Precision = Literal["float32", "float16", "int8", "binary"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
BYTES_PER_VALUE = {"float32": 4, "float16": 2, "int8": 1}
CODE_DTYPES = {"float32": np.float32, "float16": np.float16, "int8": np.int8,
               "binary": np.uint8}
INT8_LEVELS = 255  # FAISS QT_8bit: 256 codes, bin width = range / 255
ENCODE_ROWS = 65536  # rows int8 codes are computed for at a time
MIN_WIDTH = 1e-8  # a dimension constant over the corpus still gets a usable range
# int8's range of a dimension is its min and max over the calibration rows: one row makes
# every range empty (MIN_WIDTH), so every code would be -128 or 127, a sign bit.
MIN_CALIBRATION_ROWS = 2
CONSTANT_SPREAD = 1e-6  # a range narrower than this (times the largest |value|) is constant


def check_precision(name: object) -> Precision:
    """`name` as a `Precision`, or `DiveError` listing the valid names."""
    if name not in PRECISIONS:
        raise DiveError(f"precision {name!r} is not one of {', '.join(PRECISIONS)}")
    return name


def code_width(precision: Precision, dim: int) -> int:
    """Columns of the code array of `dim`-dim vectors (bytes for binary, values otherwise)."""
    return -(-dim // 8) if precision == "binary" else dim


def bytes_per_vector(precision: Precision, dim: int) -> int:
    """Bytes one `dim`-dim vector takes at `precision`: 4d, 2d, d or ceil(d/8)."""
    check_precision(precision)
    if not is_integer(dim) or dim < 1:  # "8" gave '8888', -5 gave -5, 2.5 gave 5.0
        raise DiveError(f"dim must be a positive integer, got {dim!r}")
    dim = int(dim)
    if precision == "binary":
        return code_width(precision, dim)
    return BYTES_PER_VALUE[precision] * dim


def pack_weights(dim: int) -> np.ndarray:
    """(dim, ceil(dim/8)) float32: bits @ this = `np.packbits(bits, axis=1)` for 0/1 rows.

    Bit i goes to byte i // 8 with weight 2^(7 - i % 8), as `np.packbits` (big-endian bit
    order) puts it; graphs without a packbits op (ONNX, torch) pack with one matrix product.
    """
    weights = np.zeros((dim, code_width("binary", dim)), dtype=np.float32)
    i = np.arange(dim)
    weights[i, i // 8] = 2.0 ** (7 - i % 8)
    return weights


@dataclass(frozen=True, eq=False)
class Quantizer(ArrayFields):
    """One precision for `dim`-dim vectors; `low`/`width` (dim,) are int8's calibrated range."""

    precision: Precision
    dim: int
    low: np.ndarray | None = None  # int8 only
    width: np.ndarray | None = None  # int8 only, > 0

    def __post_init__(self) -> None:
        check_precision(self.precision)
        ranged = self.precision == "int8"
        for name in ("low", "width"):
            value = getattr(self, name)
            if ranged and (value is None or np.shape(value) != (self.dim,)):
                raise DataError(f"int8 quantizer: {name} must have shape ({self.dim},), "
                                f"got {None if value is None else np.shape(value)}")
            if not ranged and value is not None:
                raise DataError(f"{self.precision} quantizer: takes no {name} array")
        if ranged:
            assert self.low is not None and self.width is not None
            if not (np.isfinite(self.low).all() and np.isfinite(self.width).all()):
                raise DataError("int8 quantizer: low and width must be finite")
            if not (self.width > 0).all():
                raise DataError("int8 quantizer: every width must be > 0")

    @property
    def dtype(self) -> np.dtype[np.generic]:
        """The element type of the codes."""
        return np.dtype(CODE_DTYPES[self.precision])

    @property
    def code_width(self) -> int:
        return code_width(self.precision, self.dim)

    @property
    def bytes_per_vector(self) -> int:
        return bytes_per_vector(self.precision, self.dim)

    @property
    def n_params(self) -> int:
        return 0 if self.low is None or self.width is None else int(self.low.size + self.width.size)

    def encode(self, z: np.ndarray) -> np.ndarray:
        """Codes (n, code_width) of float32 vectors `z` (n, dim); other shapes and NaN/inf
        rows are a `DataError` (binary packed 6-d rows into one byte; int8 coded NaN as 0)."""
        z = as_embeddings(z, name="vectors to quantize", dim=self.dim)
        if self.precision == "float32":
            return z
        if self.precision == "float16":
            return z.astype(np.float16)
        if self.precision == "binary":
            return np.packbits(z > 0, axis=1)
        assert self.low is not None and self.width is not None
        # a block at a time: the float32 temporaries of a whole corpus at once were three
        # copies of it (+879 MB for 200k 384-d rows)
        codes = np.empty(z.shape, np.int8)
        for start in range(0, z.shape[0], ENCODE_ROWS):
            xi = (z[start:start + ENCODE_ROWS] - self.low) / self.width
            np.clip(xi, 0, 1, out=xi)
            codes[start:start + ENCODE_ROWS] = np.floor(np.float32(INT8_LEVELS) * xi) - 128
        return codes

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """The float32 vectors (n, dim) that `codes` stand for (binary: +-1 per bit); codes
        of another shape or dtype are a `DataError` (`check_codes`: (n, 1) int8 codes were
        broadcast to (n, dim))."""
        codes = self.check_codes(codes)
        if self.precision == "binary":
            bits = np.unpackbits(codes, axis=1, count=self.dim)
            return bits.astype(np.float32) * np.float32(2) - np.float32(1)
        if self.precision != "int8":
            return np.asarray(codes, dtype=np.float32)
        assert self.low is not None and self.width is not None
        levels = codes.astype(np.float32) + np.float32(128.5)
        return self.low + levels / np.float32(INT8_LEVELS) * self.width

    def query_vectors(self, queries: np.ndarray) -> np.ndarray:
        """What float32 queries become to be scored against decoded codes (binary: +-1)."""
        q = as_embeddings(queries, name="queries", dim=self.dim)
        return self.decode(self.encode(q)) if self.precision == "binary" else q

    def check_codes(self, codes: object, *, name: str = "codes") -> np.ndarray:
        """`codes` as a C-contiguous (n, code_width) array of this precision's dtype."""
        arr = np.asarray(codes)
        if arr.ndim != 2 or arr.shape[1] != self.code_width:
            raise DataError(f"{name}: expected {self.precision} codes of shape "
                            f"(n, {self.code_width}), got {arr.shape}")
        if arr.dtype != self.dtype:
            raise DataError(f"{name}: expected {self.precision} codes of dtype {self.dtype}, "
                            f"got {arr.dtype}")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise DataError(f"{name}: contains NaN or inf")
        return np.ascontiguousarray(arr)


def calibrate(precision: str, vectors: np.ndarray) -> Quantizer:
    """The `Quantizer` of `precision` for vectors like `vectors` (n, d) float32.

    int8 takes each dimension's min and max over `vectors` (the corpus outputs) as its range,
    so it needs at least `MIN_CALIBRATION_ROWS` rows (`DataError` otherwise) and warns when
    most dimensions come out constant over them; the other precisions need no calibration,
    only the dimension. Integer or bool `vectors` are refused, as `fit` refuses them.
    """
    p = check_precision(precision)
    check_floating(vectors, name="calibration vectors")
    z = as_embeddings(vectors, name="calibration vectors")
    if p != "int8":
        return Quantizer(p, z.shape[1])
    n, d = z.shape
    if n < MIN_CALIBRATION_ROWS:
        raise DataError(f"calibration vectors: {n} row{'' if n == 1 else 's'}; int8 needs at "
                        f"least {MIN_CALIBRATION_ROWS} to calibrate each dimension's range (its "
                        "min to max over the corpus outputs): one row leaves every range empty, "
                        "so every code would be -128 or 127")
    low = z.min(axis=0)
    spread = z.max(axis=0) - low
    # Constant up to float32 rounding: normalising copies of one row leaves ~1e-7 between them.
    scale = float(np.abs(z).max()) or 1.0
    constant = int(np.count_nonzero(spread <= CONSTANT_SPREAD * scale))
    if 2 * constant > d:
        logger.warning("calibration vectors: %d of %d dimensions are constant over the %d rows "
                       "(repeated rows?); their int8 codes say only which side of that value a "
                       "vector falls on", constant, d, n)
    width = np.maximum(spread, np.float32(MIN_WIDTH)).astype(np.float32)
    return Quantizer(p, d, low=np.ascontiguousarray(low), width=width)
