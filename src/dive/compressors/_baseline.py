"""What the published baselines share on the torch-free side: their options and their fit.

`BaselineConfig` holds the options every baseline has beyond `LearnedConfig`'s (batch,
validation gate, selection grid, negative sampling, basis); each method's config extends it
and checks its values when built (`dive.compressors.options.build` adds the method's name to
an error). `Baseline` is the learned compressor (`dive.compressors.learned`) around such a
config and a lazily imported fit.

The selection grid: a config names the float options the validation queries may choose
(`grid_fields`); each has a `<name>_grid` option, values separated by "/" (`"0/0.1/1"`;
commas would split a benchmark's method list), and an empty grid keeps the configured value.
`settings()` is every combination, each a dict of option values the fit applies with
`dataclasses.replace`; `select=False` keeps the configured values only (its checkpoint still
early-stopped on the validation queries). Left out: the choice
itself (torch side, `dive.compressors._baseline_select`).
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np

from dive.compressors.base import TrainingData
from dive.compressors.learned import LearnedCompressor, LearnedConfig
from dive.compressors.options import Rule, at_least
from dive.compressors.runtime import Runtime

Basis = Literal["identity", "pca", "select"]
BASES: tuple[Basis, ...] = ("identity", "pca", "select")
GRID_SEPARATOR = "/"
C = TypeVar("C", bound="BaselineConfig")


def halving_dims(width: int, dim: int) -> list[int]:
    """Halve `width` until `dim` (the last step lands on `dim`): [192, 96, 48] for 384 -> 48."""
    if not 0 < dim <= width:
        raise ValueError(f"dim must be in 1..{width}, got {dim}")
    dims: list[int] = []
    while width > dim:
        width = max(dim, width // 2)
        dims.append(width)
    return dims


def parse_grid(text: str) -> tuple[float, ...] | None:
    """`"0/0.1/1"` -> (0.0, 0.1, 1.0), duplicates dropped; `""` -> (); None if not finite
    numbers."""
    parts = [p.strip() for p in text.split(GRID_SEPARATOR)] if text.strip() else []
    try:
        values = tuple(dict.fromkeys(float(p) for p in parts))
    except ValueError:
        return None
    return values if all(map(math.isfinite, values)) else None


@dataclass(frozen=True)
class BaselineConfig(LearnedConfig):
    """Options shared by Matryoshka-Adaptor, Search-Adaptor and SMEC (with `LearnedConfig`'s:
    `lr` is Adam(W)'s, no weight decay, unless a searched `lr_grid` replaces it; `select`
    chooses the grid's setting on the validation queries, searched from `grid_min` of them).
    The checkpoint is early-stopped on the validation queries either way, as the papers do:
    `select=False` is the fixed-setting fit, where DIVE's chooses nothing at all."""

    lr_grid: str = ""  # learning rates the selection tries, "/"-separated ("": `lr` only)
    grid_min: int = 100  # validation queries needed to choose on the grid (fewer: configured)
    query_batch: int = 128  # labelled queries per step (the ranking terms)
    patience_steps: int = 125  # steps without a better validation score before a run stops
    negatives_per_positive: int = 10
    hard_fraction: float = 0.5  # share of negatives mined from the current ranking
    # steps between hard-negative refreshes, as DIVE's (None: after each check; rows `@v2`)
    mine_every: int | None = 5
    basis: Basis = "identity"  # "pca": prefix in principal axes; "select": the better start

    grid_fields: ClassVar[tuple[str, ...]] = ("lr",)  # options a `<name>_grid` may vary
    # old option names, still taken for one release: `patience` counted steps here but checks
    # in the validation gate (`dive.training.gate`)
    # and `batch_size` sized the query batch (and the corpus batch where a method has one),
    # which DIVE names apart
    renamed: ClassVar[dict[str, str | tuple[str, ...]]] = {
        "patience": "patience_steps",
        "batch_size": "query_batch",
    }

    def rules(self) -> list[Rule]:
        """(option, valid?, valid values); subclasses add theirs."""
        grids: list[Rule] = []
        for name in self.grid_fields:
            values = parse_grid(getattr(self, f"{name}_grid"))
            rule = "> 0" if name == "lr" else ">= 0"
            ok = values is not None and all(v > 0 if name == "lr" else v >= 0 for v in values)
            grids.append((f"{name}_grid", ok, f"finite numbers {rule} separated by '/', or empty"))
        return [
            *super().rules(),
            *grids,
            *at_least(self, 1, "query_batch"),
            *at_least(self, 0, "grid_min"),
            *at_least(self, 1, "patience_steps", "negatives_per_positive"),
            ("mine_every", self.mine_every is None or self.mine_every >= 1, ">= 1, or unset"),
            ("hard_fraction", 0 <= self.hard_fraction <= 1, "in [0, 1]"),
            ("basis", self.basis in BASES, f"one of {', '.join(BASES)}"),
        ]

    def settings(self, validated: bool = True) -> list[dict[str, float]]:
        """The grid: each combination of the `<name>_grid` values (first name slowest); a
        name with an empty grid keeps its value, and so does every name when `select` is
        off or nothing is `validated` (no validation queries to choose on)."""
        grid = self.select and validated
        axes = [
            (parse_grid(getattr(self, f"{name}_grid")) if grid else None) or (getattr(self, name),)
            for name in self.grid_fields
        ]
        combos = itertools.product(*axes)
        return [dict(zip(self.grid_fields, combo, strict=True)) for combo in combos]

    def applied(self: C, setting: Mapping[str, float]) -> C:
        """This config with one grid setting's values."""
        return dataclasses.replace(self, **setting)  # type: ignore[arg-type]

    def chooses_on(self, n_validation: int) -> bool:
        """Whether `n_validation` queries are enough to choose a grid setting on.

        The best of several settings on a handful of queries is mostly the luckiest (with 13
        validation queries Search-Adaptor's 9-point grid lost up to 0.03 nDCG@10 to its
        configured setting, docs/methods.md), so below `grid_min` the fit keeps the
        configured values and chooses only the checkpoint, as DIVE trusts a holdout only
        from `holdout_min` (also 100) queries."""
        return n_validation >= max(1, self.grid_min)

    def grid_text(self, validated: bool = True) -> str:
        """How the results page names the grid: `weight_rec 0/0.1/1 × weight_pred 0/0.01/0.1`
        (`start identity/pca` first with `basis="select"`; "none": the configured values, as
        with `validated=False`, too few validation queries to choose on)."""
        parts = ["start identity/pca"] if self.basis == "select" else []
        if self.select and validated:
            parts += [
                f"{name} {GRID_SEPARATOR.join(f'{v:g}' for v in values)}"
                for name in self.grid_fields
                if (values := parse_grid(getattr(self, f"{name}_grid")))
            ]
        return " × ".join(parts) if parts else "none"


@dataclass(frozen=True)
class CorpusBatchConfig(BaselineConfig):
    """A baseline whose loss also has in-batch corpus terms (Matryoshka-Adaptor, SMEC): a
    corpus batch besides the query batch, which the old `batch_size` sized both of."""

    corpus_batch: int = 128  # corpus rows per step (its in-batch terms compare two or more)
    renamed: ClassVar[dict[str, str | tuple[str, ...]]] = {
        **BaselineConfig.renamed,
        "batch_size": ("corpus_batch", "query_batch"),
    }

    def rules(self) -> list[Rule]:
        return [*super().rules(), *at_least(self, 2, "corpus_batch")]


class Baseline(LearnedCompressor):
    """A published baseline: options in a frozen `config_class`, the torch fit in `fit_path`.

    `Cls(dim, seed, **options)` takes any field of `config_class` as a keyword (the registry
    passes `smec:stage_steps=100` this way), or a whole `config=`. `fit_path` names the
    torch-side function ("module:function") imported only when fitting: called as
    `fit(model, corpus, train, rng)` inside `dive.training.seeded`, it returns the runtime, the
    diagnostics for the results record and a `Summarise` for the fit's typed summary.
    """

    family = "baseline"
    config_class: ClassVar[type[BaselineConfig]] = BaselineConfig
    fit_path: ClassVar[str]
    options: BaselineConfig

    def _fit(self, corpus: np.ndarray, train: TrainingData | None) -> Runtime:
        start = time.perf_counter()  # the imports' seconds (torch's, on a first fit) count
        from dive.training.seeding import seeded

        module, _, name = self.fit_path.partition(":")
        fit = getattr(importlib.import_module(module), name)
        with seeded(self.seed, threads=self.options.threads) as rng:
            runtime, diagnostics, summarise = fit(
                self, corpus, train if self.supervised else None, rng
            )
        seconds = time.perf_counter() - start
        diagnostics["train_seconds"] = round(seconds, 3)
        grids = dict.fromkeys(r["grid"] for r in selected_runs(diagnostics))
        diagnostics["grid"] = "; ".join(grids) or "none"  # what the results page shows
        summary = summarise(seconds)
        if train is not None and train.validation is not None and self.supervised:
            # the queries the choice read: a validation query without a relevant document in
            # the corpus is left out (it was counted)
            diagnostics["selected_on_queries"] = summary.n_queries
        self.fit_info_.summary = summary
        self.fit_info_.diagnostics.update(diagnostics)
        return runtime


def selected_runs(diagnostics: dict[str, Any]) -> list[dict[str, Any]]:
    """The records of every run (or stage) a baseline chose on, in fit order.

    `dive.compressors._baseline_select` records a `grid` and, where validation queries
    existed, its `choice`: at the top level (Search-Adaptor), for the supervised stage
    (Matryoshka-Adaptor) or per stage (SMEC).
    """
    runs = [diagnostics, diagnostics.get("supervised"), *diagnostics.get("stages", [])]
    return [r for r in runs if isinstance(r, dict) and "grid" in r]
