"""`pca` and `pca-uncentered`: project on the corpus's top principal axes.

The covariance is accumulated in fixed-size chunks (float64), so memory does not grow with the
corpus; for D up to a few thousand the eigendecomposition of the D x D matrix is exact and
cheap, so no randomised or incremental SVD is needed. `pca-uncentered` applies the same axes
without subtracting the mean: measured stronger on SciFact and NFCorpus (SPEC 4.5).
Axis signs are fixed (largest-magnitude loading positive) so fits are deterministic.
n corpus rows span at most n - 1 centred directions, and can span fewer (duplicates, vectors
on a subspace): a fit asking for more dimensions than that numerical rank warns, and the axes
past it, a basis that rounding and the row order pick, are settled (`settle_null_axes`): the
first becomes the direction of the rows' mean outside the ranked axes, the one offset every row
shares there (uncentred, it keeps the rows' cosines whole), the others 0; and the outputs on
which every row is 0 up to rounding are set to exactly 0 (`dead_outputs`; centred, that
offset axis too). The rank counts the principal axes whose variance exceeds `RANK_RTOL` times
the rows' mean squared norm. DIVE starts from the same settled axes.
"""

from __future__ import annotations

import logging

import numpy as np

from dive.compressors.base import Compressor, TrainingData
from dive.compressors.dead_outputs import RANK_RTOL, zero_dead_outputs
from dive.compressors.runtime import Runtime
from dive.errors import DataError

logger = logging.getLogger(__name__)


def principal_axes(x: np.ndarray, dim: int, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Return (mean (D,), axes (dim, D)) of `x`, axes sorted by decreasing variance."""
    mean, axes, _ = principal_axes_and_variances(x, dim, chunk)
    return mean, axes


def numerical_rank(variances: np.ndarray, second_moment: float) -> int:
    """How many of the centred covariance's eigenvalues exceed `RANK_RTOL` x `second_moment`,
    the rows' mean squared norm (their variances' sum plus the mean's squared norm)."""
    return int(np.count_nonzero(variances > RANK_RTOL * second_moment))


def principal_axes_and_variances(
    x: np.ndarray, dim: int, chunk: int = 65536
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`principal_axes`, plus every eigenvalue (variance) of the centred covariance (D,)."""
    n, d_in = x.shape
    total = np.zeros(d_in, dtype=np.float64)
    gram = np.zeros((d_in, d_in), dtype=np.float64)
    for start in range(0, n, chunk):
        block = x[start : start + chunk].astype(np.float64)
        total += block.sum(axis=0)
        gram += block.T @ block
    mean = total / n
    cov = gram / n - np.outer(mean, mean)
    eigvals, eigvecs = np.linalg.eigh(cov)
    axes = eigvecs[:, np.argsort(eigvals)[::-1][:dim]].T
    signs = np.sign(axes[np.arange(dim), np.abs(axes).argmax(axis=1)])
    axes *= signs[:, None]
    return mean.astype(np.float32), np.ascontiguousarray(axes, dtype=np.float32), eigvals


def settle_null_axes(
    axes: np.ndarray, variances: np.ndarray, mean: np.ndarray, n_rows: int
) -> tuple[np.ndarray, int, float]:
    """`axes` (dim, D) with those past the rows' rank made a function of the rows alone; the
    rank; the rows' mean squared norm (`numerical_rank`'s scale).

    Past the rank (at most n_rows - 1) the covariance's eigenvalues are 0 up to rounding, and
    the basis `eigh` returns there is one that rounding and the row order pick: uncentred, each
    such axis carried a share of the mean, so several outputs were constant offsets that moved
    with the row order (0.8 between two orders of one corpus). The first of them becomes the
    unit direction of the mean's part outside the ranked axes' span, where there is one (the
    one offset every row shares there: centred, every row is 0 on it), the others 0.
    """
    mean64 = mean.astype(np.float64)
    second_moment = float(np.clip(variances, 0, None).sum() + mean64 @ mean64)
    rank = min(numerical_rank(variances, second_moment), n_rows - 1)
    if rank >= axes.shape[0]:
        return axes, rank, second_moment
    kept = axes[:rank].astype(np.float64)
    rest = mean64 - kept.T @ (kept @ mean64)
    settled = np.zeros_like(axes)
    settled[:rank] = axes[:rank]
    if rest @ rest > RANK_RTOL * second_moment:
        settled[rank] = rest / np.linalg.norm(rest)
    return settled, rank, second_moment


class PCA(Compressor):
    """Centred PCA fitted on the corpus embeddings."""

    method = "pca"
    family = "classical"
    training_free_reference = True
    centered = True

    def _fit(self, corpus: np.ndarray, train: TrainingData | None) -> Runtime:
        if corpus.shape[0] < 2:  # no centred direction: every output would be zero
            raise DataError(f"{self.method}: needs at least 2 corpus rows to find principal "
                            f"axes, got {corpus.shape[0]}")
        dim = self.dim or corpus.shape[1]
        mean, axes, variances = principal_axes_and_variances(corpus, dim)
        # Axes past the rank (at most the n - 1 the rows span) share eigenvalue 0: a basis
        # rounding picks (row order, chunk size), not the data. Settled, the output keeps
        # `dim` columns and depends on the rows alone; retrieval loses nothing, as the corpus
        # has no variance there.
        spanned = corpus.shape[0] - 1
        axes, rank, second_moment = settle_null_axes(axes, variances, mean, corpus.shape[0])
        # Each axis's mean square over the rows: its variance, and uncentred the mean's part
        # too. Near the rank a row's part can be rounding noise (duplicates, rows on a
        # subspace): those outputs are set to 0, unless, uncentred, the rows share a real
        # offset there.
        energy = np.clip(np.sort(variances)[::-1][:dim], 0, None)
        if not self.centered:
            energy += (axes.astype(np.float64) @ mean.astype(np.float64)) ** 2
        center = mean if self.centered else None
        runtime, dead = zero_dead_outputs(
            Runtime(input_dim=corpus.shape[1], center=center, projection=axes),
            energy / second_moment, self.method, warn=False)
        zeroed = int(np.count_nonzero(~axes.any(axis=1))) + dead
        if rank < min(spanned, dim):
            # uncentred, the axis past them holds the offset every row shares (`settle_null_
            # axes`) and stays: "past 1 ... set to 0: 30 of 32" read as a miscount
            kept = (" (the next holds the offset every row shares outside them)"
                    if not self.centered and rank < dim and axes[rank].any() else "")
            logger.warning("%s: fitted on %d corpus rows of numerical rank %d (axes with under "
                           "%.0e of the rows' mean squared norm count as none), below the %d "
                           "output dimensions: the rows do not vary along the axes past %d%s%s",
                           self.method, corpus.shape[0], rank, RANK_RTOL, dim, rank, kept,
                           f"; outputs set to 0: {zeroed} of {dim}" if zeroed else "")
        elif spanned < dim:
            offset = not self.centered and bool(axes[spanned].any())  # the rows' one offset
            past = spanned + offset
            logger.warning("%s: fitted on %d corpus rows, which span at most %d of the %d "
                           "output dimensions; %s", self.method, corpus.shape[0], spanned, dim,
                           ("the next holds the offset every row shares outside them" +
                            (f", those past {past} are set to 0" if past < dim else "")
                            if offset else f"those past {spanned} are set to 0"))
        return runtime


class PCAUncentered(PCA):
    """The same principal axes, applied without subtracting the corpus mean."""

    method = "pca-uncentered"
    centered = False
