"""Aggregate records over seeds: mean and standard deviation per (dataset, budget, method, dim).

The one place results are grouped and ordered; tables, plots, CSV and the keep-X% lines all
start from `summarize`, `method_order` and `budget_order`, so every view lists the same rows
in the same order. A row is a `method_label`: the method, and for a record of another
precision than float32 or with rescoring, that variant too (`pca@int8`,
`dive@binary+rescore4`), so precisions of one fit are rows of their own, right after their
method. Reading and merging results files is `dive.report.merge`'s job.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dive.compressors.registry import display_order, method_facts
from dive.errors import DataError
from dive.evaluate.anchors import FAMILIES as ANCHOR_FAMILIES
from dive.evaluate.anchors import is_anchor
from dive.evaluate.records import METRICS, record_variant

METRIC_TITLES = {"ndcg@10": "nDCG@10", "recall@100": "Recall@100", "mrr@10": "MRR@10"}
VARIANT_MARK = "@"  # method@precision[+rescoreN]: a method's results at another first stage


def method_label(record: Mapping[str, Any]) -> str:
    """The row of a record: its method, plus its precision and funnel unless float32 without
    rescoring: `pca@int8`, `dive@binary+rescore4` (rescored with the full embeddings),
    `dive@binary+rescore4-compressed` (with the compressed float32 outputs). An anchor's name
    says its code already: `faiss-pq:16`, `faiss-pq:16@rescore4`."""
    method = str(record["method"])
    precision, rescore, source = record_variant(record)
    if (precision, rescore) == ("float32", 0) or (is_anchor(method) and not rescore):
        return method
    funnel = "" if not rescore else f"+rescore{rescore}" + ("" if source == "full" else
                                                          f"-{source}")
    if is_anchor(method):
        return f"{method}{VARIANT_MARK}{funnel[1:]}"
    return f"{method}{VARIANT_MARK}{precision}{funnel}"


@dataclass(frozen=True)
class Cell:
    """One method at one dimension on one (dataset, budget): a metric over seeds."""

    dataset: str
    budget: str
    method: str
    dim: int
    mean: float
    std: float  # population std over seeds (0 for a single seed)
    n_seeds: int
    scores: tuple[tuple[int, float], ...] = ()  # (seed, metric) for each seed run, by seed


CellKey = tuple[str, str, str, int]  # (dataset, budget, method label, dim)


def cell_key(record: Mapping[str, Any]) -> CellKey:
    """The `Cell` a record is averaged into: its seeds are the cell's runs."""
    return (str(record["dataset"]), str(record["budget"]), method_label(record),
            int(record["dim"]))


def summarize(records: Iterable[Mapping[str, Any]], metric: str = "ndcg@10") -> list[Cell]:
    """Mean and std of `metric` over seeds, one `Cell` per (dataset, budget, method, dim);
    `DataError` if a cell has a seed twice (`seed_scores`)."""
    check_metric(metric)
    groups: dict[CellKey, list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        groups[cell_key(r)].append(r)
    # methods in the order the records first name them, as every other view reads them
    # (`method_order` breaks its ties by first sight: alphabetical, `@binary` came first)
    seen = {label: i for i, label in enumerate(dict.fromkeys(k[2] for k in groups))}
    cells = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], seen[k[2]], k[3])):
        group = groups[key]
        scores = seed_scores(group, metric)
        values = list(scores.values())
        cells.append(Cell(*key, float(np.mean(values)), float(np.std(values)), len(values),
                          tuple(sorted(scores.items()))))
    return cells


def check_metric(metric: str) -> None:
    """`DataError` unless every record holds `metric` (a typo was a bare KeyError)."""
    if metric not in METRICS:
        raise DataError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")


def seed_scores(group: Iterable[Mapping[str, Any]], metric: str) -> dict[int, float]:
    """`metric` of each seed of one cell's records; `DataError` naming the cell if a seed is
    there twice (a rerun, or runs of two models), which a mean would count twice or mix:
    `dive.report.merge_records` keeps a rerun's last record, `label_models` names the models."""
    scores: dict[int, float] = {}
    for r in group:
        seed = int(r["seed"])
        if seed in scores:
            dataset, budget, method, dim = cell_key(r)
            raise DataError(f"{dataset}: {method} at d={dim} with {budget_title(budget)} has "
                            f"two runs of seed {seed} (a rerun, or runs of two models); merge "
                            "the records first (dive.report.merge_records keeps a rerun's last "
                            "record, dive.report.label_models names each model's runs)")
        scores[seed] = float(r[metric])
    return scores


@dataclass(frozen=True)
class CostCell:
    """One method's fits on one (dataset, budget): seconds over dims and seeds, parameters."""

    dataset: str
    budget: str
    method: str
    mean_seconds: float
    max_seconds: float
    n_fits: int
    min_params: int
    max_params: int


def summarize_cost(records: Iterable[Mapping[str, Any]]) -> list[CostCell]:
    """Fit seconds (mean, max) and parameter counts per (dataset, budget, method)."""
    groups: dict[tuple[str, str, str], list[tuple[float, int]]] = defaultdict(list)
    for r in records:
        key = (str(r["dataset"]), str(r["budget"]), method_label(r))
        groups[key].append((float(r["fit_seconds"]), int(r.get("n_params", 0))))
    first = {key: i for i, key in enumerate(groups)}
    return [
        CostCell(
            ds,
            budget,
            method,
            float(np.mean([s for s, _ in v])),
            max(s for s, _ in v),
            len(v),
            min(p for _, p in v),
            max(p for _, p in v),
        )
        # the methods in the order the records first name them, as `summarize` lists them
        for (ds, budget, method), v in sorted(groups.items(), key=lambda kv: (
            kv[0][0], budget_order(kv[0][1]), first[kv[0]]))
    ]


def budget_order(budget: str) -> tuple[int, int, str]:
    """Sort key: numeric budgets ascending, then 'all', then anything else by name."""
    if budget == "all":
        return (1, 0, "")
    return (0, int(budget), "") if budget.isdigit() else (2, 0, budget)


def budget_title(budget: str) -> str:
    """How a budget reads in titles: '64 labelled queries', 'all labelled queries'."""
    return "all labelled queries" if budget == "all" else f"{budget} labelled queries"


def metric_title(metric: str) -> str:
    """How a metric key reads in titles: 'ndcg@10' -> 'nDCG@10'."""
    return METRIC_TITLES.get(metric, metric)


def base_method(method: str) -> str:
    """The registry name of a method spec or row: options, a precision variant and a release
    suffix are dropped (`dive:heads=1`, `dive@int8`, `smec:basis=pca@v1` -> `dive`, `smec`)."""
    return method.split(VARIANT_MARK, 1)[0].split(":", 1)[0]


def is_earlier_release(method: str) -> bool:
    """Whether a record's method is a row of an earlier release (`dive@v1`, `smec:basis=pca@v2`),
    kept for comparison: an '@' elsewhere is part of a spec (`dive:grid=1x10x3@hinge`)."""
    return re.search(r"@v\d+$", method) is not None


def is_frozen(method: str) -> bool:
    """Whether a row is the uncompressed full-dimension float32 reference (family reference)."""
    return VARIANT_MARK not in method and is_full_dimension(method)


def is_full_dimension(method: str) -> bool:
    """Whether a row keeps every dimension (frozen, at any precision or funnel): it has a cell
    in the full-dimension column only."""
    facts = method_facts(base_method(method))
    return facts is not None and facts.family == "reference"


def canonical_order() -> tuple[str, ...]:
    """Base methods in display order: the registered ones (`display_order`: the reference
    first, then the classical floors, the published baselines and ours last), then the anchors
    (`dive.evaluate.anchors`, what users run instead), so the method a reader looks for is
    always in the same place."""
    return (*display_order(), *ANCHOR_FAMILIES)


def method_order(methods: Iterable[str]) -> list[str]:
    """Distinct methods in display order: `canonical_order`, then unknown methods in the order
    first seen; ablations (`dive:heads=1`) right after their base method."""
    seen = list(dict.fromkeys(methods))
    order = canonical_order()

    def key(method: str) -> tuple[int, int, int, int]:
        base = base_method(method)
        rank = order.index(base) if base in order else len(order)
        first_of_base = min(i for i, m in enumerate(seen) if base_method(m) == base)
        # The plain spec, then its earlier versions and variants (`smec@v1`, `pca@int8`),
        # then its ablations in the order first seen, each before its own versions.
        spec = method.split("@", 1)[0]
        first_of_spec = 0 if spec == base else 1 + min(
            i for i, m in enumerate(seen) if m.split("@", 1)[0] == spec)
        return (rank, first_of_base, first_of_spec,
                0 if method == spec else 1 + seen.index(method))

    return sorted(seen, key=key)


def frozen_method(methods: Iterable[str]) -> str | None:
    """The reference method among `methods`: plain `frozen` if present, else the first spec."""
    frozen = [m for m in method_order(methods) if is_frozen(m)]
    return frozen[0] if frozen else None


def selection_grid(record: Mapping[str, Any]) -> str:
    """What a run chose its settings from on labelled queries, as the record states it.

    A baseline records the grid it searched (`diagnostics["grid"]`, "none" when it had
    nothing to choose on); a method configured with a `grid` (DIVE's arms) and a `start`
    shows those config values; anything else ran fixed settings.
    """
    diagnostics = record.get("diagnostics") or {}
    if "grid" in diagnostics:
        return str(diagnostics["grid"])
    config = record.get("config") or {}
    if "grid" in config and config.get("select", True):
        start = f", start={config['start']}" if "start" in config else ""
        return f"grid={config['grid']}{start}"
    return "none (fixed settings)"


GridUses = dict[str, dict[str, list[str]]]  # grid -> dataset -> the budgets whose runs used it


def selection_grids(records: Iterable[Mapping[str, Any]]) -> dict[str, GridUses]:
    """Method -> each distinct grid its runs recorded -> where (dataset -> budgets, in
    `budget_order`); methods in `method_order`, learned rows only."""
    grids: dict[str, dict[str, dict[str, dict[str, None]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(dict)))
    for r in records:
        if r.get("diagnostics") or "grid" in (r.get("config") or {}):
            where = grids[str(r["method"])][selection_grid(r)][str(r["dataset"])]
            where[str(r["budget"])] = None
    return {m: {grid: {d: sorted(budgets, key=budget_order) for d, budgets in sorted(uses.items())}
                for grid, uses in grids[m].items()}
            for m in method_order(grids)}


def dim_ratios(records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, int], int]:
    """(dataset, dim) -> compression ratio D/d, as the records state it."""
    return {(r["dataset"], int(r["dim"])): int(r.get("ratio", 1)) for r in records}
