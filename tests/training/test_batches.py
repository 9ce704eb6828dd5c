"""RelevanceIndex: flattened labels, positive sampling and relevance lookups."""

from __future__ import annotations

import numpy as np
import pytest

from dive.training import RelevanceIndex, sample_rows
from dive.training.batches import BatchQueue

RELEVANT = [{5: 1, 2: 2}, {7: 1}, {}, {0: 1, 9: 1, 3: 2}]


def test_from_relevant_flattens_sorted_rows_per_query() -> None:
    index = RelevanceIndex.from_relevant(RELEVANT)
    assert len(index) == 4
    assert index.counts.tolist() == [2, 1, 0, 3]
    assert index.rows.tolist() == [2, 5, 7, 0, 3, 9]
    assert index.grades.tolist() == [2.0, 1.0, 1.0, 1.0, 2.0, 1.0]


def test_non_positive_grades_are_not_relevant() -> None:
    index = RelevanceIndex.from_relevant([{1: 0, 2: 1, 3: -1}])
    assert index.rows.tolist() == [2]


def test_sampled_positives_are_always_relevant_and_cover_every_row() -> None:
    index = RelevanceIndex.from_relevant(RELEVANT)
    rng = np.random.default_rng(0)
    queries = np.array([0, 1, 3] * 200)
    rows = index.sample_positives(queries, rng)
    assert index.is_relevant(queries, rows).all()
    assert set(rows[queries == 3].tolist()) == {0, 3, 9}


def test_sampling_a_positive_for_a_query_without_one_raises() -> None:
    index = RelevanceIndex.from_relevant(RELEVANT)
    with pytest.raises(ValueError, match="query 2 has no relevant row"):
        index.sample_positives(np.array([0, 2]), np.random.default_rng(0))


def test_distinct_positives_are_relevant_distinct_and_at_most_what_a_query_has() -> None:
    index = RelevanceIndex.from_relevant(RELEVANT)
    owner, rows = index.sample_distinct(np.array([3, 1, 0]), 2, np.random.default_rng(0))
    assert owner.tolist() == [0, 0, 1, 2, 2]  # query 1 has one relevant row
    assert index.is_relevant(np.array([3, 1, 0])[owner], rows).all()
    assert len(set(rows[:2].tolist())) == 2 and set(rows[3:].tolist()) == {2, 5}
    drawn = {
        tuple(sorted(index.sample_distinct(np.array([3]), 2, np.random.default_rng(s))[1]))
        for s in range(40)
    }
    assert drawn == {(0, 3), (0, 9), (3, 9)}  # every pair of query 3's three rows


def test_one_distinct_positive_is_sample_positives_draw_for_draw() -> None:
    index = RelevanceIndex.from_relevant(RELEVANT)
    queries = np.array([0, 1, 3] * 20)
    owner, rows = index.sample_distinct(queries, 1, np.random.default_rng(5))
    assert owner.tolist() == list(range(60))
    assert rows.tolist() == index.sample_positives(queries, np.random.default_rng(5)).tolist()
    with pytest.raises(ValueError, match="query 2 has no relevant row"):
        index.sample_distinct(np.array([0, 2]), 3, np.random.default_rng(0))


def test_graded_sampling_draws_each_row_in_proportion_to_its_grade() -> None:
    index = RelevanceIndex.from_relevant([{4: 3, 8: 1}, {1: 1, 2: 1, 6: 2}])
    queries = np.array([0, 1] * 20_000)
    rows = index.sample_positives(queries, np.random.default_rng(0), by_grade=True)
    assert np.mean(rows[queries == 0] == 4) == pytest.approx(0.75, abs=0.01)
    assert np.mean(rows[queries == 1] == 6) == pytest.approx(0.5, abs=0.01)
    uniform = index.sample_positives(queries, np.random.default_rng(0))
    assert np.mean(uniform[queries == 0] == 4) == pytest.approx(0.5, abs=0.01)
    _, pairs = index.sample_distinct(np.array([1] * 5_000), 2, np.random.default_rng(1),
                                     by_grade=True)
    # drawn one after the other by grade: row 6 (grade 2) is in 5/6 of the pairs (first with
    # chance 1/2, else second with 2/3), rows 1 and 2 (grade 1) in 7/12 each (uniform: 2/3)
    in_pairs = pairs.reshape(-1, 2)
    assert np.mean((in_pairs == 6).any(axis=1)) == pytest.approx(5 / 6, abs=0.015)
    assert np.mean((in_pairs == 1).any(axis=1)) == pytest.approx(7 / 12, abs=0.015)


def test_graded_sampling_of_one_grade_per_query_draws_as_uniform_draw_for_draw() -> None:
    # binary labels (and a query whose rows share a grade) change nothing, bit for bit
    index = RelevanceIndex.from_relevant([{5: 1, 2: 1}, {7: 2, 3: 2, 9: 2}, {0: 1}])
    queries = np.array([0, 1, 2] * 50)
    for per_query in (1, 2):
        plain = index.sample_distinct(queries, per_query, np.random.default_rng(3))
        graded = index.sample_distinct(queries, per_query, np.random.default_rng(3),
                                       by_grade=True)
        assert [a.tolist() for a in plain] == [a.tolist() for a in graded]


def test_is_relevant_keeps_the_shape_and_answers_per_query() -> None:
    index = RelevanceIndex.from_relevant(RELEVANT)
    rows = np.array([[5, 7, 2], [7, 5, 0], [5, 7, 0], [9, 1, 3]])
    expected = [[True, False, True], [True, False, False], [False] * 3, [True, False, True]]
    assert index.is_relevant(np.arange(4), rows).tolist() == expected


def test_sample_rows_is_without_replacement_when_possible() -> None:
    rng = np.random.default_rng(0)
    rows = sample_rows(10, 10, rng)
    assert sorted(rows.tolist()) == list(range(10))
    assert sample_rows(3, 8, rng).shape == (8,)
    with pytest.raises(ValueError, match="cannot sample from 0 rows"):
        sample_rows(0, 1, rng)


def test_distinct_positives_ignore_grades_unless_asked() -> None:
    """Without `by_grade` distinct rows are drawn uniformly: they were drawn by grade whenever
    a query's grades differed, so graded labels changed what an ungraded fit trained on."""
    index = RelevanceIndex.from_relevant([{1: 1, 2: 1, 6: 2}])
    _, pairs = index.sample_distinct(np.zeros(5_000, np.int64), 2, np.random.default_rng(1))
    # uniform: each row is in 2/3 of the pairs (by grade, row 6 would be in 5/6)
    assert np.mean((pairs.reshape(-1, 2) == 6).any(axis=1)) == pytest.approx(2 / 3, abs=0.015)


def test_a_batch_queue_mines_for_all_its_batches_and_hands_them_out_in_order() -> None:
    """One round of mining serves the `ahead` batches drawn for it: it was given the first
    batch's queries only (the others trained on no hard negatives), and batches came out
    last-drawn first."""
    drawn = iter(np.array([[4, 1], [1, 7], [0, 3], [9, 8], [2, 2], [6, 5]]))
    mined: list[list[int]] = []
    queue = BatchQueue(ahead=3)
    batches = [queue.next(lambda: next(drawn), lambda q: mined.append(q.tolist()))
               for _ in range(4)]
    assert [b.tolist() for b in batches] == [[4, 1], [1, 7], [0, 3], [9, 8]]
    assert mined == [[0, 1, 3, 4, 7], [2, 5, 6, 8, 9]]
