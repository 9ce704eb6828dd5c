"""Self-limiting hinge triplet loss on cosine similarities (DIVE's supervised term, SPEC 4.1).

    L = mean over triplets (q, d+, d-) of  max(0, m - cos(q, d+) + cos(q, d-))

A triplet that already meets the margin contributes zero loss *and zero gradient*, so training
stops moving the space for the queries it already ranks well: the "self-limiting" property.
`soft=True` swaps the hinge for softplus(m - cos(q, d+) + cos(q, d-)), which never reaches zero
gradient; it exists for the ablation that shows why the hinge matters.

Inputs need not be normalised (cosines are computed here). Negatives may be one per triplet,
(n, dim), or several per anchor, (n, k, dim), each paired with the anchor's positive.
Mining the triplets is `dive.training.mining`'s job, not this module's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["active_ratio", "hinge_triplet_loss", "triplet_margins"]


def _check(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> None:
    if anchor.ndim != 2:
        raise ValueError(f"anchor must be (n, dim), got shape {tuple(anchor.shape)}")
    if positive.shape != anchor.shape:
        raise ValueError(
            f"positive must match anchor {tuple(anchor.shape)}, got {tuple(positive.shape)}"
        )
    if negative.ndim == 2:
        ok = negative.shape == anchor.shape
    elif negative.ndim == 3:
        ok = negative.shape[0] == anchor.shape[0] and negative.shape[2] == anchor.shape[1]
    else:
        ok = False
    if not ok:
        raise ValueError(
            f"negative must be (n, dim) or (n, k, dim) with n, dim = {tuple(anchor.shape)}, "
            f"got {tuple(negative.shape)}"
        )
    if anchor.shape[0] == 0:
        raise ValueError("no triplets (n = 0)")


def triplet_margins(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float = 0.1
) -> torch.Tensor:
    """m - cos(q, d+) + cos(q, d-) per triplet: (n,) or (n, k); > 0 means the triplet is active."""
    _check(anchor, positive, negative)
    q = F.normalize(anchor, dim=-1)
    pos = (q * F.normalize(positive, dim=-1)).sum(-1)
    neg_n = F.normalize(negative, dim=-1)
    neg = (q * neg_n).sum(-1) if negative.ndim == 2 else torch.einsum("nd,nkd->nk", q, neg_n)
    if negative.ndim == 3:
        pos = pos[:, None]
    return margin - pos + neg


def hinge_triplet_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    margin: float = 0.1,
    *,
    soft: bool = False,
) -> torch.Tensor:
    """Mean of max(0, m - cos(q, d+) + cos(q, d-)) (or softplus of it when `soft`).

    anchor, positive: (n, dim); negative: (n, dim) or (n, k, dim). Returns a scalar.
    """
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    violation = triplet_margins(anchor, positive, negative, margin)
    per_triplet = F.softplus(violation) if soft else F.relu(violation)
    return per_triplet.mean()


def active_ratio(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float = 0.1
) -> float:
    """Share of triplets with hinge loss > 0 (the self-limiting mechanism made visible)."""
    with torch.no_grad():
        return float((triplet_margins(anchor, positive, negative, margin) > 0).float().mean())
