"""`dive evaluate` and `dive demo`: a grid of runs appended to a results file, then its
tables, plot and report."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dive._io import (
    check_output,
    locked,
    made_folder,
    nothing_finished_unless,
    publish,
    publishing,
    resolve_link,
    temporary,
    uninterrupted,
    written_before,
)
from dive.cli.interrupts import file_size, written_in_full
from dive.errors import DiveError, about


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

    size = file_size(results)
    try:
        # stopped before its first run was recorded (while the datasets were checked), it
        # said "finished runs are saved and a rerun resumes"; recorded is read off the file
        # (a signal held over its rename lands once the record is in)
        with nothing_finished_unless(lambda: file_size(results) > size):
            records = run_grid(spec, ResultsFile(results), progress)
    finally:
        for bar in bars:
            bar.close()
    if skipped[0]:
        print(f"skipped {skipped[0]} run(s) already in {results} for the same data",
              file=sys.stderr)
    return merge_records(records)  # a run the file holds twice counts once, as in a report


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
        written_in_full(args, written)
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
                written_in_full(args, results)  # the earlier results are replaced from here
            finally:
                fresh.unlink(missing_ok=True)
                held.unlink()  # `temporary` removes it only after an error
    else:
        records = _run_grid(args, [args.dataset], results)
    plot = plot_ndcg_vs_dim(records, plot_path, overwrite=True)  # before a reader can stop
    print(text_tables(records))
    print(f"\nresults: {results}\nplot: {plot}")
    return 0


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

