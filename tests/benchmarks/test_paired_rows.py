"""`benchmarks/paired_rows.py`: nDCG@10 of one spec's rows minus another's, run by run."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from dive.evaluate.records import write_records
from tests.report.conftest import byte_row


def test_a_run_recorded_again_is_one_pair_its_last_records(
    load_script: Callable[[str], ModuleType], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """A rerun appended to NEW was paired twice: 2 runs where there was one, the stale
    score in the mean."""
    new, stored = tmp_path / "new.jsonl", tmp_path / "stored.jsonl"
    write_records(new, [byte_row("pca", 96, "float32", 384, v) for v in (0.30, 0.50)])
    write_records(stored, [byte_row("pca", 96, "float32", 384, 0.40)])
    monkeypatch.setattr(sys, "argv", ["paired_rows.py", str(new), "--stored", str(stored)])
    load_script("paired_rows").main()
    assert capsys.readouterr().out == (
        "scifact (m) pca: 1 runs, mean +0.1000, range +0.1000..+0.1000\n")
