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


def test_torch_is_seeded_with_the_seed_given() -> None:
    """The torch draws of `seeded(s)` are those of `torch.manual_seed(s)`: a fit's
    initialisation can be reproduced outside it from the seed it records."""
    with seeded(7):
        inside = torch.randn(5)
    assert torch.equal(inside, torch.randn(5, generator=torch.Generator().manual_seed(7)))


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
