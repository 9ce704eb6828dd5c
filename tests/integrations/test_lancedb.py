"""LanceDB, on real tables on disk (no mocks): `compress_table` into a new table or a new column
(ids carried, bounded chunks, resumable, one clear line for bad input) and `search` (flat search
equals the evaluator's exact top-k; IVF probing every partition equals flat; rescoring)."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dive.cli import main
from dive.compressors.pca import PCA
from dive.errors import DataError, DiveError
from dive.evaluate.search import top_k
from dive.export import load, save
from tests.conftest import compress_stopped_while_checked, file_size_limit

lancedb = pytest.importorskip("lancedb")
pa = pytest.importorskip("pyarrow")
from dive.integrations import lancedb as dl  # noqa: E402

DIM, OUT, N = 32, 8, 2000


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def vectors(n: int, seed: int = 0) -> np.ndarray:
    return unit(np.random.default_rng(seed).standard_normal((n, DIM)))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("model") / "pca"
    save(PCA(dim=OUT).fit(vectors(500, seed=123)), folder)
    return folder


def make_table(db: Path, name: str = "docs", x: np.ndarray | None = None,
               column: str = "vector") -> Any:
    x = vectors(N) if x is None else x
    data = pa.table({
        "id": [f"doc{i}" for i in range(len(x))],
        "text": [f"text {i}" for i in range(len(x))],
        column: pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1]),
    })
    return lancedb.connect(str(db)).create_table(name, data)


def read(table: Any, *columns: str) -> dict[str, Any]:
    data = table.to_arrow()
    out = {}
    for name in columns:
        col = data.column(name).combine_chunks()
        out[name] = (col.flatten().to_numpy().reshape(len(col), -1)
                     if pa.types.is_fixed_size_list(col.type) else col.to_pylist())
    return out


def uri(db: Path, name: str) -> str:
    return f"lancedb:{db}/{name}"


def test_compress_into_a_new_table_carries_the_ids(tmp_path: Path, model_dir: Path) -> None:
    db = tmp_path / "db"
    x = vectors(N)
    make_table(db, x=x)
    result = dl.compress_table(model_dir, uri(db, "docs"), uri(db, "small"), batch_size=300,
                               progress=False)
    assert (result.rows, result.input_dim, result.output_dim, result.resumed_rows) == (N, 32, 8, 0)
    small = dl.open_table(uri(db, "small"))
    assert small.schema.names == ["id", "vector"]
    assert str(small.schema.field("vector").type) == "fixed_size_list<item: float>[8]"
    assert json.loads(small.schema.metadata[dl.MARKER_KEY])["format"] == "dive-compress-output"
    got = read(small, "id", "vector")
    assert got["id"] == [f"doc{i}" for i in range(N)]
    np.testing.assert_allclose(got["vector"], load(model_dir).transform(x), atol=1e-6)
    assert not list(db.glob(".*partial"))


def test_a_relative_database_whose_name_reads_as_a_uri_scheme_is_a_folder(
        tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """lancedb and pyarrow read a relative `ldb:x` as a URI: "No object store provider found
    for scheme: 'ldb'" (a traceback), then its parts "Unrecognized filesystem type in URI"."""
    monkeypatch.chdir(tmp_path)
    x = vectors(N)
    make_table(tmp_path / "ldb:x", x=x)
    dl.compress_table(model_dir, "lancedb:ldb:x/docs", "lancedb:ldb:x/small", progress=False)
    got = read(dl.open_table(uri(tmp_path / "ldb:x", "small")), "vector")["vector"]
    np.testing.assert_allclose(got, load(model_dir).transform(x), atol=1e-6)


@pytest.mark.parametrize("scale", [1e-43, 1e-50])
def test_a_float64_row_far_below_float32_is_compressed_as_transform_does(
        tmp_path: Path, model_dir: Path, scale: float) -> None:
    """Read as float32 first, a row of 1e-43s came out in another direction and one of 1e-50s
    was refused; `transform` (and `dive compress` of an .npy) normalise from float64."""
    db = tmp_path / "db"
    x = vectors(N).astype(np.float64)
    x[7] *= scale
    make_table(db, x=x)
    dl.compress_table(model_dir, uri(db, "docs"), uri(db, "small"), progress=False)
    got = read(dl.open_table(uri(db, "small")), "vector")["vector"]
    np.testing.assert_allclose(got[7], load(model_dir).transform(x[[7]] / scale)[0], atol=1e-6)


def test_an_output_column_with_a_slash_leaves_no_folder_behind(tmp_path: Path,
                                                               model_dir: Path) -> None:
    """The work folder was named after the column, so 'a/b' made it a path: an empty
    `docs.lance.a` folder stayed in the database after a successful run."""
    db = tmp_path / "db"
    x = vectors(N)
    make_table(db, x=x)
    dl.compress_table(model_dir, uri(db, "docs"), uri(db, "docs"), output_column="a/b",
                      progress=False)
    assert sorted(p.name for p in db.iterdir()) == ["docs.lance"]
    np.testing.assert_allclose(read(dl.open_table(uri(db, "docs")), "a/b")["a/b"],
                               load(model_dir).transform(x), atol=1e-6)


def test_compress_into_a_new_column_of_the_same_table(tmp_path: Path, model_dir: Path) -> None:
    db = tmp_path / "db"
    x = vectors(N)
    table = make_table(db, x=x)
    table.delete("id IN ('doc0', 'doc5')")  # offsets skip deleted rows; so must the new column
    version = table.version
    dl.compress_table(model_dir, uri(db, "docs"), uri(db, "docs"), output_column="vector_8",
                      dtype="float16", batch_size=700, progress=False)
    table = dl.open_table(uri(db, "docs"))
    assert table.schema.names == ["id", "text", "vector", "vector_8"]
    assert table.version == version + 1  # one commit
    got = read(table, "id", "vector", "vector_8")
    rows = [int(i[3:]) for i in got["id"]]
    assert len(rows) == N - 2 and 0 not in rows and 5 not in rows
    np.testing.assert_array_equal(got["vector"], x[rows])
    expected = load(model_dir).transform(x[rows]).astype(np.float16)
    np.testing.assert_allclose(got["vector_8"], expected, atol=1e-3)


def test_a_quantized_model_writes_its_codes(tmp_path: Path, model_dir: Path) -> None:
    from dive.export.folder import with_precision

    db = tmp_path / "db"
    x = vectors(N)
    make_table(db, x=x)
    int8 = with_precision(model_dir, "int8", x)
    result = dl.compress_table(int8, uri(db, "docs"), uri(db, "codes"), progress=False)
    assert result.dtype == "int8"
    codes = dl.open_table(uri(db, "codes"))
    assert str(codes.schema.field("vector").type) == "fixed_size_list<item: int8>[8]"
    np.testing.assert_array_equal(read(codes, "vector")["vector"], int8.transform(x))
    with pytest.raises(DiveError, match="search reads float vectors; this model outputs int8"):
        dl.search(codes, int8, x[:2], 10)


class Crash(Exception):
    pass


def crash_after(monkeypatch: pytest.MonkeyPatch, chunks: int) -> None:
    """Make the next run die, like a kill, after `chunks` chunks are saved."""
    real = dl._compress_chunk
    left = [chunks]

    def compress(*args: Any, **kwargs: Any) -> np.ndarray:
        if left[0] == 0:
            raise Crash
        left[0] -= 1
        return real(*args, **kwargs)

    monkeypatch.setattr(dl, "_compress_chunk", compress)


def fail_final_write(patched: pytest.MonkeyPatch, raised: BaseException) -> None:
    """Make the final write of the table (or column) raise `raised` after its first batch."""
    real = dl._parts_reader

    def failing(*args: Any) -> Any:
        reader = real(*args)

        def batches() -> Any:
            yield reader.read_next_batch()
            raise raised

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    patched.setattr(dl, "_parts_reader", failing)


@pytest.mark.parametrize("in_place", [False, True])
def test_an_interrupted_run_resumes_to_the_same_table(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch, in_place: bool
) -> None:
    x = vectors(N)
    outputs = {}
    for name, crash in (("whole", None), ("resumed", 3)):
        db = tmp_path / name
        make_table(db, x=x)
        target, column = (("docs", "small_vec") if in_place else ("small", None))
        args = (model_dir, uri(db, "docs"), uri(db, target))
        kwargs = {"batch_size": 300, "progress": False, "output_column": column}
        if crash is not None:
            with monkeypatch.context() as patched:
                crash_after(patched, crash)
                with pytest.raises(Crash):
                    dl.compress_table(*args, **kwargs)
            assert dl.open_table(uri(db, "docs")).schema.names == ["id", "text", "vector"]
            assert (db / "small.lance").exists() is False
            result = dl.compress_table(*args, **kwargs)
            assert result.resumed_rows == 900
        else:
            dl.compress_table(*args, **kwargs)
        outputs[name] = read(dl.open_table(uri(db, target)), "id", column or "vector")
    for key, value in outputs["whole"].items():
        assert np.array_equal(np.asarray(outputs["resumed"][key]), np.asarray(value)), key


def test_a_table_changed_between_runs_starts_over(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    db = tmp_path / "db"
    table = make_table(db)
    with monkeypatch.context() as patched:
        crash_after(patched, 2)
        with pytest.raises(Crash):
            dl.compress_table(model_dir, uri(db, "docs"), uri(db, "small"), batch_size=300,
                              progress=False)
    more = vectors(10, seed=9)
    table.add(pa.table({"id": [f"new{i}" for i in range(10)], "text": ["t"] * 10, "vector":
                        pa.FixedSizeListArray.from_arrays(pa.array(more.reshape(-1)), DIM)}))
    with caplog.at_level(logging.WARNING):
        result = dl.compress_table(model_dir, uri(db, "docs"), uri(db, "small"), batch_size=300,
                                   progress=False)
    assert result.resumed_rows == 0 and result.rows == N + 10
    assert "starting over" in caplog.text


def test_a_row_updated_between_runs_starts_over_with_its_new_vector(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job's identity holds the table's version: an update in place keeps the row count
    and schema, and the rerun resumed, keeping the row's vector compressed from its old
    value."""
    db = tmp_path / "db"
    table = make_table(db, x=vectors(40))
    args = (model_dir, uri(db, "docs"), uri(db, "small"))
    with monkeypatch.context() as patched:
        crash_after(patched, 2)
        with pytest.raises(Crash):
            dl.compress_table(*args, batch_size=10, progress=False)
    new = vectors(1, seed=9)
    table.update(where="id = 'doc0'", values={"vector": new[0].tolist()})
    result = dl.compress_table(*args, batch_size=10, progress=False)
    assert (result.rows, result.resumed_rows) == (40, 0)
    small = read(dl.open_table(uri(db, "small")), "id", "vector")
    np.testing.assert_allclose(small["vector"][small["id"].index("doc0")],
                               load(model_dir).transform(new)[0], atol=1e-6)


def test_a_staged_part_with_the_wrong_number_of_rows_is_refused_as_damaged(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part a resumed run commits must hold its chunk's rows: one cut short is refused as
    damaged, not committed as a table missing rows."""
    import pyarrow.parquet as pq

    from dive.scale.resume import part_name

    db = tmp_path / "db"
    make_table(db)
    args = (model_dir, uri(db, "docs"), uri(db, "small"))
    with monkeypatch.context() as patched:
        crash_after(patched, 2)
        with pytest.raises(Crash):
            dl.compress_table(*args, batch_size=300, progress=False)
    [part] = db.glob(f".small.lance.partial/**/{part_name(300)}")
    pq.write_table(pq.read_table(part).slice(0, 100), part)
    with pytest.raises(DataError, match=rf"partial output damaged \({part_name(300)} has 100 "
                                        r"rows\)"):
        dl.compress_table(*args, batch_size=300, progress=False)
    assert not (db / "small.lance").exists()


def test_a_table_changed_while_a_column_was_compressed_is_refused_the_column(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit made to the table while its column was compressed (a new version) makes the
    column stale: it is refused, not added to the new version."""
    db = tmp_path / "db"
    table = make_table(db)
    real, edits = dl._compress_chunk, [1]

    def edited_meanwhile(*args: Any, **kwargs: Any) -> np.ndarray:
        if edits:
            edits.pop()
            table.update(where="id = 'doc0'", values={"text": "edited"})
        return real(*args, **kwargs)

    monkeypatch.setattr(dl, "_compress_chunk", edited_meanwhile)
    with pytest.raises(DataError, match=r"the table changed while it was compressed \(version "
                                        r"1 -> 2\)"):
        dl.compress_table(model_dir, uri(db, "docs"), uri(db, "docs"), output_column="v8",
                          batch_size=500, progress=False)
    assert "v8" not in dl.open_table(uri(db, "docs")).schema.names


def test_the_killed_cli_resumes(tmp_path: Path, model_dir: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    """SIGKILL `dive compress` mid-run (each chunk slowed to >= 20 ms), then rerun it."""
    db = tmp_path / "db"
    make_table(db)
    argv = ["compress", str(model_dir), "--input", uri(db, "docs"), "--output", uri(db, "small"),
            "--batch-size", "100", "--no-progress"]
    throttled = ("import sys, time\nfrom dive.scale import resume\nsave = resume.Partial.save\n"
                 "def slow(self, state):\n    save(self, state)\n    time.sleep(0.02)\n"
                 "resume.Partial.save = slow\nfrom dive.cli import main\n"
                 "sys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.Popen([sys.executable, "-c", throttled, *argv],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = db / ".small.lance.partial" / "state.json"
    deadline, done = time.monotonic() + 120, 0
    try:
        while time.monotonic() < deadline and proc.poll() is None and done < 500:
            try:
                done = json.loads(state.read_text())["rows_done"]
            except (OSError, ValueError, KeyError):
                done = 0
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    done = json.loads(state.read_text())["rows_done"]  # it may have saved one more chunk
    assert 500 <= done < N, f"the kill did not land mid-run ({done} rows done)"
    assert not (db / "small.lance").exists()
    assert main(argv) == 0
    assert f", resumed after {done}) in " in capsys.readouterr().out
    small = read(dl.open_table(uri(db, "small")), "id", "vector")
    assert small["id"] == [f"doc{i}" for i in range(N)]
    np.testing.assert_allclose(small["vector"], load(model_dir).transform(vectors(N)), atol=1e-6)


@pytest.mark.parametrize(("bad", "problem"), [
    (np.nan, "contains NaN or inf"), (0.0, "has norm 0 and cannot be L2-normalised")])
def test_bad_rows_name_the_row_and_id_and_leave_nothing(
    tmp_path: Path, model_dir: Path, bad: float, problem: str
) -> None:
    db = tmp_path / "db"
    x = vectors(N)
    if bad == 0:
        x[1234] = 0
    else:
        x[1234, 3] = bad
    # LanceDB refuses NaN vectors; pylance, as other writers may, stores them.
    import lance

    lance.write_dataset(pa.table({
        "id": [f"doc{i}" for i in range(N)],
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), DIM)}),
        db / "docs.lance")
    with pytest.raises(DataError, match=rf"lancedb:{db}/docs: row 1234 \(id 'doc1234'\) "
                                        f"{problem}"):
        dl.compress_table(model_dir, uri(db, "docs"), uri(db, "small"), batch_size=500,
                          progress=False)
    assert sorted(p.name for p in db.iterdir()) == ["docs.lance"]
    # into a new database: the folders made for it go again (they were left, empty)
    with pytest.raises(DataError, match=r"row 1234 \(id 'doc1234'\)"):
        dl.compress_table(model_dir, uri(db, "docs"), uri(tmp_path / "new" / "sub", "small"),
                          batch_size=500, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db"]


@pytest.mark.parametrize(("setup", "kwargs", "message"), [
    ("wrong dim", {}, r"column 'vector' has dimension 16, but the model expects 32"),
    ("other column", {}, r"no vector column 'vector' \(columns: id, text, emb\)"),
    ("no id", {"id_column": "key"}, r"no id column 'key' \(columns: id, text, vector\); pass "
                                    "id_column=None"),
    ("same column", {"output": "docs"}, r"the output is the input table; name the new column"),
    ("same column", {"output": "docs", "output_column": "vector"},
     r"docs: the output is the input table, whose column 'vector' holds the vectors to "
     r"compress; name another output column$"),
    ("bad name", {"output": "my table"}, r"my table: Invalid table name \("),
    # LanceDB takes it, but dive's work folders are named so (`.docs.lance.partial`)
    ("hidden name", {"output": ".hidden"},
     r"\.hidden: table names starting with '\.' are kept for work folders$"),
    ("integers", {}, r"docs: column 'vector' holds integers \(int8\), not float embeddings"),
    ("lance's own name", {"output": "docs", "output_column": "_rowaddr"},
     r"docs: output column '_rowaddr': LanceDB keeps names starting with '_' for its own"),
    ("lance's own name", {"output_column": "_distance"},
     r"small: output column '_distance': LanceDB keeps names starting with '_' for its own"),
    ("nested name", {"output": "docs", "output_column": "v.8"},
     r"docs: output column 'v\.8': LanceDB reads a '\.' in a column name as a nested field"),
    # refused by Lance once every chunk was done, its work folder left for every rerun
    ("backtick", {"output": "docs", "output_column": "v`8"},
     r"docs: output column 'v`8': LanceDB cannot add a column whose name holds a '`'"),
])
def test_bad_tables_fail_before_any_work(tmp_path: Path, model_dir: Path, setup: str,
                                         kwargs: dict[str, Any], message: str) -> None:
    db = tmp_path / "db"
    if setup == "wrong dim":
        make_table(db, x=unit(np.ones((5, 16))))
    elif setup == "integers":  # int8 codes: compressed as floats, they were wrong vectors
        make_table(db, x=(vectors(N) * 50).astype(np.int8))
    else:
        make_table(db, column="emb" if setup == "other column" else "vector")
    output = uri(db, kwargs.pop("output", "small"))
    with pytest.raises(DiveError, match=message):
        dl.compress_table(model_dir, uri(db, "docs"), output, progress=False, **kwargs)
    assert sorted(p.name for p in db.iterdir()) == ["docs.lance"]
    assert dl.open_table(uri(db, "docs")).version == 1  # the table itself as it was


@pytest.mark.parametrize("kwargs", [{}, {"output": "docs", "output_column": "small"}])
def test_an_empty_table_is_refused_naming_it(tmp_path: Path, model_dir: Path,
                                             kwargs: dict[str, Any]) -> None:
    # as dive.scale refuses an empty store: an empty output and a success hid a wrong table
    db = tmp_path / "db"
    make_table(db, x=np.zeros((0, DIM), dtype=np.float32))
    output = uri(db, kwargs.pop("output", "small"))
    with pytest.raises(DataError, match=rf"^lancedb:{db}/docs: no vectors to compress "
                                        r"\(0 rows\)$"):
        dl.compress_table(model_dir, uri(db, "docs"), output, progress=False, **kwargs)
    assert sorted(p.name for p in db.iterdir()) == ["docs.lance"]
    assert dl.open_table(uri(db, "docs")).version == 1


@pytest.mark.parametrize(("ids", "message"), [
    (["a", "b", "a", "c"], r"row 2: duplicate id 'a' \(first at row 0\)$"),
    (["a", "b", None, "b"], r"row 2: the id is null$"),
])
def test_null_or_duplicate_ids_are_refused_naming_the_row(
    tmp_path: Path, model_dir: Path, ids: list[str | None], message: str
) -> None:
    # they were carried into the new table, where a row's id names it
    db = tmp_path / "db"
    x = vectors(4)
    lancedb.connect(str(db)).create_table("docs", pa.table({
        "id": pa.array(ids, pa.string()),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), DIM)}))
    with pytest.raises(DataError, match=rf"^lancedb:{db}/docs: {message}"):
        dl.compress_table(model_dir, uri(db, "docs"), uri(db, "small"), progress=False)
    assert sorted(p.name for p in db.iterdir()) == ["docs.lance"]
    # a new column of the table carries no ids
    dl.compress_table(model_dir, uri(db, "docs"), uri(db, "docs"), output_column="small",
                      progress=False)


def test_a_file_or_foreign_folder_named_as_a_table_is_one_line_and_kept(
    tmp_path: Path, model_dir: Path
) -> None:
    """A file at `<name>.lance` was Lance's RuntimeError with its traceback, as an input or
    an output; a folder there that is no table was "no such table" while listing it."""
    db = tmp_path / "db"
    make_table(db)
    (db / "file.lance").write_text("not a table")
    (db / "folder.lance").mkdir()
    (db / "folder.lance" / "notes.txt").write_text("mine")
    for name in ("file", "folder"):
        with pytest.raises(DiveError, match=rf"{name}\.lance: exists and is not a table dive "
                                            "compress wrote; refusing"):
            dl.compress_table(model_dir, uri(db, "docs"), uri(db, name), overwrite=True,
                              progress=False)
        with pytest.raises(DataError, match=rf"^lancedb:{db}/{name}: {db}/{name}\.lance is not "
                                            "a readable LanceDB table$"):
            dl.compress_table(model_dir, uri(db, name), uri(db, "small"), progress=False)
    assert (db / "file.lance").read_text() == "not a table"
    assert [p.name for p in (db / "folder.lance").iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in db.iterdir()) == ["docs.lance", "file.lance", "folder.lance"]


@pytest.mark.parametrize(("name", "message"), [
    ("bad/name", r"no folder {db}/bad in the LanceDB database {db} \(expected "
                 r"lancedb:PATH/TABLE, and a table name holds no '/'\)$"),
    ("docs/extra", r"no folder {db}/docs in the LanceDB database {db} \(expected"),
    ("docs.lance/extra", r"{db}/docs\.lance is a LanceDB table, not a database folder \("
                         r"expected lancedb:PATH/TABLE, and a table name holds no '/'\)$"),
    ("docs.lance", r"docs\.lance is the table's folder; the table is lancedb:{db}/docs$"),
    ("bad name", r"Invalid table name \("),
])
def test_a_table_spec_with_an_extra_path_part_or_a_bad_name_is_one_error(
    tmp_path: Path, model_dir: Path, name: str, message: str,
    capsys: pytest.CaptureFixture[str]
) -> None:
    # "lancedb:db/bad/name" made a new database db/bad inside db without a word, and
    # "lancedb:db/docs.lance" a table in the folder docs.lance.lance
    db = tmp_path / "db"
    make_table(db)
    pattern = rf"^lancedb:{db}/{re.escape(name)}: " + message.format(db=db)
    for source, target in ((uri(db, "docs"), uri(db, name)), (uri(db, name), uri(db, "small"))):
        with pytest.raises(DiveError, match=pattern):
            dl.compress_table(model_dir, source, target, progress=False)
    assert main(["compress", str(model_dir), "--input", uri(db, "docs"), "--output",
                 uri(db, name), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dive: error: ") and err.count("\n") == 1
    assert sorted(p.name for p in db.iterdir()) == ["docs.lance"]
    # a new database outside any other is made, as before
    dl.compress_table(model_dir, uri(db, "docs"), uri(tmp_path / "new" / "db", "small"),
                      progress=False)
    assert dl.open_table(uri(tmp_path / "new" / "db", "small")).count_rows() == N


def test_a_table_spec_with_a_trailing_slash_names_the_table(tmp_path: Path,
                                                            model_dir: Path) -> None:
    # as a folder path with a trailing slash names the folder: without it stripped, the
    # table name was '' and the spec refused as no PATH/TABLE
    db = tmp_path / "db"
    make_table(db, x=vectors(20))
    assert str(dl.TableRef.parse(uri(db, "docs") + "/")) == uri(db, "docs")
    dl.compress_table(model_dir, uri(db, "docs") + "/", uri(db, "small") + "//", progress=False)
    assert dl.open_table(uri(db, "small")).count_rows() == 20


def test_outputs_are_replaced_only_if_dive_wrote_them(tmp_path: Path, model_dir: Path) -> None:
    db = tmp_path / "db"
    make_table(db)
    make_table(db, name="theirs")
    run = dict(batch_size=1000, progress=False)
    dl.compress_table(model_dir, uri(db, "docs"), uri(db, "small"), **run)
    with pytest.raises(DiveError, match=r"small\.lance: already exists; pass overwrite=True"):
        dl.compress_table(model_dir, uri(db, "docs"), uri(db, "small"), **run)
    dl.compress_table(model_dir, uri(db, "docs"), uri(db, "small"), overwrite=True, **run)
    assert dl.open_table(uri(db, "small")).count_rows() == N
    with pytest.raises(DiveError, match=r"theirs\.lance: exists and is not a table dive compress "
                                        "wrote; refusing"):
        dl.compress_table(model_dir, uri(db, "docs"), uri(db, "theirs"), overwrite=True, **run)
    in_place = dict(output_column="text", **run)
    with pytest.raises(DiveError, match="column 'text' exists and is not one dive compress "
                                        "wrote; refusing"):
        dl.compress_table(model_dir, uri(db, "docs"), uri(db, "docs"), overwrite=True, **in_place)
    in_place["output_column"] = "v8"
    dl.compress_table(model_dir, uri(db, "docs"), uri(db, "docs"), **in_place)
    with pytest.raises(DiveError, match="column 'v8' already exists; pass overwrite=True"):
        dl.compress_table(model_dir, uri(db, "docs"), uri(db, "docs"), **in_place)
    dl.compress_table(model_dir, uri(db, "docs"), uri(db, "docs"), overwrite=True, **in_place)
    assert dl.open_table(uri(db, "docs")).schema.names == ["id", "text", "vector", "v8"]



def test_a_table_dive_wrote_is_replaced_after_lance_added_files_to_it(
    tmp_path: Path, model_dir: Path
) -> None:
    """Indexed (as docs/scale.md shows) or appended to, Lance adds index, version and
    transaction files to the table's folder: --overwrite refused it as holding "files dive
    did not write", and told to move Lance's own files out."""
    db = tmp_path / "db"
    make_table(db)
    run = dict(batch_size=1000, progress=False)
    dl.compress_table(model_dir, uri(db, "docs"), uri(db, "small"), **run)
    small = dl.open_table(uri(db, "small"))
    small.add(small.to_arrow().slice(0, 10))
    dl.compress_table(model_dir, uri(db, "docs"), uri(db, "small"), overwrite=True, **run)
    assert dl.open_table(uri(db, "small")).count_rows() == N


def test_a_users_column_with_the_staging_name_is_never_dropped(tmp_path: Path,
                                                                model_dir: Path) -> None:
    """A replaced column is staged as `<name>__dive_staging`: a user's column of that name was
    dropped as a killed run's, without a word."""
    db = tmp_path / "db"
    table = make_table(db)
    table.add_columns({"v8__dive_staging": "text"})
    with pytest.raises(DiveError, match="column 'v8__dive_staging' exists and is not one dive "
                                        "compress wrote; rename it"):
        dl.compress_table(model_dir, uri(db, "docs"), uri(db, "docs"), output_column="v8",
                          batch_size=1000, progress=False)
    assert "v8__dive_staging" in dl.open_table(uri(db, "docs")).schema.names


def test_a_database_path_with_a_leading_tilde_is_the_home_folder(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LanceDB and pyarrow expand `~`, dive's own files did not: every chunk was computed,
    then the run failed "partial output damaged", every time."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    make_table(tmp_path / "home" / "db")
    dl.compress_table(model_dir, "lancedb:~/db/docs", "lancedb:~/db/small", batch_size=1000,
                      progress=False)
    assert dl.open_table(uri(tmp_path / "home" / "db", "small")).count_rows() == N


def test_a_failed_overwrite_keeps_the_earlier_column(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new column goes in under a staging name first: the earlier one was dropped before
    the new one was added, so a run that failed while adding it (a damaged part, Ctrl-C)
    left the table with neither."""
    db = tmp_path / "db"
    make_table(db)
    run = dict(output_column="v8", batch_size=500, progress=False)
    dl.compress_table(model_dir, uri(db, "docs"), uri(db, "docs"), **run)
    before = read(dl.open_table(uri(db, "docs")), "v8")["v8"]
    other = tmp_path / "other"
    save(PCA(dim=OUT).fit(vectors(500, seed=7)), other)
    with monkeypatch.context() as patched:
        fail_final_write(patched, Crash())
        with pytest.raises(Crash):
            dl.compress_table(other, uri(db, "docs"), uri(db, "docs"), overwrite=True, **run)
    table = dl.open_table(uri(db, "docs"))
    assert table.schema.names == ["id", "text", "vector", "v8"]
    np.testing.assert_array_equal(read(table, "v8")["v8"], before)
    # The rerun replaces it, leaving no staging column behind.
    dl.compress_table(other, uri(db, "docs"), uri(db, "docs"), overwrite=True, **run)
    table = dl.open_table(uri(db, "docs"))
    assert table.schema.names == ["id", "text", "vector", "v8"]
    np.testing.assert_allclose(read(table, "v8")["v8"], load(other).transform(vectors(N)),
                               atol=1e-6)



def test_replacing_an_indexed_column_warns_that_its_index_went_with_it(
    tmp_path: Path, model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # the index was dropped without a word: search fell back to a scan and ignored nprobes
    from lancedb.index import IvfFlat

    db = tmp_path / "db"
    make_table(db)
    run = dict(output_column="v8", batch_size=500, progress=False)
    dl.compress_table(model_dir, uri(db, "docs"), uri(db, "docs"), **run)
    dl.open_table(uri(db, "docs")).create_index(
        "v8", config=IvfFlat(distance_type="dot", num_partitions=2))
    with caplog.at_level(logging.WARNING, logger="dive.integrations.lancedb"):
        dl.compress_table(model_dir, uri(db, "docs"), uri(db, "docs"), overwrite=True, **run)
    assert re.search(r"docs: the index v8_idx of the replaced column 'v8' went with it; "
                     "create it again", caplog.text)
    assert dl.open_table(uri(db, "docs")).list_indices() == []  # as said


@pytest.mark.usefixtures("default_signals")
@pytest.mark.parametrize("step", ["add_columns", "drop_columns"])
def test_an_interruption_while_a_column_is_replaced_finishes_the_replacement(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """Ctrl-C during the long write lands as Lance returns from its commit: the staging column
    stayed in the user's table beside the old one, and the rerun started over. SIGTERM as
    the old column was dropped left the table with neither `v8` nor the old values."""
    import lance

    from dive._io import written_before

    db = tmp_path / "db"
    make_table(db)
    run = dict(output_column="v8", batch_size=500, progress=False)
    dl.compress_table(model_dir, uri(db, "docs"), uri(db, "docs"), **run)
    other = tmp_path / "other"
    save(PCA(dim=OUT).fit(vectors(500, seed=7)), other)
    real = getattr(lance.LanceDataset, step)

    def then_signal(self: Any, *args: Any, **kwargs: Any) -> Any:
        done = real(self, *args, **kwargs)
        signal.raise_signal(signal.SIGINT)
        return done

    monkeypatch.setattr(lance.LanceDataset, step, then_signal)
    with pytest.raises(KeyboardInterrupt) as stopped:
        dl.compress_table(other, uri(db, "docs"), uri(db, "docs"), overwrite=True, **run)
    assert written_before(stopped.value)  # "was already written in full", not "resumes"
    table = dl.open_table(uri(db, "docs"))
    assert table.schema.names == ["id", "text", "vector", "v8"]
    np.testing.assert_allclose(read(table, "v8")["v8"], load(other).transform(vectors(N)),
                               atol=1e-6)
    assert not any(p.name.endswith(".partial") for p in db.iterdir())


def test_a_new_table_appears_whole_or_not_at_all(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table is built in the work folder and renamed into the database when complete: a
    run that failed while writing it left a `small.lance` folder that was no table, so every
    rerun stopped at 'no such table' until it was deleted by hand."""
    db = tmp_path / "db"
    make_table(db)
    run = dict(batch_size=500, progress=False)
    with monkeypatch.context() as patched:
        fail_final_write(patched, Crash())
        with pytest.raises(Crash):
            dl.compress_table(model_dir, uri(db, "docs"), uri(db, "small"), **run)
    assert sorted(p.name for p in db.iterdir() if not p.name.startswith(".")) == ["docs.lance"]
    result = dl.compress_table(model_dir, uri(db, "docs"), uri(db, "small"), **run)
    assert result.resumed_rows == N
    small = read(dl.open_table(uri(db, "small")), "id", "vector")
    assert small["id"] == [f"doc{i}" for i in range(N)]
    np.testing.assert_allclose(small["vector"], load(model_dir).transform(vectors(N)), atol=1e-6)
    assert sorted(p.name for p in db.iterdir()) == ["docs.lance", "small.lance"]



@pytest.mark.parametrize(("raised", "output_column"), [
    (KeyboardInterrupt(), None), (KeyboardInterrupt(), "v8"),
    (DataError("a damaged part"), None), (DataError("a damaged part"), "v8")])
def test_what_stops_the_final_commit_is_raised_as_it_is(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch,
    raised: BaseException, output_column: str | None,
) -> None:
    """Lance runs the parts' reader inside its own code and turned what it raised into an
    OSError whose text was the Python traceback: Ctrl-C while the table was written printed
    that as the error (exit 2) instead of the interrupted line, and so did a damaged part."""
    db = tmp_path / "db"
    make_table(db)
    target = "docs" if output_column else "small"
    with monkeypatch.context() as patched:
        fail_final_write(patched, raised)
        with pytest.raises(type(raised)) as caught:
            dl.compress_table(model_dir, uri(db, "docs"), uri(db, target), batch_size=500,
                              progress=False, output_column=output_column)
    assert "\n" not in str(caught.value) and "Traceback" not in str(caught.value)


@pytest.fixture(scope="module")
def searchable(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> dict[str, Any]:
    """docs (full vectors + a compressed column), small (ids + compressed), queries."""
    db = tmp_path_factory.mktemp("search") / "db"
    x = vectors(N)
    make_table(db, x=x)
    dl.compress_table(model_dir, uri(db, "docs"), uri(db, "docs"), output_column="v8",
                      progress=False)
    dl.compress_table(model_dir, uri(db, "docs"), uri(db, "small"), progress=False)
    rng = np.random.default_rng(5)
    queries = unit(x[:40] + 0.5 * rng.standard_normal((40, DIM)))
    return {"db": db, "x": x, "queries": queries, "model": load(model_dir)}


def exact(queries: np.ndarray, corpus: np.ndarray, k: int) -> list[list[str]]:
    rows, _ = top_k(queries, corpus, k)
    return [[f"doc{r}" for r in row] for row in rows.tolist()]


def test_flat_search_equals_the_evaluators_exact_top_k(searchable: dict[str, Any]) -> None:
    model, q = searchable["model"], searchable["queries"]
    expected = exact(model.transform(q), model.transform(searchable["x"]), 10)
    hits = dl.search(uri(searchable["db"], "small"), model, q, 10)
    assert hits.ids == expected
    same_table = dl.search(uri(searchable["db"], "docs"), model, q, 10, column="v8")
    assert same_table.ids == expected
    scores = np.stack(hits.scores)
    assert scores.shape == (40, 10) and np.all(np.diff(scores, axis=1) <= 0)


def test_ivf_probing_every_partition_equals_flat(searchable: dict[str, Any],
                                                 tmp_path: Path) -> None:
    from lancedb.index import IvfFlat

    small = dl.open_table(uri(searchable["db"], "small"))
    small.create_index("vector", config=IvfFlat(distance_type="dot", num_partitions=16))
    model, q = searchable["model"], searchable["queries"]
    flat = dl.search(small, model, q, 10, exact=True)
    assert dl.search(small, model, q, 10, nprobes=16).ids == flat.ids
    assert flat.ids == exact(model.transform(q), model.transform(searchable["x"]), 10)
    # exact=True bypasses the index whatever nprobes says; one probe alone misses hits
    assert dl.search(small, model, q, 10, exact=True, nprobes=1).ids == flat.ids
    assert dl.search(small, model, q, 10, nprobes=1).ids != flat.ids


def test_rescoring_with_every_candidate_is_exact_search_on_the_full_vectors(
    searchable: dict[str, Any],
) -> None:
    db, model, q, x = (searchable[k] for k in ("db", "model", "queries", "x"))
    full = exact(q, x, 10)
    docs = dl.open_table(uri(db, "docs"))
    hits = dl.search(docs, model, q, 10, column="v8", rescore_with="vector", candidates=N)
    assert hits.ids == full
    np.testing.assert_allclose(hits.scores[0], np.sort(x @ q[0])[::-1][:10], atol=1e-6)
    other = dl.search(uri(db, "small"), model, q, 10, rescore_with=(docs, "vector"), candidates=N)
    assert other.ids == full
    # A short funnel rescores only its candidates: each hit is one of the first stage's top 40.
    funnel = dl.search(docs, model, q, 10, column="v8", rescore_with="vector")
    first = dl.search(docs, model, q, 40, column="v8")
    assert all(set(f) <= set(c) for f, c in zip(funnel.ids, first.ids, strict=True))


def test_rescoring_takes_4_x_k_first_stage_candidates_by_default(
    searchable: dict[str, Any],
) -> None:
    """The default funnel rescores 4 x k candidates: it ranks as `candidates=4 * k` does, and
    (on these queries) not as a funnel of only k candidates, which merely reorders them."""
    db, model, q = searchable["db"], searchable["model"], searchable["queries"]
    docs = dl.open_table(uri(db, "docs"))

    def rescored(candidates: int | None) -> list[list[str]]:
        return dl.search(docs, model, q, 5, column="v8", rescore_with="vector",
                         candidates=candidates).ids

    assert rescored(None) == rescored(20)
    assert rescored(20) != rescored(5)  # the check above tells the two apart


def test_rescoring_by_an_id_column_named_with_a_space(searchable: dict[str, Any],
                                                      tmp_path: Path) -> None:
    """The id column's name went into the lookup's filter unquoted: 'doc id' failed with
    LanceDB's 'No field named doc'."""
    model, q, x = searchable["model"], searchable["queries"], searchable["x"]
    db = lancedb.connect(str(tmp_path / "db"))
    db.create_table("full", pa.table({
        "doc id": [f"doc{i}" for i in range(N)],
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), DIM)}))
    dl.compress_table(model, uri(tmp_path / "db", "full"), uri(tmp_path / "db", "small"),
                      id_column="doc id", progress=False)
    hits = dl.search(uri(tmp_path / "db", "small"), model, q, 10, id_column="doc id",
                     rescore_with=(db.open_table("full"), "vector"), candidates=N)
    assert hits.ids == exact(q, x, 10)


def test_rescoring_by_table_looks_up_ids_holding_a_quote(tmp_path: Path,
                                                         model_dir: Path) -> None:
    """The ids go into the lookup's filter as SQL strings: one holding a "'" unescaped broke
    the filter, said as ids "of another type"."""
    db = tmp_path / "db"
    x = vectors(40)
    full = lancedb.connect(str(db)).create_table("full", pa.table({
        "id": [f"o'doc{i}" for i in range(40)],
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), DIM)}))
    dl.compress_table(model_dir, uri(db, "full"), uri(db, "small"), progress=False)
    hits = dl.search(uri(db, "small"), model_dir, x[:3], 5, rescore_with=(full, "vector"),
                     candidates=40)
    rows, _ = top_k(x[:3], x, 5)
    assert hits.ids == [[f"o'doc{r}" for r in row] for row in rows.tolist()]


def test_rescoring_by_id_refuses_an_id_on_two_rows(searchable: dict[str, Any],
                                                   tmp_path: Path) -> None:
    """One of the rows was taken, by their order, to rescore the hit: with the other first,
    a hit scored by another vector without a word."""
    model, q, x = searchable["model"], searchable["queries"], searchable["x"]
    both = np.concatenate([x, -x[:1]])
    full = lancedb.connect(str(tmp_path / "db")).create_table("twice", pa.table({
        "id": [f"doc{i}" for i in range(N)] + ["doc0"],
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(both.reshape(-1)), DIM)}))
    with pytest.raises(DataError, match=r"^table 'twice': id 'doc0' is on more than one row; "
                                        "rescoring by id needs one row per id$"):
        dl.search(uri(searchable["db"], "small"), model, q[:1], 3, rescore_with=(full, "vector"),
                  candidates=N)


def test_rescoring_by_ids_of_another_type_is_one_clear_error(searchable: dict[str, Any],
                                                             tmp_path: Path) -> None:
    """Float ids, or string ids looked up in a table of integer ids, gave LanceDB's filter
    error, which listed every candidate id."""
    model, q, x = searchable["model"], searchable["queries"], searchable["x"]
    db = lancedb.connect(str(tmp_path / "db"))
    for name, ids in (("floats", [i + 0.5 for i in range(N)]), ("ints", list(range(N)))):
        db.create_table(name, pa.table({
            "id": ids, "vector": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), DIM)}))
    dl.compress_table(model, uri(tmp_path / "db", "floats"), uri(tmp_path / "db", "small"),
                      progress=False)
    with pytest.raises(DataError, match=r"^table 'floats': rescoring looks rows up by id, which "
                       r"takes string or integer ids; this one is a float \(\d+\.5\)$"):
        dl.search(uri(tmp_path / "db", "small"), model, q[:2], 3,
                  rescore_with=(db.open_table("floats"), "vector"))
    with pytest.raises(DataError, match=r"^table 'ints': its id column \(int64\) does not take "
                       r"the searched table's ids \(a str, e\.g\. 'doc\d+'\); give both tables "
                       "ids of one type$"):
        dl.search(uri(searchable["db"], "small"), model, q[:2], 3,
                  rescore_with=(db.open_table("ints"), "vector"))


def test_a_k_beyond_the_table_gives_every_row(searchable: dict[str, Any]) -> None:
    # LanceDB allocates the limit per query: two queries at k=10**9 aborted the process
    hits = dl.search(uri(searchable["db"], "small"), searchable["model"],
                     searchable["queries"][:2], 10**9)
    assert [len(ids) for ids in hits.ids] == [N, N]


def test_a_k_beyond_the_table_with_rescoring_asks_lancedb_for_every_row_at_most(
        tmp_path: Path, model_dir: Path) -> None:
    """Rescoring asks for 4 x k candidates, and LanceDB allocates the whole limit per query:
    k=10**9 aborted the process ("memory allocation of 192000000000 bytes failed") unless the
    limit is clamped to the table's rows. Run in a child under a 64 GiB address-space limit,
    so that an unclamped limit aborts it even where the memory would be granted."""
    db = tmp_path / "db"
    x = vectors(30)
    make_table(db, x=x)
    dl.compress_table(model_dir, uri(db, "docs"), uri(db, "docs"), output_column="v8",
                      progress=False)
    np.save(tmp_path / "q.npy", x[:2])
    code = ("import resource, sys\n"
            "import numpy as np\n"
            "hard = resource.getrlimit(resource.RLIMIT_AS)[1]\n"
            "soft = 64 << 30 if hard == resource.RLIM_INFINITY else min(hard, 64 << 30)\n"
            "resource.setrlimit(resource.RLIMIT_AS, (soft, hard))\n"
            "from dive.integrations import lancedb as dl\n"
            "hits = dl.search(sys.argv[1], sys.argv[2], np.load(sys.argv[3]), 10**9,\n"
            "                 column='v8', rescore_with='vector')\n"
            "print([len(ids) for ids in hits.ids])\n")
    done = subprocess.run([sys.executable, "-c", code, uri(db, "docs"), str(model_dir),
                           str(tmp_path / "q.npy")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MALLOC_ARENA_MAX": "2"})  # not 64 MiB per core
    assert (done.returncode, done.stdout) == (0, "[30, 30]\n"), done.stderr[-2000:]


def with_a_second_column(tmp_path: Path, model: Any, x: np.ndarray, name: str,
                         second: np.ndarray) -> Path:
    """A database at tmp_path/db whose table docs holds ids, `x` as its vector column,
    `second` as column `name`, and the compressed vectors in v8; its path."""
    db = tmp_path / "db"
    lancedb.connect(str(db)).create_table("docs", pa.table({
        "id": [f"doc{i}" for i in range(N)],
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), DIM),
        name: pa.FixedSizeListArray.from_arrays(pa.array(second.reshape(-1)), DIM)}))
    dl.compress_table(model, uri(db, "docs"), uri(db, "docs"), output_column="v8",
                      progress=False)
    return db


def test_a_bad_rescore_vector_is_named_by_its_id(searchable: dict[str, Any],
                                                 tmp_path: Path) -> None:
    """It was named "row 2": the hit's place among the candidates of every query joined,
    no row of any table."""
    model, q, x = searchable["model"], searchable["queries"], searchable["x"]
    full = x.copy()
    full[7] = 0.0
    db = with_a_second_column(tmp_path, model, x, "full", full)
    dl.compress_table(model, uri(db, "docs"), uri(db, "small"), progress=False)
    line = r"^table 'docs': rescore vectors: id 'doc7': has norm 0 and cannot be L2-normalised$"
    with pytest.raises(DataError, match=line):
        dl.search(uri(db, "docs"), model, q[5:8], 3, column="v8", rescore_with="full",
                  candidates=N)
    with pytest.raises(DataError, match=line):  # looked up in docs by the hits' ids
        dl.search(uri(db, "small"), model, q[5:8], 3,
                  rescore_with=(dl.open_table(uri(db, "docs")), "full"), candidates=N)


def test_rescoring_refuses_vectors_the_column_was_not_compressed_from(
    searchable: dict[str, Any], tmp_path: Path,
) -> None:
    """Another model's vectors of the same width (here the corpus rotated), by id from
    another table or in a column beside the compressed one, re-ranked every hit by noise
    without a word, where `dive search --rescore-vectors` refuses them for an index."""
    model, q, x = searchable["model"], searchable["queries"], searchable["x"]
    rotation, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((DIM, DIM)))
    other = unit(x @ rotation).astype(np.float32)
    db = with_a_second_column(tmp_path, model, x, "other", other)
    line = (r"^table 'docs': the rescore vector \({}\) of id 'doc\d+' is not the one 'v8' was "
            r"compressed from \(cosine -?\d\.\d\d between the model's output for it and the "
            r"column's value, under 0\.9\): rescore with the full vectors the column was made "
            r"from$")
    with pytest.raises(DataError, match=line.format("column 'other'")):
        dl.search(uri(db, "docs"), model, q[:3], 3, column="v8", rescore_with="other")
    with pytest.raises(DataError, match=line.format("table 'docs', column 'other'")):
        dl.search(uri(db, "docs"), model, q[:3], 3, column="v8",
                  rescore_with=(dl.open_table(uri(db, "docs")), "other"))
    right = dl.search(uri(db, "docs"), model, q[:3], 3, column="v8", rescore_with="vector",
                      candidates=N)
    assert right.ids == exact(q[:3], x, 3)


def test_search_checks_its_inputs(searchable: dict[str, Any]) -> None:
    db, model, q = searchable["db"], searchable["model"], searchable["queries"]
    with pytest.raises(DataError, match=r"query vectors: expected dimension 32, got 8"):
        dl.search(uri(db, "small"), model, q[:, :8], 10)
    with pytest.raises(DataError, match=r"compressed column 'vector' holds 32-d vectors, "
                                        r"expected 8-d"):
        dl.search(uri(db, "docs"), model, q, 10)
    with pytest.raises(DiveError, match=r"candidates \(9\) must be at least k \(10\)"):
        dl.search(uri(db, "docs"), model, q, 10, column="v8", rescore_with="vector",
                  candidates=9)  # one short of k
    with pytest.raises(DiveError, match="lancedb:PATH/TABLE"):
        dl.search("lancedb:nodb", model, q, 10)
    with pytest.raises(DataError, match="query vectors: expected float embeddings, got dtype int"):
        dl.search(uri(db, "docs"), model, np.rint(q * 100).astype(np.int64), 10, column="v8")
    # a table whose ids are in another column (compressing in place takes no id column)
    with pytest.raises(DataError, match=r"table 'docs': no id column 'key' \(columns: [^)]*\); "
                                        r"name the column that identifies each row with "
                                        r"id_column=$"):
        dl.search(uri(db, "docs"), model, q, 10, column="v8", id_column="key")


@pytest.mark.parametrize(("options", "message"), [
    ({"nprobes": -1}, r"nprobes must be a positive integer, got -1"),
    ({"rescore_with": "vector", "candidates": 4.5}, r"candidates must be a positive integer, "
                                                    r"got 4\.5"),
    ({"rescore_with": ("x",)}, r"rescore_with must be a column name or \(table, column\), "
                               r"got \('x',\)"),
])
def test_search_options_lancedb_cannot_take_are_one_clear_error(
    searchable: dict[str, Any], options: dict[str, Any], message: str
) -> None:
    # they reached LanceDB: an OverflowError, a pydantic "Query limit" error, a TypeError
    with pytest.raises(DiveError, match=rf"^{message}$"):
        dl.search(uri(searchable["db"], "small"), searchable["model"], searchable["queries"],
                  3, **options)


def test_search_refuses_a_column_another_compressor_wrote(searchable: dict[str, Any],
                                                         tmp_path: Path) -> None:
    db, model, q = searchable["db"], searchable["model"], searchable["queries"]
    other = PCA(dim=OUT).fit(vectors(500, seed=7))  # same dimensions, another model
    other_dir = tmp_path / "other"
    save(other, other_dir)
    named = rf"another compressor than {re.escape(str(other_dir))} \("
    for target, column in (("docs", "v8"), ("small", "vector")):  # a new column, a new table
        with pytest.raises(DataError, match=rf"^table '{target}': column '{column}' was written "
                                            r"by another compressor than the given model \(it "
                                            r"holds vectors of model [0-9a-f]{12}, this one is "
                                            r"[0-9a-f]{12}\); search with the compressor"):
            dl.search(uri(db, target), other, q, 10, column=column)
        with pytest.raises(DataError, match=named):
            dl.search(uri(db, target), load(other_dir), q, 10, column=column)
        with pytest.raises(DataError, match=named):
            dl.search(uri(db, target), other_dir, q, 10, column=column)
    # The compressor that wrote the column searches it, here as its runtime.
    assert len(dl.search(uri(db, "small"), model.runtime_, q[:2], 3).ids) == 2


def test_columns_without_dives_mark_are_searched_unchecked(tmp_path: Path,
                                                           model_dir: Path) -> None:
    db = tmp_path / "db"
    x = vectors(50)
    written_elsewhere = PCA(dim=OUT).fit(vectors(500, seed=7)).transform(x)
    table = make_table(db, x=written_elsewhere, column="v8")
    hits = dl.search(table, load(model_dir), x[:2], 3, column="v8")
    assert [len(ids) for ids in hits.ids] == [3, 3]


def test_a_table_marked_by_an_older_dive_is_checked_on_its_vector_column(
    tmp_path: Path, model_dir: Path
) -> None:
    db = tmp_path / "db"
    y = load(model_dir).transform(vectors(50))
    vec = pa.FixedSizeListArray.from_arrays(pa.array(y.reshape(-1)), OUT)
    marker = json.dumps({"format": "dive-compress-output", "model_sha256": "ab" * 32,
                         "source": "lancedb:x/docs:vector"})  # no "column": older dive
    data = pa.table({"id": [f"doc{i}" for i in range(50)], "vector": vec, "extra": vec},
                    metadata={dl.MARKER_KEY: marker})
    lancedb.connect(str(db)).create_table("old", data)
    with pytest.raises(DataError, match=r"column 'vector' was written by another compressor "
                                        r"than .* model abababababab, this one is"):
        dl.search(uri(db, "old"), model_dir, vectors(2), 3)
    # A column added later by other tools carries no mark of its own: searched unchecked.
    assert len(dl.search(uri(db, "old"), model_dir, vectors(2), 3, column="extra").ids) == 2
    garbled = pa.table({"id": ["a"], "vector": vec[:1]},
                       schema=pa.schema([pa.field("id", pa.string()),
                                         pa.field("vector", vec.type,
                                                  metadata={dl.MARKER_KEY: b"{oops"})]))
    lancedb.connect(str(db)).create_table("garbled", garbled)
    with pytest.raises(DataError, match=r"^table 'garbled': the dive.compress metadata of "
                                        r"column 'vector' is not one dive compress wrote"):
        dl.search(uri(db, "garbled"), model_dir, vectors(2), 3)


def test_the_cli_compresses_lancedb_tables(tmp_path: Path, model_dir: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "db"
    make_table(db)
    assert main(["compress", str(model_dir), "--input", uri(db, "docs"), "--output",
                 uri(db, "docs"), "--output-column", "v8", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"compressed {N} vectors 32 -> 8 (float32) in ")
    assert out.strip().endswith(f": lancedb:{db}/docs:v8")
    assert main(["compress", str(model_dir), "--input", uri(db, "docs"), "--output",
                 str(tmp_path / "x.parquet")]) == 2
    assert "give both --input and --output as lancedb:PATH/TABLE" in capsys.readouterr().err
    # the flag given, as the input's column: the line said to name it with output_column
    assert main(["compress", str(model_dir), "--input", uri(db, "docs"), "--output",
                 uri(db, "docs"), "--output-column", "vector"]) == 2
    assert capsys.readouterr().err == (
        f"dive: error: lancedb:{db}/docs: the output is the input table, whose column 'vector' "
        "holds the vectors to compress; name another output column (--output-column)\n")


def test_the_cli_refuses_the_ray_engine_for_lancedb_tables(
        tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--engine ray` reads Parquet: for LanceDB tables it is refused in one line (exit 2),
    not ignored (the table compressed on the local engine, as if the flag were not given)."""
    db = tmp_path / "db"
    make_table(db)
    assert main(["compress", str(model_dir), "--input", uri(db, "docs"), "--output",
                 uri(db, "out"), "--engine", "ray", "--no-progress"]) == 2
    assert capsys.readouterr().err == (
        "dive: error: --engine ray reads Parquet; LanceDB tables use the local engine\n")
    assert not (db / "out.lance").exists()


def test_the_cli_refuses_an_id_column_for_a_column_added_in_place(
        tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a column added to the input table writes no ids: the flag was ignored without a word
    db = tmp_path / "db"
    make_table(db)
    assert main(["compress", str(model_dir), "--input", uri(db, "docs"), "--output",
                 f"lancedb:{db}/./docs", "--output-column", "v8", "--id-column", "key",
                 "--no-progress"]) == 2
    assert capsys.readouterr().err == (
        f"dive: error: --id-column applies to a new table; lancedb:{db}/./docs is the input "
        "table, whose rows keep their own ids (leave it out)\n")
    assert dl.open_table(uri(db, "docs")).schema.names == ["id", "text", "vector"]
    assert main(["compress", str(model_dir), "--input", uri(db, "docs"), "--output",
                 uri(db, "docs"), "--output-column", "v8", "--id-column", "",
                 "--no-progress"]) == 0  # '': no ids, which is what a column in place writes


@pytest.mark.parametrize(("module", "function"), [("lancedb", "import_lancedb"),
                                                  ("ray", "import_ray")])
def test_without_pyarrow_the_engines_name_pyarrow(module: str, function: str) -> None:
    """Both named only their own packages (lancedb and pylance; ray[data]), installed here:
    their imports fail on the pyarrow they import."""
    code = ("import sys\n"
            "class NoPyarrow:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'pyarrow':\n"
            "            raise ImportError('no pyarrow here', name=name)\n"
            "sys.meta_path.insert(0, NoPyarrow())\n"
            f"from dive.integrations.{module} import {function}\n"
            f"try:\n    {function}()\nexcept Exception as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "(missing: pyarrow)" in out and "pip install 'dive-compress[" in out


@pytest.mark.parametrize("output_column", [None, "v8", "v8 again"])
def test_ctrl_c_as_the_final_commit_returns_keeps_the_output_and_says_so(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch, output_column: str | None,
    default_signals: None,
) -> None:
    """Lance committed, then the interruption landed: the run said a rerun resumes, kept its
    work folder (a part file per chunk), and the rerun refused the column or table it had
    written as existing."""
    from dive._io import written_before

    db = tmp_path / "db"
    make_table(db)
    target, column = ("small", None) if output_column is None else ("docs", "v8")
    run = {"batch_size": 300, "progress": False, "output_column": column}
    if output_column == "v8 again":  # replacing an earlier column: three commits
        dl.compress_table(model_dir, uri(db, "docs"), uri(db, target), **run)
        run["overwrite"] = True
    step = "_add_column" if column else "publish"  # Lance's commit; the new table's rename
    real = getattr(dl, step)

    def then_interrupted(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        signal.raise_signal(signal.SIGINT)  # Ctrl-C as it returns

    monkeypatch.setattr(dl, step, then_interrupted)
    with pytest.raises(KeyboardInterrupt) as caught:
        dl.compress_table(model_dir, uri(db, "docs"), uri(db, target), **run)
    assert written_before(caught.value)
    assert sorted(p.name for p in db.iterdir()) == sorted({"docs.lance", f"{target}.lance"})
    table = read(dl.open_table(uri(db, target)), "id", column or "vector")
    np.testing.assert_allclose(table[column or "vector"],
                               load(model_dir).transform(vectors(N)), atol=1e-6)


def test_rows_added_after_the_column_was_compressed_are_said_not_to_be_searched(
    tmp_path: Path, model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Their compressed column is null and LanceDB skips them: a query equal to a new row's
    vector never found it, without a word."""
    db = tmp_path / "db"
    table = make_table(db, x=vectors(300))
    dl.compress_table(model_dir, uri(db, "docs"), uri(db, "docs"), output_column="v8",
                      progress=False)
    new = vectors(5, seed=9)
    table.add(pa.table({
        "id": [f"new{i}" for i in range(5)], "text": ["new"] * 5,
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(new.reshape(-1)), DIM)}))
    with caplog.at_level(logging.WARNING, logger="dive"):
        dl.search(uri(db, "docs"), model_dir, new[:1], k=3, column="v8")
    said = [r.getMessage() for r in caplog.records if "not searched" in r.getMessage()]
    assert said == ["table 'docs': 5 of 305 rows have no value in column 'v8' (added after it "
                    "was compressed?) and are not searched; compress the table again with "
                    "overwrite to include them"]


def test_a_column_of_variable_size_lists_is_compressed_as_a_fixed_size_one(
    tmp_path: Path, model_dir: Path
) -> None:
    """LanceDB stores Python lists outside a column named "vector" as list<double>: refused
    ("must hold fixed-size vectors"), where the same column in Parquet was compressed."""
    db = tmp_path / "db"
    x = vectors(200)
    rows = [{"id": f"doc{i}", "emb": [float(v) for v in x[i]]} for i in range(200)]
    table = lancedb.connect(str(db)).create_table("lists", rows)
    assert pa.types.is_list(table.schema.field("emb").type)
    dl.compress_table(model_dir, uri(db, "lists"), uri(db, "small"), column="emb",
                      progress=False)
    small = read(dl.open_table(uri(db, "small")), "id", "emb")
    assert small["id"] == [f"doc{i}" for i in range(200)]
    np.testing.assert_allclose(small["emb"], load(model_dir).transform(x), atol=1e-6)
    rows[7]["emb"] = rows[7]["emb"][:-1]  # one row shorter
    lancedb.connect(str(db)).create_table("ragged", rows)
    # in the second chunk: its row counts from the table's start; and the table's first row,
    # not a "file's", set the expected dimension
    with pytest.raises(DataError, match=rf"^lancedb:{db}/ragged: row 7 \(id 'doc7'\): the "
                                        r"vector has dimension 31, expected 32 as in the "
                                        r"table's first row$"):
        dl.compress_table(model_dir, uri(db, "ragged"), uri(db, "small2"), column="emb",
                          batch_size=5, progress=False)


def test_a_column_to_read_named_with_a_backtick_is_one_clear_error(
        tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Lance finds no column whose name holds a '`' when it reads one ("Schema error: No field
    named"): `dive compress --id-column 'my`id'` printed that ValueError as a traceback, a
    search by such an id column raised it, and rescoring by such a column of another table
    was said to be ids of another type."""
    db = tmp_path / "db"
    x = vectors(20)
    vector = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), DIM)
    ids = [f"doc{i}" for i in range(20)]
    lancedb.connect(str(db)).create_table("docs", pa.table(
        {"id": ids, "my`id": ids, "vector": vector, "v`ec": vector}))
    assert main(["compress", str(model_dir), "--input", uri(db, "docs"), "--output",
                 uri(db, "small"), "--id-column", "my`id", "--no-progress"]) == 2
    assert capsys.readouterr().err == (
        f"dive: error: lancedb:{db}/docs: id column 'my`id': LanceDB cannot read a column whose "
        "name holds a '`'; rename it (LanceDB's alter_columns takes it as `my``id`) "
        "(--id-column)\n")
    assert sorted(p.name for p in db.iterdir()) == ["docs.lance"]
    with pytest.raises(DiveError, match=rf"^lancedb:{db}/docs: vector column 'v`ec': LanceDB "
                                        "cannot read"):
        dl.compress_table(model_dir, uri(db, "docs"), uri(db, "docs"), column="v`ec",
                          output_column="v8", progress=False)
    # a column added in place reads no ids
    dl.compress_table(model_dir, uri(db, "docs"), uri(db, "docs"), output_column="v8",
                      progress=False)
    with pytest.raises(DiveError, match=r"^table 'docs': id column 'my`id': LanceDB cannot "
                                        "read a column whose name holds a '`'"):
        dl.search(uri(db, "docs"), model_dir, x[:1], 3, column="v8", id_column="my`id")
    lancedb.connect(str(db)).create_table("other", [{"id": "doc0", "v": [0.0]}])
    for other in (uri(db, "other"), dl.open_table(uri(db, "other"))):  # named as the other table
        with pytest.raises(DiveError, match=r"^table 'other': rescore column 'v`ec': LanceDB "
                                            "cannot read"):
            dl.search(uri(db, "docs"), model_dir, x[:1], 3, column="v8",
                      rescore_with=(other, "v`ec"))
    with pytest.raises(DiveError, match=r"^table 'docs': rescore column 'v`ec': LanceDB cannot "
                                        "read"):
        dl.search(uri(db, "docs"), model_dir, x[:1], 3, column="v8", rescore_with="v`ec")


@pytest.mark.parametrize("output_column", [None, "v8"])
@pytest.mark.parametrize("limit", [1024, 16 * 1024])  # each staged part fits in 16 KiB
def test_a_write_that_cannot_finish_is_one_line_naming_the_table(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str],
    output_column: str | None, limit: int,
) -> None:
    """A full disk (here a file-size limit) while Lance wrote: a new table's RuntimeError was
    a traceback, a new column's OSError named a Rust source file of Lance, not the table; and
    a staged part's error named the hidden work folder."""
    db = tmp_path / "db"
    make_table(db)
    target = "docs" if output_column else "small"
    argv = ["compress", str(model_dir), "--input", uri(db, "docs"), "--output", uri(db, target),
            "--batch-size", "100", "--no-progress"]
    argv += ["--output-column", output_column] if output_column else []
    with file_size_limit(limit):
        assert main(argv) == 2
    assert capsys.readouterr().err == f"dive: error: {uri(db, target)}: file too large\n"
    assert main(argv) == 0  # resumed from the parts staged before
    written = read(dl.open_table(uri(db, target)), "id", output_column or "vector")
    np.testing.assert_allclose(written[output_column or "vector"],
                               load(model_dir).transform(vectors(N)), atol=1e-6)


@pytest.mark.parametrize("saved", [False, True])
def test_an_interruption_while_the_table_is_checked_says_what_a_rerun_finds(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str], saved: bool,
) -> None:
    """Ctrl-C while the table's ids were read, before any chunk: it said "finished chunks are
    saved and a rerun resumes", where there were none."""
    db = tmp_path / "db"
    make_table(db)
    argv = ["compress", str(model_dir), "--input", uri(db, "docs"), "--output", uri(db, "small"),
            "--batch-size", "500", "--no-progress"]
    assert compress_stopped_while_checked(argv, dl, "check_has_rows", saved) == 130
    assert capsys.readouterr().err.splitlines()[-1] == "dive: interrupted; " + (
        "finished chunks are saved and a rerun resumes" if saved
        else "no chunk was finished yet; a rerun starts over")


@pytest.mark.parametrize("output_column", [None, "small"])
@pytest.mark.parametrize("finished", [0, 2])
def test_a_run_stopped_before_it_saved_a_chunk_leaves_no_work_folder(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch,
    output_column: str | None, finished: int,
) -> None:
    """Ctrl-C in the first chunk said "no chunk was finished yet; a rerun starts over" and
    left the hidden work folder anyway, with nothing in it to resume; once a chunk is saved,
    the folder is what the rerun resumes from."""
    db = tmp_path / "db"
    make_table(db)
    original = dl._compress_chunk
    calls = {"n": 0}

    def compress(*args: Any, **kwargs: Any) -> Any:
        if calls["n"] == finished:
            raise KeyboardInterrupt
        calls["n"] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(dl, "_compress_chunk", compress)
    target = "docs" if output_column else "small"
    argv = ["compress", str(model_dir), "--input", uri(db, "docs"), "--output", uri(db, target),
            "--batch-size", "100", "--no-progress"]
    argv += ["--output-column", output_column] if output_column else []
    assert main(argv) == 130
    assert [p.name for p in db.iterdir() if p.name.startswith(".")] == (
        [f".{target}.lance{'.' + output_column if output_column else ''}.partial"]
        if finished else [])


@pytest.mark.parametrize("overwrite", [False, True])
def test_an_empty_folder_a_killed_run_claimed_for_a_new_table_is_filled(
    tmp_path: Path, model_dir: Path, overwrite: bool
) -> None:
    """SIGKILL between claiming `small.lance` (an empty folder) and renaming the table onto it
    left a folder every rerun refused, --overwrite too ("exists and is not a table dive
    compress wrote"), where the rerun of any other folder output fills it."""
    db = tmp_path / "db"
    make_table(db)
    (db / "small.lance").mkdir()
    dl.compress_table(model_dir, uri(db, "docs"), uri(db, "small"), batch_size=500,
                      progress=False, overwrite=overwrite)
    small = read(dl.open_table(uri(db, "small")), "id", "vector")
    assert small["id"] == [f"doc{i}" for i in range(N)]
