"""Selection: folds, paired gains, and a choice that never falls below its base."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dive.training.selection import (
    Choice,
    Curve,
    Folds,
    best_of,
    choose,
    max_threshold,
    out_of_fold,
    paired_gain,
    shrinkage,
)


def test_cross_fit_folds_hold_every_query_out_exactly_once() -> None:
    folds = Folds.cross_fit(10, 3, seed=0)
    held = np.concatenate(folds.held_out)
    assert sorted(held.tolist()) == list(range(10))
    assert sorted(len(h) for h in folds.held_out) == [3, 3, 4]
    for i, rows in enumerate(folds.held_out):
        assert set(folds.training(i).tolist()) == set(range(10)) - set(rows.tolist())
    assert [h.tolist() for h in Folds.cross_fit(10, 3, seed=0).held_out] == [
        h.tolist() for h in folds.held_out
    ]
    assert len(Folds.cross_fit(2, 5, seed=0).held_out) == 2  # never more folds than queries


def test_holdout_is_one_fold_and_rejects_improper_sets() -> None:
    folds = Folds.holdout(5, [3, 4])
    assert folds.scheme == "holdout" and folds.scored.tolist() == [3, 4]
    assert folds.training(0).tolist() == [0, 1, 2]
    for rows in ([], [0, 1, 2, 3, 4], [5]):
        with pytest.raises(ValueError, match="proper, non-empty subset"):
            Folds.holdout(5, rows)


def test_holdout_rows_given_twice_or_unsorted_are_held_out_once() -> None:
    """A row given twice was scored twice, counting one query as two in the choice."""
    folds = Folds.holdout(6, [4, 1, 4])
    assert [h.tolist() for h in folds.held_out] == [[1, 4]]
    assert folds.scored.tolist() == [1, 4] and folds.training(0).tolist() == [0, 2, 3, 5]


def test_paired_gain_is_the_mean_difference_and_its_standard_error() -> None:
    gain, stderr = paired_gain(np.array([0.5, 0.7, 0.9]), np.array([0.4, 0.5, 0.9]))
    assert gain == pytest.approx(0.1)
    assert stderr == pytest.approx(np.std([0.1, 0.2, 0.0], ddof=1) / np.sqrt(3))
    assert paired_gain(np.array([1.0]), np.array([0.0]))[1] == np.inf


def test_choice_never_scores_below_its_base_on_the_queries_it_chose_with() -> None:
    rng = np.random.default_rng(0)
    for trial in range(300):
        n = int(rng.integers(2, 30))
        base = rng.uniform(size=n)
        curves = [
            Curve((10, 20), np.clip(base + rng.normal(0, 0.2, (2, n)) + rng.normal(0, 0.05), 0, 1))
            for _ in range(3)
        ]
        z = float(rng.choice([0.0, 1.0, 2.0]))
        choice = choose(base, curves, z)
        assert choice.score >= choice.base_score, trial
        if choice.candidate is not None:
            curve = curves[choice.candidate]
            kept = curve.scores[curve.steps.index(choice.step)]
            assert kept.mean() == pytest.approx(choice.score)
            assert choice.gain >= z * choice.stderr


def test_a_consistent_gain_is_kept_and_a_noisy_one_is_not() -> None:
    base = np.linspace(0.2, 0.8, 20)
    consistent = Curve((50,), (base + 0.03)[None])  # every query gains
    noisy = Curve((50,), (base + np.tile([0.5, -0.45], 10))[None])  # mean +0.025, huge spread
    kept = choose(base, [consistent], z=1.0)
    assert (kept.candidate, kept.step, kept.n_queries) == (0, 50, 20)
    assert kept.gain == pytest.approx(0.03)
    dropped = choose(base, [noisy], z=1.0)
    assert dropped.candidate is None and dropped.step == 0
    assert dropped.best == (0, 50) and dropped.gain == pytest.approx(0.025)
    assert choose(base, [noisy], z=0.0).candidate == 0  # z = 0: any positive mean gain


def test_shrinkage_is_the_positive_part_james_stein_factor_of_the_kept_gain() -> None:
    base = np.linspace(0.2, 0.8, 20)
    spread = np.tile([0.01, -0.01], 10)
    kept = [choose(base, [Curve((50,), (base + gain + spread)[None])], z=1.0) for gain in
            (0.03, 0.0024)]
    assert kept[0].candidate == 0 and kept[1].candidate == 0
    for choice in kept:
        z = choice.gain / choice.stderr
        assert shrinkage(choice) == pytest.approx(1 - 1 / z**2)
    assert 0.85 < shrinkage(kept[0]) < 1 and 0 < shrinkage(kept[1]) < 0.1
    one_query = Choice(0, 50, 0.53, 0.5, (0, 50), gain=0.03, stderr=0.0, z=1.0, n_queries=1)
    assert shrinkage(one_query) == 1.0  # a gain without spread is kept whole
    noisy = choose(base, [Curve((50,), (base + np.tile([0.5, -0.45], 10))[None])], z=1.0)
    assert noisy.candidate is None and shrinkage(noisy) == 0.0


def test_shrinkage_is_zero_when_the_base_was_kept_on_a_gain_short_of_the_bar() -> None:
    """A gain of about 1.5 standard errors, short of z = 2, keeps the base: shrinkage still
    gave 1 - 1/1.5^2 = 0.56, moving the fit halfway to a candidate that was not kept."""
    base = np.linspace(0.2, 0.8, 20)
    choice = choose(base, [Curve((50,), (base + 0.01 + np.tile([0.03, -0.03], 10))[None])], 2.0)
    assert choice.candidate is None and 1.2 < choice.gain / choice.stderr < 2.0
    assert shrinkage(choice) == 0.0


def test_the_nested_gain_and_the_max_test_remove_the_winners_curse_of_noise_candidates() -> None:
    # 32 candidates with no true gain on 16 queries: the best of them looks like a gain of
    # a standard error or more, so the plain test leaves the start far more often than the
    # nominal one-sided rate for z = 1 (about 16%); the nested test and the sign-flip max
    # test stay near or below it, and the max test still keeps a real, consistent gain.
    rng = np.random.default_rng(0)
    left_plain = left_nested = left_max = kept_real = 0
    trials = 200
    for _ in range(trials):
        base = rng.uniform(0.2, 0.8, 16)
        curves = [Curve((25, 50), base + rng.normal(0, 0.1, (2, 16))) for _ in range(16)]
        groups = Folds.cross_fit(16, 3, seed=0).held_out
        left_plain += choose(base, curves, 1.0).candidate is not None
        left_nested += choose(base, curves, 1.0, groups).candidate is not None
        left_max += choose(base, curves, 1.0, flips=500).candidate is not None
        real = Curve((25, 50), base + 0.12 + rng.normal(0, 0.03, (2, 16)))
        kept_real += choose(base, [*curves, real], 1.0, flips=500).candidate == 16
    assert left_plain / trials > 0.5
    assert left_nested / trials < 0.25
    assert left_max / trials < 0.25
    assert kept_real / trials > 0.9


def test_the_max_threshold_is_z_standard_errors_for_one_pair_and_counts_copies_once() -> None:
    gains = np.random.default_rng(1).normal(0.0, 0.1, 400)
    one = max_threshold(gains[None], z=1.0, flips=4000)
    stderr = np.sqrt(np.mean(gains**2) / gains.size)  # the sign-flip null's spread
    assert one == pytest.approx(stderr, rel=0.1)
    # ten identical pairs are one pair; ten independent ones raise the bar
    assert max_threshold(np.tile(gains, (10, 1)), 1.0, 4000) == pytest.approx(one)
    independent = np.random.default_rng(2).normal(0.0, 0.1, (10, 400))
    assert max_threshold(independent, 1.0, 4000) > 1.8 * one
    assert max_threshold(gains[None], 1.0, 4000) == one  # seeded: a function of the gains
    with pytest.raises(ValueError, match="flips"):
        max_threshold(gains[None], 1.0, 0)


def test_the_nested_gain_keeps_a_real_gain_and_scores_each_group_by_the_others() -> None:
    base = np.linspace(0.2, 0.8, 12)
    good = Curve((50,), (base + 0.03)[None])
    # a candidate best on the first 6 queries only: chosen for the last six's group by the
    # first six, and it loses there; the consistent one wins everywhere else
    odd = Curve((50,), np.r_[base[:6] + 0.2, base[6:] - 0.1][None])
    groups = (np.arange(6), np.arange(6, 12))
    choice = choose(base, [good, odd], 1.0, groups)
    # group 0 is scored by the pair chosen on group 1 (good: +0.03 there) and group 1 by
    # the pair chosen on group 0 (odd: -0.1 there)
    assert choice.nested and choice.gain == pytest.approx((6 * 0.03 - 6 * 0.1) / 12)
    assert choice.candidate is None and choice.best == (1, 50)
    kept = choose(base, [good], 1.0, groups)
    assert kept.candidate == 0 and kept.gain == pytest.approx(0.03)
    with pytest.raises(ValueError, match="partition"):
        choose(base, [good], 1.0, (np.arange(5), np.arange(6, 12)))


def test_a_nested_estimate_of_one_group_is_refused() -> None:
    """One group has no other groups to choose its pair on: the nested estimate then scored
    the group with a pair chosen on no queries (an argmax over empty means) instead of
    saying so."""
    curve = Curve((5, 10), np.array([[0.1, 0.2, 0.1, 0.3], [0.0, 0.1, 0.5, 0.1]]))
    with pytest.raises(ValueError, match="a nested estimate needs at least two groups"):
        choose(np.zeros(4), [curve], 1.0, groups=[np.arange(4)])


def test_a_gain_only_equal_to_the_max_threshold_keeps_the_base() -> None:
    """The gain must beat the sign-flip bar: +0.1 on both of two queries is what the best
    flips reach by chance (the bar is exactly +0.1), and it was kept as if it beat it. On
    eight such queries the bar falls below the gain and it is kept."""
    two = choose(np.zeros(2), [Curve((5,), np.full((1, 2), 0.1))], z=2.0, flips=1000)
    assert two.threshold == pytest.approx(two.gain) and two.gain == pytest.approx(0.1)
    assert (two.candidate, two.step, two.score) == (None, 0, 0.0)
    eight = choose(np.zeros(8), [Curve((5,), np.full((1, 8), 0.1))], z=2.0, flips=1000)
    assert eight.threshold is not None and eight.threshold < eight.gain
    assert (eight.candidate, eight.step) == (0, 5)


def test_ties_go_to_the_earlier_candidate_and_step() -> None:
    base = np.zeros(4)
    same = np.full((2, 4), 0.5)
    choice = choose(base, [Curve((1, 2), same), Curve((1, 2), same)], z=0.0)
    assert (choice.candidate, choice.step) == (0, 1)


def test_out_of_fold_scores_each_query_with_the_run_that_did_not_train_on_it() -> None:
    folds = Folds.cross_fit(7, 3, seed=1)
    seen: list[tuple[int, set[int], set[int]]] = []

    def run(candidate: int, train: np.ndarray, held: np.ndarray) -> Curve:
        seen.append((candidate, set(train.tolist()), set(held.tolist())))
        assert not set(train.tolist()) & set(held.tolist())
        # score = query row + 100 * candidate + step / 1000: checks where each value lands
        scores = np.array([[r + 100 * candidate + s / 1000 for r in held] for s in (5, 10)])
        return Curve((5, 10), scores)

    curves = out_of_fold(folds, 2, run)
    assert len(seen) == 6
    for c, curve in enumerate(curves):
        assert curve.steps == (5, 10)
        expected = folds.scored + 100 * c
        np.testing.assert_allclose(curve.scores[0], expected + 0.005)
        np.testing.assert_allclose(curve.scores[1], expected + 0.010)


def test_out_of_fold_refuses_folds_checked_at_different_steps() -> None:
    folds = Folds.cross_fit(4, 2, seed=0)
    steps = iter([(5,), (6,)])

    def run(candidate: int, train: np.ndarray, held: np.ndarray) -> Curve:
        return Curve(next(steps), np.zeros((1, len(held))))

    with pytest.raises(ValueError, match="checked at"):
        out_of_fold(folds, 1, run)


def test_best_of_picks_the_higher_mean_and_breaks_ties_by_order() -> None:
    worse, better = np.array([0.2, 0.4]), np.array([0.5, 0.3])
    assert best_of({"uncentered": worse, "centered": better}) == "centered"
    assert best_of({"uncentered": better, "centered": better}) == "uncentered"
    with pytest.raises(ValueError, match="no alternatives"):
        best_of({})


@pytest.mark.parametrize("n", [4, 13, 16, 51])
def test_one_query_up_and_the_rest_level_is_decided_alike_whatever_its_size(n: int) -> None:
    """A gain of exactly one standard error (one query up, every other level) was kept at
    +0.3 and +0.5 but dropped at +0.369 on 16 queries: the bar's last bit decided."""
    base = np.full(n, 0.25)
    kept = []
    for up in np.linspace(0.001, 0.7, 200):
        scores = base.copy()
        scores[3] += up
        choice = choose(base, [Curve((25,), scores[None])], 1.0)
        kept.append(choice.candidate == 0)
    assert all(kept)


def test_any_gain_is_kept_at_z_0_even_on_one_query() -> None:
    """z = 0 (the baselines' plain argmax) on one query: 0 x its inf standard error was NaN,
    so a trained model scoring 0.63 over a start of 0 was never kept."""
    choice = choose(np.zeros(1), [Curve((50, 100), np.array([[0.3], [0.63]]))], z=0.0)
    assert (choice.candidate, choice.step, choice.score) == (0, 100, 0.63)
    assert choose(np.zeros(1), [Curve((50,), np.array([[0.3]]))], z=1.0).candidate is None


def test_a_candidate_that_only_ties_its_base_keeps_the_base_even_at_z_0() -> None:
    """A zero gain is no gain: at z = 0 (or with no spread) a trained model scoring exactly
    what the start scores was kept, swapping the start for a model with no evidence."""
    base = np.array([0.2, 0.5, 0.7, 0.4])
    level = choose(base, [Curve((25,), base[None])], z=0.0)
    assert (level.candidate, level.step, level.gain) == (None, 0, 0.0)
    flat = choose(np.full(3, 0.5), [Curve((25,), np.full((1, 3), 0.5))], z=2.0)  # no spread
    assert flat.candidate is None and flat.stderr == 0.0


def test_a_choice_on_one_query_records_its_infinite_stderr_as_null() -> None:
    """One query has no standard error (inf): the record held inf, which a results file writes
    as Infinity, not JSON, and a strict reader refuses."""
    choice = choose(np.zeros(1), [Curve((50,), np.array([[0.3]]))], z=0.0)
    record = choice.as_record()
    assert choice.stderr == np.inf and record["stderr"] is None
    assert json.loads(json.dumps(record, allow_nan=False))["gain"] == 0.3
    assert choose(np.zeros(2), [Curve((5,), np.array([[0.1, 0.3]]))], 0.0).as_record()[
        "stderr"] == 0.1


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_scores_that_are_not_finite_are_refused_not_chosen(bad: float) -> None:
    """A NaN check won the argmax, hiding a real gain at a later step; best_of took a NaN."""
    scores = np.array([[bad, 0.5, 0.5], [0.6, 0.6, 0.6]])
    with pytest.raises(ValueError, match=r"curve 0: scores must be finite"):
        choose(np.full(3, 0.5), [Curve((5, 10), scores)], z=1.0)
    with pytest.raises(ValueError, match=r"base: scores must be finite"):
        choose(scores[0], [Curve((5,), scores[1:])], z=1.0)
    with pytest.raises(ValueError, match=r"centered: scores must be finite"):
        best_of({"uncentered": scores[1], "centered": scores[0]})
    with pytest.raises(ValueError, match=r"base: no scored queries"):
        choose(np.zeros(0), [], z=1.0)
