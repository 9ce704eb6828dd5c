"""`Runtime.arrays()` and `Runtime.from_arrays`: the one naming of a runtime's arrays."""

from __future__ import annotations

import numpy as np
import pytest

from dive.compressors.precision import PRECISIONS, calibrate
from dive.compressors.runtime import ARRAY_NAMES, Adapter, Runtime, gelu_tanh
from dive.errors import DataError


def full_runtime(dim: int = 12, out: int = 4, seed: int = 0) -> Runtime:
    rng = np.random.default_rng(seed)

    def arr(*shape: int) -> np.ndarray:
        return (0.3 * rng.standard_normal(shape)).astype(np.float32)

    return Runtime(dim, Adapter(arr(6, dim), arr(6), arr(dim, 6), arr(dim), activation="relu"),
                   center=arr(dim), projection=arr(out, dim))


def rebuilt(runtime: Runtime) -> Runtime:
    activation = None if runtime.adapter is None else runtime.adapter.activation
    return Runtime.from_arrays(runtime.arrays(), input_dim=runtime.input_dim,
                               output_dim=runtime.output_dim, activation=activation,
                               precision=runtime.precision)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_array_and_precision_round_trips(precision: str, corpus: np.ndarray) -> None:
    runtime = full_runtime(dim=corpus.shape[1]).with_precision(precision, corpus)
    back = rebuilt(runtime)
    arrays = runtime.arrays()
    expected = [n for n in ARRAY_NAMES if precision == "int8" or not n.startswith("quantizer.")]
    assert list(arrays) == expected
    assert all(np.array_equal(back.arrays()[n], arrays[n]) for n in arrays)
    assert back.precision == precision
    assert np.array_equal(back(corpus), runtime(corpus))


def test_missing_parts_are_left_out_and_stay_out() -> None:
    bare = Runtime(8)
    assert bare.arrays() == {}
    assert rebuilt(bare).output_dim == 8
    projection = np.eye(3, 8, dtype=np.float32)
    only = Runtime.from_arrays({"projection": projection}, input_dim=8)
    assert only.output_dim == 3 and only.adapter is None and only.center is None


def test_only_an_adapter_that_changes_nothing_is_dropped() -> None:
    """An output layer of zeros with a bias of zeros is x + 0; with a bias it shifts every
    row, and dropping it changed every output (a mutant that looked at w2 alone passed)."""
    base = full_runtime()
    a = base.adapter
    assert a is not None
    zero = Adapter(a.w1, a.b1, np.zeros_like(a.w2), np.zeros_like(a.b2), activation="relu")
    assert Runtime(12, zero, projection=base.projection).without_identity_adapter().adapter is None
    shift = Adapter(a.w1, a.b1, np.zeros_like(a.w2), a.b2, activation="relu")
    kept = Runtime(12, shift, projection=base.projection).without_identity_adapter()
    assert kept.adapter is shift


def test_a_centre_without_a_projection_is_subtracted() -> None:
    """The outputs are the unit rows of x - mu whatever else the runtime holds (a mutant that
    centred only beside a projection passed every test)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 6)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    center = (0.2 * rng.standard_normal(6)).astype(np.float32)
    expected = (x - center) / np.linalg.norm(x - center, axis=1, keepdims=True)
    np.testing.assert_allclose(Runtime(6, center=center)(x), expected, atol=1e-6)


def test_a_centre_beside_a_projection_is_subtracted_before_it() -> None:
    """The outputs are the unit rows of P (x - mu): PCA's transform (a mutant that added P mu
    instead of subtracting it passed every test, the suite's corpora having a small mean)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 6)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    center = (0.5 * rng.standard_normal(6)).astype(np.float32)
    projection = rng.standard_normal((3, 6)).astype(np.float32)
    z = (x - center) @ projection.T
    expected = z / np.linalg.norm(z, axis=1, keepdims=True)
    np.testing.assert_allclose(Runtime(6, center=center, projection=projection)(x), expected,
                               atol=1e-5)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_the_adapter_is_its_documented_residual_mlp(activation: str) -> None:
    """h = x + w2 act(w1 x + b1) + b2, GELU in its tanh form (a mutant that dropped b2 passed
    every test here)."""
    a = _arrays(dim=6, rank=4)
    x = np.random.default_rng(3).standard_normal((5, 6)).astype(np.float32)
    pre = x.astype(np.float64) @ a["w1"].T + a["b1"]
    act = (np.maximum(pre, 0) if activation == "relu" else
           0.5 * pre * (1 + np.tanh(np.sqrt(2 / np.pi) * (pre + 0.044715 * pre**3))))
    expected = x + act @ a["w2"].T + a["b2"]
    np.testing.assert_allclose(Adapter(**a, activation=activation)(x), expected,  # type: ignore[arg-type]
                               rtol=1e-5, atol=1e-5)


def test_gelu_is_torchs_tanh_approximation() -> None:
    """GELU in float32 matches the tanh formula torch exports (a cubic coefficient of 0.0447
    for 0.044715 passed the suite, and parted numpy from ONNX by 1e-5)."""
    x = np.linspace(-4, 4, 81)
    expected = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(gelu_tanh(x.astype(np.float32)), expected, rtol=0, atol=1e-6)


def test_from_arrays_names_the_bad_array() -> None:
    arrays = full_runtime().arrays()
    with pytest.raises(DataError, match=r"^m\.st: unknown tensor 'pack_weights'"):
        Runtime.from_arrays({**arrays, "pack_weights": arrays["center"]}, input_dim=12,
                            activation="relu", where="m.st")
    del arrays["adapter.b2"]
    with pytest.raises(DataError, match=r"adapter is incomplete: 'adapter\.b2' is missing"):
        Runtime.from_arrays(arrays, input_dim=12, activation="relu")
    with pytest.raises(DataError, match=r"'quantizer\.low' is missing for precision int8"):
        Runtime.from_arrays({}, input_dim=12, precision="int8")
    with pytest.raises(DataError, match=r"'center' has shape \(12,\), expected \(10,\)"):
        Runtime.from_arrays({"center": np.zeros(12, np.float32)}, input_dim=10)
    # the quantizer's own check said "int8 quantizer: low must have shape", naming no tensor
    with pytest.raises(DataError, match=r"^runtime: tensor 'quantizer\.low' has shape \(5,\), "
                                        r"expected \(4,\) \(output_dim\)$"):
        Runtime.from_arrays({"projection": np.eye(4, 8, dtype=np.float32),
                             "quantizer.low": np.zeros(5, np.float32),
                             "quantizer.width": np.ones(5, np.float32)},
                            input_dim=8, precision="int8")


def _arrays(dim: int = 12, rank: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    shapes = {"w1": (rank, dim), "b1": (rank,), "w2": (dim, rank), "b2": (dim,)}
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


@pytest.mark.parametrize(("build", "message"), [
    # a (D, d) matrix where a (d, D) one goes: numpy's "mismatch in its core dimension" on call
    (lambda a: Runtime(12, projection=np.zeros((12, 4), np.float32)),
     r"^runtime: tensor 'projection' has shape \(12, 4\), expected \(output_dim, 12\): columns "
     "must equal input_dim$"),
    (lambda a: Runtime(12, center=np.zeros(4, np.float32)),
     r"^runtime: tensor 'center' has shape \(4,\), expected \(12,\) \(input_dim\)$"),
    (lambda a: Runtime(16, Adapter(**a)),
     r"^runtime: tensor 'adapter\.w1' has shape \(6, 12\), expected \(r, 16\)$"),
    (lambda a: Runtime(12, Adapter(**{**a, "b2": np.zeros(4, np.float32)})),
     r"^runtime: tensor 'adapter\.b2' has shape \(4,\), expected \(12,\)$"),
    # an adapter of rank 0 (a damaged file) ran as a bare bias
    (lambda a: Runtime(12, Adapter(np.zeros((0, 12), np.float32), np.zeros(0, np.float32),
                                   np.zeros((12, 0), np.float32), a["b2"])),
     r"^runtime: tensor 'adapter\.w1' has shape \(0, 12\), expected \(r, 12\)$"),
    # one inf or NaN among finite values (only an all-NaN array was tested) ran as NaN rows
    (lambda a: Runtime(12, projection=np.where(np.eye(4, 12) > 0, np.inf, 0).astype(np.float32)),
     r"^runtime: tensor 'projection' contains NaN or inf$"),
    (lambda a: Runtime(12, center=np.where(np.arange(12) == 3, np.nan, 0).astype(np.float32)),
     r"^runtime: tensor 'center' contains NaN or inf$"),
    (lambda a: Runtime(12.0, projection=np.zeros((4, 12), np.float32)),  # type: ignore[arg-type]
     r"^runtime: input_dim must be a positive integer, got 12\.0$"),
    # a quantizer for other vectors than the runtime outputs: codes of the wrong width
    (lambda a: Runtime(12, projection=np.zeros((4, 12), np.float32),
                       quantizer=calibrate("binary", np.zeros((0, 5)))),
     r"^runtime: the quantizer is for 5-d vectors, the runtime outputs 4-d$"),
    # ran GELU for any activation but relu; dive.save wrote it, and load refused the folder
    (lambda a: Adapter(**a, activation="tanh"),  # type: ignore[arg-type]
     r"^adapter: activation 'tanh' is not one of relu, gelu$"),
])
def test_a_runtime_built_by_hand_is_checked_when_built(build: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        build(_arrays())  # type: ignore[operator]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_a_runtime_equals_its_copies_by_value_and_is_unhashable(
    precision: str, corpus: np.ndarray
) -> None:
    """The generated `==` asked numpy for the truth of a whole array: comparing a runtime
    with its own deep copy or unpickled self was a ValueError."""
    import copy
    import pickle

    runtime = full_runtime(dim=corpus.shape[1]).with_precision(precision, corpus)
    assert runtime == copy.deepcopy(runtime) == pickle.loads(pickle.dumps(runtime))
    assert runtime == rebuilt(runtime)
    assert runtime != full_runtime(dim=corpus.shape[1], seed=1).with_precision(precision, corpus)
    projection = runtime.projection.astype(np.float64)  # type: ignore[union-attr]
    assert Runtime(runtime.input_dim, runtime.adapter, runtime.center,
                   projection.astype(np.float32), runtime.quantizer) == runtime
    with pytest.raises(TypeError, match="unhashable type: 'Runtime'"):
        hash(runtime)
