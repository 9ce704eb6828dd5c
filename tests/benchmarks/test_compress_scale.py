"""`benchmarks/compress_scale.py`: each precision's output is checked as what it is, and a
store too small to hold a vector is refused before any work."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest


def _main(script: ModuleType, monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    monkeypatch.setattr(sys, "argv", ["compress_scale.py", *argv])
    return script.script_main("compress_scale.py", script.main)


def test_binary_codes_are_checked_as_ceil_d_over_8_bytes_not_d_columns(
    load_script: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--precision binary` stopped on an AssertionError once the child had compressed the
    store: it checked (n, d) where binary codes are uint8 of (n, ceil(d/8))."""
    script = load_script("compress_scale")
    code = _main(script, monkeypatch, "--sizes-gb", "0.0005", "--dim", "32", "--out-dim", "20",
                 "--precision", "binary")
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "pca 32 -> 20 binary" in out.out
    assert " 3,906 " in out.out.splitlines()[-1]  # the store's row: 0.0005 GB of 32-d vectors


def test_a_size_below_one_vector_is_one_line_before_any_work(
    load_script: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--sizes-gb 0.0000001` reached the child with an empty store, whose failure was
    printed with every line of `/usr/bin/time -v`."""
    script = load_script("compress_scale")
    monkeypatch.setattr(script, "make_compressor", lambda *a: pytest.fail("fitted"))
    code = _main(script, monkeypatch, "--sizes-gb", "0.25,0.0000001")
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "compress_scale.py: error: --sizes-gb 1e-07: below one 384-d float32 vector "
        "(1536 bytes)")


def test_codes_of_another_shape_than_the_precision_gives_are_named(
    load_script: Callable[[str], ModuleType], tmp_path: Path,
) -> None:
    """The check the binary fix loosened still refuses d float32 columns for binary."""
    from dive.compressors.registry import make_compressor
    from dive.errors import DiveError

    script = load_script("compress_scale")
    sample = np.random.default_rng(0).standard_normal((200, 32), dtype=np.float32)
    runtime = make_compressor("pca", 20).fit(sample).fitted_runtime().with_precision(
        "binary", sample)
    out = tmp_path / "out.npy"
    np.save(out, np.zeros((5, 20), dtype=np.float32))
    with pytest.raises(DiveError, match=r"out.npy: float32 of shape \(5, 20\), expected uint8 "
                                        r"of shape \(5, 3\) \(binary codes\)"):
        script.check_codes(out, 5, runtime)
    np.save(out, np.zeros((5, 3), dtype=np.uint8))
    script.check_codes(out, 5, runtime)
