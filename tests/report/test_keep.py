"""Smallest dimension that keeps a share of frozen nDCG@10."""

from __future__ import annotations

import pytest

from dive.report.keep import smallest_dims_keeping
from dive.report.markdown import keep_table
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
    records = [make_record(method="frozen", dim=384, ndcg=0.60, budget="16"),
               make_record(method="frozen", dim=384, ndcg=0.50, budget="all")]
    # Seed mean at 96 is 0.56: below 0.99 * 0.60, above 0.99 * 0.50.
    for budget in ("16", "all"):
        records += [make_record(method="pca", dim=96, seed=s, ndcg=v, budget=budget)
                    for s, v in enumerate([0.50, 0.62])]
    found = {r.budget: r.dim for r in smallest_dims_keeping(records)}
    assert found == {"16": None, "all": 96}


def test_no_frozen_no_answer_and_bad_keep_rejected(make_record) -> None:
    assert smallest_dims_keeping([make_record(method="pca")]) == []
    with pytest.raises(ValueError, match="keep must be > 0"):
        smallest_dims_keeping([make_record(method="pca")], keep=0)


def test_keep_table_rows_and_cells(make_record) -> None:
    records = [make_record(method="frozen", dim=384, ndcg=0.60)]
    records += curve(make_record, "pca", {192: 0.599, 96: 0.5})
    records += curve(make_record, "random", {192: 0.5})
    table = keep_table(smallest_dims_keeping(records), dim_ratios(records))
    lines = table.splitlines()
    assert lines[0] == "| method | 64 labelled queries |"
    assert lines[2] == "| random | not reached at d ≤ 192 |"
    assert lines[3] == "| pca | d=192 (2×): 0.5990 |"
