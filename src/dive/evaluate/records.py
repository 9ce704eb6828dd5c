"""The results file: one JSON object per line, one line per run.

A run is identified by (dataset, model, method, dim, budget, seed) and, when its first stage
is not float32 or it rescores, by its variant too (`precision`, `rescore`, `rescore_with`),
so two precisions of one fit are two runs; a record without these fields (older files) is
float32 without rescoring and keeps its old key. Its model is the name `record_label` gives
(`dive.embed.encode`): a hub id of sentence-transformers' own organisation by its bare name
(the default's `sentence-transformers/all-MiniLM-L6-v2` is `all-MiniLM-L6-v2`), a local model
folder as its resolved absolute path, another hub id as given. A record an older version
wrote under the alias, or under a local folder as typed (`./m`, `m/`: read from the working
directory at hand), is read as it is and keyed,
grouped and resumed by `record_model`, the same run as the canonical name's; the file is not
rewritten to say so. An anchor's record
(`dive.evaluate.anchors`) states its index's code as its precision (`int4`, `pq` besides the
four precisions); a method's record may also have an `opq{M}` first stage
(`dive.evaluate.product`). Each run records the
`data_fingerprint` of the data it was computed from (`dive.evaluate.fingerprint`); a rerun
skips a run only when a record has both its key and the fingerprint of the data at hand.
Each also names the machine it ran on (`machine`: CPU, BLAS and torch kernels, library
versions; `dive.evaluate.machine`), so a replay that differs can say whether the machine did.
Appending rewrites the file to a temporary name and renames it over the old one, so an
interrupted benchmark never leaves a half-written line and never loses finished records. The
append holds an exclusive lock (`dive._io.locked`) and reads the file back first, so several
processes can share one results file: every record is kept, and a run another process has
recorded meanwhile is not written twice. A results path that is a symbolic link is written
through (`dive._io.resolve_link`): the file it leads to gets the records, the link stays, and
a run given either name takes the same lock. An append rewrites the file whole (one rename:
never a half line), from the lines it last read or wrote, and reads it again only when another
process changed it meanwhile.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

from dive._io import (
    as_path,
    atomic_write_text,
    check_writable,
    is_temporary_name,
    locked,
    parse_json,
    remove_dead_temporaries,
    resolve_link,
)
from dive.arrays import decoded
from dive.compressors.precision import PRECISIONS, Precision, bytes_per_vector
from dive.data.splits import budget_label, parse_budget
from dive.embed.encode import record_label
from dive.errors import DataError, DiveError
from dive.evaluate.anchors import is_anchor
from dive.evaluate.product import is_product, product_bytes

logger = logging.getLogger(__name__)

KEY_FIELDS = ("dataset", "model", "method", "dim", "budget", "seed")
METRICS = ("ndcg@10", "recall@100", "mrr@10")
REQUIRED_FIELDS = (*KEY_FIELDS, "ratio", *METRICS, "fit_seconds", "n_params", "config")
INT_FIELDS = ("dim", "ratio", "seed", "n_params")
NUMBER_FIELDS = (*METRICS, "fit_seconds")
# The least value each numeric field other than a metric can take (a metric is in [0, 1]).
MINIMUM = {"dim": 1, "ratio": 1, "seed": 0, "n_params": 0, "fit_seconds": 0}

FINGERPRINT_FIELD = "data_fingerprint"
RescoreSource = Literal["full", "compressed"]  # what a funnel rescores with: D- or d-dim floats
RESCORE_SOURCES: tuple[RescoreSource, ...] = get_args(RescoreSource)

RecordKey = tuple[Any, ...]
# What a record's first stage may store: a precision, or for an anchor's record its code
# (`dive.evaluate.anchors`: 4-bit scalars, product-quantization codes).
CODES: tuple[str, ...] = (*PRECISIONS, "int4", "pq")


def record_variant(record: Mapping[str, Any]) -> tuple[str, int, str | None]:
    """(precision, rescore factor, rescore source) of a record; older records: float32, 0.
    The precision is one of `CODES` (an anchor's code is not a `Precision`)."""
    rescore = int(record.get("rescore", 0))
    return (record.get("precision", "float32"), rescore,
            record.get("rescore_with", "full") if rescore else None)


def record_bytes_per_vector(record: Mapping[str, Any]) -> int:
    """Bytes per vector of the record's first stage (older records: float32, 4 * dim)."""
    if "bytes_per_vector" in record:
        return int(record["bytes_per_vector"])
    precision: Precision = record_variant(record)[0]  # type: ignore[assignment]
    return bytes_per_vector(precision, int(record["dim"]))


def record_model(record: Mapping[str, Any]) -> str:
    """The model of a record, as new records name it (`record_label`: a sentence-transformers
    hub id is its bare name, a local folder its resolved path, an older record's relative
    spelling read from the working directory); what runs and reports are matched and grouped
    by."""
    return record_label(str(record["model"]))


def record_key(record: Mapping[str, Any]) -> RecordKey:
    key = tuple(record_model(record) if field == "model" else str(record[field])
                for field in KEY_FIELDS)
    precision, rescore, source = record_variant(record)
    if (precision, rescore) == ("float32", 0):
        return key  # what every record had before precisions existed
    variant: tuple[str, ...] = (f"precision={precision}",)
    if rescore:
        variant += (f"rescore={rescore}", f"rescore_with={source}")
    return key + variant


def float32_key(key: RecordKey) -> RecordKey:
    """The key of the same run at float32 without rescoring: `record_key` appends a variant's
    fields to it."""
    return key[:len(KEY_FIELDS)]


def is_results_file(path: Path) -> bool:
    """Whether `path` is a file that reads as a results file (the only kind `dive demo
    --overwrite` replaces)."""
    try:
        read_records(path)
    except DataError:
        return False
    return path.is_file()


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """All records of a results file ([] if it does not exist); DataError names a bad line."""
    path = as_path(path, "read_records: path")
    if not path.exists():
        return []
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a JSONL results file")
    if not path.is_file():  # a device or a pipe would be read without end
        raise DataError(f"{path}: is not a regular file, expected a JSONL results file")
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
    record = parse_json(line, where)
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object")
    return check_record(record, where)


def check_record(record: dict[str, Any], where: str) -> dict[str, Any]:
    """`record` if every field a results file needs is there and sensible, else `DataError`
    naming `where` and the first bad field (what `read_records` refuses). Its budget is set
    to the form the runner writes (`budget_label`)."""
    missing = [field for field in REQUIRED_FIELDS if field not in record]
    if missing:
        raise DataError(f"{where}: record lacks {', '.join(missing)}")
    for field in ("dataset", "model", "method"):
        if not isinstance(record[field], str) or not record[field]:
            raise DataError(f"{where}: {field} is {record[field]!r}, expected a name")
    try:
        budget = parse_budget(record["budget"])
    except DiveError:
        raise DataError(f"{where}: budget is {record['budget']!r}, expected a positive integer "
                        "or 'all'") from None
    # As the runner writes it: a hand-edited "ALL", "064" or 64 is the same cell and run key;
    # a dataset named under LC_ALL=C without UTF-8 mode (by an earlier release), as UTF-8.
    record["budget"] = budget_label(budget)
    record["dataset"] = decoded(record["dataset"])
    for field in (*INT_FIELDS, *NUMBER_FIELDS):
        value = record[field]
        ok = isinstance(value, int if field in INT_FIELDS else (int, float))
        # beyond 64 bits: no float holds it (isfinite overflowed), nor any array of the report
        if not ok or isinstance(value, bool) or abs(value) >= 2**63 or not math.isfinite(value):
            kind = "an integer" if field in INT_FIELDS else "a finite number"
            raise DataError(f"{where}: {field} is {value!r}, expected {kind}")
        # A value out of range is a damaged or hand-edited line; never pick it as an answer.
        if field in METRICS:
            if not 0 <= value <= 1 + 1e-9:  # float rounding of a perfect 1
                raise DataError(f"{where}: {field} is {value!r}, expected a number in [0, 1]")
        elif value < MINIMUM[field]:
            kind = "an integer" if field in INT_FIELDS else "a number"
            raise DataError(f"{where}: {field} is {value!r}, expected {kind} >= {MINIMUM[field]}")
    for field in ("config", "diagnostics"):  # reports read fields of both
        if not isinstance(record.get(field, {}), dict):
            raise DataError(f"{where}: {field} is {record[field]!r}, expected a JSON object")
    for field, minimum in (("rescore", 0), ("bytes_per_vector", 1)):
        value = record.get(field, minimum)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise DataError(f"{where}: {field} is {value!r}, expected an integer >= {minimum}")
    precision = record.get("precision", "float32")
    if is_anchor(str(record["method"])):
        ok, valid = precision in CODES, ", ".join(CODES)
    else:  # a runtime precision, or a product stage after the method (`opq{M}`)
        ok = precision in PRECISIONS or (isinstance(precision, str) and is_product(precision))
        valid = f"{', '.join(PRECISIONS)} or opqM"
    if not ok:
        raise DataError(f"{where}: precision is {precision!r}, expected one of {valid}")
    if precision not in PRECISIONS and "bytes_per_vector" not in record:
        # A code's size is not a function of the dimension alone (`pq`: M bytes), so the
        # record has to state it; a report or `recommend` failed without naming the line.
        raise DataError(f"{where}: record lacks bytes_per_vector, which precision "
                        f"{precision!r} needs")
    if "bytes_per_vector" in record and not is_anchor(str(record["method"])):
        # a method's first stage has one size for its precision and d (opqM: M bytes); an
        # edited one would make a report or `recommend` pick it by bytes it does not store
        size = product_bytes(precision) or bytes_per_vector(precision, int(record["dim"]))
        if record["bytes_per_vector"] != size:
            raise DataError(f"{where}: bytes_per_vector is {record['bytes_per_vector']!r}, but "
                            f"{precision} at dim {record['dim']} stores {size}")
    if record.get("rescore") and record.get("rescore_with", "full") not in RESCORE_SOURCES:
        raise DataError(f"{where}: rescore_with is {record['rescore_with']!r}, expected one of "
                        f"{', '.join(RESCORE_SOURCES)}")
    return record


def _line(record: Mapping[str, Any]) -> str:
    """A record as its line of a results file (sorted keys)."""
    return json.dumps(record, sort_keys=True, allow_nan=False) + "\n"


def write_records(path: str | Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Replace the results file at `path` with `records`, atomically (one sorted-key line each).

    A link at `path` is kept: the file it leads to is the one replaced (`resolve_link`).
    """
    _write_lines(path, [_line(r) for r in records])


def _write_lines(path: str | Path, lines: Sequence[str]) -> None:
    atomic_write_text(resolve_link(path), "".join(lines))


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


FRESH_SUFFIX = ".new"  # `demo --overwrite`'s fresh results: `.results.jsonl.<hex>.tmp.new`


def remove_orphaned_fresh(results: Path) -> None:
    """Remove the fresh results of `demo --overwrite` runs killed outright (SIGKILL): those
    whose temporary is gone, as `remove_dead_temporaries` removes a dead one."""
    for fresh in results.parent.glob(f".{results.name}.*.tmp{FRESH_SUFFIX}"):
        held = fresh.with_name(fresh.name.removesuffix(FRESH_SUFFIX))
        if is_temporary_name(held.name) and not held.exists():
            fresh.unlink(missing_ok=True)
            remove_dead_temporaries(fresh)  # the appends' own temporaries, a minute on


class ResultsFile:
    """An appendable, resumable JSONL results file, safe to share between processes.

    The lookups (`in`, `current`) and `refresh` re-read the file when another
    process has replaced it; `records` holds what was last read or written here.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = as_path(path, "ResultsFile: path")
        self.records: list[dict[str, Any]] = []
        self._last: dict[RecordKey, str | None] = {}  # the fingerprint of each key's last record
        self._seen: tuple[int, int, int] | None = None
        self._lines: list[str] | None = None  # `records` as lines, once written from here
        self._read()

    def _read(self) -> None:
        self._seen = _stamp(self.path)
        self.records = read_records(self.path)
        self._last = {record_key(r): r.get(FINGERPRINT_FIELD) for r in self.records}
        self._lines = None

    def refresh(self) -> None:
        """Re-read the file if it changed since it was last read or written here."""
        if _stamp(self.path) != self._seen:
            self._read()

    def __contains__(self, key: RecordKey) -> bool:
        """Whether some record has this key, whatever data it was computed from."""
        self.refresh()
        return key in self._last

    def fingerprint(self, key: RecordKey) -> str | None:
        """The data fingerprint of the last record of this key (None: it has none, or there
        is no such record)."""
        self.refresh()
        return self._last.get(key)

    def current(self, key: RecordKey, fingerprint: str) -> bool:
        """Whether the last record of this key, the one a report reads (a rerun replaces),
        was computed from the data of `fingerprint`."""
        return self.fingerprint(key) == fingerprint

    def check_writable(self) -> None:
        """Raise now what `append` would meet after the first run's work: a folder it cannot
        write in (`OSError`), or a mount point (a file bound into a container), which the
        rename that rewrites the file whole cannot replace (`DiveError`). First removes what
        writes killed outright left beside the file (`remove_dead_temporaries`)."""
        target = resolve_link(self.path)
        remove_dead_temporaries(target)  # a write killed outright (SIGKILL) left it, 0600
        remove_orphaned_fresh(target)  # and `dive demo --overwrite`'s fresh results then
        check_writable(target)
        if os.path.ismount(target):
            raise DiveError(f"{self.path}: is a mount point, which a results file rewritten "
                            "whole (by one rename) cannot replace; give a path inside a mounted "
                            "folder")

    def append(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Add records and rewrite the file atomically, under the file's lock.

        A record `read_records` would refuse raises `DataError`, and nothing is written.

        A record whose key's last record has its fingerprint (another process finished the
        same run meanwhile) is not written again.
        """
        # A record the reader would refuse makes the whole file unreadable: checked first.
        new = [check_record(dict(r), f"{self.path}: new record {i}")
               for i, r in enumerate(records)]
        with locked(self.path):
            # read again only what another process changed: a grid on a file of 10k records
            # read and parsed it whole after every run (seconds each)
            self.refresh()
            if self._lines is None:
                self._lines = [_line(r) for r in self.records]
            for record in new:
                key, fingerprint = record_key(record), record.get(FINGERPRINT_FIELD)
                if key in self._last and self._last[key] == fingerprint:
                    logger.info("%s: %s already recorded by another run; not added again",
                                self.path, key)
                    continue
                self._last[key] = fingerprint
                self.records.append(record)
                self._lines.append(_line(record))
            _write_lines(self.path, self._lines)
            self._seen = _stamp(self.path)
