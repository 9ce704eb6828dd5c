"""The graded pairwise logistic ranking loss against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from dive.losses import graded_ranking_loss


def _two_queries() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    scores = torch.tensor([[0.9, 0.5, 0.1], [0.2, 0.6, 0.0]])
    grades = torch.tensor([[2.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])  # query 2: one padded slot
    return scores, grades, mask


def _sp(x: float) -> float:
    return math.log(1.0 + math.exp(x))


# query 1: pairs (2>1) w1, (2>0) w2, (1>0) w1; query 2: (1>0) w1 only (the third is padding)
HAND_SUM = 1 * _sp(0.5 - 0.9) + 2 * _sp(0.1 - 0.9) + 1 * _sp(0.1 - 0.5) + 1 * _sp(0.6 - 0.2)


def test_sum_reduction_equals_hand_computed_value() -> None:
    scores, grades, mask = _two_queries()
    loss = graded_ranking_loss(scores, grades, mask, reduction="sum")
    assert float(loss) == pytest.approx(HAND_SUM, rel=1e-6)


def test_mean_reduction_divides_by_the_number_of_ordered_pairs() -> None:
    scores, grades, mask = _two_queries()
    assert float(graded_ranking_loss(scores, grades, mask)) == pytest.approx(HAND_SUM / 4)


def test_padding_counts_without_the_mask() -> None:
    scores, grades, _ = _two_queries()
    unmasked = graded_ranking_loss(scores, grades, reduction="sum")
    assert float(unmasked) == pytest.approx(HAND_SUM + _sp(0.0 - 0.2), rel=1e-6)


def test_gradient_raises_positives_and_lowers_negatives() -> None:
    scores, grades, mask = _two_queries()
    scores.requires_grad_(True)
    graded_ranking_loss(scores, grades, mask).backward()
    assert scores.grad is not None
    assert scores.grad[0, 0] < 0 < scores.grad[0, 2]  # descent raises s_0, lowers s_2
    assert scores.grad[1, 2] == 0  # padding gets no gradient


def test_no_ordered_pair_gives_zero() -> None:
    loss = graded_ranking_loss(torch.rand(3, 4), torch.ones(3, 4))
    assert float(loss) == 0.0


def test_rejects_mismatched_shapes_and_bad_reduction() -> None:
    with pytest.raises(ValueError, match="same"):
        graded_ranking_loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="reduction"):
        graded_ranking_loss(torch.zeros(2, 3), torch.zeros(2, 3), reduction="max")  # type: ignore[arg-type]
