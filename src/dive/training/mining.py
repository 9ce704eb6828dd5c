"""Negatives for ranking losses: hard ones from the current model's ranking, plus random ones.

Hard negatives come from each training query's top ranks under the model being trained,
with every document judged relevant for that query removed, so a judged positive is never
used as a negative. Two guards against *unjudged* positives (false negatives), which dominate
the top of the ranking on collections with many relevant documents per query (NFCorpus):
`skip_top` drops the first non-relevant ranks outright, and `band` limits hard negatives to
the ranks just below. Random negatives (uniform over the corpus, judged positives rejected)
keep a share of easy contrast and dilute any false negative that slips through.

The pools are refreshed by the caller (DIVE: every few steps) from fresh rankings;
this module only turns rankings into pools and pools into per-batch negatives. Left out:
score-based filters (e.g. "below 95% of the positive's score") and cross-encoder denoising.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dive.evaluate.search import top_k
from dive.training.batches import RelevanceIndex

__all__ = ["NegativePools", "in_batch_negatives", "mine_pools", "pools_from_rankings"]


@dataclass(frozen=True)
class NegativePools:
    """Per query, up to `band` candidate hard negatives, padded with -1."""

    candidates: np.ndarray  # (m, band) int64 corpus rows, -1 where the query has fewer
    lengths: np.ndarray  # (m,) int64 valid candidates per query

    @classmethod
    def empty(cls, n_queries: int) -> NegativePools:
        """Pools with no hard candidates: `sample` then draws random negatives only."""
        return cls(np.full((n_queries, 1), -1, np.int64), np.zeros(n_queries, np.int64))

    def placed(self, rows: np.ndarray, n_queries: int) -> NegativePools:
        """These pools, mined for queries `rows` of `n_queries`, as pools over all of them
        (a query outside `rows` gets an empty pool)."""
        candidates = np.full((n_queries, self.candidates.shape[1]), -1, dtype=np.int64)
        lengths = np.zeros(n_queries, dtype=np.int64)
        candidates[rows], lengths[rows] = self.candidates, self.lengths
        return NegativePools(candidates, lengths)

    def sample(
        self,
        queries: np.ndarray,
        relevance: RelevanceIndex,
        n_corpus: int,
        hard: int,
        random: int,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """(len(queries), hard + random) negative rows for the given query indices.

        Hard ones are drawn without replacement from each query's pool; where a pool is
        short, random negatives fill the gap. Random draws that hit a judged positive are
        redrawn (a few rounds, then left to the next row of candidates: see below).
        """
        if hard < 0 or random < 0 or hard + random == 0:
            raise ValueError(
                f"need hard >= 0, random >= 0 and hard + random > 0, got {hard}, {random}"
            )
        b = len(queries)
        out = np.empty((b, hard + random), dtype=np.int64)
        if hard:
            lengths = self.lengths[queries]
            keys = rng.random((b, self.candidates.shape[1]))
            keys[np.arange(self.candidates.shape[1])[None, :] >= lengths[:, None]] = np.inf
            order = np.argsort(keys, axis=1)[:, :hard]
            picked = np.take_along_axis(self.candidates[queries], order, axis=1)
            short = np.arange(hard)[None, :] >= lengths[:, None]
            out[:, :hard] = picked
        else:
            short = np.zeros((b, 0), dtype=bool)
        # random negatives: the `random` columns plus any hard slot a short pool left empty
        fill = np.concatenate([short, np.ones((b, random), dtype=bool)], axis=1)
        out[fill] = rng.integers(0, n_corpus, int(fill.sum()))
        for _ in range(8):
            clash = fill & relevance.is_relevant(queries, out)
            if not clash.any():
                break
            out[clash] = rng.integers(0, n_corpus, int(clash.sum()))
        return out


def pools_from_rankings(
    ranked: np.ndarray,
    relevant: Sequence[Mapping[int, int]],
    *,
    skip_top: int = 0,
    band: int = 30,
    index: RelevanceIndex | None = None,
) -> NegativePools:
    """Turn (m, k) rankings into hard-negative pools.

    For query i, judged-relevant rows (grade > 0) are removed from ranked[i]; of the rest,
    the first `skip_top` are skipped and the next `band` form the pool. `index` is
    `RelevanceIndex.from_relevant(relevant)` if the caller already has it.
    """
    if skip_top < 0 or band < 1:
        raise ValueError(f"need skip_top >= 0 and band >= 1, got {skip_top}, {band}")
    ranked = np.asarray(ranked, dtype=np.int64)
    if ranked.ndim != 2 or ranked.shape[0] != len(relevant):
        raise ValueError(
            f"ranked must be (m, k) with m = {len(relevant)} queries, got {ranked.shape}"
        )
    if index is None:
        index = RelevanceIndex.from_relevant(relevant)
    judged = index.is_relevant(np.arange(len(relevant)), ranked)
    keep = ~judged & (ranked >= 0)  # -1: no row (`top_k` on a corpus of at most k rows)
    # position of each kept row among the kept rows of its query
    position = np.cumsum(keep, axis=1) - 1
    chosen = keep & (position >= skip_top) & (position < skip_top + band)
    candidates = np.full((ranked.shape[0], band), -1, dtype=np.int64)
    q, col = np.nonzero(chosen)
    candidates[q, position[q, col] - skip_top] = ranked[q, col]
    return NegativePools(candidates=candidates, lengths=chosen.sum(axis=1).astype(np.int64))


def mine_pools(
    queries: np.ndarray,
    corpus: np.ndarray,
    relevant: Sequence[Mapping[int, int]],
    *,
    skip_top: int = 0,
    band: int = 30,
    index: RelevanceIndex | None = None,
    max_extra: int = 64,
    exclude: np.ndarray | None = None,
    rows: np.ndarray | None = None,
) -> NegativePools:
    """Rank `corpus` for `queries` (already in the model's space) and build the pools.

    Ranks `skip_top + band` plus up to `max_extra` more, so that removing a query's judged
    positives from its ranking usually still leaves a full pool. The cap keeps mining cheap
    on collections with hundreds of judgements per query (NFCorpus); a pool that comes up
    short is topped up with random negatives by `NegativePools.sample`. `exclude[i]` is a
    corpus row query i never retrieves (-1: none): it is never one of its hard negatives.
    With `rows` (sorted, unique), `corpus` holds only those corpus rows, in that order: the
    ranking is over them, and pools, `relevant` and `exclude` speak of corpus rows as always.
    """
    most_judged = max((len(r) for r in relevant), default=0)
    depth = min(corpus.shape[0], skip_top + band + min(most_judged, max_extra))
    if rows is not None and exclude is not None:
        at = np.minimum(np.searchsorted(rows, exclude), len(rows) - 1)
        exclude = np.where(rows[at] == exclude, at, -1)
    ranked, _ = top_k(queries, corpus, depth, exclude=exclude)
    if rows is not None:
        ranked = np.where(ranked >= 0, rows[ranked], -1)
    return pools_from_rankings(ranked, relevant, skip_top=skip_top, band=band, index=index)


def in_batch_negatives(
    queries: np.ndarray,
    batch_rows: np.ndarray,
    relevance: RelevanceIndex,
    count: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """(len(queries), count) positions into `batch_rows` to use as random negatives.

    The step's corpus batch is already a uniform sample of the corpus and already encoded,
    so drawing random negatives from it costs no extra forward rows. Positions whose row is
    judged relevant for the query are redrawn among the batch's other rows; only a query for
    which the whole batch is relevant keeps them (there is nothing else to draw).
    """
    positions = rng.integers(0, len(batch_rows), (len(queries), count))
    clash = relevance.is_relevant(queries, batch_rows[positions])
    for i in np.flatnonzero(clash.any(axis=1)):
        judged = relevance.is_relevant(queries[i : i + 1], batch_rows[None, :])[0]
        allowed = np.flatnonzero(~judged)
        if allowed.size:
            positions[i, clash[i]] = rng.choice(allowed, int(clash[i].sum()))
    return positions
