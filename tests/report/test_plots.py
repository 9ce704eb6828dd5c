"""PNG plots: valid files of a sensible size, written even for partial grids."""

from __future__ import annotations

import struct
from pathlib import Path

from dive.report.plots import plot_ndcg_vs_budget, plot_ndcg_vs_dim


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
