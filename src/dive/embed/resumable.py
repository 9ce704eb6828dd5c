"""Encode a dataset into an embeddings folder chunk by chunk, resumably: what `dive embed` runs.

The texts (the corpus, then the queries) are cut into chunks of `chunk_size`. Each chunk is
encoded on its own and saved atomically as one `.npy` in a hidden work folder beside the
output, `.<name>.partial/`, next to `job.json`: the job's identity (model, a SHA-256 of the
dataset's ids and texts, batch size, chunk size, device). A rerun with the same identity skips
the chunks already saved, so an interrupted run continues after its last finished chunk; any
other identity starts over. A run holds the work folder (`dive._io.held`): a second run on the
same output stops at once rather than clearing the first one's chunks or mixing its own into
them. Chunk boundaries do not depend on where a run stopped, so the
finished folder is byte-identical to an uninterrupted run's (on the same machine, library
versions and thread count: a model may round differently elsewhere). The folder itself is
written by `save_embeddings`, atomically, once every chunk is done.

Left out: spreading chunks over processes or machines, and looking in the cache first
(`get_embeddings` does that; `dive embed` writes by default where it looks).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dive._io import (
    atomic_open,
    atomic_write_text,
    check_flag,
    clear_work_folder,
    held,
    made_folder,
    named,
    nothing_finished_unless,
    publishing,
    uninterrupted,
    user_path,
    work_folder,
)
from dive.arrays import UNIT_NORM_TOLERANCE, is_utf8, positive_integer
from dive.embed import encode
from dive.embed.store import (
    Embeddings,
    as_saved,
    check_embeddings_output,
    save_embeddings,
)
from dive.errors import DataError, DiveError, kind_of, quoted

if TYPE_CHECKING:
    from dive.data.beir import Dataset

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 4096
BATCHES_PER_UPDATE = 8  # encode batches between two moves of the progress bar
JOB_FILE = "job.json"
_CHUNK = re.compile(r"(corpus|queries)-\d{6}\.npy")  # `_Chunk.file`
JOB_FORMAT = "dive-embed-job"
JOB_VERSION = 1


@dataclass(frozen=True)
class EmbedResult:
    """What a finished `encode_to_folder` did."""

    folder: Path
    embeddings: Embeddings
    chunks: int  # chunks of texts in the whole job
    resumed_chunks: int  # chunks an earlier, interrupted run had already saved
    seconds: float  # this run only


@dataclass(frozen=True)
class _Chunk:
    kind: str  # "corpus" or "queries"
    index: int
    texts: list[str]
    ids: list[str]  # the texts' ids, to name a text the model fails on

    @property
    def file(self) -> str:
        return f"{self.kind}-{self.index:06d}.npy"


def encode_to_folder(
    dataset: Dataset,
    out: str | Path,
    *,
    model_name: str = encode.DEFAULT_MODEL,
    batch_size: int = 32,
    device: str = "cpu",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    overwrite: bool = False,
    progress: bool = True,
    model: Any = None,
    output: bool = True,
) -> EmbedResult:
    """Encode every document and query of `dataset` into the embeddings folder `out`.

    `model_name` is a sentence-transformers name or local folder (the default one comes from
    its offline package); `model`, if given, is an already loaded model used instead of
    loading one (`model_name` then only labels it). An interrupted run resumes when rerun
    with the same arguments; `overwrite` allows replacing an existing embeddings folder.
    `output=False`: `out` is not the caller's output (a cache entry), see `save_embeddings`.
    """
    started = time.perf_counter()
    for kind, one, ids, texts in (
            ("documents", "document", dataset.corpus_ids, dataset.corpus_texts),
            ("queries", "query", dataset.query_ids, dataset.query_texts)):
        if not len(ids):  # an IndexError once the chunks were assembled, its work folder left
            raise DataError(f"dataset {dataset.name}: no {kind} to embed (a BEIR folder's "
                            "loader refuses an empty file too)")
        # as load_beir and dive.embed's list refuse them (a hand-built Dataset gave the
        # tokenizer's TypeError or a UnicodeEncodeError, a traceback)
        bad = next((i for i, text in enumerate(texts)
                    if not isinstance(text, str) or not is_utf8(text)), None)
        if bad is not None:
            what = ("not valid Unicode (a lone surrogate)" if isinstance(texts[bad], str)
                    else f"{kind_of(texts[bad])}, not a str")
            raise DataError(f"dataset {dataset.name}: the text of {one} {quoted(ids[bad])} is "
                            f"{what}")
    check_flag(progress, "progress")
    batch_size = positive_integer(batch_size, "batch_size")  # plain ints: the job is JSON
    chunk_size = positive_integer(chunk_size, "chunk_size")
    # where the file system puts it ("." has no name to put its work folder beside it under;
    # `link/../x` is beside the link's folder, where every other verb writes it, not `./x`)
    target = named(user_path(out))
    check_embeddings_output(target, overwrite=overwrite)
    chunks = list(_chunks(dataset, chunk_size))
    job = {
        "format": JOB_FORMAT,
        "version": JOB_VERSION,
        "model": encode.model_label(model_name),
        "model_path": _local_path(model_name),
        "model_files": local_files(model_name),
        "texts_sha256": encode.dataset_fingerprint(dataset),
        "batch_size": batch_size,
        "chunk_size": chunk_size,
        "device": device,
    }
    work = work_folder(target)
    # made_folder: a run that fails with nothing to resume leaves no folder it made (a bad
    # model name left the cache's empty <model>/ behind)

    def saved() -> bool:
        return any((work / chunk.file).exists() for chunk in chunks)

    # a second run stops at once
    with made_folder(target.parent), held(work, target), nothing_finished_unless(saved):
        try:  # again: a run holding the folder may have published the output since the check
            check_embeddings_output(target, overwrite=overwrite)
        except DiveError:
            with contextlib.suppress(OSError):  # the folder `held` made, if it holds nothing
                work.rmdir()
            raise
        done = _start(work, job)
        resumed = sum(chunk.file in done for chunk in chunks)
        total = sum(len(chunk.texts) for chunk in chunks)
        initial = sum(len(chunk.texts) for chunk in chunks if chunk.file in done)
        from tqdm import tqdm

        todo = [chunk for chunk in chunks if chunk.file not in done]
        try:
            if todo and model is None:
                with encode.loading_bars(progress):
                    model = encode.load_model(model_name, device=device)
            if todo:
                encode.warn_truncated(model, dataset.corpus_texts, f"{dataset.name} documents",
                                      dataset.corpus_ids)
                encode.warn_truncated(model, dataset.query_texts, f"{dataset.name} queries",
                                      dataset.query_ids)
            with tqdm(total=total, initial=initial, desc=f"embed {dataset.name}", unit="text",
                      disable=not progress, dynamic_ncols=True) as bar:
                for chunk in todo:
                    # the bar moves every few batches, not once a chunk (4096 texts: minutes on
                    # a CPU); the chunk is still what is saved, and what a rerun resumes after
                    step = batch_size * BATCHES_PER_UPDATE
                    parts = []
                    for lo in range(0, len(chunk.texts), step):
                        part = chunk.texts[lo : lo + step]
                        parts.append(encode.encode_texts(model, part, batch_size=batch_size,
                                                         progress=False,
                                                         ids=chunk.ids[lo : lo + step]))
                        bar.update(len(part))
                    with atomic_open(work / chunk.file, "wb") as handle:
                        np.save(handle, np.concatenate(parts), allow_pickle=False)
        except BaseException:
            if not saved():  # nothing to resume: a bad model name, or a stop in the first
                # chunk, left the work folder holding its job alone
                shutil.rmtree(work, ignore_errors=True)
            raise
        corpus = _assemble(work, [c for c in chunks if c.kind == "corpus"], done)
        queries = _assemble(work, [c for c in chunks if c.kind == "queries"], done)
        meta = {**encode.encoding_meta(dataset, model_name, batch_size), "chunk_size": chunk_size,
                "device": device}
        if job["model_files"] is not None:  # a cache entry made with an earlier save is stale
            meta["model_files"] = job["model_files"]
        emb = Embeddings(corpus, list(dataset.corpus_ids), queries, list(dataset.query_ids), meta)
        written = save_embeddings(target, emb, overwrite=overwrite, output=output)
        # the output is in place: a Ctrl-C during the tidy-up lands after it, said as "written
        # in full" (it said "a rerun resumes", left the work folder, and the rerun refused)
        with publishing() if output else uninterrupted():
            shutil.rmtree(work, ignore_errors=True)
        # the meta a load of the folder gives (dim, n_corpus, n_queries were missing)
        return EmbedResult(target, as_saved(emb, written, target), len(chunks), resumed,
                           time.perf_counter() - started)


def _chunks(dataset: Dataset, chunk_size: int) -> Iterator[_Chunk]:
    for kind, texts, ids in (("corpus", dataset.corpus_texts, dataset.corpus_ids),
                             ("queries", dataset.query_texts, dataset.query_ids)):
        for index, lo in enumerate(range(0, len(texts), chunk_size)):
            yield _Chunk(kind, index, list(texts[lo : lo + chunk_size]),
                         list(ids[lo : lo + chunk_size]))


def _local_path(model_name: str) -> str | None:
    """The resolved folder of a model given as a local path: another folder is another model.
    Not the default model's names, which `load_model` takes from its package whatever folder
    of that name the working directory holds (one made it re-encode its cache every run)."""
    if model_name in encode.DEFAULT_ALIASES:
        return None
    path = user_path(model_name)
    return str(path.resolve()) if path.exists() else None


def local_files(model_name: str) -> list[list[Any]] | None:
    """(file, size, mtime_ns) of every file of a model given as a local folder: a model saved
    again into the same folder (a fine-tune) is another model, whose vectors must not be
    mixed with the first one's on resume (None for the default model, as in `_local_path`)."""
    path = user_path(model_name)
    if model_name in encode.DEFAULT_ALIASES or not path.is_dir():
        return None
    return [[f.relative_to(path).as_posix(), (st := f.stat()).st_size, st.st_mtime_ns]
            for f in sorted(path.rglob("*")) if f.is_file()]


def _start(work: Path, job: dict[str, Any]) -> set[str]:
    """The chunk files a previous run of `job` saved in the held folder `work`; else `work`
    cleared for this run."""
    if any(work.iterdir()):
        try:
            old = json.loads((work / JOB_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        if isinstance(old, dict) and _same_job(old, job):
            done = {p.name for p in work.iterdir() if p.suffix == ".npy" and p.name[0] != "."}
            logger.info("%s: resuming, %d chunks already encoded", work, len(done))
            return done
        clear_work_folder(work, _left_by_a_run)
        logger.warning("%s: left by a run with another dataset, model or settings; starting "
                       "over", work)
    atomic_write_text(work / JOB_FILE, json.dumps(job, sort_keys=True) + "\n")
    return set()


def _left_by_a_run(name: str) -> bool:
    """Whether `name` in a work folder is what a run writes there: its job and chunks."""
    return name == JOB_FILE or _CHUNK.fullmatch(name) is not None


def _same_job(old: dict[str, Any], job: dict[str, Any]) -> bool:
    """Whether a work folder's `old` job is `job`. An older version recorded a local model as
    given (`./m`); it is compared as `model_label` now names it (the folder's resolved path)."""
    return {**old, "model": encode.model_label(str(old.get("model")))} == job


def _assemble(work: Path, chunks: list[_Chunk], resumed: set[str]) -> np.ndarray:
    """The chunks' vectors, in order, as one array (checked against the texts they encode;
    the rows of a chunk an earlier run left, `resumed`, as ones the model writes)."""
    parts: list[np.ndarray] = []
    for chunk in chunks:
        path = work / chunk.file
        try:
            arr = np.load(path, allow_pickle=False)
            width = parts[0].shape[1] if parts else None  # the first chunk's, for the others
            problem = (None if arr.ndim == 2 and arr.shape[0] == len(chunk.texts)
                       and width in (None, arr.shape[1])
                       else f"shape {arr.shape} for {len(chunk.texts)} texts"
                            + (f" of {width}-d vectors" if width else ""))
            if problem is None and chunk.file in resumed:
                problem = _foreign_rows(arr)
        except (OSError, ValueError, EOFError) as exc:
            problem = str(exc)
        if problem is not None:
            shutil.rmtree(work, ignore_errors=True)
            raise DataError(f"{path}: encoded chunk damaged ({problem}); the work folder has "
                            "been removed, rerun to start over")
        parts.append(arr)
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _foreign_rows(arr: np.ndarray) -> str | None:
    """What shows rows the model did not write: a norm that is not finite, or neither 1 (its
    normalised vectors) nor 0 (a text it encodes to zeros, which the store names later)."""
    norms = np.linalg.norm(arr.astype(np.float64), axis=1)
    bad = ~np.isfinite(norms) | ((np.abs(norms - 1.0) > UNIT_NORM_TOLERANCE) & (norms != 0))
    if not bad.any():
        return None
    row = int(np.flatnonzero(bad)[0])
    return f"row {row} has norm {norms[row]:.6g}, where the model writes unit vectors"
