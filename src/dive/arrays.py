"""Checks and conversions for embedding matrices at the public boundary.

Public functions take and return float32, C-contiguous (n, d) arrays; they convert and check
once, here, so the rest of the code can trust its inputs. Inputs documented as L2-normalised
go through `as_unit_rows`, which rescales only rows whose norm is off by more than
`UNIT_NORM_TOLERANCE` (so unit rows pass through bit for bit) and rejects rows that cannot be
normalised. `is_integer` and `positive_integer` are the integer checks public functions
share: a numpy integer counts, a bool does not.
"""

from __future__ import annotations

import mmap
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any, TypeGuard

import numpy as np

from dive._io import refuse_special_file
from dive.errors import DataError, DiveError

# float32 norms of unit vectors sit within ~1e-6 of 1; 1e-3 only catches real mistakes.
UNIT_NORM_TOLERANCE = 1e-3
RESCALE_BLOCK = 4096  # rows `as_unit_rows` rescales at a time (two float64 copies of them)


class ArrayFields:
    """`==` for a dataclass holding numpy arrays (declared with `eq=False`): the same type,
    and every field equal, arrays by dtype, shape and values. The generated `==` asked numpy
    for the truth of a whole array (a ValueError comparing a runtime with its own copy).
    Unhashable, as its arrays are."""

    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name))
                   for f in fields(self))  # type: ignore[arg-type]


def _same(x: object, y: object) -> bool:
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return (isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and x.dtype == y.dtype
                and np.array_equal(x, y))
    return bool(x == y)


class BadRowError(DataError):
    """A row that breaks a check; `row` and `problem` let a caller re-word the location."""

    def __init__(self, name: str, row: int, problem: str) -> None:
        super().__init__(f"{name}: row {row} {problem}")
        self.row, self.problem = row, problem


def is_integer(value: object) -> TypeGuard[int | np.integer[Any]]:
    """Whether `value` is a Python or numpy integer, and not a bool (which `int()` would take
    as 0 or 1 without a word)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


# The seeds numpy's and torch's generators both take: 0..2**63-1.
SEED_LIMIT = 2**63
# An integer as text, in ASCII digits: int() also reads "1_0" as 10 and other scripts' digits.
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")


def is_integer_text(text: str) -> bool:
    """Whether `text` is an integer written in ASCII digits (an optional sign, no spaces)."""
    return _INTEGER_TEXT.fullmatch(text) is not None


def readable(text: str) -> str:
    """`text` with what Python keeps of undecodable bytes (lone surrogates: a file name's byte
    of another encoding, or any non-ASCII byte under LC_ALL=C without UTF-8 mode) read back as
    UTF-8, a byte that is not UTF-8 as its escape (`\\xe9`): a name fit for a JSON report, a
    plot title or a comparison with the same name typed in another locale, where names of
    other bytes stay apart (as U+FFFD, `caf\\xe9` and `caf\\xe8` were one dataset; only a name
    typed with that escape's four characters reads the same). Valid text is returned as is."""
    if is_utf8(text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def decoded(text: str) -> str:
    """`text` with its undecodable bytes (lone surrogates, as Python keeps a non-ASCII name
    under LC_ALL=C without UTF-8 mode) read as UTF-8 when they are UTF-8, so the name is the
    one a UTF-8 interpreter reads; otherwise as is (the bytes a results file keeps, where
    `readable` is the name a report shows)."""
    if is_utf8(text):
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8")
    except UnicodeError:
        return text


def is_blank(text: str) -> bool:
    """Whether `text` holds nothing a tokenizer keeps: only spaces, control and format
    characters (a zero-width space, NUL), which BERT-style tokenizers drop, so that it
    embeds as the empty string."""
    return all(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in text)


def is_utf8(text: str) -> bool:
    """Whether `text` encodes as UTF-8: not with a lone surrogate (half of a character, or a
    byte the locale could not decode, as Python keeps it from a command line)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def positive_integer(value: object, name: str) -> int:
    """`value` as a Python int (a numpy one is recorded as plain), if it is an integer >= 1;
    else `DiveError("<name> must be a positive integer, got <value>")`."""
    if not is_integer(value) or value < 1:
        raise DiveError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def as_array(x: object, *, name: str) -> np.ndarray:
    """`np.asarray(x)`, or `DataError` naming `name` where numpy cannot make one array of it:
    rows of different lengths (`[[0.1] * 64, [0.1] * 63]`) were numpy's ValueError."""
    try:
        return np.asarray(x)
    except (ValueError, TypeError, RuntimeError) as exc:
        # TypeError, RuntimeError: a torch tensor numpy cannot take (bfloat16, one that
        # requires grad: detach it)
        why = ("its rows have different lengths" if "inhomogeneous" in str(exc)
               else str(exc).splitlines()[0])
        raise DataError(f"{name}: not one (n, dim) array: {why}") from None


def check_floating(x: object, *, name: str) -> None:
    """Raise `DataError` naming `name` unless `x` holds floating-point values: integer or bool
    "embeddings" (token ids, int8 codes, a mask) would otherwise be cast and compressed
    without a word. For the compressor contract's inputs; `as_embeddings` takes any number."""
    dtype = as_array(x, name=name).dtype
    if dtype.kind != "f":
        raise DataError(f"{name}: expected float embeddings, got dtype {dtype}")


def check_matrix_shape(shape: tuple[int, ...], *, name: str) -> None:
    """Raise `DataError` naming `name` and `shape` unless it is 2-d (n, dim): every file and
    array of vectors read here is one, a single vector included, which is (1, dim). A 1-d
    array is refused rather than read as one vector: it may as well be a flattened matrix,
    and a compressed file would then not have its input's shape."""
    if len(shape) != 2:
        hint = f" (one vector is shape (1, {shape[0]}))" if len(shape) == 1 else ""
        raise DataError(f"{name}: expected a 2-d (n, dim) array, got shape {shape}{hint}")
    if shape[1] == 0:  # each row then had "norm 0", blamed on row 0
        raise DataError(f"{name}: the vectors have dimension 0 (shape {shape})")


def load_npy(path: str | os.PathLike[str], *, mmap: bool = False) -> np.ndarray:
    """The one array in the `.npy` file `path` (memory-mapped read-only with `mmap`).

    Anything else is a `DataError` naming the file: a file without the `.npy` header says so
    (numpy's own text would speak of pickles), a truncated one gives numpy's reason, an
    `.npz` archive is named as one, and one whose header asks for more memory than there is
    says so. A missing file or a folder raises its `OSError` as is.
    """
    refuse_special_file(path)  # a pipe's header was read, then looked for again: "no header"
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (OSError, ValueError, EOFError) as exc:
        with open(path, "rb") as handle:
            header = handle.read(6) == b"\x93NUMPY"
        reason = exc if header else "no .npy header"
        raise DataError(f"{path}: not a readable .npy array ({reason})") from None
    except MemoryError as exc:  # a damaged header's shape, or an array larger than memory
        raise DataError(f"{path}: cannot be read into memory ({exc}); is its header "
                        "damaged?") from None
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise DataError(f"{path}: not a readable .npy array (an .npz archive of several)")
    offset = _npy_data_offset(path)
    extra = 0 if offset is None else os.stat(path).st_size - offset - arr.nbytes
    if extra > 0:  # numpy reads the rows the header declares and says nothing of the rest
        raise DataError(trailing_bytes_message(path, arr.shape, extra))
    return arr


def _npy_data_offset(path: str | os.PathLike[str]) -> int | None:
    """Where the data of the `.npy` file `path` (whose header numpy read) starts: after the
    magic string, the version, the header's length (2 bytes in version 1, 4 in versions 2
    and 3) and the header; None for a version numpy does not write."""
    with open(path, "rb") as handle:
        start = handle.read(12)
    length_bytes = {1: 2, 2: 4, 3: 4}.get(start[6]) if len(start) == 12 else None
    if length_bytes is None:
        return None
    return 8 + length_bytes + int.from_bytes(start[8:8 + length_bytes], "little")


def trailing_bytes_message(path: str | os.PathLike[str], shape: tuple[int, ...],
                           extra: int) -> str:
    """The error for `extra` bytes past the array of `shape` an `.npy` header declares: rows
    appended without the header being updated, which numpy's readers leave out unread."""
    return (f"{path}: {extra} bytes follow the {shape} array its header declares (rows "
            "appended without updating the header?), which would be left out unread")


def row_blocks(arr: np.ndarray, rows: int = 65536) -> Iterator[np.ndarray]:
    """`arr` (n, ...) a block of `rows` rows at a time.

    A block of an array read through a memory map (`np.memmap`, or an array viewing one, as
    `np.ascontiguousarray` returns) is a copy, and the map's pages under it are released from
    the process once it is copied (`madvise(MADV_DONTNEED)`: the kernel keeps them in its page
    cache), so reading a mapped corpus does not leave all of it in the process's resident set.
    A copy-on-write map (`mmap_mode="c"`) keeps its pages: there they hold the caller's edits,
    which releasing them would throw away (the next read sees the file again). The map keeps
    reading the file that was opened, even if another replaces it meanwhile, and a file
    shortened since it was opened is a `DataError`, not a bus error.
    """
    mapped = _Mapped.of(arr)
    for start in range(0, arr.shape[0], rows):
        view = arr[start : start + rows]
        if mapped is None:
            yield view
            continue
        mapped.check(view)
        block = np.array(view)
        mapped.release(view)
        yield block


@dataclass(frozen=True)
class _Mapped:
    """The memory map under a C-order array, to check and release the bytes of its rows."""

    mm: mmap.mmap
    address: int  # where the map starts in memory
    file_offset: int  # the file offset the map starts at
    filename: str
    private: bool  # copy-on-write: its pages may hold edits the file does not

    @classmethod
    def of(cls, arr: np.ndarray) -> _Mapped | None:
        if not arr.flags.c_contiguous or not hasattr(mmap, "MADV_DONTNEED"):  # (Windows)
            return None
        base: object = arr
        while isinstance(base, np.ndarray):
            if isinstance(base, np.memmap) and isinstance(base.base, mmap.mmap):
                # np.memmap maps from the allocation boundary at or below the array's offset
                lead = base.offset % mmap.ALLOCATIONGRANULARITY
                return cls(base.base, base.ctypes.data - lead, base.offset - lead,
                           str(base.filename), base.mode == "c")
            base = base.base
        return None

    def _span(self, view: np.ndarray) -> tuple[int, int]:
        start = view.ctypes.data - self.address
        return start, start + view.nbytes

    def check(self, view: np.ndarray) -> None:
        size = self.mm.size()  # the opened file's size now
        if self.file_offset + self._span(view)[1] > size:
            raise DataError(f"{self.filename}: now holds {size} bytes, fewer than when it was "
                            "opened (changed while being read?)")

    def release(self, view: np.ndarray) -> None:
        if self.private:
            return
        start, end = self._span(view)
        start -= start % mmap.PAGESIZE
        self.mm.madvise(mmap.MADV_DONTNEED, start, min(end, len(self.mm)) - start)


def to_float32(x: np.ndarray) -> np.ndarray:
    """`x` as C-contiguous float32; a value beyond float32's range becomes inf quietly (no
    numpy overflow warning): the caller's row check names it."""
    with np.errstate(over="ignore"):
        return np.ascontiguousarray(x, dtype=np.float32)


def as_embeddings(x: object, *, name: str = "embeddings", dim: int | None = None) -> np.ndarray:
    """Return `x` as a float32 C-contiguous (n, d) array, or raise `DataError` naming `name`.

    Rejects non-numeric dtypes, wrong rank, a dimension other than `dim` and NaN/inf rows
    (reporting the first offending row).
    """
    arr = as_array(x, name=name)
    if arr.dtype.kind not in "fiu":
        raise DataError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    check_matrix_shape(arr.shape, name=name)
    if dim is not None and arr.shape[1] != dim:
        raise DataError(f"{name}: expected dimension {dim}, got {arr.shape[1]}")
    wide = arr
    arr = to_float32(arr)  # a value beyond float32 is named below
    row = _first_non_finite_row(arr)
    if row is not None:
        raise BadRowError(name, row, non_finite_problem(wide[row]))
    return arr


BEYOND_FLOAT32 = "has a value beyond float32's range (about 3.4e38)"
BELOW_FLOAT32 = ("has only values below float32's smallest (about 1.4e-45), which read as all "
                 "zeros; scale the rows (L2-normalise them) before saving")


def non_finite_problem(wide_row: np.ndarray) -> str:
    """What is wrong with a row that is not finite as float32, from its values as read
    (`wide_row`, float64 say): NaN or inf there, or a finite value float32 cannot hold."""
    return BEYOND_FLOAT32 if np.isfinite(wide_row).all() else "contains NaN or inf"


FINITE_BLOCK = 1 << 22  # values checked at a time: a corpus-sized mask took n x d bytes


def _first_non_finite_row(arr: np.ndarray) -> int | None:
    """The first row of the 2-d `arr` holding NaN or inf, checked in blocks (None: none)."""
    step = max(1, FINITE_BLOCK // max(1, arr.shape[1]))
    for start in range(0, arr.shape[0], step):
        finite = np.isfinite(arr[start : start + step]).all(axis=1)
        if not finite.all():
            return start + int(np.flatnonzero(~finite)[0])
    return None


def _norms64(arr: np.ndarray) -> np.ndarray:
    """Each row's L2 norm, summed in float64 a block of rows at a time: the test of which rows
    are off unit norm, made as the ONNX graph and the torch module make it (a float32 sum
    decided otherwise for rows within float32's rounding of 1 +- the tolerance)."""
    wide = (block.astype(np.float64) for block in row_blocks(arr, RESCALE_BLOCK))
    norms = [np.sqrt(np.einsum("ij,ij->i", block, block)) for block in wide]
    return np.concatenate(norms) if norms else np.zeros(0)


def as_unit_rows(x: object, *, name: str = "embeddings", dim: int | None = None) -> np.ndarray:
    """`as_embeddings`, then rows of norm off 1 by more than `UNIT_NORM_TOLERANCE` rescaled.

    Rows already of unit norm are returned unchanged (no copy when none needs rescaling).
    Raises `BadRowError` for a zero row or one whose rescaled values are not finite.
    """
    arr = as_embeddings(x, name=name, dim=dim)
    off = np.flatnonzero(np.abs(_norms64(arr) - 1) > UNIT_NORM_TOLERANCE)
    if off.size == 0:
        return arr
    # Never write into the caller's memory (an array, a torch tensor, a memoryview: any
    # buffer that np.asarray reads without a copy).
    out = arr.copy() if np.may_share_memory(arr, np.asarray(x)) else arr
    given = as_array(x, name=name)
    # from the values as given, in float64: no overflow for rows scaled by 1e30, and a float64
    # row of 1e-50s, all zeros in float32, still has its direction; a block of rows at a time,
    # so a chunk of rows none of unit norm costs a block's float64 copies, not the chunk's
    for start in range(0, off.size, RESCALE_BLOCK):
        block = off[start:start + RESCALE_BLOCK]
        rows = given[block].astype(np.float64)
        # divided by its largest value first: the squares of a row of 1e-200s underflow to 0
        peaks = np.abs(rows).max(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            rows /= peaks
            norms = np.linalg.norm(rows, axis=1, keepdims=True)
            scaled = (rows / norms).astype(np.float32)
        bad = (peaks[:, 0] == 0) | ~np.isfinite(scaled).all(axis=1)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            norm = peaks[first, 0] * norms[first, 0] if peaks[first, 0] else 0.0
            raise BadRowError(name, int(block[first]), f"has norm {norm:.6g} and "
                              "cannot be L2-normalised")
        out[block] = scaled
    return out


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, eps)).astype(np.float32, copy=False)
