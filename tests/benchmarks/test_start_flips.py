"""`benchmarks/start_flips.py`: the stored DIVE records the current start rule starts elsewhere."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from dive.data import load_dataset
from dive.data.splits import make_split
from dive.embed import get_embeddings
from dive.evaluate.protocol import RunTask, run_one
from dive.evaluate.records import read_records, record_key, write_records


def records_of(runs: list[tuple[str, int]], tiny: tuple[Path, Path], tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The records of `runs` (method, seed) on `tiny`, found as `start_flips` finds data."""
    _data, emb = tiny
    (tmp_path / "cache" / "synthetic").mkdir(parents=True)
    emb.rename(tmp_path / "cache" / "synthetic" / "tiny")
    monkeypatch.setenv("DIVE_DATA", str(tmp_path))
    monkeypatch.setenv("DIVE_EMBEDDINGS", str(tmp_path / "cache"))
    dataset = load_dataset("tiny")
    embeddings = get_embeddings(dataset, "synthetic")
    records = []
    for method, seed in runs:
        records += run_one(RunTask(method, 8, 4, 16, seed), dataset, embeddings,
                           make_split(dataset, 16, seed), "synthetic", 10)
    return records


def test_records_whose_start_changes_are_dropped_and_the_rest_kept(
    load_script: Callable[[str], ModuleType],
    tiny: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    flips = load_script("start_flips")
    records = records_of([("dive:steps=0", 0), ("dive:steps=0", 1), ("pca", 0)], tiny,
                         tmp_path, monkeypatch)
    # the probe replays exactly the start a whole fit chose and recorded
    for record in records[:2]:
        assert flips.chosen_start(record, {}) == record["diagnostics"]["start"]
    assert flips.chosen_start(records[2], {}) is None
    other = {"uncentered": "centered", "centered": "uncentered"}
    stale = records[1]["diagnostics"]["start"]
    records[1]["diagnostics"]["start"] = other[stale]  # as an earlier rule would have chosen
    results = tmp_path / "results.jsonl"
    write_records(results, records)

    monkeypatch.setattr(sys, "argv", ["start_flips", str(results), "--drop"])
    flips.main()
    out = capsys.readouterr().out
    assert f"{other[stale]} -> {stale}" in out and "1 records change start" in out
    assert [record_key(r) for r in read_records(results)] == [
        record_key(records[0]), record_key(records[2])]


def test_an_earlier_releases_rows_are_skipped_not_replayed(
    load_script: Callable[[str], ModuleType], tiny: tuple[Path, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """On the file its docs name it stopped at 'unknown method dive-plus@v1', dropping
    nothing: `@vN` rows name no registered method to replay."""
    flips = load_script("start_flips")
    record = records_of([("dive:steps=0", 0)], tiny, tmp_path, monkeypatch)[0]
    results = tmp_path / "results.jsonl"
    write_records(results, [record, {**record, "method": "dive-plus@v1"}])
    monkeypatch.setattr(sys, "argv", ["start_flips", str(results), "--drop"])
    flips.main()
    out = capsys.readouterr().out
    assert "0 records change start" in out and "dive-plus@v1" not in out
    assert len(read_records(results)) == 2


def test_a_run_recorded_again_is_judged_by_its_last_record(
    load_script: Callable[[str], ModuleType], tiny: tuple[Path, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """A stale earlier copy of a run, then its current record (a rerun appended): the stale
    copy was judged "changed" and `--drop` dropped the current record with it."""
    flips = load_script("start_flips")
    current = records_of([("dive:steps=0", 0)], tiny, tmp_path, monkeypatch)[0]
    other = {"uncentered": "centered", "centered": "uncentered"}
    stale = {**current, "diagnostics": {**current["diagnostics"],
                                        "start": other[current["diagnostics"]["start"]]}}
    results = tmp_path / "results.jsonl"
    write_records(results, [stale, current])
    before = results.read_bytes()
    monkeypatch.setattr(sys, "argv", ["start_flips", str(results), "--drop"])
    flips.main()
    assert "0 records change start" in capsys.readouterr().out
    assert results.read_bytes() == before
