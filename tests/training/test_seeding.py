"""`seeded` makes draws reproducible and puts torch's global state back."""

from __future__ import annotations

import pytest
import torch

from dive.training import seeded


def test_same_seed_gives_the_same_torch_and_numpy_draws() -> None:
    with seeded(3) as rng:
        a, x = torch.randn(4), rng.random(4)
    with seeded(3) as rng:
        b, y = torch.randn(4), rng.random(4)
    with seeded(4) as rng:
        c = torch.randn(4)
    assert torch.equal(a, b) and (x == y).all()
    assert not torch.equal(a, c)


def test_global_state_is_restored() -> None:
    torch.manual_seed(123)
    expected = torch.randn(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    with seeded(0, threads=1):
        assert torch.get_num_threads() == 1
        torch.randn(10)
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.randn(3), expected)


def test_bad_thread_count_raises() -> None:
    with pytest.raises(ValueError, match="threads must be >= 1"), seeded(0, threads=0):
        pass
