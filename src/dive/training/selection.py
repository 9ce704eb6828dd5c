"""Choosing what a learned fit keeps, on every labelled query and only on real evidence.

With tens of labelled queries a 20% validation set holds 4-13 of them, and a checkpoint picked
on so few is mostly picked on noise. This component makes the choice on all labelled queries
and leaves the safe default (the start) only when a paired, per-query comparison says that
the gain is real. Any learned method can use it: it knows nothing about models.

- `Folds` says which labelled queries each training run holds out: k folds dealt by a seed
  (cross-fitting: every query is held out exactly once), or one holdout fold (a validation
  set large enough to trust on its own).
- A method trains each candidate setting once per fold, on the other folds, and scores its
  checkpoints query by query on the fold it did not see; `out_of_fold` assembles these runs
  into one `Curve` per candidate: a held-out score for every (checkpoint step, query).
- `choose(base, curves, z)` takes the (candidate, step) with the best mean held-out score and
  keeps it only when its mean paired gain over `base` (the start, scored on the same queries)
  is positive and at least `z` standard errors; otherwise the choice is the base. The method
  then refits the chosen candidate on all labelled queries for the chosen number of steps
  (DIVE, after cross-fitting, keeps the mean weights of its fold runs at that step instead).
- The best of many (candidate, step) pairs scores above its true gain (the winner's curse:
  with 2 arms x 16 checks on 16 queries, noise alone wins by a standard error or more). With
  `groups` (a partition of the scored queries) the gain `choose` tests is the nested
  estimate: each group's queries score the pair chosen on the other groups, so no query
  both picks a pair and vouches for it. With `flips` the choice stays on every query and the
  bar is raised instead (`max_threshold`): the best pair's gain must beat what the best of
  all pairs gains by chance, measured by flipping the sign of each query's gains at random
  (the same flip in every pair, so pairs that move together count as one), a max-statistic
  permutation test at the one-sided level of `z`.
- `shrinkage(choice)` says how far a method may move from the start toward what was kept
  (1 - 1/z^2 of the kept gain's z; DIVE's `shrink` option, off by default).
- `best_of(alternatives)` picks among label-free alternatives (e.g. two starts): nothing was
  trained on the queries that score them, so their plain mean is an honest estimate.

Left out: a nested refit (the curves themselves come from runs that saw the other groups'
queries; only the choice among them is nested); corrections across fits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Choice",
    "Curve",
    "Folds",
    "best_of",
    "choose",
    "max_threshold",
    "out_of_fold",
    "paired_gain",
    "shrinkage",
]


@dataclass(frozen=True)
class Folds:
    """Disjoint held-out sets of row indices into n labelled queries."""

    n: int
    held_out: tuple[np.ndarray, ...]
    scheme: str  # "cross-fit" or "holdout"

    @classmethod
    def cross_fit(cls, n: int, k: int, seed: int) -> Folds:
        """k folds (at most n) of a seeded permutation, sizes differing by at most one."""
        if n < 2 or k < 2:
            raise ValueError(f"cross-fitting needs n >= 2 and k >= 2, got n={n}, k={k}")
        order = np.random.default_rng(seed).permutation(n)
        parts = np.array_split(order, min(k, n))
        return cls(n, tuple(np.sort(p) for p in parts), "cross-fit")

    @classmethod
    def holdout(cls, n: int, rows: Sequence[int] | np.ndarray) -> Folds:
        """One fold: `rows` are held out, every other row trains."""
        held = np.unique(np.asarray(rows, dtype=np.int64))
        if held.size == 0 or held.size >= n or held.min() < 0 or held.max() >= n:
            raise ValueError(f"holdout rows must be a proper, non-empty subset of 0..{n - 1}")
        return cls(n, (held,), "holdout")

    @property
    def scored(self) -> np.ndarray:
        """Every held-out row, sorted: the queries a choice is made on."""
        return np.sort(np.concatenate(self.held_out))

    def training(self, fold: int) -> np.ndarray:
        """The rows that train while `fold` is held out."""
        return np.setdiff1d(np.arange(self.n), self.held_out[fold])


@dataclass(frozen=True)
class Curve:
    """Held-out scores of one candidate: `scores[i, j]` at `steps[i]` for scored query j."""

    steps: tuple[int, ...]
    scores: np.ndarray  # (len(steps), n_scored) float64

    def __post_init__(self) -> None:
        if self.scores.shape[0] != len(self.steps):
            raise ValueError(f"{len(self.steps)} steps but {self.scores.shape[0]} score rows")


@dataclass(frozen=True)
class Choice:
    """What `choose` kept, and the evidence it kept it on."""

    candidate: int | None  # index of the chosen curve; None keeps the base
    step: int  # 0 when the base is kept
    score: float  # mean held-out score of what was kept
    base_score: float  # mean score of the base on the same queries
    best: tuple[int, int]  # (candidate, step) with the best mean, kept or not
    gain: float  # its mean paired gain over the base
    stderr: float  # the standard error of that gain
    z: float  # the threshold it had to pass, in standard errors
    n_queries: int  # how many queries the choice was made on
    nested: bool = False  # gain and stderr are the nested estimate (see `choose`)
    threshold: float | None = None  # the gain the best pair had to beat (`flips`), else None

    def as_record(self) -> dict[str, Any]:
        """JSON-ready fields for a results record or a saved config."""
        record = {
            "candidate": self.candidate,
            "step": self.step,
            "score": round(self.score, 6),
            "base_score": round(self.base_score, 6),
            "best": list(self.best),
            "gain": round(self.gain, 6),
            "stderr": round(self.stderr, 6) if np.isfinite(self.stderr) else None,
            "z": self.z,
            "n_queries": self.n_queries,
            "nested": self.nested,
        }
        if self.threshold is not None:
            record["threshold"] = round(self.threshold, 6)
        return record


# A gain at the bar in exact arithmetic passes, whatever its last bit says: one query up and
# every other level is a gain of exactly one standard error at any n, which float rounding
# put at 1 - 1e-16 or 1 + 1e-16 of the bar, so the same evidence was kept or dropped.
TIE = 1e-9


def paired_gain(scores: np.ndarray, base: np.ndarray) -> tuple[float, float]:
    """Mean of `scores - base` over queries and its standard error (inf for one query)."""
    diff = np.asarray(scores, dtype=np.float64) - np.asarray(base, dtype=np.float64)
    if diff.ndim != 1 or diff.size == 0:
        raise ValueError(f"expected two equal, non-empty 1-d score arrays, got {diff.shape}")
    stderr = float(diff.std(ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else float("inf")
    return float(diff.mean()), stderr


def choose(
    base: np.ndarray,
    curves: Sequence[Curve],
    z: float,
    groups: Sequence[np.ndarray] | None = None,
    flips: int = 0,
) -> Choice:
    """The best (candidate, step) if its paired gain over `base` is real, else the base.

    Ties in mean score go to the earlier candidate, then the earlier step (nearer the start).
    The gain is real when it is positive and at least `z` standard errors (within `TIE`
    of the bar: equal in exact arithmetic is at least). Without `groups`
    it is the best pair's own paired gain; with `groups` (disjoint column indices covering
    every scored query) it is the nested estimate: for each group, the pair with the best
    mean on the other groups, scored against the base on that group alone. With `flips` > 0
    the gain must also beat `max_threshold` of every pair's gains (`flips` sign flips).
    """
    base = _scores("base", base)
    base_score = float(base.mean())
    for c, curve in enumerate(curves):
        if curve.scores.shape[1] != base.size:
            raise ValueError(f"curve {c} scores {curve.scores.shape[1]} queries, base {base.size}")
        if curve.steps:  # a curve of no checks adds no candidate
            _scores(f"curve {c}", curve.scores)
    pairs = [(c, i) for c, curve in enumerate(curves) for i in range(len(curve.steps))]
    if not pairs:
        return Choice(None, 0, base_score, base_score, (-1, 0), 0.0, 0.0, z, base.size)
    table = np.vstack([curve.scores for curve in curves if curve.steps])
    means = table.mean(axis=1)
    row = int(np.argmax(means))  # the first best: candidate order, then step order
    c, i = pairs[row]
    step = curves[c].steps[i]
    if groups is None:
        gain, stderr = paired_gain(table[row], base)
    else:
        gain, stderr = paired_gain(_nested(table, groups), base)
    bar = max_threshold(table - base, z, flips) if flips > 0 else None
    evidence = ((c, step), gain, stderr, z, base.size, groups is not None, bar)
    # z = 0 asks for any gain: 0 x the inf stderr of one query was NaN, and kept the base
    need = 0.0 if z == 0 else z * stderr * (1 - TIE)
    if gain > 0 and gain >= need and (bar is None or gain > bar):
        return Choice(c, step, float(means[row]), base_score, *evidence)
    return Choice(None, 0, base_score, base_score, *evidence)


def _scores(name: str, scores: np.ndarray) -> np.ndarray:
    """`scores` as float64, refused when empty or not finite: NaN won the argmax over a real
    gain (and an empty base's mean was NaN)."""
    out = np.asarray(scores, dtype=np.float64)
    if out.size == 0:
        raise ValueError(f"{name}: no scored queries to choose on")
    if not np.isfinite(out).all():
        raise ValueError(f"{name}: scores must be finite (NaN or inf found)")
    return out


def shrinkage(choice: Choice) -> float:
    """How far to go from the base toward what `choice` kept, in [0, 1]: the positive-part
    James-Stein factor 1 - 1/z^2 of its gain (z = gain / stderr), so a gain at one standard
    error keeps the base and a gain of many keeps nearly all of it; 1 when the gain has no
    spread, 0 when the base was kept."""
    if choice.candidate is None:
        return 0.0
    if choice.stderr <= 0:
        return 1.0
    return max(0.0, 1.0 - (choice.stderr / choice.gain) ** 2) if choice.gain > 0 else 0.0


def max_threshold(gains: np.ndarray, z: float, flips: int) -> float:
    """The gain the best of several pairs reaches by chance, at the one-sided level of `z`.

    `gains[p, j]`: pair p's gain over the base on query j. If no pair truly helps, each
    query's gains are as likely negated (the base and the pairs are exchangeable on it); the
    (1 - alpha) quantile, alpha = P(N(0, 1) > z), of the best pair's mean gain over `flips`
    random sign flips per query (one flip for all of a query's gains) is the bar. For one pair
    it is about z standard errors; for many pairs that move together, little more; for many
    independent ones, the maximum of their noise. The flips come from a fixed seed: the bar is
    a function of the gains.
    """
    gains = np.atleast_2d(np.asarray(gains, dtype=np.float64))
    if gains.size == 0 or flips < 1:
        raise ValueError(f"need gains and flips >= 1, got shape {gains.shape} and {flips}")
    signs = np.random.default_rng(0).choice([-1.0, 1.0], size=(flips, gains.shape[1]))
    best = (signs @ gains.T).max(axis=1) / gains.shape[1]
    alpha = 0.5 * math.erfc(z / math.sqrt(2.0))
    return float(np.quantile(best, 1.0 - alpha))


def _nested(table: np.ndarray, groups: Sequence[np.ndarray]) -> np.ndarray:
    """Per query (column), the score of the row with the best mean over the other groups."""
    n = table.shape[1]
    covered = np.sort(np.concatenate([np.asarray(g, dtype=np.int64) for g in groups]))
    if not np.array_equal(covered, np.arange(n)):
        raise ValueError(f"groups must partition the {n} scored queries")
    if len(groups) < 2:
        raise ValueError("a nested estimate needs at least two groups")
    chosen = np.empty(n)
    for group in groups:
        others = np.ones(n, dtype=bool)
        others[group] = False
        row = int(np.argmax(table[:, others].mean(axis=1)))
        chosen[group] = table[row, group]
    return chosen


TrainRun = Callable[[int, np.ndarray, np.ndarray], Curve]
"""`run(candidate, train_rows, held_out_rows)`: train on the first, score on the second."""


def out_of_fold(folds: Folds, n_candidates: int, run: TrainRun) -> list[Curve]:
    """One curve per candidate, each query scored by the run that did not train on it.

    The columns are `folds.scored`, in order; every fold's run must check at the same steps.
    """
    columns = {int(row): j for j, row in enumerate(folds.scored)}
    curves = []
    for candidate in range(n_candidates):
        steps: tuple[int, ...] | None = None
        scores = np.empty((0, 0))
        for fold, held in enumerate(folds.held_out):
            curve = run(candidate, folds.training(fold), held)
            if steps is None:
                steps = curve.steps
                scores = np.full((len(steps), len(columns)), np.nan)
            elif curve.steps != steps:
                raise ValueError(f"fold {fold} checked at {curve.steps}, fold 0 at {steps}")
            scores[:, [columns[int(r)] for r in held]] = curve.scores
        curves.append(Curve(steps or (), scores))
    return curves


def best_of(alternatives: Mapping[str, np.ndarray]) -> str:
    """The alternative with the best mean score; ties go to the first one given."""
    if not alternatives:
        raise ValueError("no alternatives to choose from")
    names = list(alternatives)
    means = [float(_scores(name, alternatives[name]).mean()) for name in names]
    return names[int(np.argmax(means))]
