"""summary.csv: one row per (dataset, model, method, dim, budget) with seed statistics."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from dive.report.csv_export import COLUMNS, summary_csv, write_summary_csv


def test_one_row_per_cell_with_mean_std_and_seed_count(make_record, tmp_path: Path) -> None:
    records = [make_record(method="pca", dim=96, seed=s, ndcg=v, fit_seconds=t)
               for s, v, t in [(0, 0.60, 1.0), (1, 0.62, 3.0)]]
    records += [make_record(method="frozen", dim=384, ndcg=0.64),
                make_record(method="pca", dim=96, budget="all", ndcg=0.7)]
    path = write_summary_csv(records, tmp_path / "out" / "summary.csv")
    rows = list(csv.DictReader(path.open()))
    assert tuple(rows[0]) == COLUMNS
    assert [(r["budget"], r["method"], r["dim"]) for r in rows] == [
        ("64", "frozen", "384"), ("64", "pca", "96"), ("all", "pca", "96")]
    pca = rows[1]
    assert pca["n_seeds"] == "2" and pca["ratio"] == "4"
    assert float(pca["ndcg@10_mean"]) == pytest.approx(0.61)
    assert float(pca["ndcg@10_std"]) == pytest.approx(0.01)
    assert float(pca["recall@100_mean"]) == pytest.approx(0.86)
    assert float(pca["fit_seconds_mean"]) == pytest.approx(2.0)
    assert pca["n_params"] == str(96 * 384)
    assert rows[2]["n_seeds"] == "1" and float(rows[2]["ndcg@10_std"]) == 0.0


def test_full_grid_row_count(make_grid) -> None:
    text = summary_csv(make_grid())
    rows = list(csv.DictReader(io.StringIO(text)))
    # 2 datasets x 4 budgets x (frozen + 5 methods x 4 dims)
    assert len(rows) == 2 * 4 * 21
    assert {r["n_seeds"] for r in rows} == {"3"}


def test_rows_follow_the_reports_order_budgets_by_size_and_dims_descending(make_record) -> None:
    """Budgets sorted as text put 128 before 16, and dims ascending reversed the report's."""
    records = [make_record(method="pca", dim=d, budget=b) for b in ("all", "128", "16")
               for d in (48, 192)]
    rows = list(csv.DictReader(io.StringIO(summary_csv(records))))
    assert [(r["budget"], r["dim"]) for r in rows] == [
        ("16", "192"), ("16", "48"), ("128", "192"), ("128", "48"), ("all", "192"),
        ("all", "48")]


def test_parameters_are_the_largest_seen_and_an_old_record_has_ratio_1(make_record) -> None:
    """Seeds fitting different parameter counts gave the first seed's; an old record without
    `ratio` (full dimension) read ratio 0."""
    records = [make_record(method="pca", dim=96, seed=s, n_params=n)
               for s, n in ((0, 10), (1, 30), (2, 20))]
    old = make_record(method="frozen", dim=384)
    del old["ratio"]
    rows = {r["method"]: r for r in csv.DictReader(io.StringIO(summary_csv([*records, old])))}
    assert rows["pca"]["n_params"] == "30"
    assert rows["frozen"]["ratio"] == "1"
