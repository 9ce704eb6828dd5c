"""FAISS indexes: the flat index ranks exactly as `top_k`; ids survive save/load; bad files fail."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dive.errors import DataError, DiveError
from dive.evaluate.search import top_k

faiss = pytest.importorskip("faiss")

from dive.export.faiss_index import (  # noqa: E402
    SearchIndex,
    build_index,
    check_index_model,
    check_stored_rows,
    ids_path,
    load_index,
    meta_path,
    sample_rows,
    save_index,
    search_index,
)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    faiss.omp_set_num_threads(1)


def test_flat_index_ranks_exactly_like_top_k(make_inputs: Any) -> None:
    corpus, queries = make_inputs(700, 24, seed=1), make_inputs(60, 24, seed=2)
    rows, scores = search_index(build_index(corpus), queries, k=20)
    want_rows, want_scores = top_k(queries, corpus, k=20)
    assert rows.dtype == np.int64 and scores.dtype == np.float32
    assert np.array_equal(rows, want_rows)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5, rtol=0)


def test_a_tensor_or_a_list_of_rows_is_one_block_not_a_block_per_row(make_inputs: Any) -> None:
    torch = pytest.importorskip("torch")
    corpus, queries = make_inputs(100, 8, seed=1), make_inputs(5, 8, seed=2)
    want = search_index(build_index(corpus), queries, k=10)
    blocks = [corpus[:60], corpus[60:]]
    # each was refused as "expected a 2-d (n, dim) array, got shape (8,)"
    for given in (torch.from_numpy(corpus), corpus.tolist(), blocks, iter(blocks)):
        rows, scores = search_index(build_index(given), queries, k=10)
        np.testing.assert_array_equal(rows, want[0])
        np.testing.assert_array_equal(scores, want[1])


def test_k_larger_than_the_index_returns_every_row(make_inputs: Any) -> None:
    corpus = make_inputs(5, 8)
    rows, _ = search_index(build_index(corpus), make_inputs(3, 8, seed=4), k=10)
    assert rows.shape == (3, 5)
    assert all(sorted(r) == list(range(5)) for r in rows.tolist())


def test_hnsw_recall_against_exact(make_inputs: Any) -> None:
    corpus, queries = make_inputs(1000, 16, seed=1), make_inputs(50, 16, seed=2)
    rows, _ = search_index(build_index(corpus, "hnsw"), queries, k=10)
    exact, _ = top_k(queries, corpus, k=10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows.tolist(), exact.tolist(),
                                                                  strict=True)])
    assert recall >= 0.9


def test_hnsw_slots_it_could_not_fill_hold_row_minus_1_and_score_minus_inf(
    make_inputs: Any
) -> None:
    """With ef_search=1 HNSW returns fewer than k hits; FAISS scores the missing slots
    -3.4e38 (-FLT_MAX), not the documented -inf, which a mutant dropping the fix left."""
    corpus, queries = make_inputs(300, 8, seed=1), make_inputs(20, 8, seed=2)
    rows, scores = search_index(build_index(corpus, "hnsw", ef_search=1), queries, k=len(corpus))
    missing = rows < 0
    assert missing.any()  # else nothing here is checked
    assert np.all(rows[missing] == -1)
    assert np.all(scores[missing] == -np.inf)
    assert np.all(np.isfinite(scores[~missing]))


@pytest.mark.parametrize(("option", "value"), [("hnsw_m", 0), ("hnsw_m", 1), ("hnsw_m", -1),
                                               ("hnsw_m", 2.5), ("ef_construction", 0),
                                               ("ef_search", 0), ("ef_search", True),
                                               ("hnsw_m", 2**30), ("hnsw_m", 2**31),
                                               ("ef_construction", 2**31),
                                               ("ef_search", 2**31)])
def test_hnsw_options_faiss_cannot_take_are_refused(option: str, value: object,
                                                     make_inputs: Any) -> None:
    # FAISS aborted on hnsw_m=0, crashed on 1, filled memory on -1 and returned -1 hits for
    # ef_search=0; 2**31 was SWIG's OverflowError, hnsw_m=2**30 a C++ allocation error
    with pytest.raises(DiveError, match=rf"{option} must be an integer in \d\.\.\d+, got "):
        build_index(make_inputs(50, 8), "hnsw", **{option: value})  # type: ignore[arg-type]


def test_integer_codes_without_their_quantizer_are_refused(make_inputs: Any) -> None:
    # int8 codes indexed as floats ranked by raw code products without a word
    codes = np.round(make_inputs(50, 8) * 127).astype(np.int8)
    with pytest.raises(DataError, match="compressed vectors: expected float embeddings, got "
                                        "dtype int8"):
        build_index(codes)
    # nor float16 codes: a float32 index (twice the bytes) beside a float16 model's checksum,
    # whose rescoring then blamed the corpus file
    with pytest.raises(DataError, match=r"compressed vectors: float16, as a float16 model "
                                        r"outputs; pass its quantizer"):
        build_index(make_inputs(50, 8).astype(np.float16))
    torch = pytest.importorskip("torch")
    for given in (torch.from_numpy(make_inputs(50, 8).astype(np.float16)),  # documented forms
                  list(make_inputs(50, 8).astype(np.float16))):
        with pytest.raises(DataError, match=r"compressed vectors: float16, as a float16 model"):
            build_index(given)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_save_and_load_keep_ids_and_results(kind: str, tmp_path: Path, make_inputs: Any) -> None:
    corpus, queries = make_inputs(300, 16, seed=1), make_inputs(10, 16, seed=2)
    ids = [f"doc-{i}" for i in range(300)]
    index = build_index(corpus, kind, ids=ids)
    path = save_index(index, tmp_path / "sub" / "corpus.faiss")
    assert ids_path(path).name == "corpus.faiss.ids.txt"
    again = load_index(path)
    assert again.ids == ids and len(again) == 300 and again.dim == 16
    before, after = search_index(index, queries, 5), search_index(again, queries, 5)
    assert np.array_equal(before[0], after[0])
    assert np.array_equal(before[1], after[1])


def test_hnsw_keeps_its_ef_search_also_after_save_and_load(tmp_path: Path,
                                                         make_inputs: Any) -> None:
    """ef_search was taken, checked and then not set: every HNSW index searched with FAISS's
    default of 16."""
    index = build_index(make_inputs(50, 8), "hnsw", ef_search=7)
    assert index.index.hnsw.efSearch == 7
    assert load_index(save_index(index, tmp_path / "h.faiss")).index.hnsw.efSearch == 7


def test_ids_default_to_row_numbers(make_inputs: Any) -> None:
    assert build_index(make_inputs(4, 8)).ids == ["0", "1", "2", "3"]


@pytest.fixture()
def saved_index(tmp_path: Path, make_inputs: Any) -> Path:
    return save_index(build_index(make_inputs(20, 8), ids=[f"d{i}" for i in range(20)]),
                      tmp_path / "i.faiss")


def test_missing_ids_file(saved_index: Path) -> None:
    ids_path(saved_index).unlink()
    with pytest.raises(DataError, match=r"i\.faiss\.ids\.txt: missing"):
        load_index(saved_index)


@pytest.mark.parametrize(("ids", "said"), [
    ([b"d0", b"d1", b"d2"], r"row 0: id b'd0' is a bytes; ids are text or integers"),
    (["d0", None, "d2"], r"row 1: id None is None; ids are text or integers"),
    (["d0", float("nan"), "d2"], r"row 1: id nan is a float; ids are text or integers"),
    (["d0", "d\udcff", "d2"], r"row 1: id 'd\\udcff' is not valid text \(a lone surrogate"),
])
def test_ids_that_are_not_text_or_integers_are_named(make_inputs: Any, ids: list[object],
                                                    said: str) -> None:
    """They were written as their str(): bytes as "b'd0'", None as "None", NaN as "nan" (and a
    lone surrogate was save_index's UnicodeEncodeError)."""
    with pytest.raises(DataError, match=rf"^ids: {said}"):
        build_index(make_inputs(3, 8), ids=ids)
    assert build_index(make_inputs(3, 8), ids=[np.int64(7), 8, "9"]).ids == ["7", "8", "9"]


def test_ids_count_mismatch(saved_index: Path) -> None:
    ids_path(saved_index).write_text("a\nb\n")
    with pytest.raises(DataError, match=r"ids\.txt: 2 ids for 20 vectors"):
        load_index(saved_index)


def test_duplicate_id_in_the_sidecar(saved_index: Path) -> None:
    ids_path(saved_index).write_text("".join(f"d{min(i, 5)}\n" for i in range(20)))
    with pytest.raises(DataError, match=r"ids\.txt: row 6 repeats id 'd5'"):
        load_index(saved_index)


def test_an_ids_file_rewritten_with_crlf_endings_keeps_its_ids(saved_index: Path) -> None:
    """A sidecar whose lines end in "\\r\\n" (an editor or a transfer on Windows): read with
    the "\\r" left on (a mutant), "d0\\r" was refused as an id containing a newline."""
    ids = [f"d{i}" for i in range(20)]
    ids_path(saved_index).write_bytes("".join(f"{i}\r\n" for i in ids).encode("utf-8"))
    # the meta's digest of the ids file (its bytes as saved) no longer matches: refused
    with pytest.raises(DataError, match=r"i\.faiss: the index or its \.ids\.txt does not match"):
        load_index(saved_index)
    # a meta without digests, as an older dive saved: nothing to check the bytes against
    meta = json.loads(meta_path(saved_index).read_text())
    del meta["index_sha256"], meta["ids_sha256"]
    meta_path(saved_index).write_text(json.dumps(meta))
    assert load_index(saved_index).ids == ids


def test_corrupt_index_file(saved_index: Path) -> None:
    saved_index.write_bytes(saved_index.read_bytes()[:40])
    with pytest.raises(DataError, match=r"i\.faiss: not a readable FAISS index"):
        load_index(saved_index)


@pytest.mark.parametrize(("foreign", "message"), [
    (lambda: faiss.IndexIDMap(faiss.IndexFlatIP(8)), r"a FAISS IndexIDMap \(inner product\) is "
                                                     "not an index dive writes"),  # AttributeError
    (lambda: faiss.IndexFlatL2(8), r"a FAISS IndexFlatL2 \(L2\) is not an index dive "
                                   "writes"),  # searched, squared distances shown as scores
    (lambda: faiss.IndexFlatIP(8), "holds no vectors"),  # FAISS's AssertionError on search
])
def test_another_tools_index_beside_an_ids_file_is_named(
    saved_index: Path, make_inputs: Any, foreign: Any, message: str
) -> None:
    index = foreign()
    rows = 0 if message == "holds no vectors" else 20
    if rows:
        vectors = make_inputs(rows, 8)
        index.add_with_ids(vectors, np.arange(rows)) if isinstance(index, faiss.IndexIDMap) \
            else index.add(vectors)
    faiss.write_index(index, str(saved_index))
    ids_path(saved_index).write_text("".join(f"d{i}\n" for i in range(rows)))
    meta_path(saved_index).unlink()
    with pytest.raises(DataError, match=rf"i\.faiss: {message}"):
        load_index(saved_index)


def test_an_index_asking_for_more_memory_than_there_is_is_unreadable(
    saved_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A damaged size field makes FAISS allocate terabytes (std::bad_alloc, MemoryError here).
    def allocate_too_much(reader: Any) -> Any:
        raise MemoryError("std::bad_alloc")

    monkeypatch.setattr(faiss, "read_index", allocate_too_much)
    with pytest.raises(DataError, match=r"i\.faiss: not a readable FAISS index \(it asks for "
                                        "more memory than there is"):
        load_index(saved_index)


def test_missing_index_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such index file"):
        load_index(tmp_path / "nope.faiss")


def test_bad_build_inputs(make_inputs: Any) -> None:
    with pytest.raises(DiveError, match="'ivf' is not one of flat, hnsw"):
        build_index(make_inputs(4, 8), "ivf")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="ids: 3 ids for 4 vectors"):
        build_index(make_inputs(4, 8), ids=["a", "b", "c"])
    with pytest.raises(DataError, match="row 1 repeats id 'a'"):
        build_index(make_inputs(2, 8), ids=["a", "a"])
    with pytest.raises(DataError, match="empty"):
        build_index(np.zeros((0, 8), np.float32))
    for nothing in ([], ()):  # no block at all: an IndexError traceback
        with pytest.raises(DataError, match=r"^compressed vectors: empty \(0 rows\); nothing "
                                            "to index$"):
            build_index(nothing)
    # an id ending in "\r" was saved, and read back from the ids file as another id ("b")
    with pytest.raises(DataError, match=r"^ids: row 1: id 'b\\r' is empty or contains a "
                                        "newline$"):
        build_index(make_inputs(2, 8), ids=["a", "b\r"])


def test_an_opq_index_on_too_few_rows_names_itself_and_the_rows_it_needs(
    make_inputs: Any,
) -> None:
    # not "anchor faiss-opq:2" with FAISS's C++ assertion: the user built an index
    with pytest.raises(DataError, match=r"^opq2 index: FAISS PQ training needs at least 256 "
                                        r"corpus rows \(256 per code\), got 200$"):
        build_index(make_inputs(200, 8), product=2)
    assert len(build_index(make_inputs(256, 8), product=2)) == 256


def test_query_dimension_must_match(make_inputs: Any) -> None:
    with pytest.raises(DataError, match="expected dimension 8, got 9"):
        search_index(build_index(make_inputs(4, 8)), make_inputs(2, 9), 3)


def test_integer_queries_are_refused(make_inputs: Any) -> None:
    # int8 codes passed as queries were cast to float and scored without a word
    codes = np.rint(make_inputs(2, 8) * 127).astype(np.int8)
    with pytest.raises(DataError, match="queries: expected float embeddings, got dtype int8"):
        search_index(build_index(make_inputs(4, 8)), codes, 3)


@pytest.mark.parametrize("k", [0, 1.5, "3"])
def test_k_must_be_a_positive_integer(make_inputs: Any, k: object) -> None:
    # 0 gave a plain ValueError, 1.5 a FAISS TypeError
    with pytest.raises(DiveError, match=f"search: k must be an integer >= 1, got {k!r}"):
        search_index(build_index(make_inputs(4, 8)), make_inputs(2, 8), k)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_numpy_integer_options_are_taken_as_python_ints_are(make_inputs: Any, kind: str) -> None:
    """k=np.int64(2) and hnsw_m=np.int64(8) were FAISS TypeErrors (its SWIG wrappers take
    Python ints only), though the checks accept them as `top_k` does."""
    corpus, queries = make_inputs(40, 8), make_inputs(3, 8, seed=4)
    numpy_made = build_index(corpus, kind, hnsw_m=np.int64(8), ef_search=np.int64(40))  # type: ignore[arg-type]
    plain = build_index(corpus, kind, hnsw_m=8, ef_search=40)
    for got, want in zip(search_index(numpy_made, queries, np.int64(2)),  # type: ignore[arg-type]
                         search_index(plain, queries, 2), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seed", [-1, 2**31, 2.5, True])
def test_an_opq_seed_faiss_cannot_take_is_refused(make_inputs: Any, seed: object) -> None:
    """2**31 built seed 0's index and -1 seed 2**31 - 1's (taken modulo 2**31) where
    `dive index --seed` refuses them; 2.5 was a SWIG TypeError."""
    with pytest.raises(DiveError, match=rf"^seed must be an integer in 0\.\.2147483647 .*, "
                                        rf"got {seed!r}$"):
        build_index(make_inputs(300, 16), product=4, seed=seed)  # type: ignore[arg-type]


def test_saved_index_keeps_its_compressor_identity_and_drops_a_stale_one(
    tmp_path: Path, make_inputs: Any
) -> None:
    x = make_inputs(20, 8)
    path = tmp_path / "i.faiss"
    save_index(build_index(x, model_sha256="ab" * 32), path)
    assert load_index(path).model_sha256 == "ab" * 32
    check_index_model(load_index(path), path, "ab" * 32, "m")
    with pytest.raises(DataError, match=r"i\.faiss: built by another compressor than m2"):
        check_index_model(load_index(path), path, "cd" * 32, "m2")
    save_index(build_index(x), path, overwrite=True)  # no identity: the old one must not survive
    assert load_index(path).model_sha256 is None
    (tmp_path / "i.faiss.meta.json").write_text("{not json")
    with pytest.raises(DataError, match=r"i\.faiss\.meta\.json: not valid JSON \(Expecting "):
        load_index(path)


def test_search_index_with_a_model_digest_refuses_another_compressors_index(
        make_inputs: Any) -> None:
    """docs/export.md says a search with another model is refused; from Python it searched
    without a check (only `dive search` compared the digests)."""
    x = make_inputs(20, 8)
    index = build_index(x, model_sha256="ab" * 32)
    rows, _ = search_index(index, x[:2], 3, model_sha256="ab" * 32)
    np.testing.assert_array_equal(rows, search_index(index, x[:2], 3)[0])
    with pytest.raises(DataError, match=r"^search_index: the index: built by another "
                                        r"compressor than the compressor of model_sha256 "):
        search_index(index, x[:2], 3, model_sha256="cd" * 32)


def test_an_index_meta_saved_with_a_byte_order_mark_loads(tmp_path: Path,
                                                          make_inputs: Any) -> None:
    """An editor may save the sidecar meta with a UTF-8 byte-order mark, as it may config.json
    (which loads): the index was refused as not readable JSON."""
    path = tmp_path / "i.faiss"
    save_index(build_index(make_inputs(20, 8), model_sha256="ab" * 32), path)
    meta = tmp_path / "i.faiss.meta.json"
    meta.write_bytes(b"\xef\xbb\xbf" + meta.read_bytes())
    assert load_index(path).model_sha256 == "ab" * 32


@pytest.mark.parametrize("meta", ['{"format": "something-else"}', '{"precision": "float32"}',
                                  '["dive-index"]'])
def test_an_index_meta_of_another_format_is_refused(tmp_path: Path, make_inputs: Any,
                                                    meta: str) -> None:
    """A meta.json that is not dive's (another tool's, by the same name) was read as one that
    records nothing: the index loaded, unchecked, with a warning of an older dive."""
    path = save_index(build_index(make_inputs(20, 8)), tmp_path / "i.faiss")
    meta_path(path).write_text(meta)
    with pytest.raises(DataError, match=r"i\.faiss\.meta\.json: not a dive index identity "
                                        r"\(expected format 'dive-index'\)$"):
        load_index(path)


def test_save_index_replaces_only_an_index_dive_wrote(tmp_path: Path, make_inputs: Any) -> None:
    """As the CLI does: the library's overwrite (once True by default) replaced any file at
    the path, a user's embeddings or a FAISS index of their own, writing sidecars beside it."""
    index = build_index(make_inputs(20, 8))
    # a FAISS index starts "I" and three letters ("IxF2"): a text file starting "I am" is not
    # one, and was named a FAISS index left without its ids, to be deleted
    notes = tmp_path / "notes.faiss"
    notes.write_bytes(b"I am a note, not an index\n")
    with pytest.raises(DiveError, match=r"notes\.faiss: exists and is not a dive index \(a "
                                        r"file with its \.ids\.txt\); refusing"):
        save_index(index, notes, overwrite=True)
    notes.unlink()
    theirs = tmp_path / "corpus.npy"
    theirs.write_bytes(b"a user's vectors")
    with pytest.raises(DiveError, match=r"corpus\.npy: exists and is not a dive index \(a "
                                        r"file with its \.ids\.txt\); refusing"):
        save_index(index, theirs, overwrite=True)
    assert theirs.read_bytes() == b"a user's vectors"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.npy"]
    path = save_index(index, tmp_path / "i.faiss")
    with pytest.raises(DiveError, match=r"i\.faiss: already exists; pass overwrite=True"):
        save_index(index, path)  # kept by default
    save_index(build_index(make_inputs(30, 8)), path, overwrite=True)  # replaced when asked
    assert len(load_index(path)) == 30


@pytest.mark.parametrize("kind", ["flat", "hnsw", "int8", "binary"])
def test_an_index_left_without_its_ids_is_refused_with_what_to_do(
    tmp_path: Path, make_inputs: Any, kind: str
) -> None:
    """A save killed after writing the index and before its ids leaves the index alone; every
    later save refused it as "not a dive index", which did not say why or what to do."""
    from dive.compressors.precision import calibrate

    vectors = make_inputs(40, 8)
    if kind in ("flat", "hnsw"):
        built = build_index(vectors, kind)
    else:
        quantizer = calibrate(kind, vectors)
        built = build_index(quantizer.encode(vectors), quantizer=quantizer)
    path = save_index(built, tmp_path / "i.faiss")
    ids_path(path).unlink()
    meta_path(path).unlink()
    for overwrite in (False, True):
        with pytest.raises(DiveError, match=r"i\.faiss: a FAISS index without its "
                                            r"i\.faiss\.ids\.txt.*delete it to save"):
            save_index(built, path, overwrite=overwrite)
    path.unlink()
    assert len(load_index(save_index(built, path))) == 40


@pytest.mark.parametrize("overwrite", [True, False])
@pytest.mark.parametrize("suffix", [".ids.txt", ".meta.json"])
def test_save_index_never_replaces_a_sidecar_of_no_dive_index_there(
    tmp_path: Path, make_inputs: Any, suffix: str, overwrite: bool
) -> None:
    theirs = tmp_path / f"i.faiss{suffix}"
    theirs.write_bytes(b"a user's file")
    with pytest.raises(DiveError, match=rf"i\.faiss{suffix}: exists and is not part of a dive "
                                        r"index at i\.faiss; refusing to replace it"):
        save_index(build_index(make_inputs(20, 8)), tmp_path / "i.faiss", overwrite=overwrite)
    assert theirs.read_bytes() == b"a user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == [theirs.name]


@pytest.mark.parametrize("overwrite", [True, False])
def test_a_save_writes_under_the_folders_lock(
    tmp_path: Path, make_inputs: Any, monkeypatch: pytest.MonkeyPatch, overwrite: bool
) -> None:
    """Two runs replacing one index renamed their files in turn, unlocked: one's index could
    end beside the other's ids. Now a save holds the lock `dive._io.locked` takes, a new one
    too (a reader took its index without the ids not yet beside it)."""
    import fcntl

    from dive.export import faiss_index

    path = tmp_path / "i.faiss"
    if overwrite:
        save_index(build_index(make_inputs(20, 8)), path)
    held: list[bool] = []
    write_all = faiss_index._write_all

    def probe(files: Any, **kwargs: Any) -> None:
        fd = os.open(tmp_path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held.append(False)
        except BlockingIOError:
            held.append(True)
        finally:
            os.close(fd)
        write_all(files, **kwargs)

    monkeypatch.setattr(faiss_index, "_write_all", probe)
    save_index(build_index(make_inputs(30, 8)), path, overwrite=overwrite)
    assert held == [True] and len(load_index(path)) == 30


def test_an_index_replaced_while_it_is_read_loads_whole(
    tmp_path: Path, make_inputs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dive search` reading an index while `dive index --overwrite` replaced it read the old
    index and the new ids and meta, and refused a whole index: "does not match
    i.faiss.meta.json (a save that did not finish?); save the index again". Now the three
    files are opened together under the lock a save holds, and read as one save wrote them."""
    from dive.export import faiss_index

    path = save_index(build_index(make_inputs(20, 8), ids=[f"old{i}" for i in range(20)]),
                      tmp_path / "i.faiss")
    new = build_index(make_inputs(20, 8, seed=5), ids=[f"new{i}" for i in range(20)])
    read_faiss = faiss_index._read_faiss
    replaced: list[bool] = []

    def replaced_meanwhile(*args: Any) -> Any:
        read = read_faiss(*args)
        if not replaced:  # another run's save lands once this run has read the index
            replaced.append(True)
            save_index(new, path, overwrite=True)
        return read

    monkeypatch.setattr(faiss_index, "_read_faiss", replaced_meanwhile)
    assert load_index(path).ids == [f"old{i}" for i in range(20)]
    assert replaced and load_index(path).ids == new.ids


@contextlib.contextmanager
def _renames_then_interrupt(after: int) -> Iterator[dict[str, int]]:
    """The first `after` renames (`os.replace`) of the block succeed, the next raises
    KeyboardInterrupt, as Ctrl-C between two of a save's renames would; yields the count."""
    real_replace = os.replace
    calls = {"n": 0}

    def replace_then_die(src: Any, dst: Any) -> None:
        if calls["n"] == after:
            raise KeyboardInterrupt
        calls["n"] += 1
        real_replace(src, dst)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(os, "replace", replace_then_die)
        yield calls


@pytest.mark.parametrize("renamed", [1, 2])
def test_a_replacement_stopped_half_way_is_detected_on_load(
    tmp_path: Path, make_inputs: Any, renamed: int
) -> None:
    # A kill after `renamed` of the three files (index, ids, meta) took their new names: the
    # rows and dimension still agree, so only a record of what was saved together tells.
    path = save_index(build_index(make_inputs(20, 8), ids=[f"old{i}" for i in range(20)]),
                      tmp_path / "i.faiss")
    new = build_index(make_inputs(20, 8, seed=5), ids=[f"new{i}" for i in range(20)])
    with _renames_then_interrupt(renamed), pytest.raises(KeyboardInterrupt):
        save_index(new, path, overwrite=True)
    with pytest.raises(DataError, match=r"i\.faiss: .*does not match i\.faiss\.meta\.json"):
        load_index(path)
    save_index(new, path, overwrite=True)  # saving again repairs it
    assert load_index(path).ids == new.ids


@pytest.mark.parametrize("placed", [0, 1])
def test_a_new_save_stopped_half_way_leaves_nothing_behind(
    tmp_path: Path, make_inputs: Any, placed: int
) -> None:
    """Ctrl-C after the index and its ids were in place but before the meta took the index
    away and left the ids file, which every later save refused ("exists and is not part of
    a dive index"). Now nothing of the stopped save is left and a rerun saves."""
    index = build_index(make_inputs(20, 8))
    # the sidecars (ids, then meta) are renamed after the index
    with _renames_then_interrupt(placed) as calls, pytest.raises(KeyboardInterrupt):
        save_index(index, tmp_path / "i.faiss")
    assert calls["n"] == placed and sorted(os.listdir(tmp_path)) == []
    assert load_index(save_index(index, tmp_path / "i.faiss")).ids == index.ids


_KILLED_AT_THE_CLAIM = """
import os, signal, sys
import numpy as np
from dive.export.faiss_index import build_index, save_index
rows = np.random.default_rng(0).normal(size=(20, 8)).astype("float32")
rows /= np.linalg.norm(rows, axis=1, keepdims=True)
os.link = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)  # the index's claim
save_index(build_index(rows), sys.argv[1])
"""


def test_a_new_save_killed_before_its_index_is_placed_is_replaced_with_overwrite(
    tmp_path: Path, make_inputs: Any
) -> None:
    """A save SIGKILLed between placing the index and its ids left a FAISS file without ids,
    which no later save replaced, --overwrite or not ("delete it to save an index here"). Now
    the index is placed last: what a kill leaves is a dive meta (and the ids it names) with no
    index, and a save with overwrite replaces it."""
    import signal
    import subprocess
    import sys

    path = tmp_path / "i.faiss"
    killed = subprocess.run([sys.executable, "-c", _KILLED_AT_THE_CLAIM, str(path)],
                            capture_output=True, text=True, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".tmp"))
    assert left == ["i.faiss.ids.txt", "i.faiss.meta.json"]
    index = build_index(make_inputs(30, 8))
    with pytest.raises(DiveError, match=r"i\.faiss\.meta\.json: left by a save of an index at "
                                        r"i\.faiss that was killed.*pass overwrite=True"):
        save_index(index, path)
    assert load_index(save_index(index, path, overwrite=True)).ids == index.ids
    ids_path(path).write_text("a user's own ids file\n")
    path.unlink()  # a meta whose ids are not the ones it names is not a save's leftover
    with pytest.raises(DiveError, match="exists and is not part of a dive index"):
        save_index(index, path, overwrite=True)


@pytest.mark.parametrize("precision", ["float32", "float16", "int8", "binary"])
def test_an_index_built_from_blocks_is_the_index_built_at_once(
    precision: str, tmp_path: Path, make_inputs: Any
) -> None:
    from dive.compressors.precision import calibrate

    x = make_inputs(50, 16)
    quantizer = calibrate(precision, x)
    codes = quantizer.encode(x)
    whole = save_index(build_index(codes, quantizer=quantizer), tmp_path / "whole.faiss")
    blocks = (codes[i : i + 16] for i in range(0, 50, 16))  # the last block is short
    parts = save_index(build_index(blocks, quantizer=quantizer), tmp_path / "parts.faiss")
    assert parts.read_bytes() == whole.read_bytes()
    assert load_index(parts).ids == [str(i) for i in range(50)]


def test_blocks_name_a_bad_row_by_its_row_over_all_of_them(make_inputs: Any) -> None:
    x = make_inputs(40, 8)
    x[27, 3] = np.nan
    with pytest.raises(DataError, match=r"compressed vectors: row 27 contains NaN or inf"):
        build_index(x[i : i + 10] for i in range(0, 40, 10))
    with pytest.raises(DataError, match="compressed vectors: empty"):
        build_index(iter([]))
    with pytest.raises(DataError, match="a block of dimension 4 after 10 rows of dimension 8"):
        build_index([make_inputs(10, 8), make_inputs(10, 4)])


def test_a_binary_query_codes_an_exact_zero_as_the_corpus_codes_do(make_inputs: Any) -> None:
    """The corpus codes take a value of exactly 0 as bit 0 (`z > 0`); a mutant coding the
    query's as bit 1 (`q >= 0`) scored every row 2 off d - 2 * Hamming per such value."""
    from dive.compressors.precision import calibrate

    x, queries = make_inputs(50, 16, seed=1), make_inputs(5, 16, seed=2)
    queries[:, ::5] = 0.0  # exact zeros in every query
    quantizer = calibrate("binary", x)
    codes = quantizer.encode(x)
    rows, scores = search_index(build_index(codes, quantizer=quantizer), queries, k=len(x))
    # d - 2 * Hamming of the sign bits, each coded as the corpus was: the +-1 vectors' dot
    expected = quantizer.decode(quantizer.encode(queries)) @ quantizer.decode(codes).T
    np.testing.assert_array_equal(scores, np.take_along_axis(expected, rows, axis=1))


def test_saved_file_is_faiss_own_serialisation_and_its_digest_is_recorded(
    tmp_path: Path, make_inputs: Any
) -> None:
    # The index is written to the file as FAISS serialises it, a megabyte at a time, and the
    # meta's digest is that of the file.
    import hashlib
    import json

    index = build_index(make_inputs(30_000, 16))  # 1.9 MB: written in two pieces
    path = save_index(index, tmp_path / "i.faiss")
    data = path.read_bytes()
    assert data == faiss.serialize_index(index.index).tobytes()
    meta = json.loads((tmp_path / "i.faiss.meta.json").read_text())
    assert meta["index_sha256"] == hashlib.sha256(data).hexdigest()
    path.write_bytes(data + b"\0")  # bytes after the index are part of what is checked
    with pytest.raises(DataError, match="does not match"):
        load_index(path)


def test_sample_rows_spread_a_few_hundred_over_the_whole_index() -> None:
    assert sample_rows(5).tolist() == [0, 1, 2, 3, 4]
    rows = sample_rows(10_000_000)
    assert len(rows) == 256 and (rows[0], rows[-1]) == (0, 9_999_999)
    assert np.all(np.diff(rows) > 0) and np.array_equal(rows, sample_rows(10_000_000))


@pytest.mark.parametrize("kind", ["flat", "hnsw", "opq4"])
def test_stored_rows_match_the_index_vectors_and_no_other_order(kind: str,
                                                                make_inputs: Any) -> None:
    corpus = make_inputs(300, 8, seed=3)
    index = (build_index(corpus, product=4, model_sha256="m") if kind == "opq4" else
             build_index(corpus, "flat" if kind == "flat" else "hnsw", model_sha256="m"))
    rows = sample_rows(len(corpus), most=50)
    check_stored_rows(index, rows, corpus[rows], name="v.npy")
    with pytest.raises(DataError, match=r"^v\.npy: row \d+ is not the vector the index holds "
                                        r"for '\d+' \(cosine .+\): its rows are in another "
                                        r"order, or of another corpus; rescore with"):
        check_stored_rows(index, rows, corpus[::-1][rows], name="v.npy")
    index.model_sha256 = None  # then the vectors may be right and the index another's
    with pytest.raises(DataError, match=r"another corpus \(or the index, which does not "
                                        r"record its compressor, holds another compressor's "
                                        r"vectors\); rescore with"):
        check_stored_rows(index, rows, corpus[::-1][rows], name="v.npy")


@pytest.mark.parametrize(("cosine", "refused"), [(0.8, True), (0.95, False)])
def test_stored_rows_are_refused_under_a_cosine_of_0_9(cosine: float, refused: bool,
                                                       make_inputs: Any) -> None:
    """Guards the bar: a row of another vector at cosine 0.8 to the stored one passed a bar
    set lower, and a row within rounding of it must pass."""
    corpus = make_inputs(300, 8, seed=3)
    index = build_index(corpus, "flat", model_sha256="m")
    rows = sample_rows(len(corpus), most=50)
    codes = corpus[rows].copy()
    other = make_inputs(1, 8, seed=9)[0]
    other -= (other @ codes[5]) * codes[5]  # orthogonal to row 5's vector
    codes[5] = cosine * codes[5] + np.sqrt(1 - cosine**2) * other / np.linalg.norm(other)
    if not refused:
        check_stored_rows(index, rows, codes, name="v.npy")
        return
    with pytest.raises(DataError, match=rf"^v\.npy: row {rows[5]} is not the vector the index "
                                        rf"holds for '{rows[5]}' \(cosine 0\.80 between their "
                                        r"float32 codes, under 0\.9\)"):
        check_stored_rows(index, rows, codes, name="v.npy")


def test_stored_rows_name_the_first_row_that_differs(make_inputs: Any) -> None:
    """Guards the row named (as documented, the first that differs): with two rows swapped
    the error named the later one, not the first place the order goes wrong."""
    corpus = make_inputs(300, 8, seed=3)
    index = build_index(corpus, "flat", model_sha256="m")
    rows = sample_rows(len(corpus), most=50)
    codes = corpus[rows].copy()
    codes[[10, 30]] = codes[[30, 10]]
    with pytest.raises(DataError, match=rf"^v\.npy: row {rows[10]} is not the vector the index "
                                        rf"holds for '{rows[10]}' "):
        check_stored_rows(index, rows, codes, name="v.npy")


@pytest.mark.parametrize("dim", [8, 16, 64])
def test_binary_codes_one_sign_off_match_and_another_rows_do_not(dim: int,
                                                                 make_inputs: Any) -> None:
    """A float16 copy of the corpus flips the sign of a value within rounding of 0: at d = 16
    one bit of 16 is 94% alike, and the 95% bar refused the right file as 'another order'."""
    from dive.compressors.precision import calibrate

    x = make_inputs(300, dim, seed=4)
    quantizer = calibrate("binary", x)
    codes = quantizer.encode(x)
    index = build_index(codes, quantizer=quantizer, model_sha256="m")
    rows = sample_rows(len(x), most=50)
    near = x[rows].copy()
    near[:, 0] = -near[:, 0]  # one sign off in every row
    check_stored_rows(index, rows, quantizer.encode(near), name="v.npy")
    with pytest.raises(DataError, match=r"^v\.npy: row \d+ is not the vector the index holds .*"
                                        r"of their bits agree"):
        check_stored_rows(index, rows, codes[::-1][rows], name="v.npy")


def test_stored_rows_faiss_cannot_give_back_are_not_refused(
    make_inputs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    class NoReconstruct:  # an index kind without reconstruct: the order cannot be told
        d, ntotal = 8, 4

        def reconstruct(self, row: int) -> np.ndarray:
            raise RuntimeError("reconstruct not implemented for this type of index")

    check_stored_rows(SearchIndex(NoReconstruct(), list("abcd")), np.arange(4),
                      make_inputs(4, 8), name="v.npy")
    assert "v.npy: FAISS cannot give back the rows of this float32 index" in caplog.text


def test_threads_saving_to_one_new_path_lose_with_already_exists(
    tmp_path: Path, make_inputs: Any
) -> None:
    """Checked before the lock, a save in the middle of placing its files (its meta in place,
    not yet its index) read as one that was killed: "pass overwrite=True", which would have
    replaced the index the other thread saved."""
    from concurrent.futures import ThreadPoolExecutor

    index = build_index(make_inputs(2000, 64), model_sha256="0" * 64)

    def save(path: Path) -> str:
        try:
            save_index(index, path)
        except DiveError as exc:
            return str(exc).replace(str(path), "PATH")
        return "saved"

    for trial in range(5):
        path = tmp_path / str(trial) / "x.faiss"
        path.parent.mkdir()
        with ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(save, [path] * 16))
        assert sorted(set(outcomes)) == [
            "PATH: already exists; pass overwrite=True to replace it", "saved"]
        assert outcomes.count("saved") == 1 and len(load_index(path)) == 2000


def test_a_refused_save_into_new_folders_leaves_none_behind(
    tmp_path: Path, make_inputs: Any
) -> None:
    """Checked under the folder's lock from the first check, a save made the folders (to
    lock them) before it was refused."""
    index = build_index(make_inputs(8, 4))
    with pytest.raises(DiveError, match="overwrite must be True or False"):
        save_index(index, tmp_path / "a" / "b" / "x.faiss", overwrite="yes")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("precision", ["float32", "float16", "int8", "binary"])
def test_an_index_pickles_and_copies_with_its_results(precision: str, make_inputs: Any) -> None:
    """A binary index was FAISS's SWIG TypeError in `pickle.dumps` and `copy.deepcopy`."""
    import copy
    import pickle

    from dive.compressors.precision import calibrate

    x = make_inputs(300, 16)
    quantizer = None if precision == "float32" else calibrate(precision, x)  # type: ignore[arg-type]
    index = build_index(x if quantizer is None else quantizer.encode(x), quantizer=quantizer)
    want = search_index(index, x[:5])
    for again in (pickle.loads(pickle.dumps(index)), copy.deepcopy(index)):
        assert again.ids == index.ids and again.precision == index.precision
        got = search_index(again, x[:5])
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


@pytest.mark.parametrize("kind", ["opq4", "binary"])
def test_an_index_without_its_meta_that_is_not_float32_says_so(
    tmp_path: Path, make_inputs: Any, kind: str
) -> None:
    """Only the index and its ids copied: an OPQ index was an AttributeError traceback
    ('IndexPreTransform' has no code_size), a binary one 'not a readable FAISS index', as if
    damaged."""
    from dive.compressors.precision import calibrate

    vectors = make_inputs(300, 16, seed=2)
    if kind == "opq4":
        built = build_index(vectors, product=4)
    else:
        quantizer = calibrate("binary", vectors)
        built = build_index(quantizer.encode(vectors), quantizer=quantizer)
    path = save_index(built, tmp_path / "i.faiss")
    meta_path(path).unlink()
    with pytest.raises(DataError, match=r"^\S*i\.faiss: (holds 4-byte vectors of dimension 16|a "
                                        r"binary index, read as a float one)\S* .*i\.faiss\.meta"
                                        r"\.json, which says its precision, is missing"):
        load_index(path)


@pytest.mark.parametrize("meta", ["missing", "without digests"])
def test_an_index_whose_ids_cannot_be_checked_says_so(
    tmp_path: Path, make_inputs: Any, caplog: pytest.LogCaptureFixture, meta: str
) -> None:
    # copied without its meta.json (or saved by an older dive), an index and an edited ids
    # file were paired without a word, giving other documents' ids
    path = save_index(build_index(make_inputs(20, 8)), tmp_path / "i.faiss")
    if meta == "missing":
        meta_path(path).unlink()
    else:
        data = json.loads(meta_path(path).read_text())
        del data["index_sha256"], data["ids_sha256"]
        meta_path(path).write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING, logger="dive.export.faiss_index"):
        load_index(path)
    assert re.search(r"i\.faiss: its (missing meta\.json|i\.faiss\.meta\.json) records no "
                     r"checksums .* so that its i\.faiss\.ids\.txt belongs to it is not "
                     "checked", caplog.text)


def test_ctrl_c_while_an_index_is_replaced_leaves_one_whole_save(
    tmp_path: Path, make_inputs: Any, monkeypatch: pytest.MonkeyPatch,
    ctrl_c_at_sync: Callable[[str], None],
) -> None:
    """Ctrl-C between the renames of `--overwrite` (here as the ids are synced, the new index
    already in place) left the new index beside the old meta: neither loaded, and the CLI said
    no output was written."""
    path = save_index(build_index(make_inputs(40, 8, seed=1), ids=[f"a{i}" for i in range(40)]),
                      tmp_path / "i.faiss")
    new = build_index(make_inputs(30, 8, seed=2), ids=[f"b{i}" for i in range(30)])
    ctrl_c_at_sync(".ids.txt")
    with pytest.raises(KeyboardInterrupt):
        save_index(new, path, overwrite=True)
    monkeypatch.undo()
    assert load_index(path).ids == new.ids  # the interruption lands once the save is whole
