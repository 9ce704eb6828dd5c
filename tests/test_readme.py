"""README.md's Python fit on a user's own arrays, run as written on synthetic files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dive

pytestmark = pytest.mark.slow  # one default DIVE fit (~10 s)

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def arrays_block() -> str:
    """The README's python block that fits on arrays read from `corpus.npy`."""
    found = [code for code in BLOCK.findall(README.read_text()) if 'np.load("corpus.npy")' in code]
    assert len(found) == 1, "README: one python block fits on the user's own arrays"
    return found[0]


def test_the_arrays_example_runs_as_written(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # Each query sits near its relevant documents, so the labels carry signal.
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((300, 128)).astype(np.float32)
    relevant = [[int(i), int(i) + 1] for i in rng.choice(299, size=24, replace=False)]
    queries = np.stack([corpus[rows].mean(axis=0) for rows in relevant])
    queries += 0.3 * rng.standard_normal(queries.shape).astype(np.float32)
    np.save(tmp_path / "corpus.npy", corpus)
    np.save(tmp_path / "queries.npy", queries)
    (tmp_path / "relevant.json").write_text(json.dumps(relevant))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "readme"}
    exec(compile(arrays_block(), str(README), "exec"), namespace)

    model, small = namespace["model"], namespace["small"]
    assert small.shape == (300, 96) and small.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(small, axis=1), 1, rtol=1e-5)
    assert model.method == "dive" and model.fit_info_.summary.n_queries == 24
    loaded = dive.load(tmp_path / "models" / "my-dive-96")
    np.testing.assert_array_equal(loaded.transform(corpus), small)
