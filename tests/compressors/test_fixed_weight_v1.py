"""A baseline with a one-point selection grid reproduces its fixed-weight fit.

`data/fixed_weight_v1.npz` holds the outputs of Search-Adaptor and Matryoshka-Adaptor as
they were fitted before the grid (fixed weights, the validation gate; written by
`data/make_fixed_weight_v1.py` from the sources of that commit). Passing the grid one value per
option must give back those arrays: the selection over a single setting is the gate's own
choice, with the same random stream. Bit for bit on the machine that wrote them; another CPU
(AVX-512 kernels sum in another order) moves the same code's outputs by up to about 1e-4 after
these short fits, so the stored arrays are compared within `ATOL`, and the bitwise claim is
checked on the running machine: every one-point grid equals the fixed-weight path
(`select=false`) exactly. A different fit lands 0.09 or more away.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from dive.compressors import make_compressor

DATA = Path(__file__).with_name("data")
ATOL = 1e-3  # another CPU's rounding (seen: 7e-5), far below a different fit's distance


def _golden_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("golden", DATA / "make_fixed_weight_v1.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GOLDEN = _golden_script()
# Those fits re-mined hard negatives after each check, as every baseline did then.
V1_SPECS = {method: spec + ":mine_every=none" for method, spec in GOLDEN.SPECS.items()}


@pytest.mark.parametrize(
    ("method", "one_point"),
    [
        ("search-adaptor", ":select=false"),
        ("search-adaptor", ":weight_rec_grid=0.1:weight_pred_grid=0.01"),
        # ... searched: the fixture's 10 validation queries are below the default grid_min
        ("search-adaptor", ":weight_rec_grid=0.1:weight_pred_grid=0.01:grid_min=10"),
        # the fixture's 10 validation queries are fewer than the grid needs: no grid searched
        ("search-adaptor", ""),
        ("search-adaptor", ":grid_min=11"),
        ("matryoshka-adaptor", ":dims=single:select=false"),
        ("matryoshka-adaptor", ":dims=single:lr_grid=0.001"),
        ("matryoshka-adaptor", ":dims=single:lr_grid=0.001:grid_min=10"),
        ("matryoshka-adaptor", ":dims=single"),
    ],
)
def test_a_one_point_grid_reproduces_the_fixed_weight_fit_bit_for_bit(
    method: str, one_point: str
) -> None:
    corpus, labels = GOLDEN.fixture()
    model = make_compressor(V1_SPECS[method] + one_point, 4, seed=1).fit(corpus, labels)
    expected = np.load(DATA / "fixed_weight_v1.npz")[method]
    np.testing.assert_allclose(model.transform(corpus), expected, rtol=0, atol=ATOL)
    single = ":dims=single" if method == "matryoshka-adaptor" else ""
    fixed = make_compressor(V1_SPECS[method] + single + ":select=false", 4, seed=1)
    fixed.fit(corpus, labels)
    np.testing.assert_array_equal(model.transform(corpus), fixed.transform(corpus))
    diagnostics = model.fit_info_.diagnostics
    assert len(diagnostics.get("supervised", diagnostics)["settings"]) == 1  # one run, no grid


@pytest.mark.parametrize(
    ("method", "other"),
    [
        ("search-adaptor", ":grid_min=10"),  # the full grid, searched on the 10 validation queries
        ("matryoshka-adaptor", ""),  # the nested dimensions (on this fixture its grid keeps
        # the fixed-weight choice, so the grid alone would not show the check can tell)
    ],
)
def test_another_fit_is_far_outside_the_tolerance(method: str, other: str) -> None:
    """The check above can tell: a fit that is not the fixed-weight one lands far from it."""
    corpus, labels = GOLDEN.fixture()
    model = make_compressor(V1_SPECS[method] + other, 4, seed=1).fit(corpus, labels)
    expected = np.load(DATA / "fixed_weight_v1.npz")[method]
    assert np.abs(model.transform(corpus) - expected).max() > 50 * ATOL
