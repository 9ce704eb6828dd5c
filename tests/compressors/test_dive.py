"""DIVE: the model's algebra, options, determinism and that training helps on planted data."""

from __future__ import annotations

import dataclasses
import json
import types
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dive.arrays import l2_normalize
from dive.compressors import REGISTRY, Dive, DiveConfig, LabelledQueries, TrainingData
from dive.compressors import _dive_run as dive_run
from dive.compressors._dive_fit import _choose_start, _Race, _race
from dive.compressors._dive_net import DiveNet, initial_heads
from dive.compressors._dive_run import FitContext, pooled_labels
from dive.compressors.dive import POOL_SHARE, Arm
from dive.compressors.dive_plus import DivePlus
from dive.compressors.pca import PCA, PCAUncentered, principal_axes
from dive.compressors.registry import make_compressor
from dive.errors import DataError, DiveError, TrainingDiverged
from dive.evaluate.search import top_k
from dive.training import mine_pools, validation_ndcg
from dive.training.selection import Curve, Folds

# Small and quick: every fit below runs in well under a second.
FAST: dict[str, Any] = {
    "steps": 60,
    "eval_every": 10,
    "corpus_batch": 64,
    "ntxent_items": 32,
    "query_batch": 16,
    "lr": 3e-3,
    "negative_band": 10,
    "threads": 1,
}
FAST_MINE = DiveConfig().mine_every  # query batches drawn (and mined) at a time


def planted(seed: int = 0, n_docs: int = 300, n_topics: int = 15) -> dict[str, Any]:
    """Docs and queries whose relevance lives in low-variance dimensions.

    Dims 0..7 are high-variance nuisance noise, dims 8..23 hold topic centroids with less
    variance, so PCA to 4 dims keeps mostly noise and labels have something to teach.
    """
    rng = np.random.default_rng(seed)
    topics = rng.normal(size=(n_topics, 16)) * 0.6

    def draw(topic: np.ndarray) -> np.ndarray:
        nuisance = rng.normal(size=(len(topic), 8))
        signal = topics[topic] + 0.2 * rng.normal(size=(len(topic), 16))
        return l2_normalize(np.concatenate([nuisance, signal], axis=1).astype(np.float32))

    doc_topic = rng.integers(0, n_topics, n_docs)
    corpus = draw(doc_topic)

    def queries(n: int) -> LabelledQueries:
        topic = rng.integers(0, n_topics, n)
        relevant = tuple({int(r): 1 for r in np.flatnonzero(doc_topic == t)} for t in topic)
        return LabelledQueries(draw(topic), relevant)

    return {"corpus": corpus, "train": queries(80), "validation": queries(24), "test": queries(60)}


@pytest.fixture(scope="module")
def problem() -> dict[str, Any]:
    return planted()


def score(model: Dive | PCA, queries: LabelledQueries, corpus: np.ndarray) -> float:
    return validation_ndcg(
        model.transform(queries.embeddings), model.transform(corpus), queries.relevant
    )


# --- the model -------------------------------------------------------------------------


def test_adapter_is_the_identity_at_initialisation() -> None:
    rng = np.random.default_rng(0)
    heads = rng.normal(size=(3, 4, 10)).astype(np.float32)
    net = DiveNet(heads, np.zeros(10, np.float32), hidden=10)
    x = torch.from_numpy(l2_normalize(rng.normal(size=(6, 10)).astype(np.float32)))
    torch.testing.assert_close(net.adapter(x), x)
    expected = F.normalize(x @ torch.from_numpy(heads.mean(axis=0)).T, dim=-1)
    torch.testing.assert_close(net(x), expected)


def test_folded_runtime_equals_the_unfolded_torch_forward() -> None:
    rng = np.random.default_rng(1)
    heads = rng.normal(size=(4, 5, 12)).astype(np.float32)
    center = rng.normal(size=12).astype(np.float32) * 0.1
    net = DiveNet(heads, center, hidden=7)
    with torch.no_grad():  # a non-trivial adapter, as after training
        net.adapter.outer.weight.normal_(0.0, 0.3)
        net.adapter.outer.bias.normal_(0.0, 0.1)
    x = l2_normalize(rng.normal(size=(20, 12)).astype(np.float32))
    with torch.no_grad():
        h = net.adapter(torch.from_numpy(x)) - torch.from_numpy(center)
        views = [h @ torch.from_numpy(heads[k]).T for k in range(4)]  # head by head
        unfolded = F.normalize(torch.stack(views).mean(dim=0), dim=-1).numpy()
    runtime = net.to_runtime()
    assert runtime.projection is not None and runtime.projection.shape == (5, 12)
    np.testing.assert_allclose(runtime(x), unfolded, atol=1e-5)


def test_training_forward_through_folded_heads_matches_the_views_and_their_gradient() -> None:
    rng = np.random.default_rng(2)
    heads = rng.normal(size=(3, 4, 9)).astype(np.float32)
    x = torch.from_numpy(rng.normal(size=(5, 9)).astype(np.float32))
    grads = []
    for use_views in (True, False):
        net = DiveNet(heads, np.zeros(9, np.float32), hidden=6)
        z = F.normalize(net.views(x).mean(dim=1), dim=-1) if use_views else net(x)
        (z * torch.arange(4.0)).sum().backward()
        grads.append((z.detach(), net.heads.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])


def test_pca_noise_heads_average_exactly_to_the_pca_axes(problem: dict[str, Any]) -> None:
    _, axes = principal_axes(problem["corpus"], 4)
    heads = initial_heads(problem["corpus"], axes, DiveConfig(heads=4), np.random.default_rng(0))
    assert heads.shape == (4, 4, 24)
    assert not np.allclose(heads[0], heads[1])  # the views differ ...
    np.testing.assert_allclose(heads.mean(axis=0), axes, atol=1e-6)  # ... their mean is PCA


@pytest.mark.parametrize("init", ["pca-bootstrap", "random"])
def test_other_head_inits_have_the_right_shape(problem: dict[str, Any], init: str) -> None:
    _, axes = principal_axes(problem["corpus"], 4)
    heads = initial_heads(
        problem["corpus"],
        axes,
        DiveConfig(heads=2, head_init=init),  # type: ignore[arg-type]
        np.random.default_rng(0),
    )
    assert heads.shape == (2, 4, 24)
    assert not np.allclose(heads.mean(axis=0), axes, atol=1e-3)


# --- fitting ---------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "baseline"), [("uncentered", PCAUncentered), ("centered", PCA)])
def test_zero_steps_returns_the_pca_start(
    problem: dict[str, Any], start: str, baseline: type
) -> None:
    model = Dive(4, seed=0, steps=0, start=start).fit(problem["corpus"])
    reference = baseline(4).fit(problem["corpus"])
    x = problem["test"].embeddings
    np.testing.assert_allclose(model.transform(x), reference.transform(x), atol=1e-5)


def test_a_fit_that_keeps_its_start_ships_no_adapter(problem: dict[str, Any]) -> None:
    """The start's adapter is the identity (its output layer is zeros): it was saved, exported
    and run on every row, most of the model's parameters, and changed nothing."""
    from dive.compressors.runtime import Adapter

    runtime = Dive(4, seed=0, steps=0, start="centered").fit(problem["corpus"]).fitted_runtime()
    assert runtime.adapter is None and runtime.n_params == 24 + 4 * 24  # centre, projection
    rng = np.random.default_rng(0)
    identity = Adapter(rng.standard_normal((8, 24)).astype(np.float32),
                       rng.standard_normal(8).astype(np.float32),
                       np.zeros((24, 8), np.float32), np.zeros(24, np.float32))
    x = problem["test"].embeddings
    np.testing.assert_array_equal(dataclasses.replace(runtime, adapter=identity)(x), runtime(x))


@pytest.mark.parametrize(("start", "baseline"), [("uncentered", PCAUncentered), ("centered", PCA)])
def test_on_fewer_rows_than_dims_the_start_is_pca_in_any_row_order(
    problem: dict[str, Any], start: str, baseline: type
) -> None:
    """Its axes past the n - 1 the rows span were a basis that rounding and the row order
    picked (pca settles them: `settle_null_axes`): the same rows in another order gave other
    outputs, and nothing said that half of them held no more than the rows' one offset."""
    rows, x = problem["corpus"][:10], problem["test"].embeddings
    model = Dive(16, seed=0, steps=0, start=start).fit(rows)
    reordered = Dive(16, seed=0, steps=0, start=start).fit(rows[::-1].copy())
    np.testing.assert_allclose(model.transform(x), baseline(16).fit(rows).transform(x), atol=1e-5)
    np.testing.assert_allclose(reordered.transform(x), model.transform(x), atol=1e-5)


@pytest.mark.parametrize("large", [{}, {"shortlist": 40}])
def test_training_beats_its_own_start_on_held_out_and_test(
    problem: dict[str, Any], large: dict[str, int]
) -> None:
    data = TrainingData(problem["train"], problem["validation"])
    # a validation set of holdout_min queries is trusted alone; `large` mines as for a large
    # corpus, among each query's 40 nearest rows of the last check
    model = Dive(4, seed=0, holdout_min=24, **FAST, **large).fit(problem["corpus"], data)
    diag = model.fit_info_.diagnostics
    choice = diag["choice"]
    assert diag["selection"] == "holdout" and choice["n_queries"] == 24
    assert choice["candidate"] is not None and choice["step"] > 0
    assert choice["score"] > choice["base_score"] + 0.05
    pca = PCAUncentered(4).fit(problem["corpus"])
    test_dive, test_pca = (score(m, problem["test"], problem["corpus"]) for m in (model, pca))
    assert test_dive > test_pca + 0.05


def test_cross_fitting_chooses_on_every_labelled_query(problem: dict[str, Any]) -> None:
    # 30 labels: a 6-query validation set is too small to trust alone
    few = LabelledQueries(problem["train"].embeddings[:24], problem["train"].relevant[:24])
    val = LabelledQueries(problem["validation"].embeddings[:6], problem["validation"].relevant[:6])
    model = Dive(4, seed=0, **FAST).fit(problem["corpus"], TrainingData(few, val))
    diag = model.fit_info_.diagnostics
    assert diag["selection"] == "cross-fit" and diag["folds"] == 3
    assert diag["n_labelled"] == 30 and diag["choice"]["n_queries"] == 30
    assert diag["choice"]["candidate"] is not None  # the planted signal is real
    # the record's validation score is the kept arm's, not its start's
    selected, choice = diag["selected"], diag["choice"]
    assert (selected["step"], selected["n_queries"]) == (choice["step"], 30)
    assert selected["validation_ndcg@10"] == choice["score"] > choice["base_score"]
    pca = PCAUncentered(4).fit(problem["corpus"])
    test_dive, test_pca = (score(m, problem["test"], problem["corpus"]) for m in (model, pca))
    assert test_dive > test_pca + 0.03


def test_labels_that_are_all_validation_queries_are_cross_fitted(
    problem: dict[str, Any],
) -> None:
    """A holdout needs queries outside it to train on: with holdout_min validation queries and
    no training ones, a holdout choice (its arms trained on no label) failed the fit."""
    empty = LabelledQueries(np.zeros((0, problem["corpus"].shape[1]), np.float32), ())
    data = TrainingData(empty, problem["validation"])
    model = Dive(4, seed=0, holdout_min=24, **{**FAST, "steps": 20}).fit(problem["corpus"], data)
    diag = model.fit_info_.diagnostics
    assert diag["selection"] == "cross-fit" and diag["folds"] == 3
    assert diag["n_labelled"] == 24 and diag["choice"]["n_queries"] == 24


def test_same_seed_same_model_other_seed_other_model(problem: dict[str, Any]) -> None:
    data = TrainingData(problem["train"], problem["validation"])
    options = {**FAST, "steps": 20, "min_gain_z": 0.0}
    a, b, c = (
        Dive(4, seed=s, **options).fit(problem["corpus"], data).fitted_runtime() for s in (0, 0, 1)
    )
    assert a.adapter is not None and b.adapter is not None and c.adapter is not None
    for name in ("w1", "b1", "w2", "b2"):
        assert np.array_equal(getattr(a.adapter, name), getattr(b.adapter, name))
    assert np.array_equal(a.projection, b.projection)  # type: ignore[arg-type]
    assert not np.array_equal(a.projection, c.projection)  # type: ignore[arg-type]


@pytest.mark.parametrize("labelled", [False, True])
def test_a_fit_without_a_choice_draws_its_batches_by_its_seed(
    problem: dict[str, Any], monkeypatch: pytest.MonkeyPatch, labelled: bool
) -> None:
    """Without labels, or with select=false, the one run's batches come from the fit's seed:
    drawn from a fixed generator, every seed trained on the same rows."""
    drawn: list[np.ndarray] = []
    real = dive_run.sample_rows

    def spy(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
        drawn.append(real(n, size, rng))
        return drawn[-1]

    monkeypatch.setattr(dive_run, "sample_rows", spy)
    data = TrainingData(problem["train"]) if labelled else None
    first = []
    for seed in (0, 1):
        drawn.clear()
        options = {**FAST, "steps": 2, "select": False}
        Dive(4, seed=seed, **options).fit(problem["corpus"], data)
        first.append(drawn[0])
    assert not np.array_equal(*first)


def test_the_folds_of_a_cross_fitted_choice_are_dealt_by_the_seed(
    problem: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each seed cross-fits on its own split of the labelled queries, not one split for all."""
    splits: list[list[list[int]]] = []

    class Dealt(Exception):
        """The folds are known: nothing after them is needed."""

    def spy(self: _Race, fit: FitContext, new_net: Any, start_z: np.ndarray, arms: list[Arm],
            labels: Any, folds: Folds, *args: Any) -> None:
        splits.append([sorted(rows.tolist()) for rows in folds.held_out])
        raise Dealt

    monkeypatch.setattr(_Race, "__init__", spy)
    data = TrainingData(problem["train"])
    for seed in (0, 1):
        with pytest.raises(Dealt):
            Dive(4, seed=seed, **FAST).fit(problem["corpus"], data)
    assert len(splits) == 2 and splits[0] != splits[1]


def test_selection_runs_in_parallel_give_bitwise_the_same_model(problem: dict[str, Any]) -> None:
    data = TrainingData(problem["train"], problem["validation"])
    options = {**FAST, "steps": 20, "min_gain_z": 0.0, "grid": "0x1,1x1,1x3x3"}
    fits = [Dive(4, seed=0, workers=w, **options).fit(problem["corpus"], data) for w in (1, 3)]
    one, three = (f.fitted_runtime() for f in fits)
    assert one.adapter is not None and three.adapter is not None
    for name in ("w1", "b1", "w2", "b2"):
        assert np.array_equal(getattr(one.adapter, name), getattr(three.adapter, name))
    assert np.array_equal(one.projection, three.projection)  # type: ignore[arg-type]
    curves = [f.fit_info_.diagnostics["curves"] for f in fits]
    assert curves[0] == curves[1] and len(curves[0]) == 3
    logs = [f.fit_info_.diagnostics["log"] for f in fits]  # the refit's, trained ahead or not
    assert logs[0] == logs[1] and logs[0]


def test_race_runs_drop_their_corpus_outputs_between_pieces_and_fit_the_same_model(
        problem: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run of a race kept its last n x d corpus outputs after training (4 runs: the
    fit peaked at 2.9 GB on a 300k-document corpus, 2.0 GB without them); exact mining reads
    them only while the model is unchanged, so encoding again gives the same model."""
    data = TrainingData(problem["train"], problem["validation"])
    options = {**FAST, "steps": 20, "min_gain_z": 0.0, "grid": "0x1,1x1,1x3x3"}
    held: list[bool] = []
    train_to = dive_run.Run.train_to

    def spy(self: dive_run.Run, *args: Any, **kwargs: Any) -> dive_run.Run:
        out = train_to(self, *args, **kwargs)
        held.append(self.encoded[1] is not None)
        return out

    def fitted() -> np.ndarray:
        model = Dive(4, seed=0, **options).fit(problem["corpus"], data)
        return model.transform(problem["corpus"])

    monkeypatch.setattr(dive_run.Run, "train_to", spy)
    released = fitted()
    assert held and not any(held)
    held.clear()
    monkeypatch.setattr(dive_run.Run, "_release", lambda self: None)
    assert np.array_equal(fitted(), released) and all(held)


def test_the_kept_model_never_scores_below_its_start_on_the_queries_it_was_chosen_with(
) -> None:
    """The choice scores the fold runs, but a fit keeps their weight average (or a refit):
    with 16 labels that carry no signal (relevant documents drawn at random, seed 4) that
    model scored 0.0173 on the 16 queries it was chosen with, below its start's 0.0191,
    while its record said 0.0570. Such a model fails the final check: the start is kept."""
    checked = []
    for seed in (3, 4):
        p = planted(seed=seed)
        rng = np.random.default_rng(seed)
        labels = LabelledQueries(p["train"].embeddings[:16], tuple(
            {int(r): 1 for r in rng.choice(300, 5, replace=False)} for _ in range(16)))
        model = Dive(4, seed=seed, **{**FAST, "steps": 40}).fit(p["corpus"], TrainingData(labels))
        diag = model.fit_info_.diagnostics
        start = (PCA if diag["start"] == "centered" else PCAUncentered)(4).fit(p["corpus"])
        assert score(model, labels, p["corpus"]) >= score(start, labels, p["corpus"]) - 1e-9
        checked.append(diag["final"])
        if diag["final"].startswith("start"):
            assert diag["final_check"]["score"] < diag["final_check"]["base_score"]
            summary = model.fit_info_.summary  # what was kept, the start, and its score
            assert summary.selected["arm"] is None and summary.best_step == 0
            assert summary.validation_score == summary.start_score
            assert diag["selected"]["validation_ndcg@10"] == diag["choice"]["base_score"]
    assert checked == ["fold soup", "start (the kept model scored below it)"]


def test_shrink_moves_the_kept_weights_part_of_the_way_from_the_start(
    problem: dict[str, Any],
) -> None:
    data = TrainingData(problem["train"], problem["validation"])
    options = {**FAST, "steps": 20, "min_gain_z": 0.0}
    whole, shrunk = (Dive(4, seed=0, shrink=s, **options).fit(problem["corpus"], data)
                     for s in (False, True))
    start = Dive(4, seed=0, **{**options, "steps": 0}).fit(problem["corpus"], data)
    diag = shrunk.fit_info_.diagnostics
    assert diag["choice"] == whole.fit_info_.diagnostics["choice"]
    weight = diag["shrinkage"]
    assert 0 < weight < 1
    assert weight == pytest.approx(1 - (diag["choice"]["stderr"] / diag["choice"]["gain"]) ** 2,
                                   abs=1e-5)
    a, b, p0 = (m.fitted_runtime() for m in (whole, shrunk, start))
    assert a.adapter is not None and b.adapter is not None
    assert np.allclose(b.adapter.w2, weight * a.adapter.w2, atol=1e-6)  # the start's w2 is 0
    assert np.allclose(b.projection, p0.projection + weight * (a.projection - p0.projection),
                       atol=1e-6)
    assert "shrinkage" not in whole.fit_info_.diagnostics


def _race_on(
    problem: dict[str, Any], soup: bool = False, seed: int = 0, **options: Any
) -> _Race:
    """The race of a FAST fit (with `options`, by `seed`) on the planted problem, from the
    uncentred start."""
    config, corpus = DiveConfig(**{**FAST, **options}), problem["corpus"]
    data = TrainingData(problem["train"], problem["validation"])
    labels, _ = pooled_labels(data, len(corpus))
    assert labels is not None
    fit = FitContext(corpus, seed, config, len(labels))
    mean, axes = principal_axes(corpus, 4)
    heads = initial_heads(corpus, axes, config, np.random.default_rng(0))

    def new_net() -> DiveNet:
        return fit.new_net(heads, np.zeros_like(mean))

    folds = Folds.cross_fit(len(labels), config.folds, 0)
    return _Race(
        fit, new_net, new_net().encode(fit.corpus), config.arms(), labels, folds, soup=soup
    )


def test_a_refit_draws_its_batches_by_the_fit_seed(problem: dict[str, Any]) -> None:
    """The refit (after a holdout choice, or with soup=false) draws from the fit's seed: from
    a generator without it, every seed refit on the same batches."""
    hinge = 1  # FAST's grid: the label-free arm, then the hinge arm
    draws = [_race_on(problem, seed=seed)._refit(hinge).run.rng.integers(1 << 62)
             for seed in (0, 0, 1)]
    assert draws[0] == draws[1] != draws[2]


@pytest.mark.parametrize(("ahead", "steps"), [(60, 30), (60, 60), (20, 40), (60, 35)])
def test_a_refit_trained_ahead_is_bitwise_the_refit_trained_after_the_choice(
    problem: dict[str, Any], ahead: int, steps: int
) -> None:
    """Restored from a kept check (30, 60), resumed (40), or not kept and run again (35)."""
    early, late = _race_on(problem), _race_on(problem)
    hinge = 1  # FAST's grid: the label-free arm, then the hinge arm
    refit = early._refit(hinge)
    while refit.advance(ahead):
        pass
    assert refit.run.loop.step == ahead and sorted(refit.states) == list(range(10, ahead + 1, 10))
    net, log = early.refit(hinge, steps)
    ref_net, ref_log = late.refit(hinge, steps)
    assert log == ref_log and log[-1]["step"] == steps
    for name, value in ref_net.state_dict().items():
        assert torch.equal(net.state_dict()[name], value), name


def test_the_fold_soup_is_the_mean_of_the_fold_runs_the_choice_scored(
    problem: dict[str, Any],
) -> None:
    race, hinge = _race_on(problem, soup=True), 1
    curves = race.curves()
    best = curves[hinge].steps[int(np.argmax(curves[hinge].scores.mean(axis=1)))]
    for fold in range(3):  # every run keeps only its arm's best check
        assert list(race._run(hinge, fold).states) == [best]
    soup, log = race.soup(hinge, best)
    assert log and log[-1]["step"] == best
    other = _race_on(problem)  # the same runs trained again, without keeping weights
    runs = [other._run(hinge, fold).train_to(best).net.state_dict() for fold in range(3)]
    for name, value in soup.state_dict().items():
        assert torch.equal(value, torch.stack([run[name] for run in runs]).mean(0)), name
    assert not torch.equal(runs[0]["heads"], runs[1]["heads"])  # the folds differ


def test_a_run_on_a_plateau_keeps_the_first_of_its_tied_best_checks_for_the_soup(
    problem: dict[str, Any],
) -> None:
    """`choose` takes the first of tied best checks, so the runs must keep that one: keeping
    the last left the soup of the chosen step without its weights (a KeyError)."""
    race, hinge = _race_on(problem, soup=True, lr=1e-9), 1  # too slow to change a ranking
    curve = race.curves()[hinge]
    means = curve.scores.mean(axis=1)
    assert len(curve.steps) > 1 and np.all(means == means[0])  # every check ties
    for fold in range(3):
        assert list(race._run(hinge, fold).states) == [curve.steps[0]]
    _, log = race.soup(hinge, curve.steps[0])
    assert log[-1]["step"] == curve.steps[0]


def test_a_cross_fitted_fit_keeps_the_fold_soup_and_a_holdout_fit_refits(
    problem: dict[str, Any],
) -> None:
    data = TrainingData(problem["train"], problem["validation"])
    options = {**FAST, "steps": 20, "min_gain_z": 0.0}
    fits = {
        (soup, holdout): Dive(4, seed=0, soup=soup, holdout_min=holdout, **options)
        .fit(problem["corpus"], data).fit_info_.diagnostics
        for soup in (True, False) for holdout in (10, 100)
    }
    assert fits[True, 100]["selection"] == "cross-fit" and fits[True, 100]["final"] == "fold soup"
    assert fits[False, 100]["final"] == "refit"
    assert fits[True, 100]["choice"] == fits[False, 100]["choice"]  # the same race and choice
    assert fits[True, 100]["drift"] != fits[False, 100]["drift"]  # another model
    assert fits[True, 10]["selection"] == "holdout" and fits[True, 10]["final"] == "refit"
    assert fits[True, 10]["drift"] == fits[False, 10]["drift"]


@pytest.mark.parametrize(("hard", "random"), [(0, 4), (4, 0)])
def test_either_kind_of_negative_alone_trains(
    problem: dict[str, Any], hard: int, random: int
) -> None:
    data = TrainingData(problem["train"], problem["validation"])
    options = {**FAST, "steps": 20, "hard_negatives": hard, "random_negatives": random}
    model = Dive(4, seed=0, select=False, **options).fit(problem["corpus"], data)
    assert model.fit_info_.diagnostics["active_triplets"]  # the triplet term ran


def test_without_refit_a_holdout_fit_returns_the_model_it_validated(
    problem: dict[str, Any],
) -> None:
    data = TrainingData(problem["train"], problem["validation"])
    options = {**FAST, "min_gain_z": 0.0, "holdout_min": 10}
    kept = Dive(4, seed=0, refit=False, **options).fit(problem["corpus"], data)
    refit = Dive(4, seed=0, **options).fit(problem["corpus"], data)
    choice = kept.fit_info_.diagnostics["choice"]
    assert kept.fit_info_.diagnostics["selection"] == "holdout" and choice["candidate"] is not None
    assert choice == refit.fit_info_.diagnostics["choice"]  # the same race, the same choice
    val = problem["validation"]
    on_validation = validation_ndcg(
        kept.transform(val.embeddings), kept.transform(problem["corpus"]), val.relevant
    )
    assert on_validation == pytest.approx(choice["score"], abs=1e-6)
    corpus = problem["corpus"]  # a refit is another model
    assert not np.allclose(kept.transform(corpus), refit.transform(corpus), atol=1e-4)


def test_output_is_normalised_and_independent_of_batch_size(problem: dict[str, Any]) -> None:
    data = TrainingData(problem["train"], problem["validation"])
    model = Dive(4, seed=0, **{**FAST, "steps": 10}).fit(problem["corpus"], data)
    out = model.transform(problem["corpus"])
    assert out.shape == (300, 4) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    runtime = model.fitted_runtime()
    np.testing.assert_allclose(runtime(problem["corpus"], batch_size=7), out, atol=1e-6)


def test_without_labels_trains_unsupervised(problem: dict[str, Any]) -> None:
    model = Dive(4, seed=0, **{**FAST, "steps": 10}).fit(problem["corpus"])
    diag = model.fit_info_.diagnostics
    assert diag["selection"] == "unsupervised"
    assert diag["selected"]["arm"]["triplet_weight"] == 0.0 and diag["selected"]["step"] == 10
    assert diag["drift"] > 0
    assert "triplet" not in diag["log"][-1]


def test_a_single_label_trains_a_fixed_number_of_steps(problem: dict[str, Any]) -> None:
    one = LabelledQueries(problem["train"].embeddings[:1], problem["train"].relevant[:1])
    model = Dive(4, seed=0, **{**FAST, "steps": 15}).fit(problem["corpus"], TrainingData(one))
    diag = model.fit_info_.diagnostics
    assert diag["selection"] == "none" and diag["n_labelled"] == 1
    assert diag["selected"]["step"] == 15 and diag["selected"]["validation_ndcg@10"] is None
    assert len(diag["active_triplets"]) == 2  # logged at steps 10 and 15


@pytest.mark.parametrize(("n", "options", "folds"), [
    (2, {"steps": 20}, 2),  # the fewest labels a choice can be cross-fitted on
    (30, {"steps": 1, "max_steps": 1}, 3),  # the shortest run that trains at all
])
def test_two_labels_or_one_step_still_choose_on_the_labels(
    problem: dict[str, Any], n: int, options: dict[str, int], folds: int
) -> None:
    """Only a single label or steps=0 skip the choice: at the boundaries above it the fit
    trained the configured arm unchosen (selection "none") instead of racing its arms."""
    some = LabelledQueries(problem["train"].embeddings[:n], problem["train"].relevant[:n])
    model = Dive(4, seed=0, **{**FAST, **options}).fit(problem["corpus"], TrainingData(some))
    diag = model.fit_info_.diagnostics
    assert diag["selection"] == "cross-fit" and diag["folds"] == folds
    assert diag["choice"]["n_queries"] == n and len(diag["curves"]) == 2
    summary = model.fit_info_.summary
    assert summary is not None and summary.n_queries == n


def test_hard_negatives_are_re_mined_from_the_current_model_every_mine_every_steps(
    problem: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    some = LabelledQueries(problem["train"].embeddings[:40], problem["train"].relevant[:40])
    mined: list[tuple[np.ndarray, np.ndarray]] = []
    original = FitContext.pools

    def spy(fit: FitContext, net: DiveNet, corpus_z: np.ndarray, train: Any,
            rows: np.ndarray) -> Any:
        mined.append((corpus_z.copy(), rows))
        return original(fit, net, corpus_z, train, rows)

    monkeypatch.setattr(FitContext, "pools", spy)
    options = {**FAST, "steps": 12, "mine_every": 5, "query_batch": 3, "query_batch_max": 3,
               "select": False}
    Dive(4, seed=0, **options).fit(problem["corpus"], TrainingData(some))
    assert len(mined) == 3  # before steps 1 (the start's ranking), 6 and 11
    assert not np.array_equal(mined[1][0], mined[0][0])  # each from the model as it is then
    assert not np.array_equal(mined[2][0], mined[1][0])
    # only the queries of the coming mine_every steps are mined: at most 5 batches of 3
    assert all(3 <= len(rows) <= 15 and rows.max() < 40 for _, rows in mined)


def test_each_step_trains_positives_triplets_per_query_each_with_its_own_negatives(
    problem: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, ...]] = []
    original = dive_run.hinge_triplet_loss

    def spy(zq: torch.Tensor, zp: torch.Tensor, zn: torch.Tensor, *args: Any, **kw: Any) -> Any:
        seen.append((zq.shape[0], zp.shape[0], zn.shape[0], zn.shape[1]))
        if zq.shape[0] == 15:  # each query's output, once per positive, side by side
            assert torch.equal(zq[1::3], zq[0::3]) and torch.equal(zq[2::3], zq[0::3])
        return original(zq, zp, zn, *args, **kw)

    monkeypatch.setattr(dive_run, "hinge_triplet_loss", spy)
    options = {**FAST, "steps": 4, "query_batch": 5, "query_batch_max": 5, "select": False,
               "positives": 3}
    one = Dive(4, seed=0, **{**options, "positives": 1}).fit(
        problem["corpus"], TrainingData(problem["train"])
    )
    seen.clear()
    three = Dive(4, seed=0, **options).fit(problem["corpus"], TrainingData(problem["train"]))
    hard, random = DiveConfig().hard_negatives, DiveConfig().random_negatives
    assert seen == [(15, 15, 15, hard + random)] * 4  # 5 queries x 3 positives per step
    assert not np.allclose(one.transform(problem["corpus"]), three.transform(problem["corpus"]))


def test_fewer_labelled_queries_than_a_batch_scale_the_triplet_term_by_their_share(
    problem: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards the b / query_batch weight: with 4 labelled queries and a batch of 16, each
    step's triplet term enters the loss at triplet_weight x 4/16 (the only loss here: no
    anchor, one head), so one query pulls as hard as it would in a full batch."""
    steps = triplet_steps(monkeypatch)
    four = LabelledQueries(problem["train"].embeddings[:4], problem["train"].relevant[:4])
    options = {**FAST, "steps": 3, "select": False, "heads": 1, "anchor_weight": 0.0,
               "triplet_weight": 2.0, "query_batch": 16, "query_batch_max": 16}
    model = Dive(4, seed=0, **options).fit(problem["corpus"], TrainingData(four))
    assert model.fit_info_.diagnostics["query_batch"] == 16
    assert len(steps) == 3 and all(tri > 0 for _, tri in steps)
    for loss, tri in steps:
        assert loss == pytest.approx(2.0 * 4 / 16 * tri, rel=1e-5)


def test_a_full_batch_of_a_large_pool_weighs_the_triplet_term_once(
    problem: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pool large enough to draw an eighth of it (104 labels: 13 a step, above query_batch 2)
    fills its batch, so the triplet term enters at triplet_weight x 1; scaled by b over the
    configured query_batch instead of the batch drawn, it entered at x 6.5."""
    steps = triplet_steps(monkeypatch)
    data = TrainingData(problem["train"], problem["validation"])  # 80 + 24 pooled
    options = {**FAST, "steps": 3, "select": False, "heads": 1, "anchor_weight": 0.0,
               "triplet_weight": 2.0, "query_batch": 2, "query_batch_max": 64}
    model = Dive(4, seed=0, **options).fit(problem["corpus"], data)
    assert model.fit_info_.diagnostics["query_batch"] == 104 // POOL_SHARE
    assert len(steps) == 3 and all(tri > 0 for _, tri in steps)
    for loss, tri in steps:
        assert loss == pytest.approx(2.0 * tri, rel=1e-5)


def triplet_steps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """(loss, triplet term) of every training step of the fits that follow."""
    steps: list[tuple[float, float]] = []
    original = dive_run.Run._loss

    def spy(run: dive_run.Run) -> tuple[torch.Tensor, dict[str, float]]:
        loss, logged = original(run)
        steps.append((float(loss.detach()), logged["triplet"]))
        return loss, logged

    monkeypatch.setattr(dive_run.Run, "_loss", spy)
    return steps


def ntxent_items_seen(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The items each step's head-wise NT-Xent compares, appended as the fit runs."""
    items: list[int] = []
    original = dive_run.headwise_ntxent_loss

    def spy(views: torch.Tensor, *args: Any) -> torch.Tensor:
        items.append(views.shape[0])  # (items, heads, d)
        return original(views, *args)

    monkeypatch.setattr(dive_run, "headwise_ntxent_loss", spy)
    return items


def test_head_wise_ntxent_compares_only_the_first_ntxent_items_of_the_corpus_batch(
    problem: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards `ntxent_items`: the NT-Xent views are those of the batch's first 8 items, not
    of all 64 (its cost grows with the square of the items)."""
    items = ntxent_items_seen(monkeypatch)
    options = {**FAST, "steps": 3, "select": False, "heads": 2, "ntxent_items": 8}
    Dive(4, seed=0, **options).fit(problem["corpus"], TrainingData(problem["train"]))
    assert FAST["corpus_batch"] == 64
    assert items == [8] * 3  # one step each


def test_on_a_corpus_smaller_than_ntxent_items_ntxent_compares_the_corpus_batch_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On 40 corpus rows the batch is 40: `ntxent_items` = 64 took the first 64 items of the
    step's pass, the 40 corpus rows and 24 of its queries and positives (a positive is also a
    corpus row of the batch: one item twice, each the other's negative). NT-Xent is the corpus
    batch's: any `ntxent_items` of at least its 40 rows is the same fit."""
    small = planted(seed=1, n_docs=40, n_topics=5)
    labels = TrainingData(small["train"])
    items = ntxent_items_seen(monkeypatch)
    options = {**FAST, "steps": 3, "select": False, "heads": 2, "corpus_batch": 64}
    wide = Dive(4, seed=0, **{**options, "ntxent_items": 64}).fit(small["corpus"], labels)
    assert items == [40] * 3  # one step each, the whole corpus batch
    exact = Dive(4, seed=0, **{**options, "ntxent_items": 40}).fit(small["corpus"], labels)
    np.testing.assert_array_equal(wide.transform(small["corpus"]),
                                  exact.transform(small["corpus"]))


def test_graded_positives_change_only_fits_whose_labels_have_several_grades(
    problem: dict[str, Any]
) -> None:
    options = {**FAST, "steps": 6, "select": False}
    train = problem["train"]

    def fit(labels: LabelledQueries, **extra: Any) -> np.ndarray:
        model = Dive(4, seed=0, **options, **extra).fit(problem["corpus"], TrainingData(labels))
        return model.transform(problem["corpus"])

    assert np.array_equal(fit(train), fit(train, graded_positives=True))  # binary: bit for bit
    # each query's lower-numbered half of its rows graded 3: a draw now prefers them
    graded = LabelledQueries(train.embeddings, tuple(
        {r: 3 if r < np.median(list(rel)) else 1 for r in rel} for rel in train.relevant))
    assert np.array_equal(fit(graded), fit(train))  # uniform draws ignore grades
    assert not np.array_equal(fit(graded, graded_positives=True), fit(graded))


def test_a_centred_anchor_compares_with_the_cosines_of_the_centred_frozen_embeddings(
    problem: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    references: list[torch.Tensor] = []
    original = dive_run.similarity_anchor_loss

    def spy(compressed: torch.Tensor, frozen: torch.Tensor, *args: Any) -> Any:
        references.append(frozen)
        return original(compressed, frozen, *args)

    monkeypatch.setattr(dive_run, "similarity_anchor_loss", spy)
    options = {**FAST, "steps": 3, "select": False}
    corpus, train = problem["corpus"], TrainingData(problem["train"])

    def fit(**extra: Any) -> np.ndarray:
        return Dive(4, seed=0, **options, **extra).fit(corpus, train).transform(corpus)

    # from the uncentred start (mu = 0) the option changes nothing, bit for bit
    assert np.array_equal(fit(start="uncentered"), fit(start="uncentered", anchor_centred=False))

    def nearest_gap(reference: torch.Tensor, shift: np.ndarray) -> float:
        """How far the reference rows, moved by `shift`, are from the nearest corpus rows."""
        moved = reference.numpy() + shift
        return float(np.abs(moved[:, None, :] - corpus[None]).max(axis=2).min(axis=1).max())

    references.clear()
    centred = fit(start="centered")  # the default
    assert nearest_gap(references[0], corpus.mean(axis=0)) < 1e-5  # corpus rows minus mu
    references.clear()
    assert not np.array_equal(centred, fit(start="centered", anchor_centred=False))
    assert nearest_gap(references[0], np.zeros(corpus.shape[1])) == 0  # the rows themselves


def test_on_a_large_corpus_refreshes_re_rank_a_shortlist_from_the_last_check(
    problem: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    some = LabelledQueries(problem["train"].embeddings[:40], problem["train"].relevant[:40])
    mined: list[tuple[np.ndarray, np.ndarray, Any]] = []
    original = dive_run.mine_pools

    def spy(queries: np.ndarray, *args: Any, rows: Any = None, **kwargs: Any) -> Any:
        pools = original(queries, *args, rows=rows, **kwargs)
        mined.append((rows, np.arange(len(queries)), pools))  # the shortlist, the queries mined
        return pools

    monkeypatch.setattr(dive_run, "mine_pools", spy)
    options = {**FAST, "steps": 30, "mine_every": 5, "query_batch": 3, "query_batch_max": 3,
               "select": False, "shortlist": 20}
    Dive(4, seed=0, **options).fit(problem["corpus"], TrainingData(some))
    assert len(mined) == 6
    for among, rows, pools in mined:
        assert among is not None and len(among) <= 20 * len(rows) < len(problem["corpus"])
        hard = pools.candidates[pools.candidates >= 0]
        assert hard.size and np.isin(hard, among).all()  # corpus rows, all from the shortlist


def test_mining_among_some_rows_speaks_of_corpus_rows() -> None:
    corpus = np.eye(6, dtype=np.float32)
    query = np.array([[1.0, 0.9, 0.8, 0.1, 0.0, 0.7]], dtype=np.float32)
    rows = np.array([0, 1, 3, 5])
    pools = mine_pools(query, corpus[rows], [{5: 1}], band=2, rows=rows, exclude=np.array([0]))
    assert pools.candidates.tolist() == [[1, 3]]  # 0 is its own, 5 relevant, 2 not shortlisted
    outside = mine_pools(query, corpus[rows], [{5: 1}], band=2, rows=rows, exclude=np.array([2]))
    assert outside.candidates.tolist() == [[0, 1]]


def test_a_step_draws_an_eighth_of_a_large_pool_within_the_batch_bounds() -> None:
    default = DiveConfig()
    assert [default.batch_for(n) for n in (0, 16, 263, 264, 809, 1023, 5000)] == [
        32, 32, 32, 33, 101, 127, 128]
    assert DiveConfig(query_batch_max=32).batch_for(5000) == 32  # the fixed batch of before
    assert DiveConfig(query_batch=16, query_batch_max=8).batch_for(5000) == 16


def test_every_run_draws_the_batch_of_the_pool_size_and_the_record_says_it(
    problem: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = TrainingData(problem["train"], problem["validation"])  # 80 + 24 pooled
    drawn: list[int] = []
    original = FitContext.pools

    def spy(fit: FitContext, net: DiveNet, corpus_z: np.ndarray, train: Any,
            rows: np.ndarray) -> Any:
        drawn.append(len(rows))  # the distinct queries of the next mine_every batches
        return original(fit, net, corpus_z, train, rows)

    monkeypatch.setattr(FitContext, "pools", spy)
    options = {**FAST, "steps": 10, "query_batch": 2, "select": False}
    for cap, batch in ((64, 104 // POOL_SHARE), (2, 2)):
        drawn.clear()
        fit = Dive(4, seed=0, query_batch_max=cap, **options).fit(problem["corpus"], data)
        assert fit.fit_info_.diagnostics["query_batch"] == batch
        assert drawn and all(batch <= n <= FAST_MINE * batch for n in drawn)


@pytest.mark.parametrize(("path", "final"), [
    ({}, "fold soup"), ({"soup": False}, "refit"), ({"holdout_min": 1}, "refit"),
    ({"holdout_min": 1, "refit": False}, "holdout run")])
def test_the_paper_row_only_ever_trains_with_the_hinge(
    problem: dict[str, Any], path: dict[str, Any], final: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every triplet loss a `dive` fit trains is the hinge, on each way a fit ends (the fold
    soup, a holdout's run, a refit on every label), not only the arms its record names; the
    same spy sees `dive-plus`'s softplus arm train."""
    softs: list[bool] = []
    real = dive_run.hinge_triplet_loss

    def spy(*args: Any, soft: bool = False, **kwargs: Any) -> torch.Tensor:
        softs.append(soft)
        return real(*args, soft=soft, **kwargs)

    monkeypatch.setattr(dive_run, "hinge_triplet_loss", spy)
    data = TrainingData(problem["train"], problem["validation"])
    options = {**FAST, "steps": 20, "min_gain_z": 0.0, **path}
    model = Dive(4, seed=0, **options).fit(problem["corpus"], data)
    diag = model.fit_info_.diagnostics
    assert diag["final"] == final
    assert softs and not any(softs)
    assert [c["arm"]["loss"] for c in diag["curves"]] == ["hinge"] * 2
    assert diag["selected"]["arm"]["loss"] == "hinge"
    assert {arm.loss for arm in DiveConfig().arms()} == {"hinge"}
    json.dumps(diag)  # the results record stores it
    softs.clear()
    DivePlus(4, seed=0, **options).fit(problem["corpus"], data)
    assert any(softs)


@pytest.mark.parametrize("path", [{"soup": False}, {"holdout_min": 1}])
def test_a_refit_below_its_start_on_the_queries_it_was_chosen_with_keeps_the_start(
    problem: dict[str, Any], monkeypatch: pytest.MonkeyPatch, path: dict[str, Any]
) -> None:
    """The final check guards every way a fit ends, a refit on every label too (`soup=false`,
    and a holdout's arm refit), not only the fold soup."""
    real = _Race.refit

    def spoiled(self: _Race, candidate: int, steps: int) -> Any:
        net, log = real(self, candidate, steps)
        with torch.no_grad():
            for weights in net.parameters():
                weights.add_(torch.randn_like(weights, generator=torch.Generator().manual_seed(0)))
        return net, log

    monkeypatch.setattr(_Race, "refit", spoiled)
    data = TrainingData(problem["train"], problem["validation"])
    options = {**FAST, "steps": 20, "min_gain_z": 0.0, **path}
    model = Dive(4, seed=0, **options).fit(problem["corpus"], data)
    diag = model.fit_info_.diagnostics
    assert diag["final"] == "start (the kept model scored below it)"
    start = Dive(4, seed=0, **{**options, "steps": 0}).fit(problem["corpus"], data)
    np.testing.assert_array_equal(model.transform(problem["corpus"]),
                                  start.transform(problem["corpus"]))


def test_a_kept_model_that_ties_its_start_on_the_queries_it_was_chosen_with_is_kept(
    problem: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards the final check's strict `<`: only a kept model scoring below its start is
    replaced; a refit that scores exactly the start's nDCG@10 (here: the start's own
    weights) stays the refit."""
    monkeypatch.setattr(_Race, "refit", lambda self, candidate, steps: (self.new_net(), None))
    data = TrainingData(problem["train"], problem["validation"])
    options = {**FAST, "steps": 20, "min_gain_z": 0.0, "soup": False}
    diag = Dive(4, seed=0, **options).fit(problem["corpus"], data).fit_info_.diagnostics
    assert diag["choice"]["candidate"] is not None  # an arm was kept, then refit
    assert diag["final_check"]["score"] == diag["final_check"]["base_score"]  # the tie
    assert diag["final"] == "refit"


def test_dive_plus_adds_a_softplus_arm_and_keeps_every_other_default() -> None:
    plus = make_compressor("dive-plus", 96)
    assert isinstance(plus, DivePlus) and plus.method == "dive-plus"
    assert [a.loss for a in plus.options.arms()] == ["hinge"] * 2 + ["softplus"]
    ours = ("grid",)
    default = dataclasses.asdict(DiveConfig())
    assert {k: v for k, v in dataclasses.asdict(plus.options).items() if k not in ours} == {
        k: v for k, v in default.items() if k not in ours
    }
    assert make_compressor("dive-plus:heads=2", 96).options.heads == 2


def test_grid_entries_may_name_their_triplet_loss_and_margin() -> None:
    cfg = DiveConfig(lr=1e-4, triplet_weight=2.0, grid="0x1,1x10,1x10@softplus,1x10@hinge,1x1x3")
    assert cfg.arms() == [
        Arm(0.0, 1e-4, "hinge", 0.1),
        Arm(2.0, 1e-3, "hinge", 0.1),
        Arm(2.0, 1e-3, "softplus", 0.1),
        Arm(2.0, 1e-4, "hinge", pytest.approx(0.3)),  # type: ignore[arg-type]
    ]
    assert DiveConfig(loss="softplus", grid="1x1,1x1@hinge").arms() == [
        Arm(1.0, 1e-4, "softplus", 0.1),
        Arm(1.0, 1e-4, "hinge", 0.1),
    ]


def test_the_configured_loss_is_the_one_trained_without_selection(
    problem: dict[str, Any],
) -> None:
    data = TrainingData(problem["train"], problem["validation"])
    options = {**FAST, "steps": 20, "select": False, "start": "uncentered"}
    fits = {
        loss: Dive(4, seed=0, loss=loss, **options).fit(problem["corpus"], data)
        for loss in ("hinge", "softplus")
    }
    hinge, soft = (fits[k].fit_info_.diagnostics for k in ("hinge", "softplus"))
    assert (hinge["selected"]["arm"]["loss"], soft["selected"]["arm"]["loss"]) == (
        "hinge",
        "softplus",
    )
    # softplus never reaches zero: its logged triplet loss stays above the hinge's
    assert soft["log"][-1]["triplet"] > hinge["log"][-1]["triplet"]
    assert not np.array_equal(
        fits["hinge"].transform(problem["corpus"]), fits["softplus"].transform(problem["corpus"])
    )


def test_held_out_labels_the_start_already_ranks_perfectly_keep_the_start_exactly(
    problem: dict[str, Any],
) -> None:
    # validation queries whose relevant documents are the start's own top 3: nothing can
    # beat the start on them, so whatever training does, the fit must return the start
    reference = PCAUncentered(4).fit(problem["corpus"])
    val = problem["validation"].embeddings
    perfect = labels_ranked_perfectly_by(reference, val, problem["corpus"])
    data = TrainingData(problem["train"], perfect)
    model = Dive(4, seed=0, start="uncentered", holdout_min=24, **FAST)
    choice = model.fit(problem["corpus"], data).fit_info_.diagnostics["choice"]
    assert choice["base_score"] == pytest.approx(1.0)
    assert choice["candidate"] is None and choice["score"] == choice["base_score"]
    x = problem["test"].embeddings
    np.testing.assert_allclose(model.transform(x), reference.transform(x), atol=1e-5)


def labels_ranked_perfectly_by(
    model: PCA, queries: np.ndarray, corpus: np.ndarray, k: int = 3
) -> LabelledQueries:
    """Labels whose relevant documents are `model`'s own top k for each query."""
    top, _ = top_k(model.transform(queries), model.transform(corpus), k)
    return LabelledQueries(queries, tuple({int(r): 1 for r in row} for row in top))


@pytest.mark.parametrize(
    ("better", "worse"), [("centered", "uncentered"), ("uncentered", "centered")]
)
def test_labels_choose_the_better_of_the_two_pca_starts(
    problem: dict[str, Any], better: str, worse: str
) -> None:
    corpus, queries = problem["corpus"], problem["train"].embeddings[:40]
    models = {"centered": PCA(2).fit(corpus), "uncentered": PCAUncentered(2).fit(corpus)}
    labels = labels_ranked_perfectly_by(models[better], queries, corpus)
    planted = {name: score(m, labels, corpus) for name, m in models.items()}
    assert planted[better] == pytest.approx(1.0) and planted[worse] < 0.9  # the planted gap
    model = Dive(2, seed=0, **{**FAST, "steps": 0}).fit(corpus, TrainingData(labels))
    diag = model.fit_info_.diagnostics
    assert diag["start"] == diag["selected"]["start"] == better  # the record's both fields
    assert diag["start_ndcg@10"][worse] == pytest.approx(planted[worse], abs=1e-6)
    # no step trained: the record kept an arm all the same
    assert model.fit_info_.summary is not None
    assert model.fit_info_.summary.selected == {"start": better, "arm": None}
    np.testing.assert_allclose(model.transform(corpus), models[better].transform(corpus), atol=1e-5)


def test_a_race_from_the_centred_start_compares_its_arms_with_the_centred_starts_score(
    problem: dict[str, Any],
) -> None:
    """Guards the race's base: when the labels choose the centred start and arms train, the
    choice's base score is the centred start's nDCG@10 (1.0 on labels it ranks perfectly),
    not the uncentred one's."""
    corpus, queries = problem["corpus"], problem["train"].embeddings[:40]
    labels = labels_ranked_perfectly_by(PCA(2).fit(corpus), queries, corpus)  # centred wins
    model = Dive(2, seed=0, **{**FAST, "steps": 20}).fit(corpus, TrainingData(labels))
    diag = model.fit_info_.diagnostics
    assert diag["start"] == "centered" and diag["start_ndcg@10"]["uncentered"] < 0.9
    assert diag["choice"]["n_queries"] == 40
    assert diag["choice"]["base_score"] == pytest.approx(diag["start_ndcg@10"]["centered"],
                                                         abs=1e-6)


def test_without_selection_the_labels_choose_no_start_either(problem: dict[str, Any]) -> None:
    """`select=false` still chose the start on the labels, while the record said nothing was
    chosen on them (n_queries 0): the documented default start, uncentred, unless `start`
    names one."""
    corpus, queries = problem["corpus"], problem["train"].embeddings[:40]
    labels = labels_ranked_perfectly_by(PCA(2).fit(corpus), queries, corpus)  # centred wins
    options = {**FAST, "steps": 0, "select": False}
    model = Dive(2, seed=0, **options).fit(corpus, TrainingData(labels))
    diag, summary = model.fit_info_.diagnostics, model.fit_info_.summary
    assert diag["start"] == "uncentered" and "start_choice" not in diag
    assert summary is not None and summary.n_queries == 0
    named = Dive(2, seed=0, start="centered", **options).fit(corpus, TrainingData(labels))
    assert named.fit_info_.diagnostics["start"] == "centered"


# --- options ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "absent"),
    [
        ("heads=1", "ntxent"),
        ("ntxent_weight=0", "ntxent"),
        ("triplet_weight=0", "triplet"),
        ("anchor_weight=0", "anchor"),
    ],
)
def test_ablation_switches_remove_their_loss(
    problem: dict[str, Any], option: str, absent: str
) -> None:
    options = {**FAST, "steps": 10, "select": "false"}
    spec = "dive:" + ":".join(f"{k}={v}" for k, v in options.items()) + ":" + option
    model = make_compressor(spec, 4, seed=0)
    model.fit(problem["corpus"], TrainingData(problem["train"], problem["validation"]))
    log = model.fit_info_.diagnostics["log"][-1]
    assert absent not in log
    assert {"anchor", "ntxent", "triplet"} - {absent} <= set(log)


def test_options_change_the_fit(problem: dict[str, Any]) -> None:
    data = TrainingData(problem["train"], problem["validation"])
    outputs = [
        Dive(4, seed=0, **{**FAST, "steps": 20, **opt})
        .fit(problem["corpus"], data)
        .transform(problem["corpus"])
        for opt in ({}, {"loss": "softplus"}, {"heads": 1}, {"head_init": "random"})
    ]
    for other in outputs[1:]:
        assert not np.allclose(outputs[0], other, atol=1e-4)


def test_spec_options_are_typed_and_recorded() -> None:
    model = make_compressor("dive:heads=1:ntxent_weight=0:lr=0.001:hidden=none:grid=0x1", 96)
    assert isinstance(model, Dive)
    cfg = model.options
    assert (cfg.heads, cfg.ntxent_weight, cfg.lr, cfg.hidden) == (1, 0.0, 1e-3, None)
    assert isinstance(cfg.ntxent_weight, float)
    assert cfg.arms() == [Arm(0.0, 1e-3, "hinge", 0.1)]
    config = model.config()
    assert config["heads"] == 1 and config["dim"] == 96
    json.dumps(config)
    assert "dive" in REGISTRY


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"heads_count": 2}, "unknown option.*heads_count.*valid: hidden, lr, .* heads, head_init"),
        ({"heads": 0}, "heads must be >= 1"),
        ({"heads": 1.5}, "heads must be an integer"),
        ({"loss": "hinge2"}, "loss must be one of hinge, softplus"),
        ({"head_init": "pca"}, "head_init must be one of pca-noise, pca-bootstrap, random"),
        ({"start": "mean"}, "start must be one of select, uncentered, centered"),
        ({"lr": 0}, "lr must be > 0"),
        ({"lr": "fast"}, "lr must be a number"),
        ({"select": 1}, "select must be true or false"),
        ({"grid": "1:1"}, "grid entry"),
        ({"grid": "1x1@l2"}, "grid entry '1x1@l2'.*'@hinge' or '@softplus'"),
        ({"grid": "0x1,nanx1"}, "grid entry 'nanx1' is not 'TRIPLETxLR.*finite"),
        ({"grid": "infx1"}, "grid entry 'infx1'"),
        ({"grid": "1x1xnan"}, "grid entry '1x1xnan'"),
        ({"grid": "1xinf"}, "grid entry '1xinf'"),
        ({"hard_negatives": 0, "random_negatives": 0}, "hard_negatives \\+ random_negatives"),
        ({"positives": 0}, "positives must be >= 1"),
    ],
)
def test_bad_options_raise(options: dict[str, Any], match: str) -> None:
    with pytest.raises(DiveError, match=match):
        Dive(96, **options)


def test_bad_spec_option_raises_through_the_registry() -> None:
    with pytest.raises(DiveError, match="unknown option"):
        make_compressor("dive:nope=1", 96)


def test_relevant_rows_outside_the_corpus_raise(problem: dict[str, Any]) -> None:
    bad = LabelledQueries(problem["train"].embeddings[:2], ({0: 1}, {300: 1}))
    with pytest.raises(DataError, match="training query 1: relevant corpus row 300 is outside"):
        Dive(4, **FAST).fit(problem["corpus"], TrainingData(bad))


def test_a_one_row_corpus_still_fits(problem: dict[str, Any]) -> None:
    one = problem["corpus"][:1]
    model = Dive(1, **{**FAST, "steps": 3}).fit(one)
    assert model.transform(problem["corpus"]).shape == (300, 1)


def test_config_round_trips_through_json() -> None:
    model = Dive(48, seed=3, heads=2, loss="softplus", grid="1x1,1x3", hidden=64)
    rebuilt = Dive(**json.loads(json.dumps(model.config())))
    assert rebuilt.config() == model.config()
    assert rebuilt.options == model.options


# --- the choices, on planted evidence ----------------------------------------------------


class _PlantedStarts:
    """A stand-in for a fit whose two starts score the labelled queries as planted (in
    nDCG, which the start choice compares unless told `start_score="log-rank"`)."""

    def __init__(
        self, centred_gain: np.ndarray, deep_gain: np.ndarray | None = None,
        base: np.ndarray | float = 0.5, **config: Any
    ) -> None:
        self.config = DiveConfig(**{"start_score": "ndcg", **config})
        self.corpus = torch.zeros((3, 4))
        self.gain = {10: centred_gain, 100: centred_gain if deep_gain is None else deep_gain}
        self.base = base  # the uncentred start's score of each query

    def new_net(self, heads: np.ndarray, center: np.ndarray) -> Any:
        return type("Net", (), {"centred": bool(center.any()), "encode": lambda _, x: x})()

    def scores(self, net: Any, corpus_z: Any, labels: Any, k: int = 10) -> np.ndarray:
        return self.base + self.gain[k] * net.centred


@pytest.mark.parametrize(
    ("gain", "expected"),
    [
        (np.tile([0.03, -0.028], 10), "uncentered"),  # mean +0.001, s.e. 0.007: noise
        (np.full(20, 0.01) + np.tile([0.002, -0.002], 10), "centered"),  # small but real
        (np.zeros(20), "uncentered"),  # a tie keeps the default
    ],
)
def test_the_centred_start_replaces_the_default_only_on_real_evidence(
    gain: np.ndarray, expected: str
) -> None:
    fit = _PlantedStarts(gain)
    start, choice = _choose_start(fit, np.zeros((1, 2, 4)), np.ones(4), object())  # type: ignore
    assert start.name == expected
    assert choice is not None and choice.n_queries == 20
    assert choice.gain == pytest.approx(gain.mean())


def test_the_start_choice_pairs_the_two_starts_scores_query_by_query() -> None:
    """Queries of every difficulty (0 to 1), each 0.01 better from the centred start: a real
    gain only when each query's two scores are compared with each other; paired with another
    query's, the spread of difficulty hid it and the fit kept the uncentred start."""
    gain = np.full(20, 0.01) + np.tile([0.002, -0.002], 10)
    fit = _PlantedStarts(gain, base=np.linspace(0.0, 1.0, 20))
    start, choice = _choose_start(fit, np.zeros((1, 2, 4)), np.ones(4), object())  # type: ignore
    assert start.name == "centered"
    assert choice is not None and choice.gain == pytest.approx(0.01)
    assert choice.stderr < 0.001  # the spread of the gains, not of the difficulties


@pytest.mark.parametrize(("depth", "expected"), [(10, "uncentered"), (100, "centered")])
def test_the_start_choice_compares_ndcg_at_its_configured_depth(
    depth: int, expected: str
) -> None:
    noise = np.tile([0.03, -0.028], 10)  # what nDCG@10 shows: noise
    real = np.full(20, 0.01) + np.tile([0.002, -0.002], 10)  # what nDCG@100 shows: a gain
    fit = _PlantedStarts(noise, real, start_depth=depth)
    start, choice = _choose_start(fit, np.zeros((1, 2, 4)), np.ones(4), object())  # type: ignore
    assert start.name == expected
    shown = real if depth == 100 else noise
    assert choice is not None and choice.gain == pytest.approx(shown.mean())
    # the start's recorded scores (and the race's base) stay nDCG@10
    np.testing.assert_allclose(start.scores["centered"] - start.scores["uncentered"], noise)


def test_the_start_choice_can_compare_log_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    """`start_score="log-rank"` reads `log_rank_scores` of each start, not nDCG."""

    import dive.compressors._dive_fit as dive_fit

    noise = np.tile([0.03, -0.028], 10)  # what nDCG@10 shows: noise
    real = np.full(20, 0.01) + np.tile([0.002, -0.002], 10)  # what the log-ranks show

    def planted(queries: np.ndarray, *_: Any) -> np.ndarray:
        return -1.0 + real * queries[:, 0]  # the centred start's net encodes queries to ones

    monkeypatch.setattr(dive_fit, "log_rank_scores", planted)
    fit = _PlantedStarts(noise, start_score="log-rank")

    def new_net(heads: np.ndarray, center: np.ndarray) -> Any:
        centred = float(center.any())
        return types.SimpleNamespace(centred=centred,
                                     encode=lambda x: np.full((len(x), 1), centred))

    fit.new_net = new_net  # type: ignore[method-assign]
    labels = types.SimpleNamespace(embeddings=np.zeros((20, 4)), relevant=[{0: 1}] * 20,
                                   exclude=None)
    start, choice = _choose_start(fit, np.zeros((1, 2, 4)), np.ones(4), labels)  # type: ignore
    assert start.name == "centered"
    assert choice is not None and choice.gain == pytest.approx(real.mean())
    np.testing.assert_allclose(start.scores["centered"] - start.scores["uncentered"], noise)


class _PlantedRace:
    """Curves that rise until `peak` steps and fall after it, at any horizon."""

    def __init__(self, peak: int, steps: int = 100, every: int = 25,
                 scheme: str = "holdout") -> None:
        self.peak, self.every, self.horizon = peak, every, [steps]
        self.folds = types.SimpleNamespace(scheme=scheme)
        self.arms = [Arm(1.0, 1e-3, "hinge", 0.3)]
        self.noise = np.tile([0.001, -0.001], 10)

    def extend(self, candidate: int, steps: int) -> None:
        self.horizon[candidate] = steps

    def curves(self) -> list[Curve]:
        steps = tuple(range(self.every, self.horizon[0] + 1, self.every))
        rise = [s if s <= self.peak else 2 * self.peak - s for s in steps]
        return [Curve(steps, np.stack([0.5 + 1e-4 * r + self.noise for r in rise]))]


@pytest.mark.parametrize(
    ("peak", "horizon", "step"), [(50, 100, 50), (250, 400, 250), (900, 400, 400)]
)
def test_a_leader_still_rising_at_its_last_check_runs_longer_up_to_the_cap(
    peak: int, horizon: int, step: int
) -> None:
    race = _PlantedRace(peak)
    config = DiveConfig(steps=100, max_steps=400, extend_at=1.0)
    choice, curves = _race(race, np.full(20, 0.5), config, None, "dive")  # type: ignore
    assert race.horizon == [horizon] and curves[0].steps[-1] == horizon
    assert choice.candidate == 0 and choice.step == step


@pytest.mark.parametrize(
    ("peak", "extend_at", "scheme", "horizon"),
    [(150, 1.0, "holdout", 200), (150, 0.5, "holdout", 400), (75, 0.5, "holdout", 200),
     (25, 0.5, "holdout", 100), (130, 0.75, "holdout", 200), (150, 0.5, "cross-fit", 200)],
)
def test_extend_at_runs_a_holdout_leader_on_while_its_best_check_is_late_in_its_runs(
    peak: int, extend_at: float, scheme: str, horizon: int
) -> None:
    # the old rule (extend_at=1) stops a curve whose best is at 150 of 200 steps; at 0.5 a
    # best past half the horizon doubles it again, on a holdout's curve only
    race = _PlantedRace(peak, scheme=scheme)
    choice, _ = _race(race, np.full(20, 0.5), DiveConfig(steps=100, max_steps=400,
                                                         extend_at=extend_at), None,
                      "dive")  # type: ignore
    assert race.horizon == [horizon]
    assert choice.candidate == 0 and choice.step == peak - peak % 25


@pytest.mark.parametrize("extend_at", [0.0, 1.5])
def test_extend_at_outside_zero_to_one_is_refused(extend_at: float) -> None:
    with pytest.raises(DiveError, match="extend_at"):
        DiveConfig(extend_at=extend_at)


@pytest.mark.parametrize("select", [True, False])
def test_a_learning_rate_that_diverges_is_reported_as_such_not_as_bad_data(
    corpus: np.ndarray, make_labels: Any, select: bool
) -> None:
    # the model's outputs turn to NaN and would reach mining as "queries: row 0 contains NaN"
    dive = make_compressor(f"dive:lr=1e4:steps=30:select={str(select).lower()}", 4)
    with pytest.raises(TrainingDiverged, match="try a smaller learning rate"):
        dive.fit(corpus, make_labels(30))


@pytest.mark.usefixtures("default_signals")
def test_ctrl_c_during_parallel_runs_stops_every_worker_at_its_next_check(
    problem: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (or SIGTERM) reached the thread waiting on the selection's runs, but the pool's
    exit then waited for every worker to train on to its horizon: `dive fit --method
    dive:steps=1000000` ignored both for good. Now each worker stops at its next check."""
    import os
    import signal
    import threading

    calls, lock = [0], threading.Lock()
    loss = dive_run.Run._loss

    def counted(run: dive_run.Run) -> Any:
        with lock:
            calls[0] += 1
            n = calls[0]
        if n == 40:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C: to the process, read by main
        if n > 2_000:  # far past any check: a worker that was not told to stop
            raise RuntimeError("trained on after Ctrl-C")
        return loss(run)

    monkeypatch.setattr(dive_run.Run, "_loss", counted)
    data = TrainingData(problem["train"], problem["validation"])
    options = {**FAST, "steps": 100_000, "max_steps": 100_000, "min_gain_z": 0.0}
    with pytest.raises(KeyboardInterrupt):
        Dive(4, seed=0, workers=2, **options).fit(problem["corpus"], data)
    assert 40 <= calls[0] <= 40 + 2 * FAST["eval_every"]


def test_an_arm_with_a_zero_learning_rate_is_refused() -> None:
    """`grid=1x0`: an arm that would train with lr 0 (learn nothing) is refused."""
    with pytest.raises(DiveError, match="grid entry '1x0'"):
        make_compressor("dive:grid=1x0", 8)


def test_init_noise_of_one_is_allowed_and_above_it_refused() -> None:
    """The bound on `init_noise` is <= 1: 1 (all noise) is allowed, 1.0001 refused."""
    assert make_compressor("dive:init_noise=1", 8).config()["init_noise"] == 1
    with pytest.raises(DiveError, match="init_noise must be <= 1"):
        make_compressor("dive:init_noise=1.0001", 8)
