"""SMEC: halving stages with earlier ones frozen, ADS selection, S-XBM memory, training."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from dive.compressors import Compressor, TrainingData, make_compressor
from dive.compressors._baseline_modules import GumbelTopK
from dive.compressors.smec import stage_dims
from dive.losses import CrossBatchMemory

RankLoss = Callable[[np.ndarray, np.ndarray, TrainingData], float]  # the rank_loss fixture
FAST = ":stage_steps=40:eval_every=10:hidden=16:batch_size=32:memory_size=96"


@pytest.fixture()
def labels(make_labels: Callable[..., TrainingData]) -> TrainingData:
    return make_labels(30)


def test_each_stage_halves_the_dimension() -> None:
    assert stage_dims(384, 24) == [192, 96, 48, 24]
    assert stage_dims(384, 192) == [192]
    assert stage_dims(384, 100) == [192, 100]  # the last stage lands on d
    assert stage_dims(16, 16) == []


def test_later_stages_freeze_the_earlier_ones(corpus: np.ndarray, labels: TrainingData) -> None:
    """Fitting to d/2 replays the d fit exactly, then only adds a stage on top of it."""
    spec = "smec" + FAST + ":stage_linear=false"
    one = make_compressor(spec, 8).fit(corpus, labels).fitted_runtime()
    two = make_compressor(spec, 4).fit(corpus, labels).fitted_runtime()
    assert one.adapter is not None and two.adapter is not None
    np.testing.assert_array_equal(one.adapter.w1, two.adapter.w1)
    np.testing.assert_array_equal(one.adapter.w2, two.adapter.w2)
    assert one.projection is not None and two.projection is not None
    kept_one = set(np.flatnonzero(one.projection.any(axis=0)).tolist())
    kept_two = set(np.flatnonzero(two.projection.any(axis=0)).tolist())
    assert len(kept_one) == 8 and len(kept_two) == 4 and kept_two <= kept_one


def test_ads_keeps_exactly_the_target_number_of_dims(
    corpus: np.ndarray, labels: TrainingData
) -> None:
    model = make_compressor("smec" + FAST + ":stage_linear=false", 4).fit(corpus, labels)
    projection = model.fitted_runtime().projection
    assert projection is not None and projection.shape == (4, 16)
    # pure selection: one-hot rows on distinct dims
    assert set(np.unique(projection).tolist()) == {0.0, 1.0}
    assert (projection.sum(axis=1) == 1).all() and (projection.sum(axis=0) <= 1).all()
    selector = GumbelTopK(10, 3, torch.arange(10.0))
    index, gate = selector.draw(None)
    assert index.tolist() == [7, 8, 9] and gate is None
    noisy, noisy_gate = selector.draw(torch.Generator().manual_seed(0))
    assert noisy.shape == (3,) and noisy_gate is not None


def test_ads_gradient_reaches_the_scores_through_the_hard_choice() -> None:
    selector = GumbelTopK(6, 2, torch.zeros(6))
    choice = selector.draw(torch.Generator().manual_seed(1))
    out = GumbelTopK.gather(torch.ones(3, 6), choice)
    assert torch.equal(out.detach(), torch.ones(3, 2))  # forward: exactly the kept values
    out.sum().backward()
    assert selector.scores.grad is not None and selector.scores.grad.abs().sum() > 0


def test_sxbm_memory_is_fifo_with_its_configured_size() -> None:
    memory = CrossBatchMemory(capacity=96, dim=4)
    for start in range(0, 160, 32):
        memory.enqueue(torch.zeros(32, 4), torch.arange(start, start + 32))
    assert len(memory) == 96
    assert memory.rows.tolist() == list(range(64, 160))


def test_fit_lowers_the_ranking_loss(
    corpus: np.ndarray, labels: TrainingData, rank_loss: RankLoss
) -> None:
    def rank(model: Compressor) -> float:
        return rank_loss(model.transform(labels.train.embeddings), model.transform(corpus), labels)

    start = make_compressor("smec" + FAST + ":stage_steps=0", 4).fit(corpus, labels)
    model = make_compressor("smec" + FAST + ":stage_steps=80:lr=0.003", 4).fit(corpus, labels)
    assert rank(model) < rank(start)


def test_runtime_folds_the_stages(corpus: np.ndarray, labels: TrainingData) -> None:
    model = make_compressor("smec" + FAST, 4).fit(corpus, labels)
    runtime = model.fitted_runtime()
    assert runtime.projection is not None and runtime.projection.shape == (4, 16)
    assert model.n_params == 2 * (16 * 16 + 16) + 4 * 16
    stages = model.fit_info_.diagnostics["stages"]
    assert [s["dim"] for s in stages] == [8, 4]


def test_deterministic_for_a_seed(corpus: np.ndarray, labels: TrainingData) -> None:
    a = make_compressor("smec" + FAST, 4, seed=2).fit(corpus, labels)
    b = make_compressor("smec" + FAST, 4, seed=2).fit(corpus, labels)
    c = make_compressor("smec" + FAST, 4, seed=3).fit(corpus, labels)
    np.testing.assert_array_equal(a.transform(corpus), b.transform(corpus))
    assert not np.array_equal(a.transform(corpus), c.transform(corpus))


def test_saved_folder_loads_back_without_torch_and_transforms_the_same(
    corpus: np.ndarray, labels: TrainingData, tmp_path: Path
) -> None:
    from dive.export.folder import load, save

    model = make_compressor("smec" + FAST, 4).fit(corpus, labels)
    save(model, tmp_path / "model")
    loaded = load(tmp_path / "model")
    assert loaded.config()["stage_steps"] == 40
    np.testing.assert_array_equal(loaded.transform(corpus), model.transform(corpus))
