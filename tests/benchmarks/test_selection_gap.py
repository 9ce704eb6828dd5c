"""`benchmarks/selection_gap.py`: the kept validation score and curve of each baseline's record."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from dive.errors import DataError

HISTORY = [[0, 0.5], [25, 0.6], [50, 0.7], [75, 0.65]]


@pytest.fixture(scope="module")
def gap(load_script: Callable[[str], ModuleType]) -> ModuleType:
    return load_script("selection_gap")


@pytest.mark.parametrize(
    "diagnostics",
    [
        {"stages": [{"best_score": 0.1, "history": [[0, 0.1]]},
                    {"best_score": 0.7, "history": HISTORY}]},  # SMEC: the last stage
        {"unsupervised": {"best_score": -0.1, "history": [[0, -0.2]]},
         "supervised": {"best_score": 0.7, "history": HISTORY}},  # Matryoshka-Adaptor
        {"choice": {"score": 0.7}, "history": HISTORY},  # Search-Adaptor
    ],
)
def test_the_kept_score_and_curve_come_from_the_part_that_chose(
    gap: ModuleType, diagnostics: dict
) -> None:
    assert gap.kept_curve(diagnostics) == (0.7, [0.6, 0.7, 0.65])


def test_records_without_a_validation_curve_are_left_out(gap: ModuleType) -> None:
    assert gap.kept_curve({}) is None
    assert gap.kept_curve({"choice": {"score": 0.5}}) is None


RECORD = {"method": "smec", "dataset": "scifact", "model": "m", "budget": "all", "dim": 192,
          "ratio": 2, "ndcg@10": 0.65, "recall@100": 0.9, "mrr@10": 0.6, "fit_seconds": 1.0,
          "n_params": 1, "config": {},
          "diagnostics": {"stages": [{"best_score": 0.7, "history": HISTORY}]}}


def table_rows(gap: ModuleType, records: list[dict], tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The lines the script prints for a results file of `records`."""
    results = tmp_path / "r.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in records))
    monkeypatch.setattr(sys, "argv", ["selection_gap", "--results", str(results)])
    gap.main()
    return capsys.readouterr().out.splitlines()


def test_the_table_prints_gap_and_roughness_per_cell(
    gap: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    records = [{**RECORD, "seed": s} for s in (0, 1)]
    row = table_rows(gap, records, tmp_path, monkeypatch, capsys)[-1]
    assert row == "| smec | scifact | m | all | 192 | 2 | 0.7000 | 0.6500 | +0.0500 | 0.0750 |"


def test_a_run_recorded_again_counts_once_with_its_last_record(
    gap: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A rerun appended counted as one more seed (4 of 3), its earlier score in the mean."""
    records = [{**RECORD, "seed": s} for s in (0, 1)] + [{**RECORD, "seed": 1, "ndcg@10": 0.55}]
    row = table_rows(gap, records, tmp_path, monkeypatch, capsys)[-1]
    assert row == "| smec | scifact | m | all | 192 | 2 | 0.7000 | 0.6000 | +0.1000 | 0.0750 |"


def test_runs_of_two_embedding_models_are_cells_apart(
    gap: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """NFCorpus's 384-d and 768-d runs at one d were averaged as 6 seeds of one cell."""
    records = [{**RECORD, "seed": s} for s in (0, 1)]
    records += [{**RECORD, "seed": s, "model": "other", "ndcg@10": 0.45} for s in (0, 1)]
    assert table_rows(gap, records, tmp_path, monkeypatch, capsys)[-2:] == [
        "| smec | scifact | m | all | 192 | 2 | 0.7000 | 0.6500 | +0.0500 | 0.0750 |",
        "| smec | scifact | other | all | 192 | 2 | 0.7000 | 0.4500 | +0.2500 | 0.0750 |"]


@pytest.mark.parametrize(("flag", "value", "field"), [("--datasets", "scifcat", "dataset"),
                                                      ("--budgets", "al", "budget")])
def test_a_filter_value_no_record_has_is_refused(
    load_script: Callable[[str], ModuleType], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, flag: str, value: str, field: str,
) -> None:
    """A typo printed the table's header alone, exit 0."""
    results = tmp_path / "r.jsonl"
    results.write_text(json.dumps({**RECORD, "seed": 0}) + "\n")
    monkeypatch.setattr(sys, "argv", ["selection_gap.py", "--results", str(results), flag,
                                      "scifact" if flag == "--datasets" else "all", value])
    with pytest.raises(DataError, match=rf"^{flag} {value}: no record of .* has that {field}$"):
        load_script("selection_gap").main()
