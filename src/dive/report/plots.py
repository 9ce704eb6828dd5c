"""PNG plots of results (matplotlib, headless Agg backend).

`plot_ndcg_vs_dim`: a grid of panels, a row per dataset and a column per label budget; one
line per method with error bars (std over seeds), the frozen full-dimension score as a dashed
horizontal line. `plot_ndcg_vs_budget`: one panel per dataset, the metric against the label
budget at one compression ratio. A method keeps its colour in every panel and plot, and the
legend is shared below the panels. Left out: interactive output and any styling knobs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dive._io import atomic_open
from dive.report.summary import (
    Cell,
    budget_order,
    budget_title,
    dim_ratios,
    is_frozen,
    method_order,
    metric_title,
    summarize,
)

FROZEN_STYLE: dict[str, Any] = {"color": "black", "linestyle": "--", "linewidth": 1.2}
# Log2 units: spreads the error bars of methods at the same dimension so they stay readable.
_DODGE = 0.035


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colours(methods: Sequence[str]) -> dict[str, Any]:
    plt = _pyplot()
    palette = plt.get_cmap("tab10").colors + plt.get_cmap("Dark2").colors
    drawn = [m for m in methods if not is_frozen(m)]
    return {m: palette[i % len(palette)] for i, m in enumerate(drawn)}


def _save(fig: Any, out: str | Path) -> Path:
    plt = _pyplot()
    handles: dict[str, Any] = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    ncol = min(max(len(handles), 1), 6)
    rows = -(-len(handles) // ncol) if handles else 0
    # Room at the bottom for the shared legend (inches to figure fraction).
    bottom = min(0.35, (0.1 + 0.25 * rows) / fig.get_figheight()) if handles else 0.0
    if handles:
        fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=ncol,
                   fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    out = Path(out)
    with atomic_open(out, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)
    return out


def plot_ndcg_vs_dim(
    records: Iterable[Mapping[str, Any]], out: str | Path, metric: str = "ndcg@10"
) -> Path:
    """Write the metric-vs-dimension grid to `out` (atomically) and return its path."""
    plt = _pyplot()
    records = list(records)
    cells = summarize(records, metric)
    ratios = dim_ratios(records)
    datasets = sorted({c.dataset for c in cells})
    budgets = sorted({c.budget for c in cells}, key=budget_order)
    methods = method_order(c.method for c in cells)
    colours = _colours(methods)
    nrows, ncols = max(len(datasets), 1), max(len(budgets), 1)
    # One y scale per dataset row, so budgets compare at a glance.
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.6 * nrows + 0.5),
                             squeeze=False, sharey="row")
    for i, dataset in enumerate(datasets):
        for j, budget in enumerate(budgets):
            ax = axes[i][j]
            group = [c for c in cells if c.dataset == dataset and c.budget == budget]
            if not group:
                ax.set_visible(False)
                continue
            _draw_dim_panel(ax, group, methods, colours, ratios)
            ax.set_title(f"{dataset}, {budget_title(budget)}", fontsize=10)
            ax.set_ylabel(metric_title(metric))
            ax.tick_params(labelleft=True)
    return _save(fig, out)


def _draw_dim_panel(
    ax: Any, group: Sequence[Cell], methods: Sequence[str], colours: Mapping[str, Any],
    ratios: Mapping[tuple[str, int], int],
) -> None:
    drawn = [m for m in methods if not is_frozen(m) and any(c.method == m for c in group)]
    for method in methods:
        points = sorted((c for c in group if c.method == method), key=lambda c: c.dim)
        if not points:
            continue
        if is_frozen(method):
            full = points[-1]
            ax.axhline(full.mean, label=f"{method} (d={full.dim})", **FROZEN_STYLE)
            if full.std > 0:
                ax.axhspan(full.mean - full.std, full.mean + full.std, color="black", alpha=0.08)
            continue
        offset = 2 ** ((drawn.index(method) - (len(drawn) - 1) / 2) * _DODGE)
        ax.errorbar([c.dim * offset for c in points], [c.mean for c in points],
                    yerr=[c.std for c in points], marker="o", markersize=4, capsize=3,
                    linewidth=1.4, color=colours[method], label=method)
    ax.set_xscale("log", base=2)
    dims = sorted({c.dim for c in group if not is_frozen(c.method)})
    if dims:
        dataset = group[0].dataset
        labels = [
            f"{d}\n{ratios[(dataset, d)]}×" if (dataset, d) in ratios else str(d) for d in dims
        ]
        ax.set_xticks(dims, labels)
        ax.minorticks_off()
        ax.set_xlim(dims[0] / 1.3, dims[-1] * 1.3)
    ax.set_xlabel("dimension d (compression ratio)")
    ax.grid(alpha=0.3)


def plot_ndcg_vs_budget(
    records: Iterable[Mapping[str, Any]], out: str | Path, ratio: int = 4,
    metric: str = "ndcg@10",
) -> Path | None:
    """Write metric vs label budget at compression `ratio`; None (nothing written) if no run
    has that ratio."""
    plt = _pyplot()
    records = list(records)
    at_ratio = [
        r for r in records if int(r.get("ratio", 1)) == ratio and not is_frozen(r["method"])
    ]
    if not at_ratio:
        return None
    frozen = [r for r in records if is_frozen(r["method"])]
    cells = summarize([*at_ratio, *frozen], metric)
    datasets = sorted({c.dataset for c in summarize(at_ratio, metric)})
    methods = method_order(c.method for c in cells)
    colours = _colours(methods)
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.2 * len(datasets), 4.2),
                             squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        group = [c for c in cells if c.dataset == dataset]
        budgets = sorted({c.budget for c in group}, key=budget_order)
        position = {b: k for k, b in enumerate(budgets)}
        drawn = [m for m in methods if not is_frozen(m) and any(c.method == m for c in group)]
        for method in methods:
            points = sorted((c for c in group if c.method == method),
                            key=lambda c: budget_order(c.budget))
            if not points:
                continue
            xs = [position[c.budget] for c in points]
            if is_frozen(method):
                ax.plot(xs, [c.mean for c in points], label=f"{method} (d={points[0].dim})",
                        **FROZEN_STYLE)
                continue
            shift = (drawn.index(method) - (len(drawn) - 1) / 2) * 0.04
            ax.errorbar([x + shift for x in xs], [c.mean for c in points],
                        yerr=[c.std for c in points], marker="o", markersize=4, capsize=3,
                        linewidth=1.4, color=colours[method], label=method)
        dims = sorted({c.dim for c in group if not is_frozen(c.method)})
        ax.set_xticks(range(len(budgets)), budgets)
        ax.set_xlim(-0.3, len(budgets) - 0.7)
        ax.set_xlabel("labelled training queries")
        ax.set_ylabel(metric_title(metric))
        dim_text = f"d={dims[0]}, " if len(dims) == 1 else ""
        ax.set_title(f"{dataset}, {dim_text}{ratio}× compression", fontsize=10)
        ax.grid(alpha=0.3)
    return _save(fig, out)
