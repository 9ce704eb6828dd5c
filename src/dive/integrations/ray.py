"""Ray Data engine: compress a Dataset's vector column on many workers and machines.

`compress_dataset` adds a `map_batches` stage running `CompressBatch`, a callable class that
loads the compressor once per worker (a model folder path is read there with numpy and
safetensors only; an in-memory model is shipped to each worker) and compresses Arrow batches
with the same numpy `Runtime` as `dive.scale.compress_store`, so both engines compute the same
vectors for the same batches. Vectors may be `fixed_size_list`, `list` or Ray tensor columns;
the output column is `fixed_size_list<float32|float16, d>`, or of the codes of a model saved
with another precision (int8, or uint8 packed bits), as `compress_store` writes them.

`compress_parquet` is `dive compress --engine ray`: read Parquet (a file or a folder, local or
on a filesystem every node sees), compress, write a folder of Parquet files, renamed into
place at the end. Each input file is checked on the driver first, as the local engine checks
its shards (columns, vector type, dimension; a store of 0 rows is refused; a null id, or one an
earlier row has, reading the id column alone), so bad input is one line before Ray starts.

Left out: resuming an interrupted job (Ray retries failed tasks, but a killed driver starts
over; use the local engine for resumable single-machine runs), preserving row order (Ray Data
does not by default; carry an id column), and cluster setup (`ray.init()` joins the cluster
in `RAY_ADDRESS`, else starts a local one; a host:port where nothing answers is refused
first: `check_ray_address`). Needs the optional extra `ray`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from dive._io import (
    MANIFEST,
    check_flag,
    clear_work_folder,
    held,
    made_folder,
    named,
    publish,
    work_folder,
)
from dive.arrays import BadRowError, positive_integer
from dive.compressors.runtime import Runtime
from dive.errors import DataError, DiveError
from dive.scale.checks import (
    check_apart,
    check_compress_output,
    check_dimension,
    check_has_rows,
    check_no_broken_links,
    check_parquet_ids,
    check_parquet_output_name,
    column_names,
)
from dive.scale.formats import (
    SUFFIXES,
    BadRow,
    import_pyarrow,
    inspect_parquet,
    vector_array,
    vectors_from_arrow,
)
from dive.scale.model import OutputDtype, output_dtype, resolve_runtime
from dive.scale.resume import OUTPUT_MARKER, write_output_marker

if TYPE_CHECKING:
    import pyarrow as pa

    from dive.scale.model import ModelLike

logger = logging.getLogger(__name__)
_E = TypeVar("_E", bound=BaseException)
_WORK_MARK = ".dive-ray-work"  # in a work folder a run made: what it holds is a run's
# what Ray's write_parquet names its files (`<uuid>_000000-0.parquet`): a run of a release
# before the mark, or one killed after its mark went, left these
_RAY_PART = re.compile(r".+_\d{6}[-_0-9]*\.parquet")


def import_ray() -> Any:
    """ray (with Ray Data), or a `DiveError` saying which extra to install."""
    try:
        import ray
        import ray.data
    except ImportError as exc:  # named: without pyarrow, Ray Data's own import fails
        raise DiveError(f"the Ray engine needs ray[data] (missing: {exc.name or exc}): pip install "
                        "'dive-compress[ray]'") from None
    return ray


class CompressBatch:
    """Ray Data callable class: one compressor per worker, applied to each Arrow batch."""

    def __init__(
        self,
        model: str | Runtime,
        column: str,
        output_column: str,
        dtype: str | None = None,
        id_column: str | None = None,
    ) -> None:
        # Runs once per worker: a folder is read here, not on every batch.
        self.runtime = resolve_runtime(model)
        self.column, self.output_column, self.id_column = column, output_column, id_column
        self.dtype = output_dtype(self.runtime, dtype)

    def _row(self, batch: pa.Table, row: int) -> str:
        if self.id_column is not None and self.id_column in batch.column_names:
            return f"the row with id {batch.column(self.id_column)[row].as_py()!r}"
        return "a row"

    def __call__(self, batch: pa.Table) -> pa.Table:
        where = f"column {self.column!r}"
        try:
            # float64 stays float64: the runtime normalises it from its own values
            x = vectors_from_arrow(batch.column(self.column), self.runtime.input_dim, where, 0,
                                   wide=True, dim_from="as the model takes")
        except BadRow as exc:
            raise DataError(f"{where}: {self._row(batch, exc.row)}: {exc.problem}") from None
        finite = np.isfinite(x).all(axis=1)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise DataError(f"{where}: {self._row(batch, row)} contains NaN or inf")
        try:
            y = self.runtime(x)
        except BadRowError as exc:  # a zero row: its row in the batch means nothing to a
            # user, so name its id
            raise DataError(f"{where}: {self._row(batch, exc.row)} {exc.problem}") from None
        vectors = vector_array(y.astype(self.dtype, copy=False))
        names = batch.column_names
        if self.output_column in names:
            return batch.set_column(names.index(self.output_column), self.output_column, vectors)
        return batch.append_column(self.output_column, vectors)


def _check_schema(ds: Any, column: str, runtime: Runtime) -> None:
    """Check the vector column against the model when the schema is known without running."""
    pa = import_pyarrow()
    try:
        schema = ds.schema(fetch_if_missing=False)
    except TypeError:  # older Ray: no fetch_if_missing
        schema = None
    if schema is None:
        return
    names = list(schema.names)
    if column not in names:
        raise DataError(f"dataset: no vector column {column!r} (columns: {', '.join(names)})")
    vtype = schema.types[names.index(column)]
    if isinstance(vtype, pa.DataType) and pa.types.is_fixed_size_list(vtype):
        check_dimension(f"dataset column {column!r}", vtype.list_size, runtime)


def compress_dataset(
    ds: Any,
    model: ModelLike,
    *,
    column: str = "vector",
    output_column: str | None = None,
    id_column: str | None = None,
    batch_size: int = 4096,
    dtype: OutputDtype | None = None,
    num_workers: int | None = None,
) -> Any:
    """A lazy Ray Dataset with `column` compressed into `output_column` (default: replaced).

    `model` is a model folder path (read on each worker: it must be reachable there, e.g. on
    shared storage), a loaded or fitted compressor or a `Runtime` (shipped to the workers).
    `id_column` only names rows in error messages. `num_workers` caps the actor pool (default:
    autoscale to the cluster).
    """
    ray = import_ray()
    column, id_column, output_column = column_names(column, id_column, output_column)
    batch_size = positive_integer(batch_size, "batch_size")
    runtime = resolve_runtime(model)  # checks the folder once, on the driver
    output_dtype(runtime, dtype)  # a bad dtype fails here, before any worker starts
    _check_schema(ds, column, runtime)
    shipped: str | Runtime = (
        str(Path(model).resolve()) if isinstance(model, (str, os.PathLike)) else runtime
    )
    return ds.map_batches(
        CompressBatch,
        fn_constructor_kwargs={
            "model": shipped,
            "column": column,
            "output_column": output_column,
            "dtype": dtype,
            "id_column": id_column,
        },
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=num_workers),
    )


class _WarningsOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # "Progress bars disabled. To enable, set ...": what --no-progress asked for
        return (logging.WARNING <= record.levelno < logging.ERROR
                and not record.getMessage().startswith("Progress bars disabled"))


@contextlib.contextmanager
def _console_with_ray_data_warnings_only() -> Iterator[None]:
    """Keep Ray Data's error records (each with a worker's traceback) off the terminal while
    dive runs a job whose errors it raises itself, as one line, and its progress notes (the
    execution plan, "finished in N seconds", where its log files are) around dive's own
    result line; its log file keeps them all."""
    handlers = [h for h in logging.getLogger("ray.data").handlers
                if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
    quiet = _WarningsOnly()
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)


def _data_error_in(exc: BaseException) -> DataError | None:
    """The `DataError` a worker raised, dug out of Ray's wrappers (or their text)."""
    found = _worker_error_in(exc, DataError)
    if found is not None:
        return DataError(str(found).splitlines()[0])  # Ray appends advice on retries
    # Ray Data may wrap a worker's error in its own (UserCodeException), keeping only the
    # worker's traceback text, whose last line is the message.
    text = re.findall(r"dive\.errors\.DataError: ([^\n]+)", str(exc))
    return DataError(text[-1]) if text else None


def _os_error_in(exc: BaseException, path: Path) -> OSError | None:
    """The file-system error (disk full...) a worker raised, dug out of Ray's wrappers (or
    their text): the error line was the worker's whole traceback. One in the work folder
    `path` (or naming no file) is named `path`; one naming another file (an input) keeps it."""
    found = _worker_error_in(exc, OSError)
    if found is not None and found.errno is not None:
        code, named = found.errno, found.filename
    else:
        text = re.findall(r"OSError: \[Errno (\d+)\]", str(exc))
        if not text:
            return None
        code, named = int(text[-1]), None
    if named is None or Path(os.fsdecode(named)).is_relative_to(path):
        named = os.fspath(path)
    return OSError(code, os.strerror(code), named)


def _worker_error_in(exc: BaseException, kind: type[_E]) -> _E | None:
    """The `kind` error a worker raised, found among Ray's wrappers: a wrapper (a `RayError`)
    is of `kind` too, `RayTaskError(DataError)`, with the worker's traceback as its text."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        cause = getattr(current, "cause", None)  # RayTaskError(DataError) keeps the original
        for found in (cause, current):
            if isinstance(found, kind) and not isinstance(found, ray_error_types()):
                return found
        stack += [current.__cause__, current.__context__, cause]
    return None


def ray_error_types() -> tuple[type[BaseException], ...]:
    import ray.exceptions

    return (ray.exceptions.RayError,)


def compress_parquet(
    model: ModelLike,
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    column: str = "vector",
    id_column: str | None = "id",
    output_column: str | None = None,
    batch_size: int = 4096,
    dtype: OutputDtype | None = None,
    overwrite: bool = False,
    num_workers: int | None = None,
    progress: bool = True,
) -> int:
    """Compress a Parquet store on Ray into a folder of Parquet files; return the row count.

    The output holds `id_column` (if not None) and the compressed vectors in `output_column`
    (default `column`), is written to a hidden folder beside `output` and renamed into place
    when complete with the marker of a compress output; an existing output is replaced only
    with `overwrite`, and only if it is such a marked folder. The hidden folder is held
    (`dive._io.held`): a second run on the same output fails at once. `progress=False` turns
    Ray Data's progress bars off for the run.
    """
    check_flag(progress, "progress")
    ray = import_ray()
    # absolute: Ray expands a leading '~' where dive takes it as a folder name, so its files
    # went to $HOME and an empty folder was published (`--output=~/out`)
    src, dst = named(Path(input)), named(Path(output))
    if not src.exists():
        raise DataError(f"{src}: no such file or folder")
    if src.is_file() and src.suffix.lower() not in (".parquet", ".pq"):
        raise DataError(f"{src}: the Ray engine reads Parquet; use the local engine for .npy")
    if dst.suffix.lower() in (".npy", ".parquet", ".pq"):  # as the local engine names a folder
        raise DiveError(f"{dst}: the Ray engine writes a folder of Parquet files; drop the "
                        f"{dst.suffix!r} suffix")
    check_apart(src, dst)
    check_compress_output(dst, overwrite=overwrite, single=False)
    check_parquet_output_name(dst)
    runtime = resolve_runtime(model)
    column, id_column, out_column = column_names(column, id_column, output_column)
    if id_column is None:  # its rows come out in another order, with nothing to match them by
        raise DiveError("the Ray engine does not keep row order, so its output needs an id "
                        "column to match rows back; name one, or use the local engine",
                        param="id_column")
    files, n_rows = _parquet_files(src), 0
    for path in files:  # what the local engine checks, before Ray starts
        layout = inspect_parquet(path, column, id_column, ids_optional=False)
        check_dimension(path, layout.dim, runtime, first_row=not layout.declared)
        n_rows += layout.n_rows
    check_has_rows(src, n_rows)
    if id_column is not None:
        check_parquet_ids(src, files, src.is_file(), id_column)
    _check_schemas_merge(src, files, id_column)
    if not ray.is_initialized():
        check_ray_address(os.environ.get("RAY_ADDRESS", ""))
    if not ray.is_initialized():  # before the work folder: a failed start left it behind
        init_keeping_signals(ray)
    tmp = work_folder(dst, "ray-partial")
    # with made_folder: a failed run leaves no output folders it made, as the local engine's
    with made_folder(dst.parent), held(tmp, dst):  # a second run on this output fails at once
        # a killed run's files (this engine starts over): only the folder a run marked, or
        # Ray's own files and dive's marks, never a user's
        clear_work_folder(tmp, lambda name: (tmp / _WORK_MARK).is_file() or name in (
            OUTPUT_MARKER, MANIFEST) or _RAY_PART.fullmatch(name) is not None)
        (tmp / _WORK_MARK).touch()
        try:
            rows = _write_and_publish(ray, src, tmp, dst, runtime, n_rows, overwrite=overwrite,
                                      column=column, output_column=out_column,
                                      id_column=id_column, batch_size=batch_size, dtype=dtype,
                                      num_workers=num_workers, progress=progress)
        except BaseException:  # a failure, Ctrl-C or SIGTERM: this engine starts over, so
            shutil.rmtree(tmp, ignore_errors=True)  # nothing is kept to resume from
            raise
    logger.info("%s: %d vectors compressed on Ray", dst, rows)
    return rows


def _write_and_publish(ray: Any, src: Path, tmp: Path, dst: Path, runtime: Runtime,
                       n_rows: int, *, overwrite: bool, **write: Any) -> int:
    """Have Ray write the compressed rows into the work folder `tmp`, check that they are all
    there, and publish them at `dst`; return the row count."""
    with _console_with_ray_data_warnings_only():
        _write_compressed(ray, src, tmp, runtime, **write)
    pq = import_pyarrow().parquet
    rows = sum(pq.ParquetFile(os.path.abspath(p)).metadata.num_rows  # not a URI
               for p in sorted(tmp.rglob("*.parquet")))
    if rows != n_rows:  # never publish what Ray did not write in full
        raise DiveError(f"{dst}: Ray wrote {rows} of the {n_rows} rows read; nothing was "
                        "published")
    (tmp / _WORK_MARK).unlink()
    write_output_marker(tmp, runtime)
    if overwrite:  # what is there now, which may have appeared since the check above
        check_compress_output(dst, overwrite=True, single=False)
    # keeps what another run published meanwhile
    publish(tmp, dst, overwrite=overwrite, output=True)
    return rows


_HOST_PORT = re.compile(r"(?:ray://)?(?P<host>\[[^\]]+\]|[^:/\[\]]+):(?P<port>\d{1,5})")


def check_ray_address(address: str, timeout_s: float = 10.0) -> None:
    """`DiveError` when `address` (`$RAY_ADDRESS`) names a host and port nothing answers at:
    `ray.init` retried it for minutes, printing only Ray's own lines. Other forms (empty,
    `auto`, `local`) are left to Ray."""
    import socket

    found = _HOST_PORT.fullmatch(address.strip())
    if found is None:
        return
    host, port = found["host"].strip("[]"), int(found["port"])
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise DiveError(f"$RAY_ADDRESS is {address!r}, where no Ray cluster answers ({why.lower()}"
                        "); start the cluster, or unset RAY_ADDRESS to start a local one") from None


def init_keeping_signals(ray: Any) -> None:
    """`ray.init()` without start-up chatter around dive's lines, keeping the process's
    handlers of SIGINT, SIGTERM and SIGHUP: Ray installs its own, so a SIGTERM aborted with
    Ray's stack dump and exit 134, not dive's one line and 143."""
    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    ray.init(logging_level=logging.WARNING)
    if threading.current_thread() is threading.main_thread():  # where handlers can be set
        for sig, handler in kept.items():
            if handler is not None:  # None: set outside Python, nothing to put back
                signal.signal(sig, handler)


def _parquet_files(src: Path) -> list[Path]:
    """The Parquet files (.parquet, .pq) of the file or folder `src`, in name order: a folder's
    at any depth (a partitioned store), but for hidden ones (a name starting with '.'), as the
    local engine reads them. A name starting with '_', which Ray skips and the local engine
    reads, is an error (Ray compressed the other files, exit 0), as is a broken symbolic link
    (Ray skipped it without a word)."""
    if src.is_file():
        return [src]
    shards = sorted(p for p in src.rglob("*") if p.suffix.lower() in SUFFIXES
                    and not any(part.startswith(".") for part in p.relative_to(src).parts))
    named = [p for p in shards if SUFFIXES[p.suffix.lower()] == "parquet"]
    if named and len(named) < len(shards):  # Ray left the .npy ones out, exit 0
        other = next(p for p in shards if p not in named)
        raise DataError(f"{other}: a .npy shard among Parquet ones, which the Ray engine would "
                        "leave out (it reads Parquet); keep one kind per folder")
    skipped = [p for p in named if any(part.startswith("_") for part in p.relative_to(src).parts)]
    if skipped:
        raise DataError(f"{skipped[0]}: Ray Data skips Parquet files and folders whose names "
                        "start with '_' (the local engine reads them); rename it, or compress "
                        "with the local engine")
    check_no_broken_links(named)
    files = [p for p in named if p.is_file()]
    if not files:
        raise DataError(f"{src}: no .parquet files in this folder (the Ray engine reads "
                        "Parquet; use the local engine for .npy)")
    return files


def _check_schemas_merge(src: Path, files: list[Path], id_column: str) -> None:
    """Ray Data merges the schemas of all `files` of `src`, every column, before reading the two it
    needs: columns whose types differ between files (a `text` column of strings in one and of
    integers in another, dictionary-encoded ids in one) stopped it with pyarrow's traceback,
    where the local engine compresses them; unsigned and signed integer ids merge as int64,
    whose cast failed on Ray's workers for ids of 2**63 and more."""
    arrow = import_pyarrow()
    schemas = [arrow.parquet.read_schema(path) for path in files]
    id_types = [schema.field(id_column).type for schema in schemas]
    unsigned = {arrow.types.is_unsigned_integer(t) for t in id_types if arrow.types.is_integer(t)}
    merged = schemas[0]
    for path, schema in zip(files[1:], schemas[1:], strict=True):
        try:
            merged = arrow.unify_schemas([merged, schema], promote_options="permissive")
        except (arrow.ArrowTypeError, arrow.ArrowInvalid) as exc:
            raise DataError(f"{path}: its columns' types differ from {files[0]}'s ({exc}), "
                            "and the Ray engine merges every column of every file; make them "
                            "agree, or use the local engine (it reads the vector and id "
                            "columns only)") from None
    if len(unsigned) > 1:
        raise DataError(f"{src}: the {id_column!r} column is unsigned in some files "
                        "and signed in others, which the Ray engine cannot merge; cast them to "
                        "one type, or use the local engine")


def _write_compressed(
    ray: Any,
    src: Path,
    tmp: Path,
    runtime: Runtime,
    *,
    column: str,
    output_column: str,
    id_column: str | None,
    batch_size: int,
    dtype: OutputDtype | None,
    num_workers: int | None,
    progress: bool,
) -> None:
    """Read the Parquet store `src`, compress it on Ray and write Parquet files into `tmp`;
    a worker's bad row is raised as one `DataError` (the caller removes `tmp`)."""
    columns = [column] if id_column is None else [id_column, column]
    context = ray.data.DataContext.get_current()
    # Ask Ray Data to re-raise a worker's own exception (a DataError naming the row) rather
    # than its generic wrapper; restored afterwards, as the context is the caller's too.
    original = getattr(context, "raise_original_map_exception", None)
    if original is not None:
        context.raise_original_map_exception = True
    bars = context.enable_progress_bars  # `--no-progress`: Ray Data's bars (or log lines) too
    context.enable_progress_bars = progress and bars
    try:
        # .pq too, as `_parquet_files` lists them: Ray's default reads *.parquet only.
        ds = ray.data.read_parquet(str(src), file_extensions=["parquet", "pq"])
        ds = ds.select_columns(columns)
        out = compress_dataset(
            ds,
            runtime,
            column=column,
            output_column=output_column,
            id_column=id_column,
            batch_size=batch_size,
            dtype=dtype,
            num_workers=num_workers,
        )
        keep = [output_column] if id_column is None else [id_column, output_column]
        out.select_columns(keep).write_parquet(str(tmp))
    except Exception as exc:
        # Ray re-raises a worker's DataError as RayTaskError(DataError), a subclass of both
        # whose text is the worker's traceback: dig the DataError out rather than pass it on.
        if isinstance(exc, DiveError) and not isinstance(exc, ray_error_types()):
            raise
        found = _data_error_in(exc)
        if found is not None:
            raise DataError(f"{src}: {found}") from None
        failed = _os_error_in(exc, tmp)  # named as the output (`describe_os_error`)
        if failed is not None:
            raise failed from None
        raise
    finally:
        context.enable_progress_bars = bars
        if original is not None:
            context.raise_original_map_exception = original
