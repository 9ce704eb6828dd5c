"""The validation gate keeps the best checkpoint (0 included) and stops on patience."""

from __future__ import annotations

import numpy as np
import pytest

from dive.training import ValidationGate, validation_ndcg


def test_checkpoint_zero_survives_when_training_only_hurts() -> None:
    gate = ValidationGate(every=10)
    gate.offer(0, 0.5, lambda: "start")
    for step, score in [(10, 0.4), (20, 0.45), (30, 0.3)]:
        gate.offer(step, score, lambda s=step: f"state{s}")
    assert gate.best is not None
    assert (gate.best.step, gate.best.state) == (0, "start")
    assert [s for s, _ in gate.history] == [0, 10, 20, 30]


def test_best_later_checkpoint_wins_and_state_is_copied_only_then() -> None:
    calls: list[int] = []
    gate = ValidationGate(every=5)

    def state(step: int) -> str:
        calls.append(step)
        return f"state{step}"

    for step, score in [(0, 0.2), (5, 0.3), (10, 0.25), (15, 0.35), (20, 0.1)]:
        gate.offer(step, score, lambda s=step: state(s))
    assert gate.best is not None and gate.best.state == "state15"
    assert calls == [0, 5, 15]


@pytest.mark.parametrize(("prefer_later", "winner"), [(False, 0), (True, 10)])
def test_ties_follow_prefer_later(prefer_later: bool, winner: int) -> None:
    gate = ValidationGate(prefer_later=prefer_later)
    gate.offer(0, 0.5, lambda: 0)
    gate.offer(10, 0.5, lambda: 10)
    assert gate.best is not None and gate.best.step == winner


def test_patience_counts_checks_without_improvement() -> None:
    gate = ValidationGate(every=1, patience=2)
    gate.offer(0, 0.5, lambda: None)
    gate.offer(1, 0.4, lambda: None)
    assert not gate.should_stop
    gate.offer(2, 0.45, lambda: None)
    assert gate.should_stop
    gate.offer(3, 0.6, lambda: None)
    assert not gate.should_stop


def test_min_delta_demands_a_real_improvement() -> None:
    gate = ValidationGate(min_delta=0.05)
    gate.offer(0, 0.5, lambda: 0)
    gate.offer(1, 0.54, lambda: 1)
    assert gate.best is not None and gate.best.step == 0


def test_min_delta_holds_under_prefer_later_too() -> None:
    """prefer_later lets an equal score win, not a smaller step than min_delta: a later
    checkpoint 0.04 above the best replaced it although min_delta asked for 0.05."""
    gate = ValidationGate(min_delta=0.05, prefer_later=True)
    gate.offer(0, 0.5, lambda: 0)
    assert not gate.offer(1, 0.54, lambda: 1)
    assert gate.best is not None and gate.best.step == 0
    assert gate.offer(2, 0.6, lambda: 2) and gate.best.step == 2


def test_due_every_n_steps() -> None:
    gate = ValidationGate(every=25)
    assert [s for s in range(1, 101) if gate.due(s)] == [25, 50, 75, 100]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"every": 0}, "every must be"),
        ({"patience": 0}, "patience must be"),
        ({"min_delta": -1.0}, "min_delta must be"),
    ],
)
def test_bad_settings_raise(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ValidationGate(**kwargs)  # type: ignore[arg-type]


def test_validation_ndcg_is_one_for_a_perfect_ranking_and_lower_otherwise() -> None:
    corpus = np.eye(4, dtype=np.float32)
    queries = np.eye(4, dtype=np.float32)[:2]
    assert validation_ndcg(queries, corpus, [{0: 1}, {1: 1}]) == pytest.approx(1.0)
    assert validation_ndcg(queries, corpus, [{1: 1}, {0: 1}]) < 0.7


def test_log_rank_scores_read_every_relevant_document_at_its_depth() -> None:
    from dive.training.gate import log_rank_scores

    rng = np.random.default_rng(0)
    corpus = rng.normal(size=(50, 8))
    queries = rng.normal(size=(3, 8))
    scores = queries @ corpus.T
    order = np.argsort(-scores, axis=1)
    # query 0: its 1st and 30th nearest rows; query 1: its 5th, with the 1st excluded;
    # query 2: only a judged-not-relevant row (grade 0)
    relevant = [{int(order[0, 0]): 1, int(order[0, 29]): 2}, {int(order[1, 4]): 1},
                {int(order[2, 0]): 0}]
    exclude = np.array([-1, int(order[1, 0]), -1])
    got = log_rank_scores(queries, corpus, relevant, exclude, chunk=2)
    np.testing.assert_allclose(got, [-(np.log(1) + np.log(30)) / 2, -np.log(4), 0.0])
    # moving a relevant document from rank 30 to rank 12 changes nothing in nDCG@10 but here
    deeper = [{int(order[0, 0]): 1, int(order[0, 11]): 2}, *relevant[1:]]
    assert log_rank_scores(queries, corpus, deeper, exclude)[0] > got[0]
    np.testing.assert_allclose(
        validation_ndcg(queries[:1], corpus, deeper[:1]),
        validation_ndcg(queries[:1], corpus, relevant[:1]),
    )


def test_validation_ndcg_is_taken_at_the_k_it_is_given() -> None:
    """`k` was dropped on the way to the per-query scores: every validation ran at nDCG@10."""
    corpus = np.eye(12, dtype=np.float32)
    query = np.linspace(1.0, 0.0, 12, dtype=np.float32)[None]  # ranks rows 0, 1, ..., 11
    assert validation_ndcg(query, corpus, [{11: 1}], k=12) > 0
    assert validation_ndcg(query, corpus, [{11: 1}], k=10) == 0.0
    assert validation_ndcg(query, corpus, [{3: 1}], k=3) == 0.0


def test_validation_scores_are_ndcg_at_the_k_ranked() -> None:
    """nDCG was taken at k + 1 of a top k: with three relevant rows and k = 2, the two
    ranked (both relevant) scored below a perfect 1.0, measured against an ideal of three."""
    from dive.training.gate import validation_scores

    queries = np.array([[1.0, 0.0]], np.float32)
    corpus = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], np.float32)
    all_relevant = [{0: 1, 1: 1, 2: 1}]
    assert validation_scores(queries, corpus, all_relevant, k=2).tolist() == [1.0]
    assert validation_scores(queries, corpus, all_relevant, k=3).tolist() == [1.0]


def test_log_rank_scores_ignore_documents_judged_not_relevant() -> None:
    """A grade-0 judgement was read as a relevant document: row 2, ranked 3rd, pulled the
    query's score down from 0 (its one relevant row ranked 1st) to -log(3) / 2."""
    from dive.training.gate import log_rank_scores

    queries = np.array([[1.0, 0.0]], np.float32)
    corpus = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], np.float32)
    judged = log_rank_scores(queries, corpus, [{0: 1, 2: 0}])
    np.testing.assert_array_equal(judged, log_rank_scores(queries, corpus, [{0: 1}]))
    np.testing.assert_array_equal(judged, [0.0])


def test_log_rank_scores_count_ties_for_the_document_whatever_the_block_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dive.training import gate

    rng = np.random.default_rng(1)
    corpus = rng.integers(-2, 3, size=(40, 4)).astype(np.float32)  # many tied scores
    queries = rng.integers(-2, 3, size=(5, 4)).astype(np.float32)
    relevant = [{int(j): 1 for j in rng.choice(40, 3, replace=False)} for _ in range(5)]
    exclude = np.array([-1, 7, -1, 0, -1])
    scores = queries @ corpus.T
    want = []
    for i, row in enumerate(scores):
        row = row.copy()
        if exclude[i] >= 0:
            row[exclude[i]] = -np.inf
        ranks = [1 + int((row > row[j]).sum()) for j in relevant[i]]  # ties: the doc's favour
        want.append(-np.mean(np.log(ranks)))
    np.testing.assert_array_equal(gate.log_rank_scores(queries, corpus, relevant, exclude), want)
    monkeypatch.setattr(gate, "SCORE_BLOCK", 50)  # one query's scores at a time
    np.testing.assert_array_equal(gate.log_rank_scores(queries, corpus, relevant, exclude), want)
