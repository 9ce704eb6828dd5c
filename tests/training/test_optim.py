"""The minimal AdamW follows torch.optim.AdamW step for step."""

from __future__ import annotations

import pytest
import torch

from dive.errors import TrainingDiverged
from dive.training.optim import AdamW, AdamWGroups


@pytest.mark.parametrize(("lr", "weight_decay"), [(1e-2, 0.0), (1e-3, 0.1)])
def test_matches_torch_adamw(lr: float, weight_decay: float) -> None:
    g = torch.Generator().manual_seed(0)
    ours = [torch.nn.Parameter(torch.randn(shape, generator=g)) for shape in ((4, 3), (3,))]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    opt_a = AdamW(ours, lr=lr, weight_decay=weight_decay)
    opt_b = torch.optim.AdamW(theirs, lr=lr, weight_decay=weight_decay)
    for _ in range(15):
        grads = [torch.randn(p.shape, generator=g) for p in ours]
        for p, q, grad in zip(ours, theirs, grads, strict=True):
            p.grad, q.grad = grad.clone(), grad.clone()
        opt_a.step()
        opt_b.step()
    for p, q in zip(ours, theirs, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_zero_grad_and_missing_grads() -> None:
    p = torch.nn.Parameter(torch.ones(2))
    opt = AdamW([p], lr=0.1, weight_decay=0.0)
    opt.step()  # no grad yet: nothing moves
    assert torch.equal(p.detach(), torch.ones(2))
    p.grad = torch.ones(2)
    opt.zero_grad()
    assert p.grad is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr": 0.0}, "lr must be > 0"),
        ({"betas": (1.0, 0.9)}, "betas"),
        ({"weight_decay": -1.0}, "weight_decay >= 0"),
        ({"decay_steps": 0}, "decay_steps must be >= 1"),
    ],
)
def test_bad_settings_raise(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AdamW([torch.nn.Parameter(torch.ones(1))], **kwargs)  # type: ignore[arg-type]


def test_groups_step_each_with_its_own_learning_rate() -> None:
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    ref_a, ref_b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    groups = AdamWGroups([([a], 0.1), ([b], 0.001)], weight_decay=0.0)
    alone = [AdamW([ref_a], lr=0.1, weight_decay=0.0), AdamW([ref_b], lr=0.001, weight_decay=0.0)]
    for _ in range(3):
        for p in (a, b, ref_a, ref_b):
            p.grad = torch.full((3,), 0.5)
        groups.step()
        for opt in alone:
            opt.step()
    assert torch.equal(a, ref_a) and torch.equal(b, ref_b)
    assert not torch.equal(a, b)
    groups.zero_grad()
    assert a.grad is None and b.grad is None


def test_a_decayed_rate_falls_linearly_to_zero_over_its_steps() -> None:
    decayed, fixed = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opts = [AdamW([decayed], lr=0.1, weight_decay=0.0, decay_steps=4),
            AdamW([fixed], lr=0.1, weight_decay=0.0)]
    moves = []
    for _ in range(6):
        before = decayed.detach().clone(), fixed.detach().clone()
        for p in (decayed, fixed):
            p.grad = torch.full((2,), 0.5)
        for opt in opts:
            opt.step()
        pairs = zip((decayed, fixed), before, strict=True)
        moves.append([float((p.detach() - b).abs().max()) for p, b in pairs])
    assert moves[0][0] == pytest.approx(moves[0][1])  # step 1: the full rate
    assert moves[1][0] == pytest.approx(0.75 * moves[1][1], rel=1e-4)  # then 3/4, 1/2, 1/4
    assert moves[3][0] == pytest.approx(0.25 * moves[3][1], rel=1e-4)
    assert moves[4][0] == moves[5][0] == 0.0 and moves[5][1] > 0  # still after its steps


def test_a_group_may_decay_alone() -> None:
    a, b = torch.nn.Parameter(torch.ones(1)), torch.nn.Parameter(torch.ones(1))
    groups = AdamWGroups([([a], 0.1), ([b], 0.1, 1)], weight_decay=0.0)
    for _ in range(3):
        a.grad, b.grad = torch.ones(1), torch.ones(1)
        groups.step()
    assert b.item() == pytest.approx(0.9) and a.item() < b.item()  # b moved once only


def test_a_step_beyond_float32_is_a_divergence_not_a_torch_error() -> None:
    w = torch.nn.Parameter(torch.zeros(3))
    w.grad = torch.ones(3)
    with pytest.raises(TrainingDiverged, match=r"step size .* is beyond float32"):
        AdamW([w], lr=1e38).step()


def test_weight_decay_follows_the_decayed_rate() -> None:
    """Decoupled decay scales with the current rate (torch's lr * weight_decay): once the rate
    has decayed to 0 the weights stay put, but the base rate kept shrinking them."""
    w = torch.nn.Parameter(torch.ones(2))
    opt = AdamW([w], lr=0.1, weight_decay=0.5, decay_steps=1)
    w.grad = torch.zeros(2)
    opt.step()  # step 1: the full rate, decay only (no gradient)
    assert w.tolist() == pytest.approx([0.95, 0.95])
    w.grad = torch.zeros(2)
    opt.step()  # step 2: the rate is 0
    assert w.tolist() == pytest.approx([0.95, 0.95])


def test_eps_is_added_after_the_square_root_as_torch_does() -> None:
    """With gradients near eps the place of eps decides the step: inside the square root it
    moved the weights about 16 times less than torch's AdamW."""
    ours, theirs = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(3))
    opt_a = AdamW([ours], lr=0.1, weight_decay=0.0)
    opt_b = torch.optim.AdamW([theirs], lr=0.1, weight_decay=0.0)
    for _ in range(3):
        ours.grad, theirs.grad = torch.full((3,), 1e-8), torch.full((3,), 1e-8)
        opt_a.step()
        opt_b.step()
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=0.0)
    assert float(theirs.detach()[0]) < -0.1  # the step is a sizeable share of lr
