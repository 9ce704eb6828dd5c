"""Atomic writes: file modes follow the umask, replacing keeps a file's mode; the write lock."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from dive._io import atomic_write_bytes, atomic_write_text


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_new_file_gets_the_mode_the_umask_says(tmp_path: Path, umask: None, mask: int) -> None:
    os.umask(mask)
    atomic_write_text(tmp_path / "a.txt", "x")
    atomic_write_bytes(tmp_path / "b.bin", b"x")
    assert mode(tmp_path / "a.txt") == 0o666 & ~mask
    assert mode(tmp_path / "b.bin") == 0o666 & ~mask


@pytest.mark.parametrize(("old_mode", "mask"), [(0o644, 0o002), (0o664, 0o022), (0o600, 0o002)])
def test_replacing_a_file_keeps_its_mode(
    tmp_path: Path, umask: None, old_mode: int, mask: int
) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text("old\n")
    path.chmod(old_mode)
    os.umask(mask)
    atomic_write_text(path, "new\n")
    assert path.read_text() == "new\n"
    assert mode(path) == old_mode
