"""What to ship: the configuration with the fewest bytes that keeps a share of frozen quality.

Given results records (`dive evaluate` with `--precisions` and `--rescore-factors`), a dataset
and a label budget, `recommend` picks among dive's own compressed configurations (method x d x
precision x funnel, within `max_bytes` if given; the frozen float32 reference itself and the
anchors, which dive does not ship, are not candidates) the one whose first-stage index stores
the fewest bytes per vector while its mean nDCG@10 is at least `keep` x the frozen float32 mean
on the same queries, that is over the seeds both ran (`dive.report.paired`: without train qrels
the evaluation queries change with the seed); ties go to the larger share, then to the smaller
funnel (none first), then to the first row label by name and the smaller d, and the answer
names the configurations it tied with (same bytes, share and funnel). A configuration sharing
no seed with frozen is not compared, and the answer says so. It also names the smallest anchor
reaching the same share, for comparison (also above `max_bytes`). Only configurations that were
run count: a target between two measured ones is not interpolated.
The build line names what the records state (dataset name, model, method, d, budget,
precision); they do not state the dataset's folder or the embeddings folder, so the answer
says to add those. Rows of an earlier release (a method such as `dive@v1`, which benchmarks
keep beside the current code's) are never picked, nor are specs this install does not know
(a warning names them): `dive fit` cannot build them. Left out:
any cost model beyond first-stage bytes (the funnel's float32 copy is read for candidates only
and may live on disk; its bytes are reported, not counted).
"""

from __future__ import annotations

import logging
import math
import shlex
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dive._io import user_path
from dive.arrays import positive_integer, readable
from dive.compressors.precision import bytes_per_vector
from dive.compressors.registry import method_facts
from dive.data.download import dataset_name
from dive.data.splits import budget_label, parse_budget
from dive.embed.encode import DEFAULT_MODEL, record_label
from dive.errors import DataError, about
from dive.evaluate.product import product_bytes
from dive.evaluate.records import record_model
from dive.report.frontier import (
    Config,
    allowed,
    configs,
    fewest_bytes_keeping,
    frozen_reference,
    shippable,
    unpaired,
)
from dive.report.keep import check_keep
from dive.report.merge import merge_records
from dive.report.paired import Paired, seed_list
from dive.report.summary import budget_order, budget_title, is_earlier_release

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class Recommendation:
    """The configuration to ship on one (dataset, budget), and what it was measured against."""

    config: Config
    frozen: Config  # the uncompressed float32 reference
    keep: float
    anchor: Config | None  # the fewest-bytes anchor reaching the same share, if any ran
    paired: Paired  # the configuration against frozen on the seeds both ran
    model: str  # the embedding model of the records
    anchor_paired: Paired | None = None  # the anchor against frozen on the seeds both ran
    unpaired: tuple[Config, ...] = ()  # candidates sharing no seed with frozen: not compared
    tied: tuple[Config, ...] = ()  # candidates as good by the rule (bytes, share, funnel)
    anchors_ran: bool = True  # whether any anchor was run (else none is compared)

    @property
    def target(self) -> float:
        """`keep` x frozen's mean on the seeds the configuration shares with it."""
        return self.keep * self.paired.reference

    @property
    def share(self) -> float:
        """The configuration's mean as a share of frozen's, on the same seeds."""
        return self.paired.share


def _pick(values: Iterable[str], wanted: str | None, what: str, where: str) -> str:
    present = sorted(set(values), key=budget_order if what == "budget" else str)
    if wanted is not None:
        if wanted not in present:
            raise DataError(f"no results for {what} {wanted!r} {where}; the results have "
                            f"{', '.join(present)}")
        return wanted
    if len(present) > 1:
        raise DataError(f"the results hold several {what}s {where} ({', '.join(present)}); "
                        "choose one", param=what)
    return present[0]


def recommend(records: Iterable[Mapping[str, Any]], dataset: str, keep: float = 0.99, *,
              budget: str | None = None, model: str | None = None, rescoring: bool = True,
              max_bytes: int | None = None, metric: str = "ndcg@10") -> Recommendation:
    """The fewest-bytes configuration of ours keeping `keep` x frozen `metric` (see the module
    doc); `DataError` saying what is missing or how close the results came when none does."""
    check_keep(keep, metric)
    if max_bytes is not None:  # "400" compared with every row's bytes: a TypeError
        max_bytes = positive_integer(max_bytes, "max_bytes")
    records = merge_records(records)  # a rerun's last record, as `dive report` reads them
    folder = user_path(dataset)  # as typed: a name of other bytes is that folder's
    dataset = readable(dataset)  # as merge_records names it (typed under LC_ALL=C, say)
    datasets = {str(r["dataset"]) for r in records}
    if dataset not in datasets and folder.is_dir():  # `mydocs/`, as evaluate was given it
        dataset = readable(dataset_name(str(folder), folder))
    if dataset not in datasets and dataset.strip() in datasets:  # blanks typed by a slip
        dataset = dataset.strip()
    if dataset not in datasets:
        raise DataError(f"no results for dataset {dataset!r}; the results have "
                        f"{', '.join(map(repr, sorted(datasets))) or 'no records'}")
    mine = [r for r in records if str(r["dataset"]) == dataset]
    # the default model's hub alias (older records, or `model`) names the default model
    model = _pick((record_model(r) for r in mine),  # named as merge_records names it
                  None if model is None else readable(record_label(model)), "model",
                  f"on {dataset}")
    mine = [r for r in mine if record_model(r) == model]
    if budget is not None:  # spelled as evaluate takes it ('ALL', ' 64')
        with about("budget"):
            budget = budget_label(parse_budget(budget))
    budget = _pick((str(r["budget"]) for r in mine), budget, "budget", f"on {dataset}")
    # rows of an earlier release (`dive@v1`) are kept for comparison, and a spec this install
    # does not know was run by another: this code cannot build them
    found = configs([r for r in mine if str(r["budget"]) == budget], metric)
    cells = shippable(found)
    kept = {c.method for c in cells}
    earlier = list(dict.fromkeys(c.method for c in found if c.method not in kept))
    unknown = [m for m in earlier if not is_earlier_release(m)]
    if unknown:  # their build line failed ("unknown option(s) foo")
        logger.warning("recommend: left out %s, which dive fit here cannot build (a method or "
                       "option of another release?)", ", ".join(unknown))
    where = f"{dataset}, {budget_title(budget)}"
    frozen = frozen_reference(cells)
    if frozen is None:
        ran = sorted({c.precision for c in cells if c.method == "frozen"})
        if ran:  # `--precisions int8,binary` left float32 out
            raise DataError(f"{where}: no frozen float32 run to keep a share of (frozen ran at "
                            f"{', '.join(ran)} only); evaluate with float32 among the "
                            "precisions and 0 among the rescore factors (float32 rescored by "
                            "float32 ranks as float32 alone, so it runs only unrescored)")
        # no `param`: these are the evaluation's parameters, which a CLI would name as flags
        # of the recommending verb
        raise DataError(f"{where}: no frozen float32 run to keep a share of; evaluate with "
                        "methods including frozen, and float32 among the precisions")
    if frozen.mean == 0:  # every configuration would "keep" a share of nothing
        raise DataError(f"{where}: frozen float32 {metric} is 0 on {seed_list(frozen.seeds)}, so "
                        "there is no share of it to keep; check the evaluation queries' "
                        "judgements")
    run = [c for c in allowed(cells, rescoring) if c is not frozen]
    pool = [c for c in run if max_bytes is None or c.bytes_per_vector <= max_bytes]
    ours = [c for c in pool if not c.anchor]
    apart = tuple(unpaired(ours, frozen))
    pick = fewest_bytes_keeping(ours, frozen, keep)
    if pick is None:
        limits = " without rescoring" if not rescoring else ""
        limits += "" if max_bytes is None else f" within {max_bytes} bytes/vector"
        raise DataError(
            f"{where}: no compressed configuration{limits} keeps {keep * 100:g}% of frozen "
            f"{metric} ({frozen.mean:.4f}, target {keep * frozen.mean:.4f} on "
            f"{seed_list(frozen.seeds)}); "
            + _why_none(cells, frozen, run, ours, apart, max_bytes, earlier))
    # for comparison, whatever its bytes: an anchor above `max_bytes` still shows the saving
    anchors = [c for c in run if c.anchor]
    anchor = fewest_bytes_keeping(anchors, frozen, keep)
    return Recommendation(pick.config, frozen, keep, None if anchor is None else anchor.config,
                          pick.paired, model, None if anchor is None else anchor.paired, apart,
                          _ties(ours, frozen, pick.config, pick.paired), bool(anchors))


def _ties(ours: list[Config], frozen: Config, pick: Config, paired: Paired) -> tuple[Config, ...]:
    """The other candidates the rule cannot tell from `pick` (same bytes, same share of frozen,
    same funnel): the order of their labels chose, so the answer names them."""
    return tuple(c for c in ours if c is not pick and c.bytes_per_vector == pick.bytes_per_vector
                 and c.rescore == pick.rescore and (p := c.against(frozen)) is not None
                 and p.share == paired.share)


def _why_none(cells: list[Config], frozen: Config, run: list[Config], ours: list[Config],
              apart: tuple[Config, ...], max_bytes: int | None, earlier: list[str]) -> str:
    """What the results hold instead of an answer: the closest configuration, or why there
    is nothing to compare (`earlier`: the rows of an earlier release left out)."""
    if not any(not c.anchor and c is not frozen for c in cells):
        if earlier:
            return (f"the compressed configurations that were run are of an earlier release "
                    f"or unknown here ({', '.join(earlier)}), which dive fit cannot build")
        return "no compressed configuration of dive was run (only frozen float32 and anchors)"
    mine = [c for c in run if not c.anchor]
    if not mine:
        return "every compressed configuration that was run rescores (allow rescoring)"
    if not ours:
        small = min(mine, key=lambda c: (c.bytes_per_vector, c.rescore))
        return (f"none of those that were run fits in {max_bytes} bytes/vector: the smallest "
                f"stores {small.bytes_per_vector} ({small.describe()})")
    # a share of a frozen score of 0 is NaN: no comparison, and max() would keep the first NaN
    compared = [(c, p) for c in ours if (p := c.against(frozen)) is not None and p.reference]
    if not compared:
        return (f"none of the {len(ours)} that were run shares a seed with frozen's, so none "
                f"can be compared (they ran {seed_list({s for c in ours for s in c.seeds})}); "
                "evaluate frozen on those seeds")
    best, paired = max(compared, key=lambda cp: cp[1].share)
    on = ("" if paired.seeds == frozen.seeds else
          f"'s {paired.reference:.4f} on {seed_list(paired.seeds)}")
    text = (f"the best is {best.describe()} at {paired.score:.4f} "
            # rounded down: 99.988% read "100.0%" under "no configuration keeps 100%"
            f"({math.floor(1000 * paired.share) / 10:.1f}% of frozen{on}, "
            f"{best.bytes_per_vector} bytes/vector)")
    if apart:
        text += (f"; {len(apart)} configuration(s) share no seed with frozen and were not "
                 f"compared (e.g. {apart[0].describe()} on {seed_list(apart[0].seeds)})")
    return text


def _measured_seed(seeds: Collection[int]) -> int:
    """The seed of one of the measured runs: 0, the verbs' default, when it is one."""
    return 0 if 0 in seeds else min(seeds)


def _build_line(c: Config, model: str, precision: str, seeds: Collection[int],
                output: str = "MODEL_DIR") -> str:
    """The `dive fit` line for `c`, with every option the records state that fit needs (the
    label budget only for a method that learns from labels: `dive fit` warns it is unused),
    and the seed of one of the fits measured (`seeds`; fit's own default 0 when it is one):
    the seed draws the split and the training, so fit's default built a model that was not
    measured (without train qrels, one that had read the measured queries as labels)."""
    facts = method_facts(c.family)
    budget = [] if facts is not None and not facts.supervised else ["--budget", c.budget]
    seed = _measured_seed(seeds)
    words = ["dive", "fit", "--dataset", c.dataset, "--method", c.method, "--dim", str(c.dim),
             *budget, *(["--seed", str(seed)] if seed else []), "--precision", precision]
    if model != DEFAULT_MODEL:
        words += ["--model", model]
    return " ".join(shlex.quote(w) for w in [*words, "--output"]) + f" {output}"


def render(rec: Recommendation, full_dim: int | None = None) -> list[str]:
    """The lines `dive recommend` prints: the pick, its figures, and how to build it."""
    c, f, p = rec.config, rec.frozen, rec.paired
    full_dim = full_dim or f.dim
    same = p.seeds == f.seeds
    frozen = (f"{f.mean:.4f} at {f.bytes_per_vector} bytes/vector; target {rec.target:.4f}"
              if same else
              f"{f.mean:.4f} at {f.bytes_per_vector} bytes/vector over {seed_list(f.seeds)}; "
              f"on {seed_list(p.seeds)}, which the pick also ran: {p.reference:.4f}, "
              f"target {rec.target:.4f}")
    on = "" if same else f" on {seed_list(p.seeds)}"
    lines = [
        f"{c.dataset}, {budget_title(c.budget)}: keep {rec.keep * 100:g}% of frozen nDCG@10 "
        f"({frozen})",
        f"ship: method {c.method}, d={c.dim}, precision {c.precision}, "
        + (f"rescore {c.rescore} x k from the {c.rescore_with} float32 vectors"
           if c.rescore else "no rescoring"),
        f"  nDCG@10 {p.score:.4f} ± {p.std:.4f} over {len(p.seeds)} seed(s) "
        f"({100 * rec.share:.1f}% of frozen{on}); first stage {c.bytes_per_vector} bytes/vector",
    ]
    if c.rescore:
        copy = bytes_per_vector("float32", full_dim if c.rescore_with == "full" else c.dim)
        lines.append(f"  the funnel also reads a {copy}-byte float32 copy per candidate (it may "
                     "stay on disk)")
    m = product_bytes(c.precision)
    precision = "float32" if m is not None else c.precision
    lines.append(f"  build: {_build_line(c, rec.model, precision, p.seeds)}")
    lines.append("    (add --data-dir or the dataset's folder, and --embeddings, if dive evaluate "
                 "was given them: the results record neither)")
    if m is not None or c.rescore:  # the index `serve` searches
        # the seed trains OPQ's rotation and codebooks, as it did in the measured run
        seed = _measured_seed(p.seeds)
        opq = f" --opq {m}" + (f" --seed {seed}" if seed else "") if m is not None else ""
        lines.append(f"  index: dive index MODEL_DIR --embeddings EMB_DIR{opq} --output INDEX")
    if c.rescore and c.rescore_with != "full":  # the funnel's file: the float32 outputs
        source = "MODEL_DIR"
        if precision != "float32":  # the model's codes are not what the funnel reads
            f32 = _build_line(c, rec.model, "float32", p.seeds, "F32_DIR")
            lines.append(f"  its float32 outputs: {f32}")
            source = "F32_DIR"
        lines.append(f"    then: dive compress {source} --input EMB_DIR/corpus.npy --output "
                     "COMPRESSED.npy")
    if c.rescore:
        vectors = "FULL.npy" if c.rescore_with == "full" else "COMPRESSED.npy"
        # named, not left to the width: a model keeping the full dimension needs it
        lines.append(f"  serve: dive search INDEX MODEL_DIR --rescore-vectors {vectors} "
                     f"--rescore-space {c.rescore_with} --rescore-factor {c.rescore}")
    if rec.anchor is None or rec.anchor_paired is None:
        lines.append("  no anchor that was run keeps the target" if rec.anchors_ran else
                     "  no anchor was run to compare with (dive evaluate --anchors)")
    else:
        a, ap = rec.anchor, rec.anchor_paired
        lines.append(f"  smallest anchor keeping it: {a.describe()} at {a.bytes_per_vector} "
                     f"bytes/vector (nDCG@10 {ap.score:.4f}, {100 * ap.share:.1f}% of frozen"
                     f"{'' if ap.seeds == f.seeds else ' on ' + seed_list(ap.seeds)})")
    for t in rec.tied:
        tp = t.against(f)
        share = "" if tp is None else (
            f", {100 * tp.share:.1f}% of frozen"
            f"{'' if tp.seeds == f.seeds else ' on ' + seed_list(tp.seeds)}")
        how = "by name" if t.label != c.label else "the smaller d"
        lines.append(f"  tied with {t.describe()} (also {t.bytes_per_vector} bytes/vector{share}); "
                     f"picked {how}")
    if rec.unpaired:
        lines.append(f"  not compared: {len(rec.unpaired)} configuration(s) share no seed with "
                     f"frozen ({seed_list(f.seeds)}), e.g. {rec.unpaired[0].describe()} on "
                     f"{seed_list(rec.unpaired[0].seeds)}; evaluate frozen on their seeds")
    return lines
