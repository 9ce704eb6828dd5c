"""Checks and conversions for embedding matrices at the public boundary.

Public functions take and return float32, C-contiguous (n, d) arrays; they convert and check
once, here, so the rest of the code can trust its inputs.
"""

from __future__ import annotations

import numpy as np

from dive.errors import DataError


def as_embeddings(x: object, *, name: str = "embeddings", dim: int | None = None) -> np.ndarray:
    """Return `x` as a float32 C-contiguous (n, d) array, or raise `DataError` naming `name`.

    Rejects non-numeric dtypes, wrong rank, a dimension other than `dim` and NaN/inf rows
    (reporting the first offending row).
    """
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise DataError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise DataError(f"{name}: expected a 2-d (n, dim) array, got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise DataError(f"{name}: expected dimension {dim}, got {arr.shape[1]}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise DataError(f"{name}: row {row} contains NaN or inf")
    return arr


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, eps)).astype(np.float32, copy=False)
