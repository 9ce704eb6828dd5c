"""The smallest dimension that keeps a share of the frozen baseline's quality.

For each (dataset, budget, method): the smallest evaluated d whose mean nDCG@10 is at least
`keep` x the frozen full-dimension mean on the same (dataset, budget), both over the seeds
they share (`dive.report.paired`: without train qrels the evaluation queries change with the
seed, so only the same seeds score the same queries). A d sharing no seed with frozen is not
compared and is listed apart (`unpaired`). Only the dimensions that were run count (no
interpolation between them), and a method that reaches the target at 48 but not at 96 still
reports 48: the question is how far one can compress, not whether the curve is monotone. A
(dataset, budget) without a frozen run gives no answer.
"""

from __future__ import annotations

import math
import numbers
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dive.errors import DataError
from dive.report.paired import on_fewer_seeds, pair
from dive.report.summary import (
    CellKey,
    budget_order,
    cell_key,
    check_metric,
    frozen_method,
    is_frozen,
    method_order,
)


@dataclass(frozen=True)
class KeepResult:
    """How far one method compresses on one (dataset, budget) while keeping the target."""

    dataset: str
    budget: str
    method: str
    frozen: float  # frozen's mean over all its seeds
    target: float  # keep x frozen (a d run on fewer seeds is held to keep x `reference`)
    dim: int | None  # smallest evaluated d reaching the target; None if none does
    score: float | None  # the method's mean at that d, over the seeds it shares with frozen
    dims_tried: tuple[int, ...]  # every d evaluated, ascending
    reference: float | None = None  # frozen's mean over the seeds `score` is over
    seeds: tuple[int, ...] = ()  # those seeds
    frozen_seeds: tuple[int, ...] = ()  # every seed frozen ran
    unpaired: tuple[int, ...] = ()  # the d's sharing no seed with frozen: not compared
    own_seeds: tuple[int, ...] = ()  # every seed the method ran at `dim`

    @property
    def on_fewer_seeds(self) -> bool:
        """Whether `score` is over fewer seeds than the method or frozen ran: then it is not
        the mean other tables show, and the seeds are named beside it."""
        return on_fewer_seeds(self.seeds, self.frozen_seeds, self.own_seeds)


MAX_KEEP = 2.0  # above frozen's quality is possible (a learned d), twice it is not a share


def check_keep(keep: float, metric: str = "ndcg@10") -> None:
    """`DataError` unless `keep` is a share of frozen quality one can keep: positive, finite
    and at most `MAX_KEEP` (`--keep 99` meant 99% and was sought as 9,900%)."""
    # numbers.Real: numpy's float32 share too (np.float64 is a float; np.float32 is not)
    number = isinstance(keep, numbers.Real) and not isinstance(keep, bool)
    if not (number and math.isfinite(keep) and 0 < keep <= MAX_KEEP):  # "0.99" a TypeError
        raise DataError(f"keep must be a positive, finite share of frozen {metric} up to "
                        f"{MAX_KEEP:g} (0.99 keeps 99%), got {keep!r}", param="keep")


def smallest_dims_keeping(
    records: Iterable[Mapping[str, Any]], keep: float = 0.99, metric: str = "ndcg@10"
) -> list[KeepResult]:
    """One `KeepResult` per non-frozen method on each (dataset, budget) that has a frozen run."""
    check_metric(metric)  # a typo was a KeyError
    check_keep(keep, metric)
    scores: dict[CellKey, dict[int, float]] = defaultdict(dict)
    for r in records:
        scores[cell_key(r)][int(r["seed"])] = float(r[metric])
    results = []
    for dataset in sorted({k[0] for k in scores}):
        in_dataset = [k for k in scores if k[0] == dataset]
        for budget in sorted({k[1] for k in in_dataset}, key=budget_order):
            group = sorted(k for k in in_dataset if k[1] == budget)
            reference = frozen_method(k[2] for k in group)
            if reference is None:
                continue
            frozen = scores[max((k for k in group if k[2] == reference), key=lambda k: k[3])]
            frozen_mean = float(np.mean(list(frozen.values())))
            # the methods in the order the records first name them (`scores` keeps it), as
            # every other view lists them: `group` is sorted, and method_order breaks ties by
            # first sight
            for method in method_order(k[2] for k in in_dataset if k[1] == budget):
                if is_frozen(method):
                    continue
                dims = sorted(k[3] for k in group if k[2] == method)
                compared = {d: pair(scores[(dataset, budget, method, d)], frozen) for d in dims}
                hit = next(((d, p) for d, p in compared.items()
                            if p is not None and p.keeps(keep)), None)
                results.append(
                    KeepResult(
                        dataset, budget, method, frozen_mean, keep * frozen_mean,
                        None if hit is None else hit[0],
                        None if hit is None else hit[1].score,
                        tuple(dims),
                        None if hit is None else hit[1].reference,
                        () if hit is None else hit[1].seeds,
                        tuple(sorted(frozen)),
                        tuple(d for d, p in compared.items() if p is None),
                        () if hit is None else tuple(sorted(
                            scores[(dataset, budget, method, hit[0])])),
                    )
                )
    return results
