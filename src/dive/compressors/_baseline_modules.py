"""Torch building blocks of the published baselines (Matryoshka-Adaptor, Search-Adaptor, SMEC).

Imported only from the baselines' fit paths, so `import dive.compressors` and loading a saved
model never import torch. Holds what more than one of them uses: the optional change of basis
and its fold into the runtime, and `Supervision`, the glue between the labelled queries and
`dive.training` (mining, candidates, validation scores) that the three baselines share. A
piece only one baseline uses lives in its fit module (SMEC's dimension selection in
`dive.compressors._smec_fit`). Left out: the losses (`dive.losses`) and the loop
(`dive.training.loop`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from dive.compressors._baseline import BaselineConfig
from dive.compressors.base import TrainingData
from dive.compressors.pca import principal_axes
from dive.compressors.runtime import Adapter, Runtime
from dive.training.batches import BatchQueue
from dive.training.candidates import ranking_candidates
from dive.training.gate import validation_scores
from dive.training.labels import Labels
from dive.training.loop import finite_outputs
from dive.training.mining import NegativePools, mine_pools
from dive.training.tensors import shared_tensor

Encoder = Callable[[torch.Tensor], torch.Tensor]


def change_of_basis(
    corpus: np.ndarray, basis: str
) -> tuple[np.ndarray | None, Callable[[np.ndarray], torch.Tensor]]:
    """(R, rotate): the D x D orthogonal basis the prefix is taken in (None: the raw prefix)
    and the map from numpy embeddings to tensors in that basis."""
    rot = None if basis == "identity" else principal_axes(corpus, corpus.shape[1])[1]

    def rotate(v: np.ndarray) -> torch.Tensor:
        return shared_tensor(v if rot is None else np.ascontiguousarray(v @ rot.T))

    return rot, rotate


def fold(adapter: Adapter, rot: np.ndarray | None, projection: np.ndarray) -> Runtime:
    """The runtime of `projection @ (u + f(u))` with u = R x (u = x when `rot` is None).

    With R orthogonal, R x + f(R x) = R (x + R^T f(R x)): the adapter's first layer absorbs R,
    its last layer R^T, and the projection becomes `projection @ R`. `projection` (d, D) acts
    on the adapted embedding in the training basis (identity rows for a prefix).
    """
    input_dim = projection.shape[1]
    if rot is None:
        return Runtime(input_dim, adapter=adapter, projection=np.ascontiguousarray(projection))
    folded = Adapter(
        w1=np.ascontiguousarray(adapter.w1 @ rot, dtype=np.float32),
        b1=adapter.b1,
        w2=np.ascontiguousarray(rot.T @ adapter.w2, dtype=np.float32),
        b2=np.ascontiguousarray(rot.T @ adapter.b2, dtype=np.float32),
        activation=adapter.activation,
    )
    return Runtime(
        input_dim, adapter=folded, projection=np.ascontiguousarray(projection @ rot, np.float32)
    )


def map_rows(fn: Encoder, x: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """`fn` applied to `x` in chunks of rows without gradients: only one chunk's
    activations at a time (a pass over the whole corpus held every hidden layer's, several
    times the corpus), and every row's output the same bit for bit."""
    with torch.no_grad():
        first = fn(x[:chunk])
        out = first.new_empty((x.shape[0], *first.shape[1:]))  # filled in place: no cat's copy
        out[: len(first)] = first
        for i in range(chunk, x.shape[0], chunk):
            out[i : i + chunk] = fn(x[i : i + chunk])
        return out


def compress(encode: Encoder, x: torch.Tensor, chunk: int = 8192) -> np.ndarray:
    """`encode` applied to `x` in chunks without gradients, as float32 numpy."""
    return finite_outputs(np.ascontiguousarray(map_rows(encode, x, chunk).numpy(),
                                               dtype=np.float32))


def scatter_candidates(
    values: torch.Tensor, inverse: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """(B, N, k) from values of the distinct candidate rows; zeros where `mask` is False.

    `index_select`, not `values[inverse]`: the backward of advanced indexing with repeated
    indices adds in an order that changes from run to run with more than one torch thread
    (`threads=2` gave another model each time); index_select's adds in index order at any
    count, the order one thread took before."""
    out = values.new_zeros((*mask.shape, values.shape[-1]))
    out[mask] = torch.index_select(values, 0, inverse)
    return out


def snapshot(module: torch.nn.Module) -> Callable[[], Any]:
    return lambda: copy.deepcopy(module.state_dict())


class Supervision:
    """Labelled queries as the baselines train on them: candidates, mining and validation.

    `labels` and `validation` are the training and validation queries as `Labels`
    (`dive.training.labels`, the type DIVE's fit uses too; None when there are none), their
    embeddings mapped by `rotate` into the training basis. Hard negatives come from
    the current model via `dive.training.mining`, candidates via
    `dive.training.candidates`; `scores` is each validation query's nDCG@10.

    `refresh(encode, corpus)` re-mines: without `BaselineConfig.mine_every` at once, for
    every training query (the caller refreshes after each check); with it, lazily, as DIVE
    mines: whenever `batch` has no query batch queued it draws the next `mine_every` and mines
    the pools of just their queries under `encode` as it is then, so no negative comes from a
    ranking more than `mine_every` steps old and a round costs one corpus encoding plus those
    queries, however many are labelled.
    """

    def __init__(
        self,
        train: TrainingData | None,
        rotate: Callable[[np.ndarray], torch.Tensor],
        n_corpus: int,
        config: BaselineConfig,
        *,
        band: int = 50,
        max_positives: int = 8,
    ) -> None:
        queries, held_out = None, None
        if train is not None:  # with no training query the validation ones train (as DIVE
            # pools both): nothing held out, rather than a label-free fit on labels
            queries, held_out = ((train.train, train.validation) if len(train.train)
                                 else (train.validation, None))
        self.labels = Labels.judged(queries, n_corpus, "training", rotate)
        self.validation = Labels.judged(held_out, n_corpus, "validation", rotate)
        self.n_corpus = n_corpus
        self.band = band
        self.max_positives = max_positives
        self.negatives_per_positive = config.negatives_per_positive
        self.hard_fraction = config.hard_fraction
        self.pools: NegativePools | None = None
        self.miner: tuple[Encoder, torch.Tensor] | None = None  # what lazy mining ranks with
        # with mine_every, the query batches of the coming steps
        self.queue = BatchQueue(config.mine_every) if config.mine_every is not None else None

    @property
    def n_queries(self) -> int:
        return 0 if self.labels is None else len(self.labels)

    def refresh(self, encode: Encoder, corpus: torch.Tensor) -> None:
        """Re-mine hard negatives from `encode`'s ranking: now, or (with `mine_every`) for the
        coming batches, the queued ones dropped (see the class docstring)."""
        if self.labels is None:
            return
        if self.queue is None:
            self.pools = self._mined(encode, corpus, self.labels)
        else:
            self.miner = encode, corpus
            self.queue.clear()

    def _mined(self, encode: Encoder, corpus: torch.Tensor, labels: Labels) -> NegativePools:
        return mine_pools(
            compress(encode, labels.embeddings),
            compress(encode, corpus),
            labels.relevant,
            band=self.band,
            index=labels.index,
            exclude=labels.exclude,
        )

    def _queries(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """This batch's query rows; with `mine_every`, from the queue (refilled and mined when
        empty)."""
        size = min(size, self.n_queries)
        if self.queue is None:
            return rng.choice(self.n_queries, size, replace=False)
        return self.queue.next(lambda: rng.choice(self.n_queries, size, replace=False),
                               self._mine_rows)

    def _mine_rows(self, rows: np.ndarray) -> None:
        """The pools of the training queries at `rows`, ranked by the last refresh's model."""
        assert self.labels is not None and self.miner is not None  # `batch` checks
        mined = self._mined(*self.miner, self.labels.subset(rows))
        self.pools = mined.placed(rows, self.n_queries)

    def batch(
        self, size: int, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(query embeddings (B, D), candidate rows (B, N), grades (B, N), mask (B, N))."""
        if self.labels is None or (self.pools is None and self.miner is None):
            raise RuntimeError("no labelled queries, or refresh() was not called")
        qi = self._queries(size, rng)
        assert self.pools is not None
        cand = ranking_candidates(
            qi,
            self.labels.index,
            self.pools,
            self.n_corpus,
            rng,
            max_positives=self.max_positives,
            negatives_per_positive=self.negatives_per_positive,
            hard_fraction=self.hard_fraction,
        )
        return (
            self.labels.embeddings[torch.from_numpy(qi)],
            torch.from_numpy(cand.rows),
            torch.from_numpy(cand.grades),
            torch.from_numpy(cand.mask),
        )

    def scores(self, encode: Encoder, corpus: torch.Tensor) -> np.ndarray:
        """nDCG@10 of each validation query under `encode` (float64; empty without them)."""
        if self.validation is None:
            return np.zeros(0)
        return validation_scores(
            compress(encode, self.validation.embeddings), compress(encode, corpus),
            self.validation.relevant, exclude=self.validation.exclude,
        )
