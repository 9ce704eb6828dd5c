"""A new method is one class plus one registry entry: every caller reads its facts there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dive.cli import main
from dive.compressors.base import Compressor, TrainingData
from dive.compressors.registry import REGISTRY, display_order, method_facts
from dive.compressors.runtime import Runtime
from dive.errors import DiveError
from dive.evaluate.protocol import GridSpec, run_grid
from dive.evaluate.records import ResultsFile
from dive.export.folder import load, save
from dive.report.summary import method_order


class ReversedPrefix(Compressor):
    """The first `dim` coordinates in reverse order (a throwaway method, labels required)."""

    method = "reversed-prefix"
    family = "baseline"
    supervised = True

    def _fit(self, corpus: np.ndarray, train: TrainingData | None) -> Runtime:
        assert train is not None  # a supervised method is given its labels
        d_in = corpus.shape[1]
        projection = np.eye(self.dim or d_in, d_in, dtype=np.float32)[::-1]
        return Runtime(d_in, projection=np.ascontiguousarray(projection))


@pytest.fixture()
def registered(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(REGISTRY, ReversedPrefix.method, ReversedPrefix)
    return ReversedPrefix.method


def test_the_registry_reads_each_method_s_facts_from_its_class() -> None:
    frozen, pca, dive = method_facts("frozen"), method_facts("pca"), method_facts("dive")
    assert frozen is not None and frozen.family == "reference" and frozen.full_dim_only
    assert pca is not None and pca.training_free and pca.training_free_reference
    assert dive is not None and dive.family == "learned" and dive.supervised
    plus = method_facts("dive-plus")  # run only when named: its extension fact says so
    assert plus is not None and plus.extension and not dive.extension
    assert method_facts("faiss-pq") is None  # an anchor, not a registered method
    assert display_order().index("pca") < display_order().index("dive")


def test_results_list_the_training_free_references_last_among_the_classical_methods() -> None:
    """PCA, the reference learned methods are measured against, sits beside them (a mutant
    that sorted by family and registry order alone listed it between truncate and random)."""
    order = display_order()
    classical = [name for name in order if method_facts(name).family == "classical"]  # type: ignore[union-attr]
    assert classical == ["truncate", "random", "pca", "pca-uncentered"]
    assert order.index("pca-uncentered") + 1 == order.index(next(
        name for name in order if method_facts(name).family == "baseline"))  # type: ignore[union-attr]


def test_a_method_without_a_family_is_refused_when_registered(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    class Nameless(ReversedPrefix):
        family = None  # type: ignore[assignment]

    with pytest.raises(DiveError, match=r"'nameless': Nameless.family is None; declare one of"):
        monkeypatch.setitem(REGISTRY, "nameless", Nameless)
    assert "nameless" not in REGISTRY


def test_a_registered_method_runs_through_evaluate_report_save_and_export(
    registered: str, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from dive.export.onnx import export_onnx

    facts = method_facts(registered)
    assert facts is not None and facts.family == "baseline" and facts.supervised
    order = display_order()  # after the other baselines, before ours
    assert order.index("smec") < order.index(registered) < order.index("dive")

    spec = GridSpec(datasets=[str(tiny[0])], methods=[registered, "frozen", "pca"],
                    ratios=[2], budgets=[8], seeds=[0], embeddings_dir=str(tiny[1]))
    results = tmp_path / "r.jsonl"
    records = run_grid(spec, ResultsFile(results))
    ours = [r for r in records if r["method"] == registered]
    assert len(ours) == 1 and ours[0]["n_labels"] > 0 and ours[0]["dim"] == 16
    assert method_order(r["method"] for r in records) == ["frozen", "pca", registered]
    # a registered method, unlike an unknown name, sorts by its family: before the anchors
    assert method_order(["faiss-pq:16", registered, "frozen"]) == [
        "frozen", registered, "faiss-pq:16"]

    out = tmp_path / "report"
    assert main(["report", "--results", str(results), "--output", str(out)]) == 0
    table = (out / "report.md").read_text()
    assert table.index("| pca ") < table.index(f"| {registered} ")

    folder = tmp_path / "model"
    assert main(["fit", "--dataset", str(tiny[0]), "--embeddings", str(tiny[1]),
                 "--method", registered, "--dim", "4", "--budget", "8", "--output",
                 str(folder)]) == 0
    loaded = load(folder)
    assert loaded.method == registered and loaded.summary["budget"] == "8"
    x = np.random.default_rng(0).standard_normal((5, 32)).astype(np.float32)
    expected = x[:, 3::-1] / np.linalg.norm(x[:, 3::-1], axis=1, keepdims=True)
    np.testing.assert_allclose(loaded.transform(x), expected, atol=1e-6)
    again = load(save(loaded, tmp_path / "again"))
    assert np.array_equal(again.transform(x), loaded.transform(x))
    session = ort.InferenceSession(str(export_onnx(folder, tmp_path / "m.onnx")),
                                   providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, loaded.transform(x), atol=1e-6)
