"""The learned baselines train on the labelled queries they can: one whose judged documents
are all missing from the corpus is left out, as DIVE leaves it out; labels of which none has a
positive grade are refused, by DIVE too."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from dive.compressors import LabelledQueries, TrainingData, make_compressor
from dive.errors import DataError

FAST = {"smec": "stage_steps=10:eval_every=10"}  # the others train `steps`
SUPERVISED = ["dive", "dive-plus", "matryoshka-adaptor", "search-adaptor", "smec"]


@pytest.mark.parametrize("method", ["matryoshka-adaptor", "search-adaptor", "smec"])
def test_a_query_without_a_relevant_document_is_left_out_of_a_baseline_fit(
    method: str, corpus: np.ndarray, make_labels: Callable[..., TrainingData],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Its judged documents are not in the corpus (BEIR's ArguAna has such): the fit is the
    one without it, where ranking candidates for it raised a bare ValueError."""
    train = make_labels(24).train
    spec = f"{method}:{FAST.get(method, 'steps=20:eval_every=10')}"
    plain = make_compressor(spec, 4).fit(corpus, TrainingData(train))
    orphan = LabelledQueries(np.vstack([train.embeddings, corpus[:1]]), (*train.relevant, {}))
    model = make_compressor(spec, 4).fit(corpus, TrainingData(orphan))
    np.testing.assert_array_equal(model.transform(corpus), plain.transform(corpus))
    assert "1 of 25 training queries have no relevant document in the corpus" in caplog.text


@pytest.mark.parametrize("grade", [0, -2, None])
@pytest.mark.parametrize("method", SUPERVISED)
def test_labels_without_a_positive_grade_are_refused(
    method: str, grade: int | None, corpus: np.ndarray,
    make_labels: Callable[..., TrainingData],
) -> None:
    """A fit on them trained label-free and returned that model as if fitted on the labels
    (`dive.fit(queries=, relevant=)` refuses them in the same words)."""
    train = make_labels(8).train
    relevant = tuple({} if grade is None else {row: grade for row in rel} for rel in train.relevant)
    unlabelled = TrainingData(LabelledQueries(train.embeddings, relevant))
    model = make_compressor(method, 4)
    with pytest.raises(DataError, match=r"^training queries: no query has a relevant row \("):
        model.fit(corpus, unlabelled)


def test_labels_of_the_wrong_type_are_one_clear_error(corpus: np.ndarray) -> None:
    # TrainingData(None) and a list of query vectors failed deep in the fit with an
    # AttributeError ('NoneType' object has no attribute 'embeddings'; ... 'shape')
    from dive.errors import DiveError

    with pytest.raises(DiveError, match=r"^training data: train must be LabelledQueries, got "
                                        r"None \(without labels, fit without TrainingData\)"):
        TrainingData(None)  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"^labelled queries: embeddings must be a 2-d numpy "
                                        r"array \(m, D\), got a list"):
        LabelledQueries(corpus[:2].tolist(), ({0: 1}, {1: 1}))  # type: ignore[arg-type]


@pytest.mark.parametrize("validation", [None, "empty"])
def test_training_data_without_any_labelled_query_is_refused(
    validation: str | None, corpus: np.ndarray,
) -> None:
    """A supervised fit given it trained label-free and returned that model as if fitted on
    labels, without a word."""
    empty = LabelledQueries(np.zeros((0, corpus.shape[1]), np.float32), ())
    with pytest.raises(DataError, match=r"^training data: no labelled queries \(train is empty "
                                        r"and there is no validation set\); to fit without "
                                        r"labels, pass no TrainingData$"):
        TrainingData(empty, None if validation is None else empty)
    assert len(TrainingData(empty, LabelledQueries(corpus[:1], ({0: 1},))).validation or ()) == 1


@pytest.mark.parametrize("method", ["matryoshka-adaptor", "search-adaptor", "smec"])
def test_labels_given_only_as_validation_train_a_baseline(
    method: str, corpus: np.ndarray, make_labels: Callable[..., TrainingData],
) -> None:
    """An empty training set beside validation queries: the baselines dropped the validation
    labels too and fitted label-free (0 queries, outputs bitwise the unsupervised fit's),
    where DIVE pools both; now they train on them, with nothing held out."""
    labels = make_labels(24).train
    spec = f"{method}:{FAST.get(method, 'steps=20:eval_every=10')}"
    empty = LabelledQueries(labels.embeddings[:0], ())
    model = make_compressor(spec, 4).fit(corpus, TrainingData(empty, labels))
    same = make_compressor(spec, 4).fit(corpus, TrainingData(labels))
    np.testing.assert_array_equal(model.transform(corpus), same.transform(corpus))
    free = make_compressor(spec, 4).fit(corpus)
    assert not np.array_equal(model.transform(corpus), free.transform(corpus))
