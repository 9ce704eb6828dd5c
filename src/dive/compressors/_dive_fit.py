"""Torch side of DIVE's fit (imported only when fitting; see `dive.compressors.dive`).

One fit is: pick the start (PCA axes with mu = 0 or the corpus mean), then train from it,
behind a validation gate whose checkpoint 0 is the start. When the validation set is large
enough to select, every arm of the grid (triplet weight, learning rate) trains `race_steps`
steps, the arm with the best validation score so far trains on to `steps`, and the best
checkpoint seen by any arm wins (a race: the losing arms' remaining steps are never paid
for). Everything a step needs is precomputed (corpus tensor, flattened labels, negative
pools) so a step is one fused forward pass over [corpus | queries | positives | negatives].

Left out: GPUs and mixed precision (CPU fits of a few seconds), learned centres (mu is fixed
at its start value), and re-selection of the start after training.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dive.compressors.base import LabelledQueries, TrainingData
from dive.compressors.dive import DiveConfig, TripletLoss
from dive.compressors.pca import principal_axes
from dive.compressors.runtime import Runtime
from dive.errors import DataError
from dive.losses.headwise_ntxent import headwise_ntxent_loss
from dive.losses.hinge_triplet import hinge_triplet_loss, triplet_margins
from dive.losses.similarity_anchor import similarity_anchor_loss
from dive.training.adapter import ResidualAdapter
from dive.training.batches import RelevanceIndex, sample_rows
from dive.training.gate import Checkpoint, ValidationGate, validation_ndcg
from dive.training.loop import TrainingLoop
from dive.training.mining import NegativePools, mine_pools
from dive.training.optim import AdamW
from dive.training.seeding import seeded

logger = logging.getLogger(__name__)

ENCODE_CHUNK = 16384


class DiveNet(nn.Module):
    """h = e + g(e); views u_k = P_k (h - mu); z = normalize(mean_k u_k)."""

    center: torch.Tensor

    def __init__(self, heads: np.ndarray, center: np.ndarray, hidden: int) -> None:
        super().__init__()
        n_heads, dim, d_in = heads.shape
        self.n_heads, self.dim, self.d_in = n_heads, dim, d_in
        self.adapter = ResidualAdapter(d_in, hidden, activation="gelu")
        # all heads in one (H*d, D) matrix: one GEMM computes every view
        self.heads = nn.Parameter(torch.from_numpy(np.ascontiguousarray(heads, np.float32)))
        self.register_buffer("center", torch.from_numpy(np.ascontiguousarray(center, np.float32)))

    def shifted(self, x: torch.Tensor) -> torch.Tensor:
        """h - mu, with h = x + g(x): what every head projects."""
        out: torch.Tensor = self.adapter(x) - self.center
        return out

    def head_views(self, shifted: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, H, d): every view u_k = P_k (h - mu), unnormalised."""
        flat = shifted @ self.heads.reshape(self.n_heads * self.dim, self.d_in).T
        return flat.reshape(-1, self.n_heads, self.dim)

    def folded(self) -> torch.Tensor:
        """mean_k P_k: the ensemble as one (d, D) matrix (the mean commutes with P_k (h - mu))."""
        return self.heads.mean(dim=0)

    def views(self, x: torch.Tensor) -> torch.Tensor:
        return self.head_views(self.shifted(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # normalize(mean_k P_k (h - mu)) through the folded matrix: one d-wide GEMM instead
        # of an H*d-wide one, the same value and the same gradient for every head
        return F.normalize(self.shifted(x) @ self.folded().T, dim=-1)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> np.ndarray:
        out = [self(x[i : i + ENCODE_CHUNK]) for i in range(0, x.shape[0], ENCODE_CHUNK)]
        return np.ascontiguousarray(torch.cat(out).numpy(), dtype=np.float32)

    def to_runtime(self) -> Runtime:
        center = self.center.detach().numpy().astype(np.float32)
        projection = self.folded().detach().numpy().astype(np.float32)
        return Runtime(
            input_dim=self.d_in,
            adapter=self.adapter.to_runtime(),
            center=np.ascontiguousarray(center) if bool(np.any(center)) else None,
            projection=np.ascontiguousarray(projection),
        )


def initial_heads(
    corpus: np.ndarray, axes: np.ndarray, config: DiveConfig, rng: np.random.Generator
) -> np.ndarray:
    """(H, d, D) starting heads for `config.head_init`."""
    n_heads, (dim, d_in) = config.heads, axes.shape
    if config.head_init == "pca-noise":
        # Noise is made zero-mean across heads so the folded start is exactly the PCA
        # projection: checkpoint 0 then *is* PCA, which the validation gate relies on.
        noise = config.init_noise * rng.standard_normal((n_heads, dim, d_in))
        noise -= noise.mean(axis=0, keepdims=True)
        return (axes[None] + noise).astype(np.float32)
    if config.head_init == "pca-bootstrap":
        # Kept for the ablation: near-equal eigenvalues rotate between resamples, and the
        # average of the rotated bases is a poor projection (SPEC 4.1a).
        heads = [
            principal_axes(corpus[rng.integers(0, len(corpus), len(corpus))], dim)[1]
            for _ in range(n_heads)
        ]
        return np.stack(heads).astype(np.float32)
    return (rng.standard_normal((n_heads, dim, d_in)) / math.sqrt(d_in)).astype(np.float32)


@dataclass
class Labels:
    """Labelled queries with at least one relevant row, as the training step needs them."""

    embeddings: torch.Tensor  # (m, D), shares memory with the caller's array
    relevant: list[dict[int, int]]
    index: RelevanceIndex

    @classmethod
    def build(cls, queries: LabelledQueries | None, n_corpus: int, name: str) -> Labels | None:
        if queries is None:
            return None
        for i, rel in enumerate(queries.relevant):
            bad = [r for r in rel if not 0 <= int(r) < n_corpus]
            if bad:
                raise DataError(
                    f"{name} query {i}: relevant corpus row {bad[0]} is outside 0..{n_corpus - 1}"
                )
        keep = [i for i, rel in enumerate(queries.relevant) if any(g > 0 for g in rel.values())]
        if not keep:
            return None
        array = np.ascontiguousarray(queries.embeddings[keep], dtype=np.float32)
        relevant = [{int(r): int(g) for r, g in queries.relevant[i].items() if g > 0} for i in keep]
        return cls(torch.from_numpy(array), relevant, RelevanceIndex.from_relevant(relevant))

    def __len__(self) -> int:
        return len(self.relevant)


def _state(net: DiveNet) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


class _Fit:
    """The data and settings shared by every arm of one fit."""

    def __init__(
        self,
        corpus: np.ndarray,
        train: TrainingData | None,
        seed: int,
        config: DiveConfig,
    ) -> None:
        self.corpus = torch.from_numpy(corpus)
        self.seed, self.config = seed, config
        n = corpus.shape[0]
        self.train = Labels.build(train.train if train is not None else None, n, "training")
        self.validation = Labels.build(
            train.validation if train is not None else None, n, "validation"
        )
        self.hidden = config.hidden or corpus.shape[1]

    def score(self, net: DiveNet, corpus_z: np.ndarray) -> float:
        assert self.validation is not None
        return validation_ndcg(
            net.encode(self.validation.embeddings), corpus_z, self.validation.relevant
        )

    def pools(self, net: DiveNet, corpus_z: np.ndarray) -> NegativePools:
        assert self.train is not None
        if self.config.hard_negatives == 0:
            return NegativePools.empty(len(self.train))
        return mine_pools(
            net.encode(self.train.embeddings),
            corpus_z,
            self.train.relevant,
            skip_top=self.config.negative_skip,
            band=self.config.negative_band,
            index=self.train.index,
        )

    def new_net(self, heads: np.ndarray, center: np.ndarray) -> DiveNet:
        torch.manual_seed(self.seed)  # the same adapter initialisation for every arm
        return DiveNet(heads, center, self.hidden)


class _Arm:
    """One training run (a triplet weight, a learning rate, a triplet loss) that can be resumed.

    `advance(until)` trains up to step `until`. With validation, a gate keeps the best
    checkpoint, checkpoint 0 being the start. Hard-negative pools are refreshed from the
    model's own ranking every `mine_every` steps.
    """

    def __init__(
        self,
        fit: _Fit,
        net: DiveNet,
        triplet_weight: float,
        lr: float,
        loss: TripletLoss,
        start_score: float | None,
        start_corpus_z: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        cfg = fit.config
        self.fit, self.net, self.rng = fit, net, rng
        self.triplet_weight, self.lr, self.loss = triplet_weight, lr, loss
        gate = ValidationGate(every=cfg.eval_every, patience=cfg.patience, prefer_later=True)
        if start_score is not None:
            gate.offer(0, start_score, lambda: _state(net))
        self.log: list[dict[str, float]] = []
        self.batch = min(cfg.corpus_batch, fit.corpus.shape[0])
        self.use_triplets = triplet_weight > 0 and fit.train is not None
        # both corpus-batch losses compare items with each other: they need two of them
        self.use_anchor = cfg.anchor_weight > 0 and self.batch >= 2
        self.use_ntxent = cfg.ntxent_weight > 0 and net.n_heads > 1 and self.batch >= 2
        self.pools = fit.pools(net, start_corpus_z) if self.use_triplets else None
        self.loop = TrainingLoop(
            loss=self._loss,
            optimiser=AdamW(net.parameters(), lr=lr, weight_decay=cfg.weight_decay),
            gate=gate,
            check=self._check,
            state=lambda: _state(net),
            extra_check=self._mines,
        )

    def _mines(self, step: int) -> bool:
        return self.use_triplets and step % self.fit.config.mine_every == 0

    def _loss(self) -> tuple[torch.Tensor, dict[str, float]]:
        """One step's loss on a fresh sample, and its parts for the log."""
        fit, cfg, rng, batch = self.fit, self.fit.config, self.rng, self.batch
        logged: dict[str, float] = {}
        n_corpus = fit.corpus.shape[0]
        parts = [fit.corpus[sample_rows(n_corpus, batch, rng)]]
        if self.use_triplets:
            assert fit.train is not None and self.pools is not None
            queries = sample_rows(len(fit.train), min(cfg.query_batch, len(fit.train)), rng)
            positives = fit.train.index.sample_positives(queries, rng)
            negatives = self.pools.sample(
                queries, fit.train.index, n_corpus, cfg.hard_negatives, cfg.random_negatives, rng
            )
            parts += [
                fit.train.embeddings[queries],
                fit.corpus[positives],
                fit.corpus[torch.from_numpy(negatives.reshape(-1))],
            ]
        # One pass over [corpus batch | queries | positives | negatives]. Only NT-Xent needs
        # the separate views (of its first items); z comes from the folded heads.
        shifted = self.net.shifted(torch.cat(parts))
        z = F.normalize(shifted @ self.net.folded().T, dim=-1)
        loss = torch.zeros(())
        if self.use_anchor:
            anchor = similarity_anchor_loss(z[:batch], parts[0], cfg.anchor_neighbours)
            loss = loss + cfg.anchor_weight * anchor
            logged["anchor"] = float(anchor.detach())
        if self.use_ntxent:
            views = self.net.head_views(shifted[: min(cfg.ntxent_items, batch)])
            ntx = headwise_ntxent_loss(views, cfg.temperature)
            loss = loss + cfg.ntxent_weight * ntx
            logged["ntxent"] = float(ntx.detach())
        if self.use_triplets:
            b = len(queries)
            zq, zp = z[batch : batch + b], z[batch + b : batch + 2 * b]
            zn = z[batch + 2 * b :].reshape(b, negatives.shape[1], -1)
            tri = hinge_triplet_loss(zq, zp, zn, cfg.margin, soft=self.loss == "softplus")
            # With fewer labelled queries than a batch, every step sees all of them and a
            # mean would give each a bigger share than in a full batch; scaling by
            # b / query_batch keeps one query's pull per step the same at any budget.
            loss = loss + self.triplet_weight * (b / cfg.query_batch) * tri
            with torch.no_grad():
                active = (triplet_margins(zq, zp, zn, cfg.margin) > 0).float().mean()
            logged["triplet"] = float(tri.detach())
            logged["active_triplets"] = float(active)
        return loss, logged

    def advance(self, until: int) -> None:
        """Train up to step `until`, or until the gate's patience runs out."""
        self.loop.run(until)

    def _check(self, step: int, window: dict[str, float]) -> float | None:
        """Log the window; score on validation and re-mine negatives from one corpus encoding."""
        fit, net = self.fit, self.net
        entry = {"step": float(step), **window}
        score = None
        mine = self._mines(step)
        if fit.validation is not None or mine:
            corpus_z = net.encode(fit.corpus)
            if fit.validation is not None:
                score = entry["validation_ndcg@10"] = fit.score(net, corpus_z)
            if mine:
                self.pools = fit.pools(net, corpus_z)
        self.log.append(entry)
        return score

    @property
    def best(self) -> Checkpoint | None:
        return self.loop.gate.best

    @property
    def best_score(self) -> float:
        return self.best.score if self.best is not None else float("-inf")

    def report(self) -> dict[str, Any]:
        best = self.best
        return {
            "triplet_weight": self.triplet_weight,
            "lr": self.lr,
            "loss": self.loss,
            "steps_run": self.loop.step,
            "best_step": best.step if best else None,
            "best_validation_ndcg@10": round(best.score, 6) if best else None,
            "log": [{k: round(v, 6) for k, v in e.items()} for e in self.log],
        }


def fit_dive(
    corpus: np.ndarray, train: TrainingData | None, *, dim: int, seed: int, config: DiveConfig
) -> tuple[Runtime, dict[str, Any]]:
    """Fit DIVE; return its runtime and the diagnostics for the results record."""
    with seeded(seed, threads=config.threads) as rng:
        return _fit(corpus, train, dim, seed, config, rng)


def _mode(fit: _Fit, selecting: bool) -> str:
    if fit.train is None:
        return "unsupervised"
    if selecting:
        return "select"
    return "gate" if fit.validation is not None else "fixed-steps"


def _fit(
    corpus: np.ndarray,
    train: TrainingData | None,
    dim: int,
    seed: int,
    config: DiveConfig,
    rng: np.random.Generator,
) -> tuple[Runtime, dict[str, Any]]:
    t0 = time.perf_counter()
    fit = _Fit(corpus, train, seed, config)
    mean, axes = principal_axes(corpus, dim)
    heads = initial_heads(corpus, axes, config, rng)
    centers = {"uncentered": np.zeros_like(mean), "centered": mean}
    n_val = len(fit.validation) if fit.validation is not None else 0
    selecting = config.select and n_val >= config.select_min_queries
    diag: dict[str, Any] = {
        "n_train": len(fit.train) if fit.train is not None else 0,
        "n_validation": n_val,
        "mode": _mode(fit, selecting),
    }

    # The start, checkpoint 0 of every arm. Ties go to the first candidate, "uncentered",
    # the start measured stronger on these embeddings (SPEC 4.5).
    if config.start != "select":
        candidates = [config.start]
    else:
        candidates = ["uncentered", "centered"] if selecting else ["uncentered"]
    start_scores: dict[str, float] = {}
    start_z: dict[str, np.ndarray] = {}
    for name in candidates:
        net = fit.new_net(heads, centers[name])
        start_z[name] = net.encode(fit.corpus)
        if fit.validation is not None:
            start_scores[name] = fit.score(net, start_z[name])
    start = max(candidates, key=lambda c: start_scores.get(c, 0.0))
    diag["start"] = start
    if start_scores:
        diag["start_validation_ndcg@10"] = {k: round(v, 6) for k, v in start_scores.items()}

    if fit.train is None:
        grid = [(0.0, config.lr, config.loss)]
    elif selecting:
        grid = config.arms()
    else:
        grid = [(config.triplet_weight, config.lr, config.loss)]
    arms = [
        _Arm(
            fit,
            fit.new_net(heads, centers[start]),
            tri,
            lr,
            loss,
            start_scores.get(start),
            start_z[start],
            np.random.default_rng([seed, i]),
        )
        for i, (tri, lr, loss) in enumerate(grid)
    ]
    if len(arms) > 1:
        for arm in arms:
            arm.advance(min(config.race_steps, config.steps))
        # the leader trains on; ties go to the earlier arm
        leader = max(range(len(arms)), key=lambda i: (arms[i].best_score, -i))
        arms[leader].advance(config.steps)
    else:
        arms[0].advance(config.steps)

    if fit.validation is not None:
        winner = max(range(len(arms)), key=lambda i: (arms[i].best_score, -i))
        best = arms[winner].best
        assert best is not None
        state, step, score = best.state, best.step, round(best.score, 6)
    else:
        winner = 0
        state, step, score = _state(arms[0].net), arms[0].loop.step, None

    net = fit.new_net(heads, centers[start])
    net.load_state_dict(state)
    final_z = net.encode(fit.corpus)
    diag["selected"] = {
        "arm": winner,
        "triplet_weight": arms[winner].triplet_weight,
        "lr": arms[winner].lr,
        "loss": arms[winner].loss,
        "step": step,
        "validation_ndcg@10": score,
    }
    # mean distance between the start's and the fitted model's outputs over the corpus
    diag["drift"] = round(float(np.linalg.norm(final_z - start_z[start], axis=1).mean()), 6)
    diag["arms"] = [arm.report() for arm in arms]
    diag["active_triplets"] = [
        round(e["active_triplets"], 4) for e in arms[winner].log if "active_triplets" in e
    ]
    diag["train_seconds"] = round(time.perf_counter() - t0, 4)
    return net.to_runtime(), diag
