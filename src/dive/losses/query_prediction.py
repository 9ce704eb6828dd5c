"""Search-Adaptor's query-prediction loss (SPEC 4.3).

A predictor p (used only in training) maps each adapted relevant document to the adapted
query; the loss pulls documents and their queries together in the adapted space:

    L_pred = sum_q sum_j y_qj | p(c^_j) - q^ |_1

We average the L1 distance over coordinates and the sum over queries (mean over queries of
sum_j y_qj * mean|p(c^_j) - q^|), for the same scale reason as `reconstruction`. Negatives
(y = 0) and padding contribute nothing. Left out: the predictor itself.
"""

from __future__ import annotations

import torch

__all__ = ["query_prediction_loss"]


def query_prediction_loss(
    predicted: torch.Tensor,
    queries: torch.Tensor,
    grades: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """predicted (Q, N, d) = p(c^_j), queries (Q, d) = q^, grades (Q, N); a scalar."""
    if predicted.ndim != 3 or queries.ndim != 2:
        raise ValueError(
            f"predicted must be (Q, N, d) and queries (Q, d), got "
            f"{tuple(predicted.shape)} and {tuple(queries.shape)}"
        )
    q, n, d = predicted.shape
    if queries.shape != (q, d) or grades.shape != (q, n):
        raise ValueError(
            f"queries must be ({q}, {d}) and grades ({q}, {n}), got "
            f"{tuple(queries.shape)} and {tuple(grades.shape)}"
        )
    if mask is not None and mask.shape != (q, n):
        raise ValueError(f"mask must be ({q}, {n}), got {tuple(mask.shape)}")
    if q == 0:
        raise ValueError("query prediction loss of an empty batch")
    weight = grades.to(predicted.dtype).clamp(min=0)
    if mask is not None:
        weight = weight * mask.to(weight.dtype)
    distance = (predicted - queries[:, None, :]).abs().mean(-1)  # (Q, N)
    return (weight * distance).sum() / q
