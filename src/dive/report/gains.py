"""Each method against the best training-free compressor: gain per cell, summary per method.

A cell is one (dataset, model, budget, dim) a method ran. Its reference is the better of the
training-free methods (by default the registered methods that declare
`training_free_reference`: `pca` and `pca-uncentered`) at the same cell and the same storage
(a row at another precision or with a funnel, `dive@int8`, against `pca@int8`), each averaged
over the seeds the method ran: on collections without a train split the evaluation half
changes with the seed, so only the same seeds compare. A cell whose references lack one of
those seeds, or a reference method altogether, is kept but not compared (`reference` None),
and counted apart. A cell is won or tied when the method's mean is at least the reference
minus a tolerance. The frozen full-dimension row has no such reference and is left out.

Also renders the summary as plain text (for scripts to print) and as a Markdown page. Left out:
significance tests (three seeds are too few to carry one) and reading results files
(`dive.report.merge`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dive.compressors.registry import all_method_facts
from dive.evaluate.records import record_model
from dive.report.markdown import signed
from dive.report.paired import TOLERANCE as ROUNDING
from dive.report.summary import (
    VARIANT_MARK,
    budget_order,
    is_frozen,
    method_label,
    method_order,
)

TOLERANCE = 0.002
NO_REFERENCE = "n/r"  # a cell that ran, with no reference to compare it with


def reference_methods() -> tuple[str, ...]:
    """The training-free references, in registry order (`MethodFacts.training_free_reference`)."""
    return tuple(f.name for f in all_method_facts() if f.training_free_reference)


@dataclass(frozen=True)
class GainCell:
    """One method at one (dataset, model, budget, dim), against the best training-free row."""

    dataset: str
    model: str
    budget: str
    method: str
    dim: int
    ratio: int
    n_seeds: int
    score: float  # the method's mean over its seeds
    reference: float | None  # best training-free mean over the same seeds; None: not comparable
    reference_method: str | None

    @property
    def gain(self) -> float | None:
        return None if self.reference is None else self.score - self.reference


@dataclass(frozen=True)
class MethodGains:
    """One method over every cell it ran."""

    method: str
    n_cells: int  # cells compared with a reference
    n_won_or_tied: int
    mean_gain: float | None  # None when no cell could be compared
    worst: GainCell | None  # the compared cell with the lowest gain
    n_unmatched: int  # cells run but without every reference at the same seeds


@dataclass(frozen=True)
class TargetGain:
    """A method's mean gain over a named set of datasets at one ratio and budget."""

    method: str
    mean_gain: float | None
    datasets: tuple[str, ...]  # datasets with a compared cell
    missing: tuple[str, ...]  # wanted datasets without one


def gains_over_training_free(
    records: Iterable[Mapping[str, Any]],
    metric: str = "ndcg@10",
    references: Sequence[str] | None = None,
) -> list[GainCell]:
    """A `GainCell` per (dataset, model, budget, method, dim) in `records` (frozen left out).

    Reference methods get cells too: each against the better of all references.
    Records are taken as they come: merge duplicates first (`dive.report.merge`).
    """
    references = reference_methods() if references is None else references
    if not references:
        raise ValueError("at least one reference method is needed")
    scores: dict[tuple[str, str, str, str, int], dict[int, float]] = defaultdict(dict)
    ratios: dict[tuple[str, str, str, str, int], int] = {}
    same_storage: dict[tuple[str, str, str, str, int], list[str]] = {}
    for r in records:
        key = (str(r["dataset"]), record_model(r), str(r["budget"]), method_label(r),
               int(r["dim"]))
        scores[key][int(r["seed"])] = float(r[metric])
        ratios[key] = int(r.get("ratio", 0))
        # the references stored and searched as this row is (`pca@int8` for `dive@int8`)
        same_storage[key] = [method_label({**r, "method": ref}) for ref in references]
    cells = []
    for key, by_seed in scores.items():
        dataset, model, budget, method, dim = key
        if is_frozen(method):
            continue
        seeds = sorted(by_seed)
        best: tuple[float, str] | None = None
        for ref in same_storage[key]:
            ref_scores = scores.get((dataset, model, budget, ref, dim), {})
            if any(s not in ref_scores for s in seeds):
                best = None
                break
            mean = float(np.mean([ref_scores[s] for s in seeds]))
            if best is None or mean > best[0]:
                best = (mean, ref)
        cells.append(GainCell(
            dataset, model, budget, method, dim, ratios[key], len(seeds),
            float(np.mean([by_seed[s] for s in seeds])),
            None if best is None else best[0], None if best is None else best[1],
        ))
    order = {m: i for i, m in enumerate(method_order(c.method for c in cells))}
    cells.sort(key=lambda c: (c.dataset, c.model, budget_order(c.budget), -c.dim,
                              order[c.method]))
    return cells


def _gain_of(cell: GainCell) -> float:
    return 0.0 if cell.gain is None else cell.gain


def summarize_gains(cells: Iterable[GainCell], tolerance: float = TOLERANCE) -> list[MethodGains]:
    """Per method (in display order): cells won or tied, mean gain and the worst cell."""
    by_method: dict[str, list[GainCell]] = defaultdict(list)
    for cell in cells:
        by_method[cell.method].append(cell)
    out = []
    for method in method_order(by_method):
        group = by_method[method]
        compared = [c for c in group if c.gain is not None]
        gains = [c.gain for c in compared if c.gain is not None]
        out.append(MethodGains(
            method=method,
            n_cells=len(compared),
            # A gain of exactly -tolerance (0.408 against 0.410) is -0.0020000000000000018 in
            # floats: the rounding slack keeps it a tie, as the tolerance says.
            n_won_or_tied=sum(g >= -tolerance - ROUNDING for g in gains),
            mean_gain=float(np.mean(gains)) if gains else None,
            worst=min(compared, key=_gain_of) if compared else None,
            n_unmatched=len(group) - len(compared),
        ))
    return out


def target_gains(
    cells: Iterable[GainCell], datasets: Sequence[str], ratio: int, budget: str
) -> list[TargetGain]:
    """Per method: mean gain over the cells of `datasets` at `ratio` and `budget`.

    Each dataset weighs the same: the mean of its cells (one per model it ran under) counts
    once, as the "k/n collections" the target names (a dataset under two models counted twice).
    """
    picked = [c for c in cells if c.dataset in datasets and c.ratio == ratio
              and c.budget == budget]
    out = []
    for method in method_order(c.method for c in picked):
        per_dataset: dict[str, list[float]] = defaultdict(list)
        for c in picked:
            if c.method == method and c.gain is not None:
                per_dataset[c.dataset].append(c.gain)
        gains = [float(np.mean(g)) for g in per_dataset.values()]
        found = tuple(per_dataset)
        out.append(TargetGain(
            method, float(np.mean(gains)) if gains else None, found,
            tuple(d for d in datasets if d not in found),
        ))
    return out


def _main_model(cells: Sequence[GainCell]) -> str | None:
    """The model of the most cells (on a tie, the first by name), left unnamed in cells."""
    counts = Counter(c.model for c in cells)
    return min(counts, key=lambda m: (-counts[m], m)) if counts else None


def cell_name(cell: GainCell, main_model: str | None = None) -> str:
    """`cisi, all, d=96 (4×)`; the model is named when it is not `main_model`."""
    dataset = cell.dataset if cell.model == main_model else f"{cell.dataset} ({cell.model})"
    return f"{dataset}, {cell.budget}, d={cell.dim} ({cell.ratio}×)"


def _seed_range(cells: Iterable[GainCell]) -> dict[str, str]:
    """Method -> how many seeds its cells have: `3`, or `1-3` when they differ."""
    counts: dict[str, set[int]] = defaultdict(set)
    for c in cells:
        counts[c.method].add(c.n_seeds)
    return {m: "-".join(map(str, sorted({min(n), max(n)}))) for m, n in counts.items()}


def _summary_rows(cells: Sequence[GainCell], tolerance: float) -> list[list[str]]:
    main = _main_model(cells)
    rows = [["method", "seeds", "won or tied", "mean gain", "worst", "worst cell",
             "no reference"]]
    seeds = _seed_range(cells)
    for s in summarize_gains(cells, tolerance):
        rows.append([
            s.method,
            seeds[s.method],
            f"{s.n_won_or_tied}/{s.n_cells}",
            "-" if s.mean_gain is None else signed(s.mean_gain, 4),
            "-" if s.worst is None or s.worst.gain is None else signed(s.worst.gain, 4),
            "-" if s.worst is None else cell_name(s.worst, main),
            str(s.n_unmatched),
        ])
    return rows


def _ratio_lines(cells: Sequence[GainCell], tolerance: float) -> list[str]:
    """For each method run at more than one ratio, its summary at each ratio."""
    lines = []
    for method in method_order(c.method for c in cells):
        ratios = sorted({c.ratio for c in cells if c.method == method})
        if len(ratios) < 2:
            continue
        parts = []
        for ratio in ratios:
            (s,) = summarize_gains([c for c in cells if c.method == method and c.ratio == ratio],
                                   tolerance)
            mean = "-" if s.mean_gain is None else signed(s.mean_gain, 4)
            worst = "-" if s.worst is None or s.worst.gain is None else signed(s.worst.gain, 4)
            parts.append(f"{ratio}× {s.n_won_or_tied}/{s.n_cells} (mean {mean}, worst {worst})")
        lines.append(f"{method} by ratio: {', '.join(parts)}")
    return lines


def _target_lines(cells: Sequence[GainCell], name: str, datasets: Sequence[str], ratio: int,
                  budget: str) -> list[str]:
    lines = []
    for t in target_gains(cells, datasets, ratio, budget):
        gain = "-" if t.mean_gain is None else signed(t.mean_gain, 4)
        missing = f"; missing {', '.join(t.missing)}" if t.missing else ""
        lines.append(f"{name} at {ratio}×, budget {budget}: mean gain of {t.method} over best "
                     f"training-free {gain} ({len(t.datasets)}/{len(datasets)} "
                     f"collections{missing})")
    return lines


def summary_text(
    cells: Sequence[GainCell],
    *,
    tolerance: float = TOLERANCE,
    target_name: str,
    datasets: Sequence[str],
    ratio: int,
    budget: str,
) -> str:
    """The per-method summary as an aligned plain-text table, then the target lines."""
    rows = _summary_rows(cells, tolerance)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    head = (f"vs best training-free ({' / '.join(reference_methods())}, same cell, mean over "
            f"the same seeds); tied = within {tolerance}"
            # a cell names its model when it is not this one, as the Markdown page says
            + (f"; model: {main} unless named" if (main := _main_model(cells)) else ""))
    return "\n".join([head, *table, "", *_ratio_lines(cells, tolerance), "",
                      *_target_lines(cells, target_name, datasets, ratio, budget)])


def _markdown_table(rows: Sequence[Sequence[str]], text_columns: Sequence[int]) -> list[str]:
    """Rows as a Markdown table; columns other than `text_columns` are right-aligned."""
    align = ["---" if i in text_columns else "---:" for i in range(len(rows[0]))]
    return ["| " + " | ".join(v.replace("|", "\\|") for v in r) + " |"
            for r in [rows[0], align, *rows[1:]]]


def _cell_rows(cells: Sequence[GainCell]) -> list[list[str]]:
    """One row per (dataset, model, budget, dim): best training-free score, each method's gain."""
    main = _main_model(cells)
    methods = method_order(c.method for c in cells)
    most_seeds = max((c.n_seeds for c in cells), default=0)
    rows = [["collection", "budget", "d", "best training-free", *methods]]
    groups: dict[tuple[str, str, str, int], dict[str, GainCell]] = defaultdict(dict)
    for c in cells:
        groups[(c.dataset, c.model, c.budget, c.dim)][c.method] = c
    for (dataset, model, budget, dim), group in groups.items():
        any_cell = next(iter(group.values()))
        # The float32 reference at the most seeds (a method run on fewer seeds, or at another
        # precision or funnel, is measured against its own: the legend says so).
        compared = sorted((c for c in group.values() if c.reference is not None),
                          key=lambda c: (VARIANT_MARK in c.method, -c.n_seeds))
        best = (f"{compared[0].reference:.4f} ({compared[0].reference_method})"
                if compared else "-")
        name = dataset if model == main else f"{dataset} ({model})"
        row = [name, budget, f"{dim} ({any_cell.ratio}×)", best]
        for method in methods:
            cell = group.get(method)
            if cell is None or cell.gain is None:
                row.append("-" if cell is None else NO_REFERENCE)
            else:
                fewer = f" [n={cell.n_seeds}]" if cell.n_seeds < most_seeds else ""
                row.append(signed(cell.gain, 4) + fewer)
        rows.append(row)
    return rows


def render_gains(
    cells: Sequence[GainCell],
    *,
    tolerance: float = TOLERANCE,
    title: str,
    preamble: str = "",
    target_name: str,
    datasets: Sequence[str],
    ratio: int,
    budget: str,
) -> str:
    """A Markdown page: the per-method summary, the target lines and every cell's gain."""
    main = _main_model(cells)
    parts = [f"# {title}", ""]
    if preamble:
        parts += [preamble, ""]
    references = " and ".join(f"`{r}`" for r in reference_methods())
    parts += [
        f"nDCG@10 against the best training-free compressor (the better of "
        f"{references} at the same collection, dimension and "
        f"budget, each averaged over the same seeds as the method). **won or tied**: cells "
        f"where the method's mean is at least that minus {tolerance}, out of the cells it ran; "
        f"**mean gain**: over those cells, each weighing the same; **worst**: the lowest gain "
        f"and its cell; **no reference**: cells run without both PCA rows at the same seeds "
        f"(not counted); **seeds**: seeds per cell (`[n=k]` in the last table: fewer seeds "
        f"than the most). Model: {main} unless named.",
        "",
        "## Summary per method",
        "",
        *_markdown_table(_summary_rows(cells, tolerance), text_columns=(0, 5)),
        "",
        "## Target: " + target_name,
        "",
        *(f"- {line}" for line in _target_lines(cells, target_name, datasets, ratio, budget)),
        "",
        "## Every cell",
        "",
        "Gain of each method over the best training-free score of the row (nDCG@10, mean over "
        "seeds); a method at another precision or funnel (`@int8`, `+rescore`) is measured "
        "against the better PCA at the same one, and a method on fewer seeds against the PCAs "
        f"on its seeds. `-`: not run; `{NO_REFERENCE}`: run, without both PCA rows to compare "
        "with.",
        "",
        *_markdown_table(_cell_rows(cells), text_columns=(0, 1)),
        "",
    ]
    return "\n".join(parts)
