"""A minimal AdamW with torch.optim.AdamW's update rule, for short CPU fits.

`torch.optim` imports `torch._dynamo` the first time an optimiser is built, which costs about
0.8 s per process: a tenth of DIVE's whole fit budget on a 5k-document corpus. This class
does the same arithmetic as `torch.optim.AdamW` (decoupled weight decay, bias-corrected
moments, eps added after the square root; checked against it in the tests) on a handful of
parameter tensors. `AdamWGroups` steps several of them as one, for a learning rate per group
of parameters; `decay_steps` lets a rate fall linearly to 0 (SMEC's settling ADS scores).
Left out: amsgrad, maximize, state_dict, sparse grads, other schedules.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

from dive.errors import TrainingDiverged

__all__ = ["AdamW", "AdamWGroups"]


class AdamW:
    """AdamW over `params` (each must have `.grad` set before `step`)."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        decay_steps: int | None = None,
    ) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        if not eps > 0 or weight_decay < 0:
            raise ValueError(f"need eps > 0 and weight_decay >= 0, got {eps}, {weight_decay}")
        self.params = [p for p in params if p.requires_grad]
        if decay_steps is not None and decay_steps < 1:
            raise ValueError(f"decay_steps must be >= 1, got {decay_steps}")
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.decay_steps = decay_steps  # lr falls linearly to 0 over these steps (None: fixed)
        self.steps = 0
        self._m = [torch.zeros_like(p) for p in self.params]
        self._v = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        beta1, beta2 = self.betas
        correction1 = 1 - beta1**self.steps
        correction2 = 1 - beta2**self.steps
        lr = self.lr
        if self.decay_steps is not None:
            lr *= max(0.0, 1 - (self.steps - 1) / self.decay_steps)
        step_size = lr / correction1
        if step_size > torch.finfo(torch.float32).max:
            raise TrainingDiverged(f"the step size lr / (1 - beta1^t) = {step_size:.3g} is "
                                   "beyond float32")
        for p, m, v in zip(self.params, self._m, self._v, strict=True):
            if p.grad is None:
                continue
            p.mul_(1 - lr * self.weight_decay)
            m.lerp_(p.grad, 1 - beta1)
            v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            denom = (v.sqrt() / math.sqrt(correction2)).add_(self.eps)
            p.addcdiv_(m, denom, value=-step_size)


class AdamWGroups:
    """One `AdamW` per (parameters, learning rate[, decay steps]) group, zeroed and stepped
    together."""

    def __init__(
        self,
        groups: Sequence[
            tuple[Iterable[torch.nn.Parameter], float]
            | tuple[Iterable[torch.nn.Parameter], float, int | None]
        ],
        weight_decay: float = 0.01,
    ) -> None:
        self.parts = [
            AdamW(params, lr=lr, weight_decay=weight_decay, decay_steps=decay[0] if decay else None)
            for params, lr, *decay in groups
        ]

    def zero_grad(self) -> None:
        for part in self.parts:
            part.zero_grad()

    def step(self) -> None:
        for part in self.parts:
            part.step()
