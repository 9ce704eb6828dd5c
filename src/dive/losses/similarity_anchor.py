"""Similarity anchor: keep compressed cosines close to the frozen ones (SPEC 4.1, our choice).

For a batch of B items with compressed vectors z and frozen embeddings e:

    L = mean_{i != j} |cos(z_i, z_j) - cos(e_i, e_j)|
      + mean_i mean_{j in NN_k(i)} |cos(z_i, z_j) - cos(e_i, e_j)|

where NN_k(i) are i's k nearest neighbours *in the batch* by frozen cosine (self excluded;
k is capped at B - 1). The first term keeps the global geometry, the second the
neighbourhoods retrieval depends on. It anchors every item, labelled or not, so a small
labelled set cannot drag the whole space away from the pretrained one.

Not included: neighbours outside the batch (no memory bank) and any weighting by rank.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["similarity_anchor_loss"]


def similarity_anchor_loss(
    compressed: torch.Tensor, frozen: torch.Tensor, neighbours: int = 16
) -> torch.Tensor:
    """Pair term plus k-nearest-neighbour term of |cos(z_i, z_j) - cos(e_i, e_j)|; a scalar."""
    if compressed.ndim != 2 or frozen.ndim != 2:
        raise ValueError(
            f"compressed and frozen must be 2-d (B, dim), got shapes "
            f"{tuple(compressed.shape)} and {tuple(frozen.shape)}"
        )
    if compressed.shape[0] != frozen.shape[0]:
        raise ValueError(
            f"compressed has {compressed.shape[0]} rows but frozen has {frozen.shape[0]}"
        )
    n = compressed.shape[0]
    if n < 2:
        raise ValueError(f"the similarity anchor needs at least 2 items, got {n}")
    if neighbours < 0:
        raise ValueError(f"neighbours must be >= 0, got {neighbours}")
    z = F.normalize(compressed, dim=-1)
    with torch.no_grad():
        e = F.normalize(frozen, dim=-1)
        target = e @ e.T
    gap = (z @ z.T - target).abs()
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=gap.device)
    loss = gap[off_diagonal].mean()
    k = min(neighbours, n - 1)
    if k > 0:
        ranked = target.masked_fill(~off_diagonal, float("-inf"))
        nearest = ranked.topk(k, dim=1).indices  # (n, k)
        loss = loss + gap.gather(1, nearest).mean()
    return loss
