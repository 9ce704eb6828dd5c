"""How optimistic is each baseline's validation choice? (a script over a results file)

A learned baseline keeps the (setting, checkpoint) with the best validation nDCG@10; that kept
score is biased upward by the choice, more so when its curve is rough and checked often. This
prints, per (method, dataset, embedding model, budget, d), the mean over seeds of the kept
validation score, the test score, their gap, and how far the kept setting's validation curve
moves between consecutive checks (its roughness), read from the records' diagnostics; nothing
is refitted.

    python benchmarks/selection_gap.py --datasets scifact --budgets all
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from script_io import check_present, last_records, read_existing, script_main

from dive.evaluate.records import record_model

RESULTS = Path(__file__).resolve().parent / "results" / "quality.jsonl"
DATASETS = ["scifact", "nfcorpus"]


def kept_curve(diagnostics: dict[str, Any]) -> tuple[float, list[float]] | None:
    """The kept validation score and the kept setting's validation curve (checks after step
    0) of a baseline record (the last SMEC stage, Matryoshka-Adaptor's supervised stage,
    Search-Adaptor itself), or None for a record without one."""
    part = diagnostics.get("stages", [None])[-1] or diagnostics.get("supervised") or diagnostics
    history = part.get("history")
    score = part.get("best_score", part.get("choice", {}).get("score"))
    if not history or score is None:
        return None
    return float(score), [float(v) for _, v in history[1:]]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--datasets", nargs="+", default=None,
                        help=f"default: {' '.join(DATASETS)}")
    parser.add_argument("--budgets", nargs="+", default=["all"])
    return parser


def main() -> None:
    args = build_parser().parse_args()
    cells: dict[tuple[str, str, str, str, int], list[tuple[float, float, float]]] = \
        defaultdict(list)
    # a run recorded again (a rerun appended) is its last record, as in the reports
    records = last_records(read_existing(args.results))
    # a value no record holds (a typo) printed an empty table; the default datasets are not
    # checked: a file may hold one of them
    check_present(records, "dataset", args.datasets, "--datasets", args.results)
    check_present(records, "budget", args.budgets, "--budgets", args.results)
    datasets = args.datasets or DATASETS
    for r in records:
        if r["dataset"] not in datasets or str(r["budget"]) not in args.budgets:
            continue
        kept = kept_curve(r.get("diagnostics") or {})
        if kept is None:
            continue
        score, curve = kept
        rough = float(np.abs(np.diff(curve)).mean()) if len(curve) > 1 else 0.0
        # per model: NFCorpus's 384-d and 768-d runs were averaged as seeds of one cell
        cells[(r["method"], r["dataset"], record_model(r), str(r["budget"]), r["dim"])].append(
            (score, r["ndcg@10"], rough)
        )
    print("| method | dataset | model | budget | d | seeds | kept validation | test | gap | "
          "roughness |")
    print("|:---|:---|:---|:---|---:|---:|---:|---:|---:|---:|")
    for (method, dataset, model, budget, dim), rows in sorted(cells.items()):
        val, test, rough = np.mean(rows, axis=0)
        print(f"| {method} | {dataset} | {model} | {budget} | {dim} | {len(rows)} | {val:.4f} | "
              f"{test:.4f} | {val - test:+.4f} | {rough:.4f} |")


if __name__ == "__main__":
    sys.exit(script_main("selection_gap.py", main))
