"""Vectors made elsewhere (an embedding API, another tool) as a validated embeddings folder.

`from_parquet` reads an id column and a vector column (`fixed_size_list` or `list` of numbers)
from one Parquet file for the corpus and one for the queries; `from_npy` reads an (n, D) float
`.npy` plus an ids file (one id a line) for each. Everything is checked against the dataset
before anything is written: ids unique and exactly the dataset's (no id the dataset lacks, no
document or query of it without a vector; ids are read as the dataset's are, without
surrounding whitespace or invisible characters: `dive.data.beir.clean_id`), every vector
finite, non-zero and of one dimension,
corpus and queries alike. Errors name the file, the row and the id. Rows are stored in the
dataset's order as given, not rescaled: whether they are unit-norm is measured and recorded in
meta.json (`normalized`, and the smallest, largest and mean norm), and every later stage
normalises what is not.

Left out: encoding (`dive.embed.resumable`), vectors split over several files, and other
formats (convert to Parquet or `.npy` first).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dive._io import refuse_special_file
from dive.arrays import UNIT_NORM_TOLERANCE, check_matrix_shape
from dive.data.beir import Dataset, clean_id, form_hint
from dive.embed.encode import (
    DEFAULT_DIM,
    DEFAULT_MODEL,
    IMPORTED_MODEL,
    dataset_fingerprint,
    model_label,
)
from dive.embed.store import (
    Embeddings,
    as_saved,
    check_embeddings_output,
    read_ids,
    read_matrix,
    save_embeddings,
)
from dive.errors import DataError, DiveError, kind_of, quoted
from dive.scale.formats import (
    BadRow,
    import_pyarrow,
    inspect_parquet,
    iter_parquet_chunks,
    vectors_from_arrow,
)

logger = logging.getLogger(__name__)

_CHUNK_ROWS = 65536

PathLike = str | os.PathLike[str]


@dataclass(frozen=True, eq=False)
class Vectors:
    """Vectors read from one file with their ids, before they are checked against a dataset."""

    ids: list[str]
    array: np.ndarray  # (n, D) float, possibly memory-mapped
    where: str  # the file, for messages
    ids_from: str | None = None  # the ids file, when not `where` (an .npy's)

    def __post_init__(self) -> None:
        """What the readers check, for `Vectors` made by hand: more rows than ids paired each
        id with another row's vector without a word (a header row: every score wrong), fewer
        was an IndexError, and integer ids (a pandas column) a TypeError; they are read as
        text, as a Parquet file's integer ids are."""
        if not isinstance(self.array, np.ndarray):
            raise DataError(f"{self.where}: the vectors are {kind_of(self.array)}; expected a "
                            "numpy array (n, D)")
        if self.array.dtype.kind != "f":
            raise DataError(f"{self.where}: expected float embeddings, got dtype "
                            f"{self.array.dtype}")
        check_matrix_shape(self.array.shape, name=self.where)
        if not isinstance(self.ids, (Sequence, np.ndarray)) or isinstance(self.ids, str):
            raise DataError(f"{self.where}: the ids are {kind_of(self.ids)}; expected a list "
                            "of ids, one per row")  # a str was read as one id per character
        ids = [str(i) if isinstance(i, (int, np.integer)) and not isinstance(i, bool) else i
               for i in self.ids]
        odd = next((row for row, i in enumerate(ids) if not isinstance(i, str)), None)
        if odd is not None:
            raise DataError(f"{self.id_place(odd)}: the id is {kind_of(ids[odd])}; expected "
                            "text (or an integer)")
        if self.array.shape[0] != len(ids):
            raise DataError(f"{self.where}: {self.array.shape[0]} rows but "
                            + (f"{self.ids_from} has {len(ids)} ids" if self.ids_from else
                               f"{len(ids)} ids"))
        object.__setattr__(self, "ids", ids)

    def row_name(self, row: int) -> str:
        """How messages name `row`'s id: its line in the ids file, or the row itself."""
        return f"line {row + 1}" if self.ids_from else f"row {row}"

    def id_place(self, row: int) -> str:
        return f"{self.ids_from or self.where}: {self.row_name(row)}"


def read_parquet_vectors(path: PathLike, *, id_column: str = "id",
                         vector_column: str = "vector") -> Vectors:
    """The ids and vectors of a Parquet file, read in chunks; ragged or null rows are errors."""
    file = Path(path)
    if not id_column:  # an embeddings folder names every row: the ids are not optional here
        raise DataError(f"{file}: embeddings need ids; name the id column (got "
                        f"{id_column!r})", param="id_column")
    layout = inspect_parquet(file, vector_column, id_column, ids_optional=False)
    if not _is_id_type(layout.id_type):  # str() of bytes, floats or lists names no document
        raise DataError(f"{file}: id column {id_column!r} holds {layout.id_type}, not strings "
                        "or integers", param="id_column")
    if layout.n_rows == 0 or layout.dim is None:
        raise DataError(f"{file}: no vectors (the file has no rows)")
    ids: list[str] = []
    arrays = []
    chunks = iter_parquet_chunks(file, layout, [id_column, vector_column], 0, _CHUNK_ROWS)
    for lo, table in chunks:
        chunk_ids = ["" if ident is None else clean_id(str(ident))
                     for ident in table.column(id_column).to_pylist()]
        missing = [row for row, ident in enumerate(chunk_ids) if not ident]
        if missing:
            raise DataError(f"{file}: row {lo + missing[0]}: the id is empty")
        try:
            arrays.append(vectors_from_arrow(table.column(vector_column), layout.dim, str(file),
                                             lo))
        except BadRow as exc:
            raise DataError(f"{file}: row {lo + exc.row} (id {chunk_ids[exc.row]!r}): "
                            f"{exc.problem}") from None
        ids.extend(chunk_ids)
    return Vectors(ids, np.concatenate(arrays) if len(arrays) > 1 else arrays[0], str(file))


def _is_id_type(arrow_type: Any) -> bool:
    """Whether a Parquet column of `arrow_type` holds ids as the dataset has them: text, or
    integers (made text, as the BEIR loader makes an integer `_id`)."""
    pa = import_pyarrow()
    if pa.types.is_dictionary(arrow_type):
        return _is_id_type(arrow_type.value_type)
    view = getattr(pa.types, "is_string_view", None)  # pyarrow 16+
    return bool(pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
                or pa.types.is_integer(arrow_type) or (view is not None and view(arrow_type)))


def read_npy_vectors(path: PathLike, ids_path: PathLike) -> Vectors:
    """The vectors of an (n, D) float `.npy` (memory-mapped) and the ids file naming its rows."""
    file, ids_file = Path(path), Path(ids_path)
    for required in (file, ids_file):
        if not required.is_file():
            refuse_special_file(required)
            raise DataError(f"{required}: is a folder, not a file" if required.is_dir()
                            else f"{required}: no such file")
    array = read_matrix(file, mmap=True)
    return Vectors(read_ids(ids_file), array, str(file), str(ids_file))  # rows against ids


def from_parquet(
    dataset: Dataset,
    corpus: PathLike,
    queries: PathLike,
    out: PathLike,
    *,
    id_column: str = "id",
    vector_column: str = "vector",
    model: str = IMPORTED_MODEL,
    overwrite: bool = False,
) -> Embeddings:
    """Write the embeddings folder `out` from Parquet files of corpus and query vectors."""
    check_embeddings_output(Path(out), overwrite=overwrite)
    read = [read_parquet_vectors(p, id_column=id_column, vector_column=vector_column)
            for p in (corpus, queries)]
    source = {"format": "parquet", **_absolute(corpus=corpus, queries=queries),
              "id_column": id_column, "vector_column": vector_column}
    return import_vectors(dataset, read[0], read[1], out, model=model, source=source,
                          overwrite=overwrite)


def from_npy(
    dataset: Dataset,
    corpus: PathLike,
    corpus_ids: PathLike,
    queries: PathLike,
    query_ids: PathLike,
    out: PathLike,
    *,
    model: str = IMPORTED_MODEL,
    overwrite: bool = False,
) -> Embeddings:
    """Write the embeddings folder `out` from `.npy` files of vectors and their ids files."""
    check_embeddings_output(Path(out), overwrite=overwrite)
    read = [read_npy_vectors(corpus, corpus_ids), read_npy_vectors(queries, query_ids)]
    source = {"format": "npy", **_absolute(corpus=corpus, queries=queries,
                                            corpus_ids=corpus_ids, query_ids=query_ids)}
    return import_vectors(dataset, read[0], read[1], out, model=model, source=source,
                          overwrite=overwrite)


def _absolute(**paths: PathLike) -> dict[str, str]:
    """The files an import read, as meta.json records them: absolute (a path relative to
    the working directory of the import named another file, or none, from anywhere else)."""
    return {name: os.path.abspath(path) for name, path in paths.items()}


def import_vectors(
    dataset: Dataset,
    corpus: Vectors,
    queries: Vectors,
    out: PathLike,
    *,
    model: str = IMPORTED_MODEL,
    source: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Embeddings:
    """Check `corpus` and `queries` against `dataset` and write them as the folder `out`.

    A folder already at `out` is kept (`DiveError`), even one written meanwhile, unless
    `overwrite` (callers check first, see `check_embeddings_output`);
    `source` is recorded in meta.json under `imported_from`, with the two files, and `model`
    (a label: nothing is encoded) as `model_label` names it, so a local model folder is its
    resolved path. `corpus` and `queries` are `Vectors` (ids, array, the file named in
    messages), as `from_npy` and `from_parquet` read them: `Vectors(ids, array, "my-api")`.
    """
    for name, given in (("corpus", corpus), ("queries", queries)):
        if not isinstance(given, Vectors):  # an array was an AttributeError deep inside
            raise DiveError(f"import_vectors: {name} is {kind_of(given)}; expected "
                            "dive.embed.Vectors(ids, array, where)")
    if queries.array.shape[1] != corpus.array.shape[1]:
        raise DataError(f"{queries.where}: vectors have dimension {queries.array.shape[1]}, but "
                        f"the corpus vectors ({corpus.where}) have {corpus.array.shape[1]}")
    if model_label(model) == DEFAULT_MODEL and corpus.array.shape[1] != DEFAULT_DIM:
        # a label only, but one every later record and a `search --query` read as that model
        raise DataError(f"{corpus.where}: vectors have dimension {corpus.array.shape[1]}, but "
                        f"{DEFAULT_MODEL} makes {DEFAULT_DIM}-d ones: label them with the "
                        "name of the model that made them, or leave the label out")
    corpus_rows = _rows_in_order(corpus, dataset.corpus_ids, f"the corpus of {dataset.name}")
    query_rows = _rows_in_order(queries, dataset.query_ids, f"the queries of {dataset.name}")
    corpus_x, corpus_norms = _checked(corpus, corpus_rows)
    queries_x, query_norms = _checked(queries, query_rows)
    norms = {"corpus": _summary(corpus_norms), "queries": _summary(query_norms)}
    normalized = all(at_unit_norm(s) for s in norms.values())
    meta: dict[str, Any] = {
        "model": model_label(model),
        "normalized": normalized,
        "norms": norms,
        "dtype": "float32",
        "doc_text": "vectors made elsewhere",
        "dataset": dataset.name,
        "dataset_path": str(Path(dataset.path).resolve()),  # as encoding records it: which
        # `cache_folder` of that name is this collection's
        "text_sha256": dataset_fingerprint(dataset),
        "imported_from": {"corpus": corpus.where, "queries": queries.where, **(source or {})},
    }
    emb = Embeddings(corpus_x, list(dataset.corpus_ids), queries_x, list(dataset.query_ids), meta)
    written = save_embeddings(Path(out), emb, overwrite=overwrite)
    logger.info("imported %d corpus and %d query vectors (%d-d, normalized: %s) into %s",
                corpus_x.shape[0], queries_x.shape[0], emb.dim, normalized, out)
    return as_saved(emb, written, Path(out))


def _rows_in_order(vectors: Vectors, wanted: Sequence[str], what: str) -> np.ndarray:
    """The row of `vectors` for each id of `wanted`, in its order; ids must match exactly."""
    row_of: dict[str, int] = {}
    for row, ident in enumerate(vectors.ids):
        first = row_of.setdefault(ident, row)
        if first != row:
            raise DataError(f"{vectors.id_place(row)}: duplicate id {quoted(ident)} (first at "
                            f"{vectors.row_name(first)})")
    known = set(map(str, wanted))
    extra = [(row, ident) for row, ident in enumerate(vectors.ids) if ident not in known]
    if extra:
        row, ident = extra[0]
        hint = form_hint(ident, known)
        raise DataError(f"{vectors.id_place(row)}: id {quoted(ident)}{hint}"
                        f"{',' if hint else ''} is not in {what} ({len(extra)} of "
                        f"{len(vectors.ids)} ids are not)")
    if len(row_of) != len(known):
        absent = [str(ident) for ident in wanted if str(ident) not in row_of]
        raise DataError(f"{vectors.ids_from or vectors.where}: no vector for id {absent[0]!r} "
                        f"of {what} ({len(absent)} of {len(known)} ids have none)")
    return np.fromiter((row_of[str(ident)] for ident in wanted), np.intp, len(wanted))


def _checked(vectors: Vectors, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`vectors` reordered by `rows` as float32, and their norms; a NaN/inf or all-zero row is
    an error."""
    out = np.empty((len(rows), vectors.array.shape[1]), dtype=np.float32)
    norms = np.empty(len(rows), dtype=np.float64)
    for lo in range(0, len(rows), _CHUNK_ROWS):
        picked = np.sort(rows[lo : lo + _CHUNK_ROWS])  # sorted reads are kind to a memory map
        block = np.asarray(vectors.array[picked], dtype=np.float32)
        bad = ~np.isfinite(block).all(axis=1)
        zero = ~bad & ~block.any(axis=1)
        for mask, problem in ((bad, "contains NaN or inf"), (zero, "is all zeros (no direction)")):
            if mask.any():
                row = int(picked[np.flatnonzero(mask)[0]])
                raise DataError(f"{vectors.where}: row {row} (id {vectors.ids[row]!r}) {problem}")
        order = np.argsort(rows[lo : lo + _CHUNK_ROWS], kind="stable")
        out[lo + order] = block
        norms[lo + order] = np.linalg.norm(block.astype(np.float64), axis=1)
    return out, norms


def at_unit_norm(summary: dict[str, float]) -> bool:
    """Whether a side's norm summary (`meta["norms"]["corpus"]`) is within tolerance of 1."""
    return max(abs(summary["min"] - 1), abs(summary["max"] - 1)) <= UNIT_NORM_TOLERANCE


def _summary(norms: np.ndarray) -> dict[str, float]:
    return {"min": float(norms.min()), "max": float(norms.max()), "mean": float(norms.mean())}
