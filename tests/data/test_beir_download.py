"""Downloading BEIR zips, offline: archives built in tmp_path, served by file:// or 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dive.data import download_beir, load_beir
from dive.errors import DataError

MakeBeir = Callable[..., Path]  # the `make_beir` fixture of tests/data/conftest.py


def zip_folder(folder: Path, archive: Path, *, prefix: str | None = None) -> Path:
    """Zip `folder` the way BEIR does: every member under `<prefix or folder name>/`."""
    top = folder.name if prefix is None else prefix
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(
                    path, f"{top}/{path.relative_to(folder)}" if top else path.relative_to(folder)
                )
    return archive


@pytest.fixture
def beir_zip(make_beir: MakeBeir, tmp_path: Path) -> Path:
    """`served/tiny.zip`, a BEIR-style zip of the tiny dataset."""
    (tmp_path / "served").mkdir()
    return zip_folder(make_beir("tiny"), tmp_path / "served" / "tiny.zip")


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A quiet HTTP server on 127.0.0.1 serving `tmp_path/served`; yields (base URL, folder)."""
    root = tmp_path / "served"
    root.mkdir(exist_ok=True)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_download_from_file_url_unpacks_and_loads(beir_zip: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    folder = download_beir("tiny", cache, url=beir_zip.as_uri())
    assert folder == cache / "tiny"
    assert (folder / "corpus.jsonl").is_file()  # the zip's tiny/ level is not nested again
    assert sorted(p.name for p in cache.iterdir()) == ["tiny"]  # no temporary leftovers
    ds = load_beir(folder)
    assert ds.corpus_ids == ["d1", "d2", "d3", "d4"]
    assert ds.split("train")["q2"] == {"d2": 2, "d4": 0}


@pytest.mark.parametrize("said", ["a file", "a link to a file", "a link to nothing"])
def test_a_file_where_the_dataset_folder_goes_is_one_error_before_the_download(
    beir_zip: Path, tmp_path: Path, said: str
) -> None:
    """It was found by the final rename, after the download: a bare NotADirectoryError (a
    link to nothing was replaced by the dataset)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (tmp_path / "mine").write_text("mine")
    if said == "a file":
        (cache / "tiny").write_text("mine")
    else:
        (cache / "tiny").symlink_to(tmp_path / ("mine" if said == "a link to a file" else "none"))
    with pytest.raises(DataError, match=f"tiny: {said} is where the dataset's folder goes"):
        download_beir("tiny", cache, url=(tmp_path / "no-such.zip").as_uri())  # never fetched
    assert sorted(p.name for p in cache.iterdir()) == ["tiny"]
    assert (cache / "tiny").is_symlink() or (cache / "tiny").read_text() == "mine"


def test_download_over_http(beir_zip: Path, http_root: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = http_root
    folder = download_beir("tiny", tmp_path / "cache", url=f"{base}/tiny.zip")
    assert load_beir(folder).query_ids == ["q1", "q2", "q3"]


def test_default_url_is_the_beir_template(
    beir_zip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dive.data.download as download

    assert download.BEIR_URL.format(name="scifact").endswith("/BEIR/datasets/scifact.zip")
    monkeypatch.setattr(download, "BEIR_URL", beir_zip.parent.as_uri() + "/{name}.zip")
    assert (download_beir("tiny", tmp_path / "cache") / "queries.jsonl").is_file()


def test_http_error_is_a_data_error_and_leaves_nothing(
    http_root: tuple[str, Path], tmp_path: Path
) -> None:
    base, _ = http_root
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"missing\.zip: download failed: HTTP 404"):
        download_beir("missing", cache, url=f"{base}/missing.zip")
    assert list(cache.iterdir()) == []


def test_corrupt_zip_leaves_no_folder_behind(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"bad\.zip: not a readable zip archive"):
        download_beir("bad", cache, url=bad.as_uri())
    assert list(cache.iterdir()) == []


def test_zip_with_a_damaged_member_leaves_no_folder_behind(beir_zip: Path, tmp_path: Path) -> None:
    data = bytearray(beir_zip.read_bytes())
    # Flip bytes in the middle of the first member's compressed data: the CRC check fails.
    start = data.index(b"tiny/") + 40
    data[start : start + 8] = bytes(b ^ 0xFF for b in data[start : start + 8])
    broken = tmp_path / "broken.zip"
    broken.write_bytes(bytes(data))
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"broken\.zip: not a readable zip archive"):
        download_beir("tiny", cache, url=broken.as_uri())
    assert list(cache.iterdir()) == []


def test_zip_without_a_dataset_is_rejected(tmp_path: Path) -> None:
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("other/readme.txt", "hello")
        zf.writestr("other/corpus.jsonl", '{"_id": "d", "text": "t"}\n')  # no queries, no qrels
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"other\.zip: the archive holds no BEIR dataset"):
        download_beir("other", cache, url=archive.as_uri())
    assert list(cache.iterdir()) == []


def test_flat_zip_or_differently_named_folder_lands_at_name(
    make_beir: MakeBeir, tmp_path: Path
) -> None:
    folder = make_beir("src")
    flat = zip_folder(folder, tmp_path / "flat.zip", prefix="")
    renamed = zip_folder(folder, tmp_path / "renamed.zip", prefix="upstream-name")
    for archive in (flat, renamed):
        got = download_beir(archive.stem, tmp_path / "cache", url=archive.as_uri())
        assert got == tmp_path / "cache" / archive.stem
        assert (got / "qrels" / "test.tsv").is_file()


def test_a_zip_whose_only_qrels_split_is_dev_is_a_dataset(
    make_beir: MakeBeir, default_qrels_tsv: dict[str, str], tmp_path: Path
) -> None:
    """Any one of the train, dev and test splits makes a dataset: dev alone is one too."""
    archive = zip_folder(make_beir("devonly", qrels={"dev": default_qrels_tsv["test"]}),
                         tmp_path / "devonly.zip")
    got = download_beir("devonly", tmp_path / "cache", url=archive.as_uri())
    assert sorted(p.name for p in (got / "qrels").iterdir()) == ["dev.tsv"]
    assert load_beir(got).split("dev")["q1"] == {"d3": 1}


def test_a_failed_final_rename_raises_rather_than_returning_no_dataset(
    beir_zip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a dataset another process put in place first excuses a failed rename: else the
    error stands, not a path where no dataset is."""
    import errno

    import dive.data.download as download

    def refused(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(download.os, "replace", refused)
    cache = tmp_path / "cache"
    with pytest.raises(OSError, match="Invalid cross-device link"):
        download_beir("tiny", cache, url=beir_zip.as_uri())
    assert not (cache / "tiny").exists()


def test_a_dataset_another_process_put_in_place_first_is_kept(
    beir_zip: Path, make_beir: MakeBeir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two runs downloading one dataset: the second's rename fails on the first's finished
    folder, which is kept; it was an OSError ('Directory not empty') after a whole download."""
    import dive.data.download as download

    cache = tmp_path / "cache"
    fetch = download._fetch

    def fetch_while_another_finishes(url: str, dest: Path, *, desc: str) -> None:
        fetch(url, dest, desc=desc)
        make_beir("other", queries='{"_id": "q1", "text": "theirs"}\n').rename(cache / "tiny")

    monkeypatch.setattr(download, "_fetch", fetch_while_another_finishes)
    with caplog.at_level("INFO", logger="dive.data.download"):
        got = download_beir("tiny", cache, url=beir_zip.as_uri())
    assert got == cache / "tiny" and load_beir(got).query_texts == ["theirs"]
    assert sorted(p.name for p in cache.iterdir()) == ["tiny"]  # no temporary leftovers
    assert "dataset tiny appeared at" in caplog.text and "keeping it" in caplog.text


def test_existing_folder_is_returned_without_downloading(tiny_beir: Path) -> None:
    # The URL does not exist: any attempt to fetch it would raise.
    url = (tiny_beir.parent / "nothing-here.zip").as_uri()
    assert download_beir(tiny_beir.name, tiny_beir.parent, url=url) == tiny_beir


@pytest.mark.parametrize("name", ["../evil", "a/b", ".hidden", ""])
def test_unsafe_names_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is not a dataset name"):
        download_beir(name, tmp_path, url=(tmp_path / "x.zip").as_uri())


def test_interrupted_download_leaves_nothing(
    beir_zip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dive.data.download as download

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "_unzip", interrupted)
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        download_beir("tiny", cache, url=beir_zip.as_uri())
    assert list(cache.iterdir()) == []


@pytest.fixture
def cut_server(beir_zip: Path) -> Iterator[str]:
    """A server on 127.0.0.1 that sends the first half of `beir_zip` and closes the connection:
    `/length.zip` after announcing the whole Content-Length, `/chunked.zip` mid-chunk;
    `/one-short.zip` sends all but the last byte."""
    data = beir_zip.read_bytes()

    class Cut(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            half = data[: len(data) // 2]
            if self.path.startswith("/one-short"):
                half = data[:-1]
            if self.path.startswith("/chunked"):
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.write(b"%x\r\n" % len(data) + half)
            else:
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(half)
            self.close_connection = True

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Cut)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(("path", "problem"), [
    ("length.zip", r"the connection closed after \d+ of \d+ bytes; run again"),
    # not http.client's IncompleteRead(0 bytes read): its count is of its last read
    ("chunked.zip", r"the connection closed before the reply ended; run again"),
])
def test_a_download_cut_short_is_named_as_such_and_leaves_nothing(
    cut_server: str, tmp_path: Path, path: str, problem: str
) -> None:
    # Before, the first was refused as "not a zip file" and the second was a traceback.
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=rf"{path}: download failed: {problem}"):
        download_beir("tiny", cache, url=f"{cut_server}/{path}")
    assert list(cache.iterdir()) == []


def test_a_download_one_byte_short_is_named_as_cut_short(
    cut_server: str, beir_zip: Path, tmp_path: Path
) -> None:
    """Every byte the Content-Length announced must come, not all but one."""
    size = beir_zip.stat().st_size
    with pytest.raises(DataError, match=rf"one-short\.zip: download failed: the connection "
                                        rf"closed after {size - 1} of {size} bytes; run again"):
        download_beir("tiny", tmp_path / "cache", url=f"{cut_server}/one-short.zip")
    assert list((tmp_path / "cache").iterdir()) == []


def _members(archive: Path, folder: Path, top: str) -> Path:
    """`folder` zipped under `top/` (a path of several parts for a wrapper folder)."""
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, f"{top}/{path.relative_to(folder)}")
    return archive


def test_a_wrapper_folder_above_the_dataset_is_looked_through(
    make_beir: MakeBeir, tmp_path: Path
) -> None:
    """`datasets/toy/corpus.jsonl` was taken for a collection (cqadupstack) and cached as
    `toy/toy/`, which no later load could read and no rerun replaced."""
    archive = _members(tmp_path / "toy.zip", make_beir("toy"), "datasets/toy")
    got = download_beir("toy", tmp_path / "cache", url=archive.as_uri())
    assert (got / "corpus.jsonl").is_file()
    assert load_beir(got).corpus_ids


def test_a_zip_of_gzipped_files_is_a_dataset(make_beir: MakeBeir, tmp_path: Path) -> None:
    """load_beir reads corpus.jsonl.gz and qrels/*.tsv.gz: such a zip was 'the archive holds
    no BEIR dataset'."""
    archive = zip_folder(make_beir("toy", gz=True), tmp_path / "toy.zip")
    got = download_beir("toy", tmp_path / "cache", url=archive.as_uri())
    assert (got / "corpus.jsonl.gz").is_file() and (got / "qrels" / "test.tsv.gz").is_file()
    assert load_beir(got).corpus_ids == ["d1", "d2", "d3", "d4"]


def test_the_folder_of_the_dataset_s_name_wins_over_a_dataset_at_the_top(
    make_beir: MakeBeir, tmp_path: Path
) -> None:
    """A zip holding a dataset at its top and one in `toy/` is unpacked as `toy/`, as
    documented (the named folder first); the top's was taken."""
    archive = tmp_path / "toy.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for top, query in (("", "outer"), ("toy/", "inner")):
            folder = make_beir(f"src-{query}", queries=f'{{"_id": "q1", "text": "{query}"}}\n')
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    zf.write(path, f"{top}{path.relative_to(folder)}")
    got = download_beir("toy", tmp_path / "cache", url=archive.as_uri())
    assert load_beir(got).query_texts == ["inner"]


def test_a_top_folder_whose_name_starts_with_an_underscore_is_passed_over(
    make_beir: MakeBeir, tmp_path: Path
) -> None:
    """`_old/` beside `toy-v2/` (a backup, or a tool's folder like __MACOSX) made the archive
    'several datasets (_old, toy-v2), none named toy'; toy-v2 is the one."""
    archive = tmp_path / "toy.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for top in ("_old", "toy-v2"):
            folder = make_beir(top, queries=f'{{"_id": "q1", "text": "{top}"}}\n')
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    zf.write(path, f"{top}/{path.relative_to(folder)}")
    got = download_beir("toy", tmp_path / "cache", url=archive.as_uri())
    assert got == tmp_path / "cache" / "toy"
    assert load_beir(got).query_texts == ["toy-v2"]


def test_two_datasets_none_of_that_name_are_refused_not_guessed(
    make_beir: MakeBeir, tmp_path: Path
) -> None:
    archive = tmp_path / "toy.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for top in ("zeta", "alpha"):
            folder = make_beir(top)
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    zf.write(path, f"{top}/{path.relative_to(folder)}")
    with pytest.raises(DataError, match=r"the archive holds several datasets \(alpha, zeta\), "
                                        r"none named 'toy'"):
        download_beir("toy", tmp_path / "cache", url=archive.as_uri())
    assert list((tmp_path / "cache").iterdir()) == []


def _bad_zip(tmp_path: Path, kind: str, make_beir: MakeBeir) -> Path:
    archive = _members(tmp_path / "toy.zip", make_beir("toy"), "toy")
    data = archive.read_bytes()
    if kind == "encrypted":  # the general-purpose flag bit 0 of every member
        data = data.replace(b"PK\x03\x04\x14\x00\x00\x00", b"PK\x03\x04\x14\x00\x01\x00")
        data = data.replace(b"PK\x01\x02\x14\x03\x14\x00\x00\x00",
                            b"PK\x01\x02\x14\x03\x14\x00\x01\x00")
    elif kind == "link":
        with zipfile.ZipFile(archive, "a") as zf:
            link = zipfile.ZipInfo("toy/qrels/train.tsv")
            link.external_attr = (0o120777 << 16)
            zf.writestr(link, "../../etc/passwd")
        return archive
    archive.write_bytes(data)
    return archive


@pytest.mark.parametrize(("kind", "message"), [
    ("encrypted", r"not a readable zip archive: .*encrypted"),
    ("link", r"the archive holds a symbolic link \(toy/qrels/train\.tsv\); a BEIR archive "
             r"holds files only"),
])
def test_an_archive_zipfile_cannot_unpack_safely_is_one_error(
    make_beir: MakeBeir, tmp_path: Path, kind: str, message: str
) -> None:
    """An encrypted member was zipfile's RuntimeError (a traceback); a link member was
    written as a file holding its target's path, cached, then read as qrels."""
    archive = _bad_zip(tmp_path, kind, make_beir)
    with pytest.raises(DataError, match=message):
        download_beir("toy", tmp_path / "cache", url=archive.as_uri())
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_member_name_that_is_not_utf8_is_one_error(make_beir: MakeBeir, tmp_path: Path) -> None:
    archive = _members(tmp_path / "toy.zip", make_beir("toy"), "toy")
    data = archive.read_bytes()
    # mark the first name UTF-8 (flag bit 11) and put a byte no UTF-8 text holds in it
    data = data.replace(b"toy/corpus.jsonl", b"toy/corpus\xff.json", 2)
    data = data.replace(b"PK\x03\x04\x14\x00\x00\x00", b"PK\x03\x04\x14\x00\x00\x08")
    data = data.replace(b"PK\x01\x02\x14\x03\x14\x00\x00\x00",
                        b"PK\x01\x02\x14\x03\x14\x00\x00\x08")
    archive.write_bytes(data)
    with pytest.raises(DataError, match=r"not a readable zip archive"):
        download_beir("toy", tmp_path / "cache", url=archive.as_uri())


@pytest.mark.parametrize("url", ["/a/plain/path.zip", "http://[::1/x"])
def test_a_url_urllib_cannot_take_is_one_error(tmp_path: Path, url: str) -> None:
    with pytest.raises(DataError, match=r"download failed"):
        download_beir("toy", tmp_path / "cache", url=url)


def test_a_failed_write_while_unpacking_is_not_blamed_on_the_archive(
    beir_zip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    def full(self: zipfile.ZipFile, path: object = None, members: object = None,
             pwd: object = None) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(zipfile.ZipFile, "extractall", full)
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=rf"^{cache}: cannot unpack the download there: No "
                                        "space left on device$"):
        download_beir("tiny", cache, url=beir_zip.as_uri())


def test_an_interrupted_download_is_marked_so_the_cli_says_nothing_was_kept(
    beir_zip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dive embed` interrupted while downloading said "finished chunks are saved and a rerun
    resumes"; the partial download is discarded and a rerun downloads from the start."""
    import dive.data.download as download

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "_fetch", interrupted)
    with pytest.raises(KeyboardInterrupt) as caught:
        download_beir("tiny", tmp_path / "cache", url=beir_zip.as_uri())
    assert download.interrupted_download(caught.value) == "tiny"


def test_a_collection_of_datasets_is_named_with_its_sub_datasets(
    make_beir: MakeBeir, tmp_path: Path
) -> None:
    """The bare name `cqadupstack` ended in "corpus.jsonl: missing", no hint of
    `cqadupstack/android`."""
    from dive.data.download import load_dataset

    collection = tmp_path / "coll"
    collection.mkdir()
    for sub in ("b", "a"):
        make_beir(sub).rename(collection / sub)
    with pytest.raises(DataError, match=rf"^{collection}: a collection of datasets \(a, b\), "
                                        rf"not one; name one as {collection}/a$"):
        load_dataset(str(collection))
    assert load_dataset(str(collection / "a")).corpus_ids


@pytest.mark.parametrize(("subs", "shown"), [("abcde", "a, b, c, d, e"),
                                             ("fedcba", "a, b, c, d, e and 1 more")])
def test_a_collection_names_five_of_its_sub_datasets_and_counts_the_rest(
    make_beir: MakeBeir, tmp_path: Path, subs: str, shown: str
) -> None:
    """Guards the count: with six, the sixth went unmentioned."""
    from dive.data.download import load_dataset

    collection = tmp_path / "coll"
    collection.mkdir()
    for sub in subs:
        make_beir(sub).rename(collection / sub)
    with pytest.raises(DataError, match=rf"^{collection}: a collection of datasets \({shown}\), "
                                        rf"not one; name one as {collection}/a$"):
        load_dataset(str(collection))


def test_the_cli_says_an_interrupted_download_kept_nothing(
    beir_zip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import dive.data.download as download
    from dive.cli import main

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setenv("DIVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DIVE_DATA", raising=False)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # no ./tiny to find
    monkeypatch.setattr(download, "BEIR_URL", beir_zip.as_uri().replace("tiny.zip", "{name}.zip"))
    monkeypatch.setattr(download, "_fetch", interrupted)
    assert main(["embed", "--dataset", "tiny", "--no-progress"]) == 130
    assert capsys.readouterr().err.strip() == (
        "dive: interrupted; the download of dataset tiny was discarded; a rerun downloads it "
        "again")


def test_a_cache_it_cannot_write_in_is_named_not_a_folder_never_made(
    beir_zip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It named the random work folder it had failed to make (`.tiny.download-rqaucvc0`)."""
    import tempfile

    def refused(*args: object, prefix: str = "", dir: str = "", **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", f"{dir}/{prefix}rqaucvc0")

    monkeypatch.setattr(tempfile, "TemporaryDirectory", refused)
    with pytest.raises(PermissionError) as caught:
        download_beir("tiny", tmp_path / "cache", url=beir_zip.as_uri())
    assert caught.value.filename == str(tmp_path / "cache")
