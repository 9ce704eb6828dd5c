"""`pca` and `pca-uncentered`: project on the corpus's top principal axes.

The covariance is accumulated in fixed-size chunks (float64), so memory does not grow with the
corpus; for D up to a few thousand the eigendecomposition of the D x D matrix is exact and
cheap, so no randomised or incremental SVD is needed. `pca-uncentered` applies the same axes
without subtracting the mean: measured stronger on SciFact and NFCorpus (SPEC 4.5).
Axis signs are fixed (largest-magnitude loading positive) so fits are deterministic.
n corpus rows span at most n - 1 centred directions: a fit asking for more dimensions warns
and zeroes the axes past them (see `PCA._fit`). Rows can span fewer still (duplicates, vectors
on a subspace): a fit asking for more dimensions than the corpus's numerical rank warns too,
as the axes past it hold rounding noise, not the data (`pca` zeroes them). The rank counts
the principal axes whose variance exceeds `RANK_RTOL` times the rows' mean squared norm.
"""

from __future__ import annotations

import logging

import numpy as np

from dive.compressors.base import Compressor, TrainingData
from dive.compressors.runtime import Runtime
from dive.errors import DataError

logger = logging.getLogger(__name__)


# Variance ratio, to the rows' mean squared norm (the trace of their second moment), under
# which an axis counts as none in the rank. On the shared embeddings (MiniLM on scifact and
# time, mpnet on nfcorpus) the smallest real axis holds 4e-7 or more of that norm, and the
# directions the model never uses (MiniLM has three) 7e-18 or less, so the cut sits well inside
# that gap. Relative to the largest variance instead, rows with no variance at all (one row
# repeated) had rounding noise for their largest axis and counted a rank of several.
RANK_RTOL = 1e-10


def principal_axes(x: np.ndarray, dim: int, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Return (mean (D,), axes (dim, D)) of `x`, axes sorted by decreasing variance."""
    mean, axes, _ = _principal_axes(x, dim, chunk)
    return mean, axes


def numerical_rank(variances: np.ndarray, second_moment: float) -> int:
    """How many of the centred covariance's eigenvalues exceed `RANK_RTOL` x `second_moment`,
    the rows' mean squared norm (their variances' sum plus the mean's squared norm)."""
    return int(np.count_nonzero(variances > RANK_RTOL * second_moment))


def _principal_axes(
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
        mean, axes, variances = _principal_axes(corpus, dim)
        # Axes past the n - 1 the rows span share eigenvalue 0: a basis rounding picks (row
        # order, chunk size), not the data. Zeroed, the output keeps `dim` columns and depends
        # on the rows alone; retrieval loses nothing, as the corpus has no variance there.
        spanned = corpus.shape[0] - 1
        second_moment = float(np.clip(variances, 0, None).sum() + mean.astype(np.float64) @ mean)
        rank = min(numerical_rank(variances, second_moment), spanned)
        if spanned < dim:
            axes[spanned:] = 0
        if rank < min(spanned, dim):
            # Fewer directions than rows allow (duplicates, a subspace): a centred row's part
            # on the axes past the rank is rounding noise (about 1e-8), which a binary or int8
            # code turned into full bits and levels that changed with the batch size; zeroed.
            # Uncentred, the mean's part on them is not noise: they are kept.
            if self.centered:
                axes[rank:] = 0
            zeroed = (f"; those past {rank} are set to 0" if self.centered
                      else f"; those past {spanned} are set to 0" if spanned < dim else "")
            logger.warning("%s: fitted on %d corpus rows of numerical rank %d (axes with under "
                           "%.0e of the rows' mean squared norm count as none), below the %d "
                           "output dimensions: those past %d hold rounding noise, not the data%s",
                           self.method, corpus.shape[0], rank, RANK_RTOL, dim, rank, zeroed)
        elif spanned < dim:
            logger.warning("%s: fitted on %d corpus rows, which span at most %d of the %d "
                           "output dimensions; those past %d are set to 0", self.method,
                           corpus.shape[0], spanned, dim, spanned)
        center = mean if self.centered else None
        return Runtime(input_dim=corpus.shape[1], center=center, projection=axes)


class PCAUncentered(PCA):
    """The same principal axes, applied without subtracting the corpus mean."""

    method = "pca-uncentered"
    centered = False
