"""The Ray Data engine on a local 2-CPU cluster computes what the local streaming path does.

Ray cuts batches where its blocks fall, and BLAS may round a row differently by an ulp
depending on its batch, so vectors are compared to 1e-6 (ids and order-free sets exactly).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dive.errors import DataError, DiveError
from dive.scale import compress_store

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def _by_id(table: Any, column: str = "vector") -> tuple[list[str], np.ndarray]:
    table = table.sort_by("id")
    col = table.column(column).combine_chunks()
    y = col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), col.type.list_size)
    return table.column("id").to_pylist(), y


@pytest.fixture()
def store(tmp_path: Path, model_dir: Path, stores) -> tuple[Path, list[str], np.ndarray]:
    """A 3-file Parquet folder and the local engine's output for it, sorted by id."""
    import pyarrow.parquet as pq

    x = stores.vectors(900)
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        ids = [f"doc{j:04d}" for j in range(300 * i, 300 * (i + 1))]
        stores.write_parquet(src / f"s{i}.parquet", x[300 * i : 300 * (i + 1)], ids=ids)
    compress_store(model_dir, src, tmp_path / "local", batch_size=128, progress=False)
    ids, y = _by_id(pq.read_table(tmp_path / "local"))
    return src, ids, y


def test_compress_dataset_matches_local_path(ray_cluster: Any, model_dir: Path, store) -> None:
    from dive.integrations.ray import compress_dataset

    src, ids, expected = store
    ds = ray_cluster.data.read_parquet(str(src))
    out = compress_dataset(ds, model_dir, column="vector", output_column="small", batch_size=128)
    import pyarrow as pa

    got = pa.concat_tables(ray_cluster.get(out.to_arrow_refs()))
    assert got.column_names == ["id", "vector", "small"]
    small = got.schema.field("small").type
    assert pa.types.is_fixed_size_list(small) and small.list_size == 8
    assert small.value_type == pa.float32()
    got_ids, y = _by_id(got, "small")
    assert got_ids == ids
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-6)


def test_cli_engine_ray_and_float16(
    ray_cluster: Any, tmp_path: Path, model_dir: Path, store, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow.parquet as pq

    from dive.cli import main

    src, ids, expected = store
    out = tmp_path / "ray-out"
    argv = ["compress", str(model_dir), "--input", str(src), "--output", str(out)]
    assert main([*argv, "--engine", "ray", "--batch-size", "128", "--dtype", "float16"]) == 0
    assert "compressed 900 vectors on Ray" in capsys.readouterr().out
    table = pq.read_table(out)
    assert table.column_names == ["id", "vector"]
    got_ids, y = _by_id(table)
    assert got_ids == ids
    np.testing.assert_array_equal(y.dtype, np.float16)
    np.testing.assert_allclose(y.astype(np.float32), expected, rtol=0, atol=1e-3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "local", "ray-out"]

    # An existing output is kept without --overwrite.
    assert main([*argv, "--engine", "ray"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_ray_nan_row_named_by_id_and_in_memory_model(
    ray_cluster: Any, tmp_path: Path, runtime, stores
) -> None:
    from dive.integrations.ray import compress_dataset, compress_parquet

    x = stores.vectors(200)
    x[137, 2] = np.nan
    stores.write_parquet(tmp_path / "x.parquet", x)
    with pytest.raises(DataError, match=r"the row with id 'doc137' contains NaN or inf"):
        compress_parquet(runtime, tmp_path / "x.parquet", tmp_path / "y", batch_size=64)
    assert not (tmp_path / "y").exists() and not (tmp_path / ".y.ray-partial").exists()

    ds = ray_cluster.data.read_parquet(str(tmp_path / "x.parquet"))
    with pytest.raises(DataError, match=r"vectors have dimension 32, but the model expects 4"):
        other = type(runtime)(input_dim=4)
        compress_dataset(ds, other)
    with pytest.raises(DiveError, match="dtype must be one of"):
        compress_dataset(ds, runtime, dtype="int8")  # type: ignore[arg-type]
    # a Ray task's UserCodeException once the pipeline ran, not an error before it starts
    with pytest.raises(DiveError, match=r"^output_column is an int; expected a column name"):
        compress_dataset(ds, runtime, output_column=5)  # type: ignore[arg-type]


def test_a_ragged_row_in_a_ray_batch_says_the_model_set_its_dimension(model_dir: Path) -> None:
    """A worker reads each batch at the model's width, not its first row's: a ragged row
    said "expected 32 as in the file's first row", a row the batch may not hold."""
    import pyarrow as pa

    from dive.export import load
    from dive.integrations.ray import CompressBatch

    dim = load(model_dir).input_dim
    rows = pa.array([[0.1] * dim, [0.1] * (dim - 1)], type=pa.list_(pa.float64()))
    batch = pa.table({"id": ["a", "b"], "vector": rows})
    with pytest.raises(DataError, match=rf"^column 'vector': the row with id 'b': the vector "
                                        rf"has dimension {dim - 1}, expected {dim} as the "
                                        r"model takes$"):
        CompressBatch(model_dir, "vector", "out", id_column="id")(batch)


def test_cli_bad_row_on_ray_is_one_line(
    ray_cluster: Any, tmp_path: Path, model_dir: Path, stores,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A worker's DataError reaches the CLI as one line, not Ray's wrapper with its traceback
    (RayTaskError(DataError) is itself a DataError, so it was re-raised as it was)."""
    from dive.cli import main

    x = stores.vectors(200)
    x[137, 2] = np.nan
    stores.write_parquet(tmp_path / "x.parquet", x)
    argv = ["compress", str(model_dir), "--input", str(tmp_path / "x.parquet"), "--output",
            str(tmp_path / "y"), "--engine", "ray", "--batch-size", "64"]
    assert main(argv) == 2
    err = capsys.readouterr().err  # Ray logs its progress before it
    assert err.splitlines()[-1] == (
        f"dive: error: {tmp_path / 'x.parquet'}: column 'vector': the row with id 'doc137' "
        "contains NaN or inf")
    assert "Traceback" not in err and err.count("doc137") == 1  # not Ray's own error records


def test_a_second_ray_run_on_one_output_stops_at_once(
    ray_cluster: Any, tmp_path: Path, runtime, stores
) -> None:
    """The work folder is held as the local engine holds its own: a second run on the same
    output stops with one line and leaves the first one's files (it cleared them, and both
    wrote into one folder that one of them published with the other's files in it)."""
    from dive._io import held
    from dive.integrations.ray import compress_parquet

    stores.write_parquet(tmp_path / "x.parquet", stores.vectors(100))
    work = tmp_path / ".y.ray-partial"
    with held(work, tmp_path / "y"):
        (work / "theirs.parquet").write_bytes(b"a first run's file")
        with pytest.raises(DiveError, match=rf"^{tmp_path / 'y'}: another run is writing this "
                                            "output now"):
            compress_parquet(runtime, tmp_path / "x.parquet", tmp_path / "y")
        assert (work / "theirs.parquet").read_bytes() == b"a first run's file"
    assert not (tmp_path / "y").exists()


def test_a_ray_output_inside_its_input_is_refused(
    ray_cluster: Any, tmp_path: Path, runtime, stores
) -> None:
    """As the local engine refuses it: a rerun would read the earlier output as input."""
    from dive.integrations.ray import compress_parquet

    src = tmp_path / "in"
    src.mkdir()
    stores.write_parquet(src / "x.parquet", stores.vectors(100))
    for dst in (src / "out", src, tmp_path):
        with pytest.raises(DiveError, match="the output must not be, contain or lie inside"):
            compress_parquet(runtime, src, dst, overwrite=True)
    assert sorted(p.name for p in src.iterdir()) == ["x.parquet"]


def test_bad_parquet_input_is_one_line_before_ray_starts(
    ray_cluster: Any, tmp_path: Path, runtime, stores
) -> None:
    """Each input file is checked as the local engine checks it: a missing column, an
    unreadable file or an id column that is the output column were Ray's tracebacks, and
    integer vectors (quantized codes) were compressed as floats without a word."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dive.integrations.ray import compress_parquet

    x = stores.vectors(50)
    stores.write_parquet(tmp_path / "x.parquet", x)
    codes = pa.array([list(map(int, row * 10)) for row in x], pa.list_(pa.int64()))
    pq.write_table(pa.table({"id": [f"doc{i}" for i in range(50)], "vector": codes}),
                   tmp_path / "codes.parquet")
    (tmp_path / "text.parquet").write_text("not parquet")
    (tmp_path / "npy").mkdir()
    np.save(tmp_path / "npy" / "x.npy", x)
    cases = [
        ("x.parquet", {"column": "emb"}, DataError, r"x.parquet: no vector column 'emb'"),
        ("x.parquet", {"id_column": "key"}, DataError, r"x.parquet: no id column 'key'"),
        ("x.parquet", {"output_column": "id"}, DiveError,
         "the id column and the output vector column are both 'id'"),
        ("codes.parquet", {}, DataError, r"holds integers \(int64\), not float embeddings"),
        ("text.parquet", {}, DataError, r"text.parquet: not a readable Parquet file"),
        ("npy", {}, DataError, r"npy: no .parquet files in this folder"),
    ]
    for name, options, error, message in cases:
        with pytest.raises(error, match=message):
            compress_parquet(runtime, tmp_path / name, tmp_path / "y", **options)
        assert not (tmp_path / "y").exists() and not (tmp_path / ".y.ray-partial").exists()
    other = type(runtime)(input_dim=4)
    with pytest.raises(DataError, match=r"x.parquet: vectors have dimension 32, but the model "
                                        "expects 4"):
        compress_parquet(other, tmp_path / "x.parquet", tmp_path / "y")


def test_a_ray_store_without_vectors_is_refused_naming_it(
    ray_cluster: Any, tmp_path: Path, runtime, stores
) -> None:
    """As the local engine refuses it: Ray wrote an empty output and returned 0 rows."""
    from dive.integrations.ray import compress_parquet

    empty = np.zeros((0, 32), dtype=np.float32)
    stores.write_parquet(tmp_path / "x.parquet", empty)
    (tmp_path / "shards").mkdir()
    stores.write_parquet(tmp_path / "shards" / "a.parquet", empty)
    for name in ("x.parquet", "shards"):
        with pytest.raises(DataError, match=rf"^{tmp_path / name}: no vectors to compress "
                                            r"\(0 rows\)$"):
            compress_parquet(runtime, tmp_path / name, tmp_path / "y")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shards", "x.parquet"]


def test_a_broken_parquet_link_is_an_error_naming_it(
    ray_cluster: Any, tmp_path: Path, runtime, stores
) -> None:
    """As the local engine refuses it: Ray skipped it, and its rows were left out of the
    output without a word (in a partitioned store's subfolder too)."""
    from dive.integrations.ray import compress_parquet

    src = tmp_path / "in"
    (src / "day=1").mkdir(parents=True)
    stores.write_parquet(src / "a.parquet", stores.vectors(10))
    stores.write_parquet(src / "day=1" / "b.parquet", stores.vectors(10),
                         ids=[f"b{i}" for i in range(10)])
    (src / "day=1" / "c.parquet").symlink_to(tmp_path / "moved" / "c.parquet")
    with pytest.raises(DataError, match=rf"^{src / 'day=1' / 'c.parquet'}: a broken symbolic "
                                        rf"link \(to {tmp_path / 'moved' / 'c.parquet'}\); "
                                        "fix or remove it$"):
        compress_parquet(runtime, src, tmp_path / "y")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_null_or_duplicate_ids_are_refused_before_ray_starts(
    ray_cluster: Any, tmp_path: Path, model_dir: Path, runtime, stores,
    capsys: pytest.CaptureFixture[str]
) -> None:
    """As the local engine refuses them, file and row named: Ray carried them into the
    output, where a row's id names it."""
    from dive.cli import main
    from dive.integrations.ray import compress_parquet

    stores.write_parquet(tmp_path / "x.parquet", stores.vectors(4), ids=["a", "b", None, "b"])
    with pytest.raises(DataError, match=rf"^{tmp_path / 'x.parquet'}: row 2: the id is null$"):
        compress_parquet(runtime, tmp_path / "x.parquet", tmp_path / "y")
    src = tmp_path / "in"
    (src / "day=1").mkdir(parents=True)
    stores.write_parquet(src / "a.parquet", stores.vectors(3), ids=["k0", "k1", "k2"])
    stores.write_parquet(src / "day=1" / "b.parquet", stores.vectors(3), ids=["k3", "k1", "k4"])
    with pytest.raises(DataError, match=rf"^{src / 'day=1' / 'b.parquet'}: row 1 \(row 4 of "
                                        rf"{src}\): duplicate id 'k1' \(first at "
                                        rf"{src / 'a.parquet'}: row 1\)$"):
        compress_parquet(runtime, src, tmp_path / "y")
    assert main(["compress", str(model_dir), "--input", str(src), "--output",
                 str(tmp_path / "y"), "--engine", "ray"]) == 2
    assert capsys.readouterr().err == (f"dive: error: {src / 'day=1' / 'b.parquet'}: row 1 (row 4 "
                                       f"of {src}): duplicate id 'k1' (first at "
                                       f"{src / 'a.parquet'}: row 1)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "x.parquet"]
    # Without ids the check has nothing to read, and Ray's rows come back in another order
    # with nothing to match them by: that run exited 0 with 1000 of 23350 rows in place.
    line = ("the Ray engine does not keep row order, so its output needs an id column to match "
            "rows back; name one, or use the local engine")
    with pytest.raises(DiveError, match=rf"^{line}$"):
        compress_parquet(runtime, src, tmp_path / "y", id_column=None)
    assert main(["compress", str(model_dir), "--input", str(src), "--output",
                 str(tmp_path / "y"), "--engine", "ray", "--id-column", ""]) == 2
    assert capsys.readouterr().err == f"dive: error: {line} (--id-column)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "x.parquet"]


def test_pq_files_are_read_as_the_local_engine_reads_them(
    ray_cluster: Any, tmp_path: Path, runtime, stores
) -> None:
    """Ray's own listing reads only *.parquet: a .pq file given was its traceback, and the
    .pq files of a folder were left out of the output without a word."""
    import pyarrow.parquet as pq

    from dive.integrations.ray import compress_parquet

    src = tmp_path / "in"
    src.mkdir()
    stores.write_parquet(src / "a.pq", stores.vectors(30), ids=[f"a{i}" for i in range(30)])
    stores.write_parquet(src / "b.parquet", stores.vectors(20), ids=[f"b{i}" for i in range(20)])
    assert compress_parquet(runtime, src, tmp_path / "all") == 50
    assert pq.read_table(tmp_path / "all").num_rows == 50
    assert compress_parquet(runtime, src / "a.pq", tmp_path / "one") == 30


def test_an_interrupted_ray_run_leaves_no_work_folder(
    ray_cluster: Any, tmp_path: Path, runtime, stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C left the hidden work folder with Ray's files in it: the engine does not resume,
    so they were only ever cleared by a rerun."""
    import dive.integrations.ray as dive_ray

    stores.write_parquet(tmp_path / "x.parquet", stores.vectors(20))
    work = tmp_path / ".y.ray-partial"
    ds_write = ray_cluster.data.Dataset.write_parquet

    def interrupted(self: Any, path: str, *args: Any, **kwargs: Any) -> None:
        ds_write(self, path, *args, **kwargs)
        assert any(work.iterdir())
        raise KeyboardInterrupt

    monkeypatch.setattr(ray_cluster.data.Dataset, "write_parquet", interrupted)
    with pytest.raises(KeyboardInterrupt):
        dive_ray.compress_parquet(runtime, tmp_path / "x.parquet", tmp_path / "y")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.parquet"]


def test_an_output_named_with_a_leading_tilde_gets_every_row(
    ray_cluster: Any, tmp_path: Path, model_dir: Path, store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dive takes `~/y` as a folder named `~` (as every other writer does), Ray expanded it:
    the rows went to $HOME, and a folder without them was published ("compressed 0
    vectors", no error)."""
    import pyarrow.parquet as pq

    from dive.integrations.ray import compress_parquet

    src, ids, expected = store
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert compress_parquet(model_dir, src, "~/y", batch_size=128) == 900
    got_ids, y = _by_id(pq.read_table(tmp_path / "~" / "y"))
    assert got_ids == ids
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-6)
    assert not (tmp_path / "home").exists()


def test_a_work_folder_no_run_marked_is_refused_not_emptied(ray_cluster: Any, model_dir: Path,
                                                             tmp_path: Path, stores) -> None:
    """The engine emptied `.<output>.ray-partial` whatever it held: an input kept there was
    deleted, then Ray failed with a traceback, "no files found"."""
    work = tmp_path / ".out.ray-partial"
    work.mkdir()
    stores.write_parquet(work / "in.parquet", stores.vectors(20))
    from dive.integrations.ray import compress_parquet

    with pytest.raises(DiveError, match=r"holds 'in\.parquet', which no run of dive leaves"):
        compress_parquet(model_dir, work, tmp_path / "out")
    assert (work / "in.parquet").is_file()
    # what an interrupted run of a release before the mark left is still a run's
    (work / "in.parquet").rename(tmp_path / "in.parquet")
    stores.write_parquet(work / "0359abc_000000-0.parquet", stores.vectors(20))
    compress_parquet(model_dir, tmp_path / "in.parquet", tmp_path / "out")
    assert not work.exists() and (tmp_path / "out").is_dir()


@pytest.mark.parametrize("name", ["y.parquet", "y.PQ", "y.npy"])
def test_a_ray_output_named_as_a_file_is_refused_as_the_local_engine_refuses_it(
    tmp_path: Path, runtime, stores, name: str
) -> None:
    """`--engine ray --output r.parquet` wrote a folder named r.parquet, which the local
    engine refuses ("drop the '.parquet' suffix")."""
    from dive.integrations.ray import compress_parquet

    stores.write_parquet(tmp_path / "x.parquet", stores.vectors(20))
    suffix = name.rsplit(".", 1)[1]
    with pytest.raises(DiveError, match=rf"y\.{suffix}: the Ray engine writes a folder of "
                                        rf"Parquet files; drop the '\.{suffix}' suffix"):
        compress_parquet(runtime, tmp_path / "x.parquet", tmp_path / name)
    assert not (tmp_path / name).exists()


def test_a_ray_output_not_named_in_utf8_is_refused_before_ray_starts(
    tmp_path: Path, runtime, stores
) -> None:
    """As the local engine refuses it: pyarrow takes UTF-8 paths only."""
    from dive.errors import DataError
    from dive.integrations.ray import compress_parquet

    stores.write_parquet(tmp_path / "x.parquet", stores.vectors(20))
    output = tmp_path / "out" / "bad\udcff"  # the byte 0xff, as Python keeps it
    with pytest.raises(DataError, match=r"out/bad\udcff: Parquet is written \(by pyarrow\) "
                                        "only at a path that is valid UTF-8"):
        compress_parquet(runtime, tmp_path / "x.parquet", output)
    assert not (tmp_path / "out").exists()


def test_a_missing_id_column_is_not_answered_with_advice_ray_refuses(
    tmp_path: Path, runtime, stores
) -> None:
    """"no id column 'nope' ...; pass id_column=None to carry no ids": the Ray engine then
    refused that, as it needs ids to match rows back."""
    from dive.integrations.ray import compress_parquet

    stores.write_parquet(tmp_path / "x.parquet", stores.vectors(20))
    with pytest.raises(DataError, match=r"no id column 'nope' \(columns: [^)]*\)$"):
        compress_parquet(runtime, tmp_path / "x.parquet", tmp_path / "y", id_column="nope")


def test_starting_ray_keeps_the_processs_signal_handlers() -> None:
    """Ray installs its own: a SIGTERM to `dive compress --engine ray` aborted with Ray's
    stack dump and exit 134, not dive's one line and 143."""
    import signal

    from dive.integrations.ray import init_keeping_signals

    def ours(signum: int, frame: object) -> None:
        raise AssertionError("not called")

    class FakeRay:
        def init(self, **options: Any) -> None:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # as Ray's handler replaces ours
            signal.signal(signal.SIGINT, signal.SIG_DFL)

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        signal.signal(signal.SIGTERM, ours)
        signal.signal(signal.SIGINT, ours)
        init_keeping_signals(FakeRay())
        assert signal.getsignal(signal.SIGTERM) is ours
        assert signal.getsignal(signal.SIGINT) is ours
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def test_a_failed_ray_run_leaves_no_output_folder_it_made(
    ray_cluster: Any, tmp_path: Path, runtime, stores
) -> None:
    """The parents of `--output` were made before the work and left, empty, after a bad row."""
    from dive.integrations.ray import compress_parquet

    x = stores.vectors(50)
    x[7] = np.nan
    stores.write_parquet(tmp_path / "x.parquet", x)
    with pytest.raises(DataError, match="contains NaN or inf"):
        compress_parquet(runtime, tmp_path / "x.parquet", tmp_path / "new" / "sub" / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.parquet"]


def test_files_ray_would_leave_out_or_cannot_merge_are_refused_before_ray_starts(
    tmp_path: Path, runtime, stores
) -> None:
    """Ray left the .npy shards among Parquet ones out (exit 0, rows lost, where the local
    engine refuses the folder), and stopped with pyarrow's traceback (or its workers' for ids
    of 2**63) on columns whose types differ between files, which the local engine reads."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dive.integrations.ray import compress_parquet

    x = stores.vectors(40)
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(x[:20].reshape(-1)), x.shape[1])
    strings = [f"doc{i}" for i in range(20)]

    def folder(name: str, *tables: dict[str, Any]) -> Path:
        (tmp_path / name).mkdir()
        for i, columns in enumerate(tables):
            pq.write_table(pa.table({"vector": vectors, **columns}),
                           tmp_path / name / f"s{i}.parquet")
        return tmp_path / name

    cases = [
        (folder("text", {"id": strings, "text": ["t"] * 20},
                {"id": [f"b{i}" for i in range(20)], "text": list(range(20))}),
         r"s1.parquet: its columns' types differ from .*s0.parquet's \(.*Field text"),
        (folder("dictionary", {"id": pa.array(strings).dictionary_encode()},
                {"id": [f"b{i}" for i in range(20)]}),
         r"s1.parquet: its columns' types differ .*Field id"),
        (folder("signs", {"id": pa.array(range(2**63, 2**63 + 20), pa.uint64())},
                {"id": pa.array(range(20), pa.int64())}),
         r"signs: the 'id' column is unsigned in some files and signed in others"),
    ]
    for src, message in cases:
        compress_store(runtime, src, tmp_path / f"{src.name}-local", progress=False)
        with pytest.raises(DataError, match=message):
            compress_parquet(runtime, src, tmp_path / "y")
    mixed = folder("mixed", {"id": strings})
    np.save(mixed / "s1.npy", x[20:])
    with pytest.raises(DataError, match=r"mixed/s1.npy: a .npy shard among Parquet ones, which "
                                        "the Ray engine would leave out"):
        compress_parquet(runtime, mixed, tmp_path / "y")
    assert not (tmp_path / "y").exists()


def test_ray_datas_console_keeps_only_its_warnings_while_dive_runs_a_job(
    capsys: pytest.CaptureFixture[str]
) -> None:
    """Its execution plan, "finished in N seconds" and "Data sink Parquet finished" lines
    came around dive's own result line, and --no-progress drew "Progress bars disabled. To
    enable, set ..."; its errors (a worker's traceback) were kept off already."""
    import logging
    import sys

    from dive.integrations.ray import _console_with_ray_data_warnings_only

    logger = logging.getLogger("ray.data")
    handler, level = logging.StreamHandler(sys.stderr), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with _console_with_ray_data_warnings_only():
            logger.warning("Progress bars disabled. To enable, set ...")
            logger.warning("a warning of its own")
            logger.info("Execution plan of Dataset ...")
            logger.error("a worker's traceback")
        logger.info("after the job")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert capsys.readouterr().err.splitlines() == ["a warning of its own", "after the job"]


def test_a_ray_address_nothing_answers_at_is_refused_before_any_work(
    tmp_path: Path, runtime, stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ray.init` retried an unreachable $RAY_ADDRESS for minutes, printing only Ray's own
    lines, with its work folder made beside the output."""
    import socket

    from dive.integrations.ray import check_ray_address, compress_parquet

    with socket.socket() as listening:  # a port something answers at, then one nothing does
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        check_ray_address(f"127.0.0.1:{listening.getsockname()[1]}")
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()
    for address in ("auto", "", "local"):  # left to Ray
        check_ray_address(address)
    stores.write_parquet(tmp_path / "x.parquet", stores.vectors(20))
    monkeypatch.setenv("RAY_ADDRESS", f"ray://127.0.0.1:{port}")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    with pytest.raises(DiveError, match=rf"^\$RAY_ADDRESS is 'ray://127.0.0.1:{port}', where no "
                                        r"Ray cluster answers \(connection refused\); start"):
        compress_parquet(runtime, tmp_path / "x.parquet", tmp_path / "y", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.parquet"]


def test_a_write_a_worker_cannot_finish_is_one_line_naming_the_output(
    ray_cluster: Any, tmp_path: Path, model_dir: Path, stores,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A disk filled while Ray's workers wrote: the error line was the worker's whole traceback
    (Ray's RayTaskError(OSError), ANSI colours and all), 4 KB on one line."""
    import errno

    from ray.exceptions import RayTaskError

    import dive.integrations.ray as dive_ray
    from dive.cli import main

    class Full:  # what Ray hands the driver when a worker's write fails
        def select_columns(self, keep: list[str]) -> Full:
            return self

        def write_parquet(self, path: str) -> None:
            cause = OSError(errno.ENOSPC, "No space left on device", f"{path}/part.parquet")
            raise RayTaskError("Write", "Traceback (most recent call last): ...",
                               cause).as_instanceof_cause()

    monkeypatch.setattr(dive_ray, "compress_dataset", lambda *args, **kwargs: Full())
    stores.write_parquet(tmp_path / "x.parquet", stores.vectors(50))
    argv = ["compress", str(model_dir), "--input", str(tmp_path / "x.parquet"), "--output",
            str(tmp_path / "y"), "--engine", "ray"]
    assert main(argv) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"dive: error: {tmp_path / 'y'}: no space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.parquet"]


def test_a_ray_start_that_fails_leaves_no_work_folder(
    tmp_path: Path, runtime, stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray was started after the work folder was made, so a start that failed left it."""
    import dive.integrations.ray as dive_ray

    def failed_start(ray: Any) -> None:
        raise DiveError("Ray could not start")

    monkeypatch.setattr(dive_ray, "init_keeping_signals", failed_start)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    stores.write_parquet(tmp_path / "x.parquet", stores.vectors(50))
    with pytest.raises(DiveError, match="Ray could not start"):
        dive_ray.compress_parquet(runtime, tmp_path / "x.parquet", tmp_path / "y")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.parquet"]


@pytest.mark.parametrize(("failed", "named"), [
    ("{work}/part.parquet", "{work}"), (None, "{work}"), ("{src}/s0.parquet", "{src}/s0.parquet")])
def test_a_workers_file_error_is_named_as_the_output_only_when_it_wrote_there(
    tmp_path: Path, failed: str | None, named: str
) -> None:
    """A worker's error reading the input was blamed on the output."""
    import errno

    from ray.exceptions import RayTaskError

    from dive.integrations.ray import _os_error_in

    where = {"work": str(tmp_path / ".y.ray-partial"), "src": str(tmp_path / "in")}
    cause = OSError(errno.EIO, "Input/output error",
                    None if failed is None else failed.format(**where))
    wrapped = RayTaskError("Write", "Traceback ...", cause).as_instanceof_cause()
    found = _os_error_in(wrapped, tmp_path / ".y.ray-partial")
    assert found is not None and (found.errno, found.filename) == (errno.EIO,
                                                                   named.format(**where))


def test_a_ray_run_that_wrote_fewer_rows_than_it_read_is_not_published(
    tmp_path: Path, runtime, stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run whose files hold fewer rows than its input is refused, nothing published (no Ray
    started: the write is replaced by one that loses a row)."""
    import dive.integrations.ray as dive_ray

    def short_write(ray: Any, src: Path, tmp: Path, *args: Any, **kwargs: Any) -> None:
        stores.write_parquet(tmp / "part.parquet", stores.vectors(49))

    monkeypatch.setattr(dive_ray, "_write_compressed", short_write)
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    stores.write_parquet(tmp_path / "x.parquet", stores.vectors(50))
    with pytest.raises(DiveError, match=r"Ray wrote 49 of the 50 rows read; nothing was "):
        dive_ray.compress_parquet(runtime, tmp_path / "x.parquet", tmp_path / "y",
                                  progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.parquet"]  # no work folder left
