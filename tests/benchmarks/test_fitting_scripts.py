"""The scripts that fit (`large_corpus.py`, the `dev_*.py` loops): a bad argument is one line,
exit status 2, before any work; `dev_dive.py --records` appends under the file's lock."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from dive._io import locked
from dive.evaluate.records import read_records

VALID = "valid: dive, dive-plus"  # how the message listing the methods goes on


def _exit_code(script: ModuleType, name: str, argv: list[str]) -> object:
    """`script`'s exit status run as a command: argparse's own, or `script_main`'s."""
    try:
        return script.script_main(f"{name}.py", lambda: script.main(argv))
    except SystemExit as exit_info:
        return exit_info.code


def _no_work(script: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every expensive step of `script` fail the test if it is reached, and put back the
    data variables `use_shared_data` sets."""
    for env in ("DIVE_DATA", "DIVE_EMBEDDINGS"):
        monkeypatch.setenv(env, os.environ.get(env, ""))
    for name in ("with_distractors", "load_dataset", "get_embeddings", "run_one", "top_k"):
        if hasattr(script, name):
            monkeypatch.setattr(script, name, lambda *a, _n=name, **k: pytest.fail(f"{_n} ran"))


@pytest.mark.parametrize(("name", "argv", "said"), [
    ("large_corpus", ["--ratio", "0"], "argument --ratio: expected an integer >= 1, got 0"),
    ("large_corpus", ["--distractors", "-1"],
     "argument --distractors: expected an integer >= 0, got -1"),
    ("large_corpus", ["--methods", "pca,nosuch"], "--methods: unknown method 'nosuch'; " + VALID),
    ("large_corpus", ["--methods", "pca,,dive"], "argument --methods: item 2 of 'pca,,dive' is "
                                                 "empty"),
    ("large_corpus", ["--seeds", "a"], "argument --seeds: expected an integer, got 'a'"),
    ("large_corpus", ["--seeds", "0,0"], "--seeds: 0 is given twice"),
    ("large_corpus", ["--labels", "abc"],
     "argument --labels: label budget must be a positive integer or 'all', got 'abc'"),
    ("dev_dive", ["--ratios", "4", "0"], "argument --ratios: expected an integer >= 1, got 0"),
    ("dev_dive", ["--spec", "dive", "--spec", "nosuch"], "--spec: unknown method 'nosuch'; "
                                                        + VALID),
    ("dev_dive", ["--seeds", "a"], "argument --seeds: expected an integer, got 'a'"),
    ("dev_dive", ["--seeds", "0", "1", "0"], "--seeds: 0 is given twice"),
    ("dev_dive", ["--budgets", "abc"],
     "argument --budgets: label budget must be a positive integer or 'all', got 'abc'"),
    ("dev_dive", ["--threads", "0"], "argument --threads: expected an integer >= 1, got 0"),
    ("dev_starts", ["--ratios", "0"], "argument --ratios: expected an integer >= 1, got 0"),
    ("dev_starts", ["--seeds", "1", "1"], "--seeds: 1 is given twice"),
    ("dev_starts", ["--budgets", "16", "abc"],
     "argument --budgets: label budget must be a positive integer or 'all', got 'abc'"),
    ("dev_mining", ["--ratio", "0"], "argument --ratio: expected an integer >= 1, got 0"),
    ("dev_mining", ["--budget", "abc"],
     "argument --budget: label budget must be a positive integer or 'all', got 'abc'"),
    ("dev_mining", ["--steps", "0"], "argument --steps: expected an integer >= 1, got 0"),
    ("dev_mining", ["--mine-every", "5", "5"], "--mine-every: 5 is given twice"),
    ("dev_matryoshka_objective", ["--ratios", "2,0"],
     "argument --ratios: expected an integer >= 1, got 0"),
    ("dev_matryoshka_objective", ["--ratios", "2,2"], "--ratios: 2 is given twice"),
    ("dev_matryoshka_objective", ["--anchors", "0"],
     "argument --anchors: expected an integer >= 1, got 0"),
])
def test_a_bad_argument_is_one_line_before_any_work(
    load_script: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], name: str, argv: list[str], said: str,
) -> None:
    """Each was a traceback (`--ratio 0` a ZeroDivisionError, `--methods nosuch` a DiveError
    after the distractors were built), or, `--seeds 0,0`, a mean over one seed twice."""
    script = load_script(name)
    _no_work(script, monkeypatch)
    assert _exit_code(script, name, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    if said.startswith("argument "):  # argparse's usage, then its one line
        assert err[-1].endswith(f"error: {said}")
    else:
        assert len(err) == 1 and err[0].startswith(f"{name}.py: error: {said}")


@pytest.mark.parametrize("name", ["dev_dive", "dev_starts"])
def test_a_missing_dataset_after_a_good_one_is_refused_before_the_first(
    load_script: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], tiny: tuple[Path, Path], tmp_path: Path, name: str,
) -> None:
    script = load_script(name)
    _no_work(script, monkeypatch)
    missing = tmp_path / "nosuch"
    assert _exit_code(script, name, ["--datasets", str(tiny[0]), str(missing)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"{name}.py: error: {missing}: no such dataset folder")


def test_large_corpus_refuses_a_ratio_not_dividing_the_dimension_before_the_distractors(
    load_script: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], tiny: tuple[Path, Path],
) -> None:
    """`--ratio 7` was floored (d=54 of 384), where quality.py and speed.py refuse it."""
    script = load_script("large_corpus")
    monkeypatch.setattr(script, "with_distractors", lambda *a: pytest.fail("built"))
    argv = ["--data", str(tiny[0]), "--embeddings", str(tiny[1]), "--ratio", "7"]
    assert _exit_code(script, "large_corpus", argv) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "large_corpus.py: error: ratio 7 does not divide the embedding dimension 32")


@pytest.fixture()
def dev_dive_argv(tiny: tuple[Path, Path], tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """`dev_dive.py` arguments for one quick run of `truncate` on the tiny dataset."""
    root = tmp_path / "embeddings"
    (root / "synthetic").mkdir(parents=True)
    (root / "synthetic" / "tiny").symlink_to(tiny[1])
    monkeypatch.setenv("DIVE_EMBEDDINGS", str(root))
    monkeypatch.setenv("DIVE_DATA", str(tmp_path))  # `use_shared_data` leaves a set one
    return ["--datasets", str(tiny[0]), "--model", "synthetic", "--ratios", "4", "--seeds", "0",
            "--spec", "truncate", "--records", str(tmp_path / "records.jsonl")]


def test_dev_dive_records_wait_for_the_files_lock(
    load_script: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch,
    dev_dive_argv: list[str], tmp_path: Path,
) -> None:
    """`--records` appended with a plain `open("a")`, past the lock another process's rewrite
    of the file holds (its lines were lost), and left a half line when interrupted."""
    script = load_script("dev_dive")
    records = tmp_path / "records.jsonl"
    script.main(dev_dive_argv)
    fitted = threading.Event()
    run_one = script.run_one

    def run_then_say(task: Any, *args: Any) -> Any:
        done = run_one(task, *args)
        if task.method == "truncate":  # the run whose record is appended next
            fitted.set()
        return done

    monkeypatch.setattr(script, "run_one", run_then_say)
    with locked(records):  # another process appending
        rerun = threading.Thread(target=script.main, args=(dev_dive_argv,))
        rerun.start()
        assert fitted.wait(timeout=60)
        rerun.join(timeout=1)
        assert rerun.is_alive()  # waiting on the lock, its record not written
        assert len(read_records(records)) == 1
    rerun.join()
    assert [(r["spec"], r["eval"], r["method"], r["seed"]) for r in read_records(records)] == [
        ("truncate", "dev", "truncate", 0)] * 2  # a rerun's record is added, not dropped as known
