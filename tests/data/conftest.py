"""Tiny synthetic BEIR-layout folders for the `dive.data` tests."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest

CORPUS: list[dict[str, object]] = [
    {"_id": "d1", "title": "Cats", "text": "Cats purr."},
    {"_id": "d2", "title": "", "text": "Dogs bark."},
    {"_id": "d3", "text": "  No title here. "},
    {"_id": "d4", "title": "Birds", "text": "Birds sing.", "metadata": {"x": 1}},
]
QUERIES: list[dict[str, object]] = [
    {"_id": "q1", "text": "what purrs"},
    {"_id": "q2", "text": "what barks", "metadata": {}},
    {"_id": "q3", "text": "unjudged query"},
]
QRELS = {
    "train": [("q1", "d1", 1), ("q2", "d2", 2), ("q2", "d4", 0)],
    "test": [("q1", "d3", 1), ("q2", "d2", 1)],
}

MakeBeir = Callable[..., Path]  # type of the `make_beir` fixture


def _jsonl(rows: list[dict[str, object]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _tsv(rows: list[tuple[str, str, int]], newline: str) -> str:
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, d, s in rows]
    return "".join(line + newline for line in lines)


def write_beir(
    root: Path,
    *,
    corpus: str | None = None,
    queries: str | None = None,
    qrels: dict[str, str] | None = None,
    gz: bool = False,
    newline: str = "\n",
) -> Path:
    """Write a BEIR folder at `root`; text arguments replace the default files verbatim."""
    files = {
        "corpus.jsonl": _jsonl(CORPUS) if corpus is None else corpus,
        "queries.jsonl": _jsonl(QUERIES) if queries is None else queries,
    }
    splits = {k: _tsv(v, newline) for k, v in QRELS.items()} if qrels is None else qrels
    files.update({f"qrels/{split}.tsv": text for split, text in splits.items()})
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if gz:
            with gzip.open(path.with_name(path.name + ".gz"), "wt", encoding="utf-8") as fh:
                fh.write(text)
        else:
            path.write_bytes(text.encode("utf-8"))
    return root


@pytest.fixture
def make_beir(tmp_path: Path) -> MakeBeir:
    """Factory: `make_beir(name="ds", **write_beir_kwargs)` -> folder under tmp_path."""

    def make(name: str = "ds", **kwargs: object) -> Path:
        return write_beir(tmp_path / name, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def tiny_beir(make_beir: MakeBeir) -> Path:
    return make_beir()


@pytest.fixture
def default_qrels_tsv() -> dict[str, str]:
    """The default qrels as file texts, to edit one split in a test."""
    return {k: _tsv(v, "\n") for k, v in QRELS.items()}
