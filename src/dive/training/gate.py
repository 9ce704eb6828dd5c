"""Validation gate and early stopping, shared by every learned method.

The gate is offered a checkpoint every `every` steps with its validation score (nDCG@10 of
held-out labelled queries, `validation_ndcg`) and keeps a copy of the best one. The initial
model is checkpoint 0, offered before any step: a fit therefore never ends worse *on
validation* than where it started, which is what lets DIVE promise "never below its PCA
start" (SPEC 4.1). `patience` stops a run after that many checks without improvement.

Ties: `prefer_later=True` lets a later checkpoint with an equal score replace the best (with
a handful of validation queries, equal scores are common and the trained model is the prior
choice); False keeps the earlier one. Left out: smoothing of noisy validation curves and
anything about how states are copied (the caller passes a function that makes the copy, so
the gate only pays for it when a checkpoint wins).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dive.evaluate.metrics import ndcg_per_query
from dive.evaluate.search import top_k

__all__ = [
    "Checkpoint",
    "ValidationGate",
    "log_rank_scores",
    "validation_ndcg",
    "validation_scores",
]


def validation_ndcg(
    queries: np.ndarray, corpus: np.ndarray, relevant: Sequence[Mapping[int, int]], k: int = 10
) -> float:
    """Mean nDCG@k of `queries` against `corpus`, both already in the compared space."""
    return float(validation_scores(queries, corpus, relevant, k).mean())


def validation_scores(
    queries: np.ndarray,
    corpus: np.ndarray,
    relevant: Sequence[Mapping[int, int]],
    k: int = 10,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """nDCG@k of each query against `corpus` (float64, one per query), for paired choices.
    `exclude[i]`: a corpus row query i never retrieves (-1: none), as in the evaluation."""
    ranked, _ = top_k(queries, corpus, k, exclude=exclude)
    return ndcg_per_query(ranked, relevant, k=k)


SCORE_BLOCK = 1 << 24  # query-by-corpus scores held at once by `log_rank_scores` (64 MB)


def log_rank_scores(
    queries: np.ndarray,
    corpus: np.ndarray,
    relevant: Sequence[Mapping[int, int]],
    exclude: np.ndarray | None = None,
    chunk: int = 64,
) -> np.ndarray:
    """Mean -log(rank) of each query's relevant documents in the whole corpus (float64, one per
    query; 0 for a query without one), for paired choices between fixed models.

    Every relevant document counts at whatever depth it sits, so two models that differ only
    below the top 10 still differ here: per query, far less noise than nDCG@10, which moves
    only when a document crosses rank 10. Rank 1 + the rows scoring strictly higher (ties in
    the document's favour); `exclude[i]` (-1: none) is never counted, as in the evaluation.
    Memory stays bounded at any corpus size: at most `SCORE_BLOCK` scores at a time (`chunk`
    queries, fewer on a large corpus) and one sorted row per query.
    """
    out = np.zeros(len(queries), dtype=np.float64)
    n = corpus.shape[0]
    rows = max(1, min(chunk, SCORE_BLOCK // max(n, 1)))  # a score block of bounded size
    for start in range(0, len(queries), rows):
        scores = queries[start : start + rows] @ corpus.T
        for offset, row in enumerate(scores):
            i = start + offset
            docs = np.array([j for j, g in relevant[i].items() if g > 0], dtype=np.int64)
            if docs.size == 0:
                continue
            if exclude is not None and exclude[i] >= 0:
                row[exclude[i]] = -np.inf
            # rows scoring strictly higher than each document: n minus those at or below it
            higher = n - np.searchsorted(np.sort(row), row[docs], side="right")
            out[i] = -np.log(1 + higher).mean()
    return out


@dataclass
class Checkpoint:
    """One offered checkpoint: where it came from, its score and (for the best) its state."""

    step: int
    score: float
    state: Any = None


@dataclass
class ValidationGate:
    """Keep the best-scoring checkpoint; say when `patience` checks brought nothing better."""

    every: int = 25
    patience: int | None = None  # checks without improvement before stopping; None: never
    min_delta: float = 0.0  # an improvement must beat the best by more than this
    prefer_later: bool = False  # a later checkpoint with an equal score wins the tie
    best: Checkpoint | None = None
    history: list[tuple[int, float]] = field(default_factory=list)
    _stale: int = 0

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"every must be >= 1, got {self.every}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}")
        if self.min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {self.min_delta}")

    def due(self, step: int) -> bool:
        """Whether `step` (1-based, after that many updates) is a check point."""
        return step % self.every == 0

    def offer(self, step: int, score: float, state: Callable[[], Any]) -> bool:
        """Record a check; keep `state()` if it is the new best. Returns True if it was."""
        self.history.append((step, float(score)))
        if self.best is None:
            better = True
        elif self.prefer_later:
            better = score >= self.best.score + self.min_delta
        else:
            better = score > self.best.score + self.min_delta
        if better:
            self.best = Checkpoint(step=step, score=float(score), state=state())
            self._stale = 0
        else:
            self._stale += 1
        return better

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self._stale >= self.patience
