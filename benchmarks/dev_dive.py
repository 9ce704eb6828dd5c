"""Dev loop for DIVE: fit it beside both PCAs and print nDCG@10 (a script, not a test).

Loads the shared all-MiniLM-L6-v2 embeddings and BEIR qrels directly (no embedding model),
takes a label budget the way the protocol does (`dive.data.splits`: a seeded permutation of
the labelled queries, the first n, 20% of them, at least 4, held out for validation, none
below 8 labels), fits, and scores the evaluation queries.

Two evaluation modes keep tuning honest:
- `--eval dev` (for choosing defaults): SciFact has no dev split, so a fixed, seeded 300 of
  its train queries become the evaluation set and labels come from the other 509; NFCorpus
  uses its dev split for evaluation and its train split for labels.
- `--eval test` (for reporting only): labels from the train split, scores on test queries.

    python benchmarks/dev_dive.py --eval dev --datasets scifact nfcorpus --dims 96 \
        --budgets 16 64 --seeds 0 1 2 --spec dive --spec dive:triplet_weight=0
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np

from dive.compressors.base import LabelledQueries, TrainingData
from dive.compressors.registry import make_compressor
from dive.data.splits import n_validation
from dive.evaluate.metrics import ndcg_from_rankings
from dive.evaluate.search import top_k

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
DEV_HOLDOUT = 300  # SciFact train queries set aside as the dev evaluation set
DEV_SEED = 12345


def _dirs() -> tuple[Path, Path]:
    beir = Path(os.environ.get("DIVE_DATA", SHARED / "beir"))
    emb = Path(os.environ.get("DIVE_EMBEDDINGS", SHARED / "embeddings")) / "all-MiniLM-L6-v2"
    return beir, emb


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """query -> doc -> grade (> 0 only); the files are CRLF TSV with a header."""
    out: dict[str, dict[str, int]] = {}
    with path.open(newline="") as handle:
        rows = csv.reader(handle, delimiter="\t")
        next(rows)
        for row in rows:
            if len(row) >= 3 and int(row[2].strip()) > 0:
                out.setdefault(row[0].strip(), {})[row[1].strip()] = int(row[2].strip())
    return out


class Data:
    """One dataset's embeddings, a label pool and an evaluation set for one mode."""

    def __init__(self, name: str, mode: str) -> None:
        beir, emb = _dirs()
        folder = emb / name
        self.name = name
        self.corpus = np.load(folder / "corpus.npy")
        self.corpus_ids = (folder / "corpus_ids.txt").read_text().split()
        queries = np.load(folder / "queries.npy")
        query_ids = (folder / "query_ids.txt").read_text().split()
        self.query_row = {q: i for i, q in enumerate(query_ids)}
        self.queries = queries
        self.doc_row = {d: i for i, d in enumerate(self.corpus_ids)}
        train = read_qrels(beir / name / "qrels" / "train.tsv")
        labelled = sorted(q for q in train if q in self.query_row)
        if mode == "test":
            self.pool, self.pool_qrels = labelled, train
            test = read_qrels(beir / name / "qrels" / "test.tsv")
            self.eval_ids = sorted(q for q in test if q in self.query_row)
            self.eval_qrels = test
        elif (beir / name / "qrels" / "dev.tsv").exists():
            self.pool, self.pool_qrels = labelled, train
            dev = read_qrels(beir / name / "qrels" / "dev.tsv")
            self.eval_ids = sorted(q for q in dev if q in self.query_row)
            self.eval_qrels = dev
        else:
            order = np.random.default_rng(DEV_SEED).permutation(len(labelled))
            held = {labelled[i] for i in order[:DEV_HOLDOUT]}
            self.pool = [q for q in labelled if q not in held]
            self.pool_qrels = train
            self.eval_ids = sorted(held)
            self.eval_qrels = train

    def labelled(self, ids: list[str], qrels: dict[str, dict[str, int]]) -> LabelledQueries:
        rows = [self.query_row[q] for q in ids]
        relevant = tuple(
            {self.doc_row[d]: g for d, g in qrels[q].items() if d in self.doc_row} for q in ids
        )
        return LabelledQueries(self.queries[rows], relevant, tuple(ids))

    def split(self, budget: int | None, seed: int) -> TrainingData:
        """The protocol's split (dive.data.splits.make_split) applied to this label pool."""
        order = np.random.default_rng(seed).permutation(len(self.pool))
        chosen = [self.pool[i] for i in order]
        chosen = chosen if budget is None else chosen[:budget]
        n_val = n_validation(len(chosen))
        train_ids, val_ids = chosen[: len(chosen) - n_val], chosen[len(chosen) - n_val :]
        validation = self.labelled(val_ids, self.pool_qrels) if val_ids else None
        return TrainingData(self.labelled(train_ids, self.pool_qrels), validation)

    def score(self, compressor: object) -> float:
        """nDCG@10 of the evaluation queries; a query never retrieves its own id."""
        evaluation = self.labelled(self.eval_ids, self.eval_qrels)
        transform = compressor.transform  # type: ignore[attr-defined]
        exclude = np.array([self.doc_row.get(q, -1) for q in self.eval_ids], dtype=np.int64)
        ranked, _ = top_k(
            transform(evaluation.embeddings), transform(self.corpus), 10, exclude=exclude
        )
        return ndcg_from_rankings(ranked, evaluation.relevant, k=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eval", choices=["dev", "test"], default="dev")
    parser.add_argument("--datasets", nargs="+", default=["scifact", "nfcorpus"])
    parser.add_argument("--dims", nargs="+", type=int, default=[192, 96, 48, 24])
    parser.add_argument("--budgets", nargs="+", default=["16", "64", "256", "all"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--spec", action="append", help="DIVE spec(s); default: dive")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--verbose", action="store_true", help="print each fit's selection")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    specs = args.spec or ["dive"]
    for name in args.datasets:
        data = Data(name, args.eval)
        print(
            f"== {name} ({args.eval}): {len(data.pool)} label pool, "
            f"{len(data.eval_ids)} eval queries",
            flush=True,
        )
        frozen = make_compressor("frozen", None).fit(data.corpus)
        print(f"frozen {data.score(frozen):.4f}", flush=True)
        for dim in args.dims:
            base = {}
            for method in ("pca", "pca-uncentered"):
                base[method] = data.score(make_compressor(method, dim).fit(data.corpus))
            print(
                f"d={dim}  pca {base['pca']:.4f}  pca-uncentered {base['pca-uncentered']:.4f}",
                flush=True,
            )
            floor = max(base.values())
            for budget_text in args.budgets:
                budget = None if budget_text == "all" else int(budget_text)
                for spec in specs:
                    scores, seconds = [], []
                    for seed in args.seeds:
                        train = data.split(budget, seed)
                        model = make_compressor(spec, dim, seed)
                        start = time.perf_counter()
                        model.fit(data.corpus, train)
                        seconds.append(time.perf_counter() - start)
                        scores.append(data.score(model))
                        if args.verbose:
                            diag = model.fit_info_.diagnostics
                            print(
                                f"    seed {seed}: {scores[-1]:.4f} start={diag.get('start')} "
                                f"selected={diag.get('selected')} drift={diag.get('drift')}",
                                flush=True,
                            )
                    mean = float(np.mean(scores))
                    print(
                        f"  budget {budget_text:>4} {spec:<40} {mean:.4f} "
                        f"(sd {np.std(scores):.4f}; vs best PCA {mean - floor:+.4f}) "
                        f"fit {np.mean(seconds):.1f}s  [{' '.join(f'{s:.4f}' for s in scores)}]",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
