"""Find what a compress run reads: a store's shards in processing order (`discover`), each a
`Shard` with its kind, shape and identity, and a store's format (`store_kind`).

A store is a `.npy` file, a Parquet file, or a folder of shards of one kind directly in it,
taken in name order. Left out: reading rows (`dive.scale.formats`) and checks of the store as
a whole (`dive.scale.checks`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dive._io import refuse_special_file
from dive.errors import DataError
from dive.scale.checks import check_no_broken_links
from dive.scale.formats import (
    SUFFIXES,
    Kind,
    NpyHeader,
    ParquetLayout,
    file_fingerprint,
    inspect_parquet,
    integer_codes,
    read_npy_header,
)


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


def _inspect(path: Path, name: str, column: str, id_column: str | None) -> Shard:
    kind = SUFFIXES[path.suffix.lower()]
    if kind == "npy":
        header = read_npy_header(path)
        if header.dtype.kind != "f":
            raise DataError(integer_codes(str(path), header.dtype))
        return Shard(path, name, kind, header.shape[0], header.shape[1], npy=header)
    layout = inspect_parquet(path, column, id_column)
    return Shard(path, name, kind, layout.n_rows, layout.dim, parquet=layout)


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
    from dive.embed.store import CORPUS_FILE, QUERIES_FILE, is_embeddings_folder

    if is_embeddings_folder(src):  # its corpus and queries were compressed as one store
        raise DataError(f"{src}: an embeddings folder, whose corpus and queries are not shards "
                        f"of one store; give its {CORPUS_FILE} or {QUERIES_FILE} as the input")
    named = sorted(p for p in src.iterdir()
                   if not p.name.startswith(".") and p.suffix.lower() in SUFFIXES)
    check_no_broken_links(named)
    for path in named:  # a pipe or device among the shards was left out, exit 0
        refuse_special_file(path)
    files = [p for p in named if p.is_file()]
    if not files:
        raise DataError(f"{src}: no .npy or .parquet shards in this folder")
    odd = next((p for p in files if not _one_utf8_line(p.name)), None)
    if odd is not None:  # the output folder lists its files, UTF-8, one a line (`MANIFEST`)
        raise DataError(f"{src}: shard {odd.name!r} has a line break or bytes that are not "
                        "UTF-8 in its name, which its output file would carry; rename it")
    _refuse_shards_in_subfolders(src)
    kinds = {SUFFIXES[p.suffix.lower()] for p in files}
    if len(kinds) > 1:
        raise DataError(f"{src}: mixes .npy and Parquet shards; keep one kind per folder")
    return files


def _one_utf8_line(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # a byte the file system gave as a lone surrogate
        return False
    return name.splitlines() == [name]


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
        refuse_special_file(src)
        raise DataError(f"{src}: no such file or folder")
    if src.suffix.lower() not in SUFFIXES:
        raise DataError(
            f"{src}: unknown store format {src.suffix!r}; expected .npy, .parquet or a folder "
            "of shards"
        )
    return [_inspect(src, output_name, column, id_column)], True
