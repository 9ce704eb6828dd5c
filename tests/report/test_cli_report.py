"""`dive report` end to end, and `dive evaluate --report`."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from dive.cli import main


def test_report_merges_files_and_writes_everything(
    make_grid, make_record, jsonl, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = make_grid(datasets=("scifact",), budgets=("16", "64"), seeds=(0,))
    first = jsonl(tmp_path / "a.jsonl", grid)
    # A rerun of one cell in a second file: its value must win.
    second = jsonl(tmp_path / "b.jsonl", [make_record(method="pca", dim=96, budget="16",
                                                      ndcg=0.7777)])
    out = tmp_path / "report"
    assert main(["report", "--results", str(first), str(second), "--output", str(out),
                 "--keep", "0.95"]) == 0
    printed = capsys.readouterr().out
    assert f"{len(grid)} runs from 2 file(s)" in printed
    names = {p.name for p in out.iterdir()}
    assert names == {"report.md", "summary.csv", "ndcg_vs_dim.png", "ndcg_vs_budget.png"}
    text = (out / "report.md").read_text()
    assert "**0.7777 ± 0.0000**" in text
    assert "smallest dimension keeping 95% of frozen nDCG@10" in text
    assert "![nDCG@10 vs dimension](ndcg_vs_dim.png)" in text
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) == 2 * 21
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_of_missing_file_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--results", str(tmp_path / "none.jsonl"),
                 "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"dive: error: {tmp_path / 'none.jsonl'}: no such results file"
    assert not (tmp_path / "o").exists()


def test_an_interrupted_report_leaves_no_folder_as_it_says(
    make_grid, jsonl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    """It said "no output was written" beside the empty report folder it had made."""
    import dive.report.build as build

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    results = jsonl(tmp_path / "r.jsonl", make_grid(datasets=("scifact",), seeds=(0,)))
    monkeypatch.setattr(build, "plot_ndcg_vs_dim", interrupted)
    assert main(["report", "--results", str(results), "--output", str(tmp_path / "rep")]) == 130
    assert capsys.readouterr().err == "dive: interrupted; no output was written\n"
    assert [p.name for p in tmp_path.iterdir()] == ["r.jsonl"]


def test_evaluate_with_report_writes_the_folder(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rep"
    argv = ["evaluate", "--datasets", str(tiny[0]), "--embeddings", str(tiny[1]),
            "--methods", "frozen,pca", "--ratios", "2,4", "--budgets", "all", "--seeds", "0",
            "--results", str(tmp_path / "r.jsonl"), "--report", str(out)]
    assert main(argv) == 0
    assert f"report: {out / 'report.md'}" in capsys.readouterr().out
    text = (out / "report.md").read_text()
    assert "## tiny" in text and "| d=32 (full) | d=16 (2×) | d=8 (4×) |" in text
    assert (out / "ndcg_vs_budget.png").exists()


@pytest.mark.parametrize("ratios", ["2,8", "1,2,8"])
def test_report_draws_the_budget_plot_evaluate_draws_without_4x(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], ratios: str
) -> None:
    """Without a 4x run, evaluate --report drew the plot at the middle ratio and dive report
    on the same file skipped it ('no run at compression ratio 4'); with ratio 1 in the grid,
    evaluate took the middle of 1, 2, 8 (2x) and dive report of its compressing ratios (8x)."""
    argv = ["evaluate", "--datasets", str(tiny[0]), "--embeddings", str(tiny[1]),
            "--methods", "frozen,pca", "--ratios", ratios, "--budgets", "16,all", "--seeds",
            "0", "--results", str(tmp_path / "r.jsonl"), "--report", str(tmp_path / "ev")]
    assert main(argv) == 0
    assert main(["report", "--results", str(tmp_path / "r.jsonl"), "--output",
                 str(tmp_path / "rep")]) == 0
    for folder in ("ev", "rep"):
        assert "at 8× compression" in (tmp_path / folder / "report.md").read_text()
        assert (tmp_path / folder / "ndcg_vs_budget.png").exists()


def test_report_gains_prints_each_method_against_the_better_pca(
    make_record, jsonl, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # At d=96 smec beats the better PCA (pca-uncentered); at d=48 it falls below pca.
    scores = {("pca", 96): 0.50, ("pca-uncentered", 96): 0.52, ("smec", 96): 0.53,
              ("pca", 48): 0.45, ("pca-uncentered", 48): 0.44, ("smec", 48): 0.40}
    records = [make_record(method=m, dim=d, ndcg=v) for (m, d), v in scores.items()]
    results = jsonl(tmp_path / "r.jsonl", records)
    argv = ["report", "--results", str(results), "--output", str(tmp_path / "rep")]
    assert main(argv) == 0
    assert "won or tied" not in capsys.readouterr().out
    assert main([*argv, "--overwrite", "--gains"]) == 0
    out = capsys.readouterr().out
    rows: dict[str, list[str]] = {}
    for line in out.splitlines():  # the table's row of each method, not its by-ratio line
        if line.split() and line.split()[0] in {"pca", "pca-uncentered", "smec"}:
            rows.setdefault(line.split()[0], line.split())
    assert "smec by ratio: 4× 1/1 (mean +0.0100, worst +0.0100), 8× 0/1" in out
    mean = ((0.53 - 0.52) + (0.40 - 0.45)) / 2
    assert rows["smec"][1:5] == ["1", "1/2", f"{mean:+.4f}".replace("-", "−"), "−0.0500"]
    assert rows["pca-uncentered"][2] == "1/2"
    assert rows["pca"][2] == "1/2"


@pytest.mark.parametrize("name", ["report.md", "summary.csv", "ndcg_vs_dim.png"])
def test_report_overwrite_replaces_only_files_dive_report_wrote(
    name: str, make_record, jsonl, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = jsonl(tmp_path / "r.jsonl", [make_record(method="pca", dim=48)])
    out = tmp_path / "rep"
    argv = ["report", "--results", str(results), "--output", str(out)]
    assert main(argv) == 0
    assert main([*argv, "--overwrite"]) == 0  # its own files: replaced
    (out / name).write_text("my notes\n")
    capsys.readouterr()
    assert main([*argv, "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dive: error: {out / name}: exists and is not ") and err.count("\n") == 1
    assert "refusing to replace it" in err
    assert (out / name).read_text() == "my notes\n"


def test_report_of_one_cell_on_different_data_is_one_line_error(
    make_record, jsonl, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two datasets named "data" in one results file, seed 0 on one and seed 1 on the other.
    results = jsonl(tmp_path / "r.jsonl", [
        make_record("data", "random", seed=0, data_fingerprint="7c6bca0b0e19aaaa"),
        make_record("data", "random", seed=1, data_fingerprint="dae6fed01357bbbb")])
    out = tmp_path / "rep"
    assert main(["report", "--results", str(results), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dive: error: data: runs on different data ") and err.count("\n") == 1
    assert "7c6bca0b" in err and "dae6fed0" in err
    assert not (out / "report.md").exists()


def test_report_overwrite_says_which_earlier_plots_it_removed(
    make_record, jsonl, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rep"
    at_4x = jsonl(tmp_path / "a.jsonl", [make_record(method="pca", dim=96)])
    at_2x = jsonl(tmp_path / "b.jsonl", [make_record(method="pca", dim=192)])
    assert main(["report", "--results", str(at_4x), "--output", str(out)]) == 0
    assert (out / "ndcg_vs_budget.png").exists()
    capsys.readouterr()
    assert main(["report", "--results", str(at_2x), "--output", str(out), "--overwrite",
                 "--ratio", "4"]) == 0
    printed = capsys.readouterr().out
    assert f"removed {out / 'ndcg_vs_budget.png'} (an earlier report's plot" in printed
    assert not (out / "ndcg_vs_budget.png").exists()


def test_evaluate_report_covers_this_grids_runs_as_its_help_says(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its help said "as `dive report` does", which reports every run of the file: a second
    seed's `--report` held that seed's runs only."""
    base = ["evaluate", "--datasets", str(tiny[0]), "--embeddings", str(tiny[1]),
            "--methods", "frozen,pca", "--ratios", "2", "--budgets", "all",
            "--results", str(tmp_path / "r.jsonl")]
    assert main([*base, "--seeds", "0"]) == 0
    assert main([*base, "--seeds", "1", "--report", str(tmp_path / "ev")]) == 0
    assert main(["report", "--results", str(tmp_path / "r.jsonl"), "--output",
                 str(tmp_path / "all")]) == 0
    assert "seeds: 1." in (tmp_path / "ev" / "report.md").read_text()
    assert "seeds: 0, 1." in (tmp_path / "all" / "report.md").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert "also write the report of this grid's runs" in said
    assert "`dive report --results FILE` reports every run of the file" in said
