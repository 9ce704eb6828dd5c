"""How rows of one spec compare with the stored rows of another, run by run (a script).

    python benchmarks/paired_rows.py NEW.jsonl \\
        --stored benchmarks/results/quality.jsonl --strip :mine_every=5
    python benchmarks/paired_rows.py benchmarks/results/quality.jsonl \\
        --stored benchmarks/results/quality.jsonl --suffix @v2

Pairs each record of NEW with the record of STORED whose run key (`record_key`, with
`--strip` removed from NEW's method and `--suffix` added to it) is the same, and prints per
(dataset, embedding model, method) the number of pairs and nDCG@10 of NEW minus STORED: mean
and range. For a default about to change (issue 16: the baselines' `mine_every`), before the
new rows replace the stored ones, or after, against the previous rows kept under a suffix.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from script_io import last_records, read_existing, script_main

from dive.errors import DataError
from dive.evaluate.records import record_key, record_model


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("new", type=Path)
    parser.add_argument("--stored", type=Path, nargs="+", required=True)
    parser.add_argument("--strip", default="", help="text removed from NEW's method names")
    parser.add_argument("--suffix", default="", help="text added to NEW's method names")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    stored = {record_key(r): float(r["ndcg@10"])
              for path in args.stored for r in read_existing(path)}
    gaps: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    # a run recorded again (a rerun appended) is one pair, its last record's, as in the reports
    # (STORED's dict above keeps each key's last record too)
    for record in last_records(read_existing(args.new)):
        method = str(record["method"]).replace(args.strip, "") if args.strip else record["method"]
        old = stored.get(record_key({**record, "method": f"{method}{args.suffix}"}))
        if old is not None:
            # per model: NFCorpus's 384-d and 768-d runs were averaged together
            gaps[(record["dataset"], record_model(record), method)].append(
                float(record["ndcg@10"]) - old)
    if not gaps:  # a mistyped --suffix or --strip printed nothing, exit 0
        raise DataError(f"{args.new}: no record pairs with one of {' '.join(map(str, args.stored))}"
                        f" (methods with {args.strip!r} removed and {args.suffix!r} added)")
    for (dataset, model, method), values in sorted(gaps.items()):
        print(f"{dataset} ({model}) {method}: {len(values)} runs, mean "
              f"{sum(values) / len(values):+.4f}, range {min(values):+.4f}..{max(values):+.4f}")


if __name__ == "__main__":
    sys.exit(script_main("paired_rows.py", main))
