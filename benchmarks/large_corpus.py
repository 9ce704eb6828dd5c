"""Fit time and quality on a large corpus: SciFact plus synthetic near-duplicate distractors.

Each method fits on SciFact's corpus with `--distractors` rows added (`speed.with_distractors`:
perturbed copies of real documents, never relevant), with `--labels` labelled queries of the
protocol's split for each seed, and is scored on SciFact's test queries over that whole
corpus. Prints one line per (method, seed) and the means; for the cost of mining hard
negatives at scale (`dive:shortlist=K`).

    python benchmarks/large_corpus.py --methods pca-uncentered,dive,dive:shortlist=500 \\
        --distractors 200000 --seeds 0,1,2

Every argument is checked before the distractors are built (the slow part); a bad one is one
line, exit status 2.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from script_io import check_distinct, check_methods, check_ratios, label_budget, script_main
from speed import _find, with_distractors  # benchmarks/ is on sys.path as a script

from dive.cli.parsers import _int_at_least, _int_list, _method_list
from dive.compressors.registry import make_compressor
from dive.data.beir import load_beir
from dive.data.splits import make_split, parse_budget
from dive.embed import get_embeddings
from dive.evaluate.metrics import ndcg_per_query
from dive.evaluate.protocol import labelled_queries, training_data
from dive.evaluate.search import top_k


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", type=_method_list,
                        default="pca-uncentered,dive,dive:shortlist=500")
    parser.add_argument("--distractors", type=_int_at_least(0), default=200_000)
    parser.add_argument("--labels", type=label_budget, default="64")
    parser.add_argument("--ratio", type=_int_at_least(1), default=4)
    parser.add_argument("--seeds", type=_int_list(0), default="0,1,2")
    parser.add_argument("--data", help="SciFact's BEIR folder (default: $DIVE_DATA/scifact, "
                        "else ../shared)")
    parser.add_argument("--embeddings", help="its all-MiniLM-L6-v2 embeddings folder")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    check_distinct(args.methods, "--methods")
    check_distinct(args.seeds, "--seeds")  # a repeat was printed as a mean over seeds
    check_methods(args.methods, "--methods")
    model = "all-MiniLM-L6-v2"
    dataset = load_beir(_find(args.data, "DIVE_DATA", "beir", "scifact"), name="scifact")
    emb = get_embeddings(dataset, model, progress=False,
                         embeddings_dir=_find(args.embeddings, "DIVE_EMBEDDINGS", "embeddings",
                                              model, "scifact"))
    check_ratios([args.ratio], emb.dim)
    # every split made (a budget past the labelled pool refused) before the distractors
    splits = {seed: make_split(dataset, parse_budget(args.labels), seed) for seed in args.seeds}
    corpus = with_distractors(emb.corpus, args.distractors)
    dim = emb.dim // args.ratio
    rows: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for seed, split in splits.items():
        train = training_data(split, emb)
        test = labelled_queries(split.eval_ids, split.eval_qrels, emb, split.identical_ids)
        for spec in args.methods:
            compressor = make_compressor(spec, dim, seed)
            started = time.perf_counter()
            compressor.fit(corpus, train)
            seconds = time.perf_counter() - started
            ranked, _ = top_k(compressor.transform(test.embeddings), compressor.transform(corpus),
                              10)
            ndcg = float(ndcg_per_query(ranked, test.relevant, k=10).mean())
            rows[spec].append((seconds, ndcg))
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
            print(f"seed {seed} {spec}: fit {seconds:.1f} s, test nDCG@10 {ndcg:.4f} "
                  f"(peak RSS {peak:.2f} GB)", flush=True)
    print(f"\nscifact + {args.distractors} distractors ({corpus.shape[0]} rows), "
          f"{args.labels} labels, d={dim}: means over seeds")
    print("| method | fit seconds | test nDCG@10 |")
    print("|:---|---:|---:|")
    for method, values in rows.items():
        seconds, ndcg = np.mean(values, axis=0)
        print(f"| {method} | {seconds:.1f} | {ndcg:.4f} |")


if __name__ == "__main__":
    sys.exit(script_main("large_corpus.py", main))
