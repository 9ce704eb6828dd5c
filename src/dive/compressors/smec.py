"""`smec`: Sequential Matryoshka Embedding Compression (Zhang et al., EMNLP 2025; SPEC 4.4).

Compresses in halving stages D -> D/2 -> ... -> d (the last stage lands on d when D/d is not a
power of two), each trained with every earlier stage frozen (SMRL). A stage has a layer and an
adaptive dimension selection (ADS) that keeps half of the layer's output: stage 1's layer is a
residual ReLU adapter on the embedding, a later stage's layer another residual block on it
(`stage_layer="adapter"`, the default) or an identity-initialised linear map on the previous
output (`"linear"`) or none. ADS keeps learnable importance scores; training and inference
keep exactly the top-scored dims, and the scores learn through a soft relaxation of that mask
(their own learning rate `score_lr`). Each stage's loss is taken on the new prefix and on the
previous one (L(x[:N/2]) + L(x[:N]), as published), L being the graded ranking loss on the
labelled queries plus the S-XBM term (a FIFO memory of past batches' frozen embeddings; each
item's top-k memory neighbours by frozen similarity anchor the compressed similarities). Each
stage trains once per learning rate of `lr_grid` and keeps the selection's choice on the
validation queries. The residual blocks fold into one runtime adapter (their hidden units side
by side) and the stages after it into one d x D projection. Left out: SMEC's backbone
fine-tuning (the embeddings here are frozen, as for every method in this package).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from dive.compressors._baseline import Baseline, CorpusBatchConfig, halving_dims
from dive.compressors.options import Rule, at_least

StageLayer = Literal["adapter", "linear", "none"]
STAGE_LAYERS: tuple[str, ...] = get_args(StageLayer)


def stage_dims(input_dim: int, dim: int) -> list[int]:
    """Output width of each stage: halve from `input_dim` until `dim` (the last may not halve)."""
    return halving_dims(input_dim, dim)


@dataclass(frozen=True)
class SMECConfig(CorpusBatchConfig):
    """SMEC's options (SPEC 4.4)."""

    stage_steps: int = 300  # steps per halving stage
    patience_steps: int = 100
    memory_size: int = 2048  # S-XBM FIFO size (items)
    memory_neighbours: int = 10  # S-XBM top-k per item
    weight_xbm: float = 1.0
    weight_rank: float = 1.0
    lr_grid: str = "0.001/0.0001"  # layer learning rates the selection tries, per stage
    score_lr: float = 0.05  # learning rate of the ADS scores (they must move to choose dims)
    score_decay: bool = False  # the scores' rate falls linearly to 0 over the stage (settles)
    tau: float = 1.0  # temperature of ADS's soft mask (the straight-through gradient)
    noise: float = 0.0  # Gumbel noise on each training draw's scores (0: train what is kept)
    stage_layer: StageLayer = "adapter"  # a later stage's layer: a residual block, linear, none
    weight_previous: float = 1.0  # weight of the stage loss on the previous prefix
    # label-free S-XBM steps on stage 1 before its supervised training (0: none), as
    # Matryoshka-Adaptor's unsupervised stage precedes its supervised one
    warmup_steps: int = 0

    def rules(self) -> list[Rule]:
        return [
            *super().rules(),
            *at_least(self, 0, "stage_steps"),
            *at_least(self, 2, "memory_size"),
            *at_least(self, 1, "memory_neighbours"),
            # drawn from the memory: a larger value was cut to it without a word
            ("memory_neighbours", self.memory_neighbours < self.memory_size,
             f"< memory_size ({self.memory_size})"),
            *at_least(self, 0, "weight_xbm", "weight_rank"),
            *at_least(self, 0, "score_lr", "tau", strict=True),
            *at_least(self, 0, "noise"),
            ("stage_layer", self.stage_layer in STAGE_LAYERS, f"one of {', '.join(STAGE_LAYERS)}"),
            *at_least(self, 0, "weight_previous"),
            *at_least(self, 0, "warmup_steps"),
        ]


class SMEC(Baseline):
    """SMEC: sequential halving stages, ADS dimension selection, S-XBM memory loss.

    Choices the paper leaves open (reasons in docs/methods.md): residual ReLU blocks (r = D);
    `stage_layer="adapter"` by default, a full nonlinear layer per stage that still folds into
    the runtime (`"linear"` is this package's earlier, cheaper form); ADS scores start at the
    z-scored per-dim energy of the stage input and learn at `score_lr` = 0.05 through the soft
    mask (tau = 1, no Gumbel noise: training keeps the dims inference keeps); S-XBM memory of
    `memory_size` items, k = `memory_neighbours`; ranking loss with 10 negatives per positive
    (half mined, half random), S-XBM and the previous prefix weighted 1; each stage trains once
    per learning rate (1e-3, 1e-4) with validation nDCG@10 every `eval_every` steps, patience
    100, and keeps the selection's (rate, checkpoint) or the stage's start; `stage_steps` steps
    per stage (scaled for CPU). `basis="pca"` runs everything in the principal-axis basis,
    `"select"` picks the better start (off by default). Without labels it trains with S-XBM
    alone and no selection.

    Parameters
    ----------
    dim, seed, config, **options
        Those of every learned method (`LearnedCompressor`), the options being `SMECConfig`'s
        fields; most often changed: `stage_steps=300` (per stage), `stage_layer="adapter"`,
        `lr_grid="0.001/0.0001"`.

    Attributes
    ----------
    options, runtime_, fit_info_
        See `LearnedCompressor`: here `runtime_` holds the stages' residual blocks folded into
        one adapter, the later stages and the kept dims into one projection.

    Examples
    --------
    >>> import numpy as np
    >>> from dive.compressors import make_compressor
    >>> corpus = np.random.default_rng(0).standard_normal((300, 32)).astype(np.float32)
    >>> smec = make_compressor("smec:stage_steps=20", 8)  # a spec, as `dive fit --method` takes
    >>> smec  # doctest: +ELLIPSIS
    SMEC(dim=8, seed=0, ..., stage_steps=20, ...)
    >>> smec.fit(corpus).transform(corpus[:3]).shape  # no labels: S-XBM alone, 32 -> 16 -> 8
    (3, 8)
    """

    method = "smec"
    supervised = True
    config_class = SMECConfig
    fit_path = "dive.compressors._smec_fit:fit_smec"
    options: SMECConfig
