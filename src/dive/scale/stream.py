"""Compress an embedding store larger than memory, resumably: `compress_store`.

Input is a `.npy` file, a Parquet file, or a folder of `.npy` or Parquet shards (processed in
name order; the output is a folder of shards with the same names). Rows go through the
fitted compressor's numpy `Runtime` `batch_size` at a time, so peak memory depends on the
batch size and the model, never on the store (but for a Parquet store's ids: see below).

Nothing is written at the output path until the end. Work goes into a hidden folder beside it,
`.<output name>.partial/`, holding the output being built (`data/`), Parquet part files
(`parts/`, one per chunk, merged into one file per shard when the shard is done) and
`state.json`, rewritten atomically after every chunk with the rows done and the job's identity:
each input file's size, modification time, shape and type, a SHA-256 of the model's arrays and
the settings that change the bytes written (batch size, dtype, columns). A rerun with the same
identity resumes after the last finished chunk and produces a byte-identical result; any
difference starts over. The output's suffix must match its format (`.npy`, `.parquet`/`.pq`,
none for a folder). The finished output is renamed into place (`dive._io.publish`), replacing
an existing one (even one a concurrent run wrote meanwhile) only when `overwrite=True`, and
only if it is an earlier output: for a single-file input a file that reads as the format its
suffix names (a valid 2-d `.npy` header, Parquet's magic bytes), or a folder holding the
hidden marker `.dive-compress.json` that every folder output gets; never any other file or
folder.
When an output another run wrote meanwhile is kept, so is this run's finished work, its state
saved with every row done: a rerun with `overwrite=True` publishes it without recomputing.

The output holds what the model outputs at its precision (`dive.compressors.precision`):
float32 vectors (or float16 with `dtype="float16"`), or the codes of a model saved with
another precision, (n, d) float16 or int8, or (n, ceil(d/8)) uint8 packed sign bits.

Input vectors not of unit norm are normalised (see `dive.compressors.runtime`). Bad input
(wrong dimension, NaN/inf, null vectors, all-zero rows) raises `DataError` naming the file and the
row, global across shards and chunks; the dimension, and that the store holds any vector at all,
are checked before any work starts. So are a Parquet store's ids (`id_column`): a null id, or one
an earlier row of the store has, is a `DataError` naming the file, the row and the id (the check
reads the id column alone, and holds it: a few bytes a row). The
partial folder is removed on such an error, since the input must change before a rerun.

A run holds its partial folder (`Partial.held`, an flock): a second run given the same
output while the first works fails at once with one line. Left out: a multi-process local
engine (use `dive.integrations.ray` to spread work over cores or machines), and carrying
Parquet columns other than the id.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args

import numpy as np

from dive._io import (
    atomic_open,
    atomic_write_text,
    check_output,
    held,
    naming_os_errors,
    publish,
)
from dive.arrays import BadRowError, non_finite_problem, positive_integer, to_float32
from dive.compressors.runtime import Runtime
from dive.errors import DataError, DiveError
from dive.scale.formats import (
    SUFFIXES,
    BadRow,
    Kind,
    NpyHeader,
    ParquetLayout,
    create_npy,
    file_fingerprint,
    import_pyarrow,
    inspect_parquet,
    integer_codes,
    iter_parquet_chunks,
    open_parquet,
    read_npy_header,
    read_npy_rows,
    vector_array,
    vector_type,
    vectors_from_arrow,
    write_npy_rows,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from dive.compressors.base import Compressor
    from dive.export.folder import LoadedCompressor

    ModelLike = Runtime | LoadedCompressor | Compressor | str | os.PathLike[str]

logger = logging.getLogger(__name__)

OutputDtype = Literal["float32", "float16"]
OUTPUT_DTYPES: tuple[str, ...] = get_args(OutputDtype)
STATE_FORMAT = "dive-compress-state"
STATE_VERSION = 1
OUTPUT_MARKER = ".dive-compress.json"  # hidden: shard discovery and Parquet readers skip it
PARQUET_MAGIC = b"PAR1"  # the first and last 4 bytes of every Parquet file


@dataclass(frozen=True)
class CompressResult:
    """What a finished `compress_store` did."""

    output: Path
    rows: int  # vectors in the output
    input_dim: int
    output_dim: int
    dtype: str
    resumed_rows: int  # rows a previous, interrupted run had already done
    seconds: float  # this run only

    @property
    def rows_per_second(self) -> float:
        return (self.rows - self.resumed_rows) / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Shard:
    """One input file and the name of the output file it becomes."""

    path: Path
    name: str
    kind: Kind
    n_rows: int
    dim: int | None
    npy: NpyHeader | None = None
    parquet: ParquetLayout | None = None

    def identity(self) -> dict[str, Any]:
        described = (
            f"{self.npy.dtype.str}{' fortran' if self.npy.fortran_order else ''}"
            if self.npy is not None
            else str(self.parquet.id_type if self.parquet else None)
        )
        return {
            "name": self.path.name,
            "rows": self.n_rows,
            "dim": self.dim,
            "type": described,
            **file_fingerprint(self.path),
        }


# --- the model ---------------------------------------------------------------------------------


def resolve_runtime(model: ModelLike) -> Runtime:
    """The numpy `Runtime` of a model folder path, a loaded or fitted compressor, or a runtime."""
    if isinstance(model, Runtime):
        return model
    if isinstance(model, (str, os.PathLike)):
        from dive.export.folder import load

        return load(model).runtime_
    fitted = getattr(model, "fitted_runtime", None)
    if callable(fitted):
        runtime = fitted()
        if isinstance(runtime, Runtime):
            return runtime
    raise TypeError(
        f"expected a Runtime, a (loaded) compressor or a model folder path, got {type(model)!r}"
    )


def runtime_digest(runtime: Runtime) -> str:
    """SHA-256 of everything the runtime computes with: a changed model means a restart."""
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


def output_dtype(runtime: Runtime, dtype: str | None) -> np.dtype[Any]:
    """The element type a compress run writes: the model's codes, or its float32 output cast
    to `dtype` (float32 or float16, for float32 models only)."""
    if dtype is not None and dtype not in OUTPUT_DTYPES:
        raise DiveError(f"dtype must be one of {', '.join(OUTPUT_DTYPES)}, got {dtype!r}")
    if runtime.quantizer is None:
        return np.dtype(dtype or "float32")
    if dtype is not None and np.dtype(dtype) != runtime.quantizer.dtype:
        raise DiveError(f"the model outputs {runtime.precision} codes; dtype {dtype} applies "
                        "to float32 models only (leave it out)")
    return runtime.quantizer.dtype


def check_compress_output(dst: Path, *, overwrite: bool, single: bool) -> None:
    """Refuse to replace anything but an earlier output of the same layout: a folder holding
    the marker, or a file in the format its suffix names (a 2-d numeric `.npy` array, a
    Parquet file), so a text or other file that happens to have the name is never replaced.
    An empty folder takes a folder output, as if nothing were there."""
    def ours(path: Path) -> bool:
        if single:
            return path.is_file() and _reads_as(path, SUFFIXES.get(path.suffix.lower()))
        return path.is_dir() and (path / OUTPUT_MARKER).is_file()

    file = "a Parquet file" if SUFFIXES.get(dst.suffix.lower()) == "parquet" else "a 2-d .npy array"
    check_output(dst, overwrite=overwrite, ours=ours,
                 what=f"a compress output ({file})" if single else
                 f"a compress output folder (one holding {OUTPUT_MARKER})",
                 folder=not single)  # an empty folder made for it is written into


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


def check_has_rows(src: object, rows: int) -> None:
    """Refuse a store `src` of 0 rows: a wrong or unfinished file, which an empty output and a
    success hid."""
    if not rows:
        raise DataError(f"{src}: no vectors to compress (0 rows)")


def check_dimension(what: object, dim: int | None, runtime: Runtime) -> None:
    """Refuse vectors of `what` (a file, a column) whose dimension `dim` is not the model's
    input (None: not known before the rows are read)."""
    if dim is not None and dim != runtime.input_dim:
        raise DataError(f"{what}: vectors have dimension {dim}, but the model expects "
                        f"{runtime.input_dim} (embeddings from another model?)")


def check_apart(src: Path, dst: Path) -> None:
    """Refuse an output that is, contains or lies inside the input: a rerun would read it."""
    src_abs, dst_abs = src.resolve(), dst.resolve()
    if dst_abs == src_abs or src_abs in dst_abs.parents or dst_abs in src_abs.parents:
        raise DiveError(f"{dst}: the output must not be, contain or lie inside the input {src}")


def write_output_marker(folder: Path, runtime: Runtime) -> None:
    """Mark `folder` as a compress output, so `overwrite` may replace it later."""
    marker = {"format": "dive-compress-output", "model_sha256": runtime_digest(runtime)}
    atomic_write_text(folder / OUTPUT_MARKER, json.dumps(marker, sort_keys=True) + "\n")


# --- the input ---------------------------------------------------------------------------------


def _inspect(path: Path, name: str, column: str, id_column: str | None) -> Shard:
    kind = SUFFIXES[path.suffix.lower()]
    if kind == "npy":
        header = read_npy_header(path)
        if header.dtype.kind != "f":
            raise DataError(integer_codes(str(path), header.dtype))
        return Shard(path, name, kind, header.shape[0], header.shape[1], npy=header)
    layout = inspect_parquet(path, column, id_column)
    return Shard(path, name, kind, layout.n_rows, layout.dim, parquet=layout)


def check_no_broken_links(paths: Iterable[Path]) -> None:
    """Refuse a broken symbolic link among a store's shard `paths`: a listing of files skips
    it, so its shard was left out of the output without a word."""
    broken = next((p for p in paths if p.is_symlink() and not p.exists()), None)
    if broken is not None:
        raise DataError(f"{broken}: a broken symbolic link (to {os.readlink(broken)}); "
                        "fix or remove it")


def _refuse_shards_in_subfolders(src: Path) -> None:
    """Shards are read from `src` itself: a subfolder holding shards (a partitioned store,
    `date=2024-01/part-0.parquet`) would be left out of the output without a word, so it is
    an error naming it. Hidden folders (`.` first) are skipped, as hidden files are."""
    for sub in sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if any(f.suffix.lower() in SUFFIXES for f in sub.rglob("*")):
            raise DataError(f"{sub}: a subfolder with shards; dive compress reads only the "
                            f"shards directly in {src}, so compress each folder on its own")


def _shard_files(src: Path) -> list[Path]:
    """The shards directly in the folder `src`, in name order, all of one kind."""
    named = sorted(p for p in src.iterdir()
                   if not p.name.startswith(".") and p.suffix.lower() in SUFFIXES)
    check_no_broken_links(named)
    files = [p for p in named if p.is_file()]
    if not files:
        raise DataError(f"{src}: no .npy or .parquet shards in this folder")
    _refuse_shards_in_subfolders(src)
    kinds = {SUFFIXES[p.suffix.lower()] for p in files}
    if len(kinds) > 1:
        raise DataError(f"{src}: mixes .npy and Parquet shards; keep one kind per folder")
    return files


def store_kind(src: str | os.PathLike[str]) -> Kind | None:
    """The format of the store at `src`: a folder's shards' (a `DataError` if they name none,
    as `compress_store` raises), a file's suffix's; None for anything else."""
    path = Path(src)
    if path.is_dir():
        return SUFFIXES[_shard_files(path)[0].suffix.lower()]
    return SUFFIXES.get(path.suffix.lower()) if path.is_file() else None


def discover(
    src: Path, output_name: str, column: str, id_column: str | None
) -> tuple[list[Shard], bool]:
    """The input's shards in processing order, and whether the input is a single file."""
    if src.is_dir():
        files = _shard_files(src)
        return [_inspect(p, p.name, column, id_column) for p in files], False
    if not src.is_file():
        raise DataError(f"{src}: no such file or folder")
    if src.suffix.lower() not in SUFFIXES:
        raise DataError(
            f"{src}: unknown store format {src.suffix!r}; expected .npy, .parquet or a folder "
            "of shards"
        )
    return [_inspect(src, output_name, column, id_column)], True


def _check_output_suffix(dst: Path, kind: Kind | None) -> None:
    """The output is written in the input's format (`kind`; None: a folder of shards)."""
    named = SUFFIXES.get(dst.suffix.lower())
    if kind is None and named is not None:
        raise DiveError(f"{dst}: a folder of shards compresses into a folder; drop the "
                        f"{dst.suffix!r} suffix")
    if kind is not None and named != kind:
        suffix = ".npy" if kind == "npy" else ".parquet"
        raise DiveError(f"{dst}: the output is a {kind} file like the input; name it *{suffix}")


def _row_error(src: Path, single: bool, path: Path, offset: int, local_row: int,
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
    parts = [(str(path), open_parquet(path).read(columns=[id_column]).column(0))
             for path in files]
    starts = np.cumsum([0] + [len(ids) for _, ids in parts])
    check_ids(parts, id_column, lambda k, row, problem: _row_error(
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
                raise row_error(k, local, f": duplicate id {ident!r} (first at {where})")


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


# --- state -------------------------------------------------------------------------------------


class Partial:
    """The hidden work folder beside the output: data being built, Parquet parts, state."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.root = output.parent / f".{output.name}.partial"
        self.data = self.root / "data"
        self.parts = self.root / "parts"
        self.state_path = self.root / "state.json"

    def held(self) -> contextlib.AbstractContextManager[None]:
        """Hold the work folder while this run uses it (`dive._io.held`)."""
        return held(self.root, self.output)

    def start(self, job: dict[str, Any]) -> dict[str, Any]:
        """The saved state if it belongs to `job`; otherwise a fresh folder and state (the
        folder itself stays: `held` locks it)."""
        if self.root.is_dir() and any(self.root.iterdir()):
            old = self._read_state()
            if old is not None and old.get("job") == job and self.data.is_dir():
                logger.info("%s: resuming after row %d", self.root, old["rows_done"])
                return old
            logger.warning(
                "%s: left by a run with another input, model or settings; starting over",
                self.root,
            )
            clear_folder(self.root)
        self.data.mkdir(parents=True)
        state = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "job": job,
            "rows_done": 0,
            "shards_finished": 0,
        }
        self.save(state)
        return state

    def _read_state(self) -> dict[str, Any] | None:
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        ok = (
            isinstance(state, dict)
            and state.get("format") == STATE_FORMAT
            and state.get("version") == STATE_VERSION
            and isinstance(state.get("rows_done"), int)
            and isinstance(state.get("shards_finished"), int)
        )
        return state if ok else None

    def save(self, state: dict[str, Any]) -> None:
        atomic_write_text(self.state_path, json.dumps(state, sort_keys=True) + "\n")

    def damaged(self, what: str) -> DataError:
        return DataError(
            f"{self.root}: partial output damaged ({what}); it has been removed, rerun to "
            "start over"
        )


def clear_folder(folder: Path) -> None:
    """Remove what `folder` holds, keeping the folder itself (and so a `held` lock on it)."""
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


# --- the work ----------------------------------------------------------------------------------


def compress_rows(
    runtime: Runtime,
    x: np.ndarray,
    dtype: np.dtype[Any],
    ids: pa.Array | None,
    fail: Callable[[int, str], DataError],
) -> np.ndarray:
    """`x` (any float dtype) compressed and cast to `dtype`, after checking every row is finite
    as float32 and non-zero.

    A bad row raises `fail(row, problem)`: `row` counts from `x`'s first row, and `problem`
    (the id, if `ids` are given, then what is wrong) starts with a space.
    """
    wide, x = x, to_float32(x)
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        ident = f" (id {ids[row].as_py()!r})" if ids is not None else ""
        raise fail(row, f"{ident} {non_finite_problem(wide[row])}")
    try:
        y = runtime(x)
    except BadRowError as exc:  # a zero row: name the file and the row in the store
        ident = f" (id {ids[exc.row].as_py()!r})" if ids is not None else ""
        raise fail(exc.row, f"{ident} {exc.problem}") from None
    return y.astype(dtype, copy=False)


class _Job:
    """One compress_store run: shards, model, settings, state."""

    def __init__(
        self,
        runtime: Runtime,
        src: Path,
        shards: list[Shard],
        single: bool,
        partial: Partial,
        state: dict[str, Any],
        *,
        batch_size: int,
        dtype: np.dtype[Any],
        column: str,
        id_column: str | None,
        output_column: str,
    ) -> None:
        self.runtime, self.src, self.shards, self.single = runtime, src, shards, single
        self.partial, self.state = partial, state
        self.batch_size, self.dtype = batch_size, dtype
        self.column, self.id_column, self.output_column = column, id_column, output_column

    def row_error(self, shard: Shard, offset: int, local_row: int, problem: str) -> DataError:
        """`problem` follows the row reference as is (starts with a space or a colon)."""
        return _row_error(self.src, self.single, shard.path, offset, local_row, problem)

    def compress(
        self, shard: Shard, offset: int, start: int, x: np.ndarray, ids: pa.Array | None = None
    ) -> np.ndarray:
        """Check `x` (rows `start`... of `shard`) is finite and compress it."""
        return compress_rows(self.runtime, x, self.dtype, ids, lambda row, problem:
                             self.row_error(shard, offset, start + row, problem))

    def chunk_done(self, rows_done: int) -> None:
        self.state["rows_done"] = rows_done
        self.partial.save(self.state)

    def run(self, bar: Any) -> None:
        offset = 0
        for k, shard in enumerate(self.shards):
            if k >= self.state["shards_finished"]:
                start = self.state["rows_done"] - offset
                if shard.kind == "npy":
                    self.run_npy(shard, offset, start, bar)
                else:
                    self.run_parquet(shard, offset, start, bar)
                self.state["shards_finished"] = k + 1
                self.partial.save(self.state)
                shutil.rmtree(self.partial.parts / shard.name, ignore_errors=True)
            offset += shard.n_rows

    def run_npy(self, shard: Shard, offset: int, start: int, bar: Any) -> None:
        assert shard.npy is not None
        target = self.partial.data / shard.name
        d = self.runtime.code_width
        if start == 0:
            out_offset = create_npy(target, shard.n_rows, d, self.dtype)
        else:
            try:
                header = read_npy_header(target)
            except (DataError, OSError) as exc:
                raise self.partial.damaged(str(exc)) from None
            if header.shape != (shard.n_rows, d) or header.dtype != self.dtype:
                raise self.partial.damaged(f"{target.name} has shape {header.shape}")
            out_offset = header.offset
        with target.open("r+b") as fout:
            for lo, x in prefetch(self.npy_chunks(shard, start)):
                hi = lo + x.shape[0]
                y = self.compress(shard, offset, lo, x)
                write_npy_rows(fout, out_offset, lo, y)
                # The rows must be on disk before the state says they are done.
                fout.flush()
                os.fsync(fout.fileno())
                self.chunk_done(offset + hi)
                bar.update(hi - lo)

    def npy_chunks(self, shard: Shard, start: int) -> Iterator[tuple[int, np.ndarray]]:
        assert shard.npy is not None
        with shard.path.open("rb") as fin:
            for lo in range(start, shard.n_rows, self.batch_size):
                hi = min(lo + self.batch_size, shard.n_rows)
                x = read_npy_rows(fin, shard.npy, lo, hi, shard.path)
                yield lo, x  # as read: `compress_rows` names a value beyond float32

    def out_schema(self, shard: Shard) -> pa.Schema:
        pa = import_pyarrow()
        fields = []
        if self.id_column is not None:
            assert shard.parquet is not None and shard.parquet.id_type is not None
            fields.append(pa.field(self.id_column, shard.parquet.id_type))
        fields.append(
            pa.field(self.output_column, vector_type(self.dtype, self.runtime.code_width))
        )
        return pa.schema(fields)

    def run_parquet(self, shard: Shard, offset: int, start: int, bar: Any) -> None:
        pa = import_pyarrow()
        assert shard.parquet is not None
        schema = self.out_schema(shard)
        parts = self.partial.parts / shard.name
        parts.mkdir(parents=True, exist_ok=True)
        columns = [self.column] if self.id_column is None else [self.id_column, self.column]
        dim = self.runtime.input_dim
        chunks = iter_parquet_chunks(shard.path, shard.parquet, columns, start, self.batch_size)
        for lo, table in prefetch(chunks):
            try:
                x = vectors_from_arrow(table.column(self.column), dim, str(shard.path), lo)
            except BadRow as exc:
                raise self.row_error(shard, offset, lo + exc.row, f": {exc.problem}") from None
            ids = None
            if self.id_column is not None:
                ids = table.column(self.id_column).combine_chunks()
            y = self.compress(shard, offset, lo, x, ids)
            arrays = ([] if ids is None else [ids]) + [vector_array(y)]
            out = pa.Table.from_arrays(arrays, schema=schema)
            with atomic_open(parts / part_name(lo), "wb") as handle:
                pa.parquet.write_table(out, handle)
            self.chunk_done(offset + lo + table.num_rows)
            bar.update(table.num_rows)
        self.merge_parts(shard, schema, parts)

    def merge_parts(self, shard: Shard, schema: pa.Schema, parts: Path) -> None:
        """Concatenate the shard's part files into one Parquet file, one row group a part."""
        pa = import_pyarrow()
        # Built beside `data/`, not in it: a kill mid-merge must leave no stray file there.
        merged = self.partial.root / "merged.parquet"
        with (
            atomic_open(merged, "wb") as handle,
            pa.parquet.ParquetWriter(handle, schema) as writer,
        ):
            for lo in range(0, shard.n_rows, self.batch_size):
                part = parts / part_name(lo)
                try:
                    table = pa.parquet.read_table(part, schema=schema).combine_chunks()
                except (OSError, pa.ArrowException) as exc:
                    raise self.partial.damaged(f"{part.name}: {exc}") from None
                writer.write_table(table, row_group_size=self.batch_size)
        os.replace(merged, self.partial.data / shard.name)


_T = TypeVar("_T")


def prefetch(items: Iterator[_T]) -> Iterator[_T]:
    """Yield from `items`, producing the next one in a thread while the caller works on this.

    Reading (file I/O, Parquet decoding) releases the GIL, so it overlaps the matrix product;
    at most one item waits, so memory grows by one chunk.
    """
    done = object()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dive-read") as pool:
        pending = pool.submit(next, items, done)
        while True:
            item = pending.result()
            if item is done:
                return
            pending = pool.submit(next, items, done)
            yield item  # type: ignore[misc]


def part_name(first_row: int) -> str:
    return f"part-{first_row:012d}.parquet"


@contextlib.contextmanager
def progress_bar(total: int, initial: int, desc: str, enabled: bool) -> Iterator[Any]:
    from tqdm import tqdm

    bar = tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="vec",
        unit_scale=True,
        disable=not enabled,
        dynamic_ncols=True,
    )
    try:
        yield bar
    finally:
        bar.close()


def compress_store(
    model: ModelLike,
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    batch_size: int = 65536,
    dtype: OutputDtype | None = None,
    column: str = "vector",
    id_column: str | None = "id",
    output_column: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> CompressResult:
    """Compress every vector of the store at `input` into `output`, in bounded memory.

    `model` is a model folder path, a `LoadedCompressor`, a fitted `Compressor` or a bare
    `Runtime`. `input` is a `.npy` file, a Parquet file or a folder of shards of one kind; the
    output has the same layout (Parquet: the id column `id_column`, if not None, then the
    compressed vectors as `fixed_size_list<dtype>` in `output_column`, default `column`).
    `dtype` (float32 models only) casts the output; None writes what the model outputs.
    `column` and `id_column` apply to Parquet only. An interrupted run resumes when rerun with
    the same arguments; `overwrite` allows replacing an existing output, at the end.
    """
    started = time.perf_counter()
    runtime = resolve_runtime(model)
    out_dtype = output_dtype(runtime, dtype)
    batch_size = positive_integer(batch_size, "batch_size")
    src, dst = Path(input), Path(output)
    out_column = output_column or column
    if id_column == "":
        id_column = None
    if id_column is not None and id_column == out_column:
        raise DiveError(f"the id column and the output vector column are both {id_column!r}")
    shards, single = discover(src, dst.name, column, id_column)
    check_has_rows(src, sum(shard.n_rows for shard in shards))
    for shard in shards:
        check_dimension(shard.path, shard.dim, runtime)
    if id_column is not None and shards[0].kind == "parquet":
        check_parquet_ids(src, [shard.path for shard in shards], single, id_column)
    check_apart(src, dst)
    check_compress_output(dst, overwrite=overwrite, single=single)
    _check_output_suffix(dst, shards[0].kind if single else None)

    job = {
        "input": str(src.resolve()),
        "shards": [s.identity() for s in shards],
        "model": {
            "sha256": runtime_digest(runtime),
            "input_dim": runtime.input_dim,
            "output_dim": runtime.output_dim,
        },
        "batch_size": batch_size,
        "dtype": out_dtype.name,
        "column": column,
        "id_column": id_column,
        "output_column": out_column,
    }
    dst.parent.mkdir(parents=True, exist_ok=True)
    partial = Partial(dst)
    with partial.held():  # a second run on this output fails at once
        state = partial.start(job)
        resumed = int(state["rows_done"])
        total = sum(s.n_rows for s in shards)
        work = _Job(
            runtime,
            src,
            shards,
            single,
            partial,
            state,
            batch_size=batch_size,
            dtype=out_dtype,
            column=column,
            id_column=id_column,
            output_column=out_column,
        )
        try:
            with naming_os_errors(dst), progress_bar(
                total, resumed, f"compress {src.name}", progress
            ) as bar:
                work.run(bar)
        except DataError:
            # The input (or the work folder) must change before a rerun can succeed; a resume
            # would only repeat the error, so leave nothing behind.
            shutil.rmtree(partial.root, ignore_errors=True)
            raise

        # Drop the state first: a crash from here on leaves a folder the next run discards.
        partial.state_path.unlink()
        if not single:
            write_output_marker(partial.data, runtime)
        try:  # without overwrite, an output another run published meanwhile is kept (DiveError)
            publish(partial.data / dst.name if single else partial.data, dst,
                    overwrite=overwrite, keep_tmp=True)
        except DiveError:
            # The finished work is whole: its state back, a rerun with overwrite publishes it.
            partial.save(state)
            raise DiveError(f"{dst}: already exists (another run wrote it meanwhile); the "
                            f"finished output is kept in {partial.root}: rerun with "
                            "overwrite=True to publish it without recomputing",
                            param="overwrite") from None
        except BaseException:
            shutil.rmtree(partial.root, ignore_errors=True)  # no state left to resume from
            raise
        shutil.rmtree(partial.root, ignore_errors=True)
        seconds = time.perf_counter() - started
        logger.info("%s: %d vectors compressed in %.1f s", dst, total - resumed, seconds)
        return CompressResult(
            dst, total, runtime.input_dim, runtime.output_dim, out_dtype.name, resumed, seconds
        )
