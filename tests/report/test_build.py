"""Writing a report folder: with overwrite, an earlier report's plots this one does not draw
go; nothing that is not dive's plot does."""

from __future__ import annotations

from pathlib import Path

import pytest

from dive.errors import DiveError
from dive.report.build import BUDGET_PLOT, DIM_PLOT, FRONTIER_PLOT, write_report


def test_overwrite_removes_an_earlier_reports_plot_this_one_does_not_draw(
    make_record, byte_records, tmp_path: Path
) -> None:
    at_4x = [make_record(method="pca", dim=96), make_record(method="pca", dim=192)]
    first = write_report([*at_4x, *byte_records], tmp_path)
    assert {p.name for p in first.plots} == {DIM_PLOT, BUDGET_PLOT, FRONTIER_PLOT}
    with pytest.raises(DiveError, match="already exists; pass overwrite=True"):
        write_report([make_record(method="pca", dim=192)], tmp_path)  # kept by default
    assert {p.name for p in tmp_path.iterdir()} >= {DIM_PLOT, BUDGET_PLOT, FRONTIER_PLOT}
    second = write_report([make_record(method="pca", dim=192)], tmp_path,
                          overwrite=True)  # no 4× run
    assert [p.name for p in second.plots] == [DIM_PLOT]
    assert sorted(p.name for p in tmp_path.iterdir()) == [DIM_PLOT, "report.md", "summary.csv"]
    assert sorted(p.name for p in second.removed) == sorted([BUDGET_PLOT, FRONTIER_PLOT])


def test_plots_are_removed_from_the_image_folder_only_when_pngs(make_record,
                                                                tmp_path: Path) -> None:
    images = tmp_path / "img"
    write_report([make_record(method="pca", dim=96)], tmp_path, image_dir=images)
    notes = images / FRONTIER_PLOT
    notes.write_text("my notes\n")  # not a PNG: not dive's to remove
    files = write_report([make_record(method="pca", dim=192)], tmp_path, image_dir=images,
                         overwrite=True)
    assert sorted(p.name for p in images.iterdir()) == sorted([DIM_PLOT, FRONTIER_PLOT])
    assert notes.read_text() == "my notes\n"
    assert [p.name for p in files.removed] == [BUDGET_PLOT]
