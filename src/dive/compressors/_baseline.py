"""What the published baselines share on the torch-free side: their options and constructor.

`BaselineConfig` holds the options every baseline has (adapter width, optimiser, batch,
validation gate, negative sampling, basis, threads); each method's config extends it and
checks its values when built (`dive.compressors.options.build` adds the method's name to an
error). `Baseline` is the compressor class around such a config and a lazily imported fit.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from dive.compressors.base import Compressor, HeldOutScore, TrainingData
from dive.compressors.options import Rule, build, check
from dive.compressors.runtime import Runtime

Basis = Literal["identity", "pca"]
BASES: tuple[Basis, ...] = ("identity", "pca")


@dataclass(frozen=True)
class BaselineConfig:
    """Options shared by Matryoshka-Adaptor, Search-Adaptor and SMEC."""

    hidden: int | None = None  # adapter width r; None means r = D
    lr: float = 1e-3  # Adam(W) learning rate, no weight decay
    batch_size: int = 128
    patience: int = 125  # steps without a better validation score before a run stops
    eval_every: int = 25  # steps between validation checks
    negatives_per_positive: int = 10
    hard_fraction: float = 0.5  # share of negatives mined from the current ranking
    basis: Basis = "identity"  # "pca": take the prefix in the corpus's principal-axis basis
    threads: int = 1  # torch + BLAS threads during the fit

    min_batch: ClassVar[int] = 1

    def rules(self) -> list[Rule]:
        """(option, valid?, valid values); subclasses add theirs."""
        return [
            ("hidden", self.hidden is None or self.hidden >= 1, ">= 1 (or None for D)"),
            ("lr", self.lr > 0, "> 0"),
            ("batch_size", self.batch_size >= self.min_batch, f">= {self.min_batch}"),
            ("patience", self.patience >= 1, ">= 1"),
            ("eval_every", self.eval_every >= 1, ">= 1"),
            ("negatives_per_positive", self.negatives_per_positive >= 1, ">= 1"),
            ("hard_fraction", 0 <= self.hard_fraction <= 1, "in [0, 1]"),
            ("basis", self.basis in BASES, f"one of {', '.join(BASES)}"),
            ("threads", self.threads >= 1, ">= 1"),
        ]

    def __post_init__(self) -> None:
        check(self, self.rules())


class Baseline(Compressor):
    """A published baseline: options in a frozen `config_class`, the torch fit in `fit_path`.

    `Cls(dim, seed, **options)` takes any field of `config_class` as a keyword (the registry
    passes `smec:stage_steps=100` this way), or a whole `config=`. `fit_path` names the
    torch-side function ("module:function") imported only when fitting: called as
    `fit(model, corpus, train, rng)` inside `dive.training.seeded`, it returns the runtime and
    the diagnostics for the results record.
    """

    config_class: ClassVar[type[BaselineConfig]] = BaselineConfig
    fit_path: ClassVar[str]

    def __init__(
        self,
        dim: int | None = None,
        seed: int = 0,
        *,
        config: BaselineConfig | None = None,
        **options: Any,
    ) -> None:
        super().__init__(dim=dim, seed=seed)
        self.options = build(self.config_class, self.method, options, base=config)

    def config(self) -> dict[str, Any]:
        values = dataclasses.asdict(self.options)
        del values["threads"]  # how fast, not what: kept out of the recorded config
        return {**super().config(), **values}

    def _fit(self, corpus: np.ndarray, train: TrainingData | None) -> Runtime:
        from dive.training.seeding import seeded

        module, _, name = self.fit_path.partition(":")
        fit = getattr(importlib.import_module(module), name)
        start = time.perf_counter()
        with seeded(self.seed, threads=self.options.threads) as rng:
            runtime, diagnostics = fit(self, corpus, train if self.supervised else None, rng)
        diagnostics["train_seconds"] = round(time.perf_counter() - start, 3)
        validation = train.validation if train is not None and self.supervised else None
        if validation is not None:
            self.fit_info_.held_out = gated_score(diagnostics, len(validation))
            diagnostics["selected_on_queries"] = len(validation)
        self.fit_info_.diagnostics.update(diagnostics)
        return runtime


def gated_score(diagnostics: dict[str, Any], n_queries: int) -> HeldOutScore | None:
    """The validation gate's choice in the last gated run (or stage) a baseline recorded.

    Each baseline records `best_score` and its `history` of (step, score) per gated run: at
    the top level (Search-Adaptor), per stage (SMEC) or for the supervised stage
    (Matryoshka-Adaptor). `start` is that run's first check, the checkpoint it started from.
    """
    runs = [diagnostics, diagnostics.get("supervised"), *diagnostics.get("stages", [])]
    gated = [r for r in runs if isinstance(r, dict) and r.get("history") and "best_score" in r]
    if not gated or gated[-1]["best_score"] is None:
        return None
    last = gated[-1]
    return HeldOutScore(float(last["best_score"]), float(last["history"][0][1]), n_queries)
