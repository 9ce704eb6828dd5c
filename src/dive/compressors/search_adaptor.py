"""`search-adaptor`: Search-Adaptor (Yoon et al., ACL 2024) used as a compressor (SPEC 4.3).

One residual adapter e^ = e + f(e) shared by queries and documents (f = Linear(D, r) -> ReLU
-> Linear(r, D), last layer zero-initialised), trained on labelled queries with

    L = L_rank + alpha L_rec + beta L_pred,   alpha in {0, 0.1, 1}, beta in {0, 0.01, 0.1}

L_rank the graded pairwise logistic ranking loss (about 10 negatives per positive), L_rec the
L1 size of f on queries and documents, L_pred the grade-weighted L1 error of a query predictor
p that maps each relevant document to its query. As in the paper, alpha and beta are chosen
on the validation queries: each of the 9 pairs trains once and the shared selection
(`dive.compressors._baseline_select`) keeps the best (pair, checkpoint), or the start.
p is used only in training: transform is the adapter plus the projection. Search-Adaptor is
not a compression method by itself; to compress to d we compute L_rank and L_pred on the
renormalised prefix e^[:d] (one model per d) and output that prefix (SPEC 4.3, our choice).
Left out: the paper's other variants (e.g. no-skip adapters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from dive.compressors._baseline import Baseline, BaselineConfig
from dive.compressors.options import Rule, at_least


@dataclass(frozen=True)
class SearchAdaptorConfig(BaselineConfig):
    """Search-Adaptor's options (SPEC 4.3, patience 125; the paper's alpha/beta grid)."""

    steps: int = 1000
    weight_rec: float = 0.1  # alpha without a grid to choose on (no validation, select=False)
    weight_pred: float = 0.01  # beta, likewise
    weight_rec_grid: str = "0/0.1/1"  # alpha values the selection tries
    weight_pred_grid: str = "0/0.01/0.1"  # beta values the selection tries

    grid_fields: ClassVar[tuple[str, ...]] = ("lr", "weight_rec", "weight_pred")

    def rules(self) -> list[Rule]:
        return [
            *super().rules(),
            *at_least(self, 0, "steps", "weight_rec", "weight_pred"),
        ]


class SearchAdaptor(Baseline):
    """Search-Adaptor on the prefix e^[:d].

    Choices the paper leaves open (reasons in docs/methods.md): hidden width r = D; the query
    predictor is a residual ReLU MLP on the d-dim prefix (zero-initialised, so it starts as the
    identity); L_rec and L_pred averaged over coordinates; up to 8 positives per query per step,
    each with 10 negatives, half mined from the current model's ranking (never a judged-relevant
    document), half random (`hard_fraction`, the sampler DIVE shares); validation nDCG@10 every
    `eval_every` steps with checkpoint 0 = the start (truncation), patience 125 steps as in the
    paper, and without validation queries the last state of the configured weights (0.1,
    0.01); 2000 steps scaled down to `steps` = 1000 for CPU. `select=False` (or one-value
    grids) trains one weight pair, the fit this package had before the grid. `basis="pca"`
    takes the prefix in the principal-axis basis, `"select"` the better start (off by
    default). Without labels there is nothing to train: the fit returns the start (plain
    truncation).

    Parameters
    ----------
    dim, seed, config, **options
        As for every learned method (`LearnedCompressor`); `config_class` is
        `SearchAdaptorConfig`. Changed most often: `steps=1000`, `weight_rec_grid="0/0.1/1"`
        (alpha), `weight_pred_grid="0/0.01/0.1"` (beta).

    Attributes
    ----------
    options, runtime_, fit_info_
        As `LearnedCompressor`'s. `runtime_` holds the relu adapter and the prefix rows (the
        query predictor trains the adapter, then is dropped).

    Examples
    --------
    >>> import numpy as np
    >>> from dive.compressors import LabelledQueries, SearchAdaptor, TrainingData
    >>> corpus = np.random.default_rng(0).standard_normal((300, 32)).astype(np.float32)
    >>> graded = tuple({i: 2, i + 1: 1} for i in range(0, 40, 2))  # per query: row -> grade
    >>> labels = LabelledQueries(corpus[0:40:2] + corpus[1:40:2], graded)
    >>> model = SearchAdaptor(dim=8, steps=20).fit(corpus, TrainingData(labels))
    >>> model.transform(corpus[:3]).shape, model.options.weight_rec  # no validation: no grid
    ((3, 8), 0.1)
    """

    method = "search-adaptor"
    supervised = True
    config_class = SearchAdaptorConfig
    fit_path = "dive.compressors._search_adaptor_fit:fit_search_adaptor"
    options: SearchAdaptorConfig
