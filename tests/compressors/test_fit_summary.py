"""Every learned fit fills the same typed fields (`FitSummary`), consistently; training-free
fits have none."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest

from dive.compressors import TrainingData
from dive.compressors.base import FitSummary
from dive.compressors.registry import make_compressor
from dive.training import validation_ndcg

HoldOut = Callable[[TrainingData, int], TrainingData]  # the hold_out fixture

# Small and quick, one spec per learned method (the registry name first).
FAST = {
    "dive": "dive:steps=40:eval_every=10:corpus_batch=64:ntxent_items=32:query_batch=16",
    "dive-plus": "dive-plus:steps=40:eval_every=10:corpus_batch=64:ntxent_items=32:query_batch=16",
    "matryoshka-adaptor-unsup": "matryoshka-adaptor-unsup:steps=40:eval_every=10:corpus_batch=64"
                                ":hidden=16",
    "matryoshka-adaptor": "matryoshka-adaptor:steps=40:supervised_steps=30:eval_every=10"
                          ":corpus_batch=64:query_batch=64:hidden=16",
    "search-adaptor": "search-adaptor:steps=60:eval_every=10:hidden=16:query_batch=32",
    "smec": "smec:stage_steps=40:eval_every=10:hidden=16:corpus_batch=32:query_batch=32"
            ":memory_size=96",
}
BASELINES = ("matryoshka-adaptor", "search-adaptor", "smec")


@pytest.fixture()
def split(make_labels: Callable[..., TrainingData], hold_out: HoldOut) -> TrainingData:
    """20 training and 10 validation queries."""
    return hold_out(make_labels(30, graded=True), 20)


def check_consistent(fit: FitSummary) -> None:
    """The fields agree with each other, whatever the method."""
    assert 0 <= fit.best_step <= fit.steps_run and fit.seconds > 0
    json.dumps(fit.as_record(), allow_nan=False)  # JSON-ready as it is
    if fit.n_queries == 0:
        assert fit.validation_curve == () and fit.validation_score is None
        assert fit.start_score is None
        return
    steps = [step for step, _ in fit.validation_curve]
    assert steps == sorted(set(steps)) and steps[0] == 0 and steps[-1] == fit.steps_run
    curve = dict(fit.validation_curve)
    assert curve[0] == pytest.approx(fit.start_score, abs=1e-12)  # checkpoint 0: the start
    assert fit.best_step in curve
    assert curve[fit.best_step] == pytest.approx(fit.validation_score, abs=1e-12)


@pytest.mark.parametrize("method", list(FAST))
def test_every_learned_fit_fills_every_typed_field(
    method: str, corpus: np.ndarray, split: TrainingData
) -> None:
    model = make_compressor(FAST[method], 4).fit(corpus, split)
    fit = model.fit_info_.summary
    assert fit is not None and fit.selected and fit.steps_run > 0
    check_consistent(fit)
    if not model.supervised:  # trained on the corpus only: chose nothing on labelled queries
        assert fit.n_queries == 0
    elif method in BASELINES:  # chose on the validation queries
        assert fit.n_queries == 10
    else:  # DIVE chooses on every labelled query, cross-fitted
        assert fit.n_queries == 30
    assert model.fit_info_.diagnostics  # the free-form detail is still there


@pytest.mark.parametrize("method", BASELINES)
def test_a_baseline_returns_the_model_its_validation_score_measures(
    method: str, corpus: np.ndarray, split: TrainingData
) -> None:
    model = make_compressor(FAST[method], 4).fit(corpus, split)
    fit, val = model.fit_info_.summary, split.validation
    assert fit is not None and fit.validation_score is not None and val is not None
    measured = validation_ndcg(model.transform(val.embeddings), model.transform(corpus),
                               val.relevant)
    assert measured == pytest.approx(fit.validation_score, abs=1e-6)


@pytest.mark.parametrize("method", ["dive", "search-adaptor", "smec", "matryoshka-adaptor"])
def test_without_validation_queries_nothing_is_scored(
    method: str, corpus: np.ndarray, make_labels: Callable[..., TrainingData]
) -> None:
    spec = FAST[method] + (":select=false" if method == "dive" else "")
    fit = make_compressor(spec, 4).fit(corpus, make_labels(20)).fit_info_.summary
    assert fit is not None and fit.n_queries == 0
    check_consistent(fit)
    assert fit.best_step == fit.steps_run  # the configured setting, trained to its end


@pytest.mark.parametrize("method", ["pca", "random", "truncate", "frozen"])
def test_training_free_fits_have_no_summary(method: str, corpus: np.ndarray) -> None:
    model = make_compressor(method, None if method == "frozen" else 4).fit(corpus)
    assert model.fit_info_.summary is None


def test_a_summary_refuses_inconsistent_fields() -> None:
    with pytest.raises(ValueError, match=r"best_step 5 is not in 0\.\.4"):
        FitSummary((), 5, 4, {}, 0, None, None, 0.1)
    with pytest.raises(ValueError, match="need the queries"):
        FitSummary(((0, 0.5),), 0, 0, {}, 0, 0.5, 0.5, 0.1)


def test_a_record_is_a_copy_the_summary_does_not_share() -> None:
    summary = FitSummary(((0, 0.5), (10, 0.6)), 10, 10, {"arm": {"lr": 0.001}}, 4, 0.6, 0.5,
                         0.1)
    record = summary.as_record()
    record["selected"]["arm"]["lr"] = 1.0  # a caller editing its record (it was the model's)
    assert summary.selected == {"arm": {"lr": 0.001}}


class _SlowImport:
    """A meta-path finder that takes `seconds` before the import of `name` goes on."""

    def __init__(self, name: str, seconds: float) -> None:
        self.name, self.seconds = name, seconds

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname == self.name:
            import time

            time.sleep(self.seconds)
        # None: the next finder imports it


@pytest.mark.parametrize(("method", "module"), [
    ("dive", "dive.compressors._dive_fit"), ("search-adaptor", "dive.training.seeding")])
def test_a_fits_seconds_count_its_imports(
    method: str, module: str, corpus: np.ndarray, split: TrainingData,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summary's seconds started after the fit's lazy imports (torch's, about 1.7 s on a
    process's first fit), where the record's `fit_seconds` beside it counted them: two wall
    times of one fit that disagreed."""
    import sys

    parent, _, child = module.rpartition(".")
    # the re-import binds the new module as the package's attribute too: put the old one back
    # after, or a later test's `import dive.compressors._dive_fit` patched another module
    # than the functions it had imported from it
    monkeypatch.setattr(sys.modules[parent], child, sys.modules[module])
    monkeypatch.delitem(sys.modules, module)
    monkeypatch.setattr(sys, "meta_path", [_SlowImport(module, 0.5), *sys.meta_path])
    model = make_compressor(FAST[method], 4).fit(corpus, split)
    assert model.fit_info_.summary is not None and model.fit_info_.summary.seconds >= 0.5


def test_a_dive_start_chosen_on_the_labels_with_no_training_is_scored_on_them(
    corpus: np.ndarray, split: TrainingData
) -> None:
    """`dive:steps=0` chose its start on every labelled query, then recorded n_queries 0 and
    no score, as if it had chosen nothing."""
    model = make_compressor("dive:steps=0", 4).fit(corpus, split)
    fit, diag = model.fit_info_.summary, model.fit_info_.diagnostics
    assert fit is not None and fit.n_queries == 30 and fit.steps_run == 0
    check_consistent(fit)
    assert fit.validation_score == pytest.approx(diag["start_ndcg@10"][diag["start"]], abs=1e-6)
    # the diagnostics' own account of what was kept says the same (it said 0 queries, no score)
    assert diag["selected"]["n_queries"] == 30
    assert diag["selected"]["validation_ndcg@10"] == round(fit.validation_score, 6)
