"""Dev loop for DIVE: fit it beside both PCAs and print nDCG@10 (a script, not a test).

Uses the package's own pieces: `dive.data.load_dataset`, the embeddings store, the protocol's
split (`dive.data.splits.make_split`) and one run (`dive.evaluate.protocol.run_one`), so the
record of how a default was tuned cannot drift from the code it tuned. Two modes keep tuning
honest:
- `--eval dev` (for choosing defaults): `make_split(..., dev=True)` splits the labelled pool
  itself 50/50; labels come from one half and the other half is scored. The protocol's
  evaluation queries of that seed (test split, or the evaluation half) are never read; a
  collection without a train split evaluates other queries at other seeds, which dev runs at
  those seeds do read (`benchmarks/dev_overlap.py`).
- `--eval test` (for reporting only): the protocol's split.

    python benchmarks/dev_dive.py --eval dev --datasets scifact nfcorpus cranfield \\
        --ratios 4 --budgets all --seeds 0 1 2 --spec dive --spec dive:min_gain_z=0

Prints one line per (dataset, d, budget, spec): the mean over seeds, its difference to the
better PCA (the same split), fit seconds and the per-seed scores; then one summary line per
spec (cells within 0.002 of the better PCA, mean gain, worst cell). Every argument, and every
dataset, is checked before the first fit; a bad one is one line, exit status 2. `--records`
appends under the file's lock, by one rename (`script_io.append_records`).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from script_io import (
    append_records,
    check_distinct,
    check_methods,
    check_ratios,
    label_budget,
    script_main,
    use_shared_data,
)

from dive.cli.parsers import _int_at_least
from dive.data import load_dataset, resolve_dataset
from dive.data.splits import make_split, parse_budget
from dive.embed import get_embeddings
from dive.evaluate.protocol import RunTask, run_one
from dive.evaluate.records import read_records


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eval", choices=["dev", "test"], default="dev")
    parser.add_argument("--datasets", nargs="+", default=["scifact", "nfcorpus"])
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--ratios", nargs="+", type=_int_at_least(1), default=[2, 4, 8])
    parser.add_argument("--budgets", nargs="+", type=label_budget, default=["all"])
    parser.add_argument("--seeds", nargs="+", type=_int_at_least(0), default=[0, 1, 2])
    parser.add_argument("--spec", action="append", help="DIVE spec(s); default: dive")
    parser.add_argument("--threads", type=_int_at_least(1), default=1)  # torch refused 0
    parser.add_argument("--verbose", action="store_true", help="print each fit's selection")
    parser.add_argument("--records", type=Path, help="append every fit's full record (JSONL)")
    return parser


def check_args(args: argparse.Namespace, specs: list[str]) -> None:
    """`DiveError` for a bad argument, before the first fit: each met it in its turn, as a
    traceback, after the runs before it."""
    for flag, values in (("--datasets", args.datasets), ("--ratios", args.ratios),
                         ("--budgets", args.budgets), ("--seeds", args.seeds), ("--spec", specs)):
        check_distinct(values, flag)  # a repeated seed was one more value of the mean
    check_methods(specs, "--spec")
    if args.records is not None:
        read_records(args.records)  # a folder or a malformed line there: refused now
    for name in args.datasets:
        resolve_dataset(name)  # found (or downloaded) now, not after the others' runs


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    use_shared_data()
    specs = args.spec or ["dive"]
    check_args(args, specs)

    import torch

    torch.set_num_threads(args.threads)
    gains: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for name in args.datasets:
        dataset = load_dataset(name)
        emb = get_embeddings(dataset, args.model)
        check_ratios(args.ratios, emb.dim)  # floored: 7 gave d=54
        for budget_text in args.budgets:
            budget = parse_budget(budget_text)
            splits = {s: make_split(dataset, budget, s, dev=args.eval == "dev") for s in args.seeds}
            first = splits[args.seeds[0]]
            print(f"== {name} {args.model} ({args.eval}, budget {budget_text}): "
                  f"{len(first.train_ids) + len(first.validation_ids)} labels, "
                  f"{len(first.eval_ids)} scored queries", flush=True)
            for ratio in args.ratios:
                dim = emb.dim // ratio

                def score(spec: str, seed: int, *,
                          task_args: tuple[int, int, int | None] = (dim, ratio, budget),
                          run_args: tuple = (dataset, emb, splits)) -> dict:
                    data, embeddings, by_seed = run_args
                    task = RunTask(spec, *task_args, seed)
                    return run_one(task, data, embeddings, by_seed[seed], args.model, 100)[0]

                floor = np.mean([max(score(m, s)["ndcg@10"] for m in ("pca", "pca-uncentered"))
                                 for s in args.seeds])
                print(f"  d={dim}: best PCA {floor:.4f}", flush=True)
                for spec in specs:
                    records = [score(spec, s) for s in args.seeds]
                    if args.records is not None:
                        append_records(args.records, [{"spec": spec, "eval": args.eval, **r}
                                                      for r in records])
                    values = [r["ndcg@10"] for r in records]
                    mean = float(np.mean(values))
                    gains[spec].append((mean - floor, f"{name} d={dim} n={budget_text}"))
                    seconds = np.mean([r["fit_seconds"] for r in records])
                    print(f"    {spec:<36} {mean:.4f} ({mean - floor:+.4f}) fit {seconds:.1f}s "
                          f"[{' '.join(f'{v:.4f}' for v in values)}]", flush=True)
                    if args.verbose:
                        for r in records:
                            d = r["diagnostics"]
                            print(f"      seed {r['seed']}: start={d.get('start')} "
                                  f"selected={d.get('selected')} choice={d.get('choice')}")
    for spec, cells in gains.items():
        gain = np.array([g for g, _ in cells])
        worst = min(cells)
        print(f"{spec}: {int((gain >= -0.002).sum())}/{len(gain)} cells >= best PCA - 0.002, "
              f"mean gain {gain.mean():+.4f}, worst {worst[0]:+.4f} ({worst[1]})")


if __name__ == "__main__":
    sys.exit(script_main("dev_dive.py", main))
