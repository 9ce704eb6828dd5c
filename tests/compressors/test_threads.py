"""The number of threads changes how fast a fit runs, never the model (docs/methods.md)."""

from __future__ import annotations

import numpy as np
import pytest

from dive.arrays import l2_normalize
from dive.compressors import LabelledQueries, TrainingData, make_compressor


def problem() -> tuple[np.ndarray, TrainingData]:
    """Big enough for torch to split the candidates' backward over two threads."""
    rng = np.random.default_rng(0)
    corpus = l2_normalize(rng.standard_normal((1500, 128))).astype(np.float32)
    docs = rng.choice(len(corpus), 64, replace=False)
    queries = l2_normalize(corpus[docs] + 0.5 * rng.standard_normal((64, 128)))
    return corpus, TrainingData(LabelledQueries(queries, tuple({int(d): 1} for d in docs)))


@pytest.mark.parametrize("spec", ["search-adaptor:steps=10",
                                  "matryoshka-adaptor:steps=0:supervised_steps=10"])
def test_a_fit_on_two_threads_is_bitwise_the_fit_on_one(spec: str) -> None:
    """Matryoshka-Adaptor and Search-Adaptor gave another model on every two-thread fit: the
    backward of their candidates' gather added repeated rows in a varying order."""
    corpus, labels = problem()
    outputs = [make_compressor(f"{spec}:select=false:threads={threads}", 4, seed=0)
               .fit(corpus, labels).transform(corpus) for threads in (1, 2, 2, 2)]
    for other in outputs[1:]:
        np.testing.assert_array_equal(other, outputs[0])
