"""Torch side of Search-Adaptor's fit (imported only when fitting)."""

from __future__ import annotations

import copy
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from dive.compressors._baseline_modules import Supervision, fold, scatter_candidates
from dive.compressors._baseline_select import (
    fit_grid,
    fit_space,
    plain_adam,
    prefix_start,
    ungated_summary,
)
from dive.compressors.base import Summarise, TrainingData
from dive.compressors.runtime import Runtime
from dive.compressors.truncate import prefix_projection
from dive.losses.query_prediction import query_prediction_loss
from dive.losses.ranking import graded_ranking_loss
from dive.losses.reconstruction import reconstruction_loss
from dive.training.adapter import ResidualAdapter
from dive.training.loop import Loss

if TYPE_CHECKING:
    from dive.compressors.search_adaptor import SearchAdaptor, SearchAdaptorConfig


def fit_search_adaptor(
    model: SearchAdaptor, corpus: np.ndarray, train: TrainingData | None, rng: np.random.Generator
) -> tuple[Runtime, dict[str, Any], Summarise]:
    cfg = model.options
    n, width, dim, basis, starts, rot, rotate, x = fit_space(model, corpus, train, prefix_start)
    adapter = ResidualAdapter(width, cfg.hidden or width, "relu")
    # The query predictor lives only here: the runtime below is built from `adapter` alone.
    predictor = ResidualAdapter(dim, dim, "relu")
    sup = Supervision(train, rotate, n, cfg)
    diagnostics: dict[str, Any] = {"basis": basis, **({"start_ndcg@10": starts} if starts else {})}
    if sup.labels is None:
        diagnostics["note"] = "no labelled queries: returned the untrained start"
        runtime = fold(adapter.to_runtime(), rot, prefix_projection(dim, width))
        return runtime, diagnostics, partial(ungated_summary, None, basis)

    def encode(v: torch.Tensor) -> torch.Tensor:
        return F.normalize(adapter(v)[:, :dim], dim=-1)

    def objective(c: SearchAdaptorConfig, run_rng: np.random.Generator) -> Loss:
        def loss() -> tuple[torch.Tensor, dict[str, float]]:
            q, rows, grades, mask = sup.batch(c.query_batch, run_rng)
            q_hat = adapter(q)
            z_q = F.normalize(q_hat[:, :dim], dim=-1)
            unique, inverse = torch.unique(rows[mask], return_inverse=True)
            cand = x[unique]  # each distinct candidate once
            c_hat = adapter(cand)
            z_c = scatter_candidates(F.normalize(c_hat[:, :dim], dim=-1), inverse, mask)
            rank = graded_ranking_loss(torch.einsum("qd,qnd->qn", z_q, z_c), grades, mask)
            rec = reconstruction_loss(q_hat, q) + reconstruction_loss(c_hat, cand)
            pred = query_prediction_loss(predictor(z_c), z_q, grades, mask)
            total = rank + c.weight_rec * rec + c.weight_pred * pred
            return total, {"rank": rank.item(), "rec": rec.item(), "pred": pred.item()}

        return loss

    predictor_start = copy.deepcopy(predictor.state_dict())
    params = [*adapter.parameters(), *predictor.parameters()]
    # every weight pair from the same start, on a copy of the seed's stream
    selected = fit_grid(cfg, sup, encode, x, module=adapter, steps=cfg.steps,
                        loss=lambda c: objective(c, copy.deepcopy(rng)),
                        optimiser=plain_adam(params),
                        reset=lambda: predictor.load_state_dict(predictor_start))
    diagnostics.update(selected.record())
    runtime = fold(adapter.to_runtime(), rot, prefix_projection(dim, width))
    return runtime, diagnostics, partial(selected.summary, basis)
