"""Product quantization after a compressor: a FAISS OPQ+PQ index over its outputs.

`opq{M}` (e.g. `opq12`) is a first stage the evaluator can score a compressor's outputs at,
beside the runtime's precisions (float32, float16, int8, binary): FAISS
`index_factory(d, "OPQ{M},PQ{M}np")` trained on the compressed corpus (a learned rotation,
then M sub-quantizers of 8 bits: M bytes per vector; M must divide d), searched with the
float32 compressed queries (asymmetric distance, exact over the codes). It is the index of the
`faiss-opq:M` anchor (`dive.evaluate.anchors`, seeded the same way) built on the d-dim
outputs instead of the D-dim embeddings: the two store the same bytes and differ only in what
they quantize. Reducing the dimension first is FAISS's own recipe ("PCA64,PQ16"): each
sub-quantizer then codes fewer, more informative dimensions.

Unlike the runtime's precisions it is not a step of the numpy runtime (the codes need the
codebooks, which the index holds): a user ships it as the model folder plus `dive index
--opq M` (`dive.export.faiss_index`). Full-dimension methods (frozen) never get it: that row
would be the anchor itself. Left out: plain PQ without the rotation (a PCA-like output holds
most of its variance in its first dimensions, which OPQ's rotation spreads over the
sub-quantizers) and other code sizes than 8 bits.
"""

from __future__ import annotations

import re

import numpy as np

from dive.compressors.precision import PRECISIONS, bytes_per_vector, check_precision
from dive.errors import DataError, DiveError
from dive.evaluate.anchors import Anchor, AnchorIndex

__all__ = ["check_stage", "fits", "is_product", "product_bytes", "product_index", "stage_bytes"]

_PRODUCT = re.compile(r"^opq(?P<m>[1-9]\d*)$")


def product_bytes(stage: str) -> int | None:
    """M of an `opq{M}` stage (its bytes per vector); None for a runtime precision."""
    match = _PRODUCT.match(stage)
    return int(match["m"]) if match else None


def is_product(stage: str) -> bool:
    return product_bytes(stage) is not None


def check_stage(name: object) -> str:
    """`name` if it is a first stage (a precision or `opq{M}`), else DiveError listing them."""
    if isinstance(name, str) and (name in PRECISIONS or is_product(name)):
        return name
    raise DiveError(f"precision {name!r} is not one of {', '.join(PRECISIONS)} or opqM "
                    "(OPQ+PQ with M bytes per vector, e.g. opq12)")


def stage_bytes(stage: str, dim: int) -> int:
    """Bytes one `dim`-dim vector takes in the first stage: M for `opq{M}`."""
    m = product_bytes(stage)
    return m if m is not None else bytes_per_vector(check_precision(stage), dim)


def fits(stage: str, dim: int) -> bool:
    """Whether the grid runs `stage` on `dim`-dim vectors: M must divide d, and be below it
    (M = d codes one dimension per sub-quantizer, a scalar quantizer with k-means levels at
    the bytes int8 already takes, and OPQ's rotation cannot help it)."""
    m = product_bytes(stage)
    return m is None or (dim % m == 0 and m < dim)


def product_index(stage: str, corpus: np.ndarray, seed: int = 0) -> AnchorIndex:
    """The trained `opq{M}` index over `corpus` (n, d) float32, every row added."""
    m = product_bytes(stage)
    if m is None:
        raise DiveError(f"{stage!r} is not a product-quantization stage (opqM)")
    if corpus.shape[1] % m:
        raise DataError(f"{stage}: {m} sub-quantizers do not divide the dimension "
                        f"{corpus.shape[1]}")
    if not fits(stage, corpus.shape[1]):  # M = d, which the grid leaves out (`fits`)
        raise DataError(f"{stage}: {m} sub-quantizers of one dimension each take the bytes "
                        "int8 takes, where OPQ cannot help; give M below the dimension "
                        f"{corpus.shape[1]}, or use the int8 precision")
    return Anchor("faiss-opq", m).build(np.ascontiguousarray(corpus, np.float32),
                                        corpus.shape[1], seed, what=f"{stage} index")

