"""Head-wise NT-Xent against a direct loop, and its symmetries."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dive.losses import headwise_ntxent_loss


def _reference(views: torch.Tensor, tau: float) -> float:
    """The docstring's formula, one positive pair at a time."""
    u = F.normalize(views.double(), dim=-1)
    n_items, n_heads, _ = u.shape
    terms = []
    for i in range(n_items):
        for a in range(n_heads):
            negatives = sum(
                math.exp(float(u[i, a] @ u[j, b]) / tau)
                for j in range(n_items)
                if j != i
                for b in range(n_heads)
            )
            for p in range(n_heads):
                if p == a:
                    continue
                pos = math.exp(float(u[i, a] @ u[i, p]) / tau)
                terms.append(-math.log(pos / (pos + negatives)))
    return sum(terms) / len(terms)


@pytest.mark.parametrize(("n_items", "n_heads", "tau"), [(3, 2, 0.5), (4, 3, 0.1), (2, 4, 1.0)])
def test_equals_loop_reference(n_items: int, n_heads: int, tau: float) -> None:
    views = torch.randn(n_items, n_heads, 5, generator=torch.Generator().manual_seed(n_items))
    assert headwise_ntxent_loss(views, tau).item() == pytest.approx(
        _reference(views, tau), rel=1e-5
    )


def test_does_not_depend_on_head_or_item_order() -> None:
    views = torch.randn(5, 4, 6, generator=torch.Generator().manual_seed(1))
    base = headwise_ntxent_loss(views).item()
    assert headwise_ntxent_loss(views[:, [2, 0, 3, 1]]).item() == pytest.approx(base, rel=1e-6)
    assert headwise_ntxent_loss(views[[4, 1, 0, 3, 2]]).item() == pytest.approx(base, rel=1e-6)


def test_agreeing_views_of_distinct_items_score_lower_than_random_views() -> None:
    g = torch.Generator().manual_seed(2)
    items = torch.eye(6)[:, None, :].repeat(1, 3, 1)  # 6 orthogonal items, 3 identical views
    scattered = torch.randn(6, 3, 6, generator=g)
    assert headwise_ntxent_loss(items).item() < headwise_ntxent_loss(scattered).item()


def test_gradient_flows_to_every_view() -> None:
    views = torch.randn(4, 3, 5, generator=torch.Generator().manual_seed(3), requires_grad=True)
    headwise_ntxent_loss(views).backward()
    assert views.grad is not None
    assert (views.grad.abs().sum(dim=-1) > 0).all()


@pytest.mark.parametrize(
    ("shape", "tau", "match"),
    [
        ((4, 5), 0.5, "views must be"),
        ((4, 1, 5), 0.5, "at least 2 heads"),
        ((1, 3, 5), 0.5, "at least 2 items"),
        ((4, 3, 5), 0.0, "temperature must be > 0"),
    ],
)
def test_bad_arguments_raise(shape: tuple[int, ...], tau: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        headwise_ntxent_loss(torch.randn(shape), tau)
