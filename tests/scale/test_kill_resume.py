"""`dive compress` killed with SIGKILL mid-run resumes to the bytes of an uninterrupted run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dive.scale import compress_store

BATCH = 500


def _cli(model_dir: Path, src: Path, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "dive.cli", "compress", str(model_dir),
        "--input", str(src), "--output", str(out),
        "--batch-size", str(BATCH), "--no-progress",
    ]  # fmt: skip


# The first run is `dive.cli.main` slowed to >= 10 ms a chunk, so that on any disk it is still
# running when the state file shows progress and the kill lands mid-way, not after the end.
THROTTLED = """
import sys, time
from dive.scale import stream
done = stream._Job.chunk_done
def slow(self, rows):
    done(self, rows)
    time.sleep(0.01)
stream._Job.chunk_done = slow
from dive.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _kill_mid_run(cmd: list[str], state: Path, total: int) -> int:
    """Start `cmd` throttled, SIGKILL it once its state shows progress; return the rows done."""
    throttled = [sys.executable, "-c", THROTTLED, *cmd[3:]]
    proc = subprocess.Popen(throttled, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    done = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                done = json.loads(state.read_text())["rows_done"]
            except (OSError, ValueError, KeyError):
                done = 0
            if done >= 5 * BATCH:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    done = json.loads(state.read_text())["rows_done"]
    assert 0 < done < total, f"the run was not caught mid-way ({done} of {total} rows)"
    return int(done)


@pytest.mark.parametrize("kind", ["npy", "parquet"])
def test_sigkill_then_rerun_gives_identical_output(
    tmp_path: Path, model_dir: Path, stores, kind: str
) -> None:
    n = 50_000  # 100 chunks: over a second throttled
    x = stores.vectors(n)
    if kind == "npy":
        src, out, ref = tmp_path / "x.npy", tmp_path / "y.npy", tmp_path / "ref.npy"
        np.save(src, x)
    else:
        src, out, ref = tmp_path / "x.parquet", tmp_path / "y.parquet", tmp_path / "ref.parquet"
        stores.write_parquet(src, x, row_group_size=7_000)

    state = tmp_path / f".{out.name}.partial" / "state.json"
    done = _kill_mid_run(_cli(model_dir, src, out), state, n)
    assert not out.exists()

    rerun = subprocess.run(_cli(model_dir, src, out), capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resumed after {done}" in rerun.stdout

    compress_store(model_dir, src, ref, batch_size=BATCH, progress=False)
    assert out.read_bytes() == ref.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([src.name, out.name, ref.name])
