"""`compress_store`: every input kind, dtypes, ids, bad input, no clobbering, in-process resume."""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dive._io import MANIFEST
from dive.compressors.runtime import Runtime
from dive.errors import DataError, DiveError
from dive.scale import compress_store, resume
from dive.scale import stream as stream_module
from tests.conftest import compress_stopped_while_checked


def _expected(runtime: Runtime, x: np.ndarray, batch_size: int) -> np.ndarray:
    # The store is compressed chunk by chunk; BLAS may round a chunk's rows differently from
    # the whole array's by an ulp, so the exact reference uses the same chunks.
    return runtime(x, batch_size=batch_size)


def _check(runtime: Runtime, y: np.ndarray, x: np.ndarray, batch_size: int) -> None:
    np.testing.assert_array_equal(y, _expected(runtime, x, batch_size))
    np.testing.assert_allclose(y, runtime(x), rtol=0, atol=1e-6)  # the whole array at once


def test_npy_file_round_trip_equals_runtime(tmp_path: Path, model_dir, runtime, stores) -> None:
    x = stores.vectors(1000)
    np.save(tmp_path / "x.npy", x)
    result = compress_store(
        model_dir, tmp_path / "x.npy", tmp_path / "y.npy", batch_size=128, progress=False
    )
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == np.float32 and y.shape == (1000, stores.out_dim)
    _check(runtime, y, x, 128)
    assert (result.rows, result.input_dim, result.output_dim) == (1000, 32, 8)
    # Same bytes as np.save of the same array, header included.
    np.save(tmp_path / "ref.npy", _expected(runtime, x, 128))
    assert (tmp_path / "y.npy").read_bytes() == (tmp_path / "ref.npy").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.npy", "x.npy", "y.npy"]


def test_npy_fortran_order_and_float64_input(tmp_path: Path, runtime, stores) -> None:
    x = stores.vectors(300)
    np.save(tmp_path / "x.npy", np.asfortranarray(x.astype(np.float64)))
    compress_store(runtime, tmp_path / "x.npy", tmp_path / "y.npy", batch_size=64, progress=False)
    _check(runtime, np.load(tmp_path / "y.npy"), x, 64)


def test_float16_output(tmp_path: Path, runtime, stores) -> None:
    x = stores.vectors(200)
    np.save(tmp_path / "x.npy", x)
    result = compress_store(
        runtime, tmp_path / "x.npy", tmp_path / "y.npy", dtype="float16", progress=False
    )
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == np.float16 and result.dtype == "float16"
    np.testing.assert_array_equal(y, runtime(x).astype(np.float16))


def test_npy_shards_folder_keeps_names_and_order(tmp_path: Path, runtime, stores) -> None:
    x = stores.vectors(700)
    src = tmp_path / "shards"
    src.mkdir()
    bounds = {"part-0.npy": (0, 300), "part-1.npy": (300, 301), "part-2.npy": (301, 700)}
    for name, (lo, hi) in bounds.items():
        np.save(src / name, x[lo:hi])
    (src / "README.txt").write_text("not a shard")
    result = compress_store(runtime, src, tmp_path / "out", batch_size=128, progress=False)
    hidden = [resume.OUTPUT_MARKER, MANIFEST]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted([*bounds, *hidden])
    for name, (lo, hi) in bounds.items():
        _check(runtime, np.load(tmp_path / "out" / name), x[lo:hi], 128)
    assert result.rows == 700


@pytest.mark.usefixtures("default_signals")
def test_a_signal_once_the_work_is_done_lands_after_the_output_is_published(
    tmp_path: Path, runtime, stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM after the state was dropped but before the rename discarded the finished
    work (the message said a rerun resumes; the rerun started over); now it lands once the
    output is in place, marked so."""
    import signal

    from dive._io import written_before

    x = stores.vectors(300)
    src = tmp_path / "shards"
    src.mkdir()
    np.save(src / "a.npy", x)
    real = stream_module.write_output_marker

    def signal_then_mark(*args: Any) -> None:
        signal.raise_signal(signal.SIGINT)
        real(*args)

    monkeypatch.setattr(stream_module, "write_output_marker", signal_then_mark)
    with pytest.raises(KeyboardInterrupt) as stopped:
        compress_store(runtime, src, tmp_path / "out", batch_size=128, progress=False)
    assert written_before(stopped.value)
    _check(runtime, np.load(tmp_path / "out" / "a.npy"), x, 128)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "shards"]  # no work folder


@pytest.mark.parametrize("saved", [False, True])
def test_an_interruption_while_the_store_is_checked_says_what_a_rerun_finds(
    tmp_path: Path, model_dir: Path, stores, capsys: pytest.CaptureFixture[str], saved: bool,
) -> None:
    """Ctrl-C while the input's ids were read, before any chunk: it said "finished chunks are
    saved and a rerun resumes", where there were none (and said so once a run had saved some)."""
    np.save(tmp_path / "x.npy", stores.vectors(300))
    argv = ["compress", str(model_dir), "--input", str(tmp_path / "x.npy"), "--output",
            str(tmp_path / "y.npy"), "--batch-size", "100", "--no-progress"]
    assert compress_stopped_while_checked(argv, stream_module, "check_apart", saved) == 130
    assert capsys.readouterr().err.splitlines()[-1] == "dive: interrupted; " + (
        "finished chunks are saved and a rerun resumes" if saved
        else "no chunk was finished yet; a rerun starts over")


def test_a_work_folder_left_once_the_output_was_in_place_goes_with_the_refused_rerun(
    tmp_path: Path, runtime, stores
) -> None:
    """SIGKILL after the output was renamed into place, before its work folder was removed
    (its state goes first): every rerun was refused as the output exists and kept the folder,
    which no run could resume from, for good."""
    np.save(tmp_path / "x.npy", stores.vectors(50))
    compress_store(runtime, tmp_path / "x.npy", tmp_path / "y.npy", progress=False)
    work = resume.Partial(tmp_path / "y.npy")
    (work.data).mkdir(parents=True)  # what the kill left: no state, an emptied data folder
    with pytest.raises(DiveError, match="already exists"):
        compress_store(runtime, tmp_path / "x.npy", tmp_path / "y.npy", progress=False)
    assert not work.root.exists()


def test_a_broken_shard_link_is_an_error_naming_it(tmp_path: Path, runtime, stores) -> None:
    # it was skipped: the output lacked that shard's vectors without a word
    src = tmp_path / "shards"
    src.mkdir()
    np.save(src / "a.npy", stores.vectors(10))
    (src / "b.npy").symlink_to(tmp_path / "moved" / "b.npy")
    with pytest.raises(DataError, match=rf"^{src / 'b.npy'}: a broken symbolic link \(to "
                                        rf"{tmp_path / 'moved' / 'b.npy'}\); fix or remove it$"):
        compress_store(runtime, src, tmp_path / "out", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shards"]


@pytest.mark.parametrize("listing", ["ascending", "descending"])
def test_of_two_subfolders_with_shards_the_first_by_name_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime, stores, listing: str
) -> None:
    """Guards the sort of the subfolders: the error named whichever the file system listed
    first, so one input named another folder on another machine."""
    src = tmp_path / "shards"
    for folder in (src, src / "day=1", src / "day=2"):
        folder.mkdir()
        np.save(folder / "a.npy", stores.vectors(10))
    listed = Path.iterdir
    monkeypatch.setattr(Path, "iterdir", lambda self: iter(sorted(
        listed(self), reverse=listing == "descending")))
    with pytest.raises(DataError, match=rf"^{src / 'day=1'}: a subfolder with shards; "):
        compress_store(runtime, src, tmp_path / "out", progress=False)


def test_parquet_round_trip_carries_ids(tmp_path: Path, runtime, stores) -> None:
    x = stores.vectors(1000)
    ids = [f"doc-{i * 7}" for i in range(1000)]
    # Row groups (300) that do not line up with chunks (128): chunks are re-cut exactly.
    stores.write_parquet(tmp_path / "x.parquet", x, ids=ids, row_group_size=300)
    compress_store(
        runtime, tmp_path / "x.parquet", tmp_path / "y.parquet", batch_size=128, progress=False
    )
    out_ids, y, schema = stores.read_parquet(tmp_path / "y.parquet")
    assert out_ids == ids
    _check(runtime, y, x, 128)
    assert str(schema.field("vector").type) == "fixed_size_list<element: float>[8]"
    import pyarrow.parquet as pq

    groups = pq.ParquetFile(tmp_path / "y.parquet").metadata
    assert [groups.row_group(g).num_rows for g in range(groups.num_row_groups)] == [128] * 7 + [104]


def test_a_relative_parquet_path_whose_name_reads_as_a_uri_is_a_file(
        tmp_path: Path, runtime, stores, monkeypatch: pytest.MonkeyPatch) -> None:
    """pyarrow read a relative `api:x.parquet` (or a time stamp's `T10:30:00`) as a URI:
    "not a readable Parquet file (Unrecognized filesystem type in URI...)"."""
    monkeypatch.chdir(tmp_path)
    x = stores.vectors(100)
    stores.write_parquet(tmp_path / "api:x.parquet", x)
    compress_store(runtime, Path("api:x.parquet"), Path("db:y.parquet"), progress=False)
    _check(runtime, stores.read_parquet(tmp_path / "db:y.parquet")[1], x, 100)


def test_an_output_name_near_the_file_system_s_limit_has_a_work_folder_that_fits(
        tmp_path: Path, runtime, stores) -> None:
    """`.<name>.partial` is 9 bytes longer than the output's name: a 250-byte name (one `fit`
    and `export` take) was refused as "file name too long"; cut, it keeps a digest of the
    whole name, so two long names that share their start share no work folder."""
    x = stores.vectors(100)
    np.save(tmp_path / "x.npy", x)
    names = ["y" * 246 + ".npy", "y" * 246 + "z.npy"]
    compress_store(runtime, tmp_path / "x.npy", tmp_path / names[0], progress=False)
    _check(runtime, np.load(tmp_path / names[0]), x, 100)
    from dive._io import work_folder

    folders = {work_folder(tmp_path / name).name for name in names}
    assert len(folders) == 2 and all(len(name.encode()) <= 255 for name in folders)


def test_parquet_list_column_float16_output_column(tmp_path: Path, runtime, stores) -> None:
    x = stores.vectors(250)
    stores.write_parquet(tmp_path / "x.parquet", x, fixed=False, column="emb")
    compress_store(
        runtime,
        tmp_path / "x.parquet",
        tmp_path / "y.parquet",
        column="emb",
        output_column="small",
        dtype="float16",
        batch_size=100,
        progress=False,
    )
    ids, y, schema = stores.read_parquet(tmp_path / "y.parquet", column="small")
    assert schema.names == ["id", "small"]
    assert str(schema.field("small").type) == "fixed_size_list<element: halffloat>[8]"
    np.testing.assert_array_equal(y, runtime(x, batch_size=100).astype(np.float16))
    assert ids[:2] == ["doc0", "doc1"]


def test_parquet_shards_and_no_id_column(tmp_path: Path, runtime, stores) -> None:
    x = stores.vectors(400)
    src = tmp_path / "shards"
    src.mkdir()
    stores.write_parquet(src / "b.parquet", x[150:])
    stores.write_parquet(src / "a.parquet", x[:150])
    compress_store(runtime, src, tmp_path / "out", id_column=None, batch_size=64, progress=False)
    import pyarrow.parquet as pq

    for name, part in (("a.parquet", x[:150]), ("b.parquet", x[150:])):
        table = pq.read_table(tmp_path / "out" / name)
        assert table.column_names == ["vector"]
        y = np.stack(table.column("vector").to_numpy(zero_copy_only=False))
        _check(runtime, y, part, 64)


@pytest.mark.parametrize(("ids", "message"), [
    (["a", "b", "a", "c"], r"x\.parquet: row 2: duplicate id 'a' \(first at row 0\)$"),
    (["a", "b", None, "b"], r"x\.parquet: row 2: the id is null$"),
    ([7, 8, 9, 8], r"x\.parquet: row 3: duplicate id 8 \(first at row 1\)$"),
    # NaN equals no id: value_counts saw the two as a repeat, but no row matched it, so both
    # were carried into the output
    ([1.0, float("nan"), 2.0, float("nan")], r"x\.parquet: row 1: the id is NaN$"),
])
def test_parquet_duplicate_or_null_ids_are_refused_naming_the_row(
    tmp_path: Path, runtime, stores, ids: list[Any], message: str
) -> None:
    # they were carried into the output, where a row's id names it
    stores.write_parquet(tmp_path / "x.parquet", stores.vectors(4), ids=ids, row_group_size=2)
    with pytest.raises(DataError, match=rf"^{tmp_path}/{message}"):
        compress_store(runtime, tmp_path / "x.parquet", tmp_path / "y.parquet", batch_size=2,
                       progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.parquet"]


def test_an_id_repeated_in_another_shard_is_refused_naming_both(
    tmp_path: Path, runtime, stores
) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    src = tmp_path / "shards"
    src.mkdir()
    stores.write_parquet(src / "a.parquet", stores.vectors(3), ids=["k0", "k1", "k2"])
    x = stores.vectors(3, seed=1)
    vec = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])
    ids = pa.array(["k3", "k4", "k1"]).dictionary_encode()  # ids as pandas' categories write them
    pq.write_table(pa.table({"id": ids, "vector": vec}), src / "b.parquet")
    with pytest.raises(DataError, match=rf"^{src / 'b.parquet'}: row 2 \(row 5 of {src}\): "
                                        rf"duplicate id 'k1' \(first at {src / 'a.parquet'}: "
                                        r"row 1\)$"):
        compress_store(runtime, src, tmp_path / "out", progress=False)
    compress_store(runtime, src, tmp_path / "out", id_column=None, progress=False)  # no ids


@pytest.mark.parametrize(("types", "ids", "shown"), [
    (("int32", "int64"), ([0, 1, 2], [3, 1, 4]), "1"),
    (("int64", "uint64"), ([0, 1, 2], [3, 1, 4]), "1"),
    (("string", "large_string"), (["k0", "k1", "k2"], ["k3", "k1", "k4"]), "'k1'"),
])
def test_an_id_repeated_in_a_shard_of_another_width_is_refused(
    tmp_path: Path, runtime, stores, types: tuple[str, str], ids: tuple[list[Any], list[Any]],
    shown: str,
) -> None:
    # Shards from two writers (pandas, Polars) store one kind of id at two widths; a reader of
    # the output unifies them, so the repeat was carried into it as two rows of one name.
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    src = tmp_path / "shards"
    src.mkdir()
    for name, arrow_type, shard_ids, seed in zip("ab", types, ids, (0, 1), strict=True):
        x = stores.vectors(3, seed=seed)
        vec = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])
        table = pa.table({"id": pa.array(shard_ids, type=arrow_type), "vector": vec})
        pq.write_table(table, src / f"{name}.parquet")
    with pytest.raises(DataError, match=rf"^{src / 'b.parquet'}: row 1 \(row 4 of {src}\): "
                                        rf"duplicate id {shown} \(first at "
                                        rf"{src / 'a.parquet'}: row 1\)$"):
        compress_store(runtime, src, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_shards_with_ids_of_two_kinds_are_refused_naming_both(
    tmp_path: Path, runtime, stores
) -> None:
    # A reader of the output unifies the shards' id types (5 becomes '5'), so the ids it
    # reads could repeat where no comparison of a string with an integer could tell.
    src = tmp_path / "shards"
    src.mkdir()
    stores.write_parquet(src / "a.parquet", stores.vectors(3), ids=["5", "6", "7"])
    stores.write_parquet(src / "b.parquet", stores.vectors(3, seed=1), ids=[8, 5, 9])
    with pytest.raises(DataError, match=rf"^{src / 'b.parquet'}: id column 'id' holds int64, "
                                        rf"but {src / 'a.parquet'}'s holds string; give every "
                                        r"shard ids of one type$"):
        compress_store(runtime, src, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    compress_store(runtime, src, tmp_path / "out", id_column=None, progress=False)  # no ids


def test_nan_row_named_with_global_index_across_shards(tmp_path: Path, runtime, stores) -> None:
    x = stores.vectors(700)
    x[523, 5] = np.inf
    src = tmp_path / "shards"
    src.mkdir()
    np.save(src / "s0.npy", x[:300])
    np.save(src / "s1.npy", x[300:])
    with pytest.raises(DataError, match=r"s1\.npy: row 223 \(row 523 of .*shards\) contains NaN"):
        compress_store(runtime, src, tmp_path / "out", batch_size=64, progress=False)
    # Nothing at the output, and no work folder left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shards"]


def test_zero_row_named_and_scaled_rows_normalised(tmp_path: Path, runtime, stores) -> None:
    x = stores.vectors(300)
    np.save(tmp_path / "scaled.npy", x * np.float32(1e30))
    compress_store(runtime, tmp_path / "scaled.npy", tmp_path / "y.npy", progress=False)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), runtime(x), atol=1e-6, rtol=0)
    x[211] = 0
    stores.write_parquet(tmp_path / "x.parquet", x, row_group_size=50)
    with pytest.raises(DataError, match=r"x\.parquet: row 211 \(id 'doc211'\) has norm 0"):
        compress_store(
            runtime, tmp_path / "x.parquet", tmp_path / "y.parquet", batch_size=64, progress=False
        )
    assert not (tmp_path / "y.parquet").exists()


def test_nan_row_in_parquet_names_row_and_id(tmp_path: Path, runtime, stores) -> None:
    x = stores.vectors(300)
    x[211, 0] = np.nan
    stores.write_parquet(tmp_path / "x.parquet", x, row_group_size=50)
    with pytest.raises(DataError, match=r"x\.parquet: row 211 \(id 'doc211'\) contains NaN"):
        compress_store(
            runtime, tmp_path / "x.parquet", tmp_path / "y.parquet", batch_size=64, progress=False
        )
    assert not (tmp_path / "y.parquet").exists()


@pytest.mark.parametrize("fmt", ["npy", "parquet"])
def test_a_float64_value_beyond_float32_is_the_row_error_alone(
    tmp_path: Path, runtime, stores, fmt: str
) -> None:
    """numpy's "overflow encountered in cast" warning was printed above the one-line error,
    and the error said "contains NaN or inf" of a row holding neither."""
    x = stores.vectors(300).astype(np.float64)
    x[42, 3] = 1e300
    x[50, 1] = np.nan  # after it: the first bad row is the one named
    src = tmp_path / f"x.{fmt}"
    if fmt == "npy":
        np.save(src, x)
    else:
        stores.write_parquet(src, x, row_group_size=50)
    # a Parquet row is named by its id too, as a NaN row is (it was not, for this problem)
    ident = "" if fmt == "npy" else r" \(id 'doc42'\)"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match=rf"^{src}: row 42{ident} has a value beyond "
                                            r"float32's range \(about 3\.4e38\)$"):
            compress_store(runtime, src, tmp_path / f"y.{fmt}", batch_size=64, progress=False)
    x[42, 3] = 0.5
    if fmt == "npy":
        np.save(src, x)
    else:
        stores.write_parquet(src, x, row_group_size=50)
    with pytest.raises(DataError, match=rf"^{src}: row 50 (\(id 'doc50'\) )?contains NaN or "
                                        "inf$"):
        compress_store(runtime, src, tmp_path / f"y.{fmt}", batch_size=64, progress=False)


def test_wrong_dimension_stops_before_any_work(tmp_path: Path, runtime, stores) -> None:
    np.save(tmp_path / "x.npy", stores.vectors(10, dim=48))
    with pytest.raises(DataError, match=r"x\.npy: vectors have dimension 48, .* expects 32"):
        compress_store(runtime, tmp_path / "x.npy", tmp_path / "y.npy", progress=False)
    stores.write_parquet(tmp_path / "x.parquet", stores.vectors(10, dim=16))
    with pytest.raises(DataError, match=r"x\.parquet: vectors have dimension 16"):
        compress_store(runtime, tmp_path / "x.parquet", tmp_path / "y.parquet", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy", "x.parquet"]


def test_parquet_ragged_list_row_is_named(tmp_path: Path, runtime, stores) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [[0.1] * 32, [0.2] * 32, [0.3] * 31]
    pq.write_table(pa.table({"id": ["a", "b", "c"], "vector": rows}), tmp_path / "x.parquet")
    with pytest.raises(DataError,
                       match=r"row 2 \(id 'c'\): the vector has dimension 31, expected 32"):
        compress_store(runtime, tmp_path / "x.parquet", tmp_path / "y.parquet", progress=False)


def test_a_bad_parquet_row_past_the_first_chunk_is_named_by_its_row(
    tmp_path: Path, runtime, stores
) -> None:
    """A row counted from its chunk's start was named as the row of the whole file (a mutant
    that dropped the chunk's offset passed: every ragged row tested sat in the first chunk)."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [list(v) for v in stores.vectors(300)]
    rows[211] = rows[211][:31]
    pq.write_table(pa.table({"id": [f"doc{i}" for i in range(300)], "vector": rows}),
                   tmp_path / "x.parquet", row_group_size=50)
    with pytest.raises(DataError, match=r"row 211 \(id 'doc211'\): the vector has dimension "
                                        "31, expected 32"):
        compress_store(runtime, tmp_path / "x.parquet", tmp_path / "y.parquet", batch_size=64,
                       progress=False)


def test_a_saved_state_without_its_data_folder_starts_over(
    tmp_path: Path, runtime, stores, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state of this very job, its data folder gone: resumed, the run failed on the
    missing folder (a mutant that resumed on the state alone passed every test)."""
    np.save(tmp_path / "x.npy", stores.vectors(300))
    with monkeypatch.context() as m:
        _interrupt_after(m, 2)
        with pytest.raises(_Interrupt):
            compress_store(runtime, tmp_path / "x.npy", tmp_path / "y.npy", batch_size=100)
    shutil.rmtree(resume.Partial(tmp_path / "y.npy").data)
    result = compress_store(runtime, tmp_path / "x.npy", tmp_path / "y.npy", batch_size=100,
                            progress=False)
    assert result.resumed_rows == 0
    assert any("its data folder is missing; starting over" in r.getMessage()
               for r in caplog.records)
    _check(runtime, np.load(tmp_path / "y.npy"), stores.vectors(300), 100)


@pytest.mark.parametrize("shards", [False, True])
def test_a_list_columns_first_row_of_another_dimension_is_named_as_a_row(
    tmp_path: Path, runtime, stores, shards: bool
) -> None:
    """A list column declares no dimension, so the file's was its first row's: a ragged first
    row was 'x.parquet: vectors have dimension 31' (the whole file blamed, no row)."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    src = tmp_path / "in"
    src.mkdir()
    rows = [[0.1] * 31, [0.2] * 32, [0.3] * 32]
    if shards:
        stores.write_parquet(src / "a.parquet", stores.vectors(4), ids=["p", "q", "r", "s"])
    pq.write_table(pa.table({"id": ["a", "b", "c"], "vector": rows}), src / "x.parquet")
    with pytest.raises(DataError, match=r"x\.parquet: row 0: the vector has dimension 31, but "
                                        r"the model expects 32"):
        compress_store(runtime, src if shards else src / "x.parquet", tmp_path / "out",
                       progress=False)


def _damaged_parquet(path: Path, stores: Any, column: str) -> None:
    """A Parquet file of 200 rows, ids and vectors, whose `column` (stored first) has its
    first page overwritten."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    x = stores.vectors(200)
    data = {"id": pa.array([f"doc{i}" for i in range(200)]),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), x.shape[1])}
    first = {column: data.pop(column)}
    pq.write_table(pa.table({**first, **data}), path, compression="none", use_dictionary=False)
    damaged = bytearray(path.read_bytes())
    damaged[8:400] = b"\xff" * 392  # the first page: its header and values
    path.write_bytes(bytes(damaged))


@pytest.mark.parametrize("column", ["id", "vector"])
def test_a_damaged_parquet_file_is_one_error_naming_it(tmp_path: Path, runtime, stores,
                                                       column: str) -> None:
    """A damaged id column was a pyarrow traceback; a damaged vector column an error naming
    neither the file nor the problem ('Unexpected end of stream'), which left its work folder
    behind for a rerun that could only fail the same way."""
    src = tmp_path / "x.parquet"
    _damaged_parquet(src, stores, column)
    with pytest.raises(DataError) as caught:
        compress_store(runtime, src, tmp_path / "y.parquet", batch_size=50, progress=False)
    message = str(caught.value)
    assert message.startswith(f"{src}: not a readable Parquet file (") and "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.parquet"]


def test_a_shard_whose_name_has_a_line_break_is_refused(tmp_path: Path, runtime,
                                                        stores) -> None:
    """The output folder lists its files one a line: a shard named 'b\\nc.npy' was listed as
    two files, and a rerun with overwrite then refused dive's own output as holding a file
    dive did not write."""
    src = tmp_path / "in"
    src.mkdir()
    np.save(src / "a.npy", stores.vectors(5))
    np.save(src / "b\nc.npy", stores.vectors(5))
    with pytest.raises(DataError, match=r"shard 'b\\nc\.npy' has a line break"):
        compress_store(runtime, src, tmp_path / "out", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_bad_inputs_and_settings(tmp_path: Path, runtime, stores) -> None:
    np.save(tmp_path / "one_d.npy", np.zeros(32, dtype=np.float32))
    with pytest.raises(DataError, match=r"one_d\.npy: expected a 2-d"):
        compress_store(runtime, tmp_path / "one_d.npy", tmp_path / "y.npy", progress=False)
    with pytest.raises(DataError, match=r"missing\.npy: no such file"):
        compress_store(runtime, tmp_path / "missing.npy", tmp_path / "y.npy", progress=False)
    (tmp_path / "x.txt").write_text("1 2 3")
    with pytest.raises(DataError, match=r"x\.txt: unknown store format"):
        compress_store(runtime, tmp_path / "x.txt", tmp_path / "y.npy", progress=False)
    np.save(tmp_path / "x.npy", stores.vectors(5))
    with pytest.raises(DiveError, match="dtype must be one of float32, float16"):
        compress_store(runtime, tmp_path / "x.npy", tmp_path / "y.npy", dtype="int8")  # type: ignore[arg-type]
    with pytest.raises(DiveError, match="batch_size must be a positive integer"):
        compress_store(runtime, tmp_path / "x.npy", tmp_path / "y.npy", batch_size=0)
    stores.write_parquet(tmp_path / "x.parquet", stores.vectors(5))
    with pytest.raises(DataError, match=r"no id column 'key' \(columns: id, vector\)"):
        compress_store(runtime, tmp_path / "x.parquet", tmp_path / "y.pq", id_column="key")


def test_a_column_name_the_file_repeats_is_one_line(tmp_path: Path, runtime, stores) -> None:
    """pyarrow's schema.field() raised its KeyError ("does not exist") for a repeated name."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    x = stores.vectors(5)
    vec = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])
    ids = pa.array([f"doc{i}" for i in range(5)])
    pq.write_table(pa.Table.from_arrays([ids, vec, vec], names=["id", "vector", "vector"]),
                   tmp_path / "twice.parquet")
    pq.write_table(pa.Table.from_arrays([ids, ids, vec], names=["id", "id", "vector"]),
                   tmp_path / "ids.parquet")
    for name, column in (("twice", "vector"), ("ids", "id")):
        with pytest.raises(DataError, match=rf"{name}\.parquet: 2 columns are named '{column}'"):
            compress_store(runtime, tmp_path / f"{name}.parquet", tmp_path / "y.pq",
                           progress=False)
    assert not (tmp_path / "y.pq").exists()


def test_batch_size_takes_a_numpy_integer_and_refuses_a_bool(tmp_path: Path, runtime,
                                                            stores) -> None:
    x = stores.vectors(30)
    np.save(tmp_path / "x.npy", x)
    result = compress_store(runtime, tmp_path / "x.npy", tmp_path / "y.npy",
                            batch_size=np.int64(10), progress=False)
    assert result.rows == 30
    _check(runtime, np.load(tmp_path / "y.npy"), x, 10)
    with pytest.raises(DiveError, match=r"^batch_size must be a positive integer, got True$"):
        compress_store(runtime, tmp_path / "x.npy", tmp_path / "z.npy", batch_size=True)


@pytest.mark.parametrize("shards", [False, True])
def test_a_batch_size_past_the_rows_reads_parquet_whole(tmp_path: Path, runtime, stores,
                                                        shards: bool) -> None:
    """A batch size of 2**63 or more (the CLI takes any) raised Arrow's OverflowError while
    reading Parquet, a traceback; a .npy input took it."""
    x = stores.vectors(30)
    source = tmp_path / ("shards" if shards else "x.parquet")
    if shards:
        source.mkdir()
        for i in range(2):
            stores.write_parquet(source / f"s{i}.parquet", x[15 * i: 15 * (i + 1)],
                                 ids=[str(j) for j in range(15 * i, 15 * (i + 1))])
    else:
        stores.write_parquet(source, x, ids=[str(j) for j in range(30)])
    out = tmp_path / ("out" if shards else "y.parquet")
    result = compress_store(runtime, source, out, batch_size=2**64, progress=False)
    assert result.rows == 30
    files = sorted(out.glob("*.parquet")) if shards else [out]
    ids, y = [], []
    for file in files:
        file_ids, file_y, _ = stores.read_parquet(file)
        ids += file_ids
        y.append(file_y)
    assert ids == [str(j) for j in range(30)]
    np.testing.assert_allclose(np.concatenate(y), runtime(x), rtol=0, atol=1e-6)


def test_integer_vectors_are_refused_as_codes(tmp_path: Path, runtime, stores) -> None:
    # int8 codes read as floats would be compressed into wrong vectors without a word
    codes = np.round(stores.vectors(5) * 100).astype(np.int8)
    np.save(tmp_path / "codes.npy", codes)
    with pytest.raises(DataError, match=r"codes\.npy holds integers \(int8\).*dequantized"):
        compress_store(runtime, tmp_path / "codes.npy", tmp_path / "y.npy", progress=False)
    stores.write_parquet(tmp_path / "codes.parquet", codes)
    with pytest.raises(DataError, match=r"column 'vector' holds integers \(int8\)"):
        compress_store(runtime, tmp_path / "codes.parquet", tmp_path / "y.pq", progress=False)
    assert not (tmp_path / "y.npy").exists() and not (tmp_path / "y.pq").exists()


def test_output_suffix_must_match_the_output_format(tmp_path: Path, runtime, stores) -> None:
    np.save(tmp_path / "x.npy", stores.vectors(5))
    stores.write_parquet(tmp_path / "x.parquet", stores.vectors(5))
    (tmp_path / "shards").mkdir()
    np.save(tmp_path / "shards" / "s0.npy", stores.vectors(5))
    for src, out, message in (
        ("x.parquet", "o.npy", r"o\.npy: the output is a parquet file like the input; name it "
                               r"\*\.parquet"),
        ("x.npy", "o.parquet", r"o\.parquet: the output is a npy file like the input; name it "
                               r"\*\.npy"),
        ("x.npy", "o", r"name it \*\.npy"),
        ("shards", "o.npy", r"o\.npy: a folder of shards compresses into a folder"),
    ):
        with pytest.raises(DiveError, match=message):
            compress_store(runtime, tmp_path / src, tmp_path / out, progress=False)
        assert not (tmp_path / out).exists()
    assert not list(tmp_path.glob(".*"))  # no partial folder either


def test_existing_output_is_not_clobbered(tmp_path: Path, runtime, stores) -> None:
    x = stores.vectors(100)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", x[:3, :8])  # an earlier output
    precious = (tmp_path / "y.npy").read_bytes()
    with pytest.raises(DiveError, match=r"y\.npy: already exists; pass overwrite=True"):
        compress_store(runtime, tmp_path / "x.npy", tmp_path / "y.npy", progress=False)
    assert (tmp_path / "y.npy").read_bytes() == precious
    with pytest.raises(DiveError, match="must not be, contain or lie inside the input"):
        compress_store(runtime, tmp_path / "x.npy", tmp_path / "x.npy", overwrite=True)

    # With overwrite, a failing run still leaves the old output alone...
    bad = x.copy()
    bad[99] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(DataError, match="row 99"):
        compress_store(
            runtime, tmp_path / "bad.npy", tmp_path / "y.npy", overwrite=True, progress=False
        )
    assert (tmp_path / "y.npy").read_bytes() == precious
    # ... and a successful one replaces it only at the end.
    compress_store(runtime, tmp_path / "x.npy", tmp_path / "y.npy", overwrite=True, progress=False)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), runtime(x))


def test_an_empty_folder_made_for_a_folder_output_is_written_into(tmp_path: Path, runtime,
                                                                 stores) -> None:
    """It was refused as "not a compress output folder" whatever overwrite said, though it
    holds nothing to lose (a model folder, an embeddings folder take one)."""
    src = tmp_path / "in"
    src.mkdir()
    np.save(src / "a.npy", stores.vectors(20))
    (tmp_path / "out").mkdir(mode=0o750)
    compress_store(runtime, src, tmp_path / "out", progress=False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        ".dive-compress.json", ".dive-files", "a.npy"]
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o750
    (tmp_path / "file_out").mkdir()
    with pytest.raises(DiveError, match="file_out: exists and is not a compress output"):
        compress_store(runtime, src / "a.npy", tmp_path / "file_out", progress=False)


def test_the_current_folder_as_the_output_is_refused_not_replaced_under_the_shell(
    tmp_path: Path, runtime, stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dive compress --output .` put its work folder at "..partial" inside the output, then
    failed "already exists (another run wrote it meanwhile)". Then it wrote a new folder in
    its place and removed the old one: the shell was left in a deleted folder, and its next
    command failed with "No such file or directory", naming nothing."""
    src = tmp_path / "in"
    src.mkdir()
    np.save(src / "a.npy", stores.vectors(20))
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path / "out")
    held = os.stat(".")
    for output in (".", str(tmp_path / "out")):
        with pytest.raises(DiveError, match="is the current folder"):
            compress_store(runtime, src, output, progress=False)
    assert os.path.samestat(os.stat(tmp_path / "out"), held)  # still the shell's folder
    assert list((tmp_path / "out").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]


def test_a_failed_run_leaves_no_output_folder_it_made(tmp_path: Path, runtime, stores) -> None:
    x = stores.vectors(20)
    x[3] = np.nan
    np.save(tmp_path / "bad.npy", x)
    with pytest.raises(DataError, match="row 3"):
        compress_store(runtime, tmp_path / "bad.npy", tmp_path / "new" / "sub" / "c.npy",
                       progress=False)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("y.npy", b"my notes\n"),
        ("y.npy", b"\x93NUMPY"),  # a header cut short
        ("y.npy", None),  # a 1-d array: no output of compress
        ("y.parquet", b"my notes\n"),
        ("y.parquet", b"PAR1 not really PAR2"),
    ],
    ids=["text as npy", "cut npy", "1-d npy", "text as parquet", "parquet head only"],
)
def test_overwrite_replaces_a_single_file_only_if_it_reads_as_an_output(
    tmp_path: Path, runtime, stores, name: str, content: bytes | None
) -> None:
    x = stores.vectors(20)
    np.save(tmp_path / "x.npy", x)
    stores.write_parquet(tmp_path / "x.parquet", x)
    src = tmp_path / ("x.parquet" if name.endswith(".parquet") else "x.npy")
    target = tmp_path / name
    if content is None:
        np.save(target, np.zeros(4, dtype=np.float32))
    else:
        target.write_bytes(content)
    before = target.read_bytes()
    for overwrite in (True, False):
        with pytest.raises(DiveError, match=rf"^{tmp_path}/y\.\w+: exists and is not a compress "
                           "output .*refusing to replace it"):
            compress_store(runtime, src, target, overwrite=overwrite, progress=False)
    assert target.read_bytes() == before
    assert not list(tmp_path.glob(".*"))  # no partial folder either
    # An earlier output of the same format is replaced.
    target.unlink()
    compress_store(runtime, src, target, progress=False)
    compress_store(runtime, src, target, overwrite=True, progress=False)
    assert target.read_bytes() != before


@pytest.mark.parametrize(("content", "replaced"), [
    (b"PAR1" + b"\0" * 4 + b"PAR1", True),  # magic, footer length, magic: the least Parquet
    (b"PAR1" + b"\0" * 3 + b"PAR1", False),  # the magic at both ends, no room for a footer
], ids=["12 bytes", "11 bytes"])
def test_a_parquet_output_is_told_by_its_magic_bytes_from_12_bytes_on(
    tmp_path: Path, runtime, stores, content: bytes, replaced: bool
) -> None:
    """Guards the documented least size of a Parquet file (4 + 4 + 4 bytes): a 12-byte file
    with the magic at both ends was not read as one, and overwrite refused to replace it."""
    stores.write_parquet(tmp_path / "x.parquet", stores.vectors(20))
    target = tmp_path / "y.parquet"
    target.write_bytes(content)
    if replaced:
        compress_store(runtime, tmp_path / "x.parquet", target, overwrite=True, progress=False)
        assert target.read_bytes() != content
    else:
        with pytest.raises(DiveError, match=r"y\.parquet: exists and is not a compress output"):
            compress_store(runtime, tmp_path / "x.parquet", target, overwrite=True,
                           progress=False)
        assert target.read_bytes() == content


class _Interrupt(Exception):
    pass


def _interrupt_after(monkeypatch: pytest.MonkeyPatch, chunks: int) -> None:
    """Make the next run stop (like a kill) after `chunks` chunks were recorded as done."""
    original = stream_module._Job.chunk_done
    calls = {"n": 0}

    def chunk_done(self: Any, rows_done: int) -> None:
        original(self, rows_done)
        calls["n"] += 1
        if calls["n"] == chunks:
            raise _Interrupt

    monkeypatch.setattr(stream_module._Job, "chunk_done", chunk_done)


@pytest.mark.parametrize("kind", ["npy", "parquet", "npy-shards", "parquet-shards"])
def test_interrupted_run_resumes_to_identical_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime, stores, kind: str
) -> None:
    x = stores.vectors(1000)
    suffix = ".npy" if kind.startswith("npy") else ".parquet"
    if kind.endswith("shards"):
        src = tmp_path / "in"
        src.mkdir()
        for i, (lo, hi) in enumerate([(0, 420), (420, 1000)]):
            if suffix == ".npy":
                np.save(src / f"s{i}.npy", x[lo:hi])
            else:
                stores.write_parquet(src / f"s{i}.parquet", x[lo:hi], row_group_size=70,
                                     ids=[f"doc{j}" for j in range(lo, hi)])
        out, ref = tmp_path / "out", tmp_path / "ref"
    else:
        src = tmp_path / f"x{suffix}"
        if suffix == ".npy":
            np.save(src, x)
        else:
            stores.write_parquet(src, x, row_group_size=70)
        out, ref = tmp_path / f"y{suffix}", tmp_path / f"ref{suffix}"
    compress_store(runtime, src, ref, batch_size=100, progress=False)

    with monkeypatch.context() as m:
        _interrupt_after(m, 6)  # inside the second shard for the shard folders
        with pytest.raises(_Interrupt):
            compress_store(runtime, src, out, batch_size=100, progress=False)
    assert not out.exists()
    assert (tmp_path / f".{out.name}.partial" / "state.json").is_file()

    result = compress_store(runtime, src, out, batch_size=100, progress=False)
    # Six chunks: 100 rows each, but the first shard (420 rows) ends with a 20-row chunk.
    assert result.resumed_rows == (520 if kind.endswith("shards") else 600)
    if out.is_dir():
        names = sorted(p.name for p in out.iterdir())
        assert names == sorted(p.name for p in ref.iterdir()) == sorted(
            [resume.OUTPUT_MARKER, MANIFEST, f"s0{suffix}", f"s1{suffix}"])
        pairs = [(out / name, ref / name) for name in names]
    else:
        pairs = [(out, ref)]
    for got, want in pairs:
        assert got.read_bytes() == want.read_bytes(), got.name
    assert not (tmp_path / f".{out.name}.partial").exists()


def test_resume_with_changed_input_or_model_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime, stores
) -> None:
    np.save(tmp_path / "x.npy", stores.vectors(1000))
    with monkeypatch.context() as m:
        _interrupt_after(m, 3)
        with pytest.raises(_Interrupt):
            compress_store(runtime, tmp_path / "x.npy", tmp_path / "y.npy", batch_size=100)
    # A different store under the same name: its identity (shape, size, mtime) differs.
    x2 = stores.vectors(900, seed=9)
    np.save(tmp_path / "x.npy", x2)
    result = compress_store(
        runtime, tmp_path / "x.npy", tmp_path / "y.npy", batch_size=100, progress=False
    )
    assert result.resumed_rows == 0
    _check(runtime, np.load(tmp_path / "y.npy"), x2, 100)

    # A different model (or batch size) restarts too.
    with monkeypatch.context() as m:
        _interrupt_after(m, 3)
        with pytest.raises(_Interrupt):
            compress_store(runtime, tmp_path / "x.npy", tmp_path / "z.npy", batch_size=100)
    other = Runtime(input_dim=32, projection=np.eye(32, dtype=np.float32)[:4])
    result = compress_store(other, tmp_path / "x.npy", tmp_path / "z.npy", batch_size=100)
    assert result.resumed_rows == 0
    np.testing.assert_array_equal(np.load(tmp_path / "z.npy"), other(x2, batch_size=100))


def test_a_second_run_on_the_same_output_fails_at_once_and_leaves_the_first_ones_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime, stores
) -> None:
    np.save(tmp_path / "x.npy", stores.vectors(1000))
    with monkeypatch.context() as m:  # a first run's saved work, to resume from
        _interrupt_after(m, 3)
        with pytest.raises(_Interrupt):
            compress_store(runtime, tmp_path / "x.npy", tmp_path / "y.npy", batch_size=100)
    partial = resume.Partial(tmp_path / "y.npy")
    saved = partial.state_path.read_bytes()
    other = Runtime(input_dim=32, projection=np.eye(32, dtype=np.float32)[:4])
    with partial.held():  # as a run still working on it holds it
        # another model would clear the folder and start over; it must not while held
        with pytest.raises(DiveError, match=rf"^{tmp_path / 'y.npy'}: another run is writing "
                                            r"this output now"):
            compress_store(other, tmp_path / "x.npy", tmp_path / "y.npy", batch_size=100)
        assert partial.state_path.read_bytes() == saved
    result = compress_store(runtime, tmp_path / "x.npy", tmp_path / "y.npy", batch_size=100)
    assert result.resumed_rows == 300  # the first run's work was kept for it
    assert not partial.root.exists()


def test_a_store_without_vectors_is_refused_naming_it(tmp_path: Path, runtime, stores) -> None:
    # it wrote an empty output and exited 0: a wrong or unfinished file went unnoticed
    empty = np.zeros((0, 32), dtype=np.float32)
    np.save(tmp_path / "x.npy", empty)
    stores.write_parquet(tmp_path / "x.parquet", empty)
    (tmp_path / "shards").mkdir()
    np.save(tmp_path / "shards" / "a.npy", empty)
    for src, dst in (("x.npy", "y.npy"), ("x.parquet", "y.parquet"), ("shards", "out")):
        with pytest.raises(DataError, match=rf"^{tmp_path / src}: no vectors to compress "
                                            r"\(0 rows\)$"):
            compress_store(runtime, tmp_path / src, tmp_path / dst, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shards", "x.npy", "x.parquet"]
    # an empty shard beside others is fine
    np.save(tmp_path / "shards" / "b.npy", stores.vectors(5))
    result = compress_store(runtime, tmp_path / "shards", tmp_path / "out", progress=False)
    assert result.rows == 5 and np.load(tmp_path / "out" / "a.npy").shape == (0, 8)


@pytest.mark.parametrize(("first", "message"), [
    # it said "no vectors (the file has no rows)" of a file of three rows
    (None, r"x\.parquet: row 0: the vector is null$"),
    # it blamed row 1 of being unlike row 0 without saying where the 7 came from
    ([0.1] * 7, r"row 1 \(id 'b'\): the vector has dimension 8, expected 7 as in the file's "
            r"first row$"),
])
def test_a_list_column_takes_its_dimension_from_a_valid_first_row(
    tmp_path: Path, first: list[float] | None, message: str
) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from dive.embed.imported import read_parquet_vectors

    rows = [first, [0.2] * 8, [0.3] * 8]
    pq.write_table(pa.table({"id": ["a", "b", "c"], "vector": rows}), tmp_path / "x.parquet")
    with pytest.raises(DataError, match=message):
        read_parquet_vectors(tmp_path / "x.parquet")


def test_a_null_element_names_the_row_that_holds_it(tmp_path: Path) -> None:
    """Guards row = flat index // dim: a null at element 1 of row 2 (flat index 9 of a dim-4
    column) was blamed on row 1."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from dive.embed.imported import read_parquet_vectors

    rows: list[list[float | None]] = [[0.1, 0.2, 0.3, 0.4] for _ in range(5)]
    rows[2] = [0.1, None, 0.3, 0.4]
    vectors = pa.array(rows, pa.list_(pa.float32(), 4))
    pq.write_table(pa.table({"id": list("abcde"), "vector": vectors}), tmp_path / "x.parquet")
    with pytest.raises(DataError, match=r"x\.parquet: row 2 \(id 'c'\): the vector has a null "
                                        r"element$"):
        read_parquet_vectors(tmp_path / "x.parquet")


def test_a_float64_parquet_row_below_float32_is_refused_where_it_is_read_as_float32(
    tmp_path: Path, stores: Any
) -> None:
    """Guards the check after the cast, as for an .npy: an imported row of 1e-50s read as all
    zeros, a vector with no direction."""
    from dive.embed.imported import read_parquet_vectors

    x = stores.vectors(5).astype(np.float64)
    x[3] *= 1e-50
    stores.write_parquet(tmp_path / "x.parquet", x)
    with pytest.raises(DataError, match=r"x\.parquet: row 3 \(id 'doc3'\): has only values "
                                        r"below float32's smallest"):
        read_parquet_vectors(tmp_path / "x.parquet")


def test_reading_a_parquet_store_holds_about_one_row_group(tmp_path: Path) -> None:
    # pyarrow's default pre-buffering held every row group asked for: memory grew with the file
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from dive.scale.formats import inspect_parquet, iter_parquet_chunks

    rows, dim, group = 80_000, 64, 5_000  # 20 MB of vectors in 16 row groups of 1.3 MB
    vectors = np.random.default_rng(0).standard_normal((rows, dim)).astype(np.float32)
    column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dim)
    pq.write_table(pa.table({"id": [str(i) for i in range(rows)], "vector": column}),
                   tmp_path / "x.parquet", row_group_size=group, compression="none")
    layout = inspect_parquet(tmp_path / "x.parquet", "vector", "id")
    before = pa.total_allocated_bytes()
    peak, seen = 0, 0
    for _, table in iter_parquet_chunks(tmp_path / "x.parquet", layout, ["id", "vector"], 0,
                                        1_000):
        peak = max(peak, pa.total_allocated_bytes() - before)
        seen += table.num_rows
    assert seen == rows
    assert peak < vectors.nbytes / 3, f"{peak / 1e6:.1f} MB held for {vectors.nbytes / 1e6} MB"


def test_a_folder_written_before_manifests_keeps_a_file_someone_added(
    tmp_path: Path, runtime, stores
) -> None:
    """A compress output folder without `.dive-files` (dive before manifests) was replaced by
    overwrite with a user's file in it deleted; it is judged by its usual files instead."""
    src = tmp_path / "in"
    src.mkdir()
    np.save(src / "a.npy", stores.vectors(20))
    np.save(src / "b.npy", stores.vectors(10))
    out = tmp_path / "out"
    compress_store(runtime, src, out, progress=False)
    (out / MANIFEST).unlink()  # as an older dive left it
    compress_store(runtime, src, out, overwrite=True, progress=False)  # its own files: fine
    (out / MANIFEST).unlink()
    (out / "NOTES.txt").write_text("mine")
    np.save(out / "labels.npy", np.arange(5))  # named like a part, but no 2-d array
    with pytest.raises(DiveError, match=r"holds files dive did not write \(NOTES.txt, "
                                        r"labels.npy\)"):
        compress_store(runtime, src, out, overwrite=True, progress=False)
    assert (out / "NOTES.txt").read_text() == "mine" and (out / "labels.npy").is_file()


@pytest.mark.parametrize(("edit", "problem"), [
    ({"rows_done": 10**12}, "state.json: 1000000000000 rows and 0 shards done of 1000 rows in 1 "
                            "shards"),
    ({"rows_done": -600}, "state.json: -600 rows"),
    ({"shards_finished": 99}, "state.json: 300 rows and 99 shards done"),
    ({}, "y.npy is a symbolic link"),
])
def test_a_work_folder_whose_progress_is_not_of_this_job_is_damaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime, stores, edit: dict[str, int],
    problem: str,
) -> None:
    """A state past the input resumed to zero rows, exit 0 with all-zero rows; a data file
    that is a link was written through, into another file."""
    x = stores.vectors(1000)
    np.save(tmp_path / "x.npy", x)
    with monkeypatch.context() as m:
        _interrupt_after(m, 3)
        with pytest.raises(_Interrupt):
            compress_store(runtime, tmp_path / "x.npy", tmp_path / "y.npy", batch_size=100)
    partial = tmp_path / ".y.npy.partial"
    state = json.loads((partial / "state.json").read_text())
    (partial / "state.json").write_text(json.dumps({**state, **edit}))
    other = tmp_path / "other.npy"
    if not edit:
        (partial / "data" / "y.npy").rename(other)
        (partial / "data" / "y.npy").symlink_to(other)
        before = other.read_bytes()
    with pytest.raises(DataError, match=f"partial output damaged \\({re.escape(problem)}"):
        compress_store(runtime, tmp_path / "x.npy", tmp_path / "y.npy", batch_size=100,
                       progress=False)
    assert not partial.exists() and not (tmp_path / "y.npy").exists()
    if not edit:
        assert other.read_bytes() == before
    compress_store(runtime, tmp_path / "x.npy", tmp_path / "y.npy", batch_size=100,
                   progress=False)
    _check(runtime, np.load(tmp_path / "y.npy"), x, 100)


def test_a_work_folder_holding_what_no_run_leaves_is_refused_not_emptied(
    tmp_path: Path, runtime, stores
) -> None:
    """`.<output>.partial` without a run's state was emptied whatever it held: a user's
    notes, or the input itself (`--input .out.partial`), deleted."""
    x = stores.vectors(50)
    np.save(tmp_path / "x.npy", x)
    work = tmp_path / ".y.npy.partial"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    with pytest.raises(DiveError, match=r"\.y\.npy\.partial: holds 'notes\.txt', which no run "
                                        r"of dive leaves there"):
        compress_store(runtime, tmp_path / "x.npy", tmp_path / "y.npy", progress=False)
    assert (work / "notes.txt").read_text() == "mine"
    shards = tmp_path / ".out.partial"  # the input is the work folder of its output
    shards.mkdir()
    np.save(shards / "a.npy", x)
    with pytest.raises(DiveError, match=r"holds 'a\.npy', which no run of dive leaves there"):
        compress_store(runtime, shards, tmp_path / "out", progress=False)
    np.testing.assert_array_equal(np.load(shards / "a.npy"), x)


@pytest.mark.parametrize("scale", [1e-43, 1e-50, 1e-200])
def test_a_float64_parquet_row_far_below_float32_is_compressed_as_transform_does(
    tmp_path: Path, runtime, stores, scale: float
) -> None:
    """As an .npy's (below): read as float32 first, a row of 1e-43s kept a few bits of each
    value and came out in another direction, and one of 1e-50s was refused as below
    float32's smallest; `transform` normalises both from their float64 values."""
    import pyarrow.parquet as pq

    x = stores.vectors(300).astype(np.float64)
    x[5] *= scale
    stores.write_parquet(tmp_path / "x.parquet", x, row_group_size=50)
    compress_store(runtime, tmp_path / "x.parquet", tmp_path / "y.parquet", batch_size=64,
                   progress=False)
    y = np.stack(pq.read_table(tmp_path / "y.parquet").column("vector").to_numpy(
        zero_copy_only=False))
    np.testing.assert_allclose(y[5], runtime(x[[5]] / scale)[0], atol=1e-6)


def test_a_parquet_list_column_whose_first_vector_is_empty_says_so(tmp_path: Path, runtime,
                                                                   stores) -> None:
    """Its dimension 0 was taken from row 0, and row 1 blamed for having 8 ("expected 0 as
    in the file's first row")."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [list(map(float, v)) for v in stores.vectors(20)]
    rows[0] = []
    table = pa.table({"id": [f"doc{i}" for i in range(20)],
                      "vector": pa.array(rows, pa.list_(pa.float32()))})
    pq.write_table(table, tmp_path / "x.parquet")
    with pytest.raises(DataError, match=r"x\.parquet: column 'vector': the vectors have "
                                        r"dimension 0 \(row 0 is empty\)$"):
        compress_store(runtime, tmp_path / "x.parquet", tmp_path / "y.parquet", batch_size=64,
                       progress=False)


@pytest.mark.parametrize("overwrite", [True, False])
@pytest.mark.parametrize("single", [True, False])
def test_something_else_made_at_the_output_while_it_ran_is_kept(
    tmp_path: Path, runtime, stores, monkeypatch: pytest.MonkeyPatch, single: bool,
    overwrite: bool,
) -> None:
    """With overwrite, the output was checked when the run started only: a folder made there
    meanwhile (a user's notes, another verb's model) was deleted at the end, exit 0; without
    it, the error said to rerun with overwrite, which then refused the folder. The rerun the
    error asks for publishes the kept work: with its state not saved back, it started over
    (0 of 20 rows resumed) where the message promised no recomputing."""
    src = tmp_path / "in"
    src.mkdir()
    np.save(src / "a.npy", stores.vectors(20))
    dst = tmp_path / ("out.npy" if single else "out")
    run = stream_module._Job.run

    def run_then_someone_writes(self: Any, bar: Any) -> None:
        run(self, bar)
        dst.mkdir()
        (dst / "notes.txt").write_text("precious")

    monkeypatch.setattr(stream_module._Job, "run", run_then_someone_writes)
    with pytest.raises(DiveError, match=r"exists and is not a compress output.*\(it appeared "
                                        r"while this run worked\); the finished output is kept "
                                        r"in .*: move it away and rerun") as caught:
        compress_store(runtime, src / "a.npy" if single else src, dst, overwrite=overwrite,
                       progress=False)
    assert os.listdir(dst) == ["notes.txt"]
    monkeypatch.setattr(stream_module._Job, "run", run)
    os.rename(dst, tmp_path / "moved")  # as the error says: then the rerun publishes it
    rerun = compress_store(runtime, src / "a.npy" if single else src, dst, progress=False)
    assert rerun.resumed_rows == rerun.rows == 20  # the kept work, not a new pass
    out = np.load(dst) if single else np.load(dst / "a.npy")
    np.testing.assert_array_equal(out, runtime(stores.vectors(20)))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("scale", [1e-43, 1e-50, 1e-200])
def test_a_float64_npy_row_far_below_float32_is_compressed_as_transform_does(
    tmp_path: Path, runtime, stores, scale: float
) -> None:
    """Cast before normalising, a row of 1e-43s kept a few bits of each value and came out in
    another direction (cosine 0.999 to transform's, exit 0), and one of 1e-50s was refused
    as all zeros; `transform` normalises both from their float64 values."""
    x = stores.vectors(20).astype(np.float64)
    x[5] *= scale
    np.save(tmp_path / "x.npy", x)
    compress_store(runtime, tmp_path / "x.npy", tmp_path / "y.npy", progress=False)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy")[5], runtime(x[[5]] / scale)[0],
                               atol=1e-6)


def test_the_cli_says_to_rerun_with_overwrite_in_its_own_spelling(
    tmp_path: Path, model_dir: Path, stores, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """"rerun with overwrite=True to publish it without recomputing (--overwrite)": a library
    spelling, and the flag a second time."""
    from dive.cli import main

    np.save(tmp_path / "x.npy", stores.vectors(20))
    dst = tmp_path / "y.npy"
    run = stream_module._Job.run

    def run_then_another_writes(self: Any, bar: Any) -> None:
        run(self, bar)
        np.save(dst, stores.vectors(3)[:, :8])  # an earlier output of the same kind

    monkeypatch.setattr(stream_module._Job, "run", run_then_another_writes)
    argv = ["compress", str(model_dir), "--input", str(tmp_path / "x.npy"), "--output", str(dst),
            "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("rerun with --overwrite to publish it without recomputing"), err
    monkeypatch.setattr(stream_module._Job, "run", run)
    assert main([*argv, "--overwrite"]) == 0
    assert np.load(dst).shape == (20, 8)


def test_an_npy_of_a_format_version_it_cannot_read_is_named_once(
    tmp_path: Path, runtime, stores
) -> None:
    """"v3.npy: not a readable .npy file (v3.npy: unsupported .npy format version (3, 0))"."""
    with open(tmp_path / "v3.npy", "wb") as handle:
        np.lib.format.write_array(handle, stores.vectors(5), version=(3, 0))
    with pytest.raises(DataError, match=r"^[^ ]*v3\.npy: unsupported \.npy format version "
                                        r"\(3, 0\)$"):
        compress_store(runtime, tmp_path / "v3.npy", tmp_path / "y.npy", progress=False)


@pytest.mark.parametrize("finished", [0, 2])
def test_an_interruption_says_whether_a_chunk_was_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime, stores, finished: int
) -> None:
    """Ctrl-C in the first chunk said "finished chunks are saved and a rerun resumes"; it
    then left its hidden work folder, with nothing in it for a rerun to resume."""
    from dive._io import nothing_finished

    src = tmp_path / "x.npy"
    np.save(src, stores.vectors(500))
    original = stream_module._Job.compress
    calls = {"n": 0}

    def compress(self: Any, *args: Any, **kwargs: Any) -> Any:
        if calls["n"] == finished:
            raise KeyboardInterrupt
        calls["n"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(stream_module._Job, "compress", compress)
    with pytest.raises(KeyboardInterrupt) as caught:
        compress_store(runtime, src, tmp_path / "y.npy", batch_size=100, progress=False)
    assert nothing_finished(caught.value) == (finished == 0)
    assert (tmp_path / ".y.npy.partial").is_dir() == (finished > 0)


def test_a_work_folder_without_state_is_not_blamed_on_another_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime, stores,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A run killed while publishing (its state goes first) left a folder whose rerun said it
    was "left by a run with another input, model or settings", an input change never made."""
    np.save(tmp_path / "x.npy", stores.vectors(1000))
    with monkeypatch.context() as m:
        _interrupt_after(m, 3)
        with pytest.raises(_Interrupt):
            compress_store(runtime, tmp_path / "x.npy", tmp_path / "y.npy", batch_size=100)
    partial = resume.Partial(tmp_path / "y.npy")
    partial.state_path.unlink()  # as a kill between dropping it and the rename leaves it
    with caplog.at_level("WARNING"):
        compress_store(runtime, tmp_path / "x.npy", tmp_path / "y.npy", batch_size=100,
                       progress=False)
    assert f"{partial.root}: left without a state to resume from; starting over" in caplog.text
    assert "another input" not in caplog.text
    caplog.clear()
    other = Runtime(input_dim=32, projection=np.eye(32, dtype=np.float32)[:4])
    with monkeypatch.context() as m:
        _interrupt_after(m, 3)
        with pytest.raises(_Interrupt):
            compress_store(other, tmp_path / "x.npy", tmp_path / "z.npy", batch_size=100)
    with caplog.at_level("WARNING"):
        compress_store(runtime, tmp_path / "x.npy", tmp_path / "z.npy", batch_size=100,
                       progress=False)
    assert "left by a run with another input, model or settings; starting over" in caplog.text
