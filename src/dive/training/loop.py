"""The training loop every learned method runs: update, check, gate, early stop.

DIVE, Matryoshka-Adaptor, Search-Adaptor and SMEC differ in what one step computes (the
`loss` callable) and in what a check does (the `check` callable); the loop around them is
this one. Each step `loss()` returns the loss and its named parts (floats for the log), and
the optimiser makes one update when the loss has a gradient path; a loss that is not finite
stops the run with `TrainingDiverged`. A check comes every
`gate.every` steps and at the last step of a `run` call. `check(step, window)` receives the
mean of each loss part since the previous check and returns a validation score, or None when
there is nothing to score (nothing is then offered to the gate). A scored check offers
`state()` to the gate, and the run stops once the gate's patience is spent; `after_check(step)`
runs after every check that did not stop it (the baselines re-mine hard negatives there).

`run(until)` can be called again with a larger `until` to resume (DIVE races its arms this
way). Left out: gradient clipping, learning-rate schedules and mixed precision.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from dive.errors import TrainingDiverged
from dive.training.gate import ValidationGate

__all__ = ["Check", "Loss", "Optimiser", "TrainingLoop", "finite_outputs"]

Loss = Callable[[], tuple[torch.Tensor, dict[str, float]]]
Check = Callable[[int, dict[str, float]], float | None]


class Optimiser(Protocol):
    """What the loop needs of an optimiser (`dive.training.optim.AdamW`, or several of them)."""

    def zero_grad(self) -> None: ...

    def step(self) -> None: ...


@dataclass
class TrainingLoop:
    """One resumable training run behind a validation gate (see the module docstring)."""

    loss: Loss
    optimiser: Optimiser
    gate: ValidationGate
    check: Check
    state: Callable[[], Any]
    after_check: Callable[[int], None] | None = None
    step: int = 0
    stopped: bool = False
    first: dict[str, float] = field(default_factory=dict)  # loss parts of the first step
    last: dict[str, float] = field(default_factory=dict)  # loss parts of the latest step
    _sums: dict[str, float] = field(default_factory=dict)
    _window: int = 0

    def run(self, until: int) -> None:
        """Train up to step `until`, or until the gate's patience runs out."""
        while self.step < until and not self.stopped:
            self.step += 1
            loss, parts = self.loss()
            if not bool(torch.isfinite(loss)):
                raise TrainingDiverged(f"the loss is {float(loss.detach())} at step {self.step}")
            if loss.requires_grad:
                self.optimiser.zero_grad()
                loss.backward()
                self.optimiser.step()
            self._record(parts)
            if self._is_check(self.step, until):
                self._check()

    def _record(self, parts: dict[str, float]) -> None:
        self.first = self.first or parts
        self.last = parts
        for name, value in parts.items():
            self._sums[name] = self._sums.get(name, 0.0) + value
        self._window += 1

    def _is_check(self, step: int, until: int) -> bool:
        return self.gate.due(step) or step == until

    def _check(self) -> None:
        window = {name: total / self._window for name, total in self._sums.items()}
        self._sums, self._window = {}, 0
        score = self.check(self.step, window)
        if score is not None:
            self.gate.offer(self.step, score, self.state)
            self.stopped = self.gate.should_stop
        if not self.stopped and self.after_check is not None:
            self.after_check(self.step)


def finite_outputs(values: np.ndarray) -> np.ndarray:
    """`values`, a model's outputs during its fit, if all are finite; else `TrainingDiverged`
    (bad outputs there mean the training diverged, not that the data is bad)."""
    if not np.isfinite(values).all():
        raise TrainingDiverged("the model's outputs are not finite numbers")
    return values
