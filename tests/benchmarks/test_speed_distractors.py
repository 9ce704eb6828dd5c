"""`benchmarks/speed.py --distractors`: the grown corpus keeps the real rows and adds unit-norm
near-duplicates of them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest


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


def test_a_data_folder_given_that_does_not_exist_stops_the_script(
    load_script: Callable[[str], ModuleType], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--embeddings /nonexistent` fell back to $DIVE_EMBEDDINGS and printed that data's
    figures as if they were the folder's; large_corpus.py and self_retrieval.py share it."""
    speed = load_script("speed")
    monkeypatch.setenv("DIVE_EMBEDDINGS", str(tmp_path))
    (tmp_path / "m" / "d").mkdir(parents=True)
    monkeypatch.setattr("sys.argv", ["large_corpus.py"])
    assert speed._find(None, "DIVE_EMBEDDINGS", "embeddings", "m", "d") == tmp_path / "m" / "d"
    with pytest.raises(SystemExit, match=r"^large_corpus\.py: /nonexistent/emb: no such folder$"):
        speed._find("/nonexistent/emb", "DIVE_EMBEDDINGS", "embeddings", "m", "d")
    with pytest.raises(SystemExit):
        speed.build_parser().parse_args(["--ratios", "0"])  # it divided by zero
