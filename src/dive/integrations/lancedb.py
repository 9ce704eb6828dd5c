"""LanceDB: compress a table's vector column into a new table or a new column, and search it.

`compress_table` is `dive compress --input lancedb:PATH/TABLE`. It reads the vector column
(and the id column) of a LanceDB table at one version, chunk by chunk, through a fitted
compressor's numpy runtime, and writes either a new table (`lancedb:PATH/NEW`: the id column,
then the compressed vectors) or a new column of the same table (`output_column`). Memory
depends on the chunk size, never on the table, but for a new table's ids: a null id, or one
an earlier row has, is refused before any work, checked on the id column read whole (a few
bytes a row). Chunks are staged as Parquet part files in a
hidden work folder in the database folder (`.<table>.lance.partial/`, kept as `dive.scale`
keeps its own), so an interrupted run resumes after its last finished chunk; the new table or
column appears in one LanceDB commit at the end, streamed from the parts (a new table is
written in the work folder and renamed into the database when complete). The job's identity
includes the input table's version, so a table changed in between starts the job over. What
dive wrote is marked in the schema metadata (key `dive.compress`); only that is ever replaced,
and only with `overwrite` (a column is then added under a staging name and renamed once the
earlier one is dropped, so a failed run keeps it).

`search` compresses query embeddings with the same runtime, searches the compressed column
(exact flat search, or the column's ANN index, e.g. IVF, with `nprobes`) by inner product,
and optionally rescores the candidates with the original full-dimension vectors, from a column
of the same table or of another table joined by id. dive's mark also records which compressor
wrote the column (`model_sha256`, the `runtime_digest`), and `search` refuses a column written
by another compressor than the one it is given (same-dimension vectors of another model would
return unrelated hits); a column with no mark (written by other tools) is searched unchecked.

Left out: remote databases (PATH is a local folder), carrying columns other than the id into a
new table, and building indexes (LanceDB's `table.create_index`; see docs/scale.md). Needs the
optional extra `lancedb` (lancedb and pylance).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dive._io import (
    atomic_open,
    check_flag,
    check_output,
    check_overwrite,
    made_folder,
    mark_written_before,
    naming_os_errors,
    nothing_finished_unless,
    os_error_in_text,
    publish,
    publishing,
    user_path,
    written_before,
)
from dive.arrays import (
    BadRowError,
    as_unit_rows,
    check_floating,
    is_integer,
    positive_integer,
)
from dive.compressors.runtime import runtime_digest
from dive.errors import DataError, DiveError, kind_of, quoted
from dive.scale.checks import check_has_rows, check_ids, column_names
from dive.scale.formats import (
    BadRow,
    import_pyarrow,
    integer_codes,
    vector_array,
    vector_type,
    vectors_from_arrow,
)
from dive.scale.model import OutputDtype, output_dtype, resolve_runtime
from dive.scale.resume import Partial, part_name
from dive.scale.stream import CompressResult, compress_rows, prefetch, progress_bar

if TYPE_CHECKING:
    import pyarrow as pa

    from dive.compressors.runtime import Runtime
    from dive.scale.model import ModelLike

logger = logging.getLogger(__name__)

PREFIX = "lancedb:"
MARKER_KEY = b"dive.compress"  # schema metadata of a new table, field metadata of a new column
# A new column is added under its name plus this, then renamed (`_add_column`).
STAGING_SUFFIX = "__dive_staging"


def import_lancedb() -> Any:
    """lancedb (with pylance and pyarrow), or a `DiveError` saying which extra to install."""
    try:
        import lance  # noqa: F401  (adding a column goes through pylance)
        import lancedb
    except ImportError as exc:  # named: without pyarrow, lance's own import fails
        raise DiveError(f"LanceDB tables need lancedb, pylance and pyarrow (missing: "
                        f"{exc.name or exc}): pip install 'dive-compress[lancedb]'") from None
    import_pyarrow()
    return lancedb


@dataclass(frozen=True)
class TableRef:
    """A table of a local LanceDB database, written `lancedb:PATH/TABLE`; `name` is one LanceDB
    takes (its own rule), and not the name of the table's folder (`docs.lance`)."""

    db: Path
    name: str

    def __post_init__(self) -> None:
        try:  # LanceDB's own rule, checked now: it refused the name only once the work was done
            import_lancedb().util.validate_table_name(self.name)
        except ValueError as exc:
            raise DiveError(f"{self}: {exc}") from None
        if self.name.endswith(".lance"):  # a new table went to the folder `docs.lance.lance`
            raise DiveError(f"{self}: {self.name} is the table's folder; the table is "
                            f"{PREFIX}{self.db}/{self.name.removesuffix('.lance')}")

    @classmethod
    def parse(cls, text: str | os.PathLike[str]) -> TableRef:
        """The table `text` names. A PATH in a table's folder, or a missing one in a database
        folder, is refused: a table name holds no '/', so that part is a slip (a new database
        was made there without a word)."""
        spec = os.fspath(text)
        if not spec.startswith(PREFIX):
            raise DiveError(f"{spec}: a LanceDB table is written {PREFIX}PATH/TABLE")
        db, _, name = spec[len(PREFIX):].rstrip("/").rpartition("/")
        if not db or not name:
            raise DiveError(f"{spec}: expected {PREFIX}PATH/TABLE (the database folder, a "
                            "slash, the table name)")
        ref = cls(user_path(db), name)  # as lancedb.connect and pyarrow read it
        expected = f"expected {PREFIX}PATH/TABLE, and a table name holds no '/'"
        table = next((p for p in (ref.db, *ref.db.parents) if p.suffix == ".lance"
                      and p.is_dir()), None)
        if table is not None:
            raise DiveError(f"{spec}: {table} is a LanceDB table, not a database folder "
                            f"({expected})")
        outer = None if ref.db.exists() else next((p for p in ref.db.parents if p.exists()), None)
        if outer is not None and any(p.suffix == ".lance" and p.is_dir() for p in outer.iterdir()):
            raise DiveError(f"{spec}: no folder {ref.db} in the LanceDB database {outer} "
                            f"({expected})")
        return ref

    def same_table(self, other: TableRef) -> bool:
        """Whether `other` names this table (its database folder spelled another way too)."""
        return (self.db.resolve(), self.name) == (other.db.resolve(), other.name)

    @property
    def folder(self) -> Path:
        """Where LanceDB keeps the table on disk."""
        return self.db / f"{self.name}.lance"

    def __str__(self) -> str:
        return f"{PREFIX}{self.db}/{self.name}"


def is_lancedb_uri(text: str | os.PathLike[str]) -> bool:
    """Whether `text` names a LanceDB table (`lancedb:PATH/TABLE`)."""
    return os.fspath(text).startswith(PREFIX)


def connect(ref: TableRef) -> Any:
    """The LanceDB database holding `ref`, which must be an existing folder."""
    lancedb = import_lancedb()
    if not ref.db.is_dir():
        raise DataError(f"{ref}: no LanceDB database folder {ref.db}")
    return lancedb.connect(os.path.abspath(ref.db))  # relative `db:v2` read as a URI


def open_table(ref: TableRef | str | os.PathLike[str]) -> Any:
    """Open the table `ref` (a `TableRef` or `lancedb:PATH/TABLE`), or a one-line `DataError`."""
    ref = ref if isinstance(ref, TableRef) else TableRef.parse(ref)
    db = connect(ref)
    try:
        return db.open_table(ref.name)
    except (ValueError, FileNotFoundError, RuntimeError, OSError):
        if ref.folder.exists():  # a file, or a folder Lance cannot read (its RuntimeError)
            raise DataError(f"{ref}: {ref.folder} is not a readable LanceDB table") from None
        names = ", ".join(db.list_tables().tables) or "none"
        raise DataError(f"{ref}: no such table in {ref.db} (tables: {names})") from None


def vector_dim(schema: pa.Schema, column: str, where: str) -> int:
    """The dimension of the fixed-size vector column `column`, or a `DataError` saying why not."""
    pa = import_pyarrow()
    if column not in schema.names:
        raise DataError(f"{where}: no vector column {column!r} (columns: "
                        f"{', '.join(schema.names)})")
    vtype = schema.field(column).type
    if not pa.types.is_fixed_size_list(vtype) or not (
        pa.types.is_floating(vtype.value_type) or pa.types.is_integer(vtype.value_type)
    ):
        raise DataError(f"{where}: column {column!r} must hold fixed-size vectors of numbers "
                        f"(fixed_size_list<float>), got {vtype}")
    return int(vtype.list_size)


# --- compress ----------------------------------------------------------------------------------


def _input_dim(table: Any, column: str, where: str, expected: int) -> int:
    """The dimension of the input's vector `column`: a fixed-size column's, or for a column
    of variable-size lists of numbers (what LanceDB makes of Python lists outside a column
    named "vector", and what a Parquet input may hold too) its first row's length, every row
    then checked as it is read; `expected` where the first row says nothing (null)."""
    pa = import_pyarrow()
    vtype = table.schema.field(column).type if column in table.schema.names else None
    if vtype is None or not (pa.types.is_list(vtype) or pa.types.is_large_list(vtype)):
        return vector_dim(table.schema, column, where)
    if not (pa.types.is_floating(vtype.value_type) or pa.types.is_integer(vtype.value_type)):
        raise DataError(f"{where}: column {column!r} must hold vectors of numbers, got {vtype}")
    first = table.head(1).column(column)
    return len(first[0].as_py()) if len(first) and first[0].is_valid else expected


def compress_table(
    model: ModelLike,
    input: str | os.PathLike[str] | TableRef,
    output: str | os.PathLike[str] | TableRef,
    *,
    column: str = "vector",
    id_column: str | None = "id",
    output_column: str | None = None,
    batch_size: int = 65536,
    dtype: OutputDtype | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> CompressResult:
    """Compress the vector `column` of the LanceDB table `input` into `output`, resumably.

    `output` is another table of a local database (created with `id_column`, then the
    vectors in `output_column`, default `column`), or `input` itself, when `output_column`
    names the new column to add. `model` is a model folder path, a (loaded) compressor or a
    `Runtime`; the column holds what it outputs at its precision, as `compress_store` writes
    it (`dtype`, float32 models only, casts). An interrupted run resumes when rerun with the
    same arguments; `overwrite` allows replacing a table or column an earlier run wrote, at
    the end.
    """
    started = time.perf_counter()
    check_flag(progress, "progress")
    check_overwrite(overwrite)
    runtime = resolve_runtime(model)
    out_dtype = output_dtype(runtime, dtype)
    batch_size = positive_integer(batch_size, "batch_size")
    src = input if isinstance(input, TableRef) else TableRef.parse(input)
    dst = output if isinstance(output, TableRef) else TableRef.parse(output)
    in_place = dst.same_table(src)
    # In place, the table has its ids already.
    column, id_column, out_column = column_names(column, None if in_place else id_column,
                                                 output_column)
    if in_place and out_column == column:
        if output_column is None:
            raise DiveError(f"{dst}: the output is the input table; name the new column with "
                            "output_column", param="output_column")
        # given, as the input's column: naming the parameter again would read as a riddle
        raise DiveError(f"{dst}: the output is the input table, whose column {column!r} holds "
                        "the vectors to compress; name another output column",
                        param="output_column")
    _check_readable(column, "vector column", str(src), param="column")
    if id_column is not None:
        _check_readable(id_column, "id column", str(src), param="id_column")
    _check_column_name(out_column, dst)

    # the column's name quoted: a '/' in it made the folder a path, leaving its parent
    work_name = (f"{dst.name}.lance.{urllib.parse.quote(out_column, safe='')}" if in_place
                 else f"{dst.name}.lance")
    partial = Partial(dst.db / work_name)
    # from here, not only around the work: an interruption while the table is checked (its
    # ids read) said "finished chunks are saved" where none were
    with nothing_finished_unless(partial.has_saved_rows):
        table = open_table(src)
        version = table.version
        table.checkout(version)  # read one version, whatever is written meanwhile
        schema = table.schema
        dim = _input_dim(table, column, str(src), runtime.input_dim)
        if import_pyarrow().types.is_integer(schema.field(column).type.value_type):
            raise DataError(integer_codes(f"{src}: column {column!r}",
                                          schema.field(column).type.value_type))
        if id_column is not None and id_column not in schema.names:
            raise DataError(f"{src}: no id column {id_column!r} (columns: "
                            f"{', '.join(schema.names)}); pass id_column=None to carry no ids",
                            param="id_column")
        if dim != runtime.input_dim:
            raise DataError(f"{src}: column {column!r} has dimension {dim}, but the model expects "
                            f"{runtime.input_dim} (embeddings from another model?)")
        n_rows = table.count_rows()
        check_has_rows(src, n_rows)
        if id_column is not None:  # a new table carries them as its rows' names
            check_ids([(str(src), table.to_lance().to_table(columns=[id_column]).column(0))],
                      id_column, lambda _, row, problem: DataError(f"{src}: row {row}{problem}"))
        marker = json.dumps({"format": "dive-compress-output",
                             "model_sha256": runtime_digest(runtime),
                             "source": f"{src}:{column}", "column": out_column},
                            sort_keys=True).encode()
        value = vector_type(out_dtype, runtime.code_width)
        if in_place:
            replace = _check_column_output(schema, out_column, dst, overwrite)
            out_schema = import_pyarrow().schema(
                [import_pyarrow().field(out_column, value, metadata={MARKER_KEY: marker})])
        else:
            _check_table_output(dst, overwrite)
            fields = [] if id_column is None else [schema.field(id_column)]
            out_schema = import_pyarrow().schema(
                [*fields, import_pyarrow().field(out_column, value)], metadata={MARKER_KEY: marker})
        job = {
            "input": {"db": str(src.db.resolve()), "table": src.name, "version": version,
                      "rows": n_rows, "schema": str(schema)},
            "model": {"sha256": runtime_digest(runtime), "input_dim": runtime.input_dim,
                      "output_dim": runtime.output_dim},
            "output": {"db": str(dst.db.resolve()), "table": dst.name, "column": out_column},
            "batch_size": batch_size, "dtype": out_dtype.name, "column": column,
            "id_column": id_column,
        }
        table_name = str(src if in_place else dst)  # what a file-system error names
        # a new database's folders are removed again if the run fails (unless a resume needs them)
        with made_folder(dst.db), partial.held():  # a second run on this output fails at once
            state = partial.start(job)
            resumed = int(state["rows_done"])
            columns = [column] if id_column is None else [id_column, column]
            try:
                with naming_os_errors(table_name, work=partial.root), progress_bar(
                    n_rows, resumed, f"compress {src.name}", progress
                ) as bar:
                    chunks = prefetch(_read_chunks(table, columns, resumed, n_rows, batch_size))
                    for lo, chunk in chunks:
                        ids = (None if id_column is None
                               else chunk.column(id_column).combine_chunks())
                        y = _compress_chunk(runtime, chunk.column(column), dim, lo, ids, src,
                                            out_dtype)
                        arrays = ([] if ids is None else [ids]) + [vector_array(y)]
                        out = import_pyarrow().Table.from_arrays(arrays, schema=out_schema)
                        with atomic_open(partial.parts / part_name(lo), "wb") as handle:
                            import_pyarrow().parquet.write_table(out, handle)
                        state["rows_done"] = lo + chunk.num_rows
                        partial.save(state)
                        bar.update(chunk.num_rows)
                caught: list[BaseException] = []
                reader = _relayed(_parts_reader(partial, out_schema, n_rows, batch_size), caught)
                try:
                    if in_place:
                        _add_column(src, version, out_column, replace, reader, out_schema)
                    else:
                        _create_table(partial, dst, reader, out_schema, overwrite)
                except KeyboardInterrupt as exc:
                    # landed as Lance returned from its commit, or after the new table's rename:
                    # the output is whole, and its work folder is no longer needed
                    if written_before(exc) or (in_place and _column_added(src, version, out_column,
                                                                           replace)):
                        mark_written_before(exc)
                        shutil.rmtree(partial.root, ignore_errors=True)
                    raise
                except Exception as exc:
                    if caught:  # Ctrl-C or a damaged part, not Lance's wrapper around it
                        raise caught[0] from None
                    # disk full: Lance's RuntimeError was a traceback, its OSError named a
                    # Rust source file of Lance rather than the table
                    named = os_error_in_text(exc, table_name)
                    if named is not None:
                        raise named from None
                    raise
            except DataError:
                # The input must change before a rerun can succeed: leave nothing behind.
                shutil.rmtree(partial.root, ignore_errors=True)
                raise
            except KeyboardInterrupt:
                partial.discard_if_unsaved()
                raise
            with publishing():  # the output is in place: its work folder goes, whole
                shutil.rmtree(partial.root, ignore_errors=True)
            seconds = time.perf_counter() - started
            where = f"{dst}:{out_column}" if in_place else str(dst)
            logger.info("%s: %d vectors compressed in %.1f s", where, n_rows - resumed, seconds)
            return CompressResult(Path(where), n_rows, runtime.input_dim, runtime.output_dim,
                                  out_dtype.name, resumed, seconds, runtime.precision)


def _create_table(partial: Partial, dst: TableRef, reader: pa.RecordBatchReader,
                  schema: pa.Schema, overwrite: bool) -> None:
    """Write the new table in the work folder (a database of its own), then rename it into
    `dst`'s database (`dive._io.publish`): it appears whole or not at all, and replaces a
    table (even one another run wrote meanwhile) only with `overwrite`."""
    staged = partial.root / dst.folder.name
    shutil.rmtree(staged, ignore_errors=True)  # a killed run's half-written table
    import_lancedb().connect(os.path.abspath(partial.root)).create_table(dst.name, data=reader,
                                                             schema=schema)
    with publishing():
        publish(staged, dst.folder, overwrite=overwrite)


def _column_added(src: TableRef, version: int, column: str, replace: bool) -> bool:
    """Whether `_add_column` committed `column` to `src` (read at `version`): it is there and
    its staging column is not; one replacing an earlier column takes three commits (add under
    the staging name, drop the old, rename), or four after dropping a killed run's staging."""
    latest = open_table(src)
    names = latest.schema.names
    if column not in names or f"{column}{STAGING_SUFFIX}" in names:
        return False
    return not replace or latest.version >= version + 3


def _check_table_output(dst: TableRef, overwrite: bool) -> None:
    """A new table replaces only a table dive wrote (its schema says so), with `overwrite`."""
    if dst.name.startswith("."):
        raise DiveError(f"{dst}: table names starting with '.' are kept for work folders")

    def ours(_: Path) -> bool:
        try:
            table = open_table(dst)
        except DataError:  # not a table at all: never replaced
            return False
        return MARKER_KEY in (table.schema.metadata or {})

    if dst.db.is_dir():
        # a Lance table adds files of its own (indices, versions): not a user's to keep
        # an empty folder is a killed run's claim on the name (`publish`): the rerun fills it
        check_output(dst.folder, overwrite=overwrite, ours=ours,
                     what="a table dive compress wrote", folder=True, added=False)


def _check_column_name(column: str, dst: TableRef) -> None:
    """Refuse, before any work, an output column name LanceDB reads otherwise: one with a dot
    (a nested field: Lance refused it once every chunk was done) or a leading '_' (its own
    columns, `_rowid`, `_rowaddr`, `_distance`: a column so named made the table fail every
    search, or shadowed the scores)."""
    if "." in column:
        raise DiveError(f"{dst}: output column {column!r}: LanceDB reads a '.' in a column name "
                        "as a nested field; name it without one", param="output_column")
    if column.startswith("_"):
        raise DiveError(f"{dst}: output column {column!r}: LanceDB keeps names starting with "
                        "'_' for its own columns (_rowid, _rowaddr, _distance...)",
                        param="output_column")
    if "`" in column:  # refused by Lance's column operations once every chunk was done
        raise DiveError(f"{dst}: output column {column!r}: LanceDB cannot add a column whose "
                        "name holds a '`' to a table; name it without one",
                        param="output_column")


def _check_readable(column: str, what: str, where: str, param: str | None = None) -> None:
    """Refuse, before any work, a column to read whose name holds a '`': Lance finds no such
    column when it reads one, quoted or not ("Schema error: No field named ..."), and that
    ValueError was a traceback, once a new table's ids were read or a search ran."""
    if isinstance(column, str) and "`" in column:
        raise DiveError(f"{where}: {what} {column!r}: LanceDB cannot read a column whose name "
                        f"holds a '`'; rename it (LanceDB's alter_columns takes it as "
                        f"{_sql_name(column)})", param=param)


def _check_column_output(schema: pa.Schema, column: str, dst: TableRef, overwrite: bool) -> bool:
    """Whether an earlier output column is to be replaced; other columns are never replaced."""
    staging = f"{column}{STAGING_SUFFIX}"  # a killed run's is dropped: only if dive's
    if staging in schema.names and MARKER_KEY not in (schema.field(staging).metadata or {}):
        raise DiveError(f"{dst}: column {staging!r} exists and is not one dive compress wrote; "
                        "rename it (a replaced column is staged under that name)")
    if column not in schema.names:
        return False
    if MARKER_KEY not in (schema.field(column).metadata or {}):
        raise DiveError(f"{dst}: column {column!r} exists and is not one dive compress wrote; "
                        "refusing to replace it (overwrite replaces only what dive wrote)")
    if not overwrite:
        raise DiveError(f"{dst}: column {column!r} already exists; pass overwrite=True "
                        "to replace it", param="overwrite")
    return True


def _read_chunks(table: Any, columns: list[str], start: int, n_rows: int,
                 batch_size: int) -> Iterator[tuple[int, pa.Table]]:
    """Rows [start, n_rows) of `table` in chunks of `batch_size`, in the table's row order."""
    for lo in range(start, n_rows, batch_size):
        offsets = list(range(lo, min(lo + batch_size, n_rows)))
        yield lo, table.take_offsets(offsets).select(columns).to_arrow()


def _compress_chunk(runtime: Runtime, column: Any, dim: int, lo: int, ids: pa.Array | None,
                    src: TableRef, dtype: np.dtype[Any]) -> np.ndarray:
    where = str(src)
    try:
        x = vectors_from_arrow(column, dim, where, lo, wide=True,
                               dim_from="as in the table's first row")
    except BadRow as exc:
        ident = f" (id {ids[exc.row].as_py()!r})" if ids is not None else ""
        raise DataError(f"{where}: row {lo + exc.row}{ident}: {exc.problem}") from None
    return compress_rows(runtime, x, dtype, ids,
                         lambda row, problem: DataError(f"{where}: row {lo + row}{problem}"))


def _parts_reader(partial: Partial, schema: pa.Schema, n_rows: int,
                  batch_size: int) -> pa.RecordBatchReader:
    """The staged chunks, in order, as one stream with `schema` (metadata included)."""
    pa = import_pyarrow()

    def batches() -> Iterator[Any]:
        for lo in range(0, n_rows, batch_size):
            part = partial.parts / part_name(lo)
            try:
                table = pa.parquet.read_table(os.path.abspath(part))  # not a URI
            except (OSError, pa.ArrowException) as exc:
                raise partial.damaged(f"{part.name}: {exc}") from None
            if table.num_rows != min(batch_size, n_rows - lo):
                raise partial.damaged(f"{part.name} has {table.num_rows} rows")
            for batch in table.to_batches():
                yield pa.RecordBatch.from_arrays(batch.columns, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


def _relayed(reader: pa.RecordBatchReader, caught: list[BaseException]) -> pa.RecordBatchReader:
    """`reader`, keeping in `caught` what it raises: Lance reads it inside its own code and
    turns that into an OSError or RuntimeError whose text is the Python traceback."""
    pa = import_pyarrow()

    def batches() -> Iterator[Any]:
        try:
            yield from reader
        except BaseException as exc:
            caught.append(exc)
            raise

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def _add_column(src: TableRef, version: int, column: str, replace: bool,
                reader: pa.RecordBatchReader, schema: pa.Schema) -> None:
    """Add the staged column to the table, if it is still at the version that was read.

    A new column is one commit. One that replaces an earlier column goes in under a staging
    name (`STAGING_SUFFIX`) and is renamed once the earlier one is dropped, so a run that
    fails while adding it leaves the table as it was. A staging column left by a run killed
    between those commits is dropped first.
    """
    pa = import_pyarrow()
    latest = open_table(src)
    if latest.version != version:
        raise DataError(f"{src}: the table changed while it was compressed (version {version} "
                        f"-> {latest.version}); rerun to compress the new version")
    dataset = latest.to_lance()
    staging = f"{column}{STAGING_SUFFIX}"
    if staging in dataset.schema.names:  # dive's (`_check_column_output`): a killed run's
        dataset.drop_columns([staging])
    if not replace:
        dataset.add_columns(reader, reader_schema=schema)
        return
    staged = pa.schema([schema.field(column).with_name(staging)])
    # an index of the replaced column goes with it: search then scans the whole column, and
    # ignores nprobes, without a word
    lost = [index.name for index in latest.list_indices() if column in index.columns]
    interrupted: KeyboardInterrupt | None = None
    try:
        dataset.add_columns(pa.RecordBatchReader.from_batches(
            staged, (pa.RecordBatch.from_arrays(b.columns, schema=staged) for b in reader)),
            reader_schema=staged)
    except KeyboardInterrupt as exc:
        # Ctrl-C during the long write lands as Lance returns: once the staging column is
        # committed the work is done, and the two quick commits left finish it (stopping
        # here left the staging column in the user's table, and a rerun started over)
        dataset = open_table(src).to_lance()
        if staging not in dataset.schema.names:
            raise
        interrupted = exc
    with publishing():  # one step a signal does not split: the table without either column
        dataset.drop_columns([column])
        dataset.alter_columns({"path": staging, "name": column})
    if lost:
        logger.warning("%s: the index %s of the replaced column %r went with it; create it again "
                       "for an indexed search (a search scans the whole column until then)", src,
                       ", ".join(lost), column)
    if interrupted is not None:
        raise interrupted


# --- search ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hits:
    """Search results, one entry per query: the hits' ids, best first, and their scores."""

    ids: list[list[Any]]
    scores: list[np.ndarray]  # float32 inner products, descending


_CHECKED_FILLED: set[tuple[str, int, str]] = set()  # (table uri, version, column) counted


def _warn_unfilled(table: Any, column: str, where: str) -> None:
    """Rows whose `column` is null (added after it was compressed) are never searched:
    LanceDB skips them without a word, so say how many. Counted once per table version and
    column in a process: the count scans the column, and a serving loop calls `search` on
    every request."""
    key = (str(getattr(table, "uri", table.name)), int(table.version), column)
    if key in _CHECKED_FILLED:
        return
    _CHECKED_FILLED.add(key)
    unfilled = table.count_rows(f"`{column}` IS NULL")
    if unfilled:
        logger.warning("%s: %d of %d rows have no value in column %r (added after it was "
                       "compressed?) and are not searched; compress the table again with "
                       "overwrite to include them", where, unfilled, table.count_rows(), column)


def search(
    table: Any,
    model: ModelLike,
    query_vectors: np.ndarray,
    k: int = 10,
    *,
    column: str = "vector",
    id_column: str = "id",
    rescore_with: str | tuple[Any, str] | None = None,
    candidates: int | None = None,
    nprobes: int | None = None,
    exact: bool = False,
) -> Hits:
    """The `k` nearest rows of `table` to each query, searched on its compressed `column`.

    `table` is an open LanceDB table or `lancedb:PATH/TABLE`; `model` the compressor that
    filled `column`; `query_vectors` the (m, D) full-dimension query embeddings, which the
    model compresses. Scores are inner products of the compressed vectors (cosine: they are
    unit-norm). `exact=True` searches flat even when the column has an index; `nprobes` sets
    how many partitions an IVF index probes. `rescore_with` re-ranks `candidates` (default
    4 x k) first-stage hits by the inner product of the normalised full-dimension vectors:
    a column of `table`, or `(other_table, column)`, matched on `id_column`; full vectors that
    are not the ones `column` was compressed from (a sample of the hits, compressed by
    `model`, is compared with the column) raise `DataError`, as does a `column` that `dive
    compress` marked as written by another compressor than `model`.
    """
    k = positive_integer(k, "k")
    candidates = None if candidates is None else positive_integer(candidates, "candidates")
    nprobes = None if nprobes is None else positive_integer(nprobes, "nprobes")
    if rescore_with is not None and not isinstance(rescore_with, str) and not (
            isinstance(rescore_with, tuple) and len(rescore_with) == 2
            and isinstance(rescore_with[1], str)):
        raise DiveError(f"rescore_with must be a column name or (table, column), got "
                        f"{rescore_with!r}")
    runtime = resolve_runtime(model)
    if runtime.precision != "float32":
        raise DiveError(f"search reads float vectors; this model outputs {runtime.precision} "
                        "codes (save it at float32 and let a LanceDB index quantize, e.g. "
                        "IVF_PQ or IVF_SQ)")
    table = table if not isinstance(table, (str, os.PathLike, TableRef)) else open_table(table)
    where = f"table {table.name!r}"
    _check_readable(column, "compressed column", where, param="column")
    _check_readable(id_column, "id column", where, param="id_column")
    if rescore_with is not None:  # a library argument only: no flag to name
        rescored, full = (table, rescore_with) if isinstance(rescore_with, str) else rescore_with
        rescored = (rescored if not isinstance(rescored, (str, os.PathLike)) else
                    TableRef.parse(rescored))  # a table object or a TableRef: both have a name
        _check_readable(full, "rescore column", f"table {rescored.name!r}")
    check_floating(query_vectors, name="query vectors")
    queries = as_unit_rows(query_vectors, name="query vectors", dim=runtime.input_dim)
    compressed = runtime.embed(queries)
    dim = runtime.output_dim
    vector_dim_is(table, column, dim, "compressed column")
    check_column_model(table, column, runtime, model)
    if id_column not in table.schema.names:  # e.g. "doc_id": compressing in place takes none
        raise DataError(f"{where}: no id column {id_column!r} (columns: "
                        f"{', '.join(table.schema.names)}); name the column that identifies "
                        "each row with id_column=", param="id_column")
    _warn_unfilled(table, column, where)
    if not len(compressed):
        return Hits([], [])
    n_candidates, full_column = k, None
    if rescore_with is not None:
        n_candidates = candidates if candidates is not None else 4 * k
        if n_candidates < k:
            raise DiveError(f"candidates ({n_candidates}) must be at least k ({k})")
        if isinstance(rescore_with, str):
            full_column = rescore_with
            vector_dim_is(table, full_column, runtime.input_dim, "rescore column")
    # LanceDB allocates the whole limit per query: k=10**9 with two queries aborted the
    # process (memory allocation of 48 GB failed), where one query or k=5000 gave every row
    n_candidates = min(n_candidates, max(1, table.count_rows()))
    select = [id_column, column, *([full_column] if full_column else []), "_distance"]
    builder = (table.search(list(compressed), vector_column_name=column)
               .distance_type("dot").limit(n_candidates).select(select))
    if exact:
        builder = builder.bypass_vector_index()
    if nprobes is not None:
        builder = builder.nprobes(nprobes)
    result = builder.to_arrow()
    if result.num_rows == 0:
        return Hits([[] for _ in compressed], [np.zeros(0, np.float32) for _ in compressed])
    which = (result.column("query_index").to_numpy() if "query_index" in result.column_names
             else np.zeros(result.num_rows, dtype=np.int64))
    ids = result.column(id_column).to_pylist()
    if rescore_with is None:
        vectors = _named_by_id(ids, id_column, where,
                               lambda: vectors_from_arrow(result.column(column), dim, where, 0))
        probes = compressed
    else:
        probes = queries
        if full_column is not None:
            vectors = _rescore_vectors(result.column(full_column), ids, id_column,
                                       runtime.input_dim, where)
        else:
            assert isinstance(rescore_with, tuple)
            vectors = _full_vectors(ids, *rescore_with, id_column, runtime.input_dim)
        _check_compressed_from(vectors, result.column(column), ids, runtime, column,
                               rescore_with, id_column, where)
    hits_ids, hits_scores = [], []
    for i in range(len(compressed)):
        rows = np.flatnonzero(which == i)
        scores = vectors[rows] @ probes[i]
        order = np.argsort(-scores, kind="stable")[:k]
        hits_ids.append([ids[r] for r in rows[order].tolist()])
        hits_scores.append(np.ascontiguousarray(scores[order], dtype=np.float32))
    return Hits(hits_ids, hits_scores)


def vector_dim_is(table: Any, column: str, dim: int, what: str) -> None:
    """Check `table`'s vector `column` has dimension `dim` (`what` names it in the message)."""
    where = f"table {table.name!r}"
    found = vector_dim(table.schema, column, where)
    if found != dim:
        raise DataError(f"{where}: {what} {column!r} holds {found}-d vectors, expected {dim}-d")


def column_model(schema: pa.Schema, column: str, where: str) -> str | None:
    """The identity (`runtime_digest`) of the compressor `dive compress` recorded as the writer
    of `column`, or None when nothing is recorded (a column other tools wrote).

    A column added to a table carries it in its field metadata; a new table carries it in the
    schema metadata, with the column's name (tables written before dive recorded the name
    hold one vector column from dive: the first fixed-size-list column of the schema).
    """
    raw = (schema.field(column).metadata or {}).get(MARKER_KEY)
    on_table = raw is None
    if on_table:
        raw = (schema.metadata or {}).get(MARKER_KEY)
    if raw is None:
        return None
    try:
        marker = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        marker = None
    digest = marker.get("model_sha256") if isinstance(marker, dict) else None
    if not isinstance(digest, str):
        raise DataError(f"{where}: the {MARKER_KEY.decode()} metadata of "
                        f"{f'column {column!r}' if not on_table else 'the table'} is not one "
                        "dive compress wrote (no model_sha256); cannot tell which compressor "
                        "wrote the column")
    if on_table:
        assert isinstance(marker, dict)
        written = marker.get("column")
        if written is None:
            pa = import_pyarrow()
            written = next((f.name for f in schema if pa.types.is_fixed_size_list(f.type)), None)
        if written != column:
            return None
    return digest


def check_column_model(table: Any, column: str, runtime: Runtime, model: ModelLike) -> None:
    """Refuse to search `column` with another compressor than the one `dive compress` recorded
    as its writer (vectors of the same dimension from another model return unrelated hits, as
    `dive.export.faiss_index.check_index_model` refuses for an index); a column with no
    recorded writer is searched unchecked."""
    where = f"table {table.name!r}"
    recorded = column_model(table.schema, column, where)
    digest = runtime_digest(runtime)
    if recorded is None or recorded == digest:
        return
    source = model if isinstance(model, (str, os.PathLike)) else getattr(model, "source", None)
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "the given model"
    raise DataError(f"{where}: column {column!r} was written by another compressor than {name} "
                    f"(it holds vectors of model {recorded[:12]}, this one is {digest[:12]}); "
                    "search with the compressor that wrote it, or compress the column again")


def _named_by_id(ids: list[Any], id_column: str, where: str,
                 read: Callable[[], np.ndarray]) -> np.ndarray:
    """`read()` of rows in `ids`' order, a bad row named by its id: the rows of a search
    result or a lookup are hits, whose place there is no row of any table."""
    try:
        return read()
    except (BadRow, BadRowError) as exc:
        raise DataError(f"{where}: {id_column} {quoted(ids[exc.row])}: {exc.problem}") from None


def _rescore_vectors(column: Any, ids: list[Any], id_column: str, dim: int,
                     where: str) -> np.ndarray:
    """The full vectors of `column` (its rows' ids `ids`) as unit float32 rows, a bad one
    named by its id."""
    return _named_by_id(ids, id_column, f"{where}: rescore vectors", lambda: as_unit_rows(
        vectors_from_arrow(column, dim, where, 0), name=where))


def _check_compressed_from(full: np.ndarray, stored: Any, ids: list[Any], runtime: Runtime,
                           column: str, rescore_with: Any, id_column: str, where: str) -> None:
    """Refuse full vectors that are not the ones `column` was compressed from: on a sample of
    the hits (`dive.export.faiss_index.sample_rows`), each full vector compressed by the
    model must give the values `column` holds for its id, as `dive search --rescore-vectors`
    checks an index's rows (another model's vectors of the same width re-ranked every hit by
    noise, without a word)."""
    from dive.export.faiss_index import MATCH_COSINE, sample_rows

    rows = sample_rows(len(ids))
    held = _named_by_id(ids, id_column, where, lambda: vectors_from_arrow(
        stored, runtime.output_dim, where, 0))[rows]
    expected = runtime.embed(full[rows])
    cosine = np.einsum("ij,ij->i", held, expected) / np.maximum(
        np.linalg.norm(held, axis=1) * np.linalg.norm(expected, axis=1), 1e-12)
    wrong = np.flatnonzero(cosine < MATCH_COSINE)
    if wrong.size:
        first = int(wrong[0])
        source = (f"column {rescore_with!r}" if isinstance(rescore_with, str) else
                  f"table {getattr(rescore_with[0], 'name', str(rescore_with[0]))!r}, column "
                  f"{rescore_with[1]!r}")
        raise DataError(
            f"{where}: the rescore vector ({source}) of {id_column} "
            f"{quoted(ids[int(rows[first])])} is not the one {column!r} was compressed from "
            f"(cosine {float(cosine[first]):.2f} between the model's output for it and the "
            f"column's value, under {MATCH_COSINE}): rescore with the full vectors the "
            "column was made from")


def _full_vectors(ids: list[Any], other: Any, column: str, id_column: str,
                  dim: int) -> np.ndarray:
    """The vectors of `column` in table `other` for `ids` (in that order), looked up by id, as
    unit rows."""
    other = other if not isinstance(other, (str, os.PathLike, TableRef)) else open_table(other)
    vector_dim_is(other, column, dim, "rescore column")
    wanted = list(dict.fromkeys(ids))
    odd = next((i for i in wanted if not (isinstance(i, str) or is_integer(i))), None)
    if odd is not None:  # a filter of them was LanceDB's error, listing every candidate id
        raise DataError(f"table {other.name!r}: rescoring looks rows up by {id_column}, which "
                        f"takes string or integer ids; this one is {kind_of(odd)} "
                        f"({quoted(odd)})")
    literals = ", ".join(_sql_literal(ident) for ident in wanted)
    # One row more than wanted: a repeated id shows as a row too many.
    try:
        found = (other.search().where(f"{_sql_name(id_column)} IN ({literals})")
                 .select([id_column, column]).limit(len(wanted) + 1).to_arrow())
    except ValueError:  # ids of another type than its column's: strings against integers
        id_type = other.schema.field(id_column).type if id_column in other.schema.names else None
        raise DataError(f"table {other.name!r}: its {id_column} column ({id_type}) does not "
                        f"take the searched table's ids ({kind_of(wanted[0])}, e.g. "
                        f"{quoted(wanted[0])}); give both tables ids of one type") from None
    row_of: dict[Any, int] = {}
    for row, ident in enumerate(found.column(id_column).to_pylist()):
        if ident in row_of:  # which row's vector would rescore the hit is a matter of order
            raise DataError(f"table {other.name!r}: {id_column} {quoted(ident)} is on more than "
                            "one row; rescoring by id needs one row per id")
        row_of[ident] = row
    missing = [ident for ident in wanted if ident not in row_of]
    if missing:
        raise DataError(f"table {other.name!r}: no row with {id_column} {missing[0]!r} to "
                        "rescore with")
    full = _rescore_vectors(found.column(column), found.column(id_column).to_pylist(),
                            id_column, dim, f"table {other.name!r}")
    return full[np.fromiter((row_of[ident] for ident in ids), np.intp, len(ids))]


def _sql_name(column: str) -> str:
    """`column` quoted for a LanceDB filter: a name with a space or a dot is one column."""
    return "`" + column.replace("`", "``") + "`"


def _sql_literal(value: Any) -> str:
    if is_integer(value):
        return str(int(value))
    return "'" + str(value).replace("'", "''") + "'"
