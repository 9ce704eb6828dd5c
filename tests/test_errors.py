"""dive's errors cross process boundaries whole: multiprocessing, joblib and Ray pickle a
worker's exception to raise it in the parent."""

from __future__ import annotations

import multiprocessing
import pickle

import numpy as np
import pytest

import dive
from dive.arrays import BadRowError
from dive.errors import DataError, DiveError, TrainingDiverged
from dive.scale.formats import BadRow


@pytest.mark.parametrize("error", [
    BadRowError("input", 3, "is all zeros"),
    BadRow("x.parquet: the row with id 'd3' is all zeros", 3, "is all zeros"),
    TrainingDiverged("the loss is nan at step 2"),
    DiveError("overwrite must be True or False", param="overwrite"),
])
def test_an_error_unpickles_as_it_was(error: DiveError) -> None:
    """`BadRowError(message)` was a TypeError (its `__init__` takes the row and problem), and
    `TrainingDiverged` wrapped its message a second time."""
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and str(again) == str(error)
    assert again.__dict__ == error.__dict__


def test_a_bad_row_in_a_pool_worker_is_raised_in_the_parent() -> None:
    """The pool's result thread died on the unpicklable error and `map` waited forever."""
    corpus = np.random.default_rng(0).standard_normal((400, 32)).astype(np.float32)
    model = dive.fit(corpus, method="pca", dim=8)
    rows = corpus.copy()
    rows[250] = 0.0
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        result = pool.map_async(model.transform, np.array_split(rows, 4))
        with pytest.raises(DataError, match=r"^input: row 50 has norm 0"):
            result.get(timeout=60)
