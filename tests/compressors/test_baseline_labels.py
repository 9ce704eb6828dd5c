"""The learned baselines train on the labelled queries they can: one whose judged documents
are all missing from the corpus is left out, as DIVE leaves it out."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from dive.compressors import LabelledQueries, TrainingData, make_compressor

FAST = {"smec": "stage_steps=10:eval_every=10"}  # the others train `steps`


@pytest.mark.parametrize("method", ["matryoshka-adaptor", "search-adaptor", "smec"])
def test_a_query_without_a_relevant_document_is_left_out_of_a_baseline_fit(
    method: str, corpus: np.ndarray, make_labels: Callable[..., TrainingData],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Its judged documents are not in the corpus (BEIR's ArguAna has such): the fit is the
    one without it, where ranking candidates for it raised a bare ValueError."""
    train = make_labels(24).train
    spec = f"{method}:{FAST.get(method, 'steps=20:eval_every=10')}"
    plain = make_compressor(spec, 4).fit(corpus, TrainingData(train))
    orphan = LabelledQueries(np.vstack([train.embeddings, corpus[:1]]), (*train.relevant, {}))
    model = make_compressor(spec, 4).fit(corpus, TrainingData(orphan))
    np.testing.assert_array_equal(model.transform(corpus), plain.transform(corpus))
    assert "1 of 25 training queries have no relevant document in the corpus" in caplog.text
