"""`benchmarks/final_checks.py`: the stored DIVE records the final check (or anything else)
would change."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from dive.evaluate.records import read_records, record_key, write_records
from tests.benchmarks.test_start_flips import records_of

ARM_KEPT = "dive:steps=20:eval_every=10:min_gain_z=0"  # keeps an arm on the tiny set


def test_records_whose_refit_differs_are_dropped_and_the_rest_kept(
    load_script: Callable[[str], ModuleType], tiny: tuple[Path, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    checks = load_script("final_checks")
    records = records_of([(ARM_KEPT, 0), (ARM_KEPT, 1), ("dive:steps=0", 0)], tiny, tmp_path,
                         monkeypatch)
    assert [checks.kept_an_arm(r) for r in records] == [True, True, False]
    assert checks.replay(records[0], {}) == "kept"  # the refit is the fit recorded
    records[1]["diagnostics"]["choice"]["step"] += 10  # as other code would have chosen
    results = tmp_path / "results.jsonl"
    write_records(results, records)
    monkeypatch.setattr(sys, "argv", ["final_checks", str(results), "--drop", "--threads", "1"])
    checks.main()
    out = capsys.readouterr().out
    assert "not reproduced: tiny synthetic" in out and "1 records change or are not " in out
    assert [record_key(r) for r in read_records(results)] == [
        record_key(records[0]), record_key(records[2])]


def test_a_record_whose_curve_moved_past_its_choice_is_not_reproduced(
    load_script: Callable[[str], ModuleType], tiny: tuple[Path, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run that went on past its kept step moved the record's test score while its choice
    stayed the same (cisi dive-plus 96-d: 0.476759 recorded, 0.476581 by today's code), and
    the replay, which compared the choice alone, kept the record."""
    checks = load_script("final_checks")
    record = records_of([(ARM_KEPT, 0)], tiny, tmp_path, monkeypatch)[0]
    assert checks.replay(record, {}) == "kept"
    record["diagnostics"]["curves"][-1]["ndcg@10"][-1] += 0.001  # its last check, past the kept
    assert checks.replay(record, {}) == "not reproduced"


def test_a_record_whose_final_check_already_kept_the_start_is_kept(
    load_script: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Written by the code with the final check, it was "changed" at every replay, so --drop
    deleted it, its benchmark wrote it again, and the next replay deleted it again."""
    checks = load_script("final_checks")
    choice = {"candidate": 1, "step": 20, "score": 0.5, "base_score": 0.4}
    refit = SimpleNamespace(fit=lambda *_: None, fit_info_=SimpleNamespace(diagnostics={
        "choice": choice, "final": "start (the kept model scored below it)"}))
    monkeypatch.setattr(checks, "make_compressor", lambda *_: refit)
    monkeypatch.setattr(checks, "fit_inputs", lambda *_: ())
    record = {"method": "dive", "dim": 8, "seed": 0, "diagnostics": {"choice": choice}}
    assert checks.replay({**record, "diagnostics": {"choice": choice, "final": "fold soup"}},
                         {}) == "changed"
    assert checks.replay({**record, "diagnostics": {
        "choice": choice, "final": "start (the kept model scored below it)"}}, {}) == "kept"


def test_a_run_recorded_twice_is_judged_by_its_last_record(
    load_script: Callable[[str], ModuleType], tiny: tuple[Path, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """A rerun appends (reports read the last record): the script replayed the first one, so
    a stale last record was "kept", and a stale first one dropped the good rerun too."""
    checks = load_script("final_checks")
    good = records_of([(ARM_KEPT, 0)], tiny, tmp_path, monkeypatch)[0]
    stale = {**good, "diagnostics": {**good["diagnostics"], "choice": {
        **good["diagnostics"]["choice"], "step": good["diagnostics"]["choice"]["step"] + 10}}}
    results = tmp_path / "results.jsonl"
    monkeypatch.setattr(sys, "argv", ["final_checks", str(results), "--drop", "--threads", "1"])
    write_records(results, [stale, good])
    checks.main()
    assert "1 records kept" in capsys.readouterr().out
    assert len(read_records(results)) == 2  # nothing dropped
    write_records(results, [good, stale])
    checks.main()
    out = capsys.readouterr().out
    assert "1 records not reproduced" in out and "1 records change or are not " in out
    assert read_records(results) == []  # the run is refitted: both copies go


def test_the_replay_pins_numpy_s_blas_threads_before_numpy_loads() -> None:
    """It imported torch (and so numpy) before `quality` set the thread variables, so on a
    larger machine its replays ran numpy's BLAS on every core where the benchmarks that wrote
    the records ran on 2."""
    import os
    import subprocess

    code = ("import builtins, os, sys; sys.path.insert(0, 'benchmarks'); seen = []; "
            "real = builtins.__import__\n"
            "def spy(name, *args, **kwargs):\n"
            "    if name == 'numpy' and 'numpy' not in sys.modules:\n"
            "        seen.append(os.environ.get('OPENBLAS_NUM_THREADS'))\n"
            "    return real(name, *args, **kwargs)\n"
            "builtins.__import__ = spy; import final_checks; print(seen[0])")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env, cwd=Path(__file__).resolve().parents[2]).stdout
    assert out.strip() == "2"
