"""`Labels`: the one torch-side labelled-data object of DIVE's fit and the baselines'."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dive.compressors._baseline_modules import Supervision
from dive.compressors.base import LabelledQueries, TrainingData
from dive.compressors.search_adaptor import SearchAdaptorConfig
from dive.errors import DataError
from dive.training.labels import Labels

QUERIES = LabelledQueries(
    np.arange(12, dtype=np.float32).reshape(3, 4), ({0: 1, 2: 0}, {}, {1: 2, 3: 1})
)


def test_judged_maps_embeddings_and_indexes_positive_grades_only() -> None:
    labels = Labels.judged(QUERIES, 4, "training", lambda v: torch.from_numpy(v * 2))
    assert labels is not None and len(labels) == 2
    assert torch.equal(labels.embeddings, torch.from_numpy(QUERIES.embeddings[[0, 2]] * 2))
    assert labels.index.rows.tolist() == [0, 1, 3]  # positive grades only
    assert labels.index.offsets.tolist() == [0, 1, 3]


def test_judged_drops_queries_without_a_positive_and_checks_rows() -> None:
    labels = Labels.judged(QUERIES, 4, "training")
    assert labels is not None and labels.relevant == [{0: 1}, {1: 2, 3: 1}]
    assert torch.equal(labels.embeddings, torch.from_numpy(QUERIES.embeddings[[0, 2]]))
    assert Labels.judged(LabelledQueries(QUERIES.embeddings[:0], ()), 4, "x") is None
    with pytest.raises(DataError, match="validation query 2: relevant corpus row 3 is outside"):
        Labels.judged(QUERIES, 3, "validation")



@pytest.mark.parametrize("grades", [{}, {1: 0}, {1: -2}])
def test_judged_refuses_queries_none_of_which_has_a_positive_grade(grades: dict[int, int]) -> None:
    """A fit on them would train label-free, as if on the labels (it only warned)."""
    none = LabelledQueries(QUERIES.embeddings[:2], (grades, {0: 0}))
    with pytest.raises(DataError, match=r"^x queries: no query has a relevant row \(a grade above"):
        Labels.judged(none, 4, "x")

def test_judged_drops_a_query_judged_only_with_grade_zero() -> None:
    """A query whose judgements are all grade 0 has no relevant document: it was kept, with
    an empty index entry, and scored 0 in every validation."""
    labels = Labels.judged(LabelledQueries(QUERIES.embeddings, ({2: 0}, {0: 1}, {3: 0})), 4, "x")
    assert labels is not None and labels.relevant == [{0: 1}]
    assert torch.equal(labels.embeddings, torch.from_numpy(QUERIES.embeddings[[1]]))


def test_joined_then_subset_gives_back_the_parts() -> None:
    first = Labels.judged(QUERIES, 4, "training", lambda v: torch.from_numpy(v + 1))
    second = Labels.judged(QUERIES, 4, "training")
    assert first is not None and second is not None
    both = Labels.joined([first, second])
    back = both.subset(np.arange(2, 4))
    assert back.relevant == second.relevant and torch.equal(back.embeddings, second.embeddings)
    for name in ("offsets", "rows", "grades"):
        assert np.array_equal(getattr(back.index, name), getattr(second.index, name))


def test_joined_keeps_each_querys_judgements_with_its_embedding() -> None:
    """Parts are joined in the order given, judgements and embeddings alike: a mismatch
    trained each query on another query's documents."""
    first = Labels.judged(LabelledQueries(QUERIES.embeddings[:1], ({0: 1},)), 4, "a")
    second = Labels.judged(LabelledQueries(QUERIES.embeddings[2:], ({3: 2},)), 4, "b")
    assert first is not None and second is not None
    both = Labels.joined([first, second])
    assert both.relevant == [{0: 1}, {3: 2}]
    assert torch.equal(both.embeddings, torch.from_numpy(QUERIES.embeddings[[0, 2]]))
    assert both.index.rows.tolist() == [0, 3]


def test_the_baselines_supervision_holds_labels() -> None:
    train = TrainingData(QUERIES, LabelledQueries(QUERIES.embeddings[:1], ({1: 1},)))
    sup = Supervision(train, torch.from_numpy, 4, SearchAdaptorConfig())
    assert isinstance(sup.labels, Labels) and isinstance(sup.validation, Labels)
    assert sup.n_queries == 2 and sup.validation.relevant == [{1: 1}]
    unvalidated = Supervision(TrainingData(QUERIES), torch.from_numpy, 4, SearchAdaptorConfig())
    assert unvalidated.validation is None

