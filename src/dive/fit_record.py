"""What a model fitted on a dataset records of its fit: the saved config's `training`.

`fit_on_dataset` fits a compressor on a dataset's embeddings (and, for a supervised method,
its seeded label split) and returns the record `dive fit` and `dive.fit` keep: the dataset,
the embedding model (`model`, as `dive.embed.encode.model_label` names it, a local model
folder by its resolved path: what `dive index` and `dive search` compare with the meta.json
of the embeddings they are given, to warn about another model's, and what `dive search
--query` embeds with; `imported: True` when the embeddings were imported, their `model` only
a label, so `dive search --query` asks for one), the seed, the corpus size, the label budget
and split sizes (a supervised method; `budget: None`, `n_train: 0` otherwise), the fit's wall
time and a learned fit's `FitSummary` (`fit`). The record stays on the compressor (`DatasetFitInfo`,
its `fit_info_`), so `dive.save` writes it without being told; fitting the compressor again
replaces its `fit_info_` and so drops the record.

Left out: fits on arrays (nothing says which model made them; they record `fit` only), and
where the embeddings come from (`dive.embed.get_embeddings`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dive.compressors.base import FitInfo

if TYPE_CHECKING:
    from dive.compressors.base import Compressor
    from dive.data.beir import Dataset
    from dive.embed.store import Embeddings


@dataclass
class DatasetFitInfo(FitInfo):
    """`FitInfo` of a fit on a dataset, with the record a saved model keeps as `training`."""

    training: dict[str, Any] = field(default_factory=dict)


def fit_on_dataset(compressor: Compressor, dataset: Dataset, emb: Embeddings, *,
                   model_name: str, budget: int | None, seed: int) -> dict[str, Any]:
    """Fit `compressor` on `dataset`'s embeddings `emb` (made with `model_name`); return the
    training record, also kept on `compressor.fit_info_` (a `DatasetFitInfo`).

    A supervised method learns from `budget` labelled queries (None: all) drawn with `seed`
    (`dive.data.splits.make_split`); the others from the corpus alone.
    """
    from dive.arrays import decoded
    from dive.data.splits import budget_label, make_split, within_pool
    from dive.embed.encode import model_label
    from dive.evaluate.protocol import training_data

    record: dict[str, Any] = {"dataset": decoded(dataset.name), "model": model_label(model_name),
                              "seed": seed, "n_corpus": int(emb.corpus.shape[0])}
    if emb.meta.get("imported_from"):  # vectors made elsewhere: `model` is their label
        record["imported"] = True
    train = None
    if compressor.supervised:
        pool = make_split(dataset, None, seed, measured=False).n_labels
        budget, = within_pool([budget], pool, dataset.name)  # recorded as evaluate records it
        split = make_split(dataset, budget, seed, measured=False)  # no test qrels needed
        split.require_labels(dataset.name)
        train = training_data(split, emb)
        record.update(budget=budget_label(budget), n_labels=split.n_labels,
                      n_train=len(split.train_ids), n_validation=len(split.validation_ids),
                      label_source=split.source)
    else:
        record.update(budget=None, n_train=0)  # unsupervised: no labels were used
    start = time.perf_counter()
    compressor.fit(emb.corpus, train)
    record["fit_seconds"] = round(time.perf_counter() - start, 4)
    info = compressor.fit_info_
    if info.summary is not None:
        record["fit"] = info.summary.as_record()
    compressor.fit_info_ = DatasetFitInfo(diagnostics=info.diagnostics, summary=info.summary,
                                          config=info.config, training=record)
    return dict(record)
