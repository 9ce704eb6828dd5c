"""Readers and writers for embedding stores, one bounded chunk at a time.

Two on-disk kinds, each read and written by rows so memory never depends on the store's size:

- `.npy` (2-d, numeric dtype; an input must be float, `integer_codes`; C or Fortran order).
  Rows are read with positional file reads into a fresh buffer rather than through
  `np.load(mmap_mode="r")`: pages of a memory map stay mapped into the process and count
  towards its resident set, so a 4 GB store read through a map peaks at ~4 GB RSS even
  though the kernel could drop them. Output is a standard `.npy` header (as `np.save`
  writes it) followed by rows written at their offsets, so a resumed writer fills in
  exactly the bytes an uninterrupted one would.
- Parquet with a vector column (`fixed_size_list` or `list` of floats) and an optional id
  column, read with `ParquetFile.iter_batches` from the row group holding the first wanted
  row and re-cut into chunks of exactly `batch_size` rows, so chunk boundaries (and thus part
  files and row groups) do not depend on how the input's row groups fall. pyarrow is imported
  only when a Parquet store is touched (optional extra `parquet`).

Left out: other formats (HDF5, Arrow IPC; LanceDB tables are `dive.integrations.lancedb`'s),
object stores (paths are local or mounted filesystems), and Parquet columns nested deeper than
one list level.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import numpy as np

from dive._io import refuse_special_file
from dive.arrays import (
    BELOW_FLOAT32,
    BEYOND_FLOAT32,
    check_matrix_shape,
    to_float32,
    trailing_bytes_message,
)
from dive.errors import DataError, DiveError

if TYPE_CHECKING:
    import pyarrow as pa

Kind = Literal["npy", "parquet"]
SUFFIXES: dict[str, Kind] = {".npy": "npy", ".parquet": "parquet", ".pq": "parquet"}


def import_pyarrow() -> Any:
    """pyarrow, or a `DiveError` saying which extra to install."""
    try:
        import pyarrow
        import pyarrow.compute
        import pyarrow.parquet
    except ImportError:
        raise DiveError(
            "Parquet stores need pyarrow: pip install 'dive-compress[parquet]'"
        ) from None
    return pyarrow


# --- .npy --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NpyHeader:
    """What a `.npy` header says: shape, element dtype, layout and where the data starts."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    fortran_order: bool
    offset: int


def integer_codes(where: str, dtype: object) -> str:
    """The message for integer vectors given where float embeddings are read: they are
    quantized codes (their scale and zero point unknown here), so reading them as floats
    would give wrong vectors without a word."""
    return (f"{where} holds integers ({dtype}), not float embeddings: quantized codes must be "
            "dequantized to floats first")


def read_npy_header(path: Path) -> NpyHeader:
    """Parse and check the header of a `.npy` file holding a 2-d numeric array."""
    fmt = np.lib.format
    try:
        with path.open("rb") as f:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = fmt.read_array_header_2_0(f)
            else:
                raise DataError(f"{path}: unsupported .npy format version {version}")
            offset = f.tell()
    except DataError:  # said in full above (a ValueError too: it was wrapped, path twice)
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({exc})") from None
    if dtype.kind not in "fiu" or dtype.fields is not None:
        raise DataError(f"{path}: expected a numeric array, got dtype {dtype}")
    check_matrix_shape(tuple(shape), name=str(path))
    expected = offset + shape[0] * shape[1] * dtype.itemsize
    size = path.stat().st_size
    if size < expected:
        raise DataError(
            f"{path}: truncated: header says shape {shape} ({expected} bytes) but the file "
            f"has {size} bytes"
        )
    if size > expected:
        raise DataError(trailing_bytes_message(path, tuple(shape), size - expected))
    return NpyHeader(tuple(shape), dtype, bool(fortran), offset)


def _read_exact(f: BinaryIO, buf: np.ndarray, where: Path) -> None:
    view = buf.reshape(-1).view(np.uint8)
    got = f.readinto(view)  # type: ignore[attr-defined]
    if got != view.size:
        raise DataError(f"{where}: unexpected end of file")


def read_npy_rows(f: BinaryIO, header: NpyHeader, start: int, stop: int, where: Path) -> np.ndarray:
    """Rows [start, stop) of the array in `f` as a new (stop - start, dim) array."""
    n, dim = header.shape
    rows, item = stop - start, header.dtype.itemsize
    if not header.fortran_order:
        out = np.empty((rows, dim), dtype=header.dtype)
        f.seek(header.offset + start * dim * item)
        _read_exact(f, out, where)
        return out
    # Fortran order stores columns one after another: one contiguous read per column.
    cols = np.empty((dim, rows), dtype=header.dtype)
    for j in range(dim):
        f.seek(header.offset + (j * n + start) * item)
        _read_exact(f, cols[j], where)
    return cols.T


def create_npy(path: Path, n_rows: int, dim: int, dtype: np.dtype[Any]) -> int:
    """Write the header of an (n_rows, dim) C-order array and size the file; return the offset.

    The header is the one `np.save` writes, so the finished file equals `np.save(path, y)`.
    """
    header = {
        "descr": np.lib.format.dtype_to_descr(dtype),
        "fortran_order": False,
        "shape": (n_rows, dim),
    }
    with path.open("wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        offset = f.tell()
        f.truncate(offset + n_rows * dim * dtype.itemsize)
    return offset


def write_npy_rows(f: BinaryIO, offset: int, start: int, rows: np.ndarray) -> None:
    """Write C-contiguous `rows` at row `start` of an array created by `create_npy`."""
    f.seek(offset + start * rows.shape[1] * rows.dtype.itemsize)
    f.write(np.ascontiguousarray(rows).data)


class BadRow(DataError):
    """A row of a column is unusable: `row` counts from the column's first row."""

    def __init__(self, message: str, row: int, problem: str) -> None:
        super().__init__(message)
        self.row, self.problem = row, problem


# --- Parquet -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParquetLayout:
    """The columns of a Parquet store that matter here, checked against each other."""

    n_rows: int
    dim: int | None  # None: a variable-size list column in an empty file
    declared: bool  # whether the column's type gives `dim` (a fixed-size list), or its first row
    id_type: pa.DataType | None
    row_group_starts: tuple[int, ...]  # first row of each row group, plus n_rows at the end


def _is_list(t: pa.DataType) -> bool:
    pa = import_pyarrow()
    return bool(pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t))


def open_parquet(path: Path) -> pa.parquet.ParquetFile:
    """`path` opened to read a row group at a time: pyarrow's default `pre_buffer` buffered
    every row group an iteration asks for, so memory grew with the file (a 2M x 384 store
    peaked at 3.9 GB in `dive compress`, against 0.3 GB for the same rows in a .npy). The
    path goes in absolute: pyarrow read a relative `api:queries.parquet` as a URI."""
    refuse_special_file(path)
    return import_pyarrow().parquet.ParquetFile(os.path.abspath(path), pre_buffer=False)


def unreadable(path: Path, exc: Exception) -> DataError:
    """The error for a Parquet file pyarrow cannot read (damaged, truncated), on one line."""
    return DataError(f"{path}: not a readable Parquet file ({' '.join(str(exc).split())})")


def read_parquet_column(path: Path, column: str) -> pa.ChunkedArray:
    """The whole of `column` of the Parquet file `path`."""
    pa = import_pyarrow()
    try:
        return open_parquet(path).read(columns=[column]).column(0)
    except (OSError, pa.ArrowException) as exc:
        raise unreadable(path, exc) from None


def inspect_parquet(path: Path, column: str, id_column: str | None, *,
                    ids_optional: bool = True) -> ParquetLayout:
    """Check `path` has a numeric list column `column` (and `id_column`); return its layout.

    `ids_optional`: whether the caller can do without ids, which a missing id column's
    message then suggests."""
    pa = import_pyarrow()
    try:
        pf = open_parquet(path)
    except (OSError, pa.ArrowException) as exc:
        raise unreadable(path, exc) from None
    schema = pf.schema_arrow
    names = schema.names
    if column not in names:
        raise DataError(f"{path}: no vector column {column!r} (columns: {', '.join(names)})")
    if id_column is not None and id_column not in names:
        without = "; pass id_column=None to carry no ids" if ids_optional else ""
        raise DataError(f"{path}: no id column {id_column!r} (columns: {', '.join(names)})"
                        f"{without}", param="id_column")
    for name in {column, id_column} - {None}:  # schema.field() raises KeyError on a repeat
        if names.count(name) > 1:
            raise DataError(f"{path}: {names.count(name)} columns are named {name!r}; "
                            "which one to read is ambiguous")
    vtype = schema.field(column).type
    if _is_list(vtype) and pa.types.is_integer(vtype.value_type):
        raise DataError(integer_codes(f"{path}: column {column!r}", vtype.value_type))
    if not _is_list(vtype) or not pa.types.is_floating(vtype.value_type):
        raise DataError(
            f"{path}: column {column!r} must be a list of floats (fixed_size_list<float>), "
            f"got {vtype}"
        )
    meta = pf.metadata
    starts = [0]
    for g in range(meta.num_row_groups):
        starts.append(starts[-1] + meta.row_group(g).num_rows)
    dim: int | None = None
    if pa.types.is_fixed_size_list(vtype):
        dim = int(vtype.list_size)
    elif meta.num_rows:
        # A variable-size list declares no length: take the first row's; every chunk is then
        # checked against it.
        try:
            first = next(pf.iter_batches(batch_size=1, columns=[column])).column(0)
        except (OSError, pa.ArrowException) as exc:
            raise unreadable(path, exc) from None
        if not first[0].is_valid:
            raise DataError(f"{path}: row 0: the vector is null")
        dim = len(first[0])
    if dim == 0:  # else every later row was blamed for not being as empty
        raise DataError(f"{path}: column {column!r}: the vectors have dimension 0"
                        + ("" if pa.types.is_fixed_size_list(vtype) else " (row 0 is empty)"))
    id_type = schema.field(id_column).type if id_column is not None else None
    return ParquetLayout(meta.num_rows, dim, pa.types.is_fixed_size_list(vtype), id_type,
                         tuple(starts))


def iter_parquet_chunks(
    path: Path,
    layout: ParquetLayout,
    columns: list[str],
    start: int,
    batch_size: int,
) -> Iterator[tuple[int, pa.Table]]:
    """Yield (first row, table) chunks of exactly `batch_size` rows (the last may be shorter),
    starting at row `start`, which must be a multiple of `batch_size`."""
    pa = import_pyarrow()
    if start >= layout.n_rows:
        return
    starts = layout.row_group_starts
    group = int(np.searchsorted(starts, start, side="right")) - 1
    pf = open_parquet(path)
    batches = pf.iter_batches(
        batch_size=batch_size,
        row_groups=list(range(group, len(starts) - 1)),
        columns=columns,
    )
    skip, pending, pending_rows, row = start - starts[group], [], 0, start
    for batch in _read(path, batches):
        if skip:
            cut = min(skip, batch.num_rows)
            batch, skip = batch.slice(cut), skip - cut
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        pending_rows += batch.num_rows
        while pending_rows >= batch_size:
            table = pa.Table.from_batches(pending)
            yield row, table.slice(0, batch_size)
            rest = table.slice(batch_size)
            pending, pending_rows, row = rest.to_batches(), rest.num_rows, row + batch_size
    if pending_rows:
        yield row, pa.Table.from_batches(pending)


def _read(path: Path, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """`batches` of the Parquet file `path`; a damaged page is `unreadable`, naming it."""
    pa = import_pyarrow()
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (OSError, pa.ArrowException) as exc:
            raise unreadable(path, exc) from None
        yield batch


def vectors_from_arrow(
    column: pa.Array | pa.ChunkedArray, dim: int, where: str, first_row: int, *,
    wide: bool = False, dim_from: str = "as in the file's first row"
) -> np.ndarray:
    """A (n, dim) float32 array from a list column, or `BadRow` naming the bad row.

    `first_row` is the index of the column's first row in the file, used in messages. A
    column of integers is refused (`integer_codes`). With `wide`, float64 values stay float64
    and are not checked against float32's range, for a caller that normalises them from their
    own values (`compress_rows`, as `transform` does an .npy's): cast first, a row of 1e-43s
    kept a few bits of each value (another direction). `dim_from` says, after a ragged row's
    "expected `dim`", where `dim` came from (its default: the file's first row, checked against
    the model before).
    """
    pa = import_pyarrow()
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if isinstance(arr.type, pa.ExtensionType):
        # Ray Data's tensor columns (ArrowTensorType) convert straight to an (n, dim) array.
        x = np.asarray(arr.to_numpy(zero_copy_only=False))
        if x.dtype.kind in "iub":
            raise DataError(integer_codes(where, x.dtype))
        if x.ndim != 2 or x.shape[1] != dim:
            raise DataError(f"{where}: vectors have shape {x.shape[1:]}, expected ({dim},)")
        return to_float32(x)
    value_type = getattr(arr.type, "value_type", None)
    if value_type is not None and (pa.types.is_integer(value_type)
                                   or pa.types.is_boolean(value_type)):
        raise DataError(integer_codes(where, value_type))
    n = len(arr)

    def bad(row: int, problem: str) -> BadRow:
        return BadRow(f"{where}: row {first_row + row}: {problem}", row, problem)

    if arr.null_count:
        raise bad(
            int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0]),
            "the vector is null",
        )
    if not pa.types.is_fixed_size_list(arr.type):
        lengths = pa.compute.list_value_length(arr).to_numpy(zero_copy_only=False)
        wrong = np.flatnonzero(lengths != dim)
        if wrong.size:
            row = int(wrong[0])
            # a list column declares no length: `dim` is the caller's (where from: `dim_from`)
            raise bad(row, f"the vector has dimension {lengths[row]}, expected {dim} "
                      f"{dim_from}")
    elif arr.type.list_size != dim:
        raise DataError(f"{where}: vectors have dimension {arr.type.list_size}, expected {dim}")
    values = arr.flatten()
    if values.null_count:
        row = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0]) // dim
        raise bad(row, "the vector has a null element")
    flat = values.to_numpy(zero_copy_only=False).reshape(n, dim)
    if wide and flat.dtype == np.float64:
        return flat
    x = to_float32(flat)
    if flat.dtype.itemsize > 4:  # float64 values float32 cannot hold become inf or 0: said so
        finite = np.isfinite(x).all(axis=1)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            if np.isfinite(flat[row]).all():
                raise bad(row, BEYOND_FLOAT32)
        vanished = np.flatnonzero(~x.any(axis=1) & flat.any(axis=1))
        if vanished.size:  # else "all zeros" of a row that is not
            raise bad(int(vanished[0]), BELOW_FLOAT32)
    return x


def vector_array(y: np.ndarray) -> pa.FixedSizeListArray:
    """(n, d) numpy rows as a `fixed_size_list<value, d>` Arrow array (float32, float16, or
    int8/uint8 codes)."""
    pa = import_pyarrow()
    flat = pa.array(np.ascontiguousarray(y).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, y.shape[1])


def vector_type(dtype: np.dtype[Any], dim: int) -> pa.DataType:
    pa = import_pyarrow()
    return pa.list_(pa.from_numpy_dtype(np.dtype(dtype)), dim)


def file_fingerprint(path: Path) -> dict[str, Any]:
    """Size and modification time: what tells a resumed run its input is still the same."""
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
