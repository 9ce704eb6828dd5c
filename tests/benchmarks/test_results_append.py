"""benchmarks/results_append.py: appends to results files it builds, timed."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest


def test_it_times_appends_to_files_of_each_size(
    load_script: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    script = load_script("results_append")
    from dive.evaluate.records import record_key

    made = script.made_records(3000)  # more than quality.jsonl holds: copies, seeds shifted
    assert len({record_key(r) for r in made}) == len(made)  # every run distinct
    assert script.main(["--records", "20", "40", "--appends", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["records", "file", "MB", "first", "append", "s", "then", "per",
                                "append", "s"]
    assert [line.split()[0] for line in lines[1:]] == ["20", "40"]


def test_one_append_shows_the_others_as_not_measured(
    load_script: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    """With `--appends 1` the "then per append" column showed the first append's time."""
    assert load_script("results_append").main(["--records", "20", "--appends", "1"]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[0] == "20" and float(row[2]) > 0 and row[3] == "-"
