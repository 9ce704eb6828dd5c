"""Torch side of Search-Adaptor's fit (imported only when fitting)."""

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
    scatter_candidates,
    snapshot,
)
from dive.compressors.base import TrainingData
from dive.compressors.runtime import Runtime
from dive.compressors.truncate import prefix_projection
from dive.losses.query_prediction import query_prediction_loss
from dive.losses.ranking import graded_ranking_loss
from dive.losses.reconstruction import reconstruction_loss
from dive.training.adapter import ResidualAdapter
from dive.training.loop import TrainingLoop
from dive.training.optim import AdamW

if TYPE_CHECKING:
    from dive.compressors.search_adaptor import SearchAdaptor


def fit_search_adaptor(
    model: SearchAdaptor,
    corpus: np.ndarray,
    train: TrainingData | None,
    rng: np.random.Generator,
) -> tuple[Runtime, dict[str, Any]]:
    cfg = model.options
    n, width = corpus.shape
    dim = model.dim or width
    rot, rotate = change_of_basis(corpus, cfg.basis)
    x = rotate(corpus)
    adapter = ResidualAdapter(width, cfg.hidden or width, "relu")
    # The query predictor lives only here: the runtime below is built from `adapter` alone.
    predictor = ResidualAdapter(dim, dim, "relu")
    sup = Supervision(train, rotate, n, cfg)
    diagnostics: dict[str, Any] = {}
    if sup.labels is None:
        diagnostics["note"] = "no labelled queries: returned the untrained start"
        return fold(adapter.to_runtime(), rot, prefix_projection(dim, width)), diagnostics

    def encode(v: torch.Tensor) -> torch.Tensor:
        return F.normalize(adapter(v)[:, :dim], dim=-1)

    def objective() -> tuple[torch.Tensor, dict[str, float]]:
        q, rows, grades, mask = sup.batch(cfg.batch_size, rng)
        q_hat = adapter(q)
        z_q = F.normalize(q_hat[:, :dim], dim=-1)
        unique, inverse = torch.unique(rows[mask], return_inverse=True)
        c = x[unique]  # each distinct candidate once
        c_hat = adapter(c)
        z_c = scatter_candidates(F.normalize(c_hat[:, :dim], dim=-1), inverse, mask)
        rank = graded_ranking_loss(torch.einsum("qd,qnd->qn", z_q, z_c), grades, mask)
        rec = reconstruction_loss(q_hat, q) + reconstruction_loss(c_hat, c)
        pred = query_prediction_loss(predictor(z_c), z_q, grades, mask)
        total = rank + cfg.weight_rec * rec + cfg.weight_pred * pred
        return total, {"rank": rank.item(), "rec": rec.item(), "pred": pred.item()}

    gate = make_gate(cfg.eval_every, cfg.patience)
    gate.offer(0, sup.score(encode, x), snapshot(adapter))
    sup.refresh(encode, x)
    loop = TrainingLoop(
        loss=objective,
        optimiser=AdamW(
            [*adapter.parameters(), *predictor.parameters()], lr=cfg.lr, weight_decay=0.0
        ),
        gate=gate,
        check=sup.check(encode, x),
        state=snapshot(adapter),
        after_check=sup.refresher(encode, x),
    )
    loop.run(cfg.steps)
    gated = sup.validation is not None
    if gated:
        assert gate.best is not None
        adapter.load_state_dict(gate.best.state)
    best = gate.best
    diagnostics.update(
        best_step=best.step if best is not None and gated else loop.step,
        best_score=best.score if best is not None else None,
        steps_run=loop.step,
        first_losses=loop.first,
        last_losses=loop.last,
        history=[(s, round(v, 4)) for s, v in gate.history],
    )
    return fold(adapter.to_runtime(), rot, prefix_projection(dim, width)), diagnostics
