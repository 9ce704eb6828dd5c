"""Search-Adaptor as a compressor: identity start, predictor unused at inference, training."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from dive.arrays import l2_normalize
from dive.compressors import Compressor, LabelledQueries, TrainingData, make_compressor
from dive.losses import query_prediction_loss, reconstruction_loss
from dive.training import validation_ndcg
from dive.training.adapter import ResidualAdapter
from tests.compressors.conftest import FirstLosses

RankLoss = Callable[[np.ndarray, np.ndarray, TrainingData], float]  # the rank_loss fixture
HoldOut = Callable[[TrainingData, int], TrainingData]  # the hold_out fixture
FAST = ":steps=60:eval_every=10:hidden=16:query_batch=32"


@pytest.fixture()
def labels(make_labels: Callable[..., TrainingData]) -> TrainingData:
    return make_labels(30, graded=True)


def test_recovery_and_prediction_terms_start_at_their_identity_values(
    corpus: np.ndarray,
) -> None:
    torch.manual_seed(0)
    adapter, predictor = ResidualAdapter(16, 16), ResidualAdapter(4, 4)
    x = torch.from_numpy(corpus)
    with torch.no_grad():
        assert float(reconstruction_loss(adapter(x), x)) == 0.0
        z = x[:3, :4]
        grades = torch.ones(1, 3)
        # an identity predictor: the prediction error is the distance to the query itself
        same = query_prediction_loss(predictor(z)[None], z[0][None], grades)
        assert float(same) == pytest.approx(
            float(query_prediction_loss(z[None], z[0][None], grades))
        )


def test_untrained_search_adaptor_is_truncation(corpus: np.ndarray) -> None:
    model = make_compressor("search-adaptor:steps=0", 4).fit(corpus, None)
    truncated = make_compressor("truncate", 4).fit(corpus)
    np.testing.assert_allclose(model.transform(corpus), truncated.transform(corpus), atol=1e-6)


def test_query_predictor_is_not_part_of_the_runtime(
    corpus: np.ndarray, labels: TrainingData
) -> None:
    model = make_compressor("search-adaptor" + FAST, 4).fit(corpus, labels)
    runtime = model.fitted_runtime()
    assert runtime.adapter is not None
    assert runtime.adapter.w1.shape == (16, 16) and runtime.adapter.w2.shape == (16, 16)
    np.testing.assert_array_equal(runtime.projection, np.eye(4, 16, dtype=np.float32))
    # adapter (2 * (16*16 + 16)) + projection (4*16): no room for the predictor's 2*(4*4+4)
    assert model.n_params == 2 * (16 * 16 + 16) + 4 * 16
    adapted = runtime.adapter(corpus)
    np.testing.assert_allclose(model.transform(corpus), l2_normalize(adapted[:, :4]), atol=1e-5)


def test_fit_lowers_the_ranking_loss(
    corpus: np.ndarray, labels: TrainingData, rank_loss: RankLoss
) -> None:
    def rank(model: Compressor) -> float:
        return rank_loss(model.transform(labels.train.embeddings), model.transform(corpus), labels)

    start = make_compressor("search-adaptor:steps=0", 4).fit(corpus, labels)
    model = make_compressor("search-adaptor" + FAST, 4).fit(corpus, labels)
    assert model.fit_info_.diagnostics["steps_run"] == 60  # no validation: trains to the end
    assert rank(model) < 0.95 * rank(start)


def test_the_returned_model_scores_its_reported_validation_score(
    corpus: np.ndarray, labels: TrainingData
) -> None:
    train = labels.train
    val = LabelledQueries(train.embeddings[20:], train.relevant[20:])
    split = TrainingData(LabelledQueries(train.embeddings[:20], train.relevant[:20]), val)
    model = make_compressor("search-adaptor" + FAST, 4).fit(corpus, split)
    fit = model.fit_info_.summary
    assert fit is not None and fit.n_queries == len(val) == 10
    assert model.fit_info_.diagnostics["selected_on_queries"] == 10
    # the gate restored the checkpoint it reports, not the last one
    encode = model.transform
    measured = validation_ndcg(encode(val.embeddings), encode(corpus), val.relevant)
    assert measured == pytest.approx(fit.validation_score, abs=1e-6)
    assert fit.start_score is not None
    assert model.fit_info_.diagnostics["history"][0] == (0, round(fit.start_score, 4))


@pytest.mark.parametrize("spec", ["search-adaptor" + FAST, "smec:stage_steps=20"])
def test_the_record_counts_only_the_validation_queries_the_choice_read(
    corpus: np.ndarray, labels: TrainingData, spec: str
) -> None:
    # 4 of 10 validation queries judge no document of the corpus: they are left out, and the
    # record said the choice was made on 10
    train = labels.train
    relevant = (*train.relevant[20:26], *({},) * 4)
    split = TrainingData(LabelledQueries(train.embeddings[:20], train.relevant[:20]),
                         LabelledQueries(train.embeddings[20:], relevant))
    model = make_compressor(spec, 4).fit(corpus, split)
    fit = model.fit_info_.summary
    assert fit is not None and fit.n_queries == 6
    assert model.fit_info_.diagnostics["selected_on_queries"] == 6


def test_deterministic_for_a_seed(corpus: np.ndarray, labels: TrainingData) -> None:
    a = make_compressor("search-adaptor" + FAST, 4, seed=5).fit(corpus, labels)
    b = make_compressor("search-adaptor" + FAST, 4, seed=5).fit(corpus, labels)
    c = make_compressor("search-adaptor" + FAST, 4, seed=6).fit(corpus, labels)
    np.testing.assert_array_equal(a.transform(corpus), b.transform(corpus))
    assert not np.array_equal(a.transform(corpus), c.transform(corpus))


def test_the_paper_grid_is_searched_and_recorded(
    corpus: np.ndarray, labels: TrainingData, hold_out: HoldOut
) -> None:
    split = hold_out(labels, 20)
    val = split.validation
    assert val is not None
    spec = "search-adaptor" + FAST + ":lr=0.01:grid_min=10"  # 10 validation queries: enough
    model = make_compressor(spec, 4).fit(corpus, split)
    diagnostics = model.fit_info_.diagnostics
    assert diagnostics["grid"] == "weight_rec 0/0.1/1 × weight_pred 0/0.01/0.1"
    tried = [(s["weight_rec"], s["weight_pred"]) for s in diagnostics["settings"]]
    assert tried == [(a, b) for a in (0.0, 0.1, 1.0) for b in (0.0, 0.01, 0.1)]
    choice = diagnostics["choice"]
    best = max(s["best_score"] for s in diagnostics["settings"])
    # the kept setting is the one with the best validation checkpoint (or the start)
    assert choice["score"] == pytest.approx(max(best, choice["base_score"]), abs=1e-6)
    # the record's own run fields are the best setting's (not the first setting's)
    top = next(s for s in diagnostics["settings"] if s["best_score"] == best)
    assert diagnostics["best_score"] == best and diagnostics["best_step"] == top["best_step"]
    assert diagnostics["settings"][0]["best_score"] < best  # so the first would not pass
    if choice["candidate"] is not None:
        kept = diagnostics["settings"][choice["candidate"]]
        assert diagnostics["selected"] == {k: kept[k] for k in ("lr", "weight_rec", "weight_pred")}
        assert kept["best_score"] == best  # each setting's record holds its own run
    encode = model.transform
    measured = validation_ndcg(encode(val.embeddings), encode(corpus), val.relevant)
    assert measured == pytest.approx(choice["score"], abs=1e-6)


def test_each_grid_setting_trains_from_the_same_adapter_and_query_predictor(
    corpus: np.ndarray, labels: TrainingData, hold_out: HoldOut, monkeypatch: pytest.MonkeyPatch,
    trace_grid: Callable[..., FirstLosses],
) -> None:
    """Guards the grid's reset of the query predictor: every weight pair starts training
    from the same adapter and predictor weights, not from the last setting's predictor, and
    on a copy of the same random stream (the same first batch: the same first ranking loss)."""
    from dive.compressors import _search_adaptor_fit as fit
    from dive.compressors._baseline_select import plain_adam
    from dive.training.loop import Optimiser

    params: list[torch.nn.Parameter] = []
    starts: list[list[torch.Tensor]] = []

    def capture(trained: list[torch.nn.Parameter]) -> Callable[..., Optimiser]:
        params.extend(trained)  # the adapter's, then the predictor's
        return plain_adam(trained)

    monkeypatch.setattr(fit, "plain_adam", capture)
    first = trace_grid(fit, lambda _c: starts.append([p.detach().clone() for p in params]))
    spec = "search-adaptor:steps=10:eval_every=5:hidden=16:query_batch=32:lr=0.01:grid_min=10"
    model = make_compressor(spec, 4).fit(corpus, hold_out(labels, 20))
    assert len(model.fit_info_.diagnostics["settings"]) == len(starts) == 9
    assert len(params) == 8  # two layers of weights and biases each
    moved = [i for i, start in enumerate(starts)
             if not all(torch.equal(a, b) for a, b in zip(start, starts[0], strict=True))]
    assert moved == []  # the settings that started elsewhere
    assert len({parts["rank"] for parts in first.values()}) == 1 and len(first) == 9


def test_with_fewer_validation_queries_than_grid_min_the_configured_weights_train(
    corpus: np.ndarray, labels: TrainingData, hold_out: HoldOut
) -> None:
    split = hold_out(labels, 20)  # 10 validation queries, under the default grid_min=100
    model = make_compressor("search-adaptor" + FAST, 4).fit(corpus, split)
    diagnostics = model.fit_info_.diagnostics
    assert diagnostics["grid"] == "none" and len(diagnostics["settings"]) == 1
    assert {k: diagnostics["settings"][0][k] for k in ("weight_rec", "weight_pred")} == {
        "weight_rec": 0.1,
        "weight_pred": 0.01,
    }
    assert diagnostics["choice"]["n_queries"] == 10  # the checkpoint is still chosen on them


def test_without_validation_queries_the_configured_weights_train(
    corpus: np.ndarray, labels: TrainingData
) -> None:
    model = make_compressor("search-adaptor" + FAST, 4).fit(corpus, labels)
    diagnostics = model.fit_info_.diagnostics
    assert diagnostics["selected"] == {"lr": 0.001, "weight_rec": 0.1, "weight_pred": 0.01}
    fit = model.fit_info_.summary
    assert "choice" not in diagnostics and fit is not None and fit.validation_score is None
    assert fit.selected["setting"] == diagnostics["selected"] and fit.best_step == 60


def test_min_gain_z_keeps_the_start_unless_a_setting_beats_it_by_that_many_errors(
    corpus: np.ndarray, labels: TrainingData, hold_out: HoldOut
) -> None:
    """A baseline can ask for DIVE's standard-error rule: with a bar no setting clears, the
    untrained start (truncation) is returned, where the default (any gain) leaves it."""
    split = hold_out(labels, 20)
    spec = "search-adaptor" + FAST + ":lr=0.01:grid_min=10:weight_rec_grid=0.1:weight_pred_grid=0"
    start = make_compressor("search-adaptor:steps=0", 4).fit(corpus, split).transform(corpus)
    strict = make_compressor(spec + ":min_gain_z=100", 4).fit(corpus, split)
    assert strict.fit_info_.diagnostics["choice"]["candidate"] is None
    np.testing.assert_array_equal(strict.transform(corpus), start)
    default = make_compressor(spec, 4).fit(corpus, split)
    assert default.fit_info_.diagnostics["choice"]["candidate"] == 0
