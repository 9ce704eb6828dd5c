"""Dev probe: one DIVE training run's evaluation-half curve at each hard-negative refresh
interval (a script, not a test; the figures behind `mine_every` in docs/methods.md).

    python benchmarks/dev_mining.py --dataset nfcorpus --ratio 8 --mine-every 5 25

Splits the labelled pool itself 50/50 (`make_split(..., dev=True)`, as `dev_dive.py --eval
dev`): one run of one arm (the `dive` grid's hinge arm: lr 1e-3, margin 0.3) trains on one half
from the uncentred PCA start, without selection, and the other half is scored every
`--every` steps. The seed's evaluation queries are never read (other seeds' are, without a
train split: `benchmarks/dev_overlap.py`). A bad argument is one line, exit status 2, before
any training.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np
from script_io import check_distinct, check_ratios, label_budget, script_main, use_shared_data

from dive.cli.parsers import _int_at_least
from dive.compressors._dive_net import initial_heads
from dive.compressors._dive_run import FitContext, Run, pooled_labels
from dive.compressors.dive import DiveConfig
from dive.compressors.pca import principal_axes
from dive.data import load_dataset
from dive.data.splits import make_split, parse_budget
from dive.embed import get_embeddings
from dive.evaluate.protocol import labelled_queries, training_data
from dive.training.labels import Labels
from dive.training.seeding import seeded


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="nfcorpus")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--ratio", type=_int_at_least(1), default=8)
    parser.add_argument("--budget", type=label_budget, default="all")
    parser.add_argument("--seed", type=_int_at_least(0), default=0)
    parser.add_argument("--steps", type=_int_at_least(1), default=150)
    parser.add_argument("--every", type=_int_at_least(1), default=25,
                        help="steps between scored checks")
    parser.add_argument("--mine-every", nargs="+", type=_int_at_least(1), default=[5, 25])
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    check_distinct(args.mine_every, "--mine-every")
    use_shared_data()
    dataset = load_dataset(args.dataset)
    emb = get_embeddings(dataset, args.model)
    check_ratios([args.ratio], emb.dim)  # floored: 7 gave d=54
    split = make_split(dataset, parse_budget(args.budget), args.seed, dev=True)
    labels, _ = pooled_labels(training_data(split, emb), emb.corpus.shape[0])
    scored = Labels.judged(
        labelled_queries(split.eval_ids, split.eval_qrels, emb, split.identical_ids),
        emb.corpus.shape[0], "scored")
    assert labels is not None and scored is not None
    dim = emb.dim // args.ratio
    mean, axes = principal_axes(emb.corpus, dim)
    for mine_every in args.mine_every:
        config = DiveConfig(eval_every=args.every, mine_every=mine_every)
        arm = config.arms()[-1]  # the grid's label-reading hinge arm
        with seeded(args.seed, threads=1) as rng:
            fit = FitContext(emb.corpus, args.seed, config, len(labels))
            heads = initial_heads(emb.corpus, axes, config, rng)
            net = fit.new_net(heads, np.zeros_like(mean))
            start_z = net.encode(fit.corpus)
            start = fit.scores(net, start_z, scored).mean()
            run = Run(fit, net, arm, labels, scored,
                      np.random.default_rng([args.seed, 1]), start_z)
            curve = run.train_to(args.steps).curve()
        points = " ".join(f"{s}:{v:.4f}" for s, v in zip(curve.steps, curve.scores.mean(axis=1),
                                                          strict=True))
        print(f"{args.dataset} d={dim} mine_every={mine_every}: start {start:.4f} | {points}",
              flush=True)


if __name__ == "__main__":
    sys.exit(script_main("dev_mining.py", main))
