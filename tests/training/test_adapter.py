"""The residual adapter starts as the identity and hands the same function to the runtime."""

from __future__ import annotations

import numpy as np
import torch

from dive.training.adapter import ResidualAdapter


def test_a_new_adapter_is_exactly_the_identity() -> None:
    """The outer layer starts at zero, weight and bias: a random bias moved every vector
    before any training, so a fit started off its PCA start."""
    torch.manual_seed(0)
    adapter = ResidualAdapter(4, 8)
    x = torch.randn(5, 4)
    assert torch.equal(adapter(x), x)
    runtime = adapter.to_runtime()
    assert not runtime.w2.any() and not runtime.b2.any()
    assert runtime.w1.shape == (8, 4) and runtime.w1.dtype == np.float32


def test_a_gelu_adapter_computes_what_the_runtime_computes() -> None:
    """Training used exact GELU while the runtime (and the exported model) uses the tanh
    form: the saved model was not the one trained (up to ~1e-3 per coordinate)."""
    torch.manual_seed(0)
    adapter = ResidualAdapter(4, 16, activation="gelu")
    with torch.no_grad():
        adapter.outer.weight.normal_()
        adapter.inner.weight.mul_(3.0)
    x = torch.randn(64, 4)
    with torch.no_grad():
        trained = adapter(x).numpy()
    np.testing.assert_allclose(adapter.to_runtime()(x.numpy()), trained, rtol=0, atol=1e-5)
