"""`dive`: DIVE, Dimensionality reduction with Implicit View Ensembles (SPEC 4.1).

    h = e + g(e)                         residual adapter, g = Linear -> GELU(tanh) -> Linear,
                                         last layer zero-initialised (identity at the start)
    u_k = P_k (h - mu),  k = 1..H        H projection heads ("implicit views"), centre mu
    z = normalize(mean_k u_k)            the output; the heads fold into one d x D matrix

trained with w_tri * hinge triplet + lambda * head-wise NT-Xent + w_sim * similarity anchor
(`dive.losses`), AdamW, `steps` steps per run (the leading arm's runs doubled while its
curve still rises, up to `max_steps`), and kept only where the labelled
queries show a real gain over its PCA start (below). At inference it is the numpy runtime's
gelu adapter, a centre (if any) and the folded projection: one small MLP and one GEMM.

How a fit uses its labels (all our choices, tuned on dev queries only; docs/methods.md):
- no labels (`train=None`): NT-Xent + anchor only, `steps` steps, last state kept;
- labels: the training and validation queries are pooled, and `dive.training.selection`
  picks on all of them the start (uncentred or centred PCA), then the grid arm (triplet
  weight x learning rate x margin) and its number of steps by cross-fitting; the fit leaves
  the start only when the paired per-query gain is at least `min_gain_z` standard errors,
  and then keeps the mean weights of that arm's fold runs at the kept step (the models the
  choice scored; `soup=False` refits the arm on every labelled query instead, as a holdout
  choice always does). `select=False` trains the configured
  weights for `steps` steps instead.
Every arm of the registered `dive` uses the paper's self-limiting hinge; `dive-plus`
(`dive.compressors.dive_plus`) is our extension whose grid may also pick a softplus arm.
A step draws an eighth of the labelled pool (at least `query_batch` = 32 queries, at most
`query_batch_max` = 128), so a large pool is seen several times within a run's horizon; the
triplet term is scaled by b / batch when fewer than a batch of labelled queries exist, so
each query pulls as hard as in a full batch rather than harder.

What the paper's abstract fixes and what is ours is listed in SPEC 4.1 and docs/methods.md;
every choice is a `DiveConfig` field, so each ablation is a spec string such as
`dive:heads=1:ntxent_weight=0`. This module is torch-free (the fit lives in
`dive.compressors._dive_fit`), so loading and serving a fitted model never imports torch.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, cast, get_args

import numpy as np

from dive.compressors.base import TrainingData
from dive.compressors.dead_outputs import output_energy, zero_dead_outputs
from dive.compressors.learned import LearnedCompressor, LearnedConfig
from dive.compressors.options import Rule, at_least
from dive.compressors.runtime import Runtime
from dive.errors import DiveError

logger = logging.getLogger(__name__)

HeadInit = Literal["pca-noise", "pca-bootstrap", "random"]
TripletLoss = Literal["hinge", "softplus"]
Start = Literal["select", "uncentered", "centered"]
StartScore = Literal["ndcg", "log-rank"]
POOL_SHARE = 8  # a step draws 1 / POOL_SHARE of the labelled pool (within the batch bounds)


@dataclass(frozen=True)
class Arm:
    """One training setting the selection may choose: the triplet term's weight and loss."""

    triplet_weight: float
    lr: float
    loss: TripletLoss
    margin: float

    def as_record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """One short phrase for progress lines, e.g. "hinge x1, lr 0.001, margin 0.3"."""
        if self.triplet_weight == 0:
            return f"label-free, lr {self.lr:g}"
        return f"{self.loss} x{self.triplet_weight:g}, lr {self.lr:g}, margin {self.margin:g}"


NTXENT_VIEWS = 8192  # the most views (heads x items) NT-Xent compares: a 256 MiB matrix


@dataclass(frozen=True)
class DiveConfig(LearnedConfig):
    """DIVE's hyper-parameters (defaults: SPEC 4.1, then tuned on validation/dev queries).

    With `LearnedConfig`'s: `hidden` (adapter width r; None: r = D), `lr` (AdamW's), `select`
    (choose the start, the arm and its length on the labelled queries), `min_gain_z`,
    `eval_every` (steps between held-out checks, each a candidate length) and `threads`.
    """

    # model
    heads: int = 4  # H projection heads averaged into z
    head_init: HeadInit = "pca-noise"  # PCA axes + zero-mean noise | PCA of bootstraps | random
    init_noise: float = 0.02  # std of the per-head noise of "pca-noise"
    start: Start = "select"  # mu = 0 ("uncentered"), the corpus mean, or pick on the labels
    # losses
    triplet_weight: float = 1.0  # w_tri (times b / batch when only b < batch queries exist)
    ntxent_weight: float = 0.1  # lambda
    anchor_weight: float = 1.0  # weight of the similarity anchor
    loss: TripletLoss = "hinge"  # "softplus" is the non-self-limiting ablation
    margin: float = 0.1  # triplet margin m on cosines
    temperature: float = 0.5  # NT-Xent tau
    anchor_neighbours: int = 16  # in-batch frozen neighbours in the anchor's second term
    anchor_centred: bool = True  # from a centred start, anchor to the frozen cosines of
    # x - mu, the geometry that start keeps (False: of x, whatever the start)
    # optimisation
    lr: float = 1e-4  # AdamW learning rate
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    steps: int = 100  # updates per training run (the selection may keep fewer)
    max_steps: int = 400  # a leading arm still rising at its last check runs on, to this cap
    extend_at: float = 0.5  # ... while its best check is at or past this share of its steps
    # (a holdout choice only; a cross-fitted one extends from its last check)
    corpus_batch: int = 128  # corpus items per step (anchor and NT-Xent)
    ntxent_items: int = 64  # of those, items whose H views enter NT-Xent (its cost is (H*B)^2)
    query_batch: int = 32  # labelled queries per step, at least
    query_batch_max: int = 128  # at most (the baselines' batch); between the two bounds a
    # step draws 1 / POOL_SHARE of the labelled pool (`batch_for`, docs/methods.md)
    positives: int = 1  # distinct relevant documents drawn per query and step (all of a
    # query's, if fewer), each a triplet with its own negatives; the loss is their mean
    graded_positives: bool = False  # draw them in proportion to their grades (as nDCG weighs
    # them; binary labels draw as before), not uniformly
    hard_negatives: int = 4  # per triplet, from the current ranking
    random_negatives: int = 4  # per triplet, uniform over the corpus
    negative_skip: int = 0  # non-relevant top ranks never used as negatives
    negative_band: int = 30  # hard negatives come from this many ranks below the skipped
    # selection (dive.training.selection)
    mine_every: int = 5  # steps between hard-negative refreshes, from the current ranking
    shortlist: int | None = None  # a refresh re-ranks only each query's this many nearest
    # rows under corpus outputs at most eval_every steps old (None: every row; large corpora)
    # (at lr 1e-3, pools 25+ steps old let NFCorpus runs collapse by 0.03-0.06; docs/methods.md)
    folds: int = 3  # cross-fitting folds over the labelled queries
    holdout_min: int = 100  # a validation set this large is used alone, as one holdout fold
    min_gain_z: float = 1.0  # leave the start only if the paired gain >= this many std errors
    start_score: StartScore = "log-rank"  # what the start choice compares per labelled query:
    # the mean -log(rank) of its relevant documents in the whole corpus, or nDCG@start_depth
    start_depth: int = 10  # the start choice compares nDCG at this cutoff (arms: always @10)
    refit: bool = True  # retrain the kept arm on every label (False: keep a holdout's run)
    nested_gain: bool = False  # test the gain of a choice made without each query (off: dev)
    gain_flips: int = 0  # > 0: the gain must beat chance over every (arm, step), by sign flips
    shrink: bool = False  # move the kept model's weights only 1 - 1/z^2 of the way from the start
    soup: bool = True  # a cross-fitted choice keeps the mean of the kept arm's fold runs at
    # the kept step, the models it scored (False: refit the arm on every label)
    grid: str = "0x1,1x10x3"  # arms "TRIPLETxLR[xMARGIN][@loss]" (multipliers), ","-separated
    workers: int | None = None  # selection runs trained at once (threads; None: one per CPU);
    # the model is bitwise the same at any count

    speed_fields: ClassVar[tuple[str, ...]] = ("workers",)

    def rules(self) -> list[Rule]:
        rules: list[Rule] = [
            *super().rules(),
            *at_least(self, 1, "heads", "start_depth"),
            *at_least(self, 0, "init_noise", "triplet_weight", "ntxent_weight", "anchor_weight",
                      "margin"),
            *at_least(self, 0, "temperature", strict=True),
            *at_least(self, 0, "anchor_neighbours", "weight_decay", "steps", "max_steps"),
            *at_least(self, 2, "corpus_batch", "ntxent_items"),
            *at_least(self, 1, "query_batch", "query_batch_max", "positives"),
            *at_least(self, 0, "hard_negatives", "random_negatives", "negative_skip", "gain_flips"),
            *at_least(self, 1, "negative_band", "mine_every"),
            *at_least(self, 2, "folds"),
            *at_least(self, 1, "holdout_min"),
            # noise on unit-norm axes: 1 is all noise already; 1e30 saved a model whose
            # outputs overflow float32 (refused only when it was used)
            ("init_noise", self.init_noise <= 1, "<= 1 (the std of noise added to unit-norm "
             "principal axes)"),
            # each is taken from the corpus batch: a larger value was cut to it without a word
            ("ntxent_items", self.ntxent_items <= self.corpus_batch,
             f"<= corpus_batch ({self.corpus_batch})"),
            # NT-Xent compares every view with every other: heads=1000 asked for a 16 GB
            # matrix, which the kernel killed the fit over, without a word
            ("heads" if self.ntxent_items <= NTXENT_VIEWS else "ntxent_items",
             self.ntxent_weight == 0 or self.heads * self.ntxent_items <= NTXENT_VIEWS,
             f"such that heads x ntxent_items <= {NTXENT_VIEWS} (NT-Xent's similarity matrix "
             "of its views), or ntxent_weight=0"),
            ("anchor_neighbours", self.anchor_neighbours < self.corpus_batch,
             f"< corpus_batch ({self.corpus_batch})"),
            # only the nDCG comparison has a cutoff: with log-ranks it was recorded, unread
            ("start_depth", self.start_depth == 10 or self.start_score == "ndcg",
             "10 unless start_score=ndcg (log-ranks read every rank)"),
            ("extend_at", 0 < self.extend_at <= 1, "in (0, 1]"),
            ("workers", self.workers is None or self.workers >= 1, ">= 1 (or None)"),
            ("shortlist", self.shortlist is None or self.shortlist >= 1, ">= 1 (or None)"),
        ]
        for name, kind in (("head_init", HeadInit), ("loss", TripletLoss), ("start", Start),
                           ("start_score", StartScore)):
            valid = get_args(kind)
            rules.append((name, getattr(self, name) in valid, f"one of {', '.join(valid)}"))
        return rules

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hard_negatives + self.random_negatives < 1:
            raise DiveError("hard_negatives + random_negatives must be >= 1")
        self.arms()  # validates the grid string

    def batch_for(self, n_labels: int) -> int:
        """Labelled queries per step with `n_labels` pooled: 1 / POOL_SHARE of them, at least
        `query_batch` and at most `query_batch_max` (`query_batch` wins if the bounds cross)."""
        return max(self.query_batch, min(n_labels // POOL_SHARE, self.query_batch_max))

    def runs_on(self, step: int, horizon: int, *, holdout: bool) -> bool:
        """Whether the race runs on a leader whose best check is at `step` of its `horizon`
        steps: the best is late (its last check, or with a holdout's curve at or past
        `extend_at` of it; on the tens of queries a cross-fit scores, a dip is noise) and the
        horizon is below the cap, `max_steps` (never below `steps`)."""
        late = self.extend_at if holdout else 1.0
        return step >= late * horizon and horizon < max(self.steps, self.max_steps)

    def arm(self) -> Arm:
        """The configured weights as one arm (what a fit without selection trains)."""
        return Arm(self.triplet_weight, self.lr, self.loss, self.margin)

    def arms(self) -> list[Arm]:
        """The selection grid, duplicates removed, in order.

        An entry "TRIPLETxLR" or "TRIPLETxLRxMARGIN" gives finite multipliers (>= 0, LR's > 0)
        of `triplet_weight`, `lr` and `margin`, with the configured `loss`; a suffix
        "@softplus" or "@hinge" sets that arm's triplet loss.
        """
        out: list[Arm] = []
        for part in self.grid.split(","):
            factors, _, loss = part.strip().lower().partition("@")
            try:
                values = [float(v) for v in factors.split("x")]
            except ValueError:
                values = []
            loss = loss or self.loss
            if (
                len(values) not in (2, 3)
                or not all(map(math.isfinite, values))
                or min(values) < 0
                or values[1] == 0
                or loss not in get_args(TripletLoss)
            ):
                raise DiveError(
                    f"grid entry {part!r} is not 'TRIPLETxLR[xMARGIN]' multipliers (finite, >= 0; "
                    "LR > 0), optionally '@hinge' or '@softplus' (e.g. "
                    "grid=0x1,1x1,1x10,1x10x3@softplus)"
                )
            margin = self.margin * (values[2] if len(values) == 3 else 1.0)
            weight, lr = values[0] * self.triplet_weight, values[1] * self.lr
            arm = Arm(weight, lr, cast(TripletLoss, loss), margin)
            if arm not in out:
                out.append(arm)
        return out


class Dive(LearnedCompressor):
    """DIVE: residual adapter + H averaged projection heads; start, arm and length chosen on labels.

    `Dive(dim, seed, **options)` takes any `DiveConfig` field as a keyword option (the
    registry passes `dive:heads=1:ntxent_weight=0` this way), or a whole `config=`.

    Parameters
    ----------
    dim : int or None, default=None
        Output dimension d, in 1..D; None keeps the input dimension D.
    seed : int, default=0
        Seed of the initialisation, batches, negatives and folds.
    config : DiveConfig or None, default=None
        Every hyper-parameter at once; None means `DiveConfig()` (the class's `defaults`
        where a subclass such as `dive-plus` sets them).
    **options
        Any `DiveConfig` field by name, applied over `config`: its fields, defaults and
        valid values are listed there. The ones most often changed: `heads=4` (H),
        `steps=100` (updates per training run), `select=True` (choose the start, the arm
        and its length on the labelled queries), `min_gain_z=1.0` (leave the PCA start only
        for a gain of this many standard errors), `threads=1` (torch threads in the fit).

    Attributes
    ----------
    options : DiveConfig
        The hyper-parameters in use (`config()` returns them with `dim` and `seed`, less
        `workers`, which changes the speed only: `threads` is kept, as torch's kernels give
        the same result for a fixed thread count only); `dive_config` is an alias.
    runtime_ : Runtime
        The fitted numpy map: adapter, centre and the heads folded into one projection.
    fit_info_ : FitInfo
        `summary`: the fit's `FitSummary` (the start and arm selected, the kept step, and,
        when it chose on labelled queries, their number, the out-of-fold curve and the
        scores of the kept model and of its start); `diagnostics`: the rest, in detail.

    Examples
    --------
    >>> import numpy as np
    >>> from dive.compressors import Dive, LabelledQueries, TrainingData
    >>> rng = np.random.default_rng(0)
    >>> corpus = rng.standard_normal((300, 32)).astype(np.float32)
    >>> queries = corpus[:24] + 0.1 * rng.standard_normal((24, 32)).astype(np.float32)
    >>> labels = TrainingData(LabelledQueries(queries, tuple({i: 1} for i in range(24))))
    >>> model = Dive(dim=8, steps=20).fit(corpus, labels)
    >>> model.transform(queries).shape
    (24, 8)
    >>> model.options.heads, model.fit_info_.summary.n_queries
    (4, 24)
    """

    method = "dive"
    family = "learned"
    supervised = True
    config_class = DiveConfig
    options: DiveConfig

    @property
    def dive_config(self) -> DiveConfig:
        """The hyper-parameters in use: the older name of `options`, kept for existing code."""
        return self.options

    def _fit(self, corpus: np.ndarray, train: TrainingData | None) -> Runtime:
        start = time.perf_counter()  # the import's seconds (torch's, on a first fit) count
        from dive.compressors._dive_fit import fit_dive

        runtime, diagnostics, summarise = fit_dive(
            corpus, train, dim=self.dim or corpus.shape[1], seed=self.seed, config=self.options,
            name=self.method)
        runtime, _ = zero_dead_outputs(runtime, output_energy(runtime, corpus), self.method)
        summary = summarise(time.perf_counter() - start)
        diagnostics["fit_seconds"] = round(summary.seconds, 4)
        self.fit_info_.diagnostics.update(diagnostics)
        self.fit_info_.summary = summary
        logger.info(
            "%s: d=%d selected %s at step %d in %.1fs",
            self.method,
            runtime.output_dim,
            summary.selected,
            summary.best_step,
            summary.seconds,
        )
        return runtime
