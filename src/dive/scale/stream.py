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

This module runs the job; `dive.scale.discover` finds the shards, `dive.scale.checks` holds
the checks made before work starts, `dive.scale.resume` the work folder and
`dive.scale.model` the model's runtime and digest.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from dive._io import (
    as_path,
    atomic_open,
    check_flag,
    made_folder,
    named,
    naming_os_errors,
    nothing_finished_unless,
    publish,
    publishing,
    refuse_folder_form,
)
from dive.arrays import (
    BadRowError,
    as_unit_rows,
    non_finite_problem,
    positive_integer,
    to_float32,
)
from dive.compressors.runtime import runtime_digest
from dive.errors import DataError, DiveError
from dive.scale.checks import (
    check_apart,
    check_compress_output,
    check_dimension,
    check_has_rows,
    check_output_suffix,
    check_parquet_ids,
    check_parquet_output_name,
    column_names,
    store_row_error,
)
from dive.scale.discover import Shard, discover
from dive.scale.formats import (
    BadRow,
    create_npy,
    import_pyarrow,
    iter_parquet_chunks,
    read_npy_header,
    read_npy_rows,
    vector_array,
    vector_type,
    vectors_from_arrow,
    write_npy_rows,
)
from dive.scale.model import OutputDtype, output_dtype, resolve_runtime
from dive.scale.resume import Partial, part_name, write_output_marker

if TYPE_CHECKING:
    import pyarrow as pa

    from dive.compressors.runtime import Runtime
    from dive.scale.model import ModelLike

logger = logging.getLogger(__name__)


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
    precision: str = "float32"  # the model's (`binary`: output_dim sign bits in uint8 bytes)

    @property
    def rows_per_second(self) -> float:
        return (self.rows - self.resumed_rows) / self.seconds if self.seconds > 0 else 0.0


def compress_rows(
    runtime: Runtime,
    x: np.ndarray,
    dtype: np.dtype[Any],
    ids: pa.Array | None,
    fail: Callable[[int, str], DataError],
) -> np.ndarray:
    """`x` (any float dtype) compressed and cast to `dtype`, after checking every row is finite
    as float32 and non-zero (a wider row is normalised from its own values first).

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
        # wider rows are normalised from their own values, as `transform` does: cast first, a
        # float64 row of 1e-43s kept a few bits of each value (another direction) and one of
        # 1e-50s none
        y = runtime(as_unit_rows(wide) if wide.dtype.itemsize > x.dtype.itemsize else x)
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
        return store_row_error(self.src, self.single, shard.path, offset, local_row, problem)

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
        self.check_state()
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

    def check_state(self) -> None:
        """`DataError` (the work folder damaged) unless the state's progress is a point of
        this job: finished shards, then rows inside the next one (a row count past the input
        resumed to zero rows, a count below it wrote before the file's start)."""
        finished, rows_done = self.state["shards_finished"], self.state["rows_done"]
        if 0 <= finished <= len(self.shards):
            first = sum(s.n_rows for s in self.shards[:finished])
            last = first + (self.shards[finished].n_rows if finished < len(self.shards) else 0)
            if first <= rows_done <= last:
                return
        raise self.partial.damaged(f"state.json: {rows_done} rows and {finished} shards done "
                                   f"of {sum(s.n_rows for s in self.shards)} rows in "
                                   f"{len(self.shards)} shards")

    def run_npy(self, shard: Shard, offset: int, start: int, bar: Any) -> None:
        assert shard.npy is not None
        target = self.partial.data / shard.name
        d = self.runtime.code_width
        if start == 0:
            out_offset = create_npy(target, shard.n_rows, d, self.dtype)
        elif target.is_symlink():  # rows are written through it: only into our own file
            raise self.partial.damaged(f"{target.name} is a symbolic link")
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
            ids = None
            if self.id_column is not None:
                ids = table.column(self.id_column).combine_chunks()
            try:
                x = vectors_from_arrow(table.column(self.column), dim, str(shard.path), lo,
                                       wide=True)
            except BadRow as exc:
                ident = f" (id {ids[exc.row].as_py()!r})" if ids is not None else ""
                raise self.row_error(shard, offset, lo + exc.row,
                                     f"{ident}: {exc.problem}") from None
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
                    table = pa.parquet.read_table(os.path.abspath(part),  # not a URI
                                                  schema=schema).combine_chunks()
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
    src = as_path(input, "compress_store: input")
    dst = named(as_path(output, "compress_store: output"))  # `.`: no name for a work folder
    # from here, not only around the work: an interruption while the store is checked (its
    # ids read) said "finished chunks are saved" where none were
    partial = Partial(dst)
    partial.clear_if_published()
    with nothing_finished_unless(partial.has_saved_rows):
        runtime = resolve_runtime(model)
        out_dtype = output_dtype(runtime, dtype)
        # Arrow reads and writes Parquet in int64 batches: a larger size (any the CLI takes) was
        # an OverflowError, a traceback; every store has fewer rows, so it is one chunk either way.
        check_flag(progress, "progress")
        batch_size = min(positive_integer(batch_size, "batch_size"), 2**63 - 1)
        column, id_column, out_column = column_names(column, id_column, output_column)
        shards, single = discover(src, dst.name, column, id_column)
        if single:
            refuse_folder_form(output, f"{src.name} is one file, so its output is one file")
        check_has_rows(src, sum(shard.n_rows for shard in shards))
        for shard in shards:
            check_dimension(shard.path, shard.dim, runtime,
                            first_row=shard.parquet is not None and not shard.parquet.declared)
        if id_column is not None and shards[0].kind == "parquet":
            check_parquet_ids(src, [shard.path for shard in shards], single, id_column)
        check_apart(src, dst)
        check_compress_output(dst, overwrite=overwrite, single=single)
        check_output_suffix(dst, shards[0].kind if single else None)
        if shards[0].kind == "parquet":
            check_parquet_output_name(dst)

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
        # a second run on this output fails at once; a failed one leaves no folder it made empty
        with made_folder(dst.parent), partial.held():
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
            except KeyboardInterrupt:
                partial.discard_if_unsaved()
                raise

            _publish_finished(partial, state, runtime, single=single, overwrite=overwrite)
            seconds = time.perf_counter() - started
            logger.info("%s: %d vectors compressed in %.1f s", dst, total - resumed, seconds)
            return CompressResult(dst, total, runtime.input_dim, runtime.output_dim, out_dtype.name,
                                  resumed, seconds, runtime.precision)


def _publish_finished(partial: Partial, state: dict[str, Any], runtime: Runtime, *,
                      single: bool, overwrite: bool) -> None:
    """Put the finished work of `partial` in place at its output and remove the work folder.

    From the state's drop to the work folder's, one block that a signal lands after: one
    between them discarded the finished work, the message saying a rerun resumes."""
    dst = partial.output
    with publishing():
        # Drop the state first: a crash from here on leaves a folder the next run discards.
        partial.state_path.unlink()
        if not single:
            write_output_marker(partial.data, runtime)
        try:  # what appeared meanwhile is kept: any output without overwrite, else another kind
            if overwrite:
                check_compress_output(dst, overwrite=True, single=single)
            publish(partial.data / dst.name if single else partial.data, dst,
                    overwrite=overwrite, keep_tmp=True)
        except DiveError:
            # The finished work is whole: its state back, a rerun publishes it.
            partial.save(state)
            raise _kept_for_later(dst, single, partial.root) from None
        except BaseException:
            shutil.rmtree(partial.root, ignore_errors=True)  # no state left to resume from
            raise
        shutil.rmtree(partial.root, ignore_errors=True)


def _kept_for_later(dst: Path, single: bool, root: Path) -> DiveError:
    """What to do when something appeared at `dst` while the work ran: a compress output is
    replaced by a rerun with overwrite; anything else has to be moved away first."""
    try:
        check_compress_output(dst, overwrite=True, single=single)
    except DiveError as not_ours:
        return DiveError(f"{not_ours} (it appeared while this run worked); the finished output "
                         f"is kept in {root}: move it away and rerun to publish the output "
                         "without recomputing")
    return DiveError(f"{dst}: already exists (another run wrote it meanwhile); the finished "
                     f"output is kept in {root}: rerun with overwrite=True to publish it "
                     "without recomputing")
