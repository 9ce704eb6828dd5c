"""`search-adaptor`: Search-Adaptor (Yoon et al., ACL 2024) used as a compressor (SPEC 4.3).

One residual adapter e^ = e + f(e) shared by queries and documents (f = Linear(D, r) -> ReLU
-> Linear(r, D), last layer zero-initialised), trained on labelled queries with

    L = L_rank + 0.1 L_rec + 0.01 L_pred

L_rank the graded pairwise logistic ranking loss (about 10 negatives per positive), L_rec the
L1 size of f on queries and documents, L_pred the grade-weighted L1 error of a query predictor
p that maps each relevant document to its query. p is used only in training: transform is the
adapter plus the projection. Search-Adaptor is not a compression method by itself; to compress
to d we compute L_rank and L_pred on the renormalised prefix e^[:d] (one model per d) and output
that prefix (SPEC 4.3, our choice). Left out: the paper's other variants (e.g. no-skip adapters).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from dive.compressors._baseline_options import check_basis, check_options, shared_rules
from dive.compressors.base import Compressor, TrainingData
from dive.compressors.runtime import Runtime


class SearchAdaptor(Compressor):
    """Search-Adaptor on the prefix e^[:d].

    Choices the paper leaves open (reasons in docs/methods.md): hidden width r = D; the query
    predictor is a residual ReLU MLP on the d-dim prefix (zero-initialised, so it starts as the
    identity); L_rec and L_pred averaged over coordinates; up to 8 positives per query per step,
    each with 10 negatives, half mined from the current model's ranking (never a judged-relevant
    document), half random (`hard_fraction`, the sampler DIVE shares); validation nDCG@10 every
    `eval_every` steps with checkpoint 0 = the start (truncation), patience 125 steps as in the
    paper, and without validation queries the last state; 2000 steps scaled down to `steps` =
    1000 for CPU. `basis="pca"` takes the prefix in the principal-axis basis (off by default).
    Without labels there is nothing to train: the fit returns the start (plain truncation).
    """

    method = "search-adaptor"
    supervised = True

    def __init__(
        self,
        dim: int | None = None,
        seed: int = 0,
        *,
        hidden: int | None = None,
        lr: float = 1e-3,
        batch_size: int = 128,
        steps: int = 1000,
        patience: int = 125,
        eval_every: int = 25,
        weight_rec: float = 0.1,
        weight_pred: float = 0.01,
        negatives_per_positive: int = 10,
        hard_fraction: float = 0.5,
        basis: str = "identity",
        threads: int = 1,
    ) -> None:
        super().__init__(dim=dim, seed=seed)
        check_basis(self.method, basis)
        check_options(
            self.method,
            [
                *shared_rules(
                    hidden=hidden,
                    lr=lr,
                    batch_size=batch_size,
                    min_batch=1,
                    patience=patience,
                    eval_every=eval_every,
                    negatives_per_positive=negatives_per_positive,
                    hard_fraction=hard_fraction,
                    threads=threads,
                ),
                ("steps", steps, steps >= 0, ">= 0"),
                ("weight_rec", weight_rec, weight_rec >= 0, ">= 0"),
                ("weight_pred", weight_pred, weight_pred >= 0, ">= 0"),
            ],
        )
        self.hidden = hidden
        self.lr = lr
        self.batch_size = batch_size
        self.steps = steps
        self.patience = patience
        self.eval_every = eval_every
        self.weight_rec = weight_rec
        self.weight_pred = weight_pred
        self.negatives_per_positive = negatives_per_positive
        self.hard_fraction = hard_fraction
        self.basis = basis
        self.threads = threads

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "hidden": self.hidden,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "steps": self.steps,
            "patience": self.patience,
            "eval_every": self.eval_every,
            "weight_rec": self.weight_rec,
            "weight_pred": self.weight_pred,
            "negatives_per_positive": self.negatives_per_positive,
            "hard_fraction": self.hard_fraction,
            "basis": self.basis,
        }

    def _fit(self, corpus: np.ndarray, train: TrainingData | None) -> Runtime:
        from dive.compressors._search_adaptor_fit import fit_search_adaptor

        start = time.perf_counter()
        runtime, diagnostics = fit_search_adaptor(self, corpus, train)
        diagnostics["train_seconds"] = round(time.perf_counter() - start, 3)
        self.fit_info_.diagnostics.update(diagnostics)
        return runtime
