"""Dev check for the published baselines: nDCG@10 beside both PCAs (a script, not a test).

Runs each baseline (Matryoshka-Adaptor unsupervised and supervised, Search-Adaptor, SMEC) and
the reference rows through `dive.evaluate.protocol.run_grid` on the shared all-MiniLM-L6-v2
embeddings, at ratios 2..16 and label budgets 16 and 64 (seed 0 by default), with a temporary
results file, then prints one table per (dataset, budget): nDCG@10 per method and dimension,
fit seconds and parameter count. Scores are on test queries: for reporting, never for tuning.

    python benchmarks/dev_baselines.py                       # scifact and nfcorpus
    python benchmarks/dev_baselines.py --datasets scifact --ratios 4 --budgets 64 \\
        --methods smec,smec:basis=pca
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from dive.evaluate.protocol import GridSpec, run_grid  # noqa: E402
from dive.evaluate.records import ResultsFile  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REFERENCE = ("truncate", "pca", "pca-uncentered")
BASELINES = ("matryoshka-adaptor-unsup", "matryoshka-adaptor", "search-adaptor", "smec")
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def _dirs(name: str) -> tuple[str, str]:
    beir = Path(os.environ.get("DIVE_DATA", SHARED / "beir"))
    emb = Path(os.environ.get("DIVE_EMBEDDINGS", SHARED / "embeddings")) / "all-MiniLM-L6-v2"
    return str(beir / name), str(emb / name)


def _table(records: list[dict[str, Any]], dataset: str, budget: str) -> None:
    rows = [r for r in records if r["dataset"] == dataset and r["budget"] == budget]
    dims = sorted({r["dim"] for r in rows}, reverse=True)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    by = {(r["method"], r["dim"]): r for r in rows}
    print(f"\n{dataset}, budget {budget}: nDCG@10 (fit s, params)")
    print(f"{'method':40s}" + "".join(f"{d:>22d}" for d in dims))
    for method in methods:
        cells = []
        for d in dims:
            r = by.get((method, d))
            cells.append(
                f"{r['ndcg@10']:.4f} ({r['fit_seconds']:4.1f}s,{r['n_params']:>7d})"
                if r
                else " " * 22
            )
        print(f"{method:40s}" + "".join(f"{c:>22s}" for c in cells))
    pca = {
        d: max(by[(m, d)]["ndcg@10"] for m in ("pca", "pca-uncentered") if (m, d) in by)
        for d in dims
        if any((m, d) in by for m in ("pca", "pca-uncentered"))
    }
    for method in methods:
        if method in REFERENCE:
            continue
        below = [
            d
            for d in dims
            if (method, d) in by and d in pca and by[(method, d)]["ndcg@10"] < pca[d]
        ]
        if below:
            print(f"  {method}: below the better PCA at d = {below}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="scifact,nfcorpus")
    parser.add_argument("--methods", default=",".join(REFERENCE + BASELINES))
    parser.add_argument("--ratios", default="2,4,8,16")
    parser.add_argument("--budgets", default="16,64")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--results", help="results JSONL (default: a temporary file)")
    args = parser.parse_args()
    results_path = Path(args.results or tempfile.mkdtemp(prefix="dev-baselines-"))
    if not args.results:
        results_path = results_path / "results.jsonl"
    results = ResultsFile(results_path)
    methods = [m for m in args.methods.split(",") if m]
    budgets = [int(b) for b in args.budgets.split(",")]
    for dataset in args.datasets.split(","):
        data_dir, emb_dir = _dirs(dataset)
        spec = GridSpec(
            datasets=[data_dir],
            methods=methods,
            ratios=[int(r) for r in args.ratios.split(",")],
            budgets=budgets,
            seeds=[int(s) for s in args.seeds.split(",")],
            model=MODEL,
            embeddings_dir=emb_dir,
        )
        start = time.perf_counter()

        def progress(done: int, total: int, record: dict[str, Any] | None) -> None:
            if record is not None:
                print(
                    f"[{done}/{total}] {record['method']} d={record['dim']} "
                    f"budget={record['budget']} ndcg@10={record['ndcg@10']:.4f} "
                    f"fit={record['fit_seconds']:.1f}s",
                    flush=True,
                )

        records = run_grid(spec, results, progress)
        print(f"{dataset}: {time.perf_counter() - start:.0f} s; results in {results_path}")
        name = records[0]["dataset"] if records else dataset
        for budget in budgets:
            _table(records, name, str(budget))


if __name__ == "__main__":
    main()
