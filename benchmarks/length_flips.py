"""Which stored DIVE records may train longer under the current extension rule? (a script)

DIVE's race (`dive.compressors._dive_fit._race`) lets the leading arm run on while its best
check is late in its runs (`extend_at`, for a holdout choice; up to `max_steps`). A rule
that extends more often can change a fit only where it stopped the race earlier: at the
recorded end, the leader's best check was at or past `extend_at` of its horizon and the
horizon below the cap. Every earlier
extension is one the looser rule makes too, and everything before the end is the same, so a
record is refitted bit for bit unless that holds (and even then, where the longer race keeps
the same arm and step). This reads it from each record's own
diagnostics (the final curves and the choice), with each method's current options; no fit is
replayed. `--keep-as SUFFIX` keeps every examined record under METHOD+SUFFIX, as the code
before the change would give them all (those it cannot change are the same fit), and removes
the ones that may change from the plain name (under the file's lock), so that the benchmark that
wrote them reruns exactly them and the old row stays whole beside the new one for a paired
comparison (`benchmarks/paired_rows.py --suffix`):

    python benchmarks/length_flips.py benchmarks/results/quality.jsonl --keep-as @v1
    python benchmarks/quality.py        # reruns the renamed runs, then the page
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from script_io import check_present, last_records, read_existing, script_main

from dive._io import locked
from dive.compressors import make_compressor
from dive.compressors.dive import DiveConfig
from dive.errors import DataError
from dive.evaluate.records import RecordKey, read_records, record_key, write_records


def trains_longer(record: dict[str, Any]) -> bool | None:
    """Whether the current rule would run `record`'s leading arm past where it stopped (None:
    not a DIVE fit that races arms)."""
    compressor = make_compressor(record["method"], int(record["dim"]), int(record["seed"]))
    config = getattr(compressor, "options", None)
    if not isinstance(config, DiveConfig) or not config.select:
        return None
    diag = record.get("diagnostics") or {}
    choice, curves = diag.get("choice"), diag.get("curves")
    if not choice or not curves:
        return None  # the start was kept without a race (too few labels) or nothing was chosen
    leader, step = choice["best"]
    if leader < 0:
        return False
    holdout = diag.get("selection") == "holdout"
    return config.runs_on(step, curves[leader]["steps"][-1], holdout=holdout)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path, help="a JSONL results file")
    parser.add_argument("--methods", default="",
                        help="only these methods (\",\"-separated; default: every DIVE method)")
    parser.add_argument("--keep-as", default=None, metavar="SUFFIX",
                        help="keep the examined records as METHOD+SUFFIX, and remove the "
                             "ones that may change")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    methods = set(filter(None, args.methods.split(",")))
    counts: Counter[tuple[str, str]] = Counter()
    examined: set[RecordKey] = set()
    changed: set[RecordKey] = set()
    # a run recorded again is judged by its last record, the one reports read
    records = last_records(read_existing(args.results))
    check_present(records, "method", methods, "--methods", args.results)
    for record in records:
        method = record["method"]
        if not method.startswith("dive") or "@" in method or (methods and method not in methods):
            continue
        examined.add(record_key(record))
        longer = trains_longer(record)
        if longer is None:
            continue
        counts[method, "may change" if longer else "kept"] += 1
        if longer:
            changed.add(record_key(record))
            print(f"may change: {method} {record['dataset']} {record['budget']} d={record['dim']} "
                  f"seed {record['seed']}", flush=True)
    for (method, what), n in sorted(counts.items()):
        print(f"{method}: {n} records {what}")
    print(f"{len(changed)} records may change")
    if args.keep_as and examined:
        with locked(args.results):  # read again under the lock: another run may have written
            records = read_records(args.results)
            old = [dict(r, method=r["method"] + args.keep_as) for r in records
                   if record_key(r) in examined]
            taken = {record_key(r) for r in old} & {record_key(r) for r in records}
            if taken:  # appended, they would replace an earlier release's rows in every report
                raise DataError(f"{args.results}: holds {len(taken)} runs of "
                                f"METHOD{args.keep_as} already (e.g. {' '.join(min(taken))}); "
                                "keep these under another suffix")
            kept = [r for r in records if record_key(r) not in changed]
            write_records(args.results, kept + old)
        print(f"kept {len(old)} records as METHOD{args.keep_as} and removed the {len(changed)} "
              f"that may change from {args.results}; rerun its benchmark to refit them")


if __name__ == "__main__":
    sys.exit(script_main("length_flips.py", main))
