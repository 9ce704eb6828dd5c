"""Export a fitted compressor for sentence-transformers.

Two shapes of output:
- a module folder (default): `config.json` + `model.safetensors` that
  `dive.export.st_module.DiveCompression` loads; add it to any model with
  `model.append(DiveCompression.load(path))`, or list it in a model's `modules.json` with
  `"type": "dive.export.st_module.DiveCompression"`;
- with `base_model`, a complete SentenceTransformer folder: the base model with the
  compression module appended, so `SentenceTransformer(path).encode(texts)` returns
  compressed vectors directly.

Both are written into a temporary folder beside the target and renamed into place. Loading
either needs dive importable (the module's class path); nothing else is copied into the folder.
sentence-transformers 6 imports a module class from outside its own namespace only with
`trust_remote_code=True`; `load_sentence_transformer` passes it only after checking that the
flag lets in no other code (`_check_no_foreign_code`: a received folder could name code of its
own).
Left out: pushing to the Hugging Face hub, model cards beyond what sentence-transformers writes.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from dive._io import (
    as_path,
    check_output,
    new_file_mode,
    os_error_in_text,
    publish,
    temporary,
)
from dive.errors import DataError, DiveError
from dive.export.folder import (
    LoadedCompressor,
    SaveSource,
    as_loaded,
    check_model_output,
    save,
)

logger = logging.getLogger(__name__)

MODULE_TYPE = "dive.export.st_module.DiveCompression"  # as sentence-transformers records it


def export_sentence_transformers(
    source: SaveSource | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    base_model: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write `source` (a model folder, compressor or runtime) for sentence-transformers.

    Without `base_model`: the `DiveCompression` module folder. With it (a model name or path,
    resolved by `dive.embed.load_model`): the base model plus the module, as one
    SentenceTransformer folder. Returns `out_dir`. `overwrite=False` keeps an export already
    at `out_dir`, even one a concurrent run wrote meanwhile, and raises `DiveError`.
    """
    target = as_path(out_dir, "export_sentence_transformers: out_dir")
    compressor = as_loaded(source)
    if base_model is None:
        return save(compressor, target, overwrite=overwrite)
    from dive.embed import load_model
    from dive.embed.encode import loading_bars, same_model
    from dive.export.st_module import DiveCompression

    with loading_bars(False):  # transformers' "Loading weights" bar: export draws none
        model = load_model(base_model)
    trained_on = compressor.summary.get("model")  # as `dive index` warns, not refuses: a path
    if trained_on and not same_model(str(trained_on), base_model):  # may be it
        logger.warning("the compressor was fitted on %s embeddings; bundling it with model %s",
                       trained_on, base_model)
    dim = _embedding_dim(model)
    if dim is not None and dim != compressor.input_dim:
        raise DiveError(
            f"model {base_model!r} makes {dim}-d embeddings, but the compressor expects "
            f"{compressor.input_dim}-d"
        )
    model.append(DiveCompression(compressor))
    _save_model_atomically(model, target, overwrite=overwrite,
                           card=_model_card(base_model, compressor))
    logger.info("wrote %s + dive compression (%d -> %d) to %s", base_model,
                compressor.input_dim, compressor.output_dim, target)
    return target


def check_st_output(target: Path, *, overwrite: bool, bundled: bool) -> None:
    """Refuse to replace anything but the same kind of export (and that without overwrite).

    `bundled`: the export is a whole model (`base_model` given), else the module folder.
    """
    if not bundled:
        check_model_output(target, overwrite=overwrite)
    else:
        check_output(target, overwrite=overwrite, ours=is_dive_st_model,
                     what="a sentence-transformers model with dive compression", folder=True)


# sentence-transformers' layers that import no class their files name (its Router does)
_PLAIN_LAYERS = frozenset({"Transformer", "Pooling", "Normalize", "Dense", "LayerNorm", "Dropout",
                           "WordEmbeddings", "WordWeights", "CNN", "LSTM", "BoW",
                           "StaticEmbedding", "WeightedLayerPooling", "CLIPModel"})


def is_dive_st_model(folder: Path) -> bool:
    """Whether `folder` is a SentenceTransformer folder ending in dive's compression module."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        return any(m.get("type") == MODULE_TYPE for m in modules)
    except (OSError, ValueError, TypeError, AttributeError):
        return False


def load_sentence_transformer(path: str | os.PathLike[str], device: str = "cpu") -> Any:
    """Load a SentenceTransformer folder written with `base_model` (trusting dive's module).

    Only such a folder: a mistyped path went to the Hugging Face hub (about 80 s of retries
    offline), and a module-only export or a dive model folder was transformers' "Unrecognized
    model"; both are a `DataError` naming the path."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        from dive.embed.encode import no_embed_extra

        raise no_embed_extra(exc) from None

    folder = as_path(path, "load_sentence_transformer: path")
    if not folder.is_dir():
        what = "a file, not a folder" if folder.exists() else "no such folder"
        raise DataError(f"{folder}: {what} (a sentence-transformers export with a base model)")
    if not is_dive_st_model(folder):
        raise DataError(f"{folder}: not a sentence-transformers export with a base model (its "
                        "modules.json names no dive compression); a module-only export or a "
                        "model folder loads with dive.load")
    _check_no_foreign_code(folder)
    return SentenceTransformer(os.fspath(folder), device=device, trust_remote_code=True)


def _check_no_foreign_code(folder: Path) -> None:
    """`DataError` unless the only code `trust_remote_code` lets in is dive's module: every
    module in modules.json is dive's or one of sentence-transformers' own layers (not its
    Router, which imports the classes its config names) at a path inside the folder, no folder
    in it is a symbolic link (it can lead anywhere unchecked), and no JSON file has an `auto_map`
    (transformers' pointer to a model's or tokenizer's own code, in the folder or on the hub).
    A folder received from someone else ran whatever it named."""
    trust = ("load it with SentenceTransformer(..., trust_remote_code=True) if you trust the "
             "folder's sender")
    root = folder.resolve()
    json_files = []
    for parent, dirs, files in os.walk(folder):  # a linked folder is not walked: refused
        for name in dirs:
            if (Path(parent) / name).is_symlink():
                raise DataError(f"{Path(parent) / name}: a link to a folder in a received "
                                f"model folder, which can lead anywhere; not loaded ({trust})")
        # a linked file is read through its link (a Hugging Face cache snapshot's are)
        json_files += [Path(parent) / name for name in files if name.endswith(".json")]
    modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    for module in modules:
        kind = module.get("type") if isinstance(module, dict) else None
        own = isinstance(kind, str) and kind.startswith("sentence_transformers.") and \
            kind.rsplit(".", 1)[-1] in _PLAIN_LAYERS
        if kind != MODULE_TYPE and not own:
            raise DataError(f"{folder / 'modules.json'}: module type {kind!r} is not one of "
                            f"sentence-transformers' plain layers or dive's; not loaded ({trust})")
        where = module.get("path", "")
        if not isinstance(where, str) or not (root / where).resolve().is_relative_to(root):
            raise DataError(f"{folder / 'modules.json'}: module path {where!r} is outside the "
                            f"folder; not loaded ({trust})")
    for path in sorted(json_files):
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not ours to judge: sentence-transformers reports what it cannot read
        if isinstance(content, dict) and "auto_map" in content:
            raise DataError(f"{path}: auto_map names a model's own code; not loaded ({trust})")


def _embedding_dim(model: Any) -> int | None:
    getter = getattr(model, "get_embedding_dimension", None) or getattr(
        model, "get_sentence_embedding_dimension", None
    )
    return None if getter is None else getter()


def _model_card(base_model: str, compressor: LoadedCompressor) -> str:
    """The export's README.md: the base model's own card described its embeddings (384
    dimensions, float32), not the compressed outputs this folder's model makes."""
    from dive.compressors.precision import bytes_per_vector

    precision, d = compressor.precision, compressor.output_dim
    codes = "" if precision in ("float32", "float16") else (
        f"\nIts outputs are {precision} codes for a vector index (`dive index`), not vectors "
        "for sentence-transformers' `similarity`, which computes in floating point.\n")
    return (f"# {base_model} + dive {compressor.method} ({compressor.input_dim} -> {d} "
            f"dimensions, {precision})\n\n"
            f"The sentence-transformers model `{base_model}`, followed by a dive compression "
            f"module (`{compressor.method}`): it maps text to {d}-dimensional {precision} "
            f"vectors, {bytes_per_vector(precision, d)} bytes each, where the base model makes "
            f"{compressor.input_dim}-dimensional float32 ones. The base model's own card is "
            "at its source.\n"
            f"{codes}\n"
            "Load it with `dive.export.sentence_transformers.load_sentence_transformer(folder)`, "
            "which checks that the only code the folder runs is dive's module, or with "
            "`SentenceTransformer(folder, trust_remote_code=True)` where you trust its sender.\n")


def _save_model_atomically(model: Any, target: Path, *, overwrite: bool, card: str) -> None:
    from dive.embed.encode import loading_bars

    check_st_output(target, overwrite=True, bundled=True)  # never over what dive did not write
    target.parent.mkdir(parents=True, exist_ok=True)
    with temporary(target, folder=True) as tmp, loading_bars(False):  # "Writing model shards"
        try:
            model.save(str(tmp))
        except Exception as exc:  # disk full: safetensors' own error type, a traceback
            named = None if isinstance(exc, OSError) else os_error_in_text(exc, target)
            if named is None:
                raise
            raise named from None
        (tmp / "README.md").write_text(card, encoding="utf-8")
        # transformers writes the weights through a private temporary file (mode 0600): every
        # file gets the mode a new file has, as the rest of the folder and dive's own files do
        mode = new_file_mode()
        for path in tmp.rglob("*"):
            if path.is_file() and not path.is_symlink():
                os.chmod(path, mode)
        publish(tmp, target, overwrite=overwrite, output=True)
