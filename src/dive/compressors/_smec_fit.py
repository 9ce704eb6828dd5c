"""Torch side of SMEC's fit (imported only when fitting)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dive.compressors._baseline_modules import (
    GumbelTopK,
    Supervision,
    change_of_basis,
    fold,
    make_gate,
    map_candidates,
    snapshot,
)
from dive.compressors.base import TrainingData
from dive.compressors.runtime import Runtime
from dive.compressors.smec import stage_dims
from dive.losses.cross_batch_memory import (
    CrossBatchMemory,
    memory_similarity_loss,
    select_memory_neighbours,
)
from dive.losses.ranking import graded_ranking_loss
from dive.training.adapter import ResidualAdapter
from dive.training.loop import TrainingLoop
from dive.training.optim import AdamW

if TYPE_CHECKING:
    from dive.compressors.smec import SMEC

Choice = tuple[torch.Tensor, torch.Tensor | None]


class SMECNet(nn.Module):
    """Adapter, then per stage: (a linear reduction layer from stage 2 on) and an ADS choice."""

    def __init__(self, width: int, hidden: int, stage_linear: bool) -> None:
        super().__init__()
        self.adapter = ResidualAdapter(width, hidden, "relu")
        self.stage_linear = stage_linear
        self.linears = nn.ModuleList()
        self.selectors = nn.ModuleList()
        self.widths = [width]

    def add_stage(self, keep: int, corpus: torch.Tensor, tau: float) -> None:
        """Append a stage keeping `keep` dims; ADS scores start at the input's z-scored energy."""
        width = self.widths[-1]
        if self.selectors and self.stage_linear:
            linear = nn.Linear(width, width, bias=False)
            nn.init.eye_(linear.weight)
            self.linears.append(linear)
        with torch.no_grad():
            energy = self.stage_input(corpus).pow(2).mean(0)
            init = (energy - energy.mean()) / energy.std().clamp(min=1e-12)
        self.selectors.append(GumbelTopK(width, keep, init, tau))
        self.widths.append(keep)

    def draw(self, generator: torch.Generator | None) -> list[Choice]:
        """One choice per stage: noisy for the stage in training (the last), fixed before it."""
        last = len(self.selectors) - 1
        return [
            sel.draw(generator if i == last else None)  # type: ignore[operator]
            for i, sel in enumerate(self.selectors)
        ]

    def reduce(self, h: torch.Tensor, choices: list[Choice]) -> torch.Tensor:
        """The stages after the adapter, applied to adapted embeddings `h`."""
        for i, choice in enumerate(choices):
            if i > 0 and self.stage_linear:
                h = self.linears[i - 1](h)
            h = GumbelTopK.gather(h, choice)
        return h

    def _run(self, x: torch.Tensor, choices: list[Choice]) -> torch.Tensor:
        return self.reduce(self.adapter(x), choices)

    def stage_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the next (not yet added) stage's selector sees: the last output, reduced."""
        h = self._run(x, self.draw(None))
        if self.selectors and self.stage_linear and len(self.linears) == len(self.selectors):
            h = self.linears[-1](h)
        return h

    def forward(self, x: torch.Tensor, choices: list[Choice]) -> torch.Tensor:
        return self._run(x, choices)

    def projection(self) -> np.ndarray:
        """The (d, D) matrix the stages after the adapter amount to (they are all linear)."""
        with torch.no_grad():
            h = self.reduce(torch.eye(self.widths[0]), self.draw(None))
        return np.ascontiguousarray(h.T.numpy(), dtype=np.float32)

    def stage_parameters(self, stage: int) -> list[nn.Parameter]:
        params = list(self.selectors[stage].parameters())
        if stage == 0:
            params += list(self.adapter.parameters())
        elif self.stage_linear:
            params += list(self.linears[stage - 1].parameters())
        return params


def fit_smec(
    model: SMEC, corpus: np.ndarray, train: TrainingData | None, rng: np.random.Generator
) -> tuple[Runtime, dict[str, Any]]:
    cfg = model.options
    n, width = corpus.shape
    dim = model.dim or width
    rot, rotate = change_of_basis(corpus, cfg.basis)
    x = rotate(corpus)
    net = SMECNet(width, cfg.hidden or width, cfg.stage_linear)
    for p in net.parameters():
        p.requires_grad_(False)
    generator = torch.Generator().manual_seed(model.seed)

    sup = Supervision(train, rotate, n, cfg)

    def encode(v: torch.Tensor) -> torch.Tensor:
        return F.normalize(net(v, net.draw(None)), dim=-1)

    def corpus_student(
        rows: torch.Tensor, choices: list[Choice], adapted: torch.Tensor | None
    ) -> torch.Tensor:
        """Compressed corpus rows; `adapted` holds the frozen adapter's output once stage 1 ends."""
        if adapted is not None:
            return net.reduce(adapted[rows], choices)
        return net(x[rows], choices)

    def unit_corpus_student(
        rows: torch.Tensor, choices: list[Choice], adapted: torch.Tensor | None
    ) -> torch.Tensor:
        return F.normalize(corpus_student(rows, choices, adapted), dim=-1)

    memory = CrossBatchMemory(cfg.memory_size, width)
    batch = min(cfg.batch_size, n)

    def step_loss(adapted: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, float]]:
        """S-XBM similarity loss on a corpus batch (+ the ranking loss when labelled)."""
        choices = net.draw(generator)
        rows = torch.from_numpy(rng.choice(n, batch, replace=False))
        teacher = x[rows]
        student = corpus_student(rows, choices, adapted)
        loss = student.new_zeros(())
        if len(memory) > 1:
            picked = select_memory_neighbours(teacher, rows, memory, cfg.memory_neighbours)
            gathered = memory.embeddings[picked.reshape(-1)]
            gathered_student = corpus_student(memory.rows[picked.reshape(-1)], choices, adapted)
            local = torch.arange(picked.numel()).reshape(picked.shape)
            loss = loss + cfg.weight_xbm * memory_similarity_loss(
                student, gathered_student, teacher, gathered, local
            )
        memory.enqueue(teacher, rows)
        if sup.labels is not None:
            q, cand_rows, grades, mask = sup.batch(cfg.batch_size, rng)
            z_q = F.normalize(net(q, choices), dim=-1)
            z_c = map_candidates(
                functools.partial(unit_corpus_student, choices=choices, adapted=adapted),
                cand_rows,
                mask,
            )
            scores = torch.einsum("qd,qnd->qn", z_q, z_c)
            loss = loss + cfg.weight_rank * graded_ranking_loss(scores, grades, mask)
        return loss, {"loss": float(loss.detach())}

    stages: list[dict[str, Any]] = []
    for stage, keep in enumerate(stage_dims(width, dim)):
        net.add_stage(keep, x, cfg.tau)
        params = net.stage_parameters(stage)
        for p in params:
            p.requires_grad_(True)
        gate = make_gate(cfg.eval_every, cfg.patience)
        gate.offer(0, sup.score(encode, x), snapshot(net))
        sup.refresh(encode, x)
        # From stage 2 on the adapter is frozen: adapt the corpus once instead of every step.
        adapted = None
        if stage > 0:
            with torch.no_grad():
                adapted = net.adapter(x)
        loop = TrainingLoop(
            loss=functools.partial(step_loss, adapted=adapted),
            optimiser=AdamW(params, lr=cfg.lr, weight_decay=0.0),
            gate=gate,
            check=sup.check(encode, x),
            state=snapshot(net),
            after_check=sup.refresher(encode, x),
        )
        loop.run(cfg.stage_steps)
        if sup.validation is not None:
            assert gate.best is not None
            net.load_state_dict(gate.best.state)
        for p in params:
            p.requires_grad_(False)
        stages.append(
            {
                "dim": keep,
                "best_step": gate.best.step if gate.best and sup.validation else loop.step,
                "best_score": gate.best.score if gate.best else None,
                "steps_run": loop.step,
                "history": [(s, round(v, 4)) for s, v in gate.history],
            }
        )
    return fold(net.adapter.to_runtime(), rot, net.projection()), {"stages": stages}
