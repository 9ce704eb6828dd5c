"""`benchmarks/start_cost.py`: DIVE's gain split into its start choice and its training."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _record(method: str, ndcg: float, precision: str = "float32", **extra: Any) -> dict[str, Any]:
    return {"dataset": "scifact", "model": "all-MiniLM-L6-v2", "method": method, "dim": 96,
            "ratio": 4, "budget": "64", "seed": 0, "ndcg@10": ndcg, "recall@100": 0.5,
            "mrr@10": 0.5, "fit_seconds": 1.0, "n_params": 1, "config": {},
            "precision": precision, **extra}


def test_only_float32_scores_without_a_funnel_are_compared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On frontier.jsonl (each run at several precisions and funnels) the last record read
    stood for the run: 0.6451 (opq48, rescored) minus 0.6083 (binary, rescored)."""
    chosen = {"diagnostics": {"selected": {"start": "uncentered", "step": 100}}}
    records = [_record("pca", 0.60), _record("pca-uncentered", 0.62),
               _record("dive", 0.66, **chosen),
               _record("pca", 0.50, "int8"), _record("pca-uncentered", 0.51, "int8"),
               _record("dive", 0.70, "int8", **chosen)]
    results = tmp_path / "r.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setattr(sys, "argv", ["start_cost.py", str(results), "--budgets", "64"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(BENCHMARKS / "start_cost.py"), run_name="__main__")
    assert exit_info.value.code in (0, None)
    assert capsys.readouterr().out.splitlines()[0] == (
        "scifact 64 d=96 seed 0: start uncentered +0.0000, training (step 100) +0.0400")


@pytest.mark.parametrize(("flag", "value", "field"), [("--method", "dvie", "method"),
                                                      ("--budgets", "61", "budget"),
                                                      ("--model", "all-MiniLM", "model")])
def test_a_filter_value_no_record_has_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    flag: str, value: str, field: str,
) -> None:
    """`--method dvie` printed nothing and exited 0."""
    results = tmp_path / "r.jsonl"
    results.write_text(json.dumps(_record("pca", 0.6)) + "\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setattr(sys, "argv", ["start_cost.py", str(results), "--method", "pca",
                                      "--budgets", "64", flag, value])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(BENCHMARKS / "start_cost.py"), run_name="__main__")
    assert exit_info.value.code == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == (f"start_cost.py: error: {flag} {value}: no record of {results} has that "
                       f"{field}\n")


@pytest.mark.parametrize(("method", "records", "said"), [
    ("truncate", [_record(m, v, diagnostics={}) for m, v in (("truncate", 0.55), ("pca", 0.6),
                                                            ("pca-uncentered", 0.62))],
     "--method truncate: no float32 record of RESULTS at budgets 64 has a start choice "
     "(diagnostics.selected.start: dive and dive-plus choose a PCA start)"),
    ("dive", [_record("dive", 0.66, diagnostics={"selected": {"start": "centered"}}),
              _record("pca-uncentered", 0.62)],
     "--method dive: no run of RESULTS with a start choice has both PCA rows (pca-uncentered, "
     "pca) of its dataset, budget, d and seed"),
])
def test_a_method_with_no_start_choice_to_split_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    method: str, records: list[dict[str, Any]], said: str,
) -> None:
    """`--method truncate` (pca, random, frozen: no start choice) printed nothing, exit 0."""
    results = tmp_path / "r.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setattr(sys, "argv", ["start_cost.py", str(results), "--method", method,
                                      "--budgets", "64"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(BENCHMARKS / "start_cost.py"), run_name="__main__")
    assert exit_info.value.code == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == f"start_cost.py: error: {said.replace('RESULTS', str(results))}\n"
