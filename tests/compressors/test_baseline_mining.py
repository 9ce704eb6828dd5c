"""When the baselines re-mine hard negatives, and for which queries: every training query after
each check, or every `mine_every` steps the queries of the coming batches only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from dive.compressors import TrainingData, _baseline_modules, make_compressor
from dive.compressors._baseline_modules import Supervision
from dive.compressors._baseline_select import gated_run
from dive.compressors.smec import SMECConfig
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


def test_with_mine_every_the_run_refreshes_only_at_the_start() -> None:
    # the Supervision then mines as its batches come (below)
    assert _run(20, every=10, mine_every=5) == [0]


def _count_mining(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of queries of each mining round the baselines make from now on."""
    rounds: list[int] = []
    mine = _baseline_modules.mine_pools

    def counted(queries: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        rounds.append(len(queries))
        return mine(queries, *args, **kwargs)

    monkeypatch.setattr(_baseline_modules, "mine_pools", counted)
    return rounds


def _supervision(make_labels: Callable[..., TrainingData], mine_every: int | None) -> Supervision:
    """Supervision over 10 training queries near rows of the 200-row corpus."""
    return Supervision(make_labels(10), torch.from_numpy, 200, SMECConfig(mine_every=mine_every))


def _noting(tag: int, log: list[int]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The identity encoder, noting `tag` in `log` at each call."""

    def encode(v: torch.Tensor) -> torch.Tensor:
        log.append(tag)
        return v

    return encode


def _rows(sup: Supervision, queries: torch.Tensor) -> set[int]:
    """The training query rows whose embeddings `queries` are."""
    assert sup.labels is not None
    return {int(np.flatnonzero((sup.labels.embeddings == q).all(1))[0]) for q in queries}


def test_lazy_mining_mines_only_the_coming_batches_from_the_model_as_it_is(
    corpus: np.ndarray, make_labels: Callable[..., TrainingData], monkeypatch: pytest.MonkeyPatch
) -> None:
    rounds = _count_mining(monkeypatch)
    sup = _supervision(make_labels, mine_every=3)
    x = torch.from_numpy(corpus)
    rng = np.random.default_rng(0)
    ranked_by: list[int] = []
    for version in (0, 1):  # a refresh drops the queue: the next batch mines again
        ranked_by.clear()
        sup.refresh(_noting(version, ranked_by), x)
        assert len(rounds) == version  # nothing is mined until a batch is asked for
        batches = [_rows(sup, sup.batch(2, rng)[0]) for _ in range(3)]
        assert sup.pools is not None
        mined = set(np.flatnonzero(sup.pools.lengths).tolist())
        assert mined == set.union(*batches)  # the coming batches' queries, no others
        assert set(ranked_by) == {version}  # ranked by the model the refresh was given
    assert len(rounds) == 2 and all(n <= 6 for n in rounds)
    sup.batch(2, rng)  # a fourth batch after three: the queue is empty, a new round
    assert len(rounds) == 3


def test_without_mine_every_a_refresh_mines_every_training_query_at_once(
    corpus: np.ndarray, make_labels: Callable[..., TrainingData], monkeypatch: pytest.MonkeyPatch
) -> None:
    rounds = _count_mining(monkeypatch)
    sup = _supervision(make_labels, mine_every=None)
    sup.refresh(lambda v: v, torch.from_numpy(corpus))
    rng = np.random.default_rng(0)
    for _ in range(4):
        sup.batch(2, rng)
    assert rounds == [10]
    assert sup.pools is not None and (sup.pools.lengths > 0).all()


@pytest.mark.parametrize("method", ["search-adaptor", "matryoshka-adaptor", "smec"])
def test_each_baseline_fit_mines_as_configured(
    method: str,
    corpus: np.ndarray,
    make_labels: Callable[..., TrainingData],
    hold_out: Callable[[TrainingData, int], TrainingData],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rounds = _count_mining(monkeypatch)
    split = hold_out(make_labels(30), 10)
    fast = ":steps=0:supervised_steps=20" if method == "matryoshka-adaptor" else ":steps=20"
    if method == "smec":
        fast = ":stage_steps=20"
    mined = []
    for mining in (":mine_every=none", ":mine_every=4"):
        rounds.clear()
        spec = (f"{method}{fast}:eval_every=10:patience_steps=1000:hidden=8:query_batch=2"
                f"{mining}:select=false")
        make_compressor(spec, 8).fit(corpus, split)
        mined.append(list(rounds))
    # one stage of 20 steps: all 10 training queries at the start and after 2 checks; or the
    # coming 4 batches of 2 queries before steps 1, 5, 9, 13 and 17
    assert mined[0] == [10, 10, 10]
    assert len(mined[1]) == 5 and all(n <= 8 for n in mined[1])


def test_mine_every_must_be_a_positive_step_count() -> None:
    with pytest.raises(DiveError, match="mine_every"):
        make_compressor("smec:mine_every=0", 8)


@pytest.mark.parametrize(("patience_steps", "stopped"), [(20, 20), (25, 30), (30, 30)])
def test_a_gated_run_waits_at_least_its_patience_in_steps(
    patience_steps: int, stopped: int
) -> None:
    """Patience in steps becomes whole checks rounded up: a run with no better check stops
    only once `patience_steps` steps have brought nothing, never before."""
    from dive.compressors._baseline_select import gated_run

    weight = torch.zeros(1, requires_grad=True)
    run = gated_run(loss=lambda: ((weight - 1).pow(2).sum(), {}),
                    optimiser=torch.optim.SGD([weight], lr=0.1), state=lambda: None,
                    scores=lambda: np.zeros(1), start=np.zeros(1), refresh=None, every=10,
                    patience_steps=patience_steps, steps=100)
    assert run.loop.step == stopped and run.best_step == 0


def test_a_batch_holds_the_configured_negatives_per_positive_and_hard_share(
    corpus: np.ndarray, make_labels: Callable[..., TrainingData]
) -> None:
    """`negatives_per_positive` and `hard_fraction` reach the batches: 3 negatives for each
    query's one positive, all of them from its mined pool with `hard_fraction=1`."""
    config = SMECConfig(mine_every=None, negatives_per_positive=3, hard_fraction=1.0)
    sup = Supervision(make_labels(10), torch.from_numpy, 200, config)
    sup.refresh(lambda v: v, torch.from_numpy(corpus))
    queries, rows, grades, mask = sup.batch(4, np.random.default_rng(0))
    assert sup.pools is not None
    for i in range(len(queries)):
        (query,) = _rows(sup, queries[i : i + 1])
        mined = sup.pools.candidates[query]  # type: ignore[attr-defined]
        negatives = rows[i][mask[i] & (grades[i] == 0)].tolist()
        assert int((grades[i] > 0).sum()) == 1 and len(negatives) == 3
        assert set(negatives) <= set(mined[mined >= 0].tolist())
