"""Torch building blocks of the published baselines (Matryoshka-Adaptor, Search-Adaptor, SMEC).

Imported only from the baselines' fit paths, so `import dive.compressors` and loading a saved
model never import torch. Holds SMEC's adaptive dimension selection, the
optional change of basis and its fold into the runtime, and `Supervision`, the glue between
the labelled queries and `dive.training` (mining, candidates, validation gate) that the three
baselines share. Left out: the losses (`dive.losses`) and the loop (`dive.training.loop`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from dive.compressors._baseline import BaselineConfig
from dive.compressors.base import TrainingData
from dive.compressors.pca import principal_axes
from dive.compressors.runtime import Adapter, Runtime
from dive.training.batches import RelevanceIndex
from dive.training.candidates import ranking_candidates
from dive.training.gate import ValidationGate, validation_scores
from dive.training.mining import NegativePools, mine_pools

Encoder = Callable[[torch.Tensor], torch.Tensor]


class AdaptiveSelection(nn.Module):
    """SMEC's adaptive dimension selection (ADS): keep `keep` of `width` dims by learned scores.

    `masks()` gives a training step two masks over the `width` dims. `hard`: 0/1, exactly the
    `keep` top-scored dims, what inference keeps (the model trains on it, so training and
    inference see the same dims). `soft`: sigmoid((score - t) / tau), t halfway between the
    last kept and the first dropped score, the relaxation the scores learn through: a loss
    on the hard-masked output gives a dropped dim no gradient (a similarity's product terms
    vanish on both of its sides), the same loss on the soft-masked output tells each score
    whether its dim should weigh more. `noise > 0` perturbs each draw's scores with Gumbel
    noise of that scale (exploration, at the price of training on other dims than inference
    keeps). Kept dims stay in index order.
    """

    def __init__(self, width: int, keep: int, init_scores: torch.Tensor, tau: float = 1.0) -> None:
        super().__init__()
        if not 0 < keep <= width:
            raise ValueError(f"keep must be in 1..{width}, got {keep}")
        if init_scores.shape != (width,):
            raise ValueError(f"init_scores must be ({width},), got {tuple(init_scores.shape)}")
        if not tau > 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        self.width = width
        self.keep = keep
        self.tau = tau
        self.scores = nn.Parameter(init_scores.detach().clone().to(torch.float32))

    def selected(self) -> torch.Tensor:
        """Indices kept at inference (sorted)."""
        return torch.sort(torch.topk(self.scores.detach(), self.keep).indices).values

    def masks(
        self, generator: torch.Generator | None = None, noise: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(hard 0/1 mask, soft mask with the scores' gradient), each (width,).

        `noise` > 0 (with a `generator`) draws both from Gumbel-perturbed scores.
        """
        scores: torch.Tensor = self.scores
        if noise > 0 and generator is not None:
            uniform = torch.rand(scores.shape, generator=generator).clamp(1e-9, 1 - 1e-9)
            scores = scores - noise * torch.log(-torch.log(uniform))
        if self.keep == self.width:
            return torch.ones_like(scores), torch.ones_like(scores)
        fixed = scores.detach()
        kept = torch.topk(fixed, self.keep).indices
        ranked = torch.topk(fixed, self.keep + 1).values
        threshold = 0.5 * (ranked[-2] + ranked[-1])
        hard = torch.zeros_like(fixed).index_fill_(0, kept, 1.0)
        return hard, torch.sigmoid((scores - threshold) / self.tau)

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """The kept dims of `x` (inference: no gradient reaches the scores)."""
        return x[..., self.selected()]


def change_of_basis(
    corpus: np.ndarray, basis: str
) -> tuple[np.ndarray | None, Callable[[np.ndarray], torch.Tensor]]:
    """(R, rotate): the D x D orthogonal basis the prefix is taken in (None: the raw prefix)
    and the map from numpy embeddings to tensors in that basis."""
    rot = None if basis == "identity" else principal_axes(corpus, corpus.shape[1])[1]

    def rotate(v: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(v if rot is None else np.ascontiguousarray(v @ rot.T))

    return rot, rotate


def fold(adapter: Adapter, rot: np.ndarray | None, projection: np.ndarray) -> Runtime:
    """The runtime of `projection @ (u + f(u))` with u = R x (u = x when `rot` is None).

    With R orthogonal, R x + f(R x) = R (x + R^T f(R x)): the adapter's first layer absorbs R,
    its last layer R^T, and the projection becomes `projection @ R`. `projection` (d, D) acts
    on the adapted embedding in the training basis (identity rows for a prefix).
    """
    input_dim = projection.shape[1]
    if rot is None:
        return Runtime(input_dim, adapter=adapter, projection=np.ascontiguousarray(projection))
    folded = Adapter(
        w1=np.ascontiguousarray(adapter.w1 @ rot, dtype=np.float32),
        b1=adapter.b1,
        w2=np.ascontiguousarray(rot.T @ adapter.w2, dtype=np.float32),
        b2=np.ascontiguousarray(rot.T @ adapter.b2, dtype=np.float32),
        activation=adapter.activation,
    )
    return Runtime(
        input_dim, adapter=folded, projection=np.ascontiguousarray(projection @ rot, np.float32)
    )


def compress(encode: Encoder, x: torch.Tensor, chunk: int = 8192) -> np.ndarray:
    """`encode` applied to `x` in chunks without gradients, as float32 numpy."""
    with torch.no_grad():
        parts = [encode(x[i : i + chunk]) for i in range(0, x.shape[0], chunk)]
    return np.ascontiguousarray(torch.cat(parts).numpy(), dtype=np.float32)


def scatter_candidates(
    values: torch.Tensor, inverse: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """(B, N, k) from values of the distinct candidate rows; zeros where `mask` is False."""
    out = values.new_zeros((*mask.shape, values.shape[-1]))
    out[mask] = values[inverse]
    return out


def candidate_scores(
    z_q: torch.Tensor, z_unique: torch.Tensor, inverse: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """(B, N) scores of each query (`z_q`, (B, d)) with its real candidates, zeros for padding.

    `z_unique` holds the distinct candidate rows and `inverse` maps `rows[mask]` onto them
    (`torch.unique(..., return_inverse=True)`): one (B, U) product and a gather, instead of
    scattering (B, N, d) candidate vectors.
    """
    sims = z_q @ z_unique.T
    out = sims.new_zeros(mask.shape)
    out[mask] = sims[mask.nonzero()[:, 0], inverse]
    return out


def map_candidates(
    fn: Callable[[torch.Tensor], torch.Tensor], rows: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """(B, N, k): `fn(corpus rows)` for each real candidate, zeros for padding.

    Each distinct row goes through `fn` once, however many queries share it and however much
    padding the batch holds: the adapter's cost follows the real candidates only.
    """
    unique, inverse = torch.unique(rows[mask], return_inverse=True)
    return scatter_candidates(fn(unique), inverse, mask)


def make_gate(every: int, patience_steps: int) -> ValidationGate:
    """The shared gate, with the papers' patience in steps turned into checks."""
    return ValidationGate(every=every, patience=max(1, math.ceil(patience_steps / every)))


def snapshot(module: torch.nn.Module) -> Callable[[], Any]:
    return lambda: copy.deepcopy(module.state_dict())


class Supervision:
    """Labelled queries as the baselines train on them: candidates, mining and validation.

    `rotate` maps numpy embeddings to the training basis (tensors). Hard negatives come from
    the current model (`refresh`) via `dive.training.mining`, candidates via
    `dive.training.candidates`; `scores` is each validation query's nDCG@10.
    """

    def __init__(
        self,
        train: TrainingData | None,
        rotate: Callable[[np.ndarray], torch.Tensor],
        n_corpus: int,
        config: BaselineConfig,
        *,
        band: int = 50,
        max_positives: int = 8,
    ) -> None:
        self.labels = train.train if train is not None and len(train.train) else None
        val = train.validation if train is not None else None
        self.validation = val if self.labels is not None and val is not None and len(val) else None
        self.queries = rotate(self.labels.embeddings) if self.labels is not None else None
        self.val_queries = rotate(self.validation.embeddings) if self.validation else None
        self.relevance = (
            RelevanceIndex.from_relevant(self.labels.relevant) if self.labels is not None else None
        )
        self.n_corpus = n_corpus
        self.band = band
        self.max_positives = max_positives
        self.negatives_per_positive = config.negatives_per_positive
        self.hard_fraction = config.hard_fraction
        self.pools: NegativePools | None = None

    @property
    def n_queries(self) -> int:
        return 0 if self.labels is None else len(self.labels)

    def refresh(self, encode: Encoder, corpus: torch.Tensor) -> None:
        """Re-mine hard negatives from the current model's ranking."""
        if self.labels is None or self.queries is None:
            return
        self.pools = mine_pools(
            compress(encode, self.queries),
            compress(encode, corpus),
            self.labels.relevant,
            band=self.band,
            index=self.relevance,
        )

    def batch(
        self, size: int, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(query embeddings (B, D), candidate rows (B, N), grades (B, N), mask (B, N))."""
        if self.queries is None or self.relevance is None or self.pools is None:
            raise RuntimeError("no labelled queries, or refresh() was not called")
        qi = rng.choice(self.n_queries, min(size, self.n_queries), replace=False)
        cand = ranking_candidates(
            qi,
            self.relevance,
            self.pools,
            self.n_corpus,
            rng,
            max_positives=self.max_positives,
            negatives_per_positive=self.negatives_per_positive,
            hard_fraction=self.hard_fraction,
        )
        return (
            self.queries[torch.from_numpy(qi)],
            torch.from_numpy(cand.rows),
            torch.from_numpy(cand.grades),
            torch.from_numpy(cand.mask),
        )

    def scores(self, encode: Encoder, corpus: torch.Tensor) -> np.ndarray:
        """nDCG@10 of each validation query under `encode` (float64; empty without them)."""
        if self.validation is None or self.val_queries is None:
            return np.zeros(0)
        return validation_scores(
            compress(encode, self.val_queries), compress(encode, corpus), self.validation.relevant
        )
