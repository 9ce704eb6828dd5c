"""Outputs a fitted projection never reaches on its corpus, set to exactly 0.

When the corpus rows span fewer directions than the output has (duplicates, rows on a linear
subspace), some projection rows lie outside that span: a row's part on such an output is
rounding noise (about 1e-8), whose value changes with the batch size and the BLAS path. A
float32 search sees nothing of it, but a binary or int8 code turns it into full bits and levels,
so the codes of one model changed with `--batch-size` and binary search became near random.
An output counts as dead when its mean square over the corpus is under `RANK_RTOL` times the
mean squared norm of what the projection reads (the same cut as PCA's numerical rank); a
constant offset that every row shares (uncentred PCA on an affine subspace) is not dead.

Used by `pca`, `pca-uncentered` and DIVE (`dive`, `dive-plus`), whose projections start from
principal axes. Left out: methods whose outputs start as single input coordinates (`truncate`,
`frozen`, the baselines' raw prefix), where a tiny output is the input's own value, not noise
(MiniLM leaves three coordinates at about 1e-33 in every embedding); the baselines'
`basis=pca` option (not their default) keeps its noise outputs.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from dive.compressors.runtime import Runtime
from dive.errors import DataError

logger = logging.getLogger(__name__)

# Variance ratio, to the rows' mean squared norm (the trace of their second moment), under
# which an axis counts as none in PCA's rank, and an output's mean square makes it dead. On
# the shared embeddings (MiniLM on scifact and time, mpnet on nfcorpus) the smallest real axis
# holds 4e-7 or more of that norm, and the directions the model never uses (MiniLM has three)
# 7e-18 or less, so the cut sits well inside that gap. Relative to the largest variance
# instead, rows with no variance at all (one row repeated) had rounding noise for their
# largest axis and counted a rank of several.
RANK_RTOL = 1e-10


def output_energy(runtime: Runtime, corpus: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Each output's mean square over the `corpus` rows (unit rows, as `Compressor.fit` passes
    them), as a share of the mean squared norm of what the projection reads: one pass over the
    corpus. A method that knows these in closed form (PCA: its axes' variances) passes them to
    `zero_dead_outputs` instead."""
    projection = runtime.projection
    if projection is None:
        return np.ones(runtime.output_dim)
    energy = np.zeros(projection.shape[0], dtype=np.float64)
    scale = 0.0  # the summed squared norms of what the projection reads
    shift = None if runtime.center is None else projection @ runtime.center
    for start in range(0, corpus.shape[0], chunk):
        block = corpus[start : start + chunk]
        h = block if runtime.adapter is None else runtime.adapter(block)
        z = h @ projection.T
        if shift is not None:
            z -= shift
        energy += np.square(z, dtype=np.float64).sum(axis=0)
        # unit rows read as they are: their norms need no pass
        scale += (block.shape[0] if runtime.adapter is None else
                  float(np.square(h, dtype=np.float64).sum()))
    return energy / scale


def zero_dead_outputs(runtime: Runtime, energy: np.ndarray, method: str, *,
                      warn: bool = True) -> tuple[Runtime, int]:
    """`runtime` with the projection rows of its dead outputs (`energy`, as `output_energy`
    gives it, at most `RANK_RTOL`) set to 0, and how many it set; a warning says how many,
    unless `warn` is False (the caller says it). `DataError` when every output is dead, as
    no output could then rank anything."""
    projection = runtime.projection
    if projection is None:
        return runtime, 0
    dead = energy <= RANK_RTOL
    if dead.all():
        raise DataError(f"{method}: every output is 0 on every corpus row (the rows do not vary "
                        f"along any of its {projection.shape[0]} output directions beyond "
                        f"{RANK_RTOL:.0e} of their mean squared norm), so it could rank nothing")
    newly = dead & projection.any(axis=1)
    if not newly.any():
        return runtime, 0
    if warn:
        logger.warning("%s: outputs that are 0 on every corpus row up to rounding (the rows "
                       "span fewer directions): %d of %d, set to exactly 0, so their codes do "
                       "not change with the batch size", method, int(newly.sum()),
                       projection.shape[0])
    kept = projection.copy()
    kept[dead] = 0
    return replace(runtime, projection=kept), int(newly.sum())
