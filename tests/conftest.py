"""Shared fixtures: a tiny synthetic BEIR dataset with a matching embeddings folder.

The embeddings have planted structure (each query sits near its relevant documents in a
low-dimensional subspace) so compressors and the protocol produce meaningful, non-constant
scores in milliseconds. Also locates the real shared data, skipping with a reason without it,
and makes local model folders (`local_model`) for the tests of how a model is named.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir(kind: str) -> Path | None:
    """../shared/data/<kind> (or $DIVE_DATA / $DIVE_EMBEDDINGS), if it holds scifact."""
    env, probe = {
        "beir": ("DIVE_DATA", "scifact"),
        "embeddings": ("DIVE_EMBEDDINGS", "all-MiniLM-L6-v2/scifact"),
    }[kind]
    for candidate in (os.environ.get(env), REPO.parent / "shared" / "data" / kind):
        if candidate and Path(candidate, probe).is_dir():
            return Path(candidate)
    return None


STOPPING = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL,
            signal.SIGHUP: signal.SIG_DFL}


T = TypeVar("T")


def traced_peak(call: Callable[[], T]) -> tuple[T, int]:
    """`call()`'s result and the peak bytes Python and numpy allocated while it ran."""
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@contextlib.contextmanager
def file_size_limit(nbytes: int) -> Iterator[None]:
    """Writes past `nbytes` in a file fail with EFBIG ("File too large") while in the block, as
    under `ulimit -f`: a real failed write, in any library's own code (Python ignores the
    SIGXFSZ that would otherwise kill the process). The soft limit is put back after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def compress_stopped_while_checked(argv: list[str], module: object, check: str,
                                   saved: bool) -> int:
    """`dive compress argv` stopped by Ctrl-C at `module.check` (while its input is checked),
    after a first run stopped once its first chunk was saved when `saved`; its exit status."""
    from dive.cli import main
    from dive.scale import resume

    save = resume.Partial.save

    def stop_after_a_chunk(self: resume.Partial, state: dict[str, object]) -> None:
        save(self, state)
        if state["rows_done"]:
            raise KeyboardInterrupt

    def stopped(*args: object) -> None:
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patched:
        if saved:
            patched.setattr(resume.Partial, "save", stop_after_a_chunk)
            assert main(argv) == 130
            patched.undo()
        patched.setattr(module, check, stopped)
        return main(argv)


def no_embeddings_built_after_saving(monkeypatch: pytest.MonkeyPatch, module: object) -> None:
    """Make `module.save_embeddings` save, then refuse any `Embeddings` built after it (a
    pass over every id once the folder is in place, where an interruption was said to have
    left nothing written)."""
    from dive.embed.store import Embeddings

    save = module.save_embeddings  # type: ignore[attr-defined]

    def save_then_refuse_a_pass(*args: object, **kwargs: object) -> object:
        written = save(*args, **kwargs)

        def refused(self: Embeddings) -> None:
            raise AssertionError("an Embeddings built after the folder was in place")

        monkeypatch.setattr(Embeddings, "__post_init__", refused)
        return written

    monkeypatch.setattr(module, "save_embeddings", save_then_refuse_a_pass)


@pytest.fixture()
def default_signals() -> Iterator[None]:
    """Ctrl-C (SIGINT) as Python installs it, raising KeyboardInterrupt, and SIGTERM and
    SIGHUP at their defaults, for tests that send them: a test run started as a background
    job (`cmd &`, nohup) inherits SIGINT (and SIGHUP) ignored, which dive rightly leaves
    ignored."""
    previous = {sig: signal.signal(sig, handler) for sig, handler in STOPPING.items()}
    yield
    for sig, handler in previous.items():
        signal.signal(sig, handler)


@pytest.fixture()
def ctrl_c_at_sync(monkeypatch: pytest.MonkeyPatch, default_signals: None
                   ) -> Callable[[str], None]:
    """`ctrl_c_at_sync(".ids.txt")`: from then on, Ctrl-C as a file whose path holds that text
    is synced, i.e. just before its rename (`dive._io.atomic_open`)."""

    def arm(marker: str) -> None:
        sync = os.fsync

        def interrupted_sync(fd: int) -> None:
            sync(fd)
            if marker in os.readlink(f"/proc/self/fd/{fd}"):
                signal.raise_signal(signal.SIGINT)

        monkeypatch.setattr(os, "fsync", interrupted_sync)

    return arm


@pytest.fixture(scope="session")
def shared_beir() -> Path:
    path = shared_dir("beir")
    if path is None:
        pytest.skip("real BEIR copies not found (../shared/data/beir or $DIVE_DATA)")
    return path


@pytest.fixture(scope="session")
def shared_embeddings() -> Path:
    path = shared_dir("embeddings")
    if path is None:
        pytest.skip("shared embeddings not found (../shared/data/embeddings or $DIVE_EMBEDDINGS)")
    return path


def write_tiny_beir(
    root: Path,
    *,
    n_docs: int = 120,
    n_queries: int = 60,
    dim: int = 32,
    seed: int = 0,
    with_train: bool = True,
) -> tuple[Path, Path]:
    """Write `root/tiny` (BEIR layout) and `root/emb` (embeddings folder); return both."""
    rng = np.random.default_rng(seed)
    data, emb = root / "tiny", root / "emb"
    (data / "qrels").mkdir(parents=True)
    emb.mkdir()
    topics = rng.standard_normal((12, dim))
    doc_topic = rng.integers(0, len(topics), n_docs)
    docs = topics[doc_topic] + 0.9 * rng.standard_normal((n_docs, dim))
    query_docs = rng.integers(0, n_docs, n_queries)
    queries = docs[query_docs] + 0.9 * rng.standard_normal((n_queries, dim))
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    doc_ids = [f"d{i}" for i in range(n_docs)]
    query_ids = [f"q{i}" for i in range(n_queries)]
    with (data / "corpus.jsonl").open("w") as f:
        for i, d in enumerate(doc_ids):
            f.write(json.dumps({"_id": d, "title": f"title {i}", "text": f"text {i}"}) + "\n")
    with (data / "queries.jsonl").open("w") as f:
        for i, q in enumerate(query_ids):
            f.write(json.dumps({"_id": q, "text": f"query {i}"}) + "\n")
    n_train = n_queries * 2 // 3 if with_train else 0
    splits = {"test": range(n_train, n_queries)}
    if with_train:
        splits["train"] = range(n_train)
    for split, rows in splits.items():
        with (data / "qrels" / f"{split}.tsv").open("w") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for i in rows:
                f.write(f"q{i}\td{query_docs[i]}\t1\n")
                same = np.flatnonzero(doc_topic == doc_topic[query_docs[i]])[:2]
                for j in same:
                    if j != query_docs[i]:
                        f.write(f"q{i}\td{j}\t{int(rng.integers(1, 3))}\n")
    np.save(emb / "corpus.npy", docs.astype(np.float32))
    np.save(emb / "queries.npy", queries.astype(np.float32))
    (emb / "corpus_ids.txt").write_text("\n".join(doc_ids) + "\n")
    (emb / "query_ids.txt").write_text("\n".join(query_ids) + "\n")
    meta = {
        "model": "synthetic",
        "dim": dim,
        "normalized": True,
        "dtype": "float32",
        "doc_text": "title + ' ' + text",
        "n_corpus": n_docs,
        "n_queries": n_queries,
    }
    (emb / "meta.json").write_text(json.dumps(meta))
    return data, emb


@pytest.fixture()
def scaled_off_unit_norm(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A copy of an embeddings folder, at tmp_path/scaled, with every row scaled by its own
    factor in [0.2, 5) and meta.json `normalized: false`, as `dive embed` imports an API's
    vectors."""

    def scale(emb: Path) -> Path:
        import shutil

        dest = Path(shutil.copytree(emb, tmp_path / "scaled"))
        for name in ("corpus.npy", "queries.npy"):
            x = np.load(dest / name)
            norms = np.random.default_rng(len(x)).uniform(0.2, 5, (len(x), 1))
            np.save(dest / name, (x * norms).astype(np.float32))
        meta = json.loads((dest / "meta.json").read_text())
        (dest / "meta.json").write_text(json.dumps({**meta, "normalized": False}))
        return dest

    return scale


@pytest.fixture()
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny BEIR folder and its embeddings folder (32-d)."""
    return write_tiny_beir(tmp_path)


@pytest.fixture()
def make_tiny(tmp_path: Path):  # type: ignore[no-untyped-def]
    """`write_tiny_beir` with options, into a fresh tmp_path."""
    return lambda **options: write_tiny_beir(tmp_path, **options)


@pytest.fixture()
def local_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """Run the test in tmp_path; `local_model("a/m")` makes the folder a/m there a local model
    folder (a config.json: what sentence-transformers loads a folder by, and
    `dive.embed.encode.model_label` tells one by; nothing loads it) and returns its resolved
    absolute path, the name it is recorded under."""
    monkeypatch.chdir(tmp_path)

    def make(name: str) -> Path:
        folder = tmp_path / name
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        return folder.resolve()

    return make
