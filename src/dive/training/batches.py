"""Sampling training examples from labelled queries: rows, positives, query batches.

Labels arrive as one `{corpus row: grade}` dict per query (`LabelledQueries.relevant`).
`RelevanceIndex` flattens them once into arrays so that drawing a positive for each query of
a batch, or testing "is row r judged relevant for query q", is vectorised numpy instead of
Python loops in the training step. Shared by every supervised method.

Left out: negatives (`dive.training.mining`) and anything torch (callers index their tensors).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["BatchQueue", "RelevanceIndex", "sample_rows"]


@dataclass(frozen=True)
class RelevanceIndex:
    """Judged-relevant (grade > 0) corpus rows of m queries, flattened CSR-style."""

    offsets: np.ndarray  # (m + 1,) int64: query i owns rows[offsets[i]:offsets[i + 1]]
    rows: np.ndarray  # (nnz,) int64 corpus rows, sorted within each query
    grades: np.ndarray  # (nnz,) float64 grades (> 0)

    @classmethod
    def from_relevant(cls, relevant: Sequence[Mapping[int, int]]) -> RelevanceIndex:
        counts = np.zeros(len(relevant) + 1, dtype=np.int64)
        rows: list[int] = []
        grades: list[float] = []
        for i, rel in enumerate(relevant):
            judged = sorted((int(r), float(g)) for r, g in rel.items() if g > 0)
            counts[i + 1] = len(judged)
            rows.extend(r for r, _ in judged)
            grades.extend(g for _, g in judged)
        return cls(
            offsets=np.cumsum(counts),
            rows=np.asarray(rows, dtype=np.int64),
            grades=np.asarray(grades, dtype=np.float64),
        )

    def __len__(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @property
    def counts(self) -> np.ndarray:
        """Relevant rows per query, (m,)."""
        return np.diff(self.offsets)

    def sample_positives(
        self, queries: np.ndarray, rng: np.random.Generator, *, by_grade: bool = False
    ) -> np.ndarray:
        """One relevant row per entry of `queries` (indices into this index), uniformly, or
        with `by_grade` in proportion to its grade, as linear-gain nDCG weighs it (a query whose
        rows share one grade draws as uniformly, draw for draw: binary labels are unchanged).

        Every query in `queries` must have at least one relevant row.
        """
        counts = self._counts_of(queries)
        u = rng.random(len(queries))
        pick = np.minimum((u * counts).astype(np.int64), counts - 1)
        if by_grade:
            for j, q in enumerate(queries.tolist()):
                grades = self.grades[self.offsets[q] : self.offsets[q + 1]]
                if grades.min() != grades.max():
                    cumulative = np.cumsum(grades)
                    at = np.searchsorted(cumulative, u[j] * cumulative[-1], side="right")
                    pick[j] = min(int(at), len(grades) - 1)
        return self.rows[self.offsets[queries] + pick]

    def sample_distinct(
        self, queries: np.ndarray, per_query: int, rng: np.random.Generator, *,
        by_grade: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Up to `per_query` distinct relevant rows for each entry of `queries`, uniformly or
        (`by_grade`) with chances in proportion to their grades, as `sample_positives`.

        Returns (owner, rows): `rows[i]` is relevant to `queries[owner[i]]`, each entry's rows
        side by side; an entry with fewer relevant rows gets all of them. With `per_query`
        = 1 this is `sample_positives`, draw for draw.
        """
        if per_query == 1:
            return np.arange(len(queries)), self.sample_positives(queries, rng, by_grade=by_grade)
        counts = self._counts_of(queries)
        picks = []
        for q, c in zip(queries.tolist(), counts.tolist(), strict=True):
            grades = self.grades[self.offsets[q] : self.offsets[q + 1]]
            weights = grades / grades.sum() if by_grade and grades.min() != grades.max() else None
            picks.append(self.offsets[q] + rng.choice(c, min(per_query, c), replace=False,
                                                      p=weights))
        owner = np.repeat(np.arange(len(queries)), [len(p) for p in picks])
        return owner, self.rows[np.concatenate(picks)]

    def _counts_of(self, queries: np.ndarray) -> np.ndarray:
        """Relevant rows of each of `queries`; ValueError if one has none to sample from."""
        counts = self.counts[queries]
        if (counts == 0).any():
            bad = int(queries[np.flatnonzero(counts == 0)[0]])
            raise ValueError(f"query {bad} has no relevant row to sample a positive from")
        return counts

    def is_relevant(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Boolean array, rows.shape: is rows[i, ...] judged relevant for queries[i]?"""
        rows = np.asarray(rows, dtype=np.int64)
        flat = rows.reshape(len(queries), -1)
        out = np.zeros(flat.shape, dtype=bool)
        for j, q in enumerate(np.asarray(queries, dtype=np.int64)):
            judged = self.rows[self.offsets[q] : self.offsets[q + 1]]
            if judged.size:
                pos = np.searchsorted(judged, flat[j])
                pos = np.minimum(pos, judged.size - 1)
                out[j] = judged[pos] == flat[j]
        return out.reshape(rows.shape)


def sample_rows(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """`size` row indices in [0, n), without replacement when size <= n (int64)."""
    if n < 1:
        raise ValueError(f"cannot sample from {n} rows")
    if size <= n:
        return rng.choice(n, size=size, replace=False).astype(np.int64)
    return rng.integers(0, n, size=size, dtype=np.int64)


class BatchQueue:
    """Query batches drawn `ahead` at a time, so that the hard negatives of all of them are
    mined at once, from the model as it is when they are drawn (DIVE's and the baselines'
    `mine_every`): no negative comes from a ranking more than `ahead` steps old, and a round
    of mining reads only those batches' queries."""

    def __init__(self, ahead: int) -> None:
        self.ahead = ahead
        self.queued: list[np.ndarray] = []

    def next(
        self, draw: Callable[[], np.ndarray], mine: Callable[[np.ndarray], None]
    ) -> np.ndarray:
        """The next batch; with none queued, `ahead` are drawn (`draw()` each) and `mine` is
        first given the sorted union of their rows."""
        if not self.queued:
            self.queued = [draw() for _ in range(self.ahead)]
            mine(np.unique(np.concatenate(self.queued)))
        return self.queued.pop(0)

    def clear(self) -> None:
        """Drop the queued batches (the next call draws and mines afresh)."""
        self.queued = []
