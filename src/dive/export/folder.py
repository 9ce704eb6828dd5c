"""The saved-model folder: `config.json` + `model.safetensors`, loaded back with numpy only.

A fitted compressor is saved as its `Runtime` (see `dive.compressors.runtime`): the arrays go
into `model.safetensors` under the names `Runtime.arrays()` gives them (`adapter.w1`,
`adapter.b1`, `adapter.w2`, `adapter.b2`, `center`, `projection`, and int8's calibrated range
`quantizer.low`, `quantizer.width`), float32, and come back through `Runtime.from_arrays`;
`config.json` records the format version, the dive version, the method and its
hyper-parameters, the dimensions, the activation, the precision
(`dive.compressors.precision`), which arrays exist, a SHA-256 of the weights file and an
optional training summary (dataset, embedding model, budget, seed, as `dive.fit_record`
records them; a learned fit's `FitSummary` as `fit`: validation score and curve, best step,
what was selected). Never pickle. Folders written before format 3 have no precision and load
as float32.

`load` returns a `LoadedCompressor`, which transforms exactly as the fitted compressor did
(bit-identical: same float32 arrays, same numpy code), ending in its precision's codes.
Loading imports numpy, safetensors and the runtime only, never torch, so a served model needs
neither torch nor the training code.
Everything in a folder is checked before use; a bad folder raises `DataError` naming the file
and the problem. A checksum that does not match, or is missing (format 2 needs both; folders
of format 1 predate `config_sha256`), is an error unless the caller opts out with
`load(path, verify=False)` (CLI: `--no-verify`). Saving writes into a temporary folder beside
the target and renames it into place, so a failed save leaves any existing folder as it was.

Left out: other formats (`dive.export.onnx`, `dive.export.sentence_transformers`) and
refitting a loaded model (a loaded compressor is inference-only).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy
from safetensors import SafetensorError

from dive import __version__
from dive._io import (
    as_path,
    check_output,
    naming_os_errors,
    parse_json,
    parse_json_object,
    publish,
    read_one_save,
    temporary,
)
from dive.arrays import as_array, as_unit_rows, check_floating
from dive.compressors.base import Compressor
from dive.compressors.precision import PRECISIONS, Precision
from dive.compressors.runtime import ACTIVATIONS, ARRAY_NAMES, Runtime, runtime_digest
from dive.errors import DataError, DiveError, kind_of
from dive.fit_record import DatasetFitInfo

logger = logging.getLogger(__name__)

FORMAT = "dive-compressor"
FORMAT_VERSION = 3  # 2 added config_sha256, 3 precision
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
# The method name recorded when a bare Runtime (not a fitted compressor) is saved.
RUNTIME_METHOD = "runtime"
# The config.json fields that change what a loaded model computes, covered by config_sha256.
COMPUTATION_FIELDS = ("format", "format_version", "input_dim", "output_dim", "activation",
                      "arrays", "weights_sha256", "precision")
# Covered only when present, so the checksums of folders older than the field still match.
LATER_FIELDS = {"precision": 3}


class LoadedCompressor:
    """A compressor read back from a folder: inference only, behaves like a fitted `Compressor`.

    `config()` returns the method's hyper-parameters (as `Compressor.config()` does);
    `metadata` is the whole `config.json`; `summary` the training summary saved with it;
    `source` the folder it was read from. A compressor wrapped in memory, or one
    `with_precision` made, has no folder: `metadata` empty, `source` None.
    """

    supervised = False  # nothing left to learn: a loaded compressor is never fitted again

    def __init__(
        self,
        runtime: Runtime,
        *,
        method: str = RUNTIME_METHOD,
        method_config: dict[str, Any] | None = None,
        summary: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        source: Path | None = None,
    ) -> None:
        self.runtime_ = runtime
        self.method = method
        self.method_config = dict(method_config or {})
        self.summary = dict(summary or {})
        self.metadata = dict(metadata or {})
        self.source = source

    def config(self) -> dict[str, Any]:
        return dict(self.method_config)

    @property
    def input_dim(self) -> int:
        return self.runtime_.input_dim

    @property
    def output_dim(self) -> int:
        return self.runtime_.output_dim

    @property
    def dim(self) -> int:
        return self.runtime_.output_dim

    @property
    def n_params(self) -> int:
        return self.runtime_.n_params

    @property
    def precision(self) -> Precision:
        return self.runtime_.precision

    def fitted_runtime(self) -> Runtime:
        return self.runtime_

    def fit(self, corpus: np.ndarray, train: object = None) -> LoadedCompressor:
        raise DiveError(
            f"{self._where()}: a loaded compressor is inference-only; fit a new "
            f"{self.method!r} compressor instead"
        )

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Compress (n, D) embeddings to codes at the folder's precision.

        float32: L2-normalised (n, d) float32; float16 the same as half floats; int8 (n, d)
        int8 codes; binary (n, ceil(d/8)) uint8 packed sign bits.
        """
        return self.runtime_(self._checked(x))

    def embed(self, x: np.ndarray) -> np.ndarray:
        """Compress (n, D) embeddings to L2-normalised (n, d) float32, before the precision.

        What queries are searched with, against codes of any precision.
        """
        return self.runtime_.embed(self._checked(x))

    def _checked(self, x: np.ndarray) -> np.ndarray:
        arr = as_array(x, name=self._where())
        check_floating(arr, name=self._where())  # as `Compressor.transform` refuses them
        if arr.ndim == 2 and arr.shape[1] != self.input_dim:
            raise DataError(
                f"{self._where()}: input has dimension {arr.shape[1]}, but this compressor "
                f"expects {self.input_dim} (embeddings from another model?)"
            )
        return arr

    def _where(self) -> str:
        return str(self.source) if self.source is not None else f"{self.method} compressor"

    def __repr__(self) -> str:
        where = f", source={str(self.source)!r}" if self.source is not None else ""
        precision = "" if self.precision == "float32" else f", precision={self.precision!r}"
        return (
            f"LoadedCompressor(method={self.method!r}, input_dim={self.input_dim}, "
            f"output_dim={self.output_dim}{precision}{where})"
        )


SaveSource = Compressor | LoadedCompressor | Runtime


# --- saving ------------------------------------------------------------------------------------


def save(
    compressor: SaveSource,
    directory: str | os.PathLike[str],
    *,
    summary: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write `compressor` (fitted, loaded, or a bare `Runtime`) as a model folder; return it.

    Parameters
    ----------
    compressor : Compressor, LoadedCompressor or Runtime
        A fitted compressor (`dive.fit`, or any `Compressor` after `fit`), one read back by
        `load`, or a bare `Runtime`.
    directory : str or os.PathLike
        The model folder to write: `config.json` + `model.safetensors`. An existing model
        folder there is replaced atomically only with `overwrite=True`; any other existing,
        non-empty folder is left alone and raises `DiveError`, whatever `overwrite` says.
    summary : dict or None, default=None
        A JSON-ready dict describing the fit (dataset, budget, seed, validation score...),
        saved as the config's `training`; a `LoadedCompressor` keeps its own unless one is
        given, one `dive.fit` fitted on a dataset defaults to the record `dive fit` saves
        (dataset, embedding model, seed, labels, `fit`; see `dive.fit_record`), and another
        learned compressor's to its typed fit summary (`fit`, see
        `dive.compressors.base.FitSummary`).
    overwrite : bool, default=False
        False: an existing model folder is kept and raises `DiveError` naming it, even one
        a concurrent run saved while this one wrote (`dive._io.publish`); True replaces it
        (as `dive fit --overwrite` does).

    Returns
    -------
    Path
        The folder written.

    Examples
    --------
    >>> import tempfile, numpy as np, dive
    >>> corpus = np.random.default_rng(0).standard_normal((200, 32)).astype(np.float32)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     folder = dive.save(dive.fit(corpus, method="pca", dim=8), f"{tmp}/pca",
    ...                        summary={"dataset": "my-corpus"})
    ...     names = sorted(p.name for p in folder.iterdir())
    ...     summary = dive.load(folder).summary
    >>> names, summary
    (['.dive-files', 'config.json', 'model.safetensors'], {'dataset': 'my-corpus'})
    """
    target = as_path(directory, "save: directory", "the path of a model folder")
    if summary is not None and not isinstance(summary, dict):  # `load` would refuse it
        raise DiveError(f"save: summary must be a dict (or None), got {kind_of(summary)}")
    runtime, method, method_config, default_summary = _describe(compressor)
    arrays = runtime_arrays(runtime)
    activation = runtime.adapter.activation if runtime.adapter is not None else None
    # Refuse to write what `load` would reject (a runtime's arrays were checked when it was
    # built; this checks them as `load` reads them back).
    Runtime.from_arrays(arrays, input_dim=runtime.input_dim, output_dim=runtime.output_dim,
                        activation=activation, precision=runtime.precision,
                        where="save (nothing written)")
    # One metadata key: safetensors writes its metadata map in a per-process random order,
    # so two keys would make the same model's bytes (and weights_sha256) differ between runs.
    # The format version is config.json's.
    weights = safetensors.numpy.save(arrays, metadata={"format": FORMAT})
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dive_version": __version__,
        "method": method,
        "method_config": method_config,
        "input_dim": runtime.input_dim,
        "output_dim": runtime.output_dim,
        "activation": activation,
        "precision": runtime.precision,
        "arrays": list(arrays),
        "n_params": runtime.n_params,
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        # the identity indexes, compress output folders and LanceDB tables record as
        # model_sha256
        "runtime_sha256": runtime_digest(runtime),
        "training": summary if summary is not None else default_summary,
    }
    config["config_sha256"] = config_digest(config)
    text = _to_json(config, what=f"{method} config/summary")
    _write_folder(target, {CONFIG_FILE: text.encode("utf-8"), WEIGHTS_FILE: weights},
                  overwrite=overwrite)
    logger.info("saved %s compressor (%d -> %d) to %s", method, runtime.input_dim,
                runtime.output_dim, target)
    return target


def with_precision(
    source: SaveSource | str | os.PathLike[str], precision: str,
    corpus: np.ndarray | None = None,
) -> LoadedCompressor:
    """`source` ending in `precision`, int8 calibrated on `corpus` (n, D) float embeddings.

    The method, its config and the training summary carry over; save the result to ship it.
    Only int8 reads `corpus` (the others need none): it needs at least two rows
    (`dive.compressors.precision.calibrate`: one would leave every range empty) and warns
    when most output dimensions are constant over them; integer or bool `corpus` arrays are
    refused, as `fit` refuses them.
    """
    loaded = as_loaded(source)
    if corpus is None:
        if precision == "int8":
            raise DiveError("with_precision: int8 is calibrated on corpus embeddings; pass "
                            "corpus= (n, D)")
        corpus = np.zeros((0, loaded.runtime_.input_dim), dtype=np.float32)
    check_floating(corpus, name="calibration corpus")
    if precision == "int8":  # its shape and rows (NaN, zero) named as the calibration corpus's
        corpus = as_unit_rows(corpus, name="calibration corpus",
                               dim=loaded.runtime_.input_dim)
    return LoadedCompressor(loaded.runtime_.with_precision(precision, corpus),
                            method=loaded.method, method_config=loaded.config(),
                            summary=loaded.summary)  # not the folder's model: no source


def as_loaded(obj: SaveSource | str | os.PathLike[str]) -> LoadedCompressor:
    """`obj` as a `LoadedCompressor`: a model folder is loaded, a compressor or runtime wrapped."""
    if isinstance(obj, LoadedCompressor):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        return load(obj)
    runtime, method, method_config, summary = _describe(obj)
    return LoadedCompressor(runtime, method=method, method_config=method_config, summary=summary)


def _describe(obj: SaveSource) -> tuple[Runtime, str, dict[str, Any], dict[str, Any]]:
    if isinstance(obj, Runtime):
        return obj, RUNTIME_METHOD, {}, {}
    if isinstance(obj, LoadedCompressor):
        return obj.runtime_, obj.method, obj.config(), obj.summary
    if isinstance(obj, Compressor):
        runtime, config = obj.fitted_runtime(), obj.fitted_config()
        fitted = obj.fit_info_
        if isinstance(fitted, DatasetFitInfo):  # fitted on a dataset: its whole record
            return runtime, obj.method, config, dict(fitted.training)
        summary = fitted.summary
        training = {"fit": summary.as_record()} if summary is not None else {}
        return runtime, obj.method, config, training
    raise DiveError(f"compressor is {kind_of(obj)}; expected a fitted Compressor, a "
                    "LoadedCompressor or a Runtime")


def runtime_arrays(runtime: Runtime) -> dict[str, np.ndarray]:
    """The runtime's arrays under their saved names, float32 C-contiguous."""
    arrays: dict[str, np.ndarray] = {}
    for name, value in runtime.arrays().items():
        arr = np.asarray(value)
        if arr.dtype != np.float32:
            # The runtime computes in float32 anyway; say so, as results may move in the last bit.
            logger.warning("%s: %s array stored as float32", name, arr.dtype)
        arrays[name] = np.ascontiguousarray(arr, dtype=np.float32)
    return arrays


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _to_json(config: dict[str, Any], *, what: str) -> str:
    keys = _keys_not_strings(config)
    if keys:  # json.dumps writes 1 as "1": it came back as another key
        raise DiveError(f"{what}: cannot be written as JSON (key {keys[0]!r} is not a string)")
    try:
        return json.dumps(config, indent=2, default=_jsonable, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise DiveError(f"{what}: cannot be written as JSON ({exc})") from None


def _keys_not_strings(value: Any) -> list[object]:
    """The dict keys in `value` (nested in dicts and lists) that are not strings."""
    if isinstance(value, dict):
        return [k for k in value if not isinstance(k, str)] + _keys_not_strings(
            list(value.values()))
    if isinstance(value, (list, tuple)):
        return [k for item in value for k in _keys_not_strings(item)]
    return []


def is_model_folder(folder: Path) -> bool:
    """Whether `folder` is a model folder `save` wrote (its config.json says so)."""
    try:
        config = parse_json((folder / CONFIG_FILE).read_text(encoding="utf-8-sig"), "")
    except (OSError, ValueError):  # DataError is one
        return False
    return isinstance(config, dict) and config.get("format") == FORMAT


def check_model_output(target: Path, *, overwrite: bool) -> None:
    """Refuse to write a model folder over anything but one (and over one without overwrite)."""
    check_output(target, overwrite=overwrite, ours=is_model_folder,
                 what="a saved dive compressor folder", folder=True,
                 layout=(CONFIG_FILE, WEIGHTS_FILE))


def _write_folder(target: Path, files: dict[str, bytes], *, overwrite: bool) -> None:
    check_model_output(target, overwrite=overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    with naming_os_errors(target), temporary(target, folder=True) as tmp:
        for name, data in files.items():
            with open(tmp / name, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        # keeps what another run saved meanwhile
        publish(tmp, target, overwrite=overwrite, output=True)



# --- loading -----------------------------------------------------------------------------------


def config_digest(config: dict[str, Any]) -> str:
    """SHA-256 of the config fields that change the computation (`COMPUTATION_FIELDS`)."""
    fields = {key: config.get(key) for key in COMPUTATION_FIELDS
              if key in config or key not in LATER_FIELDS}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode("utf-8")).hexdigest()


def load(directory: str | os.PathLike[str], *, verify: bool = True) -> LoadedCompressor:
    """Read and check a model folder written by `save`; numpy and safetensors only.

    Parameters
    ----------
    directory : str or os.PathLike
        A model folder written by `save` (or `dive fit`).
    verify : bool, default=True
        Check the checksums of the config and the weights; False skips them, for a folder
        edited on purpose or written without them. Every other check still runs.

    Returns
    -------
    LoadedCompressor
        An inference-only compressor: `transform` computes exactly what the saved one did
        (bit-identical), `config()` its hyper-parameters, `summary` the saved training
        summary. A bad folder raises `DataError` naming the file and the problem.

    Examples
    --------
    >>> import tempfile, numpy as np, dive
    >>> corpus = np.random.default_rng(0).standard_normal((200, 32)).astype(np.float32)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     folder = dive.save(dive.fit(corpus, method="pca", dim=8), f"{tmp}/pca")
    ...     model = dive.load(folder)
    >>> model.method, model.transform(corpus[:2]).shape
    ('pca', (2, 8))
    """
    root = as_path(directory, "load: directory", "the path of a model folder")
    if not isinstance(verify, bool):  # None or 0 skipped both checksums without a word
        raise DiveError(f"verify must be True or False, got {verify!r}", param="verify")
    try:
        return _load(root, verify)
    except OSError as exc:  # a file that cannot be read (permissions, I/O): DataError, as said
        where = exc.filename if exc.filename is not None else root
        raise DataError(f"{where}: cannot be read ({exc.strerror or exc})") from None


def _load(root: Path, verify: bool) -> LoadedCompressor:
    if not root.is_dir():
        _refuse_link_to_nothing(root, "a model folder")
        raise DataError(f"{root}: is a file, not a model folder" if root.exists()
                        else f"{root}: no such model folder")
    config_path, weights_path = root / CONFIG_FILE, root / WEIGHTS_FILE
    if config_path.is_file():  # another tool's folder is refused before its weights (GBs) are read
        read_config(config_path, config_path.read_bytes())
    config_data, weights_data = _read_files(root)
    if config_data is None:
        raise DataError(f"{config_path}: missing (not a saved dive compressor folder)")
    config = read_config(config_path, config_data)
    if verify:
        _verify_config(config_path, config)
    if weights_data is None:
        raise DataError(f"{weights_path}: missing (the folder has config.json but no weights)")
    arrays = _read_weights(weights_path, weights_data, config, verify=verify)
    runtime = Runtime.from_arrays(arrays, input_dim=config["input_dim"],
                                  output_dim=config["output_dim"], activation=config["activation"],
                                  precision=config.get("precision", "float32"),
                                  where=str(weights_path))
    return LoadedCompressor(
        runtime,
        method=config["method"],
        method_config=config["method_config"],
        summary=config["training"],
        metadata=config,
        source=root,
    )


def _refuse_link_to_nothing(path: Path, what: str) -> None:
    """`DataError` if `path` is a symbolic link that leads nowhere (a missing target, or a
    loop of links): it was reported as no such folder, or as a missing file."""
    if path.is_symlink() and not path.exists():
        raise DataError(f"{path}: a link to {os.readlink(path)}, which does not lead to {what} "
                        "(missing, or a loop of links)")


def _read_files(root: Path) -> tuple[bytes | None, bytes | None]:
    """The bytes of config.json and of the weights (None: not a file), both of one save (a
    false "corrupt" error, or unverified, a model that is neither, when a load paired one
    save's config with the next one's weights: `read_one_save`)."""
    def read(name: str) -> bytes | None:
        path = root / name
        if path.is_dir():
            raise DataError(f"{path}: is a folder, not the file a model folder holds")
        _refuse_link_to_nothing(path, "a file")
        return path.read_bytes() if path.is_file() else None

    return read_one_save(root, lambda: (read(CONFIG_FILE), read(WEIGHTS_FILE)))


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def read_config(path: Path, data: bytes) -> dict[str, Any]:
    """Parse and check `data`, the bytes of `path` (config.json); fills optional fields."""
    # utf-8-sig: an editor may save the file with a byte-order mark, as BEIR files may have
    config = parse_json_object(data, str(path), encoding="utf-8-sig")
    if config.get("format") != FORMAT:  # every format_version writes it
        raise DataError(f"{path}: format is {config.get('format')!r}, expected {FORMAT!r} "
                        "(not a saved dive compressor folder)")
    version = config.get("format_version")
    if not isinstance(version, int) or not _positive_int(version):
        raise DataError(f"{path}: format_version is {version!r}, expected a positive integer")
    if version > FORMAT_VERSION:
        raise DataError(
            f"{path}: format_version {version} is newer than this dive {__version__} reads "
            f"(up to {FORMAT_VERSION}); upgrade dive"
        )
    method = config.get("method")
    if not isinstance(method, str) or not method:
        raise DataError(f"{path}: method is {method!r}, expected a method name")
    for key in ("input_dim", "output_dim"):
        if not _positive_int(config.get(key)):
            raise DataError(f"{path}: {key} is {config.get(key)!r}, expected a positive integer")
    if "activation" not in config:  # a KeyError traceback (its digest reads it as null)
        raise DataError(f"{path}: no activation (null for a model without an adapter)")
    activation = config["activation"]
    if activation is not None and activation not in ACTIVATIONS:
        raise DataError(
            f"{path}: activation {activation!r} is not one of {', '.join(ACTIVATIONS)} (or null)"
        )
    for key, since in LATER_FIELDS.items():
        if version >= since and key not in config:
            raise DataError(f"{path}: no {key} (format_version {version} records it)")
    precision = config.get("precision", "float32")
    if precision not in PRECISIONS:
        raise DataError(f"{path}: precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    arrays = config.get("arrays")
    if not isinstance(arrays, list) or not all(isinstance(a, str) for a in arrays):
        raise DataError(f"{path}: arrays is {arrays!r}, expected a list of array names")
    unknown = [a for a in arrays if a not in ARRAY_NAMES]
    if unknown or len(set(arrays)) != len(arrays):
        raise DataError(
            f"{path}: arrays {arrays!r} has unknown or repeated names "
            f"(valid: {', '.join(ARRAY_NAMES)})"
        )
    for key in ("method_config", "training"):
        value = config.setdefault(key, {})
        if value is None:
            config[key] = {}
        elif not isinstance(value, dict):
            raise DataError(f"{path}: {key} is {type(value).__name__}, expected an object")
    return config


# dive.load's parameter, named as such: other loaders of a folder (with_precision, the
# sentence-transformers module) take a loaded compressor, not this option
_OPT_OUT = "load it with verify=False (dive.load) to use it unchecked"


def _check_digest_field(path: Path, config: dict[str, Any], key: str, what: str) -> None:
    """`config[key]` is a checksum's text, else `DataError`: missing, or of another type (5
    was reported as missing)."""
    value = config.get(key)
    if not isinstance(value, str):
        problem = f"no {key}" if value is None else f"{key} is {value!r}, not a SHA-256 text"
        raise DataError(f"{path}: {problem}, so {what} cannot be checked; {_OPT_OUT}",
                        param="verify")


def _verify_config(path: Path, config: dict[str, Any]) -> None:
    """Both checksums present (config_sha256 from format 2 on) and the config's matching."""
    _check_digest_field(path, config, "weights_sha256", "the weights")
    expected = config.get("config_sha256")
    if config["format_version"] < 2 and expected is None:  # written before config_sha256
        later = [key for key in LATER_FIELDS if key in config]
        if later:  # a newer folder whose version was lowered: its settings are unchecked
            raise DataError(f"{path}: {later[0]} in a format_version 1 config.json, which "
                            f"predates it (edited?); {_OPT_OUT}", param="verify")
        return
    _check_digest_field(path, config, "config_sha256", "the settings")
    if config_digest(config) != expected:
        raise DataError(
            f"{path}: {', '.join(COMPUTATION_FIELDS[2:])} do not match config_sha256 "
            f"(edited or corrupt); {_OPT_OUT}", param="verify"
        )


def _read_weights(path: Path, data: bytes, config: dict[str, Any], *,
                  verify: bool) -> dict[str, np.ndarray]:
    try:
        loaded = safetensors.numpy.load(data)
    except (SafetensorError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: not a readable safetensors file ({exc})") from None
    except KeyError as exc:  # a dtype numpy has no type for (BF16, F8_E4M3, ...)
        raise DataError(f"{path}: holds a tensor of dtype {exc.args[0]}, which numpy cannot "
                        "read; expected float32") from None
    # A well-formed file can still hold flipped bits or another model's weights.
    if verify and hashlib.sha256(data).hexdigest() != config["weights_sha256"]:
        raise DataError(
            f"{path}: contents do not match the checksum in config.json (corrupt or replaced)"
        )
    listed = list(config["arrays"])
    missing = [name for name in listed if name not in loaded]
    if missing:
        raise DataError(f"{path}: tensor {missing[0]!r} listed in config.json is missing")
    extra = sorted(set(loaded) - set(listed))
    if extra:
        raise DataError(f"{path}: unexpected tensor {extra[0]!r} (not listed in config.json)")
    arrays: dict[str, np.ndarray] = {}
    for name in listed:
        arr = loaded[name]
        if arr.dtype != np.float32:
            raise DataError(f"{path}: tensor {name!r} has dtype {arr.dtype}, expected float32")
        if not np.isfinite(arr).all():
            raise DataError(f"{path}: tensor {name!r} contains NaN or inf")
        arrays[name] = np.array(arr, dtype=np.float32, order="C", copy=True)
    return arrays
