"""Which stored DIVE records does the final check change? (a script)

A DIVE fit keeps a model the choice did not score (the fold runs' weight average, or a refit
on every label) and, since the final check, returns its start instead when that model scores
below the start on the queries the choice was made on (`dive.compressors._dive_fit`). Only
a fit that kept an arm can change: for every such record of a DIVE method (`dive`,
`dive-plus` and their spec variants) this refits it with the current code (the protocol's
split and training data, as `dive.evaluate.protocol.run_one` builds them) and prints the
records whose final check failed ("changed"), and those whose refit chose another arm or
step than recorded, or traced another held-out curve ("not reproduced": stale for another
reason; a run that went on past its kept step moved the record's test score while its choice
stayed the same: cisi `dive-plus` 96-d, all labels, seed 0, 0.476759 recorded, 0.476581
now). `--drop` removes both from the results file (under its lock), so that the benchmark
that wrote them reruns exactly them:

    python benchmarks/final_checks.py benchmarks/results/collections.jsonl --drop
    python benchmarks/all_collections.py        # reruns the dropped runs, then the page
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from quality import at_least_one  # first: it pins the BLAS threads before numpy loads
from script_io import check_present, last_records, read_existing, script_main, use_shared_data
from start_flips import drop_records, fit_inputs

from dive.compressors import make_compressor
from dive.evaluate.machine import machine_difference
from dive.evaluate.records import KEY_FIELDS, record_key

CHOICE = ("candidate", "step", "score", "base_score")  # a refit must choose as recorded


def kept_an_arm(record: dict[str, Any]) -> bool:
    """Whether `record`'s fit kept a trained arm (else it returned its start, unchecked)."""
    choice = (record.get("diagnostics") or {}).get("choice") or {}
    return record["method"].startswith("dive") and "@" not in record["method"] and \
        choice.get("candidate") is not None


def replay(record: dict[str, Any], data: dict[tuple[str, str], Any]) -> str:
    """What the current code's refit of `record` does: "changed" (its final check returns the
    start), "kept", or "not reproduced" (it chose otherwise than recorded: the record is not
    this code's for another reason, such as the torch threads it ran with, and the replay
    says nothing of it)."""
    compressor = make_compressor(record["method"], int(record["dim"]), int(record["seed"]))
    compressor.fit(*fit_inputs(record, data))
    diag = compressor.fit_info_.diagnostics
    now, then = (tuple(choice.get(k) for k in CHOICE) for choice in (
        diag.get("choice") or {}, record["diagnostics"]["choice"]))
    if now != then or diag.get("curves") != record["diagnostics"].get("curves"):
        return "not reproduced"
    dropped = [str(d.get("final", "")).startswith("start") for d in (diag, record["diagnostics"])]
    return "changed" if dropped[0] and not dropped[1] else "kept"  # a record may have it already


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path, help="a JSONL results file")
    parser.add_argument("--datasets", nargs="+", default=None,
                        help="only the records of these datasets (default: every one)")
    parser.add_argument("--models", nargs="+", default=None,
                        help="only the records of these embedding models (default: every one)")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="only the records of these methods (default: every DIVE one)")
    parser.add_argument("--threads", type=at_least_one, default=2,
                        help="torch threads, as the benchmark that wrote the records had")
    parser.add_argument("--drop", action="store_true",
                        help="remove the records that change or are not reproduced")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    import torch

    torch.set_num_threads(args.threads)
    use_shared_data()
    t0 = time.perf_counter()
    data: dict[tuple[str, str], Any] = {}
    outcome: dict[tuple[str, ...], str] = {}  # per run (a run's variants share its fit)
    changed: set[tuple[str, ...]] = set()
    counts: Counter[tuple[str, str]] = Counter()
    # a run recorded again (a rerun appended) is judged by its last record, the one reports read
    latest = last_records(read_existing(args.results))
    for field, wanted in (("dataset", args.datasets), ("model", args.models),
                          ("method", args.methods)):
        check_present(latest, field, wanted, f"--{field}s", args.results)
    for record in latest:
        if not kept_an_arm(record) or (args.datasets and record["dataset"] not in args.datasets) \
                or (args.models and record["model"] not in args.models) \
                or (args.methods and record["method"] not in args.methods):
            continue
        run = record_key(record)[: len(KEY_FIELDS)]
        if run not in outcome:
            outcome[run] = replay(record, data)
            where = f"; {machine_difference(record)}" if outcome[run] != "kept" else ""
            print(f"{outcome[run]}: {' '.join(map(str, run))} "
                  f"({time.perf_counter() - t0:.0f} s{where})", flush=True)
        counts[record["method"], outcome[run]] += 1
        if outcome[run] != "kept":
            changed.add(record_key(record))
    for (method, what), n in sorted(counts.items()):
        print(f"{method}: {n} records {what}")
    print(f"{len(changed)} records change or are not reproduced (with earlier copies of the "
          f"same runs, --drop removes those too); "
          f"{time.perf_counter() - t0:.0f} s")
    if args.drop and changed:
        drop_records(args.results, changed)


if __name__ == "__main__":
    sys.exit(script_main("final_checks.py", main))
