"""Fixtures shared by the learned compressors' tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture()
def corpus() -> np.ndarray:
    """Anisotropic 16-d unit vectors in a random basis, so the raw prefix is a poor projection."""
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    x = (rng.standard_normal((200, 16)) * np.linspace(3, 0.2, 16)) @ basis
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
