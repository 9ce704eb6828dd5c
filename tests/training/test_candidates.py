"""Graded candidate lists: positives with grades, never a judged positive among negatives."""

from __future__ import annotations

import numpy as np
import pytest

from dive.training.batches import RelevanceIndex
from dive.training.candidates import ranking_candidates
from dive.training.mining import pools_from_rankings

RELEVANT = ({3: 2, 7: 1}, {5: 1}, {i: 1 for i in range(10, 22)})  # 2, 1 and 12 positives


def _setup() -> tuple[RelevanceIndex, object]:
    index = RelevanceIndex.from_relevant(RELEVANT)
    ranked = np.tile(np.arange(40), (3, 1))
    return index, pools_from_rankings(ranked, RELEVANT, band=10, index=index)


def test_lists_hold_positives_then_ten_negatives_each() -> None:
    index, pools = _setup()
    cand = ranking_candidates(
        np.array([0, 1, 2]), index, pools, 60, np.random.default_rng(0), max_positives=8
    )
    assert cand.rows.shape == cand.grades.shape == cand.mask.shape == (3, 8 + 80)
    assert cand.rows[0, :2].tolist() == [3, 7] and cand.grades[0, :2].tolist() == [2.0, 1.0]
    assert cand.mask.sum(axis=1).tolist() == [2 + 20, 1 + 10, 8 + 80]  # capped at 8 positives
    assert (cand.grades[2, :8] == 1).all() and set(cand.rows[2, :8]) <= set(range(10, 22))
    for q, rel in enumerate(RELEVANT):
        negatives = cand.rows[q][cand.mask[q] & (cand.grades[q] == 0)]
        assert not set(negatives.tolist()) & set(rel)


def test_lists_are_as_wide_as_the_batchs_longest_not_the_cap() -> None:
    """A batch whose queries hold 2 and 1 positives pads to 2 + 20 columns: it was padded to
    the cap (8 + 80), four times the columns the loss reads, all of them masked."""
    index, pools = _setup()
    cand = ranking_candidates(
        np.array([0, 1]), index, pools, 60, np.random.default_rng(0), max_positives=8
    )
    assert cand.rows.shape == (2, 2 + 20)
    assert cand.mask.sum(axis=1).tolist() == [2 + 20, 1 + 10]


def test_half_of_the_negatives_come_from_the_hard_pool() -> None:
    index, pools = _setup()
    cand = ranking_candidates(np.array([1]), index, pools, 1000, np.random.default_rng(0))
    negatives = cand.rows[0, 1:11]
    pool = set(pools.candidates[1][pools.candidates[1] >= 0].tolist())  # type: ignore[attr-defined]
    assert sum(int(r) in pool for r in negatives[:5]) == 5


def test_rejects_bad_options() -> None:
    index, pools = _setup()
    with pytest.raises(ValueError, match="hard_fraction"):
        ranking_candidates(
            np.array([0]), index, pools, 60, np.random.default_rng(0), hard_fraction=2.0
        )


def _hard_negatives_of_query_1(queries: list[int], hard_fraction: float) -> tuple[int, int]:
    """(hard, all) negatives that query 1 (one positive) gets in a batch of `queries`; over a
    corpus of a million rows, a random one is all but never one of its 10 hard ones."""
    index, pools = _setup()
    cand = ranking_candidates(np.array(queries), index, pools, 10**6, np.random.default_rng(0),
                              hard_fraction=hard_fraction)
    negatives = cand.rows[0][cand.mask[0] & (cand.grades[0] == 0)]
    pool = set(pools.candidates[1][pools.candidates[1] >= 0].tolist())  # type: ignore[attr-defined]
    return sum(int(r) in pool for r in negatives), len(negatives)


def test_hard_fraction_is_the_share_of_hard_negatives() -> None:
    """Guards the hard share of a batch: hard_fraction=0.8 gives 8 hard negatives of 10,
    not 2 (the random share)."""
    assert _hard_negatives_of_query_1([1], 0.8) == (8, 10)


def test_a_query_with_one_positive_beside_one_with_twelve_keeps_its_hard_share() -> None:
    """Guards each query's own share: query 1 (one positive) batched with query 2 (twelve,
    capped at 8) gets 5 hard and 5 random negatives, not as many hard ones as the batch's
    widest list may hold."""
    assert _hard_negatives_of_query_1([1, 2], 0.5) == (5, 10)


def test_a_hard_fraction_of_zero_draws_random_negatives_only() -> None:
    """hard_fraction=0 (no mined negatives) is a valid setting, not an error."""
    assert _hard_negatives_of_query_1([1], 0.0) == (0, 10)


def test_a_query_with_more_positives_than_the_cap_draws_them_at_random() -> None:
    """Query 2 has 12 positives and a cap of 8: the 8 were always its first 8 rows, so rows
    20 and 21 never trained as positives."""
    index, pools = _setup()
    seen: set[int] = set()
    rng = np.random.default_rng(0)
    for _ in range(20):
        cand = ranking_candidates(np.array([2]), index, pools, 60, rng, max_positives=8)
        seen |= set(cand.rows[0, :8].tolist())
    assert seen == set(range(10, 22))
