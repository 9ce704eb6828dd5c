"""The compressor contract and the registry of methods by name.

Every method, the benchmark and every export speak only through this contract
(scikit-learn style):

- `__init__` stores hyper-parameters and nothing else;
- `fit(corpus, train=None)` learns from corpus embeddings (unsupervised signal) and, for
  supervised methods, labelled queries; it returns `self` and sets `runtime_`;
- `transform(X)` maps (n, D) float32 to L2-normalised (n, d) float32 through `runtime_`,
  so every export computes the same thing and results do not depend on batch size beyond
  float32 rounding (about 1e-7: BLAS takes another path for a single row than for a batch).

Inputs (corpus, queries, `X`) are L2-normalised float embeddings: rows whose norm is off 1 by
more than 1e-3 are normalised on entry, a row that cannot be (all zeros) raises `DataError`
with its row number, and integer or bool arrays are refused rather than cast.

A new method is one module with a `Compressor` subclass plus one line in `REGISTRY`
(`dive.compressors.registry`). What callers need to know about a method is declared on its
class (`family`, `supervised`, `full_dim_only`, `training_free_reference`, `extension`) and
read through `dive.compressors.registry.method_facts`, so no caller lists method names.
A long fit may report its stages at INFO on `PROGRESS_LOGGER` (`dive fit` shows them).
"""

from __future__ import annotations

import copy
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal, get_args

import numpy as np

from dive.arrays import SEED_LIMIT, as_unit_rows, check_floating, is_integer
from dive.compressors.runtime import Runtime
from dive.errors import DataError, DiveError, NotFittedError, kind_of

PROGRESS_LOGGER = "dive.fit.progress"  # one line per stage of a long fit
logger = logging.getLogger(__name__)

# What kind of method a class is, in the order results list them: the uncompressed reference,
# the training-free compressors, the published learned baselines, then ours.
Family = Literal["reference", "classical", "baseline", "learned"]
FAMILIES: tuple[Family, ...] = get_args(Family)


def checked_seed(method: str, seed: object) -> int:
    """`seed` as a plain int, or `DiveError` naming `method` unless it is an integer in
    0..2**63-1 (numpy's generators take no other)."""
    if not is_integer(seed):
        raise DiveError(f"{method}: seed must be an integer, got {seed!r}")
    if not 0 <= int(seed) < SEED_LIMIT:
        raise DiveError(f"{method}: seed must be in 0..2**63-1, got {seed}")
    return int(seed)


@dataclass(frozen=True)
class LabelledQueries:
    """Query embeddings with their judged-relevant documents as corpus row indices."""

    embeddings: np.ndarray  # (m, D) float32, L2-normalised
    relevant: tuple[dict[int, int], ...]  # per query: corpus row -> grade (> 0 only)
    ids: tuple[str, ...] = ()
    # per query, the corpus row it never retrieves (-1: none; empty: no query has one): the
    # document with its own id, which the evaluation leaves out (BEIR's ignore_identical_ids)
    exclude: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.embeddings, np.ndarray) or self.embeddings.ndim != 2:
            got = (f"shape {self.embeddings.shape}" if isinstance(self.embeddings, np.ndarray)
                   else kind_of(self.embeddings))
            raise DataError(f"labelled queries: embeddings must be a 2-d numpy array (m, D), "
                            f"got {got}")
        for i, rel in enumerate(self.relevant):
            if not isinstance(rel, Mapping):
                raise DataError(f"labelled queries: query {i} has {kind_of(rel)}, expected "
                                "{corpus row: grade}")
            # only integers: int() would turn row 3.7 into 3, or grade 0.5 into 0, silently
            bad = [v for v in (*rel, *rel.values()) if not is_integer(v)]
            if bad:
                raise DataError(f"labelled queries: query {i} has {bad[0]!r}; corpus rows and "
                                "grades are integers")
        if self.embeddings.shape[0] != len(self.relevant):
            raise DataError(
                f"labelled queries: {self.embeddings.shape[0]} embeddings but "
                f"{len(self.relevant)} relevance lists"
            )
        # any sequence of rows, kept as plain ints: a numpy array has no truth value, and
        # int() would take row 1.5 or True as row 1
        exclude = tuple(self.exclude)
        for i, row in enumerate(exclude):
            if not is_integer(row):
                raise DataError(f"labelled queries: query {i} excludes {row!r}; an excluded "
                                "corpus row is an integer (-1: none)")
        object.__setattr__(self, "exclude", tuple(int(row) for row in exclude))
        if self.exclude and len(self.exclude) != len(self.relevant):
            raise DataError(
                f"labelled queries: {len(self.exclude)} excluded rows for "
                f"{len(self.relevant)} queries"
            )

    def excluded(self) -> np.ndarray | None:
        """`exclude` as `dive.evaluate.search.top_k` takes it (None when it is empty)."""
        return np.asarray(self.exclude, dtype=np.int64) if self.exclude else None

    def __len__(self) -> int:
        return len(self.relevant)


def _out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` is an allocation that failed (Python's MemoryError, or torch's
    RuntimeError saying so, on the CPU or a GPU: C++'s `std::bad_alloc` too; or a thread of
    the fit's workers that could not get its stack)."""
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and any(
            said in text for said in ("not enough memory", "out of memory", "can't allocate",
                                      "bad_alloc", "can't start new thread")))


def _last_line(exc: BaseException) -> str:
    """The last line of `exc`'s message (torch's ends a traceback of its own with it), or its
    type's name when it has none (a MemoryError in an import)."""
    lines = str(exc).strip().splitlines()
    return lines[-1][:200] if lines else type(exc).__name__


def require_relevant(relevant: Sequence[Mapping[int, int]], name: str) -> None:
    """Raise `DataError` naming `name` unless some query has a relevant row (a grade above 0):
    a supervised fit on none would train label-free, as if on the labels."""
    if not any(grade > 0 for rel in relevant for grade in rel.values()):
        raise DataError(f"{name}: no query has a relevant row (a grade above 0)")


@dataclass(frozen=True)
class TrainingData:
    """Labels a supervised fit may use: a training set and an optional validation set."""

    train: LabelledQueries
    validation: LabelledQueries | None = None

    def __post_init__(self) -> None:
        for name, value in (("train", self.train), ("validation", self.validation)):
            if not isinstance(value, LabelledQueries) and (name == "train" or value is not None):
                raise DiveError(f"training data: {name} must be LabelledQueries, got "
                                f"{kind_of(value)} (without labels, fit without TrainingData)")
        if len(self.train) == 0 and not self.validation:  # a supervised fit would run label-free
            raise DataError("training data: no labelled queries (train is empty and there is "
                            "no validation set); to fit without labels, pass no TrainingData")


@dataclass(frozen=True)
class FitSummary:
    """What every learned fit reports, in the same fields (the CLI, records and saved config
    read these; `FitInfo.diagnostics` keeps each method's extra detail).

    Scores are the mean nDCG@10 on the labelled queries the fit chose its model on (none of
    them trained the runs that were scored). A fit in stages (Matryoshka-Adaptor, SMEC)
    reports its last stage, the one that chose the model it returns.
    """

    validation_curve: tuple[tuple[int, float], ...]  # (step, mean score) per check; 0: start
    best_step: int  # training steps behind the returned model (0: the start was kept)
    steps_run: int  # steps the run behind the curve trained (>= best_step)
    selected: dict[str, Any]  # what was kept, JSON-ready (start, arm or grid setting)
    n_queries: int  # labelled queries the choice was made on (0: nothing was chosen on them)
    validation_score: float | None  # of what was kept, on them (DIVE: out-of-fold, pre-refit)
    start_score: float | None  # of the start its training began from, on the same queries
    # (a fit in stages: its last stage's start, which the earlier stages trained)
    seconds: float  # wall time of the fit

    metric: ClassVar[str] = "ndcg@10"

    def __post_init__(self) -> None:
        if not 0 <= self.best_step <= self.steps_run:
            raise ValueError(f"best_step {self.best_step} is not in 0..{self.steps_run}")
        scored = (self.validation_score is not None, self.start_score is not None)
        if scored != (self.n_queries > 0,) * 2:
            raise ValueError("a validation score and its start's need the queries they were "
                             "measured on, and queries need both scores")

    def as_record(self) -> dict[str, Any]:
        """JSON-ready fields for a results record or a saved config (scores to 6 places)."""

        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 6)

        return {
            "metric": self.metric,
            "validation_score": rounded(self.validation_score),
            "start_score": rounded(self.start_score),
            "n_queries": self.n_queries,
            "best_step": self.best_step,
            "steps_run": self.steps_run,
            "selected": copy.deepcopy(self.selected),
            "validation_curve": [[step, round(score, 6)] for step, score in self.validation_curve],
            "seconds": round(self.seconds, 4),
        }


# What a learned fit's torch side returns for its summary: the summary given the fit's wall
# time in seconds, which the compressor measures around it.
Summarise = Callable[[float], FitSummary]


@dataclass
class FitInfo:
    """What a fit reports beside its model: typed for every learned fit, free-form detail."""

    diagnostics: dict[str, Any] = field(default_factory=dict)  # extra detail for the record
    summary: FitSummary | None = None  # set by every learned fit (None: training-free)
    config: dict[str, Any] = field(default_factory=dict)  # `config()` as the model was fitted


class Compressor(ABC):
    """Maps D-dim embeddings to `dim`-dim L2-normalised ones (the contract every method keeps).

    Subclasses set `method` (the registry name), `family` and the facts below that differ from
    the defaults, implement `_fit`, and may override `config` to expose extra hyper-parameters.

    Parameters
    ----------
    dim : int or None, default=None
        Output dimension d, in 1..D; None keeps the input dimension D.
    seed : int, default=0
        Seed of every random choice the fit makes (same seed, same inputs: same model).

    Attributes
    ----------
    method : str
        The registry name (`make_compressor` and the results records use it).
    supervised : bool
        Whether `fit` learns from labelled queries (`train`); others ignore them.
    runtime_ : Runtime
        The fitted numpy map that `transform` applies (set by `fit`).
    fit_info_ : FitInfo
        What the fit reports beside the model (set by `fit`): for learned methods a
        `FitSummary` (validation score and curve, best step, what was selected...), and
        free-form diagnostics for the results record.
    n_params : int
        Parameters used at inference time (the runtime's arrays).

    Examples
    --------
    >>> import numpy as np
    >>> from dive.compressors import PCA
    >>> corpus = np.random.default_rng(0).standard_normal((200, 32)).astype(np.float32)
    >>> pca = PCA(dim=8).fit(corpus)
    >>> small = pca.transform(corpus[:5])
    >>> small.shape, small.dtype, bool(np.allclose(np.linalg.norm(small, axis=1), 1))
    ((5, 8), dtype('float32'), True)
    >>> pca.n_params  # an 8 x 32 projection and a centre of 32
    288
    >>> pca
    PCA(dim=8, seed=0)
    """

    method: ClassVar[str]
    family: ClassVar[Family]  # every method declares one (see FAMILIES)
    supervised: ClassVar[bool] = False  # fits on labelled queries when given them
    full_dim_only: ClassVar[bool] = False  # runs at the input dimension only (one run a cell)
    training_free_reference: ClassVar[bool] = False  # other rows' gains are measured against it
    extension: ClassVar[bool] = False  # ours beyond a published method: run when named only

    def __init__(self, dim: int | None = None, seed: int = 0) -> None:
        self.dim = dim
        self.seed = seed

    def config(self) -> dict[str, Any]:
        """Hyper-parameters as JSON-ready values (recorded with results and saved models)."""
        return {"dim": self.dim, "seed": self.seed}

    def fit(self, corpus: np.ndarray, train: TrainingData | None = None) -> Compressor:
        """Learn the compression from corpus embeddings (and labels if supervised)."""
        if self.dim is not None:
            if not is_integer(self.dim):
                raise DiveError(f"{self.method}: dim must be an integer, got {self.dim!r}")
            self.dim = int(self.dim)  # a numpy integer is recorded as a plain int
        self.seed = checked_seed(self.method, self.seed)
        if train is not None and not isinstance(train, TrainingData):
            raise DiveError(f"{self.method}: train must be a TrainingData, got {kind_of(train)}")
        check_floating(corpus, name="corpus embeddings")
        corpus = as_unit_rows(corpus, name="corpus embeddings")
        if corpus.shape[0] == 0:
            raise DataError("corpus embeddings: empty (0 rows)")
        # a full-dimension method ignores `dim` (a refit on other data held the last one)
        if self.dim is not None and not self.full_dim_only and not 0 < self.dim <= corpus.shape[1]:
            raise DataError(
                f"{self.method}: dim must be in 1..{corpus.shape[1]} (the input dimension), "
                f"got {self.dim}"
            )
        if train is not None:
            train = _unit_training_data(train, corpus.shape[1])
        if self.full_dim_only:
            self.dim = corpus.shape[1]  # what it keeps, whatever it was given
        previous = getattr(self, "fit_info_", None)
        self.fit_info_ = FitInfo()  # `_fit` fills it in
        try:
            runtime = self._fit(corpus, train).without_identity_adapter()
            unranked = runtime.unranked_rows(corpus)
            if unranked.size == corpus.shape[0]:  # PCA and DIVE said so; others saved it
                raise DataError(f"{self.method}: every corpus row's output is 0 (no part in "
                                "the compressed space), so it could rank nothing; the inputs "
                                "do not vary along what it keeps")
        except BaseException as exc:
            if previous is not None:  # a failed refit keeps the model it had, and its record
                self.fit_info_ = previous
            if _out_of_memory(exc):  # e.g. hidden=100000000: torch's allocator traceback
                raise DataError(f"{self.method}: out of memory while fitting "
                                f"({_last_line(exc)}); its layers "
                                "(hidden, heads) or batches are too large for this machine"
                                ) from None
            raise
        self.runtime_ = runtime
        # dim None (keep D) is recorded as the D it kept: a saved model said `dim: null`
        self.fit_info_.config = {**self.config(), "dim": runtime.output_dim}
        if unranked.size:  # compress, index and evaluate refuse them: said at the fit
            logger.warning("%s: %d corpus row(s) have no part in the compressed space (the "
                           "first: row %d): compressing them is refused, as no score can rank "
                           "them", self.method, unranked.size, int(unranked[0]))
        return self

    @abstractmethod
    def _fit(self, corpus: np.ndarray, train: TrainingData | None) -> Runtime:
        """Return the fitted runtime; a learned fit sets `self.fit_info_.summary` and may add
        to `self.fit_info_.diagnostics`."""

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Compress (n, D) float embeddings to L2-normalised (n, d) float32."""
        runtime = self.fitted_runtime()
        check_floating(x, name="input")
        return runtime(x)

    def fitted_runtime(self) -> Runtime:
        runtime: Runtime | None = getattr(self, "runtime_", None)
        if runtime is None:
            raise NotFittedError(f"{self.method}: not fitted yet; call fit() first")
        return runtime

    def fitted_config(self) -> dict[str, Any]:
        """The hyper-parameters the fitted model was made with (`config()` at its fit), what a
        saved model records: a parameter edited since (`model.dim = 16`, a refit refused)
        describes no model until the next fit succeeds."""
        self.fitted_runtime()  # NotFittedError before any fit
        return dict(self.fit_info_.config)

    @property
    def n_params(self) -> int:
        """Parameters used at inference time (the runtime's arrays)."""
        return self.fitted_runtime().n_params

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


def _unit_training_data(train: TrainingData, dim: int) -> TrainingData:
    """`train` with its query embeddings checked and L2-normalised (see `as_unit_rows`)."""

    def unit(queries: LabelledQueries, name: str) -> LabelledQueries:
        check_floating(queries.embeddings, name=name)
        embeddings = as_unit_rows(queries.embeddings, name=name, dim=dim)
        return replace(queries, embeddings=embeddings)

    validation = train.validation
    return TrainingData(unit(train.train, "training queries"),
                        None if validation is None else unit(validation, "validation queries"))
