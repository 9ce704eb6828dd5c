"""`matryoshka-adaptor` and `matryoshka-adaptor-unsup`: Yoon et al., EMNLP 2024 (SPEC 4.2).

A residual MLP adapter e^ = e + f(e) (f = Linear(D, r) -> ReLU -> Linear(r, D), last layer
zero-initialised) is trained so that the *prefixes* e^[:m], m in M, keep the similarities of
the full frozen embeddings; the compressed output is the renormalised prefix e^[:d]. At
inference it is the numpy runtime's relu adapter plus an identity-rows projection.

Unsupervised: L_topk + L_pair + L_rec on corpus batches. Supervised: that stage first, then a
second stage that adds the graded ranking loss on the labelled queries (all weights 1).
Left out: the paper's multi-dimension serving (one fitted model here serves one d, as every
compressor in this package does; M still includes D so the full embedding stays usable).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from dive.compressors._baseline_options import check_basis, check_options, shared_rules
from dive.compressors.base import Compressor, TrainingData
from dive.compressors.runtime import Runtime

logger = logging.getLogger(__name__)


class MatryoshkaAdaptorUnsup(Compressor):
    """Unsupervised Matryoshka-Adaptor: pairwise, top-k and reconstruction losses on the corpus.

    Choices the paper leaves open (SPEC 4.2; reasons in docs/methods.md):
    - hidden width r = D, ReLU (the runtime's relu adapter);
    - M = {d, D}: the target dimension plus the full one;
    - losses averaged over pairs / coordinates instead of summed (scale-free weights of 1);
    - L_topk neighbours (k = 10, original space) found once over up to `max_pool` corpus rows;
    - `basis="pca"` (off by default) takes the prefix in the corpus's principal-axis basis, a
      lossless rotation folded into the runtime; `"identity"` is the paper's raw prefix.
    - steps scaled down for CPU from up to 5000 (patience 500) to `steps` = 600 unsupervised
      plus `supervised_steps` = 300 (patience 200), checked every 50 steps: stage 1 keeps the
      best checkpoint by its own loss on 512 held-out anchors, stage 2 the best by validation
      nDCG@10, checkpoint 0 being the end of stage 1 (no validation queries: the last state);
    - negatives: the sampler DIVE shares, half hard, half random (`hard_fraction`);
    - one torch thread (`threads`): faster than two when other work shares a 2-core machine.
    """

    method = "matryoshka-adaptor-unsup"

    def __init__(
        self,
        dim: int | None = None,
        seed: int = 0,
        *,
        hidden: int | None = None,
        lr: float = 1e-3,
        batch_size: int = 128,
        steps: int = 600,
        supervised_steps: int = 300,
        patience: int = 200,
        eval_every: int = 50,
        neighbours: int = 10,
        basis: str = "identity",
        weight_pair: float = 1.0,
        weight_topk: float = 1.0,
        weight_rec: float = 1.0,
        weight_rank: float = 1.0,
        negatives_per_positive: int = 10,
        hard_fraction: float = 0.5,
        max_pool: int = 16384,
        threads: int = 1,
    ) -> None:
        super().__init__(dim=dim, seed=seed)
        check_basis(self.method, basis)
        check_options(
            self.method,
            [
                *shared_rules(
                    hidden=hidden,
                    lr=lr,
                    batch_size=batch_size,
                    min_batch=2,
                    patience=patience,
                    eval_every=eval_every,
                    negatives_per_positive=negatives_per_positive,
                    hard_fraction=hard_fraction,
                    threads=threads,
                ),
                ("steps", steps, steps >= 0, ">= 0"),
                ("supervised_steps", supervised_steps, supervised_steps >= 0, ">= 0"),
                ("neighbours", neighbours, neighbours >= 1, ">= 1"),
                ("max_pool", max_pool, max_pool >= 2, ">= 2"),
            ]
            + [
                (n, w, w >= 0, ">= 0")
                for n, w in (
                    ("weight_pair", weight_pair),
                    ("weight_topk", weight_topk),
                    ("weight_rec", weight_rec),
                    ("weight_rank", weight_rank),
                )
            ],
        )
        self.hidden = hidden
        self.lr = lr
        self.batch_size = batch_size
        self.steps = steps
        self.supervised_steps = supervised_steps
        self.patience = patience
        self.eval_every = eval_every
        self.neighbours = neighbours
        self.basis = basis
        self.weight_pair = weight_pair
        self.weight_topk = weight_topk
        self.weight_rec = weight_rec
        self.weight_rank = weight_rank
        self.negatives_per_positive = negatives_per_positive
        self.hard_fraction = hard_fraction
        self.max_pool = max_pool
        self.threads = threads

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "hidden": self.hidden,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "steps": self.steps,
            "supervised_steps": self.supervised_steps if self.supervised else 0,
            "patience": self.patience,
            "eval_every": self.eval_every,
            "neighbours": self.neighbours,
            "basis": self.basis,
            "weight_pair": self.weight_pair,
            "weight_topk": self.weight_topk,
            "weight_rec": self.weight_rec,
            "weight_rank": self.weight_rank if self.supervised else 0.0,
            "negatives_per_positive": self.negatives_per_positive,
            "hard_fraction": self.hard_fraction,
            "max_pool": self.max_pool,
        }

    def _fit(self, corpus: np.ndarray, train: TrainingData | None) -> Runtime:
        from dive.compressors._matryoshka_fit import fit_matryoshka

        start = time.perf_counter()
        runtime, diagnostics = fit_matryoshka(self, corpus, train if self.supervised else None)
        diagnostics["train_seconds"] = round(time.perf_counter() - start, 3)
        self.fit_info_.diagnostics.update(diagnostics)
        return runtime


class MatryoshkaAdaptor(MatryoshkaAdaptorUnsup):
    """Supervised Matryoshka-Adaptor: the unsupervised stage, then + graded ranking loss."""

    method = "matryoshka-adaptor"
    supervised = True
