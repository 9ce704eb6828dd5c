"""`benchmarks/speed.py --bytes-search` on a tiny corpus: every row runs, bytes are right."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def speed(load_script: Callable[[str], ModuleType]) -> ModuleType:
    return load_script("speed")


def test_bytes_search_times_every_configuration_at_its_bytes(speed: ModuleType) -> None:
    rows = speed.bytes_search(n_rows=2000, full=64, n_queries=5, k=10, repeats=1)
    got = [(int(d), precision, int(size)) for d, precision, size, *_ in rows]
    assert got == [(64, "float32", 256), (64, "float16", 128), (64, "int8", 64),
                   (16, "float32", 64), (32, "int8", 32), (16, "int8", 16), (8, "int8", 8),
                   (64, "binary", 8), (2, "float32", 8), (32, "binary", 4), (16, "binary", 2)]
    assert rows[0][4] == "1.00×"
    assert all(float(r[3].replace(",", "")) > 0 for r in rows)


def test_the_target_line_reads_the_fastest_row_at_48_bytes(speed: ModuleType) -> None:
    rows = [["384", "float32", "1536", "10", "1.00×"], ["384", "binary", "48", "90", "9.00×"],
            ["48", "int8", "48", "50", "5.00×"]]
    assert speed.target_line(rows) == (
        "At 48 bytes per vector the fastest first stage is binary at d=384: 9.00× the queries/s "
        "of float32 at d=384 (target ≥ 6×: met).")
    assert "missed" in speed.target_line(rows[:1] + rows[2:])
    assert speed.target_line(rows[:1]) == "No configuration at 48 bytes per vector was run."


def test_the_mode_prints_its_table(speed: ModuleType, capsys: pytest.CaptureFixture[str],
                                   tmp_path: Path) -> None:
    out = tmp_path / "speed.md"
    assert speed.main(["--bytes-search", "--corpus-rows", "1500", "--queries", "3", "-k", "5",
                       "--repeats", "1", "--full-dim", "32", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| 32 | float32 | 128 |" in text and "over 1,500 synthetic unit vectors" in text
    assert out.read_text() + "\n" == text  # the file holds what was printed


def test_the_ndcg_timing_runs_on_its_random_case(speed: ModuleType) -> None:
    assert speed.ndcg_speed(repeats=1, n_queries=5, n_docs=200) > 0
