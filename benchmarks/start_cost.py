"""Where DIVE's gain over the better PCA comes from: its start choice or its training (a script
over a results file; nothing is refitted).

Per run, from the record's `diagnostics.selected.start` and the PCA rows of the same
(dataset, budget, d, seed): the start's cost is the chosen PCA's score minus the better PCA's
(0 or below), and training's part is the run's score minus the chosen PCA's (0 when it kept its
start); float32 scores only (no codes, no funnel). Prints one line per run, then each part's
mean per run. A method with no start choice in the records (truncate, pca, frozen: only dive
and dive-plus choose a PCA start), or no run with both PCA rows beside it, is one error line,
exit status 2.

    python benchmarks/start_cost.py benchmarks/results/collections.jsonl --budgets 16
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from script_io import check_present, read_existing, script_main

from dive.errors import DataError
from dive.evaluate.records import record_model, record_variant

START_ROW = {"uncentered": "pca-uncentered", "centered": "pca"}
PLAIN = ("float32", 0, None)  # `record_variant` of a run scored without codes or a funnel


def chosen_start(record: dict[str, Any]) -> dict[str, Any]:
    """The record's start choice (`diagnostics.selected`), {} where it made none."""
    return (record.get("diagnostics") or {}).get("selected") or {}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--method", default="dive")
    parser.add_argument("--budgets", nargs="+", default=["16"],
                        help="budgets, space- or comma-separated (16 all, or 16,all)")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    budgets = {b.strip() for text in args.budgets for b in text.split(",") if b.strip()}

    runs: dict[tuple[str, str, int, int], dict[str, dict]] = defaultdict(dict)
    records = read_existing(args.results)  # a missing file printed nothing, exit 0
    # and so did a method, budget or model no record has (`--method dvie`)
    check_present(records, "method", [args.method], "--method", args.results)
    check_present(records, "budget", budgets, "--budgets", args.results)
    check_present([{"model": record_model(r)} for r in records], "model", [args.model],
                  "--model", args.results)
    for r in records:
        # float32 scores only: frontier.jsonl holds each run at several precisions and
        # funnels, and the last read stood for the run
        if str(r["budget"]) in budgets and record_model(r) == args.model and (
                record_variant(r) == PLAIN) and (
                r["method"] in (args.method, *START_ROW.values())):
            runs[r["dataset"], str(r["budget"]), int(r["dim"]), int(r["seed"])][r["method"]] = r
    start_costs, train_parts = [], []
    for key in sorted(runs):
        rows = runs[key]
        if len(rows) < 3:
            continue
        chosen = chosen_start(rows[args.method])
        if chosen.get("start") not in START_ROW:
            continue
        start = rows[START_ROW[chosen["start"]]]["ndcg@10"]
        best = max(rows[m]["ndcg@10"] for m in START_ROW.values())
        start_costs.append(start - best)
        train_parts.append(rows[args.method]["ndcg@10"] - start)
        print(f"{key[0]} {key[1]} d={key[2]} seed {key[3]}: start {chosen['start']} "
              f"{start - best:+.4f}, training (step {chosen.get('step')}) "
              f"{train_parts[-1]:+.4f}")
    if not start_costs:  # printed nothing, exit 0, as if there were nothing to split
        if not any(chosen_start(rows[args.method]).get("start") in START_ROW
                   for rows in runs.values() if args.method in rows):
            raise DataError(f"--method {args.method}: no float32 record of {args.results} at "
                            f"budgets {','.join(sorted(budgets))} has a start choice "
                            "(diagnostics.selected.start: dive and dive-plus choose a PCA start)")
        raise DataError(f"--method {args.method}: no run of {args.results} with a start choice "
                        f"has both PCA rows ({', '.join(START_ROW.values())}) of its dataset, "
                        "budget, d and seed")
    print(f"{len(start_costs)} runs: start choice {np.mean(start_costs):+.4f} per run, "
          f"training {np.mean(train_parts):+.4f} per run")


if __name__ == "__main__":
    sys.exit(script_main("start_cost.py", main))
