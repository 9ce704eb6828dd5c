"""`dive fit --precision`, `dive index` over codes and `dive search --rescore-vectors`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dive.cli import main
from dive.embed import Embeddings, load_embeddings
from dive.evaluate.search import top_k, top_k_codes
from dive.export.folder import load
from tests.test_cli_stdout import NO_SPACE, into_closed_pipe, into_full_disk


def fit(tiny: tuple[Path, Path], out: Path, *extra: str) -> int:
    return main(["fit", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]),
                 "--method", "pca", "--output", str(out),
                 *([] if "--dim" in extra else ["--dim", "8"]), *extra])


def search(folder: Path, capsys: pytest.CaptureFixture[str], queries: np.ndarray,
           *extra: str) -> list[list[tuple[str, float]]]:
    """`dive search` of `queries` (saved as .npy): per query, its (id, score) hits."""
    np.save(folder / "q.npy", queries)
    capsys.readouterr()
    assert main(["search", str(folder / "idx.faiss"), str(folder / "m"),
                 "--queries-npy", str(folder / "q.npy"), *extra]) == 0
    hits: list[list[tuple[str, float]]] = []
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("#"):
            hits.append([])
        else:
            _, doc, score = line.split("\t")
            hits[-1].append((doc, float(score)))
    return hits


def rescore_error(folder: Path, capsys: pytest.CaptureFixture[str], queries: np.ndarray,
                  vectors: Path) -> str:
    """stderr of `dive search` of `queries` rescored with `vectors`, which must exit 2."""
    np.save(folder / "q.npy", queries)
    capsys.readouterr()
    assert main(["search", str(folder / "idx.faiss"), str(folder / "m"), "--queries-npy",
                 str(folder / "q.npy"), "--rescore-vectors", str(vectors)]) == 2
    return capsys.readouterr().err


def shuffled_corpus(tiny: tuple[Path, Path]) -> tuple[Embeddings, np.ndarray]:
    """The tiny dataset's embeddings and a seeded permutation of its corpus rows."""
    emb = load_embeddings(tiny[1])
    return emb, np.random.default_rng(0).permutation(len(emb.corpus_ids))


@pytest.fixture()
def indexed(tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """An int8 pca model at tmp_path/m and its index at tmp_path/idx.faiss."""
    pytest.importorskip("faiss")
    assert fit(tiny, tmp_path / "m", "--precision", "int8") == 0
    out = capsys.readouterr().out
    assert "(int8, 8 bytes/vector)" in out
    # the count the saved model holds, its int8 ranges included (they were left out)
    assert f" {load(tmp_path / 'm').runtime_.n_params} parameters" in out
    assert main(["index", str(tmp_path / "m"), "--embeddings", str(tiny[1]),
                 "--output", str(tmp_path / "idx.faiss")]) == 0
    assert "8-d int8, 8 bytes/vector, flat" in capsys.readouterr().out
    return tmp_path


def test_int8_model_index_and_search_use_the_model_codes(
    tiny: tuple[Path, Path], indexed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = load(indexed / "m")
    assert model.precision == "int8"
    meta = json.loads((indexed / "idx.faiss.meta.json").read_text())
    assert (meta["precision"], meta["dim"]) == ("int8", 8)
    emb = load_embeddings(tiny[1])
    quantizer = model.runtime_.quantizer
    assert quantizer is not None
    rows, scores = top_k_codes(model.embed(emb.queries[:4]), model.transform(emb.corpus),
                               quantizer, 5)
    hits = search(indexed, capsys, emb.queries[:4], "-k", "5")
    for got, want_rows, want_scores in zip(hits, rows, scores, strict=True):
        np.testing.assert_allclose([s for _, s in got], want_scores, atol=1e-5)
        assert got[0][0] == emb.corpus_ids[want_rows[0]]


def test_rescoring_with_the_full_embeddings_covering_the_corpus_is_exact_search(
    tiny: tuple[Path, Path], indexed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emb = load_embeddings(tiny[1])
    # 5 hits x factor 30 = 150 candidates >= the 120 documents: the funnel sees them all.
    hits = search(indexed, capsys, emb.queries[:4], "-k", "5", "--rescore-vectors",
                  str(tiny[1] / "corpus.npy"), "--rescore-factor", "30")
    rows, scores = top_k(emb.queries[:4], emb.corpus, 5)
    for got, want_rows, want_scores in zip(hits, rows, scores, strict=True):
        assert [doc for doc, _ in got] == [emb.corpus_ids[r] for r in want_rows]
        np.testing.assert_allclose([s for _, s in got], want_scores, atol=1e-5)


def test_rescoring_with_compressed_float_vectors(
    tiny: tuple[Path, Path], indexed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emb = load_embeddings(tiny[1])
    model = load(indexed / "m")
    np.save(indexed / "small.npy", model.embed(emb.corpus))
    hits = search(indexed, capsys, emb.queries[:4], "-k", "3", "--rescore-vectors",
                  str(indexed / "small.npy"), "--rescore-factor", "40")
    rows, _ = top_k(model.embed(emb.queries[:4]), model.embed(emb.corpus), 3)
    assert [[doc for doc, _ in got] for got in hits] == [
        [emb.corpus_ids[r] for r in want] for want in rows]


def test_rescore_vectors_must_match_the_index(indexed: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    np.save(indexed / "bad.npy", np.ones((7, 32), np.float32))
    np.save(indexed / "q.npy", np.ones((1, 32), np.float32))
    assert main(["search", str(indexed / "idx.faiss"), str(indexed / "m"), "--queries-npy",
                 str(indexed / "q.npy"), "--rescore-vectors", str(indexed / "bad.npy")]) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.npy: has shape (7, 32), expected one row per index row (120)" in err
    assert "\n" not in err


def test_rescore_vectors_of_a_folder_in_another_row_order_are_refused(
    indexed: Path, tiny: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # the same corpus re-imported in another order: each candidate was rescored by another
    # document's vector, with exit 0
    emb, order = shuffled_corpus(tiny)
    other = indexed / "other"
    other.mkdir()
    np.save(other / "corpus.npy", emb.corpus[order])
    (other / "corpus_ids.txt").write_text("".join(f"{emb.corpus_ids[i]}\n" for i in order))
    err = rescore_error(indexed, capsys, emb.queries[:1], other / "corpus.npy").strip()
    assert f"{other / 'corpus_ids.txt'}: row 0 is '{emb.corpus_ids[order[0]]}' where the index " \
           f"has '{emb.corpus_ids[0]}'; rescore with the vectors the index was built from" in err
    assert "\n" not in err
    assert main(["search", str(indexed / "idx.faiss"), str(indexed / "m"), "--queries-npy",
                 str(indexed / "q.npy"), "--rescore-vectors", str(tiny[1] / "corpus.npy")]) == 0
    (other / "corpus_ids.txt").write_text("d0\n")  # a damaged ids file: one line, no traceback
    assert main(["search", str(indexed / "idx.faiss"), str(indexed / "m"), "--queries-npy",
                 str(indexed / "q.npy"), "--rescore-vectors", str(other / "corpus.npy")]) == 2
    assert "corpus_ids.txt: 1 ids for the 120 rows of corpus.npy" in capsys.readouterr().err


def test_a_bare_npy_of_the_corpus_in_another_row_order_is_refused_naming_a_row(
    indexed: Path, tiny: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # a bare .npy has no ids to check: its rows in another order rescored each candidate by
    # another document's vector, with exit 0
    emb, order = shuffled_corpus(tiny)
    shuffled = indexed / "shuffled.npy"
    np.save(shuffled, emb.corpus[order])
    err = rescore_error(indexed, capsys, emb.queries[:1], shuffled)
    said = re.fullmatch(rf"dive: error: {re.escape(str(shuffled))}: row (\d+) is not the vector "
                        r"the index holds for '(.+)' \(cosine -?[\d.]+ between their int8 "
                        r"codes, under 0\.9\): its rows are in another order, or of another "
                        r"corpus; rescore with the vectors the index was built from, in its "
                        r"order\n", err)
    assert said is not None, err
    row = int(said[1])
    assert said[2] == emb.corpus_ids[row] and order[row] != row


@pytest.mark.parametrize("space", ["full", "compressed"])
@pytest.mark.parametrize("precision", ["float32", "float16", "int8", "binary"])
def test_a_bare_npy_of_the_index_rows_rescores_and_a_shuffled_copy_is_refused(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    precision: str, space: str
) -> None:
    pytest.importorskip("faiss")
    assert fit(tiny, tmp_path / "m", "--precision", precision) == 0
    assert main(["index", str(tmp_path / "m"), "--embeddings", str(tiny[1]),
                 "--output", str(tmp_path / "idx.faiss")]) == 0
    emb, model = load_embeddings(tiny[1]), load(tmp_path / "m")
    queries, corpus = ((emb.queries[:4], emb.corpus) if space == "full" else
                       (model.embed(emb.queries[:4]), model.embed(emb.corpus)))
    np.save(tmp_path / "vectors.npy", corpus)
    hits = search(tmp_path, capsys, emb.queries[:4], "-k", "3", "--rescore-vectors",
                  str(tmp_path / "vectors.npy"), "--rescore-factor", "40")  # every document
    rows, scores = top_k(queries, corpus, 3)
    assert [[doc for doc, _ in got] for got in hits] == [
        [emb.corpus_ids[r] for r in want] for want in rows]
    np.testing.assert_allclose([[s for _, s in got] for got in hits], scores, atol=1e-5)
    np.save(tmp_path / "reversed.npy", corpus[::-1])
    err = rescore_error(tmp_path, capsys, emb.queries[:4], tmp_path / "reversed.npy")
    assert err.count("\n") == 1 and f"{tmp_path / 'reversed.npy'}: row " in err
    assert "another order, or of another corpus" in err


@pytest.mark.parametrize("space", ["full", "compressed"])
def test_a_bare_npy_of_another_corpus_of_the_same_shape_is_refused(
    indexed: Path, make_inputs: Any, capsys: pytest.CaptureFixture[str], space: str
) -> None:
    other = make_inputs(120, 32, seed=7)  # the tiny corpus's shape, other documents
    np.save(indexed / "other.npy", other if space == "full" else load(indexed / "m").embed(other))
    err = rescore_error(indexed, capsys, other[:1], indexed / "other.npy")
    assert err.startswith(f"dive: error: {indexed / 'other.npy'}: row 0 is not the vector the "
                          "index holds for 'd0' (cosine ")
    assert err.count("\n") == 1


def test_hnsw_over_codes_is_refused(indexed: Path, tiny: tuple[Path, Path],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", str(indexed / "m"), "--embeddings", str(tiny[1]), "--hnsw",
                 "--output", str(indexed / "h.faiss")]) == 2
    assert "--hnsw indexes float32 vectors" in capsys.readouterr().err


def test_an_hnsw_index_says_what_its_graph_links_cost_per_vector(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It printed the codes' 32 bytes/vector alone, where the file holds several times that."""
    pytest.importorskip("faiss")
    assert fit(tiny, tmp_path / "m") == 0
    index = tmp_path / "h.faiss"
    capsys.readouterr()
    assert main(["index", str(tmp_path / "m"), "--embeddings", str(tiny[1]), "--hnsw",
                 "--output", str(index)]) == 0
    rows = len(load_embeddings(tiny[1]).corpus_ids)
    on_disk = round(index.stat().st_size / rows)
    assert on_disk > 32
    assert (f"8-d float32, 32 bytes/vector of codes, {on_disk} on disk with its graph links, "
            "hnsw)") in capsys.readouterr().out


@pytest.mark.parametrize("more", [0, 5])
def test_an_hnsw_search_that_returns_fewer_hits_than_asked_says_so(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture, more: int
) -> None:
    """HNSW returns what its graph search reaches: -k 1000 of 1400 documents printed 828
    hits, exit 0, without a word. A -k past the index's size (`more`) asks for every
    document, and the warning says so."""
    pytest.importorskip("faiss")
    from dive.compressors.runtime import runtime_digest
    from dive.export.faiss_index import build_index, save_index

    assert fit(tiny, tmp_path / "m") == 0
    model, emb = load(tmp_path / "m"), load_embeddings(tiny[1])
    n = len(emb.corpus_ids)
    save_index(build_index(model.embed(emb.corpus), "hnsw", ids=emb.corpus_ids, hnsw_m=2,
                           model_sha256=runtime_digest(model.fitted_runtime())),
               tmp_path / "idx.faiss")
    caplog.clear()
    hits = search(tmp_path, capsys, emb.queries[:8], "-k", str(n + more))
    short = sum(len(got) < n for got in hits)
    assert short > 0  # a graph of 2 links a node does not reach every node from every query
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"{tmp_path / 'idx.faiss'}: {short} of 8 queries got fewer than {n} hits: an HNSW "
        "index returns only what its graph search reaches; for deeper lists, index without "
        "--hnsw (exact)"]


@pytest.mark.parametrize("argv", [
    ["fit", "--dataset", "x", "--method", "pca", "--dim", "8", "--output", "m",
     "--precision", "int4"],
])
def test_a_bad_precision_name_is_one_error_line(argv: list[str], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "precision 'int4' is not one of float32, float16, int8, binary" in err
    assert "\n" not in err


def test_rescore_vectors_of_a_compressor_that_keeps_the_dimension_need_their_space(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """At d = D the width cannot tell full embeddings from compressed outputs: a guess put the
    compressed outputs' queries in the wrong space and ranked by noise, with exit 0."""
    pytest.importorskip("faiss")
    assert fit(tiny, tmp_path / "m", "--dim", "32", "--precision", "binary") == 0
    assert main(["index", str(tmp_path / "m"), "--embeddings", str(tiny[1]),
                 "--output", str(tmp_path / "idx.faiss")]) == 0
    emb, model = load_embeddings(tiny[1]), load(tmp_path / "m")
    np.save(tmp_path / "small.npy", model.embed(emb.corpus))
    np.save(tmp_path / "q.npy", emb.queries[:4])
    argv = ["search", str(tmp_path / "idx.faiss"), str(tmp_path / "m"), "--queries-npy",
            str(tmp_path / "q.npy"), "-k", "3", "--rescore-vectors", str(tmp_path / "small.npy"),
            "--rescore-factor", "40"]  # 120 candidates: every document
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "the compressor keeps the dimension (32)" in err and "--rescore-space" in err
    assert err.count("\n") == 1
    for space, queries, corpus in (("compressed", model.embed(emb.queries[:4]),
                                    model.embed(emb.corpus)),
                                   ("full", emb.queries[:4], emb.corpus)):
        vectors = tmp_path / f"{space}.npy"
        np.save(vectors, corpus)
        hits = search(tmp_path, capsys, emb.queries[:4], "-k", "3", "--rescore-vectors",
                      str(vectors), "--rescore-factor", "40", "--rescore-space", space)
        rows, _ = top_k(queries, corpus, 3)
        assert [[doc for doc, _ in got] for got in hits] == [
            [emb.corpus_ids[r] for r in want] for want in rows]
    # the other space's vectors were refused as rows "in another order, or of another corpus"
    for space, other in (("compressed", "full"), ("full", "compressed")):
        capsys.readouterr()
        assert main([*argv[:-3], str(tmp_path / f"{other}.npy"), "--rescore-factor", "40",
                     "--rescore-space", space]) == 2
        assert capsys.readouterr().err == (
            f"dive: error: {tmp_path / f'{other}.npy'}: holds the index's rows as {other} "
            f"vectors, not {space} ones; pass --rescore-space {other}\n")


@pytest.mark.parametrize("flag", [["--rescore-factor", "50"], ["--rescore-space", "full"]])
def test_rescore_options_without_rescore_vectors_are_refused(
    indexed: Path, flag: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(indexed / "q.npy", np.ones((1, 32), np.float32))
    assert main(["search", str(indexed / "idx.faiss"), str(indexed / "m"), "--queries-npy",
                 str(indexed / "q.npy"), *flag]) == 2
    assert capsys.readouterr().err == (f"dive: error: {flag[0]} is used only with "
                                       "--rescore-vectors\n")


def test_a_model_for_query_texts_with_query_vectors_is_refused(
    indexed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # it was ignored without a word
    np.save(indexed / "q.npy", np.ones((1, 32), np.float32))
    assert main(["search", str(indexed / "idx.faiss"), str(indexed / "m"), "--queries-npy",
                 str(indexed / "q.npy"), "--model", "foo"]) == 2
    assert capsys.readouterr().err == ("dive: error: --model embeds --query texts; "
                                       "--queries-npy vectors are already embedded (give one "
                                       "or the other)\n")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("queries", [2, 2000], ids=["buffered", "written-during-the-verb"])
def test_hits_onto_a_full_disk_are_one_line_naming_stdout(indexed: Path, queries: int) -> None:
    """A short output failed at the interpreter's exit ("Exception ignored ...", exit 120); a
    long one said "No space left on device", naming no file."""
    np.save(indexed / "q.npy", np.ones((queries, 32), np.float32))
    assert into_full_disk("search", str(indexed / "idx.faiss"), str(indexed / "m"),
                          "--queries-npy", str(indexed / "q.npy")) == (2, NO_SPACE)


def test_a_reader_gone_before_a_short_output_is_not_an_error(indexed: Path) -> None:
    np.save(indexed / "q.npy", np.ones((2, 32), np.float32))
    assert into_closed_pipe("search", str(indexed / "idx.faiss"), str(indexed / "m"),
                            "--queries-npy", str(indexed / "q.npy")) == (141, "")


def test_a_reader_that_stops_early_is_not_an_error(indexed: Path) -> None:
    """`dive search ... | head -1` printed 'dive: error: Broken pipe' and exited 2."""
    import os
    import subprocess
    import sys

    np.save(indexed / "q.npy", np.ones((2000, 32), np.float32))  # megabytes of hits
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with subprocess.Popen([sys.executable, "-m", "dive.cli", "search",
                           str(indexed / "idx.faiss"), str(indexed / "m"), "--queries-npy",
                           str(indexed / "q.npy"), "-k", "100"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline() == b"# query 0\n"
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 141  # 128 + SIGPIPE, as a killed reader's writer
    assert err == ""
