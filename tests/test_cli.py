"""The `dive` command line: tables on stdout, one-line errors, --debug tracebacks."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dive.cli import main
from dive.cli.parsers import build_parser
from dive.errors import DiveError


def evaluate_args(tiny: tuple[Path, Path], results: Path, *extra: str) -> list[str]:
    return [
        "evaluate",
        "--datasets",
        str(tiny[0]),
        "--embeddings",
        str(tiny[1]),
        "--methods",
        "frozen,pca",
        "--ratios",
        "2,4",
        "--budgets",
        "all",
        "--seeds",
        "0",
        "--results",
        str(results),
        *extra,
    ]


def interrupted(*args: object, **kwargs: object) -> None:
    """A stand-in for any step, stopped by Ctrl-C."""
    raise KeyboardInterrupt


def test_evaluate_prints_table_with_frozen_first_and_writes_jsonl(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "out" / "r.jsonl"
    assert main(evaluate_args(tiny, results, "--plot", str(tmp_path / "p.png"))) == 0
    out = capsys.readouterr().out
    source, *table = out.splitlines()
    assert source == f"embeddings for tiny: {tiny[1]} (the folder given; encoded with synthetic)"
    assert table[0] == "tiny | ndcg@10 | labels: all"
    assert table[1].split()[:4] == ["method", "d=32", "d=16", "d=8"]
    assert table[2].startswith("frozen") and table[3].startswith("pca")
    assert "±" in table[3]
    lines = results.read_text().splitlines()
    assert len(lines) == 3
    assert {json.loads(line)["method"] for line in lines} == {"frozen", "pca"}
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_table_and_plot_count_a_run_recorded_twice_once(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """A results file holding one run twice (two files joined by hand) weighed that seed
    double in evaluate's table and plot, while the report counts it once."""
    from dive.report import plots
    from dive.report.merge import read_results
    from dive.report.table import text_tables

    results = tmp_path / "r.jsonl"
    args = evaluate_args(tiny, results)
    args[args.index("--methods") + 1], args[args.index("--seeds") + 1] = "random", "0,1"
    assert main(args) == 0
    first = results.read_text().splitlines()[0]
    with results.open("a") as f:
        f.write(first + "\n")
    capsys.readouterr()
    drawn: list[int] = []
    monkeypatch.setattr(plots, "plot_ndcg_vs_dim",
                        lambda records, out, **_: drawn.append(len(records)) or Path(out))
    assert main([*args, "--plot", str(tmp_path / "p.png")]) == 0
    assert text_tables(read_results([results])) in capsys.readouterr().out
    assert drawn == [4]  # 2 seeds x 2 dimensions


def test_bad_input_is_one_line_on_stderr(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with (tiny[0] / "corpus.jsonl").open("a") as f:
        f.write("{broken\n")
    assert main(evaluate_args(tiny, tmp_path / "r.jsonl")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dive: error:") and "corpus.jsonl" in err and "121" in err
    assert "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "r.jsonl").exists()


def fit_pca_with(fit: Callable[..., None], tiny: tuple[Path, Path], tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> int:
    """`dive fit` of pca on `tiny` into tmp_path/m, with `fit` in place of every compressor's
    fit (which sends a signal, or raises); its exit status."""
    from dive.compressors.base import Compressor

    monkeypatch.setattr(Compressor, "fit", fit)
    return main(["fit", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]), "--method",
                 "pca", "--dim", "8", "--output", str(tmp_path / "m")])


def test_ctrl_c_says_what_a_rerun_does(tiny: tuple[Path, Path], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:

    from dive.compressors.base import Compressor
    from dive.evaluate.records import read_records

    fit = Compressor.fit

    assert fit_pca_with(interrupted, tiny, tmp_path, monkeypatch) == 130
    assert capsys.readouterr().err == "dive: interrupted; no output was written\n"
    assert not (tmp_path / "m").exists()
    # stopped before its first run was recorded: it said "finished runs are saved"
    assert main(evaluate_args(tiny, tmp_path / "r.jsonl")) == 130
    assert capsys.readouterr().err == "dive: interrupted; no output was written\n"
    assert not (tmp_path / "r.jsonl").exists()
    calls = [0]

    def interrupted_later(self: Compressor, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] > 1:
            raise KeyboardInterrupt
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(Compressor, "fit", interrupted_later)
    assert main(evaluate_args(tiny, tmp_path / "r.jsonl")) == 130
    assert capsys.readouterr().err.splitlines()[-1] == ("dive: interrupted; finished runs are "
                                                        "saved and a rerun resumes")
    assert read_records(tmp_path / "r.jsonl")


def test_ctrl_c_landing_once_a_record_is_in_the_file_says_runs_are_saved(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    """A Ctrl-C held over the rename that puts the first record in lands once it is in: the
    grid, which counted its runs as the progress bar did (after the write), said "no output
    was written" beside a results file holding that record."""
    import dive.evaluate.records
    from dive.evaluate.records import read_records

    write = dive.evaluate.records._write_lines

    def written_then_interrupted(*args: Any, **kwargs: Any) -> None:
        write(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(dive.evaluate.records, "_write_lines", written_then_interrupted)
    assert main(evaluate_args(tiny, tmp_path / "r.jsonl")) == 130
    assert capsys.readouterr().err.splitlines()[-1] == ("dive: interrupted; finished runs are "
                                                        "saved and a rerun resumes")
    assert len(read_records(tmp_path / "r.jsonl")) == 1


def test_a_first_demo_with_overwrite_stopped_before_a_run_says_nothing_was_written(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    """It said "this run's results were discarded and the earlier ones kept", with none."""
    from dive.compressors.base import Compressor

    monkeypatch.setattr(Compressor, "fit", interrupted)
    assert main(["demo", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]), "--methods",
                 "pca", "--ratios", "2", "--budgets", "all", "--output", str(tmp_path / "d"),
                 "--overwrite"]) == 130
    assert capsys.readouterr().err.splitlines()[-1] == "dive: interrupted; no output was written"
    assert not (tmp_path / "d" / "results.jsonl").exists()


@pytest.mark.parametrize("verb", ["fit", "export", "index", "report", "evaluate"])
def test_ctrl_c_after_the_output_is_in_place_says_it_was_written(
    verb: str, tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C (or SIGTERM) while a verb printed what it had just written said "no output was
    written" beside the complete output, which a rerun then refused as already there."""
    import builtins
    import importlib

    model, out = tmp_path / "m", tmp_path / "out"
    setup = {"report": [evaluate_args(tiny, tmp_path / "r.jsonl")]}
    argv = {
        "fit": ["fit", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]), "--method", "pca",
                "--dim", "8", "--output", str(out)],
        "export": ["export", str(model), "--format", "sentence-transformers", "--output",
                   str(out)],
        "index": ["index", str(model), "--embeddings", str(tiny[1]), "--output", str(out)],
        "report": ["report", "--results", str(tmp_path / "r.jsonl"), "--output", str(out)],
        "evaluate": [*evaluate_args(tiny, tmp_path / "r.jsonl"), "--report", str(out)],
    }[verb]
    if verb == "index":
        pytest.importorskip("faiss")
    assert main(["fit", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]), "--method",
                 "pca", "--dim", "8", "--output", str(model)]) == 0
    for earlier in setup.get(verb, []):
        assert main(earlier) == 0
    capsys.readouterr()

    stopped: list[bool] = []

    def printed(*args: Any, **kwargs: Any) -> None:
        if out.exists() and not stopped:  # Ctrl-C lands once the output is in place
            stopped.append(True)
            raise KeyboardInterrupt
        builtins.print(*args, **kwargs)

    module = {"index": "export"}.get(verb, verb)  # the module of dive.cli that runs the verb
    monkeypatch.setattr(importlib.import_module(f"dive.cli.{module}"), "print", printed,
                        raising=False)
    assert main(argv) == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"dive: interrupted; {out} was already written in full")  # after evaluate's bars
    assert out.exists()


def signal_at(monkeypatch: pytest.MonkeyPatch, when: Callable[[Path], bool]) -> None:
    """Ctrl-C (standing in for SIGTERM) as each rename whose target `when` picks returns."""
    import dive._io.atomic

    for owner, name in ((os, "replace"), (dive._io.atomic, "_publish_file"),
                        (dive._io.atomic, "_publish_folder"), (dive._io.atomic, "replace_path")):
        real = getattr(owner, name)

        def then_signal(src: Any, dst: Any, *rest: Any, _real: Any = real) -> Any:
            placed = _real(src, dst, *rest)
            if when(Path(dst)):
                signal.raise_signal(signal.SIGINT)
            return placed

        monkeypatch.setattr(owner, name, then_signal)


@pytest.fixture()
def outputs(tiny: tuple[Path, Path], tmp_path: Path) -> dict[str, list[str]]:
    """Each writing verb's arguments on `tiny` (a pca model at tmp_path/m, results at
    tmp_path/r.jsonl), its output at tmp_path/out or out.npy."""
    import numpy as np

    model, out = tmp_path / "m", tmp_path / "out"
    vectors = tmp_path / "x.npy"
    np.save(vectors, np.random.default_rng(0).standard_normal((50, 32)).astype(np.float32))
    shards = tmp_path / "shards"
    shards.mkdir()
    np.save(shards / "a.npy", np.load(vectors))
    fit = ["fit", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]), "--method", "pca",
           "--dim", "8", "--output"]
    assert main([*fit, str(model)]) == 0
    assert main(evaluate_args(tiny, tmp_path / "r.jsonl")) == 0
    return {
        "fit": [*fit, str(out)],
        "fit --overwrite": [*fit, str(model), "--overwrite"],
        "export": ["export", str(model), "--format", "onnx", "--output", str(out)],
        "index": ["index", str(model), "--embeddings", str(tiny[1]), "--output", str(out)],
        "compress": ["compress", str(model), "--input", str(vectors), "--output",
                     str(out.with_suffix(".npy")), "--no-progress"],
        "compress shards": ["compress", str(model), "--input", str(shards), "--output", str(out),
                            "--no-progress"],
        "report": ["report", "--results", str(tmp_path / "r.jsonl"), "--output", str(out)],
        "evaluate --plot": [*evaluate_args(tiny, tmp_path / "r.jsonl"), "--plot",
                            str(out.with_suffix(".png"))],
    }


@pytest.mark.usefixtures("default_signals")
@pytest.mark.parametrize("verb", ["fit", "fit --overwrite", "export", "index", "compress",
                                  "compress shards", "report", "evaluate --plot"])
def test_a_signal_as_the_output_is_renamed_into_place_says_it_was_written(
    verb: str, outputs: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGTERM (here Ctrl-C) as the rename put the output in place said "no output was
    written" (or that a rerun resumes) beside the complete output, which the rerun refused as
    already there; a new index lost its ids and meta, so that even --overwrite refused it."""
    if verb == "index":
        pytest.importorskip("faiss")
    if verb == "export":
        pytest.importorskip("onnx")
    argv = outputs[verb]
    written = Path(argv[argv.index("--output" if "--output" in argv else "--plot") + 1])
    capsys.readouterr()

    def is_output(target: Path) -> bool:  # the output, or a file in it (not its staging)
        return target.is_relative_to(written) and not any(
            part.startswith(".") for part in target.relative_to(written).parts)

    signal_at(monkeypatch, is_output)
    assert main(argv) == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"dive: interrupted; {written} was already written in full")
    assert written.exists()
    monkeypatch.undo()
    assert main(argv + ["--overwrite"] * ("--overwrite" not in argv)) == 0  # whole, dive's own


@pytest.mark.usefixtures("default_signals")
@pytest.mark.parametrize(("verb", "step"), [
    ("compress", "state.json"), ("compress shards", "state.json"), ("index", "out.ids.txt"),
    ("report", ".md"), ("evaluate --plot --report", ".md")])
def test_a_signal_at_a_rename_before_the_output_says_it_was_not_written(
    verb: str, step: str, outputs: dict[str, list[str]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A signal as a state, a part, a staged report file or an index's ids were put in place,
    before the output: none of those is the output, and the rerun needs no --overwrite."""
    if verb == "index":
        pytest.importorskip("faiss")
    argv = outputs[verb.replace(" --report", "")]
    if verb == "evaluate --plot --report":
        argv = [*argv[:-1], str(tmp_path / "p.png"), "--report", str(tmp_path / "rep")]
    before = sorted(p.name for p in tmp_path.iterdir())
    capsys.readouterr()
    signal_at(monkeypatch, lambda target: target.name.endswith(step))
    assert main(argv) == 130
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("dive: interrupted; ") and "written in full" not in err
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        name for name in before if not name.startswith(".")]  # no output, plot or report
    monkeypatch.undo()
    assert main(argv) == 0


@pytest.mark.usefixtures("default_signals")
def test_sigterm_while_the_arguments_are_parsed_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dive.__main__` gives SIGTERM's handler back before `main`, which took it over only
    once the parser had run: a SIGTERM in that third of a second killed dive without a word."""
    import dive.cli.run

    class Killed(Exception):  # what SIGTERM's default did, without ending the test run
        pass

    def killed(signum: int, frame: object) -> None:
        raise Killed

    def slow_parser() -> argparse.ArgumentParser:
        signal.raise_signal(signal.SIGTERM)
        return build_parser()

    signal.signal(signal.SIGTERM, killed)  # `default_signals` puts the default back after
    monkeypatch.setattr(dive.cli.run, "build_parser", slow_parser)
    assert main(["fit", "--help"]) == 128 + signal.SIGTERM
    assert capsys.readouterr().err == "dive: interrupted; no output was written\n"


@pytest.mark.parametrize("stop", [KeyboardInterrupt, DiveError("a report file is in the way")])
def test_evaluate_stopped_while_writing_its_report_leaves_no_plot_for_its_rerun_to_refuse(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    stop: BaseException
) -> None:
    """The plot was written, then the report stopped: the plot stayed, and the same command
    run again (as the interruption message says) stopped at once, the plot "already exists"."""
    import dive.report.build

    argv = evaluate_args(tiny, tmp_path / "r.jsonl", "--plot", str(tmp_path / "p.png"),
                         "--report", str(tmp_path / "rep"))
    real = dive.report.build.write_report

    def stopped(*args: object, **kwargs: object) -> None:
        raise stop

    monkeypatch.setattr(dive.report.build, "write_report", stopped)
    assert main(argv) == (130 if stop is KeyboardInterrupt else 2)
    assert not (tmp_path / "p.png").exists()
    monkeypatch.setattr(dive.report.build, "write_report", real)
    assert main(argv) == 0  # resumes: every run skipped, the plot and the report written
    assert (tmp_path / "p.png").is_file() and (tmp_path / "rep" / "report.md").is_file()


def test_evaluate_keeps_a_plot_another_run_put_in_place_of_its_own(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dive.report.build

    plot = tmp_path / "p.png"

    def stopped(*args: object, **kwargs: object) -> None:
        theirs = tmp_path / "theirs.png"
        theirs.write_bytes(plot.read_bytes())
        os.replace(theirs, plot)  # another run, with overwrite
        raise KeyboardInterrupt

    monkeypatch.setattr(dive.report.build, "write_report", stopped)
    argv = evaluate_args(tiny, tmp_path / "r.jsonl", "--plot", str(plot), "--report",
                         str(tmp_path / "rep"))
    assert main(argv) == 130
    assert plot.is_file()


def test_an_interrupted_ray_compress_says_nothing_was_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said "finished chunks are saved and a rerun resumes", as the local engine does; the
    Ray engine keeps nothing and its rerun starts over. The local engine, stopped while it
    loaded its model (before its work began), said so too, with nothing saved."""
    import dive.cli.compress
    import dive.integrations.ray

    monkeypatch.setattr(dive.integrations.ray, "compress_parquet", interrupted)
    monkeypatch.setattr(dive.cli.compress, "load_compressor", lambda args: None)
    argv = ["compress", str(tmp_path / "m"), "--input", str(tmp_path / "x.parquet"),
            "--output", str(tmp_path / "y")]
    assert main([*argv, "--engine", "ray"]) == 130
    assert capsys.readouterr().err == "dive: interrupted; no output was written\n"
    monkeypatch.setattr(dive.cli.compress, "load_compressor", interrupted)
    assert main(argv) == 130
    assert capsys.readouterr().err == "dive: interrupted; no output was written\n"


@pytest.mark.usefixtures("default_signals")
def test_an_interrupted_demo_overwrite_says_its_runs_were_discarded(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    # it said "finished runs are saved and a rerun resumes", but a run that starts over writes
    # to a file of its own, removed when interrupted: the rerun started from nothing again
    from dive.compressors.base import Compressor

    demo = ["demo", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]), "--methods",
            "pca", "--ratios", "2", "--budgets", "all", "--output", str(tmp_path / "d")]
    assert main(demo) == 0
    before = (tmp_path / "d" / "results.jsonl").read_bytes()
    capsys.readouterr()

    monkeypatch.setattr(Compressor, "fit", interrupted)
    assert main([*demo, "--overwrite"]) == 130
    assert capsys.readouterr().err == ("dive: interrupted; this run's results were discarded "
                                       "and the earlier ones kept\n")
    assert (tmp_path / "d" / "results.jsonl").read_bytes() == before

    # stopped once its results replaced the earlier ones (drawing its plot): it said the
    # earlier results were kept
    import dive.report.plots

    monkeypatch.undo()
    monkeypatch.setattr(dive.report.plots, "plot_ndcg_vs_dim", interrupted)
    assert main([*demo, "--methods", "frozen", "--overwrite"]) == 130
    results = tmp_path / "d" / "results.jsonl"
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"dive: interrupted; {results} was already written in full; a rerun without "
        "--overwrite draws its plot")
    assert '"method": "frozen"' in results.read_text() and results.read_bytes() != before

    # stopped as its results replaced the earlier ones: it said the earlier ones were kept
    monkeypatch.undo()
    signal_at(monkeypatch, lambda target: target == results)
    assert main([*demo, "--methods", "pca", "--overwrite"]) == 130
    assert capsys.readouterr().err.splitlines()[-1].startswith(
        f"dive: interrupted; {tmp_path / 'd'} was already written in full")
    assert '"method": "pca"' in results.read_text()


@pytest.mark.usefixtures("default_signals")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_a_verb_as_ctrl_c_does(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], sig: signal.Signals
) -> None:
    """They killed the process where it stood, leaving full-size temporary files behind (a
    `timeout`, a scheduler or `docker stop` sends them); now the fit's clean-up runs."""

    before = signal.getsignal(sig)

    def stopped(*args: object, **kwargs: object) -> None:
        os.kill(os.getpid(), sig)
        time.sleep(5)  # the handler interrupts this at once
        raise AssertionError("the signal did not stop the verb")

    assert fit_pca_with(stopped, tiny, tmp_path, monkeypatch) == 128 + sig
    assert capsys.readouterr().err == "dive: interrupted; no output was written\n"
    assert not (tmp_path / "m").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert signal.getsignal(sig) == before  # the process's own handler is back


@pytest.mark.usefixtures("default_signals")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_does_not_break_off_the_clean_up_of_the_first(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], sig: signal.Signals
) -> None:
    """A second SIGTERM (or Ctrl-C) during the clean-up broke it off: `dive fit` with dive
    left its training threads running at exit and aborted (exit 134, "terminate called
    without an active exception"), `dive compress` printed a traceback. Now it is ignored."""

    cleaned: list[bool] = []

    def stopped_twice(*args: object, **kwargs: object) -> None:
        try:
            os.kill(os.getpid(), sig)
            time.sleep(5)  # the handler interrupts this at once
        finally:
            os.kill(os.getpid(), sig)  # again, while the first one's clean-up runs
            time.sleep(0.2)
            cleaned.append(True)

    assert fit_pca_with(stopped_twice, tiny, tmp_path, monkeypatch) == 128 + sig
    assert cleaned == [True]
    assert capsys.readouterr().err == "dive: interrupted; no output was written\n"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back


@pytest.mark.usefixtures("default_signals")
def test_a_signal_raised_in_a_finaliser_is_sent_again(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    """A SIGTERM landing in a `__del__` (matplotlib's, a regex cache's) raised where Python
    drops the exception: the verb ran on to exit 0, writing its output, every later signal
    ignored."""

    class Garbage:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGTERM)  # its handler runs in here
            time.sleep(0.01)

    ran_on: list[bool] = []

    def finalised(*args: object, **kwargs: object) -> None:
        Garbage()
        time.sleep(2)  # the signal sent again interrupts this
        ran_on.append(True)

    assert fit_pca_with(finalised, tiny, tmp_path, monkeypatch) == 128 + signal.SIGTERM
    assert not ran_on
    assert capsys.readouterr().err.endswith("dive: interrupted; no output was written\n")


def test_a_signal_the_parent_ignores_stays_ignored(tmp_path: Path) -> None:
    """`nohup dive compress ...` was stopped by SIGHUP (a closed terminal): dive put its own
    handler in place of the ignored one."""
    script = ("import signal, os, time, sys\n"
              "from dive.cli import main\nfrom dive.cli.run import HANDLERS\n"
              "def verb(args):\n"
              "    os.kill(os.getpid(), signal.SIGHUP)\n"
              "    time.sleep(0.2)\n"
              "    print('ran to the end')\n"
              "    return 0\n"
              "HANDLERS['report'] = verb\n"
              "signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as nohup does\n"
              "sys.exit(main(['report', '--results', 'r.jsonl', '--output', 'o']))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=60, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "ran to the end\n")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_while_the_modules_load_is_one_line_too(sig: signal.Signals) -> None:
    """SIGTERM or SIGHUP in the first half second (dive.cli loading) killed the process
    without a word, where Ctrl-C there says it was interrupted."""
    script = ("import os, signal, sys, builtins\n"
              "signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not as the test run has it\n"
              "signal.signal(signal.SIGHUP, signal.SIG_DFL)\n"
              "import dive.__main__ as entry\n"
              "real = builtins.__import__\n"
              "def importing(name, *args, **kwargs):\n"
              "    if name == 'dive.cli':\n"
              f"        os.kill(os.getpid(), {int(sig)})\n"
              "    return real(name, *args, **kwargs)\n"
              "builtins.__import__ = importing\n"
              "sys.exit(entry.main())\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=60)
    assert (done.returncode, done.stderr) == (128 + sig,
                                              "dive: interrupted; no output was written\n")


def test_an_interrupted_import_says_nothing_was_kept(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    import dive.embed.imported as imported

    monkeypatch.setattr(imported, "read_npy_vectors", interrupted)
    args = ["embed", "--dataset", str(tiny[0]), "--from-npy", str(tiny[1] / "corpus.npy"),
            "--ids", "i", "--queries-npy", "q", "--query-ids", "j", "--output", str(tmp_path / "e")]
    assert main(args) == 130
    assert capsys.readouterr().err == "dive: interrupted; no output was written\n"


@pytest.mark.parametrize("step", ["build_parser", "show_embedding_sources"])
def test_ctrl_c_while_the_command_line_is_set_up_is_one_line(
    step: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the parser and the logging set-up (which loads numpy) ran before main's handler: a
    # Ctrl-C in that half second printed a traceback
    import dive.cli.run as cli

    monkeypatch.setattr(cli, step, interrupted)
    assert main(["report", "--results", "r.jsonl", "--output", "rep"]) == 130
    assert capsys.readouterr().err == "dive: interrupted; no output was written\n"


def test_ctrl_c_while_the_console_script_imports_the_cli_is_one_line() -> None:
    """The console script is `dive.__main__:main`, which covers the import of `dive.cli`."""
    import re

    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert re.findall(r'^dive = "(.*)"$', pyproject, re.M) == ["dive.__main__:main"]
    interrupt_the_import = (
        "import sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'dive.cli':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "from dive.__main__ import main\n"
        "sys.exit(main())\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", interrupt_the_import, "report"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert (done.returncode, done.stderr) == (130, "dive: interrupted; no output was written\n")


@pytest.mark.parametrize("after_the_verb", [False, True])
def test_debug_shows_the_exception(tiny: tuple[Path, Path], tmp_path: Path,
                                   after_the_verb: bool, capsys: pytest.CaptureFixture[str]
                                   ) -> None:
    """`--debug` after the verb, where every other flag goes, was 'unrecognized arguments';
    the exit status stays 2 with the traceback above the error line (it was Python's 1)."""
    with (tiny[0] / "corpus.jsonl").open("a") as f:
        f.write("{broken\n")
    args = evaluate_args(tiny, tmp_path / "r.jsonl")
    assert main([*args, "--debug"] if after_the_verb else ["--debug", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):\n")
    assert "dive.errors.DataError: " in err
    assert err.splitlines()[-1].startswith("dive: error: ")
    assert "corpus.jsonl line 121" in err.splitlines()[-1]


def test_the_global_flags_after_the_verb_keep_what_was_given_before_it() -> None:
    parse = build_parser().parse_args
    assert (parse(["-v", "demo"]).verbose, parse(["demo", "-v"]).verbose) == (True, True)
    assert (parse(["--debug", "demo"]).debug, parse(["demo"]).debug) == (True, False)


def test_every_verb_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    """Each shown option with a default states that very value in `--help`."""
    parser = build_parser()
    verbs = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for verb, sub in verbs.items():
        with pytest.raises(SystemExit):
            main([verb, "--help"])
        shown = "".join(capsys.readouterr().out.split())  # help text wraps anywhere
        options = [a for a in sub._actions if a.help != argparse.SUPPRESS
                   and a.default not in (None, argparse.SUPPRESS)]
        assert options, verb
        for action in options:
            expected = "".join(f"(default: {action.default})".split())
            assert expected in shown, f"dive {verb} --help: {action.dest} should show {expected}"


def test_rerun_says_how_many_runs_it_skipped(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "r.jsonl"
    assert main(evaluate_args(tiny, results)) == 0
    assert "skipped" not in capsys.readouterr().err
    assert main(evaluate_args(tiny, results)) == 0
    assert f"skipped 3 run(s) already in {results} for the same data" in capsys.readouterr().err


def test_runs_on_an_embeddings_folder_are_recorded_under_its_model(
    tiny: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The tiny folder's meta.json says "synthetic": without --model, that is the model of
    # the records and the saved fit, not the default all-MiniLM-L6-v2 (with a warning).
    results = tmp_path / "r.jsonl"
    assert main(evaluate_args(tiny, results)) == 0
    assert {json.loads(line)["model"] for line in results.read_text().splitlines()} == {
        "synthetic"}
    assert main(["fit", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]), "--method",
                 "pca", "--dim", "8", "--output", str(tmp_path / "m")]) == 0
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["training"]["model"] == "synthetic"
    assert "embeddings were made with" not in caplog.text


def test_a_model_given_that_the_embeddings_folder_contradicts_is_kept_with_a_warning(
    tiny: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    results = tmp_path / "r.jsonl"
    assert main(evaluate_args(tiny, results, "--model", "other-model")) == 0
    assert {json.loads(line)["model"] for line in results.read_text().splitlines()} == {
        "other-model"}
    assert "embeddings were made with synthetic, not other-model" in caplog.text


def test_runs_evaluated_under_the_default_models_hub_alias_are_one_model_with_its_runs(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--model sentence-transformers/all-MiniLM-L6-v2 (the default's hub alias) was recorded
    under that spelling: a rerun under the default's name ran every run again, and the file
    then held one model under two names (a report showed two, recommend asked to choose)."""
    results = tmp_path / "r.jsonl"
    alias = "sentence-transformers/all-MiniLM-L6-v2"
    assert main(evaluate_args(tiny, results, "--model", alias)) == 0
    assert main(evaluate_args(tiny, results, "--model", "all-MiniLM-L6-v2")) == 0
    assert f"skipped 3 run(s) already in {results}" in capsys.readouterr().err
    assert main(evaluate_args(tiny, results, "--model", alias)) == 0
    assert f"skipped 3 run(s) already in {results}" in capsys.readouterr().err
    lines = results.read_text().splitlines()
    assert len(lines) == 3
    assert {json.loads(line)["model"] for line in lines} == {"all-MiniLM-L6-v2"}


def test_a_local_model_path_is_recorded_as_given_and_kept_apart_from_another(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two local models of one folder name are two models: neither is folded into the other
    (nor into the default model, whose name the folders share)."""
    results = tmp_path / "r.jsonl"
    one, two = tmp_path / "a" / "all-MiniLM-L6-v2", tmp_path / "b" / "all-MiniLM-L6-v2"
    assert main(evaluate_args(tiny, results, "--model", str(one))) == 0
    assert main(evaluate_args(tiny, results, "--model", str(two))) == 0
    assert main(evaluate_args(tiny, results, "--model", "all-MiniLM-L6-v2")) == 0
    assert "skipped" not in capsys.readouterr().err
    models = [json.loads(line)["model"] for line in results.read_text().splitlines()]
    assert models == [str(one)] * 3 + [str(two)] * 3 + ["all-MiniLM-L6-v2"] * 3


def test_a_local_model_folder_is_one_model_under_any_spelling_from_any_folder(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    local_model: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--model ./m`, `m/` and the absolute path were recorded as typed: each rerun ran every
    run again, the file held three models, and `./m` read from another folder named another
    model."""
    folder = local_model("m")
    results = tmp_path / "r.jsonl"
    assert main(evaluate_args(tiny, results, "--model", "./m")) == 0
    assert "skipped" not in capsys.readouterr().err
    assert main(evaluate_args(tiny, results, "--model", "m/")) == 0
    assert f"skipped 3 run(s) already in {results}" in capsys.readouterr().err
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(evaluate_args(tiny, results, "--model", str(folder))) == 0
    assert f"skipped 3 run(s) already in {results}" in capsys.readouterr().err
    assert {json.loads(line)["model"] for line in results.read_text().splitlines()} == {
        str(folder)}


@pytest.mark.parametrize("with_train", [False, True])
def test_fit_says_when_it_learns_from_half_the_judged_queries(
    make_tiny: Callable[..., tuple[Path, Path]], tmp_path: Path,
    capsys: pytest.CaptureFixture[str], with_train: bool
) -> None:
    """Without train qrels the protocol keeps half the judged queries for measuring, so
    `--budget all` learns from the other half: fit says so instead of only config.json."""
    data, emb = make_tiny(with_train=with_train)
    assert main(["fit", "--dataset", str(data), "--embeddings", str(emb), "--method",
                 "dive:steps=1:select=false", "--dim", "8", "--budget", "all", "--output",
                 str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    training = json.loads((tmp_path / "m" / "config.json").read_text())["training"]
    said = (f"labels: {training['n_labels']} queries, from half of the judged test queries "
            "(no qrels/train.tsv: the other half is kept for measuring; a dataset with one has "
            "its labels used in full)\n")  # not "labels in qrels/train.tsv are used": none is
    assert (said in out) is not with_train
    assert training["label_source"] == ("train" if with_train else "test-half")


def test_fit_refuses_a_dim_that_frozen_would_ignore(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, emb = tiny
    fit = ["fit", "--dataset", str(data), "--embeddings", str(emb), "--method", "frozen"]
    assert main([*fit, "--dim", "8", "--output", str(tmp_path / "m")]) == 2
    assert capsys.readouterr().err.strip() == (
        "dive: error: frozen keeps all 32 input dimensions: give --dim 32, or a compressing "
        "method for --dim 8")
    assert not (tmp_path / "m").exists()
    assert main([*fit, "--dim", "32", "--output", str(tmp_path / "m")]) == 0


@pytest.mark.parametrize(("verb", "required"), [
    ("evaluate", ["--datasets", "d"]),
    ("fit", ["--dataset", "d", "--method", "pca", "--dim", "8", "--output", "m"]),
    ("search", ["index.faiss", "model", "--query", "q"]),
])
def test_an_unknown_flag_after_a_verb_points_to_that_verbs_help(
    verb: str, required: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([verb, *required, "--no-such-flag", "x"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == (f"dive {verb}: error: unrecognized arguments: --no-such-flag x "
                   f"(see dive {verb} --help)\n")


def test_verbose_run_lines_are_not_spliced_onto_the_progress_bar(tiny: tuple[Path, Path],
                                                                  tmp_path: Path) -> None:
    """`dive -v evaluate` wrote each run's INFO line at the end of the bar's line
    ("... ndcg@10=0.3497]INFO dive.evaluate.protocol: ..."); a real stderr is needed, which
    pytest's capture replaces, so it runs as a subprocess."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-m", "dive", "-v", "evaluate", "--datasets", str(tiny[0]),
         "--embeddings", str(tiny[1]), "--methods", "pca,truncate", "--ratios", "4",
         "--budgets", "all", "--seeds", "0", "--results", str(tmp_path / "r.jsonl")],
        capture_output=True, text=True, env=env, timeout=300, check=True)
    lines = done.stderr.replace("\r", "\n").splitlines()
    runs = [line for line in lines if "INFO dive.evaluate.protocol: tiny " in line]
    assert len(runs) == 2 and all(line.startswith("INFO") for line in runs), done.stderr


def test_a_leading_tilde_is_the_home_folder_for_every_path_flag(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shell leaves `--output=~/m` as it is: `fit` read `--embeddings ~/emb` from the
    home folder and wrote `--output ~/m` into a folder named `~` here; `index` refused its
    `--embeddings ~/emb`."""
    import shutil

    home = tmp_path / "home"
    home.mkdir()
    shutil.copytree(tiny[1], home / "emb")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--dataset", str(tiny[0]), "--embeddings", "~/emb", "--method", "pca",
                 "--dim", "8", "--output", "~/m"]) == 0
    assert (home / "m" / "config.json").is_file() and not (tmp_path / "~").exists()
    assert main(["index", "~/m", "--embeddings", "~/emb", "--output", "~/i.faiss"]) == 0
    assert (home / "i.faiss").is_file()
    # embed's id files: "~/emb/corpus_ids.txt: no such file" beside --from-npy=~/... read
    assert main(["embed", "--dataset", str(tiny[0]), "--from-npy", "~/emb/corpus.npy", "--ids",
                 "~/emb/corpus_ids.txt", "--queries-npy", "~/emb/queries.npy", "--query-ids",
                 "~/emb/query_ids.txt", "--output", "~/imported", "--no-progress"]) == 0
    assert (home / "imported" / "corpus.npy").is_file()


@pytest.mark.parametrize("flag", [[], ["--no-progress"]])
def test_evaluate_and_fit_draw_no_bars_with_no_progress(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, flag: list[str],
) -> None:
    """--no-progress, as embed and compress take it: no bar redrawn with carriage returns into
    a log, and none while encoding embeddings that are not stored yet."""
    import dive.embed
    import dive.evaluate.protocol

    asked: list[bool] = []

    def spy(*args: Any, progress: bool = True, **kwargs: Any) -> Any:
        asked.append(progress)
        return dive.embed.encode.get_embeddings(*args, progress=progress, **kwargs)

    monkeypatch.setattr(dive.evaluate.protocol, "get_embeddings", spy)
    monkeypatch.setattr(dive.embed, "get_embeddings", spy)
    assert main(evaluate_args(tiny, tmp_path / "r.jsonl", *flag)) == 0
    assert main(["fit", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]), "--method",
                 "pca", "--dim", "8", "--output", str(tmp_path / "m"), *flag]) == 0
    assert asked == [not flag, not flag]
    assert ("\r" in capsys.readouterr().err) is not flag


# When the signal comes once the verb is done: as the script goes on, or while the
# interpreter tears the modules down (a module global's __del__ sends it then).
_AFTER_MAIN = {
    "after main": "code = entry.main()\nos.kill(os.getpid(), {sig})\ntime.sleep(0.5)\n"
                  "sys.exit(code)\n",
    "in the teardown": "class Late:\n    def __del__(self):\n        os.kill(os.getpid(), {sig})\n"
                       "        time.sleep(0.5)\nlate = Late()\nsys.exit(entry.main())\n",
}


@pytest.mark.parametrize("when", sorted(_AFTER_MAIN))
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_once_the_verb_is_done_exits_with_the_verbs_status(
        sig: signal.Signals, when: str) -> None:
    """In the second the interpreter takes to shut down after a verb (torch's teardown), a
    Ctrl-C or SIGTERM killed the process without a word, exit 130/143 for a verb that had
    written its output; a handler set once the verb was done did not help in the teardown,
    since the interpreter puts the default action back before it."""
    script = ("import os, signal, sys, time\n"
              "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
              "signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
              "import dive.__main__ as entry, dive.cli\n"
              "dive.cli.main = lambda: 0\n" + _AFTER_MAIN[when].format(sig=int(sig)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")


def test_ctrl_c_while_index_overwrite_renames_says_the_index_was_written(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    ctrl_c_at_sync: Callable[[str], None],
) -> None:
    """Held until the renames end, the interruption lands with the new index in place: it
    said 'no output was written'."""
    pytest.importorskip("faiss")
    model, index = tmp_path / "m", tmp_path / "i.faiss"
    assert main(["fit", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]), "--method",
                 "pca", "--dim", "8", "--output", str(model)]) == 0
    argv = ["index", str(model), "--embeddings", str(tiny[1]), "--output", str(index)]
    assert main(argv) == 0
    ctrl_c_at_sync(".ids.txt")
    capsys.readouterr()
    assert main([*argv, "--overwrite"]) == 130
    assert capsys.readouterr().err == f"dive: interrupted; {index} was already written in full\n"


def test_an_old_option_name_is_one_warning_line_once(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was Python's two lines pointing at the console script (`bin/dive:6: FutureWarning:
    ...` and `sys.exit(main())`), printed twice by evaluate."""
    argv = evaluate_args(tiny, tmp_path / "r.jsonl", "--no-progress")
    argv[argv.index("frozen,pca")] = "search-adaptor:patience=50:steps=5"
    assert main(argv) == 0
    err = capsys.readouterr().err.splitlines()
    said = [line for line in err if "patience is now patience_steps" in line]
    assert len(said) == 1 and said[0].endswith(  # a log line (its prefix is the log format's)
        "search-adaptor: option patience is now patience_steps (the old name goes in the next "
        "release)"), err


def test_a_warning_made_once_per_seed_or_fit_is_printed_once() -> None:
    """`--seeds 0,1,2` printed a split's warning (queries judged in train and test) and a
    PCA's rank warning three times, the same line each time."""
    import logging

    from dive.cli.logs import verb_logging as _logging

    printed: list[str] = []

    class Console(logging.Handler):  # the verb's console handler, as basicConfig makes it
        def emit(self, record: logging.LogRecord) -> None:
            printed.append(record.getMessage())

    root, splits = logging.getLogger(), logging.getLogger("dive.data.splits")
    console = Console(logging.WARNING)
    root.addHandler(console)
    try:
        with _logging(verbose=False):
            for _ in range(3):
                splits.warning("time: %d queries judged in both", 79)
            splits.warning("time: %d queries judged in both", 80)
        splits.warning("time: %d queries judged in both", 79)  # the next verb says it again
    finally:
        root.removeHandler(console)
    assert printed == [f"time: {n} queries judged in both" for n in (79, 80, 79)]


def test_the_runs_bar_counts_the_first_runs_seconds(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The bar was made when the first run finished, so after a run of seconds it said
    1/N at tens of thousands of runs a second, and an ETA of none."""
    from dive.evaluate import protocol

    def slow_grid(spec: Any, results: Any, progress: Any) -> list[dict[str, Any]]:
        time.sleep(1.2)  # the first run's work
        progress(1, 2, None)
        return []

    monkeypatch.setattr(protocol, "run_grid", slow_grid)
    from dive.cli import main

    assert main(["evaluate", "--datasets", str(tiny[0]), "--embeddings", str(tiny[1]),
                 "--methods", "pca", "--ratios", "4", "--budgets", "all", "--seeds", "0,1",
                 "--results", str(tmp_path / "r.jsonl")]) == 0
    bar = [line for line in capsys.readouterr().err.replace("\r", "\n").splitlines()
           if line.startswith("runs:") and "1/2" in line][-1]
    assert "1/2 [00:01<00:01," in bar, bar


def test_evaluate_reads_a_dataset_folder_with_a_comma_in_its_name_as_one(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """`fit` and `embed` took such a folder; `evaluate` split it: "ds/my data: no such
    dataset folder"."""
    folder = tmp_path / "my data,v2"
    folder.symlink_to(tiny[0], target_is_directory=True)
    results = tmp_path / "r.jsonl"
    args = evaluate_args(tiny, results)
    args[args.index("--datasets") + 1] = str(folder)
    assert main(args) == 0
    assert {json.loads(line)["dataset"] for line in results.read_text().splitlines()} == {
        "my data,v2"}


def test_a_dataset_folder_with_blanks_at_an_end_is_read_as_typed(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--dataset ' tiny'` was stripped to `tiny`: looked up in $DIVE_DATA and the cache, and
    downloaded, or another folder of that name used without a word."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / " tiny").symlink_to(tiny[0], target_is_directory=True)
    def dataset(given: str) -> str:
        fit = ["fit", "--method", "pca", "--dim", "4", "--output", "m", "--dataset", given]
        return str(build_parser().parse_args(fit).dataset)

    assert dataset(" tiny") == " tiny"
    assert dataset(" other ") == "other"  # no such folder: a name, stripped
    results = tmp_path / "r.jsonl"
    args = evaluate_args(tiny, results)
    args[args.index("--datasets") + 1] = " tiny"
    assert main(args) == 0
    assert {json.loads(line)["dataset"] for line in results.read_text().splitlines()} == {
        " tiny"}


def test_a_dataset_named_in_a_c_locale_is_recorded_as_utf8_names_it(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """Under LC_ALL=C without UTF-8 mode Python keeps a non-ASCII folder name's bytes as lone
    surrogates: the records named the dataset so, and the same grid run in a UTF-8 locale ran
    every run again beside them (a report counted both as one dataset). Bytes that are not
    UTF-8 are kept as they are: made U+FFFD, two names were recorded as one."""
    import shutil

    shutil.copytree(tiny[0], tmp_path / "ünï")
    as_c_locale = str(tmp_path / "ünï".encode().decode("ascii", "surrogateescape"))
    grid = ["evaluate", "--embeddings", str(tiny[1]), "--methods", "pca", "--ratios", "4",
            "--budgets", "all", "--seeds", "0", "--results", str(tmp_path / "r.jsonl"),
            "--no-progress"]
    assert main([*grid, "--datasets", as_c_locale]) == 0
    assert main([*grid, "--datasets", str(tmp_path / "ünï")]) == 0  # skipped as done
    # names whose bytes are not UTF-8 (Latin-1's é and è) stay apart, as their bytes are
    for byte in ("\udce9", "\udce8"):
        shutil.copytree(tiny[0], tmp_path / f"caf{byte}")
        assert main([*grid, "--datasets", str(tmp_path / f"caf{byte}")]) == 0
    records = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [r["dataset"] for r in records] == ["ünï", "caf\udce9", "caf\udce8"]


def test_fit_builds_the_compressor_with_the_seed_given(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dive fit --seed 3` builds (so fits) the compressor with seed 3."""
    import dive.compressors.registry as registry

    seeds: list[int] = []
    real = registry.make_compressor

    def spy(spec: str, dim: int | None, seed: int = 0) -> Any:
        seeds.append(seed)
        return real(spec, dim, seed)

    monkeypatch.setattr(registry, "make_compressor", spy)
    assert main(["fit", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]), "--method",
                 "pca", "--dim", "8", "--seed", "3", "--output", str(tmp_path / "m")]) == 0
    assert seeds == [3]


def test_fit_refuses_an_existing_output_before_it_fits(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without --overwrite an existing output is refused before the fit runs, not after it."""
    fits: list[object] = []
    assert main(["fit", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]), "--method",
                 "pca", "--dim", "8", "--output", str(tmp_path / "m")]) == 0
    capsys.readouterr()
    assert fit_pca_with(lambda *args, **kwargs: fits.append(args), tiny, tmp_path,
                        monkeypatch) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert fits == []


def test_a_name_that_is_not_utf8_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A library refusing a path or name that is not valid UTF-8 is a one-line error, exit 2."""
    import dive.cli.run

    def refused(args: argparse.Namespace) -> int:
        raise UnicodeEncodeError("utf-8", "caf\udce9", 3, 4, "surrogates not allowed")

    monkeypatch.setitem(dive.cli.run.HANDLERS, "demo", refused)
    assert main(["demo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dive: error: ") and "is not valid UTF-8" in err and err.count("\n") == 1


@pytest.mark.parametrize(("argv", "dest", "default"), [
    (["report", "--results", "r", "--output", "o"], "keep", 0.99),
    (["evaluate", "--datasets", "d"], "ratios", [2, 4, 8, 16]),
    (["search", "i.faiss", "m", "--query", "q"], "k", 10),
])
def test_documented_defaults_of_report_evaluate_and_search(
    argv: list[str], dest: str, default: object
) -> None:
    """`report --keep` 0.99, `evaluate --ratios` 2 4 8 16 and `search -k` 10, as the docs
    give them (--help shows each parser default: `test_every_verb_help_shows_defaults`)."""
    assert getattr(build_parser().parse_args(argv), dest) == default
