"""The results file: one JSON object per line, one line per run.

A run is identified by (dataset, model, method, dim, budget, seed). Appending rewrites the
file to a temporary name and renames it over the old one, so an interrupted benchmark never
leaves a half-written line and never loses finished records; a rerun skips keys already
present. Files stay small (one line per fit), so the rewrite costs nothing that matters.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dive._io import atomic_write_text
from dive.errors import DataError

KEY_FIELDS = ("dataset", "model", "method", "dim", "budget", "seed")
METRICS = ("ndcg@10", "recall@100", "mrr@10")
REQUIRED_FIELDS = (*KEY_FIELDS, "ratio", *METRICS, "fit_seconds", "n_params", "config")
INT_FIELDS = ("dim", "ratio", "seed", "n_params")
NUMBER_FIELDS = (*METRICS, "fit_seconds")

RecordKey = tuple[Any, ...]


def record_key(record: Mapping[str, Any]) -> RecordKey:
    return tuple(str(record[field]) for field in KEY_FIELDS)


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """All records of a results file ([] if it does not exist); DataError names a bad line."""
    path = Path(path)
    if not path.exists():
        return []
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a JSONL results file")
    records = []
    for line_no, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{path}:{line_no}: not UTF-8 text (not a results file?)") from None
        if line.strip():
            records.append(_parse_record(line, f"{path}:{line_no}"))
    return records


def _parse_record(line: str, where: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object")
    missing = [field for field in REQUIRED_FIELDS if field not in record]
    if missing:
        raise DataError(f"{where}: record lacks {', '.join(missing)}")
    for field in (*INT_FIELDS, *NUMBER_FIELDS):
        value = record[field]
        ok = isinstance(value, int if field in INT_FIELDS else (int, float))
        if not ok or isinstance(value, bool) or not math.isfinite(value):
            kind = "an integer" if field in INT_FIELDS else "a finite number"
            raise DataError(f"{where}: {field} is {value!r}, expected {kind}")
    return record


class ResultsFile:
    """An appendable, resumable JSONL results file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.records = read_records(self.path)
        self._keys = {record_key(r) for r in self.records}

    def __contains__(self, key: RecordKey) -> bool:
        return key in self._keys

    def append(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Add records and rewrite the file atomically."""
        new = [dict(r) for r in records]
        for record in new:
            missing = [field for field in REQUIRED_FIELDS if field not in record]
            if missing:
                raise ValueError(f"record lacks {', '.join(missing)}")
        self.records.extend(new)
        self._keys.update(record_key(r) for r in new)
        lines = (json.dumps(r, sort_keys=True, allow_nan=False) for r in self.records)
        atomic_write_text(self.path, "".join(line + "\n" for line in lines))
