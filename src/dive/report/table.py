"""Plain-text tables of results: methods x dimensions, mean ± std over seeds.

The frozen full-dimension row comes first, then the other methods in `method_order`. Cells
that were not run print as "-", so partial grids still read; a cell over fewer seeds than the
table's most is marked `[n=k]`, as in the report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dive.report.summary import budget_order, method_order, summarize


def text_tables(records: Iterable[Mapping[str, Any]], metric: str = "ndcg@10") -> str:
    """One table per (dataset, budget) with a row per method and a column per dimension."""
    cells = summarize(records, metric)
    blocks = []
    for dataset in dict.fromkeys(c.dataset for c in cells):
        for budget in sorted({c.budget for c in cells if c.dataset == dataset}, key=budget_order):
            group = [c for c in cells if c.dataset == dataset and c.budget == budget]
            dims = sorted({c.dim for c in group}, reverse=True)
            lookup = {(c.method, c.dim): c for c in group}
            most_seeds = max(c.n_seeds for c in group)
            header = ["method", *[f"d={d}" for d in dims]]
            rows = [header]
            for method in method_order(c.method for c in group):
                row = [method]
                for d in dims:
                    cell = lookup.get((method, d))
                    text = "-" if cell is None else f"{cell.mean:.4f} ± {cell.std:.4f}"
                    if cell is not None and cell.n_seeds < most_seeds:
                        text += f" [n={cell.n_seeds}]"
                    row.append(text)
                rows.append(row)
            widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
            lines = [
                "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
                for r in rows
            ]
            title = f"{dataset} | {metric} | labels: {budget}"
            blocks.append("\n".join([title, *lines]))
    return "\n\n".join(blocks)
