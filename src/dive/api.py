"""The top-level Python API: `dive.embed` and `dive.fit`, the CLI's flow in a few calls.

`dive.load` and `dive.save` (a fitted compressor to and from its folder) live in
`dive.export.folder`; both are re-exported by `dive`. Each function here takes plain inputs
(a dataset name or BEIR folder, numpy arrays) and returns what the next step takes.

Left out: the benchmark grid (`dive.evaluate.protocol.run_grid`, `dive evaluate`) and stores
(`dive.scale.compress_store`, `dive.integrations.lancedb`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, overload

import numpy as np

from dive._io import as_path, check_flag
from dive.arrays import is_integer, is_utf8, positive_integer
from dive.embed.encode import DEFAULT_MODEL
from dive.embed.resumable import DEFAULT_CHUNK_SIZE
from dive.errors import DataError, DiveError, kind_of

if TYPE_CHECKING:
    from dive.compressors.base import Compressor, TrainingData
    from dive.data.beir import Dataset
    from dive.embed.store import Embeddings

Relevant = Mapping[int, int] | Iterable[int]

logger = logging.getLogger(__name__)


def _not_a_name(value: object) -> str | None:
    """What a name argument is instead ("empty", or its kind), or None if it is a name."""
    if isinstance(value, str):
        return None if value.strip() else "empty"
    return kind_of(value)


def _dataset(data: str | os.PathLike[str] | Dataset, data_dir: str | None) -> Dataset:
    from dive.data import Dataset, load_dataset

    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise DiveError(f"data_dir is {kind_of(data_dir)}; expected the path of a folder of "
                        "datasets", param="data_dir")
    return data if isinstance(data, Dataset) else load_dataset(os.fspath(data), data_dir=data_dir)


@overload
def embed(  # type: ignore[overload-overlap]  # a str is a Sequence[str]: the first match wins
    data: str | os.PathLike[str] | Dataset,
    out: str | os.PathLike[str] | None = ...,
    *,
    model: str = ...,
    batch_size: int = ...,
    device: str = ...,
    chunk_size: int = ...,
    data_dir: str | None = ...,
    overwrite: bool = ...,
    progress: bool = ...,
) -> Embeddings: ...


@overload
def embed(
    data: Sequence[str],
    out: None = ...,
    *,
    model: str = ...,
    batch_size: int = ...,
    device: str = ...,
    chunk_size: int = ...,
    data_dir: str | None = ...,
    overwrite: bool = ...,
    progress: bool = ...,
) -> np.ndarray: ...


def embed(
    data: str | os.PathLike[str] | Dataset | Sequence[str],
    out: str | os.PathLike[str] | None = None,
    *,
    model: str = DEFAULT_MODEL,
    batch_size: int = 32,
    device: str = "cpu",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    data_dir: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Embeddings | np.ndarray:
    """Embed a dataset into an embeddings folder, or a list of texts into an array.

    A dataset (a name, a BEIR-layout folder or a loaded `Dataset`) is encoded with the
    sentence-transformers `model` (a name or a local folder; the default comes from its
    offline package) into the folder `out`, chunk by chunk and resumably, as `dive embed`
    does; `out` defaults to the embeddings cache, where `dive evaluate` and `dive.fit` look.
    Returns the `Embeddings`. A list of texts returns their (n, D) float32 L2-normalised
    vectors (a query at search time, say) and writes nothing: the dataset-only arguments
    (`out`, `chunk_size`, `data_dir`, `overwrite`) are refused with texts, not ignored.

    Parameters
    ----------
    data : str, os.PathLike, Dataset or list of str
        A dataset name, a BEIR-layout folder or a loaded `Dataset`; or texts to encode.
    out : str, os.PathLike or None, default=None
        The embeddings folder to write (datasets only); None: the embeddings cache.
    model : str, default=DEFAULT_MODEL
        A sentence-transformers model name or local folder (`all-MiniLM-L6-v2`, installed
        offline with the `embed` extra).
    batch_size : int, default=32
        Texts per encoder batch.
    device : str, default="cpu"
        Torch device: `cpu`, `cuda`, `cuda:1`, `mps`.
    chunk_size : int, default=DEFAULT_CHUNK_SIZE
        Texts per resumable chunk written to `out` (datasets only).
    data_dir : str or None, default=None
        Datasets only: folder holding BEIR datasets by name (default: `$DIVE_DATA`, the
        cache).
    overwrite : bool, default=False
        Datasets only: replace an existing embeddings folder at `out` (otherwise an error).
    progress : bool, default=True
        Show a progress bar.

    Returns
    -------
    Embeddings or numpy.ndarray
        The folder's `Embeddings` for a dataset; (n, D) float32 for texts.

    Examples
    --------
    >>> import dive
    >>> emb = dive.embed("docs/examples/own-data/pantry", "runs/pantry-emb")  # doctest: +SKIP
    >>> emb.corpus.shape, emb.meta["model"]  # doctest: +SKIP
    ((48, 384), 'all-MiniLM-L6-v2')
    >>> dive.embed(["how do I keep bread fresh?"], progress=False).shape  # doctest: +SKIP
    (1, 384)
    """
    from dive.data import Dataset
    from dive.embed.encode import (
        cache_folder,
        encode_texts,
        load_model,
        loading_bars,
        warn_truncated,
    )
    from dive.embed.resumable import encode_to_folder

    if isinstance(data, (bytes, bytearray)) or not isinstance(
            data, (str, os.PathLike, Dataset, Sequence)):
        raise DiveError(f"embed: data is {kind_of(data)}; expected a dataset name, a BEIR-layout "
                        "folder, a Dataset or a list of texts")
    check_flag(progress, "progress")  # before a model or data loads, as the next checks
    batch_size = positive_integer(batch_size, "batch_size")
    for name, value in (("model", model), ("device", device)):
        if (what := _not_a_name(value)) is not None:  # None: a TypeError in pathlib
            raise DiveError(f"embed: {name} is {what}; expected a name (default: "
                            f"{DEFAULT_MODEL if name == 'model' else 'cpu'})")
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        _refuse_dataset_only("embed", [name for name, given in (
            ("out", out is not None), ("chunk_size", chunk_size != DEFAULT_CHUNK_SIZE),
            ("data_dir", data_dir is not None), ("overwrite", bool(overwrite))) if given],
            "texts are returned as an array, not written to a folder; embed a dataset to "
            "write one")
        texts = list(data)
        bad = next((i for i, text in enumerate(texts) if not isinstance(text, str)), None)
        if bad is not None:
            raise DiveError(f"embed: text {bad} is {kind_of(texts[bad])}; expected a dataset "
                            "or a list of texts (str)")
        bad = next((i for i, text in enumerate(texts) if not is_utf8(text)), None)
        if bad is not None:  # a lone surrogate: the tokenizer's TypeError
            raise DiveError(f"embed: text {bad} is not valid Unicode (a lone surrogate): "
                            f"{texts[bad]!r}")
        with loading_bars(progress):  # "Loading weights" showed with progress=False
            loaded = load_model(model, device=device)
        warn_truncated(loaded, texts, "texts")
        return encode_texts(loaded, texts, batch_size=batch_size, progress=progress)
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise DiveError(f"embed: out is {kind_of(out)}; expected the path of the embeddings "
                        "folder to write")
    try:
        dataset = _dataset(data, data_dir)
    except DataError as exc:
        if isinstance(data, str) and " " in data.strip():  # a text, not a dataset name
            raise DataError(f"{exc} (to embed a text, pass a list: dive.embed([text]))") from None
        raise
    target = Path(out) if out is not None else cache_folder(dataset, model)
    result = encode_to_folder(dataset, target, model_name=model, batch_size=batch_size,
                              device=device, chunk_size=chunk_size, overwrite=overwrite,
                              progress=progress)
    return result.embeddings


def fit(
    data: str | os.PathLike[str] | Dataset | np.ndarray,
    *,
    method: str = "dive",
    dim: int | None = None,
    ratio: int | None = None,
    budget: int | str | None = None,
    seed: int = 0,
    model: str | None = None,
    embeddings: str | os.PathLike[str] | None = None,
    data_dir: str | None = None,
    queries: np.ndarray | None = None,
    relevant: Sequence[Relevant] | None = None,
) -> Compressor:
    """Fit a compressor (`method`, a spec as in `dive fit`) to `dim` = D / `ratio` dimensions.

    On a dataset (a name, a BEIR folder or a `Dataset`): its embeddings come from
    `embeddings` (a folder), else `$DIVE_EMBEDDINGS`, the cache, or `model` encodes them; a
    supervised method learns from `budget` labelled training queries (None or "all": every
    one) drawn with `seed`, as `dive fit` does (a dataset without train qrels lends half its
    judged test queries, the protocol's split: the fit record's `label_source` says
    "test-half"), and `dive.save` records what `dive fit` does
    (dataset, embedding model, seed, labels: `dive.fit_record`), so `dive index` and
    `dive search` warn about embeddings of another model. On arrays: `data` is the (n, D)
    corpus embeddings, and a supervised method also needs `queries` (m, D) and `relevant`,
    one entry per query: the corpus rows relevant to it (rows, or {row: grade}), of which a
    fifth (at least 4; none below 8 queries), drawn with `seed`, validate, as a dataset's
    labels do; the dataset-only arguments (`budget`, `model`, `embeddings`, `data_dir`) are
    refused, not ignored. Returns the fitted compressor: `transform` compresses, `dive.save`
    writes it as a folder.

    Parameters
    ----------
    data : str, os.PathLike, Dataset or numpy.ndarray
        A dataset name, a BEIR-layout folder or a loaded `Dataset`; or the (n, D) corpus
        embeddings.
    method : str, default="dive"
        A method spec: a registry name with options, `"pca"`, `"dive:heads=1"`,
        `"smec:stage_steps=100"` (the options are the fields of each method's config).
    dim : int or None, default=None
        Output dimension d; None means D // `ratio`. A method that keeps every input
        dimension (`frozen`) refuses any other.
    ratio : int or None, default=None
        Compression ratio D / d when `dim` is None (None: 4); given with `dim`, the two must
        agree.
    budget : int, str or None, default=None
        Datasets only: labelled training queries drawn with `seed`; None or "all": all.
    seed : int, default=0
        Seed of the label draw and of the fit.
    model : str or None, default=None
        Datasets only: the model whose embeddings to use (or to encode with), recorded with
        the fit as `dive.embed.encode.model_label` names it (a local model folder by its
        resolved path); None: the one the `embeddings` folder's meta.json names, else
        `DEFAULT_MODEL` (`all-MiniLM-L6-v2`).
    embeddings : str, os.PathLike or None, default=None
        Datasets only: the embeddings folder (default: `$DIVE_EMBEDDINGS`, the cache, or
        encode).
    data_dir : str or None, default=None
        Datasets only: the folder holding BEIR datasets by name (default: `$DIVE_DATA`, the
        cache).
    queries : numpy.ndarray or None, default=None
        Arrays only: (m, D) embeddings of labelled queries (supervised methods need them).
    relevant : sequence or None, default=None
        Arrays only: a list with one entry per row of `queries`, its relevant corpus rows,
        as rows `[3, 17]` or grades `{3: 2, 17: 1}` (a dict keyed by query is refused).

    Returns
    -------
    Compressor
        The fitted compressor.

    Examples
    --------
    >>> import numpy as np, dive
    >>> rng = np.random.default_rng(0)
    >>> corpus = rng.standard_normal((400, 64)).astype(np.float32)
    >>> pca = dive.fit(corpus, method="pca", dim=16)
    >>> pca.transform(corpus[:3]).shape
    (3, 16)
    >>> queries = corpus[:20] + 0.1 * rng.standard_normal((20, 64)).astype(np.float32)
    >>> model = dive.fit(corpus, dim=16, queries=queries, relevant=[[i] for i in range(20)])
    >>> model.method, model.transform(queries).shape
    ('dive', (20, 16))
    >>> dive.fit("docs/examples/own-data/pantry", dim=48, budget="all")  # doctest: +SKIP
    """
    from dive.data import Dataset

    if not isinstance(data, (str, os.PathLike, Dataset, np.ndarray)):
        hint = (" (np.asarray(vectors, dtype=np.float32))" if isinstance(data, (list, tuple))
                else "")
        raise DiveError(f"fit: data is {kind_of(data)}; expected corpus embeddings as "
                        f"an (n, D) float numpy array{hint}, a dataset name, a BEIR-layout "
                        "folder or a Dataset")
    if isinstance(data, np.ndarray):
        from dive.arrays import as_unit_rows, check_floating
        from dive.compressors.base import checked_seed

        # Each of these says where a dataset's embeddings and labels come from; arrays bring
        # their own.
        _refuse_dataset_only("fit", [name for name, value in (
            ("budget", budget), ("model", model), ("embeddings", embeddings),
            ("data_dir", data_dir)) if value is not None],
            "with corpus arrays, data is the embeddings and queries=/relevant= the labels")
        check_floating(data, name="corpus embeddings")
        # unit rows from the values as given: a float64 row of 1e-50s is all zeros in float32
        corpus = as_unit_rows(data, name="corpus embeddings")
        compressor = _compressor(method, dim, ratio, corpus.shape[1], seed)
        if not compressor.supervised and (queries is not None or relevant is not None):
            logger.warning("fit: %s learns without labels; queries= and relevant= are not "
                           "used", compressor.method)
        train = (_array_labels(corpus, queries, relevant,
                               checked_seed(compressor.method, seed))
                 if compressor.supervised else None)
        compressor.fit(corpus, train)
        return compressor

    from dive.data.splits import parse_budget
    from dive.embed.encode import default_model_for, get_embeddings
    from dive.fit_record import fit_on_dataset

    if queries is not None or relevant is not None:
        raise DiveError("fit: queries/relevant go with corpus arrays; a dataset has its qrels")
    folder = None if embeddings is None else as_path(
        embeddings, "fit: embeddings", "the path of an embeddings folder (`dive embed` writes "
        "one)")  # "" read the working folder, where the command line refuses it
    labels = parse_budget(budget)  # a bad budget fails before any data is read
    if model is not None and (what := _not_a_name(model)) is not None:
        # 3 was an AttributeError deep in the embeddings lookup; "" the default model
        raise DiveError(f"fit: model is {what}; expected a model name or None (the embeddings "
                        "folder's, else the default)", param="model")
    dataset = _dataset(data, data_dir)
    # Recorded under the model the embeddings folder names, as `dive fit` does; a `model`
    # that the folder contradicts is kept, with get_embeddings' warning.
    model_name = model or default_model_for(folder)
    emb = get_embeddings(dataset, model_name, embeddings_dir=folder)
    compressor = _compressor(method, dim, ratio, emb.dim, seed)
    if not compressor.supervised and budget is not None:
        logger.warning("fit: %s learns without labels; budget is not used", compressor.method)
    fit_on_dataset(compressor, dataset, emb, model_name=model_name, budget=labels, seed=seed)
    return compressor


def _refuse_dataset_only(call: str, given: Sequence[str], instead: str) -> None:
    """`DiveError` naming the arguments `given` that only a dataset uses: with other data
    they would be ignored without a word. `instead` says what that data does."""
    if given:
        raise DiveError(f"{call}: {', '.join(f'{name}=' for name in given)} "
                        f"{'is' if len(given) == 1 else 'are'} for datasets only; {instead}")


def _compressor(method: str, dim: int | None, ratio: int | None, full: int,
                seed: int) -> Compressor:
    """The unfitted compressor `method` at the output dimension `dim` / `ratio` say for
    `full`-d embeddings; a `dim` it would not keep is refused, as `dive fit` refuses it."""
    from dive.compressors.registry import make_compressor

    out = _out_dim(dim, ratio, full)
    compressor = make_compressor(method, out, seed)
    if compressor.full_dim_only and (dim is not None or ratio is not None) and out != full:
        # `frozen` keeps all D: dim=16 (or ratio=2) gave D-d vectors without a word
        asked = f"dim={dim}" if dim is not None else f"ratio={ratio}"
        raise DiveError(f"fit: {compressor.method} keeps all {full} input dimensions: give "
                        f"dim={full}, or a compressing method for {asked}")
    return compressor


def _out_dim(dim: int | None, ratio: int | None, full: int) -> int:
    """`dim`, or `full` // `ratio` (default 4) when it is None: `dim=0` is a dimension to
    refuse, not 'unset' (it gave D // 4 without a word); a bad `ratio`, or one that disagrees
    with `dim`, is refused (it was ignored whenever `dim` was given)."""
    if ratio is not None:
        if not is_integer(ratio) or ratio < 1:
            raise DiveError(f"ratio must be an integer >= 1, got {ratio!r}")
        if ratio > full:
            raise DiveError(f"ratio {ratio} leaves no dimension of the {full}-d embeddings (at "
                            f"most ratio={full})")
        if dim is not None and dim != full // ratio:
            raise DiveError(f"dim={dim} and ratio={ratio} disagree for {full}-d embeddings "
                            f"({full} // {ratio} = {full // ratio}); give one of them")
    if dim is not None:
        return dim
    return full // (4 if ratio is None else ratio)


def _array_labels(corpus: np.ndarray, queries: np.ndarray | None,
                  relevant: Sequence[Relevant] | None, seed: int) -> TrainingData:
    """`TrainingData` from query embeddings and, per query, its relevant corpus rows, held
    out for validation as a dataset's labels are (`dive.data.splits.n_validation` of them,
    drawn with `seed`): without it a baseline had no validation set to choose its settings
    and checkpoint on, where `dive fit` on the same labels gives it one."""
    from dive.arrays import as_unit_rows, check_floating
    from dive.compressors.base import LabelledQueries, TrainingData, require_relevant
    from dive.data.splits import hold_out

    if queries is None or relevant is None:
        raise DiveError("fit: this method learns from labelled queries; pass queries= (m, D) "
                        "and relevant= (the relevant corpus rows of each query)")
    # In query order, so a list: iterating a dict keyed by query (a qrels-like JSON) gives
    # its keys, a set has no order, a generator no length.
    if isinstance(relevant, (str, bytes, Mapping)) or not isinstance(relevant,
                                                                     (Sequence, np.ndarray)):
        keyed = ", not keyed by query" if isinstance(relevant, Mapping) else ""
        raise DataError(f"relevant is {kind_of(relevant)}; expected a list with one entry per "
                        f"row of queries= ([[3, 17], [42], ...]){keyed}")
    check_floating(queries, name="queries")
    # unit rows as training makes them, so a zero row is named by its row of queries= (it
    # was "validation queries: row 3" of the split)
    q = as_unit_rows(queries, name="queries", dim=corpus.shape[1])
    if len(relevant) != q.shape[0]:
        raise DataError(f"relevant: {len(relevant)} entries for {q.shape[0]} queries")
    grades = []
    for i, rows in enumerate(relevant):
        if isinstance(rows, (str, bytes)) or not isinstance(rows, Iterable):
            raise DataError(f"relevant: query {i} has {rows!r}; expected a list of its relevant "
                            "corpus rows ([3, 17]) or {row: grade}")
        pairs = list(rows.items()) if isinstance(rows, Mapping) else [(r, 1) for r in rows]
        # Only integers: int() would turn 1.5 into row 1, True into row 1, without a word (and
        # checked before a dict is made of them: [row, grade] read from JSON is unhashable).
        for value in (v for pair in pairs for v in pair):
            if not is_integer(value):
                raise DataError(f"relevant: query {i} has {value!r}; rows and grades are "
                                "integers")
        graded = dict(pairs)
        bad = [r for r in graded if not 0 <= r < corpus.shape[0]]
        if bad:
            raise DataError(f"relevant: query {i} names row {bad[0]}, outside the corpus's "
                            f"{corpus.shape[0]} rows")
        grades.append({int(r): int(g) for r, g in graded.items() if g > 0})
    require_relevant(grades, "relevant")
    # A query without a relevant row is left out before the split, as a dataset's is: it
    # took a validation place (a seed could leave none with one, a refusal) and taught nothing.
    labelled = np.array([i for i, g in enumerate(grades) if g], dtype=np.int64)
    if len(labelled) < len(grades):
        logger.warning("fit: %d of %d queries have no relevant row (a grade above 0); they "
                       "are left out", len(grades) - len(labelled), len(grades))
    kept, validating = hold_out(np.random.default_rng(seed).permutation(labelled))

    def labels(rows: np.ndarray) -> LabelledQueries:
        rows = np.sort(rows)
        return LabelledQueries(q[rows], tuple(grades[i] for i in rows))

    return TrainingData(labels(kept), labels(validating) if len(validating) else None)
