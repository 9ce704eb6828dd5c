"""Queries that are themselves documents: a copy of a collection with every query added to
the corpus under its own id (as ArguAna and Quora are), then `dive evaluate` on it.

The evaluation never shows a query its own document (BEIR's ignore_identical_ids); this
checks that the learned fits, which must leave it out too, score as they should. The copy
(BEIR folder and embeddings, the query's own vector as its document's) is written under
`--work`; nothing is encoded. The script only uses the CLI, so it runs on any release.

    python benchmarks/self_retrieval.py --work /tmp/self --methods pca-uncentered,dive \\
        --ratios 4 --budgets 64,all --seeds 0

Its table is read from `--work`/<dataset>-self.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from script_io import script_main

from dive.errors import DataError, DiveError
from dive.evaluate.records import read_records


def build(source: Path, vectors: Path, work: Path, name: str) -> None:
    """`work/beir/name` and `work/emb/<model>/name`: `source` with every query in the corpus."""
    data, emb = work / "beir" / name, work / "emb" / vectors.parent.name / name
    documents = set((vectors / "corpus_ids.txt").read_text().splitlines())
    shared = [q for q in (vectors / "query_ids.txt").read_text().splitlines() if q in documents]
    if shared:  # the copy would hold two documents of one id
        raise DataError(f"{source}: query id {shared[0]!r} is also a document id ({len(shared)} "
                        "are); this check needs a collection whose queries and documents are "
                        "numbered apart")
    shutil.copytree(source / "qrels", data / "qrels", dirs_exist_ok=True)
    shutil.copy(source / "queries.jsonl", data / "queries.jsonl")
    with (data / "corpus.jsonl").open("w") as out:
        out.write((source / "corpus.jsonl").read_text())
        for line in (source / "queries.jsonl").read_text().splitlines():
            query = json.loads(line)
            out.write(json.dumps({"_id": query["_id"], "title": "", "text": query["text"]}) + "\n")
    emb.mkdir(parents=True, exist_ok=True)
    queries = np.load(vectors / "queries.npy")
    np.save(emb / "corpus.npy", np.concatenate([np.load(vectors / "corpus.npy"), queries]))
    np.save(emb / "queries.npy", queries)
    query_ids = (vectors / "query_ids.txt").read_text()
    (emb / "corpus_ids.txt").write_text((vectors / "corpus_ids.txt").read_text() + query_ids)
    shutil.copy(vectors / "query_ids.txt", emb / "query_ids.txt")
    meta = json.loads((vectors / "meta.json").read_text())
    meta["n_corpus"] = int(np.load(emb / "corpus.npy", mmap_mode="r").shape[0])
    (emb / "meta.json").write_text(json.dumps(meta))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="scratch folder")
    parser.add_argument("--dataset", default="scifact")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--methods", default="pca-uncentered,dive")
    parser.add_argument("--ratios", default="4")
    parser.add_argument("--budgets", default="64,all")
    parser.add_argument("--seeds", default="0")
    return parser


def main() -> None:
    from speed import _find  # benchmarks/ is on sys.path when run as a script

    args = build_parser().parse_args()
    name = f"{args.dataset}-self"
    build(_find(None, "DIVE_DATA", "beir", args.dataset),
          _find(None, "DIVE_EMBEDDINGS", "embeddings", args.model, args.dataset), args.work, name)
    results = args.work / f"{name}.jsonl"  # one per dataset: its table is that dataset's
    env = {**os.environ, "DIVE_DATA": str(args.work / "beir"),
           "DIVE_EMBEDDINGS": str(args.work / "emb")}
    dive = Path(sys.executable).with_name("dive")  # the CLI of this environment
    done = subprocess.run([str(dive), "evaluate", "--datasets", name,
                           "--methods", args.methods, "--ratios", args.ratios, "--budgets",
                           args.budgets, "--seeds", args.seeds, "--results", str(results)],
                          env=env)
    if done.returncode:
        raise DiveError(f"dive evaluate on {name} stopped (exit {done.returncode}), above")
    cells: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for r in read_records(results):
        cells[(r["method"], str(r["budget"]), r["dim"])].append(r["ndcg@10"])
    print("| method | budget | d | seeds | nDCG@10 (mean) |")
    print("|:---|:---|---:|---:|---:|")
    for (method, budget, dim), scores in cells.items():
        print(f"| {method} | {budget} | {dim} | {len(scores)} | {np.mean(scores):.4f} |")


if __name__ == "__main__":
    sys.exit(script_main("self_retrieval.py", main))
