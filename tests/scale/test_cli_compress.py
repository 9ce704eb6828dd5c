"""`dive compress`: options and defaults in --help, a run, one-line errors, --overwrite."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest

from dive.cli import main


def test_help_documents_every_option_with_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["compress", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option, default in [
        ("--batch-size", "65536"),
        ("--engine", "local"),
        ("--vector-column", "vector"),
        ("--id-column", "id"),
        ("--overwrite", "False"),
    ]:
        assert option in text
        assert f"(default: {default})" in text.split(option, 2)[-1].split(" --", 1)[0], option
    assert "{float32,float16}" in text and "{local,ray}" in text
    dtype = text.split("--dtype", 2)[-1].split(" --", 1)[0]
    assert "(default: what the model outputs at its precision" in dtype and "None" not in dtype


def test_compress_npy_and_float16(
    tmp_path: Path, model_dir: Path, runtime, stores, capsys: pytest.CaptureFixture[str]
) -> None:
    x = stores.vectors(300)
    np.save(tmp_path / "x.npy", x)
    argv = ["compress", str(model_dir), "--input", str(tmp_path / "x.npy"), "--no-progress"]
    assert main([*argv, "--output", str(tmp_path / "y.npy"), "--batch-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "compressed 300 vectors 32 -> 8 (float32)" in out
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), runtime(x, batch_size=64))

    assert main([*argv, "--output", str(tmp_path / "h.npy"), "--dtype", "float16"]) == 0
    assert np.load(tmp_path / "h.npy").dtype == np.float16


def test_the_summary_names_the_output_as_given(
    tmp_path: Path, model_dir: Path, stores, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """It named it made absolute, where every other verb names its output as typed."""
    np.save(tmp_path / "x.npy", stores.vectors(10))
    monkeypatch.chdir(tmp_path)
    assert main(["compress", str(model_dir), "--input", "x.npy", "--output", "out/y.npy",
                 "--no-progress"]) == 0
    assert capsys.readouterr().out.endswith(" vectors/s): out/y.npy\n")


def test_errors_are_one_line_and_output_kept(
    tmp_path: Path, model_dir: Path, stores, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "x.npy", stores.vectors(20))
    np.save(tmp_path / "y.npy", stores.vectors(3, dim=8))  # an earlier output
    kept = (tmp_path / "y.npy").read_bytes()
    argv = ["compress", str(model_dir), "--input", str(tmp_path / "x.npy"), "--no-progress"]
    assert main([*argv, "--output", str(tmp_path / "y.npy")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dive: error: ") and err.count("\n") == 1
    assert "y.npy: already exists" in err and "--overwrite" in err
    assert (tmp_path / "y.npy").read_bytes() == kept

    (tmp_path / "notes.npy").write_text("my notes\n")  # not an output: never replaced
    assert main([*argv, "--output", str(tmp_path / "notes.npy"), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'notes.npy'}: exists and is not a compress " \
        "output (a 2-d .npy array); refusing to replace it" in err
    assert (tmp_path / "notes.npy").read_text() == "my notes\n"

    np.save(tmp_path / "w.npy", stores.vectors(20, dim=7))
    wrong = ["compress", str(model_dir), "--input", str(tmp_path / "w.npy")]
    assert main([*wrong, "--output", str(tmp_path / "z.npy")]) == 2
    assert "w.npy: vectors have dimension 7, but the model expects 32" in capsys.readouterr().err

    assert main([*argv, "--output", str(tmp_path / "y.npy"), "--overwrite"]) == 0
    assert np.load(tmp_path / "y.npy").shape == (20, 8)


def test_an_empty_npy_input_is_one_line_naming_it(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "x.npy", np.zeros((0, 32), dtype=np.float32))
    assert main(["compress", str(model_dir), "--input", str(tmp_path / "x.npy"), "--output",
                 str(tmp_path / "y.npy"), "--no-progress"]) == 2
    assert capsys.readouterr().err == (f"dive: error: {tmp_path / 'x.npy'}: no vectors to "
                                       "compress (0 rows)\n")
    assert not (tmp_path / "y.npy").exists()


def test_an_embeddings_folder_as_input_is_refused_naming_its_files(
    tmp_path: Path, model_dir: Path, stores, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its corpus.npy and queries.npy were compressed as two shards of one store (the
    queries counted among the vectors, the ids dropped)."""
    from dive.embed.store import Embeddings, save_embeddings

    folder = tmp_path / "emb"
    save_embeddings(folder, Embeddings(stores.vectors(6), [f"d{i}" for i in range(6)],
                                       stores.vectors(2), ["q0", "q1"],
                                       {"model": "m", "normalized": False}))
    assert main(["compress", str(model_dir), "--input", str(folder), "--output",
                 str(tmp_path / "out"), "--no-progress"]) == 2
    assert capsys.readouterr().err == (
        f"dive: error: {folder}: an embeddings folder, whose corpus and queries are not shards "
        "of one store; give its corpus.npy or queries.npy as the input\n")
    assert not (tmp_path / "out").exists()
    assert main(["compress", str(model_dir), "--input", str(folder / "corpus.npy"),
                 "--output", str(tmp_path / "out.npy"), "--no-progress"]) == 0
    assert np.load(tmp_path / "out.npy").shape == (6, 8)


@pytest.mark.parametrize("given", [
    ["--vector-column", "emb"], ["--column", "emb"], ["--id-column", "id"], ["--id-column", ""],
    ["--output-column", "small"],
])
@pytest.mark.parametrize("layout", ["file", "shards"])
def test_a_parquet_column_flag_with_npy_input_is_refused(
    tmp_path: Path, model_dir: Path, stores, given: list[str], layout: str,
    capsys: pytest.CaptureFixture[str]
) -> None:
    # it was ignored without a word, even given with the default's value
    src = tmp_path / ("x.npy" if layout == "file" else "shards")
    if layout == "shards":
        src.mkdir()
    np.save(src if layout == "file" else src / "a.npy", stores.vectors(5))
    output = tmp_path / ("y.npy" if layout == "file" else "y")
    argv = ["compress", str(model_dir), "--input", str(src), "--output", str(output),
            "--no-progress"]
    flag = "--vector-column" if given[0] == "--column" else given[0]
    assert main([*argv, *given]) == 2
    assert capsys.readouterr().err == (f"dive: error: {flag} applies to Parquet input only; "
                                       f"{src} holds .npy vectors\n")
    assert main([*argv, "--id-column", "k", "--output-column", "v"]) == 2
    assert "--id-column and --output-column apply to Parquet input only" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name]
    assert main(argv) == 0  # the defaults are no flag given


def test_compress_parquet_with_ids(
    tmp_path: Path, model_dir: Path, runtime, stores, capsys: pytest.CaptureFixture[str]
) -> None:
    x = stores.vectors(120)
    stores.write_parquet(tmp_path / "x.parquet", x, ids=[f"k{i}" for i in range(120)])
    argv = [
        "compress", str(model_dir), "--input", str(tmp_path / "x.parquet"),
        "--output", str(tmp_path / "y.parquet"), "--id-column", "id", "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    ids, y, _ = stores.read_parquet(tmp_path / "y.parquet")
    assert ids == [f"k{i}" for i in range(120)]
    np.testing.assert_array_equal(y, runtime(x))


def test_a_parquet_output_not_named_in_utf8_is_refused_before_its_work_folder(
    tmp_path: Path, model_dir: Path, stores
) -> None:
    """pyarrow takes UTF-8 paths only: the run failed at its first part, naming the part in
    the hidden work folder, which it left behind."""
    from dive.errors import DataError
    from dive.scale import compress_store

    stores.write_parquet(tmp_path / "x.parquet", stores.vectors(20))
    output = tmp_path / "out" / "bad\udcff.parquet"  # the byte 0xff, as Python keeps it
    with pytest.raises(DataError) as error:
        compress_store(model_dir, tmp_path / "x.parquet", output, progress=False)
    assert str(error.value) == (
        f"{output}: Parquet is written (by pyarrow) only at a path that is valid UTF-8, and "
        "this one has a byte of another encoding; name the output in UTF-8")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_duplicate_parquet_id_is_one_line_naming_the_row(
    tmp_path: Path, model_dir: Path, stores, capsys: pytest.CaptureFixture[str]
) -> None:
    stores.write_parquet(tmp_path / "x.parquet", stores.vectors(3), ids=["a", "b", "a"])
    assert main(["compress", str(model_dir), "--input", str(tmp_path / "x.parquet"), "--output",
                 str(tmp_path / "y.parquet"), "--no-progress"]) == 2
    assert capsys.readouterr().err == (f"dive: error: {tmp_path / 'x.parquet'}: row 2: duplicate "
                                       "id 'a' (first at row 0)\n")
    assert not (tmp_path / "y.parquet").exists()


def test_overwrite_replaces_a_compress_output_but_never_another_folder(
    tmp_path: Path, model_dir: Path, stores, capsys: pytest.CaptureFixture[str]
) -> None:
    shards = tmp_path / "x"
    shards.mkdir()
    for name in ("a.npy", "b.npy"):
        np.save(shards / name, stores.vectors(30))
    argv = ["compress", str(model_dir), "--input", str(shards), "--no-progress", "--overwrite"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    np.save(mine / "a.npy", stores.vectors(3))
    assert main([*argv, "--output", str(mine)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mine: exists and is not" in err and "refusing" in err
    assert sorted(p.name for p in mine.iterdir()) == ["a.npy", "notes.txt"]

    assert main([*argv, "--output", str(tmp_path / "y")]) == 0
    assert main([*argv, "--output", str(tmp_path / "y")]) == 0  # its own output: replaced
    assert sorted(p.name for p in (tmp_path / "y").glob("*.npy")) == ["a.npy", "b.npy"]
    # A single-file input never replaces a folder, not even one compress wrote, and says so
    # (it said the folder was not a compress output).
    np.save(tmp_path / "one.npy", stores.vectors(5))
    single = ["compress", str(model_dir), "--input", str(tmp_path / "one.npy"), "--overwrite"]
    assert main([*single, "--output", str(tmp_path / "y")]) == 2
    assert capsys.readouterr().err == (
        f"dive: error: {tmp_path / 'y'}: a compress output folder, where this run writes one "
        "file (its input is one file); name another output, or compress a folder of shards "
        "into this one\n")
    assert (tmp_path / "y" / "a.npy").is_file()
    # nor a folder of shards a file
    assert main([*single, "--output", str(tmp_path / "one_out.npy")]) == 0
    capsys.readouterr()
    assert main([*argv, "--output", str(tmp_path / "one_out.npy")]) == 2
    assert capsys.readouterr().err == (
        f"dive: error: {tmp_path / 'one_out.npy'}: a file, where this run writes a folder; "
        "name another output\n")
    assert np.load(tmp_path / "one_out.npy").shape == (5, 8)


def test_overwrite_keeps_the_mode_of_a_replaced_single_file(
    tmp_path: Path, model_dir: Path, stores
) -> None:
    np.save(tmp_path / "one.npy", stores.vectors(5))
    out = tmp_path / "out.npy"
    argv = ["compress", str(model_dir), "--input", str(tmp_path / "one.npy"), "--output",
            str(out), "--no-progress"]
    assert main(argv) == 0
    out.chmod(0o600)  # private embeddings stay private when replaced
    assert main([*argv, "--overwrite"]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


@pytest.mark.parametrize("single", [True, False], ids=["npy file", "shard folder"])
def test_an_output_another_run_writes_meanwhile_is_kept_and_so_is_the_finished_work(
    tmp_path: Path, model_dir: Path, runtime, stores, single: bool,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Both runs pass the output check at the start; the other one publishes just before this
    # one does (simulated: two real runs would also share the resume folder), which must then
    # refuse rather than replace it.
    from dive.scale import resume, stream

    src = tmp_path / ("x.npy" if single else "x")
    if single:
        np.save(src, stores.vectors(30))
    else:
        src.mkdir()
        np.save(src / "a.npy", stores.vectors(30))
    out = tmp_path / ("out.npy" if single else "out")
    argv = ["compress", str(model_dir), "--input", str(src), "--output", str(out),
            "--no-progress"]
    real_publish = stream.publish
    other = out / "a.npy" if not single else out
    np.save(tmp_path / "other.npy", stores.vectors(3, dim=8))
    others = (tmp_path / "other.npy").read_bytes()  # the other run's output

    def publish_after_another_run(tmp: Path, target: Path, **options: bool) -> None:
        other.parent.mkdir(exist_ok=True)
        other.write_bytes(others)
        if not single:
            (out / resume.OUTPUT_MARKER).write_text("{}\n")
        real_publish(tmp, target, **options)

    with monkeypatch.context() as m:
        m.setattr(stream, "publish", publish_after_another_run)
        capsys.readouterr()
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{out}: already exists" in err and "--overwrite" in err
    assert "kept" in err and "without recomputing" in err
    assert other.read_bytes() == others
    partial = resume.Partial(out)
    assert partial.state_path.is_file()  # the finished work, for a rerun to publish

    # The rerun with --overwrite publishes that work: no row is compressed again.
    assert main([*argv, "--overwrite"]) == 0
    assert "resumed after 30" in capsys.readouterr().out
    np.testing.assert_allclose(np.load(out if single else out / "a.npy"),
                               runtime(stores.vectors(30)), rtol=0, atol=1e-6)
    assert not partial.root.exists()


def test_a_parquet_path_pyarrow_cannot_take_is_one_line(
    tmp_path: Path, model_dir: Path, stores, capsys: pytest.CaptureFixture[str]
) -> None:
    """pyarrow takes UTF-8 paths only: a file name with a byte of another encoding was its
    UnicodeEncodeError traceback."""
    import os

    stores.write_parquet(tmp_path / "x.parquet", stores.vectors(20))
    latin = tmp_path / os.fsdecode(b"x\xe9.parquet")
    (tmp_path / "x.parquet").rename(latin)
    assert main(["compress", str(model_dir), "--input", str(latin), "--output",
                 str(tmp_path / "y.parquet"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dive: error: ") and \
        "is not valid UTF-8, which a library this verb uses needs for a path" in err, err
