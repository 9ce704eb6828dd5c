"""The top-level Python API: `dive.embed`, `dive.fit`, `dive.load` (their docstring examples:
`tests/test_docstrings.py`)."""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dive
import dive.api
from dive.errors import DataError, DiveError


def test_embed_stays_callable_once_the_package_is_imported() -> None:
    code = ("import dive; f = dive.embed; import dive.embed.store, dive.embed.encode; "
            "assert callable(dive.embed) and dive.embed is f; "
            "from dive import embed, fit, load, save; print(sorted(dive.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "['__version__', 'embed', 'fit', 'load', 'save']"


def test_embed_shows_the_signature_of_the_function_it_calls() -> None:
    """`inspect.signature(dive.embed)` read `(*args, **kwargs)` (`help` renders the package,
    whose docstring names `dive.api.embed`)."""
    assert inspect.signature(dive.embed) == inspect.signature(dive.api.embed)
    assert "model" in inspect.signature(dive.embed).parameters


def test_fit_on_a_dataset_uses_its_labels_and_round_trips_through_save_and_load(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    data, emb = tiny
    model = dive.fit(data, method="dive", ratio=4, budget=16, embeddings=emb)
    assert model.fitted_runtime().output_dim == 8
    fit = model.fit_info_.summary
    assert fit is not None and 0 < fit.n_queries <= 16  # chosen on its labels
    dive.save(model, tmp_path / "m")
    loaded = dive.load(tmp_path / "m")
    assert loaded.summary["fit"] == fit.as_record()  # the saved config records the fit
    x = np.load(emb / "queries.npy")
    np.testing.assert_array_equal(loaded.transform(x), model.transform(x))


def test_fit_on_arrays_takes_graded_rows() -> None:
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((200, 32)).astype(np.float32)
    model = dive.fit(corpus, method="search-adaptor:steps=5", dim=8, queries=corpus[:10],
                     relevant=[{i: 2, (i + 1) % 200: 1} for i in range(10)])
    assert model.transform(corpus[:4]).shape == (4, 8)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({}, DiveError, "learns from labelled queries; pass queries="),
    ({"queries": np.ones((2, 32), np.float32), "relevant": [[0]]}, DataError,
     "relevant: 1 entries for 2 queries"),
    ({"queries": np.ones((1, 32), np.float32), "relevant": [[500]]}, DataError,
     "query 0 names row 500, outside the corpus's 200 rows"),
    ({"queries": np.ones((1, 16), np.float32), "relevant": [[0]]}, DataError,
     "queries: expected dimension 32, got 16"),
    ({"queries": np.ones((2, 32), np.float32), "relevant": [3, 17]}, DataError,
     r"query 0 has 3; expected a list of its relevant corpus rows"),
    ({"queries": np.ones((1, 32), np.float32), "relevant": ["12"]}, DataError,
     r"query 0 has '12'; expected a list"),
    ({"queries": np.ones((1, 32), np.float32), "relevant": [[1.5]]}, DataError,
     r"query 0 has 1\.5; rows and grades are integers"),
    ({"queries": np.ones((1, 32), np.float32), "relevant": [[True]]}, DataError,
     "query 0 has True; rows and grades are integers"),
    ({"queries": np.ones((1, 32), np.float32), "relevant": [{4: 0.5}]}, DataError,
     r"query 0 has 0\.5; rows and grades are integers"),
    # [row, grade] pairs read from JSON, or a 2-d array of rows: "unhashable type: 'list'"
    ({"queries": np.ones((1, 32), np.float32), "relevant": [[[0, 2]]]}, DataError,
     r"query 0 has \[0, 2\]; rows and grades are integers"),
    ({"queries": np.ones((1, 32), np.float32), "relevant": [np.array([[0]])]}, DataError,
     r"query 0 has array\(\[0\]\); rows and grades are integers"),
    ({"queries": np.ones((2, 32), np.float32), "relevant": [[], {3: 0}]}, DataError,
     r"no query has a relevant row \(a grade above 0\)"),
    # a dict keyed by query said "query 0 has 'q1'" (its first key), a generator raised
    # TypeError from len()
    ({"queries": np.ones((2, 32), np.float32), "relevant": {"q1": [3], "q2": [4]}}, DataError,
     r"^relevant is a dict; expected a list with one entry per row of queries= \(\[\[3, 17\], "
     r"\[42\], \.\.\.\]\), not keyed by query$"),
    ({"queries": np.ones((2, 32), np.float32), "relevant": ([i] for i in (3, 4))}, DataError,
     r"^relevant is a generator; expected a list with one entry per row of queries="),
    ({"queries": np.ones((2, 32), np.float32), "relevant": {3, 4}}, DataError,
     r"^relevant is a set; expected a list with one entry per row of queries="),
    # named by its row in the split it landed in ("validation queries: row 3")
    ({"queries": np.eye(12, 32, dtype=np.float32) * (np.arange(12) != 10)[:, None],
      "relevant": [[i] for i in range(12)]}, DataError,
     r"^queries: row 10 has norm 0 and cannot be L2-normalised"),
    # numpy's ValueError "expected non-negative integer" (pca said it as below)
    ({"queries": np.ones((1, 32), np.float32), "relevant": [[0]], "seed": -1}, DiveError,
     r"^dive: seed must be in 0\.\.2\*\*63-1, got -1$"),
])
def test_fit_on_arrays_checks_the_labels(kwargs: dict[str, object], error: type[Exception],
                                         message: str) -> None:
    corpus = np.random.default_rng(0).standard_normal((200, 32)).astype(np.float32)
    with pytest.raises(error, match=message):
        dive.fit(corpus, method="dive", dim=8, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"dim": 0}, r"dim must be in 1\.\.32 \(the input dimension\), got 0"),
    ({"ratio": 0}, "ratio must be an integer >= 1, got 0"),
    ({"ratio": 100}, r"ratio 100 leaves no dimension of the 32-d embeddings \(at most ratio=32"),
])
def test_fit_refuses_a_zero_dim_or_ratio(kwargs: dict[str, int], message: str) -> None:
    corpus = np.random.default_rng(0).standard_normal((200, 32)).astype(np.float32)
    with pytest.raises(DiveError, match=message):
        dive.fit(corpus, method="pca", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"dim": 16, "ratio": "eight"}, "ratio must be an integer >= 1, got 'eight'"),
    ({"dim": 16, "ratio": 0}, "ratio must be an integer >= 1, got 0"),
    ({"dim": 16, "ratio": 4}, r"dim=16 and ratio=4 disagree for 32-d embeddings \(32 // 4 = "
                              r"8\); give one of them"),
    ({"method": "frozen", "dim": 8}, r"fit: frozen keeps all 32 input dimensions: give dim=32, "
                                     r"or a compressing method for dim=8"),
])
def test_fit_refuses_a_ratio_or_dim_it_would_ignore(kwargs: dict[str, object],
                                                    message: str) -> None:
    """`ratio` was not read when `dim` was given (ratio="eight" fitted), and `frozen` returned
    32-d vectors for dim=8, both without a word; `dive fit` refuses the latter."""
    corpus = np.random.default_rng(0).standard_normal((200, 32)).astype(np.float32)
    with pytest.raises(DiveError, match=message):
        dive.fit(corpus, **{"method": "pca", **kwargs})  # type: ignore[arg-type]
    assert dive.fit(corpus, method="pca", dim=8, ratio=4).transform(corpus[:2]).shape == (2, 8)
    assert dive.fit(corpus, method="frozen").transform(corpus[:2]).shape == (2, 32)


def test_queries_without_a_relevant_row_are_left_out_before_the_split(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """They took validation places: a seed could leave the validation set with none of the
    labelled queries (refused as "validation queries: no query has a relevant row"), or
    Search-Adaptor chose its settings on 1 query of 4."""
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((300, 32)).astype(np.float32)
    queries = corpus[:36:3] + 0.3 * rng.standard_normal((12, 32)).astype(np.float32)
    relevant = [[] if i in (6, 8, 10) else [3 * i, 3 * i + 1] for i in range(12)]
    with caplog.at_level("WARNING"):
        model = dive.fit(corpus, method="search-adaptor:steps=20", dim=8, queries=queries,
                         relevant=relevant)
    assert model.fit_info_.summary is not None and model.fit_info_.summary.n_queries == 4
    assert "3 of 12 queries have no relevant row" in caplog.text
    few = [[] if i in (0, 1, 5, 7) else [3 * i] for i in range(8)]
    for seed in (0, 1):  # seed 0 was refused
        dive.fit(corpus, method="search-adaptor:steps=20", dim=8, queries=queries[:8],
                 relevant=few, seed=seed)


def test_fit_on_arrays_refuses_integer_embeddings() -> None:
    corpus = np.random.default_rng(0).standard_normal((200, 32)).astype(np.float32)
    with pytest.raises(DataError, match=r"^corpus embeddings: expected float embeddings, got "
                                        r"dtype int64$"):
        dive.fit(corpus.astype(np.int64), method="pca", dim=8)
    with pytest.raises(DataError, match=r"^queries: expected float embeddings, got dtype int64$"):
        dive.fit(corpus, method="dive", dim=8, queries=np.ones((1, 32), np.int64),
                 relevant=[[0]])


def test_labels_for_a_dataset_come_from_its_qrels(tiny: tuple[Path, Path]) -> None:
    with pytest.raises(DiveError, match="a dataset has its qrels"):
        dive.fit(tiny[0], embeddings=tiny[1], queries=np.ones((1, 32), np.float32))


def test_embed_rejects_what_is_neither_a_dataset_nor_texts() -> None:
    with pytest.raises(DiveError, match=r"^embed: text 0 is an int; expected a dataset or a "
                                        r"list of texts \(str\)$"):
        dive.embed([1, 2])  # type: ignore[list-item]
    with pytest.raises(DiveError, match=r"^embed: text 1 is None;"):  # which one was not said
        dive.embed(["a", None])  # type: ignore[list-item]


def test_embed_of_one_text_says_to_pass_a_list(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"^what is dive\?: no such dataset folder \(to embed a "
                                        r"text, pass a list: dive\.embed\(\[text\]\)\)$"):
        dive.embed("what is dive?", data_dir=str(tmp_path))
    with pytest.raises(DataError, match=r"no such dataset folder$"):  # a path: no hint
        dive.embed(str(tmp_path / "missing"), data_dir=str(tmp_path))


@pytest.mark.parametrize(("name", "value", "what"), [
    ("model", None, "None"), ("model", "", "empty"), ("device", None, "None"),
    ("device", 0, "an int"),
])
def test_embed_names_a_model_or_device_that_is_not_a_name(
    name: str, value: object, what: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None (a common "pick for me" value) was a TypeError from pathlib or torch
    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("no model may load")

    monkeypatch.setattr("dive.embed.encode.load_model", no_model)
    with pytest.raises(DiveError, match=rf"^embed: {name} is {what}; expected a name"):
        dive.embed(["a"], **{name: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("batch_size", [2.5, True, "8", 0])
def test_embed_checks_the_batch_size_before_loading_a_model(
    batch_size: object, tiny: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # texts: 2.5 was a TypeError from inside tqdm once the model had loaded, True a batch of 1
    import dive.embed.encode

    def no_model(*args: object, **options: object) -> None:
        raise AssertionError("the arguments are checked before a model is loaded")

    monkeypatch.setattr(dive.embed.encode, "load_model", no_model)
    message = f"^batch_size must be a positive integer, got {batch_size!r}$"
    with pytest.raises(DiveError, match=message):
        dive.embed(["how long does cooked rice keep?"], batch_size=batch_size)  # type: ignore[arg-type]
    with pytest.raises(DiveError, match=message):
        dive.embed(tiny[0], tiny[0].parent / "emb-out", batch_size=batch_size)  # type: ignore[arg-type]
    assert not (tiny[0].parent / "emb-out").exists()


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"out": "emb/"}, "out= is"),
    ({"overwrite": True}, "overwrite= is"),
    ({"chunk_size": 100}, "chunk_size= is"),
    ({"data_dir": "data/"}, "data_dir= is"),
    ({"out": "emb/", "overwrite": True}, "out=, overwrite= are"),
])
def test_embed_of_texts_refuses_the_arguments_of_a_dataset(
    kwargs: dict[str, object], named: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # dive.embed(texts, "emb/") returned the array and wrote no folder, without a word
    import dive.embed.encode

    def no_model(*args: object, **options: object) -> None:
        raise AssertionError("the arguments are checked before a model is loaded")

    monkeypatch.setattr(dive.embed.encode, "load_model", no_model)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DiveError, match=f"^embed: {named} for datasets only; texts are "
                                        "returned as an array, not written to a folder"):
        dive.embed(["how long does cooked rice keep?"], **kwargs)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("method", ["pca", "dive:steps=5"])
def test_fit_on_a_dataset_saves_the_training_record_dive_fit_saves(
    method: str, tiny: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from dive.cli import main

    data, emb = tiny
    api = dive.load(dive.save(dive.fit(data, embeddings=emb, method=method, dim=8, budget=16),
                              tmp_path / "api")).summary
    assert main(["fit", "--dataset", str(data), "--embeddings", str(emb), "--method", method,
                 "--dim", "8", "--budget", "16", "--output", str(tmp_path / "cli")]) == 0
    cli = dive.load(tmp_path / "cli").summary
    # The embedding model comes from the folder's meta.json, as `dive fit` reads it, so
    # `dive index`/`dive search` can warn about another model's embeddings.
    assert api["model"] == "synthetic" and api["dataset"] == "tiny"
    assert "embeddings were made with" not in caplog.text  # not the default model's name
    # a budget a training-free method does not use was dropped without a word
    ignored = ["fit: pca learns without labels; budget is not used",
               "pca learns without labels; --budget is not used"]
    assert all((line in caplog.text) is (method == "pca") for line in ignored)
    timings = ("fit_seconds", "seconds")
    assert _without(api, timings) == _without(cli, timings)


def test_a_supervised_fit_needs_train_qrels_only(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """A fit scores nothing: a dataset with qrels/train.tsv alone was refused for its missing
    test split, which own-data.md says is only used to measure (evaluate still needs it)."""
    from dive.cli import main
    from dive.data import load_dataset
    from dive.data.splits import make_split

    data, emb = tiny
    (data / "qrels" / "test.tsv").unlink()
    model = dive.fit(data, embeddings=emb, method="dive:steps=5:max_steps=5", dim=8)
    record = model.fit_info_.training  # type: ignore[attr-defined]
    assert record["label_source"] == "train" and record["n_labels"] == 40
    assert main(["fit", "--dataset", str(data), "--embeddings", str(emb), "--method",
                 "dive:steps=5:max_steps=5", "--dim", "8", "--output", str(tmp_path / "m")]) == 0
    with pytest.raises(DataError, match=r"has no 'test' qrels split \(available: train\)"):
        make_split(load_dataset(str(data)), None, 0)


def _without(record: dict[str, object], keys: tuple[str, ...]) -> dict[str, object]:
    return {k: _without(v, keys) if isinstance(v, dict) else v  # type: ignore[arg-type]
            for k, v in record.items() if k not in keys}


def test_fit_records_a_model_given_that_the_embeddings_folder_contradicts(
    tiny: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = dive.fit(tiny[0], embeddings=tiny[1], method="pca", dim=8, model="other-model")
    assert "embeddings were made with synthetic, not other-model" in caplog.text
    assert dive.load(dive.save(model, tmp_path / "m")).summary["model"] == "other-model"
    # a sentence-transformers hub id is kept as given: `search --query` loads it, where its
    # bare name loaded a folder of that name in the working directory
    hub_id = "sentence-transformers/all-mpnet-base-v2"
    model = dive.fit(tiny[0], embeddings=tiny[1], method="pca", dim=8, model=hub_id)
    assert dive.load(dive.save(model, tmp_path / "m2")).summary["model"] == hub_id


def test_refitting_on_arrays_drops_the_dataset_record(tiny: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    model = dive.fit(tiny[0], embeddings=tiny[1], method="pca", dim=8)
    model.fit(np.load(tiny[1] / "queries.npy"))  # no longer the dataset's fit
    assert dive.load(dive.save(model, tmp_path / "m")).summary == {}


@pytest.mark.parametrize(("call", "message"), [
    (lambda: dive.fit(np.ones((4, 8)).tolist(), method="pca", dim=2),
     r"^fit: data is a list; expected corpus embeddings as an \(n, D\) float numpy array "
     r"\(np\.asarray\(vectors, dtype=np\.float32\)\), a dataset name"),
    (lambda: dive.fit(None, method="pca", dim=2),  # type: ignore[arg-type]
     r"^fit: data is None; expected corpus embeddings as an \(n, D\) float numpy array, a "
     "dataset name, a BEIR-layout folder or a Dataset$"),
    (lambda: dive.fit("tiny", embeddings=np.ones((4, 8))),  # type: ignore[arg-type]
     "^fit: embeddings is a ndarray; expected the path of an embeddings folder"),
    (lambda: dive.fit("tiny", embeddings=""),  # read the working folder (the CLI refuses it)
     "^fit: embeddings is empty; expected the path of an embeddings folder"),
    (lambda: dive.embed(None),  # type: ignore[arg-type]
     "^embed: data is None; expected a dataset name, a BEIR-layout folder, a Dataset or a "
     "list of texts$"),
    (lambda: dive.load(None),  # type: ignore[arg-type]
     r"^load: directory is None; expected the path of a model folder \(str or os\.PathLike\)$"),
    (lambda: dive.load(""),  # was the working directory, read as a model folder
     r"^load: directory is empty; expected the path of a model folder"),
    (lambda: dive.save(dive.fit(np.eye(8, dtype=np.float32), method="pca", dim=2),
                       None),  # type: ignore[arg-type]
     r"^save: directory is None; expected the path of a model folder"),
    (lambda: dive.save("hello", "m"),  # type: ignore[arg-type]
     "^compressor is a str; expected a fitted Compressor, a LoadedCompressor or a "
     "Runtime$"),
    (lambda: dive.fit(np.eye(8, dtype=np.float32), method=None),  # type: ignore[arg-type]
     "^method is None; expected a method name or spec such as 'dive'"),
])
def test_arguments_of_the_wrong_type_name_the_parameter(call: object, message: str) -> None:
    with pytest.raises(DiveError, match=message):
        call()  # type: ignore[operator]


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"budget": 5}, "budget= is"),
    ({"budget": "all"}, "budget= is"),
    ({"model": "all-MiniLM-L6-v2"}, "model= is"),
    ({"embeddings": "emb/"}, "embeddings= is"),
    ({"data_dir": "data/"}, "data_dir= is"),
    ({"budget": 5, "embeddings": "emb/"}, "budget=, embeddings= are"),
])
def test_fit_on_arrays_refuses_the_arguments_of_a_dataset(kwargs: dict[str, object],
                                                          named: str) -> None:
    corpus = np.random.default_rng(0).standard_normal((50, 16)).astype(np.float32)
    with pytest.raises(DiveError, match=f"^fit: {named} for datasets only; with corpus arrays, "
                                        "data is the embeddings and queries=/relevant= the labels"):
        dive.fit(corpus, method="pca", dim=4, **kwargs)  # type: ignore[arg-type]


def test_fit_on_a_dataset_checks_the_budget_of_any_method(tiny: tuple[Path, Path]) -> None:
    with pytest.raises(DiveError, match="label budget must be a positive integer or 'all', "
                                        "got 'many'"):
        dive.fit(tiny[0], embeddings=tiny[1], method="pca", dim=8, budget="many")


def test_save_refuses_a_summary_load_would_refuse(tmp_path: Path) -> None:
    model = dive.fit(np.eye(8, dtype=np.float32), method="pca", dim=2)
    with pytest.raises(DiveError, match=r"^save: summary must be a dict \(or None\), got a list"):
        dive.save(model, tmp_path / "m", summary=[1, 2])  # type: ignore[arg-type]
    assert not (tmp_path / "m").exists()


def test_a_failed_refit_keeps_the_model_and_its_record(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dive.compressors.pca import PCA

    model = dive.fit(tiny[0], embeddings=tiny[1], method="pca", dim=8)
    before = model.transform(np.load(tiny[1] / "queries.npy"))

    def failing(*args: object) -> None:
        raise DataError("the fit failed")

    monkeypatch.setattr(PCA, "_fit", failing)
    with pytest.raises(DataError, match="the fit failed"):
        model.fit(np.load(tiny[1] / "queries.npy"))
    np.testing.assert_array_equal(model.transform(np.load(tiny[1] / "queries.npy")), before)
    assert dive.load(dive.save(model, tmp_path / "m")).summary["dataset"] == "tiny"


def test_frozen_records_the_dimension_it_keeps() -> None:
    corpus = np.eye(8, dtype=np.float32)
    for dim in (None, 8):  # dive.fit's default ratio would have recorded 2 (dim=2: refused)
        model = dive.fit(corpus, method="frozen", dim=dim)
        assert model.config()["dim"] == 8 == model.transform(corpus).shape[1]
    assert dive.fit(corpus, method="frozen", ratio=1).transform(corpus).shape == (8, 8)
    # ratio=2 gave 8-d vectors without a word, where dim=4 was refused
    with pytest.raises(DiveError, match=r"frozen keeps all 8 input dimensions: give dim=8, or "
                                        "a compressing method for ratio=2"):
        dive.fit(corpus, method="frozen", ratio=2)


def test_overwrite_must_be_a_bool(tmp_path: Path) -> None:
    """overwrite="no" is true: it replaced the saved model (and an embeddings folder, a
    compressed file) where every other argument of the wrong type is refused."""
    from dive.scale import compress_store

    corpus = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    folder = dive.save(dive.fit(corpus, method="pca", dim=4), tmp_path / "m")
    with pytest.raises(DiveError, match=r"^overwrite must be True or False, got 'no'$"):
        dive.save(dive.fit(corpus, method="truncate", dim=4), folder, overwrite="no")  # type: ignore[arg-type]
    assert dive.load(folder).method == "pca"
    np.save(tmp_path / "x.npy", corpus)
    compress_store(folder, tmp_path / "x.npy", tmp_path / "y.npy", progress=False)
    before = (tmp_path / "y.npy").read_bytes()
    with pytest.raises(DiveError, match=r"^overwrite must be True or False, got 1$"):
        compress_store(folder, tmp_path / "x.npy", tmp_path / "y.npy", overwrite=1,  # type: ignore[arg-type]
                       progress=False)
    assert (tmp_path / "y.npy").read_bytes() == before


@pytest.mark.parametrize(("call", "message"), [
    (lambda: dive.fit("tiny", method="pca", dim=4, data_dir=3),  # type: ignore[arg-type]
     "^data_dir is an int; expected the path of a folder of datasets$"),
    (lambda: dive.fit("tiny", method="pca", dim=4, model=3),  # type: ignore[arg-type]
     "^fit: model is an int; expected a model name"),
    (lambda: dive.fit("tiny", method="pca", dim=4, model=""),
     "^fit: model is empty; expected a model name"),
    (lambda: dive.embed("tiny", 5),  # type: ignore[arg-type]
     "^embed: out is an int; expected the path of the embeddings folder to write$"),
])
def test_path_and_model_arguments_of_another_type_are_named(call: Any, message: str) -> None:
    """They were pathlib's TypeError or an AttributeError from deep inside; model="" fell
    back to the default model."""
    with pytest.raises(DiveError, match=message):
        call()


@pytest.mark.parametrize("make", ["requires_grad", "bfloat16"])
def test_a_tensor_numpy_cannot_take_is_named_as_the_input(make: str, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    corpus = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    model = dive.fit(corpus, method="pca", dim=4)
    x = torch.from_numpy(corpus)
    x = x.requires_grad_() if make == "requires_grad" else x.bfloat16()
    with pytest.raises(DataError, match=r"^input: not one \(n, dim\) array: "):
        model.transform(x)
    loaded = dive.load(dive.save(model, tmp_path / "m"))
    with pytest.raises(DataError, match=r"m: not one \(n, dim\) array: "):
        loaded.transform(x)
    # and ragged rows, as the fitted compressor says (numpy's ValueError from a loaded one)
    with pytest.raises(DataError, match=r"m: not one \(n, dim\) array: its rows have "
                                        "different lengths"):
        loaded.transform([[0.1] * 8, [0.1] * 7])


@pytest.mark.parametrize(("relevant", "message"), [
    ({3.7: 1}, r"query 0 has 3\.7; corpus rows and grades are integers"),
    ({"5": 1}, "query 0 has '5'; corpus rows and grades are integers"),
    ({3: 0.5}, r"query 0 has 0\.5; corpus rows and grades are integers"),
    ([3, 5], r"query 0 has a list, expected \{corpus row: grade\}"),
])
def test_labelled_queries_take_integer_rows_and_grades_only(
    relevant: object, message: str
) -> None:
    # the class-level API (Compressor.fit) turned row 3.7 into row 3 without a word
    from dive.compressors import LabelledQueries

    with pytest.raises(DataError, match=message):
        LabelledQueries(np.eye(8, dtype=np.float32)[:1], (relevant,))  # type: ignore[arg-type]


def test_labelled_queries_need_one_relevance_list_per_embedding() -> None:
    """Two embeddings with one relevance list were taken: the second query then had none, or
    the lists paired with the wrong embeddings."""
    from dive.compressors import LabelledQueries

    with pytest.raises(DataError, match=r"^labelled queries: 2 embeddings but 1 relevance lists$"):
        LabelledQueries(np.eye(8, dtype=np.float32)[:2], ({3: 1},))


def test_a_class_level_fit_refuses_labels_that_are_not_training_data() -> None:
    from dive.compressors import make_compressor

    with pytest.raises(DiveError, match=r"^dive: train must be a TrainingData, got a dict"):
        make_compressor("dive", 2).fit(np.eye(8, dtype=np.float32), {"queries": []})


def test_labels_given_to_a_method_that_learns_without_them_are_named_unused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    corpus = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    dive.fit(corpus, method="pca", dim=4, queries=corpus[:3], relevant=[[0], [1], [2]])
    assert "fit: pca learns without labels; queries= and relevant= are not used" in caplog.text


def test_a_value_beyond_float32_is_named_as_such_not_as_nan() -> None:
    corpus = np.random.default_rng(0).standard_normal((50, 8))
    corpus[7, 2] = 1e300  # finite in float64, inf in float32
    with pytest.raises(DataError, match=r"row 7 has a value beyond float32's range"):
        dive.fit(corpus, method="pca", dim=4)
    corpus[7, 2] = np.nan
    with pytest.raises(DataError, match="row 7 contains NaN or inf"):
        dive.fit(corpus, method="pca", dim=4)


def test_a_baseline_fitted_on_arrays_validates_on_a_held_out_fifth() -> None:
    """With arrays every label trained and none validated: no grid, no checkpoint choice
    (`n_queries` 0), where `dive fit` on the same labels holds out a fifth."""
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((300, 16)).astype(np.float32)
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    rows = rng.integers(0, 300, 50)
    queries = corpus[rows] + 0.3 * rng.standard_normal((50, 16)).astype(np.float32)
    relevant = [[int(r)] for r in rows]
    model = dive.fit(corpus, method="search-adaptor:steps=30", dim=4, queries=queries,
                     relevant=relevant)
    summary = model.fit_info_.summary
    assert summary is not None
    assert summary.n_queries == 10 and summary.validation_score is not None
    few = dive.fit(corpus, method="search-adaptor:steps=30", dim=4, queries=queries[:7],
                   relevant=relevant[:7])  # below 8 labels none is held out, as for a dataset
    assert few.fit_info_.summary is not None and few.fit_info_.summary.n_queries == 0


def test_a_path_that_is_none_is_named_by_its_parameter(tmp_path: Path) -> None:
    """Each wrote "expected str, bytes or os.PathLike object, not NoneType" from deep inside."""
    from dive.evaluate.records import ResultsFile
    from dive.export.faiss_index import build_index, save_index
    from dive.export.sentence_transformers import export_sentence_transformers
    from dive.scale.stream import compress_store

    corpus = np.random.default_rng(0).standard_normal((50, 16)).astype(np.float32)
    model = dive.fit(corpus, method="pca", dim=4)
    calls = {
        "export_sentence_transformers: out_dir": lambda: export_sentence_transformers(model,
                                                                                       None),
        "save_index: file": lambda: save_index(build_index(model.transform(corpus)), None),
        "compress_store: input": lambda: compress_store(model, None, tmp_path / "o.npy"),
        "compress_store: output": lambda: compress_store(model, tmp_path / "x.npy", None),
        "ResultsFile: path": lambda: ResultsFile(None),
    }
    if importlib.util.find_spec("onnx") is not None:
        from dive.export.onnx import export_onnx

        calls["export_onnx: file"] = lambda: export_onnx(model, None)
    for what, call in calls.items():
        with pytest.raises(DiveError, match=rf"^{what} is None; expected a path"):
            call()
    assert list(tmp_path.iterdir()) == []


def test_an_index_or_column_name_of_the_wrong_type_is_named_by_its_parameter(
    tmp_path: Path,
) -> None:
    """`save_index(None, ...)` and `search_index(None, ...)` were AttributeErrors, a column
    name of 5 pyarrow's TypeError from inside the writer, after the work had started."""
    from dive.export.faiss_index import save_index, search_index
    from dive.scale.stream import compress_store

    pytest.importorskip("faiss")
    pytest.importorskip("pyarrow")
    corpus = np.random.default_rng(0).standard_normal((50, 16)).astype(np.float32)
    model = dive.fit(corpus, method="pca", dim=4)
    np.save(tmp_path / "x.npy", corpus)
    calls = {
        "save_index: index is None; expected a SearchIndex":
            lambda: save_index(None, tmp_path / "i.faiss"),  # type: ignore[arg-type]
        "search_index: index is a str; expected a SearchIndex":
            lambda: search_index("i.faiss", corpus[:2, :4]),  # type: ignore[arg-type]
        "output_column is an int; expected a column name":
            lambda: compress_store(model, tmp_path / "x.npy", tmp_path / "o.npy",
                                   output_column=5),  # type: ignore[arg-type]
        "column is None; expected a column name":
            lambda: compress_store(model, tmp_path / "x.npy", tmp_path / "o.npy",
                                   column=None),  # type: ignore[arg-type]
        "id_column is a list; expected a column name":
            lambda: compress_store(model, tmp_path / "x.npy", tmp_path / "o.npy",
                                   id_column=["id"]),  # type: ignore[arg-type]
    }
    for message, call in calls.items():
        with pytest.raises(DiveError, match=rf"^{message}"):
            call()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def test_dir_lists_the_lazy_api() -> None:
    import dive

    assert {"fit", "save", "load", "embed"} <= set(dir(dive))


def test_fit_on_float64_arrays_normalises_rows_float32_cannot_hold() -> None:
    """`dive.fit` cast to float32 before normalising: a float64 corpus or query row of 1e-50s
    was refused as "norm 0", though `transform` and `Compressor.fit` took it."""
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((60, 16))
    corpus[5] *= 1e-50
    queries = corpus[:6] + 0.1 * rng.standard_normal((6, 16))
    queries[3] *= 1e-50
    model = dive.fit(corpus, method="search-adaptor:steps=2:select=false", dim=4,
                     queries=queries, relevant=[[i] for i in range(6)])
    np.testing.assert_allclose(model.transform(corpus[[5]]),
                               model.transform(corpus[[5]] * 1e50), atol=1e-6)  # its direction


@pytest.mark.parametrize("budget", [40, 41, 100000])
def test_a_budget_not_below_the_pool_is_recorded_as_all_as_evaluate_records_it(
    tiny: tuple[Path, Path], budget: int, caplog: pytest.LogCaptureFixture
) -> None:
    """`dive fit --budget 100000` recorded "100000" (and 40 of 40, "40", without a word), where
    `dive evaluate` records the same run, the same model, as "all"."""
    data, emb = tiny
    model = dive.fit(data, embeddings=emb, method="dive:steps=5:max_steps=5", dim=8,
                     budget=budget)
    record = model.fit_info_.training  # type: ignore[attr-defined]
    assert (record["budget"], record["n_labels"]) == ("all", 40)
    assert (f"label budget {budget} is not below its 40 labelled queries: run as budget all"
            in caplog.text)
    below = dive.fit(data, embeddings=emb, method="dive:steps=5:max_steps=5", dim=8, budget=39)
    assert below.fit_info_.training["budget"] == "39"  # type: ignore[attr-defined]


def test_a_path_starting_with_a_tilde_is_the_home_folder_for_every_reader_and_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny: tuple[Path, Path]
) -> None:
    """`dive.save(m, "~/pca8")` made a folder named `~` in the working folder (a later `rm -r
    ~` there deletes a home), as save_index and save_embeddings did, while `dive.fit`,
    `dive.embed` and `load_dataset` expand `~`; load_embeddings("~/emb") found nothing."""
    from dive.embed import load_embeddings, save_embeddings
    from dive.export import build_index, load_index, save_index

    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    corpus = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    assert dive.save(dive.fit(corpus, method="pca", dim=4), "~/pca4") == home / "pca4"
    assert dive.load("~/pca4").method == "pca"
    save_index(build_index(dive.load("~/pca4").transform(corpus)), "~/i.faiss")
    assert len(load_index("~/i.faiss")) == 50
    save_embeddings("~/emb", load_embeddings(tiny[1]))
    assert load_embeddings("~/emb").corpus_ids == load_embeddings(tiny[1]).corpus_ids
    assert sorted(p.name for p in home.iterdir()) == ["emb", "i.faiss", "i.faiss.ids.txt",
                                                      "i.faiss.meta.json", "pca4"]
    assert list(work.iterdir()) == []


@pytest.mark.parametrize(("call", "message"), [
    ("load_index", r"^load_index: file is None; expected a path"),
    ("load_embeddings", r"^load_embeddings: folder is an int; expected a path"),
    ("read_records", r"^read_records: path is None; expected a path"),
    ("load_dataset", r"^the dataset is None; expected a dataset name or the path of a BEIR "
                     r"folder$"),
    ("load_beir", r"^load_beir: path is an int; expected the path of a BEIR folder"),
])
def test_a_reader_given_no_path_names_its_argument(call: str, message: str) -> None:
    """os.fspath's "expected str, bytes or os.PathLike object, not NoneType" came from deep
    inside each, where the writers name their argument."""
    from dive.data import load_beir, load_dataset
    from dive.embed import load_embeddings
    from dive.evaluate.records import read_records
    from dive.export import load_index

    function = {"load_index": load_index, "load_embeddings": load_embeddings,
                "read_records": read_records, "load_dataset": load_dataset,
                "load_beir": load_beir}[call]
    with pytest.raises(DiveError, match=message):
        function(3 if "an int" in message else None)


def test_load_dataset_download_must_be_a_bool(monkeypatch: pytest.MonkeyPatch) -> None:
    """download="no" is true: a missing dataset was looked for on the network."""
    from dive.data import download as download_module
    from dive.data import load_dataset

    monkeypatch.setattr(download_module, "download_beir",
                        lambda *args, **kwargs: pytest.fail("it went to the network"))
    with pytest.raises(DiveError, match=r"^download must be True or False, got 'no'$"):
        load_dataset("nope", download="no")  # type: ignore[arg-type]


@pytest.mark.parametrize("call", ["top_k_codes", "cache_folder", "save_embeddings", "search"])
def test_an_argument_of_the_wrong_kind_is_named_not_an_error_deep_inside(
        call: str, tmp_path: Path) -> None:
    """Each was an AttributeError from deep inside ('NoneType' object has no attribute
    'query_vectors'; 'str' object has no attribute 'name' / 'meta'), and `search` took the
    ids 'abc' as three ids, one a character."""
    from dive.embed import cache_folder, save_embeddings
    from dive.evaluate import search, top_k_codes

    x = np.eye(3, dtype=np.float32)
    calls = {
        "top_k_codes": (lambda: top_k_codes(x, np.zeros((3, 3), np.int8), None, 2),  # type: ignore[arg-type]
                        r"^top_k_codes: quantizer is None; expected the Quantizer"),
        "cache_folder": (lambda: cache_folder("time", "all-MiniLM-L6-v2"),  # type: ignore[arg-type]
                         r"^cache_folder: dataset is a str; expected a loaded Dataset"),
        "save_embeddings": (lambda: save_embeddings(tmp_path / "e", "x"),  # type: ignore[arg-type]
                            r"^save_embeddings: emb is a str; expected Embeddings"),
        "search": (lambda: search(x, x, "abc", ["d0", "d1", "d2"], k=1),
                   r"^query_ids: a str, not a sequence of ids$"),
    }
    function, message = calls[call]
    with pytest.raises(DiveError, match=message):
        function()


def test_windows_is_told_at_import_that_dive_needs_posix() -> None:
    """pip installed it on Windows, where `dive --help` and `import dive` then failed with
    tracebacks (no fcntl, no SIGHUP)."""
    import subprocess
    import sys

    code = "import sys; sys.platform = 'win32'; import dive"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "ImportError: dive runs on Linux and macOS (it needs POSIX file locks and signals); on "
        "Windows, run it under WSL")


def test_a_model_or_quantizer_of_the_wrong_kind_is_one_line_naming_the_parameter(
    tmp_path: Path,
) -> None:
    """compress_store (and the LanceDB and Ray entry points) raised a bare TypeError naming no
    parameter; build_index an AttributeError."""
    from dive.export import build_index
    from dive.scale import compress_store

    np.save(tmp_path / "x.npy", np.eye(4, dtype=np.float32))
    with pytest.raises(DiveError, match=r"^model is None; expected a Runtime, a fitted or "
                                        "loaded compressor, or a model folder path$"):
        compress_store(None, tmp_path / "x.npy", tmp_path / "y.npy")  # type: ignore[arg-type]
    pytest.importorskip("faiss")
    with pytest.raises(DiveError, match=r"^quantizer is a str; expected the Quantizer of the "):
        build_index(np.eye(4, dtype=np.float32), quantizer="x")  # type: ignore[arg-type]


def test_fit_on_arrays_builds_and_splits_with_the_seed_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`dive.fit(corpus, seed=3)` fits with seed 3, and labelled arrays are split with it."""
    corpus = np.random.default_rng(0).standard_normal((50, 16)).astype(np.float32)
    assert dive.fit(corpus, method="pca", dim=4, seed=3).seed == 3
    seeds: list[int] = []
    real = dive.api._array_labels

    def spy(*args: Any) -> Any:
        seeds.append(args[-1])
        return real(*args)

    monkeypatch.setattr(dive.api, "_array_labels", spy)
    queries = corpus[:10] + 0.01
    fitted = dive.fit(corpus, method="search-adaptor:steps=2", dim=4, seed=3, queries=queries,
                      relevant=[[i] for i in range(10)])
    assert seeds == [3] and fitted.seed == 3


def test_fit_on_a_dataset_splits_its_labels_with_the_seed_given(
    tiny: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dive.fit(dataset, seed=3)` builds the compressor with seed 3 and hands it to
    `fit_on_dataset`, which draws a supervised method's labels with it."""
    import dive.fit_record

    seeds: list[int] = []
    real = dive.fit_record.fit_on_dataset

    def spy(*args: Any, **kwargs: Any) -> Any:
        seeds.append(kwargs["seed"])
        return real(*args, **kwargs)

    monkeypatch.setattr(dive.fit_record, "fit_on_dataset", spy)
    assert dive.fit(tiny[0], method="pca", dim=8, embeddings=tiny[1], seed=3).seed == 3
    assert seeds == [3]


def test_the_held_out_labels_of_arrays_follow_the_seed() -> None:
    """The train/validation split of array labels is drawn with `seed`: the same seed gives
    the same split, another seed another one."""
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((60, 8)).astype(np.float32)
    queries = rng.standard_normal((40, 8)).astype(np.float32)
    relevant = [[i] for i in range(40)]

    def validating(seed: int) -> tuple[dict[int, int], ...]:
        data = dive.api._array_labels(corpus, queries, relevant, seed)
        assert data.validation is not None
        return data.validation.relevant

    assert validating(1) == validating(1)
    assert validating(1) != validating(2)


def test_fit_without_dim_or_ratio_keeps_a_quarter_of_the_dimensions() -> None:
    """With neither dim nor ratio the output is D // 4."""
    corpus = np.random.default_rng(0).standard_normal((50, 16)).astype(np.float32)
    assert dive.fit(corpus, method="pca").fitted_runtime().output_dim == 4


def test_a_ratio_of_d_keeps_one_dimension() -> None:
    """`ratio=D` is allowed, as the error for a larger one says ("at most ratio=D")."""
    corpus = np.random.default_rng(0).standard_normal((50, 16)).astype(np.float32)
    assert dive.fit(corpus, method="pca", ratio=16).fitted_runtime().output_dim == 1
    with pytest.raises(DiveError, match=r"at most ratio=16\)"):
        dive.fit(corpus, method="pca", ratio=17)
