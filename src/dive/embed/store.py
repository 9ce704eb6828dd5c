"""The embeddings folder: one dataset embedded with one model, as five plain files.

Layout (what `--embeddings DIR` reads and the embedding cache writes):

    corpus.npy       float32 (n_docs, D), L2-normalised, rows in corpus order
    corpus_ids.txt   one corpus id per line, same order
    queries.npy      float32 (n_queries, D), L2-normalised
    query_ids.txt    one query id per line, same order
    meta.json        {model, dim, normalized, dtype, doc_text, n_corpus, n_queries, ...}

Loading validates everything a later stage would otherwise trip over (counts, duplicate ids,
dtype, dimension, NaN/inf rows, norms, a truncated .npy) and names the file and row at fault.
Saving writes the whole folder beside the target and renames it into place, so a reader never
sees half a folder. This module does not encode text (see `encode.py`) and never pickles.
"""

from __future__ import annotations

import codecs
import functools
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dive._io import (
    as_path,
    check_output,
    naming_os_errors,
    not_a_file,
    parse_json_object,
    publish,
    read_one_save,
    refuse_special_file,
    temporary,
)
from dive.arrays import (
    BELOW_FLOAT32,
    UNIT_NORM_TOLERANCE,
    check_matrix_shape,
    load_npy,
    row_blocks,
    to_float32,
)
from dive.data.beir import clean_id
from dive.errors import DataError, DiveError, kind_of, quoted

logger = logging.getLogger(__name__)

CORPUS_FILE = "corpus.npy"
CORPUS_IDS_FILE = "corpus_ids.txt"
QUERIES_FILE = "queries.npy"
QUERY_IDS_FILE = "query_ids.txt"
META_FILE = "meta.json"
FILES = (CORPUS_FILE, CORPUS_IDS_FILE, QUERIES_FILE, QUERY_IDS_FILE, META_FILE)

# Rows checked per chunk, so validating a memory-mapped file does not copy it whole.
_CHUNK_ROWS = 65536


@dataclass(frozen=True, eq=False)
class Embeddings:
    """Corpus and query embeddings of one dataset under one model, with their ids.

    The constructor checks structure (2-d float32 arrays, one id per row, a shared dimension)
    but not values; `load_embeddings` checks values too.
    """

    corpus: np.ndarray  # float32 (n_docs, D), L2-normalised
    corpus_ids: list[str]  # one per corpus row
    queries: np.ndarray  # float32 (n_queries, D), L2-normalised
    query_ids: list[str]  # one per query row
    meta: dict[str, Any] = field(default_factory=dict)  # {model, dim, normalized, ...}

    def __post_init__(self) -> None:
        for name in ("corpus", "queries"):
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray) or arr.ndim != 2:
                shape = getattr(arr, "shape", type(arr).__name__)
                raise DataError(f"{name}: expected a 2-d (n, dim) array, got {shape}")
            if arr.dtype.kind != "f":
                raise DataError(f"{name}: expected a float array, got dtype {arr.dtype}")
            # Frozen dataclass: the conversion happens once, here, via object.__setattr__.
            # A float32 C-contiguous array (or memmap) passes through without a copy.
            object.__setattr__(self, name, np.ascontiguousarray(arr, dtype=np.float32))
        object.__setattr__(self, "corpus_ids", [str(i) for i in self.corpus_ids])
        object.__setattr__(self, "query_ids", [str(i) for i in self.query_ids])
        if len(self.corpus_ids) != self.corpus.shape[0]:
            raise DataError(
                f"corpus: {self.corpus.shape[0]} rows but {len(self.corpus_ids)} corpus ids"
            )
        if len(self.query_ids) != self.queries.shape[0]:
            raise DataError(
                f"queries: {self.queries.shape[0]} rows but {len(self.query_ids)} query ids"
            )
        if self.corpus.shape[1] != self.queries.shape[1]:
            raise DataError(
                f"corpus dimension {self.corpus.shape[1]} != query dimension "
                f"{self.queries.shape[1]}"
            )

    def __repr__(self) -> str:  # the ids and arrays in full were tens of KB to megabytes
        said = {k: self.meta[k] for k in ("model", "dataset", "source") if k in self.meta}
        extra = "".join(f", {k}={v!r}" for k, v in said.items())
        return (f"Embeddings(n_corpus={self.corpus.shape[0]}, n_queries={self.queries.shape[0]}, "
                f"dim={self.dim}{extra})")

    @property
    def dim(self) -> int:
        """The embedding dimension D."""
        return int(self.corpus.shape[1])

    @functools.cached_property
    def _query_index(self) -> dict[str, int]:
        # cached_property writes the instance __dict__ directly, so it works on a frozen
        # dataclass; the index is built once, on the first lookup.
        return {qid: row for row, qid in enumerate(self.query_ids)}

    def query_rows(self, ids: Sequence[str]) -> np.ndarray:
        """Embeddings of these query ids, in the order given (float32, C-contiguous)."""
        index = self._query_index
        rows = []
        for qid in ids:
            row = index.get(str(qid))
            if row is None:
                source = self.meta.get("source", "these embeddings")
                raise DataError(f"{source}: query id {quoted(qid)} has no embedding")
            rows.append(row)
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.ascontiguousarray(self.queries[np.asarray(rows, dtype=np.intp)])


def load_embeddings(folder: str | Path, *, mmap: bool = False) -> Embeddings:
    """Read and validate an embeddings folder; `mmap=True` maps the .npy files read-only.

    Raises `DataError` naming the file (and row or line) for a missing file, a corrupt or
    truncated .npy, a non-float or non-2-d array, row counts that disagree with the ids,
    duplicate or empty ids, dimensions that disagree (corpus, queries, meta.json), NaN/inf
    rows, or rows that are not unit-norm when meta.json says `normalized`.
    """
    root = as_path(folder, "load_embeddings: folder")
    if not root.is_dir():
        raise DataError(f"{root}: is a file, not an embeddings folder" if root.exists()
                        else f"{root}: embeddings folder does not exist")
    for name in FILES:
        path = root / name
        if not path.is_file():
            refuse_special_file(path)
            raise DataError(f"{path}: {not_a_file(path) or 'missing'} (an embeddings folder "
                            f"needs {', '.join(FILES)})")

    # all of one save, even while a save with overwrite replaces the folder
    meta, corpus, queries, corpus_ids, query_ids = read_one_save(
        root, lambda: _read_files(root, mmap))

    _check_count(root / CORPUS_FILE, corpus, root / CORPUS_IDS_FILE, corpus_ids)
    _check_count(root / QUERIES_FILE, queries, root / QUERY_IDS_FILE, query_ids)
    if corpus.shape[1] != queries.shape[1]:
        raise DataError(
            f"{root / QUERIES_FILE}: dimension {queries.shape[1]} differs from "
            f"{CORPUS_FILE}'s {corpus.shape[1]}"
        )
    dim = corpus.shape[1]
    if "dim" in meta and meta["dim"] != dim:
        raise DataError(f"{root / META_FILE}: dim is {meta['dim']!r} but {CORPUS_FILE} has {dim}")
    for key, arr, name in (("n_corpus", corpus, CORPUS_FILE), ("n_queries", queries, QUERIES_FILE)):
        if key in meta and meta[key] != arr.shape[0]:
            raise DataError(
                f"{root / META_FILE}: {key} is {meta[key]!r} but {name} has {arr.shape[0]} rows"
            )
    normalized = meta.get("normalized", False)
    if not isinstance(normalized, bool):  # bool("false") is True
        raise DataError(f"{root / META_FILE}: normalized must be true or false, got "
                        f"{normalized!r}")
    _check_rows(root / CORPUS_FILE, corpus, normalized)
    _check_rows(root / QUERIES_FILE, queries, normalized)

    meta = {**meta, "source": str(root)}
    return Embeddings(corpus, corpus_ids, queries, query_ids, meta)


def is_embeddings_folder(path: Path) -> bool:
    """Whether `path` holds the five files of an embeddings folder."""
    return path.is_dir() and all((path / name).is_file() for name in FILES)


def check_embeddings_output(target: Path, *, overwrite: bool) -> None:
    """Refuse to write an embeddings folder over anything but one (and over one without
    `overwrite`)."""
    check_output(target, overwrite=overwrite, ours=is_embeddings_folder,
                 what="an embeddings folder", folder=True, layout=FILES)


def as_saved(emb: Embeddings, written: dict[str, Any], folder: Path) -> Embeddings:
    """`emb`, just saved at `folder`, with the meta a load of it gives (`written`, as
    `save_embeddings` returns it, and its `source`): set on the checked object, as a new
    `Embeddings` passed over every id again once the folder was in place (tens of ms at 200k
    ids), where an interruption was said to have left nothing written."""
    emb.meta.clear()
    emb.meta.update(written, source=str(folder))
    return emb


def save_embeddings(
    folder: str | Path, emb: Embeddings, *, overwrite: bool = False, output: bool = True
) -> dict[str, Any]:
    """Write `emb` as an embeddings folder at `folder`; a non-empty folder already there
    (even one written meanwhile) is kept with `DiveError` unless `overwrite`, and even then
    unless it is an embeddings folder holding only what dive wrote (`check_embeddings_output`,
    run again as the new folder is put in place: a folder that appeared during a long
    encoding is never deleted).

    Everything is written into a temporary folder beside the target and renamed into place,
    so a reader finds the old folder or the new one. An existing folder is replaced by one
    atomic swap of the two names where the system has it (Linux `renameat2`), else by two
    renames (old aside, new in), where a crash between them leaves the old one under a hidden
    name next to the target rather than a mix of both (`dive._io.replace_path`).
    `load_embeddings` reads its files again when the folder was swapped meanwhile, so it gets
    one whole save; a reader opening the files one by one itself can still read some of each.
    `output=False`: the folder is not the caller's output (a cache entry a fit encodes), so
    a signal as it lands is not said to have written it (`dive._io.publish`).
    Returns the meta.json it wrote (`emb.meta` with `dim`, `n_corpus`, `n_queries`...).
    """
    target = as_path(folder, "save_embeddings: folder")
    if not isinstance(emb, Embeddings):  # an AttributeError deep inside
        raise DiveError(f"save_embeddings: emb is {kind_of(emb)}; expected Embeddings "
                        "(load_embeddings, get_embeddings)")
    target.parent.mkdir(parents=True, exist_ok=True)
    meta = {k: v for k, v in emb.meta.items() if k != "source"}  # "source" is where it was read
    meta.setdefault("normalized", True)
    meta.update(
        dim=emb.dim,
        dtype="float32",
        n_corpus=int(emb.corpus.shape[0]),
        n_queries=int(emb.queries.shape[0]),
    )
    # Refuse to write a folder that load_embeddings would then reject.
    _check_rows(Path("corpus"), emb.corpus, normalized=bool(meta["normalized"]))
    _check_rows(Path("queries"), emb.queries, normalized=bool(meta["normalized"]))
    for name, ids in (("corpus_ids", emb.corpus_ids), ("query_ids", emb.query_ids)):
        _check_ids_writable(name, ids)

    with naming_os_errors(target), temporary(target, folder=True) as tmp:
        _write_file(tmp / CORPUS_FILE, lambda h: np.save(h, emb.corpus, allow_pickle=False))
        _write_file(tmp / QUERIES_FILE, lambda h: np.save(h, emb.queries, allow_pickle=False))
        _write_file(tmp / CORPUS_IDS_FILE, lambda h: h.write(_ids_text(emb.corpus_ids)))
        _write_file(tmp / QUERY_IDS_FILE, lambda h: h.write(_ids_text(emb.query_ids)))
        meta_text = json.dumps(meta, indent=1, sort_keys=False) + "\n"
        _write_file(tmp / META_FILE, lambda h: h.write(meta_text.encode("utf-8")))
        _swap_into_place(tmp, target, overwrite, output)
    logger.info(
        "saved embeddings (%d docs, %d queries, dim %d) to %s",
        emb.corpus.shape[0],
        emb.queries.shape[0],
        emb.dim,
        target,
    )
    return meta


# --- reading -----------------------------------------------------------------------------


def _read_files(root: Path, mmap: bool) -> tuple[
        dict[str, Any], np.ndarray, np.ndarray, list[str], list[str]]:
    return (read_meta(root / META_FILE), read_matrix(root / CORPUS_FILE, mmap=mmap),
            read_matrix(root / QUERIES_FILE, mmap=mmap), read_ids(root / CORPUS_IDS_FILE),
            read_ids(root / QUERY_IDS_FILE))


def read_meta(path: Path) -> dict[str, Any]:
    """An embeddings folder's meta.json as a dict, or `DataError` naming the file."""
    refuse_special_file(path)  # a pipe waited for a writer, before the folder's other checks
    # utf-8-sig: an editor may save it with a byte-order mark, as config.json and BEIR files
    return parse_json_object(path.read_bytes(), str(path), encoding="utf-8-sig")


def read_matrix(path: Path, *, mmap: bool) -> np.ndarray:
    """A 2-d float `.npy` as float32 C-contiguous (mapped read-only when it is so already)."""
    arr = load_npy(path, mmap=mmap)
    if arr.dtype.kind != "f":  # first: a structured array's shape is (n,) and misleads
        raise DataError(f"{path}: expected float embeddings, got dtype {arr.dtype}")
    check_matrix_shape(arr.shape, name=str(path))
    if arr.dtype != np.float32 or not arr.flags.c_contiguous:
        if mmap:  # it is read whole into memory, where a float32 C-order file is mapped
            why = [f"{arr.dtype}, not float32"] if arr.dtype != np.float32 else []
            why += [] if arr.flags.c_contiguous else ["in Fortran order"]
            logger.warning("%s: %s, so it is read into memory (as float32 rows), not mapped",
                           path, " and ".join(why))
        wide, arr = arr, to_float32(arr)  # no numpy overflow warning: the row is named here
        if wide.dtype.itemsize > 4:
            beyond = np.flatnonzero(~np.isfinite(arr).all(axis=1) & np.isfinite(wide).all(axis=1))
            if beyond.size:
                raise DataError(f"{path}: row {beyond[0]} has a value beyond float32's range "
                                "(about 3.4e38)")
            vanished = np.flatnonzero(~arr.any(axis=1) & wide.any(axis=1))
            if vanished.size:  # else "all zeros" of a row that is not
                raise DataError(f"{path}: row {vanished[0]} {BELOW_FLOAT32}")
    return arr


def read_ids(path: Path) -> list[str]:
    """One id a line (UTF-8, LF or CRLF), read as `clean_id` reads every id (without the
    whitespace around it, as in the dataset it names); an empty or repeated id, or one holding
    a carriage return, is a `DataError` naming it.

    A leading byte-order mark (Notepad, PowerShell) is dropped, as the BEIR loader drops it,
    else it would be part of the first id, which then matches no document.
    """
    # Bytes decoded here, not by open(): newline translation would read a lone \r as a line
    # end that splits one id in two (which only a count mismatch would show); it is kept, to
    # be refused with its line. A bad byte is named with its line, as the BEIR loader names it.
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = exc.start + (3 if raw.startswith(codecs.BOM_UTF8) else 0)  # (after the mark)
        line, column = raw.count(b"\n", 0, bad) + 1, bad - (raw.rfind(b"\n", 0, bad) + 1)
        raise DataError(f"{path}: line {line}: not valid UTF-8 (byte {column})") from None
    # splitlines() would also split on \x0b, \x1c ... which may legitimately occur in nothing
    # we write but should not silently split an id; split on newlines only, tolerate CRLF.
    lines = text.split("\n")
    while lines and lines[-1] in ("", "\r"):  # blank lines at the end, as the dataset reader
        lines.pop()  # skips them (one inside would shift every later id onto another row)
    ids = [clean_id(line.removesuffix("\r")) for line in lines]
    seen: dict[str, int] = {}
    for lineno, ident in enumerate(ids, start=1):
        if not ident:
            raise DataError(f"{path}: line {lineno}: empty id")
        if "\r" in ident:
            raise DataError(f"{path}: line {lineno}: id {quoted(ident)} contains a line break")
        if ident in seen:
            raise DataError(
                f"{path}: line {lineno}: duplicate id {quoted(ident)} (first on line {seen[ident]})"
            )
        seen[ident] = lineno
    return ids


def _check_count(arr_path: Path, arr: np.ndarray, ids_path: Path, ids: list[str]) -> None:
    if arr.shape[0] != len(ids):
        raise DataError(f"{arr_path}: {arr.shape[0]} rows but {ids_path.name} has {len(ids)} ids")


def _check_rows(path: Path, arr: np.ndarray, normalized: bool) -> None:
    """Raise on the first NaN/inf or all-zero row, or (if `normalized`) the first row not of
    unit norm. (A zero row was let through unnormalised folders, to fail later naming a row
    of some subset, and no file; or not at all, in a query half nothing normalised.)"""
    for start, block in zip(range(0, arr.shape[0], _CHUNK_ROWS), row_blocks(arr, _CHUNK_ROWS),
                            strict=True):
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            row = start + int(np.flatnonzero(~finite)[0])
            raise DataError(f"{path}: row {row} contains NaN or inf")
        zero = ~block.any(axis=1)
        if zero.any():
            row = start + int(np.flatnonzero(zero)[0])
            raise DataError(f"{path}: row {row} is all zeros, which has no direction to compare")
        if normalized:
            # float32 squares (no float64 copy of the block): exact enough for the tolerance,
            # and a row whose squares overflow or vanish is off anyway
            norms = np.sqrt(np.einsum("ij,ij->i", block, block))
            bad = np.abs(norms - 1.0) > UNIT_NORM_TOLERANCE
            if bad.any():
                first = int(np.flatnonzero(bad)[0])
                norm = np.linalg.norm(block[first].astype(np.float64))
                raise DataError(
                    f"{path}: row {start + first} has norm {norm:.6g}, but the embeddings "
                    "are marked normalized (meta.json)"
                )


# --- writing -----------------------------------------------------------------------------


def _check_ids_writable(name: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for row, ident in enumerate(ids):
        if not ident or "\n" in ident or "\r" in ident:
            raise DataError(f"{name}: row {row}: id {quoted(ident)} is empty or contains a newline")
        if ident in seen:
            raise DataError(f"{name}: row {row}: duplicate id {quoted(ident)}")
        seen.add(ident)


def _ids_text(ids: list[str]) -> bytes:
    return "".join(f"{ident}\n" for ident in ids).encode("utf-8")


def _write_file(path: Path, write: Any) -> None:
    with open(path, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


def _swap_into_place(tmp: Path, target: Path, overwrite: bool, output: bool) -> None:
    if target.exists() and not target.is_dir():
        raise DataError(f"{target}: exists and is not a folder; refusing to replace it")
    if overwrite:  # what is there now, which may have appeared since the caller's check
        check_embeddings_output(target, overwrite=True)
    publish(tmp, target, overwrite=overwrite, output=output)
