"""The Markdown report: methods x dimensions tables and the keep-X% table, as text.

Up front, the selection grid each learned row chose its settings from. Then per dataset and
label budget, one table per metric (nDCG@10, then Recall@100): a row per
method with the frozen full-dimension row on top, a column per dimension (largest first),
cells "mean ± std" over seeds, the difference to the frozen row of the same table in
parentheses (on the seeds both ran, `dive.report.paired`) and in bold the best mean of each
column among the cells that ran all of its seeds (a mean over fewer scores other queries).
Cells that were not run read "-"; cells that cannot exist are blank (the frozen row outside
its full-dimension column, other methods inside it). A cell with fewer seeds than the table's
most says so. Rendering only: grouping lives in `summary`, the keep computation in `keep`, and
files are written by `dive.report.build`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dive.evaluate.records import record_model
from dive.report.keep import KeepResult, smallest_dims_keeping
from dive.report.paired import pair, seed_list, seed_ranges
from dive.report.summary import (
    Cell,
    CostCell,
    GridUses,
    base_method,
    budget_order,
    budget_title,
    dim_ratios,
    frozen_method,
    is_frozen,
    is_full_dimension,
    method_order,
    metric_title,
    selection_grids,
    summarize,
    summarize_cost,
)

TABLE_METRICS = ("ndcg@10", "recall@100")
MISSING = "-"


def signed(value: float, digits: int = 3) -> str:
    """`+0.012` / `−0.033` (a true minus sign, which lines up with the plus in tables)."""
    # Adding 0.0 turns a rounded -0.0 into +0.0, so a tiny loss does not print as "−0.000".
    text = f"{round(value, digits) + 0.0:+.{digits}f}"
    return text.replace("-", "\u2212")


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


_MARKUP = re.compile(r"([\\`*_\[\]<>|~#])")


def plain(name: str) -> str:
    """A dataset or model name as Markdown shows it as typed: its markup characters escaped
    (`web*v2*` rendered as web + italic v2, two backticks as inline code)."""
    return _MARKUP.sub(r"\\\1", name)


def _dim_header(dim: int, ratio: int | None) -> str:
    if ratio is None:
        return f"d={dim}"
    return f"d={dim} (full)" if ratio == 1 else f"d={dim} ({ratio}×)"


def metric_table(
    group: Sequence[Cell], ratios: Mapping[tuple[str, int], int] | None = None
) -> str:
    """One Markdown table from the cells of a single (dataset, budget) and metric."""
    if not group:
        return ""
    ratios = ratios or {}
    dataset = group[0].dataset
    dims = sorted({c.dim for c in group}, reverse=True)
    lookup = {(c.method, c.dim): c for c in group}
    reference = frozen_method(c.method for c in group)
    frozen = None
    if reference is not None:
        frozen = max((c for c in group if c.method == reference), key=lambda c: c.dim)
    most_seeds = max(c.n_seeds for c in group)
    bold = {id(c) for d in dims for c in _bolded([c for c in group if c.dim == d])}
    # Columns only frozen runs fill (the full dimension): other rows are blank there by
    # design, not missing.
    frozen_only = {d for d in dims
                   if all(is_full_dimension(c.method) for c in group if c.dim == d)}

    header = ["method", *(_dim_header(d, ratios.get((dataset, d))) for d in dims)]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join([":---", *(["---:"] * len(dims))]) + "|",
    ]
    for method in method_order(c.method for c in group):
        row = [_escape(method)]
        for d in dims:
            cell = lookup.get((method, d))
            if cell is None:
                row.append("" if is_full_dimension(method) or d in frozen_only else MISSING)
                continue
            text = f"{cell.mean:.4f} ± {cell.std:.4f}"
            if id(cell) in bold:
                text = f"**{text}**"
            if frozen is not None and method != reference:
                text += f" ({_to_frozen(cell, frozen)})"
            if cell.n_seeds < most_seeds:
                text += f" [n={cell.n_seeds}]"
            row.append(text)
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _bolded(column: Sequence[Cell]) -> list[Cell]:
    """The cells a column bolds: of the best rounded mean among its cells that ran all of the
    column's seeds, which score the same queries (without train qrels other seeds score other
    queries, so a lucky one-seed cell is not "best", nor is one that only ties it); none when
    fewer than two such cells compare."""
    seeds = {s for c in column for s, _ in c.scores}
    full = [c for c in column if {s for s, _ in c.scores} == seeds]
    if len(full) < 2:
        return []
    # Ties at the printed precision are all bold: the reader cannot tell them apart either.
    best = max(round(c.mean, 4) for c in full)
    return [c for c in full if round(c.mean, 4) == best]


def _to_frozen(cell: Cell, frozen: Cell) -> str:
    """`cell` minus `frozen` on the seeds both ran (`dive.report.paired`: other seeds score
    other queries), naming those seeds unless both ran just these."""
    mine, reference = dict(cell.scores), dict(frozen.scores)
    paired = pair(mine, reference)
    if paired is None:
        return "no seed in common with frozen"
    same = set(paired.seeds) == set(mine) == set(reference)
    on = "" if same else f" on {seed_list(paired.seeds)}"
    return signed(paired.score - paired.reference) + on


def keep_table(
    results: Sequence[KeepResult], ratios: Mapping[tuple[str, int], int] | None = None
) -> str:
    """Methods x budgets: the smallest d keeping the target, for one dataset's results."""
    if not results:
        return ""
    ratios = ratios or {}
    budgets = sorted({r.budget for r in results}, key=budget_order)
    lookup = {(r.method, r.budget): r for r in results}
    lines = [
        "| method | " + " | ".join(budget_title(b) for b in budgets) + " |",
        "|" + "|".join([":---", *(["---:"] * len(budgets))]) + "|",
    ]
    for method in method_order(r.method for r in results):
        row = [_escape(method)]
        for budget in budgets:
            r = lookup.get((method, budget))
            if r is None:
                row.append(MISSING)
            else:
                row.append(_escape(keep_cell(r, ratios)))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def keep_cell(r: KeepResult, ratios: Mapping[tuple[str, int], int] | None = None) -> str:
    """`d=96 (4×): 0.5810`, with the seeds when the method was compared with frozen on fewer
    than either ran, and the d's not compared (no seed in common with frozen)."""
    compared = [d for d in r.dims_tried if d not in r.unpaired]
    if r.dim is None or r.score is None:
        text = (f"not reached at d ≤ {max(compared)}" if compared else
                f"not compared: no seed in common with frozen's {seed_list(r.frozen_seeds)}")
    else:
        ratio = (ratios or {}).get((r.dataset, r.dim))
        text = f"d={r.dim}" if ratio is None else f"d={r.dim} ({ratio}×)"
        text += f": {r.score:.4f}"
        if r.on_fewer_seeds and r.reference is not None:
            text += f" (frozen {r.reference:.4f} on {seed_list(r.seeds)})"
    apart = [d for d in r.unpaired if r.dim is None or d < r.dim]
    if apart and compared:
        text += (f"; d={', '.join(map(str, apart))} not compared (no seed in common with "
                 "frozen)")
    return text


def _thousands(n: int) -> str:
    return f"{n / 1000:.0f}k" if n >= 10_000 else str(n)


def cost_table(cells: Sequence[CostCell]) -> str:
    """Methods x budgets: mean fit seconds (max), then the parameter count over dims."""
    if not cells:
        return ""
    budgets = sorted({c.budget for c in cells}, key=budget_order)
    lookup = {(c.method, c.budget): c for c in cells}
    lines = [
        "| method | " + " | ".join(budget_title(b) for b in budgets) + " | parameters |",
        "|" + "|".join([":---", *(["---:"] * (len(budgets) + 1))]) + "|",
    ]
    for method in method_order(c.method for c in cells):
        row = [_escape(method)]
        for budget in budgets:
            c = lookup.get((method, budget))
            row.append(MISSING if c is None else f"{c.mean_seconds:.1f} ({c.max_seconds:.1f})")
        mine = [c for c in cells if c.method == method]
        low, high = min(c.min_params for c in mine), max(c.max_params for c in mine)
        row.append(_thousands(low) if low == high else f"{_thousands(low)}–{_thousands(high)}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def grid_table(records: Sequence[Mapping[str, Any]]) -> str:
    """Learned methods x the grids their runs chose from; where a method's runs used several
    (too few validation queries for its grid at some budgets), each says where it was used."""
    grids = selection_grids(records)
    if not grids:
        return ""
    lines = ["| method | selection grid |", "|:---|:---|"]
    lines += [f"| {_escape(m)} | {_escape(_grids_used(uses))} |" for m, uses in grids.items()]
    return "\n".join(lines)


def grids_section(records: Sequence[Mapping[str, Any]]) -> str:
    """The "Selection grids" section of a page ("" without a learned row)."""
    grids = grid_table(records)
    return grids and (
        "## Selection grids\n\nWhat each learned row chose its settings from on its labelled "
        "queries, as its runs recorded it (`none`: fixed settings, or too few validation "
        "queries to choose on).\n\n" + grids)


def _grids_used(uses: GridUses) -> str:
    """'g1 (scifact: 16, 64; nfcorpus: 16); g2 (scifact: all)', or 'g' alone when it is one."""
    if len(uses) == 1:
        return next(iter(uses))
    return "; ".join(
        f"{grid} ({'; '.join(f'{d}: ' + ', '.join(b) for d, b in where.items())})"
        for grid, where in uses.items())


def percent(keep: float) -> str:
    """0.99 -> '99%', 0.995 -> '99.5%'."""
    return f"{keep * 100:g}%"


def render_report(
    records: Sequence[Mapping[str, Any]],
    *,
    keep: float = 0.99,
    images: Iterable[tuple[str, str]] = (),
    title: str = "Results",
    preamble: str = "",
    sections: Sequence[str] = (),
) -> str:
    """The whole report as Markdown. `images` are (caption, relative link) pairs; `sections`
    (Markdown, e.g. the quality-per-byte section) come after the plots, before the tables."""
    ratios = dim_ratios(records)
    by_metric = {metric: summarize(records, metric) for metric in TABLE_METRICS}
    keep_results = smallest_dims_keeping(records, keep)
    cost = summarize_cost(records)
    datasets = sorted({str(r["dataset"]) for r in records})
    models = sorted({record_model(r) for r in records})
    seeds = sorted({int(r["seed"]) for r in records})

    parts = [f"# {title}"]
    if preamble:
        parts.append(preamble.strip())
    parts.append(
        f"{len(records)} runs; datasets: {', '.join(map(plain, datasets))}; "
        f"model{'s' if len(models) > 1 else ''}: {', '.join(models)}; "
        f"seeds: {seed_ranges(seeds)}.\n\n"
        "Each cell is the mean ± standard deviation over seeds (population std, so 0 for one "
        "seed), evaluated on queries no method trained on. In parentheses: the difference to "
        "the frozen full-dimension row of the same table, on the seeds both ran (without train "
        "qrels the evaluation queries change with the seed). **Bold**: the best mean of each "
        "column among the cells that ran all of its seeds, so on the same queries (none where "
        "fewer than two did). "
        f"`{MISSING}`: not run. `[n=k]`: only k seeds, fewer than the rest of the table."
    )
    grids = grids_section(records)
    if grids:
        parts.append(grids)
    images = list(images)
    if images:
        parts.append("## Plots")
        parts.extend(f"![{caption}]({link})" for caption, link in images)
    parts.extend(sections)

    for dataset in datasets:
        parts.append(f"## {plain(dataset)}")
        budgets = sorted(
            {c.budget for c in by_metric["ndcg@10"] if c.dataset == dataset}, key=budget_order
        )
        for budget in budgets:
            parts.append(f"### {plain(dataset)}, {budget_title(budget)}")
            for metric, cells in by_metric.items():
                group = [c for c in cells if c.dataset == dataset and c.budget == budget]
                parts.append(f"{metric_title(metric)}:\n\n{metric_table(group, ratios)}")
        in_dataset = [r for r in keep_results if r.dataset == dataset]
        parts.append(f"### {plain(dataset)}: smallest dimension keeping {percent(keep)} of "
                     "frozen nDCG@10")
        if in_dataset:
            per_budget = {r.budget: r.frozen for r in in_dataset}
            if len({round(v, 4) for v in per_budget.values()}) == 1:
                frozen = f"{next(iter(per_budget.values())):.4f}"
            else:
                frozen = ", ".join(
                    f"{v:.4f} with {budget_title(b)}"
                    for b, v in sorted(per_budget.items(), key=lambda kv: budget_order(kv[0]))
                )
            # a budget without its own frozen run has no reference: said, not left out
            lacking = [b for b in budgets if not any(
                is_frozen(c.method) for c in by_metric["ndcg@10"]
                if c.dataset == dataset and c.budget == b)]
            unkept = "".join(f" No frozen run with {budget_title(b)}, so no reference to keep "
                             "there." for b in lacking)
            parts.append(
                f"The smallest evaluated d whose mean nDCG@10 is at least {percent(keep)} of "
                f"frozen (frozen: {frozen}), and that mean.{unkept}\n\n"
                f"{keep_table(in_dataset, ratios)}"
            )
        else:
            ran = sorted({c.method for c in by_metric["ndcg@10"]
                          if c.dataset == dataset and base_method(c.method) == "frozen"})
            if "frozen" in ran:  # the reference is there: nothing compressed ran beside it
                parts.append("No compressed configuration ran on this dataset, so none keeps a "
                             "share of frozen.")
            else:
                only = "" if not ran else (f" float32 (only {', '.join(ran)}: evaluate with "
                                           "float32 among the precisions and 0 among the "
                                           "rescore factors)")
                parts.append(f"No frozen{only} run on this dataset, so no reference to keep.")
        parts.append(
            f"### {plain(dataset)}: fit seconds and parameters\n\n"
            "Mean fit seconds over dimensions and seeds (the slowest fit in parentheses), as "
            "each run recorded them: the grid shares its cores with other runs, so these are "
            "upper bounds (`benchmarks/speed.py` times fits alone). Parameters: those of the "
            "fitted runtime, over the dimensions run.\n\n"
            + cost_table([c for c in cost if c.dataset == dataset])
        )
    return "\n\n".join(parts) + "\n"


def keep_lines(records: Sequence[Mapping[str, Any]], keep: float = 0.99) -> list[str]:
    """One plain line per (dataset, budget, method), for terminals."""
    lines = []
    for r in smallest_dims_keeping(records, keep):
        # fewer seeds than frozen or the method ran: the mean is not the table's, say so
        if r.unpaired or (r.dim is not None and r.on_fewer_seeds):
            found = keep_cell(r)
        else:
            found = "not reached" if r.dim is None else f"d={r.dim} (nDCG@10 {r.score:.4f})"
        lines.append(
            f"{r.dataset} | labels: {r.budget} | {r.method}: {found} "
            f"[keep {percent(keep)} of {r.frozen:.4f}]"
        )
    return lines
