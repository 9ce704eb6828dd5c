"""PNG plots of results (matplotlib figures with their own Agg canvas: no pyplot, so the
caller's backend and figures are left as they were).

`plot_ndcg_vs_dim`: a grid of panels, a row per dataset and a column per label budget; one
line per method with error bars (std over seeds), the frozen full-dimension score as a dashed
horizontal line. `plot_ndcg_vs_budget`: one panel per dataset, the metric against the label
budget at one compression ratio. `plot_frontier`: the metric against bytes per vector, a
line per family (`dive.report.frontier`). The `..._figure` functions return the laid-out
figure instead of writing it. A method keeps its colour in every panel and plot, ours (the
`learned` family: every DIVE spec) is drawn thicker and on top, and the shared legend below
the panels wraps into as many rows as the figure's width allows, the figure growing to hold
it. Left out: interactive output and any styling knobs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dive._io import atomic_open, check_suffix
from dive.compressors.registry import method_facts
from dive.report.summary import (
    Cell,
    base_method,
    budget_order,
    budget_title,
    dim_ratios,
    is_frozen,
    method_label,
    method_order,
    metric_title,
    summarize,
)

FROZEN_STYLE: dict[str, Any] = {"color": "black", "linestyle": "--", "linewidth": 1.2}
_LINE_STYLE: dict[str, Any] = {"marker": "o", "markersize": 4, "capsize": 3, "linewidth": 1.4}
# Ours stand out: thicker, larger markers, above every other line (errorbar's default zorder
# is 2).
_OURS_STYLE: dict[str, Any] = {"markersize": 5.5, "linewidth": 2.6, "zorder": 3}
_DPI = 110
_LEGEND_COLUMNS = 6  # at most, so a wide figure's legend stays a compact block
_LEGEND_PAD = 0.15  # inches between the legend and the figure's edges
# Log2 units: spreads the error bars of methods at the same dimension so they stay readable.
_DODGE = 0.035


def _dodge_step(step: float, n: int, spread: float) -> float:
    """Each of `n` lines' step apart from the next: `step`, narrowed so that all of them span
    at most `spread` (with 24 methods the outer points fell off the panels, and past a
    hundred a point sat on the next dimension's tick)."""
    return min(step, spread / max(n - 1, 1))


def literal(text: str) -> str:
    """`text` as matplotlib shows it as typed: a `$` starts its math mode (a dataset named
    `x$^$y` stopped the report with a parser traceback, `cost$x$1` lost its `$`s)."""
    return text.replace("$", r"\$")


def _subplots(nrows: int, ncols: int, *, figsize: tuple[float, float],
              **options: Any) -> tuple[Any, Any]:
    """A figure of `nrows` x `ncols` axes made without pyplot, which PNGs need none of: the
    caller's backend and figures stay as they were (`matplotlib.use("Agg")` switched a
    notebook's backend for the rest of its session)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=_DPI)
    FigureCanvasAgg(fig)  # its own Agg canvas: the legend's layout measures text with it
    return fig, fig.subplots(nrows, ncols, **options)


def _palette() -> tuple[Any, ...]:
    """The colours of the qualitative maps tab10 then Dark2, in order."""
    from matplotlib import colormaps

    maps = [colormaps[name] for name in ("tab10", "Dark2")]
    return tuple(tuple(float(v) for v in rgba[:3]) for m in maps
                 for rgba in np.asarray(m(np.arange(m.N))))


def _colours(methods: Sequence[str]) -> dict[str, Any]:
    palette = _palette()
    drawn = [m for m in methods if not is_frozen(m)]
    return {m: palette[i % len(palette)] for i, m in enumerate(drawn)}


def _is_ours(method: str) -> bool:
    facts = method_facts(base_method(method))
    return facts is not None and facts.family == "learned"


def _line_style(method: str, colour: Any) -> dict[str, Any]:
    return {**_LINE_STYLE, **(_OURS_STYLE if _is_ours(method) else {}), "color": colour}


def _frozen_label(method: str, dim: int) -> str:
    return f"{method}, uncompressed (d={dim})"


def _finish(fig: Any) -> None:
    """Add the shared legend below the panels and lay the figure out.

    The legend takes the fewest rows (at most `_LEGEND_COLUMNS` columns) whose width fits the
    figure, and the figure grows by the legend's height, so the panels keep their size and every
    entry lies inside the saved image. A single column wider than the figure (a long spec on
    one panel) widens the figure.
    """
    handles: dict[str, Any] = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if not handles:
        fig.tight_layout()
        return
    renderer = fig.canvas.get_renderer()
    room = fig.bbox.width - 2 * _LEGEND_PAD * fig.dpi
    # Fewest rows first, then the fewest columns giving that many rows: full, even columns.
    n = len(handles)
    for ncol in sorted(range(1, min(n, _LEGEND_COLUMNS) + 1), key=lambda c: (-(-n // c), c)):
        legend = fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=ncol,
                            fontsize=9, frameon=False)
        box = legend.get_window_extent(renderer)
        if box.width <= room or ncol == 1:
            break
        legend.remove()
    if box.width > room:
        fig.set_figwidth(box.width / fig.dpi + 2 * _LEGEND_PAD)
    legend_height = box.height / fig.dpi + _LEGEND_PAD
    fig.set_figheight(fig.get_figheight() + legend_height)
    fig.tight_layout(rect=(0, legend_height / fig.get_figheight(), 1, 1))


def is_png(path: Path) -> bool:
    """Whether `path` is a PNG file: the only kind of file a plot writer replaces, so a file
    named by a slip (the results file, notes) is never written over."""
    if not path.is_file():  # a FIFO's open waits for a writer: forever
        return False
    try:
        with path.open("rb") as handle:
            return handle.read(8) == b"\x89PNG\r\n\x1a\n"
    except OSError:
        return False


def _save(fig: Any, out: str | Path, overwrite: bool) -> Path:
    out = Path(out)
    check_suffix(out, ".png", "a PNG plot")
    with atomic_open(out, "wb", overwrite=overwrite) as handle:
        fig.savefig(handle, format="png", dpi=_DPI)
    return out


def ndcg_vs_dim_figure(records: Iterable[Mapping[str, Any]], metric: str = "ndcg@10") -> Any:
    """The metric-vs-dimension grid as a laid-out matplotlib figure (see the module doc)."""
    records = list(records)
    cells = summarize(records, metric)
    ratios = dim_ratios(records)
    datasets = sorted({c.dataset for c in cells})
    budgets = sorted({c.budget for c in cells}, key=budget_order)
    methods = method_order(c.method for c in cells)
    colours = _colours(methods)
    nrows, ncols = max(len(datasets), 1), max(len(budgets), 1)
    # One y scale per dataset row, so budgets compare at a glance.
    fig, axes = _subplots(nrows, ncols, figsize=(4.6 * ncols, 3.6 * nrows), squeeze=False,
                          sharey="row")
    for i, dataset in enumerate(datasets):
        for j, budget in enumerate(budgets):
            ax = axes[i][j]
            group = [c for c in cells if c.dataset == dataset and c.budget == budget]
            if not group:
                ax.set_visible(False)
                continue
            _draw_dim_panel(ax, group, methods, colours, ratios)
            title = f"{dataset}, {budget_title(budget)}"
            frozen = [c for c in group if is_frozen(c.method)]
            if nrows * ncols == 1 and frozen:
                # A lone panel (the demo) is read without the report's text around it.
                title += f"\ndashed line: uncompressed score ({frozen[0].method}, " \
                         f"d={max(c.dim for c in frozen)})"
            ax.set_title(literal(title), fontsize=10)
            ax.set_ylabel(metric_title(metric))
            ax.tick_params(labelleft=True)
    _finish(fig)
    return fig


def plot_ndcg_vs_dim(
    records: Iterable[Mapping[str, Any]], out: str | Path, metric: str = "ndcg@10", *,
    overwrite: bool = False,
) -> Path:
    """Write the metric-vs-dimension grid to `out` (atomically) and return its path.

    `overwrite=False` keeps a file already at `out` (even one written meanwhile): `DiveError`.
    """
    return _save(ndcg_vs_dim_figure(records, metric), out, overwrite)


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
            ax.axhline(full.mean, label=_frozen_label(method, full.dim), **FROZEN_STYLE)
            if full.std > 0:
                ax.axhspan(full.mean - full.std, full.mean + full.std, color="black", alpha=0.08)
            continue
        offset = 2 ** ((drawn.index(method) - (len(drawn) - 1) / 2)
                       * _dodge_step(_DODGE, len(drawn), 0.5))
        ax.errorbar([c.dim * offset for c in points], [c.mean for c in points],
                    yerr=[c.std for c in points], label=method,
                    **_line_style(method, colours[method]))
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


def budget_runs(records: Iterable[Mapping[str, Any]], ratio: int) -> list[Mapping[str, Any]]:
    """The runs the label-budget plot at compression `ratio` draws (frozen: its line)."""
    return [r for r in records
            if int(r.get("ratio", 1)) == ratio and not is_frozen(method_label(r))]


def ndcg_vs_budget_figure(
    records: Iterable[Mapping[str, Any]], ratio: int = 4, metric: str = "ndcg@10"
) -> Any | None:
    """The metric-vs-budget panels at compression `ratio` as a laid-out matplotlib figure;
    None if no run has that ratio."""
    records = list(records)
    at_ratio = budget_runs(records, ratio)
    if not at_ratio:
        return None
    frozen = [r for r in records if is_frozen(method_label(r))]
    cells = summarize([*at_ratio, *frozen], metric)
    datasets = sorted({c.dataset for c in summarize(at_ratio, metric)})
    methods = method_order(c.method for c in cells)
    colours = _colours(methods)
    fig, axes = _subplots(1, len(datasets), figsize=(5.2 * len(datasets), 3.8), squeeze=False)
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
                label = _frozen_label(method, points[0].dim)
                if len(points) == 1:  # a dashed line through one point draws nothing
                    ax.axhline(points[0].mean, label=label, **FROZEN_STYLE)
                else:
                    ax.plot(xs, [c.mean for c in points], label=label, **FROZEN_STYLE)
                continue
            shift = (drawn.index(method) - (len(drawn) - 1) / 2) * _dodge_step(0.04, len(drawn),
                                                                                0.5)
            ax.errorbar([x + shift for x in xs], [c.mean for c in points],
                        yerr=[c.std for c in points], label=method,
                        **_line_style(method, colours[method]))
        dims = sorted({c.dim for c in group if not is_frozen(c.method)})
        ax.set_xticks(range(len(budgets)), budgets)
        ax.set_xlim(-0.3, len(budgets) - 0.7)
        ax.set_xlabel("labelled training queries")
        ax.set_ylabel(metric_title(metric))
        dim_text = f"d={dims[0]}, " if len(dims) == 1 else ""
        ax.set_title(literal(f"{dataset}, {dim_text}{ratio}× compression"), fontsize=10)
        ax.grid(alpha=0.3)
    _finish(fig)
    return fig


def plot_ndcg_vs_budget(
    records: Iterable[Mapping[str, Any]], out: str | Path, ratio: int = 4,
    metric: str = "ndcg@10", *, overwrite: bool = False,
) -> Path | None:
    """Write metric vs label budget at compression `ratio`; None (nothing written) if no run
    has that ratio."""
    fig = ndcg_vs_budget_figure(records, ratio, metric)
    return None if fig is None else _save(fig, out, overwrite)


def frontier_figure(records: Iterable[Mapping[str, Any]], metric: str = "ndcg@10") -> Any:
    """nDCG@10 against bytes per vector (log axis) as a laid-out matplotlib figure: a row of
    panels per (dataset, budget), without and with rescoring; one line per family through its
    frontier (`dive.report.frontier`), anchors dotted, frozen float32 dashed. The y axis starts
    at half of frozen."""
    from dive.report.frontier import (
        PLOT_FLOOR,
        allowed,
        configs,
        frontier,
        frozen_reference,
        groups,
        shippable,
    )

    cells = shippable(configs(records, metric))
    panels = groups(cells)
    families = method_order(c.family for c in cells)
    palette = _palette()
    colours = {f: palette[i % len(palette)] for i, f in enumerate(families)}
    fig, axes = _subplots(max(len(panels), 1), 2, figsize=(11, 3.9 * max(len(panels), 1)),
                          squeeze=False, sharey="row")
    for row, (dataset, budget, group) in enumerate(panels):
        reference = frozen_reference(group)
        for col, rescoring in enumerate((False, True)):
            ax = axes[row][col]
            if reference is not None:
                ax.axhline(reference.mean, label=f"frozen float32 ({reference.bytes_per_vector}"
                           " B)", **FROZEN_STYLE)
            for family in families:
                # frozen float32 is the dashed line: its family's points are its quantized rows
                # (a collection without them drew float32 as "frozen, quantized")
                points = frontier(allowed([c for c in group if c.family == family
                                           and not is_frozen(c.label)], rescoring))
                if not points:
                    continue
                anchor = points[0].anchor
                name = f"{family}, quantized" if is_frozen(family) else family
                style = {**_LINE_STYLE, **(_OURS_STYLE if _is_ours(family) else {})}
                style.pop("capsize")
                ax.plot([c.bytes_per_vector for c in points], [c.mean for c in points],
                        label=name, color=colours[family], linestyle=":" if anchor else "-",
                        **{**style, "marker": "s" if anchor else "o"})
            ax.set_xscale("log", base=2)
            sizes = sorted({c.bytes_per_vector for c in group})
            ticks = [2**i for i in range(sizes[0].bit_length() - 1,
                                          (sizes[-1] - 1).bit_length() + 1)]
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.minorticks_off()
            if reference is not None:
                # Configurations below half of frozen (a few bits a vector) would squash the
                # range where the budgets compete; they stay in the tables.
                ax.set_ylim(bottom=PLOT_FLOOR * reference.mean)
            ax.set_xlabel("bytes per vector (first stage)")
            ax.set_ylabel(metric_title(metric))
            kind = "with rescoring (float32 funnel)" if rescoring else "without rescoring"
            ax.set_title(literal(f"{dataset}, {budget_title(budget)}, {kind}"), fontsize=10)
            ax.tick_params(labelleft=True)
            ax.grid(alpha=0.3)
    _finish(fig)
    return fig


def plot_frontier(records: Iterable[Mapping[str, Any]], out: str | Path,
                  metric: str = "ndcg@10", *, overwrite: bool = False) -> Path:
    """Write the quality-per-byte plot to `out` (atomically) and return its path."""
    return _save(frontier_figure(records, metric), out, overwrite)
