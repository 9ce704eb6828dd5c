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
    `/length.zip` after announcing the whole Content-Length, `/chunked.zip` mid-chunk."""
    data = beir_zip.read_bytes()

    class Cut(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            half = data[: len(data) // 2]
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
    ("chunked.zip", r"IncompleteRead\(.*\); run again"),
])
def test_a_download_cut_short_is_named_as_such_and_leaves_nothing(
    cut_server: str, tmp_path: Path, path: str, problem: str
) -> None:
    # Before, the first was refused as "not a zip file" and the second was a traceback.
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=rf"{path}: download failed: {problem}"):
        download_beir("tiny", cache, url=f"{cut_server}/{path}")
    assert list(cache.iterdir()) == []
