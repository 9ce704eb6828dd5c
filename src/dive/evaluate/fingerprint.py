"""The identity of the data a results record was computed from: `data_fingerprint`.

A record's key (dataset name, model, method, dim, budget, seed) says what was run, not on
what: a dataset folder changed under the same name, or another `--embeddings` folder, gives
the same key. The fingerprint covers what the scores depend on:

- the dataset: its corpus ids and query ids (in file order) and every qrels split
  (query id, corpus id, grade), so changed judgements or a cut corpus change it;
- the embeddings: both arrays' shapes and every byte of their float32 rows (hashed in chunks,
  so a memory-mapped store is read once, about a second per GB) and their ids.

It is 16 hex digits of a SHA-256 over both; file names, paths, modification times and
meta.json are left out, so a copy of the same data elsewhere has the same fingerprint.
`backfill_fingerprints` adds it to the records of a results file written before it existed,
computed from the data at hand (which must be the data that produced them).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from dive._io import locked
from dive.data import Dataset, load_dataset
from dive.embed import Embeddings, get_embeddings
from dive.errors import DataError
from dive.evaluate.records import FINGERPRINT_FIELD, read_records, write_records

logger = logging.getLogger(__name__)

VERSION = "dive-data-fingerprint-1"
_CHUNK_ROWS = 65536


def _update_ids(digest: hashlib._Hash, name: str, ids: Iterable[str]) -> None:
    digest.update(f"{name}\n".encode())
    for ident in ids:
        digest.update(ident.encode("utf-8") + b"\n")


def _update_array(digest: hashlib._Hash, name: str, arr: np.ndarray) -> None:
    digest.update(f"{name} {arr.shape}\n".encode())
    for lo in range(0, arr.shape[0], _CHUNK_ROWS):
        chunk = np.ascontiguousarray(arr[lo : lo + _CHUNK_ROWS], dtype=np.float32)
        digest.update(chunk.tobytes())


def data_fingerprint(dataset: Dataset, emb: Embeddings) -> str:
    """16 hex digits identifying the dataset's ids and qrels and the embeddings' contents."""
    digest = hashlib.sha256(f"{VERSION}\n".encode())
    _update_ids(digest, "dataset corpus ids", dataset.corpus_ids)
    _update_ids(digest, "dataset query ids", dataset.query_ids)
    for split in sorted(dataset.qrels):
        judged = dataset.qrels[split]
        digest.update(f"qrels {split}\n".encode())
        for query_id in sorted(judged):
            for doc_id, grade in sorted(judged[query_id].items()):
                digest.update(f"{query_id}\t{doc_id}\t{grade}\n".encode())
    _update_ids(digest, "embeddings corpus ids", emb.corpus_ids)
    _update_ids(digest, "embeddings query ids", emb.query_ids)
    _update_array(digest, "corpus", emb.corpus)
    _update_array(digest, "queries", emb.queries)
    return digest.hexdigest()[:16]


def backfill_fingerprints(
    path: str | Path, *, data_dir: str | None = None, embeddings_dir: str | None = None
) -> int:
    """Add `data_fingerprint` to the records of `path` that lack it; return how many.

    Each (dataset, model) of those records is loaded as `dive evaluate` would (`data_dir`,
    else $DIVE_DATA...; `embeddings_dir` for a file of one dataset only, else
    $DIVE_EMBEDDINGS...). Nothing else in a record changes. Run it only on data that produced
    the records: the fingerprint vouches for them from then on.
    """
    path = Path(path)
    with locked(path):
        records = read_records(path)
        todo = sorted({(r["dataset"], r["model"]) for r in records if FINGERPRINT_FIELD not in r})
        if embeddings_dir is not None and len(todo) > 1:  # one model's stamped on another's
            raise DataError(f"{path}: records of several (dataset, model) pairs "
                            f"({', '.join(f'{n} with {m}' for n, m in todo)}), but "
                            "embeddings_dir is one of them's embeddings folder",
                            param="embeddings_dir")
        fingerprints = {}
        for name, model in todo:
            dataset = load_dataset(name, data_dir=data_dir)
            emb = get_embeddings(dataset, model, embeddings_dir=embeddings_dir, progress=False)
            fingerprints[name, model] = data_fingerprint(dataset, emb)
            logger.info("%s with %s: fingerprint %s", name, model, fingerprints[name, model])
        added = 0
        for record in records:
            if FINGERPRINT_FIELD not in record:
                record[FINGERPRINT_FIELD] = fingerprints[record["dataset"], record["model"]]
                added += 1
        if added:
            write_records(path, records)
    return added
