"""`random`: a seeded Gaussian random projection (Johnson-Lindenstrauss floor)."""

from __future__ import annotations

import numpy as np

from dive.compressors.base import Compressor, TrainingData
from dive.compressors.runtime import Runtime


class RandomProjection(Compressor):
    """Projection on `dim` i.i.d. Gaussian directions drawn from `seed`."""

    method = "random"
    family = "classical"

    def _fit(self, corpus: np.ndarray, train: TrainingData | None) -> Runtime:
        d_in = corpus.shape[1]
        dim = self.dim or d_in
        rng = np.random.default_rng(self.seed)
        projection = (rng.standard_normal((dim, d_in)) / np.sqrt(dim)).astype(np.float32)
        return Runtime(input_dim=d_in, projection=projection)
