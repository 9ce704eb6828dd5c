"""Matryoshka-Adaptor's similarity-preservation losses on prefixes (SPEC 4.2).

With e the frozen embeddings, e^ the adapted ones and M a set of prefix lengths (the target
dimensions, usually plus D), cos taken on the first m coordinates of e^:

    L_pair = sum_{m in M} mean_{i != j in batch} | cos(e_i, e_j) - cos(e^_i[:m], e^_j[:m]) |
    L_topk = sum_{m in M} mean_{i, j in NN_k(i)} | cos(e_i, e_j) - cos(e^_i[:m], e^_j[:m]) |

L_pair keeps the global geometry, L_topk the neighbourhoods retrieval depends on; NN_k(i) are
i's nearest neighbours in the *original* space, found by the caller over the whole corpus and
passed in as tensors. The paper writes sums over pairs; we average over pairs (summing over m)
so the scale does not depend on the batch size or k, which keeps "all weights 1" meaningful.
Left out: finding the neighbours, and any weighting of the dimensions in M.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["pairwise_similarity_loss", "prefix_cosine", "topk_similarity_loss"]


def _check_dims(dims: Sequence[int], width: int) -> list[int]:
    dims = [int(m) for m in dims]
    if not dims:
        raise ValueError("dims must name at least one prefix length")
    bad = [m for m in dims if not 0 < m <= width]
    if bad:
        raise ValueError(f"dims must be in 1..{width} (the embedding width), got {bad}")
    return dims


def prefix_cosine(a: torch.Tensor, b: torch.Tensor, m: int) -> torch.Tensor:
    """Cosine of the first m coordinates of a and b, broadcast over leading dimensions."""
    return (F.normalize(a[..., :m], dim=-1) * F.normalize(b[..., :m], dim=-1)).sum(-1)


def pairwise_similarity_loss(
    adapted: torch.Tensor, original: torch.Tensor, dims: Sequence[int]
) -> torch.Tensor:
    """L_pair over all ordered pairs i != j of the batch; a scalar."""
    if adapted.ndim != 2 or adapted.shape != original.shape:
        raise ValueError(
            f"adapted and original must be the same (B, D) shape, got "
            f"{tuple(adapted.shape)} and {tuple(original.shape)}"
        )
    n = adapted.shape[0]
    if n < 2:
        raise ValueError(f"the pairwise loss needs at least 2 items, got {n}")
    dims = _check_dims(dims, adapted.shape[1])
    with torch.no_grad():
        e = F.normalize(original, dim=-1)
        target = e @ e.T
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=adapted.device)
    loss = adapted.new_zeros(())
    for m in dims:
        z = F.normalize(adapted[:, :m], dim=-1)
        loss = loss + (z @ z.T - target)[off_diagonal].abs().mean()
    return loss


def topk_similarity_loss(
    adapted: torch.Tensor,
    adapted_neighbours: torch.Tensor,
    original: torch.Tensor,
    original_neighbours: torch.Tensor,
    dims: Sequence[int],
) -> torch.Tensor:
    """L_topk: anchors (B, D) against their k original-space neighbours (B, k, D); a scalar."""
    if adapted.ndim != 2 or adapted.shape != original.shape:
        raise ValueError(
            f"adapted and original must be the same (B, D) shape, got "
            f"{tuple(adapted.shape)} and {tuple(original.shape)}"
        )
    b, width = adapted.shape
    if (
        adapted_neighbours.ndim != 3
        or adapted_neighbours.shape != original_neighbours.shape
        or adapted_neighbours.shape[0] != b
        or adapted_neighbours.shape[2] != width
    ):
        raise ValueError(
            f"neighbours must both be (B, k, D) = ({b}, k, {width}), got "
            f"{tuple(adapted_neighbours.shape)} and {tuple(original_neighbours.shape)}"
        )
    if b == 0 or adapted_neighbours.shape[1] == 0:
        raise ValueError("the top-k loss needs at least one anchor and one neighbour")
    dims = _check_dims(dims, width)
    with torch.no_grad():
        target = prefix_cosine(original[:, None, :], original_neighbours, width)
    loss = adapted.new_zeros(())
    for m in dims:
        gap = prefix_cosine(adapted[:, None, :], adapted_neighbours, m) - target
        loss = loss + gap.abs().mean()
    return loss
