"""`frozen`: the uncompressed baseline (identity, full dimension). Every table's top row."""

from __future__ import annotations

import numpy as np

from dive.compressors.base import Compressor, TrainingData
from dive.compressors.runtime import Runtime


class Frozen(Compressor):
    """Keeps all D dimensions; `dim` is ignored (recorded as D)."""

    method = "frozen"
    family = "reference"
    full_dim_only = True

    def _fit(self, corpus: np.ndarray, train: TrainingData | None) -> Runtime:
        return Runtime(input_dim=corpus.shape[1])
