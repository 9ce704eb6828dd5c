"""What a compress run refuses before any work starts, each with an error naming the path:
an output that is not an earlier compress output (`check_compress_output`), lies in the input
(`check_apart`) or has the wrong suffix; a store of no rows, of vectors of another dimension,
with a broken link among its shards; a Parquet store's null or repeated ids (`check_ids`); a
column name that is not a string, or an id column that is the output column (`column_names`).
`store_row_error` words the error about one row of a store, here and for the rows the work reads.

Left out: checks of the vectors themselves (finite, non-zero), made as each chunk is compressed
(`dive.scale.stream.compress_rows`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dive._io import check_output
from dive.arrays import is_utf8
from dive.errors import DataError, DiveError, kind_of, quoted
from dive.scale.formats import (
    SUFFIXES,
    Kind,
    import_pyarrow,
    read_npy_header,
    read_parquet_column,
)
from dive.scale.resume import OUTPUT_MARKER

if TYPE_CHECKING:
    import pyarrow as pa

    from dive.compressors.runtime import Runtime


PARQUET_MAGIC = b"PAR1"  # the first and last 4 bytes of every Parquet file


def check_compress_output(dst: Path, *, overwrite: bool, single: bool) -> None:
    """Refuse to replace anything but an earlier output of the same layout: a folder holding
    the marker, or a file in the format its suffix names (a 2-d numeric `.npy` array, a
    Parquet file), so a text or other file that happens to have the name is never replaced.
    An empty folder takes a folder output, as if nothing were there."""
    def ours(path: Path) -> bool:
        if single:
            return path.is_file() and _reads_as(path, SUFFIXES.get(path.suffix.lower()))
        return path.is_dir() and (path / OUTPUT_MARKER).is_file()

    # each said the other layout's output "is not a compress output"
    if single and dst.is_dir() and (dst / OUTPUT_MARKER).is_file():
        raise DataError(f"{dst}: a compress output folder, where this run writes one file (its "
                        "input is one file); name another output, or compress a folder of "
                        "shards into this one")
    if not single and dst.is_file():  # a folder of shards, or the Ray engine's any input
        raise DataError(f"{dst}: a file, where this run writes a folder; name another output")
    file = "a Parquet file" if SUFFIXES.get(dst.suffix.lower()) == "parquet" else "a 2-d .npy array"
    check_output(dst, overwrite=overwrite, ours=ours,
                 what=f"a compress output ({file})" if single else
                 f"a compress output folder (one holding {OUTPUT_MARKER})",
                 folder=not single,  # an empty folder made for it is written into
                 layout=() if single else _usual_files(dst))


def check_parquet_output_name(dst: Path) -> None:
    """Refuse a Parquet output (a file or a folder of parts) at a path that is not UTF-8,
    which pyarrow cannot take: before the work folder, which the first part's failure left
    behind, naming that part."""
    if not is_utf8(str(dst)):
        raise DataError(f"{dst}: Parquet is written (by pyarrow) only at a path that is valid "
                        "UTF-8, and this one has a byte of another encoding; name the output "
                        "in UTF-8")


def _usual_files(folder: Path) -> list[str]:
    """What a compress output folder written before manifests holds: its marker and parts
    (2-d `.npy` arrays, Parquet files); any other file in it was added by someone else."""
    parts = folder.iterdir() if folder.is_dir() and not folder.is_symlink() else ()
    return [OUTPUT_MARKER, *(p.name for p in parts if p.is_file() and not p.is_symlink()
                             and _reads_as(p, SUFFIXES.get(p.suffix.lower())))]


def _reads_as(path: Path, kind: Kind | None) -> bool:
    """Whether the file at `path` is a `kind` file: a valid .npy header (for a 2-d numeric
    array, not truncated), or Parquet's magic bytes at both ends."""
    if kind == "npy":
        try:
            read_npy_header(path)
        except (DataError, OSError):
            return False
        return True
    if kind == "parquet":
        try:
            with path.open("rb") as f:
                if os.fstat(f.fileno()).st_size < 12:  # magic, footer length, magic
                    return False
                head = f.read(4)
                f.seek(-4, os.SEEK_END)
                return head == f.read(4) == PARQUET_MAGIC
        except OSError:
            return False
    return False


def column_names(column: str, id_column: str | None,
                 output_column: str | None) -> tuple[str, str | None, str]:
    """(column, id column or None, output column) as a compress run reads them: an empty or
    None id column carries no ids, a None output column is `column`. A name that is not a
    string, or an id column that is the output column, is a `DiveError`."""
    names = {"column": column, "id_column": id_column, "output_column": output_column}
    for param, value in names.items():
        if not isinstance(value, str) and (value is not None or param == "column"):
            raise DiveError(f"{param} is {kind_of(value)}; expected a column name (str)",
                            param=param)
    if output_column == "":  # was read as "not given": the output went to `column`
        raise DiveError("output_column is an empty name; give a column name, or None for "
                        "the input's vector column", param="output_column")
    out_column = output_column or column
    ids = id_column or None
    if ids is not None and ids == out_column:
        raise DiveError(f"the id column and the output vector column are both {ids!r}")
    return column, ids, out_column


def check_has_rows(src: object, rows: int) -> None:
    """Refuse a store `src` of 0 rows: a wrong or unfinished file, which an empty output and a
    success hid."""
    if not rows:
        raise DataError(f"{src}: no vectors to compress (0 rows)")


def check_dimension(what: object, dim: int | None, runtime: Runtime, *,
                    first_row: bool = False) -> None:
    """Refuse vectors of `what` (a file, a column) whose dimension `dim` is not the model's
    input (None: not known before the rows are read). `first_row`: `dim` is only the first
    row's (a Parquet list column declares none), so the error names that row."""
    if dim is not None and dim != runtime.input_dim:
        which = "row 0: the vector has" if first_row else "vectors have"
        raise DataError(f"{what}: {which} dimension {dim}, but the model expects "
                        f"{runtime.input_dim} (embeddings from another model?)")


def check_apart(src: Path, dst: Path) -> None:
    """Refuse an output that is, contains or lies inside the input: a rerun would read it."""
    src_abs, dst_abs = src.resolve(), dst.resolve()
    if dst_abs == src_abs or src_abs in dst_abs.parents or dst_abs in src_abs.parents:
        raise DiveError(f"{dst}: the output must not be, contain or lie inside the input {src}")


def check_no_broken_links(paths: Iterable[Path]) -> None:
    """Refuse a broken symbolic link among a store's shard `paths`: a listing of files skips
    it, so its shard was left out of the output without a word."""
    broken = next((p for p in paths if p.is_symlink() and not p.exists()), None)
    if broken is not None:
        raise DataError(f"{broken}: a broken symbolic link (to {os.readlink(broken)}); "
                        "fix or remove it")


def check_output_suffix(dst: Path, kind: Kind | None) -> None:
    """The output is written in the input's format (`kind`; None: a folder of shards)."""
    named = SUFFIXES.get(dst.suffix.lower())
    if kind is None and named is not None:
        raise DiveError(f"{dst}: a folder of shards compresses into a folder; drop the "
                        f"{dst.suffix!r} suffix")
    if kind is not None and named != kind:
        suffix = ".npy" if kind == "npy" else ".parquet"
        raise DiveError(f"{dst}: the output is a {kind} file like the input; name it *{suffix}")


def store_row_error(src: Path, single: bool, path: Path, offset: int, local_row: int,
                    problem: str) -> DataError:
    """A `DataError` about row `local_row` of the file `path` (row `offset + local_row` of the
    store `src`, said too when `src` is a folder); `problem` follows the row reference as is."""
    if single:
        return DataError(f"{path}: row {local_row}{problem}")
    return DataError(f"{path}: row {local_row} (row {offset + local_row} of {src}){problem}")


def check_parquet_ids(src: Path, files: Sequence[Path], single: bool, id_column: str) -> None:
    """`check_ids` on the id column of the Parquet `files` of the store `src` (in the store's
    order; `single`: `src` is that one file), read alone and held whole (a few bytes a row);
    the error names the file and the row."""
    parts = [(str(path), read_parquet_column(path, id_column)) for path in files]
    starts = np.cumsum([0] + [len(ids) for _, ids in parts])
    check_ids(parts, id_column, lambda k, row, problem: store_row_error(
        src, single, files[k], int(starts[k]), row, problem))


def check_ids(parts: Sequence[tuple[str, pa.Array | pa.ChunkedArray]], id_column: str,
              row_error: Callable[[int, int, str], DataError]) -> None:
    """Refuse a null id, or an id an earlier row has, in a store's `id_column`: the output
    carries them as its rows' names. `parts` are the store's parts in order (a file: its name
    and its ids); `row_error(k, row, problem)` is the error about row `row` of part `k`, where
    `problem` follows the row reference as is. Dictionary-encoded ids are decoded, and ids of
    one kind are compared whatever their width (5 as int32 in one shard and as int64 in
    another is one id, as a reader of the output unifies them). Parts holding ids of different
    kinds (text in one, integers in another) are refused: a reader unifies them too (5 becomes
    '5'), so no comparison here would match what it reads."""
    arrow = import_pyarrow()
    pc = arrow.compute
    by_kind: dict[str, list[tuple[int, pa.ChunkedArray]]] = {}
    for k, (_, column) in enumerate(parts):
        ids = arrow.chunked_array([column]) if isinstance(column, arrow.Array) else column
        if arrow.types.is_dictionary(ids.type):
            ids = ids.cast(ids.type.value_type)
        if ids.null_count:
            raise row_error(k, pc.index(ids.is_null(), True).as_py(), ": the id is null")
        if arrow.types.is_floating(ids.type) and pc.any(pc.is_nan(ids)).as_py():
            # NaN equals no id, itself included: no reader can look it up
            raise row_error(k, pc.index(pc.is_nan(ids), True).as_py(), ": the id is NaN")
        by_kind.setdefault(_id_kind(ids.type), []).append((k, ids))
        if len(by_kind) > 1:
            (j, other), *_ = next(iter(by_kind.values()))
            raise DataError(f"{parts[k][0]}: id column {id_column!r} holds {ids.type}, but "
                            f"{parts[j][0]}'s holds {other.type}; give every shard ids of one "
                            "type")
    for group in by_kind.values():
        kind = _common_id_type({part.type for _, part in group})
        ids = arrow.chunked_array([chunk for _, part in group for chunk in part.cast(kind).chunks],
                                  type=kind)
        try:
            counts = pc.value_counts(ids)
        except arrow.ArrowNotImplementedError:
            raise DataError(f"{parts[group[0][0]][0]}: id column {id_column!r} holds {kind}, "
                            "not ids (text or numbers)", param="id_column") from None
        repeated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
        if not len(repeated):
            continue
        # The rows holding a repeated id, in order: the first one seen before is the error.
        starts = np.cumsum([0] + [len(part) for _, part in group])
        first: dict[Any, tuple[int, int]] = {}
        for row in pc.indices_nonzero(pc.is_in(ids, value_set=repeated)).to_numpy():
            i = int(np.searchsorted(starts, row, side="right")) - 1
            k, local = group[i][0], int(row - starts[i])
            ident = group[i][1][local].as_py()  # as the file has it, not as compared
            earlier, at = first.setdefault(ident, (k, local))
            if (earlier, at) != (k, local):
                where = f"row {at}" if earlier == k else f"{parts[earlier][0]}: row {at}"
                raise row_error(k, local, f": duplicate id {quoted(ident)} (first at {where})")


def _id_kind(arrow_type: pa.DataType) -> str:
    """The kind of id a column of `arrow_type` holds: ids of one kind are compared by value."""
    pa = import_pyarrow()
    types = pa.types
    view = getattr(types, "is_string_view", None)  # pyarrow 16+
    if types.is_string(arrow_type) or types.is_large_string(arrow_type) or (
            view is not None and view(arrow_type)):
        return "text"
    if types.is_binary(arrow_type) or types.is_large_binary(arrow_type):
        return "binary"
    for kind in ("integer", "floating"):
        if getattr(types, f"is_{kind}")(arrow_type):
            return kind
    return str(arrow_type)


def _common_id_type(arrow_types: set[pa.DataType]) -> pa.DataType:
    """One type holding every id of `arrow_types` (all of one `_id_kind`) exactly."""
    pa = import_pyarrow()
    if len(arrow_types) == 1:
        return next(iter(arrow_types))
    kind = _id_kind(next(iter(arrow_types)))
    if kind == "integer":  # uint64 exceeds int64: 20 decimal digits hold both
        return pa.decimal128(20, 0) if pa.uint64() in arrow_types else pa.int64()
    return {"text": pa.large_string(), "binary": pa.large_binary(),
            "floating": pa.float64()}[kind]
