"""The scripts over a results file: a missing or malformed file is one line, exit 2."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

# script -> its arguments, RESULTS standing for the results file it reads
COMMANDS = {
    "paired_rows": ["RESULTS", "--stored", "RESULTS"],
    "length_flips": ["RESULTS"],
    "start_flips": ["RESULTS"],
    "selection_gap": ["--results", "RESULTS"],
    "backfill_fingerprints": ["RESULTS"],
}


def _run(script: str, results: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # scripts import their siblings
    argv = [str(results) if a == "RESULTS" else a for a in COMMANDS[script]]
    monkeypatch.setattr(sys, "argv", [f"{script}.py", *argv])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(BENCHMARKS / f"{script}.py"), run_name="__main__")
    return exit_info.value.code


def _one_line_error(script: str, results: Path, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> str:
    """What `script` says on stderr, after checking it exits 2 with one line."""
    assert _run(script, results, monkeypatch) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    return err


@pytest.mark.parametrize("script", sorted(COMMANDS))
def test_a_results_file_that_is_not_there_is_named_not_read_as_empty(
    script: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = tmp_path / "typo.jsonl"
    err = _one_line_error(script, missing, monkeypatch, capsys)
    assert err.endswith(f"error: {missing}: no such results file")
    assert not missing.exists()


@pytest.mark.parametrize("script", sorted(COMMANDS))
def test_a_malformed_line_is_one_line_naming_it_not_a_traceback(
    script: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    results = tmp_path / "results.jsonl"
    results.write_text('{"dataset": "scifact", broken\n', encoding="utf-8")
    err = _one_line_error(script, results, monkeypatch, capsys)
    assert f"error: {results}:1: not valid JSON" in err
    assert results.read_text(encoding="utf-8") == '{"dataset": "scifact", broken\n'


@pytest.mark.parametrize(("script", "argv", "said"), [
    ("final_checks", ["RESULTS", "--datasets", "nosuch", "scifact"],
     "--datasets nosuch: no record of RESULTS has that dataset"),
    ("final_checks", ["RESULTS", "--methods", "dvie"],
     "--methods dvie: no record of RESULTS has that method"),
    ("length_flips", ["RESULTS", "--methods", "dive,dvie"],
     "--methods dvie: no record of RESULTS has that method"),
    ("paired_rows", ["RESULTS", "--stored", "RESULTS", "--suffix", "@v9"],
     "RESULTS: no record pairs with one of RESULTS (methods with '' removed and '@v9' added)"),
])
def test_a_filter_that_matches_no_record_is_named_not_read_as_nothing_to_do(
    script: str, argv: list[str], said: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """A mistyped name printed "0 records change" or nothing at all, exit 0."""
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps({
        "dataset": "scifact", "model": "all-MiniLM-L6-v2", "method": "dive", "dim": 96,
        "ratio": 4, "budget": "64", "seed": 0, "ndcg@10": 0.6, "recall@100": 0.9,
        "mrr@10": 0.6, "fit_seconds": 1.0, "n_params": 1, "config": {}}) + "\n",
        encoding="utf-8")
    monkeypatch.setitem(COMMANDS, script, argv)
    err = _one_line_error(script, results, monkeypatch, capsys)
    assert err == f"{script}.py: error: {said.replace('RESULTS', str(results))}"
