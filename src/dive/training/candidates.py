"""Graded candidate lists for pairwise ranking losses: positives with grades, then negatives.

Each query of a batch gets up to `max_positives` of its judged-relevant rows (drawn at random
when it has more) with their grades, and `negatives_per_positive` negatives per positive it
got, a `hard_fraction` of them from its hard-negative pool (`dive.training.mining`) and the
rest uniform over the corpus, never a judged-relevant row (a pool short of hard negatives, or
narrower than the share asked for, is made up with random ones). Lists are padded to one width with
a mask, ready for `dive.losses.graded_ranking_loss`. Numpy only; callers index their tensors.

Left out: triplets (DIVE draws one positive and its negatives with `RelevanceIndex` and
`NegativePools` directly) and any weighting of candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dive.training.batches import RelevanceIndex
from dive.training.mining import NegativePools

__all__ = ["RankingCandidates", "ranking_candidates"]


@dataclass(frozen=True)
class RankingCandidates:
    """(B, N) corpus rows, grades (0 for negatives) and a mask of the real entries."""

    rows: np.ndarray  # int64; padded entries hold row 0 and mask False
    grades: np.ndarray  # float32
    mask: np.ndarray  # bool


def ranking_candidates(
    queries: np.ndarray,
    relevance: RelevanceIndex,
    pools: NegativePools,
    n_corpus: int,
    rng: np.random.Generator,
    *,
    max_positives: int = 8,
    negatives_per_positive: int = 10,
    hard_fraction: float = 0.5,
) -> RankingCandidates:
    """Candidates for the query indices `queries` (into `relevance` and `pools`)."""
    if max_positives < 1 or negatives_per_positive < 1:
        raise ValueError(
            f"need max_positives >= 1 and negatives_per_positive >= 1, got "
            f"{max_positives}, {negatives_per_positive}"
        )
    if not 0 <= hard_fraction <= 1:
        raise ValueError(f"hard_fraction must be in [0, 1], got {hard_fraction}")
    queries = np.asarray(queries, dtype=np.int64)
    counts = np.minimum(relevance.counts[queries], max_positives)
    if (counts == 0).any():
        bad = int(queries[np.flatnonzero(counts == 0)[0]])
        raise ValueError(f"query {bad} has no relevant row")
    width_pos = int(counts.max())
    n_neg = negatives_per_positive * width_pos
    # a pool holds at most its band of hard negatives; random ones make up the rest
    hard = min(round(hard_fraction * n_neg), pools.candidates.shape[1])
    negatives = pools.sample(queries, relevance, n_corpus, hard, n_neg - hard, rng)
    b = len(queries)
    rows = np.zeros((b, width_pos + n_neg), dtype=np.int64)
    grades = np.zeros((b, width_pos + n_neg), dtype=np.float32)
    mask = np.zeros((b, width_pos + n_neg), dtype=bool)
    for i, q in enumerate(queries):
        start, stop = relevance.offsets[q], relevance.offsets[q + 1]
        pick = np.arange(start, stop)
        if len(pick) > max_positives:
            pick = np.sort(rng.choice(pick, max_positives, replace=False))
        rows[i, : len(pick)] = relevance.rows[pick]
        grades[i, : len(pick)] = relevance.grades[pick]
        mask[i, : len(pick)] = True
        # this query's share of negatives: hard and random alike, in the same proportion
        want = negatives_per_positive * len(pick)
        want_hard = min(hard, round(hard_fraction * want))
        want_random = min(n_neg - hard, want - want_hard)
        keep = np.concatenate([np.arange(want_hard), hard + np.arange(want_random)])
        rows[i, width_pos + keep] = negatives[i, keep]
        mask[i, width_pos + keep] = True
    return RankingCandidates(rows=rows, grades=grades, mask=mask)
