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
  and funnels.

Then `docs/frontier.md` and its plots (`docs/img/frontier*.png`) are regenerated from every
record of the file (`dive.report.write_report`, whose frontier section holds the plot, the
best configuration per byte budget and the fewest bytes keeping 95% / 99% of frozen); the page
is generated, never edited by hand. Data come from `$DIVE_DATA` / `$DIVE_EMBEDDINGS` or
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

from quality import (  # noqa: E402
    REPO,
    comma_ints,
    comma_list,
    generated_by,
    guarded_main,
    run_spec,
    run_then_report,
)

DEFAULT_RESULTS = REPO / "benchmarks" / "results" / "frontier.jsonl"
DEFAULT_DOCS = REPO / "docs"
PQ_BYTES = (8, 12, 16, 24, 32, 48, 64)
OPQ_BYTES = (12, 24, 48)  # OPQ trains 10x longer than PQ: the budgets the targets name
ANCHORS = (*(f"faiss-pq:{m}" for m in PQ_BYTES), *(f"faiss-opq:{m}" for m in OPQ_BYTES),
           "faiss-pca-sq8", "faiss-pca-sq4", "st-int8", "st-binary")
STAGES = {
    "cheap": {"methods": ["frozen", "truncate", "pca", "pca-uncentered"],
              "ratios": [2, 4, 8, 16, 32], "anchors": list(ANCHORS)},
    "dive": {"methods": ["dive"], "ratios": [4, 8], "anchors": []},
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--stage", choices=sorted(STAGES), default="cheap",
                   help="which part of the grid to run")
    p.add_argument("--datasets", type=comma_list, default=["scifact", "nfcorpus"])
    p.add_argument("--budgets", type=comma_list, default=["64", "all"],
                   help="label budgets (numbers of training queries, or 'all')")
    p.add_argument("--seeds", type=comma_ints, default=[0, 1, 2], help="random seeds")
    p.add_argument("--ratios", type=comma_ints, default=None,
                   help="ratios D/d (default: the stage's)")
    p.add_argument("--methods", type=comma_list, default=None,
                   help="method specs (default: the stage's)")
    p.add_argument("--anchors", type=comma_list, default=None,
                   help="anchor specs (default: the stage's)")
    p.add_argument("--precisions", type=comma_list, default=["float32", "float16", "int8",
                                                             "binary"])
    p.add_argument("--rescore", type=comma_ints, default=[0, 10], help="funnel factors")
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="embedding model name")
    p.add_argument("--results", default=str(DEFAULT_RESULTS),
                   help="JSONL results file (appended; runs already there are skipped)")
    p.add_argument("--docs", default=str(DEFAULT_DOCS),
                   help="folder for frontier.md (plots go to its img/)")
    p.add_argument("--report-only", action="store_true",
                   help="only regenerate the page from the existing results file")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    return p.parse_args(argv)


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
        precisions=args.precisions,
        rescores=args.rescore,
        anchors=stage["anchors"] if args.anchors is None else args.anchors,
    )
    print(f"methods: {', '.join(spec.methods)}; anchors: {', '.join(spec.anchors)}",
          file=sys.stderr)
    return run_spec(spec, ResultsFile(args.results))


def report(args: argparse.Namespace) -> list[Path]:
    """Regenerate docs/frontier.md and its plots from every record of the results file."""
    from dive.errors import DataError
    from dive.report.build import write_report
    from dive.report.merge import read_results

    results = Path(args.results)
    if not results.is_file():
        raise DataError(f"{results}: no results yet; run a stage first")
    docs = Path(args.docs)
    preamble = (
        generated_by("frontier.py", results, DEFAULT_RESULTS,
                     rerun="a stage of `python benchmarks/frontier.py`")
        + "Quality per byte: every configuration of dive (method x dimension x precision, with "
        "and without funnel rescoring from the full float32 embeddings) against the indexes "
        "users would run instead, at the bytes per vector their first-stage index stores. "
        "Precisions, anchors and funnels: [quantization.md](quantization.md)."
    )
    files = write_report(read_results([results]), docs, markdown_name="frontier.md",
                         csv_name=None, image_dir=docs / "img", title="Quality per byte",
                         preamble=preamble, plot_prefix="frontier_")
    return files.all()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return guarded_main("frontier.py", args.threads, lambda: run_then_report(args, run, report))


if __name__ == "__main__":
    sys.exit(main())
