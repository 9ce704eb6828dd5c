"""`summary.csv`: one row per (dataset, model, method, dim, budget), aggregated over seeds.

The method is the row's `method_label` (a precision or funnel other than float32 without
rescoring is part of it). Columns: the keys, the ratio, the bytes per vector of the first
stage, the number of seeds, mean and population std of each metric,
mean fit seconds and the parameter count (the largest seen, should seeds differ). Rows follow
the report's order (dataset, budget, method, dimension descending). Per-seed values stay in
the JSONL results; this file is for spreadsheets and plotting elsewhere.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dive._io import atomic_write_text
from dive.evaluate.records import METRICS, record_bytes_per_vector, record_model
from dive.report.summary import budget_order, method_label, method_order

KEY_COLUMNS = ("dataset", "model", "budget", "method", "dim", "ratio")
COLUMNS = (
    *KEY_COLUMNS,
    "bytes_per_vector",
    "n_seeds",
    *(f"{m}_{stat}" for m in METRICS for stat in ("mean", "std")),
    "fit_seconds_mean",
    "n_params",
)


def summary_rows(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The CSV rows as dicts keyed by `COLUMNS`."""
    groups: dict[tuple[str, str, str, str, int], list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        key = (
            str(r["dataset"]), record_model(r), str(r["budget"]), method_label(r), int(r["dim"])
        )
        groups[key].append(r)
    order = {m: i for i, m in enumerate(method_order(k[3] for k in groups))}
    rows = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], budget_order(k[2]), order[k[3]], -k[4])):
        group = groups[key]
        row: dict[str, Any] = dict(zip(KEY_COLUMNS, key, strict=False))
        row["ratio"] = int(group[-1].get("ratio", 1))
        row["bytes_per_vector"] = record_bytes_per_vector(group[-1])
        row["n_seeds"] = len({str(r["seed"]) for r in group})
        for metric in METRICS:
            values = np.array([float(r[metric]) for r in group])
            row[f"{metric}_mean"] = round(float(values.mean()), 6)
            row[f"{metric}_std"] = round(float(values.std()), 6)
        row["fit_seconds_mean"] = round(float(np.mean([float(r["fit_seconds"]) for r in group])), 4)
        row["n_params"] = max(int(r["n_params"]) for r in group)
        rows.append(row)
    return rows


def summary_csv(records: Iterable[Mapping[str, Any]]) -> str:
    """The CSV text (header plus `summary_rows`)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(summary_rows(records))
    return buffer.getvalue()


def is_summary_csv(path: Path) -> bool:
    """Whether `path` is a file `write_summary_csv` wrote (its header starts with the keys)."""
    if not path.is_file():  # a FIFO's open waits for a writer: forever
        return False
    try:
        with path.open(encoding="utf-8") as handle:
            return handle.readline().startswith(",".join(KEY_COLUMNS) + ",")
    except (OSError, UnicodeDecodeError):
        return False


def write_summary_csv(records: Iterable[Mapping[str, Any]], path: str | Path, *,
                      overwrite: bool = False) -> Path:
    """Write `summary_csv` to `path` atomically and return the path (`overwrite=False`: only
    if nothing is there, else `DiveError`)."""
    atomic_write_text(path, summary_csv(records), overwrite=overwrite)
    return Path(path)
