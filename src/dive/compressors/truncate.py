"""`truncate`: keep the first `dim` coordinates and renormalise (the Matryoshka-style prefix).

Not learned; on models not trained with a Matryoshka loss this is a weak floor.
"""

from __future__ import annotations

import numpy as np

from dive.compressors.base import Compressor, TrainingData
from dive.compressors.runtime import Runtime


def prefix_projection(dim: int, input_dim: int) -> np.ndarray:
    """The (dim, input_dim) matrix that selects the first `dim` coordinates."""
    return np.eye(dim, input_dim, dtype=np.float32)


class Truncate(Compressor):
    """Prefix truncation to `dim`, renormalised."""

    method = "truncate"
    family = "classical"

    def _fit(self, corpus: np.ndarray, train: TrainingData | None) -> Runtime:
        dim = self.dim or corpus.shape[1]
        return Runtime(
            input_dim=corpus.shape[1], projection=prefix_projection(dim, corpus.shape[1])
        )
