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


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_folders_dive_writes_get_the_mode_the_umask_says(
    tiny: tuple[Path, Path], tmp_path: Path, umask: None, mask: int
) -> None:
    # Each is built in a private temporary folder and renamed into place: it must not stay
    # 0700, nor be opened to everyone (0755) under a private umask.
    from dive.cli import main

    data, emb = tiny
    os.umask(mask)
    fit = ["fit", "--dataset", str(data), "--embeddings", str(emb), "--method", "pca",
           "--dim", "8", "--output", str(tmp_path / "model")]
    st = ["export", str(tmp_path / "model"), "--format", "sentence-transformers",
          "--output", str(tmp_path / "st")]
    imported = ["embed", "--dataset", str(data), "--from-npy", str(emb / "corpus.npy"),
                "--ids", str(emb / "corpus_ids.txt"), "--queries-npy", str(emb / "queries.npy"),
                "--query-ids", str(emb / "query_ids.txt"), "--output", str(tmp_path / "imported")]
    for argv in (fit, st, imported):
        assert main(argv) == 0
    for name in ("model", "st", "imported"):
        assert mode(tmp_path / name) == 0o777 & ~mask, name
