"""The self-limiting hinge triplet loss: value, exact zero gradient when satisfied, shapes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dive.losses import active_ratio, hinge_triplet_loss, triplet_margins


def _unit(*rows: list[float]) -> torch.Tensor:
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=-1)


def test_satisfied_triplet_has_zero_loss_and_exactly_zero_gradient() -> None:
    q = _unit([1.0, 0.0]).requires_grad_(True)
    pos = _unit([0.99, 0.1]).requires_grad_(True)  # cos ~ 0.995
    neg = _unit([0.0, 1.0]).requires_grad_(True)  # cos 0
    loss = hinge_triplet_loss(q, pos, neg, margin=0.1)
    loss.backward()
    assert loss.item() == 0.0
    for t in (q, pos, neg):
        assert t.grad is not None and torch.count_nonzero(t.grad) == 0


def test_violated_triplet_has_the_formula_value_and_a_gradient() -> None:
    q = _unit([1.0, 0.0]).requires_grad_(True)
    pos = _unit([0.0, 1.0]).requires_grad_(True)  # cos 0
    neg = _unit([1.0, 1.0]).requires_grad_(True)  # cos 1/sqrt(2)
    loss = hinge_triplet_loss(q, pos, neg, margin=0.1)
    loss.backward()
    assert loss.item() == pytest.approx(0.1 - 0.0 + 2**-0.5, abs=1e-6)
    assert q.grad is not None and torch.count_nonzero(q.grad) > 0


def test_inside_the_margin_is_still_active() -> None:
    # the positive beats the negative, but by less than the margin
    q, pos, neg = _unit([1.0, 0.0]), _unit([1.0, 0.2]), _unit([1.0, 0.3])
    gap = float(triplet_margins(q, pos, neg, margin=0.1))
    assert 0 < gap < 0.1
    assert hinge_triplet_loss(q, pos, neg, margin=0.1).item() == pytest.approx(gap)


def test_inputs_need_not_be_normalised() -> None:
    q, pos, neg = _unit([1.0, 0.0]), _unit([0.0, 1.0]), _unit([1.0, 1.0])
    scaled = hinge_triplet_loss(3 * q, 0.5 * pos, 7 * neg)
    assert scaled.item() == pytest.approx(hinge_triplet_loss(q, pos, neg).item(), abs=1e-6)


def test_several_negatives_per_anchor_equal_the_flattened_triplets() -> None:
    g = torch.Generator().manual_seed(0)
    q, pos = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    neg = torch.randn(5, 3, 8, generator=g)
    grouped = hinge_triplet_loss(q, pos, neg, margin=0.3)
    flat = hinge_triplet_loss(
        q.repeat_interleave(3, 0), pos.repeat_interleave(3, 0), neg.reshape(15, 8), margin=0.3
    )
    assert grouped.item() == pytest.approx(flat.item(), rel=1e-6)


def test_softplus_variant_never_stops_pushing() -> None:
    q = _unit([1.0, 0.0]).requires_grad_(True)
    pos, neg = _unit([0.99, 0.1]), _unit([0.0, 1.0])
    loss = hinge_triplet_loss(q, pos, neg, margin=0.1, soft=True)
    loss.backward()
    expected = F.softplus(torch.tensor(0.1 - float(F.cosine_similarity(q.detach(), pos)) + 0.0))
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
    assert q.grad is not None and torch.count_nonzero(q.grad) > 0


def test_active_ratio_counts_triplets_with_positive_loss() -> None:
    q = _unit([1.0, 0.0], [1.0, 0.0])
    pos = _unit([1.0, 0.0], [0.0, 1.0])
    neg = _unit([0.0, 1.0], [1.0, 0.0])  # first satisfied, second violated
    assert active_ratio(q, pos, neg) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("shapes", "match"),
    [
        (((3,), (3,), (3,)), "anchor must be"),
        (((2, 3), (2, 4), (2, 3)), "positive must match"),
        (((2, 3), (2, 3), (3, 3)), "negative must be"),
        (((2, 3), (2, 3), (2, 5, 4)), "negative must be"),
        (((0, 3), (0, 3), (0, 3)), "no triplets"),
    ],
)
def test_bad_shapes_raise(shapes: tuple[tuple[int, ...], ...], match: str) -> None:
    a, p, n = (torch.zeros(s) for s in shapes)
    with pytest.raises(ValueError, match=match):
        hinge_triplet_loss(a, p, n)


def test_a_triplet_exactly_at_the_margin_is_not_active() -> None:
    """A hinge of exactly 0 has no loss and no gradient: counting it active overstated how much
    of the batch still trains (all of it, here)."""
    q = _unit([1.0, 0.0], [0.0, 1.0])
    assert active_ratio(q, q, q, margin=0.0) == 0.0  # m - cos(q, d+) + cos(q, d-) = 0
    assert float(hinge_triplet_loss(q, q, q, margin=0.0)) == 0.0  # and margin 0 is allowed


def test_negative_margin_raises() -> None:
    x = torch.ones(2, 3)
    with pytest.raises(ValueError, match="margin must be >= 0"):
        hinge_triplet_loss(x, x, x, margin=-0.1)


def test_a_scaled_positive_at_an_angle_to_the_anchor_gives_the_same_margins() -> None:
    """Guards the positive's normalisation: with a positive not orthogonal to the anchor,
    scaling it (by 0.5 or 3) leaves each triplet's margin m - cos(q, d+) + cos(q, d-) as is."""
    q, pos, neg = _unit([1.0, 0.0]), _unit([1.0, 1.0]), _unit([0.0, 1.0])
    expected = triplet_margins(q, pos, neg, margin=0.9)
    assert float(expected) == pytest.approx(0.9 - 2**-0.5, abs=1e-6)
    for scale in (0.5, 3.0):
        scaled = triplet_margins(q, scale * pos, neg, margin=0.9)
        assert float(scaled) == pytest.approx(float(expected), abs=1e-6)
