"""The benchmark protocol: fit every method on every (dataset, ratio, budget, seed) and score it.

For each dataset the embeddings are loaded once; each (budget, seed) gives one query split
(`dive.data.splits`), shared by every method, so rows in a table differ only by method. Each
finished run becomes one record in the results file right away, with the fingerprint of the
data it was computed from (`dive.evaluate.fingerprint`); a run whose key and fingerprint are
already there is skipped (logged), so an interrupted grid resumes where it stopped, while a
record of other data (a changed dataset folder, other embeddings) is run again, with a
warning. Unsupervised methods get the same split and are recorded per budget too: the tables
then need no special cases. A budget of at least a dataset's labelled pool trains on every
labelled query, the same run as `all`, so it is run and recorded as `all` there (a warning
says so).

Each fit is scored at every precision x rescore factor of the grid (`dive.evaluate.funnel`),
one record each, without fitting again: the compressed outputs are computed once per fit.
Anchors (`dive.evaluate.anchors`: FAISS PQ/OPQ/PCA+SQ, sentence-transformers int8/binary) run
in the same grid as rows of their own: their index is built once per task and scored at every
rescore factor, with the same splits, keys and record fields as a method's.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from dive import __version__
from dive.arrays import SEED_LIMIT, BadRowError, as_unit_rows, decoded
from dive.compressors.base import Compressor, LabelledQueries, TrainingData
from dive.compressors.learned import LearnedCompressor
from dive.compressors.options import MAX_INT
from dive.compressors.registry import make_compressor, method_facts
from dive.data import Dataset, Qrels, load_beir
from dive.data.splits import QuerySplit, budget_label, make_split, parse_budget, within_pool
from dive.embed import DEFAULT_MODEL, Embeddings, get_embeddings
from dive.embed.encode import default_model_for, record_label
from dive.errors import DataError, DiveError, about
from dive.evaluate.anchors import Anchor, check_packages, is_anchor, parse_anchor
from dive.evaluate.fingerprint import data_fingerprint
from dive.evaluate.funnel import Outputs, Variant, plan_variants, score_funnel, score_variants
from dive.evaluate.machine import MACHINE_FIELD, machine_facts
from dive.evaluate.product import check_stage, fits, is_product, product_bytes
from dive.evaluate.records import (
    FINGERPRINT_FIELD,
    RESCORE_SOURCES,
    RecordKey,
    RescoreSource,
    ResultsFile,
    float32_key,
    record_key,
)
from dive.evaluate.search import check_ids, identical_id_rows

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GridSpec:
    """What to run: the cross product of these lists."""

    datasets: Sequence[str]
    methods: Sequence[str]
    ratios: Sequence[int] = (2, 4, 8, 16)
    budgets: Sequence[int | None] = (16, 64, 256, None)
    seeds: Sequence[int] = (0, 1, 2)
    # loaded (and its embeddings looked up) as given; None: the one `embeddings_dir`'s
    # meta.json names, else DEFAULT_MODEL, as `dive evaluate` reads it (runs on another
    # model's folder were recorded under DEFAULT_MODEL)
    model: str | None = None
    data_dir: str | None = None
    embeddings_dir: str | None = None  # one embeddings folder; only with a single dataset
    top_k: int = 100
    precisions: Sequence[str] = ("float32",)  # of the first-stage index (or opqM)
    rescores: Sequence[int] = (0,)  # funnel factors; 0: no rescoring
    rescore_with: RescoreSource = "full"  # the float32 vectors a funnel rescores with
    anchors: Sequence[str] = ()  # `dive.evaluate.anchors` specs, run beside the methods
    progress: bool = True  # bars while encoding embeddings that are not stored yet

    def __post_init__(self) -> None:
        if self.model is None:
            object.__setattr__(self, "model", default_model_for(self.embeddings_dir))
        # A list given as one value: "cranfield" ran datasets 'c', 'r', 'a', ...
        for name in ("datasets", "methods", "ratios", "budgets", "seeds", "precisions",
                     "rescores", "anchors"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                raise DiveError(f"grid: {name} must be a list, got {value!r}", param=name)
        # A spec is its rows' label: " pca" would run as pca but be recorded apart from it.
        object.__setattr__(self, "methods", [str(m).strip() for m in self.methods])
        # As the records spell them ("all" is None), each a positive integer: -3 ran as
        # pool[:-3], then its record was refused after the runs before it had been written
        with about("budgets"):
            object.__setattr__(self, "budgets", [parse_budget(b) for b in self.budgets])
        # Checked before any run, so a bad value cannot stop a grid after it recorded some.
        for name in ("datasets", "ratios", "budgets", "seeds", "precisions", "rescores"):
            if not list(getattr(self, name)):
                raise DiveError(f"grid: no {name} given")
        if not list(self.methods) and not list(self.anchors):
            raise DiveError("grid: no methods given (and no anchors)")
        with about("methods"):
            _check_distinct_methods(self.methods)
        for anchor in self.anchors:
            parse_anchor(anchor)
        for precision in self.precisions:
            check_stage(precision)
        if self.rescore_with not in RESCORE_SOURCES:
            raise DiveError(f"grid: rescore_with {self.rescore_with!r} is not one of "
                            f"{', '.join(RESCORE_SOURCES)}")
        for name, minimum in (("ratios", 1), ("seeds", 0), ("top_k", 1), ("rescores", 0)):
            value = getattr(self, name)
            for v in [value] if name == "top_k" else value:
                if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
                    raise DiveError(f"grid: {name} must be integers >= {minimum}, got {v!r}",
                                    param=name)
        big = [seed for seed in self.seeds if seed >= SEED_LIMIT]  # past the generators'
        if big:
            raise DiveError(f"grid: seeds must be integers in 0..2**63-1, got {big[0]!r}",
                            param="seeds")
        wide = [seed for seed in self.seeds if seed > MAX_INT]
        kmeans = [p for p in self.precisions if is_product(p)] + [
            a for a in self.anchors if parse_anchor(a).family in ("faiss-pq", "faiss-opq")]
        if wide and kmeans:  # it built seed % 2**31's index: seed 0's twice in a mean
            raise DiveError(f"grid: seed {wide[0]} is above 2**31-1, the largest seed FAISS "
                            f"takes for the k-means of {kmeans[0]}; give seeds below 2**31",
                            param="seeds")
        # `--ratios 4,4` ran once, then said it skipped the second "already in" the results
        for name in ("datasets", "methods", "anchors", "ratios", "budgets", "seeds"):
            object.__setattr__(self, name, list(dict.fromkeys(getattr(self, name))))

    @property
    def recorded_model(self) -> str:
        """The model's name in the records, as `record_label` gives it: one model, one name
        (a sentence-transformers hub id is its bare name, `./m` and `/abs/m` one folder), or a rerun
        under another spelling would run every run again. `model` stays as given: the
        embeddings cache folder is named after it (`dive.embed.encode.model_dirname`)."""
        return record_label(str(self.model))


def _check_distinct_methods(methods: Sequence[str]) -> None:
    """Refuse two spellings of one configuration (`dive:lr=1e-3` and `dive:lr=0.001`, a
    default spelled out, an option under its old name): a spec is its rows' label, so each
    would be run and recorded as a method of its own. They are told apart by the
    configuration they build. Labels are not rewritten to one spelling: stored records must
    keep matching theirs."""
    seen: dict[str, str] = {}
    for method in methods:
        with warnings.catch_warnings():  # an old option name warns once, where it is run
            warnings.simplefilter("ignore", FutureWarning)
            compressor = make_compressor(method, None)
        key = json.dumps([compressor.method, compressor.config()], sort_keys=True, default=str)
        first = seen.setdefault(key, method)
        if first != method:
            raise DiveError(f"grid: methods {first!r} and {method!r} are one configuration "
                            f"({compressor.method} with the same settings); give it once",
                            param="methods")


@dataclass
class RunTask:
    """One (method, dim, budget, seed) fit on one dataset, scored at each of its variants."""

    method: str
    dim: int
    ratio: int
    budget: int | None
    seed: int
    variants: tuple[Variant, ...] = (Variant(),)
    keys: tuple[RecordKey, ...] = field(default=())  # one results key per variant


def labelled_queries(
    ids: Sequence[str], qrels: Qrels, emb: Embeddings, identical: Container[str]
) -> LabelledQueries:
    """Query embeddings plus their relevant corpus rows, for a supervised fit; a query in
    `identical` (`QuerySplit.identical_ids`) never retrieves the document with its own id,
    in the fit as in the evaluation."""
    row_of = {doc_id: row for row, doc_id in enumerate(emb.corpus_ids)}
    relevant = []
    for query_id in ids:
        docs = qrels[query_id]
        relevant.append({row_of[d]: g for d, g in docs.items() if g > 0 and d in row_of})
    exclude = tuple(row_of.get(q, -1) if q in identical else -1 for q in ids)
    return LabelledQueries(emb.query_rows(ids), tuple(relevant), tuple(ids), exclude)


def training_data(split: QuerySplit, emb: Embeddings) -> TrainingData:
    validation = (
        labelled_queries(split.validation_ids, split.label_qrels, emb, split.identical_ids)
        if split.validation_ids
        else None
    )
    train = labelled_queries(split.train_ids, split.label_qrels, emb, split.identical_ids)
    return TrainingData(train, validation)


def run_one(
    task: RunTask, dataset: Dataset, emb: Embeddings, split: QuerySplit, model: str, top_k: int
) -> list[dict[str, Any]]:
    """Fit one compressor, retrieve for the evaluation queries at each of the task's variants,
    return their records (one per variant, in order)."""
    compressor = make_compressor(task.method, task.dim, task.seed)
    train = training_data(split, emb) if compressor.supervised else None
    if isinstance(compressor, LearnedCompressor):
        # torch's import, once a process, is charged to no fit: the first learned method of a
        # grid took seconds more than the same fit run after another
        importlib.import_module("torch")
    start = time.perf_counter()
    compressor.fit(emb.corpus, train)
    fit_seconds = time.perf_counter() - start
    queries = _eval_queries(emb, split)
    outputs = Outputs(_compressed(compressor, queries, split.eval_ids, "query", task, emb),
                      _compressed(compressor, emb.corpus, emb.corpus_ids, "document", task, emb),
                      queries, emb.corpus, split.eval_ids, emb.corpus_ids,
                      _eval_exclude(emb, split))
    dim = compressor.fitted_runtime().output_dim
    info = compressor.fit_info_
    fit = _Fit(fit_seconds, compressor.n_params, compressor.config(), compressor.supervised,
               info.diagnostics, info.summary.as_record() if info.summary is not None else None)
    scored = score_variants(task.variants, outputs, split.eval_qrels, top_k, task.seed)
    return [_record(task, dataset, model, replace(fit, n_params=fit.n_params + stage_params),
                    split, dim, scores, variant.fields(dim, emb.dim))
            for variant, (scores, stage_params) in zip(task.variants, scored, strict=True)]


def run_anchor(
    task: RunTask, dataset: Dataset, emb: Embeddings, split: QuerySplit, model: str, top_k: int
) -> list[dict[str, Any]]:
    """Build one anchor's index on the corpus, search it for the evaluation queries once (as
    deep as the largest funnel needs) and return a record per rescore factor of the task.

    The anchor sees the embeddings L2-normalised, as every method does (a folder of imported
    vectors may be stored off unit norm): else its inner products would rank by norm, not by
    cosine, against methods that do. Unit rows pass unchanged."""
    anchor = parse_anchor(task.method)
    corpus = as_unit_rows(emb.corpus, name=f"{dataset.name}: corpus embeddings")
    start = time.perf_counter()
    index = anchor.build(corpus, task.dim, task.seed)
    fit_seconds = time.perf_counter() - start
    queries = as_unit_rows(_eval_queries(emb, split), name=f"{dataset.name}: query embeddings")
    outputs = Outputs(queries, corpus, queries, corpus, split.eval_ids, emb.corpus_ids,
                      _eval_exclude(emb, split))
    depth = top_k * max(1, *(v.rescore for v in task.variants))
    rows, scores = index.search(queries, depth, outputs.exclude)
    config = {"anchor": anchor.family, "m": anchor.m, "factory": index.factory,
              "dim": task.dim, "seed": task.seed}
    fit = _Fit(fit_seconds, index.n_params, config, False, {}, None)
    records = []
    for variant in task.variants:
        cut = top_k * max(1, variant.rescore)
        metrics = score_funnel(rows[:, :cut], scores[:, :cut], variant, outputs,
                               split.eval_qrels, top_k)
        fields = anchor.fields(variant.rescore, index.bytes_per_vector, emb.dim)
        records.append(_record(task, dataset, model, fit, split, task.dim, metrics, fields))
    return records


def _eval_exclude(emb: Embeddings, split: QuerySplit) -> np.ndarray:
    """Per evaluation query, the corpus row it never retrieves (its own document; -1: none)."""
    return identical_id_rows(split.eval_ids, emb.corpus_ids, split.identical_ids)


def _compressed(compressor: Compressor, x: np.ndarray, ids: Sequence[str], kind: str,
                task: RunTask, emb: Embeddings) -> np.ndarray:
    """`compressor.transform(x)`; a row it cannot rank is named by its id, not by its row in
    `x` (the evaluation queries are a subset of the file's: that row is no file's)."""
    try:
        return compressor.transform(x)
    except BadRowError as exc:
        source = emb.meta.get("source", "the embeddings")
        raise DataError(f"{source}: {kind} {ids[exc.row]!r}: {exc.problem} ({task.method} at "
                        f"d={task.dim})") from None


def _eval_queries(emb: Embeddings, split: QuerySplit) -> np.ndarray:
    """The evaluation queries' embeddings, checked against their ids."""
    queries = emb.query_rows(split.eval_ids)
    check_ids(split.eval_ids, emb.corpus_ids, queries.shape[0], emb.corpus.shape[0])
    return queries


@dataclass(frozen=True)
class _Fit:
    """What a record says about the fit (or anchor build) it scores."""

    seconds: float
    n_params: int
    config: dict[str, Any]
    supervised: bool
    diagnostics: dict[str, Any]  # the method's free-form detail
    summary: dict[str, Any] | None  # a learned fit's `FitSummary` record (None: training-free)


def _record(task: RunTask, dataset: Dataset, model: str, fit: _Fit, split: QuerySplit,
            dim: int, scores: dict[str, float], variant: dict[str, Any]) -> dict[str, Any]:
    supervised = fit.supervised
    return {
        "dataset": decoded(dataset.name),  # as a UTF-8 interpreter names it (LC_ALL=C)
        "model": model,
        "method": task.method,
        "dim": dim,
        "ratio": task.ratio,
        "budget": budget_label(task.budget),
        "seed": task.seed,
        **{name: float(value) for name, value in scores.items()},
        **variant,
        "fit_seconds": round(fit.seconds, 4),
        "n_params": fit.n_params,
        "config": fit.config,
        "n_train": len(split.train_ids) if supervised else 0,
        "n_validation": len(split.validation_ids) if supervised else 0,
        "n_labels": split.n_labels if supervised else 0,
        "n_eval": len(split.eval_ids),
        "label_source": split.source,
        "diagnostics": fit.diagnostics,
        "fit": fit.summary,
        "version": __version__,
        MACHINE_FIELD: machine_facts(uses_torch=fit.summary is not None),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def full_dim_only(spec: str) -> bool:
    """Whether the method `spec` names runs at the input dimension only (`frozen`)."""
    facts = method_facts(spec.split(":", 1)[0])
    return facts is not None and facts.full_dim_only


def plan(spec: GridSpec, dataset: str, full_dim: int) -> list[RunTask]:
    """Every run of the grid on one dataset (frozen once per budget and seed)."""
    tasks: list[RunTask] = []
    skipped: list[str] = []  # (method, d) that no precision x rescore factor runs
    for budget in spec.budgets:
        for seed in spec.seeds:
            for method in spec.methods:
                ratios = [1] if full_dim_only(method) else list(spec.ratios)
                for ratio in ratios:
                    dim = _dim_of(full_dim, ratio, dataset)
                    variants = tuple(plan_variants(spec.precisions, spec.rescores,
                                                   spec.rescore_with, full_dim=dim == full_dim,
                                                   dim=dim, input_ranking=full_dim_only(method)))
                    if not variants:  # no stage of the grid makes a run of this d
                        skipped.append(f"{method} d={dim}")
                        continue
                    if "float32" in spec.precisions and all(v.precision != "float32"
                                                            for v in variants):
                        skipped.append(f"{method} d={dim} at float32")  # other stages run
                    base = {"dataset": decoded(dataset), "model": spec.recorded_model,
                            "method": method, "dim": dim, "budget": budget_label(budget),
                            "seed": seed}
                    keys = tuple(record_key({**base, **v.fields(dim, full_dim)})
                                 for v in variants)
                    tasks.append(RunTask(method, dim, ratio, budget, seed, variants, keys))
            tasks += _anchor_tasks(spec, dataset, full_dim, budget, seed)
    _check_products_used(spec, dataset, full_dim, tasks)
    _check_float32_rescored(spec, dataset, list(dict.fromkeys(skipped)), tasks)
    return tasks


def _check_reference_kept(spec: GridSpec, dataset: str, tasks: Sequence[RunTask],
                          results: ResultsFile) -> None:
    """Say when the grid runs frozen without float32 among the precisions and the results hold
    no float32 run of it: that run is the reference reports and `recommend` keep a share of,
    and they found it missing only later. (float32 asked for, but not at factor 0, is said by
    `_check_float32_rescored`.)"""
    if "float32" in spec.precisions:
        return
    reference = [t for t in tasks
                 if full_dim_only(t.method) and float32_key(t.keys[0]) not in results]
    if reference:
        # the precisions its own runs have (an opq stage never codes a full-dimension method)
        runs_at = dict.fromkeys(v.precision for t in reference for v in t.variants)
        logger.warning("%s: %s runs at %s only, and %s holds no float32 run of it, the "
                       "reference reports and recommend keep a share of: add float32 to the "
                       "precisions (with rescore factor 0)", dataset,
                       ", ".join(dict.fromkeys(t.method for t in reference)),
                       ", ".join(runs_at), results.path)
    planned = {t.method for t in tasks}
    unrun = [m for m in dict.fromkeys(spec.methods) if full_dim_only(m) and m not in planned]
    if unrun:  # `--precisions opq12` alone: frozen left out without a word
        logger.warning("%s: %s runs at none of the precisions asked (an opq stage never codes "
                       "a full-dimension method): add float32 to the precisions (with rescore "
                       "factor 0) for the reference reports and recommend keep a share of",
                       dataset, ", ".join(unrun))


def _check_float32_rescored(spec: GridSpec, dataset: str, skipped: Sequence[str],
                            tasks: Sequence[RunTask]) -> None:
    """Say which (method, d) the grid leaves without a float32 run (or without any run)
    because float32 is only asked for rescored by the vectors it ranks by (the same ranking:
    `plan_variants` drops it): a warning, or a DataError when no run is left. Frozen's float32
    run is the reference every report keeps a share of. (Product stages that fit no d are said
    by `_check_products_used`.)"""
    if not skipped or "float32" not in spec.precisions or 0 in spec.rescores:
        return
    why = ("float32 rescored by float32 vectors ranks as float32 alone (a compressed output "
           "rescored by itself, and frozen rescored by anything): add rescore "
           "factor 0 or another precision (a compressed method may rescore with the full "
           "vectors)")
    if not tasks:
        raise DataError(f"no run of the grid on {dataset}: {why}", param="rescores")
    logger.warning("%s: %s left out: %s", dataset, ", ".join(skipped), why)


def _check_products_used(
    spec: GridSpec, dataset: str, full_dim: int, tasks: Sequence[RunTask]
) -> None:
    """Say which requested `opqM` no run of the grid codes (see `plan_variants`): a warning,
    or a DataError when that leaves the grid without a run."""
    used = {v.precision for task in tasks for v in task.variants}
    unused = [p for p in dict.fromkeys(spec.precisions) if is_product(p) and p not in used]
    compressing = any(not full_dim_only(m) for m in spec.methods)
    dims = sorted({_dim_of(full_dim, r, dataset) for r in spec.ratios if r > 1 and compressing},
                  reverse=True)
    for p in dict.fromkeys(spec.precisions):  # used at some d, left out at others: say where
        left = [d for d in dims if is_product(p) and p in used and not fits(p, d)]
        if left:
            logger.warning("%s: precision %s left out at d=%s: M must divide d and be below it",
                           dataset, p, ", ".join(map(str, left)))
    if not unused:
        return
    why = (f"M must divide a compressed dimension d and be below it (the grid's d: "
           f"{', '.join(map(str, dims)) or 'none'}; the full dimension {full_dim} is the "
           "faiss-opq:M anchor's)")
    if not tasks:
        raise DataError(f"no run of the grid on {dataset}: precision {', '.join(unused)} codes "
                        f"none of its outputs; {why}", param="precisions")
    logger.warning("%s: precision %s left out, no run of the grid can use it: %s", dataset,
                   ", ".join(unused), why)


def _anchor_tasks(spec: GridSpec, dataset: str, full_dim: int, budget: int | None,
                  seed: int) -> list[RunTask]:
    """The anchors' tasks of one (budget, seed): full-dimension ones once, the others at each
    ratio; every rescore factor is a variant (their codes are never float32)."""
    tasks = []
    variants = tuple(Variant(rescore=f, rescore_with="full" if f else None)
                     for f in dict.fromkeys(spec.rescores))
    for name in spec.anchors:
        anchor = parse_anchor(name)
        for ratio in [1] if anchor.full_dim else list(spec.ratios):
            dim = _dim_of(full_dim, ratio, dataset)
            anchor.check_dim(full_dim, dim)
            base = {"dataset": decoded(dataset), "model": spec.recorded_model,
                    "method": anchor.name, "dim": dim, "budget": budget_label(budget),
                    "seed": seed}
            size = anchor.bytes_per_vector(full_dim, dim)
            keys = tuple(record_key({**base, **anchor.fields(v.rescore, size, full_dim)})
                         for v in variants)
            tasks.append(RunTask(anchor.name, dim, ratio, budget, seed, variants, keys))
    return tasks


def _warn_of_others_on_other_data(results: ResultsFile, tasks: Sequence[RunTask],
                                  fingerprint: str, name: str) -> None:
    """Warn when `results` holds runs of this dataset and model, outside this grid, that
    were computed from other data: `dive report` refuses to compare runs of two versions of
    the data (`dive.report.merge.check_one_data`), so they need a rerun too."""
    planned = {key for task in tasks for key in task.keys}
    if not planned:
        return
    ours = next(iter(planned))[:2]  # (dataset, model)
    last = {record_key(r): r for r in results.records}  # a rerun replaces, as in a report
    others = [r for key, r in last.items()
              if r.get(FINGERPRINT_FIELD, fingerprint) != fingerprint
              and key[:2] == ours and key not in planned]
    if others:
        methods = ", ".join(sorted({str(r["method"]) for r in others}))
        logger.warning(
            "%s: %d other run(s) of %s there (%s) were computed from other data and are not "
            "in this grid; dive report refuses to compare runs of two versions of the data: "
            "rerun them too, or write this grid to another results file", results.path,
            len(others), name, methods)


def _dim_of(full_dim: int, ratio: int, dataset: str) -> int:
    if full_dim % ratio:
        raise DataError(f"{dataset}: ratio {ratio} does not divide the embedding dimension "
                        f"{full_dim}", param="ratios")
    return full_dim // ratio


ProgressFn = Callable[[int, int, dict[str, Any] | None], None]


def _prepare(spec: GridSpec, name: str, folder: Path, learned: Sequence[str], *,
             ahead: bool = False) -> tuple[Dataset, Embeddings, QuerySplit, list[RunTask]]:
    """Dataset `name` (at `folder`), its embeddings, its whole-pool split and the grid's runs
    on it, every check of them made (`learned`: the grid's methods that need labelled
    queries; `ahead`: checked before the runs, so where embeddings were found is said in the
    dataset's turn, not here as well)."""
    dataset = load_beir(folder, name=name)
    emb = get_embeddings(dataset, spec.model or DEFAULT_MODEL, embeddings_dir=spec.embeddings_dir,
                         progress=spec.progress, say_found=not ahead)
    # budget all's split: its labels are the whole pool, of one size for every seed
    whole = make_split(dataset, None, spec.seeds[0])
    if learned:  # an empty pool still scores the label-free methods
        with about("methods"):
            whole.require_labels(f"{dataset.name} (for {', '.join(learned)})")
    tasks = plan(_within_pool(spec, dataset.name, whole.n_labels), dataset.name, emb.dim)
    _check_rows(tasks, dataset.name, emb.dim, emb.corpus.shape[0])
    return dataset, emb, whole, tasks


def _check_ahead(spec: GridSpec, datasets: Sequence[tuple[str, Path]],
                 learned: Sequence[str]) -> None:
    """Every check of `_prepare` on `datasets` before any run (a bad one stopped the grid after
    the others had run), each dropped once checked, so that memory holds one dataset's
    embeddings at a time: loaded again in its turn (the cost of a second parse)."""
    for name, folder in datasets:
        _prepare(spec, name, folder, learned, ahead=True)


def run_grid(
    spec: GridSpec, results: ResultsFile, progress: ProgressFn | None = None
) -> list[dict[str, Any]]:
    """Run every task not already in `results`, appending each record as it finishes.

    Returns the records of the grid (old and new) computed from the data at hand, and the
    float32 run of a full-dimension method it runs at other precisions only (frozen's, the
    reference reports keep a share of) when the results hold one: a report of the grid's
    records had no reference, where the warning of its absence had found it in the file.
    `progress(done, total, record)` is called after each task (record None when it was
    skipped as already done, else the task's last new record).
    """
    given = {os.path.normpath(name) for name in spec.datasets}  # `a/tiny/` is `a/tiny`
    if spec.embeddings_dir and len(given) != 1:
        raise DataError(f"embeddings_dir is one dataset's embeddings folder, but "
                        f"{len(given)} datasets were given", param="embeddings_dir")
    learned = []
    for method in spec.methods:  # fail fast on a bad method spec, before any work
        with about("methods"):
            if make_compressor(method, None).supervised:
                learned.append(method)
    wanted = []
    writable = False  # checked before the first run (a file that holds every run is only read)
    datasets = _distinct_datasets(spec)
    _check_ahead(spec, datasets[1:], learned)  # the first is checked as its turn starts
    for name, folder in datasets:
        dataset, emb, whole, tasks = _prepare(spec, name, folder, learned)
        fingerprint = data_fingerprint(dataset, emb)
        _check_reference_kept(spec, name, tasks, results)
        # runs whose last record, the one a report reads, is of other data: run again, so
        # that a report of the file shows this data's (one recorded earlier is not enough)
        stale = [results.fingerprint(key) for t in tasks for key in t.keys
                 if key in results and not results.current(key, fingerprint)]
        unmarked = stale.count(None)  # not other data: a dive before records carried them
        if len(stale) > unmarked:
            logger.warning(
                "%s: %d of these runs have records computed from other data (another version "
                "of %s or other embeddings); running them again", results.path,
                len(stale) - unmarked, name)
        if unmarked:
            logger.warning(
                "%s: %d of these runs have records without a data fingerprint (written before "
                "records carried one), so which data they were computed from is unknown; "
                "running them again (benchmarks/backfill_fingerprints.py in dive's repository "
                "marks such records as computed from the data at hand)", results.path, unmarked)
        _warn_of_others_on_other_data(results, tasks, fingerprint, name)
        due = [(task, variant) for task in tasks
               for variant, key in zip(task.variants, task.keys, strict=True)
               if not results.current(key, fingerprint)]
        # a package the runs due need, before the first of them (not at the first needing it)
        check_packages([t.method for t, _ in due if is_anchor(t.method)],
                       any(is_product(v.precision) for _, v in due))
        splits: dict[tuple[int | None, int], QuerySplit] = {(None, spec.seeds[0]): whole}
        unsupervised: dict[tuple[Any, ...], dict[Variant, dict[str, Any]]] = {}
        for index, task in enumerate(tasks, start=1):
            wanted += [(key, fingerprint) for key in task.keys]
            if full_dim_only(task.method):  # the reference of every share, if the file has it
                wanted.append((float32_key(task.keys[0]), fingerprint))
            todo = [(v, key) for v, key in zip(task.variants, task.keys, strict=True)
                    if not results.current(key, fingerprint)]
            for variant, key in zip(task.variants, task.keys, strict=True):
                if (variant, key) not in todo:
                    logger.info("skipped %s: already in %s", " ".join(key), results.path)
            record = None
            if todo:
                if not writable:  # now, not after the first run's work
                    results.check_writable()
                    writable = True
                split_key = (task.budget, task.seed)
                if split_key not in splits:
                    splits[split_key] = make_split(dataset, task.budget, task.seed)
                new = _run_variants(replace(task, variants=tuple(v for v, _ in todo),
                                            keys=tuple(k for _, k in todo)),
                                    dataset, emb, splits[split_key], spec, fingerprint,
                                    unsupervised)
                results.append(new)
                for record in new:
                    logger.info("%s %s d=%d budget=%s seed=%d %s rescore=%d ndcg@10=%.4f",
                                dataset.name, task.method, record["dim"], record["budget"],
                                task.seed, record["precision"], record["rescore"],
                                record["ndcg@10"])
            if progress is not None:
                progress(index, len(tasks), record)
    keys = set(wanted)
    results.refresh()  # include what other processes sharing the file recorded meanwhile
    return [r for r in results.records if (record_key(r), r.get(FINGERPRINT_FIELD)) in keys]


def _check_rows(tasks: Sequence[RunTask], dataset: str, full_dim: int, n: int) -> None:
    """DataError before the first run when the corpus's `n` rows cannot train the index a
    task builds (the PQ codes of an `opqM` precision or a faiss-pq or faiss-opq anchor, the
    PCA of a faiss-pca anchor): else the grid stopped at that task, after the runs before it."""
    for task in tasks:
        if is_anchor(task.method):
            parse_anchor(task.method).check_rows(n, full_dim, task.dim,
                                                 what=f"{dataset}: anchor {task.method}")
            continue
        for stage in dict.fromkeys(v.precision for v in task.variants):
            m = product_bytes(stage)
            if m is not None:  # the index `dive.evaluate.product.product_index` builds
                Anchor("faiss-opq", m).check_rows(n, task.dim, task.dim,
                                                  what=f"{dataset}: precision {stage}")


def _within_pool(spec: GridSpec, dataset: str, pool: int) -> GridSpec:
    """`spec` with its budgets of at least `pool` labelled queries run as budget all
    (`dive.data.splits.within_pool`)."""
    budgets = within_pool(spec.budgets, pool, dataset)
    return spec if budgets == list(spec.budgets) else replace(spec, budgets=budgets)


def _distinct_datasets(spec: GridSpec) -> list[tuple[str, Path]]:
    """The grid's datasets by name and folder, each looked up once (the lookup logs where it
    found it), one per folder (`cranfield` and its path are one dataset, run once); two
    folders known by one name (`a/tiny` and `b/tiny` are both `tiny`) are refused: records
    are keyed by that name, so their runs would be averaged as if they were seeds."""
    from dive.data.download import dataset_name, resolve_dataset

    given: dict[str, tuple[str, Path]] = {}
    for raw in spec.datasets:
        folder = resolve_dataset(raw, data_dir=spec.data_dir)
        name = dataset_name(raw, folder)
        if name not in given:
            given[name] = raw, folder
        elif given[name][1].resolve() != folder.resolve():
            raise DataError(f"{given[name][0]} and {raw} are both dataset {name!r}, the name "
                            "their records are keyed by; rename one folder")
    return [(name, folder) for name, (_, folder) in given.items()]


def _run_variants(
    task: RunTask,
    dataset: Dataset,
    emb: Embeddings,
    split: QuerySplit,
    spec: GridSpec,
    fingerprint: str,
    unsupervised: dict[tuple[Any, ...], dict[Variant, dict[str, Any]]],
) -> list[dict[str, Any]]:
    """The records of `task`'s variants: from one fit, or reused from another budget's fit.

    A method that uses no labels gives the same result for every budget that shares its
    evaluation queries: it is fitted once and recorded for each budget.
    """
    reuse_key = (task.method, task.dim, task.seed, split.eval_ids)
    done = unsupervised.get(reuse_key, {})
    if all(v in done for v in task.variants):
        return [{**done[v], "budget": budget_label(task.budget)} for v in task.variants]
    run = run_anchor if is_anchor(task.method) else run_one
    records = run(task, dataset, emb, split, spec.recorded_model, spec.top_k)
    for record in records:
        record[FINGERPRINT_FIELD] = fingerprint
    if is_anchor(task.method) or not make_compressor(task.method, task.dim).supervised:
        unsupervised.setdefault(reuse_key, {}).update(zip(task.variants, records, strict=True))
    return records
