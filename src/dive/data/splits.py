"""Label budgets and query splits (SPEC section 3).

For a dataset with a `train` split, a seed fixes one permutation of its labelled queries and a
budget of n takes its first n, so smaller budgets are subsets of larger ones; evaluation uses
every `test` query. Without a train split, the seed splits the test queries 50/50 into a
training pool and an evaluation half, the same for every method. Either way 20% of the
labelled queries (at least 4) are held out for validation, none when there are fewer than 8.
A budget larger than the labelled pool uses the whole pool, with a warning; `n_labels` says
how many were used (the benchmark grid runs and records such a budget as `all`:
`dive.evaluate.protocol`).
Nothing here ever puts an evaluation query in the training or validation sets.

`dev=True` is for tuning defaults without touching evaluation queries: the labelled pool
itself is split 50/50 by the seed, its first half giving the labels and its second half
the queries scored; that seed's evaluation queries are never used. Without a train split
each seed draws its own evaluation half, so dev runs at other seeds do read it
(`benchmarks/dev_overlap.py` counts how much); with one, dev runs read train queries only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from dive.arrays import SEED_LIMIT, is_integer, is_integer_text
from dive.data.beir import Dataset, Qrels
from dive.errors import DataError, DiveError

S = TypeVar("S", list[str], np.ndarray[Any, Any])  # shuffled ids, or shuffled rows

logger = logging.getLogger(__name__)

VALIDATION_FRACTION = 0.2
MIN_VALIDATION = 4
MIN_LABELS_FOR_VALIDATION = 8


@dataclass(frozen=True)
class QuerySplit:
    """Which queries a run may train on, validate on, and is scored on."""

    train_ids: tuple[str, ...]
    validation_ids: tuple[str, ...]
    eval_ids: tuple[str, ...]
    label_qrels: Qrels  # judgments of the train and validation queries
    eval_qrels: Qrels  # judgments of the evaluation queries
    source: str  # "train" or "test-half": where the labelled queries came from
    # the split's queries that are documents too, never a hit for themselves
    # (`Dataset.identical_ids`)
    identical_ids: frozenset[str] = frozenset()

    @property
    def n_labels(self) -> int:
        """Labelled queries actually used (train + validation): a budget above the pool caps."""
        return len(self.train_ids) + len(self.validation_ids)

    def require_labels(self, dataset: str) -> None:
        """`DataError` when the split has no labelled query for a supervised fit (a pool
        can be empty: label-free methods are still scored on its evaluation queries)."""
        if not self.n_labels:
            raise DataError(f"{dataset}: no labelled training queries in its {self.source} "
                            "split")


def parse_budget(text: str | int | None) -> int | None:
    """`"all"`/None -> None (every labelled query); otherwise a positive int."""
    if text is None or (isinstance(text, str) and text.strip().lower() == "all"):
        return None
    try:
        if not (isinstance(text, str) or is_integer(text)):
            raise ValueError  # 2.7 or True is not a count of queries
        if isinstance(text, str) and not is_integer_text(text.strip()):
            raise ValueError  # int() also reads "1_0" as 10, and other scripts' digits
        value = int(text)
    except ValueError:
        raise DiveError(f"label budget must be a positive integer or 'all', got {text!r}") from None
    if value <= 0:
        raise DiveError(f"label budget must be a positive integer or 'all', got {value}")
    return value


def within_pool(budgets: Sequence[int | None], pool: int, dataset: str) -> list[int | None]:
    """`budgets` with those of at least `pool` labelled queries as None (budget all), each
    once: such a budget trains on the whole pool, and recorded under its number it was a
    row repeating all's run. Said in a warning."""
    over = [b for b in budgets if b is not None and b >= pool]
    if over:
        logger.warning("%s: label budget%s %s %s not below its %d labelled queries: run as "
                       "budget all", dataset, "s" if len(over) > 1 else "",
                       ", ".join(map(str, over)), "are" if len(over) > 1 else "is", pool)
    return list(dict.fromkeys(None if b is None or b >= pool else b for b in budgets))


def budget_label(budget: int | None) -> str:
    return "all" if budget is None else str(budget)


def _answerable(judged: dict[str, int], corpus: set[str]) -> bool:
    """Whether a query's judgments name a relevant (grade > 0) document of the corpus."""
    return any(g > 0 and doc in corpus for doc, g in judged.items())


def _unanswerable(qrels: Qrels, known: set[str], corpus: set[str]) -> list[str]:
    """Query ids judged with no relevant (grade > 0) document in the corpus, sorted."""
    return sorted(q for q, docs in qrels.items() if q in known and not _answerable(docs, corpus))


def _labelled(qrels: Qrels, known: set[str], corpus: set[str]) -> list[str]:
    """Query ids with a relevant (grade > 0) document in the corpus, sorted for determinism:
    one whose relevant documents the corpus lacks teaches nothing (a budget drew it, and the
    fit then left it out, or had no query left)."""
    return sorted(q for q, docs in qrels.items() if q in known and _answerable(docs, corpus))


def n_validation(n_labels: int) -> int:
    if n_labels < MIN_LABELS_FOR_VALIDATION:
        return 0
    return max(MIN_VALIDATION, round(VALIDATION_FRACTION * n_labels))


def hold_out(chosen: S) -> tuple[S, S]:
    """Shuffled labels as (training, validation): the last `n_validation` of them validate."""
    cut = len(chosen) - n_validation(len(chosen))
    return chosen[:cut], chosen[cut:]


def make_split(
    dataset: Dataset, budget: int | None, seed: int, *, dev: bool = False, measured: bool = True
) -> QuerySplit:
    """The seeded split for one (dataset, budget, seed); `dev`: see the module docstring.
    `measured=False` (a fit, which scores nothing): a dataset with train qrels needs no test
    qrels; its labels come from train alone, as they do beside test qrels."""
    if not is_integer(seed) or not 0 <= seed < SEED_LIMIT:  # numpy's ValueError named no seed
        raise DiveError(f"seed must be an integer in 0..2**63-1, got {seed!r}")
    known, corpus = set(dataset.query_ids), set(dataset.corpus_ids)
    test = {} if not measured and "test" not in dataset.qrels and "train" in dataset.qrels \
        else dataset.split("test")
    unanswerable = _unanswerable(test, known, corpus)
    rng = np.random.default_rng(seed)
    if "train" in dataset.qrels:
        source, train_qrels = "train", dataset.qrels["train"]
        eval_ids = sorted(q for q in test if q in known)
        labelled = _labelled(train_qrels, known, corpus)
        useless = _unanswerable(train_qrels, known, corpus)
        if useless:
            logger.warning("%s: %d train queries (e.g. %r) are judged with no relevant document "
                           "in the corpus; they teach nothing and are left out of the labelled "
                           "pool", dataset.name, len(useless), useless[0])
        tested = set(eval_ids).intersection(labelled)
        if tested:  # scored on, so never trained on (or tuned on, with dev)
            logger.warning("%s: %d queries judged in both its train and test qrels (e.g. %r) "
                           "are left out of the labelled pool", dataset.name, len(tested),
                           min(tested))
            labelled = [q for q in labelled if q not in tested]
        pool = [labelled[i] for i in rng.permutation(len(labelled))]
    else:
        source, train_qrels = "test-half", test
        labelled = _labelled(test, known, corpus)
        shuffled = [labelled[i] for i in rng.permutation(len(labelled))]
        half = len(shuffled) // 2
        # a query judged with no relevant document in the corpus teaches nothing, but is
        # measured (0) as with a train split and in BEIR's evaluation; it was left out of both
        # halves
        pool, eval_ids = shuffled[:half], sorted({*shuffled[half:], *unanswerable})
    if unanswerable:
        logger.warning("%s: %d test queries (e.g. %r) are judged with no relevant document "
                       "in the corpus; each is measured, scoring 0, as in BEIR's evaluation",
                       dataset.name, len(unanswerable), unanswerable[0])
    eval_qrels = test
    if dev:
        half = len(pool) // 2
        pool, eval_ids = pool[:half], sorted(pool[half:])
        source, eval_qrels = f"{source}-dev", train_qrels
    if budget is not None and budget > len(pool):
        logger.warning("%s: label budget %d exceeds the %d labelled queries of its %s split; "
                       "using all %d", dataset.name, budget, len(pool), source, len(pool))
    chosen = pool if budget is None else pool[:budget]
    train_ids, validation_ids = hold_out(chosen)
    return QuerySplit(
        train_ids=tuple(train_ids),
        validation_ids=tuple(validation_ids),
        eval_ids=tuple(eval_ids),
        label_qrels={q: train_qrels[q] for q in chosen},
        eval_qrels={q: eval_qrels[q] for q in eval_ids},
        source=source,
        identical_ids=dataset.identical_ids().intersection((*chosen, *eval_ids)),
    )
