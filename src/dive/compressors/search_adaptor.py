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
from dive.compressors.options import Rule


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
            ("steps", self.steps >= 0, ">= 0"),
            ("weight_rec", self.weight_rec >= 0, ">= 0"),
            ("weight_pred", self.weight_pred >= 0, ">= 0"),
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
    dim : int or None, default=None
        Output dimension d, in 1..D; None keeps the input dimension D.
    seed : int, default=0
        Seed of the initialisation, batches and negatives.
    config : SearchAdaptorConfig or None, default=None
        Every option at once; None means `SearchAdaptorConfig()`.
    **options
        Any `SearchAdaptorConfig` field by name, applied over `config` (fields, defaults and valid
        values are listed there and in `BaselineConfig`). The ones most often changed:
        `steps=1000`, `weight_rec_grid="0/0.1/1"` (alpha), `weight_pred_grid="0/0.01/0.1"`
        (beta), `basis="identity"` (the raw prefix).

    Attributes
    ----------
    options : SearchAdaptorConfig
        The options in use (`config()` returns them with `dim` and `seed`, less `threads`).
    runtime_ : Runtime
        The fitted numpy map: the relu adapter and the prefix rows.
    fit_info_ : FitInfo
        The fit's diagnostics and, when it chose on validation queries, `held_out`: the
        score of the kept model and of its start on them.

    Examples
    --------
    >>> import numpy as np
    >>> from dive.compressors import LabelledQueries, SearchAdaptor, TrainingData
    >>> rng = np.random.default_rng(0)
    >>> corpus = rng.standard_normal((300, 32)).astype(np.float32)
    >>> queries = corpus[:24] + 0.1 * rng.standard_normal((24, 32)).astype(np.float32)
    >>> labels = [LabelledQueries(queries[i::2], tuple({j: 1} for j in range(i, 24, 2)))
    ...           for i in (0, 1)]
    >>> model = SearchAdaptor(dim=8, steps=20, weight_rec_grid="0.1", weight_pred_grid="0")
    >>> model = model.fit(corpus, TrainingData(train=labels[0], validation=labels[1]))
    >>> model.transform(queries).shape, model.fit_info_.held_out.n_queries
    ((24, 8), 12)
    """

    method = "search-adaptor"
    supervised = True
    config_class = SearchAdaptorConfig
    fit_path = "dive.compressors._search_adaptor_fit:fit_search_adaptor"
    options: SearchAdaptorConfig
