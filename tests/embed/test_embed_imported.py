"""Vectors made elsewhere (Parquet, `.npy` + ids) into a validated embeddings folder, on the tiny
BEIR dataset of tests/conftest.py with its planted vectors standing in for an API's.

Bad vectors (duplicate ids, ids not in the dataset, ids without a vector, ragged, NaN or zero
rows) are checked through the CLI, message and all, in tests/test_cli_bad_inputs.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from dive.data import Dataset, load_beir
from dive.embed import from_npy, from_parquet, get_embeddings, load_embeddings
from dive.errors import DataError, DiveError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _vectors(emb_dir: Path, kind: str) -> tuple[list[str], np.ndarray]:
    ids = (emb_dir / f"{'corpus' if kind == 'corpus' else 'query'}_ids.txt").read_text().split()
    return ids, np.load(emb_dir / f"{'corpus' if kind == 'corpus' else 'queries'}.npy")


def write_parquet(path: Path, ids: list[str], x: np.ndarray | list[list[float]],
                  *, fixed: bool = True) -> Path:
    if fixed:
        arr = np.asarray(x, dtype=np.float32)
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(-1)), arr.shape[1])
    else:
        vectors = pa.array([list(map(float, row)) for row in x], type=pa.list_(pa.float32()))
    pq.write_table(pa.table({"doc_id": ids, "embedding": vectors}), path)
    return path


@dataclass
class Api:
    """The tiny dataset and, per kind, (ids, vectors) as an API hands them over (shuffled,
    scaled by 2-5), with the unit vectors in the ids' order."""

    dataset: Dataset
    corpus: tuple[list[str], np.ndarray, np.ndarray]
    queries: tuple[list[str], np.ndarray, np.ndarray]

    def __getitem__(self, kind: str) -> tuple[list[str], np.ndarray, np.ndarray]:
        return self.corpus if kind == "corpus" else self.queries


@pytest.fixture()
def api(tiny: tuple[Path, Path]) -> Api:
    rng = np.random.default_rng(1)
    made = []
    for kind in ("corpus", "queries"):
        ids, x = _vectors(tiny[1], kind)
        order = rng.permutation(len(ids))
        scaled = x[order] * rng.uniform(2, 5, (len(ids), 1)).astype(np.float32)
        made.append(([ids[i] for i in order], scaled, x[order]))
    return Api(load_beir(tiny[0]), made[0], made[1])


def _parquet_pair(api: Api, tmp_path: Path) -> tuple[Path, Path]:
    paths = []
    for kind in ("corpus", "queries"):
        ids, x, _ = api[kind]
        paths.append(write_parquet(tmp_path / f"{kind}.parquet", ids, x))
    return paths[0], paths[1]


def test_parquet_vectors_become_a_folder_in_dataset_order_with_norms_measured(
    api: Api, tmp_path: Path, tiny: tuple[Path, Path]
) -> None:
    corpus, queries = _parquet_pair(api, tmp_path)
    dataset = api.dataset
    emb = from_parquet(dataset, corpus, queries, tmp_path / "imported", id_column="doc_id",
                       vector_column="embedding", model="my-api-model")
    stored = load_embeddings(tmp_path / "imported")
    assert stored.corpus_ids == dataset.corpus_ids and stored.query_ids == dataset.query_ids
    unit = stored.corpus / np.linalg.norm(stored.corpus, axis=1, keepdims=True)
    np.testing.assert_allclose(unit, _vectors(tiny[1], "corpus")[1], atol=1e-6)
    meta = json.loads((tmp_path / "imported" / "meta.json").read_text())
    assert meta["normalized"] is False and meta["model"] == "my-api-model"
    assert 2 <= meta["norms"]["corpus"]["min"] < meta["norms"]["corpus"]["max"] <= 5
    assert meta["imported_from"]["corpus"] == str(corpus)
    assert meta["text_sha256"] and emb.meta["source"] == str(tmp_path / "imported")
    # The folder is what evaluate/fit then read.
    got = get_embeddings(dataset, "my-api-model", embeddings_dir=tmp_path / "imported")
    assert got.dim == 32


def test_unit_vectors_are_recorded_as_normalized(api: Api, tmp_path: Path) -> None:
    paths = []
    for kind in ("corpus", "queries"):
        ids, _, x = api[kind]
        order = np.argsort(ids)
        paths.append(write_parquet(tmp_path / f"{kind}.parquet", [ids[i] for i in order],
                                   x[order], fixed=False))
    from_parquet(api.dataset, *paths, tmp_path / "imported", id_column="doc_id",
                 vector_column="embedding")
    meta = json.loads((tmp_path / "imported" / "meta.json").read_text())
    assert meta["normalized"] is True and meta["model"] == "imported"


def test_vectors_with_norms_from_1_to_2_are_not_recorded_as_normalized(
    api: Api, tmp_path: Path
) -> None:
    """The smallest norm is 1, the largest 2: both ends are checked, not just the smallest."""
    paths = []
    for kind in ("corpus", "queries"):
        ids, _, x = api[kind]
        scale = np.linspace(1, 2, len(ids), dtype=np.float32)[:, None]
        paths.append(write_parquet(tmp_path / f"{kind}.parquet", ids, x * scale))
    from_parquet(api.dataset, *paths, tmp_path / "imported", id_column="doc_id",
                 vector_column="embedding")
    meta = json.loads((tmp_path / "imported" / "meta.json").read_text())
    assert meta["normalized"] is False
    assert meta["norms"]["corpus"]["min"] == pytest.approx(1, abs=1e-6)
    assert meta["norms"]["corpus"]["max"] == pytest.approx(2, abs=1e-6)
    assert load_embeddings(tmp_path / "imported").corpus.shape[0] == len(api.corpus[0])


def test_npy_vectors_with_ids_files(api: Api, tmp_path: Path) -> None:
    files = []
    for kind in ("corpus", "queries"):
        ids, x, _ = api[kind]
        np.save(tmp_path / f"{kind}.npy", x.astype(np.float64))  # any float dtype
        (tmp_path / f"{kind}.txt").write_text("\n".join(ids) + "\n")
        files += [tmp_path / f"{kind}.npy", tmp_path / f"{kind}.txt"]
    emb = from_npy(api.dataset, *files, tmp_path / "imported")
    assert emb.meta["imported_from"]["format"] == "npy"
    assert load_embeddings(tmp_path / "imported").corpus.dtype == np.float32


def test_an_import_returns_once_its_folder_is_in_place_without_another_pass_over_its_ids(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The result was built anew once the folder was in place, its every id converted again
    (tens of ms for 200,000 ids): a Ctrl-C then said "no output was written" over the
    folder just written. The result is the checked object with the meta as saved."""
    import dive.embed.imported as imported
    from tests.conftest import no_embeddings_built_after_saving

    no_embeddings_built_after_saving(monkeypatch, imported)
    corpus, queries = _parquet_pair(api, tmp_path)
    emb = from_parquet(api.dataset, corpus, queries, tmp_path / "imported", id_column="doc_id",
                       vector_column="embedding")
    saved = json.loads((tmp_path / "imported" / "meta.json").read_text())
    assert emb.meta == {**saved, "source": str(tmp_path / "imported")}
    assert emb.corpus_ids == api.dataset.corpus_ids


def test_an_import_labelled_with_a_local_model_folder_records_its_resolved_path(
    api: Api, tmp_path: Path, local_model: Callable[[str], Path]
) -> None:
    # recorded as typed, `./m` named another folder read from elsewhere
    folder = local_model("m")
    emb = from_parquet(api.dataset, *_parquet_pair(api, tmp_path), tmp_path / "imported",
                       id_column="doc_id", vector_column="embedding", model="./m")
    assert emb.meta["model"] == str(folder)
    assert json.loads((tmp_path / "imported" / "meta.json").read_text())["model"] == str(folder)


def test_an_npy_import_names_the_ids_file_line_of_an_unknown_id(api: Api, tmp_path: Path) -> None:
    # the message named the .npy's row, though the id came from the ids file
    ids, x, _ = api["corpus"]
    np.save(tmp_path / "c.npy", x)
    (tmp_path / "c.txt").write_text("\n".join([ids[0] + "x", *ids[1:]]) + "\n")
    query_ids, queries, _ = api["queries"]
    np.save(tmp_path / "q.npy", queries)
    (tmp_path / "q.txt").write_text("\n".join(query_ids) + "\n")
    with pytest.raises(DataError, match=rf"c\.txt: line 1: id '{ids[0]}x' is not in the corpus"):
        from_npy(api.dataset, tmp_path / "c.npy", tmp_path / "c.txt", tmp_path / "q.npy",
                 tmp_path / "q.txt", tmp_path / "imported")


def _npy_files(api: Api, tmp_path: Path, spell: Callable[[str], str]) -> list[Path]:
    """`from_npy`'s four files (vectors, ids; corpus, then queries), each id written `spell(id)`."""
    files = []
    for kind in ("corpus", "queries"):
        ids, x, _ = api[kind]
        np.save(tmp_path / f"{kind}.npy", x)
        (tmp_path / f"{kind}.txt").write_text("".join(f"{spell(i)}\n" for i in ids),
                                              encoding="utf-8")
        files += [tmp_path / f"{kind}.npy", tmp_path / f"{kind}.txt"]
    return files


def _import_corpus_ids(api: Api, tmp_path: Path, spell: Callable[[str], str]) -> list[str]:
    """The corpus ids of a Parquet import whose id column spells each id as `spell` does."""
    ids, x, _ = api["corpus"]
    corpus = write_parquet(tmp_path / "c.parquet", [spell(i) for i in ids], x)
    _, queries = _parquet_pair(api, tmp_path)
    from_parquet(api.dataset, corpus, queries, tmp_path / "parquet", id_column="doc_id",
                 vector_column="embedding")
    return load_embeddings(tmp_path / "parquet").corpus_ids


def test_imported_ids_are_read_without_surrounding_whitespace(api: Api, tmp_path: Path) -> None:
    # the dataset's ids are stripped, so an ids file or id column written from a corpus
    # whose ids had a trailing space names its documents all the same
    files = _npy_files(api, tmp_path, lambda i: f"{i} ")
    from_npy(api.dataset, *files, tmp_path / "npy")
    assert _import_corpus_ids(api, tmp_path, lambda i: f"\t{i}") == api.dataset.corpus_ids
    ids, x, _ = api["corpus"]
    _, queries = _parquet_pair(api, tmp_path)
    (tmp_path / "corpus.txt").write_text(" \n" + "".join(f"{i}\n" for i in ids[1:]))
    with pytest.raises(DataError, match=r"corpus\.txt: line 1: empty id$"):
        from_npy(api.dataset, *files, tmp_path / "npy2")
    corpus = write_parquet(tmp_path / "c.parquet", ["  ", *ids[1:]], x)
    with pytest.raises(DataError, match=r"c\.parquet: row 0: the id is empty$"):
        from_parquet(api.dataset, corpus, queries, tmp_path / "parquet2", id_column="doc_id",
                     vector_column="embedding")


def test_imported_ids_lose_invisible_characters_at_their_ends(api: Api, tmp_path: Path) -> None:
    # a zero-width space or a byte-order mark at an id's ends (copy-paste, files joined) was
    # kept: the id was "not in the corpus"
    files = _npy_files(api, tmp_path, lambda i: f"\ufeff{i}\u200b")
    from_npy(api.dataset, *files, tmp_path / "npy")
    assert load_embeddings(tmp_path / "npy").corpus_ids == api.dataset.corpus_ids
    assert (_import_corpus_ids(api, tmp_path, lambda i: f"\u200b{i}\ufeff")
            == api.dataset.corpus_ids)


def test_query_vectors_of_another_dimension(api: Api, tmp_path: Path) -> None:
    corpus, _ = _parquet_pair(api, tmp_path)
    ids, x, _ = api["queries"]
    queries = write_parquet(tmp_path / "q.parquet", ids, x[:, :16])
    with pytest.raises(DataError, match=r"q\.parquet: vectors have dimension 16, but the corpus "
                                        r"vectors \(.*corpus\.parquet\) have 32"):
        from_parquet(api.dataset, corpus, queries, tmp_path / "imported",
                     id_column="doc_id", vector_column="embedding")


def test_a_missing_column_lists_the_columns(api: Api, tmp_path: Path) -> None:
    corpus, queries = _parquet_pair(api, tmp_path)
    with pytest.raises(DataError, match=r"no vector column 'vector' \(columns: doc_id, "
                                        r"embedding\)"):
        from_parquet(api.dataset, corpus, queries, tmp_path / "imported",
                     id_column="doc_id")


def test_an_import_without_an_id_column_says_ids_are_needed(api: Api, tmp_path: Path) -> None:
    # it said "no id column ''; pass --id-column '' to carry no ids", which is compress's way
    corpus, queries = _parquet_pair(api, tmp_path)
    with pytest.raises(DataError, match=r"corpus\.parquet: embeddings need ids; name the id "
                                        r"column \(got ''\)"):
        from_parquet(api.dataset, corpus, queries, tmp_path / "imported", id_column="")


def test_npy_rows_must_match_the_ids(api: Api, tmp_path: Path) -> None:
    ids, x, _ = api["corpus"]
    np.save(tmp_path / "c.npy", x)
    (tmp_path / "c.txt").write_text("\n".join(ids[:-2]) + "\n")
    with pytest.raises(DataError, match=r"c\.npy: 120 rows but .*c\.txt has 118 ids"):
        from_npy(api.dataset, tmp_path / "c.npy", tmp_path / "c.txt",
                 tmp_path / "c.npy", tmp_path / "c.txt", tmp_path / "imported")


def test_an_existing_output_is_kept_without_overwrite(api: Api,
                                                      tmp_path: Path) -> None:
    corpus, queries = _parquet_pair(api, tmp_path)
    args = (api.dataset, corpus, queries, tmp_path / "imported")
    from_parquet(*args, id_column="doc_id", vector_column="embedding")
    with pytest.raises(DiveError, match="already exists"):
        from_parquet(*args, id_column="doc_id", vector_column="embedding")
    from_parquet(*args, id_column="doc_id", vector_column="embedding",
                 overwrite=True)


def test_import_vectors_takes_vectors_with_their_ids_and_names_an_array(
        api: Api, tmp_path: Path) -> None:
    """The exported `import_vectors` took only a class it did not export, and an array was
    "AttributeError: 'numpy.ndarray' object has no attribute 'array'"."""
    from dive.embed import Vectors, import_vectors

    with pytest.raises(DiveError, match=r"^import_vectors: corpus is .*; expected "
                                        r"dive\.embed\.Vectors\(ids, array, where\)$"):
        import_vectors(api.dataset, api["corpus"][1], api["queries"][1], tmp_path / "x")
    emb = import_vectors(api.dataset, Vectors(api["corpus"][0], api["corpus"][1], "my-api"),
                         Vectors(api["queries"][0], api["queries"][1], "my-api"), tmp_path / "y")
    order = [api["corpus"][0].index(i) for i in emb.corpus_ids]
    np.testing.assert_allclose(emb.corpus, api["corpus"][1][order], atol=1e-6)
    assert not (tmp_path / "x").exists()


def test_vectors_made_by_hand_are_checked_as_the_readers_check_them(api: Api,
                                                                    tmp_path: Path) -> None:
    """One row more than ids (a header row) paired every id with another row's vector, without
    a word; one fewer was an IndexError, a list an AttributeError, integer ids a TypeError."""
    from dive.embed import Vectors

    ids, x, _ = api["corpus"]
    header = np.vstack([np.full((1, x.shape[1]), 0.05, np.float32), x])
    for array, message in [(header, rf"^my-api: {len(ids) + 1} rows but {len(ids)} ids$"),
                           (x[:-1], rf"^my-api: {len(ids) - 1} rows but {len(ids)} ids$"),
                           (x.tolist(), r"^my-api: the vectors are a list; expected a numpy"),
                           (x[0], r"^my-api: expected a 2-d \(n, dim\) array"),
                           (x.astype(np.int64), r"^my-api: expected float embeddings")]:
        with pytest.raises(DataError, match=message):
            Vectors(ids, array, "my-api")
    with pytest.raises(DataError, match=r"^my-api: row 1: the id is None; expected text"):
        Vectors([ids[0], None, *ids[2:]], x, "my-api")
    assert Vectors(list(range(len(ids))), x, "my-api").ids[:2] == ["0", "1"]  # as Parquet's
    for odd, kind in [("abc", "a str"), (None, "None")]:  # one id a character; a TypeError
        with pytest.raises(DataError, match=rf"^my-api: the ids are {kind}.*; expected a list"):
            Vectors(odd, x[:3], "my-api")  # type: ignore[arg-type]


def test_an_import_records_the_files_it_read_as_absolute_paths(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative as typed, they named other files (or none) from any other folder."""
    corpus, queries = _parquet_pair(api, tmp_path)
    monkeypatch.chdir(tmp_path)
    from_parquet(api.dataset, corpus.name, queries.name, tmp_path / "imported",
                 id_column="doc_id", vector_column="embedding")
    meta = json.loads((tmp_path / "imported" / "meta.json").read_text())
    assert (meta["imported_from"]["corpus"], meta["imported_from"]["queries"]) == (
        str(corpus), str(queries))


def test_vectors_of_another_dimension_are_not_labelled_as_the_default_model(
        api: Api, tmp_path: Path) -> None:
    """768-d vectors imported as all-MiniLM-L6-v2 (384-d) were written with that label, and
    every later record named the wrong model."""
    from dive.embed import Vectors, import_vectors

    corpus = Vectors(api["corpus"][0], api["corpus"][1], "my-api")  # 32-d
    queries = Vectors(api["queries"][0], api["queries"][1], "my-api")
    for label in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        with pytest.raises(DataError, match=r"^my-api: vectors have dimension 32, but "
                                            r"all-MiniLM-L6-v2 makes 384-d ones: label them"):
            import_vectors(api.dataset, corpus, queries, tmp_path / "x", model=label)
    assert not (tmp_path / "x").exists()
    import_vectors(api.dataset, corpus, queries, tmp_path / "y", model="my-32d-model")


def test_a_parquet_row_past_the_first_chunk_is_named_by_its_row_in_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file is read in chunks: an empty id or a null vector in a later chunk was named by
    its place in its chunk (row 1), not by its row in the file (row 3)."""
    import dive.embed.imported as imported

    monkeypatch.setattr(imported, "_CHUNK_ROWS", 2)
    rows: list[list[float] | None] = [[0.1, 0.2, 0.3, 0.4]] * 6
    ids = [f"d{i}" for i in range(6)]
    vector_type = pa.list_(pa.float32(), 4)
    empty_id = [*ids[:3], "", *ids[4:]]
    pq.write_table(pa.table({"id": empty_id, "vector": pa.array(rows, type=vector_type)}),
                   tmp_path / "a.parquet")
    with pytest.raises(DataError, match=r"a\.parquet: row 3: the id is empty$"):
        imported.read_parquet_vectors(tmp_path / "a.parquet")
    null_row = [*rows[:3], None, *rows[4:]]
    pq.write_table(pa.table({"id": ids, "vector": pa.array(null_row, type=vector_type)}),
                   tmp_path / "b.parquet")
    with pytest.raises(DataError, match=r"b\.parquet: row 3 \(id 'd3'\): "):
        imported.read_parquet_vectors(tmp_path / "b.parquet")


def test_a_dictionary_encoded_id_column_is_read_as_its_ids(tmp_path: Path) -> None:
    """pandas writes a categorical column (and some tools repeated strings) as a dictionary:
    its ids were refused as "not strings or integers"."""
    from dive.embed.imported import read_parquet_vectors

    ids = pa.array([f"d{i}" for i in range(3)]).dictionary_encode()
    vectors = pa.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], type=pa.list_(pa.float32(), 2))
    pq.write_table(pa.table({"id": ids, "vector": vectors}), tmp_path / "c.parquet")
    assert read_parquet_vectors(tmp_path / "c.parquet").ids == ["d0", "d1", "d2"]


def test_bool_ids_are_refused_not_read_as_true_and_false() -> None:
    """A bool is an int to Python: a column of flags passed as ids became 'True', 'False'."""
    from dive.embed import Vectors

    with pytest.raises(DataError, match=r"^my-api: row 0: the id is a bool; expected text"):
        Vectors([True, False], np.ones((2, 3), np.float32), "my-api")


def test_unknown_ids_are_counted_in_the_message(api: Api, tmp_path: Path) -> None:
    """The count of ids not in the dataset includes the one named (2 of 120, not 1)."""
    from dive.embed import Vectors, import_vectors

    ids, x, _ = api["corpus"]
    wrong = ["x1", ids[1], "x2", *ids[3:]]
    with pytest.raises(DataError, match=rf"^my-api: row 0: id 'x1' is not in the corpus of "
                                        rf"{api.dataset.name} \(2 of {len(ids)} ids are not\)$"):
        import_vectors(api.dataset, Vectors(wrong, x, "my-api"),
                       Vectors(api["queries"][0], api["queries"][1], "my-api"), tmp_path / "o")


def test_the_recorded_norm_mean_is_the_mean(api: Api, tmp_path: Path) -> None:
    """meta.json's mean norm is the mean: 119 unit vectors and one of norm 61 average 1.5,
    where their median (1) would hide the one far off."""
    from dive.embed import Vectors, import_vectors

    ids, _, unit = api["corpus"]
    assert len(ids) == 120
    scaled = unit.copy()
    scaled[0] *= 61.0
    emb = import_vectors(api.dataset, Vectors(ids, scaled, "my-api"),
                         Vectors(api["queries"][0], api["queries"][2], "my-api"), tmp_path / "o")
    assert emb.meta["norms"]["corpus"] == pytest.approx({"min": 1, "max": 61, "mean": 1.5},
                                                        abs=1e-5)
    assert emb.meta["norms"]["queries"]["mean"] == pytest.approx(1, abs=1e-5)


def test_an_import_records_the_dataset_path_resolved(
        api: Api, tmp_path: Path, tiny: tuple[Path, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A dataset loaded by a relative path was recorded as typed ('tiny'), which names another
    collection (or none) from any other folder, where encoding records it resolved."""
    from dive.embed import Vectors, import_vectors

    monkeypatch.chdir(tiny[0].parent)
    relative = load_beir(tiny[0].name)
    emb = import_vectors(relative, Vectors(api["corpus"][0], api["corpus"][1], "my-api"),
                         Vectors(api["queries"][0], api["queries"][1], "my-api"), tmp_path / "o")
    assert emb.meta["dataset_path"] == str(tiny[0].resolve())


@pytest.mark.parametrize("fmt", ["npy", "parquet"])
def test_an_existing_output_is_refused_before_the_inputs_are_read(
        api: Api, tmp_path: Path, fmt: str) -> None:
    """An import onto a folder already there, without overwrite, first read every input (a
    slow read of millions of vectors, or an error about them) before saying it would not
    write: the output is checked first."""
    out = tmp_path / "imported"
    from_parquet(api.dataset, *_parquet_pair(api, tmp_path), out, id_column="doc_id",
                 vector_column="embedding")
    gone = tmp_path / "missing"
    with pytest.raises(DiveError, match=r"imported: already exists; pass overwrite=True"):
        if fmt == "npy":
            from_npy(api.dataset, gone.with_suffix(".npy"), gone.with_suffix(".txt"),
                     gone.with_suffix(".npy"), gone.with_suffix(".txt"), out)
        else:
            from_parquet(api.dataset, gone.with_suffix(".parquet"),
                         gone.with_suffix(".parquet"), out)
