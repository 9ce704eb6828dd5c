"""Fixtures shared by the learned compressors' tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from dive.arrays import l2_normalize
from dive.compressors import LabelledQueries, TrainingData
from dive.losses import graded_ranking_loss


@pytest.fixture()
def corpus() -> np.ndarray:
    """Anisotropic 16-d unit vectors in a random basis, so the raw prefix is a poor projection."""
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    x = (rng.standard_normal((200, 16)) * np.linspace(3, 0.2, 16)) @ basis
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture()
def make_labels(corpus: np.ndarray) -> Callable[..., TrainingData]:
    """`make_labels(n, graded=False)`: n queries near n corpus rows, each relevant to its row
    (graded: grade 2, and the next row grade 1)."""

    def make(n: int, graded: bool = False) -> TrainingData:
        rng = np.random.default_rng(1)
        docs = rng.choice(len(corpus), n, replace=False)
        queries = l2_normalize(corpus[docs] + 0.3 * rng.standard_normal((n, corpus.shape[1])))
        relevant = tuple(
            {int(d): 2, int((d + 1) % len(corpus)): 1} if graded else {int(d): 1} for d in docs
        )
        return TrainingData(LabelledQueries(queries, relevant))

    return make


RankLoss = Callable[[np.ndarray, np.ndarray, TrainingData], float]


@pytest.fixture()
def rank_loss() -> RankLoss:
    """`rank_loss(z_q, z_c, labels)`: the graded ranking loss of the training queries' scores
    against every corpus row (grades from the labels, 0 elsewhere)."""

    def score(z_q: np.ndarray, z_c: np.ndarray, labels: TrainingData) -> float:
        scores = torch.from_numpy(z_q @ z_c.T)
        grades = torch.zeros_like(scores)
        for i, rel in enumerate(labels.train.relevant):
            for row, grade in rel.items():
                grades[i, row] = grade
        return float(graded_ranking_loss(scores, grades))

    return score


HoldOut = Callable[[TrainingData, int], TrainingData]


@pytest.fixture()
def hold_out() -> HoldOut:
    """`hold_out(labels, n)`: the first n training queries train, the rest validate."""

    def split(labels: TrainingData, n: int) -> TrainingData:
        train = labels.train
        return TrainingData(
            LabelledQueries(train.embeddings[:n], train.relevant[:n]),
            LabelledQueries(train.embeddings[n:], train.relevant[n:]),
        )

    return split


FirstLosses = dict[int, dict[str, float]]  # each grid setting's loss parts at its first step


@pytest.fixture()
def trace_grid(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FirstLosses]:
    """`trace_grid(module, on_setting)` wraps `module.fit_grid` (the grid search a baseline's
    fit calls): `on_setting(config)` runs as each setting starts, and the returned dict fills
    with each setting's loss parts at its first step, by the setting's index."""
    from dive.compressors._baseline_select import fit_grid

    def trace(module: Any, on_setting: Callable[[Any], None] = lambda _c: None) -> FirstLosses:
        first: FirstLosses = {}
        started: list[Any] = []

        def traced_grid(*args: Any, loss: Callable[..., Any], **kwargs: Any) -> Any:
            def traced(config: Any) -> Any:
                on_setting(config)
                step, index = loss(config), len(started)
                started.append(config)

                def recorded() -> Any:
                    total, parts = step()
                    first.setdefault(index, parts)
                    return total, parts

                return recorded

            return fit_grid(*args, loss=traced, **kwargs)

        monkeypatch.setattr(module, "fit_grid", traced_grid)
        return first

    return trace
