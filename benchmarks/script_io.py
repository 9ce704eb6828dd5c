"""What the small scripts over a results file share: reading it, and failing in one line.

`read_existing` is `read_records` for a file that has to be there: a mistyped name, read as
an empty file, printed "0 records may change" or an empty table. `script_main` runs a
script's `main` and prints a `DiveError` (a malformed line, named `file:line`) as
`<script>: error: ...`, exit status 2, instead of a traceback; `check_present` refuses a
filter value no record has, for the same reason as `read_existing`; `last_records` keeps each
run's last record, the one every report reads. `use_shared_data` points the data variables at
`../shared/data` when they are unset. For the scripts that fit: `label_budget` (an argparse type),
`check_methods`, `check_distinct` and `check_ratios` refuse a bad argument in one line before
the work, not as a traceback in it; `append_records` adds records to a results file under its
lock. Left out: the grid scripts (`quality.py` and those importing it), which have
`guarded_main`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dive._io import locked
from dive.errors import DataError, DiveError
from dive.evaluate.records import read_records, record_key, write_records

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"  # beside the checkout


def use_shared_data() -> None:
    """Point $DIVE_DATA / $DIVE_EMBEDDINGS at the shared offline copies when unset."""
    for env, sub in (("DIVE_DATA", "beir"), ("DIVE_EMBEDDINGS", "embeddings")):
        if not os.environ.get(env) and (SHARED / sub).is_dir():
            os.environ[env] = str(SHARED / sub)


def require_results_file(path: str | Path) -> Path:
    """`path`, if something is there (`read_records` says what is wrong with it)."""
    if not Path(path).exists():
        raise DataError(f"{path}: no such results file")
    return Path(path)


def read_existing(path: str | Path) -> list[dict[str, Any]]:
    """The records of the results file at `path`; `DataError` when there is none."""
    return read_records(require_results_file(path))


def last_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each run's last record (`record_key`), in the order runs first appear: a rerun appended
    replaces the earlier copy in every report (`dive.report.merge`), so a script counting
    every copy read one run as two seeds, and one judging every copy dropped a current record
    for its stale copy."""
    return list({record_key(r): r for r in records}.values())


def check_present(records: list[dict[str, Any]], field: str, wanted: Iterable[str] | None,
                  flag: str, path: str | Path) -> None:
    """`DataError` naming each value of `wanted` (a filter flag's) that no record's `field`
    holds: a mistyped name filtered everything out, and the script printed "0 records"."""
    missing = sorted(set(wanted or ()) - {str(r.get(field)) for r in records})
    if missing:
        raise DataError(f"{flag} {' '.join(missing)}: no record of {path} has that {field}")


def label_budget(text: str) -> str:
    """An argparse type: a label budget as typed, if `parse_budget` takes it (a number or
    'all'); `--labels abc` stopped the script with a traceback once the data was loaded."""
    from dive.data.splits import parse_budget

    try:
        parse_budget(text)
    except DiveError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def check_methods(specs: Iterable[str], flag: str) -> None:
    """`DiveError` naming `flag` for the first spec that builds no compressor: each is built
    before any fit, as `run_grid` does (an unknown method was met after the others' fits)."""
    from dive.compressors.registry import make_compressor

    for spec in specs:
        try:
            make_compressor(spec, None)
        except DiveError as exc:
            raise DiveError(f"{flag}: {exc}") from None


def check_distinct(values: Sequence[Hashable], flag: str) -> None:
    """`DiveError` for a value of `flag` given twice: its runs were counted twice, and a mean
    over `--seeds 0,0` was printed as a mean over two seeds."""
    seen: set[Hashable] = set()
    for value in values:
        if value in seen:
            raise DiveError(f"{flag}: {value} is given twice")
        seen.add(value)


def check_ratios(ratios: Iterable[int], dim: int) -> None:
    """`DiveError` for a ratio that does not divide the embedding dimension, as `quality.py`
    and `dive evaluate` refuse it (`dim // ratio` floored it: 7 gave d=54)."""
    uneven = [r for r in ratios if dim % r]
    if uneven:
        raise DiveError(f"ratio {uneven[0]} does not divide the embedding dimension {dim}")


def append_records(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Add `records` to the results file at `path` under its lock, rewriting it whole by one
    rename (`write_records`): `open("a")` left a half line when interrupted, and two runs'
    lines could interleave. Unlike `ResultsFile.append`, a run already there is added again
    (a dev loop reruns one spec once the code has changed)."""
    with locked(path):
        write_records(path, [*read_records(path), *records])


def script_main(script: str, main: Callable[[], int | None]) -> int:
    """Run `main`; its exit status (None: 0), or for a `DiveError` one line on stderr and
    exit status 2."""
    try:
        return main() or 0
    except DiveError as exc:
        print(f"{script}: error: {exc}", file=sys.stderr)
        return 2
