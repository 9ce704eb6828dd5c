"""DIVE's model (torch side, fit time only): the residual adapter, the H projection heads and
their starting values.

    h = e + g(e),  u_k = P_k (h - mu),  z = normalize(mean_k u_k)

`DiveNet.to_runtime` folds the heads into one d x D matrix, the runtime every export serves
(`dive.compressors.runtime`). `initial_heads` gives the heads' start for `head_init`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dive.compressors.dive import DiveConfig
from dive.compressors.pca import principal_axes
from dive.compressors.runtime import Runtime
from dive.training.adapter import ResidualAdapter
from dive.training.loop import finite_outputs

# Rows per forward pass when encoding without gradients: chunks whose activations stay in the
# CPU cache (about 1.5 MB at D = 384) run faster than one pass over a corpus of thousands, and
# every row's output is the same bit for bit (GEMMs reduce within a row).
ENCODE_CHUNK = 1024


class DiveNet(nn.Module):
    """h = e + g(e); views u_k = P_k (h - mu); z = normalize(mean_k u_k)."""

    center: torch.Tensor

    def __init__(self, heads: np.ndarray, center: np.ndarray, hidden: int) -> None:
        super().__init__()
        n_heads, dim, d_in = heads.shape
        self.n_heads, self.dim, self.d_in = n_heads, dim, d_in
        self.adapter = ResidualAdapter(d_in, hidden, activation="gelu")
        # all heads in one (H*d, D) matrix: one GEMM computes every view. A copy: training
        # must never write into the caller's array (every run starts from the same heads).
        self.heads = nn.Parameter(torch.from_numpy(np.array(heads, dtype=np.float32, order="C")))
        self.register_buffer("center", torch.from_numpy(np.ascontiguousarray(center, np.float32)))
        self.centred = bool(np.any(center))  # mu = 0 skips a subtraction that changes nothing

    def shifted(self, x: torch.Tensor) -> torch.Tensor:
        """h - mu, with h = x + g(x): what every head projects."""
        out: torch.Tensor = self.adapter(x)
        return out - self.center if self.centred else out

    def head_views(self, shifted: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, H, d): every view u_k = P_k (h - mu), unnormalised."""
        flat = shifted @ self.heads.reshape(self.n_heads * self.dim, self.d_in).T
        return flat.reshape(-1, self.n_heads, self.dim)

    def folded(self) -> torch.Tensor:
        """mean_k P_k: the ensemble as one (d, D) matrix (the mean commutes with P_k (h - mu))."""
        return self.heads.mean(dim=0)

    def views(self, x: torch.Tensor) -> torch.Tensor:
        return self.head_views(self.shifted(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # normalize(mean_k P_k (h - mu)) through the folded matrix: one d-wide GEMM instead
        # of an H*d-wide one, the same value and the same gradient for every head
        return F.normalize(self.shifted(x) @ self.folded().T, dim=-1)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> np.ndarray:
        out = [self(x[i : i + ENCODE_CHUNK]) for i in range(0, x.shape[0], ENCODE_CHUNK)]
        return finite_outputs(np.ascontiguousarray(torch.cat(out).numpy(), dtype=np.float32))

    def to_runtime(self) -> Runtime:
        center = self.center.detach().numpy().astype(np.float32)
        projection = self.folded().detach().numpy().astype(np.float32)
        return Runtime(
            input_dim=self.d_in,
            adapter=self.adapter.to_runtime(),
            center=np.ascontiguousarray(center) if bool(np.any(center)) else None,
            projection=np.ascontiguousarray(projection),
        )


def initial_heads(
    corpus: np.ndarray, axes: np.ndarray, config: DiveConfig, rng: np.random.Generator
) -> np.ndarray:
    """(H, d, D) starting heads for `config.head_init`."""
    n_heads, (dim, d_in) = config.heads, axes.shape
    if config.head_init == "pca-noise":
        # Noise is made zero-mean across heads so the folded start is exactly the PCA
        # projection: checkpoint 0 then *is* PCA, which the validation gate relies on.
        noise = config.init_noise * rng.standard_normal((n_heads, dim, d_in))
        noise -= noise.mean(axis=0, keepdims=True)
        return (axes[None] + noise).astype(np.float32)
    if config.head_init == "pca-bootstrap":
        # Kept for the ablation: near-equal eigenvalues rotate between resamples, and the
        # average of the rotated bases is a poor projection (SPEC 4.1a).
        heads = [
            principal_axes(corpus[rng.integers(0, len(corpus), len(corpus))], dim)[1]
            for _ in range(n_heads)
        ]
        return np.stack(heads).astype(np.float32)
    return (rng.standard_normal((n_heads, dim, d_in)) / math.sqrt(d_in)).astype(np.float32)


def state_of(net: DiveNet) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}
