"""Recall@10 of an IVF index on a LanceDB table's compressed column (a script, not a test).

    python benchmarks/lancedb_ivf.py                          # SciFact, dive 384 -> 96, 64 labels
    python benchmarks/lancedb_ivf.py --method pca-uncentered --dim 48

Fits the compressor as `dive fit` does (the dataset's training labels, `--budget`, seed 0),
writes the corpus into a LanceDB table in a temporary folder (ids and full vectors), adds the
compressed column with `compress_table`, and searches it with the evaluation queries through
`dive.integrations.lancedb.search`: flat (exact; checked against the evaluator's `top_k` on the
same vectors), then through IVF indexes LanceDB builds on the column (`IVF_FLAT`, `IVF_PQ`) at
several `nprobes`, and a funnel (IVF first stage, 4 x 10 candidates rescored with the full
vectors). Prints recall@10 against the flat search of the same column, and nDCG@10 on the
evaluation qrels next to the uncompressed baseline. Timings are left out: on a shared 2-CPU
machine they say little.

Needs the shared embeddings (`$DIVE_DATA`, `$DIVE_EMBEDDINGS`) and the extra `lancedb`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from script_io import script_main

import dive
from dive.data import load_dataset
from dive.data.splits import make_split, parse_budget
from dive.embed import get_embeddings
from dive.evaluate.metrics import evaluate_run
from dive.evaluate.search import search as exact_search
from dive.evaluate.search import top_k
from dive.integrations.lancedb import compress_table, import_lancedb, open_table, search


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="scifact")
    parser.add_argument("--method", default="dive")
    parser.add_argument("--dim", type=int, default=96)
    parser.add_argument("--budget", default="64")
    parser.add_argument("--partitions", type=int, default=64, help="IVF partitions")
    parser.add_argument("--nprobes", default="1,2,4,8,16")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    lancedb = import_lancedb()
    import pyarrow as pa
    from lancedb.index import IvfFlat, IvfPq

    dataset = load_dataset(args.dataset)
    emb = get_embeddings(dataset, "all-MiniLM-L6-v2")
    split = make_split(dataset, parse_budget(args.budget), 0)
    started = time.perf_counter()
    model = dive.fit(dataset, method=args.method, dim=args.dim, budget=args.budget,
                     embeddings=emb.meta["source"])
    fit_seconds = time.perf_counter() - started
    queries = emb.query_rows(split.eval_ids)

    def ndcg(ids: list[list[str]]) -> float:
        run = {q: {d: 1.0 / (rank + 1) for rank, d in enumerate(hits)}
               for q, hits in zip(split.eval_ids, ids, strict=True)}
        return evaluate_run(run, split.eval_qrels)["ndcg@10"]

    frozen = exact_search(queries, emb.corpus, split.eval_ids, emb.corpus_ids, k=10)
    print(f"# {dataset.name}: {emb.corpus.shape[0]} documents, {len(split.eval_ids)} evaluation "
          f"queries; {args.method} {emb.dim} -> {args.dim}, budget {args.budget}, seed 0 "
          f"(fit {fit_seconds:.1f} s)")
    print(f"# uncompressed exact search: nDCG@10 "
          f"{evaluate_run(frozen, split.eval_qrels)['ndcg@10']:.4f}")

    with tempfile.TemporaryDirectory(prefix="dive-lancedb-") as tmp:
        db = Path(tmp)
        x = emb.corpus
        lancedb.connect(str(db)).create_table("docs", pa.table({
            "id": emb.corpus_ids,
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1]),
        }))
        compress_table(model, f"lancedb:{db}/docs", f"lancedb:{db}/docs",
                       output_column="small", progress=False)
        table = open_table(f"lancedb:{db}/docs")
        flat = search(table, model, queries, 10, column="small", exact=True)
        rows, _ = top_k(model.transform(queries), model.transform(x), 10)
        same = np.mean([[emb.corpus_ids[r] for r in row] == hits
                        for row, hits in zip(rows.tolist(), flat.ids, strict=True)])
        print(f"# flat search on the compressed column: nDCG@10 {ndcg(flat.ids):.4f}; "
              f"top-10 identical to the evaluator's exact top_k for {same:.1%} of queries")
        print("\n| index | nprobes | recall@10 vs flat | nDCG@10 | nDCG@10, 40 rescored |")
        print("|---|---:|---:|---:|---:|")
        configs = {
            "IVF_FLAT": IvfFlat(distance_type="dot", num_partitions=args.partitions),
            "IVF_PQ": IvfPq(distance_type="dot", num_partitions=args.partitions,
                            num_sub_vectors=args.dim // 8),
        }
        for name, config in configs.items():
            table.create_index("small", config=config, replace=True)
            for nprobes in map(int, args.nprobes.split(",")):
                ivf = search(table, model, queries, 10, column="small", nprobes=nprobes)
                recall = np.mean([len(set(a) & set(b)) / 10
                                  for a, b in zip(ivf.ids, flat.ids, strict=True)])
                funnel = search(table, model, queries, 10, column="small", nprobes=nprobes,
                                rescore_with="vector", candidates=40)
                print(f"| {name} ({args.partitions} partitions) | {nprobes} | {recall:.3f} | "
                      f"{ndcg(ivf.ids):.4f} | {ndcg(funnel.ids):.4f} |")


if __name__ == "__main__":
    sys.exit(script_main("lancedb_ivf.py", main))
