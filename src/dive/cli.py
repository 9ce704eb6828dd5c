"""The `dive` command line: one small function per verb; the only module that prints (with
`dive.cli_stdout`, which reports a standard output that cannot be written).

The verbs' arguments are described in `dive.cli_parsers` (one builder per verb); this module
runs them.

Errors the user can fix (`DiveError`, file-system `OSError`s, bad arguments) print as one
line on stderr with exit status 2; `--debug` shows the traceback instead. Every verb that
writes refuses to replace an existing output unless given `--overwrite`, which replaces only
what dive wrote there (checked before any work, and again by the final no-replace rename,
`dive._io.publish`, against a concurrent run); `demo` instead resumes the run in its folder,
and `--overwrite` starts it over.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from tqdm.contrib.logging import logging_redirect_tqdm

from dive._io import (
    check_output,
    describe_os_error,
    locked,
    made_folder,
    nothing_finished,
    nothing_finished_unless,
    publish,
    publishing,
    reached_the_work,
    resolve_link,
    temporary,
    uninterrupted,
    written_before,
)
from dive.cli_parsers import RESCORE_FACTOR, build_parser
from dive.cli_stdout import (
    STDOUT,
    flush_stdout,
    named_stdout,
    stdout_failed,
    unfailing_stderr,
)
from dive.errors import DiveError, about, one_line, quoted

if TYPE_CHECKING:
    from dive.compressors.base import FitSummary
    from dive.scale.stream import CompressResult

Handler = Callable[[argparse.Namespace], int]


def _run_grid(args: argparse.Namespace, datasets: list[str], results: Path) -> list[dict[str, Any]]:
    from tqdm import tqdm

    from dive.data.splits import parse_budget
    from dive.evaluate.protocol import GridSpec, run_grid
    from dive.evaluate.records import ResultsFile
    from dive.report.merge import merge_records
    from dive.report.summary import method_label

    if args.rescore_with is not None and not any(args.rescore_factors):
        raise DiveError("--rescore-with is used only with a rescore factor above 0 "
                        "(--rescore-factors)")
    with about("budgets"):
        budgets = [parse_budget(b) for b in args.budgets]
    spec = GridSpec(
        datasets=datasets,
        methods=args.methods,
        ratios=args.ratios,
        budgets=budgets,
        seeds=args.seeds,
        model=args.model,  # None: the one the embeddings folder names
        data_dir=args.data_dir,
        embeddings_dir=args.embeddings,
        precisions=args.precisions,
        rescores=args.rescore_factors,
        rescore_with=args.rescore_with or "full",
        anchors=args.anchors,
        progress=not args.no_progress,
    )
    bars: list[tqdm] = []  # created on the first finished run, so early errors print alone
    skipped = [0]
    started = time.time()  # tqdm's clock: the first run's seconds count in the rate

    def progress(done: int, total: int, record: dict[str, Any] | None) -> None:
        skipped[0] += record is None
        if args.no_progress:
            return
        if not bars:
            bars.append(tqdm(total=total, desc="runs", unit="run", file=sys.stderr))
            bars[0].start_t = started  # it said 1/N at 40000 runs/s after a run of seconds
        bar = bars[0]
        bar.total, bar.n = total, done
        if record is not None:
            bar.set_postfix_str(
                f"{method_label(record)} d={record['dim']} ndcg@10={record['ndcg@10']:.4f}"
            )
        bar.refresh()

    size = _size(results)
    try:
        # stopped before its first run was recorded (while the datasets were checked), it
        # said "finished runs are saved and a rerun resumes"; recorded is read off the file
        # (a signal held over its rename lands once the record is in)
        with nothing_finished_unless(lambda: _size(results) > size):
            records = run_grid(spec, ResultsFile(results), progress)
    finally:
        for bar in bars:
            bar.close()
    if skipped[0]:
        print(f"skipped {skipped[0]} run(s) already in {results} for the same data",
              file=sys.stderr)
    return merge_records(records)  # a run the file holds twice counts once, as in a report


def _size(path: Path) -> int:
    """The bytes of the file at `path` (a results file only grows), 0 where there is none."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from dive.report.table import text_tables

    if args.overwrite and not (args.plot or args.report):  # demo's starts over: not this one
        raise DiveError("--overwrite replaces an earlier --plot or --report, and neither is "
                        f"given; {args.results} is always appended to (start over with a new "
                        "--results file)")
    _check_apart(("--results", args.results), ("--plot", args.plot), ("--report", args.report))
    if args.plot:
        from dive.report.plots import is_png

        check_output(Path(args.plot), overwrite=args.overwrite, ours=is_png, what="a PNG plot",
                     suffix=".png")
    if args.report:
        from dive.report.build import check_report_output, report_paths

        # else the grid ran, and the report then stopped at the file this run had written
        taken = {path.resolve() for path in report_paths(args.report)}
        for flag, given in (("--results", args.results), ("--plot", args.plot)):
            if given and Path(given).resolve() in taken:
                raise DiveError(f"{given}: {flag} names a file the --report folder gets; "
                                "name another")
        check_report_output(args.report, overwrite=args.overwrite)
    records = _run_grid(args, args.datasets, Path(args.results))
    # the files first: a reader that stops early (`| head`) ends the printing, not the work
    plot = files = None
    with contextlib.ExitStack() as undo:
        if args.plot:
            from dive.report.plots import plot_ndcg_vs_dim

            # A signal while it is drawn lands once it is written: then, without a report to
            # come, the output is in place (`publishing`); with one, the plot is withdrawn
            # below, as after any failure of the report.
            with uninterrupted() if args.report else publishing():
                plot = plot_ndcg_vs_dim(records, args.plot, overwrite=args.overwrite)
                if args.report and not args.overwrite:
                    # a new plot left by a failed report would stop the rerun ("already
                    # exists")
                    undo.enter_context(_withdrawn_on_failure(plot))
        if args.report:
            from dive.report.build import budget_plot_ratio, write_report

            files = write_report(records, args.report, ratio=budget_plot_ratio(args.ratios),
                                 overwrite=args.overwrite)
    written = files.markdown.parent if files is not None else plot
    if written is not None:  # a signal while the tables print finds the files in place
        _written_in_full(args, written)
    print(text_tables(records))
    print(f"\nresults: {args.results}")
    if plot is not None:
        print(f"plot: {plot}")
    if files is not None:
        print(f"report: {files.markdown}")
    return 0


@contextlib.contextmanager
def _withdrawn_on_failure(path: Path) -> Iterator[None]:
    """Remove the file this run just put at `path` if the block fails or is interrupted, unless
    another run has put its own there since."""
    made = path.stat()
    try:
        yield
    except BaseException as exc:
        if written_before(exc):  # stopped once the block's own output was in place: both stay
            raise
        with contextlib.suppress(OSError):
            now = path.stat()
            if (now.st_dev, now.st_ino) == (made.st_dev, made.st_ino):
                path.unlink()
        raise


def _record_lines(results: Path) -> set[str]:
    """The records of `results` as canonical JSON lines."""
    from dive.evaluate.records import read_records

    return {json.dumps(r, sort_keys=True) for r in read_records(results)}


def _keep_added_meanwhile(results: Path, earlier: set[str], fresh: Path) -> None:
    """Add to `fresh` the records another run added to `results` since `earlier` was read,
    but for runs `fresh` holds: a plain `demo` that appended while `demo --overwrite` ran had
    its record dropped by the replacement, after saying it was saved."""
    from dive.evaluate.records import read_records, record_key, write_records

    new = read_records(fresh)
    ours = {record_key(r) for r in new}
    added = [r for r in read_records(results) if json.dumps(r, sort_keys=True) not in earlier
             and record_key(r) not in ours]
    if added:
        write_records(fresh, [*new, *added])
        print(f"kept {len(added)} record(s) another run added to {results} meanwhile",
              file=sys.stderr)


def cmd_demo(args: argparse.Namespace) -> int:
    from dive.evaluate.records import (
        FRESH_SUFFIX,
        is_results_file,
        read_records,
        remove_orphaned_fresh,
    )
    from dive.report.plots import is_png, plot_ndcg_vs_dim
    from dive.report.table import text_tables

    out = Path(args.output)
    results, plot_path = out / "results.jsonl", out / "ndcg_vs_dim.png"
    if not args.overwrite:  # appended to, as evaluate appends: a damaged line is named
        read_records(results)  # as evaluate names it (not "refusing to replace it")
    # the results are resumed (or, with --overwrite, replaced) and the plot redrawn each run:
    # neither replaces a file of another kind, nor, on a first run (no results), a PNG of
    # the same name (not an earlier demo's)
    check_output(results, overwrite=True, ours=is_results_file, what="a results file")
    rerun = results.exists() or results.is_symlink()
    check_output(plot_path, overwrite=args.overwrite or rerun, ours=is_png, what="a PNG plot")
    # a results.jsonl that links elsewhere is replaced there, as a plain run appends there
    target = resolve_link(results)
    # what a `--overwrite` run killed outright left (a pair `check_output` above finds dead),
    # removed by any run (a plain one left the fresh file behind)
    remove_orphaned_fresh(target)
    if args.overwrite:
        # Start over, replacing the old results only once the new run is complete; the fresh
        # file is this run's own, so two runs at once never clear each other's records. It is
        # named after a temporary this run holds.
        earlier = _record_lines(target)
        with made_folder(out), temporary(target) as held:
            fresh = held.with_name(f"{held.name}{FRESH_SUFFIX}")
            try:
                records = _run_grid(args, [args.dataset], fresh)
                with locked(target):  # not between another process's read and its write-back
                    _keep_added_meanwhile(target, earlier, fresh)
                    publish(fresh, target, overwrite=True, output=True)
                _written_in_full(args, results)  # the earlier results are replaced from here
            finally:
                fresh.unlink(missing_ok=True)
                held.unlink()  # `temporary` removes it only after an error
    else:
        records = _run_grid(args, [args.dataset], results)
    plot = plot_ndcg_vs_dim(records, plot_path, overwrite=True)  # before a reader can stop
    print(text_tables(records))
    print(f"\nresults: {results}\nplot: {plot}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from dive.report.build import check_report_output, write_report
    from dive.report.merge import read_results

    records = read_results(args.results)  # what is wrong with the input is said first
    check_report_output(args.output, overwrite=args.overwrite)
    files = write_report(records, args.output, keep=args.keep, ratio=args.ratio,
                         overwrite=args.overwrite)
    _written_in_full(args, files.markdown.parent)
    print(f"{len(records)} runs from {len(args.results)} file(s)")
    for path in files.all():
        print(f"wrote {path}")
    for path in files.removed:
        print(f"removed {path} (an earlier report's plot this one does not draw)")
    if args.gains:
        from dive.report.gains import gains_over_training_free, summary_text

        # No target set of collections: only the per-method table is printed.
        cells = gains_over_training_free(records)
        print(summary_text(cells, target_name="", datasets=(), ratio=0, budget="").rstrip())
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from dive.report.merge import read_results
    from dive.report.recommend import recommend, render

    rec = recommend(read_results(args.results), args.dataset, args.keep, budget=args.budget,
                    model=args.model, rescoring=not args.no_rescore, max_bytes=args.max_bytes)
    print("\n".join(render(rec)))
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from dive.data import load_dataset
    from dive.embed import cache_folder
    from dive.embed.encode import env_entry_ahead_of, model_label
    from dive.embed.imported import IMPORTED_MODEL, from_npy, from_parquet
    from dive.embed.resumable import encode_to_folder
    from dive.embed.store import check_embeddings_output

    imported = args.from_parquet is not None or args.from_npy is not None
    model = args.model or (IMPORTED_MODEL if imported else "all-MiniLM-L6-v2")
    if args.from_parquet is not None and args.queries_parquet is None:
        raise DiveError("--from-parquet needs --queries-parquet (the query vectors)")
    if args.from_npy is not None and None in (args.ids, args.queries_npy, args.query_ids):
        raise DiveError("--from-npy needs --ids, --queries-npy and --query-ids")
    for owner, source, companions in (
        ("--from-parquet", args.from_parquet, {"--queries-parquet": args.queries_parquet,
                                               "--id-column": args.id_column,
                                               "--vector-column": args.vector_column}),
        ("--from-npy", args.from_npy,
         {"--ids": args.ids, "--queries-npy": args.queries_npy, "--query-ids": args.query_ids}),
    ):
        stray = [flag for flag, value in companions.items() if value is not None]
        if stray and source is None:
            verb = "goes" if len(stray) == 1 else "go"
            raise DiveError(f"{' and '.join(stray)} {verb} with {owner}, which is not given")
    encoding = _given(args, "batch_size", "device", "chunk_size")
    if imported and encoding:  # else ignored without a word
        flags = " and ".join(f"--{name.replace('_', '-')}" for name in encoding)
        owner = "--from-parquet" if args.from_parquet is not None else "--from-npy"
        raise DiveError(f"{flags} {'sets' if len(encoding) == 1 else 'set'} how texts are "
                        f"encoded; {owner} imports vectors, which are not encoded")
    dataset = load_dataset(args.dataset, data_dir=args.data_dir)
    out = Path(args.output) if args.output else cache_folder(dataset, model)
    check_embeddings_output(out, overwrite=args.overwrite)
    ahead = None if args.output else env_entry_ahead_of(dataset, model)
    if ahead is not None:  # evaluate and fit read that folder, without a word on this one
        logging.getLogger(__name__).warning(
            "%s ($DIVE_EMBEDDINGS) holds %s embeddings of %s too, which evaluate and fit "
            "read ahead of the cache: pass them --embeddings %s to read these", ahead,
            model_label(model), dataset.name, out)
    args.output = str(out)  # where an interruption once it is in place says it was written
    if imported:
        if args.from_parquet is not None:
            emb = from_parquet(dataset, args.from_parquet, args.queries_parquet, out,
                               **_given(args, "id_column", "vector_column"),
                               model=model, overwrite=args.overwrite)
        else:
            emb = from_npy(dataset, args.from_npy, args.ids, args.queries_npy, args.query_ids,
                           out, model=model, overwrite=args.overwrite)
        _written_in_full(args, out)
        norms = emb.meta["norms"]["corpus"]
        unit = ("unit-norm" if emb.meta["normalized"] else
                f"not unit-norm: corpus norms {norms['min']:.3g}..{norms['max']:.3g}, "
                "normalised where used")
        print(f"imported {emb.corpus.shape[0]} corpus and {emb.queries.shape[0]} query vectors "
              f"({emb.dim}-d, {unit}) as {emb.meta['model']}: {out}")
        return 0
    result = encode_to_folder(dataset, out, model_name=model, **encoding,
                              overwrite=args.overwrite, progress=not args.no_progress)
    _written_in_full(args, out)
    emb = result.embeddings
    resumed = (f", resumed after {result.resumed_chunks} of {result.chunks} chunks"
               if result.resumed_chunks else "")
    print(f"embedded {emb.corpus.shape[0]} documents and {emb.queries.shape[0]} queries with "
          f"{emb.meta['model']} ({emb.dim}-d) in {result.seconds:.1f} s{resumed}: {out}")
    return 0


def _shown(value: Any) -> Any:
    """`value` with every float at 6 significant digits (0.1 * 3 prints as 0.3), for display."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _shown(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_shown(v) for v in value]
    return value


def _fit_lines(fit: FitSummary, precision: str) -> list[str]:
    """What `dive fit` prints about a learned fit, from its typed summary only; its scores are
    the float32 outputs' (the saved model's `precision` is applied after the fit)."""
    import json

    selected = json.dumps(_shown(fit.selected), separators=(",", ":"))
    lines = [f"kept step {fit.best_step} of {fit.steps_run}: {selected}"]
    if fit.validation_score is not None:
        # printed under "(binary, 6 bytes/vector)", it read as the binary model's score
        before = "" if precision == "float32" else f", in float32, before the {precision} codes"
        lines.append(f"held-out nDCG@10 on {fit.n_queries} labelled queries: "
                     f"{fit.validation_score:.4f} (start {fit.start_score:.4f}{before})")
    return lines


def _given(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The flags of `names` given, by name, as keyword arguments: one not given is left out,
    so it takes the library's default."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def cmd_fit(args: argparse.Namespace) -> int:
    from dive.compressors.precision import bytes_per_vector
    from dive.compressors.registry import make_compressor
    from dive.data import load_dataset
    from dive.data.splits import parse_budget
    from dive.embed import get_embeddings
    from dive.embed.encode import default_model_for
    from dive.export.folder import check_model_output, save, with_precision
    from dive.fit_record import fit_on_dataset

    with about("method"):
        compressor = make_compressor(args.method, args.dim, args.seed)  # a bad spec fails first
    check_model_output(Path(args.output), overwrite=args.overwrite)
    _show_fit_progress()
    with about("budget"):
        budget = parse_budget(args.budget)  # None: every labelled training query
    if not compressor.supervised and args.budget is not None:
        logging.getLogger(__name__).warning("%s learns without labels; --budget is not used",
                                            compressor.method)
    dataset = load_dataset(args.dataset, data_dir=args.data_dir)
    # Recorded under the model the embeddings were made with; a --model that the folder
    # contradicts is kept, with get_embeddings' warning (its vectors may be that model's under
    # another name: a hub id and its download). Either is recorded as model_label names it.
    model_name = args.model or default_model_for(args.embeddings)
    emb = get_embeddings(dataset, model_name, embeddings_dir=args.embeddings,
                         progress=not args.no_progress)
    if compressor.full_dim_only and args.dim != emb.dim:
        raise DiveError(f"{args.method} keeps all {emb.dim} input dimensions: give --dim "
                        f"{emb.dim}, or a compressing method for --dim {args.dim}")
    summary = fit_on_dataset(compressor, dataset, emb, model_name=model_name, budget=budget,
                             seed=args.seed)
    fitted = compressor.fit_info_.summary
    # int8 is calibrated on the corpus outputs, the vectors an index will hold.
    model = with_precision(compressor, args.precision, emb.corpus)
    out = save(model, args.output, summary=summary, overwrite=args.overwrite)
    _written_in_full(args, out)
    runtime = model.fitted_runtime()
    print(f"{args.method}: {runtime.input_dim} -> {runtime.output_dim} dims "
          f"({runtime.precision}, {bytes_per_vector(runtime.precision, runtime.output_dim)} "
          f"bytes/vector), {runtime.n_params} parameters, fitted in "
          f"{summary['fit_seconds']:.2f}s")
    if summary.get("label_source") == "test-half":
        # The protocol's split (make_split): without train qrels half the judged queries are
        # kept for measuring, so a fit on "all" labels learns from the other half only.
        print(f"labels: {summary['n_labels']} queries, from half of the judged test queries "
              "(no qrels/train.tsv: the other half is kept for measuring; a dataset with one "
              "has its labels used in full)")
    for line in _fit_lines(fitted, runtime.precision) if fitted is not None else []:
        print(line)
    print(f"saved: {out}")
    return 0


def _load_model(args: argparse.Namespace) -> Any:
    """The saved compressor at `args.model_dir`, its checksums checked unless --no-verify."""
    from dive.export.folder import load

    return load(args.model_dir, verify=not args.no_verify)


def cmd_export(args: argparse.Namespace) -> int:
    if args.format == "onnx":
        from dive.export.onnx import ONNX_SUFFIX, export_onnx, is_onnx_export

        if args.model is not None:
            raise DiveError("--model applies to --format sentence-transformers only")
        check_output(Path(args.output), overwrite=args.overwrite, ours=is_onnx_export,
                     what="an ONNX file dive exported", suffix=ONNX_SUFFIX)
        path = export_onnx(_load_model(args), args.output, overwrite=args.overwrite)
    else:
        from dive.export.sentence_transformers import (
            check_st_output,
            export_sentence_transformers,
        )

        check_st_output(Path(args.output), overwrite=args.overwrite, bundled=args.model is not None)
        path = export_sentence_transformers(_load_model(args), args.output, base_model=args.model,
                                            overwrite=args.overwrite)
    _written_in_full(args, path)
    print(f"wrote {path}")
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from dive.arrays import row_blocks
    from dive.compressors.runtime import runtime_digest
    from dive.embed import load_embeddings
    from dive.export.faiss_index import build_index, check_index_output, save_index

    if args.seed is not None and args.opq is None:
        raise DiveError("--seed is used only with --opq (the seed of its k-means)")
    check_index_output(Path(args.output), overwrite=args.overwrite)
    compressor = _load_model(args)
    if (args.hnsw or args.opq) and compressor.precision != "float32":
        raise DiveError(f"--{'hnsw' if args.hnsw else 'opq'} indexes float32 vectors; "
                        f"{args.model_dir} outputs {compressor.precision} codes, which go into "
                        "the exact flat index")
    emb = load_embeddings(args.embeddings, mmap=True)
    if emb.dim != compressor.input_dim:  # named here: the compressor would name only itself
        raise DiveError(f"{Path(args.embeddings) / 'corpus.npy'}: vectors have dimension "
                        f"{emb.dim}, but {args.model_dir} expects {compressor.input_dim} "
                        "(embeddings from another model?)")
    _warn_of_another_model(args.embeddings, emb.meta.get("model"), compressor)
    runtime = compressor.fitted_runtime()
    # compressed a block at a time: memory holds the index, not a compressed corpus beside it
    blocks = runtime.blocks(row_blocks(emb.corpus), name=str(Path(args.embeddings) / "corpus.npy"))
    index = build_index(blocks, "hnsw" if args.hnsw else "flat", ids=emb.corpus_ids,
                        model_sha256=runtime_digest(runtime), quantizer=runtime.quantizer,
                        product=args.opq, seed=args.seed or 0)
    path = save_index(index, args.output, overwrite=args.overwrite)
    _written_in_full(args, path)
    # an HNSW graph's links are bytes per vector too: the file says how many
    graph = (f" of codes, {path.stat().st_size / len(index):.0f} on disk with its graph links"
             if args.hnsw else "")
    # "flat" read as exact: an OPQ+PQ index is searched exhaustively, but over lossy codes
    kind = "hnsw" if args.hnsw else "exhaustive over PQ codes" if args.opq else "flat"
    print(f"indexed {len(index)} documents ({index.dim}-d {index.precision}, "
          f"{index.bytes_per_vector} bytes/vector{graph}, {kind})")
    print(f"wrote {path}")
    return 0


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
    compressor = _load_model(args)
    index = load_index(args.index)
    if index.dim != compressor.output_dim:
        raise DataError(f"{args.index}: index holds {index.dim}-d vectors, but {args.model_dir} "
                        f"outputs {compressor.output_dim}-d")
    check_index_model(index, args.index, runtime_digest(compressor.runtime_), args.model_dir)
    if args.queries_npy is not None:
        queries = _read_queries_npy(args.queries_npy, compressor.input_dim)
        _warn_of_another_model_beside(Path(args.queries_npy), compressor)
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


class _Columns(TypedDict, total=False):
    column: str
    id_column: str | None
    output_column: str


def _columns_given(args: argparse.Namespace) -> _Columns:
    """The column flags given, as the library's keyword arguments (`--id-column ''`: None, no
    ids); one not given is left out, so it takes the library's default."""
    columns: _Columns = {}
    if args.vector_column is not None:
        columns["column"] = args.vector_column
    if args.id_column is not None:
        columns["id_column"] = args.id_column or None
    if args.output_column is not None:
        columns["output_column"] = args.output_column
    return columns


def _warn_of_another_model(where: str | Path, made_with: Any, compressor: Any) -> None:
    """Warn when embeddings made with one model go through a compressor fitted on another
    model's: of the same width, nothing else tells (the hits are unrelated)."""
    from dive.embed.encode import same_model

    trained_on = compressor.summary.get("model")
    if trained_on and made_with and not same_model(str(made_with), str(trained_on)):
        logging.getLogger(__name__).warning(
            "%s: embeddings made with %s, compressor fitted on %s embeddings", where,
            made_with, trained_on)


def _warn_of_another_model_beside(src: Path, compressor: Any) -> None:
    """`_warn_of_another_model` for a `.npy` of an embeddings folder, by its meta.json (a
    file elsewhere names no model)."""
    from dive.embed.store import META_FILE, is_embeddings_folder, read_meta

    if src.suffix.lower() != ".npy" or not is_embeddings_folder(src.parent):
        return
    with contextlib.suppress(OSError, DiveError):  # an unreadable one says nothing
        _warn_of_another_model(src, read_meta(src.parent / META_FILE).get("model"), compressor)


def cmd_compress(args: argparse.Namespace) -> int:
    from dive.integrations.lancedb import is_lancedb_uri

    columns = _columns_given(args)
    if is_lancedb_uri(args.input) or is_lancedb_uri(args.output):
        return _compress_lancedb(args, columns)
    if args.engine == "ray":
        from dive.integrations.ray import compress_parquet

        rows = compress_parquet(_load_model(args), args.input, args.output, **columns,
                                batch_size=args.batch_size, dtype=args.dtype,
                                overwrite=args.overwrite, progress=not args.no_progress)
        _written_in_full(args, args.output)
        print(f"compressed {rows} vectors on Ray: {args.output}")
        return 0
    from dive.scale import compress_store
    from dive.scale.discover import store_kind

    if columns and store_kind(args.input) == "npy":  # else they were ignored without a word
        flags = " and ".join(FLAG_OF_PARAM[param] for param in columns)
        verb = "applies" if len(columns) == 1 else "apply"
        raise DiveError(f"{flags} {verb} to Parquet input only; {args.input} holds .npy vectors")
    compressor = _load_model(args)
    _warn_of_another_model_beside(Path(args.input), compressor)
    result = compress_store(compressor, args.input, args.output, **columns,
                            batch_size=args.batch_size, dtype=args.dtype,
                            overwrite=args.overwrite, progress=not args.no_progress)
    _written_in_full(args, result.output)
    _print_compressed(result, args.output)
    return 0


def _print_compressed(result: CompressResult, output: str) -> None:
    """The summary of a compress run, naming its `output` (a file or folder as given, as every
    verb does: the result names the place the file system gives it, absolute)."""
    resumed = f", resumed after {result.resumed_rows}" if result.resumed_rows else ""
    width = -(-result.output_dim // 8)  # a binary model's bytes per vector
    stored = (f"binary: {width} byte{'s' * (width > 1)} of sign bits"
              if result.precision == "binary" else result.dtype)  # not "(uint8)": d bytes
    print(f"compressed {result.rows} vectors {result.input_dim} -> {result.output_dim} "
          f"({stored}{resumed}) in {result.seconds:.1f} s "
          f"({result.rows_per_second:,.0f} vectors/s): {output}")


def _compress_lancedb(args: argparse.Namespace, columns: _Columns) -> int:
    from dive.integrations.lancedb import TableRef, compress_table, is_lancedb_uri

    if not (is_lancedb_uri(args.input) and is_lancedb_uri(args.output)):
        raise DiveError("LanceDB tables compress into LanceDB tables: give both --input and "
                        "--output as lancedb:PATH/TABLE")
    if columns.get("id_column") and TableRef.parse(args.output).same_table(
            TableRef.parse(args.input)):  # else ignored without a word
        raise DiveError(f"--id-column applies to a new table; {args.output} is the input "
                        "table, whose rows keep their own ids (leave it out)")
    if args.engine != "local":
        raise DiveError("--engine ray reads Parquet; LanceDB tables use the local engine")
    result = compress_table(_load_model(args), args.input, args.output, **columns,
                            batch_size=args.batch_size, dtype=args.dtype,
                            overwrite=args.overwrite, progress=not args.no_progress)
    _written_in_full(args, result.output)
    _print_compressed(result, str(result.output))  # the table and its column
    return 0


# The flag that sets each library parameter a `DiveError` can be about (its `param`).
FLAG_OF_PARAM = {
    "overwrite": "--overwrite", "verify": "--no-verify", "data_dir": "--data-dir",
    "embeddings_dir": "--embeddings", "methods": "--methods", "keep": "--keep",
    "column": "--vector-column", "id_column": "--id-column", "output_column": "--output-column",
    "precisions": "--precisions", "device": "--device", "budget": "--budget", "model": "--model",
    "ratios": "--ratios", "method": "--method", "budgets": "--budgets",
    "rescores": "--rescore-factors", "seeds": "--seeds", "ratio": "--ratio",
}


# Library spellings of a value that the command line spells otherwise, said its way instead.
CLI_SPELLING = {"id_column=None": "--id-column ''", "pass overwrite=True": "pass --overwrite",
                "load it with verify=False (dive.load)": "pass --no-verify",
                "rerun with overwrite=True": "rerun with --overwrite",
                "embeddings_dir is one dataset's": "--embeddings is one dataset's",
                "output_column is an empty name; give a column name, or None for the input's "
                "vector column": "--output-column is empty; give a column name, or leave the "
                "flag out for the input's vector column name"}


def _check_apart(*outputs: tuple[str, str | None]) -> None:
    """Refuse, before a grid runs, outputs that are one path or where one lies inside a file
    another names (`--plot rep --report rep`, `--plot n.jsonl/p.png`): each was found after
    the grid, "a file is in the way of a folder". Files inside the --report folder are
    checked against the names it writes (`report_paths`)."""
    given = [(flag, Path(path).resolve()) for flag, path in outputs if path]
    for i, (flag, path) in enumerate(given):
        for other_flag, other in given[i + 1:]:
            if path == other:
                raise DiveError(f"{path}: {flag} and {other_flag} name the same path")
            for outer, outer_flag, inner, inner_flag in ((path, flag, other, other_flag),
                                                         (other, other_flag, path, flag)):
                if outer in inner.parents and outer_flag != "--report":
                    raise DiveError(f"{inner}: {inner_flag} lies inside {outer}, the "
                                    f"{outer_flag} file")


def _error_line(exc: DiveError | OSError) -> str:
    """The one line an error prints as: a `DiveError` with the flag of the parameter it is
    about added (or its library spelling replaced); file-system trouble naming the path."""
    if isinstance(exc, OSError):
        return describe_os_error(exc)
    text = str(exc)
    for library, cli in CLI_SPELLING.items():
        if library in text:
            return text.replace(library, cli)
    flag = FLAG_OF_PARAM.get(exc.param or "")
    return f"{text} ({flag})" if flag else text


HANDLERS: dict[str, Handler] = {
    "evaluate": cmd_evaluate, "demo": cmd_demo, "report": cmd_report,
    "recommend": cmd_recommend, "embed": cmd_embed, "fit": cmd_fit, "export": cmd_export,
    "index": cmd_index, "search": cmd_search, "compress": cmd_compress,
}


class _Lines(logging.Handler):
    """Shows a library logger's records as bare lines on stdout (the verbs' own output) or
    stderr (progress)."""

    def __init__(self, stream: str) -> None:
        super().__init__()
        self.stream_name = stream

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=getattr(sys, self.stream_name))  # now: tests swap it


def _show_lines(logger: str, stream: str) -> None:
    """Route `logger`'s INFO records to bare lines on `stream` ("stdout" or "stderr")."""
    log = logging.getLogger(logger)
    if not any(isinstance(h, _Lines) for h in log.handlers):
        log.addHandler(_Lines(stream))
    log.setLevel(logging.INFO)
    log.propagate = False


def _show_embedding_sources() -> None:
    """`evaluate` and `fit` say where each dataset's embeddings came from."""
    from dive.embed.encode import SOURCE_LOGGER

    _show_lines(SOURCE_LOGGER, "stdout")


def _show_fit_progress() -> None:
    """`fit` shows each stage of a long fit on stderr (`evaluate` only with -v: many fits)."""
    from dive.compressors.base import PROGRESS_LOGGER

    _show_lines(PROGRESS_LOGGER, "stderr")


NOTHING_WRITTEN = "no output was written"
# What Ctrl-C keeps, per verb that keeps anything: every other verb writes its output only
# at the end, in one rename, so an interrupted one left nothing and its rerun starts over.
# Once a verb's output is in place (`_written_in_full`), an interruption says that instead.
_AFTER_INTERRUPT = {
    "evaluate": "finished runs are saved and a rerun resumes",
    "demo": "finished runs are saved and a rerun resumes",
    "embed": "finished chunks are saved and a rerun resumes",
    "compress": "finished chunks are saved and a rerun resumes",
}


WRITTEN = "written_in_full"  # set on a verb's arguments once its output is in place


def _written_in_full(args: argparse.Namespace, path: str | Path) -> None:
    """Note that the verb's output at `path` is in place and whole, so that an interruption
    from here on (while the verb prints what it did) says so: it said "no output was
    written", or that a rerun resumes, where a rerun would find the output already there."""
    setattr(args, WRITTEN, path)


def _kept_after_interrupt(args: argparse.Namespace | None, exc: KeyboardInterrupt) -> str:
    """What the run of `args` interrupted by `exc` kept, in words (None: stopped before its
    arguments were read)."""
    if args is None:
        return NOTHING_WRITTEN
    if getattr(args, WRITTEN, None) is not None:  # the work was done: the rest is printing
        redraw = "; a rerun without --overwrite draws its plot" if args.verb == "demo" else ""
        return f"{getattr(args, WRITTEN)} was already written in full{redraw}"
    if args.verb == "demo" and args.overwrite and \
            _size(Path(args.output) / "results.jsonl"):  # its new runs go to a file of their own
        return "this run's results were discarded and the earlier ones kept"
    if nothing_finished(exc):
        return ("no chunk was finished yet; a rerun starts over"
                if args.verb in ("embed", "compress") else NOTHING_WRITTEN)
    if args.verb in ("embed", "compress") and not reached_the_work(exc):
        # stopped before its resumable work began (while it loaded its model or data), or a
        # run that does not resume: an import (written in one go), the Ray engine (a rerun
        # starts over)
        return NOTHING_WRITTEN
    return _AFTER_INTERRUPT.get(args.verb, NOTHING_WRITTEN)


def _traceback_if_debug(args: argparse.Namespace) -> None:
    """`--debug` shows the traceback of the error being handled, above its one line: the exit
    status stays 2 (re-raised, it was Python's 1, and the line lost the flag it names)."""
    if args.debug:
        traceback.print_exc()


class _Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP (`timeout`, a job scheduler, `docker stop`, a closed terminal)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def _stopped_like_ctrl_c() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into `_Stopped` while a verb runs, so they clean up as Ctrl-C
    does (temporary files removed, finished work kept) instead of killing the process where
    it stands; after the first of these or of Ctrl-C, the others are ignored while the verb
    cleans up. The previous handlers come back afterwards. Only the main thread may."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        # The clean-up runs while the exception unwinds (a fit's workers told to stop and
        # joined, temporaries removed); a second signal landing there broke off the join,
        # leaving torch threads running at exit (an abort, exit 134) or printed a traceback.
        # Later signals are ignored until the verb has ended.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt if signum == signal.SIGINT else _Stopped(signum)

    def redeliver(unraisable: Any) -> None:
        # The raise landed in a finaliser (`__del__`, a weakref callback: matplotlib's, a
        # regex cache's), where Python drops it: the verb ran on to exit 0, every signal
        # ignored. Sent again shortly, it lands outside (or is dropped and sent again).
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            unraisable_hook(unraisable)
            return
        for sig in previous:
            signal.signal(sig, stop)
        signum = getattr(unraisable.exc_value, "signum", signal.SIGINT)
        resend = threading.Timer(0.05, os.kill, (os.getpid(), signum))
        resends.append(resend)
        resend.start()

    # not the ones a parent set to ignored: `nohup` (SIGHUP), a background job (SIGINT)
    caught = [sig for sig in (signal.SIGTERM, signal.SIGHUP)
              if signal.getsignal(sig) not in (signal.SIG_IGN, None)]  # None: from C
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        caught.append(signal.SIGINT)
    previous = {sig: signal.signal(sig, stop) for sig in caught}
    resends: list[threading.Timer] = []
    unraisable_hook, sys.unraisablehook = sys.unraisablehook, redeliver
    try:
        yield
    finally:
        for resend in resends:  # the verb has stopped: not sent after it
            resend.cancel()
        sys.unraisablehook = unraisable_hook
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _logging(*, verbose: bool) -> Iterator[None]:
    """`-v`: dive's INFO records (each finished run), not every library's (the root logger at
    INFO showed faiss's loader, which reads like an error); log lines go above the progress
    bar, not onto its line. Put back after the verb."""
    log = logging.getLogger("dive")
    level = log.level
    if verbose:
        log.setLevel(logging.INFO)
    shown: set[str] = set()

    def show(message: Warning | str, *_: object, **__: object) -> None:
        # a warning as one log line, once: Python's pointed at the console script's line
        # (`.../bin/dive:6: FutureWarning: ...` and `sys.exit(main())` under it)
        if str(message) not in shown:
            shown.add(str(message))
            log.warning("%s", message)

    previous = warnings.showwarning
    warnings.showwarning = show
    try:
        with logging_redirect_tqdm():
            # one filter per handler: each record passes every handler's filter in turn
            filters = {handler: _OnceEach() for handler in logging.getLogger().handlers}
            for handler, once in filters.items():
                handler.addFilter(once)
            try:
                yield
            finally:
                for handler, once in filters.items():
                    handler.removeFilter(once)
    finally:
        log.setLevel(level)
        warnings.showwarning = previous


class _OnceEach(logging.Filter):
    """Lets a warning through once per verb: one made per seed or per fit (a split's queries
    judged in train and test, a PCA's rank) printed the same line three times with
    `--seeds 0,1,2`."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[str, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.getMessage())
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


# The verbs whose result is what they print: with stdout closed (`>&-`) it was dropped without
# a word and exit 0. The others write files, and print only a summary of them, or what a flag
# asks them to print (`report --gains`), which counts as a result too.
PRINTED_RESULT = ("search", "recommend")


def _prints_a_result(args: argparse.Namespace) -> str | None:
    """The verb (with the flag asking it to print) whose result is what it prints, or None."""
    if args.verb in PRINTED_RESULT:
        return str(args.verb)
    return "report --gains" if args.verb == "report" and args.gains else None


def main(argv: Sequence[str] | None = None) -> int:
    # stderr that fails (`2>&1 | head`, a full disk) or is closed (`2>&-`: tqdm's bar written
    # to None ended the verb with exit 1): progress and warnings go nowhere, the work goes on
    with unfailing_stderr():
        if sys.stdout is None:  # `>&-`: prints go nowhere; a verb printing its result refuses
            return _main(argv)
        with named_stdout():
            try:
                status = _main(argv)
            except SystemExit:  # argparse's --help, --version and usage errors print too
                failed = flush_stdout()
                if failed is None:
                    raise
                return failed
            failed = flush_stdout()
        return status if failed is None else failed


def _main(argv: Sequence[str] | None) -> int:
    # Everything is inside the try, the parser and the logging set-up too: they take a good
    # part of a second (numpy and the embedding modules load), and Ctrl-C then printed a
    # traceback. The import of this module is covered by `dive.__main__`, the console script.
    # SIGTERM and SIGHUP from the parser on: `dive.__main__` gives their handlers back before
    # `main`, and one landing while the parser loaded killed the process without a word.
    args: argparse.Namespace | None = None
    try:
        with _stopped_like_ctrl_c():
            args = build_parser().parse_args(argv)
            printing = _prints_a_result(args)
            if sys.stdout is None and printing:
                raise DiveError(f"{STDOUT} is closed, where {printing} prints its result "
                                "(send it to /dev/null to discard it)")
            logging.basicConfig(level=logging.WARNING,
                                format="%(levelname)s %(name)s: %(message)s")
            _show_embedding_sources()
            handler = HANDLERS[args.verb]
            with _logging(verbose=args.verbose):
                status = handler(args)
                if sys.stdout is not None:  # here, where a failure can name what was written
                    sys.stdout.flush()
                return status
    except BrokenPipeError as exc:
        return stdout_failed(exc)
    except UnicodeEncodeError as exc:  # pyarrow, LanceDB, tokenizers: UTF-8 paths only
        if args is None:
            raise
        _traceback_if_debug(args)
        text = quoted(exc.object[max(0, exc.start - 30):exc.end + 30])  # not a whole CSV
        print(f"dive: error: {text} is not valid UTF-8, which a library this verb "
              "uses needs for a path or a name (a file name in another encoding, or LC_ALL=C "
              "without UTF-8 mode: set PYTHONUTF8=1)", file=sys.stderr)
        return 2
    except (DiveError, OSError) as exc:
        if args is None:
            raise
        if isinstance(exc, OSError) and exc.filename == STDOUT:
            return stdout_failed(exc, getattr(args, WRITTEN, None))
        _traceback_if_debug(args)
        # File-system trouble (disk full, no permission, a file where a folder should be) is
        # the user's to fix too.
        print(f"dive: error: {one_line(_error_line(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        from dive.data.download import interrupted_download

        # evaluate's last output is its --report folder, or its --plot
        output = next((getattr(args, name) for name in ("output", "report", "plot")
                       if getattr(args, name, None)), None)
        if args is not None and output is not None and written_before(exc):  # once in place
            _written_in_full(args, output)
        downloading = interrupted_download(exc)  # before any run or chunk: none to resume
        kept = (f"the download of dataset {downloading} was discarded; a rerun downloads it "
                "again" if downloading else _kept_after_interrupt(args, exc))
        print(f"dive: interrupted; {kept}", file=sys.stderr)
        return 128 + getattr(exc, "signum", signal.SIGINT)  # `_Stopped`, or __main__'s


if __name__ == "__main__":
    sys.exit(main())
