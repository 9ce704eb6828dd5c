"""Matryoshka-Adaptor's L_pair and L_topk: zero at the identity with M = {D}, exact otherwise."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dive.losses import pairwise_similarity_loss, prefix_cosine, topk_similarity_loss


@pytest.fixture()
def batch() -> torch.Tensor:
    torch.manual_seed(0)
    return F.normalize(torch.randn(10, 8), dim=-1)


def test_pair_loss_is_zero_at_the_identity_with_full_dim_only(batch: torch.Tensor) -> None:
    assert float(pairwise_similarity_loss(batch.clone(), batch, dims=[8])) == pytest.approx(
        0.0, abs=1e-6
    )


def test_pair_loss_at_a_prefix_is_the_mean_cosine_gap(batch: torch.Tensor) -> None:
    loss = pairwise_similarity_loss(batch.clone(), batch, dims=[3, 8])
    full = batch @ batch.T
    low = F.normalize(batch[:, :3], dim=-1)
    gap = (low @ low.T - full).abs()
    expected = gap.sum() / (10 * 9)  # the diagonal gap is 0; mean over the 90 ordered pairs
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    assert float(loss) > 0.05


def test_topk_loss_is_zero_at_the_identity_with_full_dim_only(batch: torch.Tensor) -> None:
    neighbours = batch[torch.tensor([[1, 2], [0, 3]])]  # anchors 0 and 1, two neighbours each
    anchors = batch[:2]
    loss = topk_similarity_loss(anchors.clone(), neighbours.clone(), anchors, neighbours, [8])
    assert float(loss) == pytest.approx(0.0, abs=1e-6)
    at_prefix = topk_similarity_loss(anchors.clone(), neighbours.clone(), anchors, neighbours, [2])
    assert float(at_prefix) > 0.01


def test_topk_loss_matches_the_formula(batch: torch.Tensor) -> None:
    anchors, neighbours = batch[:2], batch[torch.tensor([[1, 2], [0, 3]])]
    moved = anchors + 0.3
    loss = topk_similarity_loss(moved, neighbours, anchors, neighbours, [4])
    expected = torch.stack(
        [
            (prefix_cosine(moved[i], neighbours[i, j], 4) - anchors[i] @ neighbours[i, j]).abs()
            for i in range(2)
            for j in range(2)
        ]
    ).mean()
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)


def test_topk_targets_come_from_the_original_neighbours(batch: torch.Tensor) -> None:
    """The target is cos(e_i, e_j) of the *original* vectors: taking it from the adapted
    neighbours made the loss zero whatever the adapter did to them."""
    anchors, neighbours = batch[:2], batch[torch.tensor([[1, 2], [0, 3]])]
    moved = neighbours.flip(-1)  # the adapter moved the neighbours, not the anchors
    loss = topk_similarity_loss(anchors.clone(), moved, anchors, neighbours, [8])
    expected = (prefix_cosine(anchors[:, None, :], moved, 8)
                - prefix_cosine(anchors[:, None, :], neighbours, 8)).abs().mean()
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    assert float(loss) > 0.05


def test_no_gradient_reaches_the_original_embeddings(batch: torch.Tensor) -> None:
    """The original side is a fixed target: a gradient into it would move frozen inputs."""
    original = batch.clone().requires_grad_(True)
    adapted = (batch + 0.1).requires_grad_(True)
    pairwise_similarity_loss(adapted, original, dims=[4, 8]).backward()
    assert original.grad is None
    assert adapted.grad is not None and torch.count_nonzero(adapted.grad) > 0


def test_prefix_cosine_ignores_coordinates_past_m() -> None:
    a = torch.tensor([1.0, 0.0, 5.0])
    b = torch.tensor([1.0, 0.0, -5.0])
    assert float(prefix_cosine(a, b, 2)) == pytest.approx(1.0)


def test_rejects_bad_dims_and_shapes(batch: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"dims must be in 1\.\.8"):
        pairwise_similarity_loss(batch, batch, dims=[9])
    with pytest.raises(ValueError, match="at least one"):
        pairwise_similarity_loss(batch, batch, dims=[])
    with pytest.raises(ValueError, match="neighbours"):
        topk_similarity_loss(batch, batch, batch, batch, dims=[4])
