"""The Markdown tables: frozen on top, best per column in bold, diffs to frozen, gaps as '-'."""

from __future__ import annotations

from typing import Any

import pytest

from dive.report.markdown import cost_table, grid_table, metric_table, render_report, signed
from dive.report.summary import (
    base_method,
    dim_ratios,
    frozen_method,
    method_order,
    summarize,
    summarize_cost,
)


def rows_of(table: str) -> dict[str, list[str]]:
    """Method -> its cells, from a Markdown table (header and rule skipped)."""
    out = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        out[cells[0]] = cells[1:]
    return out


def table_for(records: list[dict[str, Any]], metric: str = "ndcg@10") -> str:
    return metric_table(summarize(records, metric), dim_ratios(records))


def test_frozen_row_is_on_top_even_when_it_comes_last(make_record) -> None:
    records = [
        make_record(method="dive", dim=96, ndcg=0.60),
        make_record(method="pca", dim=96, ndcg=0.55),
        make_record(method="frozen", dim=384, ndcg=0.64),
    ]
    lines = table_for(records).splitlines()
    assert lines[0] == "| method | d=384 (full) | d=96 (4×) |"
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["frozen", "pca", "dive"]


def test_best_mean_per_column_is_bold_and_only_it(make_record) -> None:
    records = [make_record(method="frozen", dim=384, ndcg=0.64)]
    for method, at_192, at_96 in [("truncate", 0.63, 0.50), ("pca", 0.61, 0.58)]:
        records.append(make_record(method=method, dim=192, ndcg=at_192))
        records.append(make_record(method=method, dim=96, ndcg=at_96))
    rows = rows_of(table_for(records))
    assert rows["truncate"][1].startswith("**0.6300 ± 0.0000**")
    assert not rows["pca"][1].startswith("**")
    assert rows["pca"][2].startswith("**0.5800 ± 0.0000**")
    assert not rows["truncate"][2].startswith("**")
    # Alone in its column, frozen has nothing to beat.
    assert rows["frozen"][0] == "0.6400 ± 0.0000"


def test_a_cell_short_of_the_columns_seeds_is_not_bold_even_when_it_ties(make_record) -> None:
    """dive on seeds 0 and 2 (mean 0.60) was bold beside pca's 0.60 on seeds 0-2, where bold
    is the best among the cells that ran all of the column's seeds."""
    records = [make_record(method="frozen", dim=384, ndcg=0.7, seed=s) for s in range(3)]
    records += [make_record(method="pca", dim=96, ndcg=v, seed=s)
                for s, v in enumerate([0.58, 0.60, 0.62])]
    records += [make_record(method="truncate", dim=96, ndcg=0.55, seed=s) for s in range(3)]
    records += [make_record(method="dive", dim=96, ndcg=v, seed=s)
                for s, v in ((0, 0.50), (2, 0.70))]
    rows = rows_of(table_for(records))
    assert rows["pca"][1].startswith("**0.6000")
    assert rows["dive"][1].startswith("0.6000") and rows["dive"][1].endswith("[n=2]")


def test_cells_show_difference_to_frozen_with_a_true_minus(make_record) -> None:
    records = [
        make_record(method="frozen", dim=384, ndcg=0.6450),
        make_record(method="pca", dim=96, ndcg=0.6123),
        make_record(method="dive", dim=96, ndcg=0.6500),
    ]
    rows = rows_of(table_for(records))
    assert rows["pca"][1] == "0.6123 ± 0.0000 (\u22120.033)"
    assert rows["dive"][1] == "**0.6500 ± 0.0000** (+0.005)"
    assert signed(-0.0327) == "\u22120.033"
    assert signed(-0.0001) == "+0.000"


def test_missing_cell_is_a_dash_and_full_column_blank(make_record) -> None:
    records = [
        make_record(method="frozen", dim=384, ndcg=0.64),
        make_record(method="pca", dim=192, ndcg=0.62),
        make_record(method="pca", dim=96, ndcg=0.60),
        make_record(method="dive", dim=192, ndcg=0.63),  # dive never ran at 96
    ]
    rows = rows_of(table_for(records))
    assert rows["dive"][2] == "-"
    assert rows["dive"][0] == "" and rows["frozen"][1:] == ["", ""]


def test_a_frozen_variant_row_is_blank_outside_the_full_column_and_others_inside(
    make_record,
) -> None:
    """With `frozen@int8` in the table its row showed `-` (not run) at every compressed
    dimension, and every compressed row `-` in the full column: cells that cannot exist."""
    records = [
        make_record(method="frozen", dim=384, ndcg=0.64),
        make_record(method="frozen", dim=384, ndcg=0.63, precision="int8"),
        make_record(method="pca", dim=192, ndcg=0.62),
        make_record(method="pca", dim=96, ndcg=0.60),
    ]
    rows = rows_of(table_for(records))
    assert rows["frozen@int8"][1:] == ["", ""] and rows["pca"][0] == ""


def test_single_seed_shows_std_zero_and_seed_mean_over_several(make_record) -> None:
    one = rows_of(table_for([make_record(method="pca", dim=96, ndcg=0.61)]))
    assert one["pca"] == ["0.6100 ± 0.0000"]
    three = [make_record(method="pca", dim=96, seed=s, ndcg=v)
             for s, v in enumerate([0.60, 0.61, 0.62])]
    # Population std of (0.60, 0.61, 0.62) is 0.00816...
    assert rows_of(table_for(three))["pca"] == ["0.6100 ± 0.0082"]


def test_cell_with_fewer_seeds_says_so(make_record) -> None:
    records = [make_record(method="pca", dim=96, seed=s, ndcg=0.6) for s in range(3)]
    records += [make_record(method="dive", dim=96, seed=0, ndcg=0.5)]
    assert rows_of(table_for(records))["dive"] == ["0.5000 ± 0.0000 [n=1]"]


def test_the_printed_table_marks_a_cell_with_fewer_seeds_too(make_record) -> None:
    """`dive evaluate` prints `text_tables`: a one-seed cell read as a 3-seed mean there."""
    from dive.report.table import text_tables

    records = [make_record(method="pca", dim=96, seed=s, ndcg=0.6) for s in range(3)]
    records += [make_record(method="dive", dim=96, seed=0, ndcg=0.5)]
    rows = {line.split()[0]: line for line in text_tables(records).splitlines()[1:]}
    assert rows["dive"].endswith("0.5000 ± 0.0000 [n=1]")
    assert rows["pca"].endswith("0.6000 ± 0.0000")


def test_recall_table_uses_recall_and_its_own_frozen(make_record) -> None:
    records = [
        make_record(method="frozen", dim=384, ndcg=0.64, recall=0.90),
        make_record(method="pca", dim=96, ndcg=0.60, recall=0.85),
    ]
    rows = rows_of(table_for(records, "recall@100"))
    assert rows["pca"][1] == "0.8500 ± 0.0000 (\u22120.050)"


def test_report_has_one_section_per_dataset_and_budget_with_both_metrics(make_grid) -> None:
    records = make_grid(budgets=("16", "all"))
    text = render_report(records, keep=0.99, images=[("dims", "img/a.png")])
    for heading in ("## nfcorpus", "## scifact", "### scifact, 16 labelled queries",
                    "### scifact, all labelled queries",
                    "### nfcorpus: smallest dimension keeping 99% of frozen nDCG@10"):
        assert heading + "\n" in text
    assert "### scifact, 64 labelled queries" not in text
    section = text.split("### scifact, 16 labelled queries")[1].split("###")[0]
    assert section.index("nDCG@10:") < section.index("Recall@100:")
    assert "![dims](img/a.png)" in text
    assert "seeds: 0, 1, 2" in text


def test_report_without_frozen_has_no_diffs_and_says_so(make_record) -> None:
    text = render_report([make_record(method="pca", dim=96, ndcg=0.6)])
    assert "(\u2212" not in text and "(+" not in text
    assert "No frozen run on this dataset" in text


def test_a_report_of_frozen_alone_says_nothing_compressed_ran(make_record) -> None:
    """It said frozen float32 was missing (with advice to add it) beside the frozen row."""
    text = render_report([make_record(method="frozen", dim=384, ndcg=0.64)])
    assert "No compressed configuration ran on this dataset, so none keeps a share of " \
        "frozen." in text and "No frozen" not in text


def test_report_with_frozen_at_other_precisions_only_says_float32_is_missing(
    make_record
) -> None:
    """`evaluate --precisions int8,binary` runs frozen at those only: the report said "No
    frozen run on this dataset" beside its frozen@int8 row."""
    records = [make_record(method="pca", dim=96, ndcg=0.6),
               make_record(method="frozen", dim=384, ndcg=0.64, precision="int8"),
               make_record(method="frozen", dim=384, ndcg=0.5, precision="binary")]
    assert ("No frozen float32 (only frozen@binary, frozen@int8: evaluate with float32 among "
            "the precisions and 0 among the rescore factors) run on this dataset"
            in render_report(records))


def test_budgets_sort_numerically_with_all_last(make_record) -> None:
    records = [make_record(method="pca", budget=b) for b in ("all", "256", "16", "64")]
    text = render_report(records)
    found = [text.index(f"### scifact, {b} labelled queries") for b in ("16", "64", "256", "all")]
    assert found == sorted(found)


def test_cost_table_shows_mean_and_max_fit_seconds_and_the_parameter_range(make_record) -> None:
    records = [
        make_record(method="dive", dim=192, budget="16", fit_seconds=2.0, n_params=220_000),
        make_record(method="dive", dim=96, budget="16", fit_seconds=4.0, n_params=184_000),
        make_record(method="dive", dim=96, budget="all", fit_seconds=9.0, n_params=184_000),
        make_record(method="pca", dim=96, budget="16", fit_seconds=0.05, n_params=36_864),
    ]
    table = cost_table(summarize_cost(records))
    assert table.splitlines()[0] == (
        "| method | 16 labelled queries | all labelled queries | parameters |"
    )
    rows = rows_of(table)
    assert rows["dive"] == ["3.0 (4.0)", "9.0 (9.0)", "184k–220k"]
    assert rows["pca"] == ["0.1 (0.1)", "-", "37k"]
    assert list(rows) == ["pca", "dive"]


def test_the_parameter_range_spans_the_dims_of_one_cell(make_record) -> None:
    """The range's low end was the smallest of each cell's largest count: a method fitted at
    several dims on one budget showed its largest count alone."""
    records = [make_record(method="dive", dim=d, budget="16", n_params=n)
               for d, n in ((192, 220_000), (96, 184_000))]
    assert rows_of(cost_table(summarize_cost(records)))["dive"] == ["0.0 (0.0)", "184k–220k"]


def test_the_cost_table_shows_the_mean_fit_seconds_not_the_median(make_record) -> None:
    """Guards the cost table's mean: the median of 1, 2 and 6 seconds (2.0) read as their
    mean (3.0)."""
    records = [make_record(method="pca", dim=d, fit_seconds=s)
               for d, s in ((192, 1.0), (96, 2.0), (48, 6.0))]
    assert rows_of(cost_table(summarize_cost(records)))["pca"][0] == "3.0 (6.0)"


def test_report_has_a_cost_section_per_dataset(make_record) -> None:
    records = [make_record(dataset=ds, method="pca") for ds in ("scifact", "nfcorpus")]
    text = render_report(records)
    assert "### scifact: fit seconds and parameters" in text
    assert "### nfcorpus: fit seconds and parameters" in text


def test_selection_grids_name_what_each_learned_row_chose_from(make_record) -> None:
    records = [
        make_record(method="pca", dim=96),  # no diagnostics: not a learned row
        make_record(method="search-adaptor", diagnostics={"grid": "weight_rec 0/0.1/1"}),
        make_record(method="search-adaptor", budget="all",
                    diagnostics={"grid": "weight_rec 0/0.1/1"}),
        make_record(method="search-adaptor", budget="4", diagnostics={"grid": "none"}),
        make_record(method="search-adaptor@v1", diagnostics={"best_step": 25}),
        make_record(method="dive", diagnostics={"choice": {}},
                    config={"grid": "0x1,1x10x3", "select": True, "start": "select"}),
        make_record(method="dive:select=false", diagnostics={"choice": {}},
                    config={"grid": "0x1,1x10x3", "select": False}),
    ]
    rows = rows_of(grid_table(records))
    assert list(rows) == ["search-adaptor", "search-adaptor@v1", "dive", "dive:select=false"]
    # which cells searched the grid and which had too few validation queries for it
    assert rows["search-adaptor"] == ["weight_rec 0/0.1/1 (scifact: 64, all); none (scifact: 4)"]
    assert rows["search-adaptor@v1"] == ["none (fixed settings)"]
    assert rows["dive"] == ["grid=0x1,1x10x3, start=select"]
    assert rows["dive:select=false"] == ["none (fixed settings)"]
    assert "## Selection grids" in render_report(records)
    assert "## Selection grids" not in render_report(records[:1])


def test_a_grid_config_without_select_chose_from_its_grid_and_datasets_read_by_name(
    make_record
) -> None:
    """A config naming a grid but no `select` (it selects by default) read as fixed settings,
    and the datasets a grid was used on came in the records' order, not by name."""
    records = [make_record(dataset="scifact", method="dive", diagnostics={"choice": {}},
                           config={"grid": "0x1,1x10x3"}),
               make_record(dataset="scifact", method="search-adaptor", diagnostics={"grid": "g"}),
               make_record(dataset="nfcorpus", method="search-adaptor",
                           diagnostics={"grid": "g"}),
               make_record(dataset="arguana", method="search-adaptor", budget="4",
                           diagnostics={"grid": "none"})]
    rows = rows_of(grid_table(records))
    assert rows["dive"] == ["grid=0x1,1x10x3"]
    assert rows["search-adaptor"] == ["g (nfcorpus: 64; scifact: 64); none (arguana: 4)"]


def test_version_suffixed_rows_sit_after_their_method(make_record) -> None:
    order = ("smec:basis=pca@v1", "dive", "smec", "smec:stage_layer=linear", "smec@v1")
    records = [make_record(method=m) for m in order]
    assert method_order(r["method"] for r in records) == [
        "smec", "smec@v1", "smec:basis=pca@v1", "smec:stage_layer=linear", "dive"
    ]
    assert base_method("smec:basis=pca@v1") == "smec" == base_method("smec@v1")


def test_unknown_methods_keep_the_order_their_base_was_first_seen() -> None:
    """Guards "unknown methods in the order first seen": a base placed by its last row put
    `bar` (seen second) before `foo` (seen first) once an ablation of `foo` came after it."""
    assert method_order(["foo", "bar", "foo:x=1"]) == ["foo", "foo:x=1", "bar"]


def test_a_plain_method_sits_before_its_variants_whatever_order_they_came_in() -> None:
    """With the plain method's own tie-break lost, `pca@int8` seen first sorted above `pca`
    (both keyed as the spec itself): the variant row sat over the method it is a variant of."""
    assert method_order(["pca@int8", "pca"]) == ["pca", "pca@int8"]
    assert method_order(["pca@binary", "pca@int8", "pca"]) == ["pca", "pca@binary", "pca@int8"]


def test_the_reference_is_plain_frozen_if_present_else_the_first_frozen_spec() -> None:
    """The last frozen row was taken as the reference: `frozen:x` over a plain `frozen` listed
    after it, and the later of two specs, where the docstring names plain `frozen`, else the
    first spec."""
    assert frozen_method(["frozen:x", "frozen"]) == "frozen"
    assert frozen_method(["pca", "frozen:b", "frozen:a"]) == "frozen:b"
    assert frozen_method(["pca", "dive"]) is None


def test_a_cells_scores_are_listed_by_seed_whatever_the_records_order(make_record) -> None:
    """`Cell.scores` says it is by seed: it followed the records' order, so seeds written out
    of order (a rerun appended, merged files) listed seed 1 before seed 0."""
    records = [make_record(method="pca", seed=s, ndcg=v) for s, v in ((2, 0.6), (0, 0.4), (1, 0.5))]
    (cell,) = summarize(records)
    assert cell.scores == ((0, 0.4), (1, 0.5), (2, 0.6))
    assert cell.scores == summarize(sorted(records, key=lambda r: r["seed"]))[0].scores


def test_difference_to_frozen_is_on_the_seeds_both_ran(make_record) -> None:
    # Frozen on seeds 0-2, seed 1's queries hard (mean 0.5333); dive on seed 1 only matches
    # frozen there, which a difference to frozen's three-seed mean read as −0.133.
    records = []
    for seed, value in enumerate([0.60, 0.40, 0.60]):
        records += [make_record(method="frozen", dim=384, seed=seed, ndcg=value),
                    make_record(method="pca", dim=96, seed=seed, ndcg=value - 0.05)]
    records += [make_record(method="dive", dim=96, seed=1, ndcg=0.40),
                make_record(method="truncate", dim=96, seed=7, ndcg=0.30)]
    rows = rows_of(table_for(records))
    # not bold: no cell ran all of the column's seeds (0-2 and 7), so none compares with all
    assert rows["pca"][1] == "0.4833 ± 0.0943 (\u22120.050)"
    assert rows["dive"][1] == "0.4000 ± 0.0000 (+0.000 on seed 1) [n=1]"
    assert rows["truncate"][1] == "0.3000 ± 0.0000 (no seed in common with frozen) [n=1]"


def test_keep_section_names_a_budget_without_a_frozen_run(make_record) -> None:
    # Frozen ran with 64 labels only: the all-labels runs have no reference, and their rows
    # were missing from the keep table without a word.
    records = [make_record(method="frozen", dim=384, budget="64", ndcg=0.60),
               make_record(method="pca", dim=96, budget="64", ndcg=0.59),
               make_record(method="dive", dim=96, budget="all", ndcg=0.61)]
    text = render_report(records)
    keep = text[text.index("smallest dimension keeping"):text.index("fit seconds")]
    assert "No frozen run with all labelled queries, so no reference to keep there." in keep
    assert "No frozen run with 64 labelled queries" not in keep


def test_a_cell_with_fewer_seeds_than_its_column_is_never_bold(make_record) -> None:
    # pca and truncate on seeds 0-2 (seed 1's queries easy); dive on seed 1 only scores 0.70
    # there, its mean the column's highest, though pca scores 0.72 on the same queries.
    records = []
    for seed, value in enumerate([0.50, 0.72, 0.50]):
        records += [make_record(method="pca", dim=96, seed=seed, ndcg=value),
                    make_record(method="truncate", dim=96, seed=seed, ndcg=value - 0.05),
                    make_record(method="pca", dim=48, seed=seed, ndcg=value - 0.1)]
    records += [make_record(method="dive", dim=96, seed=1, ndcg=0.70),
                make_record(method="dive", dim=48, seed=1, ndcg=0.70)]
    rows = rows_of(table_for(records))
    assert rows["dive"] == ["0.7000 ± 0.0000 [n=1]", "0.7000 ± 0.0000 [n=1]"]
    assert rows["pca"][0].startswith("**0.5733 ± 0.1037**")
    # at d=48 only pca ran every seed: it has nothing comparable to beat
    assert rows["pca"][1] == "0.4733 ± 0.1037"
    # a column whose cells all ran one seed compares them on it
    one = [make_record(method=m, dim=96, seed=4, ndcg=v)
           for m, v in [("pca", 0.6), ("dive", 0.62)]]
    assert rows_of(table_for(one))["dive"] == ["**0.6200 ± 0.0000**"]


@pytest.mark.parametrize("name", ["web*v2*", "a_b_c", "x`y", "[doc](v)", "n<b>"])
def test_a_dataset_name_reads_as_typed_in_headings_and_the_datasets_line(
    make_record: Any, name: str
) -> None:
    """`## web*v2*` rendered as web + italic v2; two names with one backtick each turned the
    text between them into inline code."""
    from dive.report.markdown import plain

    text = render_report([make_record(dataset=name, method="frozen", dim=384),
                          make_record(dataset=name, method="pca", dim=96)])
    assert f"## {plain(name)}\n" in text and f"datasets: {plain(name)};" in text
    assert f"## {name}\n" not in text
    # every markup character escaped, nothing else changed
    assert plain(name).replace("\\", "") == name.replace("\\", "")
    assert all(plain(name)[i - 1] == "\\" for i, c in enumerate(plain(name))
               if c in "`*_[]<>" and i > 0)


def test_the_keep_and_cost_tables_list_rows_in_the_metric_tables_order(
    make_record: Any
) -> None:
    """They listed `frozen@binary` before `frozen@float16` (alphabetical), where the nDCG@10
    table and summary.csv list them as the records first name them."""

    records = []
    for method, precision in (("frozen", "float32"), ("frozen", "float16"), ("frozen", "int8"),
                              ("frozen", "binary"), ("pca", "float32"), ("pca", "int8"),
                              ("pca", "binary")):
        dim = 384 if method == "frozen" else 96
        size = {"float32": 4 * dim, "float16": 2 * dim, "int8": dim, "binary": dim // 8}
        records.append(make_record(method=method, dim=dim, ndcg=0.6, precision=precision,
                                   bytes_per_vector=size[precision]))
    text = render_report(records)

    def rows(heading: str) -> list[str]:  # the method column of the table after `heading`
        table = text.split(heading, 1)[1].split("\n\n|", 1)[1].split("\n\n", 1)[0]
        return [line.split(" | ")[0].lstrip("| ") for line in table.splitlines()[2:]]

    ndcg = rows("nDCG@10:")
    assert ndcg[:4] == ["frozen", "frozen@float16", "frozen@int8", "frozen@binary"]
    assert rows("smallest dimension keeping") == ndcg[1:]  # frozen itself keeps all of itself
    assert rows("fit seconds and parameters") == ndcg


def test_long_runs_of_seeds_read_as_ranges() -> None:
    """A file of 420 seeds spelt out every seed in every cell and the header (8 KB lines)."""
    from dive.report.paired import seed_list, seed_ranges

    assert seed_list([2, 0, 1]) == "seeds 0, 1, 2"  # three: as they were
    assert seed_list([1]) == "seed 1"
    assert seed_ranges([*range(420), 421, 423, 424, 425, 426]) == "0-419, 421, 423-426"


def test_cells_tied_at_the_printed_precision_are_all_bold(make_record) -> None:
    """0.63 and 0.63004 both print 0.6300: bolding one of them picked a winner by record order."""
    records = [make_record(method="frozen", dim=384, ndcg=0.64)]
    records += [make_record(method=m, dim=96, ndcg=v)
                for m, v in (("truncate", 0.63), ("pca", 0.63004), ("random", 0.62))]
    rows = rows_of(table_for(records))
    assert rows["truncate"][1].startswith("**0.6300 ± 0.0000**")
    assert rows["pca"][1].startswith("**0.6300 ± 0.0000**")
    assert not rows["random"][1].startswith("**")


def test_the_printed_table_puts_the_largest_dimension_first(make_record) -> None:
    """As the Markdown tables do: the columns went smallest d first."""
    from dive.report.table import text_tables

    records = [make_record(method="pca", dim=d, ndcg=0.5) for d in (48, 192, 96)]
    assert text_tables(records).splitlines()[1].split() == ["method", "d=192", "d=96", "d=48"]


def test_the_report_names_every_model_of_its_records(make_record) -> None:
    """Records of two models: the report's first line named only the first."""
    records = [make_record(dataset=d, method="pca", model=m)
               for d, m in (("scifact", "model-b"), ("nfcorpus", "model-a"))]
    assert "; models: model-a, model-b; " in render_report(records)


def test_one_frozen_figure_when_every_budget_prints_the_same(make_record) -> None:
    """Frozen 0.60001 and 0.60003 both print 0.6000: the keep section gave "0.6000 with 16
    labelled queries, 0.6000 with 64 labelled queries", as if they differed."""
    records = [make_record(method="frozen", dim=384, ndcg=v, budget=b)
               for b, v in (("16", 0.60001), ("64", 0.60003))]
    records += [make_record(method="pca", dim=96, ndcg=0.5, budget=b) for b in ("16", "64")]
    assert "of frozen (frozen: 0.6000), and that mean." in render_report(records)
