"""The residual adapter every learned method trains (torch): h = x + f(x), identity at init.

Its `to_runtime` hands the trained weights to the numpy runtime (`dive.compressors.runtime`),
which computes the same function with the same (tanh) GELU. Left out: anything method-specific.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dive.compressors.runtime import Activation, Adapter


class ResidualAdapter(nn.Module):
    """h = x + W2 act(W1 x + b1) + b2, last layer zero-initialised (starts as the identity)."""

    def __init__(self, dim: int, hidden: int, activation: Activation = "relu") -> None:
        super().__init__()
        self.activation = activation
        self.inner = nn.Linear(dim, hidden)
        self.outer = nn.Linear(hidden, dim)
        nn.init.zeros_(self.outer.weight)
        nn.init.zeros_(self.outer.bias)

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        """f(x), the residual the adapter adds."""
        hidden = self.inner(x)
        hidden = F.relu(hidden) if self.activation == "relu" else F.gelu(hidden, approximate="tanh")
        out: torch.Tensor = self.outer(hidden)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.delta(x)

    def to_runtime(self) -> Adapter:
        def arr(t: torch.Tensor) -> np.ndarray:
            return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)

        return Adapter(
            w1=arr(self.inner.weight),
            b1=arr(self.inner.bias),
            w2=arr(self.outer.weight),
            b2=arr(self.outer.bias),
            activation=self.activation,
        )
