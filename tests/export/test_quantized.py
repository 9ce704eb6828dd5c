"""Quantized model folders: the precision and its calibration are saved, loaded torch-free,
and every export (folder, ONNX, sentence-transformers) returns the same codes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dive.compressors.precision import PRECISIONS
from dive.compressors.runtime import Runtime
from dive.errors import DataError
from dive.export.folder import load, save, with_precision

REPO = Path(__file__).resolve().parents[2]
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
    low = model.runtime_.quantizer.low  # type: ignore[union-attr]
    np.testing.assert_array_equal(low, load(tmp_path / "m").transform(corpus).min(axis=0))


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
    with pytest.raises(DataError, match="tensor 'quantizer.low' is missing for precision int8"):
        load(folder)


def test_editing_the_precision_fails_the_checksum(tmp_path: Path, make_runtime: Any,
                                                  make_inputs: Any) -> None:
    folder = save(quantized(make_runtime, make_inputs, "binary"), tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["precision"] = "float16"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match="do not match config_sha256"):
        load(folder)


NUMPY_ONLY = """
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
import numpy as np
from dive.export.folder import load
model = load(sys.argv[1])
assert model.precision == "int8", model.precision
np.save(sys.argv[3], model.transform(np.load(sys.argv[2])))
heavy = sorted(m for m in sys.modules if m.split(".")[0] in
               ("torch", "sentence_transformers", "transformers", "onnx", "faiss")
               and sys.modules[m] is not None)
assert not heavy, heavy
"""


def test_an_int8_folder_loads_and_transforms_without_torch(tmp_path: Path, make_runtime: Any,
                                                           make_inputs: Any) -> None:
    runtime = quantized(make_runtime, make_inputs, "int8")
    save(runtime, tmp_path / "m")
    x = make_inputs(30, 32)
    np.save(tmp_path / "x.npy", x)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"),
                                                         os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-c", NUMPY_ONLY, str(tmp_path / "m"), str(tmp_path / "x.npy"),
         str(tmp_path / "y.npy")],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    got = np.load(tmp_path / "y.npy")
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, runtime(x))
