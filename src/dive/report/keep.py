"""The smallest dimension that keeps a share of the frozen baseline's quality.

For each (dataset, budget, method): the smallest evaluated d whose mean nDCG@10 over seeds is
at least `keep` x the frozen full-dimension mean on the same (dataset, budget). Only the
dimensions that were run count (no interpolation between them), and a method that reaches the
target at 48 but not at 96 still reports 48: the question is how far one can compress, not
whether the curve is monotone. A (dataset, budget) without a frozen run gives no answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dive.report.summary import budget_order, frozen_method, is_frozen, method_order, summarize

# Means are averages of float32-derived scores; a hair of slack keeps "exactly at the target"
# (e.g. keep=1.0 with a method that reproduces frozen) from failing on rounding.
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class KeepResult:
    """How far one method compresses on one (dataset, budget) while keeping the target."""

    dataset: str
    budget: str
    method: str
    frozen: float  # the frozen mean the target is relative to
    target: float  # keep x frozen
    dim: int | None  # smallest evaluated d reaching the target; None if none does
    score: float | None  # the method's mean at that d
    dims_tried: tuple[int, ...]  # every d evaluated, ascending


def smallest_dims_keeping(
    records: Iterable[Mapping[str, Any]], keep: float = 0.99, metric: str = "ndcg@10"
) -> list[KeepResult]:
    """One `KeepResult` per non-frozen method on each (dataset, budget) that has a frozen run."""
    if not keep > 0:
        raise ValueError(f"keep must be > 0 (a share of frozen {metric}), got {keep}")
    cells = summarize(records, metric)
    results = []
    for dataset in sorted({c.dataset for c in cells}):
        in_dataset = [c for c in cells if c.dataset == dataset]
        for budget in sorted({c.budget for c in in_dataset}, key=budget_order):
            group = [c for c in in_dataset if c.budget == budget]
            reference = frozen_method(c.method for c in group)
            if reference is None:
                continue
            frozen = max((c for c in group if c.method == reference), key=lambda c: c.dim).mean
            target = keep * frozen
            for method in method_order(c.method for c in group):
                if is_frozen(method):
                    continue
                points = sorted((c for c in group if c.method == method), key=lambda c: c.dim)
                hit = next((c for c in points if c.mean >= target - _TOLERANCE), None)
                results.append(
                    KeepResult(
                        dataset, budget, method, frozen, target,
                        None if hit is None else hit.dim,
                        None if hit is None else hit.mean,
                        tuple(c.dim for c in points),
                    )
                )
    return results
