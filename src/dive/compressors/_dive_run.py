"""One DIVE training run (torch side, fit time only): the data every run of a fit shares
(`FitContext`) and one arm's steps from the start (`Run`).

A step is one fused forward pass over [corpus batch | queries | positives | hard negatives]:
the similarity anchor and head-wise NT-Xent on the corpus batch, the triplet loss on the
labelled queries (`positives` triplets per query, each with hard negatives mined from the
run's current ranking and random ones from the corpus batch). Checks score the held-out
queries for the selection (`dive.compressors._dive_fit`), which decides everything else.
"""

from __future__ import annotations

import threading
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from dive.compressors._dive_net import DiveNet, state_of
from dive.compressors.base import TrainingData
from dive.compressors.dive import Arm, DiveConfig
from dive.evaluate.search import top_k
from dive.losses.headwise_ntxent import headwise_ntxent_loss
from dive.losses.hinge_triplet import hinge_triplet_loss, triplet_margins
from dive.losses.similarity_anchor import similarity_anchor_loss
from dive.training.batches import BatchQueue, sample_rows
from dive.training.gate import ValidationGate, validation_scores
from dive.training.labels import Labels
from dive.training.loop import TrainingLoop
from dive.training.mining import NegativePools, in_batch_negatives, mine_pools
from dive.training.optim import AdamW
from dive.training.selection import Curve
from dive.training.tensors import shared_tensor


def pooled_labels(train: TrainingData | None, n_corpus: int) -> tuple[Labels | None, np.ndarray]:
    """Training and validation queries as one labelled set, and the rows from validation.

    DIVE chooses on every labelled query (`dive.training.selection`), so the protocol's
    split between the two only matters when the validation part is used as a holdout.
    """
    if train is None:
        return None, np.zeros(0, dtype=np.int64)
    parts = [Labels.judged(train.train, n_corpus, "training")]
    parts.append(Labels.judged(train.validation, n_corpus, "validation"))
    present = [p for p in parts if p is not None]
    if not present:
        return None, np.zeros(0, dtype=np.int64)
    n_train = len(parts[0]) if parts[0] is not None else 0
    n_val = len(parts[1]) if parts[1] is not None else 0
    return Labels.joined(present), np.arange(n_train, n_train + n_val, dtype=np.int64)


class FitContext:
    """The data, start and settings shared by every training run of one fit (the query batch
    follows the size of the labelled pool, `DiveConfig.batch_for`, so every run and the refit
    draw the same number of queries per step)."""

    def __init__(self, corpus: np.ndarray, seed: int, config: DiveConfig, n_labels: int) -> None:
        self.corpus = shared_tensor(corpus)  # the caller's array, maybe read-only
        self.seed, self.config = seed, config
        self.hidden = config.hidden or corpus.shape[1]
        self.query_batch = config.batch_for(n_labels)

    def new_net(self, heads: np.ndarray, center: np.ndarray) -> DiveNet:
        torch.manual_seed(self.seed)  # the same adapter initialisation for every run
        return DiveNet(heads, center, self.hidden)

    def scores(
        self, net: DiveNet, corpus_z: np.ndarray, queries: Labels, k: int = 10
    ) -> np.ndarray:
        """nDCG@k of each of `queries` under `net` (corpus already encoded)."""
        return validation_scores(net.encode(queries.embeddings), corpus_z, queries.relevant, k,
                                 queries.exclude)

    def pools(
        self,
        net: DiveNet,
        corpus_z: np.ndarray,
        train: Labels,
        rows: np.ndarray,
    ) -> NegativePools:
        """Hard-negative pools of the `train` queries at `rows` (sorted, unique) under `net`,
        as pools over all of `train` (the others empty), ranked over `corpus_z`. With
        `DiveConfig.shortlist` K (for large corpora) `corpus_z` may be a few steps old: only
        each query's K nearest rows under it are encoded by `net` and ranked, instead of
        every row."""
        some = train.subset(rows)
        queries = net.encode(some.embeddings)
        among = None
        if self.config.shortlist is not None:
            near, _ = top_k(queries, corpus_z, self.config.shortlist, exclude=some.exclude)
            among = np.unique(near[near >= 0])
            corpus_z = net.encode(self.corpus[torch.from_numpy(among)])
        mined = mine_pools(
            queries,
            corpus_z,
            some.relevant,
            skip_top=self.config.negative_skip,
            band=self.config.negative_band,
            index=some.index,
            exclude=some.exclude,
            rows=among,
        )
        return mined.placed(rows, len(train))


class Run:
    """One training run of one arm from the start, on `train` labels (or none).

    A check every `eval_every` steps (and at the last) scores each `held_out` query, which
    gives the run's `Curve` for selection. Every `mine_every` steps the query batches of the
    next `mine_every` steps are drawn and their hard-negative pools mined from the model as
    it is then (the first from `start_z`, the start's corpus outputs every run shares), so no
    negative comes from a ranking more than `mine_every` steps old and mining costs one corpus
    encoding plus those queries, whatever the number of labels. The run never stops early:
    every fold of a cross-fit checks at the same steps.
    """

    def __init__(
        self,
        fit: FitContext,
        net: DiveNet,
        arm: Arm,
        train: Labels | None,
        held_out: Labels | None,
        rng: np.random.Generator,
        start_z: np.ndarray,
        keep_states: bool = False,
    ) -> None:
        cfg = fit.config
        self.fit, self.net, self.arm, self.rng = fit, net, arm, rng
        self.train, self.held_out = train, held_out
        self.log: list[dict[str, float]] = []
        self.steps: list[int] = []
        self.scores: list[np.ndarray] = []
        self.keep_states = keep_states
        self.states: dict[int, dict[str, torch.Tensor]] = {}  # the weights at kept checks
        self.batch = min(cfg.corpus_batch, fit.corpus.shape[0])
        self.use_triplets = arm.triplet_weight > 0 and train is not None
        # both corpus-batch losses compare items with each other: they need two of them
        self.use_anchor = cfg.anchor_weight > 0 and self.batch >= 2
        self.use_ntxent = cfg.ntxent_weight > 0 and net.n_heads > 1 and self.batch >= 2
        self.pools = NegativePools.empty(len(train) if train is not None else 0)
        self.queue = BatchQueue(cfg.mine_every)  # the query batches of the coming steps
        # (step, corpus outputs after it; None: dropped between pieces of training, `release`)
        self.encoded: tuple[int, np.ndarray | None] = (0, start_z)
        self.loop = TrainingLoop(
            loss=self._loss,
            optimiser=AdamW(net.parameters(), lr=arm.lr, weight_decay=cfg.weight_decay),
            gate=ValidationGate(every=cfg.eval_every),
            check=self._check,
            state=lambda: state_of(net),
        )

    def _loss(self) -> tuple[torch.Tensor, dict[str, float]]:
        """One step's loss on a fresh sample, and its parts for the log."""
        fit, cfg, rng, batch = self.fit, self.fit.config, self.rng, self.batch
        logged: dict[str, float] = {}
        n_corpus = fit.corpus.shape[0]
        batch_rows = sample_rows(n_corpus, batch, rng)
        parts = [fit.corpus[batch_rows]]
        if self.use_triplets:
            assert self.train is not None
            train = self.train
            queries = self._queries(train)
            owner, positives = train.index.sample_distinct(queries, cfg.positives, rng,
                                                           by_grade=cfg.graded_positives)
            triplets = queries[owner]  # the query of each triplet
            # hard negatives (short pools filled at random) are encoded with the queries;
            # the random ones come from the corpus batch, already encoded
            hard = (
                self.pools.sample(triplets, train.index, n_corpus, cfg.hard_negatives, 0, rng)
                if cfg.hard_negatives
                else np.zeros((len(triplets), 0), dtype=np.int64)
            )
            in_batch = in_batch_negatives(
                triplets, batch_rows, train.index, cfg.random_negatives, rng
            )
            parts += [
                train.embeddings[queries],
                fit.corpus[positives],
                fit.corpus[torch.from_numpy(hard.reshape(-1))],
            ]
        # One pass over [corpus batch | queries | positives | hard negatives]. Only NT-Xent needs
        # the separate views (of its first items); z comes from the folded heads.
        shifted = self.net.shifted(torch.cat(parts))
        z = F.normalize(shifted @ self.net.folded().T, dim=-1)
        loss = torch.zeros(())
        if self.use_anchor:
            frozen = parts[0] - self.net.center if cfg.anchor_centred and self.net.centred \
                else parts[0]
            anchor = similarity_anchor_loss(z[:batch], frozen, cfg.anchor_neighbours)
            loss = loss + cfg.anchor_weight * anchor
            logged["anchor"] = float(anchor.detach())
        if self.use_ntxent:
            views = self.net.head_views(shifted[: min(cfg.ntxent_items, batch)])
            ntx = headwise_ntxent_loss(views, cfg.temperature)
            loss = loss + cfg.ntxent_weight * ntx
            logged["ntxent"] = float(ntx.detach())
        if self.use_triplets:
            b, t = len(queries), len(triplets)
            zq = z[batch : batch + b]
            if t != b:  # several positives of a query: its output once per triplet
                zq = zq[torch.from_numpy(owner)]
            zp = z[batch + b : batch + b + t]
            hard_z = z[batch + b + t :].reshape(t, hard.shape[1], z.shape[1])
            zn = torch.cat([hard_z, z[torch.from_numpy(in_batch)]], dim=1)
            margin = self.arm.margin
            tri = hinge_triplet_loss(zq, zp, zn, margin, soft=self.arm.loss == "softplus")
            # With fewer labelled queries than a batch, every step sees all of them and a
            # mean would give each a bigger share than in a full batch; scaling by
            # b / batch keeps one query's pull per step the same at any budget.
            loss = loss + self.arm.triplet_weight * (b / fit.query_batch) * tri
            with torch.no_grad():
                active = (triplet_margins(zq, zp, zn, margin) > 0).float().mean()
            logged["triplet"] = float(tri.detach())
            logged["active_triplets"] = float(active)
        return loss, logged

    def _queries(self, train: Labels) -> np.ndarray:
        """This step's labelled queries; when none are queued, the next `mine_every` batches
        are drawn and their pools mined from the current model (see the class docstring)."""
        size = min(self.fit.query_batch, len(train))
        return self.queue.next(lambda: sample_rows(len(train), size, self.rng),
                               partial(self._mine, train))

    def _mine(self, train: Labels, rows: np.ndarray) -> None:
        """The hard-negative pools of the `train` queries at `rows`, from the model as it is."""
        cfg = self.fit.config
        if cfg.hard_negatives:
            # a shortlist is re-ranked by the model as it is: its corpus outputs may be
            # up to eval_every steps old (a check's); exact mining needs them current
            stale = 0 if cfg.shortlist is None else cfg.eval_every - 1
            self.pools = self.fit.pools(self.net, self._corpus_z(stale), train, rows)

    def _corpus_z(self, stale: int = 0) -> np.ndarray:
        """The corpus outputs of the model as it is now, or as it was at most `stale` updates
        ago (those of the last check, or of the start, when recent enough)."""
        done = self.loop.step - 1  # updates made before this step's
        step, outputs = self.encoded
        if done - step > stale or outputs is None:
            outputs = self.net.encode(self.fit.corpus)
            self.encoded = (done, outputs)
        return outputs

    def _check(self, step: int, window: dict[str, float]) -> float | None:
        """Log the window and score the held-out queries (if any)."""
        fit, net = self.fit, self.net
        entry = {"step": float(step), **window}
        if self.held_out is not None:
            self.steps.append(step)
            corpus_z = net.encode(fit.corpus)
            self.encoded = (step, corpus_z)
            self.scores.append(fit.scores(net, corpus_z, self.held_out))
            entry["held_out_ndcg@10"] = float(self.scores[-1].mean())
            if self.keep_states:
                self.states[step] = state_of(net)
        self.log.append(entry)
        return None  # selection happens across runs (dive.training.selection), not here

    def train_to(self, steps: int, stop: threading.Event | None = None) -> Run:
        """Train up to step `steps` (or the gate's patience). With `stop`, in pieces that end
        at check steps (the same model and log as one piece), returning once it is set: a
        worker thread then stops within one check's steps of its caller being interrupted."""
        if stop is None:
            self.loop.run(steps)
        else:
            every = self.fit.config.eval_every
            while self.loop.step < steps and not self.loop.stopped and not stop.is_set():
                self.loop.run(min(steps, (self.loop.step // every + 1) * every))
        self._release()
        return self

    def _release(self) -> None:
        """Drop the corpus outputs kept for mining once this piece of training ends: every
        run of a race held its own, n x d floats each, all at once. Exact mining reads them
        only while the model is unchanged, so encoding again gives the same bits; a
        shortlist's may be up to a check old, and stay."""
        if self.fit.config.shortlist is None:
            self.encoded = (self.encoded[0], None)

    def curve(self) -> Curve:
        return Curve(tuple(self.steps), np.stack(self.scores) if self.scores else np.empty((0, 0)))
