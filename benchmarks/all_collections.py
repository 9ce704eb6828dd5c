"""Development benchmark over every shared collection, and its summary against training-free PCA.

    python benchmarks/all_collections.py                  # run what is missing, print the summary,
                                                      # regenerate docs/collections.md
    python benchmarks/all_collections.py --report-only    # summary and page from the results only
    python benchmarks/all_collections.py --methods frozen,pca,pca-uncentered \\
        --reuse benchmarks/results/quality.jsonl      # a subset, copying identical runs
    python benchmarks/all_collections.py --datasets cacm,nfcorpus@all-mpnet-base-v2 --seeds 0 \\
        --results /tmp/c.jsonl --docs /tmp/docs       # a quick subset elsewhere

Collections: scifact, nfcorpus, cranfield, cisi, cacm, npl and time with all-MiniLM-L6-v2,
plus nfcorpus with all-mpnet-base-v2 (768-d) when `$DIVE_EMBEDDINGS` holds its embeddings
(`name@model` names another model). Two grids, both through
`dive.evaluate.protocol.run_grid`, appending each finished run to the results file at once so
an interrupted run resumes where it stopped (the full grid first, then method by method in
`--methods` order, seed by seed, collection by collection, so a run stopped early has whole
rows for the methods it reached):

- the full grid, for frozen, pca, pca-uncentered, dive and any method not named a baseline:
  ratios 2/4/8, budgets 16, 64 and all, seeds 0, 1, 2;
- a reduced grid for the learned baselines (matryoshka-adaptor-unsup, matryoshka-adaptor,
  search-adaptor, smec, smec:basis=pca): ratio 4 only, budget all only, seeds 0, 1, 2. Their
  fits take 5-70 s each on two CPU cores, so the full grid would cost a day.

A numeric budget at least as large as a collection's labelled pool is skipped: it would be
the same run as `all`. The classic collections (cranfield, cisi, cacm, npl, time) have no
train split, so the protocol splits their judged queries 50/50 and the pool is 26-112
queries; only cranfield keeps budget 64. `--reuse FILE` copies records of the same run key
from another results file (marked `reused_from`) instead of rerunning them: use it only for
methods whose code has not changed since that file was written.

Then prints one summary per method against the best training-free compressor (the better of
pca and pca-uncentered at the same collection, dimension and budget, mean over the same seeds;
`dive.report.gains`) and rewrites `docs/collections.md` from every record of the results
file; that page is generated, never edited by hand. Left out: parallel runs.
"""

from __future__ import annotations

import os

# BLAS reads these at import: set before numpy loads (setdefault keeps a caller's choice).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import argparse  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

from quality import (  # noqa: E402
    REPO,
    at_least_one,
    check_page,
    comma_ints,
    comma_items,
    comma_list,
    generated_by,
    guarded_main,
    non_negative,
    reuse_runs,
    run_spec,
    write_page,
)

from dive.cli.parsers import DefaultsHelpFormatter, Joined  # noqa: E402

MODEL = "all-MiniLM-L6-v2"
CLASSIC = ("cranfield", "cisi", "cacm", "npl", "time")
DATASETS = ("scifact", "nfcorpus", *CLASSIC)
SECOND_MODEL = ("nfcorpus", "all-mpnet-base-v2")  # run when its embeddings are present
FULL_GRID = ("frozen", "pca", "pca-uncentered", "dive")
BASELINES = ("matryoshka-adaptor-unsup", "matryoshka-adaptor", "search-adaptor", "smec",
             "smec:basis=pca")
DEFAULT_RESULTS = REPO / "benchmarks" / "results" / "collections.jsonl"
DEFAULT_DOCS = REPO / "docs"
PAGE = "collections.md"
TARGET_RATIO, TARGET_BUDGET = 4, "all"


@dataclass(frozen=True)
class Collection:
    """One dataset under one embedding model."""

    dataset: str
    model: str

    @property
    def label(self) -> str:
        return self.dataset if self.model == MODEL else f"{self.dataset}@{self.model}"


def default_collections() -> list[Collection]:
    """The seven shared datasets with the default model, then the 768-d set when present."""
    found = [Collection(d, MODEL) for d in DATASETS]
    dataset, model = SECOND_MODEL
    root = os.environ.get("DIVE_EMBEDDINGS")
    if root and (Path(root) / model / dataset).is_dir():
        found.append(Collection(dataset, model))
    return found


def parse_collections(names: Sequence[str]) -> list[Collection]:
    """`name` or `name@model` -> Collection (the default model when none is named)."""
    out = []
    for name in names:
        dataset, _, model = name.partition("@")
        out.append(Collection(dataset, model or MODEL))
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=DefaultsHelpFormatter)
    p.add_argument("--datasets", type=comma_list, action=Joined, default=None,
                   help="collections as name or name@model (default: the seven shared "
                        f"datasets with {MODEL}, plus {'@'.join(SECOND_MODEL)} when present)")
    p.add_argument("--methods", type=comma_list, action=Joined, default=[*FULL_GRID, *BASELINES],
                   help="method specs to run (each on its grid)")
    p.add_argument("--baselines", type=comma_items, action=Joined, default=list(BASELINES),
                   help="method specs that run on the reduced grid ('': none)")
    p.add_argument("--ratios", type=comma_ints, action=Joined, default=[2, 4, 8],
                   help="ratios, full grid")
    p.add_argument("--budgets", type=comma_list, action=Joined, default=["16", "64", "all"],
                   help="label budgets, full grid (numeric ones below the pool size only)")
    p.add_argument("--baseline-ratios", type=comma_ints, action=Joined, default=[4],
                   help="ratios, baselines")
    p.add_argument("--baseline-budgets", type=comma_list, action=Joined, default=["all"],
                   help="label budgets, baselines")
    p.add_argument("--seeds", type=comma_ints, action=Joined, default=[0, 1, 2],
                   help="random seeds")
    p.add_argument("--data-dir", default=None, help="folder holding the BEIR datasets by name")
    p.add_argument("--results", default=str(DEFAULT_RESULTS),
                   help="JSONL results file (appended; runs already there are skipped)")
    p.add_argument("--reuse", default=None,
                   help="copy runs with the same key from this results file instead of "
                        "running them (only for methods unchanged since it was written)")
    p.add_argument("--docs", default=str(DEFAULT_DOCS), help=f"folder for {PAGE}")
    p.add_argument("--report-only", action="store_true",
                   help="only print the summary and regenerate the page from the results")
    p.add_argument("--tolerance", type=non_negative, default=0.002,
                   help="a cell within this of the best training-free score counts as tied")
    p.add_argument("--threads", type=at_least_one, default=2, help="torch threads")
    return p


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def pool_size(dataset: str, data_dir: str | None) -> int:
    """Labelled queries a budget can draw from (train + validation of budget 'all')."""
    from dive.data import load_dataset
    from dive.data.splits import make_split

    split = make_split(load_dataset(dataset, data_dir=data_dir, download=False), None, 0)
    return len(split.train_ids) + len(split.validation_ids)


def run(args: argparse.Namespace) -> int:
    """Run the missing part of both grids on every collection; return the runs added."""
    from dive.data.splits import parse_budget
    from dive.errors import DataError
    from dive.evaluate.protocol import GridSpec
    from dive.evaluate.records import ResultsFile

    collections = (parse_collections(args.datasets) if args.datasets
                   else default_collections())
    reduced = [m for m in args.methods if m in args.baselines]
    full = [m for m in args.methods if m not in args.baselines]
    grids = [(full, args.ratios, args.budgets), (reduced, args.baseline_ratios,
                                                 args.baseline_budgets)]
    for methods, ratios, budget_names in grids:  # every grid checked before the first runs
        if methods:  # (a bad --baseline-budgets stopped the script hours in)
            GridSpec(datasets=[collections[0].dataset], methods=methods, ratios=ratios,
                     budgets=[parse_budget(b) for b in budget_names], seeds=args.seeds)
    results = ResultsFile(args.results)
    before = len(results.records)
    pools = {c.dataset: pool_size(c.dataset, args.data_dir) for c in collections}
    print("labelled pools: " + ", ".join(f"{d} {n}" for d, n in pools.items()),
          file=sys.stderr)

    def below_pool(budget_names: list[str], collection: Collection) -> list[int | None]:
        return [b for b in map(parse_budget, budget_names)
                if b is None or b < pools[collection.dataset]]

    if not any(below_pool(names, c) for methods, _, names in grids if methods
               for c in collections):  # the report then said "no results yet"
        given = dict.fromkeys(b for methods, _, names in grids if methods for b in names)
        sizes = ", ".join(f"{d} {n}" for d, n in pools.items())
        raise DataError(f"nothing run: every budget given ({','.join(given)}) is at or past "
                        f"the labelled pool of each collection ({sizes}); give a smaller "
                        "budget or 'all'")
    # Every cheap row before any slow one; then method by method (in --methods order), seed
    # by seed, so that a run stopped early has whole rows for the methods it reached.
    for methods, ratios, budget_names in grids:
        for method in methods:
            for seed in args.seeds:
                for collection in collections:
                    budgets = below_pool(budget_names, collection)
                    if not budgets:  # each at or past the pool: skipped, not the end of it all
                        print(f"{collection.label}: budgets {','.join(budget_names)} are not "
                              f"below its labelled pool ({pools[collection.dataset]}); "
                              "skipped", file=sys.stderr)
                        continue
                    spec = GridSpec(datasets=[collection.dataset], methods=[method],
                                    ratios=ratios, budgets=budgets, seeds=[seed],
                                    model=collection.model, data_dir=args.data_dir)
                    if args.reuse:
                        copied = reuse_runs(Path(args.reuse), spec, results)
                        if copied:
                            print(f"{collection.label}: {copied} runs copied from "
                                  f"{args.reuse}", file=sys.stderr)
                    print(f"{collection.label} seed {seed}: {method} at ratios "
                          f"{','.join(map(str, ratios))}, budgets "
                          f"{','.join('all' if b is None else str(b) for b in budgets)}",
                          file=sys.stderr)
                    run_spec(spec, results)
    return len(results.records) - before


def report(args: argparse.Namespace) -> Path:
    """Print the summary against training-free PCA and regenerate the page; return its path."""
    from dive.errors import DataError
    from dive.report.gains import gains_over_training_free, render_gains, summary_text
    from dive.report.markdown import grids_section
    from dive.report.merge import read_results
    from dive.report.targets import targets_section

    results = Path(args.results)
    if not results.is_file():
        raise DataError(f"{results}: no results yet; run without --report-only first")
    records = read_results([results])
    cells = gains_over_training_free(records)
    print(summary_text(cells, tolerance=args.tolerance, target_name="five classic collections",
                       datasets=CLASSIC, ratio=TARGET_RATIO, budget=TARGET_BUDGET))
    targets = targets_section(records)
    print(targets)
    docs = Path(args.docs)
    preamble = generated_by("all_collections.py", results, DEFAULT_RESULTS, docs) + GRID_NOTE
    page = docs / PAGE
    write_page(page, render_gains(
        cells, tolerance=args.tolerance, title="Development benchmark: every shared "
        "collection against training-free PCA", preamble=preamble,
        target_name="five classic collections", datasets=CLASSIC, ratio=TARGET_RATIO,
        budget=TARGET_BUDGET) + f"\n{targets}\n\n{grids_section(records)}\n", "all_collections.py")
    return page


GRID_NOTE = (
    "Collections: scifact, nfcorpus, cranfield, cisi, cacm, npl, time (all-MiniLM-L6-v2) and "
    "nfcorpus with all-mpnet-base-v2 (768-d). Full grid (frozen, pca, pca-uncentered, dive): "
    "ratios 2/4/8, budgets 16, 64 and all where the labelled pool is larger than the budget, "
    "seeds 0, 1, 2. **Reduced grid for the learned baselines** (matryoshka-adaptor-unsup, "
    "matryoshka-adaptor, search-adaptor, smec, smec:basis=pca): 4× only, budget all only, "
    "seeds 0, 1, 2. `dive-plus` (our extension) ran with all labels only: 4× on the classic "
    "collections and the 768-d set, 2/4/8× on SciFact and NFCorpus (copied from the quality "
    "grid). The classic collections (cranfield, cisi, cacm, npl, time) have no train "
    "split: the protocol splits their judged queries 50/50 per seed, so their labelled pool "
    "is 26-112 queries and the evaluation half changes with the seed. DIVE's defaults were "
    "tuned on dev runs of these collections, which read most of the queries these seeds "
    "evaluate on the classic ones (`python benchmarks/dev_overlap.py`): there, these are "
    "development figures, not a blind test. Rows ending `@v1` are "
    "the release before (for `dive` and `dive-plus`: before their race ran a holdout's "
    "leading arm on while its best check was past half its runs, `extend_at`, and before a "
    "centred start's similarity anchor held the centred geometry, `anchor_centred`; only the "
    "SciFact and NFCorpus runs with hundreds of labels and the runs with a centred start "
    "differ). Rows ending `@v2` are the learned baselines of the release before the current "
    "one, whose hard negatives were refreshed at each validation check where they now are "
    "every 5 steps, as DIVE's (`mine_every=5`; docs/results.md)."
)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> None:
        # a file of the user's at the page is refused before the runs, not after them
        check_page(Path(args.docs) / PAGE, "all_collections.py")
        if not args.report_only:
            added = run(args)
            print(f"{added} new runs in {args.results}")
        print(f"wrote {report(args)}")

    return guarded_main("all_collections.py", args.threads, body)


if __name__ == "__main__":
    sys.exit(main())
