"""What to ship: the configuration with the fewest bytes that keeps a share of frozen quality.

Given results records (`dive evaluate` with `--precisions` and `--rescore-factors`), a dataset and a
label budget, `recommend` picks among dive's own compressed configurations (method x d x
precision x funnel, within `max_bytes` if given; the frozen float32 reference itself and the
anchors, which dive does not ship, are not candidates) the one whose first-stage index stores
the fewest bytes per vector while its mean nDCG@10 over seeds is at least `keep` x the frozen
float32 mean on the same queries; ties go to the higher score, then to no funnel. It also
names the smallest anchor reaching the same target, for comparison. Only configurations that
were run count: a target between two measured ones is not interpolated. Left out: any cost
model beyond first-stage bytes (the funnel's float32 copy is read for candidates only and may
live on disk; its bytes are reported, not counted).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dive.compressors.precision import bytes_per_vector
from dive.errors import DataError
from dive.evaluate.product import product_bytes
from dive.report.frontier import Config, allowed, configs, fewest_bytes, frozen_reference
from dive.report.summary import budget_order, budget_title


@dataclass(frozen=True)
class Recommendation:
    """The configuration to ship on one (dataset, budget), and what it was measured against."""

    config: Config
    frozen: Config  # the uncompressed float32 reference
    keep: float
    anchor: Config | None  # the fewest-bytes anchor reaching the same target, if any ran

    @property
    def target(self) -> float:
        return self.keep * self.frozen.mean

    @property
    def share(self) -> float:
        """The configuration's mean as a share of frozen's."""
        return self.config.mean / self.frozen.mean


def _pick(values: Iterable[str], wanted: str | None, what: str, where: str) -> str:
    present = sorted(set(values), key=budget_order if what == "budget" else str)
    if wanted is not None:
        if wanted not in present:
            raise DataError(f"no results for {what} {wanted!r} {where}; the results have "
                            f"{', '.join(present)}")
        return wanted
    if len(present) > 1:
        raise DataError(f"the results hold several {what}s {where} ({', '.join(present)}); "
                        f"choose one with --{what}")
    return present[0]


def recommend(records: Iterable[Mapping[str, Any]], dataset: str, keep: float = 0.99, *,
              budget: str | None = None, model: str | None = None, rescoring: bool = True,
              max_bytes: int | None = None, metric: str = "ndcg@10") -> Recommendation:
    """The fewest-bytes configuration of ours keeping `keep` x frozen `metric` (see the module
    doc); `DataError` saying what is missing or how close the results came when none does."""
    if not keep > 0:
        raise DataError(f"keep must be a positive share of frozen {metric}, got {keep}")
    records = list(records)
    datasets = {str(r["dataset"]) for r in records}
    if dataset not in datasets:
        raise DataError(f"no results for dataset {dataset!r}; the results have "
                        f"{', '.join(sorted(datasets)) or 'no records'}")
    mine = [r for r in records if str(r["dataset"]) == dataset]
    model = _pick((str(r["model"]) for r in mine), model, "model", f"on {dataset}")
    mine = [r for r in mine if str(r["model"]) == model]
    budget = _pick((str(r["budget"]) for r in mine), budget, "budget", f"on {dataset}")
    cells = configs([r for r in mine if str(r["budget"]) == budget], metric)
    where = f"{dataset}, {budget_title(budget)}"
    frozen = frozen_reference(cells)
    if frozen is None:
        raise DataError(f"{where}: no frozen float32 run to keep a share of; evaluate with "
                        "methods including frozen", param="methods")
    pool = [c for c in allowed(cells, rescoring) if c is not frozen
            and (max_bytes is None or c.bytes_per_vector <= max_bytes)]
    ours = [c for c in pool if not c.anchor]
    target = keep * frozen.mean
    pick = fewest_bytes(ours, target)
    if pick is None:
        limits = " without rescoring" if not rescoring else ""
        limits += "" if max_bytes is None else f" within {max_bytes} bytes/vector"
        best = max(ours, key=lambda c: c.mean, default=None)
        closest = ("nothing was run" if best is None else
                   f"the best is {best.describe()} at {best.mean:.4f} "
                   f"({100 * best.mean / frozen.mean:.1f}%, {best.bytes_per_vector} bytes/vector)")
        raise DataError(
            f"{where}: no compressed configuration{limits} keeps {keep * 100:g}% of frozen "
            f"{metric} ({frozen.mean:.4f}, target {target:.4f}); {closest}")
    anchor = fewest_bytes([c for c in pool if c.anchor], target)
    return Recommendation(pick, frozen, keep, anchor)


def render(rec: Recommendation, full_dim: int | None = None) -> list[str]:
    """The lines `dive recommend` prints: the pick, its figures, and how to build it."""
    c, f = rec.config, rec.frozen
    full_dim = full_dim or f.dim
    lines = [
        f"{c.dataset}, {budget_title(c.budget)}: keep {rec.keep * 100:g}% of frozen nDCG@10 "
        f"({f.mean:.4f} at {f.bytes_per_vector} bytes/vector; target {rec.target:.4f})",
        f"ship: method {c.method}, d={c.dim}, precision {c.precision}, "
        + (f"rescore {c.rescore} x k from the {c.rescore_with} float32 vectors"
           if c.rescore else "no rescoring"),
        f"  nDCG@10 {c.mean:.4f} ± {c.std:.4f} over {c.n_seeds} seed(s) "
        f"({100 * rec.share:.1f}% of frozen); first stage {c.bytes_per_vector} bytes/vector",
    ]
    if c.rescore:
        copy = bytes_per_vector("float32", full_dim if c.rescore_with == "full" else c.dim)
        lines.append(f"  the funnel also reads a {copy}-byte float32 copy per candidate (it may "
                     "stay on disk)")
    m = product_bytes(c.precision)
    precision = "float32" if m is not None else c.precision
    lines.append(f"  build: dive fit --dataset {c.dataset} --method {c.method} --dim {c.dim} "
                 f"--budget {c.budget} --precision {precision} --output MODEL_DIR")
    if m is not None:
        lines.append(f"  index: dive index MODEL_DIR --embeddings EMB_DIR --opq {m} --output INDEX")
    if c.rescore:
        vectors = "FULL.npy" if c.rescore_with == "full" else "COMPRESSED.npy"
        lines.append(f"  serve: dive search INDEX MODEL_DIR --rescore-vectors {vectors} "
                     f"--rescore-factor {c.rescore}")
    if rec.anchor is None:
        lines.append("  no anchor that was run keeps the target")
    else:
        a = rec.anchor
        lines.append(f"  smallest anchor keeping it: {a.describe()} at {a.bytes_per_vector} "
                     f"bytes/vector (nDCG@10 {a.mean:.4f})")
    return lines
