"""Quality benchmark: the full evaluation grid, resumable, and the results page built from it.

    python benchmarks/quality.py                 # run what is missing, then regenerate docs
    python benchmarks/quality.py --report-only   # regenerate docs/results.md from the results
    python benchmarks/quality.py --methods frozen,pca --datasets scifact --seeds 0 \\
        --budgets 16 --results /tmp/q.jsonl --docs /tmp/docs   # a quick subset elsewhere
    python benchmarks/quality.py --methods dive \\
        --reuse benchmarks/results/collections.jsonl   # copy identical runs, run the rest

Runs every (dataset, method, ratio, budget, seed) of the grid (SPEC section 3) through
`dive.evaluate.protocol.run_grid`, appending each finished run to the results file at once,
so an interrupted run resumes where it stopped; `--reuse FILE` copies the records of the same
run key from another results file (marked `reused_from`) instead of rerunning them (only for
methods whose code has not changed since that file was written). Default methods: frozen,
truncate, pca, pca-uncentered, random, plus whichever of dive, matryoshka-adaptor-unsup,
matryoshka-adaptor, search-adaptor and smec are registered. Then rewrites `docs/results.md`
and its plots under `docs/img/` from every record in the results file
(`dive.report.write_report`); that page is generated, never edited by hand. Data and
embeddings come from `$DIVE_DATA` / `$DIVE_EMBEDDINGS`, else
`<repo>/../shared/data/{beir,embeddings}` when present, else the cache (download and
encoding). Left out: parallel runs and anything but one machine's CPU.
"""

from __future__ import annotations

import os

# BLAS reads these at import: set before numpy loads (setdefault keeps a caller's choice).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

from script_io import use_shared_data  # noqa: E402

from dive.cli.parsers import DefaultsHelpFormatter, Joined  # noqa: E402

if TYPE_CHECKING:
    from dive.evaluate.protocol import GridSpec
    from dive.evaluate.records import ResultsFile

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = REPO / "benchmarks" / "results" / "quality.jsonl"
DEFAULT_DOCS = REPO / "docs"
PAGE = "results.md"


def comma_items(text: str) -> list[str]:
    """An argparse type: `a,b,,c` -> ['a', 'b', 'c'], and '' -> [] (a flag where none is a
    choice: `all_collections.py --baselines ''`)."""
    return [v.strip() for v in text.split(",") if v.strip()]


def comma_list(text: str) -> list[str]:
    """`comma_items`, refusing a list of nothing (an empty `--methods` ran every default
    method)."""
    items = comma_items(text)
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    return items


def comma_ints(text: str) -> list[int]:
    """An argparse type: `2,4,8` -> [2, 4, 8]."""
    try:
        return [int(v) for v in comma_list(text)]
    except ValueError:
        message = f"expected comma-separated integers, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def at_least_one(text: str) -> int:
    """An argparse type: an integer >= 1 (`--threads`, `--ratio`). torch refused 0 threads
    with a traceback, and a ratio below 1 drew no plot, both after the grid had run."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def positive_share(text: str) -> float:
    """An argparse type: a share of frozen quality (`--keep`), checked before any run."""
    from dive.errors import DataError
    from dive.report.keep import MAX_KEEP, check_keep

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    try:
        check_keep(value)
    except DataError:
        raise argparse.ArgumentTypeError(f"expected a positive, finite share up to "
                                         f"{MAX_KEEP:g}, got {text!r}") from None
    return value


def non_negative(text: str) -> float:
    """An argparse type: a finite number >= 0 (`--tolerance`): with NaN or below 0 no cell
    counted as tied, and the page said so without a word."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def default_methods() -> list[str]:
    """Every registered method but our extensions (`dive-plus`), in registry order."""
    from dive.compressors.registry import all_method_facts

    return [f.name for f in all_method_facts() if not f.extension]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=DefaultsHelpFormatter)
    p.add_argument("--datasets", type=comma_list, action=Joined, default=["scifact", "nfcorpus"],
                   help="dataset names or BEIR folders")
    p.add_argument("--methods", type=comma_list, action=Joined, default=None,
                   help="method specs (default: every registered method but our extensions: "
                        f"{', '.join(default_methods())})")
    p.add_argument("--ratios", type=comma_ints, action=Joined, default=[2, 4, 8, 16],
                   help="ratios D/d")
    p.add_argument("--budgets", type=comma_list, action=Joined, default=["16", "64", "256", "all"],
                   help="label budgets (numbers of training queries, or 'all')")
    p.add_argument("--seeds", type=comma_ints, action=Joined, default=[0, 1, 2],
                   help="random seeds")
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="embedding model name")
    p.add_argument("--data-dir", default=None, help="folder holding the BEIR datasets by name")
    p.add_argument("--results", default=str(DEFAULT_RESULTS),
                   help="JSONL results file (appended; runs already there are skipped)")
    p.add_argument("--reuse", default=None,
                   help="copy runs with the same key from this results file instead of "
                        "running them (only for methods unchanged since it was written)")
    p.add_argument("--docs", default=str(DEFAULT_DOCS),
                   help="folder for results.md (plots go to its img/)")
    p.add_argument("--report-only", action="store_true",
                   help="only regenerate the docs from the existing results file")
    p.add_argument("--keep", type=positive_share, default=0.99,
                   help="report the smallest d keeping this share of frozen nDCG@10")
    p.add_argument("--ratio", type=at_least_one, default=4,
                   help="ratio of the nDCG@10-vs-budget plot")
    p.add_argument("--threads", type=at_least_one, default=2, help="torch threads")
    return p


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def run(args: argparse.Namespace) -> int:
    """Run the missing part of the grid; return the number of runs it added."""
    from dive.data.splits import parse_budget
    from dive.evaluate.protocol import GridSpec
    from dive.evaluate.records import ResultsFile

    spec = GridSpec(
        datasets=args.datasets,
        methods=args.methods or default_methods(),
        ratios=args.ratios,
        budgets=[parse_budget(b) for b in args.budgets],
        seeds=args.seeds,
        model=args.model,
        data_dir=args.data_dir,
    )
    print(f"methods: {', '.join(spec.methods)}", file=sys.stderr)
    results = ResultsFile(args.results)
    if args.reuse:
        copied = reuse_runs(Path(args.reuse), spec, results)
        print(f"{copied} runs copied from {args.reuse}", file=sys.stderr)
    return run_spec(spec, results)


def reuse_runs(source: Path, spec: GridSpec, results: ResultsFile) -> int:
    """Copy the records of `spec`'s runs found in `source` and missing from `results`."""
    from dive.errors import DataError
    from dive.evaluate.protocol import full_dim_only
    from dive.evaluate.records import read_records, record_key, record_model
    from dive.report.summary import base_method

    if not source.exists():  # read as no records, a mistyped name re-ran every run it holds
        raise DataError(f"{source}: no such results file (--reuse)")
    budgets = {"all" if b is None else str(b) for b in spec.budgets}
    tag = shown(source)

    def wanted(r: dict[str, object]) -> bool:
        full_dim = full_dim_only(base_method(str(r["method"])))
        return (r["dataset"] in spec.datasets and record_model(r) == spec.recorded_model
                and r["method"] in spec.methods and str(r["budget"]) in budgets
                and int(str(r["seed"])) in spec.seeds
                and (int(str(r["ratio"])) in spec.ratios or full_dim))

    # a run recorded twice is its last record, as a report of `source` reads it
    last = {record_key(r): r for r in read_records(source)}
    copied = [{**r, "reused_from": tag} for key, r in last.items()
              if wanted(r) and key not in results]
    if copied:
        results.append(copied)
    return len(copied)


def run_spec(spec: GridSpec, results: ResultsFile) -> int:
    """Run the part of one grid missing from `results` with a progress bar; return the
    number of runs it added."""
    from tqdm import tqdm

    from dive.evaluate.protocol import run_grid

    before = len(results.records)
    bar = tqdm(desc="runs", unit="run", file=sys.stderr, dynamic_ncols=True)

    def progress(done: int, total: int, record: dict[str, Any] | None) -> None:
        bar.total, bar.n = total, done
        if record is not None:
            bar.set_postfix_str(f"{record['dataset']} {record['method']} d={record['dim']} "
                                f"n={record['budget']} ndcg@10={record['ndcg@10']:.4f}")
        bar.refresh()

    try:
        run_grid(spec, results, progress)
    finally:
        bar.close()
    return len(results.records) - before


def shown(path: Path) -> str:
    """`path` relative to the repository when inside it (for the page's header)."""
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


PAGE_HEAD = 2000  # a generated page's notice is within its first characters (after a title)


def _page_notice(script: str) -> str:
    return f"<!-- Generated by benchmarks/{script}"


def check_page(page: Path, script: str) -> None:
    """Refuse (`DiveError`) to write at `page` unless it is free or a page `script` wrote:
    called before the work too, so a file of the user's there is refused before it, not
    after."""
    from dive._io import check_output

    notice = _page_notice(script)

    def ours(path: Path) -> bool:
        try:
            with path.open(encoding="utf-8", errors="replace") as handle:
                return notice in handle.read(PAGE_HEAD)
        except OSError:
            return False

    check_output(page, overwrite=True, ours=ours, what=f"a page benchmarks/{script} wrote")


def check_outputs(docs: Path) -> None:
    """Refuse (`DiveError`) a file of the user's where the results page or one of its plots
    goes (`docs/img/`), as frontier.py's `check_outputs` does: called before the grid, where
    a non-PNG at a plot's name was refused only once the whole grid had run."""
    from dive._io import check_output
    from dive.report.build import report_paths
    from dive.report.plots import is_png

    page, *plots = report_paths(docs, markdown_name=PAGE, csv_name=None, image_dir=docs / "img")
    check_page(page, "quality.py")
    for plot in plots:
        check_output(plot, overwrite=True, ours=is_png, what="a PNG plot")


def write_page(page: Path, text: str, script: str) -> None:
    """Write the generated `text` (opening with `generated_by`'s notice, or given one here)
    at `page`, replacing only a page `script` wrote (`check_page`): a file of the user's named
    there was replaced without a word."""
    from dive._io import atomic_write_text

    notice = _page_notice(script)
    if notice not in text[:PAGE_HEAD]:
        text = f"{notice}; do not edit by hand. -->\n\n{text}"
    check_page(page, script)
    atomic_write_text(page, text)


def generated_by(script: str, results: Path, default: Path, docs: Path, *,
                 stage: bool = False) -> str:
    """The notice opening a generated page: the commands that regenerate it from `results`
    into `docs` and add runs to `results` (naming either only when it is not the default)."""
    extra = "" if results.resolve() == default else f" --results {shown(results)}"
    if docs.resolve() != DEFAULT_DOCS.resolve():
        extra += f" --docs {shown(docs)}"
    rerun = f"`python benchmarks/{script}{extra}`"
    return (
        f"<!-- Generated by benchmarks/{script}; do not edit by hand. -->\n\n"
        f"> Generated by `python benchmarks/{script}{extra} --report-only` from "
        f"`{shown(results)}`. Rerun {'a stage of ' if stage else ''}{rerun} to add missing "
        "runs and regenerate; never edit this page by hand.\n\n"
    )


def report(args: argparse.Namespace) -> list[Path]:
    """Regenerate the results page and its plots from every record of the results file."""
    from dive.errors import DataError
    from dive.report.build import write_report
    from dive.report.merge import merge_records, read_results
    from dive.report.targets import targets_section

    results = Path(args.results)
    if not results.is_file():
        raise DataError(f"{results}: no results yet; run without --report-only first")
    records = read_results([results])
    docs = Path(args.docs)
    preamble = (
        generated_by("quality.py", results, DEFAULT_RESULTS, docs)
        + "Every shared collection (the five classic ones without a train split, a second "
        "embedding model) against training-free PCA: [collections.md](collections.md), "
        "generated by `python benchmarks/all_collections.py`.\n\n"
        "Rows ending `@v2` are the previous release's learned baselines, whose hard "
        "negatives were refreshed at each validation check (every 25-50 steps) where they now "
        "are every 5 steps, as DIVE's (`mine_every=5`); rows ending `@v1` are the release "
        "before (fixed weights, SMEC's earlier stages and ADS, Matryoshka-Adaptor with "
        "M = {d, D}). Both are kept beside the current defaults (issue 16; docs/methods.md). "
        "For `dive` and `dive-plus`, `@v1` are the rows from before their race ran a "
        "holdout's leading arm on while its best check was past half its runs (`extend_at`, "
        "docs/methods.md); the runs that rule cannot change are the same fits. A "
        "current baseline row shows `-` where it has not been run yet, and `[n=1]` where only "
        "some of its seeds have. A baseline searches its grid only with 100 validation queries "
        "or more (`grid_min`); `search-adaptor:grid_min=0@v2` is its grid searched on fewer "
        "(13 at 64 labels), with the previous refresh, for comparison; "
        "`search-adaptor:select=false` is today's Search-Adaptor with its fixed weights "
        "(alpha 0.1, beta 0.01), run with every label, where the grid is searched (with "
        "fewer labels the default row is that fit)."
    )
    files = write_report(records, docs, keep=args.keep, ratio=args.ratio,
                         markdown_name=PAGE, csv_name=None, image_dir=docs / "img",
                         title="Benchmark results", preamble=preamble,
                         sections=[targets_section(merge_records(records))], overwrite=True)
    return files.all()


HEADLINE_START, HEADLINE_END = "<!-- headline:start -->", "<!-- headline:end -->"
HEADLINE_BUDGET = "64"


def update_readme(args: argparse.Namespace, readme: Path = REPO / "README.md") -> Path | None:
    """Rewrite the README's headline block (between its markers) from the results file.

    The block holds the 64-label nDCG@10 table of each dataset, so the README's numbers come
    from the same records as docs/results.md and are never typed by hand.
    """
    from dive.report.markdown import metric_table
    from dive.report.merge import label_models, read_results
    from dive.report.summary import summarize

    text = readme.read_text(encoding="utf-8")
    if HEADLINE_START not in text or HEADLINE_END not in text:
        return None
    # With several models, each model's runs are a table of their own, never averaged.
    cells = summarize(label_models(read_results([Path(args.results)])), "ndcg@10")
    blocks = []
    for dataset in sorted({c.dataset for c in cells}):
        group = [c for c in cells if c.dataset == dataset and c.budget == HEADLINE_BUDGET]
        if group:
            blocks.append(f"**{dataset}**, nDCG@10 with {HEADLINE_BUDGET} labelled queries "
                          f"(mean ± std over seeds; in parentheses: difference to frozen):\n\n"
                          + metric_table(group))
    head, rest = text.split(HEADLINE_START, 1)
    tail = rest.split(HEADLINE_END, 1)[1]
    body = "\n\n".join(blocks)
    from dive._io import atomic_write_text

    atomic_write_text(readme, f"{head}{HEADLINE_START}\n{body}\n{HEADLINE_END}{tail}")
    return readme


def guarded_main(script: str, threads: int, body: Callable[[], None]) -> int:
    """Run a benchmark script's `body` as a command: torch threads, shared data, exit status.

    A `DiveError` is printed as `<script>: error: ...` (status 2); an interrupt says the
    finished runs are kept (status 130); the elapsed time is printed either way.
    """
    started = time.perf_counter()
    import torch

    torch.set_num_threads(threads)
    use_shared_data()
    from dive.errors import DiveError

    try:
        body()
    except DiveError as exc:
        print(f"{script}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{script}: interrupted; finished runs are saved and a rerun resumes",
              file=sys.stderr)
        return 130
    finally:
        print(f"elapsed: {time.perf_counter() - started:.1f} s")
    return 0


def run_then_report(args: argparse.Namespace, run: Callable[[argparse.Namespace], int],
                    report: Callable[[argparse.Namespace], list[Path]]) -> None:
    """A benchmark's body: the missing runs (unless --report-only), then its pages."""
    if not args.report_only:
        added = run(args)
        print(f"{added} new runs in {args.results}")
    for path in report(args):
        print(f"wrote {path}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> None:
        # a file of the user's at the page or a plot is refused before the grid, not after it
        check_outputs(Path(args.docs))
        run_then_report(args, run, report)
        if Path(args.docs).resolve() == DEFAULT_DOCS.resolve() and update_readme(args):
            print("wrote README.md headline")

    return guarded_main("quality.py", args.threads, body)


if __name__ == "__main__":
    sys.exit(main())
