"""The numpy runtime: what every fitted compressor is at inference time.

A fitted compressor reduces to at most three steps, each optional:

    h = x + W2 act(W1 x + b1) + b2      (a residual MLP adapter)
    z = P (h - mu)                      (a centre and a d x D projection)
    out = z / |z|                       (always)

Inputs are meant to be L2-normalised embeddings; rows whose norm is off 1 by more than 1e-3
are normalised first (unit rows pass unchanged, bit for bit), and a row that cannot be
normalised (all zeros) is rejected with its row number, so a scaled input gives the same
output as the unit one.

Truncation is a projection made of identity rows, PCA a centre plus principal axes, DIVE an
adapter plus its folded heads. Every export (safetensors folder, ONNX, sentence-transformers,
Ray) serialises this one description, so they all compute the same thing. GELU uses the tanh
approximation so numpy and torch agree without `erf`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from dive.arrays import as_unit_rows, l2_normalize

Activation = Literal["relu", "gelu"]
ACTIVATIONS: tuple[Activation, ...] = ("relu", "gelu")


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GELU, tanh approximation (torch `approximate="tanh"`)."""
    c = np.float32(np.sqrt(2.0 / np.pi))
    return (0.5 * x * (1.0 + np.tanh(c * (x + np.float32(0.044715) * x * x * x)))).astype(
        np.float32, copy=False
    )


@dataclass(frozen=True)
class Adapter:
    """Residual MLP h = x + w2 @ act(w1 @ x + b1) + b2 (weights in torch's (out, in) layout)."""

    w1: np.ndarray  # (r, D)
    b1: np.ndarray  # (r,)
    w2: np.ndarray  # (D, r)
    b2: np.ndarray  # (D,)
    activation: Activation = "gelu"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        hidden = x @ self.w1.T + self.b1
        hidden = np.maximum(hidden, 0) if self.activation == "relu" else gelu_tanh(hidden)
        return (x + hidden @ self.w2.T + self.b2).astype(np.float32, copy=False)

    @property
    def n_params(self) -> int:
        return int(self.w1.size + self.b1.size + self.w2.size + self.b2.size)


@dataclass(frozen=True)
class Runtime:
    """One fitted compressor as plain arrays: optional adapter, centre and projection."""

    input_dim: int
    adapter: Adapter | None = None
    center: np.ndarray | None = None  # (D,)
    projection: np.ndarray | None = None  # (d, D); None keeps all D dimensions

    @property
    def output_dim(self) -> int:
        return self.input_dim if self.projection is None else int(self.projection.shape[0])

    @property
    def n_params(self) -> int:
        total = 0 if self.adapter is None else self.adapter.n_params
        total += 0 if self.center is None else int(self.center.size)
        total += 0 if self.projection is None else int(self.projection.size)
        return total

    def __call__(self, x: np.ndarray, *, batch_size: int = 65536) -> np.ndarray:
        """Compress `x` (n, D) to L2-normalised (n, d) float32, `batch_size` rows at a time.

        Rows of `x` not of unit norm are normalised first; a zero row raises `DataError`.
        """
        x = as_unit_rows(x, name="input", dim=self.input_dim)
        out = np.empty((x.shape[0], self.output_dim), dtype=np.float32)
        for start in range(0, x.shape[0], batch_size):
            out[start : start + batch_size] = self._apply(x[start : start + batch_size])
        return out

    def _apply(self, x: np.ndarray) -> np.ndarray:
        h = x if self.adapter is None else self.adapter(x)
        if self.projection is None:
            return l2_normalize(h if self.center is None else h - self.center)
        z = h @ self.projection.T
        if self.center is not None:  # P (h - mu) = P h - P mu: one pass over d columns, not D
            z -= self.projection @ self.center
        return l2_normalize(z)
