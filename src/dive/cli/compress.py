"""`dive compress`: stored vectors (npy, shards, Parquet, LanceDB) compressed in chunks, a
rerun resuming."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from dive.cli.errors import FLAG_OF_PARAM
from dive.cli.interrupts import written_in_full
from dive.cli.loading import load_compressor, warn_of_another_model_beside
from dive.errors import DiveError

if TYPE_CHECKING:
    from dive.scale.stream import CompressResult


class _Columns(TypedDict, total=False):
    column: str
    id_column: str | None
    output_column: str


def _columns_given(args: argparse.Namespace) -> _Columns:
    """The column flags given, as the library's keyword arguments (`--id-column ''`: None, no
    ids); one not given is left out, so it takes the library's default."""
    columns: _Columns = {}
    if args.vector_column is not None:
        columns["column"] = args.vector_column
    if args.id_column is not None:
        columns["id_column"] = args.id_column or None
    if args.output_column is not None:
        columns["output_column"] = args.output_column
    return columns


def cmd_compress(args: argparse.Namespace) -> int:
    from dive.integrations.lancedb import is_lancedb_uri

    columns = _columns_given(args)
    if is_lancedb_uri(args.input) or is_lancedb_uri(args.output):
        return _compress_lancedb(args, columns)
    if args.engine == "ray":
        from dive.integrations.ray import compress_parquet

        rows = compress_parquet(load_compressor(args), args.input, args.output, **columns,
                                batch_size=args.batch_size, dtype=args.dtype,
                                overwrite=args.overwrite, progress=not args.no_progress)
        written_in_full(args, args.output)
        print(f"compressed {rows} vectors on Ray: {args.output}")
        return 0
    from dive.scale import compress_store
    from dive.scale.discover import store_kind

    if columns and store_kind(args.input) == "npy":  # else they were ignored without a word
        flags = " and ".join(FLAG_OF_PARAM[param] for param in columns)
        verb = "applies" if len(columns) == 1 else "apply"
        raise DiveError(f"{flags} {verb} to Parquet input only; {args.input} holds .npy vectors")
    compressor = load_compressor(args)
    warn_of_another_model_beside(Path(args.input), compressor)
    result = compress_store(compressor, args.input, args.output, **columns,
                            batch_size=args.batch_size, dtype=args.dtype,
                            overwrite=args.overwrite, progress=not args.no_progress)
    written_in_full(args, result.output)
    _print_compressed(result, args.output)
    return 0


def _print_compressed(result: CompressResult, output: str) -> None:
    """The summary of a compress run, naming its `output` (a file or folder as given, as every
    verb does: the result names the place the file system gives it, absolute)."""
    resumed = f", resumed after {result.resumed_rows}" if result.resumed_rows else ""
    width = -(-result.output_dim // 8)  # a binary model's bytes per vector
    stored = (f"binary: {width} byte{'s' * (width > 1)} of sign bits"
              if result.precision == "binary" else result.dtype)  # not "(uint8)": d bytes
    print(f"compressed {result.rows} vectors {result.input_dim} -> {result.output_dim} "
          f"({stored}{resumed}) in {result.seconds:.1f} s "
          f"({result.rows_per_second:,.0f} vectors/s): {output}")


def _compress_lancedb(args: argparse.Namespace, columns: _Columns) -> int:
    from dive.integrations.lancedb import TableRef, compress_table, is_lancedb_uri

    if not (is_lancedb_uri(args.input) and is_lancedb_uri(args.output)):
        raise DiveError("LanceDB tables compress into LanceDB tables: give both --input and "
                        "--output as lancedb:PATH/TABLE")
    if columns.get("id_column") and TableRef.parse(args.output).same_table(
            TableRef.parse(args.input)):  # else ignored without a word
        raise DiveError(f"--id-column applies to a new table; {args.output} is the input "
                        "table, whose rows keep their own ids (leave it out)")
    if args.engine != "local":
        raise DiveError("--engine ray reads Parquet; LanceDB tables use the local engine")
    result = compress_table(load_compressor(args), args.input, args.output, **columns,
                            batch_size=args.batch_size, dtype=args.dtype,
                            overwrite=args.overwrite, progress=not args.no_progress)
    written_in_full(args, result.output)
    _print_compressed(result, str(result.output))  # the table and its column
    return 0

