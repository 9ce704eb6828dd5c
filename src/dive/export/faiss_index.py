"""FAISS indexes over compressed vectors, carrying the document ids.

`build_index` puts compressed (unit-norm) vectors in an inner-product index: `flat` (exact,
ranks as `dive.evaluate.search.top_k` does, up to the order of exactly tied scores) or `hnsw`
(approximate, graph-based). FAISS knows rows only, so `SearchIndex` keeps the ids beside it
and `save_index` writes them to a sidecar text file, `<file>.ids.txt`, one id per line;
`load_index` checks that the two agree. An index built from a compressor's output also records
that compressor's identity (the SHA-256 of its runtime's arrays and activation,
`dive.compressors.runtime.runtime_digest`) in `<file>.meta.json`, and `check_index_model` refuses to
search it with another compressor: vectors of the same dimension from another model would
return unrelated hits. An index saved without it (older dive) is searched with a warning, as
nothing can be checked. `search_index` returns (rows, scores) like `top_k`; `SearchIndex.ids`
maps rows to ids.

Quantized codes (`dive.compressors.precision`, what a model saved with a precision outputs) go
into the FAISS index that stores exactly those bytes, added as codes (`add_sa_codes`), not
re-encoded: int8 into `IndexScalarQuantizer` `QT_8bit` with the model's calibrated ranges
(FAISS's grid is dive's, so it decodes them as `top_k_codes` does), float16 into `QT_fp16`,
binary into `IndexBinaryFlat` (Hamming distance). Queries are always the float32 compressed
vectors; a binary index packs their sign bits itself and scores d - 2 * Hamming, as the
evaluator does. `SearchIndex.bytes_per_vector` is what the index stores per vector.
`<file>.meta.json` records the precision and dimension too (an index without it is float32),
and the SHA-256 of the index and ids files it was saved with: it is written last, so a
replacement stopped half way leaves an old meta that `load_index` finds does not match. Saves
run one at a time under the folder's lock (`dive._io.locked`), and `load_index` opens the
three files under it too, so a search reads the files of one save even while another
replaces them.
`product=M` instead puts the float32 compressed vectors into a FAISS OPQ+PQ index of M bytes
per vector, trained on them (`dive.evaluate.product`, the `opq{M}` first stage the evaluator
scores); its precision is recorded as `opq{M}`.

`check_stored_rows` tells, by content, whether vectors meant to be the index's rows (what
`dive search --rescore-vectors` rescores with) are: it compares their codes with what the
index holds at a sample of rows (`sample_rows`, a few hundred spread over the index), and
refuses another order or another corpus, naming the first row that differs.

Left out: IVF indexes, HNSW over codes, and GPU FAISS (build them from the compressed
vectors directly), and adding to or deleting from a saved index.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

from dive._io import (
    as_path,
    atomic_open,
    check_output,
    locked,
    parse_json,
    publishing,
    refuse_special_file,
    remove_dead_temporaries,
    uninterrupted,
    written_before,
)
from dive.arrays import BadRowError, as_array, as_embeddings, check_floating, is_integer
from dive.compressors.options import MAX_INT
from dive.compressors.precision import (
    CODE_DTYPES,
    PRECISIONS,
    Quantizer,
    check_precision,
    code_width,
)
from dive.errors import DataError, DiveError, kind_of, quoted
from dive.evaluate.product import is_product, product_bytes, product_index

logger = logging.getLogger(__name__)
HNSW_M_MAX = 65535  # neighbours kept per vector: 2 M at the graph's base layer

IndexKind = Literal["flat", "hnsw"]
INDEX_KINDS: tuple[IndexKind, ...] = ("flat", "hnsw")
IDS_SUFFIX = ".ids.txt"
META_SUFFIX = ".meta.json"
META_FORMAT = "dive-index"
ROW_SAMPLE = 256  # rows `check_stored_rows` reads: its cost does not grow with the index
# A row and what the index holds there agree when the cosine of their codes is at least this
# (binary: 95% of the bits): the same vector gives 1, another row far less.
MATCH_COSINE = 0.9


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

    def __repr__(self) -> str:  # every id in full was tens of KB to megabytes
        kind = type(self.index).__name__
        return (f"SearchIndex({kind}, n={len(self.ids)}, precision={self.precision!r}, "
                f"model_sha256={self.model_sha256!r})")

    def __getstate__(self) -> dict[str, Any]:
        # FAISS pickles its float indexes but not its binary ones (a SWIG TypeError): both
        # travel as FAISS's own serialised bytes, as `save_index` writes them.
        faiss, state = _import_faiss(), dict(self.__dict__)
        binary = isinstance(self.index, faiss.IndexBinary)
        serialise = faiss.serialize_index_binary if binary else faiss.serialize_index
        state["index"] = (binary, serialise(self.index))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        faiss = _import_faiss()
        binary, data = state["index"]
        read = faiss.deserialize_index_binary if binary else faiss.deserialize_index
        self.__dict__.update(state, index=read(data))

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
        if is_product(self.precision) or not hasattr(self.index, "code_size"):
            return int(self.index.sa_code_size())  # OPQ's codes (a transform has no code_size)
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
    """Raise `DiveError` unless an index may be saved at `target`: only a dive index there, or
    what a save killed before placing its index left (`_unfinished_save`), is replaced (with
    `overwrite`), and a sidecar path in use is only ever that index's own."""
    if target.is_file() and not is_index_file(target) and _looks_like_faiss(target):
        # a user's own, or what a save of an earlier release killed before its ids left
        raise DiveError(f"{target}: a FAISS index without its {ids_path(target).name}, so not "
                        "a dive index (a save of an earlier release killed before its ids "
                        "leaves one); refusing to replace it: delete it to save an index here")
    check_output(target, overwrite=overwrite, ours=is_index_file,
                 what=f"a dive index (a file with its {IDS_SUFFIX})")
    for sidecar in (ids_path(target), meta_path(target)):
        remove_dead_temporaries(sidecar)  # as check_output does the index's
    if is_index_file(target):
        return
    if _unfinished_save(target):
        if overwrite:
            return
        raise DiveError(f"{meta_path(target)}: left by a save of an index at {target.name} "
                        "that was killed before the index was in place; pass overwrite=True "
                        "to replace it", param="overwrite")
    for sidecar in (ids_path(target), meta_path(target)):
        if sidecar.exists() or sidecar.is_symlink():
            raise DiveError(f"{sidecar}: exists and is not part of a dive index at "
                            f"{target.name}; refusing to replace it")


def _unfinished_save(target: Path) -> bool:
    """Whether the sidecars at `target`, where no index is, are what a new save killed before
    placing its index leaves (it renames its meta, then its ids, then the index): a dive meta
    with its digests, and no ids or the ids that meta names."""
    if target.exists() or target.is_symlink():
        return False
    meta, ids = meta_path(target), ids_path(target)
    try:
        data = parse_json(meta.read_bytes().decode("utf-8-sig"), str(meta))
        if not isinstance(data, dict) or data.get("format") != META_FORMAT or \
                not isinstance(data.get("index_sha256"), str):
            return False
        return not (ids.exists() or ids.is_symlink()) or \
            _sha256(ids.read_bytes()) == data.get("ids_sha256")
    except (OSError, ValueError):  # UnicodeDecodeError and DataError are ValueErrors
        return False


def _looks_like_faiss(path: Path) -> bool:
    """Whether the file starts as FAISS's serialised indexes do: a four-letter code such as
    "IxFI" (flat), "IHNf" (HNSW), "IxSQ" (scalar codes), "IBxF" (binary)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    return len(head) == 4 and head[:1] == b"I" and head.isalnum()


def _check_ids(ids: Sequence[object], n: int, where: str) -> list[str]:
    """`ids` as the strings the sidecar holds: text or integers (row numbers), one a vector.
    Anything else was written as its `str()`: bytes as "b'd0'", None as "None", NaN as "nan"."""
    if len(ids) != n:
        raise DataError(f"{where}: {len(ids)} ids for {n} vectors")
    out: list[str] = []
    seen: dict[str, int] = {}
    for row, given in enumerate(ids):
        if not isinstance(given, str) and not is_integer(given):
            raise DataError(f"{where}: row {row}: id {quoted(given)} is {kind_of(given)}; ids "
                            "are text or integers (decode bytes first)")
        ident = str(given)
        try:
            ident.encode("utf-8")  # what the sidecar is written in
        except UnicodeEncodeError:
            raise DataError(f"{where}: row {row}: id {quoted(ident)} is not valid text (a lone "
                            "surrogate: a byte of another encoding)") from None
        if not ident or "\n" in ident or "\r" in ident:
            raise DataError(f"{where}: row {row}: id {quoted(ident)} is empty or contains a "
                            "newline")
        if ident in seen:
            raise DataError(f"{where}: row {row} repeats id {quoted(ident)} (first at row "
                            f"{seen[ident]})")
        seen[ident] = row
        out.append(ident)
    return out


def build_index(
    compressed: np.ndarray | Iterable[np.ndarray],
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
    """An inner-product index over `compressed` (n, d: an array, a tensor or a list of rows);
    ids default to the row numbers.

    `compressed` may also be an iterable of blocks of rows (`Runtime.blocks`), added in turn:
    memory then holds the index and one block, not a compressed copy of the corpus beside it
    (OPQ, which trains on every row, joins the blocks first). A bad row is named by its row
    number over all the blocks.

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
    # At most a C int (FAISS's SWIG took 2**31 with an OverflowError); M at most 65535: each
    # vector keeps 2 M neighbour slots (M = 2**30 was a C++ allocation error)
    for option, value, least, most in (("hnsw_m", hnsw_m, 2, HNSW_M_MAX),
                                       ("ef_construction", ef_construction, 1, MAX_INT),
                                       ("ef_search", ef_search, 1, MAX_INT)):
        if not is_integer(value) or not least <= value <= most:  # FAISS aborts or crashes
            raise DiveError(f"{option} must be an integer in {least}..{most}, got {value!r}",
                            param=option)
    if not is_integer(seed) or not 0 <= seed <= MAX_INT:  # 2**31 built seed 0's index
        raise DiveError(f"seed must be an integer in 0..{MAX_INT} (FAISS's k-means takes a C "
                        f"int), got {seed!r}")
    # as Python ints: FAISS's SWIG wrappers refuse numpy integers with a TypeError
    hnsw_m, ef_construction, ef_search = int(hnsw_m), int(ef_construction), int(ef_search)
    faiss = _import_faiss()
    if quantizer is not None and not isinstance(quantizer, Quantizer):
        raise DiveError(f"quantizer is {kind_of(quantizer)}; expected the Quantizer of the "
                        "model's precision (its runtime's `quantizer`), or None")
    codes = quantizer if quantizer is not None and quantizer.precision != "float32" else None
    if kind != "flat" and codes is not None:
        raise DiveError(f"a {kind} index holds float32 vectors; {codes.precision} codes go "
                        "into the exact flat index")
    if kind != "flat" and product is not None:
        raise DiveError(f"a {kind} index holds float32 vectors; OPQ codes are searched "
                        "exactly (one index kind at a time)")
    what = "compressed codes" if codes is not None else "compressed vectors"
    blocks: Iterable[Any] = [compressed] if _one_block(compressed) else compressed
    index: Any = None
    n = 0
    if product is not None:  # trained on every row: the blocks are joined
        parts: list[np.ndarray] = []
        for block in blocks:
            parts.append(_checked_rows(block, n, None, what))
            n += parts[-1].shape[0]
        row_ids = _ids(ids, n, what)
        x = np.concatenate(parts)
        stage = f"opq{product}"
        built = product_index(stage, x, seed)
        logger.info("built %s index: %d vectors of dimension %d", stage, *x.shape)
        return SearchIndex(built.index, row_ids, model_sha256, stage)
    for block in blocks:
        rows = _checked_rows(block, n, codes, what)
        if index is None:
            d = rows.shape[1] if codes is None else codes.dim
            index = _empty_index(faiss, kind, d, codes, hnsw_m, ef_construction, ef_search)
        elif codes is None and rows.shape[1] != index.d:
            raise DataError(f"compressed vectors: a block of dimension {rows.shape[1]} after "
                            f"{n} rows of dimension {index.d}")
        _add(index, rows, codes)
        n += rows.shape[0]
    row_ids = _ids(ids, n, what)
    if codes is None:
        logger.info("built %s index: %d vectors of dimension %d", kind, n, index.d)
        return SearchIndex(index, row_ids, model_sha256)
    logger.info("built %s index: %d vectors of dimension %d", codes.precision, n, codes.dim)
    return SearchIndex(index, row_ids, model_sha256, codes.precision, codes.dim)


def _ids(ids: Sequence[str] | None, n: int, what: str) -> list[str]:
    """The ids of `n` indexed rows (default: the row numbers); no rows is an error."""
    if n == 0:
        raise DataError(f"{what}: empty (0 rows); nothing to index")
    return _check_ids(ids if ids is not None else range(n), n, "ids")


def _one_block(compressed: object) -> bool:
    """Whether `compressed` is one block of rows (an array, a tensor, a list of rows), not an
    iterable of blocks: iterating a 2-d tensor or a list of rows would take each row for a
    block."""
    if isinstance(compressed, np.ndarray) or hasattr(compressed, "__array__"):
        return True
    return (isinstance(compressed, (list, tuple)) and len(compressed) > 0
            and np.ndim(compressed[0]) == 1)


def _checked_rows(block: np.ndarray, offset: int, codes: Quantizer | None,
                  what: str) -> np.ndarray:
    """One block of vectors or codes, checked; a bad row is named by its row over all blocks."""
    try:
        if codes is not None:
            return codes.check_codes(block, name=what)
        block = as_array(block, name=what)  # a tensor or a list of rows too
        check_floating(block, name=what)  # int8 codes need their quantizer
        if block.dtype == np.float16:
            # a float16 model's codes: without their quantizer they were indexed as float32
            # (twice the bytes) under "precision": "float32" beside the model's checksum
            raise DataError(f"{what}: float16, as a float16 model outputs; pass its quantizer "
                            "(quantizer=model.fitted_runtime().quantizer) to index them as "
                            "float16, or float32 vectors for a float32 index")
        return as_embeddings(block, name=what)
    except BadRowError as exc:
        raise BadRowError(what, offset + exc.row, exc.problem) from None


def _empty_index(faiss: Any, kind: IndexKind, d: int, codes: Quantizer | None, hnsw_m: int,
                 ef_construction: int, ef_search: int) -> Any:
    """The empty FAISS index for float32 vectors of dimension `d` (flat or HNSW), or the one
    storing `codes` byte for byte (see the module doc)."""
    if codes is None:
        if kind == "flat":
            return faiss.IndexFlatIP(d)
        index = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
        return index
    if codes.precision == "binary":
        return faiss.IndexBinaryFlat(8 * codes.code_width)  # padding bits are 0 in all
    if codes.precision == "float16":
        return faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_fp16,
                                          faiss.METRIC_INNER_PRODUCT)
    assert codes.low is not None and codes.width is not None
    index = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit,
                                       faiss.METRIC_INNER_PRODUCT)
    # FAISS's 8-bit ranges are (vmin, vdiff) per dimension: the model's (low, width).
    faiss.copy_array_to_vector(np.concatenate([codes.low, codes.width]), index.sq.trained)
    index.is_trained = True
    return index


def _add(index: Any, rows: np.ndarray, codes: Quantizer | None) -> None:
    if codes is None or codes.precision == "binary":
        index.add(rows)
    else:
        index.add_sa_codes(_scalar_bytes(rows, codes.precision))


def _scalar_bytes(codes: np.ndarray, precision: str) -> np.ndarray:
    """The bytes FAISS's scalar quantizer holds for float16 or int8 `codes` (n, d): the
    half floats' own, or an int8 code c as byte c + 128."""
    raw = np.ascontiguousarray(codes).view(np.uint8)
    return raw if precision == "float16" else raw ^ np.uint8(0x80)


def save_index(index: SearchIndex, file: str | os.PathLike[str], *,
               overwrite: bool = False) -> Path:
    """Write the index to `file`, its ids to `<file>.ids.txt` and the identity of its
    compressor (if known) to `<file>.meta.json`, each atomically.

    Only an index dive saved (`is_index_file`) is ever replaced (anything else raises
    `DiveError`), and that only with `overwrite`; `overwrite=False` keeps even one a
    concurrent run saved meanwhile, and its sidecars are then left alone too. A sidecar path
    in use is only ever replaced with the index it belongs to (`check_index_output`).
    """
    _check_index(index, "save_index")
    target = as_path(file, "save_index: file")
    try:
        check_index_output(target, overwrite=overwrite)
    except DiveError:
        if not target.parent.is_dir():
            raise
        # Another run's save half in place (its sidecars, not yet its index) reads as one that
        # was killed, or as foreign files: look again once it is done, under its lock.
        with locked(target):
            check_index_output(target, overwrite=overwrite)
    ids = _check_ids(index.ids, len(index), "ids")
    ids_text = "".join(f"{i}\n" for i in ids).encode("utf-8")
    written: list[str] = []  # the index's SHA-256, once written

    def write_index(handle: IO[bytes]) -> None:
        written.append(_write_faiss(index, handle))

    def write_meta(handle: IO[bytes]) -> None:
        # Always rewritten: an old identity or precision would no longer be true. The digests
        # tie the meta to the index and ids saved with it.
        meta = {"format": META_FORMAT, "model_sha256": index.model_sha256,
                "precision": index.precision, "dim": index.dim,
                "index_sha256": written[0], "ids_sha256": _sha256(ids_text)}
        handle.write((json.dumps(meta, sort_keys=True) + "\n").encode("utf-8"))

    sidecars = [(ids_path(target), lambda handle: handle.write(ids_text)),
                (meta_path(target), write_meta)]
    # Under the folder's lock, so two runs that replace the same index cannot interleave
    # their renames into one's index beside the other's ids, and `load_index` opens the files
    # of one save (`_open_saved`), never an index whose ids are not beside it yet.
    with locked(target):
        check_index_output(target, overwrite=overwrite)  # again: a run saved meanwhile?
        if overwrite and is_index_file(target):
            # The meta is renamed last: a crash before leaves the old one, whose digests
            # load_index finds do not match the new index (or ids).
            _write_all([(target, write_index), *sidecars], output=True)
            return target
        # The index is written first (the meta holds its digest) and put in place last, as
        # the claim, which never replaces a file another writer put there meanwhile. The meta
        # goes in place first, then the ids: a save killed before its index is placed leaves
        # a dive meta naming an index that is not there, which a save with `overwrite`
        # replaces (`_unfinished_save`); the index placed first, as before, left a FAISS file
        # that no save could tell from a user's own. A save that fails or is stopped takes
        # back the sidecars it placed: left alone, they made every later save refuse the path.
        placed: dict[Path, int] = {}  # what this run put in place, by inode
        try:
            with atomic_open(target, "wb", overwrite=False, output=True) as handle:
                write_index(handle)
                _write_all([(path, _noting_inode(path, write, placed))
                            for path, write in reversed(sidecars)], output=False)
        except BaseException as exc:
            if written_before(exc):  # stopped once the index was placed: the save is whole
                raise
            for path, inode in placed.items():  # never a file another run put there since
                with contextlib.suppress(OSError):
                    if path.stat().st_ino == inode:
                        path.unlink()
            raise
    return target


def _noting_inode(path: Path, write: Callable[[IO[bytes]], object],
                  placed: dict[Path, int]) -> Callable[[IO[bytes]], object]:
    """`write`, noting the inode of the file it writes (the temporary file that becomes
    `path`) in `placed`."""

    def noted(handle: IO[bytes]) -> object:
        placed[path] = os.fstat(handle.fileno()).st_ino
        return write(handle)

    return noted


def _write_faiss(index: SearchIndex, handle: IO[bytes]) -> str:
    """Write the FAISS index to `handle` a megabyte at a time (never a serialised copy of the
    whole index in memory); return the SHA-256 of what was written."""
    faiss = _import_faiss()
    digest = hashlib.sha256()

    def write(chunk: bytes) -> int:
        digest.update(chunk)
        return handle.write(chunk)

    write_faiss = faiss.write_index_binary if index.precision == "binary" else faiss.write_index
    write_faiss(index.index, faiss.PyCallbackIOWriter(write))
    return digest.hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_all(files: list[tuple[Path, Callable[[IO[bytes]], object]]], *,
               output: bool) -> None:
    """Write each file atomically: all to temporary names before any is renamed (so a bad
    path, a folder at one, leaves nothing behind), written and renamed in the order given,
    the renames as one step that Ctrl-C does not split (a new index beside the old meta,
    which then matched neither: the old index was lost). `output`: the files are the whole
    save (an interruption during the renames is marked written), not a new index's sidecars,
    placed before it."""
    with contextlib.ExitStack() as stack:
        # the stack renames the last entered first: entered in reverse, renamed in order
        handles = [stack.enter_context(atomic_open(path, "wb")) for path, _ in reversed(files)]
        for (_, write), handle in zip(files, reversed(handles), strict=True):
            write(handle)
        renames = stack.pop_all()
    with publishing() if output else uninterrupted():
        renames.close()


def _check_index(index: object, caller: str) -> None:
    if not isinstance(index, SearchIndex):
        raise DiveError(f"{caller}: index is {kind_of(index)}; expected a SearchIndex "
                        "(from build_index or load_index)")


def load_index(file: str | os.PathLike[str]) -> SearchIndex:
    """Read an index written by `save_index`, checking it against its ids file; its files
    as one save put them in place, even while another replaces them (`_open_saved`)."""
    path = as_path(file, "load_index: file")
    if not path.is_file():
        what = "a folder, not an index file" if path.is_dir() else "no such index file"
        raise DataError(f"{path}: {what}")
    sidecar = ids_path(path)
    with contextlib.ExitStack() as files:
        index_file, ids_file, meta_file = _open_saved(path, files)
        meta = _read_meta(meta_path(path), meta_file)
        # One read: the bytes checked against the meta's digest are the bytes deserialised.
        index, index_sha256 = _read_faiss(path, index_file, meta.precision == "binary")
        raw_ids = ids_file.read()
    model_sha256, precision, dim = meta.model_sha256, meta.precision, meta.dim
    binary = precision == "binary"
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
        of = f" of dimension {dim}" if dim is not None else ""  # not "of dimension None"
        said = (f"{meta_path(path).name} says {precision}{of}" if meta_file is not None else
                f"{meta_path(path).name}, which says its precision, is missing (a float32 index "
                "has none)")
        raise DataError(f"{path}: holds {stored.bytes_per_vector}-byte vectors of dimension "
                        f"{stored.dim}, but {said}")
    if meta.digests is None:  # an older dive's save, or one moved without its meta.json
        logger.warning("%s: its %s records no checksums (saved by an older dive, or copied "
                       "without it), so that its %s belongs to it is not checked; save the "
                       "index again (dive index) to check", path,
                       meta_path(path).name if meta_file is not None else "missing meta.json",
                       ids_path(path).name)
    elif meta.digests != (index_sha256, _sha256(raw_ids)):
        raise DataError(f"{path}: the index or its {IDS_SUFFIX} does not match "
                        f"{meta_path(path).name}, saved with them (a save that did not "
                        "finish?); save the index again")
    return stored


def _open_saved(path: Path,
                files: contextlib.ExitStack) -> tuple[IO[bytes], IO[bytes], IO[bytes] | None]:
    """The index file at `path`, its ids and its meta (None: it has none), opened together
    under the folder's lock, which a save holds while it puts them in place: read afterwards,
    however long that takes, they are the files of one save (a file replaced meanwhile is
    still read through its open handle). `files` closes them."""
    sidecar, meta = ids_path(path), meta_path(path)
    with locked(path):
        if not sidecar.is_file():
            raise DataError(f"{sidecar}: missing (the ids of {path.name}'s rows)")
        refuse_special_file(meta)  # a pipe waited for a writer
        opened = [files.enter_context(p.open("rb")) for p in (path, sidecar)]
        meta_file = files.enter_context(meta.open("rb")) if meta.exists() else None
    return opened[0], opened[1], meta_file


def _read_faiss(path: Path, handle: IO[bytes], binary: bool) -> tuple[Any, str]:
    """The FAISS index in `handle` (the file `path`), read a megabyte at a time (never a second
    copy of the whole file in memory), and the SHA-256 of the whole file (any bytes after the
    index too)."""
    faiss = _import_faiss()
    digest = hashlib.sha256()
    head = bytearray()  # the first bytes: FAISS's four-letter kind of index

    def read(size: int) -> bytes:
        chunk = handle.read(size)
        digest.update(chunk)
        if len(head) < 4:
            head.extend(chunk[: 4 - len(head)])
        return chunk

    read_faiss = faiss.read_index_binary if binary else faiss.read_index
    try:
        index = read_faiss(faiss.PyCallbackIOReader(read))
    except MemoryError:  # a damaged size field asks for more than there is
        raise DataError(f"{path}: not a readable FAISS index (it asks for more memory "
                        "than there is: damaged?)") from None
    except RuntimeError as exc:
        if not binary and head.startswith(b"IB"):  # FAISS's binary kinds: IBxF, IBHf, ...
            raise DataError(f"{path}: a binary index, read as a float one: its "
                            f"{meta_path(path).name}, which says its precision, is missing or "
                            "says otherwise") from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise DataError(f"{path}: not a readable FAISS index ({first})") from None
    while read(1 << 20):  # what follows the index counts in the digest too
        pass
    _check_kind(path, index, binary, faiss)
    return index, digest.hexdigest()


def _check_kind(path: Path, index: Any, binary: bool, faiss: Any) -> None:
    """`DataError` unless `index` is of a kind `build_index` makes, with vectors: another
    tool's index (an ID map, an L2 one) was a traceback, or scored by squared distance."""
    kinds = ((faiss.IndexBinaryFlat,) if binary else
             (faiss.IndexFlat, faiss.IndexHNSWFlat, faiss.IndexScalarQuantizer,
              faiss.IndexPreTransform))
    if not isinstance(index, kinds) or (
            not binary and index.metric_type != faiss.METRIC_INNER_PRODUCT):
        names = {faiss.METRIC_INNER_PRODUCT: "inner product", faiss.METRIC_L2: "L2"}
        metric = "" if binary else f" ({names.get(index.metric_type, 'another metric')})"
        raise DataError(f"{path}: a FAISS {type(index).__name__}{metric} is not an index dive "
                        "writes (inner-product flat, HNSW, scalar-quantized or OPQ, or "
                        "binary flat)")
    if index.ntotal == 0:
        raise DataError(f"{path}: holds no vectors")


def _value_bytes(precision: str) -> int:
    return {"float32": 4, "float16": 2, "int8": 1}.get(precision, 1)


@dataclass(frozen=True)
class _Meta:
    """What `<file>.meta.json` records."""

    model_sha256: str | None = None
    precision: str = "float32"
    dim: int | None = None
    digests: tuple[str, str] | None = None  # SHA-256 of (index, ids); None: older dive


def _read_meta(meta: Path, handle: IO[bytes] | None) -> _Meta:
    """The record of the sidecar `meta`, read from `handle`; an index without one (None) is
    float32."""
    if handle is None:
        return _Meta()
    try:
        text = handle.read().decode("utf-8-sig")  # an editor's byte-order mark, as elsewhere
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{meta}: not a readable JSON file ({exc})") from None
    data = parse_json(text, str(meta))
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
        logger.warning("%s: does not record which compressor built it (made by an older dive, "
                       "or by build_index without model_sha256); "
                       "cannot check that %s did; rebuild it with `dive index` to check",
                       file, model)
    elif index.model_sha256 != model_sha256:
        raise DataError(f"{file}: built by another compressor than {model} (the index holds "
                        f"vectors of model {index.model_sha256[:12]}, this one is "
                        f"{model_sha256[:12]}); search with the compressor that built it, or "
                        "rebuild the index")


def sample_rows(n: int, most: int = ROW_SAMPLE) -> np.ndarray:
    """Up to `most` distinct rows of `n` (int64, ascending), evenly spaced from the first to
    the last: the same rows every time, spread over the whole file."""
    return np.unique(np.linspace(0, n - 1, num=min(n, most)).round().astype(np.int64))


def check_stored_rows(index: SearchIndex, rows: np.ndarray, codes: np.ndarray, *,
                      name: str) -> None:
    """Refuse (`DataError` naming `name`, the first row that differs and its id) `codes`
    that are not what the index holds at `rows`: vectors meant to be the index's rows, in its
    order, but in another order or of another corpus.

    `codes` (len(rows), ...) are what `build_index` would take for those rows: the compressor's
    output at the index's precision (float32 for flat, HNSW and OPQ indexes). Both sides are
    decoded as the index decodes (`reconstruct`; binary: +-1 per bit; OPQ: `codes` through the
    index's own encoding and back) and compared by cosine: a row matches at `MATCH_COSINE` or
    more (binary codes: with 95% of their bits alike, or all but one). The same vector gives 1
    but for float rounding (an int8 code one step off at a bin edge, a sign bit of a value
    within rounding of 0, as a float16 copy of the corpus flips); another row gives
    what two documents' vectors do, around 0 for unrelated ones (binary: half the bits agree),
    so one row in its wrong place is enough to refuse. A pair that cannot be compared (FAISS
    cannot give the index's rows back, a zero vector) is not refused: it says nothing about
    the order. Only the given rows are read: rows swapped between them go unseen.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= len(index))):
        raise ValueError(f"rows must be a 1-d list of the index's rows (0 to {len(index) - 1})")
    precision = index.precision
    dtype, width = ((np.dtype(np.float32), index.dim) if is_product(precision) else
                    (np.dtype(CODE_DTYPES[precision]), code_width(check_precision(precision),
                                                                  index.dim)))
    arr = np.asarray(codes)
    if arr.shape != (len(rows), width) or arr.dtype != dtype:
        raise DataError(f"{name}: expected {len(rows)} {precision} codes of shape "
                        f"({len(rows)}, {width}) and dtype {dtype}, got shape {arr.shape} "
                        f"dtype {arr.dtype}")
    if rows.size == 0:
        return
    stored = _stored(index, rows)
    if stored is None:
        logger.warning("%s: FAISS cannot give back the rows of this %s index, so %s is not "
                       "checked to hold its rows in its order", name, precision, name)
        return
    expected = _decoded(index, arr)
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero vector: NaN, not refused
        cosine = np.einsum("ij,ij->i", stored, expected) / (
            np.linalg.norm(stored, axis=1) * np.linalg.norm(expected, axis=1))
    bar = MATCH_COSINE
    if precision == "binary":  # one flipped bit (cosine 1 - 2/d) passes at any d
        bar = min(bar, 1 - 2.5 / index.dim)
    wrong = np.flatnonzero(cosine < bar)
    if wrong.size == 0:
        return
    first = int(wrong[0])
    row, agree = int(rows[first]), float(cosine[first])
    measure = (f"{(1 + agree) / 2:.0%} of their bits agree, under {(1 + bar) / 2:.0%}"
               if precision == "binary" else
               f"cosine {agree:.2f} between their {precision} codes, under {MATCH_COSINE}")
    unknown = (" (or the index, which does not record its compressor, holds another "
               "compressor's vectors)" if index.model_sha256 is None else "")
    raise DataError(f"{name}: row {row} is not the vector the index holds for "
                    f"{index.ids[row]!r} ({measure}): its rows are in another order, or of "
                    f"another corpus{unknown}; rescore with the vectors the index was built "
                    "from, in its order")


def _stored(index: SearchIndex, rows: np.ndarray) -> np.ndarray | None:
    """The vectors the index holds at `rows`, decoded (binary: +-1 per bit); None when FAISS
    cannot give them back."""
    try:
        stored = np.stack([index.index.reconstruct(int(row)) for row in rows])
    except RuntimeError:  # an index kind without reconstruct: nothing to compare
        return None
    return _signs(stored, index.dim) if index.precision == "binary" else stored


def _decoded(index: SearchIndex, codes: np.ndarray) -> np.ndarray:
    """The vectors `codes` (as `build_index` takes them) stand for in this index."""
    precision, faiss_index = index.precision, index.index
    if precision == "binary":
        return _signs(codes, index.dim)
    if is_product(precision):
        vectors = np.ascontiguousarray(codes, dtype=np.float32)
        return np.asarray(faiss_index.sa_decode(faiss_index.sa_encode(vectors)))
    if precision in ("float16", "int8"):
        return np.asarray(faiss_index.sa_decode(_scalar_bytes(codes, precision)))
    return np.asarray(codes, dtype=np.float32)


def _signs(bits: np.ndarray, dim: int) -> np.ndarray:
    """+-1 float32 (n, dim) of packed sign bits."""
    return np.unpackbits(bits, axis=1, count=dim).astype(np.float32) * 2 - 1


def search_index(
    index: SearchIndex, queries: np.ndarray, k: int = 10, *, model_sha256: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k rows of every query: (rows int64 (m, k'), scores float32 (m, k')), best first.

    k' = min(k, len(index)). HNSW may return fewer than k' hits for a query; the missing
    slots hold row -1 and score -inf. `queries` are the float32 compressed vectors whatever the
    index's precision; a binary index scores d - 2 * Hamming distance of their sign bits.
    With `model_sha256` (`dive.compressors.runtime.runtime_digest` of the compressor that made the
    queries), an index built by another compressor is refused, as `dive search` refuses it.
    """
    if not is_integer(k) or k < 1:
        raise DiveError(f"search: k must be an integer >= 1, got {k!r}")
    _check_index(index, "search_index")
    if model_sha256 is not None:
        check_index_model(index, "search_index: the index", model_sha256,
                          "the compressor of model_sha256")
    check_floating(queries, name="queries")
    q = as_embeddings(queries, name="queries", dim=index.dim)
    kk = min(int(k), len(index))  # FAISS's SWIG wrapper refuses a numpy integer
    if index.precision == "binary":
        hamming, rows = index.index.search(np.packbits(q > 0, axis=1), kk)
        scores = (index.dim - 2 * hamming).astype(np.float32)
    else:
        scores, rows = index.index.search(q, kk)
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    scores[rows < 0] = -np.inf
    return rows, scores
