"""Torch side of Matryoshka-Adaptor's fit (imported only when fitting)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from dive.compressors._baseline_modules import (
    Supervision,
    change_of_basis,
    fold,
    make_gate,
    map_candidates,
    snapshot,
)
from dive.compressors.base import TrainingData
from dive.compressors.runtime import Runtime
from dive.compressors.truncate import prefix_projection
from dive.evaluate.search import top_k
from dive.losses.pairwise_similarity import (
    pairwise_similarity_loss,
    prefix_cosine,
    topk_similarity_loss,
)
from dive.losses.ranking import graded_ranking_loss
from dive.losses.reconstruction import reconstruction_loss
from dive.training.adapter import ResidualAdapter
from dive.training.loop import Loss, TrainingLoop
from dive.training.optim import AdamW

if TYPE_CHECKING:
    from dive.compressors.matryoshka_adaptor import MatryoshkaAdaptorUnsup


def fit_matryoshka(
    model: MatryoshkaAdaptorUnsup,
    corpus: np.ndarray,
    train: TrainingData | None,
    rng: np.random.Generator,
) -> tuple[Runtime, dict[str, Any]]:
    cfg = model.options
    n, width = corpus.shape
    dim = model.dim or width
    dims = sorted({dim, width})
    rot, rotate = change_of_basis(corpus, cfg.basis)
    x = rotate(corpus)
    # L_topk's neighbours: k nearest in the original space, within a pool of corpus rows so
    # the exact search stays affordable on large corpora.
    pool = np.arange(n) if n <= cfg.max_pool else np.sort(rng.choice(n, cfg.max_pool, False))
    k = max(1, min(cfg.neighbours, len(pool) - 1))
    x_pool = x.numpy()[pool]
    nn_idx, _ = top_k(x_pool, x_pool, k, exclude=np.arange(len(pool)))
    pool_rows = torch.from_numpy(pool)
    neighbour_rows = torch.from_numpy(pool[nn_idx])  # (pool, k) corpus rows
    batch = min(cfg.batch_size, len(pool))

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

    def rank_loss() -> torch.Tensor:
        q, rows, grades, mask = sup.batch(cfg.batch_size, rng)
        q_hat = adapter(q)
        c_hat = map_candidates(lambda r: adapter(x[r]), rows, mask)
        return sum(  # type: ignore[return-value]
            graded_ranking_loss(prefix_cosine(q_hat[:, None, :], c_hat, m), grades, mask)
            for m in dims
        )

    def encode(v: torch.Tensor) -> torch.Tensor:
        return F.normalize(adapter(v)[:, :dim], dim=-1)

    # Stage 1 (unsupervised) is gated on its own objective over held-out anchors, as the paper
    # early-stops on its training losses; stage 2 on validation nDCG@10 (or none: see below).
    held_out = torch.from_numpy(rng.choice(len(pool), min(512, len(pool)), replace=False))

    def held_out_score() -> float:
        with torch.no_grad():
            return -float(unsup_loss(held_out))

    def step_loss(supervised: bool) -> Loss:
        def loss() -> tuple[torch.Tensor, dict[str, float]]:
            anchor_pos = torch.from_numpy(rng.choice(len(pool), batch, replace=False))
            total = unsup_loss(anchor_pos)
            if supervised:
                total = total + cfg.weight_rank * rank_loss()
            return total, {"loss": float(total.detach())}

        return loss

    diagnostics: dict[str, Any] = {"dims": dims}
    stages = [("unsupervised", cfg.steps, False)]
    if sup.labels is not None and cfg.supervised_steps > 0:
        stages.append(("supervised", cfg.supervised_steps, True))
    for name, steps, supervised in stages:
        # Stage 2 without validation queries has no score to gate on: it keeps the last state.
        gated = not supervised or sup.validation is not None
        gate = make_gate(cfg.eval_every, cfg.patience)
        gate.offer(0, sup.score(encode, x) if supervised else held_out_score(), snapshot(adapter))
        if supervised:
            sup.refresh(encode, x)
        loop = TrainingLoop(
            loss=step_loss(supervised),
            optimiser=AdamW(adapter.parameters(), lr=cfg.lr, weight_decay=0.0),
            gate=gate,
            check=sup.check(encode, x) if supervised else lambda _s, _w: held_out_score(),
            state=snapshot(adapter),
            after_check=sup.refresher(encode, x) if supervised else None,
        )
        loop.run(steps)
        assert gate.best is not None
        if gated:
            adapter.load_state_dict(gate.best.state)
        diagnostics[name] = {
            "best_step": gate.best.step if gated else loop.step,
            "best_score": gate.best.score,
            "steps_run": loop.step,
            "first_loss": loop.first.get("loss"),
            "last_loss": loop.last.get("loss"),
            "history": [(s, round(v, 4)) for s, v in gate.history],
        }
    return fold(adapter.to_runtime(), rot, prefix_projection(dim, width)), diagnostics
