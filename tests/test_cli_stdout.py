"""Standard output that cannot be written: a reader that stopped, a full disk, a closed stream.

Each case runs `python -m dive` in a subprocess: what matters is the exit status after the
interpreter's own final flush, which an in-process `main` never reaches. PYTHONUNBUFFERED is
unset, as most users have it: with it set, small outputs fail inside the verb, not at exit
(the `unbuffered` cases, as Docker images and CI often set it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FULL = Path("/dev/full")  # every write fails with ENOSPC (Linux)
NO_SPACE = "dive: error: standard output: no space left on device\n"


def env(unbuffered: bool = False) -> dict[str, str]:
    plain = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return {**plain, "PYTHONPATH": os.pathsep.join(sys.path),
            **({"PYTHONUNBUFFERED": "1"} if unbuffered else {})}


def into_closed_pipe(*args: str, unbuffered: bool = False) -> tuple[int, str]:
    """Exit status and stderr of `dive ARGS | true`: the reader is gone before dive writes."""
    with subprocess.Popen([sys.executable, "-m", "dive", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env(unbuffered)) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        err = proc.stderr.read().decode()
        return proc.wait(timeout=120), err


def into_full_disk(*args: str, unbuffered: bool = False) -> tuple[int, str]:
    with FULL.open("w") as full:
        done = subprocess.run([sys.executable, "-m", "dive", *args], stdout=full,
                              stderr=subprocess.PIPE, env=env(unbuffered), timeout=120)
    return done.returncode, done.stderr.decode()


@pytest.mark.parametrize("unbuffered", [False, True])
@pytest.mark.parametrize("args", [["--version"], ["report", "--help"]])
def test_a_reader_that_stopped_before_a_short_output_is_exit_141_and_no_words(
    args: list[str], unbuffered: bool
) -> None:
    """Output small enough to sit in the buffer failed at the interpreter's exit: "Exception
    ignored ... BrokenPipeError" on stderr and exit status 120. Unbuffered, the write fails in
    argparse, which dropped the error: exit 0."""
    assert into_closed_pipe(*args, unbuffered=unbuffered) == (141, "")


@pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full")
@pytest.mark.parametrize("unbuffered", [False, True])
@pytest.mark.parametrize("args", [["--version"], ["report", "--help"]])
def test_a_full_disk_under_a_short_output_is_one_line_naming_stdout(
    args: list[str], unbuffered: bool
) -> None:
    assert into_full_disk(*args, unbuffered=unbuffered) == (2, NO_SPACE)


@pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full")
def test_a_summary_lost_to_a_full_disk_names_the_output_written_before(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """The report was in place when its summary failed: "no space left on device" and exit 2
    alone sent a script to rerun, where the rerun was refused as "already exists"."""
    from dive.cli import main

    results, report = tmp_path / "r.jsonl", tmp_path / "rep"
    assert main(["evaluate", "--datasets", str(tiny[0]), "--embeddings", str(tiny[1]),
                 "--methods", "pca", "--ratios", "4", "--budgets", "all", "--seeds", "0",
                 "--results", str(results), "--no-progress"]) == 0
    assert into_full_disk("report", "--results", str(results), "--output", str(report)) == (
        2, f"{NO_SPACE[:-1]} ({report} was written in full: only what this verb printed is "
           "lost)\n")
    assert (report / "report.md").is_file()


def closed_stdout(*args: str) -> tuple[int, str]:
    """Exit status and stderr of `dive ARGS >&-`."""
    command = " ".join(f"'{arg}'" for arg in (sys.executable, "-m", "dive", *args))
    done = subprocess.run(["sh", "-c", f"exec {command} >&-"], stderr=subprocess.PIPE,
                          env=env(), timeout=120)
    return done.returncode, done.stderr.decode()


def test_a_closed_stdout_is_refused_by_a_verb_whose_result_is_printed() -> None:
    """`dive search ... >&-` ran with every print dropped (Python's stdout is None) and exited
    0: the hits were lost without a word."""
    assert closed_stdout("recommend", "--results", "r.jsonl", "--dataset", "d") == (
        2, "dive: error: standard output is closed, where recommend prints its result (send it "
           "to /dev/null to discard it)\n")
    # report writes its files, but the gains it was asked for are printed only
    assert closed_stdout("report", "--results", "r.jsonl", "--output", "rep", "--gains") == (
        2, "dive: error: standard output is closed, where report --gains prints its result "
           "(send it to /dev/null to discard it)\n")


def test_a_verb_that_writes_files_runs_with_stdout_closed(tiny: tuple[Path, Path],
                                                          tmp_path: Path) -> None:
    """Its printed summary goes nowhere, as Python drops it; the model is saved."""
    status, err = closed_stdout("fit", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]),
                                "--method", "pca", "--dim", "8", "--output", str(tmp_path / "m"))
    assert (status, err) == (0, "")
    assert (tmp_path / "m" / "config.json").is_file()


def test_a_reader_that_stops_early_gets_the_files_all_the_same(tiny: tuple[Path, Path],
                                                              tmp_path: Path) -> None:
    """`dive evaluate ... --plot --report | head -1`: the table (past the 8 KB buffer) was
    printed first, the broken pipe ended the verb there, and the plot and report it was asked
    for were never written (exit 141). demo left its old plot beside new results."""
    grid = ["--embeddings", str(tiny[1]), "--methods", "frozen,pca,pca-uncentered,truncate,"
            "random", "--ratios", "2,4,8,16", "--precisions", "float32,float16,int8,binary",
            "--rescore-factors", "0,2,4", "--budgets", "4,all"]  # a 14 KB table
    runs = [["evaluate", "--datasets", str(tiny[0]), *grid, "--seeds", "0",
             "--results", str(tmp_path / "r.jsonl"), "--plot", str(tmp_path / "p.png"),
             "--report", str(tmp_path / "rep")],
            ["demo", "--dataset", str(tiny[0]), *grid, "--output", str(tmp_path / "d")]]
    for run in runs:  # `| head -1`: the first line read, then the pipe closed
        with subprocess.Popen([sys.executable, "-m", "dive", *run], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, env=env()) as proc:
            assert proc.stdout is not None
            proc.stdout.readline()
            proc.stdout.close()
            assert proc.wait(timeout=300) == 141
    assert (tmp_path / "p.png").is_file() and (tmp_path / "rep" / "report.md").is_file()
    assert (tmp_path / "d" / "ndcg_vs_dim.png").is_file()


def test_a_closed_stderr_leaves_the_verb_to_run(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """`2>&-`: Python's stderr is None, and the progress bar written to it ended `evaluate`
    (and `compress`) with exit 1, without a word anywhere."""
    command = " ".join(f"'{arg}'" for arg in (
        sys.executable, "-m", "dive", "evaluate", "--datasets", str(tiny[0]), "--embeddings",
        str(tiny[1]), "--methods", "pca", "--ratios", "4", "--budgets", "all", "--seeds", "0",
        "--results", str(tmp_path / "r.jsonl")))
    done = subprocess.run(["sh", "-c", f"exec {command} 2>&-"], stdout=subprocess.PIPE,
                          env=env(), timeout=120)
    assert done.returncode == 0
    assert b"pca" in done.stdout and (tmp_path / "r.jsonl").is_file()


@pytest.mark.parametrize("stderr", ["gone", "full"])
def test_a_stderr_that_cannot_be_written_leaves_the_verb_to_run(
    tiny: tuple[Path, Path], tmp_path: Path, stderr: str
) -> None:
    """`2>&1 | head -1` (the reader gone before the first progress line) and `2>/dev/full`:
    that line's failed write abandoned the grid after its first run, and the error line about
    it failed again (exit 1), where a closed stderr leaves the verb to run."""
    if stderr == "full" and not FULL.exists():
        pytest.skip("needs /dev/full")
    args = [sys.executable, "-m", "dive", "evaluate", "--datasets", str(tiny[0]),
            "--embeddings", str(tiny[1]), "--methods", "pca,truncate,random", "--ratios",
            "2,4", "--budgets", "all", "--seeds", "0,1", "--results", str(tmp_path / "r.jsonl")]
    if stderr == "full":
        with FULL.open("w") as full:
            status = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=full, env=env(),
                                    timeout=300).returncode
    else:
        with subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env=env()) as proc:
            assert proc.stderr is not None
            proc.stderr.close()
            status = proc.wait(timeout=300)
    assert status == 0
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 12  # 3 x 2 ratios x 2 seeds


def test_a_closed_stderr_stays_dev_null_after_the_verb(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given back as None after a verb, a later `print(file=sys.stderr)` in the same process
    wrote to stdout (print's None is stdout)."""
    from dive.cli.stdout import unfailing_stderr

    monkeypatch.setattr(sys, "stderr", None)
    with unfailing_stderr():
        print("during", file=sys.stderr)
    assert sys.stderr is not None and sys.stderr.name == os.devnull


def test_every_undecodable_byte_of_a_name_is_written_as_that_byte() -> None:
    """0x80 to 0xFF, each kept by Python as a lone surrogate, are written as themselves (0x80,
    the first, came out as `\\udc80`); any other character the encoding cannot write is
    escaped."""
    from dive.cli.stdout import ESCAPE

    name = os.fsdecode(bytes(range(0x80, 0x100)))
    assert name.encode("ascii", ESCAPE) == bytes(range(0x80, 0x100))
    assert "m\xe9\u00b1".encode("ascii", ESCAPE) == b"m\\xe9\\xb1"


# LC_ALL=C without UTF-8 mode: an ASCII stdout whose errors are "surrogateescape"
C_LOCALE = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}


def in_locale(stdout_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    """`dive ARGS` with stdout's encoding set by `stdout_env` alone."""
    plain = {k: v for k, v in env().items() if k not in ("PYTHONIOENCODING", "PYTHONUTF8")}
    return subprocess.run([sys.executable, "-m", "dive", *args], capture_output=True,
                          env={**plain, **stdout_env}, timeout=120)


@pytest.mark.parametrize("ascii_env", [{"PYTHONIOENCODING": "ascii"}, C_LOCALE])
def test_a_stdout_that_cannot_encode_a_character_escapes_it(
    ascii_env: dict[str, str], tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """An ASCII stdout (`LC_ALL=C` without UTF-8 mode, or PYTHONIOENCODING=ascii, errors
    "strict") made the table's ± a UnicodeEncodeError traceback, before the report was
    written."""
    done = in_locale(ascii_env, "evaluate", "--datasets", str(tiny[0]), "--embeddings",
                     str(tiny[1]), "--methods", "frozen,pca", "--ratios", "4", "--budgets",
                     "all", "--seeds", "0", "--results", str(tmp_path / "r.jsonl"), "--report",
                     str(tmp_path / "report"))
    assert done.returncode == 0, done.stderr.decode()
    assert b"\\xb1" in done.stdout and (tmp_path / "report" / "report.md").is_file()


@pytest.mark.parametrize("stdout_env", [{"PYTHONIOENCODING": "utf-8"}, C_LOCALE])
def test_a_printed_path_with_a_byte_of_no_encoding_is_that_path(
    stdout_env: dict[str, str], tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """A UTF-8 stdout could not write the byte 0xE9 of a file name (a lone surrogate to
    Python): the model was saved, then `saved: ...` was a traceback and exit status 1."""
    output = tmp_path / os.fsdecode(b"m\xe9")
    done = in_locale(stdout_env, "fit", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]),
                     "--method", "pca", "--dim", "8", "--output", str(output))
    assert done.returncode == 0, done.stderr.decode()
    assert os.fsencode(output) in done.stdout  # the path's own bytes: one a shell can reuse
    assert (output / "config.json").is_file()
