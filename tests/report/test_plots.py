"""PNG plots: valid files of a sensible size, written even for partial grids."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from dive.errors import DiveError
from dive.report.plots import (
    ndcg_vs_budget_figure,
    ndcg_vs_dim_figure,
    plot_ndcg_vs_budget,
    plot_ndcg_vs_dim,
)


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG header; asserts the signature and IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    assert data[-8:-4] == b"IEND"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_dim_plot_has_a_panel_per_dataset_and_budget(make_grid, tmp_path: Path) -> None:
    small = plot_ndcg_vs_dim(make_grid(datasets=("scifact",), budgets=("64",)), tmp_path / "a.png")
    big = plot_ndcg_vs_dim(make_grid(), tmp_path / "sub" / "b.png")
    (w1, h1), (w2, h2) = png_size(small), png_size(big)
    assert w2 > 3 * w1 and h2 > 1.5 * h1  # 4 budgets across, 2 datasets down
    assert not list(tmp_path.glob("**/*.tmp"))


def test_a_plot_named_for_another_format_is_refused(make_grid, tmp_path: Path) -> None:
    # the plots are PNG bytes whatever the name says; plot.svg would hold a PNG
    with pytest.raises(DiveError, match=r"plot\.svg: a PNG plot goes here, but the name ends "
                                        r"'\.svg'; name it \*\.png"):
        plot_ndcg_vs_dim(make_grid(datasets=("scifact",), budgets=("64",)), tmp_path / "plot.svg")
    assert not list(tmp_path.iterdir())


def test_budget_plot_at_a_ratio_and_none_without_runs(make_grid, tmp_path: Path) -> None:
    records = make_grid(datasets=("scifact",))
    path = plot_ndcg_vs_budget(records, tmp_path / "b.png", ratio=4)
    assert path is not None and png_size(path)[0] > 300
    assert plot_ndcg_vs_budget(records, tmp_path / "c.png", ratio=3) is None
    assert not (tmp_path / "c.png").exists()


def test_partial_single_seed_grid_plots(make_record, tmp_path: Path) -> None:
    records = [make_record(method="pca", dim=96, ndcg=0.6),
               make_record(method="dive", dim=192, budget="all", ndcg=0.62)]
    assert png_size(plot_ndcg_vs_dim(records, tmp_path / "p.png"))[0] > 300


LONG_SPECS = (
    "truncate", "random", "pca-uncentered", "matryoshka-adaptor-unsup",
    "matryoshka-adaptor:lr=0.0003:epochs=40", "search-adaptor:rank_weight=0.5",
    "smec:basis=pca:stages=3", "dive", "dive:heads=1:ntxent_weight=0",
    "dive:anchor_weight=0.25:hinge_margin=0.1",
)


def long_spec_records(make_record, datasets: tuple[str, ...], budgets: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """Frozen plus the ten long method specs at four dims on every (dataset, budget)."""
    out = []
    for dataset in datasets:
        for budget in budgets:
            out.append(make_record(dataset=dataset, method="frozen", dim=384, budget=budget,
                                   ndcg=0.65))
            for k, method in enumerate(LONG_SPECS):
                for dim in (24, 48, 96, 192):
                    out.append(make_record(dataset=dataset, method=method, dim=dim,
                                           budget=budget, ndcg=0.3 + 0.001 * dim + 0.01 * k))
    return out


def assert_legend_inside_and_complete(fig) -> None:  # type: ignore[no-untyped-def]
    """The legend lies inside the figure, clear of every panel, and names every method."""
    renderer = fig.canvas.get_renderer()
    (legend,) = fig.legends
    box = legend.get_window_extent(renderer)
    assert box.x0 >= fig.bbox.x0 and box.x1 <= fig.bbox.x1
    assert box.y0 >= fig.bbox.y0 and box.y1 <= fig.bbox.y1
    for ax in fig.axes:
        if ax.get_visible():
            panel = ax.get_tightbbox(renderer)  # ticks, labels and title included
            assert panel.y0 > box.y1 or not panel.overlaps(box)
            assert fig.bbox.x0 <= panel.x0 and panel.x1 <= fig.bbox.x1
            assert fig.bbox.y0 <= panel.y0 and panel.y1 <= fig.bbox.y1
    labels = [t.get_text() for t in legend.get_texts()]
    for method in LONG_SPECS:
        assert method in labels
    assert any(label.startswith("frozen") for label in labels)


def test_legend_of_long_specs_fits_one_panel(make_record) -> None:
    fig = ndcg_vs_dim_figure(long_spec_records(make_record, ("scifact",), ("64",)))
    assert len(fig.axes) == 1
    assert_legend_inside_and_complete(fig)


def test_legend_of_long_specs_fits_many_panels(make_record) -> None:
    records = long_spec_records(make_record, ("nfcorpus", "scifact"), ("16", "64", "all"))
    assert_legend_inside_and_complete(ndcg_vs_dim_figure(records))
    budget_figure = ndcg_vs_budget_figure(records, ratio=4)
    assert budget_figure is not None
    assert_legend_inside_and_complete(budget_figure)


def test_one_panel_budget_plot_legend_fits(make_record) -> None:
    fig = ndcg_vs_budget_figure(long_spec_records(make_record, ("scifact",), ("16", "all")))
    assert fig is not None and len(fig.axes) == 1
    assert_legend_inside_and_complete(fig)


def test_dive_is_drawn_thicker_and_on_top(make_record) -> None:
    fig = ndcg_vs_dim_figure(long_spec_records(make_record, ("scifact",), ("64",)))
    # errorbar() labels its container; the container's first line is the data line.
    lines = {bars.get_label(): bars.lines[0] for bars in fig.axes[0].containers}
    dive = [line for label, line in lines.items() if label.startswith("dive")]
    others = [line for label, line in lines.items()
              if label in LONG_SPECS and not label.startswith("dive")]
    assert len(dive) == 3 and others
    assert min(d.get_linewidth() for d in dive) > max(o.get_linewidth() for o in others)
    assert min(d.get_zorder() for d in dive) > max(o.get_zorder() for o in others)


def test_one_panel_title_names_dataset_budget_and_the_dashed_line(make_record) -> None:
    fig = ndcg_vs_dim_figure(long_spec_records(make_record, ("scifact",), ("64",)))
    title = fig.axes[0].get_title()
    assert "scifact" in title and "64 labelled" in title
    assert "dashed line: uncompressed" in title and "d=384" in title


def test_frozen_run_at_one_budget_is_drawn_across_the_budget_plot(make_record) -> None:
    """A dashed line through its one point drew nothing: the legend named a line not there."""
    records = [make_record(method="frozen", dim=384, budget="all", ndcg=0.65),
               *(make_record(method="dive", dim=96, budget=b, ndcg=0.6) for b in ("16", "all"))]
    fig = ndcg_vs_budget_figure(records)
    frozen = [line for line in fig.axes[0].get_lines() if line.get_label().startswith("frozen")]
    assert len(frozen) == 1 and len(set(frozen[0].get_xdata())) == 2


def test_the_budget_plot_has_a_panel_per_dataset_run_at_its_ratio_titled_by_its_dims(
    make_record
) -> None:
    """A dataset with only frozen runs got a panel of its own, empty but for the dashed line;
    a panel of several d's was titled with the first of them."""
    records = [make_record(dataset=name, method="frozen", dim=384, budget="all", ndcg=0.65)
               for name in ("scifact", "nfcorpus")]
    # two d's at 4x: a second embedding model's 192-d set beside the 384-d one
    records += [make_record(dataset="scifact", method="dive", dim=dim, budget=b, ndcg=0.6,
                            ratio=4) for dim in (96, 48) for b in ("16", "all")]
    fig = ndcg_vs_budget_figure(records, ratio=4)
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["scifact, 4× compression"]


@pytest.mark.parametrize("name", ["x$^$y", "cost$x$1", "a$b"])
def test_a_dataset_name_with_dollars_is_drawn_as_typed(
    make_grid: Any, tmp_path: Path, name: str
) -> None:
    """`$` starts matplotlib's math mode: `x$^$y` stopped the report with a parser traceback
    and `cost$x$1` lost its dollars."""
    from dive.report.build import write_report

    records = [{**r, "dataset": name} for r in make_grid(datasets=("scifact",))]
    write_report(records, tmp_path / "rep")
    assert (tmp_path / "rep" / "ndcg_vs_dim.png").stat().st_size > 0
    from dive.report.plots import literal

    assert literal(name) == name.replace("$", "\\$")  # every one escaped: drawn as typed


def test_plotting_leaves_the_callers_matplotlib_backend_as_it_was(make_grid,
                                                                   tmp_path: Path) -> None:
    """Each plot switched the process to Agg for good: a notebook lost its inline backend."""
    import matplotlib

    before = matplotlib.get_backend()
    matplotlib.use("pdf")
    try:
        plot_ndcg_vs_dim(make_grid(datasets=("scifact",), budgets=("64",)), tmp_path / "a.png")
        assert matplotlib.get_backend() == "pdf"
    finally:
        matplotlib.use(before)


@pytest.mark.parametrize("n_methods", [5, 24, 120])
def test_every_point_of_many_methods_is_inside_its_panel(make_record, n_methods: int) -> None:
    """The dodge grew with the number of methods but the panels did not: with 24 methods (the
    repository's own quality report) `dive`'s point at budget all was off the budget plot, and
    past a hundred a point sat on the next dimension's tick."""
    records = [make_record(method=f"dive:heads={k}", dim=dim, budget=budget, ndcg=0.5)
               for k in range(1, n_methods + 1) for dim in (48, 96) for budget in ("16", "all")]
    for fig in (ndcg_vs_dim_figure(records), ndcg_vs_budget_figure(records, ratio=4)):
        assert fig is not None
        for ax in fig.axes:
            low, high = ax.get_xlim()
            xs = [x for line in ax.get_lines() for x in line.get_xdata()]
            assert xs and all(low < x < high for x in xs)
    dims = ndcg_vs_dim_figure(records).axes[0]
    xs = [x for line in dims.get_lines() for x in line.get_xdata()]
    assert max(x for x in xs if x < 72) < min(x for x in xs if x > 72)  # 48's and 96's apart
