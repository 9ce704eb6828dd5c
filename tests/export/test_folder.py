"""The saved-model folder: round trips, numpy-only loading, atomic saves, and every check."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.numpy

import dive
from dive.compressors.base import LabelledQueries, TrainingData
from dive.compressors.registry import REGISTRY
from dive.compressors.runtime import Runtime
from dive.errors import DataError, DiveError, NotFittedError
from dive.export.folder import (
    FORMAT_VERSION,
    LoadedCompressor,
    config_digest,
    is_model_folder,
    load,
    save,
    with_precision,
)

REPO = Path(__file__).resolve().parents[2]


def synthetic_problem(n_docs: int = 96, n_queries: int = 24, dim: int = 16, seed: int = 0
                      ) -> tuple[np.ndarray, TrainingData]:
    """Unit corpus vectors and labelled queries that sit near their relevant document."""
    rng = np.random.default_rng(seed)
    corpus = rng.standard_normal((n_docs, dim)).astype(np.float32)
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    rel = rng.integers(0, n_docs, n_queries)
    queries = corpus[rel] + 0.3 * rng.standard_normal((n_queries, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    relevant = tuple({int(r): 1} for r in rel)
    n_train = n_queries * 3 // 4
    train = LabelledQueries(queries[:n_train], relevant[:n_train])
    validation = LabelledQueries(queries[n_train:], relevant[n_train:])
    return corpus, TrainingData(train, validation)


@pytest.mark.parametrize("method", sorted(REGISTRY))
def test_every_registered_method_round_trips_bit_identically(method: str, tmp_path: Path) -> None:
    corpus, train = synthetic_problem()
    compressor = REGISTRY[method](dim=8, seed=0)
    compressor.fit(corpus, train if compressor.supervised else None)
    summary = {"dataset": "synthetic", "budget": "18", "seed": 0, "validation": {"ndcg@10": 0.5}}
    save(compressor, tmp_path / "m", summary=summary)
    loaded = load(tmp_path / "m")
    runtime = compressor.fitted_runtime()
    for name in ("center", "projection"):
        arr = getattr(runtime, name)
        assert arr is None or arr.dtype == np.float32, (
            f"{method}: runtime {name} is {arr.dtype}; the folder stores float32, so the "
            "round trip cannot be bit-identical (the fit should produce float32)"
        )
    x = np.random.default_rng(3).standard_normal((50, 16)).astype(np.float32)
    expected = compressor.transform(x)
    got = loaded.transform(x)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    assert np.array_equal(got, expected)  # bit-identical, not merely close
    assert loaded.method == method
    assert loaded.config() == json.loads(json.dumps(compressor.config()))
    assert loaded.n_params == compressor.n_params
    assert (loaded.input_dim, loaded.output_dim) == (16, compressor.fitted_runtime().output_dim)
    assert loaded.summary == summary
    saved = runtime.arrays()
    assert list(loaded.runtime_.arrays()) == list(saved)
    assert all(np.array_equal(loaded.runtime_.arrays()[n], a) for n, a in saved.items())


SAVED_V3 = Path(__file__).with_name("data") / "saved_v3"


@pytest.mark.parametrize("name", ["adapter_int8", "pca_float32"])
def test_a_folder_saved_before_runtime_arrays_loads_and_saves_back_the_same(
    name: str, tmp_path: Path
) -> None:
    """Folders `data/make_saved_v3.py` wrote with the code before `Runtime.arrays()`."""
    from dive.compressors.runtime import runtime_digest

    expected = np.load(SAVED_V3 / "inputs.npz")
    loaded = load(SAVED_V3 / name)
    assert np.array_equal(loaded.transform(expected["x"]), expected[name])
    assert runtime_digest(loaded.runtime_) == str(expected[f"{name}_digest"])
    again = save(loaded, tmp_path / name)
    before, after = current_arrays(SAVED_V3 / name), current_arrays(again)
    assert list(after) == list(before)
    assert all(after[n].dtype == a.dtype and after[n].tobytes() == a.tobytes()
               for n, a in before.items())
    # The checksums cover the weights file, whose header lists the metadata in the order
    # safetensors' hash map gives (it varies between processes); everything else is the same.
    config_before, config_after = (json.loads((f / "config.json").read_text())
                                   for f in (SAVED_V3 / name, again))
    for config in (config_before, config_after):
        del config["weights_sha256"], config["config_sha256"]
    # saved again, the folder names the identity its outputs record (`model_sha256`)
    assert config_after.pop("runtime_sha256") == str(expected[f"{name}_digest"])
    assert config_after == config_before


def test_the_same_model_saves_to_the_same_bytes_in_every_process(tmp_path: Path) -> None:
    # safetensors orders its metadata map at random per process: with more than one key, two
    # runs of the same code wrote different bytes (and weights_sha256). Six processes would
    # all agree by chance with probability 1/32 if the order still varied.
    script = (
        "import sys, numpy as np\n"
        "from dive.compressors.pca import PCA\n"
        "from dive.export.folder import save\n"
        "corpus = np.random.default_rng(0).standard_normal((64, 16)).astype(np.float32)\n"
        "save(PCA(dim=4).fit(corpus), sys.argv[1])\n"
    )
    digests = set()
    for i in range(6):
        folder = tmp_path / f"m{i}"
        subprocess.run([sys.executable, "-c", script, str(folder)], check=True)
        digests.add(((folder / "model.safetensors").read_bytes(),
                     (folder / "config.json").read_bytes()))
    assert len(digests) == 1


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_adapter_runtime_round_trips(activation: str, tmp_path: Path, make_runtime: Any,
                                     make_inputs: Any) -> None:
    runtime = make_runtime(activation=activation)
    save(runtime, tmp_path / "m")
    loaded = load(tmp_path / "m")
    x = make_inputs(20, 32)
    assert np.array_equal(loaded.transform(x), runtime(x))
    assert loaded.method == "runtime"
    assert loaded.runtime_.adapter is not None
    assert loaded.runtime_.adapter.activation == activation
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["format_version"] == FORMAT_VERSION
    assert config["dive_version"] == dive.__version__
    assert config["activation"] == activation
    assert config["arrays"] == ["adapter.w1", "adapter.b1", "adapter.w2", "adapter.b2",
                                "center", "projection"]


def test_identity_runtime_has_no_arrays_and_round_trips(tmp_path: Path, make_inputs: Any) -> None:
    save(Runtime(input_dim=12), tmp_path / "m")
    loaded = load(tmp_path / "m")
    x = make_inputs(5, 12)
    assert loaded.output_dim == 12 and loaded.n_params == 0
    assert np.array_equal(loaded.transform(x), Runtime(12)(x))


def test_a_runtime_with_a_numpy_integer_dimension_saves(tmp_path: Path) -> None:
    # Runtime takes numpy integers; saving one was "Object of type int64 is not JSON
    # serializable", a traceback
    runtime = Runtime(np.int64(16), projection=np.eye(4, 16, dtype=np.float32))
    assert type(runtime.input_dim) is int
    save(runtime, tmp_path / "m")
    assert load(tmp_path / "m").runtime_.input_dim == 16


def test_loaded_compressor_resaves_with_its_summary(tmp_path: Path, make_runtime: Any) -> None:
    save(make_runtime(), tmp_path / "a", summary={"dataset": "x", "seed": 3})
    again = save(load(tmp_path / "a"), tmp_path / "b")
    assert load(again).summary == {"dataset": "x", "seed": 3}
    with pytest.raises(DiveError, match="inference-only"):
        load(again).fit(np.zeros((2, 32), np.float32))


def test_top_level_load_and_save(tmp_path: Path, make_runtime: Any, make_inputs: Any) -> None:
    assert "load" in dive.__all__ and "save" in dive.__all__
    runtime = make_runtime()
    dive.save(runtime, tmp_path / "m")
    loaded = dive.load(tmp_path / "m")
    assert isinstance(loaded, LoadedCompressor)
    assert np.array_equal(loaded.transform(make_inputs(3, 32)), runtime(make_inputs(3, 32)))


NUMPY_ONLY = """
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
import numpy as np
from dive.export.folder import load
model = load(sys.argv[1])
np.save(sys.argv[3], model.transform(np.load(sys.argv[2])))
heavy = sorted(m for m in sys.modules if m.split(".")[0] in
               ("torch", "sentence_transformers", "transformers", "onnx", "faiss")
               and sys.modules[m] is not None)
assert not heavy, heavy
"""


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_load_and_transform_work_without_torch(precision: str, tmp_path: Path,
                                               make_runtime: Any, make_inputs: Any) -> None:
    runtime = make_runtime(input_dim=48, output_dim=12, rank=24, activation="gelu")
    runtime = runtime.with_precision(precision, make_inputs(200, 48, seed=9))
    save(runtime, tmp_path / "m")
    x = make_inputs(30, 48)
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
    assert got.dtype == runtime(x).dtype
    # int8: the codes of vectors equal to 1e-5, so a code may move by one at a bin edge.
    np.testing.assert_allclose(got.astype(np.float32), runtime(x).astype(np.float32),
                               atol=1e-5 if precision == "float32" else 1, rtol=0)


# --- saving is atomic and careful -------------------------------------------------------------


def test_save_keeps_an_existing_model_folder_unless_told_to_overwrite(
    tmp_path: Path, make_runtime: Any, make_inputs: Any
) -> None:
    save(make_runtime(seed=1), tmp_path / "m")
    before = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()}
    new = make_runtime(seed=2)
    for call in (save, dive.save):
        with pytest.raises(DiveError, match=rf"^{tmp_path / 'm'}: already exists; pass "
                           r"overwrite=True to replace it$"):
            call(new, tmp_path / "m")
    assert {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()} == before
    save(new, tmp_path / "m", overwrite=True)
    assert np.array_equal(load(tmp_path / "m").transform(make_inputs(4, 32)),
                          new(make_inputs(4, 32)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temp folders left


def test_save_refuses_to_replace_another_folder(tmp_path: Path, make_runtime: Any) -> None:
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("precious")
    with pytest.raises(DiveError, match="not a saved dive compressor folder"):
        save(make_runtime(), other)
    assert (other / "keep.txt").read_text() == "precious"
    assert sorted(p.name for p in other.iterdir()) == ["keep.txt"]


def test_failed_save_keeps_the_old_folder(tmp_path: Path, make_runtime: Any,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    save(make_runtime(seed=1), tmp_path / "m")
    before = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()}
    real_replace = os.replace
    calls = []

    def flaky_replace(src: Any, dst: Any) -> None:
        calls.append((src, dst))
        if len(calls) == 2:  # old folder moved aside; moving the new one in fails
            raise OSError("disk full")
        real_replace(src, dst)

    import dive._io.atomic

    monkeypatch.setattr(dive._io.atomic, "_exchange", lambda a, b: False)  # the two-rename way
    monkeypatch.setattr(os, "replace", flaky_replace)
    with pytest.raises(OSError, match="disk full"):
        save(make_runtime(seed=2), tmp_path / "m", overwrite=True)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_unserialisable_summary_fails_before_touching_the_folder(tmp_path: Path,
                                                                 make_runtime: Any) -> None:
    save(make_runtime(seed=1), tmp_path / "m")
    before = (tmp_path / "m" / "model.safetensors").read_bytes()
    with pytest.raises(DiveError, match="JSON"):
        save(make_runtime(seed=2), tmp_path / "m", summary={"bad": object()}, overwrite=True)
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == before


@pytest.mark.parametrize("summary", [{1: "a"}, {"k": {2: "b"}}, {"k": [{None: 1}]}])
def test_a_summary_key_that_is_not_a_string_is_refused(
    tmp_path: Path, make_runtime: Any, summary: dict[Any, Any]
) -> None:
    """JSON keys are strings: {1: 'a'} came back as {'1': 'a'} without a word."""
    with pytest.raises(DiveError, match=r"cannot be written as JSON \(key .* is not a string"):
        save(make_runtime(), tmp_path / "m", summary=summary)
    assert not (tmp_path / "m").exists()


def test_saving_an_unfitted_compressor_fails(tmp_path: Path) -> None:
    with pytest.raises(NotFittedError, match="pca: not fitted yet; call fit"):
        save(REGISTRY["pca"](dim=4), tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_a_saved_model_records_the_parameters_it_was_fitted_with(tmp_path: Path) -> None:
    """`model.dim` edited after the fit, or a refit that refused it, used to be saved as the
    model's: config.json said dim 1000 beside an 8-d output."""
    corpus, _ = synthetic_problem()
    model = REGISTRY["pca"](dim=8).fit(corpus)
    model.dim = 1000
    with pytest.raises(DataError, match=r"dim must be in 1\.\.16"):
        model.fit(corpus)
    save(model, tmp_path / "m")
    loaded = load(tmp_path / "m")
    assert loaded.config()["dim"] == loaded.output_dim == 8
    model.dim = 4
    model.fit(corpus)  # a refit that succeeds is recorded with what it was given
    save(model, tmp_path / "m", overwrite=True)
    assert load(tmp_path / "m").config()["dim"] == 4


def test_numpy_scalars_in_the_summary_are_written(tmp_path: Path, make_runtime: Any) -> None:
    save(make_runtime(), tmp_path / "m", summary={"score": np.float32(0.25), "n": np.int64(3)})
    assert load(tmp_path / "m").summary == {"score": 0.25, "n": 3}


# --- every way a folder can be bad ----------------------------------------------------------


def rewrite(folder: Path, weights: dict[str, np.ndarray] | None = None, **config: Any) -> None:
    """Replace the folder's weights and/or config fields, keeping the checksum consistent."""
    cfg = json.loads((folder / "config.json").read_text())
    if weights is not None:
        data = safetensors.numpy.save(weights)
        (folder / "model.safetensors").write_bytes(data)
        cfg["weights_sha256"] = hashlib.sha256(data).hexdigest()
        cfg["arrays"] = list(weights)
    cfg.update(config)
    if "config_sha256" not in config:
        cfg["config_sha256"] = config_digest(cfg)
    (folder / "config.json").write_text(json.dumps(cfg))


def current_arrays(folder: Path) -> dict[str, np.ndarray]:
    return dict(safetensors.numpy.load_file(folder / "model.safetensors"))


@pytest.fixture()
def saved(tmp_path: Path, make_runtime: Any) -> Path:
    return save(make_runtime(input_dim=32, output_dim=8, rank=16), tmp_path / "m")


def test_missing_config_json(saved: Path) -> None:
    (saved / "config.json").unlink()
    with pytest.raises(DataError, match=r"config\.json: missing"):
        load(saved)


def test_missing_weights(saved: Path) -> None:
    (saved / "model.safetensors").unlink()
    with pytest.raises(DataError, match=r"model\.safetensors: missing"):
        load(saved)


WRITER = """
import sys, numpy as np, dive
rng = np.random.default_rng(0)
models = [dive.fit(rng.standard_normal((300, 64)).astype(np.float32), method="pca", dim=8)
          for _ in range(2)]
from dive.export.folder import with_precision
models[1] = with_precision(models[1], "float16")
i = 0
while True:
    dive.save(models[i % 2], sys.argv[1], overwrite=True)
    i += 1
"""


@pytest.mark.parametrize("verify", [True, False])
def test_a_load_during_saves_with_overwrite_gets_one_whole_save(tmp_path: Path,
                                                                 verify: bool) -> None:
    """A save with overwrite swaps whole folders, but load read config.json and the weights by
    path: a load between the two reads paired one save's config with the next one's weights,
    a false "corrupt" error (1.4% of loads by a probe), or unverified, a model that is neither.
    """
    rng = np.random.default_rng(0)
    models = [dive.fit(rng.standard_normal((300, 64)).astype(np.float32), method="pca", dim=8)
              for _ in range(2)]
    models[1] = with_precision(models[1], "float16")  # another config, as well as weights
    probe = np.random.default_rng(1).standard_normal((5, 64)).astype(np.float32)
    expected = [m.transform(probe) for m in models]
    target = tmp_path / "model"
    dive.save(models[0], target)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target)])
    errors, neither, loads = [], 0, 0
    try:
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            try:
                got = load(target, verify=verify).transform(probe)
            except DiveError as exc:
                errors.append(str(exc))
                continue
            loads += 1
            neither += not any(np.array_equal(got, e) for e in expected)
    finally:
        writer.kill()
        writer.wait()
    assert loads > 100, f"only {loads} loads in 4 s; the test did not race"
    assert not errors, f"{len(errors)} loads failed, e.g. {errors[0]}"
    assert neither == 0, f"{neither} of {loads} loads gave a model that is neither save"


def test_a_path_through_a_link_and_dotdot_is_written_where_its_checks_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`link/../victim` was checked where the file system puts it (beside the folder the link
    leads to: nothing there) and written at `./victim`, replacing a folder of the user's files
    with --overwrite (an index's sidecars without it)."""
    from dive.export.faiss_index import build_index, save_index

    corpus = np.random.default_rng(0).standard_normal((200, 32)).astype(np.float32)
    model = dive.fit(corpus, method="pca", dim=8)
    (tmp_path / "elsewhere" / "dir").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere" / "dir")
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "thesis.txt").write_text("mine")
    (tmp_path / "idx.ids.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    save(model, "link/../victim", overwrite=True)
    save_index(build_index(model.transform(corpus)), "link/../idx")
    assert (tmp_path / "victim" / "thesis.txt").read_text() == "mine"
    assert (tmp_path / "idx.ids.txt").read_text() == "mine"
    assert load(tmp_path / "elsewhere" / "victim").method == "pca"
    assert (tmp_path / "elsewhere" / "idx.ids.txt").is_file()


def test_a_save_to_dot_inside_the_folder_is_refused(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`dive fit --output . --overwrite` from inside a model folder ran the whole fit, then
    failed with "device or resource busy": the temporary was named after `.`'s empty name.
    Then the new folder was renamed over it and the old one removed: the process (the shell,
    for the CLI) was left in a deleted folder, where the next command failed naming nothing."""
    corpus = np.random.default_rng(0).standard_normal((200, 32)).astype(np.float32)
    first, second = (dive.fit(corpus, method=m, dim=8) for m in ("pca", "truncate"))
    save(first, tmp_path / "m")
    monkeypatch.chdir(tmp_path / "m")
    with pytest.raises(DiveError, match=r"^\.: is the current folder"):
        save(second, ".", overwrite=True)
    assert load(tmp_path / "m").method == "pca"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary left


def test_a_config_json_of_something_else_is_named_as_not_a_dive_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Hugging Face model folder (config.json, no format) was refused as 'format_version is
    None, expected a positive integer', which reads like a damaged dive folder."""
    (tmp_path / "config.json").write_text('{"architectures": ["BertModel"]}')
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    read = []
    real = Path.read_bytes

    def read_bytes(path: Path) -> bytes:
        read.append(path.name)
        return real(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(DataError, match="format is None, expected 'dive-compressor' "
                                        r"\(not a saved dive compressor folder\)"):
        load(tmp_path)
    assert "model.safetensors" not in read  # a model's GBs were read before the refusal


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such model folder"):
        load(tmp_path / "nope")


@pytest.mark.parametrize(("version", "message"), [
    (FORMAT_VERSION + 1, "newer than this dive"),
    (0, "expected a positive integer"),
    ("1", "expected a positive integer"),
    (None, "expected a positive integer"),
])
def test_unknown_or_newer_format_version(saved: Path, version: Any, message: str) -> None:
    rewrite(saved, format_version=version)
    with pytest.raises(DataError, match=rf"config\.json: .*{message}"):
        load(saved)


def test_a_config_saved_with_a_byte_order_mark_loads(saved: Path) -> None:
    """An editor (Windows Notepad) may save config.json with a UTF-8 byte-order mark: it was
    refused as "not valid JSON", where the dataset loader reads such files."""
    config = saved / "config.json"
    expected = load(saved).transform(np.eye(load(saved).input_dim, dtype=np.float32))
    config.write_bytes(b"\xef\xbb\xbf" + config.read_bytes())
    assert is_model_folder(saved)
    np.testing.assert_array_equal(
        load(saved).transform(np.eye(load(saved).input_dim, dtype=np.float32)), expected)


def test_config_that_is_not_json(saved: Path) -> None:
    (saved / "config.json").write_text("{not json")
    with pytest.raises(DataError, match=r"config\.json: not valid JSON"):
        load(saved)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("input_dim", 0, "input_dim is 0"),
    ("output_dim", "8", "output_dim is '8'"),
    ("activation", "tanh", "activation 'tanh'"),
    ("method", "", "method is ''"),
    ("arrays", ["center", "weights"], r"arrays \[.*\] has unknown or repeated"),
    # every array listed, one twice: it loaded as if listed once
    ("arrays", ["adapter.w1", "adapter.b1", "adapter.w2", "adapter.b2", "center", "projection",
                "center"], r"arrays \[.*\] has unknown or repeated"),
    ("training", [1], "training is list"),
])
def test_bad_config_fields(saved: Path, field: str, value: Any, message: str) -> None:
    rewrite(saved, **{field: value})
    with pytest.raises(DataError, match=rf"config\.json: {message}"):
        load(saved)


def test_projection_columns_must_equal_input_dim(saved: Path) -> None:
    arrays = current_arrays(saved)
    arrays["projection"] = np.zeros((8, 31), np.float32)
    rewrite(saved, arrays)
    with pytest.raises(DataError, match=r"model\.safetensors: tensor 'projection' has shape "
                                         r"\(8, 31\), expected \(output_dim, 32\)"):
        load(saved)


def test_projection_rows_must_equal_output_dim(saved: Path) -> None:
    rewrite(saved, output_dim=9)
    with pytest.raises(DataError, match="rows must equal output_dim"):
        load(saved)


def test_no_projection_needs_equal_dims(saved: Path) -> None:
    arrays = current_arrays(saved)
    del arrays["projection"]
    rewrite(saved, arrays)
    with pytest.raises(DataError, match="no projection"):
        load(saved)


@pytest.mark.parametrize(("name", "shape", "message"), [
    ("adapter.w2", (32, 15), r"'adapter\.w2' has shape \(32, 15\), expected \(32, 16\)"),
    ("adapter.b1", (17,), r"'adapter\.b1' has shape \(17,\), expected \(16,\)"),
    ("adapter.w1", (16, 30), r"'adapter\.w1' has shape \(16, 30\), expected \(r, 32\)"),
    ("adapter.b2", (31,), r"'adapter\.b2' has shape \(31,\)"),
    ("center", (8,), r"'center' has shape \(8,\), expected \(32,\)"),
])
def test_inconsistent_adapter_or_center_shapes(saved: Path, name: str, shape: tuple[int, ...],
                                               message: str) -> None:
    arrays = current_arrays(saved)
    arrays[name] = np.zeros(shape, np.float32)
    rewrite(saved, arrays)
    with pytest.raises(DataError, match=message):
        load(saved)


def test_incomplete_adapter(saved: Path) -> None:
    arrays = current_arrays(saved)
    del arrays["adapter.b2"]
    rewrite(saved, arrays)
    with pytest.raises(DataError, match=r"adapter is incomplete: 'adapter\.b2' is missing"):
        load(saved)


def test_a_dtype_numpy_cannot_hold_is_named(saved: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import save as save_torch

    arrays = {name: torch.from_numpy(arr) for name, arr in current_arrays(saved).items()}
    arrays["projection"] = arrays["projection"].to(torch.bfloat16)  # was KeyError: 'BF16'
    data = save_torch(arrays)
    (saved / "model.safetensors").write_bytes(data)
    rewrite(saved, weights_sha256=hashlib.sha256(data).hexdigest())
    with pytest.raises(DataError, match=r"model\.safetensors: holds a tensor of dtype BF16, "
                                        "which numpy cannot read; expected float32$"):
        load(saved)


def test_adapter_without_activation(saved: Path) -> None:
    rewrite(saved, activation=None)
    with pytest.raises(DataError, match="needs an activation"):
        load(saved)


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32])
def test_wrong_dtype(saved: Path, dtype: Any) -> None:
    arrays = current_arrays(saved)
    arrays["projection"] = arrays["projection"].astype(dtype)
    rewrite(saved, arrays)
    with pytest.raises(DataError, match=rf"tensor 'projection' has dtype {np.dtype(dtype)}, "
                                         "expected float32"):
        load(saved)


def test_non_finite_weights(saved: Path) -> None:
    arrays = current_arrays(saved)
    arrays["center"][3] = np.nan
    rewrite(saved, arrays)
    with pytest.raises(DataError, match="'center' contains NaN or inf"):
        load(saved)


def test_tensor_listed_but_missing_and_unlisted_tensor(saved: Path) -> None:
    arrays = current_arrays(saved)
    rewrite(saved, arrays)  # control: a consistent rewrite loads
    load(saved)
    rewrite(saved, arrays, arrays=[n for n in arrays if n != "center"])
    with pytest.raises(DataError, match="unexpected tensor 'center'"):
        load(saved)
    del arrays["center"]
    rewrite(saved, arrays, arrays=[*arrays, "center"])
    with pytest.raises(DataError, match=r"tensor 'center' listed in config\.json is missing"):
        load(saved)


@pytest.mark.parametrize("cut", [-7, 12, 4])
def test_truncated_weights(saved: Path, cut: int) -> None:
    path = saved / "model.safetensors"
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(DataError, match=r"model\.safetensors: not a readable safetensors file"):
        load(saved)


def test_garbage_weights(saved: Path) -> None:
    (saved / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(DataError, match=r"model\.safetensors: not a readable safetensors file"):
        load(saved)


def test_flipped_bits_in_the_weights_fail_the_checksum(saved: Path) -> None:
    path = saved / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10  # inside the last tensor's data: the file still parses
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="do not match the checksum"):
        load(saved)


def edit_config(folder: Path, **fields: Any) -> None:
    """Change config.json fields by hand, as a user would: no checksum is recomputed."""
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(fields)
    (folder / "config.json").write_text(json.dumps({k: v for k, v in cfg.items() if v != "DEL"}))


@pytest.mark.parametrize(("fields", "message"), [
    ({"activation": "relu"}, r"config\.json: .*activation.* do not match config_sha256"),
    ({"weights_sha256": "DEL"}, r"config\.json: no weights_sha256"),
    ({"config_sha256": "DEL"}, r"config\.json: no config_sha256"),
    # a checksum of another type was reported as missing
    ({"weights_sha256": 5}, r"config\.json: weights_sha256 is 5, not a SHA-256 text"),
    ({"config_sha256": ["ab"]}, r"config\.json: config_sha256 is \['ab'\], not a SHA-256 text"),
])
def test_edited_or_missing_checksums_fail_unless_verify_is_off(
    saved: Path, make_inputs: Any, fields: dict[str, Any], message: str
) -> None:
    x = make_inputs(5, 32)
    want = load(saved).transform(x)
    edit_config(saved, **fields)
    with pytest.raises(DataError,
                       match=message + r".*verify=False \(dive\.load\) to use it unchecked$"):
        load(saved)
    got = load(saved, verify=False).transform(x)
    assert np.array_equal(got, want) == ("activation" not in fields)


@pytest.mark.parametrize("verify", [True, False])
def test_a_config_without_its_activation_is_refused(saved: Path, verify: bool) -> None:
    # a KeyError traceback from every verb; the checksum reads a missing activation as null,
    # so a folder without an adapter passed it
    edit_config(saved, activation="DEL")
    with pytest.raises(DataError, match=r"config\.json: no activation \(null for a model "
                       r"without an adapter\)$"):
        load(saved, verify=verify)


def test_a_format_1_folder_loads_on_its_weights_checksum(saved: Path) -> None:
    # What the previous release wrote: no config_sha256 or precision, format_version 1.
    edit_config(saved, config_sha256="DEL", precision="DEL", format_version=1)
    assert load(saved).output_dim == 8
    edit_config(saved, weights_sha256="DEL")
    with pytest.raises(DataError, match="no weights_sha256"):
        load(saved)


@pytest.mark.parametrize(("dropped", "message"), [
    ({}, r"do not match config_sha256"),
    ({"config_sha256": "DEL"}, r"precision in a format_version 1 config\.json, which predates it"),
])
def test_lowering_format_version_does_not_turn_the_config_checksum_off(
    saved: Path, dropped: dict[str, Any], message: str
) -> None:
    # version 1 (no config_sha256) skipped the check, so an edited precision loaded as binary
    edit_config(saved, precision="binary", format_version=1, **dropped)
    with pytest.raises(DataError, match=message):
        load(saved)


def test_a_runtime_refuses_arrays_load_would_refuse() -> None:
    # save refused NaN; calling the runtime returned NaN rows, and a list or a tensor
    # projection failed only when called (numpy's TypeError) or saved
    torch = pytest.importorskip("torch")
    nan = np.full((8, 32), np.nan, np.float32)
    ones = np.ones((8, 32), np.float32)
    for projection, message in [
        (nan, "runtime: tensor 'projection' contains NaN or inf"),
        (ones.tolist(), "runtime: tensor 'projection' is a list; expected a float numpy array"),
        (torch.from_numpy(ones), "runtime: tensor 'projection' is a Tensor; expected a float"),
        (ones.astype(np.int64), "runtime: tensor 'projection' is of dtype int64; expected"),
    ]:
        with pytest.raises(DataError, match=f"^{re.escape(message)}"):
            Runtime(input_dim=32, projection=projection)  # type: ignore[arg-type]


def test_save_refuses_arrays_changed_in_place_after_the_runtime_was_built(
    tmp_path: Path,
) -> None:
    runtime = Runtime(input_dim=32, projection=np.ones((8, 32), np.float32))
    assert runtime.projection is not None
    runtime.projection[0, 0] = np.nan
    with pytest.raises(DataError, match=r"^save \(nothing written\): tensor 'projection' "
                                        "contains NaN or inf$"):
        save(runtime, tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_transform_rejects_the_wrong_dimension(saved: Path, make_inputs: Any) -> None:
    model = load(saved)
    with pytest.raises(DataError, match=rf"{saved.name}: input has dimension 31, but this "
                                         "compressor expects 32"):
        model.transform(make_inputs(4, 31))


@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.bool_])
def test_a_loaded_model_refuses_integer_input_as_a_fitted_one_does(
    saved: Path, make_inputs: Any, dtype: Any
) -> None:
    model = load(saved)
    codes = make_inputs(4, 32).astype(dtype)
    for encode in (model.transform, model.embed):
        with pytest.raises(DataError, match=rf"{saved.name}: expected float embeddings, got "
                                             rf"dtype {np.dtype(dtype)}"):
            encode(codes)


def test_save_rejects_an_inconsistent_runtime(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="columns must equal input_dim"):  # refused when built
        save(Runtime(input_dim=8, projection=np.zeros((4, 6), np.float32)), tmp_path / "m")
    assert not (tmp_path / "m").exists()


class _NotACompressor:
    pass


def test_save_rejects_other_objects(tmp_path: Path) -> None:
    with pytest.raises(DiveError, match="Compressor, a LoadedCompressor or a Runtime"):
        save(_NotACompressor(), tmp_path / "m")  # type: ignore[arg-type]


def test_saved_compressor_is_a_compressor_lookalike(saved: Path) -> None:
    model = load(saved)
    for name in ("method", "runtime_", "transform", "n_params", "input_dim", "output_dim",
                 "fitted_runtime", "config"):
        assert hasattr(model, name), name
    assert "LoadedCompressor(method='runtime'" in repr(model)


@pytest.mark.parametrize("verify", [None, 0, 1, "no", []])
def test_verify_that_is_not_a_bool_is_refused(saved: Path, verify: object) -> None:
    """`verify=None` (or 0, []) skipped both checksums without a word: a corrupt folder
    loaded."""
    said = re.escape(repr(verify))
    with pytest.raises(DiveError, match=rf"^verify must be True or False, got {said}"):
        load(saved, verify=verify)  # type: ignore[arg-type]


def test_an_oserror_reading_the_folder_is_a_data_error(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PermissionError (an unreadable config.json) came out bare, where the docstring
    promises `DataError` naming the file: code catching `DataError` missed it."""
    import errno

    real = Path.read_bytes

    def denied(self: Path) -> bytes:
        if self.name == "config.json":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(DataError, match=r"config\.json: cannot be read \(Permission denied\)$"):
        load(saved)


@pytest.mark.parametrize("manifest", [b"", b"\xff\xfe"])
def test_a_damaged_manifest_is_read_as_none_so_overwrite_still_replaces_dives_folder(
    saved: Path, make_runtime: Any, manifest: bytes
) -> None:
    """An emptied `.dive-files` (a crash: it was not synced) said dive's own config.json and
    weights were "files dive did not write"; one not UTF-8 was a traceback."""
    (saved / ".dive-files").write_bytes(manifest)
    other = make_runtime(input_dim=32, output_dim=4, rank=16)
    save(other, saved, overwrite=True)
    assert load(saved).output_dim == 4
    (saved / "notes.txt").write_text("mine")
    (saved / ".dive-files").write_bytes(manifest)
    with pytest.raises(DiveError, match=r"holds files dive did not write \(notes\.txt\)"):
        save(other, saved, overwrite=True)


def test_a_link_leading_nowhere_or_a_folder_in_a_files_place_is_named_as_such(
    saved: Path, tmp_path: Path
) -> None:
    # a loop of links was "no such model folder"; config.json made a folder, or a weights
    # link to a missing file, were "missing"
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(DataError, match=r"loop: a link to .*loop, which does not lead to a model "
                       r"folder \(missing, or a loop of links\)$"):
        load(loop)
    weights = saved / "model.safetensors"
    weights.unlink()
    weights.symlink_to(tmp_path / "gone.safetensors")
    with pytest.raises(DataError, match=r"model\.safetensors: a link to .*gone\.safetensors, "
                       r"which does not lead to a file"):
        load(saved)
    config = saved / "config.json"
    config.unlink()
    config.mkdir()
    with pytest.raises(DataError, match=r"config\.json: is a folder, not the file a model "
                       r"folder holds$"):
        load(saved)
