"""`matryoshka-adaptor` and `matryoshka-adaptor-unsup`: Yoon et al., EMNLP 2024 (SPEC 4.2).

A residual MLP adapter e^ = e + f(e) (f = Linear(D, r) -> ReLU -> Linear(r, D), last layer
zero-initialised) is trained so that the *prefixes* e^[:m], m in M, keep the similarities of
the full frozen embeddings; the compressed output is the renormalised prefix e^[:d]. At
inference it is the numpy runtime's relu adapter plus an identity-rows projection.

Unsupervised: L_topk + L_pair + L_rec on corpus batches. Supervised: that stage first, then a
second stage that adds the graded ranking loss on the labelled queries (all weights 1), its
learning rate chosen on the validation queries by the shared selection. M is the paper's set
of nested dimensions, d and every halving of D down to it (`dims="nested"`, the default), or
{d, D} (`dims="single"`). Left out: the paper's multi-dimension serving (one fitted model
here serves one d, as every compressor in this package does, though the nested M trains
every larger prefix too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from dive.compressors._baseline import Baseline, CorpusBatchConfig, halving_dims
from dive.compressors.options import Rule, at_least
from dive.errors import DiveError

Dims = Literal["nested", "single"]


def target_dims(width: int, dim: int, dims: str) -> list[int]:
    """M, ascending: `"nested"` d and every halving of `width` down to it, plus `width`;
    `"single"` {d, width}."""
    if dims == "single":
        return sorted({dim, width})
    return sorted({width, *halving_dims(width, dim)})


@dataclass(frozen=True)
class MatryoshkaConfig(CorpusBatchConfig):
    """Matryoshka-Adaptor's options (both variants; the unsupervised one ignores the last)."""

    steps: int = 600  # stage 1 (unsupervised) steps
    supervised_steps: int = 300  # stage 2 steps (supervised variant only)
    dims: Dims = "nested"  # M: d and every halving of D down to it, or "single": {d, D}
    lr_grid: str = "0.001/0.0001"  # stage 2 learning rates the selection tries (stage 1: lr)
    patience_steps: int = 200
    eval_every: int = 50
    neighbours: int = 10  # k of L_topk, in the original space
    max_pool: int = 16384  # corpus rows searched for those neighbours
    weight_pair: float = 1.0
    weight_topk: float = 1.0
    weight_rec: float = 1.0
    weight_rank: float = 1.0

    def rules(self) -> list[Rule]:
        return [
            *super().rules(),
            *at_least(self, 0, "steps", "supervised_steps"),
            ("dims", self.dims in get_args(Dims), f"one of {', '.join(get_args(Dims))}"),
            *at_least(self, 1, "neighbours"),
            *at_least(self, 2, "max_pool"),
            # drawn from the pool: a larger value was cut to it without a word
            ("neighbours", self.neighbours < self.max_pool, f"< max_pool ({self.max_pool})"),
            *at_least(self, 0, "weight_pair", "weight_topk", "weight_rec", "weight_rank"),
        ]


class MatryoshkaAdaptorUnsup(Baseline):
    """Unsupervised Matryoshka-Adaptor: pairwise, top-k and reconstruction losses on the corpus.

    Choices the paper leaves open (SPEC 4.2; reasons in docs/methods.md):
    - hidden width r = D, ReLU (the runtime's relu adapter);
    - M nested (d, 2d, ..., D by halvings of D; `dims="single"`: {d, D});
    - losses averaged over pairs / coordinates instead of summed (scale-free weights of 1);
    - L_topk neighbours (k = 10, original space) found once over up to `max_pool` corpus rows;
    - `basis="pca"` (off by default) takes the prefix in the corpus's principal-axis basis, a
      lossless rotation folded into the runtime; `"identity"` is the paper's raw prefix.
    - steps scaled down for CPU from up to 5000 (patience 500) to `steps` = 600 unsupervised
      plus `supervised_steps` = 300 (patience 200), checked every 50 steps: stage 1 keeps the
      best checkpoint by its own loss on a fixed sample of 512 corpus anchors (also
      trained on: the corpus is what is searched); stage 2 trains once per
      learning rate of `lr_grid` (the paper names no grid: two values, the size of DIVE's)
      and the selection keeps the best (rate, checkpoint) by validation nDCG@10, or the end
      of stage 1 (no validation queries: `lr`, and the last state);
    - negatives: the sampler DIVE shares, half hard, half random (`hard_fraction`);
    - one torch thread (`threads`): faster than two when other work shares a 2-core machine.

    Parameters
    ----------
    dim, seed, config, **options
        The learned methods' (`LearnedCompressor`), with `MatryoshkaConfig`: `steps=600`
        (stage 1), `dims="nested"` (M) and `basis="identity"` (the raw prefix) are the
        options most often changed.

    Attributes
    ----------
    options, runtime_, fit_info_
        Those of `LearnedCompressor`, `runtime_` holding the relu adapter and prefix rows.

    Examples
    --------
    >>> import numpy as np
    >>> from dive.compressors import MatryoshkaAdaptorUnsup
    >>> corpus = np.random.default_rng(0).standard_normal((300, 32)).astype(np.float32)
    >>> model = MatryoshkaAdaptorUnsup(dim=8, steps=20).fit(corpus)  # no labels
    >>> model.transform(corpus[:5]).shape, model.options.dims
    ((5, 8), 'nested')
    """

    method = "matryoshka-adaptor-unsup"
    config_class = MatryoshkaConfig
    fit_path = "dive.compressors._matryoshka_fit:fit_matryoshka"
    options: MatryoshkaConfig

    def __init__(self, dim: int | None = None, seed: int = 0, *,
                 config: MatryoshkaConfig | None = None, **options: Any) -> None:
        super().__init__(dim, seed, config=config, **options)
        default = type(self.options)()
        # set by name, or in a whole `config=` (an old name, `batch_size`, sets query_batch
        # beside the corpus batch this variant uses: not refused)
        named = set(options) | ({f for f in (*NO_STAGE_TWO, *LABELS_ONLY)
                                 if getattr(config, f) != getattr(default, f)}
                                if config is not None else set())
        given = [] if self.supervised else sorted(
            [name for name, value in NO_STAGE_TWO.items()
             if name in named and getattr(self.options, name) != value]
            + [name for name in LABELS_ONLY
               if name in named and getattr(self.options, name) != getattr(default, name)]
            + (["basis=select"] if self.options.basis == "select" else []))
        if self.supervised and self.options.supervised_steps == 0:  # stage 1 alone, named
            # as the supervised method, its stage-2 options read by nothing
            raise DiveError(f"{self.method}: supervised_steps=0 runs no supervised stage; "
                            "that is matryoshka-adaptor-unsup")
        if given:  # taken, and recorded, with no effect (no stage 2; basis=select: identity)
            raise DiveError(f"{self.method}: {', '.join(given)} "
                            f"{'acts' if len(given) == 1 else 'act'} on labelled queries (the "
                            "supervised stage, its selection, its negatives), which this "
                            "variant never uses (matryoshka-adaptor does)")

    def config(self) -> dict[str, Any]:
        values = super().config()
        if not self.supervised:  # the unsupervised variant never runs stage 2
            values.update(NO_STAGE_TWO)
        return values


# What only stage 2 reads, as the unsupervised variant records it (its config rebuilds it).
NO_STAGE_TWO: dict[str, Any] = {"supervised_steps": 0, "weight_rank": 0.0, "lr_grid": ""}
# The shared options only labelled queries act on (stage 2's batches, negatives, selection):
# the unsupervised variant refuses them when set, as NO_STAGE_TWO's, and records the defaults.
LABELS_ONLY = ("query_batch", "negatives_per_positive", "hard_fraction", "mine_every",
               "grid_min", "min_gain_z", "select")


class MatryoshkaAdaptor(MatryoshkaAdaptorUnsup):
    """Supervised Matryoshka-Adaptor: the unsupervised stage, then + graded ranking loss.

    Parameters
    ----------
    dim, seed, config, **options
        As `MatryoshkaAdaptorUnsup` (so are the Attributes). Stage 2 runs
        `supervised_steps=300` steps of the ranking loss once per learning rate of
        `lr_grid="0.001/0.0001"` and keeps the selection's choice on the validation queries.

    Examples
    --------
    >>> import numpy as np
    >>> from dive.compressors import LabelledQueries, MatryoshkaAdaptor, TrainingData
    >>> corpus = np.random.default_rng(0).standard_normal((300, 32)).astype(np.float32)
    >>> queries = corpus[:24] + 0.1 * corpus[100:124]  # each near its own document
    >>> labels = [LabelledQueries(queries[i::2], tuple({j: 1} for j in range(i, 24, 2)))
    ...           for i in (0, 1)]
    >>> model = MatryoshkaAdaptor(dim=8, steps=20, supervised_steps=20)
    >>> model = model.fit(corpus, TrainingData(train=labels[0], validation=labels[1]))
    >>> model.transform(queries).shape, model.fit_info_.summary.n_queries
    ((24, 8), 12)
    >>> model.options.supervised_steps, model.options.lr_grid  # stage 2: per rate, this many
    (20, '0.001/0.0001')
    """

    method = "matryoshka-adaptor"
    supervised = True
