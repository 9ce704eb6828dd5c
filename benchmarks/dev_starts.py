"""Dev-only simulation of DIVE's start rules: which PCA start would each rule keep? (a script)

DIVE starts from PCA axes with mu = 0 (uncentred) or the corpus mean (centred). The start
needs no training, so every rule for choosing it can be replayed cheaply on every shared
collection. Tuning stays honest: `make_split(..., dev=True)` takes labels from one half of the
labelled pool and scores the other half; the seed's evaluation queries are never read (other
seeds' are, without a train split: `benchmarks/dev_overlap.py`).

    python benchmarks/dev_starts.py                      # 7 collections, 2/4/8x, budgets 16, all
    python benchmarks/dev_starts.py --datasets cisi time --seeds 0 1 2

Rules (the start each would keep, per seed):
- argmax: the better mean nDCG@10 on the labelled queries (DIVE's previous rule);
- evidence: uncentred unless centred's mean paired gain is > 0 and >= 1 standard error
  (`dive.training.selection.choose`, DIVE's rule now);
- evidence@100, evidence@1000: the same rule on nDCG@100 / @1000
  (`dive:start_score=ndcg:start_depth=100`);
- log-rank: the evidence rule on each query's mean -log(rank) of its relevant documents in the
  whole corpus (every relevant document counts, however deep: less noise than nDCG@10);
- log-rank-flips: the log-rank rule whose gain must also beat what random sign flips of the
  per-query gains reach (`choose(..., flips=2000)`: a randomisation test, exact when the
  paired differences are symmetric, where the standard error trusts 16 heavy-tailed ones);
- half: mu = half the corpus mean, a hedge between the two;
- fidelity: the start that keeps more of the full model's top-10 corpus neighbours of the
  labelled queries (label-free);
- corel: the evidence rule on each labelled query's nDCG@10 averaged with that of its relevant
  documents used as queries for each other (more comparisons from the same labels);
- pooled: the evidence rule on each labelled query's nDCG@10 averaged over every ratio run
  (whether centring helps is a property of the collection and model more than of d);
- log-rank@Z, for each Z in `--bars` (none by default): the log-rank rule with a bar of Z
  standard errors in place of `min_gain_z = 1` (uncentred PCA, the default start, is the
  better one on most collections: should leaving it need more evidence?).
Prints one line per (collection, ratio, budget): both starts' dev scores, each rule's loss to
the better start (mean over seeds); then, per rule, the cells within 0.002 of the better start,
the mean and the worst loss. Every argument, and every dataset, is checked before the first
cell; a bad one is one line, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from script_io import check_distinct, check_ratios, label_budget, script_main, use_shared_data

from dive.arrays import l2_normalize
from dive.cli.parsers import _int_at_least
from dive.compressors.base import LabelledQueries
from dive.compressors.pca import principal_axes
from dive.data import load_dataset, resolve_dataset
from dive.data.splits import make_split, parse_budget
from dive.embed import get_embeddings
from dive.evaluate.metrics import ndcg_per_query
from dive.evaluate.protocol import labelled_queries
from dive.evaluate.search import top_k
from dive.training.gate import log_rank_scores, validation_scores
from dive.training.selection import Curve, choose

DATASETS = ["scifact", "nfcorpus", "cranfield", "cisi", "cacm", "npl", "time"]
RULES = (
    "argmax", "evidence", "evidence@100", "evidence@1000", "log-rank", "log-rank-flips", "half",
    "fidelity", "corel", "pooled",
)
SHIFTS = {"u": 0.0, "c": 1.0, "half": 0.5}  # mu as a multiple of the corpus mean


Encoder = Callable[[np.ndarray, str], np.ndarray]


def per_query(
    queries: LabelledQueries,
    encode: Callable[[np.ndarray, str], np.ndarray],
    start: str,
    corpus: dict[str, np.ndarray],
    k: int = 10,
) -> np.ndarray:
    """nDCG@10 of each query with at least one relevant document, under `start`."""
    keep = [i for i, rel in enumerate(queries.relevant) if rel]
    relevant = [queries.relevant[i] for i in keep]
    return validation_scores(encode(queries.embeddings[keep], start), corpus[start], relevant, k)


def log_rank(
    queries: LabelledQueries, encode: Encoder, start: str, corpus: dict[str, np.ndarray]
) -> np.ndarray:
    """Mean -log(rank) of each query's relevant documents under `start`, as DIVE's
    `start_score=log-rank` reads them (`log_rank_scores`), for queries with one."""
    keep = [i for i, rel in enumerate(queries.relevant) if rel]
    relevant = [queries.relevant[i] for i in keep]
    return log_rank_scores(encode(queries.embeddings[keep], start), corpus[start], relevant)


def corelevant(queries: LabelledQueries, corpus: np.ndarray, k: int = 10) -> np.ndarray:
    """Per query with a relevant document: its nDCG@10 averaged with the mean nDCG@10 of its
    relevant documents each used as a query for the others (itself excluded), when it has two
    or more: more paired comparisons from the same labels, one number per query."""
    out = []
    for rel in (r for r in queries.relevant if r):
        docs = [j for j, g in rel.items() if g > 0]
        if len(docs) < 2:
            out.append(np.nan)
            continue
        ranked, _ = top_k(corpus[docs], corpus, k, exclude=np.array(docs))
        others = [{j: g for j, g in rel.items() if j != r} for r in docs]
        out.append(float(ndcg_per_query(ranked, others, k=k).mean()))
    return np.array(out)


def pca_starts(corpus: np.ndarray, dim: int) -> tuple[Encoder, dict[str, np.ndarray]]:
    """The PCA encoder at `dim` for every shift in SHIFTS, and the corpus under each."""
    mean, axes = principal_axes(corpus, dim)

    def encode(x: np.ndarray, s: str) -> np.ndarray:
        return l2_normalize((x - SHIFTS[s] * mean) @ axes.T)

    return encode, {s: encode(corpus, s) for s in SHIFTS}


def pooled_pick(dataset: Any, emb: Any, budget: str, seed: int,
                starts: dict[int, tuple[Encoder, dict[str, np.ndarray]]]) -> str:
    """The evidence rule on each labelled query's gain averaged over every ratio's PCA."""
    split = make_split(dataset, parse_budget(budget), seed, dev=True)
    labelled = labelled_queries(split.train_ids + split.validation_ids, split.label_qrels, emb,
                                split.identical_ids)
    u, c = (np.mean([per_query(labelled, encode, s, corpus) for encode, corpus in
                     starts.values()], axis=0) for s in ("u", "c"))
    return "c" if choose(u, [Curve((0,), c[None])], 1.0).candidate == 0 else "u"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--ratios", nargs="+", type=_int_at_least(1), default=[2, 4, 8])
    parser.add_argument("--budgets", nargs="+", type=label_budget, default=["16", "all"])
    parser.add_argument("--seeds", nargs="+", type=_int_at_least(0), default=[0, 1, 2, 3, 4])
    parser.add_argument("--bars", nargs="*", type=float, default=[],
                        help="also the log-rank rule at these bars (standard errors)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    rules = (*RULES, *(f"log-rank@{z:g}" for z in args.bars))
    use_shared_data()
    for flag, values in (("--datasets", args.datasets), ("--ratios", args.ratios),
                         ("--budgets", args.budgets), ("--seeds", args.seeds),
                         ("--bars", args.bars)):
        check_distinct(values, flag)  # a repeated seed was one more value of the mean
    for name in args.datasets:
        resolve_dataset(name)  # found (or downloaded) now, not after the others' cells
    losses: dict[str, list[float]] = defaultdict(list)
    for name in args.datasets:
        dataset = load_dataset(name)
        emb = get_embeddings(dataset, args.model)
        check_ratios(args.ratios, emb.dim)  # floored: 7 gave d=54
        starts = {ratio: pca_starts(emb.corpus, emb.dim // ratio) for ratio in args.ratios}
        pooled = {
            (budget, seed): pooled_pick(dataset, emb, budget, seed, starts)
            for budget in args.budgets for seed in args.seeds
        }
        for ratio in args.ratios:
            encode, corpus = starts[ratio]
            for budget in args.budgets:
                dev: dict[str, list[float]] = defaultdict(list)
                for seed in args.seeds:
                    split = make_split(dataset, parse_budget(budget), seed, dev=True)
                    labelled = labelled_queries(
                        split.train_ids + split.validation_ids, split.label_qrels, emb,
                        split.identical_ids,
                    )
                    scored = labelled_queries(split.eval_ids, split.eval_qrels, emb,
                                              split.identical_ids)

                    on_labels = {s: per_query(labelled, encode, s, corpus) for s in ("u", "c")}
                    on_dev = {s: float(per_query(scored, encode, s, corpus).mean()) for s in SHIFTS}
                    centred = Curve((0,), on_labels["c"][None])
                    evidence = choose(on_labels["u"], [centred], 1.0).candidate == 0
                    deep = {}
                    for k in (100, 1000):
                        u, c = (per_query(labelled, encode, s, corpus, k) for s in ("u", "c"))
                        deep[k] = choose(u, [Curve((0,), c[None])], 1.0).candidate == 0
                    u, c = (log_rank(labelled, encode, s, corpus) for s in ("u", "c"))
                    by_rank = choose(u, [Curve((0,), c[None])], 1.0).candidate == 0
                    by_flips = choose(u, [Curve((0,), c[None])], 1.0, flips=2000).candidate == 0
                    neighbours, _ = top_k(labelled.embeddings, emb.corpus, 10)
                    full = [{int(r): 1 for r in row} for row in neighbours]
                    kept = {
                        s: validation_scores(encode(labelled.embeddings, s), corpus[s], full).mean()
                        for s in ("u", "c")
                    }
                    mixed = {}
                    for s in ("u", "c"):
                        docs = corelevant(labelled, corpus[s])
                        mixed[s] = np.where(np.isnan(docs), on_labels[s],
                                            0.5 * (on_labels[s] + np.nan_to_num(docs)))
                    corel = choose(mixed["u"], [Curve((0,), mixed["c"][None])], 1.0)
                    picks = {
                        "argmax": "c" if on_labels["c"].mean() > on_labels["u"].mean() else "u",
                        "evidence": "c" if evidence else "u",
                        "evidence@100": "c" if deep[100] else "u",
                        "evidence@1000": "c" if deep[1000] else "u",
                        "log-rank": "c" if by_rank else "u",
                        "log-rank-flips": "c" if by_flips else "u",
                        "half": "half",
                        "fidelity": "c" if kept["c"] > kept["u"] else "u",
                        "corel": "c" if corel.candidate == 0 else "u",
                        "pooled": pooled[budget, seed],
                    }
                    for z in args.bars:
                        leave = choose(u, [Curve((0,), c[None])], z).candidate == 0
                        picks[f"log-rank@{z:g}"] = "c" if leave else "u"
                    for s in ("u", "c"):
                        dev[s].append(on_dev[s])
                    for rule, pick in picks.items():
                        dev[rule].append(on_dev[pick])
                better = max(np.mean(dev["u"]), np.mean(dev["c"]))
                line = (f"{name:9} {ratio}x {budget:>3}: uncentred {np.mean(dev['u']):.4f} "
                        f"centred {np.mean(dev['c']):.4f} |")
                for rule in rules:
                    loss = float(np.mean(dev[rule]) - better)
                    losses[rule].append(loss)
                    line += f" {rule} {loss:+.4f}"
                print(line, flush=True)
    for rule in rules:
        values = np.array(losses[rule])
        print(f"{rule:9}: {int((values >= -0.002).sum())}/{values.size} cells within 0.002 of "
              f"the better start, mean {values.mean():+.4f}, worst {values.min():+.4f}")


if __name__ == "__main__":
    sys.exit(script_main("dev_starts.py", main))
