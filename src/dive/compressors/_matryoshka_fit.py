"""Torch side of Matryoshka-Adaptor's fit (imported only when fitting)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from dive.compressors._baseline_modules import Supervision, fold, scatter_candidates, snapshot
from dive.compressors._baseline_select import (
    fit_grid,
    fit_space,
    gated_run,
    plain_adam,
    prefix_start,
    ungated_summary,
)
from dive.compressors.base import Summarise, TrainingData
from dive.compressors.matryoshka_adaptor import target_dims
from dive.compressors.runtime import Runtime
from dive.compressors.truncate import prefix_projection
from dive.errors import DataError
from dive.evaluate.search import top_k
from dive.losses.pairwise_similarity import (
    pairwise_similarity_loss,
    prefix_cosine,
    topk_similarity_loss,
)
from dive.losses.ranking import graded_ranking_loss
from dive.losses.reconstruction import reconstruction_loss
from dive.training.adapter import ResidualAdapter
from dive.training.loop import Loss

if TYPE_CHECKING:
    from dive.compressors.matryoshka_adaptor import MatryoshkaAdaptorUnsup, MatryoshkaConfig


def map_candidates(
    fn: Callable[[torch.Tensor], torch.Tensor], rows: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """(B, N, k): `fn(corpus rows)` for each real candidate, zeros for padding.

    Each distinct row goes through `fn` once, however many queries share it and however much
    padding the batch holds: the adapter's cost follows the real candidates only.
    """
    unique, inverse = torch.unique(rows[mask], return_inverse=True)
    return scatter_candidates(fn(unique), inverse, mask)


def fit_matryoshka(
    model: MatryoshkaAdaptorUnsup,
    corpus: np.ndarray,
    train: TrainingData | None,
    rng: np.random.Generator,
) -> tuple[Runtime, dict[str, Any], Summarise]:
    cfg = model.options
    if len(corpus) < 2:  # its pairwise and top-k losses compare corpus rows with each other
        raise DataError(f"{model.method}: the corpus has {len(corpus)} row; its losses compare "
                        "corpus rows, so it needs at least 2")
    n, width, dim, basis, starts, rot, rotate, x = fit_space(model, corpus, train, prefix_start)
    dims = target_dims(width, dim, cfg.dims)
    # L_topk's neighbours: k nearest in the original space, within a pool of corpus rows so
    # the exact search stays affordable on large corpora.
    pool = np.arange(n) if n <= cfg.max_pool else np.sort(rng.choice(n, cfg.max_pool, False))
    k = max(1, min(cfg.neighbours, len(pool) - 1))
    x_pool = x.numpy()[pool]
    nn_idx, _ = top_k(x_pool, x_pool, k, exclude=np.arange(len(pool)))
    pool_rows = torch.from_numpy(pool)
    neighbour_rows = torch.from_numpy(pool[nn_idx])  # (pool, k) corpus rows
    batch = min(cfg.corpus_batch, len(pool))

    adapter = ResidualAdapter(width, cfg.hidden or width, "relu")
    sup = Supervision(train, rotate, n, cfg)

    def unsup_loss(anchor_pos: torch.Tensor) -> torch.Tensor:
        anchors, neigh = x[pool_rows[anchor_pos]], x[neighbour_rows[anchor_pos]]
        flat = torch.cat([anchors, neigh.reshape(-1, width)])
        adapted = adapter(flat)
        a_hat, n_hat = adapted[: len(anchors)], adapted[len(anchors) :].reshape(neigh.shape)
        return (
            cfg.weight_pair * pairwise_similarity_loss(a_hat, anchors, dims)
            + cfg.weight_topk * topk_similarity_loss(a_hat, n_hat, anchors, neigh, dims)
            + cfg.weight_rec * reconstruction_loss(adapted, flat)
        )

    def rank_loss(c: MatryoshkaConfig, run_rng: np.random.Generator) -> torch.Tensor:
        q, rows, grades, mask = sup.batch(c.query_batch, run_rng)
        q_hat = adapter(q)
        c_hat = map_candidates(lambda r: adapter(x[r]), rows, mask)
        return sum(  # type: ignore[return-value]
            graded_ranking_loss(prefix_cosine(q_hat[:, None, :], c_hat, m), grades, mask)
            for m in dims
        )

    def encode(v: torch.Tensor) -> torch.Tensor:
        return F.normalize(adapter(v)[:, :dim], dim=-1)

    # Stage 1 (unsupervised) is gated on its own objective over a fixed sample of anchors, as
    # the paper early-stops on its training losses: drawn from the pool the batches draw from
    # (not held out: the corpus is what is searched, so fitting it is the goal), it reads the
    # loss without the batches' noise. Stage 2 on validation nDCG@10 (or none: see below).
    fixed = torch.from_numpy(rng.choice(len(pool), min(512, len(pool)), replace=False))

    def fixed_sample_score() -> np.ndarray:
        with torch.no_grad():
            return np.array([-float(unsup_loss(fixed))])

    def step_loss(c: MatryoshkaConfig | None, run_rng: np.random.Generator) -> Loss:
        """Stage 1's loss (`c` None), or stage 2's with the ranking term of setting `c`."""

        def loss() -> tuple[torch.Tensor, dict[str, float]]:
            anchor_pos = torch.from_numpy(run_rng.choice(len(pool), batch, replace=False))
            total = unsup_loss(anchor_pos)
            if c is not None:
                total = total + c.weight_rank * rank_loss(c, run_rng)
            return total, {"loss": float(total.detach())}

        return loss

    stage1 = gated_run(
        loss=step_loss(None, rng),
        optimiser=plain_adam(adapter.parameters())(cfg),
        state=snapshot(adapter),
        scores=fixed_sample_score,
        start=fixed_sample_score(),
        refresh=None,
        every=cfg.eval_every,
        patience_steps=cfg.patience_steps,
        steps=cfg.steps,
    )
    adapter.load_state_dict(stage1.state())
    diagnostics: dict[str, Any] = {"dims": dims, "basis": basis, "unsupervised": stage1.record()}
    if starts:
        diagnostics["start_ndcg@10"] = starts
    if sup.labels is None or cfg.supervised_steps == 0:
        runtime = fold(adapter.to_runtime(), rot, prefix_projection(dim, width))
        return runtime, diagnostics, partial(ungated_summary, stage1, basis)

    # Stage 2: each setting of the grid from the end of stage 1; without validation queries
    # there is no score to choose on, and the configured setting keeps its last state.
    selected = fit_grid(cfg, sup, encode, x, module=adapter, steps=cfg.supervised_steps,
                        loss=lambda c: step_loss(c, copy.deepcopy(rng)),
                        optimiser=plain_adam(adapter.parameters()))
    diagnostics["supervised"] = selected.record()
    runtime = fold(adapter.to_runtime(), rot, prefix_projection(dim, width))
    return runtime, diagnostics, partial(selected.summary, basis)
