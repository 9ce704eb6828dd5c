"""The similarity anchor: zero when cosines are kept, the formula otherwise."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dive.losses import similarity_anchor_loss


def _reference(z: torch.Tensor, e: torch.Tensor, k: int) -> float:
    zc = F.normalize(z.double(), dim=-1) @ F.normalize(z.double(), dim=-1).T
    ec = F.normalize(e.double(), dim=-1) @ F.normalize(e.double(), dim=-1).T
    n = len(z)
    pairs = [abs(float(zc[i, j] - ec[i, j])) for i in range(n) for j in range(n) if i != j]
    knn = []
    for i in range(n):
        others = sorted((j for j in range(n) if j != i), key=lambda j: -float(ec[i, j]))[:k]
        knn += [abs(float(zc[i, j] - ec[i, j])) for j in others]
    return sum(pairs) / len(pairs) + (sum(knn) / len(knn) if knn else 0.0)


def test_zero_when_compressed_cosines_equal_frozen_ones() -> None:
    g = torch.Generator().manual_seed(0)
    e = torch.randn(10, 6, generator=g)
    rotation, _ = torch.linalg.qr(torch.randn(6, 6, generator=g))
    # a rotation (and a rescaling) keeps every cosine
    assert similarity_anchor_loss(3.0 * e @ rotation, e).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("k", [0, 2, 16])
def test_equals_loop_reference(k: int) -> None:
    g = torch.Generator().manual_seed(k)
    e, z = torch.randn(7, 6, generator=g), torch.randn(7, 3, generator=g)
    assert similarity_anchor_loss(z, e, neighbours=k).item() == pytest.approx(
        _reference(z, e, k), rel=1e-5
    )


def test_no_gradient_reaches_the_frozen_side() -> None:
    g = torch.Generator().manual_seed(1)
    e = torch.randn(5, 4, generator=g, requires_grad=True)
    z = torch.randn(5, 2, generator=g, requires_grad=True)
    similarity_anchor_loss(z, e).backward()
    assert e.grad is None
    assert z.grad is not None and torch.count_nonzero(z.grad) > 0


@pytest.mark.parametrize(
    ("z_shape", "e_shape", "k", "match"),
    [
        ((4,), (4, 3), 2, "must be 2-d"),
        ((4, 2), (5, 3), 2, "4 rows but frozen has 5"),
        ((1, 2), (1, 3), 2, "at least 2 items"),
        ((4, 2), (4, 3), -1, "neighbours must be >= 0"),
    ],
)
def test_bad_arguments_raise(
    z_shape: tuple[int, ...], e_shape: tuple[int, ...], k: int, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        similarity_anchor_loss(torch.randn(z_shape), torch.randn(e_shape), neighbours=k)
