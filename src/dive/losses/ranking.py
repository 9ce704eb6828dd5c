"""Graded pairwise logistic ranking loss (Search-Adaptor's L_rank; SPEC 4.2-4.4).

For each query q with candidate documents scored s_qj (cosines) and graded labels y_qj
(0 for negatives):

    L_rank = sum_q sum_{j, k: y_qj > y_qk} (y_qj - y_qk) * log(1 + exp(s_qk - s_qj))

`reduction="sum"` returns exactly that; `"mean"` (the default) divides it by the number of
ordered pairs (j, k) with y_qj > y_qk in the batch, so its scale does not depend on how many
negatives or queries a batch holds. Candidate lists may be ragged: pad them and pass `mask`
(True = real candidate). Left out: choosing the candidates (mining) and computing the scores.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

__all__ = ["graded_ranking_loss"]

Reduction = Literal["mean", "sum"]


def graded_ranking_loss(
    scores: torch.Tensor,
    grades: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Graded logistic ranking loss over (Q, N) scores and grades; a scalar.

    Returns 0 (with a gradient path) when no pair has different grades.
    """
    if scores.ndim != 2 or grades.shape != scores.shape:
        raise ValueError(
            f"scores and grades must be the same (queries, candidates) shape, got "
            f"{tuple(scores.shape)} and {tuple(grades.shape)}"
        )
    if mask is not None and mask.shape != scores.shape:
        raise ValueError(f"mask must be {tuple(scores.shape)}, got {tuple(mask.shape)}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    grades = grades.to(scores.dtype)
    # (Q, N, N): entry [q, j, k] is the pair "j should rank above k".
    weight = (grades[:, :, None] - grades[:, None, :]).clamp(min=0)
    if mask is not None:
        valid = mask.bool()
        weight = weight * (valid[:, :, None] & valid[:, None, :]).to(weight.dtype)
    pair_loss = F.softplus(scores[:, None, :] - scores[:, :, None])
    total = (weight * pair_loss).sum()
    if reduction == "sum":
        return total
    n_pairs = (weight > 0).sum()
    return total / n_pairs.clamp(min=1).to(total.dtype)
