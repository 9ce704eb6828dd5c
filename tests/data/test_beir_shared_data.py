"""The real scifact and nfcorpus copies load with the counts their README states."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dive.data import Dataset, load_beir

# split -> (judgement rows, judged queries), from ../shared/data/beir/README.md
EXPECTED = {
    "scifact": (5183, 1109, {"test": (339, 300), "train": (919, 809)}),
    "nfcorpus": (
        3633,
        3237,
        {"test": (12334, 323), "dev": (11385, 324), "train": (110575, 2590)},
    ),
}


def _load(shared_beir: Path, name: str) -> Dataset:
    """The shared dataset `name`, loaded (the test is skipped where it is not present)."""
    folder = shared_beir / name
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    return load_beir(folder)


@pytest.mark.shared_data
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shared_beir_counts_match_readme(shared_beir: Path, name: str) -> None:
    ds = _load(shared_beir, name)
    n_docs, n_queries, splits = EXPECTED[name]
    assert (len(ds.corpus_ids), len(ds.query_ids)) == (n_docs, n_queries)
    got = {s: (sum(len(docs) for docs in q.values()), len(q)) for s, q in ds.qrels.items()}
    assert got == splits
    assert all(text and text == text.strip() for text in ds.corpus_texts)


@pytest.mark.shared_data
def test_shared_scifact_first_document_is_title_space_text(shared_beir: Path) -> None:
    ds = _load(shared_beir, "scifact")
    assert ds.corpus_ids[0] == "4983"
    assert ds.corpus_texts[0].startswith(
        "Microstructural development of human newborn cerebral white matter assessed in vivo "
        "by diffusion tensor magnetic resonance imaging. Alterations of the architecture"
    )
    assert ds.split("train")  # scifact has train and test, no dev
    assert "dev" not in ds.qrels


@pytest.mark.shared_data
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shared_ids_load_as_written(shared_beir: Path, name: str) -> None:
    # clean ids pass through the id rule (`clean_id`) unchanged
    folder = shared_beir / name
    ds = _load(shared_beir, name)
    for ids, file in ((ds.corpus_ids, "corpus.jsonl"), (ds.query_ids, "queries.jsonl")):
        with (folder / file).open(encoding="utf-8") as lines:
            assert ids == [str(json.loads(line)["_id"]) for line in lines if line.strip()]
