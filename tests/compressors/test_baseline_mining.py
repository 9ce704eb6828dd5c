"""When the baselines re-mine hard negatives: after each check, or every `mine_every` steps."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from dive.compressors import TrainingData, make_compressor
from dive.compressors._baseline_modules import Supervision
from dive.compressors._baseline_select import gated_run
from dive.errors import DiveError


def _run(steps: int, every: int, mine_every: int | None) -> list[int]:
    """The steps already taken at each refresh of one ungated run."""
    weight = torch.zeros(1, requires_grad=True)
    taken: list[int] = []

    def loss() -> tuple[torch.Tensor, dict[str, float]]:
        taken.append(1)
        return (weight - 1).pow(2).sum(), {}

    refreshes: list[int] = []
    gated_run(loss=loss, optimiser=torch.optim.SGD([weight], lr=0.1), state=lambda: None,
              scores=lambda: np.zeros(1), start=np.zeros(1),
              refresh=lambda: refreshes.append(len(taken)), every=every,
              patience_steps=1000, steps=steps, mine_every=mine_every)
    return refreshes


def test_by_default_the_pools_are_mined_at_the_start_and_after_each_check() -> None:
    assert _run(20, every=10, mine_every=None) == [0, 10, 20]


def test_mine_every_re_mines_before_every_kth_step_and_not_after_checks() -> None:
    assert _run(20, every=10, mine_every=5) == [0, 5, 10, 15]
    assert _run(12, every=10, mine_every=100) == [0]


@pytest.mark.parametrize("method", ["search-adaptor", "matryoshka-adaptor", "smec"])
def test_each_baseline_fit_mines_as_configured(
    method: str,
    corpus: np.ndarray,
    make_labels: Callable[..., TrainingData],
    hold_out: Callable[[TrainingData, int], TrainingData],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    refresh = Supervision.refresh
    monkeypatch.setattr(Supervision, "refresh",
                        lambda self, *a: (calls.append(1), refresh(self, *a))[1])
    split = hold_out(make_labels(30), 10)
    fast = ":steps=0:supervised_steps=20" if method == "matryoshka-adaptor" else ":steps=20"
    if method == "smec":
        fast = ":stage_steps=20"
    counts = []
    for mining in ("", ":mine_every=4"):
        calls.clear()
        spec = f"{method}{fast}:eval_every=10:patience_steps=1000:hidden=8{mining}:select=false"
        make_compressor(spec, 8).fit(corpus, split)
        counts.append(len(calls))
    # one stage of 20 steps: the start and 2 checks, or the start and before steps 5, 9, 13, 17
    assert counts == [3, 5]


def test_mine_every_must_be_a_positive_step_count() -> None:
    with pytest.raises(DiveError, match="mine_every"):
        make_compressor("smec:mine_every=0", 8)
