"""The `dive` command line: one small function per verb; the only module that prints.

Errors the user can fix (`DiveError`) print as one line on stderr with exit status 2;
`--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dive import __version__
from dive.errors import DiveError

DEFAULT_METHODS = "frozen,truncate,pca,pca-uncentered,random"
DEMO_METHODS = "frozen,truncate,pca,pca-uncentered,random,dive"

Handler = Callable[[argparse.Namespace], int]


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def _str_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _add_grid_options(
    p: argparse.ArgumentParser, *, methods: str, budgets: str, seeds: str
) -> None:
    p.add_argument(
        "--methods",
        type=_str_list,
        default=_str_list(methods),
        help="comma-separated method specs (name or name:key=value:...)",
    )
    p.add_argument("--ratios", type=_int_list, default=[2, 4, 8, 16], help="compression ratios D/d")
    p.add_argument(
        "--budgets",
        type=_str_list,
        default=_str_list(budgets),
        help="label budgets: numbers of training queries, or 'all'",
    )
    p.add_argument("--seeds", type=_int_list, default=_int_list(seeds), help="random seeds")
    p.add_argument(
        "--model",
        default="all-MiniLM-L6-v2",
        help="sentence-transformers model name or path (embeddings folder name)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder holding BEIR datasets by name (default: $DIVE_DATA, cache, download)",
    )
    p.add_argument(
        "--embeddings",
        default=None,
        help="precomputed embeddings folder for a single dataset "
        "(default: $DIVE_EMBEDDINGS/<model>/<dataset>, cache, encode)",
    )


def _run_grid(args: argparse.Namespace, datasets: list[str], results: Path) -> list[dict[str, Any]]:
    from tqdm import tqdm

    from dive.data.splits import parse_budget
    from dive.evaluate.protocol import GridSpec, run_grid
    from dive.evaluate.records import ResultsFile

    spec = GridSpec(
        datasets=datasets,
        methods=args.methods,
        ratios=args.ratios,
        budgets=[parse_budget(b) for b in args.budgets],
        seeds=args.seeds,
        model=args.model,
        data_dir=args.data_dir,
        embeddings_dir=args.embeddings,
    )
    bars: list[tqdm] = []  # created on the first finished run, so early errors print alone

    def progress(done: int, total: int, record: dict[str, Any] | None) -> None:
        if not bars:
            bars.append(tqdm(total=total, desc="runs", unit="run", file=sys.stderr))
        bar = bars[0]
        bar.total, bar.n = total, done
        if record is not None:
            bar.set_postfix_str(
                f"{record['method']} d={record['dim']} ndcg@10={record['ndcg@10']:.4f}"
            )
        bar.refresh()

    try:
        return run_grid(spec, ResultsFile(results), progress)
    finally:
        for bar in bars:
            bar.close()


def cmd_evaluate(args: argparse.Namespace) -> int:
    from dive.report.table import text_tables

    records = _run_grid(args, args.dataset, Path(args.results))
    print(text_tables(records))
    print(f"\nresults: {args.results}")
    if args.plot:
        from dive.report.plots import plot_ndcg_vs_dim

        print(f"plot: {plot_ndcg_vs_dim(records, args.plot)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from dive.report.plots import plot_ndcg_vs_dim
    from dive.report.table import text_tables

    out = Path(args.out)
    records = _run_grid(args, [args.dataset], out / "results.jsonl")
    print(text_tables(records))
    plot = plot_ndcg_vs_dim(records, out / "ndcg_vs_dim.png")
    print(f"\nresults: {out / 'results.jsonl'}\nplot: {plot}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dive",
        description="Compress embeddings for vector search with few labels.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dive {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each finished run")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    fmt = argparse.ArgumentDefaultsHelpFormatter

    p = sub.add_parser(
        "evaluate", help="run the benchmark grid and print a table", formatter_class=fmt
    )
    p.add_argument(
        "--dataset",
        type=_str_list,
        required=True,
        help="dataset names or BEIR folders, comma-separated",
    )
    p.add_argument(
        "--results",
        default="results.jsonl",
        help="JSONL results file (appended; runs already there are skipped)",
    )
    p.add_argument("--plot", default=None, help="also write an nDCG@10-vs-dimension PNG here")
    _add_grid_options(p, methods=DEFAULT_METHODS, budgets="16,64,256,all", seeds="0,1,2")
    p.set_defaults(handler=cmd_evaluate)

    p = sub.add_parser(
        "demo", help="every method on one dataset: table + plot", formatter_class=fmt
    )
    p.add_argument("--dataset", default="scifact", help="dataset name or BEIR folder")
    p.add_argument("--out", default="runs/demo", help="folder for results.jsonl and the plot")
    _add_grid_options(p, methods=DEMO_METHODS, budgets="64", seeds="0")
    p.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    handler: Handler = args.handler
    try:
        return handler(args)
    except DiveError as exc:
        if args.debug:
            raise
        print(f"dive: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dive: interrupted; finished runs are saved and a rerun resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
