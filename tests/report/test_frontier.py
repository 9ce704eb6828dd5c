"""The quality-per-byte frontier (`dive.report.frontier`) on hand-made records."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dive.report.frontier import (
    PLOT_FLOOR,
    best_per_budget,
    check_budgets,
    configs,
    fewest_bytes_keeping,
    frontier,
    frontier_section,
    frozen_reference,
    has_frontier,
    unpaired,
)
from dive.report.plots import frontier_figure


def by_bytes(rows: list[Any]) -> dict[int, tuple[str | None, str | None]]:
    return {r.bytes_per_vector: (r.ours and r.ours.label, r.anchor and r.anchor.label)
            for r in rows}


def test_the_table_picks_the_best_row_within_each_budget(
    byte_records: list[dict[str, Any]]
) -> None:
    cells = configs(byte_records)
    without = by_bytes(best_per_budget(cells, rescoring=False))
    assert without == {
        12: ("pca@binary", None),
        16: ("pca@binary", "faiss-pq:16"),
        48: ("pca@int8", "faiss-pq:48"),  # d=48: 0.550 beats frozen@binary's 0.540
        96: ("pca@int8", "faiss-pq:48"),
        192: ("pca@int8", "faiss-pq:48"),  # 0.581 at 96 B beats pca's 0.549 at 192 B
        384: ("frozen@int8", "st-int8"),
        1536: ("frozen", "st-int8"),
    }
    with_funnel = by_bytes(best_per_budget(cells, rescoring=True))
    assert with_funnel[12] == ("pca@binary+rescore10", None)
    assert with_funnel[48] == ("pca@binary+rescore10", "faiss-pq:48@rescore10")
    rows = best_per_budget(cells, rescoring=False)
    check = check_budgets(rows, low=12, high=768)
    # Compared where both have a row: 16, 48, 96, 192, 384 bytes; PQ wins at 16 and 48.
    assert check.compared == 5
    assert [r.bytes_per_vector for r in check.misses] == [16, 48]
    assert check.misses[1].margin == pytest.approx(0.550 - 0.570)
    assert check_budgets(rows, low=64, high=768).misses == ()


def test_means_are_over_seeds_and_the_frontier_drops_dominated_rows(
    byte_records: list[dict[str, Any]], byte_row: Callable[..., dict[str, Any]]
) -> None:
    cells = configs([*byte_records, byte_row("pca", 96, "int8", 96, 0.571, seed=1)])
    pca_int8 = next(c for c in cells if c.label == "pca@int8" and c.dim == 96)
    assert pca_int8.mean == pytest.approx(0.576) and pca_int8.n_seeds == 2
    line = [c.label for c in frontier(c for c in cells if c.family == "pca" and not c.rescore)]
    # 12 B, 48 B, 96 B (now 0.576), then float32 at 384 B (0.580); 192 B (0.549) is dominated.
    assert line == ["pca@binary", "pca@int8", "pca@int8", "pca"]
    assert [c.bytes_per_vector for c in frontier(c for c in cells if c.family == "pca"
                                                 and not c.rescore)] == [12, 48, 96, 384]


def test_a_configuration_scoring_the_same_with_more_bytes_is_off_the_frontier(
    byte_row: Callable[..., dict[str, Any]]
) -> None:
    """Guards the strict comparison: a tie buys nothing for its extra bytes."""
    cells = configs([byte_row("pca", 96, "int8", 96, 0.58),
                     byte_row("pca", 96, "float32", 384, 0.58)])
    assert [c.bytes_per_vector for c in frontier(cells)] == [96]


def test_a_tie_in_bytes_and_mean_goes_to_the_configuration_without_a_funnel(
    byte_row: Callable[..., dict[str, Any]]
) -> None:
    """Guards the last tie-break of the best within a budget: a funnel
    scoring no better for the same bytes was picked when it came first, though it also reads
    a float32 copy of every vector."""
    cells = configs([byte_row("dive", 96, "binary", 12, 0.55, rescore=10),
                     byte_row("pca", 96, "binary", 12, 0.55)])
    for order in (cells, cells[::-1]):
        [row] = best_per_budget(order, rescoring=True)
        assert row.ours is not None and row.ours.label == "pca@binary"


def test_a_full_tie_within_a_budget_goes_to_the_same_row_whatever_the_record_order(
    byte_row: Callable[..., dict[str, Any]]
) -> None:
    """Configurations were taken in the records' order, so of two rows level on mean, bytes
    and funnel the one run first was the budget's best: the answer moved with the file."""
    records = [byte_row("pca", 96, "int8", 96, 0.55),
               byte_row("pca-uncentered", 96, "int8", 96, 0.55)]
    picks = set()
    for order in (records, records[::-1]):
        [row] = best_per_budget(configs(order), rescoring=False)
        picks.add(row.ours and row.ours.label)
    assert len(picks) == 1


def test_a_funnel_names_its_rescoring_source_only_when_not_the_full_embeddings(
    byte_row: Callable[..., dict[str, Any]]
) -> None:
    """The default source (the full embeddings) was spelt out as "(full)" on every funnel."""
    full, compressed = configs([
        byte_row("pca", 96, "binary", 12, 0.59, rescore=10),
        {**byte_row("pca", 48, "binary", 6, 0.5, rescore=10), "rescore_with": "compressed"}])
    assert {full.describe(), compressed.describe()} == {
        "pca d=96 binary + rescore 10", "pca d=48 binary + rescore 10 (compressed)"}


def test_a_product_quantizer_anchor_is_named_by_its_code_alone(
    byte_row: Callable[..., dict[str, Any]]
) -> None:
    """OPQ read as `faiss-opq:16 d=384`, as if it kept 384 dimensions, where PQ read alone."""
    cells = configs([byte_row("faiss-opq:16", 384, "pq", 16, 0.5),
                     byte_row("faiss-pq:16", 384, "pq", 16, 0.5)])
    assert [c.describe() for c in cells] == ["faiss-opq:16", "faiss-pq:16"]


def test_a_section_where_every_configuration_ran_the_same_seeds_names_none(
    byte_row: Callable[..., dict[str, Any]]
) -> None:
    """Guards the order of the seeds compared: on seeds 1 and 8 each cell said "on seeds 1,
    8", as if the comparison had left out a seed of its own."""
    records = [byte_row(method, dim, precision, size, ndcg + seed / 100, seed=seed)
               for seed in (1, 8)
               for method, dim, precision, size, ndcg in (
                   ("frozen", 384, "float32", 1536, 0.60), ("pca", 96, "int8", 96, 0.55),
                   ("faiss-pq:48", 384, "pq", 96, 0.50))]
    text = frontier_section(records)
    assert "| 96 | pca d=96 int8: 0.5" in text
    assert "on seed" not in text


def test_a_budget_at_the_upper_bound_is_checked(
    byte_row: Callable[..., dict[str, Any]]
) -> None:
    """Guards the closed range [low, high]: ours at exactly 768 bytes below the anchor within
    it is a miss of the target, not left out of it."""
    rows = best_per_budget(configs([byte_row("pca", 192, "float32", 768, 0.55),
                                    byte_row("faiss-pq:96", 384, "pq", 96, 0.57)]),
                           rescoring=False)
    check = check_budgets(rows, low=12, high=768)
    assert (check.compared, [r.bytes_per_vector for r in check.misses]) == (1, [768])


def test_a_budget_at_the_lower_bound_is_checked_and_a_tie_is_no_miss(
    byte_row: Callable[..., dict[str, Any]]
) -> None:
    """Guards the closed range's low end and "ours >= the anchor": ours below the anchor at
    exactly 12 bytes was left out of the target, and ours level with it counted as a miss."""
    rows = best_per_budget(configs([byte_row("pca", 96, "binary", 12, 0.50),
                                    byte_row("faiss-pq:12", 384, "pq", 12, 0.52),
                                    byte_row("pca", 128, "binary", 16, 0.55),
                                    byte_row("faiss-pq:16", 384, "pq", 16, 0.55)]),
                           rescoring=False)
    check = check_budgets(rows, low=12, high=768)
    assert (check.compared, [r.bytes_per_vector for r in check.misses]) == (2, [12])


def test_a_margin_on_fewer_seeds_than_the_anchor_ran_names_them(
    byte_row: Callable[..., dict[str, Any]]
) -> None:
    """Guards the seeds beside ours - anchor: with ours on seed 0 and the anchor on seeds 0
    and 1, the margin on seed 0 read as if over the anchor's mean in its column."""
    records = [byte_row("pca", 96, "int8", 96, 0.55, seed=0),
               byte_row("faiss-pq:96", 384, "pq", 96, 0.50, seed=0),
               byte_row("faiss-pq:96", 384, "pq", 96, 0.70, seed=1)]
    assert "| faiss-pq:96: 0.6000 | +0.0500 on seed 0 |" in frontier_section(records)


def test_sections_by_budget_size_and_none_without_an_anchor_on_that_dataset(
    byte_row: Callable[..., dict[str, Any]]
) -> None:
    """Budgets sorted as text put 256 labelled queries before 64; and a dataset without an
    anchor read "ours >= the best anchor at 0 of 0 budgets" when another dataset had one."""
    records = [byte_row("pca", 96, "int8", 96, 0.55, budget=budget, dataset=dataset)
               for budget in ("256", "64") for dataset in ("nfcorpus", "scifact")]
    records.append(byte_row("faiss-pq:96", 384, "pq", 96, 0.50, dataset="scifact"))
    text = frontier_section(records)
    titles = [line for line in text.splitlines() if line.startswith("### ")]
    assert titles == ["### nfcorpus, 64 labelled queries", "### nfcorpus, 256 labelled queries",
                      "### scifact, 64 labelled queries", "### scifact, 256 labelled queries"]
    nfcorpus = text.split("### nfcorpus, 64 labelled queries")[1].split("###")[0]
    assert "No anchor was run, so none is compared" in nfcorpus
    assert "0 of 0 budgets" not in text


def test_a_float32_funnel_alone_gets_a_frontier_section(
    byte_row: Callable[..., dict[str, Any]]
) -> None:
    """Only the precision was checked: float32 first stages rescored (a funnel, bytes other
    than the plain rows') read as plain float32 rows and got no section."""
    assert has_frontier([byte_row("pca", 96, "float32", 384, 0.58),
                         byte_row("pca", 96, "float32", 384, 0.59, rescore=10)])


def test_fewest_bytes_keeping_a_share_and_the_section(byte_records: list[dict[str, Any]]) -> None:
    text = frontier_section(byte_records, image="img/bytes.png")
    assert "![nDCG@10 vs bytes per vector](img/bytes.png)" in text
    assert ("ours ≥ the best anchor at 3 of 5 budgets where both ran (below at 16 B: −0.1000, "
            "48 B: −0.0200)") in text
    assert "| **best of ours** | 96 B: pca d=96 int8 (0.5810) |" in text
    assert has_frontier(byte_records) and not has_frontier(
        [{**r, "precision": "float32", "rescore": 0} for r in byte_records if r["method"] == "pca"])


def test_the_frontier_plot_has_a_line_per_family(byte_records: list[dict[str, Any]]) -> None:
    fig = frontier_figure(byte_records)
    labels = {line.get_label() for ax in fig.axes for line in ax.get_lines()}
    assert {"pca", "frozen, quantized", "faiss-pq", "st-int8"} <= labels
    assert any(label.startswith("frozen float32") for label in labels)
    assert fig.axes[0].get_xscale() == "log"
    # the axis cut is said beside the plot: a point below it was missing without a word
    assert fig.axes[0].get_ylim()[0] == pytest.approx(PLOT_FLOOR * 0.600)  # frozen float32's
    assert (f"The plot's y axis starts at {PLOT_FLOOR:.0%} of frozen float32: a configuration "
            "scoring lower (a few bits a vector) is in the tables only.") in frontier_section(
                byte_records, image="img/bytes.png")


def test_shares_of_frozen_are_on_the_seeds_both_ran(
    byte_row: Callable[..., dict[str, Any]]
) -> None:
    # Frozen on seeds 0-2 (mean 0.4167, 0.45 on seed 1); pca d=96 int8 on seed 1 only keeps
    # 103% of the all-seed mean but 95.6% on its own queries; pca d=48 int8 shares no seed.
    records = [byte_row("frozen", 384, "float32", 1536, v, seed=s)
               for s, v in enumerate([0.40, 0.45, 0.40])]
    records += [byte_row("pca", 96, "int8", 96, 0.430, seed=1),
                byte_row("pca", 192, "int8", 192, 0.446, seed=1),
                byte_row("pca", 48, "int8", 48, 0.30, seed=5)]
    cells = configs(records)
    frozen = frozen_reference(cells)
    assert frozen is not None
    hit = fewest_bytes_keeping([c for c in cells if c is not frozen], frozen, 0.99)
    assert hit is not None and hit.config.dim == 192 and hit.paired.seeds == (1,)
    assert hit.paired.reference == pytest.approx(0.45)
    assert [c.dim for c in unpaired(cells, frozen)] == [48]
    text = frontier_section(records)
    assert ("| **best of ours** | 96 B: pca d=96 int8 (0.4300 on seed 1) | 192 B: pca d=192 "
            "int8 (0.4460 on seed 1) |") in text
    assert "pca d=96 int8: 0.4300 (95.6% on seed 1)" in text
    assert "pca d=48 int8: 0.3000 (no seed shared with frozen)" in text
    assert ("Not compared (no seed in common with frozen's seeds 0, 1, 2): pca d=48 int8 "
            "(seed 5).") in text


def test_the_frozen_reference_is_never_its_own_answer(
    byte_row: Callable[..., dict[str, Any]]
) -> None:
    """With nothing else keeping 99%, "best of ours" (and the frozen row) was the float32
    reference at 1536 B, keeping all of itself, where `dive recommend` said none qualifies."""
    records = [byte_row("frozen", 384, "float32", 1536, 0.60, seed=0),
               byte_row("frozen", 384, "int8", 384, 0.58, seed=0),
               byte_row("pca", 96, "int8", 96, 0.50, seed=0)]
    text = frontier_section(records)
    assert "| **best of ours** | 384 B: frozen d=384 int8 (0.5800) | not reached |" in text
    assert "| frozen | 384 B: frozen d=384 int8 (0.5800) | not reached |" in text
    assert "1536 B" not in text.split("Fewest bytes per vector keeping")[1]


def test_a_configuration_on_more_seeds_than_frozen_names_the_seeds_compared(
    byte_row: Callable[..., dict[str, Any]]
) -> None:
    """The share was on frozen's seeds 0-1 beside the configuration's 3-seed mean, unnamed:
    `0.5733 (101.5%)`, where 0.5733 / 0.65 is 88%."""
    records = [byte_row("frozen", 384, "float32", 1536, v, seed=s)
               for s, v in enumerate([0.6, 0.7])]
    records += [byte_row("pca", 96, "int8", 96, v, seed=s)
                for s, v in enumerate([0.62, 0.7, 0.4])]
    text = frontier_section(records)
    assert "pca d=96 int8: 0.5733 (101.5% on seeds 0, 1)" in text
    assert "96 B: pca d=96 int8 (0.6600 on seeds 0, 1)" in text


def test_ours_against_an_anchor_is_on_the_seeds_both_ran(
    byte_row: Callable[..., dict[str, Any]]
) -> None:
    # pca d=96 int8 on seeds 0-2 (mean 0.5233: seed 1's queries are hard); PQ at the same bytes
    # on seed 0 only. Their means say PQ is 0.057 ahead; on seed 0, ours is 0.01 ahead.
    records = []
    for seed, frozen in enumerate([0.60, 0.40, 0.60]):
        records += [byte_row("frozen", 384, "float32", 1536, frozen, seed=seed),
                    byte_row("pca", 96, "int8", 96, frozen - 0.01, seed=seed)]
    records += [byte_row("faiss-pq:96", 384, "pq", 96, 0.58, seed=0),
                byte_row("faiss-pq:48", 384, "pq", 48, 0.50, seed=7),
                byte_row("pca", 48, "int8", 48, 0.45, seed=1)]
    rows = best_per_budget(configs(records), rescoring=False)
    at = {r.bytes_per_vector: r for r in rows}
    assert at[96].margin == pytest.approx(0.59 - 0.58) and at[96].paired.seeds == (0,)  # type: ignore[union-attr]
    assert at[48].margin is None and at[48].unpaired  # seeds 1 and 7: nothing to compare
    check = check_budgets(rows, low=12, high=768)
    assert (check.compared, check.misses, check.unpaired) == (1, (), 1)
    text = frontier_section(records)
    assert ("ours ≥ the best anchor at 1 of 1 budgets where both ran; at 1 more they share no "
            "seed, so they were not compared") in text
    assert "| 96 | pca d=96 int8: 0.5233 (98.1%) | faiss-pq:96: 0.5800 (96.7% on seed 0) | " \
           "+0.0100 on seed 0 |" in text
    assert "| no seed in common |" in text


def test_the_best_within_a_budget_is_among_the_configurations_with_the_most_seeds(
    byte_row: Callable[..., dict[str, Any]]
) -> None:
    # pca d=96 int8 on seeds 0-2 (mean 0.5733: seed 1's queries easy); pca d=48 int8 on seed 1
    # only scores 0.70 there, a higher mean than d=96's though d=96 scores 0.72 on seed 1.
    records = []
    for seed, value in enumerate([0.50, 0.72, 0.50]):
        records += [byte_row("frozen", 384, "float32", 1536, value + 0.02, seed=seed),
                    byte_row("pca", 96, "int8", 96, value, seed=seed),
                    byte_row("faiss-pq:96", 384, "pq", 96, value - 0.01, seed=seed)]
    records += [byte_row("pca", 48, "int8", 48, 0.70, seed=1),
                byte_row("faiss-pq:48", 384, "pq", 48, 0.71, seed=1)]
    at = {r.bytes_per_vector: r for r in best_per_budget(configs(records), rescoring=False)}
    assert (at[48].ours and at[48].ours.dim, at[48].anchor and at[48].anchor.label) == (
        48, "faiss-pq:48")  # alone within 48 bytes, whatever their seeds
    assert at[96].ours is not None and at[96].ours.dim == 96
    assert at[96].anchor is not None and at[96].anchor.label == "faiss-pq:96"
    assert at[96].margin == pytest.approx(0.01)
    assert "among the configurations within it that ran the most seeds" in frontier_section(
        records)


def test_most_seeded_configurations_on_different_seeds_are_compared_on_the_seeds_they_share(
    byte_row: Callable[..., dict[str, Any]]
) -> None:
    """Guards `best_within`'s shared-seed means: a configuration whose seeds held the shared
    ones and more was judged on its own mean (seed 0's easy queries), so it won though it
    scores lower on the seed both ran."""
    records = [byte_row("pca", 96, "int8", 96, 0.90, seed=0),
               byte_row("pca", 96, "int8", 96, 0.50, seed=1),
               byte_row("pca-uncentered", 96, "int8", 96, 0.60, seed=1),
               byte_row("pca-uncentered", 96, "int8", 96, 0.60, seed=2)]
    [row] = best_per_budget(configs(records), rescoring=False)
    assert row.ours is not None and row.ours.label == "pca-uncentered@int8"


def test_a_tie_in_bytes_and_mean_puts_the_configuration_without_a_funnel_on_the_frontier(
    byte_row: Callable[..., dict[str, Any]]
) -> None:
    """Guards the frontier's tie-break: a funnel scoring the same at the same bytes took the
    point, though it also reads a float32 copy of every vector."""
    cells = configs([byte_row("pca", 96, "binary", 12, 0.55, rescore=10),
                     byte_row("pca", 96, "binary", 12, 0.55)])
    for order in (cells, cells[::-1]):
        assert [c.label for c in frontier(order)] == ["pca@binary"]


def test_rows_of_an_earlier_release_are_no_answer_per_byte(
    byte_records: list[dict[str, Any]], byte_row: Callable[..., dict[str, Any]]
) -> None:
    # dive@v1 at 12 B above everything: `dive recommend` never ships it (dive fit cannot
    # build it), so neither the report's per-byte tables nor its plot may name it
    records = byte_records + [byte_row("dive@v1", 96, "binary", 12, 0.7, seed=s) for s in (0, 1)]
    text = frontier_section(records)
    assert "dive@v1 d=96" not in text
    assert "| **best of ours** | 96 B: pca d=96 int8 (0.5810) |" in text
    assert "Rows of an earlier release (dive@v1) are left out here" in text
    fig = frontier_figure(records)
    assert "dive" not in {line.get_label() for ax in fig.axes for line in ax.get_lines()}


def test_without_anchors_the_section_says_none_was_run(
    byte_records: list[dict[str, Any]]
) -> None:
    """"ours ≥ the best anchor at 0 of 0 budgets where both ran" where no anchor ran."""
    ours = [r for r in byte_records if not r["method"].startswith(("faiss", "st-"))]
    text = frontier_section(ours)
    assert "best anchor at 0 of 0" not in text
    assert text.count("No anchor was run, so none is compared.") == 2  # without, with rescoring


def test_a_grid_of_funnels_only_says_so_instead_of_an_empty_table(
    byte_row: Callable[..., dict[str, Any]]
) -> None:
    # "Best configuration per byte budget, without rescoring. No anchor was run, ..." was
    # followed by a table of its header only
    records = [byte_row("pca", 48, "binary", 6, 0.40, rescore=4),
               byte_row("frozen", 384, "binary", 48, 0.45, rescore=4)]
    text = frontier_section(records)
    assert ("Best configuration per byte budget, without rescoring: none, as every "
            "configuration that ran rescores.") in text
    assert "Best configuration per byte budget, with rescoring allowed. " in text


def test_frozen_float32_is_the_dashed_line_not_a_quantized_point(
    byte_records: list[dict[str, Any]]
) -> None:
    """A collection run at float32 only drew frozen float32 as a point labelled "frozen,
    quantized" (one with int8 rows did not: the same run shown two ways)."""
    float32 = [r for r in byte_records if r["precision"] == "float32"]
    labels = {line.get_label() for ax in frontier_figure(float32).axes for line in ax.get_lines()}
    assert "frozen, quantized" not in labels and "frozen float32 (1536 B)" in labels
    labels = {line.get_label() for ax in frontier_figure(byte_records).axes
              for line in ax.get_lines()}
    assert "frozen, quantized" in labels
