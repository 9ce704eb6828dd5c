"""Anchors: what a user would run instead of dive, scored in the same grid at equal bytes.

An anchor is the index another tool builds from the full corpus embeddings, searched exactly
as that tool searches it; it is not a compressor (product-quantization codes are no linear
map, so they cannot be a `Runtime`), so the evaluator builds it, searches it and records it
like any method's row, with the bytes its index stores per vector. FAISS and
sentence-transformers do the work; nothing here re-implements them.

| anchor | index | bytes per vector |
|---|---|---|
| `faiss-pq:M` | `index_factory(D, "PQ{M}np")`: M sub-quantizers of 8 bits | M |
| `faiss-opq:M` | `"OPQ{M},PQ{M}np"`: a learned rotation, then PQ | M |
| `faiss-pca-sq8` | `"PCA{d},L2norm,SQ8"` at each d of the grid | d |
| `faiss-pca-sq4` | `"PCA{d},L2norm,SQ4"` | ceil(d/2) |
| `st-int8` | `quantize_embeddings(.., "int8", calibration_embeddings=corpus)` | D |
| `st-binary` | `quantize_embeddings(.., "ubinary")` in `IndexBinaryFlat` | ceil(D/8) |

Every index uses the inner product and is trained on the corpus embeddings (FAISS's `np`
suffix turns off polysemous training, which only serves Hamming pre-filtering and takes minutes).
The PCA anchors normalise after the projection (`L2norm`), the stronger FAISS recipe for
cosine embeddings (SciFact 96-d SQ8: 0.594 nDCG@10 against 0.561 without). `st-int8`
follows sentence-transformers' int8 search (`semantic_search_usearch`): queries are quantized
with the corpus ranges too and ranked by the inner product of the int8 codes, which FAISS holds
as they are (`QT_8bit_direct_signed`, one byte each). `st-binary` ranks by Hamming distance
(scored d - 2 x Hamming, as dive's binary). PQ and OPQ depend on the seed (k-means
initialisation); FAISS's warning about fewer than 39 training points per centroid is silenced,
since the corpus is all a user has, but their k-means needs a corpus row per centroid (256 per
8-bit code): fewer rows are refused before FAISS, in one line naming the caller's index
(`Anchor.build(what=...)`), and by the grid before its first run (`Anchor.check_rows`), as are
fewer rows than the d a PCA anchor projects to. Left out: IVF and HNSW (approximate) indexes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from dive.compressors.precision import bytes_per_vector as float_bytes
from dive.errors import DataError, DiveError

logger = logging.getLogger(__name__)

Family = Literal["faiss-pq", "faiss-opq", "faiss-pca-sq8", "faiss-pca-sq4", "st-int8",
                 "st-binary"]
FAMILIES: tuple[Family, ...] = get_args(Family)
SIZED: tuple[Family, ...] = ("faiss-pq", "faiss-opq")  # take M, the bytes per vector
PER_DIM: tuple[Family, ...] = ("faiss-pca-sq8", "faiss-pca-sq4")  # run at every d of the grid
# What the first stage stores, as a record's `precision` (`dive.evaluate.records.CODES`).
CODE_OF: dict[Family, str] = {"faiss-pq": "pq", "faiss-opq": "pq", "faiss-pca-sq8": "int8",
                              "faiss-pca-sq4": "int4", "st-int8": "int8", "st-binary": "binary"}
_SPEC = re.compile(r"^(?P<family>[a-z0-9-]+)(?::(?P<m>\d+))?$")
PQ_BITS = 8
PQ_CENTROIDS = 2**PQ_BITS  # k-means centroids per sub-quantizer: FAISS needs a row for each


def is_anchor(method: str) -> bool:
    """Whether a results row's method names an anchor (`faiss-pq:16`, `st-int8@...`)."""
    return method.split("@", 1)[0].split(":", 1)[0] in FAMILIES


@dataclass(frozen=True)
class Anchor:
    """One anchor configuration: a family and, for PQ/OPQ, its sub-quantizers M (bytes)."""

    family: Family
    m: int | None = None

    @property
    def name(self) -> str:
        """The results row's method: `faiss-pq:16`, `faiss-pca-sq8`, `st-int8`."""
        return self.family if self.m is None else f"{self.family}:{self.m}"

    @property
    def full_dim(self) -> bool:
        """Whether it encodes the full D-dim vectors (else it runs at each d of the grid)."""
        return self.family not in PER_DIM

    @property
    def code(self) -> str:
        return CODE_OF[self.family]

    def bytes_per_vector(self, full_dim: int, dim: int) -> int:
        """What its index stores per vector (the table in the module doc)."""
        if self.m is not None:
            return self.m
        if self.family == "st-binary":
            return -(-full_dim // 8)
        size = full_dim if self.full_dim else dim
        return -(-size // 2) if self.code == "int4" else size

    def fields(self, rescore: int, bytes_per_vector: int, full_dim: int) -> dict[str, Any]:
        """The record fields of its first stage, as `dive.evaluate.funnel.Variant.fields`
        gives a method's: the code as `precision`, and when rescoring, the full embeddings."""
        out: dict[str, Any] = {"precision": self.code, "rescore": rescore,
                               "bytes_per_vector": bytes_per_vector}
        if rescore:
            out.update(rescore_with="full",
                       rescore_bytes_per_vector=float_bytes("float32", full_dim))
        return out

    def factory(self, dim: int) -> str | None:
        """The FAISS `index_factory` string (None: built from sentence-transformers codes)."""
        if self.family == "faiss-pq":
            return f"PQ{self.m}np"
        if self.family == "faiss-opq":
            return f"OPQ{self.m},PQ{self.m}np"
        if self.family in PER_DIM:
            return f"PCA{dim},L2norm,SQ{self.family[-1]}"
        return None

    def check_dim(self, full_dim: int, dim: int) -> None:
        """DataError when the anchor cannot encode `full_dim`-dim vectors at `dim`."""
        if self.m is not None and full_dim % self.m:
            raise DataError(f"anchor {self.name}: {self.m} sub-quantizers do not divide the "
                            f"embedding dimension {full_dim}")
        if dim > full_dim:
            raise DataError(f"anchor {self.name}: d={dim} exceeds the embedding dimension "
                            f"{full_dim}")

    def check_rows(self, n: int, full_dim: int, dim: int, *, what: str | None = None) -> None:
        """DataError naming `what` (default `anchor NAME`) unless `n` corpus rows of
        `full_dim`-dim vectors can train its index at `dim`: PQ or OPQ codes
        (`check_pq_rows`), or a PCA to `dim` dimensions, which needs a row per dimension;
        `build` checks it, and the grid before its first run."""
        label = what or f"anchor {self.name}"
        if self.family in SIZED:
            check_pq_rows(n, label, rotated_width=full_dim if self.family == "faiss-opq" else None)
        elif self.family in PER_DIM and n < dim:
            raise DataError(f"{label}: FAISS PCA training to d={dim} needs at least {dim} corpus "
                            f"rows (one per output dimension), got {n}")

    def build(self, corpus: np.ndarray, dim: int, seed: int = 0, *,
              what: str | None = None) -> AnchorIndex:
        """Train the anchor's index on `corpus` (n, D) float32 and add every row.

        `what` names the index in errors (default `anchor NAME`), for callers that build it
        as something else (`dive.evaluate.product`'s `opq{M}` stage, `dive index --opq`).
        """
        full = corpus.shape[1]
        label = what or f"anchor {self.name}"
        self.check_dim(full, dim)
        self.check_rows(corpus.shape[0], full, dim, what=label)
        if self.family == "st-int8":
            return _st_int8(corpus)
        if self.family == "st-binary":
            return _st_binary(corpus)
        faiss = import_faiss()
        factory = self.factory(dim)
        index = faiss.index_factory(full, factory, faiss.METRIC_INNER_PRODUCT)
        keep = _seed_pq(faiss, index, seed)
        try:
            index.train(corpus)
        except RuntimeError as exc:
            # FAISS prefixes its reason with the C++ function and source line: keep the reason.
            text = str(exc).strip()
            reason = text.splitlines()[-1].rpartition("failed: ")[2] if text else "failed"
            raise DataError(f"{label}: FAISS could not train {factory!r} on "
                            f"{corpus.shape[0]} corpus vectors ({reason})") from None
        index.add(corpus)
        return AnchorIndex(index, factory, keep=keep)


def check_pq_rows(n: int, what: str, *, rotated_width: int | None = None) -> None:
    """DataError naming `what` unless `n` rows can train FAISS PQ codes: the k-means of each
    8-bit sub-quantizer needs a row per centroid (FAISS would stop with a C++ assertion), and
    an OPQ rotation of `rotated_width`-d vectors needs at least that many rows (with fewer,
    FAISS's training crashed the process)."""
    if n < PQ_CENTROIDS:
        raise DataError(f"{what}: FAISS PQ training needs at least {PQ_CENTROIDS} corpus rows "
                        f"({PQ_CENTROIDS} per code), got {n}")
    if rotated_width is not None and n < rotated_width:
        raise DataError(f"{what}: FAISS OPQ training needs at least as many corpus rows as "
                        f"the vectors' dimension ({rotated_width}), got {n}")


def parse_anchor(spec: str) -> Anchor:
    """`faiss-pq:16` -> Anchor("faiss-pq", 16); DiveError naming the valid anchors."""
    match = _SPEC.match(spec.strip())
    family = match["family"] if match else None
    if match is None or family not in FAMILIES:
        raise DiveError(f"unknown anchor {spec!r}; valid: faiss-pq:M, faiss-opq:M (M = bytes "
                        f"per vector), {', '.join(f for f in FAMILIES if f not in SIZED)}")
    m = int(match["m"]) if match["m"] else None
    if family in SIZED and (m is None or m < 1):
        raise DiveError(f"anchor {spec!r}: {family} needs its bytes per vector, e.g. {family}:16")
    if family not in SIZED and m is not None:
        runs_at = "the grid's dimensions" if family in PER_DIM else "the full dimension"
        raise DiveError(f"anchor {spec!r}: {family} takes no size (it runs at {runs_at})")
    return Anchor(family, m)


@dataclass
class AnchorIndex:
    """A built anchor: the FAISS index and how queries are turned into its search input."""

    index: Any  # faiss.Index, or faiss.IndexBinary for st-binary
    factory: str | None = None
    ranges: np.ndarray | None = None  # st-int8: (2, D) calibration ranges
    binary_dim: int | None = None  # st-binary: D
    keep: list[Any] | None = None  # FAISS objects the index points to, kept alive

    @property
    def bytes_per_vector(self) -> int:
        """What the index stores per vector (FAISS's code size)."""
        size = getattr(self.index, "sa_code_size", None)
        return int(size()) if size is not None else int(self.index.code_size)

    @property
    def n_params(self) -> int:
        """Trained floats: codebooks, rotation, PCA matrix and ranges (0 for the binary)."""
        faiss = import_faiss()
        if self.binary_dim is not None:
            return 0
        if self.ranges is not None:
            return int(self.ranges.size)
        total = 0
        index = faiss.downcast_index(self.index)
        if isinstance(index, faiss.IndexPreTransform):
            for i in range(index.chain.size()):
                vt = faiss.downcast_VectorTransform(index.chain.at(i))
                for name in ("A", "b", "mean"):
                    if hasattr(vt, name):
                        total += getattr(vt, name).size()
            index = faiss.downcast_index(index.index)
        if isinstance(index, faiss.IndexPQ):
            total += index.pq.centroids.size()
        elif isinstance(index, faiss.IndexScalarQuantizer):
            total += index.sq.trained.size()
        return int(total)

    def search(self, queries: np.ndarray, k: int, exclude: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (rows int64, scores float32) of float32 `queries` (m, D), best first; a row
        `exclude[i]` (-1: none) is never returned for query i. Missing hits: row -1."""
        if exclude is not None and not (np.asarray(exclude) >= 0).any():
            exclude = None  # nothing to leave out: search k deep, not k + 1
        n = int(self.index.ntotal)
        depth = min(k + (exclude is not None), n)
        if self.binary_dim is not None:
            hamming, rows = self.index.search(_quantize(queries, "ubinary"), depth)
            scores = (self.binary_dim - 2 * hamming).astype(np.float32)
        elif self.ranges is not None:
            codes = _quantize(queries, "int8", ranges=self.ranges)
            scores, rows = self.index.search(codes.astype(np.float32), depth)
        else:
            scores, rows = self.index.search(np.ascontiguousarray(queries, np.float32), depth)
        rows = rows.astype(np.int64)
        scores = np.asarray(scores, dtype=np.float32)
        if exclude is not None:
            # Stable sort moves the excluded hit (if any) to the end, keeping the order.
            order = np.argsort(rows == np.asarray(exclude)[:, None], axis=1, kind="stable")
            rows = np.take_along_axis(rows, order, axis=1)
            scores = np.take_along_axis(scores, order, axis=1)
            rows, scores = rows[:, :k], scores[:, :k]
            gone = rows == np.asarray(exclude)[:, None]
            rows[gone] = -1
        scores[rows < 0] = -np.inf
        return rows, scores


def check_packages(anchors: Sequence[str], products: bool) -> None:
    """`DiveError` when the `anchors` (or, with `products`, an `opqM` precision) of the runs
    due need FAISS or sentence-transformers and it is missing, checked before the first of
    them: the grid stopped at the first run needing it, after every run before it (hours of
    fits)."""
    families = {parse_anchor(spec).family for spec in anchors}
    if families or products:
        import_faiss()
    if any(family.startswith("st-") for family in families):
        _import_quantize()


def import_faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise DiveError("FAISS (its anchors and the opqM precisions) needs faiss-cpu; install "
                        "dive-compress[faiss]") from None
    return faiss


def _import_quantize() -> Any:
    try:
        from sentence_transformers import quantize_embeddings
    except ImportError:
        raise DiveError("sentence-transformers anchors need sentence-transformers; install "
                        "dive-compress[embed]") from None
    return quantize_embeddings


QUANTIZE_ROWS = 65536  # rows sentence-transformers quantizes at once


def _quantize(x: np.ndarray, precision: str, **kwargs: Any) -> np.ndarray:
    """sentence-transformers' codes of `x`, a block of rows at a time: each row's codes are
    its own (given the int8 `ranges`), and the whole corpus at once made two float32 copies
    of it."""
    quantize = _import_quantize()
    blocks = [np.asarray(quantize(x[i : i + QUANTIZE_ROWS], precision=precision, **kwargs))
              for i in range(0, max(x.shape[0], 1), QUANTIZE_ROWS)]  # one block if empty
    return np.ascontiguousarray(np.concatenate(blocks))


def _st_int8(corpus: np.ndarray) -> AnchorIndex:
    faiss = import_faiss()
    ranges = np.vstack([corpus.min(axis=0), corpus.max(axis=0)]).astype(np.float32)
    # the ranges sentence-transformers derives from calibration_embeddings=corpus
    codes = _quantize(corpus, "int8", ranges=ranges)
    index = faiss.IndexScalarQuantizer(corpus.shape[1], faiss.ScalarQuantizer.QT_8bit_direct_signed,
                                       faiss.METRIC_INNER_PRODUCT)
    index.add_sa_codes(codes.view(np.uint8) ^ np.uint8(0x80))  # byte = code + 128
    return AnchorIndex(index, ranges=ranges)


def _st_binary(corpus: np.ndarray) -> AnchorIndex:
    faiss = import_faiss()
    codes = _quantize(corpus, "ubinary")
    index = faiss.IndexBinaryFlat(8 * codes.shape[1])
    index.add(codes)
    return AnchorIndex(index, binary_dim=corpus.shape[1])


def _seed_pq(faiss: Any, index: Any, seed: int) -> list[Any]:
    """Seed the k-means of a PQ (and of OPQ's training PQ), silence the few-points warning;
    returns the objects the index now points to, which must outlive it. FAISS takes a C int:
    a seed of 2**31 or more (dive takes any below 2**63) is taken modulo 2**31, so every
    seed below keeps its index (a grid refuses such seeds with these indexes: `GridSpec`)."""
    index = faiss.downcast_index(index)
    targets = []
    if isinstance(index, faiss.IndexPreTransform):
        for i in range(index.chain.size()):
            vt = faiss.downcast_VectorTransform(index.chain.at(i))
            if isinstance(vt, faiss.OPQMatrix):
                # OPQ trains its own PQ unless given one: give it one to seed.
                pq = faiss.ProductQuantizer(vt.d_out, vt.M, PQ_BITS)
                vt.pq = pq
                targets.append(pq)
        index = faiss.downcast_index(index.index)
    if isinstance(index, faiss.IndexPQ):
        targets.append(index.pq)
    for pq in targets:
        pq.cp.seed = seed % 2**31  # it raised OverflowError, a traceback from `dive index`
        pq.cp.min_points_per_centroid = 1
    return targets
