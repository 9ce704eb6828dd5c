"""Frontier benchmark: nDCG@10 against bytes per vector, dive's configurations and the anchors.

    python benchmarks/frontier.py --stage cheap --seeds 0      # training-free rows + anchors
    python benchmarks/frontier.py --stage dive --seeds 0       # learned dive fits
    python benchmarks/frontier.py --report-only                # regenerate docs/frontier.md

Two stages append to one results file (default `benchmarks/results/frontier.jsonl`), each
resumable (a rerun skips what is recorded) through `dive.evaluate.protocol.run_grid`:

- `cheap`: frozen, pca, pca-uncentered and truncate at ratios 2-32 (d = 192 .. 12), every
  precision (float32, float16, int8, binary) and funnel factor 0 and 10 (rescored from the full
  embeddings), plus the anchors at equal bytes: FAISS PQ and OPQ+PQ, PCA+SQ8/SQ4 at the same
  ratios, sentence-transformers int8 and binary (`dive.evaluate.anchors`);
- `dive`: DIVE fits at ratios 4 and 8 with 64 and all labels, scored at the same precisions
  and funnels and at the `opq{M}` first stages (FAISS OPQ+PQ of the outputs at M = 12, 24, 48
  bytes, `dive.evaluate.product`: the budgets where the anchors' product codes lead; OPQ
  trains for tens of seconds per index here, so the stage stays at these three sizes).

NFCorpus loses more to compression at 4x than SciFact, so its dive rows also run at ratio 2
(192-d), with two more OPQ sizes where the anchors' 16- and 32-byte codes lead:

    python benchmarks/frontier.py --stage dive --datasets nfcorpus --ratios 2 --budgets 64
    python benchmarks/frontier.py --stage dive --datasets nfcorpus --ratios 2 --budgets 64 \\
        --precisions opq16,opq32 --rescore 0
    # and both commands again with --budgets all

Then `docs/frontier.md`, its plot (`docs/img/frontier.png`) and `docs/frontier.csv` (every row
over seeds) are regenerated from every record of the file: the issue's targets with their
figures, then the report's quality-per-byte section (`dive.report.frontier`: the plot, the best
configuration per byte budget, the fewest bytes keeping 95% / 99% of frozen); the page is
generated, never edited by hand. Data come from `$DIVE_DATA` / `$DIVE_EMBEDDINGS` or
`<repo>/../shared/data`. Set OMP_NUM_THREADS (default here 2) before a run on a shared machine:
FAISS's k-means uses every thread it is given.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import argparse  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from quality import (  # noqa: E402
    REPO,
    at_least_one,
    check_page,
    comma_ints,
    comma_list,
    generated_by,
    guarded_main,
    run_spec,
    run_then_report,
    write_page,
)

from dive.cli.parsers import DefaultsHelpFormatter, Joined  # noqa: E402

DEFAULT_RESULTS = REPO / "benchmarks" / "results" / "frontier.jsonl"
DEFAULT_DOCS = REPO / "docs"
PQ_BYTES = (8, 12, 16, 24, 32, 48, 64)
OPQ_BYTES = (12, 24, 48)  # OPQ trains 10x longer than PQ: the budgets the targets name
ANCHORS = (*(f"faiss-pq:{m}" for m in PQ_BYTES), *(f"faiss-opq:{m}" for m in OPQ_BYTES),
           "faiss-pca-sq8", "faiss-pca-sq4", "st-int8", "st-binary")
PRECISIONS = ["float32", "float16", "int8", "binary"]
OPQ_STAGES = [f"opq{m}" for m in OPQ_BYTES]
STAGES: dict[str, dict[str, list[Any]]] = {
    "cheap": {"methods": ["frozen", "truncate", "pca", "pca-uncentered"],
              "ratios": [2, 4, 8, 16, 32], "anchors": list(ANCHORS), "precisions": PRECISIONS},
    "dive": {"methods": ["dive"], "ratios": [4, 8], "anchors": [],
             "precisions": PRECISIONS + OPQ_STAGES},
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=DefaultsHelpFormatter)
    p.add_argument("--stage", choices=sorted(STAGES), default="cheap",
                   help="which part of the grid to run")
    p.add_argument("--datasets", type=comma_list, action=Joined, default=["scifact", "nfcorpus"])
    p.add_argument("--budgets", type=comma_list, action=Joined, default=["64", "all"],
                   help="label budgets (numbers of training queries, or 'all')")
    p.add_argument("--seeds", type=comma_ints, action=Joined, default=[0, 1, 2],
                   help="random seeds")
    p.add_argument("--ratios", type=comma_ints, action=Joined, default=None,
                   help="ratios D/d (default: the stage's)")
    p.add_argument("--methods", type=comma_list, action=Joined, default=None,
                   help="method specs (default: the stage's)")
    p.add_argument("--anchors", type=comma_list, action=Joined, default=None,
                   help="anchor specs (default: the stage's)")
    p.add_argument("--precisions", type=comma_list, action=Joined, default=None,
                   help="first stages (default: the stage's)")
    p.add_argument("--rescore", type=comma_ints, action=Joined, default=[0, 10],
                   help="funnel factors")
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="embedding model name")
    p.add_argument("--results", default=str(DEFAULT_RESULTS),
                   help="JSONL results file (appended; runs already there are skipped)")
    p.add_argument("--docs", default=str(DEFAULT_DOCS),
                   help="folder for frontier.md (plots go to its img/)")
    p.add_argument("--report-only", action="store_true",
                   help="only regenerate the page from the existing results file")
    p.add_argument("--threads", type=at_least_one, default=2, help="torch threads")
    return p


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def run(args: argparse.Namespace) -> int:
    """Run the stage's missing runs; return how many were added."""
    from dive.data.splits import parse_budget
    from dive.evaluate.protocol import GridSpec
    from dive.evaluate.records import ResultsFile

    stage = STAGES[args.stage]
    spec = GridSpec(
        datasets=args.datasets,
        methods=stage["methods"] if args.methods is None else args.methods,
        ratios=stage["ratios"] if args.ratios is None else args.ratios,
        budgets=[parse_budget(b) for b in args.budgets],
        seeds=args.seeds,
        model=args.model,
        precisions=stage["precisions"] if args.precisions is None else args.precisions,
        rescores=args.rescore,
        anchors=stage["anchors"] if args.anchors is None else args.anchors,
    )
    print(f"methods: {', '.join(spec.methods)}; anchors: {', '.join(spec.anchors)}",
          file=sys.stderr)
    return run_spec(spec, ResultsFile(args.results))


def outputs(docs: Path) -> tuple[Path, Path, Path]:
    """The page, its plot and its CSV under `docs`."""
    return docs / "frontier.md", docs / "img" / "frontier.png", docs / "frontier.csv"


def check_outputs(docs: Path) -> None:
    """Refuse (`DiveError`) a file of the user's where the page, its plot or its CSV goes
    (only what a report wrote is replaced): before the runs, and before the report writes any
    of them (the CSV and the plot were written, then the page refused)."""
    from dive._io import check_output
    from dive.report.csv_export import is_summary_csv
    from dive.report.plots import is_png

    page, plot, csv = outputs(docs)
    check_page(page, "frontier.py")
    check_output(csv, overwrite=True, ours=is_summary_csv, what="a summary CSV")
    check_output(plot, overwrite=True, ours=is_png, what="a PNG plot")


def report(args: argparse.Namespace) -> list[Path]:
    """Regenerate docs/frontier.md, its plot and its CSV from every record of the results file."""
    from dive.errors import DataError
    from dive.report.csv_export import write_summary_csv
    from dive.report.frontier import frontier_section
    from dive.report.merge import label_models, read_results
    from dive.report.plots import plot_frontier

    results = Path(args.results)
    if not results.is_file():
        raise DataError(f"{results}: no results yet; run a stage first")
    records = read_results([results])
    docs = Path(args.docs)
    page, plot, csv = outputs(docs)
    check_outputs(docs)
    write_summary_csv(records, csv, overwrite=True)  # it has a model column
    # The section, its targets and the plot group by dataset: with several models, each model's
    # runs are a dataset of their own (`scifact (model)`), never averaged as if seeds.
    records = label_models(records)
    plot_frontier(records, plot, overwrite=True)
    from dive.report.summary import base_method, method_order

    seeds: dict[str, set[int]] = {}
    for r in records:
        seeds.setdefault(base_method(str(r["method"])), set()).add(int(r["seed"]))
    counts = ", ".join(f"{m} {len(seeds[m])}" for m in method_order(seeds))
    text = "\n\n".join([
        "# Quality per byte",
        generated_by("frontier.py", results, DEFAULT_RESULTS, docs, stage=True).strip(),
        f"{len(records)} runs of {', '.join(sorted({str(r['model']) for r in records}))} "
        f"embeddings; means over seeds (seeds per family: {counts}). Every configuration of "
        "dive (method x dimension x precision, with and without funnel rescoring from the full "
        "float32 embeddings) against the indexes users would run instead, at the bytes per "
        "vector their first-stage index stores. Precisions, anchors and funnels: "
        "[quantization.md](quantization.md); every row with its seeds and metrics: "
        f"[{csv.name}]({csv.name}).",
        targets(records),
        frontier_section(records, image=f"img/{plot.name}"),
    ]) + "\n"
    write_page(page, text, "frontier.py")
    return [page, plot, csv]


def targets(records: Sequence[dict[str, Any]]) -> str:
    """The issue's quality targets, each with the figures that meet or miss it."""
    from dive.report.frontier import (
        allowed,
        best_per_budget,
        check_budgets,
        configs,
        fewest_bytes_keeping,
        frozen_reference,
        groups,
    )
    from dive.report.markdown import signed
    from dive.report.paired import on_fewer_seeds, seed_list

    lines = ["## Targets (issue 13)\n"]
    for dataset, budget, group in groups(configs(records)):
        frozen = frozen_reference(group)
        if frozen is None:
            continue
        where = f"{dataset}, {budget} labels"
        check = check_budgets(best_per_budget(group, rescoring=False))
        if not check.compared:  # no anchor (or no seed shared with one): nothing is met
            lines.append(f"- {where}, without rescoring: the best of ours against the best "
                         f"anchor: not compared (no byte budget from {check.low} to "
                         f"{check.high} has both, on a seed both ran).")
        else:
            misses = ", ".join(f"{r.bytes_per_vector} B ({signed(r.margin or 0, 4)})"
                               for r in check.misses) or "none"
            lines.append(f"- {where}, without rescoring: the best of ours is at or above the "
                         f"best anchor at {check.compared - len(check.misses)} of "
                         f"{check.compared} byte budgets from {check.low} to {check.high} "
                         f"({'met' if not check.misses else 'missed'}; below at: {misses}).")
        hit = fewest_bytes_keeping(
            [c for c in allowed(group, True) if not c.anchor and c is not frozen], frozen, 0.99)
        if dataset.split(" (", 1)[0] == "scifact":  # under any model (`label_models`)
            met = hit is not None and hit.config.bytes_per_vector <= 48
            found = ("nothing reaches it" if hit is None else
                     f"fewest bytes: {hit.config.bytes_per_vector} B, {hit.config.describe()}, "
                     f"{hit.paired.score:.4f} = {100 * hit.paired.share:.1f}% of "
                     f"{hit.paired.reference:.4f}, frozen on the same seeds "
                     f"({seed_list(hit.paired.seeds)})")
            lines.append(f"- {where}, with rescoring: >= 99% of frozen at <= 48 B "
                         f"({'met' if met else 'missed'}; {found}).")
        losses = []
        for c in group:
            if c.family != "dive" or c.precision != "int8" or c.rescore:
                continue
            base = next((f for f in group if f.method == c.method and f.dim == c.dim
                         and f.precision == "float32" and not f.rescore), None)
            # on the seeds both ran: means over their own seeds scored other queries (an int8
            # run of seed 1 alone "lost" 0.028 where it lost 0.001 on that seed)
            paired = c.against(base) if base is not None else None
            if base is not None and paired is not None:
                fewer = on_fewer_seeds(paired.seeds, c.seeds, base.seeds)
                losses.append((paired.reference - paired.score, c.dim,
                               f" on {seed_list(paired.seeds)}" if fewer else ""))
        if losses:
            worst = max(losses)
            # the largest loss; where int8 scored higher at every d, the smallest gain
            found = (f"scores at most {worst[0]:.4f} nDCG@10 below its float32 output "
                     f"(d={worst[1]}{worst[2]}" if worst[0] > 0 else
                     "scores at or above its float32 output at every d (nearest: "
                     f"{-worst[0]:+.4f} nDCG@10 at d={worst[1]}{worst[2]}")
            lines.append(f"- {where}: int8 of dive's output {found}; target: at most 0.003 "
                         f"below: {'met' if worst[0] <= 0.003 else 'missed'}).")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> None:
        check_outputs(Path(args.docs))  # a file of the user's there: refused before the runs
        run_then_report(args, run, report)

    return guarded_main("frontier.py", args.threads, body)


if __name__ == "__main__":
    sys.exit(main())
