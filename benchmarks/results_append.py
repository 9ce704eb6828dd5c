"""Time appends to results files of growing size (a script, not a test).

    python benchmarks/results_append.py                       # 1k, 10k, 30k records
    python benchmarks/results_append.py --records 10000 --appends 12

`dive evaluate` appends each finished run to its results file as it finishes. For each size,
this writes a results file of that many records (those of benchmarks/results/quality.jsonl,
copied with their seeds shifted so that every run is distinct) to a temporary folder, then
appends `--appends` records one at a time through `ResultsFile`, as a grid does, and prints
the file's size and the seconds per append (the first apart: it also opens the file).
Left out: other processes appending meanwhile (each of their appends makes the next one
here read the file again).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from script_io import script_main

from dive.cli.parsers import _int_at_least
from dive.evaluate.records import ResultsFile, read_records, write_records

RECORDS = Path(__file__).resolve().parent / "results" / "quality.jsonl"
SEED_STEP = 1000  # each copy's seeds are shifted by this much


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=_int_at_least(1), nargs="+", default=[1000, 10000, 30000],
                        help="results file sizes to time (records)")
    parser.add_argument("--appends", type=_int_at_least(1), default=12, help="appends per size")
    return parser


def made_records(n: int) -> list[dict[str, object]]:
    """`n` records: quality.jsonl's, again and again, each copy's seeds shifted."""
    base = read_records(RECORDS)
    return [{**base[i % len(base)],
             "seed": int(base[i % len(base)]["seed"]) + SEED_STEP * (1 + i // len(base))}
            for i in range(n)]


def time_appends(folder: Path, n: int, appends: int) -> tuple[int, float, float | None]:
    """(file bytes, seconds of the first append, mean seconds of the others: None with one
    append, where there are none; the first's time was shown as theirs)."""
    path = folder / f"r{n}.jsonl"
    records = made_records(n + appends)
    write_records(path, records[:n])
    seconds = []
    results = None
    for record in records[n:]:
        start = time.perf_counter()
        results = results or ResultsFile(path)
        results.append([record])
        seconds.append(time.perf_counter() - start)
    rest = seconds[1:]
    return path.stat().st_size, seconds[0], sum(rest) / len(rest) if rest else None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    print(f"{'records':>8}  {'file MB':>8}  {'first append s':>14}  {'then per append s':>17}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.records:
            size, first, rest = time_appends(Path(tmp), n, args.appends)
            then = "-" if rest is None else f"{rest:.4f}"  # not measured
            print(f"{n:>8}  {size / 1e6:>8.1f}  {first:>14.3f}  {then:>17}")
    return 0


if __name__ == "__main__":
    sys.exit(script_main("results_append.py", main))
