"""FAISS indexes over compressed vectors, carrying the document ids.

`build_index` puts compressed (unit-norm) vectors in an inner-product index: `flat` (exact,
ranks as `dive.evaluate.search.top_k` does) or `hnsw` (approximate, graph-based). FAISS knows
rows only, so `SearchIndex` keeps the ids beside it and `save_index` writes them to a sidecar
text file, `<file>.ids.txt`, one id per line; `load_index` checks that the two agree. An index
built from a compressor's output also records that compressor's identity (the SHA-256 of its
runtime's arrays and activation, `dive.scale.stream.runtime_digest`) in `<file>.meta.json`, and
`check_index_model` refuses to search it with another compressor: vectors of the same dimension
from another model would return unrelated hits. An index saved without it (older dive) is
searched with a warning, as nothing can be checked.
`search_index` returns (rows, scores) like `top_k`; `SearchIndex.ids` maps rows to ids.

Quantized codes (`dive.compressors.precision`, what a model saved with a precision outputs) go
into the FAISS index that stores exactly those bytes, added as codes (`add_sa_codes`), not
re-encoded: int8 into `IndexScalarQuantizer` `QT_8bit` with the model's calibrated ranges
(FAISS's grid is dive's, so it decodes them as `top_k_codes` does), float16 into `QT_fp16`,
binary into `IndexBinaryFlat` (Hamming distance). Queries are always the float32 compressed
vectors; a binary index packs their sign bits itself and scores d - 2 * Hamming, as the
evaluator does. `SearchIndex.bytes_per_vector` is what the index stores per vector.
`<file>.meta.json` records the precision and dimension too (an index without it is float32),
and the SHA-256 of the index and ids files it was saved with: it is written last, so a
replacement stopped half way leaves an old meta that `load_index` finds does not match.
`product=M` instead puts the float32 compressed vectors into a FAISS OPQ+PQ index of M bytes
per vector, trained on them (`dive.evaluate.product`, the `opq{M}` first stage the evaluator
scores); its precision is recorded as `opq{M}`.

Left out: IVF indexes, HNSW over codes, and GPU FAISS (build them from the compressed
vectors directly), and adding to or deleting from a saved index.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dive._io import atomic_open, check_output
from dive.arrays import as_embeddings, check_floating, is_integer
from dive.compressors.precision import PRECISIONS, Quantizer, check_precision, code_width
from dive.errors import DataError, DiveError
from dive.evaluate.product import is_product, product_bytes, product_index

logger = logging.getLogger(__name__)

IndexKind = Literal["flat", "hnsw"]
INDEX_KINDS: tuple[IndexKind, ...] = ("flat", "hnsw")
IDS_SUFFIX = ".ids.txt"
META_SUFFIX = ".meta.json"
META_FORMAT = "dive-index"


def _import_faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise DiveError("FAISS indexes need faiss-cpu; install dive-compress[faiss]") from None
    return faiss


@dataclass
class SearchIndex:
    """A FAISS index and the id of each of its rows."""

    index: Any  # faiss.Index (inner product), or faiss.IndexBinary for binary codes
    ids: list[str]
    model_sha256: str | None = None  # identity of the compressor whose vectors it holds
    precision: str = "float32"  # a `Precision`, or `opq{M}` (product quantization)
    vector_dim: int | None = None  # d of the vectors; None: the index's own (not binary)

    @property
    def dim(self) -> int:
        """The dimension of the compressed vectors it holds (and of its queries)."""
        return int(self.index.d) if self.vector_dim is None else self.vector_dim

    @property
    def bytes_per_vector(self) -> int:
        """Bytes of vector data the index stores per vector (FAISS's code size; an HNSW
        index's flat storage, its graph links not counted)."""
        storage = getattr(self.index, "storage", None)
        if storage is not None:
            return int(_import_faiss().downcast_index(storage).code_size)
        if is_product(self.precision):
            return int(self.index.sa_code_size())
        return int(self.index.code_size)

    def __len__(self) -> int:
        return int(self.index.ntotal)


def ids_path(file: str | os.PathLike[str]) -> Path:
    """The sidecar ids file of an index file."""
    path = Path(file)
    return path.with_name(path.name + IDS_SUFFIX)


def meta_path(file: str | os.PathLike[str]) -> Path:
    """The sidecar file recording which compressor built the index."""
    path = Path(file)
    return path.with_name(path.name + META_SUFFIX)


def is_index_file(path: Path) -> bool:
    """Whether `path` is an index file `save_index` wrote (a file with its ids sidecar)."""
    return path.is_file() and ids_path(path).is_file()


def check_index_output(target: Path, *, overwrite: bool) -> None:
    """Raise `DiveError` unless an index may be saved at `target`: only a dive index there is
    replaced (with `overwrite`), and a sidecar path in use is only ever that index's own."""
    check_output(target, overwrite=overwrite, ours=is_index_file,
                 what=f"a dive index (a file with its {IDS_SUFFIX})")
    if is_index_file(target):
        return
    for sidecar in (ids_path(target), meta_path(target)):
        if sidecar.exists() or sidecar.is_symlink():
            raise DiveError(f"{sidecar}: exists and is not part of a dive index at "
                            f"{target.name}; refusing to replace it")


def _check_ids(ids: Sequence[object], n: int, where: str) -> list[str]:
    out = [str(i) for i in ids]
    if len(out) != n:
        raise DataError(f"{where}: {len(out)} ids for {n} vectors")
    seen: dict[str, int] = {}
    for row, ident in enumerate(out):
        if not ident or "\n" in ident or "\r" in ident:
            raise DataError(f"{where}: row {row}: id {ident!r} is empty or contains a newline")
        if ident in seen:
            raise DataError(f"{where}: row {row} repeats id {ident!r} (first at row {seen[ident]})")
        seen[ident] = row
    return out


def build_index(
    compressed: np.ndarray,
    kind: IndexKind = "flat",
    *,
    ids: Sequence[str] | None = None,
    model_sha256: str | None = None,
    quantizer: Quantizer | None = None,
    product: int | None = None,
    seed: int = 0,
    hnsw_m: int = 32,
    ef_construction: int = 200,
    ef_search: int = 128,
) -> SearchIndex:
    """An inner-product index over `compressed` (n, d); ids default to the row numbers.

    `model_sha256` identifies the compressor that produced `compressed` (see the module doc).
    With a `quantizer` of another precision than float32, `compressed` holds its codes (what
    a model saved with that precision outputs) and the index stores them as they are. With
    `product=M`, float32 `compressed` goes into an OPQ+PQ index of M bytes per vector trained
    on it (k-means seeded by `seed`).

    `hnsw_m`, `ef_construction` and `ef_search` tune the HNSW graph (ignored for `flat`);
    `ef_search` is saved with the index.
    """
    if kind not in INDEX_KINDS:
        raise DiveError(f"index kind {kind!r} is not one of {', '.join(INDEX_KINDS)}")
    faiss = _import_faiss()
    if quantizer is not None and quantizer.precision != "float32":
        if kind != "flat":
            raise DiveError(f"a {kind} index holds float32 vectors; {quantizer.precision} codes "
                            "go into the exact flat index")
        codes = quantizer.check_codes(compressed, name="compressed codes")
        if codes.shape[0] == 0:
            raise DataError("compressed codes: empty (0 rows); nothing to index")
        row_ids = _check_ids(ids if ids is not None else range(codes.shape[0]),
                             codes.shape[0], "ids")
        index = _code_index(faiss, quantizer, codes)
        logger.info("built %s index: %d vectors of dimension %d", quantizer.precision,
                    codes.shape[0], quantizer.dim)
        return SearchIndex(index, row_ids, model_sha256, quantizer.precision, quantizer.dim)
    x = as_embeddings(compressed, name="compressed vectors")
    if x.shape[0] == 0:
        raise DataError("compressed vectors: empty (0 rows); nothing to index")
    row_ids = _check_ids(ids if ids is not None else range(x.shape[0]), x.shape[0], "ids")
    d = x.shape[1]
    if product is not None:
        if kind != "flat":
            raise DiveError(f"a {kind} index holds float32 vectors; OPQ codes are searched "
                            "exactly (one index kind at a time)")
        stage = f"opq{product}"
        built = product_index(stage, x, seed)
        logger.info("built %s index: %d vectors of dimension %d", stage, x.shape[0], d)
        return SearchIndex(built.index, row_ids, model_sha256, stage)
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
    else:
        index = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
    index.add(x)
    logger.info("built %s index: %d vectors of dimension %d", kind, x.shape[0], d)
    return SearchIndex(index, row_ids, model_sha256)


def _code_index(faiss: Any, quantizer: Quantizer, codes: np.ndarray) -> Any:
    """The FAISS index storing `codes` byte for byte (see the module doc)."""
    d = quantizer.dim
    if quantizer.precision == "binary":
        index = faiss.IndexBinaryFlat(8 * quantizer.code_width)  # padding bits are 0 in all
        index.add(codes)
        return index
    if quantizer.precision == "float16":
        index = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_fp16,
                                           faiss.METRIC_INNER_PRODUCT)
        index.add_sa_codes(codes.view(np.uint8))
        return index
    assert quantizer.low is not None and quantizer.width is not None
    index = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit,
                                       faiss.METRIC_INNER_PRODUCT)
    # FAISS's 8-bit ranges are (vmin, vdiff) per dimension: the model's (low, width).
    faiss.copy_array_to_vector(np.concatenate([quantizer.low, quantizer.width]), index.sq.trained)
    index.is_trained = True
    index.add_sa_codes(codes.view(np.uint8) ^ np.uint8(0x80))  # signed code c is byte c + 128
    return index


def save_index(index: SearchIndex, file: str | os.PathLike[str], *,
               overwrite: bool = False) -> Path:
    """Write the index to `file`, its ids to `<file>.ids.txt` and the identity of its
    compressor (if known) to `<file>.meta.json`, each atomically.

    Only an index dive saved (`is_index_file`) is ever replaced (anything else raises
    `DiveError`), and that only with `overwrite`; `overwrite=False` keeps even one a
    concurrent run saved meanwhile, and its sidecars are then left alone too. A sidecar path
    in use is only ever replaced with the index it belongs to (`check_index_output`).
    """
    faiss = _import_faiss()
    target = Path(file)
    check_index_output(target, overwrite=overwrite)
    ids = _check_ids(index.ids, len(index), "ids")
    binary = index.precision == "binary"
    serialize = faiss.serialize_index_binary if binary else faiss.serialize_index
    data = serialize(index.index).tobytes()
    ids_text = "".join(f"{i}\n" for i in ids).encode("utf-8")
    # Always rewritten: an old identity or precision would no longer be true. The digests
    # tie the meta to the index and ids saved with it.
    meta = {"format": META_FORMAT, "model_sha256": index.model_sha256,
            "precision": index.precision, "dim": index.dim,
            "index_sha256": _sha256(data), "ids_sha256": _sha256(ids_text)}
    sidecars = [(ids_path(target), ids_text),
                (meta_path(target), (json.dumps(meta, sort_keys=True) + "\n").encode("utf-8"))]
    if not overwrite:
        # The index goes first, alone, as the claim: a run that finds another's index there
        # stops before touching its sidecars. Should a sidecar then fail, the claim is undone.
        with atomic_open(target, "wb", overwrite=False) as handle:
            handle.write(data)
        claimed = target.stat().st_ino
        try:
            _write_all(sidecars)
        except BaseException:
            with contextlib.suppress(OSError):
                if target.stat().st_ino == claimed:
                    target.unlink()
            raise
        return target
    # The meta is renamed last: a crash before leaves the old one, whose digests load_index
    # finds do not match the new index (or ids).
    _write_all([(target, data), *sidecars])
    return target


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_all(files: list[tuple[Path, bytes]]) -> None:
    """Write each file atomically: all to temporary names before any is renamed (so a bad
    path, a folder at one, leaves nothing behind), renamed in the order given."""
    with contextlib.ExitStack() as stack:
        for path, payload in reversed(files):  # the stack renames the last entered first
            stack.enter_context(atomic_open(path, "wb")).write(payload)


def load_index(file: str | os.PathLike[str]) -> SearchIndex:
    """Read an index written by `save_index`, checking it against its ids file."""
    faiss = _import_faiss()
    path = Path(file)
    if not path.is_file():
        raise DataError(f"{path}: no such index file")
    sidecar = ids_path(path)
    if not sidecar.is_file():
        raise DataError(f"{sidecar}: missing (the ids of {path.name}'s rows)")
    meta = _read_meta(meta_path(path))
    model_sha256, precision, dim = meta.model_sha256, meta.precision, meta.dim
    binary = precision == "binary"
    # One read: the bytes checked against the meta's digest are the bytes deserialised.
    data = path.read_bytes()
    deserialize = faiss.deserialize_index_binary if binary else faiss.deserialize_index
    try:
        index = deserialize(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise DataError(f"{path}: not a readable FAISS index ({first})") from None
    raw_ids = sidecar.read_bytes()
    try:
        text = raw_ids.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{sidecar}: not UTF-8 text ({exc})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    ids = _check_ids([line.rstrip("\r") for line in lines], int(index.ntotal), str(sidecar))
    stored = SearchIndex(index, ids, model_sha256, precision, dim if binary else None)
    expected = product_bytes(precision)
    if expected is None:
        values = code_width(check_precision(precision), stored.dim)
        expected = values * (1 if binary else _value_bytes(precision))
    if stored.bytes_per_vector != expected or (dim is not None and stored.dim != dim):
        raise DataError(f"{path}: holds {stored.bytes_per_vector}-byte vectors of dimension "
                        f"{stored.dim}, but {meta_path(path).name} says {precision} of "
                        f"dimension {dim}")
    if meta.digests is not None and meta.digests != (_sha256(data), _sha256(raw_ids)):
        raise DataError(f"{path}: the index or its {IDS_SUFFIX} does not match "
                        f"{meta_path(path).name}, saved with them (a save that did not "
                        "finish?); save the index again")
    return stored


def _value_bytes(precision: str) -> int:
    return {"float32": 4, "float16": 2, "int8": 1}.get(precision, 1)


@dataclass(frozen=True)
class _Meta:
    """What `<file>.meta.json` records."""

    model_sha256: str | None = None
    precision: str = "float32"
    dim: int | None = None
    digests: tuple[str, str] | None = None  # SHA-256 of (index, ids); None: older dive


def _read_meta(meta: Path) -> _Meta:
    """The sidecar's record; an index without one is float32."""
    if not meta.exists():
        return _Meta()
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{meta}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != META_FORMAT:
        raise DataError(f"{meta}: not a dive index identity (expected format {META_FORMAT!r})")
    digest, precision, dim = (data.get("model_sha256"), data.get("precision", "float32"),
                              data.get("dim"))
    if digest is not None and not isinstance(digest, str):
        raise DataError(f"{meta}: model_sha256 is {digest!r}, expected a string or null")
    if precision not in PRECISIONS and not (isinstance(precision, str) and is_product(precision)):
        raise DataError(f"{meta}: precision {precision!r} is not one of {', '.join(PRECISIONS)} "
                        "or opqM")
    if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool) or dim < 1):
        raise DataError(f"{meta}: dim is {dim!r}, expected a positive integer")
    if precision == "binary" and dim is None:
        raise DataError(f"{meta}: a binary index needs its vectors' dim")
    index_sha256, ids_sha256 = data.get("index_sha256"), data.get("ids_sha256")
    if index_sha256 is None and ids_sha256 is None:  # saved by an older dive
        return _Meta(digest, precision, dim)
    if not isinstance(index_sha256, str) or not isinstance(ids_sha256, str):
        raise DataError(f"{meta}: index_sha256 and ids_sha256 are {index_sha256!r} and "
                        f"{ids_sha256!r}, expected strings")
    return _Meta(digest, precision, dim, (index_sha256, ids_sha256))


def check_index_model(index: SearchIndex, file: str | os.PathLike[str], model_sha256: str,
                      model: str) -> None:
    """Refuse to search `index` with vectors of a compressor other than the one it holds."""
    if index.model_sha256 is None:
        logger.warning("%s: does not record which compressor built it (made by an older dive); "
                       "cannot check that %s did; rebuild it with `dive index` to check",
                       file, model)
    elif index.model_sha256 != model_sha256:
        raise DataError(f"{file}: built by another compressor than {model} (the index holds "
                        f"vectors of model {index.model_sha256[:12]}, this one is "
                        f"{model_sha256[:12]}); search with the compressor that built it, or "
                        "rebuild the index")


def search_index(
    index: SearchIndex, queries: np.ndarray, k: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k rows of every query: (rows int64 (m, k'), scores float32 (m, k')), best first.

    k' = min(k, len(index)). HNSW may return fewer than k' hits for a query; the missing
    slots hold row -1 and score -inf. `queries` are the float32 compressed vectors whatever the
    index's precision; a binary index scores d - 2 * Hamming distance of their sign bits.
    """
    if not is_integer(k) or k < 1:
        raise DiveError(f"search: k must be an integer >= 1, got {k!r}")
    check_floating(queries, name="queries")
    q = as_embeddings(queries, name="queries", dim=index.dim)
    kk = min(k, len(index))
    if index.precision == "binary":
        hamming, rows = index.index.search(np.packbits(q > 0, axis=1), kk)
        scores = (index.dim - 2 * hamming).astype(np.float32)
    else:
        scores, rows = index.index.search(q, kk)
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    scores[rows < 0] = -np.inf
    return rows, scores
