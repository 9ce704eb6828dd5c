"""`benchmarks/length_flips.py`: the stored DIVE records a looser extension rule refits."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from dive.errors import DataError
from dive.evaluate.records import read_records, write_records


def _record(method: str, best: list[int], horizons: list[int], seed: int = 0,
            selection: str = "holdout") -> dict[str, Any]:
    curves = [{"steps": list(range(25, h + 1, 25)), "ndcg@10": [0.5] * (h // 25)}
              for h in horizons]
    return {"method": method, "dataset": "d", "model": "m", "dim": 8, "ratio": 4,
            "budget": "all", "seed": seed, "ndcg@10": 0.5, "recall@100": 0.5, "mrr@10": 0.5,
            "fit_seconds": 1.0, "n_params": 1, "config": {},
            "diagnostics": {"choice": {"best": best}, "curves": curves, "selection": selection}}


@pytest.mark.parametrize(
    ("method", "best", "horizons", "longer"),
    [
        ("dive:extend_at=0.5", [1, 150], [100, 200], True),  # best late: runs on
        ("dive:extend_at=0.5", [1, 100], [100, 200], True),  # exactly half counts as late
        ("dive:extend_at=0.5", [1, 75], [100, 200], False),  # best early: stops as before
        ("dive:extend_at=1", [1, 150], [100, 200], False),  # the old rule: stopped there too
        ("dive:extend_at=0.5", [1, 300], [100, 400], False),  # at the cap
        ("dive:extend_at=0.5:max_steps=800", [1, 300], [100, 400], True),
        ("dive:extend_at=0.5", [-1, 0], [100, 100], False),  # the start kept, no leader
    ],
)
def test_a_record_trains_longer_only_where_the_rule_stops_later(
    load_script: Callable[[str], ModuleType], method: str, best: list[int],
    horizons: list[int], longer: bool,
) -> None:
    flips = load_script("length_flips")
    assert flips.trains_longer(_record(method, best, horizons)) is longer


def test_a_cross_fitted_choice_keeps_the_last_check_rule(
    load_script: Callable[[str], ModuleType],
) -> None:
    flips = load_script("length_flips")
    record = _record("dive:extend_at=0.5", [1, 150], [100, 200], selection="cross-fit")
    assert flips.trains_longer(record) is False


def test_records_without_a_race_are_not_counted(
    load_script: Callable[[str], ModuleType],
) -> None:
    flips = load_script("length_flips")
    assert flips.trains_longer(_record("pca", [1, 150], [100, 200])) is None
    assert flips.trains_longer(_record("dive:select=false", [1, 150], [100, 200])) is None
    no_race = _record("dive", [1, 150], [100, 200])
    no_race["diagnostics"] = {"selection": "none"}
    assert flips.trains_longer(no_race) is None


def test_keep_as_keeps_every_examined_record_and_removes_those_that_change(
    load_script: Callable[[str], ModuleType], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    flips = load_script("length_flips")
    late, early = "dive:extend_at=0.5", "dive:extend_at=0.5:steps=50"
    records = [_record(late, [1, 150], [100, 200], seed=0),  # changes
               _record(late, [1, 50], [100, 200], seed=1),  # the same fit
               _record(early, [1, 150], [100, 200], seed=0),  # its own cap is 400: changes
               _record("pca", [0, 0], [100], seed=0)]
    results = tmp_path / "results.jsonl"
    write_records(results, records)
    monkeypatch.setattr(sys, "argv", ["length_flips", str(results), "--keep-as", "@old"])
    flips.main()
    assert "2 records may change" in capsys.readouterr().out
    assert [(r["method"], r["seed"]) for r in read_records(results)] == [
        (late, 1), ("pca", 0), (late + "@old", 0), (late + "@old", 1), (early + "@old", 0)]


def test_keep_as_refuses_a_suffix_the_file_holds_already(
    load_script: Callable[[str], ModuleType], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Appended under a suffix already there (dive@v1 from an earlier change), the records
    replaced that release's rows in every report, without a word."""
    flips = load_script("length_flips")
    late = "dive:extend_at=0.5"
    records = [_record(late, [1, 150], [100, 200], seed=0),
               {**_record(late, [1, 150], [100, 200], seed=0), "method": late + "@old"}]
    results = tmp_path / "results.jsonl"
    write_records(results, records)
    before = results.read_bytes()
    monkeypatch.setattr(sys, "argv", ["length_flips", str(results), "--keep-as", "@old"])
    with pytest.raises(DataError, match=r"holds 1 runs of METHOD@old already"):
        flips.main()
    assert results.read_bytes() == before


def test_a_run_recorded_again_is_judged_by_its_last_record(
    load_script: Callable[[str], ModuleType], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """An out-of-date copy of a run that may change, then its current record that cannot (a
    rerun appended): the old copy was judged, and the current record removed for it."""
    flips = load_script("length_flips")
    late = "dive:extend_at=0.5"
    old, current = _record(late, [1, 150], [100, 200]), _record(late, [1, 50], [100, 200])
    results = tmp_path / "results.jsonl"
    write_records(results, [old, current])
    monkeypatch.setattr(sys, "argv", ["length_flips", str(results), "--keep-as", "@old"])
    flips.main()
    assert "0 records may change" in capsys.readouterr().out
    assert [(r["method"], r["diagnostics"]["choice"]["best"]) for r in read_records(results)
            if r["method"] == late] == [(late, [1, 150]), (late, [1, 50])]
