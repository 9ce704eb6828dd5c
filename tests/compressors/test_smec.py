"""SMEC: halving stages with earlier ones frozen, ADS selection, S-XBM memory, training."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from dive.arrays import l2_normalize
from dive.compressors import Compressor, LabelledQueries, TrainingData, make_compressor
from dive.compressors._smec_fit import AdaptiveSelection
from dive.compressors.smec import stage_dims
from dive.losses import CrossBatchMemory
from dive.training import validation_ndcg

RankLoss = Callable[[np.ndarray, np.ndarray, TrainingData], float]  # the rank_loss fixture
HoldOut = Callable[[TrainingData, int], TrainingData]  # the hold_out fixture
FAST = ":stage_steps=40:eval_every=10:hidden=16:corpus_batch=32:query_batch=32:memory_size=96"


@pytest.fixture()
def labels(make_labels: Callable[..., TrainingData]) -> TrainingData:
    return make_labels(30)


def test_each_stage_halves_the_dimension() -> None:
    assert stage_dims(384, 24) == [192, 96, 48, 24]
    assert stage_dims(384, 192) == [192]
    assert stage_dims(384, 100) == [192, 100]  # the last stage lands on d
    assert stage_dims(16, 16) == []


@pytest.mark.parametrize("layer", ["adapter", "linear", "none"])
def test_later_stages_freeze_the_earlier_ones(
    corpus: np.ndarray, labels: TrainingData, layer: str
) -> None:
    """Fitting to d/2 replays the d fit exactly, then only adds a stage on top of it."""
    spec = "smec" + FAST + f":stage_layer={layer}"
    one = make_compressor(spec, 8).fit(corpus, labels).fitted_runtime()
    two = make_compressor(spec, 4).fit(corpus, labels).fitted_runtime()
    assert one.adapter is not None and two.adapter is not None
    # stage 1's residual block is the first 16 hidden units of both adapters
    np.testing.assert_array_equal(one.adapter.w1, two.adapter.w1[:16])
    np.testing.assert_array_equal(one.adapter.w2, two.adapter.w2[:, :16])
    assert two.adapter.w1.shape == ((32, 16) if layer == "adapter" else (16, 16))
    assert one.projection is not None and two.projection is not None
    kept_one = set(np.flatnonzero(one.projection.any(axis=0)).tolist())
    kept_two = set(np.flatnonzero(two.projection.any(axis=0)).tolist())
    assert len(kept_one) == 8 and kept_two <= kept_one
    assert len(kept_two) == 4 or layer == "linear"  # a linear stage mixes the kept dims


def test_ads_keeps_exactly_the_target_number_of_dims(
    corpus: np.ndarray, labels: TrainingData
) -> None:
    model = make_compressor("smec" + FAST + ":stage_layer=none", 4).fit(corpus, labels)
    projection = model.fitted_runtime().projection
    assert projection is not None and projection.shape == (4, 16)
    # pure selection: one-hot rows on distinct dims
    assert set(np.unique(projection).tolist()) == {0.0, 1.0}
    assert (projection.sum(axis=1) == 1).all() and (projection.sum(axis=0) <= 1).all()
    selector = AdaptiveSelection(10, 3, torch.arange(10.0))
    assert selector.selected().tolist() == [7, 8, 9]
    hard, soft = selector.masks()
    assert hard.tolist() == [0.0] * 7 + [1.0] * 3  # training keeps what inference keeps
    assert (soft[7:] > 0.5).all() and (soft[:7] < 0.5).all()
    generator = torch.Generator().manual_seed(0)
    noisy = [selector.masks(generator, noise=5.0)[0] for _ in range(10)]
    assert all(m.sum() == 3 for m in noisy) and any(not torch.equal(m, hard) for m in noisy)


def test_ads_gradient_reaches_dropped_dims_through_the_soft_mask() -> None:
    """A dropped dim learns whether it should be kept: the soft mask gives it a gradient."""
    selector = AdaptiveSelection(6, 2, torch.tensor([3.0, 2.0, 1.0, 0.0, -1.0, -2.0]))
    hard, soft = selector.masks()
    queries, docs = torch.ones(3, 6), torch.ones(3, 6)
    relaxed = ((queries * soft) * (docs * soft)).sum()
    relaxed.backward()
    assert selector.scores.grad is not None and (selector.scores.grad[2:] != 0).all()
    assert hard.grad_fn is None  # the hard mask carries no gradient


def test_ads_finds_the_informative_dims_of_a_planted_problem() -> None:
    """Relevance lives in 4 low-variance dims; 12 high-variance dims are noise.

    The scores start at the energy ranking, which keeps the noise; a learning ADS must move
    the planted dims into both stages' selections (the adapter is held still and S-XBM, which
    preserves the noise-dominated full similarity, is off, so only ADS can find them).
    """
    rng = np.random.default_rng(0)
    planted = [2, 7, 11, 13]
    noise = [i for i in range(16) if i not in planted]
    x = np.zeros((300, 16))
    x[:, noise] = rng.standard_normal((300, 12))
    x[:, planted] = 0.5 * rng.standard_normal((300, 4))
    docs = rng.choice(300, 60, replace=False)
    q = np.zeros((60, 16))
    q[:, noise] = rng.standard_normal((60, 12))
    q[:, planted] = x[docs][:, planted] + 0.05 * rng.standard_normal((60, 4))
    corpus, queries = l2_normalize(x.astype(np.float32)), l2_normalize(q.astype(np.float32))
    labels = TrainingData(LabelledQueries(queries, tuple({int(d): 1} for d in docs)))
    spec = (
        "smec:stage_layer=none:lr=1e-6:lr_grid=:weight_xbm=0:hidden=16:corpus_batch=32"
        ":query_batch=32"
    )

    def kept(options: str) -> list[int]:
        model = make_compressor(spec + options, 4).fit(corpus, labels)
        projection = model.fitted_runtime().projection
        assert projection is not None
        return np.flatnonzero(projection.any(axis=0)).tolist()

    energy = np.argsort(-(corpus**2).mean(axis=0))[:4]
    assert not set(energy) & set(planted)  # the start keeps none of them
    assert kept(":stage_steps=100") == planted
    assert kept(":stage_steps=100:score_decay=true") == planted  # learns early, then settles
    # scores that barely move (SMEC's old lr 1e-3 for everything) keep the start's choice
    assert kept(":stage_steps=100:score_lr=0.001") != planted


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
    assert runtime.adapter is not None and runtime.projection is not None
    assert runtime.projection.shape == (4, 16)
    # one residual block per stage, their hidden units side by side in one adapter
    assert runtime.adapter.w1.shape == (32, 16) and runtime.adapter.w2.shape == (16, 32)
    assert model.n_params == (32 * 16 + 32) + (16 * 32 + 16) + 4 * 16
    stages = model.fit_info_.diagnostics["stages"]
    assert [s["dim"] for s in stages] == [8, 4]
    linear = make_compressor("smec" + FAST + ":stage_layer=linear", 4).fit(corpus, labels)
    assert linear.n_params == 2 * (16 * 16 + 16) + 4 * 16


def test_stage_loss_includes_the_previous_prefix(
    corpus: np.ndarray, labels: TrainingData
) -> None:
    """L(new prefix) + weight_previous * L(previous prefix), and the term changes the fit."""

    def fit(weight: float) -> Compressor:
        spec = "smec" + FAST + f":weight_previous={weight}:select=false"
        return make_compressor(spec, 8).fit(corpus, labels)

    with_previous, without = fit(1.0), fit(0.0)
    first = with_previous.fit_info_.diagnostics["stages"][0]["first_losses"]
    assert first["previous"] > 0
    assert first["loss"] == pytest.approx(first["new"] + first["previous"])
    first_without = without.fit_info_.diagnostics["stages"][0]["first_losses"]
    assert first_without["loss"] == pytest.approx(first_without["new"])
    assert first_without["new"] == first["new"]  # same start, same batch
    assert not np.array_equal(with_previous.transform(corpus), without.transform(corpus))


def test_each_stage_records_its_grid_and_choice(
    corpus: np.ndarray, labels: TrainingData, hold_out: HoldOut
) -> None:
    split = hold_out(labels, 20)
    model = make_compressor("smec" + FAST + ":grid_min=10", 4).fit(corpus, split)
    for stage in model.fit_info_.diagnostics["stages"]:
        assert stage["grid"] == "lr 0.001/0.0001"
        assert [s["lr"] for s in stage["settings"]] == [0.001, 0.0001]
        assert stage["choice"]["n_queries"] == 10
        assert stage["history"][0][0] == 0  # checkpoint 0 is the stage's start
    fit, val = model.fit_info_.summary, split.validation
    assert fit is not None and val is not None
    # the returned model is the last stage's chosen checkpoint: it scores what the fit reports
    measured = validation_ndcg(model.transform(val.embeddings), model.transform(corpus),
                               val.relevant)
    assert measured == pytest.approx(fit.validation_score, abs=1e-6)


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


def test_warmup_trains_stage_one_on_sxbm_alone_before_the_labels(
    corpus: np.ndarray, labels: TrainingData, hold_out: HoldOut
) -> None:
    """`warmup_steps` label-free steps on stage 1 only; the supervised runs start from them
    (their checkpoint 0 is the warmed model), and 0 (the default) leaves the fit as it was."""
    split = hold_out(labels, 20)
    plain = make_compressor("smec" + FAST, 4).fit(corpus, split)
    off = make_compressor("smec" + FAST + ":warmup_steps=0", 4).fit(corpus, split)
    np.testing.assert_array_equal(plain.transform(corpus), off.transform(corpus))
    warm = make_compressor("smec" + FAST + ":warmup_steps=30", 4).fit(corpus, split)
    first, second = warm.fit_info_.diagnostics["stages"]
    assert first["warmup"]["steps_run"] == 30 and "warmup" not in second
    assert "warmup" not in plain.fit_info_.diagnostics["stages"][0]
    # the supervised run's start (checkpoint 0) is the warmed model, not the untrained one
    assert first["history"][0] != plain.fit_info_.diagnostics["stages"][0]["history"][0]
    assert not np.array_equal(plain.transform(corpus), warm.transform(corpus))


def test_a_stage_s_frozen_part_computed_in_chunks_is_the_one_pass_bit_for_bit(
    corpus: np.ndarray, labels: TrainingData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each stage's frozen part and ADS energies go over the corpus a chunk of rows at a
    time (one pass held every hidden layer's activations: the fit peaked at about 4x the
    corpus on top of it); rows are independent, so the model is the same as in one pass."""
    import dive.compressors._smec_fit as smec_fit
    from dive.compressors._baseline_modules import map_rows

    def fit(chunk: int) -> np.ndarray:
        monkeypatch.setattr(smec_fit, "map_rows", lambda fn, x: map_rows(fn, x, chunk))
        spec = "smec" + FAST + ":stage_layer=adapter"
        return make_compressor(spec, 4).fit(corpus, labels).transform(corpus)

    assert np.array_equal(fit(7), fit(10**9))


def test_memory_neighbours_as_many_as_the_memory_are_refused() -> None:
    """`memory_neighbours` are drawn from the memory, so `== memory_size` is refused."""
    from dive.errors import DiveError

    with pytest.raises(DiveError, match=r"memory_neighbours must be < memory_size \(8\), got 8"):
        make_compressor("smec:memory_size=8:memory_neighbours=8", 4)
    make_compressor("smec:memory_size=8:memory_neighbours=7", 4)


def test_sxbm_keeps_memory_size_items_and_anchors_each_to_its_k_nearest_others(
    corpus: np.ndarray, labels: TrainingData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each stage's S-XBM holds the last `memory_size` items and pairs each batch item with
    its `memory_neighbours` nearest memory items, never the item itself (a memory one item
    short, or one neighbour fewer, trained on other pairs without a failing test)."""
    import dive.compressors._smec_fit as smec_fit
    from dive.losses import select_memory_neighbours

    memories: list[CrossBatchMemory] = []
    picks: list[tuple[int, int, bool, int]] = []  # (k asked, k picked, all others, memory size)

    class Recorded(CrossBatchMemory):
        def __init__(self, capacity: int, dim: int) -> None:
            super().__init__(capacity, dim)
            memories.append(self)

    def select(teacher: torch.Tensor, rows: torch.Tensor, memory: Any, k: int) -> torch.Tensor:
        picked = select_memory_neighbours(teacher, rows, memory, k)
        others = bool((memory.rows[picked] != rows[:, None]).all())
        picks.append((k, picked.shape[1], others, len(memory)))
        return picked

    monkeypatch.setattr(smec_fit, "CrossBatchMemory", Recorded)
    monkeypatch.setattr(smec_fit, "select_memory_neighbours", select)
    spec = "smec" + FAST + ":memory_neighbours=7:select=false:stage_steps=6:query_batch=16"
    make_compressor(spec, 8).fit(corpus, labels)
    assert memories and all(m.capacity == 96 for m in memories)
    assert len(memories[0]) == 96  # 6 corpus batches of 32 (not query batches): full
    assert picks and all(k == 7 and kk == 7 and others for k, kk, others, _ in picks)
    assert {size for *_, size in picks} == {32, 64, 96}


def test_the_relaxed_prefix_trains_the_ads_scores_only(
    corpus: np.ndarray, labels: TrainingData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The soft-masked view is taken on the detached previous prefix: with the hard mask
    emptied and no previous-prefix term, nothing is left to train the stage's layer."""
    import dive.compressors._smec_fit as smec_fit

    masks = smec_fit.AdaptiveSelection.masks

    def empty_hard(self: Any, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        hard, soft = masks(self, *args, **kwargs)
        return torch.zeros_like(hard), soft

    monkeypatch.setattr(smec_fit.AdaptiveSelection, "masks", empty_hard)
    spec = "smec" + FAST + ":select=false:stage_steps=5:weight_previous=0:lr=0.01"
    runtime = make_compressor(spec, 8).fit(corpus, labels).fitted_runtime()
    assert runtime.adapter is None  # the untrained block (zero last layer) folds away


def test_each_stage_records_how_many_kept_dims_ads_changed(
    corpus: np.ndarray, labels: TrainingData
) -> None:
    """`ads_changed` counts the kept dims that the stage's start (the energy ranking) did not
    keep: 0 untrained, and after training exactly the newcomers."""
    spec = "smec" + FAST + ":stage_layer=none:select=false:lr_grid="

    def fit(options: str) -> tuple[int, set[int]]:
        model = make_compressor(spec + options, 8).fit(corpus, labels)
        projection = model.fitted_runtime().projection
        assert projection is not None
        (stage,) = model.fit_info_.diagnostics["stages"]
        return stage["ads_changed"], set(np.flatnonzero(projection.any(axis=0)).tolist())

    start = set(np.argsort(-(corpus**2).mean(axis=0))[:8].tolist())
    assert fit(":stage_steps=0") == (0, start)
    changed, kept = fit(":stage_steps=20:score_lr=1")
    assert changed == len(kept - start) > 0


def test_each_learning_rate_of_a_stage_trains_on_the_same_stream_and_a_fresh_memory(
    corpus: np.ndarray, labels: TrainingData, hold_out: HoldOut, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every setting of a stage starts from the same model with the stage's own seed and an
    empty S-XBM: the same first batches, so the same first losses (the rate acts after)."""
    import dive.compressors._smec_fit as smec_fit

    first: list[dict[str, float]] = []  # each setting's first step's losses
    fit_grid = smec_fit.fit_grid

    def traced_grid(*args: Any, loss: Callable[..., Any], **kwargs: Any) -> Any:
        def traced(c: Any) -> Any:
            step, index = loss(c), len(first)
            first.append({})

            def recorded() -> Any:
                total, parts = step()
                first[index] = first[index] or dict(parts)
                return total, parts

            return recorded

        return fit_grid(*args, loss=traced, **kwargs)

    monkeypatch.setattr(smec_fit, "fit_grid", traced_grid)
    spec = "smec" + FAST + ":stage_steps=3:eval_every=3:grid_min=10"
    make_compressor(spec, 4).fit(corpus, hold_out(labels, 20))
    assert len(first) == 4  # two stages, two learning rates each
    assert first[0] == first[1] and first[2] == first[3] and first[0] != first[2]


def test_ads_soft_mask_is_the_sigmoid_of_the_score_gap_over_tau() -> None:
    """soft = sigmoid((score - t) / tau), t halfway between the last kept and first dropped
    score: a higher tau flattens the relaxation (multiplying by tau sharpened it)."""
    selector = AdaptiveSelection(4, 2, torch.tensor([3.0, 2.0, 0.0, -1.0]), tau=2.0)
    _, soft = selector.masks()
    expected = torch.sigmoid((torch.tensor([3.0, 2.0, 0.0, -1.0]) - 1.0) / 2.0)
    torch.testing.assert_close(soft, expected)


def test_stage_one_trains_on_the_previous_prefix_with_any_later_layer(
    corpus: np.ndarray, labels: TrainingData
) -> None:
    """Stage 1's adapter shapes the full embedding (its previous prefix) whatever the later
    stages' layer: `stage_layer=none` drops that term at later stages only."""
    spec = "smec" + FAST + ":stage_layer=none:select=false:stage_steps=1"
    model = make_compressor(spec, 8).fit(corpus, labels)
    first = model.fit_info_.diagnostics["stages"][0]["first_losses"]
    assert first["previous"] > 0
    assert first["loss"] == pytest.approx(first["new"] + first["previous"])


@pytest.mark.parametrize("decay", [False, True])
def test_score_decay_reaches_the_ads_scores_optimiser(
    corpus: np.ndarray, labels: TrainingData, monkeypatch: pytest.MonkeyPatch, decay: bool
) -> None:
    """`score_decay=true` lets the scores' rate fall to 0 over the stage's steps; off, it
    stays at `score_lr` (the option was taken and recorded either way)."""
    import dive.compressors._smec_fit as smec_fit

    groups: list[Any] = []
    optimiser = smec_fit.AdamWGroups

    def recorded(given: Any, **kwargs: Any) -> Any:
        groups.append([tuple(g[1:]) for g in given])
        return optimiser(given, **kwargs)

    monkeypatch.setattr(smec_fit, "AdamWGroups", recorded)
    spec = "smec" + FAST + f":select=false:stage_steps=2:score_decay={str(decay).lower()}"
    make_compressor(spec, 8).fit(corpus, labels)
    assert groups == [[(0.001,), (0.05, 2 if decay else None)]]
