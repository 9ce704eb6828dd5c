"""benchmarks/dev_overlap.py: the share of each seed's evaluation half that dev runs read."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import write_tiny_beir


def _read(load_script: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str],
          folder: Path, *seeds: str) -> list[tuple[int, int]]:
    load_script("dev_overlap").main(["--datasets", str(folder), "--seeds", *seeds])
    return [(int(a), int(b)) for a, b in re.findall(r"(\d+)/(\d+)", capsys.readouterr().out)]


def test_a_dev_run_reads_no_query_its_own_seed_evaluates_but_other_seeds_do(
    load_script: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    data, _ = write_tiny_beir(tmp_path, with_train=False)
    assert [read for read, _ in _read(load_script, capsys, data, "0")] == [0]
    across = _read(load_script, capsys, data, "0", "1", "2")
    assert len(across) == 3 and all(0 < read < total for read, total in across), across


def test_with_a_train_split_dev_runs_read_no_evaluation_query(
    load_script: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    data, _ = write_tiny_beir(tmp_path, with_train=True)
    assert [read for read, _ in _read(load_script, capsys, data, "0", "1", "2")] == [0, 0, 0]


def test_a_bad_input_is_one_line_not_a_traceback(
    load_script: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    overlap = load_script("dev_overlap")
    data, _ = write_tiny_beir(tmp_path, with_train=False)
    for argv, said in ((["--seeds", "-1"], "seed must be an integer"),
                       (["--datasets", str(tmp_path / "nope")], "no such dataset folder")):
        monkeypatch.setattr(sys, "argv", ["dev_overlap", "--datasets", str(data), *argv])
        assert load_script("script_io").script_main("dev_overlap.py", overlap.main) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("dev_overlap.py: error: ") and \
            said in err, err
