"""`benchmarks/speed.py --distractors`: the grown corpus keeps the real rows and adds unit-norm
near-duplicates of them."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import numpy as np


def test_distractors_are_unit_near_duplicates_after_the_real_rows(
    load_script: Callable[[str], ModuleType],
) -> None:
    speed = load_script("speed")
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((50, 384)).astype(np.float32)
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    grown = speed.with_distractors(corpus, 400)
    assert grown.shape == (450, 384) and grown.dtype == np.float32
    assert np.array_equal(grown[:50], corpus)
    np.testing.assert_allclose(np.linalg.norm(grown, axis=1), 1.0, atol=1e-5)
    nearest = (grown[50:] @ corpus.T).max(axis=1)  # each to its source
    assert nearest.min() > 0.8 and nearest.max() < 0.97
