"""Standard output that cannot be written: a reader that stopped, a full disk, a closed stream.

Each case runs `python -m dive` in a subprocess: what matters is the exit status after the
interpreter's own final flush, which an in-process `main` never reaches. PYTHONUNBUFFERED is
unset, as a user has it: with it set, small outputs fail inside the verb, not at exit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FULL = Path("/dev/full")  # every write fails with ENOSPC (Linux)
NO_SPACE = "dive: error: standard output: no space left on device\n"


def env() -> dict[str, str]:
    plain = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return {**plain, "PYTHONPATH": os.pathsep.join(sys.path)}


def into_closed_pipe(*args: str) -> tuple[int, str]:
    """Exit status and stderr of `dive ARGS | true`: the reader is gone before dive writes."""
    with subprocess.Popen([sys.executable, "-m", "dive", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env()) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        err = proc.stderr.read().decode()
        return proc.wait(timeout=120), err


def into_full_disk(*args: str) -> tuple[int, str]:
    with FULL.open("w") as full:
        done = subprocess.run([sys.executable, "-m", "dive", *args], stdout=full,
                              stderr=subprocess.PIPE, env=env(), timeout=120)
    return done.returncode, done.stderr.decode()


@pytest.mark.parametrize("args", [["--version"], ["report", "--help"]])
def test_a_reader_that_stopped_before_a_short_output_is_exit_141_and_no_words(
    args: list[str],
) -> None:
    """Output small enough to sit in the buffer failed at the interpreter's exit: "Exception
    ignored ... BrokenPipeError" on stderr and exit status 120."""
    assert into_closed_pipe(*args) == (141, "")


@pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full")
@pytest.mark.parametrize("args", [["--version"], ["report", "--help"]])
def test_a_full_disk_under_a_short_output_is_one_line_naming_stdout(args: list[str]) -> None:
    assert into_full_disk(*args) == (2, NO_SPACE)


def test_a_closed_stdout_is_refused_rather_than_printing_nowhere() -> None:
    """`dive ... >&-` ran the verb with every print dropped (Python's stdout is None) and
    exited 0: `dive search`'s hits were lost without a word."""
    done = subprocess.run(["sh", "-c", f'exec "{sys.executable}" -m dive --version >&-'],
                          stderr=subprocess.PIPE, env=env(), timeout=120)
    assert (done.returncode, done.stderr.decode()) == (
        2, "dive: error: standard output is closed (send it to /dev/null to discard it)\n")
