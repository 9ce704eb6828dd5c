"""Labelled queries as every learned fit trains on them: a tensor, the judgements, their index.

`LabelledQueries` (`dive.compressors.base`) is what a caller hands `fit`; `Labels` is the
same queries on the torch side: the query embeddings as a tensor (in the fit's basis), each
query's `{corpus row: grade}` judgements and their `RelevanceIndex` built once. DIVE
(`dive.compressors._dive_fit`) and the baselines' `Supervision`
(`dive.compressors._baseline_modules`) build them with `Labels.judged` (rows checked against
the corpus, queries without a positive grade left out, a set with none refused); DIVE
cross-fits on `subset`s.

`exclude` carries `LabelledQueries.exclude` along: per query, the corpus row it must never
retrieve (-1: none; None: not given), the evaluation's BEIR ignore_identical_ids. Every
ranking a fit makes of these queries (hard-negative mining, validation scores) leaves that
row out, so the fit trains and chooses on the task the evaluation scores.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dive.compressors.base import LabelledQueries, require_relevant
from dive.errors import DataError
from dive.training.batches import RelevanceIndex

__all__ = ["Labels"]

logger = logging.getLogger(__name__)


@dataclass
class Labels:
    """Labelled queries on the torch side (see the module docstring)."""

    embeddings: torch.Tensor  # (m, D), may share memory with the caller's array
    relevant: Sequence[Mapping[int, int]]  # per query: corpus row -> grade
    index: RelevanceIndex
    exclude: np.ndarray | None = None  # (m,) int64 corpus row never retrieved, -1 none

    @classmethod
    def judged(
        cls,
        queries: LabelledQueries | None,
        n_corpus: int,
        name: str,
        to_tensor: Callable[[np.ndarray], torch.Tensor] = torch.from_numpy,
    ) -> Labels | None:
        """The queries with a positive grade (None: no queries), their embeddings through
        `to_tensor` (e.g. into a basis), after checking every judged row is in the corpus
        (`DataError` naming the `name` query that is not). A query left without a relevant
        document (its judged documents are not in the corpus) has nothing to train or score
        on: it is left out, with a warning; queries none of which has one are a `DataError`
        (the fit would train label-free, as if on them)."""
        if queries is None:
            return None
        for i, rel in enumerate(queries.relevant):
            bad = [r for r in rel if not 0 <= int(r) < n_corpus]
            if bad:
                raise DataError(
                    f"{name} query {i}: relevant corpus row {bad[0]} is outside 0..{n_corpus - 1}"
                )
        if len(queries):
            require_relevant(queries.relevant, f"{name} queries")
        keep = [i for i, rel in enumerate(queries.relevant) if any(g > 0 for g in rel.values())]
        if len(keep) < len(queries.relevant):
            logger.warning("%d of %d %s queries have no relevant document in the corpus (none "
                           "graded above 0) and are left out", len(queries.relevant) - len(keep),
                           len(queries.relevant), name)
        if not keep:
            return None
        array = np.ascontiguousarray(queries.embeddings[keep], dtype=np.float32)
        relevant = [{int(r): int(g) for r, g in queries.relevant[i].items() if g > 0} for i in keep]
        exclude = queries.excluded()
        return cls(to_tensor(array), relevant, RelevanceIndex.from_relevant(relevant),
                   None if exclude is None else exclude[keep])

    @classmethod
    def joined(cls, parts: Sequence[Labels]) -> Labels:
        """`parts` one after another, as one set."""
        relevant = [rel for p in parts for rel in p.relevant]
        embeddings = torch.cat([p.embeddings for p in parts])
        exclude = None
        if any(p.exclude is not None for p in parts):
            exclude = np.concatenate([_rows(p) for p in parts])
        return cls(embeddings, relevant, RelevanceIndex.from_relevant(relevant), exclude)

    def __len__(self) -> int:
        return len(self.relevant)

    def subset(self, rows: np.ndarray) -> Labels:
        """The labelled queries at `rows`, in that order."""
        relevant = [self.relevant[int(r)] for r in rows]
        index = torch.from_numpy(np.asarray(rows, dtype=np.int64))
        exclude = None if self.exclude is None else self.exclude[index.numpy()]
        return Labels(self.embeddings[index], relevant, RelevanceIndex.from_relevant(relevant),
                      exclude)


def _rows(labels: Labels) -> np.ndarray:
    """`labels.exclude`, with -1 (none) for every query when it is None."""
    if labels.exclude is None:
        return np.full(len(labels), -1, dtype=np.int64)
    return labels.exclude
