"""`benchmarks/speed.py`: `--distractors` adds unit-norm near-duplicates of real rows after
them; every method spec is checked before the first fit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest


def test_distractors_are_unit_near_duplicates_after_the_real_rows(
    load_script: Callable[[str], ModuleType],
) -> None:
    speed = load_script("speed")
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((50, 384)).astype(np.float32)
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    grown = speed.with_distractors(corpus, 400)
    assert grown.shape == (450, 384) and grown.dtype == np.float32
    assert np.array_equal(grown[:50], corpus)
    np.testing.assert_allclose(np.linalg.norm(grown, axis=1), 1.0, atol=1e-5)
    nearest = (grown[50:] @ corpus.T).max(axis=1)  # each to its source
    assert nearest.min() > 0.8 and nearest.max() < 0.97


def test_a_data_folder_given_that_does_not_exist_stops_the_script(
    load_script: Callable[[str], ModuleType], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--embeddings /nonexistent` fell back to $DIVE_EMBEDDINGS and printed that data's
    figures as if they were the folder's; large_corpus.py and self_retrieval.py share it."""
    speed = load_script("speed")
    monkeypatch.setenv("DIVE_EMBEDDINGS", str(tmp_path))
    (tmp_path / "m" / "d").mkdir(parents=True)
    monkeypatch.setattr("sys.argv", ["large_corpus.py"])
    assert speed._find(None, "DIVE_EMBEDDINGS", "embeddings", "m", "d") == tmp_path / "m" / "d"
    with pytest.raises(SystemExit, match=r"^large_corpus\.py: /nonexistent/emb: no such folder$"):
        speed._find("/nonexistent/emb", "DIVE_EMBEDDINGS", "embeddings", "m", "d")
    with pytest.raises(SystemExit):
        speed.build_parser().parse_args(["--ratios", "0"])  # it divided by zero


@pytest.mark.parametrize("methods", ["dive,pca,dvie", "pca,dive:nosuch=1"])
def test_every_method_spec_is_built_before_the_first_fit(
    load_script: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], methods: str,
) -> None:
    """The bad spec was met only after every other method was fitted (78 s for dive)."""
    speed = load_script("speed")
    monkeypatch.setattr(speed, "_find", lambda *a: pytest.fail("data looked up"))
    monkeypatch.setattr(speed, "fit_all", lambda *a: pytest.fail("fitted"))
    assert speed.script_main("speed.py", lambda: speed.main(["--methods", methods])) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("speed.py: error: --methods: ") and "\n" not in err
    assert "dvie" in err or "nosuch" in err


@pytest.mark.parametrize(("flag", "value", "said"), [
    ("--methods", "pca,,truncate", "item 2 of 'pca,,truncate' is empty"),
    ("--labels", "abc", "label budget must be a positive integer or 'all', got 'abc'"),
])
def test_an_empty_method_or_a_bad_budget_is_refused_when_parsed(
    load_script: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str], flag: str,
    value: str, said: str,
) -> None:
    """`--methods pca,,truncate` fitted pca, then stopped on the empty spec."""
    with pytest.raises(SystemExit) as exit_info:
        load_script("speed").build_parser().parse_args([flag, value])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        f"argument {flag}: {said}")
