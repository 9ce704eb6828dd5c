"""Head-wise NT-Xent: a contrastive loss across the H views (heads) of each item (SPEC 4.1).

For a batch of B items with H views each, u_i^k (normalised here), every ordered pair of
views of the same item (a, p), a != p, is one positive pair; the negatives are all views of
the *other* items. With s = cosine / tau:

    l(a, p) = -log( exp(s_ap) / (exp(s_ap) + sum_{n: item(n) != item(a)} exp(s_an)) )
    L = mean over all B * H * (H - 1) positive pairs

This is SimCLR's NT-Xent generalised to H views, with the other positives of the anchor left
out of the denominator (each positive pair is its own classification among the negatives).
The loss is symmetric in the heads, so it does not depend on their order. It needs H >= 2
and B >= 2; with one head there is nothing to contrast, which the caller handles.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["headwise_ntxent_loss"]


def headwise_ntxent_loss(views: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent over `views` (B items, H heads, dim); returns a scalar."""
    if views.ndim != 3:
        raise ValueError(f"views must be (items, heads, dim), got shape {tuple(views.shape)}")
    n_items, n_heads, _ = views.shape
    if n_heads < 2:
        raise ValueError(f"head-wise NT-Xent needs at least 2 heads, got {n_heads}")
    if n_items < 2:
        raise ValueError(f"head-wise NT-Xent needs at least 2 items (negatives), got {n_items}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    unit = F.normalize(views, dim=-1)
    flat = unit.reshape(n_items * n_heads, -1)
    logits = flat @ flat.T / temperature  # (BH, BH)
    item = torch.arange(n_items, device=views.device).repeat_interleave(n_heads)
    same = item[:, None] == item[None, :]
    # log of the summed negative terms of each anchor view (stable logsumexp)
    neg_lse = torch.logsumexp(logits.masked_fill(same, float("-inf")), dim=1)
    neg_lse = neg_lse.reshape(n_items, n_heads, 1)
    # the positives are the H x H blocks on the diagonal; only those are materialised again
    pos = torch.einsum("bhd,bkd->bhk", unit, unit) / temperature  # (B, H, H)
    # -log(e^s_ap / (e^s_ap + e^neg_lse)) = softplus(neg_lse - s_ap)
    loss = F.softplus(neg_lse - pos)
    off_diagonal = ~torch.eye(n_heads, dtype=torch.bool, device=views.device)
    return loss[:, off_diagonal].mean()
