"""Smallest dimension that keeps a share of frozen nDCG@10."""

from __future__ import annotations

import pytest

from dive.report.keep import smallest_dims_keeping
from dive.report.markdown import keep_lines, keep_table
from dive.report.paired import pair
from dive.report.summary import dim_ratios


def curve(make_record, method: str, scores: dict[int, float], budget: str = "64"):
    return [make_record(method=method, dim=d, ndcg=v, budget=budget) for d, v in scores.items()]


def test_smallest_dim_at_or_above_the_target(make_record) -> None:
    records = [make_record(method="frozen", dim=384, ndcg=0.60)]
    # Target 0.99 * 0.60 = 0.594: reached at 192 and 96 (exactly), not at 48.
    records += curve(make_record, "pca", {192: 0.599, 96: 0.594, 48: 0.593, 24: 0.5})
    records += curve(make_record, "truncate", {192: 0.59, 96: 0.55})
    found = {r.method: r for r in smallest_dims_keeping(records, keep=0.99)}
    assert set(found) == {"pca", "truncate"}
    assert found["pca"].dim == 96 and found["pca"].score == pytest.approx(0.594)
    assert found["pca"].target == pytest.approx(0.594)
    assert found["truncate"].dim is None and found["truncate"].dims_tried == (96, 192)


def test_keep_share_changes_the_answer(make_record) -> None:
    records = [make_record(method="frozen", dim=384, ndcg=0.60)]
    records += curve(make_record, "pca", {192: 0.595, 96: 0.57, 48: 0.50})
    assert smallest_dims_keeping(records, keep=0.95)[0].dim == 96
    assert smallest_dims_keeping(records, keep=0.80)[0].dim == 48
    assert smallest_dims_keeping(records, keep=1.0)[0].dim is None


def test_uses_seed_means_and_the_frozen_of_the_same_budget(make_record) -> None:
    records = [make_record(method="frozen", dim=384, ndcg=v, budget=b, seed=s)
               for b, v in (("16", 0.60), ("all", 0.50)) for s in (0, 1)]
    # Seed mean at 96 is 0.56: below 0.99 * 0.60, above 0.99 * 0.50.
    for budget in ("16", "all"):
        records += [make_record(method="pca", dim=96, seed=s, ndcg=v, budget=budget)
                    for s, v in enumerate([0.50, 0.62])]
    found = {r.budget: r.dim for r in smallest_dims_keeping(records)}
    assert found == {"16": None, "all": 96}


def test_no_frozen_no_answer_and_bad_keep_rejected(make_record) -> None:
    assert smallest_dims_keeping([make_record(method="pca")]) == []
    for keep in (0, float("inf"), 99, "0.99"):  # "0.99" was a TypeError
        with pytest.raises(ValueError, match="keep must be a positive, finite share"):
            smallest_dims_keeping([make_record(method="pca")], keep=keep)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"metric must be one of .*, got 'ndcg@5'"):  # a KeyError
        smallest_dims_keeping([make_record(method="pca")], metric="ndcg@5")


def test_keep_table_rows_and_cells(make_record) -> None:
    records = [make_record(method="frozen", dim=384, ndcg=0.60)]
    records += curve(make_record, "pca", {192: 0.599, 96: 0.5})
    records += curve(make_record, "random", {192: 0.5})
    table = keep_table(smallest_dims_keeping(records), dim_ratios(records))
    lines = table.splitlines()
    assert lines[0] == "| method | 64 labelled queries |"
    assert lines[2] == "| random | not reached at d ≤ 192 |"
    assert lines[3] == "| pca | d=192 (2×): 0.5990 |"


def test_compares_with_frozen_on_the_seeds_both_ran(make_record) -> None:
    # Frozen on seeds 0-2 (mean 0.4167, 0.45 on seed 1); pca on seed 1 only: d=96 keeps 99% of
    # the all-seed mean (0.43 / 0.4167) but not of frozen on its own queries (0.43 / 0.45);
    # d=192 does (0.446 / 0.45); d=48 ran seed 5 only, which frozen did not.
    records = [make_record(method="frozen", dim=384, ndcg=v, seed=s)
               for s, v in enumerate([0.40, 0.45, 0.40])]
    records += [make_record(method="pca", dim=d, ndcg=v, seed=s)
                for d, v, s in ((48, 0.60, 5), (96, 0.43, 1), (192, 0.446, 1))]
    (found,) = smallest_dims_keeping(records, keep=0.99)
    assert (found.dim, found.seeds, found.unpaired) == (192, (1,), (48,))
    assert found.reference == pytest.approx(0.45) and found.frozen == pytest.approx(0.41667,
                                                                                    abs=1e-5)
    table = keep_table([found], dim_ratios(records))
    assert table.splitlines()[2] == ("| pca | d=192 (2×): 0.4460 (frozen 0.4500 on seed 1); d=48 "
                                     "not compared (no seed in common with frozen) |")
    assert keep_lines(records)[0].endswith(
        "pca: d=192: 0.4460 (frozen 0.4500 on seed 1); d=48 not compared (no seed in common "
        "with frozen) [keep 99% of 0.4167]")
    alone = [r for r in records if r["method"] == "frozen" or r["seed"] == 5]
    assert keep_table(smallest_dims_keeping(alone)).splitlines()[2] == (
        "| pca | not compared: no seed in common with frozen's seeds 0, 1, 2 |")


def test_a_method_on_more_seeds_than_frozen_names_the_seeds_compared(make_record) -> None:
    """Frozen on seeds 0-1, pca on 0-2: the cell held pca's mean on seeds 0-1 (0.6000) with
    no word, where the nDCG table shows its 3-seed mean (0.5333)."""
    records = [make_record(method="frozen", dim=384, ndcg=v, seed=s)
               for s, v in enumerate([0.6, 0.7])]
    records += [make_record(method="pca", dim=96, ndcg=v, seed=s)
                for s, v in enumerate([0.5, 0.7, 0.4])]
    (found,) = smallest_dims_keeping(records, keep=0.9)
    assert (found.dim, found.seeds, found.own_seeds) == (96, (0, 1), (0, 1, 2))
    assert keep_table([found], dim_ratios(records)).splitlines()[2] == (
        "| pca | d=96 (4×): 0.6000 (frozen 0.6500 on seeds 0, 1) |")


def test_a_paired_std_is_the_population_std_over_the_shared_seeds() -> None:
    """Guards ddof=0, as the report's cells give it: seeds 0.5, 0.6, 0.7 spread
    sqrt(0.02 / 3), not the sample std 0.1."""
    paired = pair({0: 0.5, 1: 0.6, 2: 0.7, 3: 0.9}, {0: 0.6, 1: 0.6, 2: 0.6})
    assert paired is not None and paired.seeds == (0, 1, 2)
    assert paired.std == pytest.approx((0.02 / 3) ** 0.5)


def test_paired_seeds_are_ascending_whatever_order_the_seeds_come_in() -> None:
    """Guards the sort of the shared seeds: seeds 1 and 8 came out as (8, 1) (a set's order),
    which differs from the (1, 8) a configuration ran, so every cell of a report where all ran
    the same seeds said "on seeds 1, 8"."""
    for scores in ({1: 0.5, 8: 0.6}, {8: 0.6, 1: 0.5}):
        paired = pair(scores, {8: 0.7, 1: 0.6})
        assert paired is not None and paired.seeds == (1, 8)


def test_a_score_equal_to_the_target_but_for_float_rounding_keeps_it(make_record) -> None:
    """0.9 x 0.53 is 0.47700000000000004 in floats: a d scoring 0.477 read "not reached"."""
    records = [make_record(method="frozen", dim=384, ndcg=0.53)]
    records += curve(make_record, "pca", {192: 0.50, 96: 0.477})
    (found,) = smallest_dims_keeping(records, keep=0.9)
    assert found.dim == 96


def test_keep_may_be_up_to_twice_frozen_and_no_more(make_record) -> None:
    """`MAX_KEEP` is included: keep=2.0 was refused as not a share."""
    records = [make_record(method="frozen", dim=384, ndcg=0.3),
               make_record(method="pca", dim=96, ndcg=0.6)]
    assert smallest_dims_keeping(records, keep=2.0)[0].dim == 96
    with pytest.raises(ValueError, match="keep must be a positive, finite share"):
        smallest_dims_keeping(records, keep=2.001)


def test_a_terminal_line_reads_plainly_when_frozen_seeds_come_out_of_order(
        make_record) -> None:
    """Frozen's seeds read 1 then 0: `frozen_seeds` kept that order, differed from the compared
    (0, 1), and the line took the fewer-seeds form ("d=96: 0.5900") though all ran both."""
    records = [make_record(method="frozen", dim=384, ndcg=0.60, seed=s) for s in (1, 0)]
    records += [make_record(method="pca", dim=96, ndcg=0.595, seed=s) for s in (0, 1)]
    (found,) = smallest_dims_keeping(records)
    assert found.frozen_seeds == (0, 1)
    assert keep_lines(records) == [
        "scifact | labels: 64 | pca: d=96 (nDCG@10 0.5950) [keep 99% of 0.6000]"]


def test_a_terminal_line_names_the_seeds_when_frozen_ran_fewer(make_record) -> None:
    """Frozen on seed 0 only, pca on 0-1: the line gave pca's mean on seed 0 as if over both."""
    records = [make_record(method="frozen", dim=384, ndcg=0.60)]
    records += [make_record(method="pca", dim=96, ndcg=v, seed=s)
                for s, v in ((0, 0.60), (1, 0.40))]
    assert keep_lines(records) == [
        "scifact | labels: 64 | pca: d=96: 0.6000 (frozen 0.6000 on seed 0) "
        "[keep 99% of 0.6000]"]


def test_not_reached_names_the_largest_d_compared_and_the_d_not_compared(make_record) -> None:
    """d=192 shared no seed with frozen: "not reached at d ≤ 192" claimed it was compared."""
    records = [make_record(method="frozen", dim=384, ndcg=0.60)]
    records += [make_record(method="pca", dim=d, ndcg=v, seed=s)
                for d, v, s in ((192, 0.70, 5), (96, 0.50, 0), (48, 0.40, 0))]
    table = keep_table(smallest_dims_keeping(records), dim_ratios(records))
    assert table.splitlines()[2] == ("| pca | not reached at d ≤ 96; d=192 not compared (no seed "
                                     "in common with frozen) |")


def test_a_d_not_compared_above_the_answer_is_not_listed(make_record) -> None:
    """Only the d's below the answer could have been smaller answers: d=192 (no seed in
    common with frozen) was listed beside d=96 as if it mattered."""
    records = [make_record(method="frozen", dim=384, ndcg=0.60)]
    records += [make_record(method="pca", dim=d, ndcg=v, seed=s)
                for d, v, s in ((192, 0.70, 5), (96, 0.599, 0), (48, 0.40, 0))]
    table = keep_table(smallest_dims_keeping(records), dim_ratios(records))
    assert table.splitlines()[2] == "| pca | d=96 (4×): 0.5990 |"
