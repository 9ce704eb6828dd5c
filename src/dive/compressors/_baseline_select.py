"""How a published baseline chooses its setting and checkpoint (torch side, fit time only).

Each setting of a baseline's grid (`BaselineConfig.settings`) trains once from the same start
on the training queries, behind the validation gate: every check scores each validation query
(nDCG@10), the mean goes to the gate (early stopping, best checkpoint) and the per-query
scores to the run's `Curve`. `choose_setting` then hands every run's curve to
`dive.training.selection.choose`, the component DIVE uses, with the start's per-query scores
as the base: the best (setting, step) is kept when its paired gain over the start is positive
and at least `min_gain_z` standard errors (0 by default: any gain, the papers' choice on
validation), otherwise the start is kept. With one setting this is exactly the gate's own
choice, so a one-point grid reproduces the fixed-weight fit bit for bit. `fit_grid` is what a
fit calls: it scores the start, trains each setting from it and leaves the model as chosen;
with fewer than `grid_min` validation queries (`BaselineConfig.chooses_on`) the grid is the
configured setting alone.

`pick_basis` chooses the start (raw prefix or principal-axis basis) for `basis="select"`:
neither start saw a label, so `dive.training.selection.best_of` compares them on the
validation queries. `Selected.summary` and `ungated_summary` give a fit's typed
`FitSummary` (the kept checkpoint, the curve it was chosen on, its validation score). Left
out: cross-fitting (the baselines keep the protocol's train /
validation split, as their papers do) and refits on the validation queries.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import numpy as np
import torch

from dive.compressors._baseline import BaselineConfig
from dive.compressors._baseline_modules import (
    Encoder,
    Supervision,
    change_of_basis,
    snapshot,
)
from dive.compressors.base import FitSummary, TrainingData
from dive.training.gate import ValidationGate, validation_scores
from dive.training.loop import Loss, Optimiser, TrainingLoop
from dive.training.optim import AdamW
from dive.training.selection import Choice, Curve, best_of, choose

if TYPE_CHECKING:
    from dive.compressors._baseline import Baseline

Scores = Callable[[], np.ndarray]  # per-item scores of the current model; the gate gets the mean
C = TypeVar("C", bound=BaselineConfig)


def make_gate(every: int, patience_steps: int) -> ValidationGate:
    """The shared gate, with the papers' patience in steps turned into checks."""
    return ValidationGate(every=every, patience=max(1, math.ceil(patience_steps / every)))


@dataclass
class GatedRun:
    """One training run behind the validation gate, and the per-query curve it checked."""

    gate: ValidationGate
    loop: TrainingLoop
    gated: bool  # whether checks were scored (False: no validation, the last state is kept)
    steps: list[int] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)

    def curve(self) -> Curve:
        return Curve(tuple(self.steps), np.stack(self.scores))

    @property
    def best_step(self) -> int:
        return self.gate.best.step if self.gated and self.gate.best is not None else self.loop.step

    def state(self) -> Any:
        """The state the run ends on: its best checkpoint when gated, else None (keep last)."""
        return self.gate.best.state if self.gated and self.gate.best is not None else None

    def mean_curve(self) -> tuple[tuple[int, float], ...]:
        """(step, mean score) at each scored check, the start's first (empty: not gated)."""
        return tuple((s, float(v.mean())) for s, v in zip(self.steps, self.scores, strict=True))

    def record(self, history: bool = True) -> dict[str, Any]:
        """The run's fields in a results record (`history`: with every check's score)."""
        best = self.gate.best if self.gated else None
        fields: dict[str, Any] = {
            "best_step": self.best_step,
            "best_score": best.score if best is not None else None,
            "steps_run": self.loop.step,
        }
        if history:
            fields.update(first_losses=self.loop.first, last_losses=self.loop.last)
            fields["history"] = [(s, round(v, 4)) for s, v in self.gate.history]
        return fields


def gated_run(
    *,
    loss: Loss,
    optimiser: Optimiser,
    state: Callable[[], Any],
    scores: Scores | None,
    start: np.ndarray | None,
    refresh: Callable[[], None] | None,
    every: int,
    patience_steps: int,
    steps: int,
    mine_every: int | None = None,
) -> GatedRun:
    """Offer the start (checkpoint 0, its scores `start`), then train up to `steps` steps.

    Every `every` steps (and at the last) `scores()` is checked; `refresh()` re-mines hard
    negatives at the start and after each check, or (`mine_every` set) only at the start,
    the `Supervision` then mining as its batches come. `scores=None`: nothing is gated, the
    run trains to the end.
    """
    gate = make_gate(every, patience_steps)
    checked: list[int] = []
    values: list[np.ndarray] = []
    if scores is not None and start is not None:
        checked.append(0)
        values.append(start)
        gate.offer(0, float(start.mean()), state)

    def check(step: int, _window: dict[str, float]) -> float | None:
        if scores is None:
            return None
        checked.append(step)
        values.append(scores())
        return float(values[-1].mean())

    if refresh is not None:
        refresh()
    loop = TrainingLoop(
        loss=loss,
        optimiser=optimiser,
        gate=gate,
        check=check,
        state=state,
        after_check=(
            (lambda _step: refresh()) if refresh is not None and mine_every is None else None
        ),
    )
    loop.run(steps)
    return GatedRun(gate, loop, scores is not None, checked, values)


@dataclass
class Selected:
    """What `choose_setting` kept: the winning run (None: the start) and the evidence."""

    setting: dict[str, float] | None
    run: GatedRun | None
    choice: Choice | None
    runs: list[GatedRun]
    settings: list[dict[str, float]]
    grid: str = "none"  # how the results page names what was chosen from

    def record(self) -> dict[str, Any]:
        """Results-record fields: the grid (`none` with nothing to choose on), each setting's
        run, the choice and what was kept.

        The top-level run fields are those of the setting with the best validation mean
        (kept or not), so a one-setting grid records what its single gated run recorded.
        """
        best = self.choice.best[0] if self.choice is not None else 0
        fields: dict[str, Any] = dict(self.runs[best].record()) if self.runs else {}
        fields.update(
            grid=self.grid if self.choice is not None else "none",
            settings=[
                {**s, **r.record(history=False)}
                for s, r in zip(self.settings, self.runs, strict=True)
            ],
            selected=self.setting,
        )
        if self.choice is not None:
            fields["choice"] = self.choice.as_record()
        return fields

    def summary(self, basis: str, seconds: float) -> FitSummary:
        """The typed summary: the kept step of the run with the best validation mean (0: the
        start, the first point of every curve), that run's curve and the choice's scores."""
        selected = {"basis": basis, "setting": self.setting}
        if self.choice is None:  # no validation queries: the configured setting's last state
            return ungated_summary(self.runs[0], basis, seconds, selected)
        run, choice = self.runs[self.choice.best[0]], self.choice
        return FitSummary(run.mean_curve(), choice.step, run.loop.step, selected,
                          choice.n_queries, choice.score, choice.base_score, seconds)


def ungated_summary(run: GatedRun | None, basis: str, seconds: float,
                    selected: dict[str, Any] | None = None) -> FitSummary:
    """The typed summary of a fit that chose nothing on validation queries: `run` kept its
    best state by its own objective, or its last (None: the untrained start was returned)."""
    steps = (run.best_step, run.loop.step) if run is not None else (0, 0)
    return FitSummary((), *steps, selected or {"basis": basis}, 0, None, None, seconds)


def choose_setting(
    settings: Sequence[Mapping[str, float]],
    train: Callable[[Mapping[str, float]], GatedRun],
    start: np.ndarray | None,
    z: float,
) -> Selected:
    """Train every setting (`train(setting)` from the same start) and keep the best, or none.

    `start` holds the start's per-query validation scores (None: no validation queries; then
    there is nothing to choose on and `settings` must be the one configured setting).
    """
    chosen = [dict(s) for s in settings]
    if start is None:
        if len(chosen) != 1:
            raise ValueError(f"{len(chosen)} settings but no validation scores to choose on")
        run = train(chosen[0])
        return Selected(chosen[0], run, None, [run], chosen)
    runs = [train(s) for s in chosen]
    choice = choose(start, [r.curve() for r in runs], z)
    if choice.candidate is None:
        return Selected(None, None, choice, runs, chosen)
    run = runs[choice.candidate]
    if choice.step != run.best_step:  # choose and the gate break ties the same way
        raise RuntimeError(f"selection kept step {choice.step}, the gate {run.best_step}")
    return Selected(chosen[choice.candidate], run, choice, runs, chosen)


def fit_grid(
    cfg: C,
    sup: Supervision,
    encode: Encoder,
    corpus: torch.Tensor,
    *,
    module: torch.nn.Module,
    loss: Callable[[C], Loss],
    optimiser: Callable[[C], Optimiser],
    steps: int,
    reset: Callable[[], None] | None = None,
) -> Selected:
    """Train each setting of `cfg`'s grid from the start and leave `module` as chosen.

    The start is `module` as it is now, scored on the validation queries. Each setting puts
    `module` back to it (and calls `reset()` for any other trained part), then `loss(c)` and
    `optimiser(c)`, with `c` the config of that setting, train `steps` steps behind the gate,
    whose checkpoints are copies of `module`. `module` ends in the selection's choice, or at
    the start when no setting beat it (without validation queries: the configured setting's
    last state).
    """
    start = supervised_scores(sup, encode, corpus)
    start_scores = start() if start is not None else None
    initial = snapshot(module)()

    def train_one(setting: Mapping[str, float]) -> GatedRun:
        c = cfg.applied(setting)
        module.load_state_dict(initial)
        if reset is not None:
            reset()
        return gated_run(
            loss=loss(c),
            optimiser=optimiser(c),
            state=snapshot(module),
            scores=start,
            start=start_scores,
            refresh=lambda: sup.refresh(encode, corpus),
            every=c.eval_every,
            patience_steps=c.patience_steps,
            steps=steps,
            mine_every=c.mine_every,
        )

    validated = start_scores is not None and cfg.chooses_on(start_scores.size)
    selected = choose_setting(
        cfg.settings(validated=validated), train_one, start_scores, cfg.min_gain_z
    )
    selected.grid = cfg.grid_text(validated=validated)
    if selected.run is None:
        module.load_state_dict(initial)
    elif (state := selected.run.state()) is not None:
        module.load_state_dict(state)
    return selected


def pick_basis(
    corpus: np.ndarray,
    train: TrainingData | None,
    basis: str,
    start: Callable[[torch.Tensor], Encoder],
) -> tuple[str, dict[str, float]]:
    """`basis`, or for "select" the start ("identity" or "pca") that ranks the validation
    queries better, with each start's mean nDCG@10. `start(x)` is the untrained model's
    encoder given the corpus `x` in that basis."""
    validation = train.validation if train is not None else None
    if basis != "select":
        return basis, {}
    if validation is None or not len(validation):
        return "identity", {}
    scores: dict[str, np.ndarray] = {}
    for name in ("identity", "pca"):
        _, rotate = change_of_basis(corpus, name)
        x = rotate(corpus)
        encode = start(x)
        with torch.no_grad():
            z_c, z_q = encode(x).numpy(), encode(rotate(validation.embeddings)).numpy()
        scores[name] = validation_scores(z_q, z_c, validation.relevant,
                                         exclude=validation.excluded())
    return best_of(scores), {k: round(float(v.mean()), 6) for k, v in scores.items()}


class Space(NamedTuple):
    """Where a baseline's fit starts: the corpus's sizes, the output dim and the training basis."""

    n: int  # corpus rows
    width: int  # input dimension D
    dim: int  # output dimension d
    basis: str  # "identity" or "pca" (what `pick_basis` chose)
    starts: dict[str, float]  # each start's mean validation nDCG@10 (basis="select" only)
    rot: np.ndarray | None  # the basis (None: the raw prefix)
    rotate: Callable[[np.ndarray], torch.Tensor]  # numpy embeddings -> tensors in the basis
    x: torch.Tensor  # the corpus in the basis


def fit_space(
    model: Baseline,
    corpus: np.ndarray,
    train: TrainingData | None,
    start: Callable[[int], Callable[[torch.Tensor], Encoder]],
) -> Space:
    """The `Space` a baseline trains in; `start(dim)` is its untrained model (`pick_basis`)."""
    n, width = corpus.shape
    dim = model.dim or width
    basis, starts = pick_basis(corpus, train, model.options.basis, start(dim))
    rot, rotate = change_of_basis(corpus, basis)
    return Space(n, width, dim, basis, starts, rot, rotate, rotate(corpus))


def plain_adam(params: Iterable[torch.nn.Parameter]) -> Callable[[BaselineConfig], Optimiser]:
    """The baselines' optimiser for a setting `c`: Adam(W) at `c.lr`, no weight decay."""
    kept = list(params)
    return lambda c: AdamW(kept, lr=c.lr, weight_decay=0.0)


def prefix_start(dim: int) -> Callable[[torch.Tensor], Encoder]:
    """The start of a prefix method (an identity adapter): the renormalised first `dim` dims."""
    return lambda _x: lambda v: torch.nn.functional.normalize(v[:, :dim], dim=-1)


def supervised_scores(sup: Supervision, encode: Encoder, corpus: torch.Tensor) -> Scores | None:
    """Per-query validation nDCG@10 of the current model (None without validation queries)."""
    if sup.validation is None:
        return None
    return lambda: sup.scores(encode, corpus)
