"""The benchmark protocol: fit every method on every (dataset, ratio, budget, seed) and score it.

For each dataset the embeddings are loaded once; each (budget, seed) gives one query split
(`dive.data.splits`), shared by every method, so rows in a table differ only by method. Each
finished run becomes one record in the results file right away, with the fingerprint of the
data it was computed from (`dive.evaluate.fingerprint`); a run whose key and fingerprint are
already there is skipped (logged), so an interrupted grid resumes where it stopped, while a
record of other data (a changed dataset folder, other embeddings) is run again, with a
warning. Unsupervised methods get the same split and are recorded per budget too: the tables
then need no special cases.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dive import __version__
from dive.compressors.base import LabelledQueries, TrainingData
from dive.compressors.registry import make_compressor
from dive.data import Dataset, Qrels, load_dataset
from dive.data.splits import QuerySplit, budget_label, make_split
from dive.embed import DEFAULT_MODEL, Embeddings, get_embeddings
from dive.errors import DataError, DiveError
from dive.evaluate.fingerprint import data_fingerprint
from dive.evaluate.metrics import evaluate_run
from dive.evaluate.records import FINGERPRINT_FIELD, ResultsFile, record_key
from dive.evaluate.search import search

logger = logging.getLogger(__name__)

FULL_DIM_METHODS = frozenset({"frozen"})


@dataclass(frozen=True)
class GridSpec:
    """What to run: the cross product of these lists."""

    datasets: Sequence[str]
    methods: Sequence[str]
    ratios: Sequence[int] = (2, 4, 8, 16)
    budgets: Sequence[int | None] = (16, 64, 256, None)
    seeds: Sequence[int] = (0, 1, 2)
    model: str = DEFAULT_MODEL
    data_dir: str | None = None
    embeddings_dir: str | None = None  # one embeddings folder; only with a single dataset
    top_k: int = 100

    def __post_init__(self) -> None:
        # Checked before any run, so a bad value cannot stop a grid after it recorded some.
        for name in ("datasets", "methods", "ratios", "budgets", "seeds"):
            if not list(getattr(self, name)):
                raise DiveError(f"grid: no {name} given")
        for name, minimum in (("ratios", 1), ("seeds", 0), ("top_k", 1)):
            value = getattr(self, name)
            for v in value if isinstance(value, Sequence) else [value]:
                if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
                    raise DiveError(f"grid: {name} must be integers >= {minimum}, got {v!r}")


@dataclass
class RunTask:
    """One (method, dim, budget, seed) fit on one dataset."""

    method: str
    dim: int
    ratio: int
    budget: int | None
    seed: int
    key: tuple[Any, ...] = field(default=())


def labelled_queries(ids: Sequence[str], qrels: Qrels, emb: Embeddings) -> LabelledQueries:
    """Query embeddings plus their relevant corpus rows, for a supervised fit."""
    row_of = {doc_id: row for row, doc_id in enumerate(emb.corpus_ids)}
    relevant = []
    for query_id in ids:
        docs = qrels[query_id]
        relevant.append({row_of[d]: g for d, g in docs.items() if g > 0 and d in row_of})
    return LabelledQueries(emb.query_rows(ids), tuple(relevant), tuple(ids))


def training_data(split: QuerySplit, emb: Embeddings) -> TrainingData:
    validation = (
        labelled_queries(split.validation_ids, split.label_qrels, emb)
        if split.validation_ids
        else None
    )
    return TrainingData(labelled_queries(split.train_ids, split.label_qrels, emb), validation)


def run_one(
    task: RunTask, dataset: Dataset, emb: Embeddings, split: QuerySplit, model: str, top_k: int
) -> dict[str, Any]:
    """Fit one compressor, retrieve for the evaluation queries, return its record."""
    compressor = make_compressor(task.method, task.dim, task.seed)
    train = training_data(split, emb) if compressor.supervised else None
    start = time.perf_counter()
    compressor.fit(emb.corpus, train)
    fit_seconds = time.perf_counter() - start
    queries = emb.query_rows(split.eval_ids)
    run = search(
        compressor.transform(queries),
        compressor.transform(emb.corpus),
        split.eval_ids,
        emb.corpus_ids,
        k=top_k,
    )
    scores = evaluate_run(run, split.eval_qrels)
    return {
        "dataset": dataset.name,
        "model": model,
        "method": task.method,
        "dim": compressor.fitted_runtime().output_dim,
        "ratio": task.ratio,
        "budget": budget_label(task.budget),
        "seed": task.seed,
        **{name: float(value) for name, value in scores.items()},
        "fit_seconds": round(fit_seconds, 4),
        "n_params": compressor.n_params,
        "config": compressor.config(),
        "n_train": len(split.train_ids) if compressor.supervised else 0,
        "n_validation": len(split.validation_ids) if compressor.supervised else 0,
        "n_labels": split.n_labels if compressor.supervised else 0,
        "n_eval": len(split.eval_ids),
        "label_source": split.source,
        "diagnostics": compressor.fit_info_.diagnostics,
        "version": __version__,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def plan(spec: GridSpec, dataset: str, full_dim: int) -> list[RunTask]:
    """Every run of the grid on one dataset (frozen once per budget and seed)."""
    tasks = []
    for budget in spec.budgets:
        for seed in spec.seeds:
            for method in spec.methods:
                name = method.split(":", 1)[0]
                ratios = [1] if name in FULL_DIM_METHODS else list(spec.ratios)
                for ratio in ratios:
                    if full_dim % ratio:
                        raise DataError(
                            f"ratio {ratio} does not divide the embedding dimension {full_dim}"
                        )
                    dim = full_dim // ratio
                    key = (dataset, spec.model, method, dim, budget_label(budget), seed)
                    tasks.append(RunTask(method, dim, ratio, budget, seed, tuple(map(str, key))))
    return tasks


ProgressFn = Callable[[int, int, dict[str, Any] | None], None]


def run_grid(
    spec: GridSpec, results: ResultsFile, progress: ProgressFn | None = None
) -> list[dict[str, Any]]:
    """Run every task not already in `results`, appending each record as it finishes.

    Returns the records of the grid (old and new) computed from the data at hand.
    `progress(done, total, record)` is called after each task (record None when it was
    skipped as already done).
    """
    if spec.embeddings_dir and len(spec.datasets) != 1:
        raise DataError("--embeddings names one folder: use it with a single --dataset")
    for method in spec.methods:  # fail fast on a bad method spec, before any work
        make_compressor(method, None)
    wanted = []
    for name in spec.datasets:
        dataset = load_dataset(name, data_dir=spec.data_dir)
        emb = get_embeddings(dataset, spec.model, embeddings_dir=spec.embeddings_dir)
        fingerprint = data_fingerprint(dataset, emb)
        tasks = plan(spec, dataset.name, emb.dim)
        stale = sum(bool(results.fingerprints(t.key) - {fingerprint}) for t in tasks)
        if stale:
            logger.warning(
                "%s: %d of these runs have records computed from other data (another version "
                "of %s or other embeddings); running them again", results.path, stale, name)
        splits: dict[tuple[int | None, int], QuerySplit] = {}
        unsupervised: dict[tuple[Any, ...], dict[str, Any]] = {}
        for index, task in enumerate(tasks, start=1):
            wanted.append((task.key, fingerprint))
            record = None
            if fingerprint in results.fingerprints(task.key):
                logger.info("skipped %s: already in %s", " ".join(task.key), results.path)
            else:
                split_key = (task.budget, task.seed)
                if split_key not in splits:
                    splits[split_key] = make_split(dataset, task.budget, task.seed)
                split = splits[split_key]
                # A method that uses no labels gives the same result for every budget that
                # shares its evaluation queries: fit it once and record it for each budget.
                reuse_key = (task.method, task.dim, task.seed, split.eval_ids)
                if reuse_key in unsupervised:
                    record = {**unsupervised[reuse_key], "budget": budget_label(task.budget)}
                else:
                    record = run_one(task, dataset, emb, split, spec.model, spec.top_k)
                    record[FINGERPRINT_FIELD] = fingerprint
                    if not make_compressor(task.method, task.dim).supervised:
                        unsupervised[reuse_key] = record
                results.append([record])
                logger.info(
                    "%s %s d=%d budget=%s seed=%d ndcg@10=%.4f",
                    dataset.name,
                    task.method,
                    record["dim"],
                    record["budget"],
                    task.seed,
                    record["ndcg@10"],
                )
            if progress is not None:
                progress(index, len(tasks), record)
    keys = set(wanted)
    results.refresh()  # include what other processes sharing the file recorded meanwhile
    return [r for r in results.records if (record_key(r), r.get(FINGERPRINT_FIELD)) in keys]
