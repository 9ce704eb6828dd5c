"""Read one or more results files into one list of records for a report.

Files are read in the order given; a run that appears more than once (same dataset, model,
method, dim, budget and seed) keeps its last occurrence, so a later file or a later line
overrides an earlier one. A record's model is read as `record_model` names it (the default
model's hub alias, which older files may hold, is the default model; a local folder written
as typed, `./m`, is its resolved path), so the merged copies name each model once. When the
records mix several embedding models, the model name is folded into the dataset label so
that no table averages across models. The runs of one dataset and model must come from one
version of the data, as a report compares them all: records with different
`data_fingerprint`s (two datasets of one name, or a dataset changed between runs) are refused
(`DataError`); a record without a fingerprint (an older file) is not checked.
Left out: filtering (pass only the files you want) and any validation beyond
`read_records`'.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dive.arrays import readable
from dive.errors import DataError
from dive.evaluate.records import FINGERPRINT_FIELD, read_records, record_key, record_model
from dive.report.summary import budget_title, cell_key

logger = logging.getLogger(__name__)


def merge_records(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Records with duplicate run keys removed, the last occurrence winning.

    A run keeps the position of its first occurrence, so the order stays stable when a rerun
    overrides it. Each copy's `model` is `record_model`'s name for it; its `model`, `dataset`
    and `method` are the `readable` forms of the names recorded (a byte of another encoding in
    a folder's or a model label's name: a plot's TypeError).
    """
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    replaced: dict[str, set[tuple[Any, ...]]] = {}  # dataset: runs recorded again on other data
    for given in records:
        # a dataset folder's name with a byte of another encoding: a report's text, not a path
        record = {**given, **{field: readable(str(given[field]))
                              for field in ("dataset", "method") if field in given}}
        key = record_key(record)
        previous = merged.get(key, {})
        if FINGERPRINT_FIELD in previous and FINGERPRINT_FIELD in record and \
                previous[FINGERPRINT_FIELD] != record[FINGERPRINT_FIELD]:
            replaced.setdefault(str(record["dataset"]), set()).add(key)
        merged[key] = {**record, "model": readable(record_model(record))}
    for dataset, keys in replaced.items():
        logger.warning("%s: %d run(s) recorded again on other data (another version of the "
                       "dataset or other embeddings); their last records are the ones used",
                       dataset, len(keys))
    check_one_data(merged.values())
    return list(merged.values())


def check_one_data(records: Iterable[Mapping[str, Any]]) -> None:
    """Raise `DataError` if the runs of one dataset and model state different data
    fingerprints: a report compares them all (every method and dimension with frozen, every
    budget in its plot, the seeds a "mean ± std" averages), so a rerun of some methods on
    changed data compared them with the others' scores on the old data."""
    first: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for record in records:
        if FINGERPRINT_FIELD not in record:
            continue
        seen = first.setdefault((record_model(record), str(record["dataset"])), record)
        if seen[FINGERPRINT_FIELD] != record[FINGERPRINT_FIELD]:
            raise DataError(
                f"{record['dataset']}: runs on different data (data_fingerprint "
                f"{str(seen[FINGERPRINT_FIELD])[:8]} for {_run(seen)}, "
                f"{str(record[FINGERPRINT_FIELD])[:8]} for {_run(record)}) that one report "
                "would compare; keep the results of different data in separate results files "
                "or give the datasets different names, or rerun every run on the current data"
            )


def _run(record: Mapping[str, Any]) -> str:
    """`pca at d=96 with 64 labelled queries, seed 0`: one run, in words."""
    _, budget, method, dim = cell_key(record)
    return f"{method} at d={dim} with {budget_title(budget)}, seed {record['seed']}"


def label_models(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Copies of `records`, `model` as `record_model` names it; with several models,
    `dataset` becomes `dataset (model)`."""
    copies = [{**r, "model": record_model(r)} for r in records]
    if len({r["model"] for r in copies}) <= 1:
        return copies
    return [{**r, "dataset": f"{r['dataset']} ({r['model']})"} for r in copies]


def read_results(paths: Sequence[str | Path] | str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every record of `paths` (one path, or several), merged (last wins); DataError if a file
    is missing or all empty."""
    if isinstance(paths, (str, os.PathLike)):  # read letter by letter, it named "/" a folder
        paths = [Path(paths)]
    if not paths:
        raise DataError("no results files given")
    records: list[dict[str, Any]] = []
    empty = []
    for path in paths:
        if not Path(path).exists():
            raise DataError(f"{path}: no such results file")
        read = read_records(path)
        empty += [] if read else [path]
        records.extend(read)
    if not records:
        raise DataError(f"{', '.join(map(str, paths))}: no records in "
                        f"{'this results file' if len(paths) == 1 else 'these results files'}")
    for path in empty:  # an error alone; beside others it went without a word
        logger.warning("%s: no records in this results file", path)
    return merge_records(records)
