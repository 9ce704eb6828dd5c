"""Fixtures for the export tests: hand-built runtimes (with and without an adapter).

Building a `Runtime` with an `Adapter` by hand tests every export path, the adapter included,
without needing a trained DIVE model (or torch).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from dive.compressors.runtime import Activation, Adapter, Runtime

MakeRuntime = Callable[..., Runtime]


def random_runtime(
    input_dim: int = 32,
    output_dim: int | None = 8,
    *,
    rank: int | None = 16,
    activation: Activation = "gelu",
    center: bool = True,
    seed: int = 0,
) -> Runtime:
    """A runtime with random float32 arrays; `rank=None` leaves out the adapter."""
    rng = np.random.default_rng(seed)

    def arr(*shape: int, scale: float = 1.0) -> np.ndarray:
        return (scale * rng.standard_normal(shape)).astype(np.float32)

    adapter = None
    if rank is not None:
        adapter = Adapter(arr(rank, input_dim, scale=0.3), arr(rank, scale=0.1),
                          arr(input_dim, rank, scale=0.3), arr(input_dim, scale=0.1),
                          activation=activation)
    return Runtime(
        input_dim=input_dim,
        adapter=adapter,
        center=arr(input_dim, scale=0.1) if center else None,
        projection=None if output_dim is None else arr(output_dim, input_dim),
    )


@pytest.fixture()
def make_runtime() -> MakeRuntime:
    return random_runtime


def unit_rows(n: int, d: int, seed: int = 1) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture()
def make_inputs() -> Callable[..., np.ndarray]:
    """Random L2-normalised float32 rows: make_inputs(n, d, seed=1)."""
    return unit_rows


def near_the_tolerance(n: int, d: int) -> np.ndarray:
    """Unit rows scaled to norms within float32's rounding of 1 +- UNIT_NORM_TOLERANCE, where
    a float32 sum of squares and a float64 norm decide otherwise whether a row is rescaled."""
    from dive.arrays import UNIT_NORM_TOLERANCE

    x = unit_rows(n, d, seed=4).astype(np.float64)
    steps = np.linspace(-3e-7, 3e-7, n // 2)
    scales = np.concatenate([(1 + UNIT_NORM_TOLERANCE) * (1 + steps),
                             (1 - UNIT_NORM_TOLERANCE) * (1 + steps)])
    return (x[: len(scales)] * scales[:, None]).astype(np.float32)
