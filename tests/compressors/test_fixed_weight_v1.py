"""A baseline with a one-point selection grid reproduces its fixed-weight fit bit for bit.

`data/fixed_weight_v1.npz` holds the outputs of Search-Adaptor and Matryoshka-Adaptor as
they were fitted before the grid (fixed weights, the validation gate; written by
`data/make_fixed_weight_v1.py` from the sources of that commit). Passing the grid one value per
option, or `select=false`, must give back exactly those arrays: the selection over a single
setting is the gate's own choice, with the same random stream.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from dive.compressors import make_compressor

DATA = Path(__file__).with_name("data")


def _golden_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("golden", DATA / "make_fixed_weight_v1.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GOLDEN = _golden_script()


@pytest.mark.parametrize(
    ("method", "one_point"),
    [
        ("search-adaptor", ":select=false"),
        ("search-adaptor", ":weight_rec_grid=0.1:weight_pred_grid=0.01"),
        # the fixture's 10 validation queries are fewer than the grid needs: no grid searched
        ("search-adaptor", ""),
        ("search-adaptor", ":grid_min=11"),
        ("matryoshka-adaptor", ":dims=single:select=false"),
        ("matryoshka-adaptor", ":dims=single:lr_grid=0.001"),
        ("matryoshka-adaptor", ":dims=single"),
    ],
)
def test_a_one_point_grid_reproduces_the_fixed_weight_fit_bit_for_bit(
    method: str, one_point: str
) -> None:
    corpus, labels = GOLDEN.fixture()
    model = make_compressor(GOLDEN.SPECS[method] + one_point, 4, seed=1).fit(corpus, labels)
    expected = np.load(DATA / "fixed_weight_v1.npz")[method]
    np.testing.assert_array_equal(model.transform(corpus), expected)
    diagnostics = model.fit_info_.diagnostics
    assert len(diagnostics.get("supervised", diagnostics)["settings"]) == 1  # one run, no grid


@pytest.mark.parametrize("method", ["search-adaptor", "matryoshka-adaptor"])
def test_the_grid_searched_is_not_the_fixed_weight_fit(method: str) -> None:
    """The check above can tell: the full grid, searched once the validation queries reach
    `grid_min` (10 here), lands elsewhere."""
    corpus, labels = GOLDEN.fixture()
    spec = GOLDEN.SPECS[method] + ":grid_min=10"
    model = make_compressor(spec, 4, seed=1).fit(corpus, labels)
    expected = np.load(DATA / "fixed_weight_v1.npz")[method]
    assert not np.array_equal(model.transform(corpus), expected)
