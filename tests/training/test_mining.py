"""Negative mining: judged positives never become negatives; skip and band are honoured."""

from __future__ import annotations

import numpy as np
import pytest

from dive.training import NegativePools, RelevanceIndex, mine_pools, pools_from_rankings


def test_pools_drop_judged_positives_then_skip_then_take_the_band() -> None:
    ranked = np.array([[4, 1, 8, 2, 6, 3, 0], [9, 8, 7, 6, 5, 4, 3]])
    relevant = [{1: 1, 2: 1}, {8: 1}]
    pools = pools_from_rankings(ranked, relevant, skip_top=1, band=3)
    # query 0 without positives: 4 8 6 3 0 -> skip 4 -> 8 6 3
    # query 1 without positives: 9 7 6 5 4 3 -> skip 9 -> 7 6 5
    assert pools.candidates.tolist() == [[8, 6, 3], [7, 6, 5]]
    assert pools.lengths.tolist() == [3, 3]


def test_short_rankings_leave_padded_pools() -> None:
    pools = pools_from_rankings(np.array([[0, 1, 2]]), [{0: 1, 1: 1}], band=4)
    assert pools.candidates.tolist() == [[2, -1, -1, -1]]
    assert pools.lengths.tolist() == [1]


def test_sample_draws_hard_from_the_pool_and_random_elsewhere_never_positives() -> None:
    n_corpus = 12
    relevant = [{0: 1, 1: 1, 2: 1}, {3: 1}]
    index = RelevanceIndex.from_relevant(relevant)
    pools = NegativePools(np.array([[5, 6, 7, -1], [8, 9, 10, 11]]), np.array([3, 4]))
    rng = np.random.default_rng(0)
    queries = np.array([0, 1] * 100)
    negatives = pools.sample(queries, index, n_corpus, hard=2, random=3, rng=rng)
    assert negatives.shape == (200, 5)
    assert not index.is_relevant(queries, negatives).any()
    hard = negatives[:, :2]
    assert set(hard[queries == 0].ravel().tolist()) <= {5, 6, 7}
    assert set(hard[queries == 1].ravel().tolist()) <= {8, 9, 10, 11}
    assert all(len(set(row)) == 2 for row in hard.tolist())  # without replacement
    assert set(negatives[:, 2:].ravel().tolist()) - {5, 6, 7, 8, 9, 10, 11}  # random reach further


def test_a_short_pool_is_filled_with_random_negatives() -> None:
    index = RelevanceIndex.from_relevant([{0: 1}])
    pools = NegativePools(np.array([[4, -1, -1]]), np.array([1]))
    negatives = pools.sample(
        np.zeros(50, np.int64), index, 6, hard=3, random=0, rng=np.random.default_rng(1)
    )
    assert (negatives[:, 0] == 4).all()
    assert (negatives >= 1).all() and (negatives < 6).all()


def test_empty_pools_give_random_negatives_only() -> None:
    index = RelevanceIndex.from_relevant([{0: 1}, {1: 1}])
    negatives = NegativePools.empty(2).sample(
        np.array([0, 1]), index, 5, hard=0, random=4, rng=np.random.default_rng(2)
    )
    assert negatives.shape == (2, 4)
    assert not index.is_relevant(np.array([0, 1]), negatives).any()


def test_mine_pools_ranks_by_similarity() -> None:
    corpus = np.eye(6, dtype=np.float32)
    queries = np.array([[1.0, 0.9, 0.8, 0.1, 0.0, 0.0]], dtype=np.float32)
    pools = mine_pools(queries, corpus, [{0: 1}], band=2)
    assert pools.candidates.tolist() == [[1, 2]]


def test_a_shortlist_excludes_each_querys_own_row_only() -> None:
    """With `rows` (a shortlist), `exclude` names corpus rows: one outside the shortlist, or
    none (-1), leaves the ranking whole, one inside drops that row alone (a mutant that took
    the shortlist position searchsorted gives dropped the nearest neighbour or row 0)."""
    rows = np.array([1, 3, 5, 6])
    weights = np.array([[0.0, 0.5, 0.0, 0.7, 0.0, 0.9, 0.3, 0.0]], dtype=np.float32)
    pools = mine_pools(np.repeat(weights, 3, axis=0), np.eye(8, dtype=np.float32)[rows],
                       [{0: 1}] * 3, band=4, exclude=np.array([-1, 3, 4]), rows=rows)
    assert pools.candidates.tolist() == [[5, 3, 1, 6], [5, 1, 6, -1], [5, 3, 1, 6]]


@pytest.mark.parametrize(("skip", "band", "match"), [(-1, 3, "skip_top >= 0"), (0, 0, "band >= 1")])
def test_bad_band_raises(skip: int, band: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        pools_from_rankings(np.zeros((1, 3), np.int64), [{}], skip_top=skip, band=band)


def test_bad_counts_raise() -> None:
    index = RelevanceIndex.from_relevant([{0: 1}])
    with pytest.raises(ValueError, match="hard \\+ random > 0"):
        NegativePools.empty(1).sample(np.array([0]), index, 4, 0, 0, np.random.default_rng(0))


def test_in_batch_negatives_point_into_the_batch_and_never_at_a_positive() -> None:
    from dive.training.mining import in_batch_negatives

    relevant = [{0: 1, 1: 1, 2: 1}, {3: 1}]
    index = RelevanceIndex.from_relevant(relevant)
    batch_rows = np.array([0, 1, 2, 3, 7, 9])  # most of the batch is relevant to query 0
    rng = np.random.default_rng(0)
    for _ in range(50):
        pos = in_batch_negatives(np.array([0, 1]), batch_rows, index, 5, rng)
        assert pos.shape == (2, 5) and pos.min() >= 0 and pos.max() < len(batch_rows)
        assert not set(batch_rows[pos[0]].tolist()) & {0, 1, 2}
        assert 3 not in batch_rows[pos[1]].tolist()
    assert in_batch_negatives(np.array([0]), batch_rows, index, 0, rng).shape == (1, 0)


def test_pools_mined_for_some_queries_are_placed_at_their_rows() -> None:
    some = NegativePools(np.array([[4, 5], [6, -1]]), np.array([2, 1]))
    placed = some.placed(np.array([1, 3]), 4)
    assert placed.candidates.tolist() == [[-1, -1], [4, 5], [-1, -1], [6, -1]]
    assert placed.lengths.tolist() == [0, 2, 0, 1]


def test_a_shortlist_ignores_an_excluded_row_past_its_last_row() -> None:
    """An own row beyond the shortlist's last row is outside it: the lookup of its position
    ran one past the end of `rows` and raised IndexError, stopping a refresh."""
    rows = np.array([1, 3, 5])
    corpus = np.eye(8, dtype=np.float32)[rows]
    queries = np.array([[0.0, 0.2, 0.0, 0.5, 0.0, 0.9, 0.0, 0.0]], dtype=np.float32)
    pools = mine_pools(queries, corpus, [{0: 1}], band=3, exclude=np.array([7]), rows=rows)
    assert pools.candidates.tolist() == [[5, 3, 1]]


def test_random_negatives_reach_every_corpus_row_including_the_last() -> None:
    """Random negatives are uniform over the whole corpus: the last row was never drawn."""
    index = RelevanceIndex.from_relevant([{}])  # nothing judged: no draw is redrawn
    negatives = NegativePools.empty(1).sample(
        np.zeros(200, np.int64), index, 3, hard=0, random=1, rng=np.random.default_rng(0)
    )
    assert set(negatives.ravel().tolist()) == {0, 1, 2}
