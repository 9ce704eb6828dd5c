"""`dive search`: an index searched with compressed queries, optionally rescored with the
full or stored vectors."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from dive.cli.loading import load_compressor, warn_of_another_model_beside
from dive.cli.parsers import RESCORE_FACTOR
from dive.errors import DiveError


def _read_queries_npy(path: str, dim: int) -> Any:
    """The query vectors of a .npy file, checked (shape, dimension, NaN, norms) naming the file.

    (n, dim) only, as `dive compress` reads: a 1-d file is refused by the same check."""
    from dive.arrays import as_unit_rows, check_floating, check_matrix_shape, load_npy
    from dive.errors import DataError

    arr = load_npy(path)
    check_floating(arr, name=path)  # integer codes would be cast and scored without a word
    check_matrix_shape(arr.shape, name=path)
    if arr.size == 0:  # else the search prints nothing and succeeds
        raise DataError(f"{path}: no query vectors (shape {arr.shape})")
    return as_unit_rows(arr, name=path, dim=dim)


def cmd_search(args: argparse.Namespace) -> int:
    from dive.compressors.runtime import runtime_digest
    from dive.errors import DataError
    from dive.export.faiss_index import check_index_model, load_index, search_index

    if args.rescore_vectors is None:
        for flag, value in (("--rescore-factor", args.rescore_factor),
                            ("--rescore-space", args.rescore_space)):
            if value is not None:
                raise DiveError(f"{flag} is used only with --rescore-vectors")
    if args.queries_npy is not None and args.model is not None:
        raise DiveError("--model embeds --query texts; --queries-npy vectors are already "
                        "embedded (give one or the other)")
    compressor = load_compressor(args)
    index = load_index(args.index)
    if index.dim != compressor.output_dim:
        raise DataError(f"{args.index}: index holds {index.dim}-d vectors, but {args.model_dir} "
                        f"outputs {compressor.output_dim}-d")
    check_index_model(index, args.index, runtime_digest(compressor.runtime_), args.model_dir)
    if args.queries_npy is not None:
        queries = _read_queries_npy(args.queries_npy, compressor.input_dim)
        warn_of_another_model_beside(Path(args.queries_npy), compressor)
        labels = [f"query {i}" for i in range(len(queries))]
    else:
        from dive.embed import encode_texts, load_model
        from dive.embed.encode import loading_bars, warn_truncated

        with loading_bars(False):  # transformers' "Loading weights" bar, amid the hits
            model = load_model(_query_model(args, compressor.summary))
        warn_truncated(model, args.query, "queries")  # as dive.embed warns of the same text
        queries = encode_texts(model, args.query, progress=False)
        labels = list(args.query)
    compressed = compressor.embed(queries)  # float32 queries, whatever the index's precision
    if args.rescore_vectors is None:
        rows, scores = search_index(index, compressed, args.k)
    else:
        factor = args.rescore_factor or RESCORE_FACTOR
        candidates, _ = search_index(index, compressed, args.k * factor)
        rows, scores = _rescore(args, index, compressor, queries, compressed, candidates)
    short = int((rows < 0).any(axis=1).sum())
    if short:  # HNSW returns what its graph search reaches: 828 hits of -k 1000 on 1400 rows
        logging.getLogger(__name__).warning(
            "%s: %d of %d queries got fewer than %d hits: an HNSW index returns only what its "
            "graph search reaches; for deeper lists, index without --hnsw (exact)",
            args.index, short, len(rows), min(args.k, len(index)))
    for label, hit_rows, hit_scores in zip(labels, rows.tolist(), scores.tolist(), strict=True):
        print(f"# {' '.join(label.splitlines())}")  # one line per query, whatever its text
        for rank, (row, score) in enumerate(zip(hit_rows, hit_scores, strict=True), start=1):
            if row >= 0:
                print(f"{rank}\t{_tsv_field(index.ids[row])}\t{score:.6f}")
    return 0


# What `str.splitlines` breaks a line at (\v, \f, \x1c-\x1e, \x85, U+2028/9 as well as \n, \r)
_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


def _tsv_field(text: str) -> str:
    """`text` as one field of a tab-separated line: a tab or any line break in it (each that
    `str.splitlines` breaks at) is written as its escape (backslash t, n, r, x0b, u2028...),
    so every hit stays one line of three fields, and a backslash as two, so an id holding
    backslash-t reads apart from one holding a tab."""
    return "".join("\\\\" if c == "\\" else repr(c)[1:-1] if c == "\t" or c in _LINE_BREAKS
                   else c for c in text)


def _query_model(args: argparse.Namespace, summary: dict[str, Any]) -> str:
    """The model that embeds `search --query` texts: `--model` (with a warning where the
    compressor names another: queries of another model get unrelated hits, of any dimension
    that fits), else the one the compressor was fitted on; a compressor that names none is
    an error."""
    from dive.embed.encode import same_model
    from dive.embed.imported import IMPORTED_MODEL

    log = logging.getLogger(__name__)
    trained_on = summary.get("model")
    if args.model is not None:
        if trained_on and not same_model(args.model, str(trained_on)):
            log.warning("%s: fitted on %s embeddings; embedding the queries with %s",
                        args.model_dir, trained_on, args.model)
        return str(args.model)
    if trained_on == IMPORTED_MODEL or summary.get("imported"):
        # an import's --model is a label, not a model to load (nor to download by that name)
        labelled = "" if trained_on in (None, IMPORTED_MODEL) else f" labelled {trained_on!r}"
        raise DiveError(f"{args.model_dir}: fitted on imported vectors{labelled}, which name no "
                        "model to embed --query texts with; pass --model, or --queries-npy "
                        "vectors made as the corpus's were")
    if not trained_on:
        # fitted on arrays, or built by hand: the default model was a guess, and another
        # model's 384-d queries got unrelated hits with exit 0
        raise DiveError(f"{args.model_dir}: does not record the model it was fitted on (a fit "
                        "on arrays records none); pass --model, the one that made the corpus "
                        "vectors, or --queries-npy vectors made as the corpus's were")
    return str(trained_on)


def _rescore(args: argparse.Namespace, index: Any, compressor: Any, queries: Any,
             compressed: Any, candidates: Any) -> tuple[Any, Any]:
    """Re-rank the index's candidates by float32 vectors: `--rescore-vectors` holds either the
    full embeddings or the compressed float ones (`--rescore-space`, else told by their
    width), a row per index row, in the index's order. An embeddings folder's `corpus.npy`
    must list its ids in that order (its `corpus_ids.txt` says which they are); any file, a
    bare .npy included, must hold the index's vectors there by content: a sample of its rows,
    compressed as the index's were, must give the codes the index holds at the same rows
    (`_check_rescore_rows`), else it is refused (another order, or another corpus)."""
    from dive.arrays import as_unit_rows, check_floating, load_npy
    from dive.embed.store import CORPUS_IDS_FILE, read_ids
    from dive.errors import DataError
    from dive.evaluate.search import rescore

    path = Path(args.rescore_vectors)
    index_ids = index.ids
    vectors = load_npy(path, mmap=True)
    if vectors.ndim != 2 or vectors.shape[0] != len(index_ids):
        raise DataError(f"{path}: has shape {vectors.shape}, expected one row per index row "
                        f"({len(index_ids)}), in the index's order")
    check_floating(vectors, name=str(path))  # integer codes would be cast and compared
    ids_file = path.with_name(CORPUS_IDS_FILE)
    if path.name == "corpus.npy" and ids_file.is_file():
        ids = read_ids(ids_file)
        if len(ids) != len(index_ids):
            raise DataError(f"{ids_file}: {len(ids)} ids for the {len(index_ids)} rows of "
                            f"{path.name}")
        row = next((i for i, (a, b) in enumerate(zip(ids, index_ids, strict=True)) if a != b),
                   None)
        if row is not None:  # another order (or corpus): each candidate would get another's
            raise DataError(f"{ids_file}: row {row} is {ids[row]!r} where the index has "
                            f"{index_ids[row]!r}; rescore with the vectors the index was built "
                            "from, in its order")
    widths = {"full": compressor.input_dim, "compressed": compressor.output_dim}
    kind = args.rescore_space
    if kind is None:
        if widths["full"] == widths["compressed"]:
            raise DiveError(f"{path}: the compressor keeps the dimension ({widths['full']}), so "
                            "the width cannot tell full embeddings from compressed outputs; "
                            "pass --rescore-space full or --rescore-space compressed")
        kind = next((k for k, width in widths.items() if width == vectors.shape[1]), None)
    if kind is None or vectors.shape[1] != widths[kind]:
        expected = (f"the {kind} {widths[kind]}" if kind is not None else
                    f"the full {widths['full']} or the compressed {widths['compressed']}")
        raise DataError(f"{path}: vectors of dimension {vectors.shape[1]}; expected {expected}")
    try:
        _check_rescore_rows(path, vectors, kind, index, compressor)
    except DataError as wrong:
        # of the same width, the other space's vectors looked like another corpus: say which
        other = "compressed" if kind == "full" else "full"
        if widths[other] != vectors.shape[1]:
            raise
        try:
            _check_rescore_rows(path, vectors, other, index, compressor)
        except DataError:
            raise wrong from None
        raise DataError(f"{path}: holds the index's rows as {other} vectors, not {kind} ones; "
                        f"pass --rescore-space {other}") from None
    space = (as_unit_rows(queries, name="queries", dim=compressor.input_dim) if kind == "full"
             else compressed)
    return rescore(space, vectors, candidates, args.k, name=str(path))


def _check_rescore_rows(path: Path, vectors: Any, kind: str, index: Any,
                        compressor: Any) -> None:
    """Refuse rescoring vectors whose rows are not the index's, by content (a bare .npy says
    nothing else about its order): up to `ROW_SAMPLE` rows spread over the file (read from its
    memory map, so the cost stays small), compressed as the index's were (full embeddings
    through the compressor; compressed ones as they are, at its precision), must give the
    codes the index holds at the same rows (`check_stored_rows`, which says how they compare).
    A bad row among them (NaN, norm 0) is named by its row in the file, as rescoring does."""
    from dive.arrays import BadRowError, as_unit_rows
    from dive.export.faiss_index import check_stored_rows, sample_rows

    rows = sample_rows(vectors.shape[0])
    try:
        sample = as_unit_rows(vectors[rows], name=str(path))
    except BadRowError as exc:
        raise BadRowError(str(path), int(rows[exc.row]), exc.problem) from None
    runtime = compressor.fitted_runtime()
    if kind == "full":
        codes = runtime(sample)
    else:
        codes = sample if runtime.quantizer is None else runtime.quantizer.encode(sample)
    check_stored_rows(index, rows, codes, name=str(path))

