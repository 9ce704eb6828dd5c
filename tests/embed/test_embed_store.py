"""The embeddings folder: round trip, atomic replacement, and every validation error on load."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dive._io import MANIFEST
from dive.embed import Embeddings, load_embeddings, save_embeddings
from dive.errors import DataError, DiveError

REPO = Path(__file__).resolve().parents[2]


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _emb(n_docs: int = 6, n_queries: int = 3, dim: int = 8, seed: int = 0) -> Embeddings:
    rng = np.random.default_rng(seed)
    return Embeddings(
        corpus=_unit(rng, n_docs, dim),
        corpus_ids=[f"d{i}" for i in range(n_docs)],
        queries=_unit(rng, n_queries, dim),
        query_ids=[f"q{i}" for i in range(n_queries)],
        meta={"model": "toy-model", "doc_text": "title + ' ' + text"},
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    out = tmp_path / "toy"
    save_embeddings(out, _emb())
    return out


# --- round trip ---------------------------------------------------------------------------


@pytest.mark.parametrize("mmap", [False, True])
def test_round_trip_keeps_vectors_ids_and_meta(tmp_path: Path, mmap: bool) -> None:
    emb = _emb()
    save_embeddings(tmp_path / "e", emb)
    back = load_embeddings(tmp_path / "e", mmap=mmap)
    np.testing.assert_array_equal(back.corpus, emb.corpus)
    np.testing.assert_array_equal(back.queries, emb.queries)
    assert back.corpus.dtype == np.float32 and back.corpus.flags.c_contiguous
    # mmap=True maps both matrices (read-only), the queries as well as the corpus
    assert [m.flags.writeable for m in (back.corpus, back.queries)] == [not mmap, not mmap]
    assert back.corpus_ids == emb.corpus_ids and back.query_ids == emb.query_ids
    assert back.dim == 8
    assert back.meta["model"] == "toy-model"
    assert back.meta["n_corpus"] == 6 and back.meta["n_queries"] == 3
    assert back.meta["dim"] == 8 and back.meta["normalized"] is True
    assert back.meta["dtype"] == "float32"
    assert back.meta["source"] == str(tmp_path / "e")
    assert sorted(os.listdir(tmp_path)) == ["e"]  # no temporary folder left behind


def test_saved_files_have_the_documented_layout(folder: Path) -> None:
    assert sorted(os.listdir(folder)) == [
        MANIFEST,
        "corpus.npy",
        "corpus_ids.txt",
        "meta.json",
        "queries.npy",
        "query_ids.txt",
    ]
    assert (folder / "corpus_ids.txt").read_text() == "".join(f"d{i}\n" for i in range(6))
    meta = json.loads((folder / "meta.json").read_text())
    assert "source" not in meta
    assert set(meta) >= {"model", "dim", "normalized", "dtype", "doc_text", "n_corpus", "n_queries"}
    assert np.load(folder / "queries.npy").shape == (3, 8)


def test_a_saved_copy_of_a_loaded_folder_records_no_source(folder: Path, tmp_path: Path) -> None:
    """`source` is where a folder was read from: a copy saved from a load wrote the
    original's path into its own meta.json, where a load of the copy would then name it."""
    save_embeddings(tmp_path / "copy", load_embeddings(folder))
    assert "source" not in json.loads((tmp_path / "copy" / "meta.json").read_text())
    assert load_embeddings(tmp_path / "copy").meta["source"] == str(tmp_path / "copy")


def test_save_over_a_plain_file_says_it_is_no_folder(tmp_path: Path) -> None:
    """A file where the folder goes was answered "pass overwrite=True", which cannot replace
    it either: the message says what is there, and the file is kept."""
    target = tmp_path / "e"
    target.write_text("a user's file")
    for overwrite in (False, True):
        with pytest.raises(DiveError, match=r"e: exists and is not a folder; refusing to "
                                            r"replace it$"):
            save_embeddings(target, _emb(), overwrite=overwrite)
    assert target.read_text() == "a user's file"
    assert sorted(os.listdir(tmp_path)) == ["e"]


def test_save_replaces_an_existing_folder_whole(tmp_path: Path) -> None:
    target = tmp_path / "e"
    save_embeddings(target, _emb(n_docs=6, seed=0))
    (target / "stray.txt").write_text("from the old folder")
    with pytest.raises(DiveError, match="already exists; pass overwrite=True"):
        save_embeddings(target, _emb(n_docs=4, seed=1))  # kept by default
    # a file added since dive wrote the folder would go with it: refused, as the CLI refuses
    with pytest.raises(DiveError, match=r"holds files dive did not write \(stray\.txt\)"):
        save_embeddings(target, _emb(n_docs=4, seed=1), overwrite=True)
    (target / "stray.txt").unlink()
    save_embeddings(target, _emb(n_docs=4, seed=1), overwrite=True)
    back = load_embeddings(target)
    assert back.corpus.shape == (4, 8)
    np.testing.assert_array_equal(back.corpus, _emb(n_docs=4, seed=1).corpus)
    assert sorted(os.listdir(tmp_path)) == ["e"]


def test_overwrite_never_replaces_a_folder_that_is_not_embeddings(tmp_path: Path) -> None:
    """`dive embed --overwrite` checked its output when it started only: a folder made there
    while it ran (another run's model, a user's notes) was deleted at the end, exit 0."""
    target = tmp_path / "e"
    target.mkdir()
    (target / "notes.txt").write_text("precious")
    with pytest.raises(DiveError, match=r"e: exists and is not an embeddings folder; refusing "
                                        r"to replace it"):
        save_embeddings(target, _emb(), overwrite=True)
    assert os.listdir(target) == ["notes.txt"]
    assert sorted(os.listdir(tmp_path)) == ["e"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_link_to_an_empty_folder_is_not_taken_as_an_empty_output(
    tmp_path: Path, overwrite: bool
) -> None:
    """An empty folder may be written into, a link to one is not that folder: it passed the
    check `dive embed` makes before the work, which then was refused after it ("already
    exists"), or with overwrite replaced the user's link."""
    from dive.embed.store import check_embeddings_output

    (tmp_path / "empty").mkdir()
    (tmp_path / "e").symlink_to(tmp_path / "empty")
    refused = r"e: exists and is not an embeddings folder; refusing to replace it"
    with pytest.raises(DiveError, match=refused):
        check_embeddings_output(tmp_path / "e", overwrite=overwrite)
    if overwrite:
        with pytest.raises(DiveError, match=refused):
            save_embeddings(tmp_path / "e", _emb(), overwrite=True)
    assert os.readlink(tmp_path / "e") == str(tmp_path / "empty")
    assert os.listdir(tmp_path / "empty") == []


def test_failed_save_leaves_the_old_folder_untouched(tmp_path: Path) -> None:
    target = tmp_path / "e"
    save_embeddings(target, _emb(seed=0))
    bad = _emb(seed=1)
    bad.corpus[2, 0] = np.nan
    with pytest.raises(DataError, match=r"corpus: row 2 contains NaN"):
        save_embeddings(target, bad, overwrite=True)
    np.testing.assert_array_equal(load_embeddings(target).corpus, _emb(seed=0).corpus)
    assert sorted(os.listdir(tmp_path)) == ["e"]


def test_save_refuses_unnormalised_vectors_marked_normalized(tmp_path: Path) -> None:
    emb = _emb()
    emb.queries[1] *= 3.0
    with pytest.raises(DataError, match=r"queries: row 1 has norm 3"):
        save_embeddings(tmp_path / "e", emb)
    assert not (tmp_path / "e").exists()


def test_save_accepts_unnormalised_vectors_marked_so(tmp_path: Path) -> None:
    emb = _emb()
    emb.queries[1] *= 3.0
    emb.meta["normalized"] = False
    save_embeddings(tmp_path / "e", emb)
    assert load_embeddings(tmp_path / "e").queries[1] == pytest.approx(emb.queries[1])


@pytest.mark.parametrize(
    ("ids", "pattern"),
    [(["d0", "d1", "d0"], r"row 2: duplicate id 'd0'"), (["d0", "a\nb", "d2"], r"row 1: id")],
)
def test_save_refuses_ids_that_would_not_read_back(
    tmp_path: Path, ids: list[str], pattern: str
) -> None:
    rng = np.random.default_rng(0)
    emb = Embeddings(_unit(rng, 3, 4), ids, _unit(rng, 1, 4), ["q"], {})
    with pytest.raises(DataError, match=pattern):
        save_embeddings(tmp_path / "e", emb)


# --- the dataclass ------------------------------------------------------------------------


def test_query_rows_follow_the_requested_order() -> None:
    emb = _emb()
    rows = emb.query_rows(["q2", "q0"])
    np.testing.assert_array_equal(rows, emb.queries[[2, 0]])
    assert rows.dtype == np.float32 and rows.flags.c_contiguous
    assert emb.query_rows([]).shape == (0, 8)


def test_query_rows_name_the_missing_id(folder: Path) -> None:
    emb = load_embeddings(folder)
    with pytest.raises(DataError, match=r"toy: query id 'q9' has no embedding"):
        emb.query_rows(["q0", "q9"])


def test_constructor_converts_to_float32_c_contiguous() -> None:
    rng = np.random.default_rng(0)
    corpus = np.asfortranarray(_unit(rng, 5, 4).astype(np.float64))
    emb = Embeddings(corpus, list("abcde"), _unit(rng, 2, 4), ["x", "y"], {})
    assert emb.corpus.dtype == np.float32 and emb.corpus.flags.c_contiguous


@pytest.mark.parametrize(
    ("corpus", "corpus_ids", "queries", "pattern"),
    [
        (np.zeros((3, 4), np.float32), ["a", "b"], np.zeros((1, 4), np.float32), "3 rows but 2"),
        (np.zeros((2, 4), np.float32), ["a", "b"], np.zeros((1, 5), np.float32), "dimension 4"),
        (np.zeros(4, np.float32), ["a"], np.zeros((1, 4), np.float32), "2-d"),
        (np.zeros((2, 4), np.int64), ["a", "b"], np.zeros((1, 4), np.float32), "float array"),
    ],
)
def test_constructor_rejects_inconsistent_structure(
    corpus: np.ndarray, corpus_ids: list[str], queries: np.ndarray, pattern: str
) -> None:
    with pytest.raises(DataError, match=pattern):
        Embeddings(corpus, corpus_ids, queries, ["q"], {})


# --- validation on load -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["corpus.npy", "corpus_ids.txt", "queries.npy", "query_ids.txt", "meta.json"]
)
def test_load_names_a_missing_file(folder: Path, name: str) -> None:
    (folder / name).unlink()
    with pytest.raises(DataError, match=rf"{name}: missing"):
        load_embeddings(folder)


@pytest.mark.parametrize(("make", "problem"), [
    (lambda path: path.mkdir(), "a folder, not a file"),
    (lambda path: path.symlink_to(path.with_name("gone.npy")),
     r"a broken symbolic link \(to .*gone\.npy\)"),
])
def test_load_names_a_folder_or_broken_link_where_a_file_goes(
    folder: Path, make: Callable[[Path], None], problem: str
) -> None:
    """Both were called "missing" beside a file the user can see there."""
    (folder / "corpus.npy").unlink()
    make(folder / "corpus.npy")
    with pytest.raises(DataError, match=rf"corpus\.npy: {problem} \(an embeddings folder "
                                        r"needs corpus\.npy, "):
        load_embeddings(folder)


def test_load_of_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere: embeddings folder does not exist"):
        load_embeddings(tmp_path / "nowhere")


def test_load_rejects_more_rows_than_ids(folder: Path) -> None:
    (folder / "corpus_ids.txt").write_text("d0\nd1\nd2\n")
    with pytest.raises(DataError, match=r"corpus.npy: 6 rows but corpus_ids.txt has 3 ids"):
        load_embeddings(folder)


def test_load_rejects_duplicate_ids(folder: Path) -> None:
    (folder / "query_ids.txt").write_text("q0\nq1\nq0\n")
    with pytest.raises(DataError, match=r"query_ids.txt: line 3: duplicate id 'q0'"):
        load_embeddings(folder)


def test_load_rejects_an_empty_id_line(folder: Path) -> None:
    (folder / "query_ids.txt").write_text("q0\n\nq2\n")
    with pytest.raises(DataError, match=r"query_ids.txt: line 2: empty id"):
        load_embeddings(folder)


def test_load_rejects_an_id_with_a_line_break(folder: Path) -> None:
    (folder / "query_ids.txt").write_bytes(b"q0\nq\r1\nq2\n")
    with pytest.raises(DataError, match=r"query_ids.txt: line 2: id 'q\\r1' contains a line break"):
        load_embeddings(folder)


def test_load_tolerates_crlf_id_files(folder: Path) -> None:
    (folder / "query_ids.txt").write_bytes(b"q0\r\nq1\r\nq2\r\n")
    assert load_embeddings(folder).query_ids == ["q0", "q1", "q2"]


def test_load_drops_a_byte_order_mark_from_id_files(folder: Path) -> None:
    (folder / "query_ids.txt").write_bytes(b"\xef\xbb\xbfq0\r\nq1\r\nq2\r\n")
    assert load_embeddings(folder).query_ids == ["q0", "q1", "q2"]


@pytest.mark.parametrize(("raw", "where"), [
    (b"q0\nq1\nq\xe92\n", r"line 3: not valid UTF-8 \(byte 1\)"),
    (b"\xef\xbb\xbfq0\r\n\xffq1\r\nq2\r\n", r"line 2: not valid UTF-8 \(byte 0\)"),
    ("q0\nq1\nq2\n".encode("utf-16"), r"line 1: not valid UTF-8 \(byte 0\)"),
])
def test_load_names_the_line_of_a_bad_byte_in_an_id_file(folder: Path, raw: bytes,
                                                          where: str) -> None:
    # it named no line, and quoted Python's codec message
    (folder / "query_ids.txt").write_bytes(raw)
    with pytest.raises(DataError, match=rf"query_ids.txt: {where}$"):
        load_embeddings(folder)


def test_load_rejects_a_matrix_that_is_not_2d(folder: Path) -> None:
    np.save(folder / "queries.npy", np.ones((3, 2, 4), np.float32))
    with pytest.raises(DataError, match=r"queries.npy: expected a 2-d .* shape \(3, 2, 4\)"):
        load_embeddings(folder)


def test_load_rejects_integer_embeddings(folder: Path) -> None:
    np.save(folder / "corpus.npy", np.ones((6, 8), np.int32))
    with pytest.raises(DataError, match=r"corpus.npy: expected float embeddings, got dtype int32"):
        load_embeddings(folder)


def test_load_names_a_structured_array_by_its_dtype(folder: Path) -> None:
    # its shape is (6,): the 1-d message told to save one vector as (1, 6)
    np.save(folder / "corpus.npy", np.zeros(6, dtype=[("v", "<f4", (8,))]))
    with pytest.raises(DataError, match=r"corpus.npy: expected float embeddings, got dtype \["):
        load_embeddings(folder)


@pytest.mark.parametrize("mmap", [False, True])
def test_load_names_a_float64_row_beyond_float32(folder: Path, mmap: bool,
                                                 recwarn: pytest.WarningsRecorder) -> None:
    # numpy's overflow warning printed a second line, then the row was "NaN or inf"
    corpus = np.load(folder / "corpus.npy").astype(np.float64)
    corpus[2, 5] = 1e300
    np.save(folder / "corpus.npy", corpus)
    with pytest.raises(DataError, match=r"corpus.npy: row 2 has a value beyond float32's range"):
        load_embeddings(folder, mmap=mmap)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_load_names_a_float64_row_too_small_for_float32(folder: Path) -> None:
    # it became zeros in float32 and was refused as "all zeros", which it is not
    corpus = np.load(folder / "corpus.npy").astype(np.float64)
    corpus[3] *= 1e-50
    np.save(folder / "corpus.npy", corpus)
    with pytest.raises(DataError, match=r"corpus.npy: row 3 has only values below float32's "
                                        r"smallest .*read as all zeros; scale the rows"):
        load_embeddings(folder)


def test_load_converts_float64_to_float32(folder: Path) -> None:
    corpus = np.load(folder / "corpus.npy")
    np.save(folder / "corpus.npy", corpus.astype(np.float64))
    back = load_embeddings(folder)
    assert back.corpus.dtype == np.float32
    np.testing.assert_allclose(back.corpus, corpus)


def test_load_rejects_corpus_and_query_dimensions_that_differ(folder: Path) -> None:
    np.save(folder / "queries.npy", _unit(np.random.default_rng(0), 3, 5))
    with pytest.raises(DataError, match=r"queries.npy: dimension 5 differs from corpus.npy's 8"):
        load_embeddings(folder)


@pytest.mark.parametrize(
    ("key", "value", "pattern"),
    [
        ("dim", 384, r"meta.json: dim is 384 but corpus.npy has 8"),
        ("n_corpus", 7, r"meta.json: n_corpus is 7 but corpus.npy has 6 rows"),
        ("n_queries", 1, r"meta.json: n_queries is 1 but queries.npy has 3 rows"),
        ("normalized", "false", r"meta.json: normalized must be true or false, got 'false'"),
    ],
)
def test_load_rejects_meta_that_disagrees(folder: Path, key: str, value: Any,
                                          pattern: str) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    meta[key] = value
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=pattern):
        load_embeddings(folder)


def test_load_reads_a_meta_file_saved_with_a_byte_order_mark(folder: Path) -> None:
    """An editor (Windows Notepad) may save meta.json with a UTF-8 byte-order mark: it was
    refused as "not valid JSON", where config.json and the dataset's files load."""
    meta = folder / "meta.json"
    expected = load_embeddings(folder).meta
    meta.write_bytes(b"\xef\xbb\xbf" + meta.read_bytes())
    assert load_embeddings(folder).meta == expected


def test_load_rejects_invalid_meta_json(folder: Path) -> None:
    (folder / "meta.json").write_text("{not json")
    with pytest.raises(DataError, match=r"meta.json: not valid JSON"):
        load_embeddings(folder)


@pytest.mark.parametrize(("name", "row", "value"), [("corpus", 4, np.nan), ("queries", 1, np.inf)])
def test_load_names_a_non_finite_row(folder: Path, name: str, row: int, value: float) -> None:
    arr = np.load(folder / f"{name}.npy")
    arr[row, 3] = value
    np.save(folder / f"{name}.npy", arr)
    with pytest.raises(DataError, match=rf"{name}.npy: row {row} contains NaN or inf"):
        load_embeddings(folder)


def test_load_names_a_non_finite_row_past_the_first_block(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows are checked in blocks: a NaN in a later block is named by its row in the file,
    not by its place in its block."""
    import dive.embed.store as store

    monkeypatch.setattr(store, "_CHUNK_ROWS", 2)
    arr = np.load(folder / "corpus.npy")
    arr[5, 0] = np.nan  # the third block's second row
    np.save(folder / "corpus.npy", arr)
    with pytest.raises(DataError, match=r"corpus.npy: row 5 contains NaN or inf"):
        load_embeddings(folder)


@pytest.mark.parametrize(("normalized", "damage", "said"), [
    (False, lambda row: row * 0.0, r"row 5 is all zeros"),
    (True, lambda row: row * 0.5, r"row 5 has norm 0\.5"),
], ids=["zero", "norm"])
def test_load_names_a_zero_or_off_norm_row_past_the_first_block(
    folder: Path, monkeypatch: pytest.MonkeyPatch, normalized: bool,
    damage: Callable[[np.ndarray], np.ndarray], said: str
) -> None:
    """As a NaN is: an all-zero row or one off unit norm in a later block was named by its
    place in its block (row 1), not by its row in the file."""
    import dive.embed.store as store

    monkeypatch.setattr(store, "_CHUNK_ROWS", 2)
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "normalized": normalized}))
    arr = np.load(folder / "corpus.npy")
    arr[5] = damage(arr[5])  # the third block's second row
    np.save(folder / "corpus.npy", arr)
    with pytest.raises(DataError, match=rf"corpus.npy: {said}"):
        load_embeddings(folder)


@pytest.mark.parametrize("name", ["corpus", "queries"])
def test_load_names_an_all_zero_row_of_an_unnormalised_folder(folder: Path, name: str) -> None:
    """Only a folder marked normalized had its norms checked: a zero row elsewhere failed
    later naming a row of some subset and no file, or (a query of the training half scored
    by frozen) not at all."""
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "normalized": False}))
    arr = np.load(folder / f"{name}.npy")
    arr[1] = 0.0
    np.save(folder / f"{name}.npy", arr)
    with pytest.raises(DataError, match=rf"{name}.npy: row 1 is all zeros"):
        load_embeddings(folder)


def test_ids_files_are_read_without_surrounding_whitespace(folder: Path) -> None:
    """`d0 ` in corpus_ids.txt was the id 'd0 ', which no document has, where every other ids
    file (an import's, the dataset's) reads it as d0."""
    ids = (folder / "corpus_ids.txt").read_text().splitlines()
    (folder / "corpus_ids.txt").write_text("".join(f"{i} \n" for i in ids))
    assert load_embeddings(folder).corpus_ids == ids


def test_load_names_a_row_that_is_not_unit_norm(folder: Path) -> None:
    arr = np.load(folder / "corpus.npy")
    arr[5] *= 0.5
    np.save(folder / "corpus.npy", arr)
    with pytest.raises(DataError, match=r"corpus.npy: row 5 has norm 0.5"):
        load_embeddings(folder)


def test_load_refuses_a_norm_just_past_the_unit_norm_tolerance(folder: Path) -> None:
    """A folder marked normalized holds unit vectors to within `UNIT_NORM_TOLERANCE`: a norm
    three tolerances off is refused."""
    from dive.arrays import UNIT_NORM_TOLERANCE

    arr = np.load(folder / "corpus.npy")
    arr[5] *= np.float32(1 + 3 * UNIT_NORM_TOLERANCE)
    np.save(folder / "corpus.npy", arr)
    with pytest.raises(DataError, match=r"corpus.npy: row 5 has norm 1\.003"):
        load_embeddings(folder)


@pytest.mark.parametrize("mmap", [False, True])
def test_load_rejects_a_truncated_npy(folder: Path, mmap: bool) -> None:
    data = (folder / "corpus.npy").read_bytes()
    (folder / "corpus.npy").write_bytes(data[: len(data) - 40])
    with pytest.raises(DataError, match=r"corpus.npy: not a readable .npy array"):
        load_embeddings(folder, mmap=mmap)


def test_load_rejects_a_file_that_is_not_npy(folder: Path) -> None:
    (folder / "queries.npy").write_bytes(b"this is not an npy file at all")
    # said plainly, not numpy's words about pickled data
    with pytest.raises(DataError, match=r"queries.npy: not a readable .npy array \(no .npy "
                                        r"header\)$"):
        load_embeddings(folder)


def test_load_rejects_pickled_object_arrays(folder: Path) -> None:
    np.save(folder / "queries.npy", np.array([[1, "x"]], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"queries.npy: not a readable .npy array"):
        load_embeddings(folder)


# --- the shared copies --------------------------------------------------------------------


def _shared_embeddings_root() -> Path | None:
    candidates = [os.environ.get("DIVE_EMBEDDINGS"), REPO.parent / "shared/data/embeddings"]
    candidates.append("/work/shared/data/embeddings")
    for candidate in candidates:
        if candidate and (Path(candidate) / "all-MiniLM-L6-v2").is_dir():
            return Path(candidate)
    return None


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("dataset", "n_docs", "n_queries"), [("scifact", 5183, 1109), ("nfcorpus", 3633, 3237)]
)
def test_shared_embeddings_load_and_validate(dataset: str, n_docs: int, n_queries: int) -> None:
    root = _shared_embeddings_root()
    if root is None:
        pytest.skip("shared embeddings not found (set DIVE_EMBEDDINGS or place ../shared/data)")
    folder = root / "all-MiniLM-L6-v2" / dataset
    if not folder.is_dir():
        pytest.skip(f"{folder} absent")
    emb = load_embeddings(folder, mmap=True)
    assert emb.corpus.shape == (n_docs, 384) and emb.queries.shape == (n_queries, 384)
    assert emb.meta["model"] == "all-MiniLM-L6-v2"
    assert len(set(emb.corpus_ids)) == n_docs
    assert emb.query_rows(emb.query_ids[:2]).shape == (2, 384)


WRITER = """
import sys, numpy as np
from dive.embed import Embeddings, save_embeddings
rng = np.random.default_rng(0)
x = rng.standard_normal((200, 8)).astype(np.float32)
x /= np.linalg.norm(x, axis=1, keepdims=True)
saves = [Embeddings(sign * x[:150], [f"d{i}" for i in range(150)], sign * x[150:],
                    [f"q{i}" for i in range(50)], {"model": "toy-model"}) for sign in (1, -1)]
i = 0
while True:
    save_embeddings(sys.argv[1], saves[i % 2], overwrite=True)
    i += 1
"""


@pytest.mark.parametrize("mmap", [False, True])
def test_a_load_during_saves_with_overwrite_gets_one_whole_save(tmp_path: Path,
                                                                mmap: bool) -> None:
    """The files were read one by one while a save with overwrite swapped the folder: a
    probe's loads paired one import's corpus with the other's queries, about one load in
    seven swaps, without an error."""
    import subprocess
    import sys
    import time

    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    target = tmp_path / "emb"
    save_embeddings(target, Embeddings(x[:150], [f"d{i}" for i in range(150)], x[150:],
                                       [f"q{i}" for i in range(50)], {"model": "toy-model"}))
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target)])
    loads, mixed = 0, 0
    try:
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            emb = load_embeddings(target, mmap=mmap)
            loads += 1
            sign = 1 if np.array_equal(emb.corpus, x[:150]) else -1
            assert np.array_equal(emb.corpus, sign * x[:150])
            mixed += not np.array_equal(emb.queries, sign * x[150:])
    finally:
        writer.kill()
        writer.wait()
    assert loads > 50, f"only {loads} loads in 4 s; the test did not race"
    assert mixed == 0, f"{mixed} of {loads} loads paired one save's corpus with another's"


def test_blank_lines_closing_an_ids_file_are_skipped(folder: Path) -> None:
    """As the dataset reader skips them: an editor's extra newline was 'line 4: empty id'
    for a file whose 3 ids matched the 3 rows."""
    want = load_embeddings(folder).query_ids
    (folder / "query_ids.txt").write_text("".join(f"{q}\n" for q in want) + "\n\r\n")
    assert load_embeddings(folder).query_ids == want


def test_save_returns_the_meta_a_load_of_the_folder_gives(tmp_path: Path) -> None:
    """`dive.embed(dataset, out)` returned a meta without dim, n_corpus and n_queries, which a
    load of the folder it had just written has: `emb.meta["dim"]` was a KeyError."""
    written = save_embeddings(tmp_path / "e", _emb(n_docs=6, n_queries=3))
    back = load_embeddings(tmp_path / "e")
    assert {k: v for k, v in back.meta.items() if k != "source"} == written
    assert (written["dim"], written["n_corpus"], written["n_queries"]) == (8, 6, 3)


def test_the_repr_is_a_summary_not_every_id() -> None:
    """Printing loaded SciFact embeddings (or an index of them) listed every id: 70 KB."""
    import numpy as np

    from dive.export import build_index

    n = 3000
    unit = np.eye(n, 8, dtype=np.float32)
    unit[8:, 0] = 1.0
    emb = Embeddings(unit, [f"doc{i}" for i in range(n)], unit[:2], ["q0", "q1"],
                     {"model": "m", "dataset": "toy"})
    assert repr(emb) == "Embeddings(n_corpus=3000, n_queries=2, dim=8, model='m', dataset='toy')"
    index = build_index(emb.corpus, ids=emb.corpus_ids)
    assert repr(index).startswith("SearchIndex(") and "n=3000" in repr(index)
    assert len(repr(index)) < 200


@pytest.mark.parametrize(("layout", "said"), [
    ("fortran", "in Fortran order"), ("float64", "float64, not float32"),
])
def test_a_file_that_cannot_be_mapped_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, layout: str, said: str
) -> None:
    # it said "dtype float32 / non-C order, converted to float32" of a float32 Fortran file,
    # and "non-C order" of a C-order float64 one
    from dive.embed.store import read_matrix

    x = np.eye(4, 8, dtype=np.float32)
    np.save(tmp_path / "x.npy",
            np.asfortranarray(x) if layout == "fortran" else x.astype(np.float64))
    with caplog.at_level(logging.WARNING, logger="dive.embed.store"):
        np.testing.assert_array_equal(read_matrix(tmp_path / "x.npy", mmap=True), x)
    assert f"x.npy: {said}, so it is read into memory (as float32 rows), not mapped" in caplog.text
