"""The numpy runtime: what every fitted compressor is at inference time.

A fitted compressor reduces to at most three steps, each optional, and a precision:

    h = x + W2 act(W1 x + b1) + b2      (a residual MLP adapter)
    z = P (h - mu)                      (a centre and a d x D projection)
    out = z / |z|                       (always)
    codes = quantize(out)               (float16, int8 or binary; none for float32)

Inputs are meant to be L2-normalised embeddings; rows whose norm is off 1 by more than 1e-3
are normalised first (unit rows pass unchanged, bit for bit), and a row that cannot be
normalised (all zeros) is rejected with its row number, so a scaled input gives the same
output as the unit one.

Truncation is a projection made of identity rows, PCA a centre plus principal axes, DIVE an
adapter plus its folded heads. Every export (safetensors folder, ONNX, sentence-transformers,
Ray) serialises this one description, so they all compute the same thing. GELU uses the tanh
approximation so numpy and torch agree without `erf`.

Precision (`dive.compressors.precision`) is the last step: a runtime with a `quantizer`
returns codes from `__call__` (what `transform`, `dive compress` and an index store), while
`embed` returns the float32 vectors before it (what queries are searched with, and what int8 is
calibrated on). `with_precision` calibrates a runtime's quantizer on corpus embeddings.

`Runtime.arrays()` names every array a runtime holds (`ARRAY_NAMES`: `adapter.w1`, `adapter.b1`,
`adapter.w2`, `adapter.b2`, `center`, `projection`, and int8's `quantizer.low`,
`quantizer.width`) and `Runtime.from_arrays` checks and assembles them back: the one mapping
every export, the saved folder and the streaming digest use.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from threadpoolctl import threadpool_limits

from dive.arrays import ArrayFields, BadRowError, as_unit_rows, is_integer, positive_integer
from dive.compressors.precision import Precision, Quantizer, calibrate, check_precision
from dive.errors import DataError, kind_of

Activation = Literal["relu", "gelu"]
ACTIVATIONS: tuple[Activation, ...] = ("relu", "gelu")
ADAPTER_ARRAYS = ("adapter.w1", "adapter.b1", "adapter.w2", "adapter.b2")
QUANTIZER_ARRAYS = ("quantizer.low", "quantizer.width")
ARRAY_NAMES = (*ADAPTER_ARRAYS, "center", "projection", *QUANTIZER_ARRAYS)


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GELU, tanh approximation (torch `approximate="tanh"`)."""
    c = np.float32(np.sqrt(2.0 / np.pi))
    return (0.5 * x * (1.0 + np.tanh(c * (x + np.float32(0.044715) * x * x * x)))).astype(
        np.float32, copy=False
    )


@dataclass(frozen=True, eq=False)
class Adapter(ArrayFields):
    """Residual MLP h = x + w2 @ act(w1 @ x + b1) + b2 (weights in torch's (out, in) layout)."""

    w1: np.ndarray  # (r, D)
    b1: np.ndarray  # (r,)
    w2: np.ndarray  # (D, r)
    b2: np.ndarray  # (D,)
    activation: Activation = "gelu"

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:  # any other name ran as GELU
            raise DataError(f"adapter: activation {self.activation!r} is not one of "
                            f"{', '.join(ACTIVATIONS)}")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        hidden = x @ self.w1.T + self.b1
        hidden = np.maximum(hidden, 0) if self.activation == "relu" else gelu_tanh(hidden)
        return (x + hidden @ self.w2.T + self.b2).astype(np.float32, copy=False)

    @property
    def n_params(self) -> int:
        return int(self.w1.size + self.b1.size + self.w2.size + self.b2.size)


@dataclass(frozen=True, eq=False)
class Runtime(ArrayFields):
    """One fitted compressor as plain arrays: optional adapter, centre, projection, quantizer.

    Checked when built, as `from_arrays` checks arrays read from a file: arrays whose shapes
    do not fit `input_dim` or each other raise `DataError` naming the tensor.
    """

    input_dim: int
    adapter: Adapter | None = None
    center: np.ndarray | None = None  # (D,)
    projection: np.ndarray | None = None  # (d, D); None keeps all D dimensions
    quantizer: Quantizer | None = None  # None: float32 output

    def __post_init__(self) -> None:
        # A runtime built by hand is checked as one read from a file (`from_arrays`), not by
        # numpy's broadcasting errors when it is first called.
        _check_shapes(self.input_dim, self.adapter, self.center, self.projection, "runtime")
        # a numpy integer is taken, as a plain int (saving it was a JSON TypeError traceback)
        object.__setattr__(self, "input_dim", int(self.input_dim))
        if self.quantizer is not None and self.quantizer.dim != self.output_dim:
            raise DataError(f"runtime: the quantizer is for {self.quantizer.dim}-d vectors, the "
                            f"runtime outputs {self.output_dim}-d")

    @property
    def output_dim(self) -> int:
        return self.input_dim if self.projection is None else int(self.projection.shape[0])

    @property
    def precision(self) -> Precision:
        return "float32" if self.quantizer is None else self.quantizer.precision

    @property
    def code_width(self) -> int:
        """Columns of `__call__`'s output: d, or ceil(d/8) bytes for binary."""
        return self.output_dim if self.quantizer is None else self.quantizer.code_width

    @property
    def n_params(self) -> int:
        total = 0 if self.adapter is None else self.adapter.n_params
        total += 0 if self.center is None else int(self.center.size)
        total += 0 if self.projection is None else int(self.projection.size)
        total += 0 if self.quantizer is None else self.quantizer.n_params
        return total

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays this runtime holds, by `ARRAY_NAMES` name and in that order, as they are."""
        a, q = self.adapter, self.quantizer
        raw = {
            **({} if a is None else dict(zip(ADAPTER_ARRAYS, (a.w1, a.b1, a.w2, a.b2),
                                             strict=True))),
            "center": self.center,
            "projection": self.projection,
            **({} if q is None else dict(zip(QUANTIZER_ARRAYS, (q.low, q.width), strict=True))),
        }
        return {name: arr for name in ARRAY_NAMES if (arr := raw.get(name)) is not None}

    @classmethod
    def from_arrays(
        cls,
        arrays: Mapping[str, np.ndarray],
        *,
        input_dim: int,
        output_dim: int | None = None,
        activation: Activation | None = None,
        precision: Precision = "float32",
        where: str = "runtime",
    ) -> Runtime:
        """The runtime `arrays()` describes, every shape checked against the dimensions.

        `output_dim` None takes the projection's rows (or `input_dim`); `where` starts each
        `DataError` (a file name, say).
        """
        return _assemble(arrays, input_dim, output_dim, activation, precision, where)

    def __call__(self, x: np.ndarray, *, batch_size: int = 65536) -> np.ndarray:
        """Compress `x` (n, D) to codes at the runtime's precision, `batch_size` rows at a time.

        float32 (no quantizer): L2-normalised (n, d) float32, as `embed`. Rows of `x` not of
        unit norm are normalised first; a zero row raises `DataError`.
        """
        quantizer = self.quantizer
        if quantizer is None:
            return self.embed(x, batch_size=batch_size)
        return self._batched(x, batch_size, quantizer.code_width, quantizer.dtype,
                             lambda rows: quantizer.encode(self._apply(rows)))

    def blocks(self, chunks: Iterable[np.ndarray], *, name: str = "input") -> Iterator[np.ndarray]:
        """`self(chunk)` for each chunk of rows in turn (a corpus read a block at a time,
        `dive.arrays.row_blocks`: memory then holds one chunk and its codes); a bad row
        raises `BadRowError` naming `name` and its row over all the chunks."""
        offset = 0
        for chunk in chunks:
            try:
                out = self(chunk)
            except BadRowError as exc:
                raise BadRowError(name, offset + exc.row, exc.problem) from None
            offset += len(chunk)
            yield out

    def embed(self, x: np.ndarray, *, batch_size: int = 65536) -> np.ndarray:
        """Compress `x` (n, D) to L2-normalised (n, d) float32: the output before precision."""
        return self._batched(x, batch_size, self.output_dim, np.dtype(np.float32), self._apply)

    def _batched(self, x: np.ndarray, batch_size: int, width: int, dtype: np.dtype[Any],
                 step: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        # a negative size skipped every step and returned `np.empty`'s memory as the output
        batch_size = positive_integer(batch_size, "batch_size")
        x = as_unit_rows(x, name="input", dim=self.input_dim)
        out = np.empty((x.shape[0], width), dtype=dtype)
        for start in range(0, x.shape[0], batch_size):
            try:
                out[start : start + batch_size] = step(x[start : start + batch_size])
            except BadRowError as exc:  # named by its row in `x`, not in the batch
                raise BadRowError("input", start + exc.row, exc.problem) from None
        return out

    def without_identity_adapter(self) -> Runtime:
        """This runtime without its adapter if that is the identity, exactly (an output layer
        of zeros: x + 0 is x): a fit that kept its start (DIVE's, where no arm showed a real
        gain) shipped two D x r matrices that changed nothing, 90% of a 96-d model's bytes and
        most of its transform time."""
        a = self.adapter
        if a is None or a.w2.any() or a.b2.any():
            return self
        return replace(self, adapter=None)

    def with_precision(self, precision: str, corpus: np.ndarray) -> Runtime:
        """This runtime ending in `precision`, calibrated on `corpus` (n, D) embeddings.

        int8 ranges come from `embed(corpus)`, on one BLAS thread: a matrix product's last bits
        depend on the thread count, and the ranges are part of the saved model, which one seed
        and one input give bitwise whatever threads the environment allows.
        float32 drops any quantizer.
        """
        base = replace(self, quantizer=None)
        if check_precision(precision) == "float32":
            return base
        # Only int8 reads the corpus outputs; the others need just the dimension.
        if precision == "int8":
            with threadpool_limits(limits=1, user_api="blas"):
                outputs = base.embed(corpus)
        else:
            outputs = np.zeros((0, self.output_dim))
        return replace(base, quantizer=calibrate(precision, outputs))

    def unranked_rows(self, x: np.ndarray, *, batch_size: int = 65536) -> np.ndarray:
        """The rows of `x` (n, D) whose output has no part in the compressed space (norm under
        `NORM_FLOOR`), which `embed` refuses: sorted row numbers, empty when there are none."""
        x = as_unit_rows(x, name="input", dim=self.input_dim)
        found = [start + np.flatnonzero(np.linalg.norm(self._project(x[start:start + batch_size]),
                                                       axis=1) < NORM_FLOOR)
                 for start in range(0, x.shape[0], positive_integer(batch_size, "batch_size"))]
        return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)

    def _apply(self, x: np.ndarray) -> np.ndarray:
        return _unit_outputs(self._project(x))

    def _project(self, x: np.ndarray) -> np.ndarray:
        """Unit rows `x` mapped to the output space, before their normalisation."""
        h = x if self.adapter is None else self.adapter(x)
        if self.projection is None:
            return h if self.center is None else h - self.center
        z = h @ self.projection.T
        if self.center is not None:  # P (h - mu) = P h - P mu: one pass over d columns, not D
            z -= self.projection @ self.center
        return z


NORM_FLOOR = 1e-12  # the exports' normalisation floor (onnx.py, st_module.py)


def _unit_outputs(z: np.ndarray) -> np.ndarray:
    """`z`'s rows at unit norm, float32; a row of norm under `NORM_FLOOR` is a `BadRowError`.

    Such a row has no part in the compressed space but rounding (a row orthogonal to what
    `truncate` keeps: all zeros), which no score can rank: scaled by the floor, as every
    release before did (and as the ONNX and sentence-transformers exports still do), it came
    out as zeros or a short vector that search ranked at score 0. Every other row is divided
    by its norm, bit for bit as before."""
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    short = np.flatnonzero(norms[:, 0] < NORM_FLOOR)
    if short.size:
        row = int(short[0])
        raise BadRowError("input", row, f"has no part in the compressed space (its output's "
                          f"norm is {norms[row, 0]:.1e}): no score can rank it")
    beyond = np.flatnonzero(~np.isfinite(norms[:, 0]))
    if beyond.size:  # weights of a damaged model: every such output divided to zeros, exit 0
        raise BadRowError("input", int(beyond[0]), "has an output beyond float32's range (the "
                          "model's weights are far too large: a damaged model?)")
    return (z / norms).astype(np.float32, copy=False)


def _check_shapes(d_in: int, adapter: Adapter | None, center: np.ndarray | None,
                  projection: np.ndarray | None, where: str) -> None:
    """Raise `DataError` starting `where` and naming the tensor unless the arrays fit an
    input of `d_in` dimensions and each other (a projection's rows are the output's)."""
    if not is_integer(d_in) or d_in < 1:
        raise DataError(f"{where}: input_dim must be a positive integer, got {d_in!r}")

    def shape_error(name: str, arr: np.ndarray, expected: str) -> DataError:
        return DataError(f"{where}: tensor {name!r} has shape {tuple(np.shape(arr))}, "
                         f"expected {expected}")

    given = {"center": center, "projection": projection}
    if adapter is not None:
        given.update(zip(("adapter.w1", "adapter.b1", "adapter.w2", "adapter.b2"),
                         (adapter.w1, adapter.b1, adapter.w2, adapter.b2), strict=True))
    for name, arr in given.items():  # a list or a tensor failed when called; NaN ran as NaN
        if arr is None:
            continue
        if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f":
            shown = f"of dtype {arr.dtype}" if isinstance(arr, np.ndarray) else kind_of(arr)
            raise DataError(f"{where}: tensor {name!r} is {shown}; expected a float numpy array")
        if not np.isfinite(arr).all():
            raise DataError(f"{where}: tensor {name!r} contains NaN or inf")
    if adapter is not None:
        w1, b1, w2, b2 = adapter.w1, adapter.b1, adapter.w2, adapter.b2
        if np.ndim(w1) != 2 or np.shape(w1)[1] != d_in or np.shape(w1)[0] == 0:
            raise shape_error("adapter.w1", w1, f"(r, {d_in})")
        rank = np.shape(w1)[0]
        if np.shape(b1) != (rank,):
            raise shape_error("adapter.b1", b1, f"({rank},) to match adapter.w1")
        if np.shape(w2) != (d_in, rank):
            raise shape_error("adapter.w2", w2, f"({d_in}, {rank}) to match adapter.w1")
        if np.shape(b2) != (d_in,):
            raise shape_error("adapter.b2", b2, f"({d_in},)")
    if center is not None and np.shape(center) != (d_in,):
        raise shape_error("center", center, f"({d_in},) (input_dim)")
    if projection is not None and (np.ndim(projection) != 2 or np.shape(projection)[1] != d_in):
        raise shape_error("projection", projection,
                          f"(output_dim, {d_in}): columns must equal input_dim")


def _assemble(arrays: Mapping[str, np.ndarray], d_in: int, output_dim: int | None,
              activation: Activation | None, precision: Precision, where: str) -> Runtime:
    def shape_error(name: str, expected: str) -> DataError:
        return DataError(
            f"{where}: tensor {name!r} has shape {tuple(arrays[name].shape)}, expected {expected}"
        )

    unknown = [name for name in arrays if name not in ARRAY_NAMES]
    if unknown:
        raise DataError(f"{where}: unknown tensor {unknown[0]!r} (valid: {', '.join(ARRAY_NAMES)})")
    present = [name for name in ADAPTER_ARRAYS if name in arrays]
    adapter = None
    if present:
        if len(present) != len(ADAPTER_ARRAYS):
            absent = [name for name in ADAPTER_ARRAYS if name not in arrays]
            raise DataError(f"{where}: adapter is incomplete: {absent[0]!r} is missing")
        if activation is None:
            raise DataError(f"{where}: the adapter needs an activation (relu or gelu); none given")
        w1, b1, w2, b2 = (arrays[name] for name in ADAPTER_ARRAYS)
        try:
            adapter = Adapter(w1, b1, w2, b2, activation=activation)
        except DataError as exc:
            raise DataError(f"{where}: {exc}") from None
    center, projection = arrays.get("center"), arrays.get("projection")
    _check_shapes(d_in, adapter, center, projection, where)
    if output_dim is None:
        output_dim = d_in if projection is None else projection.shape[0]
    if projection is None:
        if output_dim != d_in:
            raise DataError(
                f"{where}: output_dim {output_dim} != input_dim {d_in} but there is no projection"
            )
    elif projection.shape[0] != output_dim:
        raise shape_error("projection", f"({output_dim}, {d_in}): rows must equal output_dim")
    ranged = precision == "int8"
    for name in QUANTIZER_ARRAYS:
        if (name in arrays) != ranged:
            raise DataError(f"{where}: tensor {name!r} is {'missing' if ranged else 'unexpected'} "
                            f"for precision {precision}")
        if ranged and arrays[name].shape != (output_dim,):
            raise shape_error(name, f"({output_dim},) (output_dim)")
    quantizer = None
    if precision != "float32":
        try:
            quantizer = Quantizer(precision, output_dim, arrays.get("quantizer.low"),
                                  arrays.get("quantizer.width"))
        except DataError as exc:
            raise DataError(f"{where}: {exc}") from None
    return Runtime(input_dim=d_in, adapter=adapter, center=center, projection=projection,
                   quantizer=quantizer)


def runtime_digest(runtime: Runtime) -> str:
    """SHA-256 of everything the runtime computes with: the model's identity, which indexes,
    compress output folders and LanceDB tables record as `model_sha256` and a saved folder's
    config.json as `runtime_sha256` (a changed model means a compress restarts)."""
    digest = hashlib.sha256()
    adapter = runtime.adapter
    head: dict[str, Any] = {
        "input_dim": runtime.input_dim,
        "output_dim": runtime.output_dim,
        "activation": adapter.activation if adapter is not None else None,
    }
    if runtime.quantizer is not None:  # only then, so float32 models keep their old digest
        head["precision"] = runtime.precision
    digest.update(json.dumps(head, sort_keys=True).encode())
    for name, value in runtime.arrays().items():
        arr = np.ascontiguousarray(value)
        digest.update(f"{name}:{arr.dtype.str}:{arr.shape}".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()
