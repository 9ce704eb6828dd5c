"""The shared training loop: updates, check schedule, gate offers, early stop, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dive.errors import TrainingDiverged
from dive.training import AdamW, TrainingLoop, ValidationGate
from dive.training.loop import finite_outputs


def _quadratic(
    scores: list[float | None] | None = None, patience: int | None = None, every: int = 5
) -> tuple[TrainingLoop, torch.nn.Parameter, list[tuple[int, dict[str, float]]], list[int]]:
    """Minimise (w - 3)^2; check k returns scores[k] (default: -loss)."""
    w = torch.nn.Parameter(torch.zeros(()))
    checks: list[tuple[int, dict[str, float]]] = []
    after: list[int] = []

    def loss() -> tuple[torch.Tensor, dict[str, float]]:
        value = (w - 3.0) ** 2
        return value, {"loss": float(value.detach()), "w": float(w.detach())}

    def check(step: int, window: dict[str, float]) -> float | None:
        checks.append((step, window))
        if scores is None:
            return -window["loss"]
        return scores[len(checks) - 1]

    loop = TrainingLoop(
        loss=loss,
        optimiser=AdamW([w], lr=0.1, weight_decay=0.0),
        gate=ValidationGate(every=every, patience=patience),
        check=check,
        state=lambda: float(w.detach()),
        after_check=after.append,
    )
    return loop, w, checks, after


def test_loop_lowers_the_loss_and_checks_every_few_steps_and_at_the_end() -> None:
    loop, w, checks, after = _quadratic()
    loop.run(12)
    assert abs(float(w.detach()) - 3.0) < 2.0
    assert [s for s, _ in checks] == [5, 10, 12]
    assert after == [5, 10, 12]
    assert loop.step == 12 and not loop.stopped
    assert loop.first["w"] == 0.0 and loop.last["w"] > 0.0


def test_window_is_the_mean_of_the_parts_since_the_last_check() -> None:
    loop, _, checks, _ = _quadratic(every=2)
    seen: list[float] = []
    inner = loop.loss

    def recording() -> tuple[torch.Tensor, dict[str, float]]:
        value, parts = inner()
        seen.append(parts["w"])
        return value, parts

    loop.loss = recording
    loop.run(4)
    assert checks[0][1]["w"] == sum(seen[:2]) / 2
    assert checks[1][1]["w"] == sum(seen[2:4]) / 2


def test_patience_stops_the_run_and_after_check_is_skipped_on_the_stopping_check() -> None:
    loop, _, checks, after = _quadratic(scores=[0.5, 0.4, 0.3, 0.9], patience=2)
    loop.gate.offer(0, 0.6, lambda: "start")
    loop.run(100)
    assert loop.stopped and loop.step == 10
    assert [s for s, _ in checks] == [5, 10]
    assert after == [5]
    assert loop.gate.best is not None and loop.gate.best.state == "start"


def test_unscored_checks_offer_nothing_and_never_stop() -> None:
    loop, _, checks, after = _quadratic(scores=[None] * 10, patience=1)
    loop.run(20)
    assert loop.gate.history == [] and not loop.stopped
    assert len(checks) == 4 and after == [5, 10, 15, 20]


def test_a_check_scoring_zero_is_offered_to_the_gate() -> None:
    """A score of 0.0 (no relevant document in any top 10) is a score, not "nothing to score":
    it was dropped, so a start at nDCG 0 was never checkpoint 0 and patience never ran."""
    loop, _, _, _ = _quadratic(scores=[0.0] * 4, patience=2)
    loop.run(20)
    assert loop.gate.history == [(5, 0.0), (10, 0.0), (15, 0.0)] and loop.stopped


def test_run_resumes_where_it_stopped_and_checks_at_each_last_step() -> None:
    loop, _, checks, _ = _quadratic(every=10)
    loop.run(4)
    loop.run(10)
    assert loop.step == 10
    assert [s for s, _ in checks] == [4, 10]


def test_a_loss_without_gradient_path_makes_no_update() -> None:
    w = torch.nn.Parameter(torch.ones(()))
    loop = TrainingLoop(
        loss=lambda: (torch.zeros(()), {}),
        optimiser=AdamW([w], lr=0.1, weight_decay=0.5),
        gate=ValidationGate(every=1),
        check=lambda _step, _window: None,
        state=lambda: None,
    )
    loop.run(3)
    assert float(w.detach()) == 1.0 and loop.step == 3


def test_each_update_uses_only_its_own_steps_gradient() -> None:
    """The gradient is cleared before each backward: without it the gradients of all past
    steps added up, and the update followed their sum."""
    w = torch.nn.Parameter(torch.zeros(()))
    seen: list[float] = []

    class Spy(AdamW):
        def step(self) -> None:
            assert w.grad is not None
            seen.append(float(w.grad))
            super().step()

    loop = TrainingLoop(
        loss=lambda: (2.0 * w, {}),  # d/dw = 2 at every step
        optimiser=Spy([w], lr=0.1, weight_decay=0.0),
        gate=ValidationGate(every=10),
        check=lambda _step, _window: None,
        state=lambda: None,
    )
    loop.run(3)
    assert seen == [2.0, 2.0, 2.0]


def test_a_loss_that_is_not_finite_stops_the_run_naming_the_step() -> None:
    w = torch.nn.Parameter(torch.ones(()))
    losses = iter([w * 1.0, w * 2.0, w * float("nan")])
    loop = TrainingLoop(
        loss=lambda: (next(losses), {}),
        optimiser=AdamW([w], lr=0.1),
        gate=ValidationGate(every=10),
        check=lambda step, window: None,
        state=lambda: None,
    )
    with pytest.raises(TrainingDiverged, match="the loss is nan at step 3; try a smaller"):
        loop.run(5)
    assert loop.step == 3


def test_outputs_that_are_not_finite_mean_training_diverged() -> None:
    fine = np.ones((2, 3), dtype=np.float32)
    assert finite_outputs(fine) is fine
    for bad in (np.nan, np.inf):
        fine[1, 2] = bad
        with pytest.raises(TrainingDiverged, match="the model's outputs are not finite"):
            finite_outputs(fine)
