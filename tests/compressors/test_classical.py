"""The contract on the classical compressors: shapes, normalisation, determinism, errors."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from dive.compressors import make_compressor, parse_spec
from dive.compressors.pca import RANK_RTOL, numerical_rank, principal_axes
from dive.compressors.runtime import Runtime
from dive.errors import DataError, DiveError, NotFittedError

CLASSICAL = ["frozen", "truncate", "pca", "pca-uncentered", "random"]


@pytest.fixture()
def corpus() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 24)) * np.linspace(3, 0.1, 24)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("method", CLASSICAL)
def test_transform_outputs_unit_rows_of_requested_dim(method: str, corpus: np.ndarray) -> None:
    out = make_compressor(method, 6, seed=1).fit(corpus).transform(corpus)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    assert out.shape == (300, 24 if method == "frozen" else 6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("method", CLASSICAL)
def test_transform_does_not_depend_on_batch_size(method: str, corpus: np.ndarray) -> None:
    c = make_compressor(method, 6, seed=1).fit(corpus)
    whole = c.transform(corpus)
    parts = np.vstack([c.transform(corpus[i : i + 7]) for i in range(0, len(corpus), 7)])
    np.testing.assert_allclose(whole, parts, atol=1e-6)


def test_truncate_is_the_renormalised_prefix(corpus: np.ndarray) -> None:
    out = make_compressor("truncate", 5).fit(corpus).transform(corpus)
    prefix = corpus[:, :5] / np.linalg.norm(corpus[:, :5], axis=1, keepdims=True)
    np.testing.assert_allclose(out, prefix, atol=1e-6)


def test_pca_matches_numpy_svd_up_to_sign(corpus: np.ndarray) -> None:
    mean, axes = principal_axes(corpus, 4)
    centred = corpus.astype(np.float64) - corpus.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(mean, corpus.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(np.abs(axes), np.abs(vt[:4]), atol=1e-4)
    # the sign that makes fits deterministic: each axis's largest loading is positive
    assert (axes[np.arange(4), np.abs(axes).argmax(axis=1)] > 0).all()


def test_each_principal_axis_has_its_largest_magnitude_loading_positive() -> None:
    """The documented sign rule read each axis's sign off a column picked along the wrong
    axis: on isotropic rows (no coordinate dominates an axis) some axes came out with their
    largest loading negative, a sign the row order and chunking could then flip."""
    rng = np.random.default_rng(0)
    for d in (8, 24):
        rows = rng.standard_normal((50, d)).astype(np.float32)
        _, axes = principal_axes(rows, d)
        assert (axes[np.arange(d), np.abs(axes).argmax(axis=1)] > 0).all()


def test_principal_axes_do_not_depend_on_the_chunk_size(corpus: np.ndarray) -> None:
    """A chunk starting at the last row was skipped (300 rows in chunks of 1, 13 or 23: the
    last row left out of the mean and the covariance), so the axes moved with the chunk."""
    mean, axes = principal_axes(corpus, 6, chunk=len(corpus))
    for chunk in (1, 13, 23, 64):
        chunked_mean, chunked_axes = principal_axes(corpus, 6, chunk=chunk)
        np.testing.assert_allclose(chunked_mean, mean, atol=1e-7)
        np.testing.assert_allclose(chunked_axes, axes, atol=1e-6)


@pytest.mark.parametrize("method", ["truncate", "pca", "pca-uncentered", "random"])
def test_a_classical_fit_holds_float32_arrays_and_transforms_as_its_saved_arrays(
    method: str, corpus: np.ndarray
) -> None:
    """PCA's centre was kept in float64 (the covariance's precision): a runtime array of
    another dtype than the float32 every export writes, so the fitted model's outputs were
    not those of its saved copy."""
    shifted = corpus + np.float32(0.3)
    runtime = make_compressor(method, 6, seed=1).fit(shifted).fitted_runtime()
    arrays = runtime.arrays()
    assert arrays and all(a.dtype == np.float32 for a in arrays.values()), \
        {k: a.dtype for k, a in arrays.items()}
    saved = Runtime.from_arrays({k: a.astype(np.float32) for k, a in arrays.items()},
                                input_dim=runtime.input_dim)
    np.testing.assert_array_equal(runtime(shifted), saved(shifted))


def test_pca_uncentered_skips_the_mean_only(corpus: np.ndarray) -> None:
    shifted = corpus + np.float32(0.5)
    centred = make_compressor("pca", 4).fit(shifted).fitted_runtime()
    plain = make_compressor("pca-uncentered", 4).fit(shifted).fitted_runtime()
    np.testing.assert_array_equal(centred.projection, plain.projection)
    assert centred.center is not None and plain.center is None


def test_random_projection_depends_on_seed_only(corpus: np.ndarray) -> None:
    a = make_compressor("random", 6, seed=3).fit(corpus).transform(corpus)
    b = make_compressor("random", 6, seed=3).fit(corpus).transform(corpus)
    c = make_compressor("random", 6, seed=4).fit(corpus).transform(corpus)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # the directions are the seed's first dim x D standard normals (same seed, same model
    # across releases: drawn (D, dim) and transposed, every seed gave another projection)
    want = np.random.default_rng(3).standard_normal((6, corpus.shape[1])) / np.sqrt(6)
    projection = make_compressor("random", 6, seed=3).fit(corpus).fitted_runtime().projection
    np.testing.assert_allclose(projection, want, rtol=1e-6)


def test_transform_before_fit_raises() -> None:
    with pytest.raises(NotFittedError, match="call fit"):
        make_compressor("pca", 4).transform(np.zeros((2, 8), np.float32))


@pytest.mark.parametrize("method", ["pca", "dive"])
@pytest.mark.parametrize(("option", "value", "message"), [
    ("dim", "96", "dim must be an integer, got '96'"),
    ("seed", -1, r"seed must be in 0\.\.2\*\*63-1, got -1"),
    ("seed", 2**70, r"seed must be in 0\.\.2\*\*63-1, got 1180591620717411303424"),
    ("seed", 2**63, r"seed must be in 0\.\.2\*\*63-1, got 9223372036854775808"),  # the bound
    ("seed", None, "seed must be an integer, got None"),  # random projection went unseeded
])
def test_bad_dim_or_seed_is_a_clear_error(
    corpus: np.ndarray, method: str, option: str, value: object, message: str
) -> None:
    compressor = make_compressor(method, 4)
    setattr(compressor, option, value)
    with pytest.raises(DiveError, match=f"{method}: {message}"):
        compressor.fit(corpus)


def test_wrong_input_dimension_names_the_problem(corpus: np.ndarray) -> None:
    c = make_compressor("pca", 4).fit(corpus)
    with pytest.raises(DataError, match="expected dimension 24, got 23"):
        c.transform(corpus[:, :23])


def test_nan_row_is_reported_by_index(corpus: np.ndarray) -> None:
    bad = corpus.copy()
    bad[17, 3] = np.nan
    with pytest.raises(DataError, match="row 17 contains NaN"):
        make_compressor("pca", 4).fit(bad)


def test_empty_corpus_and_too_large_dim_are_rejected(corpus: np.ndarray) -> None:
    with pytest.raises(DataError, match="empty"):
        make_compressor("pca", 4).fit(corpus[:0])
    with pytest.raises(DataError, match=r"dim must be in 1\.\.24"):
        make_compressor("pca", 25).fit(corpus)


def test_string_dtype_is_rejected() -> None:
    with pytest.raises(DataError, match="expected float embeddings, got dtype <U1"):
        make_compressor("pca", 2).fit(np.array([["a", "b"]]))


def test_specs_parse_options_and_reject_unknown_names() -> None:
    assert parse_spec("pca") == ("pca", {})
    assert parse_spec("pca:heads=1:lr=0.001:centered=true:head-init=random") == (
        "pca",
        {"heads": 1, "lr": 0.001, "centered": True, "head_init": "random"},
    )
    with pytest.raises(DiveError, match=r"unknown method .nope.; valid: .*pca"):
        parse_spec("nope")
    with pytest.raises(DiveError, match="not key=value"):
        parse_spec("pca:oops")
    assert parse_spec("dive:steps=20:head-init=random:steps=30") == (
        "dive", {"steps": 30, "head_init": "random"})  # appended overrides win
    with pytest.raises(DiveError, match=r"pca: unknown option\(s\) foo; valid: none"):
        make_compressor("pca:foo=1", 4)
    # spaces around a spec (a list split on commas) were an unknown method ' pca'
    assert parse_spec(" pca:heads=2 ") == ("pca", {"heads": 2})
    # an option without a name was taken as option '' and refused as unknown
    with pytest.raises(DiveError, match=r"^method 'pca:=3': option '=3' is not key=value$"):
        parse_spec("pca:=3")
    # dim and seed are given apart from the spec: the class's TypeError "got multiple values"
    with pytest.raises(DiveError, match=r"^method 'pca:dim=8': dim is not an option of the "
                                        "spec; it is given apart from it$"):
        make_compressor("pca:dim=8", 4)


@pytest.mark.parametrize("method", ["pca", "pca-uncentered"])
def test_pca_on_too_few_rows_warns_and_zeroes_the_axes_the_rows_do_not_span(
    method: str, corpus: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    # 5 rows span 4 centred directions; the other axes of an 8-d fit would be a basis of
    # eigenvalue 0 that rounding picks (row order, chunk size), not one the data defines.
    # Uncentred, the rows' mean outside those 4 is one more direction, which every row shares.
    rows, new = corpus[:5], corpus[100:110]
    with caplog.at_level(logging.WARNING, logger="dive.compressors.pca"):
        fitted = make_compressor(method, 8).fit(rows)
    kept, tail = ((4, "those past 4 are set to 0") if method == "pca" else
                  (5, "the next holds the offset every row shares outside them, those past 5 "
                      "are set to 0"))
    assert caplog.messages == [f"{method}: fitted on 5 corpus rows, which span at most 4 of "
                               f"the 8 output dimensions; {tail}"]
    projection = fitted.fitted_runtime().projection
    assert projection is not None
    assert not projection[kept:].any() and np.abs(projection[:kept]).sum(axis=1).min() > 0
    reordered = make_compressor(method, 8).fit(rows[::-1].copy()[[2, 0, 4, 1, 3]])
    np.testing.assert_allclose(fitted.transform(new), reordered.transform(new), atol=1e-5)


@pytest.mark.parametrize("method", ["pca", "pca-uncentered"])
def test_pca_on_one_row_is_refused_not_fitted_to_zero_outputs(
    method: str, corpus: np.ndarray
) -> None:
    # one row spans no centred direction: every axis would be zeroed and every output the
    # zero vector, which no L2 normalisation can make a unit one
    with pytest.raises(DataError, match=f"{method}: needs at least 2 corpus rows"):
        make_compressor(method, 4).fit(corpus[:1])


@pytest.mark.parametrize("method", ["pca", "pca-uncentered"])
def test_pca_on_two_rows_fits_them_apart(method: str, corpus: np.ndarray) -> None:
    """Two rows span one centred direction, enough to fit: they were refused as if they were
    one ("needs at least 2 corpus rows ... got 2")."""
    rows = corpus[:2]
    out = make_compressor(method, 4).fit(rows).transform(rows)
    assert out.shape == (2, 4)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    if method == "pca":  # centred, the two rows sit at either end of their one axis
        np.testing.assert_allclose(out[0], -out[1], atol=1e-6)


def test_a_fit_names_corpus_rows_its_outputs_leave_out(
    corpus: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    """truncate to 6 of rows with nothing in their first 6 coordinates fitted and saved
    without a word; compressing those rows (dive compress, index, evaluate) is then refused."""
    rows = corpus.copy()
    rows[[3, 9], :6] = 0
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    with caplog.at_level(logging.WARNING, logger="dive.compressors.base"):
        fitted = make_compressor("truncate", 6).fit(rows)
    assert caplog.messages == ["truncate: 2 corpus row(s) have no part in the compressed space "
                               "(the first: row 3): compressing them is refused, as no score "
                               "can rank them"]
    np.testing.assert_array_equal(fitted.fitted_runtime().unranked_rows(rows, batch_size=4),
                                  [3, 9])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dive.compressors.base"):
        make_compressor("truncate", 6).fit(corpus)
    assert caplog.messages == []


def test_pca_on_enough_rows_is_plain_principal_axes_without_a_warning(
    corpus: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="dive.compressors.pca"):
        fitted = make_compressor("pca", 4).fit(corpus[:5])
    assert caplog.messages == []
    np.testing.assert_array_equal(fitted.fitted_runtime().projection,
                                  principal_axes(corpus[:5], 4)[1])


@pytest.mark.parametrize("method", ["pca", "pca-uncentered"])
def test_pca_on_rows_of_lower_rank_than_dim_warns_and_keeps_its_outputs(
    method: str, corpus: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    # 1000 rows, 5 distinct: enough rows, but they span 4 centred directions only
    rows = np.repeat(corpus[:5], 200, axis=0)
    with caplog.at_level(logging.WARNING, logger="dive.compressors.pca"):
        fitted = make_compressor(method, 8).fit(rows)
    zeroed = 4 if method == "pca" else 3
    # uncentred, one axis past them holds the rows' offset ("past 4 ... set to 0: 3 of 8" read
    # as a miscount without it)
    kept = ("" if method == "pca" else
            " (the next holds the offset every row shares outside them)")
    assert caplog.messages == [f"{method}: fitted on 1000 corpus rows of numerical rank 4 (axes "
                               "with under 1e-10 of the rows' mean squared norm count as none), "
                               "below "
                               f"the 8 output dimensions: the rows do not vary along the axes "
                               f"past 4{kept}; outputs set to 0: {zeroed} of 8"]
    # centred, the rows' part past the rank is rounding noise: zeroed; uncentred, the rows
    # share a real offset there (they span an affine subspace off the origin), which one
    # output holds: the rows' cosines are kept whole. Each axis of eigenvalue 0 took a share
    # of it, in a basis the row order picked: reordered rows moved the outputs by 0.8.
    axes = principal_axes(rows, 8)[1]
    axes[4:] = 0
    projection = fitted.fitted_runtime().projection
    assert projection is not None
    np.testing.assert_array_equal(projection[:4], axes[:4])
    assert not projection[5:].any() and projection[4].any() == (method == "pca-uncentered")
    reordered = make_compressor(method, 8).fit(rows[np.random.default_rng(0).permutation(1000)])
    new = corpus[100:110]
    np.testing.assert_allclose(reordered.transform(new), fitted.transform(new), atol=1e-5)
    if method == "pca-uncentered":
        z = fitted.transform(corpus[:5])
        np.testing.assert_allclose(z @ z.T, corpus[:5] @ corpus[:5].T, atol=1e-5)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dive.compressors.pca"):
        make_compressor(method, 4).fit(rows)
    assert caplog.messages == []


def test_pca_on_few_rows_with_duplicates_warns_of_the_rank_and_the_zeroed_axes(
    corpus: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    rows = corpus[[0, 1, 2, 3, 0]]  # 5 rows span 4 directions at most, these 3
    with caplog.at_level(logging.WARNING, logger="dive.compressors.pca"):
        fitted = make_compressor("pca", 8).fit(rows)
    assert caplog.messages == ["pca: fitted on 5 corpus rows of numerical rank 3 (axes with "
                               "under 1e-10 of the rows' mean squared norm count as none), below "
                               "the 8 output dimensions: the rows do not vary along the axes "
                               "past 3; outputs set to 0: 5 of 8"]
    projection = fitted.fitted_runtime().projection
    assert projection is not None and not projection[3:].any() and projection[2].any()


@pytest.mark.parametrize("precision", ["binary", "int8"])
@pytest.mark.parametrize("method", ["pca", "pca-uncentered", "dive:steps=20:max_steps=20"])
def test_codes_of_a_corpus_of_low_rank_do_not_change_with_the_batch_size(
    corpus: np.ndarray, precision: str, method: str
) -> None:
    """A row's part past the rank (about 1e-8) was coded as full bits and int8 levels: 33 of
    64 bits of a row changed between batch sizes, and binary search was near random (centred
    PCA first; uncentred PCA and DIVE's start kept it, as the rows' mean lies in their span)."""
    import dive

    rng = np.random.default_rng(0)
    rows = rng.standard_normal((300, 5)) @ np.linalg.qr(rng.standard_normal((64, 5)))[0].T
    rows = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    queries = rows[:40] + 0.05 * rng.standard_normal((40, 64)).astype(np.float32)
    runtime = dive.fit(rows, method=method, dim=64, queries=queries,
                       relevant=[[i] for i in range(40)]).fitted_runtime()
    runtime = runtime.with_precision(precision, rows)
    # int8: past the rank only (a level at a bin edge may move by one, docs/scale.md)
    past = slice(None) if precision == "binary" else slice(5, None)
    np.testing.assert_array_equal(runtime(rows, batch_size=7)[:, past], runtime(rows)[:, past])


def test_numerical_rank_counts_variances_above_the_documented_tolerance() -> None:
    assert RANK_RTOL == 1e-10
    assert numerical_rank(np.array([4.0, 4e-9, 3.9e-10, 1e-16, -1e-17]), 4.0) == 2
    assert numerical_rank(np.array([4.0, 4e-9, 3.9e-10]), 40.0) == 1
    assert numerical_rank(np.zeros(3), 1.0) == 0


def test_one_row_repeated_has_rank_zero(corpus: np.ndarray,
                                        caplog: pytest.LogCaptureFixture) -> None:
    """Rows with no variance at all said "numerical rank 3": relative to the largest variance,
    itself rounding noise there, the noise counted as axes. Uncentred, the row itself is kept."""
    rows = np.repeat(corpus[:1], 50, axis=0)
    with caplog.at_level(logging.WARNING, logger="dive.compressors.pca"):
        make_compressor("pca-uncentered", 4).fit(rows)
    assert len(caplog.messages) == 1 and "of numerical rank 0 " in caplog.messages[0]


@pytest.mark.parametrize("spread", [0.0, 1e-7])
def test_centred_pca_of_rows_that_do_not_vary_is_refused_at_fit(
    corpus: np.ndarray, spread: float
) -> None:
    """It saved an all-zero projection (exit 0) that then refused every row it was given."""
    noise = spread * np.random.default_rng(0).standard_normal((50, corpus.shape[1]))
    rows = (np.repeat(corpus[:1], 50, axis=0) + noise).astype(np.float32)
    with pytest.raises(DataError, match=r"^pca: every output is 0 on every corpus row \(the "
                                        r"rows do not vary along any of its 4 output"):
        make_compressor("pca", 4).fit(rows)


def test_a_fit_whose_outputs_are_0_on_every_corpus_row_is_refused_and_keeps_the_last_model(
    corpus: np.ndarray
) -> None:
    """pca and dive refused such a fit; truncate and the baselines saved it (exit 0, a
    warning), and every row given to it was then refused."""
    rows = corpus.copy()
    rows[:, :4] = 0  # nothing in what truncate to 4 keeps
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    model = make_compressor("truncate", 4).fit(corpus)
    before = model.fitted_runtime()
    with pytest.raises(DataError, match=r"^truncate: every corpus row's output is 0 \(no part "
                                        r"in the compressed space\), so it could rank nothing"):
        model.fit(rows)
    assert model.fitted_runtime() is before  # a failed refit keeps the model it had


def test_a_numpy_integer_dim_is_taken_and_recorded_as_an_int(corpus: np.ndarray) -> None:
    model = make_compressor("pca", np.int64(4)).fit(corpus)  # type: ignore[arg-type]
    assert model.transform(corpus).shape == (len(corpus), 4)
    assert type(model.config()["dim"]) is int


@pytest.mark.parametrize("method", CLASSICAL)
def test_dim_none_is_recorded_as_the_input_dimension_it_kept(method: str,
                                                             corpus: np.ndarray) -> None:
    """A saved model of `dim=None` (keep D) said `dim: null` beside a D-wide output; the
    parameter stays None, so a refit on other data keeps that data's D."""
    model = make_compressor(method, None).fit(corpus)
    assert model.fitted_config()["dim"] == model.transform(corpus).shape[1] == 24
    assert model.fit(corpus[:, :16]).fitted_config()["dim"] == 16


def test_frozen_refits_on_other_data_and_ignores_its_dim() -> None:
    """Its fit wrote the data's D into `dim`, which the next fit checked against other data:
    "dim must be in 1..32, got 64"; a `dim` above D was refused, not ignored as documented."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((50, d)).astype(np.float32) for d in (64, 32))
    frozen = make_compressor("frozen", None)
    assert frozen.fit(a).transform(a).shape == (50, 64)
    assert frozen.fit(b).transform(b).shape == (50, 32) and frozen.config()["dim"] == 32
    assert make_compressor("frozen", 128).fit(a).config()["dim"] == 64


def test_dead_outputs_are_zeroed_counted_and_said_and_all_dead_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from dive.compressors.dead_outputs import output_energy, zero_dead_outputs
    from dive.compressors.runtime import Runtime

    rng = np.random.default_rng(0)
    rows = np.zeros((50, 6), np.float32)
    rows[:, :3] = rng.standard_normal((50, 3))  # the rows span the first 3 coordinates
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    axes = np.linalg.qr(rng.standard_normal((6, 6)))[0].T.astype(np.float32)
    axes[3:, :3] = 0  # three outputs read only coordinates the rows never use
    axes[3:] /= np.linalg.norm(axes[3:], axis=1, keepdims=True)
    runtime = Runtime(input_dim=6, projection=axes)
    with caplog.at_level(logging.WARNING, logger="dive.compressors.dead_outputs"):
        kept, count = zero_dead_outputs(runtime, output_energy(runtime, rows), "m")
    assert count == 3 and kept.projection is not None
    assert not kept.projection[3:].any() and np.array_equal(kept.projection[:3], axes[:3])
    assert caplog.messages == ["m: outputs that are 0 on every corpus row up to rounding (the "
                               "rows span fewer directions): 3 of 6, set to exactly 0, so their "
                               "codes do not change with the batch size"]
    with pytest.raises(DataError, match=r"^m: every output is 0 on every corpus row"):
        zero_dead_outputs(Runtime(input_dim=6, projection=axes[3:]),
                          output_energy(Runtime(input_dim=6, projection=axes[3:]), rows), "m")


def test_output_energy_is_a_share_of_what_the_adapter_outputs() -> None:
    """Guards the scale after an adapter: its outputs are not unit rows, so the shares are of
    their squared norms (an orthonormal projection's sum to 1), not of the row count."""
    from dive.compressors.dead_outputs import output_energy
    from dive.compressors.runtime import Adapter, Runtime

    rng = np.random.default_rng(0)
    rows = rng.standard_normal((50, 6)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    shift = np.array([3, 0, 0, 0, 0, 0], np.float32)  # h = x + shift: norms of 2 to 4
    adapter = Adapter(np.zeros((2, 6), np.float32), np.zeros(2, np.float32),
                      np.zeros((6, 2), np.float32), shift)
    axes = np.linalg.qr(rng.standard_normal((6, 6)))[0].astype(np.float32)
    energy = output_energy(Runtime(input_dim=6, adapter=adapter, projection=axes), rows)
    assert energy.sum() == pytest.approx(1, rel=1e-5)
    # each output's share is of the adapter's outputs, not of the rows it was given
    h = (rows + shift).astype(np.float64)
    np.testing.assert_allclose(energy, np.square(h @ axes.T).sum(axis=0) / np.square(h).sum(),
                               rtol=1e-5)


def test_output_energy_is_measured_after_the_centre() -> None:
    """An output on which every row equals the centre's part is dead (a mutant that added the
    centre's part instead of subtracting it kept it alive, as 4 x its square)."""
    from dive.compressors.dead_outputs import output_energy, zero_dead_outputs
    from dive.compressors.runtime import Runtime

    rng = np.random.default_rng(0)
    rows = np.zeros((40, 6), np.float32)
    rows[:, :3] = 0.6 * rng.standard_normal((40, 3))
    rows[:, 4] = 0.8  # every row shares this offset
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    center = rows.mean(axis=0)
    rows[:, 4] = center[4]  # exactly the centre's value on the offset coordinate
    projection = np.eye(6, dtype=np.float32)[[0, 1, 4]]
    runtime = Runtime(input_dim=6, center=center, projection=projection)
    energy = output_energy(runtime, rows)
    expected = np.square((rows - center) @ projection.T, dtype=np.float64).mean(axis=0)
    np.testing.assert_allclose(energy, expected, rtol=1e-5, atol=1e-12)
    assert energy[2] <= RANK_RTOL
    kept, count = zero_dead_outputs(runtime, energy, "m", warn=False)
    assert count == 1 and kept.projection is not None and not kept.projection[2].any()


def test_an_output_of_energy_at_the_tolerance_is_dead() -> None:
    """`zero_dead_outputs` zeroes outputs whose energy is at most `RANK_RTOL`, as documented."""
    from dive.compressors.dead_outputs import zero_dead_outputs

    runtime = Runtime(input_dim=4, projection=np.eye(2, 4, dtype=np.float32))
    kept, count = zero_dead_outputs(runtime, np.array([1.0, RANK_RTOL]), "m", warn=False)
    assert count == 1 and kept.projection is not None and not kept.projection[1].any()
    _, count = zero_dead_outputs(runtime, np.array([1.0, 2 * RANK_RTOL]), "m", warn=False)
    assert count == 0
