"""Write a whole report folder from results records: Markdown, CSV and PNG plots.

This is what `dive report`, `dive evaluate --report` and `benchmarks/quality.py` call. Every
file is written atomically (temporary file + rename), plots first and the Markdown last, so
the Markdown never links to an image that is not there yet. With `overwrite=False` no file
already there is replaced, even one a concurrent run wrote meanwhile (`DiveError`). Records
with other precisions, funnels or anchors also get the quality-per-byte section and its plot
(`dive.report.frontier`). The folder is not cleared: files of an earlier report that this one
does not write stay. Left out: HTML and LaTeX output.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dive._io import atomic_write_text
from dive.errors import DataError
from dive.report.csv_export import write_summary_csv
from dive.report.frontier import frontier_section, has_frontier
from dive.report.markdown import render_report
from dive.report.merge import label_models, merge_records
from dive.report.plots import plot_frontier, plot_ndcg_vs_budget, plot_ndcg_vs_dim

logger = logging.getLogger(__name__)

DIM_PLOT = "ndcg_vs_dim.png"
BUDGET_PLOT = "ndcg_vs_budget.png"
FRONTIER_PLOT = "ndcg_vs_bytes.png"


@dataclass(frozen=True)
class ReportFiles:
    """What `write_report` wrote."""

    markdown: Path
    csv: Path | None
    plots: tuple[Path, ...]

    def all(self) -> list[Path]:
        return [self.markdown, *([self.csv] if self.csv else []), *self.plots]


def report_paths(
    out_dir: str | Path,
    *,
    markdown_name: str = "report.md",
    csv_name: str | None = "summary.csv",
    image_dir: str | Path | None = None,
) -> list[Path]:
    """Every file `write_report` may write with these arguments (to check before writing)."""
    out_dir = Path(out_dir)
    images = Path(image_dir) if image_dir is not None else out_dir
    return [out_dir / markdown_name, *([out_dir / csv_name] if csv_name else []),
            images / DIM_PLOT, images / BUDGET_PLOT, images / FRONTIER_PLOT]


def write_report(
    records: Iterable[Mapping[str, Any]],
    out_dir: str | Path,
    *,
    keep: float = 0.99,
    ratio: int = 4,
    markdown_name: str = "report.md",
    csv_name: str | None = "summary.csv",
    image_dir: str | Path | None = None,
    title: str = "Results",
    preamble: str = "",
    sections: Sequence[str] = (),
    overwrite: bool = True,
) -> ReportFiles:
    """Write `markdown_name`, `csv_name` (None: no CSV) and the plots (into `image_dir`,
    default `out_dir`) and return their paths. `sections` (Markdown) come after the plots.

    Duplicate runs keep their last record. `ratio` picks the compression ratio of the
    nDCG@10-vs-budget plot; without any run at that ratio the plot is skipped with a warning.
    `overwrite=False` keeps any of these files already there and raises `DiveError`.
    """
    if not keep > 0:
        raise DataError(f"keep must be a positive share of frozen nDCG@10, got {keep}",
                        param="keep")
    rows = label_models(merge_records(records))
    if not rows:
        raise DataError("no records to report")
    out_dir = Path(out_dir)
    images = Path(image_dir) if image_dir is not None else out_dir
    markdown = out_dir / markdown_name

    plots = [plot_ndcg_vs_dim(rows, images / DIM_PLOT, overwrite=overwrite)]
    budget_plot = plot_ndcg_vs_budget(rows, images / BUDGET_PLOT, ratio=ratio,
                                      overwrite=overwrite)
    if budget_plot is None:
        logger.warning("no run at compression ratio %d: skipped %s", ratio, BUDGET_PLOT)
    else:
        plots.append(budget_plot)
    captions = {
        DIM_PLOT: "nDCG@10 vs dimension",
        BUDGET_PLOT: f"nDCG@10 vs label budget at {ratio}× compression",
    }

    def link(path: Path) -> str:
        return Path(os.path.relpath(path, markdown.parent)).as_posix()

    links = [(captions[p.name], link(p)) for p in plots]
    sections = list(sections)
    if has_frontier(rows):
        frontier_plot = plot_frontier(rows, images / FRONTIER_PLOT, overwrite=overwrite)
        plots.append(frontier_plot)
        sections.append(frontier_section(rows, image=link(frontier_plot)))
    csv_path = (write_summary_csv(rows, out_dir / csv_name, overwrite=overwrite) if csv_name
                else None)
    atomic_write_text(markdown, render_report(rows, keep=keep, images=links, title=title,
                                              preamble=preamble, sections=sections),
                      overwrite=overwrite)
    return ReportFiles(markdown, csv_path, tuple(plots))
