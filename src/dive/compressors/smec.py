"""`smec`: Sequential Matryoshka Embedding Compression (Zhang et al., EMNLP 2025; SPEC 4.4).

Compresses in halving stages D -> D/2 -> ... -> d (the last stage lands on d when D/d is not a
power of two). Stage 1 trains a residual ReLU adapter on the full embedding and an adaptive
dimension selection (ADS) that keeps D/2 of its dims; each later stage trains a new linear
reduction layer (identity-initialised) on the previous stage's output and its own ADS, with
every earlier stage frozen (SMRL: one reduction learned at a time). ADS keeps learnable
importance scores and selects dims by Gumbel top-k with a straight-through gradient; at
inference it keeps exactly the top-scored dims. Each stage's loss is the graded ranking loss
on the labelled queries plus the S-XBM term (a FIFO memory of past batches' frozen
embeddings; each item's top-k memory neighbours by frozen similarity anchor the compressed
similarities). Everything is linear after the adapter, so the fitted model folds into the
runtime's adapter plus one d x D projection. Left out: SMEC's backbone fine-tuning (the
embeddings here are frozen, as for every method in this package).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from dive.compressors._baseline_options import check_basis, check_options, shared_rules
from dive.compressors.base import Compressor, TrainingData
from dive.compressors.runtime import Runtime


def stage_dims(input_dim: int, dim: int) -> list[int]:
    """Output width of each stage: halve from `input_dim` until `dim` (the last may not halve)."""
    if not 0 < dim <= input_dim:
        raise ValueError(f"dim must be in 1..{input_dim}, got {dim}")
    dims: list[int] = []
    width = input_dim
    while width > dim:
        width = max(dim, width // 2)
        dims.append(width)
    return dims


class SMEC(Compressor):
    """SMEC: sequential halving stages, ADS dimension selection, S-XBM memory loss.

    Choices the paper leaves open (reasons in docs/methods.md): a residual ReLU adapter (r = D)
    as stage 1's trainable layer and an identity-initialised linear layer per later stage (the
    "reduction" each stage learns); ADS scores initialised from the z-scored per-dim energy of
    the stage input (so the start keeps the high-variance dims, not a random half), tau = 1;
    S-XBM memory of `memory_size` items, k = `memory_neighbours`; ranking loss with 10
    negatives per positive (half mined, half random) and S-XBM weighted 1; each stage gated on
    validation nDCG@10 (checkpoint 0 = the stage's start), `stage_steps` steps per stage
    (scaled for CPU). `stage_linear=False` makes later stages pure selection. `basis="pca"`
    runs everything in the principal-axis basis (off by default). Without labels it trains
    with S-XBM alone and no gate.
    """

    method = "smec"
    supervised = True

    def __init__(
        self,
        dim: int | None = None,
        seed: int = 0,
        *,
        hidden: int | None = None,
        lr: float = 1e-3,
        batch_size: int = 128,
        stage_steps: int = 300,
        patience: int = 100,
        eval_every: int = 25,
        memory_size: int = 2048,
        memory_neighbours: int = 10,
        weight_xbm: float = 1.0,
        weight_rank: float = 1.0,
        tau: float = 1.0,
        stage_linear: bool = True,
        negatives_per_positive: int = 10,
        hard_fraction: float = 0.5,
        basis: str = "identity",
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
                ("stage_steps", stage_steps, stage_steps >= 0, ">= 0"),
                ("memory_size", memory_size, memory_size >= 2, ">= 2"),
                ("memory_neighbours", memory_neighbours, memory_neighbours >= 1, ">= 1"),
                ("weight_xbm", weight_xbm, weight_xbm >= 0, ">= 0"),
                ("weight_rank", weight_rank, weight_rank >= 0, ">= 0"),
                ("tau", tau, tau > 0, "> 0"),
                ("stage_linear", stage_linear, isinstance(stage_linear, bool), "true or false"),
            ],
        )
        self.hidden = hidden
        self.lr = lr
        self.batch_size = batch_size
        self.stage_steps = stage_steps
        self.patience = patience
        self.eval_every = eval_every
        self.memory_size = memory_size
        self.memory_neighbours = memory_neighbours
        self.weight_xbm = weight_xbm
        self.weight_rank = weight_rank
        self.tau = tau
        self.stage_linear = stage_linear
        self.negatives_per_positive = negatives_per_positive
        self.hard_fraction = hard_fraction
        self.basis = basis
        self.threads = threads

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "hidden": self.hidden,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "stage_steps": self.stage_steps,
            "patience": self.patience,
            "eval_every": self.eval_every,
            "memory_size": self.memory_size,
            "memory_neighbours": self.memory_neighbours,
            "weight_xbm": self.weight_xbm,
            "weight_rank": self.weight_rank,
            "tau": self.tau,
            "stage_linear": self.stage_linear,
            "negatives_per_positive": self.negatives_per_positive,
            "hard_fraction": self.hard_fraction,
            "basis": self.basis,
        }

    def _fit(self, corpus: np.ndarray, train: TrainingData | None) -> Runtime:
        from dive.compressors._smec_fit import fit_smec

        start = time.perf_counter()
        runtime, diagnostics = fit_smec(self, corpus, train)
        diagnostics["train_seconds"] = round(time.perf_counter() - start, 3)
        self.fit_info_.diagnostics.update(diagnostics)
        return runtime
