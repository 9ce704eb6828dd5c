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

from dataclasses import dataclass
from typing import ClassVar

from dive.compressors._baseline import Baseline, BaselineConfig
from dive.compressors.options import Rule


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


@dataclass(frozen=True)
class SMECConfig(BaselineConfig):
    """SMEC's options (SPEC 4.4)."""

    stage_steps: int = 300  # steps per halving stage
    patience: int = 100
    memory_size: int = 2048  # S-XBM FIFO size (items)
    memory_neighbours: int = 10  # S-XBM top-k per item
    weight_xbm: float = 1.0
    weight_rank: float = 1.0
    tau: float = 1.0  # Gumbel-softmax temperature of ADS
    stage_linear: bool = True  # a linear reduction layer per later stage (False: selection only)

    min_batch: ClassVar[int] = 2

    def rules(self) -> list[Rule]:
        return [
            *super().rules(),
            ("stage_steps", self.stage_steps >= 0, ">= 0"),
            ("memory_size", self.memory_size >= 2, ">= 2"),
            ("memory_neighbours", self.memory_neighbours >= 1, ">= 1"),
            ("weight_xbm", self.weight_xbm >= 0, ">= 0"),
            ("weight_rank", self.weight_rank >= 0, ">= 0"),
            ("tau", self.tau > 0, "> 0"),
        ]


class SMEC(Baseline):
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
    config_class = SMECConfig
    fit_path = "dive.compressors._smec_fit:fit_smec"
    options: SMECConfig
