"""Each method against the better of the two PCAs: gains per cell and the per-method summary."""

from __future__ import annotations

import pytest

from dive.report.gains import (
    gains_over_training_free,
    render_gains,
    summarize_gains,
    summary_text,
    target_gains,
)

TARGET = {"datasets": ("cacm", "cisi"), "ratio": 4, "budget": "all"}


def rows(make_record, method: str, scores: list[float], **where) -> list[dict]:
    """One record per seed (0, 1, ...) with these nDCG@10 scores."""
    return [make_record(method=method, seed=s, ndcg=v, **where) for s, v in enumerate(scores)]


def pcas(make_record, pca: list[float], uncentered: list[float], **where) -> list[dict]:
    return rows(make_record, "pca", pca, **where) + rows(make_record, "pca-uncentered",
                                                          uncentered, **where)


def by_method(cells) -> dict:
    return {s.method: s for s in summarize_gains(cells)}


def test_reference_is_the_better_pca_by_seed_mean(make_record) -> None:
    # pca wins seed 0, pca-uncentered wins on the mean: the reference is the mean, not per seed.
    records = pcas(make_record, [0.50, 0.40], [0.45, 0.47], dataset="cacm", budget="all")
    records += rows(make_record, "dive", [0.47, 0.47], dataset="cacm", budget="all")
    cell = next(c for c in gains_over_training_free(records) if c.method == "dive")
    assert cell.reference_method == "pca-uncentered"
    assert cell.reference == pytest.approx(0.46)
    assert cell.gain == pytest.approx(0.01)
    assert cell.n_seeds == 2


def test_won_tied_and_lost_cells_with_the_worst_loss_named(make_record) -> None:
    records = []
    for dataset, gain in (("cacm", 0.02), ("cisi", -0.0015), ("npl", -0.03)):
        records += pcas(make_record, [0.40], [0.41], dataset=dataset, budget="all")
        records += rows(make_record, "dive", [0.41 + gain], dataset=dataset, budget="all")
    summary = by_method(gains_over_training_free(records))["dive"]
    # The -0.0015 cell is a tie within 0.002; the -0.03 one is a loss.
    assert (summary.n_won_or_tied, summary.n_cells) == (2, 3)
    assert summary.mean_gain == pytest.approx((0.02 - 0.0015 - 0.03) / 3)
    assert summary.worst is not None and summary.worst.dataset == "npl"
    assert summary.worst.gain == pytest.approx(-0.03)
    assert summary.n_unmatched == 0


def test_tolerance_decides_a_tie(make_record) -> None:
    records = pcas(make_record, [0.40], [0.40]) + rows(make_record, "dive", [0.397])
    cells = gains_over_training_free(records)
    strict = {s.method: s for s in summarize_gains(cells, tolerance=0.002)}["dive"]
    loose = {s.method: s for s in summarize_gains(cells, tolerance=0.005)}["dive"]
    assert (strict.n_won_or_tied, loose.n_won_or_tied) == (0, 1)


def test_a_loss_of_exactly_the_tolerance_is_a_tie(make_record) -> None:
    # 0.408 against 0.410 is -0.002 (-0.0020000000000000018 in floats): within the tolerance.
    records = pcas(make_record, [0.40], [0.41]) + rows(make_record, "dive", [0.408])
    summary = by_method(gains_over_training_free(records))["dive"]
    assert (summary.n_won_or_tied, summary.n_cells) == (1, 1)


def test_a_row_at_another_precision_is_compared_with_the_pcas_at_that_precision(
    make_record
) -> None:
    records = pcas(make_record, [0.50], [0.40]) + rows(make_record, "dive", [0.52])
    records += pcas(make_record, [0.44], [0.30], precision="int8")
    records += rows(make_record, "dive", [0.46], precision="int8")
    cells = {c.method: c for c in gains_over_training_free(records)}
    assert cells["dive"].reference == pytest.approx(0.50)
    assert cells["dive@int8"].reference_method == "pca@int8"
    assert cells["dive@int8"].gain == pytest.approx(0.02)  # not 0.46 - 0.50 against float32
    assert cells["pca@int8"].gain == pytest.approx(0.0)
    alone = [r for r in records if r["method"] == "dive" or r.get("precision") != "int8"]
    assert next(c for c in gains_over_training_free(alone) if c.method == "dive@int8").gain is None


def test_cell_without_a_pca_row_is_counted_apart(make_record) -> None:
    # At d=96 both PCAs ran; at d=48 pca-uncentered is missing: that cell is not compared.
    records = pcas(make_record, [0.40], [0.42], dim=96)
    records += rows(make_record, "pca", [0.30], dim=48)
    records += rows(make_record, "dive", [0.43], dim=96) + rows(make_record, "dive", [0.20],
                                                                dim=48)
    cells = gains_over_training_free(records)
    unmatched = [c for c in cells if c.method == "dive" and c.dim == 48]
    assert len(unmatched) == 1 and unmatched[0].reference is None and unmatched[0].gain is None
    summary = by_method(cells)["dive"]
    assert (summary.n_cells, summary.n_unmatched) == (1, 1)
    assert summary.mean_gain == pytest.approx(0.01)


def test_reference_uses_only_the_seeds_the_method_ran(make_record) -> None:
    # The method ran seed 0 only: its reference is the seed-0 PCA, not the 3-seed mean.
    records = pcas(make_record, [0.30, 0.50, 0.50], [0.20, 0.20, 0.20])
    records += rows(make_record, "smec", [0.31])
    cell = next(c for c in gains_over_training_free(records) if c.method == "smec")
    assert cell.reference == pytest.approx(0.30) and cell.gain == pytest.approx(0.01)


def test_reference_missing_a_seed_the_method_ran_is_not_compared(make_record) -> None:
    records = pcas(make_record, [0.30], [0.20]) + rows(make_record, "dive", [0.31, 0.32])
    cell = next(c for c in gains_over_training_free(records) if c.method == "dive")
    assert cell.reference is None


def test_frozen_is_left_out_and_pcas_are_compared_with_their_best(make_record) -> None:
    records = pcas(make_record, [0.40], [0.43])
    records += [make_record(method="frozen", dim=384, ndcg=0.5)]
    summaries = by_method(gains_over_training_free(records))
    assert "frozen" not in summaries
    assert summaries["pca"].mean_gain == pytest.approx(-0.03)
    assert summaries["pca-uncentered"].mean_gain == pytest.approx(0.0)


def test_models_and_budgets_are_separate_cells(make_record) -> None:
    records = pcas(make_record, [0.40], [0.40], budget="16")
    records += pcas(make_record, [0.30], [0.30], budget="16", model="mpnet")
    records += rows(make_record, "dive", [0.41], budget="16")
    records += rows(make_record, "dive", [0.29], budget="16", model="mpnet")
    records += rows(make_record, "dive", [0.50], budget="all")  # no PCA at budget all
    dive = [c for c in gains_over_training_free(records) if c.method == "dive"]
    gains = {(c.model, c.budget): c.gain for c in dive}
    assert gains[("all-MiniLM-L6-v2", "16")] == pytest.approx(0.01)
    assert gains[("mpnet", "16")] == pytest.approx(-0.01)
    assert gains[("all-MiniLM-L6-v2", "all")] is None
    # the text summary says which model its unnamed cells are (it named none), and a tie in
    # cells is broken by name, not by record order
    tied = pcas(make_record, [0.40], [0.40], model="zz") + pcas(make_record, [0.3], [0.3],
                                                                 model="aa")
    for order in (tied, tied[::-1]):
        text = summary_text(gains_over_training_free(order), target_name="classic", **TARGET)
        assert text.splitlines()[0].endswith("; model: aa unless named")


def test_target_averages_the_named_datasets_at_one_ratio_and_budget(make_record) -> None:
    records = []
    for dataset, gain in (("cacm", 0.02), ("cisi", 0.04), ("scifact", 0.5)):
        records += pcas(make_record, [0.40], [0.40], dataset=dataset, budget="all")
        records += rows(make_record, "smec", [0.40 + gain], dataset=dataset, budget="all")
    # Other ratio and budget: left out of the target.
    records += pcas(make_record, [0.40], [0.40], dataset="cacm", budget="all", dim=48)
    records += rows(make_record, "smec", [0.0], dataset="cacm", budget="all", dim=48)
    records += pcas(make_record, [0.40], [0.40], dataset="cacm", budget="16")
    records += rows(make_record, "smec", [0.0], dataset="cacm", budget="16")
    records += rows(make_record, "dive", [0.45], dataset="cacm", budget="all")
    found = {t.method: t for t in target_gains(gains_over_training_free(records), **TARGET)}
    assert found["smec"].mean_gain == pytest.approx(0.03)
    assert found["smec"].datasets == ("cacm", "cisi") and found["smec"].missing == ()
    # dive ran on cacm only: its mean is over that one collection, and cisi is named missing.
    assert found["dive"].mean_gain == pytest.approx(0.05)
    assert found["dive"].datasets == ("cacm",) and found["dive"].missing == ("cisi",)


def test_target_weighs_a_dataset_under_two_models_as_one(make_record) -> None:
    """Its two models' cells were averaged as two collections, of "2/2 collections"."""
    records = []
    for dataset, model, gain in (("cacm", "m1", 0.02), ("cacm", "m2", 0.04), ("cisi", "m1", 0.0)):
        where = {"dataset": dataset, "budget": "all", "model": model}
        records += pcas(make_record, [0.40], [0.40], **where)
        records += rows(make_record, "dive", [0.40 + gain], **where)
    found = {t.method: t for t in target_gains(gains_over_training_free(records), **TARGET)}
    assert found["dive"].mean_gain == pytest.approx((0.03 + 0.0) / 2)  # not (0.02+0.04+0)/3
    assert found["dive"].datasets == ("cacm", "cisi")


def test_every_cell_table_names_a_cell_without_reference_and_the_float32_reference(
    make_record,
) -> None:
    """A cell that ran without both PCAs at its seeds showed `-`, "not run"; the row's best
    training-free could be the binary PCAs', which the float32 columns are not measured by."""
    where = {"dataset": "cisi", "budget": "all"}
    records = rows(make_record, "pca", [0.30, 0.30], **where, precision="binary")
    records += rows(make_record, "pca-uncentered", [0.31, 0.31], **where, precision="binary")
    records += rows(make_record, "truncate", [0.20, 0.20], **where, precision="binary")
    records += pcas(make_record, [0.40, 0.40], [0.41, 0.41], **where)
    records += rows(make_record, "dive", [0.40, 0.40], **where)
    records += [make_record(method="smec", seed=5, ndcg=0.5, **where)]  # no PCA at seed 5
    page = render_gains(gains_over_training_free(records), title="t", target_name="c",
                        **TARGET)
    header, _, row = page.split("## Every cell")[1].strip().splitlines()[2:5]
    cells = dict(zip([c.strip() for c in header.split("|")], [c.strip() for c in row.split("|")],
                     strict=True))
    assert cells["best training-free"] == "0.4100 (pca-uncentered)"
    assert cells["truncate@binary"] == "−0.1100"  # against pca-uncentered@binary's 0.31
    assert cells["smec"] == "n/r"


def test_text_and_markdown_show_the_summary_and_target(make_record) -> None:
    records = pcas(make_record, [0.40], [0.41], dataset="cisi", budget="all")
    records += rows(make_record, "dive", [0.38], dataset="cisi", budget="all")
    cells = gains_over_training_free(records)
    text = summary_text(cells, target_name="classic", **TARGET)
    assert "0/1" in text and "−0.0300" in text and "cisi, all, d=96 (4×)" in text
    assert "classic at 4×, budget all: mean gain of dive over best training-free −0.0300 " \
           "(1/2 collections; missing cacm)" in text
    page = render_gains(cells, title="Dev", preamble="made by a test", target_name="classic",
                        **TARGET)
    assert page.startswith("# Dev\n\nmade by a test")
    assert "| cisi | all | 96 (4×) | 0.4100 (pca-uncentered) | −0.0100 | +0.0000 | −0.0300 |" \
        in page


def test_the_text_summary_breaks_a_method_down_by_ratio(make_record) -> None:
    records = []
    for dim, gain in ((192, 0.02), (96, -0.01), (48, 0.0)):
        records += pcas(make_record, [0.40], [0.41], dataset="cisi", budget="all", dim=dim)
        records += rows(make_record, "dive", [0.41 + gain], dataset="cisi", budget="all",
                        dim=dim)
    text = summary_text(gains_over_training_free(records), target_name="classic", **TARGET)
    assert ("dive by ratio: 2× 1/1 (mean +0.0200, worst +0.0200), 4× 0/1 (mean −0.0100, "
            "worst −0.0100), 8× 1/1 (mean +0.0000, worst +0.0000)") in text


def test_cells_with_fewer_seeds_are_marked(make_record) -> None:
    records = pcas(make_record, [0.40, 0.40, 0.40], [0.41, 0.41, 0.41])
    records += rows(make_record, "smec", [0.42])
    cells = gains_over_training_free(records)
    page = render_gains(cells, title="Dev", target_name="classic", **TARGET)
    assert "| +0.0100 [n=1] |" in page and "| −0.0100 |" in page
    assert "| smec | 1 | 1/1 |" in page and "| pca | 3 | 0/1 |" in page


def test_the_worst_cell_is_the_lowest_gain_whatever_its_place(make_record) -> None:
    """The worst was the last cell compared (d=48 here), not the lowest gain (d=96)."""
    records = []
    for dim, gain in ((192, 0.01), (96, -0.03), (48, 0.0)):
        records += pcas(make_record, [0.40], [0.40], dim=dim, budget="all")
        records += rows(make_record, "dive", [0.40 + gain], dim=dim, budget="all")
    cells = gains_over_training_free(records)
    assert [c.dim for c in cells if c.method == "dive"] == [192, 96, 48]  # largest d first
    worst = by_method(cells)["dive"].worst
    assert worst is not None and worst.dim == 96


def test_equal_references_name_the_first_in_registry_order(make_record) -> None:
    """pca and pca-uncentered tied: the cell named the last one looked at."""
    records = pcas(make_record, [0.40], [0.40]) + rows(make_record, "dive", [0.41])
    cell = next(c for c in gains_over_training_free(records) if c.method == "dive")
    assert cell.reference_method == "pca"


def test_seeds_column_gives_the_range_and_the_best_reference_is_over_most_seeds(
        make_record) -> None:
    """dive ran 2 seeds at d=96 and 1 at d=48: the column said 2; the cell table's best
    training-free came from a 1-seed method's references (0.3000) instead of the 2-seed mean."""
    records = pcas(make_record, [0.30, 0.50], [0.30, 0.50], dim=96)
    records += rows(make_record, "dive", [0.30, 0.50], dim=96)
    records += rows(make_record, "random", [0.30], dim=96)
    records += pcas(make_record, [0.4], [0.4], dim=48) + rows(make_record, "dive", [0.4], dim=48)
    text = summary_text(gains_over_training_free(records), target_name="t", **TARGET)
    assert next(line for line in text.splitlines() if line.startswith("dive ")).split()[1] == "1-2"
    page = render_gains(gains_over_training_free(records), title="t", target_name="t", **TARGET)
    assert "| scifact | 64 | 96 (4×) | 0.4000 (pca) |" in page
