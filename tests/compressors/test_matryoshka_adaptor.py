"""Matryoshka-Adaptor: identity start, prefix output, its losses, determinism, training."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dive
from dive.arrays import l2_normalize
from dive.compressors import TrainingData, make_compressor
from dive.errors import DataError, DiveError
from dive.losses import (
    pairwise_similarity_loss,
    reconstruction_loss,
    topk_similarity_loss,
)
from dive.training import validation_ndcg
from dive.training.adapter import ResidualAdapter
from tests.compressors.conftest import FirstLosses

RankLoss = Callable[[np.ndarray, np.ndarray, TrainingData], float]  # the rank_loss fixture
HoldOut = Callable[[TrainingData, int], TrainingData]  # the hold_out fixture
FAST = ":steps=40:eval_every=10:corpus_batch=64:hidden=16"
SUPERVISED = FAST + ":query_batch=64"  # the unsupervised variant refuses a query batch


@pytest.fixture()
def labels(make_labels: Callable[..., TrainingData]) -> TrainingData:
    return make_labels(24)


def _objective(runtime_adapter: object, corpus: np.ndarray, dims: list[int]) -> float:
    """Matryoshka-Adaptor's unsupervised loss on the whole corpus (neighbours: k = 5)."""
    x = torch.from_numpy(corpus)
    adapted = torch.from_numpy(runtime_adapter(corpus))  # type: ignore[operator]
    sims = x @ x.T
    sims.fill_diagonal_(-2)
    nn = sims.topk(5, dim=1).indices
    return float(
        pairwise_similarity_loss(adapted, x, dims)
        + topk_similarity_loss(adapted, adapted[nn], x, x[nn], dims)
        + reconstruction_loss(adapted, x)
    )


def test_pair_and_topk_losses_are_zero_at_the_identity_adapter_with_only_d(
    corpus: np.ndarray,
) -> None:
    torch.manual_seed(0)
    adapter = ResidualAdapter(16, 16, "relu")  # zero-initialised last layer
    x = torch.from_numpy(corpus)
    with torch.no_grad():
        adapted = adapter(x)
        neighbours = x[torch.arange(1, 11).reshape(10, 1).repeat(1, 3)]
        assert float(pairwise_similarity_loss(adapted, x, [16])) == pytest.approx(0, abs=1e-6)
        topk = topk_similarity_loss(adapted[:10], adapter(neighbours), x[:10], neighbours, [16])
        assert float(topk) == pytest.approx(0, abs=1e-6)
        assert float(pairwise_similarity_loss(adapted, x, [4])) > 0.05


def test_output_is_the_renormalised_prefix_of_the_adapted_embedding(corpus: np.ndarray) -> None:
    model = make_compressor("matryoshka-adaptor-unsup" + FAST, 4).fit(corpus)
    runtime = model.fitted_runtime()
    assert runtime.adapter is not None and runtime.adapter.activation == "relu"
    np.testing.assert_array_equal(runtime.projection, np.eye(4, 16, dtype=np.float32))
    adapted = runtime.adapter(corpus)
    assert not np.allclose(adapted, corpus, atol=1e-4)  # training moved the adapter
    np.testing.assert_allclose(model.transform(corpus), l2_normalize(adapted[:, :4]), atol=1e-5)


def test_pca_basis_folds_into_the_runtime(corpus: np.ndarray) -> None:
    model = make_compressor("matryoshka-adaptor-unsup:basis=pca:steps=0", 4).fit(corpus)
    pca = make_compressor("pca-uncentered", 4).fit(corpus)
    np.testing.assert_allclose(model.transform(corpus), pca.transform(corpus), atol=1e-5)


def test_unsupervised_fit_lowers_its_objective(corpus: np.ndarray) -> None:
    model = make_compressor("matryoshka-adaptor-unsup" + FAST + ":steps=200:lr=0.003", 4)
    model.fit(corpus)
    runtime = model.fitted_runtime()
    before = _objective(lambda v: v, corpus, [4, 16])
    after = _objective(runtime.adapter, corpus, [4, 16])
    assert after < 0.95 * before


def test_supervised_fit_lowers_the_ranking_loss(
    corpus: np.ndarray, labels: TrainingData, rank_loss: RankLoss
) -> None:
    model = make_compressor("matryoshka-adaptor" + SUPERVISED + ":steps=0:supervised_steps=60", 4)
    model.fit(corpus, labels)
    assert "supervised" in model.fit_info_.diagnostics

    q = labels.train.embeddings
    start = rank_loss(l2_normalize(q[:, :4]), l2_normalize(corpus[:, :4]), labels)
    assert rank_loss(model.transform(q), model.transform(corpus), labels) < start


def test_deterministic_for_a_seed(corpus: np.ndarray) -> None:
    a = make_compressor("matryoshka-adaptor-unsup" + FAST, 4, seed=3).fit(corpus)
    b = make_compressor("matryoshka-adaptor-unsup" + FAST, 4, seed=3).fit(corpus)
    c = make_compressor("matryoshka-adaptor-unsup" + FAST, 4, seed=4).fit(corpus)
    np.testing.assert_array_equal(a.transform(corpus), b.transform(corpus))
    assert not np.array_equal(a.transform(corpus), c.transform(corpus))


def test_transform_is_batch_independent_and_n_params_counts_the_runtime(
    corpus: np.ndarray,
) -> None:
    model = make_compressor("matryoshka-adaptor-unsup" + FAST, 4).fit(corpus)
    whole = model.transform(corpus)
    parts = np.vstack([model.transform(corpus[i : i + 7]) for i in range(0, 200, 7)])
    np.testing.assert_allclose(whole, parts, atol=1e-6)
    assert model.n_params == (16 * 16 + 16) * 2 + 4 * 16
    assert F.normalize(torch.from_numpy(whole), dim=-1).shape == (200, 4)


def test_rejects_an_unknown_basis() -> None:
    with pytest.raises(DiveError, match="basis must be one of identity, pca"):
        make_compressor("matryoshka-adaptor:basis=svd", 4)


def test_fold_moves_the_rotation_into_the_runtime() -> None:
    """The runtime on raw x equals projection @ (u + f(u)) with u = R x, renormalised."""
    from dive.compressors._baseline_modules import fold

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    adapter = ResidualAdapter(8, 6, "relu")
    torch.nn.init.normal_(adapter.outer.weight, std=0.3)
    torch.nn.init.normal_(adapter.outer.bias, std=0.1)
    rot, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    rot = rot.astype(np.float32)
    projection = rng.standard_normal((3, 8)).astype(np.float32)
    x = l2_normalize(rng.standard_normal((5, 8)))
    with torch.no_grad():
        u = torch.from_numpy(x @ rot.T)
        expected = F.normalize(adapter(u) @ torch.from_numpy(projection).T, dim=-1).numpy()
    runtime = fold(adapter.to_runtime(), rot, projection)
    np.testing.assert_allclose(runtime(x), expected, atol=1e-5)


def test_nested_dims_are_the_default_and_single_is_kept(corpus: np.ndarray) -> None:
    from dive.compressors.matryoshka_adaptor import target_dims

    assert target_dims(384, 48, "nested") == [48, 96, 192, 384]
    assert target_dims(384, 100, "nested") == [100, 192, 384]
    assert target_dims(384, 48, "single") == [48, 384]
    nested = make_compressor("matryoshka-adaptor-unsup" + FAST, 4).fit(corpus)
    single = make_compressor("matryoshka-adaptor-unsup" + FAST + ":dims=single", 4).fit(corpus)
    assert nested.fit_info_.diagnostics["dims"] == [4, 8, 16]
    assert single.fit_info_.diagnostics["dims"] == [4, 16]
    assert not np.array_equal(nested.transform(corpus), single.transform(corpus))


def test_the_supervised_ranking_loss_scores_every_nested_dim(
    corpus: np.ndarray, labels: TrainingData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards the nested ranking term: stage 2's ranking loss compares queries with their
    candidates at each of the nested dims (4, 8 and 16), not only at the full width."""
    from dive.compressors import _matryoshka_fit
    from dive.losses.pairwise_similarity import prefix_cosine

    seen: set[int] = set()

    def spy(a: torch.Tensor, b: torch.Tensor, m: int) -> torch.Tensor:
        seen.add(m)
        return prefix_cosine(a, b, m)

    monkeypatch.setattr(_matryoshka_fit, "prefix_cosine", spy)
    model = make_compressor("matryoshka-adaptor" + SUPERVISED + ":steps=0:supervised_steps=2", 4)
    model.fit(corpus, labels)
    assert model.fit_info_.diagnostics["dims"] == [4, 8, 16]
    assert seen == {4, 8, 16}


def test_stage_two_chooses_its_learning_rate_on_validation(
    corpus: np.ndarray, labels: TrainingData, hold_out: HoldOut
) -> None:
    split = hold_out(labels, 16)
    model = make_compressor("matryoshka-adaptor" + SUPERVISED + ":supervised_steps=30:grid_min=8",
                            4).fit(corpus, split)
    stage2 = model.fit_info_.diagnostics["supervised"]
    assert stage2["grid"] == "lr 0.001/0.0001"
    assert [s["lr"] for s in stage2["settings"]] == [0.001, 0.0001]
    assert stage2["choice"]["n_queries"] == 8
    fit, val = model.fit_info_.summary, split.validation
    assert fit is not None and fit.n_queries == 8 and val is not None
    # the returned model is the (setting, checkpoint) chosen: it scores what the fit reports
    measured = validation_ndcg(model.transform(val.embeddings), model.transform(corpus),
                               val.relevant)
    assert measured == pytest.approx(fit.validation_score, abs=1e-6)


@pytest.mark.parametrize("method", ["matryoshka-adaptor-unsup", "matryoshka-adaptor"])
def test_a_one_row_corpus_is_refused_naming_the_method(method: str) -> None:
    """Its pairwise loss raised a plain ValueError ('needs at least 2 items'): a traceback
    from `dive fit`, where every other method fits or refuses in one line."""
    corpus = np.random.default_rng(0).standard_normal((1, 8)).astype(np.float32)
    queries = corpus + 0.1
    with pytest.raises(DataError, match=rf"^{method}: the corpus has 1 row; .* at least 2$"):
        dive.fit(corpus, method=f"{method}:steps=5", dim=2,
                 **({"queries": queries, "relevant": [[0]]} if method == "matryoshka-adaptor"
                    else {}))


def test_the_supervised_variant_refuses_zero_supervised_steps() -> None:
    """`matryoshka-adaptor:supervised_steps=0` trained stage 1 alone and recorded it as the
    supervised method, its `lr_grid` and other stage-2 options read by nothing."""
    with pytest.raises(DiveError, match="supervised_steps=0 runs no supervised stage; that "
                       "is matryoshka-adaptor-unsup"):
        make_compressor("matryoshka-adaptor:supervised_steps=0:lr_grid=0.1/0.2", 4)
    make_compressor("matryoshka-adaptor:supervised_steps=1", 4)
    make_compressor("matryoshka-adaptor-unsup", 4)  # records supervised_steps=0


def test_neighbours_as_many_as_the_pool_are_refused() -> None:
    """`neighbours` are drawn from the pool, so `neighbours == max_pool` is refused."""
    with pytest.raises(DiveError, match=r"neighbours must be < max_pool \(8\), got 8"):
        make_compressor("matryoshka-adaptor:max_pool=8:neighbours=8", 4)
    make_compressor("matryoshka-adaptor:max_pool=8:neighbours=7", 4)


def test_each_stage_two_setting_trains_on_the_same_random_stream(
    corpus: np.ndarray, labels: TrainingData, hold_out: HoldOut,
    trace_grid: Callable[..., FirstLosses],
) -> None:
    """Every learning rate of stage 2 starts from the end of stage 1 on a copy of the same
    stream: the same first batch, so the same first loss (the rate acts after it)."""
    from dive.compressors import _matryoshka_fit as fit

    seen: list[Any] = []  # each setting's config
    first = trace_grid(fit, seen.append)
    spec = "matryoshka-adaptor:steps=10:eval_every=10:corpus_batch=64:hidden=16:query_batch=64"
    model = make_compressor(spec + ":supervised_steps=10:grid_min=8", 4)
    model.fit(corpus, hold_out(labels, 16))
    assert [c.lr for c in seen] == [0.001, 0.0001]
    assert first[0]["loss"] == first[1]["loss"]


def test_topk_loss_neighbours_are_the_configured_k_nearest_other_rows(
    corpus: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """L_topk pairs each anchor with its `neighbours` nearest other corpus rows (original
    space), so `neighbours=5` is five, none of them the anchor."""
    from dive.compressors import _matryoshka_fit as fit

    searched: list[np.ndarray] = []
    top_k = fit.top_k

    def recorded(*args: Any, **kwargs: Any) -> Any:
        searched.append(top_k(*args, **kwargs)[0])
        return searched[-1], None

    monkeypatch.setattr(fit, "top_k", recorded)
    make_compressor("matryoshka-adaptor-unsup:steps=0:neighbours=5", 4).fit(corpus)
    (idx,) = searched
    sims = corpus @ corpus.T
    np.fill_diagonal(sims, -2)
    np.testing.assert_array_equal(idx, np.argsort(-sims, axis=1, kind="stable")[:, :5])


def test_stage_one_is_gated_on_a_fixed_sample_of_512_anchors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stage 1 reads its own loss on 512 fixed corpus anchors (not a training batch's size),
    so its checks see the objective without the batches' noise."""
    from dive.compressors import _matryoshka_fit as fit

    sizes: list[int] = []
    pairwise = fit.pairwise_similarity_loss

    def recorded(adapted: torch.Tensor, *args: Any) -> torch.Tensor:
        sizes.append(len(adapted))
        return pairwise(adapted, *args)

    monkeypatch.setattr(fit, "pairwise_similarity_loss", recorded)
    corpus = l2_normalize(np.random.default_rng(0).standard_normal((600, 8)).astype(np.float32))
    make_compressor("matryoshka-adaptor-unsup:steps=10:eval_every=10:corpus_batch=32", 4).fit(
        corpus)
    assert sorted(set(sizes)) == [32, 512]  # the batches, and the start's and each check's
