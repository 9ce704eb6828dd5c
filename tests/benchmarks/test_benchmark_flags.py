"""The grid scripts refuse a bad flag value when they parse it, before any run."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


@pytest.mark.parametrize(
    ("script", "flag", "value"),
    [
        (script, "--threads", value)
        for script in ("quality", "all_collections", "frontier", "speed")
        for value in ("0", "-2", "x")
    ]
    + [("quality", "--ratio", value) for value in ("0", "-1")]
    + [("quality", "--keep", value) for value in ("0", "-0.5", "nan", "inf", "99")]
    + [("all_collections", "--tolerance", value) for value in ("-0.001", "nan", "inf")],
)
def test_a_bad_flag_value_is_one_line_naming_the_flag_before_any_run(
    load_script: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str],
    script: str, flag: str, value: str,
) -> None:
    parser = load_script(script).build_parser()
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args([f"{flag}={value}"])
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument {flag}:" in last and repr(value) in last


@pytest.mark.parametrize(("script", "flag", "value", "parsed"), [
    ("quality", "--threads", "3", 3),
    ("quality", "--ratio", "8", 8),
    ("quality", "--keep", "0.95", 0.95),
    ("all_collections", "--tolerance", "0", 0.0),
    ("frontier", "--threads", "1", 1),
])
def test_a_good_flag_value_parses_as_before(
    load_script: Callable[[str], ModuleType], script: str, flag: str, value: str,
    parsed: float,
) -> None:
    args = load_script(script).build_parser().parse_args([flag, value])
    assert getattr(args, flag[2:]) == parsed


@pytest.mark.parametrize("script", ["quality", "all_collections"])
def test_a_reuse_file_that_is_not_there_is_refused_before_any_run(
    load_script: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str],
    tmp_path: Path, tiny: tuple[Path, Path], script: str,
) -> None:
    missing = tmp_path / "typo.jsonl"
    results = tmp_path / "results.jsonl"
    code = load_script(script).main([
        "--reuse", str(missing), "--results", str(results), "--docs", str(tmp_path / "docs"),
        "--datasets", str(tiny[0]), "--methods", "pca", "--seeds", "0", "--threads", "1",
    ])
    assert code == 2
    assert f"error: {missing}: no such results file (--reuse)" in capsys.readouterr().err
    assert not results.exists()


@pytest.mark.parametrize(("argv", "code"), [(["--help"], 0), (["--datasets", "scifact"], 2)])
def test_identical_ids_answers_help_and_refuses_options_without_running(
    load_script: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, argv: list[str], code: int,
) -> None:
    script = load_script("identical_ids")
    monkeypatch.setattr(script, "load_dataset", lambda name: pytest.fail(f"loaded {name}"))
    monkeypatch.setattr(sys, "argv", ["identical_ids.py", *argv])
    with pytest.raises(SystemExit) as exit_info:
        script.main()
    assert exit_info.value.code == code
    out = capsys.readouterr()
    assert ("usage: " in out.out) if code == 0 else ("unrecognized arguments" in out.err)


def test_reuse_copies_a_runs_last_record_the_one_a_report_reads(
    load_script: Callable[[str], ModuleType], tmp_path: Path,
) -> None:
    """It copied the first of a run's two records, where a report of the source reads the
    last (a rerun replaces)."""
    from dive.evaluate.protocol import GridSpec
    from dive.evaluate.records import ResultsFile, read_records, write_records
    from tests.report.conftest import byte_row

    source = tmp_path / "source.jsonl"
    first, rerun = (dict(byte_row("pca", 96, "float32", 384, v), model="all-MiniLM-L6-v2")
                    for v in (0.40, 0.45))
    write_records(source, [first, rerun])
    results = ResultsFile(tmp_path / "results.jsonl")
    spec = GridSpec(datasets=["scifact"], methods=["pca"], ratios=[4], budgets=[64], seeds=[0])
    assert load_script("quality").reuse_runs(source, spec, results) == 1
    assert [r["ndcg@10"] for r in read_records(results.path)] == [0.45]


@pytest.mark.parametrize("flag", ["--baseline-budgets", "--budgets"])
def test_all_collections_checks_both_grids_before_the_first_run(
    load_script: Callable[[str], ModuleType], tmp_path: Path, flag: str,
) -> None:
    """A bad --baseline-budgets stopped the script once the whole full grid had run (hours on
    a fresh results file)."""
    from dive.errors import DiveError

    script = load_script("all_collections")
    args = script.parse_args(["--datasets", "nowhere", "--methods", "frozen,smec", flag, "1x",
                              "--results", str(tmp_path / "r.jsonl")])
    with pytest.raises(DiveError, match=r"label budget must be a positive integer or 'all', "
                                        r"got '1x'"):
        script.run(args)
    assert not (tmp_path / "r.jsonl").exists()


@pytest.mark.parametrize(("script", "flag"), [
    (script, flag) for script in ("quality", "all_collections", "frontier")
    for flag in ("--datasets", "--methods", "--budgets", "--seeds")])
def test_an_empty_list_is_refused_not_read_as_the_default(
    load_script: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str],
    script: str, flag: str,
) -> None:
    """`quality.py --methods ""` ran every default method (the learned baselines included)
    and `all_collections.py --datasets=` every collection."""
    with pytest.raises(SystemExit) as exit_info:
        load_script(script).build_parser().parse_args([f"{flag}=,"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        f"argument {flag}: expected a comma-separated list, got ','")


@pytest.mark.parametrize("script", ["quality", "all_collections", "frontier"])
def test_a_list_flag_given_twice_takes_both_lists(
    load_script: Callable[[str], ModuleType], script: str,
) -> None:
    """As `dive evaluate` takes them (README): argparse kept the last list only."""
    args = load_script(script).build_parser().parse_args(
        ["--methods", "pca", "--methods", "dive,frozen", "--seeds", "1", "--seeds", "0"])
    assert (args.methods, args.seeds) == (["pca", "dive", "frozen"], [1, 0])


def test_all_collections_skips_a_collection_whose_pool_no_budget_is_below(
    load_script: Callable[[str], ModuleType], tmp_path: Path, tiny: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """A budget at or past one collection's labelled pool is skipped for it (the docstring);
    with no budget left the script stopped there: "grid: no budgets given", exit 2. The
    reduced grid's 'all' still runs."""
    script = load_script("all_collections")
    monkeypatch.setattr(script, "pool_size", lambda dataset, data_dir: 10)
    ran: list[object] = []
    monkeypatch.setattr(script, "run_spec", lambda spec, results: ran.append(spec.budgets))
    args = script.parse_args(["--datasets", str(tiny[0]), "--methods", "pca,frozen",
                              "--budgets", "16", "--seeds", "0", "--baselines", "frozen",
                              "--results", str(tmp_path / "r.jsonl")])
    script.run(args)
    assert ran == [[None]]
    assert capsys.readouterr().err.count("are not below its labelled pool (10); skipped") == 1


@pytest.mark.parametrize(("script", "page"), [("quality", "results.md"),
                                              ("all_collections", "collections.md"),
                                              ("frontier", "frontier.md")])
def test_a_file_of_the_users_at_the_page_is_refused_before_any_run(
    load_script: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, script: str, page: str,
) -> None:
    """It was refused only once the whole grid had run (speed.py --out was checked first)."""
    module = load_script(script)
    monkeypatch.setattr(module, "run", lambda args: pytest.fail("the grid ran"))
    mine = tmp_path / "docs" / page
    mine.parent.mkdir()
    mine.write_text("my own notes")
    code = module.main(["--results", str(tmp_path / "r.jsonl"), "--docs", str(mine.parent),
                        "--threads", "1"])
    assert code == 2
    assert f"error: {mine}: exists and is not" in capsys.readouterr().err
    assert mine.read_text() == "my own notes"


@pytest.mark.parametrize("plot", ["ndcg_vs_dim.png", "ndcg_vs_budget.png", "ndcg_vs_bytes.png"])
def test_a_file_of_the_users_at_a_plot_of_the_results_page_is_refused_before_any_run(
    load_script: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, plot: str,
) -> None:
    """quality.py checked the page before the grid, but its plots (docs/img/) only once the
    grid had run and the report was written. (all_collections.py draws no plot.)"""
    module = load_script("quality")
    monkeypatch.setattr(module, "run", lambda args: pytest.fail("the grid ran"))
    mine = tmp_path / "docs" / "img" / plot
    mine.parent.mkdir(parents=True)
    mine.write_text("my own notes")
    code = module.main(["--results", str(tmp_path / "r.jsonl"), "--docs", str(tmp_path / "docs"),
                        "--threads", "1"])
    assert code == 2
    assert f"error: {mine}: exists and is not a PNG plot" in capsys.readouterr().err
    assert mine.read_text() == "my own notes"


def test_all_collections_says_nothing_ran_when_every_budget_is_skipped(
    load_script: Callable[[str], ModuleType], tmp_path: Path, tiny: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """With every budget at or past every pool the script went on to the page and said
    "no results yet; run without --report-only first", though it was not given."""
    script = load_script("all_collections")
    monkeypatch.setattr(script, "pool_size", lambda dataset, data_dir: 10)
    monkeypatch.setattr(script, "run_spec", lambda spec, results: pytest.fail("ran"))
    code = script.main(["--datasets", str(tiny[0]), "--methods", "frozen", "--seeds", "0",
                        "--budgets", "16,64", "--results", str(tmp_path / "r.jsonl"),
                        "--docs", str(tmp_path / "docs"), "--threads", "1"])
    assert code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert errors == [f"all_collections.py: error: nothing run: every budget given (16,64) is "
                      f"at or past the labelled pool of each collection ({tiny[0]} 10); give "
                      "a smaller budget or 'all'"]


@pytest.mark.parametrize(("script", "flag", "value"), [
    *(("speed", flag, value) for flag in ("--rows", "--repeats", "--corpus-rows", "--queries",
                                          "-k", "--full-dim") for value in ("0", "-3", "x")),
    ("speed", "--distractors", "-1"),
    ("speed", "--distractors", "x"),
    *(("compress_scale", "--sizes-gb", value) for value in ("abc", "0", "-1", "1,,2", "nan")),
    *(("compress_scale", flag, "0") for flag in ("--dim", "--out-dim", "--batch-size")),
])
def test_a_bad_count_is_refused_when_parsed(
    load_script: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str],
    script: str, flag: str, value: str,
) -> None:
    """`speed.py --rows 0` divided by zero once every fit had run, `--distractors -1` stopped
    numpy, `--full-dim 0` printed an empty table (exit 0) and `compress_scale.py --sizes-gb
    abc` stopped with a traceback once the model was fitted."""
    with pytest.raises(SystemExit) as exit_info:
        load_script(script).build_parser().parse_args([f"{flag}={value}"])
    assert exit_info.value.code == 2
    assert f"argument {flag}:" in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize(("script", "argv", "dest", "parsed"), [
    ("speed", ["--distractors", "0"], "distractors", 0),
    ("speed", ["--rows", "5"], "rows", 5),
    ("compress_scale", ["--sizes-gb", "0.25,1"], "sizes_gb", [0.25, 1.0]),
    ("compress_scale", [], "sizes_gb", [0.25, 0.5, 1.0, 2.0, 4.0]),
])
def test_a_good_count_parses(
    load_script: Callable[[str], ModuleType], script: str, argv: list[str], dest: str,
    parsed: object,
) -> None:
    assert getattr(load_script(script).build_parser().parse_args(argv), dest) == parsed
