"""How much of each seed's evaluation half the dev runs of other seeds read (a script).

`make_split(..., dev=True)` never reads its own seed's evaluation queries. On a collection
without a train split, though, every seed draws its own 50/50 split, so a dev run at one seed
reads queries that another seed evaluates: defaults tuned on dev runs over `--seeds` are not
independent of those collections' test figures over the same seeds. A collection with a train
split (SciFact, NFCorpus) reads only its train queries in a dev run, and prints 0.

    python benchmarks/dev_overlap.py
    python benchmarks/dev_overlap.py --datasets cranfield --seeds 0 1 2 3 4 5
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from script_io import script_main, use_shared_data

from dive.data import load_dataset
from dive.data.splits import make_split

DATASETS = ["scifact", "nfcorpus", "cranfield", "cisi", "cacm", "npl", "time"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    use_shared_data()
    for name in args.datasets:
        dataset = load_dataset(name)
        read: set[str] = set()  # every query a dev run over the seeds reads
        evaluated = []
        for seed in args.seeds:
            dev = make_split(dataset, None, seed, dev=True)
            read.update(dev.train_ids, dev.validation_ids, dev.eval_ids)
            evaluated.append(set(make_split(dataset, None, seed).eval_ids))
        shares = ", ".join(f"seed {seed} {len(ids & read)}/{len(ids)}"
                           for seed, ids in zip(args.seeds, evaluated, strict=True))
        print(f"{name}: evaluation queries read by dev runs over seeds "
              f"{' '.join(map(str, args.seeds))}: {shares}")


if __name__ == "__main__":
    sys.exit(script_main("dev_overlap.py", main))
