"""`--overwrite` means the same in every verb that writes: without it an existing output is
kept (one-line error); with it only what dive wrote there is replaced, never anything else."""

from __future__ import annotations

import fcntl
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dive._io import temporaries
from dive.cli import main

Tiny = tuple[Path, Path]


def fit_argv(tiny: Tiny, out: Path) -> list[str]:
    return ["fit", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]), "--method", "pca",
            "--dim", "8", "--output", str(out)]


def evaluate_argv(tiny: Tiny, results: Path, *extra: str) -> list[str]:
    return ["evaluate", "--datasets", str(tiny[0]), "--embeddings", str(tiny[1]),
            "--methods", "frozen,pca", "--ratios", "4", "--budgets", "all", "--seeds", "0",
            "--results", str(results), *extra]


def model(tiny: Tiny, tmp: Path) -> Path:
    assert main(fit_argv(tiny, tmp / "m")) == 0
    return tmp / "m"


def results(tiny: Tiny, tmp: Path) -> Path:
    assert main(evaluate_argv(tiny, tmp / "r.jsonl")) == 0
    return tmp / "r.jsonl"


# name -> (the command writing at tmp/"out", the optional module it needs)
VERBS: dict[str, tuple[Callable[[Tiny, Path], list[str]], str | None]] = {
    "fit": (lambda tiny, tmp: fit_argv(tiny, tmp / "out"), None),
    "export-onnx": (lambda tiny, tmp: ["export", str(model(tiny, tmp)), "--format", "onnx",
                                       "--output", str(tmp / "out")], "onnx"),
    "export-st": (lambda tiny, tmp: ["export", str(model(tiny, tmp)), "--format",
                                     "sentence-transformers", "--output", str(tmp / "out")], None),
    "index": (lambda tiny, tmp: ["index", str(model(tiny, tmp)), "--embeddings", str(tiny[1]),
                                 "--output", str(tmp / "out")], "faiss"),
    "report": (lambda tiny, tmp: ["report", "--results", str(results(tiny, tmp)),
                                  "--output", str(tmp / "out")], None),
    "evaluate-report": (lambda tiny, tmp: evaluate_argv(tiny, tmp / "e.jsonl", "--report",
                                                        str(tmp / "out")), None),
    "evaluate-plot": (lambda tiny, tmp: evaluate_argv(tiny, tmp / "e.jsonl", "--plot",
                                                      str(tmp / "out")), None),
    "embed-import": (lambda tiny, tmp: [
        "embed", "--dataset", str(tiny[0]), "--from-npy", str(tiny[1] / "corpus.npy"),
        "--ids", str(tiny[1] / "corpus_ids.txt"), "--queries-npy", str(tiny[1] / "queries.npy"),
        "--query-ids", str(tiny[1] / "query_ids.txt"), "--output", str(tmp / "out")], None),
}


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file at or under `path` (and beside it, for sidecars), by name."""
    return {str(p.relative_to(path.parent)): p.read_bytes()
            for p in sorted(path.parent.rglob("*")) if p.is_file()}


def prepared(verb: str, tiny: Tiny, tmp_path: Path) -> tuple[Path, list[str]]:
    """A fresh work folder and the verb's argv writing into it (skips a missing extra)."""
    make, needs = VERBS[verb]
    if needs:
        pytest.importorskip(needs)
    work = tmp_path / "work"
    work.mkdir()
    return work, make(tiny, work)


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("dive: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_an_existing_output_is_replaced_only_with_overwrite(
    verb: str, tiny: Tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work, argv = prepared(verb, tiny, tmp_path)
    assert main(argv) == 0
    before = snapshot(work / "out")
    capsys.readouterr()
    assert main(argv) == 2
    err = one_error_line(capsys)
    # in the CLI's words (it read "pass overwrite=True to replace it (--overwrite)")
    assert err.startswith(f"dive: error: {work / 'out'}")
    assert err.rstrip().endswith(": already exists; pass --overwrite to replace it")
    assert snapshot(work / "out") == before
    assert main([*argv, "--overwrite"]) == 0


@pytest.mark.parametrize("verb", ["fit", "export-st", "index", "export-onnx", "evaluate-plot"])
def test_overwrite_never_replaces_what_dive_did_not_write(
    verb: str, tiny: Tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work, argv = prepared(verb, tiny, tmp_path)
    if verb in ("fit", "export-st"):
        (work / "out").mkdir()
        (work / "out" / "notes.txt").write_text("mine")
    else:
        (work / "out").write_text("mine")
    before = snapshot(work / "out")
    capsys.readouterr()
    assert main([*argv, "--overwrite"]) == 2
    assert "refusing to replace it" in one_error_line(capsys)
    assert snapshot(work / "out") == before


def test_demo_twice_resumes_and_overwrite_starts_over(
    tiny: Tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    argv = ["demo", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]), "--methods",
            "frozen,pca", "--ratios", "4", "--output", str(out)]
    assert main(argv) == 0
    first = (out / "results.jsonl").read_text()
    assert main(argv) == 0  # `make demo` twice: the second run reuses the first's records
    assert (out / "results.jsonl").read_text() == first
    assert "skipped 2 run(s)" in capsys.readouterr().err
    (out / "results.jsonl").write_text(first.replace('"ndcg@10": ', '"ndcg@10": 0.0, "x": '))
    assert main([*argv, "--overwrite"]) == 0
    rerun = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rerun) == 2 and all("x" not in r for r in rerun)
    assert "skipped" not in capsys.readouterr().err


def test_a_first_demo_keeps_a_png_of_its_plot_name(
    tiny: Tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A PNG of the user's named ndcg_vs_dim.png in the output folder was replaced by a first
    run (no results there: it is no earlier demo's plot) without --overwrite."""
    out = tmp_path / "demo"
    argv = ["demo", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]), "--methods",
            "frozen,pca", "--ratios", "4", "--budgets", "all", "--no-progress",
            "--output", str(out)]
    assert main(argv) == 0
    theirs = (out / "ndcg_vs_dim.png").read_bytes()
    (out / "results.jsonl").unlink()
    capsys.readouterr()
    assert main(argv) == 2
    assert one_error_line(capsys).endswith(
        "ndcg_vs_dim.png: already exists; pass --overwrite to replace it\n")
    assert (out / "ndcg_vs_dim.png").read_bytes() == theirs
    assert sorted(p.name for p in out.iterdir()) == ["ndcg_vs_dim.png"]
    assert main([*argv, "--overwrite"]) == 0
    assert main(argv) == 0  # a rerun redraws its plot


@pytest.mark.parametrize(("name", "what"), [("results.jsonl", "a results file"),
                                             ("ndcg_vs_dim.png", "a PNG plot")])
def test_demo_never_replaces_a_file_of_another_kind_at_its_output_names(
    name: str, what: str, tiny: Tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / name).write_text("my notes")
    argv = ["demo", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]), "--methods",
            "frozen,pca", "--ratios", "4", "--output", str(out)]
    for extra in ([], ["--overwrite"]):
        assert main([*argv, *extra]) == 2
        if name == "results.jsonl" and not extra:  # appended to, not replaced: as evaluate
            # names a bad line (it said "refusing to replace it", naming no line)
            assert one_error_line(capsys).endswith("results.jsonl:1: not valid JSON (Expecting "
                                                   "value, column 1)\n")
        else:
            assert f"exists and is not {what}; refusing to replace it" in one_error_line(capsys)
        assert (out / name).read_text() == "my notes"
        assert sorted(p.name for p in out.iterdir()) == [name]


def test_demo_overwrite_keeps_the_mode_and_takes_the_lock_of_its_results(
    tiny: Tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fresh results replaced the old ones without the results lock, so a process
    appending meanwhile (read under the lock, write back) put the old records back."""
    import dive.cli.evaluate as cli

    out = tmp_path / "demo"
    argv = ["demo", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]), "--methods",
            "frozen,pca", "--ratios", "4", "--output", str(out)]
    assert main(argv) == 0
    (out / "results.jsonl").chmod(0o600)
    held: list[bool] = []
    real_publish = cli.publish

    def publish_noting_the_lock(tmp: Path, target: Path, **kwargs: Any) -> None:
        folder = os.open(target.parent, os.O_RDONLY)  # as another process would take it
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(folder)
        held.append(True)
        real_publish(tmp, target, **kwargs)

    monkeypatch.setattr(cli, "publish", publish_noting_the_lock)
    assert main([*argv, "--overwrite"]) == 0
    assert held == [True]
    assert stat.S_IMODE((out / "results.jsonl").stat().st_mode) == 0o600


def test_two_demo_overwrite_runs_at_once_each_leave_whole_results(
    tiny: Tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two `demo --overwrite` runs shared one fresh-results file, each clearing it on start:
    the one finishing first found its file gone (or replaced results with the other's)."""
    import dive.cli.evaluate as cli

    out = tmp_path / "demo"
    argv = ["demo", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]), "--methods",
            "frozen,pca", "--ratios", "4", "--output", str(out), "--overwrite"]
    real = cli._run_grid
    calls: list[Path] = []

    def grid_with_a_second_run_meanwhile(args: Any, datasets: list[str], results: Path) -> Any:
        calls.append(results)
        records = real(args, datasets, results)
        if len(calls) == 1:  # another demo --overwrite starts and finishes meanwhile
            assert main(argv) == 0
        return records

    monkeypatch.setattr(cli, "_run_grid", grid_with_a_second_run_meanwhile)
    assert main(argv) == 0
    assert len(calls) == 2 and calls[0] != calls[1]
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 2  # frozen and pca at 4x, one whole run
    assert [p.name for p in out.iterdir() if p.name.endswith(".new")] == []


@pytest.mark.parametrize("next_run", ["demo --overwrite", "demo", "evaluate", "demo, all done"])
def test_a_demo_overwrite_killed_outright_leaves_nothing_past_the_next_run(
    tiny: Tiny, tmp_path: Path, next_run: str
) -> None:
    """SIGKILL during `demo --overwrite` left its fresh results (`.results.<uuid>.jsonl.new`)
    for good: nothing ever removed them. Now they are named after a temporary the run holds,
    and the next write to the results removes a pair whose temporary is dead (unheld, a minute
    old); a live run's, young, stays. A plain `demo` or an `evaluate --results` of the file
    removed the temporary but left its fresh half, and one whose runs were all done already
    left both."""
    import time

    from dive._io import DEAD_AFTER

    out = tmp_path / "demo"
    out.mkdir()
    data = ["--embeddings", str(tiny[1]), "--methods", "frozen", "--ratios", "4"]
    if next_run == "demo, all done":
        assert main(["demo", "--dataset", str(tiny[0]), "--output", str(out), *data]) == 0
    dead = out / ".results.jsonl.0123456789abcdef.tmp"
    live = out / ".results.jsonl.fedcba9876543210.tmp"
    left = [dead, dead.with_name(dead.name + ".new"),
            out / f".{dead.name}.new.00112233445566ff.tmp"]  # an append's, inside it
    for path in [*left, live, live.with_name(live.name + ".new")]:
        path.write_text("{}")
    old = time.time() - DEAD_AFTER - 1
    for path in left:
        os.utime(path, (old, old))
    argv = (["demo", "--dataset", str(tiny[0]), "--output", str(out),
             *(["--overwrite"] if next_run == "demo --overwrite" else [])]
            if next_run.startswith("demo") else
            ["evaluate", "--datasets", str(tiny[0]), "--results", str(out / "results.jsonl")])
    assert main([*argv, *data]) == 0
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == sorted(
        [live.name, live.name + ".new"])


def test_demo_overwrite_replaces_the_results_a_link_leads_to_as_a_plain_demo_appends_there(
    tiny: Tiny, tmp_path: Path
) -> None:
    """A plain `demo` wrote through a results.jsonl that is a symbolic link; `demo
    --overwrite` replaced the link by a plain file, and the file it led to kept the old runs
    and was no longer the one demo reads."""
    out, real = tmp_path / "demo", tmp_path / "real" / "demo.jsonl"
    out.mkdir()
    data = ["--embeddings", str(tiny[1]), "--ratios", "4"]
    assert main(["evaluate", "--datasets", str(tiny[0]), *data, "--methods", "frozen",
                 "--results", str(real)]) == 0
    (out / "results.jsonl").symlink_to(real)
    argv = ["demo", "--dataset", str(tiny[0]), *data, "--output", str(out)]
    before = real.read_text()
    assert main([*argv, "--methods", "frozen,pca"]) == 0
    assert real.read_text().startswith(before) and real.read_text() != before
    assert main([*argv, "--methods", "pca", "--overwrite"]) == 0
    assert (out / "results.jsonl").is_symlink()
    assert [json.loads(line)["method"] for line in real.read_text().splitlines()] == ["pca"]


def test_demo_overwrite_keeps_the_records_a_plain_run_added_meanwhile(
    tiny: Tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    """A plain `demo` appending to the results while `demo --overwrite` ran said its record
    was saved; the replacement then dropped it without a word to either run."""
    import dive.cli.evaluate as cli

    out = tmp_path / "demo"
    argv = ["demo", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]), "--ratios", "4",
            "--output", str(out)]
    assert main([*argv, "--methods", "frozen,pca"]) == 0
    real = cli._run_grid

    def grid_with_a_plain_run_meanwhile(args: Any, datasets: list[str], results: Path) -> Any:
        monkeypatch.setattr(cli, "_run_grid", real)
        records = real(args, datasets, results)
        assert main([*argv, "--methods", "random"]) == 0  # appends to results.jsonl
        return records

    monkeypatch.setattr(cli, "_run_grid", grid_with_a_plain_run_meanwhile)
    capsys.readouterr()
    assert main([*argv, "--methods", "pca,truncate", "--overwrite"]) == 0
    assert "kept 1 record(s) another run added to" in capsys.readouterr().err
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["method"] for r in records) == ["pca", "random", "truncate"]


def test_a_fit_finishing_second_keeps_the_model_another_run_saved_meanwhile(
    tiny: Tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    # Two `dive fit` runs given one --output: the output check at the start passes for both,
    # so the one finishing second must check again, not replace the other's model.
    from dive.compressors.pca import PCA

    out = tmp_path / "out"
    real_fit = PCA.fit

    def fit_while_another_run_saves(self: PCA, *args: object, **kwargs: object) -> PCA:
        monkeypatch.setattr(PCA, "fit", real_fit)
        other = fit_argv(tiny, out)
        assert main([*other[:-4], "--dim", "4", *other[-2:]]) == 0
        return real_fit(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(PCA, "fit", fit_while_another_run_saves)
    assert main(fit_argv(tiny, out)) == 2
    assert "out: already exists" in one_error_line(capsys)
    config = json.loads((out / "config.json").read_text())
    assert config["output_dim"] == 4  # the other run's model is still there


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_an_output_another_run_writes_meanwhile_is_kept_without_overwrite(
    verb: str, tiny: Tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    # Two runs given one output: both pass the check at the start; while this one writes
    # its first temporary file, the other saves the whole output. Publishing must then
    # refuse, leaving the other's output exactly as it was.
    work, argv = prepared(verb, tiny, tmp_path)
    out = work / "out"
    real = temporaries._make_temporary
    other: dict[str, dict[str, bytes]] = {}

    def racing(tmp: Path, *, folder: bool) -> int:
        ours = tmp.parent == out or (tmp.parent == work and tmp.name.startswith(".out."))
        if ours and not other:
            other["run"] = {}  # the other run's own temporary files pass through
            assert main(argv) == 0
            other["run"] = snapshot(out)
        return real(tmp, folder=folder)

    monkeypatch.setattr(temporaries, "_make_temporary", racing)
    capsys.readouterr()
    assert main(argv) == 2
    assert other["run"], "the other run never ran"
    lines = capsys.readouterr().err.splitlines()  # evaluate's progress bars come first
    assert [line for line in lines if "error" in line] == lines[-1:], lines
    err = lines[-1]
    assert err.startswith("dive: error: ") and "Traceback" not in "".join(lines)
    assert f"{out}" in err and "already exists" in err and "--overwrite" in err
    assert snapshot(out) == other["run"]


@pytest.mark.parametrize("verb", ["fit", "export-st", "embed-import"])  # report: written into
def test_the_current_folder_as_an_output_folder_is_refused(
    verb: str, tiny: Tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--output .` was put in place by a rename and the folder it replaced removed: the shell
    was left in a deleted folder, and its next command failed with an error naming no file."""
    work, argv = prepared(verb, tiny, tmp_path)
    (work / "out").mkdir()
    monkeypatch.chdir(work / "out")
    held = os.stat(".")
    capsys.readouterr()
    assert main(argv) == 2
    assert "is the current folder" in one_error_line(capsys)
    assert os.path.samestat(os.stat(work / "out"), held) and not any((work / "out").iterdir())


def test_a_link_to_the_current_folder_is_replaced_as_a_link_not_refused(
    tiny: Tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--output ../link` from inside the folder the link leads to replaces the link, never
    the shell's folder: it was refused as "the current folder"."""
    real, link = tmp_path / "real", tmp_path / "link"
    assert main(fit_argv(tiny, real)) == 0
    link.symlink_to(real)
    monkeypatch.chdir(real)
    assert main([*fit_argv(tiny, Path("../link")), "--overwrite"]) == 0
    assert real.is_dir() and not link.is_symlink() and (link / "config.json").is_file()
