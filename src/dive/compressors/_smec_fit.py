"""Torch side of SMEC's fit (imported only when fitting): ADS, the stages and their training."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dive.compressors._baseline_modules import Encoder, Supervision, fold, map_rows, snapshot
from dive.compressors._baseline_select import (
    Selected,
    fit_grid,
    fit_space,
    gated_run,
    ungated_summary,
)
from dive.compressors.base import Summarise, TrainingData
from dive.compressors.runtime import Adapter, Runtime
from dive.compressors.smec import stage_dims
from dive.losses.cross_batch_memory import (
    CrossBatchMemory,
    memory_similarity_loss,
    select_memory_neighbours,
)
from dive.losses.ranking import graded_ranking_loss
from dive.training.adapter import ResidualAdapter
from dive.training.loop import Loss
from dive.training.optim import AdamWGroups

if TYPE_CHECKING:
    from dive.compressors.smec import SMEC, SMECConfig

Masks = tuple[torch.Tensor, torch.Tensor]  # ADS's (hard, soft) masks of one training step


class AdaptiveSelection(nn.Module):
    """SMEC's adaptive dimension selection (ADS): keep `keep` of `width` dims by learned scores.

    `masks()` gives a training step two masks over the `width` dims. `hard`: 0/1, exactly the
    `keep` top-scored dims, what inference keeps (the model trains on it, so training and
    inference see the same dims). `soft`: sigmoid((score - t) / tau), t halfway between the
    last kept and the first dropped score, the relaxation the scores learn through: a loss
    on the hard-masked output gives a dropped dim no gradient (a similarity's product terms
    vanish on both of its sides), the same loss on the soft-masked output tells each score
    whether its dim should weigh more. `noise > 0` perturbs each draw's scores with Gumbel
    noise of that scale (exploration, at the price of training on other dims than inference
    keeps). Kept dims stay in index order.
    """

    def __init__(self, width: int, keep: int, init_scores: torch.Tensor, tau: float = 1.0) -> None:
        super().__init__()
        if not 0 < keep <= width:
            raise ValueError(f"keep must be in 1..{width}, got {keep}")
        if init_scores.shape != (width,):
            raise ValueError(f"init_scores must be ({width},), got {tuple(init_scores.shape)}")
        if not tau > 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        self.width = width
        self.keep = keep
        self.tau = tau
        self.scores = nn.Parameter(init_scores.detach().clone().to(torch.float32))

    def selected(self) -> torch.Tensor:
        """Indices kept at inference (sorted)."""
        return torch.sort(torch.topk(self.scores.detach(), self.keep).indices).values

    def masks(
        self, generator: torch.Generator | None = None, noise: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(hard 0/1 mask, soft mask with the scores' gradient), each (width,).

        `noise` > 0 (with a `generator`) draws both from Gumbel-perturbed scores.
        """
        scores: torch.Tensor = self.scores
        if noise > 0 and generator is not None:
            uniform = torch.rand(scores.shape, generator=generator).clamp(1e-9, 1 - 1e-9)
            scores = scores - noise * torch.log(-torch.log(uniform))
        if self.keep == self.width:
            return torch.ones_like(scores), torch.ones_like(scores)
        fixed = scores.detach()
        kept = torch.topk(fixed, self.keep).indices
        ranked = torch.topk(fixed, self.keep + 1).values
        threshold = 0.5 * (ranked[-2] + ranked[-1])
        hard = torch.zeros_like(fixed).index_fill_(0, kept, 1.0)
        return hard, torch.sigmoid((scores - threshold) / self.tau)

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """The kept dims of `x` (inference: no gradient reaches the scores)."""
        return x[..., self.selected()]


def candidate_scores(
    z_q: torch.Tensor, z_unique: torch.Tensor, inverse: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """(B, N) scores of each query (`z_q`, (B, d)) with its real candidates, zeros for padding.

    `z_unique` holds the distinct candidate rows and `inverse` maps `rows[mask]` onto them
    (`torch.unique(..., return_inverse=True)`): one (B, U) product and a gather, instead of
    scattering (B, N, d) candidate vectors.
    """
    sims = z_q @ z_unique.T
    out = sims.new_zeros(mask.shape)
    out[mask] = sims[mask.nonzero()[:, 0], inverse]
    return out


class SMECNet(nn.Module):
    """Per stage a layer and an ADS selection; stage k trains with every earlier one frozen.

    Stage 1's layer is a residual ReLU adapter on the input embedding x. A later stage's
    layer (`stage_layer`): "adapter" adds another residual block on x, so the adapted
    embedding is h = x + sum_k f_k(x), one adapter at inference (the blocks' hidden units side
    by side); "linear" an identity-initialised linear map on the previous stage's output;
    "none" nothing (selection only). Each stage then keeps its ADS's dims of that output.
    """

    def __init__(self, width: int, hidden: int, stage_layer: str) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([ResidualAdapter(width, hidden, "relu")])
        self.linears = nn.ModuleList()
        self.selectors = nn.ModuleList()
        self.widths = [width]
        self.hidden = hidden
        self.stage_layer = stage_layer

    def add_stage(self, keep: int, corpus: torch.Tensor, tau: float) -> None:
        """Append a stage keeping `keep` dims; ADS scores start at its input's z-scored energy."""
        k, width = len(self.selectors), self.widths[-1]
        if k > 0 and self.stage_layer == "adapter":
            self.blocks.append(ResidualAdapter(self.widths[0], self.hidden, "relu"))
        elif k > 0 and self.stage_layer == "linear":
            linear = nn.Linear(width, width, bias=False)
            nn.init.eye_(linear.weight)
            self.linears.append(linear)
        energy = map_rows(lambda v: self.previous(v, self.base(v, k), k), corpus).pow(2).mean(0)
        init = (energy - energy.mean()) / energy.std().clamp(min=1e-12)
        self.selectors.append(AdaptiveSelection(width, keep, init, tau))
        self.widths.append(keep)

    def base(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """What stage k builds on and no stage-k parameter changes (computed once per stage)."""
        if k == 0:
            return x
        if self.stage_layer == "adapter":
            return self.adapted(x, k)
        return self.reduce(self.blocks[0](x), upto=k)

    def previous(self, x: torch.Tensor, base: torch.Tensor, k: int) -> torch.Tensor:
        """Stage k's input after its own layer: the previous prefix, which ADS k selects from."""
        if k == 0 or self.stage_layer == "adapter":
            return self.reduce(base + self.block(k).delta(x), upto=k)
        return self.linears[k - 1](base) if self.stage_layer == "linear" else base

    def trains_previous(self, k: int) -> bool:
        """Whether stage k's own parameters change the previous prefix."""
        return k == 0 or self.stage_layer != "none"

    def reduce(self, h: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        """The stages after the adapter (their kept dims) up to stage `upto`, applied to h."""
        for i in range(len(self.selectors) if upto is None else upto):
            if i > 0 and self.stage_layer == "linear":
                h = self.linears[i - 1](h)
            h = self.selector(i).gather(h)
        return h

    def block(self, k: int) -> ResidualAdapter:
        return cast(ResidualAdapter, self.blocks[k])

    def selector(self, k: int) -> AdaptiveSelection:
        return cast(AdaptiveSelection, self.selectors[k])

    def adapted(self, x: torch.Tensor, blocks: int) -> torch.Tensor:
        """x plus the residuals of the first `blocks` blocks: x + sum_k f_k(x)."""
        out = x
        for k in range(blocks):
            out = out + self.block(k).delta(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Inference: every stage, each keeping exactly its top-scored dims."""
        return self.reduce(self.adapted(x, len(self.blocks)))

    def stage_parameters(self, k: int) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(stage k's layer parameters, its ADS scores)."""
        if k == 0 or self.stage_layer == "adapter":
            layer = list(self.blocks[k].parameters())
        else:
            layer = list(self.linears[k - 1].parameters()) if self.stage_layer == "linear" else []
        return layer, list(self.selectors[k].parameters())

    def adapter(self) -> Adapter:
        """The residual blocks as one runtime adapter: their hidden units side by side."""
        parts = [self.block(k).to_runtime() for k in range(len(self.blocks))]
        if len(parts) == 1:
            return parts[0]
        return Adapter(
            w1=np.ascontiguousarray(np.concatenate([p.w1 for p in parts])),
            b1=np.ascontiguousarray(np.concatenate([p.b1 for p in parts])),
            w2=np.ascontiguousarray(np.concatenate([p.w2 for p in parts], axis=1)),
            b2=np.ascontiguousarray(np.sum([p.b2 for p in parts], axis=0), dtype=np.float32),
            activation="relu",
        )

    def projection(self) -> np.ndarray:
        """The (d, D) matrix the stages after the adapter amount to (they are all linear)."""
        with torch.no_grad():
            h = self.reduce(torch.eye(self.widths[0]))
        return np.ascontiguousarray(h.T.numpy(), dtype=np.float32)


def energy_start(dim: int) -> Callable[[torch.Tensor], Encoder]:
    """SMEC's start in a basis: every ADS at its initial energy ranking keeps the top-`dim`
    energy dims of the embedding (the adapter starts as the identity)."""

    def start(x: torch.Tensor) -> Encoder:
        kept = torch.sort(torch.topk(x.pow(2).mean(0), dim).indices).values
        return lambda v: F.normalize(v[:, kept], dim=-1)

    return start


def fit_smec(
    model: SMEC, corpus: np.ndarray, train: TrainingData | None, rng: np.random.Generator
) -> tuple[Runtime, dict[str, Any], Summarise]:
    cfg = model.options
    n, width, dim, basis, starts, rot, rotate, x = fit_space(model, corpus, train, energy_start)
    net = SMECNet(width, cfg.hidden or width, cfg.stage_layer)
    for p in net.parameters():
        p.requires_grad_(False)
    sup = Supervision(train, rotate, n, cfg)
    batch = min(cfg.corpus_batch, n)

    def encode(v: torch.Tensor) -> torch.Tensor:
        return F.normalize(net(v), dim=-1)

    def stage_loss(
        k: int,
        base: torch.Tensor,
        c: SMECConfig,
        run_rng: np.random.Generator,
        generator: torch.Generator,
        memory: CrossBatchMemory,
        supervised: bool = True,
    ) -> Loss:
        """Stage k's loss L(new prefix) + weight_previous * L(previous prefix) + L(relaxed new
        prefix), each L the S-XBM term plus (with labels and `supervised`) the ranking loss.
        The new prefix is the previous one with ADS k's kept dims (zeros elsewhere): it and the
        previous prefix train the stage's layer; the relaxed one (the soft mask on the previous
        prefix, which is detached there) trains ADS k's scores."""
        w_prev = c.weight_previous if net.trains_previous(k) else 0.0

        def views(v: torch.Tensor, v_base: torch.Tensor, masks: Masks) -> torch.Tensor:
            prev = net.previous(v, v_base, k)
            hard, soft = masks
            return torch.stack([prev * hard, prev, prev.detach() * soft])

        def loss() -> tuple[torch.Tensor, dict[str, float]]:
            masks = net.selector(k).masks(generator, c.noise)
            rows = torch.from_numpy(run_rng.choice(n, batch, replace=False))
            teacher = x[rows]
            student = views(teacher, base[rows], masks)
            terms = student.new_zeros(3)  # (new, previous, relaxed)
            if len(memory) > 1:
                picked = select_memory_neighbours(teacher, rows, memory, c.memory_neighbours)
                flat = memory.rows[picked.reshape(-1)]
                gathered = memory.embeddings[picked.reshape(-1)]
                neighbours = views(x[flat], base[flat], masks)
                local = torch.arange(picked.numel()).reshape(picked.shape)
                terms = terms + c.weight_xbm * torch.stack(
                    [
                        memory_similarity_loss(s, s_mem, teacher, gathered, local)
                        for s, s_mem in zip(student, neighbours, strict=True)
                    ]
                )
            memory.enqueue(teacher, rows)
            if sup.labels is not None and supervised:
                q, cand_rows, grades, cand_mask = sup.batch(c.query_batch, run_rng)
                with torch.no_grad():
                    q_base = net.base(q, k)
                z_q = F.normalize(views(q, q_base, masks), dim=-1)
                unique, inverse = torch.unique(cand_rows[cand_mask], return_inverse=True)
                z_c = F.normalize(views(x[unique], base[unique], masks), dim=-1)
                ranked = [
                    candidate_scores(zq, zc, inverse, cand_mask)
                    for zq, zc in zip(z_q, z_c, strict=True)
                ]
                terms = terms + c.weight_rank * torch.stack(
                    [graded_ranking_loss(r, grades, cand_mask) for r in ranked]
                )
            total = terms[0] + w_prev * terms[1] + terms[2]
            new, previous, relaxed = (float(t) for t in terms.detach())
            parts = {"new": new, "previous": previous, "relaxed": relaxed}
            return total, {"loss": new + w_prev * previous, **parts}

        return loss

    def warm_up(
        k: int, layer: list[nn.Parameter], scores: list[nn.Parameter], base: torch.Tensor
    ) -> dict[str, Any] | None:
        """`warmup_steps` label-free steps (S-XBM alone) on stage 1 before its supervised
        training, which then starts from them; ungated, the last state kept (None: no
        warm-up: it is off, a later stage, or there are no labels to train on after it)."""
        if k > 0 or cfg.warmup_steps == 0 or sup.labels is None:
            return None
        seed = int(rng.integers(2**31))
        run = gated_run(
            loss=stage_loss(
                k,
                base,
                cfg,
                np.random.default_rng(seed),
                torch.Generator().manual_seed(seed),
                CrossBatchMemory(cfg.memory_size, width),
                supervised=False,
            ),
            optimiser=AdamWGroups([(layer, cfg.lr), (scores, cfg.score_lr)], weight_decay=0.0),
            state=snapshot(net),
            scores=None,
            start=None,
            refresh=None,
            every=cfg.eval_every,
            patience_steps=cfg.patience_steps,
            steps=cfg.warmup_steps,
        )
        return run.record(history=False)

    def fit_stage(k: int, keep: int) -> tuple[dict[str, Any], Selected]:
        """Add stage k, train it once per grid setting, keep the selection's choice; return
        the stage's record and the selection."""
        net.add_stage(keep, x, cfg.tau)
        layer, scores = net.stage_parameters(k)
        for p in (*layer, *scores):
            p.requires_grad_(True)
        base = map_rows(lambda v: net.base(v, k), x)  # stage k's frozen part, once per stage
        initial = net.selector(k).selected()
        warmup = warm_up(k, layer, scores, base)
        seed = int(rng.integers(2**31))

        def loss(c: SMECConfig) -> Loss:
            """Stage k's loss for one setting, with the stage's own random streams."""
            generator = torch.Generator().manual_seed(seed)
            memory = CrossBatchMemory(c.memory_size, width)
            return stage_loss(k, base, c, np.random.default_rng(seed), generator, memory)

        selected = fit_grid(
            cfg,
            sup,
            encode,
            x,
            module=net,
            loss=loss,
            optimiser=lambda c: AdamWGroups(
                [(layer, c.lr), (scores, c.score_lr, c.stage_steps if c.score_decay else None)],
                weight_decay=0.0,
            ),
            steps=cfg.stage_steps,
        )
        for p in (*layer, *scores):
            p.requires_grad_(False)
        kept = net.selector(k).selected()
        record = {
            "dim": keep,
            "ads_changed": int((~torch.isin(kept, initial)).sum()),
            **({"warmup": warmup} if warmup is not None else {}),
            **selected.record(),
        }
        return record, selected

    stages = [fit_stage(k, keep) for k, keep in enumerate(stage_dims(width, dim))]
    diagnostics: dict[str, Any] = {"basis": basis, "stages": [record for record, _ in stages]}
    if starts:
        diagnostics["start_ndcg@10"] = starts
    # the last stage chose the model returned (no stage: dim is the input width, untrained)
    summarise = partial(stages[-1][1].summary, basis) if stages else partial(
        ungated_summary, None, basis)
    return fold(net.adapter(), rot, net.projection()), diagnostics, summarise
