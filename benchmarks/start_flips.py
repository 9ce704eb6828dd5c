"""Which stored DIVE records would start elsewhere under the current start rule? (a script)

DIVE's start choice (uncentred or centred PCA, `dive.compressors._dive_fit._choose_start`)
reads no randomness, so a fit whose start a new rule keeps trains exactly as before: when the
rule changes, only the records whose start it changes need their fit rerun. For every record
of a DIVE method that chooses its start (`dive`, `dive-plus` and their spec variants, not a
fixed `start=`), this replays the fit with the current code up to the start choice (the
protocol's split and training data, as `dive.evaluate.protocol.run_one` builds them), prints
each record whose start differs from the one it recorded, and counts the rest. `--drop`
removes those records from the results file (under its lock), so that the benchmark that
wrote them reruns exactly them:

    python benchmarks/start_flips.py benchmarks/results/collections.jsonl --drop
    python benchmarks/all_collections.py        # reruns the dropped runs, then the page
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from script_io import last_records, read_existing, script_main, use_shared_data

from dive._io import locked
from dive.compressors import _dive_fit, make_compressor
from dive.compressors.dive import DiveConfig
from dive.data import load_dataset
from dive.data.splits import make_split, parse_budget
from dive.embed import get_embeddings
from dive.evaluate.protocol import training_data
from dive.evaluate.records import KEY_FIELDS, read_records, record_key, write_records

_choose_start = _dive_fit._choose_start


class _Chosen(Exception):
    """Raised by the probe with the start a fit chose, so the fit stops there."""


def _probe(*args: Any) -> Any:
    start, _choice = _choose_start(*args)
    raise _Chosen(start.name)


def fit_inputs(record: dict[str, Any], data: dict[tuple[str, str], Any]) -> tuple[Any, Any]:
    """The corpus and training data `record`'s fit had (the protocol's split of its dataset,
    budget and seed); `data` caches each (dataset, model)'s loaded data."""
    key = (record["dataset"], record["model"])
    if key not in data:
        dataset = load_dataset(record["dataset"])
        data[key] = (dataset, get_embeddings(dataset, record["model"]))
    dataset, emb = data[key]
    split = make_split(dataset, parse_budget(str(record["budget"])), int(record["seed"]))
    return emb.corpus, training_data(split, emb)


def chosen_start(record: dict[str, Any], data: dict[tuple[str, str], Any]) -> str | None:
    """The start the current code chooses for `record`'s fit (None: not a DIVE start choice)."""
    compressor = make_compressor(record["method"], int(record["dim"]), int(record["seed"]))
    options = getattr(compressor, "options", None)
    if not isinstance(options, DiveConfig) or options.start != "select":
        return None
    try:
        with mock.patch.object(_dive_fit, "_choose_start", _probe):
            compressor.fit(*fit_inputs(record, data))
    except _Chosen as chosen:
        return str(chosen.args[0])
    raise RuntimeError(f"{record['method']}: the fit made no start choice")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path, help="a JSONL results file")
    parser.add_argument("--drop", action="store_true",
                        help="remove the records whose start changes from the file")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    torch.set_num_threads(1)
    use_shared_data()
    t0 = time.perf_counter()
    data: dict[tuple[str, str], Any] = {}
    starts: dict[tuple[str, ...], str | None] = {}  # per run (a run's variants share its fit)
    changed: set[tuple[str, ...]] = set()
    counts: Counter[tuple[str, str]] = Counter()
    # a run recorded again (a rerun appended) is judged by its last record, the one reports
    # read: a stale earlier copy dropped the current record with it
    for record in last_records(read_existing(args.results)):
        if not record["method"].startswith("dive") or "@" in record["method"]:
            continue  # an earlier release's row (dive@v1): no method of that name to replay
        run = record_key(record)[: len(KEY_FIELDS)]
        if run not in starts:
            starts[run] = chosen_start(record, data)
        now, stored = starts[run], record["diagnostics"].get("start")
        if now is None:
            continue
        counts[record["method"], "changed" if now != stored else "kept"] += 1
        if now != stored:
            changed.add(record_key(record))
            print(f"changed: {' '.join(map(str, run))}: {stored} -> {now}", flush=True)
    for (method, what), n in sorted(counts.items()):
        print(f"{method}: {n} records {what}")
    print(f"{len(changed)} records change start; {time.perf_counter() - t0:.0f} s")
    if args.drop and changed:
        drop_records(args.results, changed)


def drop_records(results: Path, keys: set[tuple[str, ...]]) -> None:
    """Remove the records of `keys` from `results` (under its lock), for their benchmark to
    rerun them."""
    with locked(results):
        kept = [r for r in read_records(results) if record_key(r) not in keys]
        write_records(results, kept)
    print(f"dropped them from {results}; rerun its benchmark to refit them")


if __name__ == "__main__":
    sys.exit(script_main("start_flips.py", main))
