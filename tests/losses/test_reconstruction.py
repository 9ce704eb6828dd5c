"""The L1 reconstruction term: zero at the identity, the mean absolute change otherwise."""

from __future__ import annotations

import pytest
import torch

from dive.losses import reconstruction_loss


def test_zero_when_nothing_moved() -> None:
    x = torch.randn(5, 6)
    assert float(reconstruction_loss(x.clone(), x)) == 0.0


def test_mean_absolute_change() -> None:
    x = torch.zeros(2, 4)
    moved = x.clone()
    moved[0, 1] = 0.8
    moved[1, 3] = -0.4
    assert float(reconstruction_loss(moved, x)) == pytest.approx((0.8 + 0.4) / 8)


def test_rejects_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        reconstruction_loss(torch.zeros(2, 3), torch.zeros(2, 4))
