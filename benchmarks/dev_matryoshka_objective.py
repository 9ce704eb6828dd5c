"""Dev check: what Matryoshka-Adaptor's unsupervised objective makes of a PCA rotation.

Scores two untrained starts with the objective stage 1 of `matryoshka-adaptor-unsup` minimises
(L_pair + L_topk over the prefixes in M, on corpus anchors and their k = 10 nearest
neighbours in the original space; L_rec is 0 for both, as each start is its own original):
the raw prefix (truncation, the paper's start) and the prefix in the corpus's principal-axis
basis (`basis=pca`, the uncentred PCA projection). A lower objective is what the adapter
trains towards; the script prints both per d and whether the objective prefers the start
that retrieves better (nDCG@10 of `truncate` vs `pca-uncentered` is in docs/results.md).

    python benchmarks/dev_matryoshka_objective.py                  # scifact, d = 192..24
    python benchmarks/dev_matryoshka_objective.py --dataset nfcorpus --dims single

Label-free: no query is read. A bad argument is one line, exit status 2. Left out: training
(run `dive evaluate --methods matryoshka-adaptor-unsup:steps=N` for what longer training does
to test nDCG@10).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import argparse  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from script_io import check_distinct, check_ratios, script_main  # noqa: E402

from dive.cli.parsers import _int_at_least, _int_list  # noqa: E402
from dive.compressors.matryoshka_adaptor import target_dims  # noqa: E402
from dive.compressors.pca import principal_axes  # noqa: E402
from dive.data import load_dataset  # noqa: E402
from dive.embed import get_embeddings  # noqa: E402
from dive.evaluate.search import top_k  # noqa: E402
from dive.losses.pairwise_similarity import (  # noqa: E402
    pairwise_similarity_loss,
    topk_similarity_loss,
)

NEIGHBOURS = 10


def objective(x: np.ndarray, anchors: np.ndarray, neighbours: np.ndarray, dims: list[int]) -> float:
    """L_pair + L_topk of the untrained adapter (e^ = e) on embeddings `x`, for prefixes `dims`."""
    e = torch.from_numpy(np.ascontiguousarray(x))
    a, n = e[torch.from_numpy(anchors)], e[torch.from_numpy(neighbours)]
    with torch.no_grad():
        return float(pairwise_similarity_loss(a, a, dims) + topk_similarity_loss(a, n, a, n, dims))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="scifact")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--dims", default="nested", choices=["nested", "single"],
                        help="M: nested (d and every halving of D) or single ({d, D})")
    parser.add_argument("--ratios", type=_int_list(1), default="2,4,8,16")
    parser.add_argument("--anchors", type=_int_at_least(1), default=2048,
                        help="corpus anchors scored")
    parser.add_argument("--seed", type=_int_at_least(0), default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    check_distinct(args.ratios, "--ratios")
    emb = get_embeddings(load_dataset(args.dataset), args.model)
    corpus = emb.corpus
    n, width = corpus.shape
    check_ratios(args.ratios, width)  # floored: 7 gave d=54, and 1000 d=0
    rng = np.random.default_rng(args.seed)
    anchors = np.sort(rng.choice(n, min(args.anchors, n), replace=False))
    # neighbours in the original space (cosine is rotation-invariant: the same for both starts)
    nn_idx, _ = top_k(corpus[anchors], corpus, NEIGHBOURS + 1)
    pairs = zip(nn_idx, anchors, strict=True)
    neighbours = np.stack([row[row != a][:NEIGHBOURS] for row, a in pairs])
    rotated = corpus @ principal_axes(corpus, width)[1].T
    print(f"{args.dataset}: {n} documents, {len(anchors)} anchors, k = {NEIGHBOURS}, "
          f"M = {args.dims}; objective L_pair + L_topk of the untrained start (lower is "
          "what training moves towards)")
    print(f"{'d':>5} {'truncate':>10} {'pca basis':>10}  objective prefers")
    for ratio in args.ratios:
        d = width // ratio
        dims = target_dims(width, d, args.dims)
        raw = objective(corpus, anchors, neighbours, dims)
        pca = objective(rotated, anchors, neighbours, dims)
        print(f"{d:>5} {raw:>10.4f} {pca:>10.4f}  {'pca basis' if pca < raw else 'truncate'}")


if __name__ == "__main__":
    sys.exit(script_main("dev_matryoshka_objective.py", main))
