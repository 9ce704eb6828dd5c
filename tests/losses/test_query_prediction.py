"""Search-Adaptor's query-prediction term: grade-weighted L1 from predictions to the query."""

from __future__ import annotations

import pytest
import torch

from dive.losses import query_prediction_loss


def test_hand_computed_value_and_negatives_ignored() -> None:
    queries = torch.tensor([[1.0, 0.0]])
    predicted = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [9.0, 9.0]]])
    grades = torch.tensor([[2.0, 1.0, 0.0]])  # the far third candidate is a negative
    loss = query_prediction_loss(predicted, queries, grades)
    # 2 * mean(|-1|, |0|) + 1 * mean(|0|, |1|) = 1 + 0.5, one query
    assert float(loss) == pytest.approx(1.5)


def test_mask_drops_padding() -> None:
    queries = torch.zeros(1, 2)
    predicted = torch.ones(1, 2, 2)
    grades = torch.ones(1, 2)
    mask = torch.tensor([[True, False]])
    assert float(query_prediction_loss(predicted, queries, grades, mask)) == pytest.approx(1.0)


def test_negative_grades_contribute_nothing() -> None:
    """A grade below 0 (a judged-irrelevant document) weighed its distance negatively, so the
    loss rewarded pushing the prediction away from the query."""
    queries = torch.zeros(1, 2)
    predicted = torch.tensor([[[1.0, 1.0], [3.0, 3.0]]])
    grades = torch.tensor([[1.0, -1.0]])
    assert float(query_prediction_loss(predicted, queries, grades)) == pytest.approx(1.0)


def test_rejects_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="queries must be"):
        query_prediction_loss(torch.zeros(1, 2, 3), torch.zeros(1, 4), torch.zeros(1, 2))
