"""`benchmarks/self_retrieval.py`: a collection copied with every query in its corpus."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from dive.data.beir import load_beir
from dive.embed.store import load_embeddings
from dive.errors import DataError
from dive.evaluate.search import identical_id_rows


def test_every_query_becomes_a_document_with_its_id_and_vector(
    load_script: Callable[[str], ModuleType], tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    data, emb = tiny
    load_script("self_retrieval").build(data, emb, tmp_path / "work", "tiny-self")
    copy = load_beir(tmp_path / "work" / "beir" / "tiny-self")
    vectors = load_embeddings(tmp_path / "work" / "emb" / emb.parent.name / "tiny-self")
    original = load_embeddings(emb)
    assert len(copy.corpus_ids) == len(load_beir(data).corpus_ids) + len(original.query_ids)
    own = identical_id_rows(vectors.query_ids, vectors.corpus_ids)
    assert (own >= len(original.corpus_ids)).all()  # each query's own row is a new one
    assert np.array_equal(vectors.corpus[own], vectors.queries)
    assert np.array_equal(vectors.corpus[: len(original.corpus_ids)], original.corpus)


def test_a_collection_whose_queries_share_ids_with_documents_is_refused(
    load_script: Callable[[str], ModuleType], tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """The copy held two documents of one id (cranfield numbers both from 1): `dive
    evaluate` stopped with a duplicate id, and the script with a traceback."""
    data, emb = tiny
    query = (emb / "query_ids.txt").read_text().splitlines()[0]
    ids = (emb / "corpus_ids.txt").read_text().splitlines()
    (emb / "corpus_ids.txt").write_text("\n".join([query, *ids[1:]]) + "\n")
    with pytest.raises(DataError, match=rf"query id {query!r} is also a document id"):
        load_script("self_retrieval").build(data, emb, tmp_path / "work", "tiny-self")
