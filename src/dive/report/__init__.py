"""Reports from results records: summaries over seeds, Markdown and text tables, CSV, plots,
and gains over the best training-free compressor.

`write_report` writes a whole report folder; the other names are its parts, for callers that
want one view only.
"""

from __future__ import annotations

from dive.report.build import ReportFiles, write_report
from dive.report.csv_export import summary_csv, summary_rows, write_summary_csv
from dive.report.gains import (
    GainCell,
    MethodGains,
    TargetGain,
    gains_over_training_free,
    render_gains,
    summarize_gains,
    summary_text,
    target_gains,
)
from dive.report.keep import KeepResult, smallest_dims_keeping
from dive.report.markdown import keep_lines, keep_table, metric_table, render_report
from dive.report.merge import label_models, merge_records, read_results
from dive.report.plots import plot_ndcg_vs_budget, plot_ndcg_vs_dim
from dive.report.summary import Cell, method_order, summarize
from dive.report.table import text_tables

__all__ = [
    "Cell",
    "GainCell",
    "KeepResult",
    "MethodGains",
    "ReportFiles",
    "TargetGain",
    "gains_over_training_free",
    "keep_lines",
    "keep_table",
    "label_models",
    "merge_records",
    "method_order",
    "metric_table",
    "plot_ndcg_vs_budget",
    "plot_ndcg_vs_dim",
    "read_results",
    "render_gains",
    "render_report",
    "smallest_dims_keeping",
    "summarize",
    "summarize_gains",
    "summary_csv",
    "summary_rows",
    "summary_text",
    "target_gains",
    "text_tables",
    "write_report",
    "write_summary_csv",
]
