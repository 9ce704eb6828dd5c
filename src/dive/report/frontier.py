"""The quality-per-byte frontier: nDCG@10 against the bytes per vector a first stage stores.

A configuration is one results row (`method_label`: method, precision, funnel) at one
dimension on one (dataset, budget), with its mean and std over seeds and the bytes per vector
its first-stage index stores (`bytes_per_vector`; a funnel's float32 copy read for the
candidates is not counted, as the issue's budgets count first-stage bytes). Ours are every
row that is not an anchor (`dive.evaluate.anchors`); a family is the method a row comes from
(`pca`, `dive`, `faiss-pq`, ...), whatever its dimension, precision or funnel.

- `frontier`: the configurations no other beats with as few bytes (a family's line in the
  plot, or everything's);
- `best_per_budget`: at each byte budget, the best of ours and the best anchor within it
  (each among the configurations within it that ran the most seeds, on the seeds they share),
  and ours minus the anchor on the seeds both ran (a pair sharing no seed is not compared);
- `fewest_bytes_keeping`: the smallest first stage keeping a share of frozen nDCG@10 (ties:
  the larger share), each configuration against frozen on the seeds both ran
  (`dive.report.paired`: without train qrels the evaluation queries change with the seed);
  a configuration sharing no seed with frozen is not compared (`unpaired` lists them).

Each answer comes without rescoring (first stages searched alone) and with it (funnels
allowed). Means are over the seeds each configuration ran, shares of frozen over the seeds it
shares with frozen, a budget's best over the seeds its most-seeded candidates share; only
configurations that were run count, nothing is interpolated. Rendering is `frontier_section`;
the plot is `dive.report.plots.plot_frontier`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dive.evaluate.anchors import is_anchor
from dive.evaluate.records import record_bytes_per_vector, record_variant
from dive.report.markdown import plain, signed
from dive.report.paired import Paired, on_fewer_seeds, pair, seed_list
from dive.report.summary import (
    base_method,
    budget_order,
    budget_title,
    check_metric,
    is_earlier_release,
    is_frozen,
    method_label,
    method_order,
    seed_scores,
)

KEEPS = (0.95, 0.99)
PLOT_FLOOR = 0.5  # the plot's y axis starts at this share of frozen float32


@dataclass(frozen=True)
class Config:
    """One configuration on one (dataset, budget): a metric over seeds, and its bytes."""

    dataset: str
    budget: str
    label: str  # the results row: `pca@int8+rescore10`
    method: str  # the method spec: `pca`, `faiss-pq:16`
    dim: int
    precision: str
    rescore: int
    rescore_with: str | None
    bytes_per_vector: int
    mean: float
    std: float
    n_seeds: int
    scores: tuple[tuple[int, float], ...] = ()  # (seed, metric) for each seed run, by seed

    @property
    def family(self) -> str:
        return base_method(self.method)

    @property
    def anchor(self) -> bool:
        return is_anchor(self.method)

    def against(self, other: Config) -> Paired | None:
        """This configuration against `other` (frozen, an anchor) on the seeds both ran; None
        if they share none."""
        return pair(dict(self.scores), dict(other.scores))

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(s for s, _ in self.scores)

    def describe(self) -> str:
        """`pca-uncentered d=96 int8`, `faiss-pq:16 + rescore 10`: what a reader ships."""
        if self.anchor:
            text = self.method if self.family in ("faiss-pq", "faiss-opq") or \
                self.family.startswith("st-") else f"{self.method} d={self.dim}"
        else:
            text = f"{self.method} d={self.dim} {self.precision}"
        if self.rescore:
            text += f" + rescore {self.rescore}"
            if self.rescore_with not in (None, "full"):
                text += f" ({self.rescore_with})"
        return text


def configs(records: Iterable[Mapping[str, Any]], metric: str = "ndcg@10") -> list[Config]:
    """Every configuration of the records, the metric averaged over seeds (`DataError` if one
    has a seed twice: `seed_scores`)."""
    check_metric(metric)
    groups: dict[tuple[str, str, str, int], list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(str(r["dataset"]), str(r["budget"]), method_label(r), int(r["dim"]))].append(r)
    out = []
    for (dataset, budget, label, dim), group in sorted(groups.items()):
        precision, rescore, source = record_variant(group[-1])
        by_seed = seed_scores(group, metric)
        values = list(by_seed.values())
        out.append(Config(dataset, budget, label, str(group[-1]["method"]), dim, precision,
                          rescore, source, record_bytes_per_vector(group[-1]),
                          float(np.mean(values)), float(np.std(values)), len(values),
                          tuple(sorted(by_seed.items()))))
    return out


def shippable(cells: Iterable[Config]) -> list[Config]:
    """The configurations `dive fit` can build, and the anchors: a row of an earlier release
    (`dive@v1`) is kept in the results tables for comparison, but is no answer to "what to
    ship", nor is a spec this install does not know (another release's option, a method of
    a plugin not installed), whose build line failed."""
    return [c for c in cells if c.anchor or buildable(c.method)]


def buildable(method: str) -> bool:
    """Whether `dive fit --method METHOD` can build the records' `method` here."""
    from dive.compressors.registry import make_compressor
    from dive.errors import DiveError

    if is_earlier_release(method):
        return False
    try:
        make_compressor(method, None)
    except (DiveError, KeyError):
        return False
    return True


def groups(cells: Iterable[Config]) -> list[tuple[str, str, list[Config]]]:
    """(dataset, budget, its configurations) in report order."""
    by_group: dict[tuple[str, str], list[Config]] = defaultdict(list)
    for c in cells:
        by_group[(c.dataset, c.budget)].append(c)
    keys = sorted(by_group, key=lambda k: (k[0], budget_order(k[1])))
    return [(dataset, budget, by_group[(dataset, budget)]) for dataset, budget in keys]


def frozen_reference(cells: Iterable[Config]) -> Config | None:
    """The uncompressed float32 row of one (dataset, budget), if it was run."""
    frozen = [c for c in cells if is_frozen(c.label)]
    return max(frozen, key=lambda c: c.dim) if frozen else None


def _better(a: Config, b: Config, a_mean: float, b_mean: float) -> bool:
    """Whether `a` is the better pick than `b`, scoring `a_mean` and `b_mean` on the same
    seeds: higher mean; ties: fewer bytes, no funnel."""
    return (a_mean, -a.bytes_per_vector, -a.rescore) > (b_mean, -b.bytes_per_vector, -b.rescore)


def allowed(cells: Iterable[Config], rescoring: bool) -> list[Config]:
    """The configurations a question may pick: all of them, or only those without a funnel."""
    return [c for c in cells if rescoring or not c.rescore]


def frontier(cells: Iterable[Config]) -> list[Config]:
    """The configurations no other beats with as few bytes, by bytes ascending."""
    out: list[Config] = []
    for c in sorted(cells, key=lambda c: (c.bytes_per_vector, -c.mean, c.rescore)):
        if not out or c.mean > out[-1].mean:
            out.append(c)
    return out


def best_within(cells: Iterable[Config], budget: int) -> Config | None:
    """The best configuration storing at most `budget` bytes per vector, among those within it
    that ran the most seeds, by their means over the seeds those share: a mean over fewer (or
    other) seeds scores other queries, so a lucky one-seed run does not win on its own queries.
    When all ran the same seeds that is each one's own mean. (Most-seeded configurations
    sharing no seed at all, which no benchmark runs, fall back on their own means.)"""
    within = [c for c in cells if c.bytes_per_vector <= budget]
    if not within:
        return None
    most = max(c.n_seeds for c in within)
    pool = [c for c in within if c.n_seeds == most]
    shared = set.intersection(*(set(c.seeds) for c in pool))
    means = {id(c): c.mean if not shared or set(c.seeds) == shared else
             float(np.mean([v for s, v in c.scores if s in shared])) for c in pool}
    best = pool[0]
    for c in pool[1:]:
        if _better(c, best, means[id(c)], means[id(best)]):
            best = c
    return best


@dataclass(frozen=True)
class BudgetRow:
    """At one byte budget: the best of ours and the best anchor within it."""

    bytes_per_vector: int
    ours: Config | None
    anchor: Config | None

    @property
    def paired(self) -> Paired | None:
        """Ours against the anchor on the seeds both ran (None when either is missing or they
        share no seed: their means score other queries)."""
        if self.ours is None or self.anchor is None:
            return None
        return self.ours.against(self.anchor)

    @property
    def margin(self) -> float | None:
        """Ours minus the anchor on the seeds both ran (None: see `paired`)."""
        paired = self.paired
        return None if paired is None else paired.score - paired.reference

    @property
    def unpaired(self) -> bool:
        """Whether both have a configuration but they share no seed: not compared."""
        return self.ours is not None and self.anchor is not None and self.paired is None


def best_per_budget(cells: Sequence[Config], rescoring: bool,
                    budgets: Sequence[int] | None = None) -> list[BudgetRow]:
    """A row per byte budget (default: every bytes-per-vector value among the configurations
    that may be picked), with the best of ours and the best anchor storing at most that."""
    pool = allowed(cells, rescoring)
    if budgets is None:
        budgets = sorted({c.bytes_per_vector for c in pool})
    ours = [c for c in pool if not c.anchor]
    anchors = [c for c in pool if c.anchor]
    return [BudgetRow(b, best_within(ours, b), best_within(anchors, b)) for b in budgets]


@dataclass(frozen=True)
class Hit:
    """A configuration keeping a share of frozen, and how it compared (on which seeds)."""

    config: Config
    paired: Paired


def unpaired(cells: Iterable[Config], frozen: Config) -> list[Config]:
    """The configurations sharing no seed with `frozen`: no share of it can be stated."""
    return [c for c in cells if c is not frozen and c.against(frozen) is None]


def fewest_bytes_keeping(cells: Iterable[Config], frozen: Config, keep: float) -> Hit | None:
    """The configuration with the fewest bytes whose mean is at least `keep` x frozen's on the
    seeds both ran (ties: the larger share, the smaller funnel, then the row label by name and
    the smaller d); None when none does. A configuration sharing no seed with frozen is not a
    candidate (see `unpaired`)."""
    hits = []
    for c in cells:
        paired = c.against(frozen)
        if paired is not None and paired.keeps(keep):
            hits.append(Hit(c, paired))
    if not hits:
        return None
    return min(hits, key=lambda h: (h.config.bytes_per_vector, -h.paired.share,
                                    h.config.rescore, h.config.label, h.config.dim))


def _on_seeds(paired: Paired, frozen: Config, config: Config) -> str:
    """` on seed 1` when a comparison used fewer seeds than frozen or `config` ran, else
    nothing."""
    fewer = on_fewer_seeds(paired.seeds, frozen.seeds, config.seeds)
    return f" on {seed_list(paired.seeds)}" if fewer else ""


@dataclass(frozen=True)
class TargetCheck:
    """The issue's byte-budget target on one (dataset, budget): ours >= every anchor at every
    budget in [low, high] where both have a configuration, on the seeds both ran."""

    low: int
    high: int
    compared: int
    misses: tuple[BudgetRow, ...]
    unpaired: int = 0  # budgets where both have a configuration but share no seed


def check_budgets(rows: Sequence[BudgetRow], low: int = 12, high: int = 768,
                  tolerance: float = 0.0) -> TargetCheck:
    """Count the budgets in [low, high] where ours falls below the best anchor on the seeds
    both ran; those where they share no seed are counted apart."""
    inside = [r for r in rows if low <= r.bytes_per_vector <= high]
    compared = [r for r in inside if r.margin is not None]
    misses = tuple(r for r in compared if r.margin is not None and r.margin < -tolerance)
    return TargetCheck(low, high, len(compared), misses, sum(r.unpaired for r in inside))


def _cell(c: Config | None, reference: Config | None = None) -> str:
    if c is None:
        return "–"
    text = f"{c.describe()}: {c.mean:.4f}"
    paired = None if reference is None else c.against(reference)
    if reference is not None:
        text += (" (no seed shared with frozen)" if paired is None else
                 " (frozen scores 0)" if not paired.reference else
                 f" ({100 * paired.share:.1f}%{_on_seeds(paired, reference, c)})")
    return text.replace("|", "\\|")


def _signed(value: float | None) -> str:
    return "–" if value is None else signed(value, 4)


def _margin(r: BudgetRow) -> str:
    """Ours minus the anchor, with the seeds when fewer than either ran; or why there is none."""
    if r.unpaired:
        return "no seed in common"
    paired = r.paired
    if paired is None or r.ours is None or r.anchor is None:
        return "–"
    on = "" if paired.seeds == r.ours.seeds == r.anchor.seeds else f" on {seed_list(paired.seeds)}"
    return _signed(r.margin) + on


def budget_table(rows: Sequence[BudgetRow], frozen: Config | None) -> str:
    """Byte budgets x the best of ours and the best anchor; percentages of `frozen` on the
    seeds each configuration shares with it, ours minus the anchor on the seeds both ran."""
    lines = ["| ≤ bytes/vector | best of ours | best anchor | ours − anchor |",
             "|---:|:---|:---|---:|"]
    for r in rows:
        lines.append(f"| {r.bytes_per_vector} | {_cell(r.ours, frozen)} | "
                     f"{_cell(r.anchor, frozen)} | {_margin(r)} |")
    return "\n".join(lines)


def keep_bytes_table(cells: Sequence[Config], frozen: Config) -> str:
    """Families x (keep share, rescoring): the fewest bytes reaching the share of frozen, each
    configuration against frozen on the seeds both ran; those sharing none are listed below."""
    columns = [(keep, rescoring) for rescoring in (False, True) for keep in KEEPS]
    header = ["family"] + [f"{keep * 100:g}%{' + rescore' if rescoring else ''}"
                           for keep, rescoring in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] * len(header)) + "|"]
    # the reference itself is no answer: it keeps all of itself, at full bytes
    cells = [c for c in cells if c is not frozen]
    rows: list[tuple[str, list[Config]]] = [
        ("**best of ours**", [c for c in cells if not c.anchor]),
        ("**best anchor**", [c for c in cells if c.anchor]),
    ]
    families = method_order(c.family for c in cells)
    rows += [(family, [c for c in cells if c.family == family]) for family in families]
    for name, pool in rows:
        row = [name]
        for keep, rescoring in columns:
            hit = fewest_bytes_keeping(allowed(pool, rescoring), frozen, keep)
            row.append("not reached" if hit is None else
                       f"{hit.config.bytes_per_vector} B: {hit.config.describe()} "
                       f"({hit.paired.score:.4f}{_on_seeds(hit.paired, frozen, hit.config)})")
        lines.append("| " + " | ".join(r.replace("|", "\\|") for r in row) + " |")
    apart = unpaired(cells, frozen)
    if apart:
        lines.append("\nNot compared (no seed in common with frozen's "
                     f"{seed_list(frozen.seeds)}): "
                     + "; ".join(f"{c.describe()} ({seed_list(c.seeds)})" for c in apart) + ".")
    return "\n".join(lines)


def has_frontier(records: Iterable[Mapping[str, Any]]) -> bool:
    """Whether the records hold more than float32 rows (a precision, a funnel or an anchor):
    only then does a report get a frontier section."""
    return any(record_variant(r)[:2] != ("float32", 0) or is_anchor(str(r["method"]))
               for r in records)


def frontier_section(records: Sequence[Mapping[str, Any]], *, image: str | None = None,
                     low: int = 12, high: int = 768) -> str:
    """The report's frontier section as Markdown (`image`: the plot's relative link)."""
    found = configs(records)
    cells = shippable(found)
    earlier = sorted({c.method for c in found} - {c.method for c in cells})
    parts = ["## Quality per byte",
             "nDCG@10 (mean over seeds) against the bytes per vector the first-stage index "
             "stores. *Ours*: every configuration of a method dive ships (frozen, PCA, DIVE, "
             "the baselines; method x d x precision); *anchors*: FAISS PQ/OPQ, PCA + "
             "SQ8/SQ4 and sentence-transformers int8/binary at equal bytes. "
             "*+ rescore N*: the first stage keeps N x k candidates, rescored by the full "
             "float32 embeddings, or by the compressed float32 outputs where a row says "
             "(compressed) (their bytes are not counted). Best of ours / best anchor "
             "at a byte budget: the highest mean among the configurations within it that ran "
             "the most seeds, on the seeds they share (a mean over fewer scores other "
             "queries). Percentages: of frozen float32 on the seeds both ran; ours − anchor: "
             "on the seeds both ran."]
    if earlier:
        parts[-1] += (f" Rows of an earlier release ({', '.join(earlier)}) are left out here: "
                      "they stay in the tables above for comparison, and dive fit cannot build "
                      "them.")
    if image:
        parts.append(f"![nDCG@10 vs bytes per vector]({image})\n\nThe plot's y axis starts at "
                     f"{PLOT_FLOOR:.0%} of frozen float32: a configuration scoring lower (a few "
                     "bits a vector) is in the tables only.")
    for dataset, budget, group in groups(cells):
        reference = frozen_reference(group)
        title = f"### {plain(dataset)}, {budget_title(budget)}"
        parts.append(title + ("" if reference is None else
                              f" (frozen float32: {reference.mean:.4f}, "
                              f"{reference.bytes_per_vector} bytes/vector)"))
        for rescoring in (False, True):
            rows = best_per_budget(group, rescoring)
            check = check_budgets(rows, low, high)
            kind = "with rescoring allowed" if rescoring else "without rescoring"
            verdict = (f"From {low} to {high} bytes, ours ≥ the best anchor at "
                       f"{check.compared - len(check.misses)} of {check.compared} budgets "
                       "where both ran")
            if not any(c.anchor for c in group):  # "at 0 of 0 budgets" said nothing true
                verdict = "No anchor was run, so none is compared"
            if check.misses:
                verdict += " (below at " + ", ".join(
                    f"{r.bytes_per_vector} B: {_margin(r)}" for r in check.misses) + ")"
            if check.unpaired:
                verdict += (f"; at {check.unpaired} more they share no seed, so they were not "
                            "compared")
            if not rows:  # a table of its header only
                parts.append(f"Best configuration per byte budget, {kind}: none, as every "
                             "configuration that ran rescores.")
                continue
            parts.append(f"Best configuration per byte budget, {kind}. {verdict}.\n\n"
                         + budget_table(rows, reference))
        if reference is not None:
            parts.append("Fewest bytes per vector keeping 95% / 99% of frozen nDCG@10, "
                         "without and with rescoring:\n\n" + keep_bytes_table(group, reference))
    return "\n\n".join(parts)
