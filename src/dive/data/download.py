"""Find a dataset by name or path, and download official BEIR zips into a local cache.

A name (not an existing folder) is looked up as `<root>/<name>` in, in order: the `data_dir`
argument, each folder of `$DIVE_DATA` (os.pathsep-separated), then `default_cache_dir()`. If
none has it, the BEIR zip is downloaded into the cache. A download streams to a temporary
file inside the cache, unzips into a temporary folder there and is renamed into place only
once its layout checks out, so an interrupted or failed download leaves nothing a later
lookup could mistake for a dataset.

Left out: checksums of the zips (BEIR publishes none we could pin), proxies and retries beyond
what urllib does, and cleaning up temporary folders left by a killed process (they are hidden,
`.<name>.download-*`, and never found by a lookup).
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import logging
import os
import re
import stat
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

from tqdm import tqdm

from dive._io import as_path, cache_base, check_flag, named, user_path
from dive.data.beir import Dataset, load_beir
from dive.errors import DataError, DiveError, kind_of

logger = logging.getLogger(__name__)

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"

# One path segment that is safe in a URL and a file name: no "..", no leading dot.
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
# A name is one segment ("scifact") or two ("cqadupstack/android": a sub-dataset of a zip).
_NAME = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})?")
_CHUNK = 1 << 20
_TIMEOUT_S = 60.0


def default_cache_dir() -> Path:
    """Where downloaded datasets live: `$DIVE_CACHE/datasets`, else `<user cache>/dive/datasets`.

    The user cache is `$XDG_CACHE_HOME` or `~/.cache` on Linux, `~/Library/Caches` on macOS and
    `%LOCALAPPDATA%` on Windows.
    """
    return (cache_base() or _user_cache_dir() / "dive") / "datasets"


def _user_cache_dir() -> Path:
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA")
        return Path(local) if local else Path.home() / "AppData" / "Local"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches"
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says a relative value is invalid and must be ignored.
    return Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"


_A_FILE = "is a file, not a dataset folder (corpus.jsonl, queries.jsonl, qrels/)"


def resolve_dataset(
    name_or_path: str | os.PathLike[str],
    *,
    data_dir: str | Path | None = None,
    download: bool = True,
) -> Path:
    """The folder of a dataset given as an existing folder or a BEIR name.

    A bare name (`scifact`, `cqadupstack/android`) is looked up in `data_dir`, then
    `$DIVE_DATA`, then the cache, then as a folder of that name here (with a warning when
    both a root and here hold one: pass `./NAME` for the local folder), and is downloaded into
    the cache when `download` is true; otherwise a `DataError` lists every place it looked.
    Anything else is a path.
    """
    check_flag(download, "download")  # download="no" is true: it went to the network
    if not isinstance(name_or_path, (str, os.PathLike)):  # os.fspath's TypeError
        raise DiveError(f"the dataset is {kind_of(name_or_path)}; expected a dataset name or "
                        "the path of a BEIR folder")
    if data_dir is not None and not as_path(data_dir, "data_dir").is_dir():
        raise DataError(f"{data_dir}: data_dir is not a folder",
                        param="data_dir")
    raw = os.fspath(name_or_path)
    if not raw.strip():  # Path("") is the current folder: it would load whatever is here
        raise DataError(f"the dataset name or path is empty ({raw!r})")
    given = user_path(raw)
    # a Path is a path: Path("./cisi") reads "cisi", the name $DIVE_DATA's cisi was found by
    if not isinstance(name_or_path, str) or not _NAME.fullmatch(raw):
        if given.is_dir():
            return given
        # Not a bare name, so it was meant as a path; don't search or download for it.
        raise DataError(f"{raw}: " + (_A_FILE if given.is_file() else "no such dataset folder"))

    roots: list[tuple[str, Path]] = []
    if data_dir is not None:
        roots.append(("data_dir", user_path(data_dir)))
    for entry in os.environ.get("DIVE_DATA", "").split(os.pathsep):
        if entry:
            roots.append(("$DIVE_DATA", user_path(entry)))
    cache = default_cache_dir()
    roots.append(("cache", cache))
    for source, root in roots:
        candidate = root / raw
        if candidate.is_dir():
            if given.is_dir() and given.resolve() != candidate.resolve():
                logger.warning("dataset %s: using %s (from %s), not the folder %s here; pass "
                               "./%s to use that one", raw, candidate, source, raw, raw)
            elif data_dir is not None and source != "data_dir":  # given, and passed over
                logger.warning("dataset %s: not in data_dir %s; using %s (from %s)", raw,
                               data_dir, candidate, source)
            else:
                logger.info("dataset %s: using %s (from %s)", raw, candidate, source)
            return candidate
    if given.is_dir():
        if data_dir is not None:  # given, and passed over
            logger.warning("dataset %s: not in data_dir %s; using %s (the working directory)",
                           raw, data_dir, given)
        return given

    if given.is_file():  # a file meant as the data: downloading its name would mislead
        raise DataError(f"{raw}: {_A_FILE}")
    looked = "; ".join([*(f"{root / raw} ({source})" for source, root in roots),
                        f"./{raw} (the working directory)"])
    if not download:
        raise DataError(f"dataset {raw!r} not found and download is off; looked in: {looked}")
    top, _, sub = raw.partition("/")
    # a sub-dataset name with a typo, or a path mistyped below a folder here: not a download
    for source, root in [*roots, ("the working directory", Path("."))]:
        if sub and (root / top).is_dir():
            raise DataError(f"{root / top} ({source}) has no sub-dataset {sub!r}; it holds: "
                            + (", ".join(sorted(p.name for p in (root / top).iterdir()
                                                if p.is_dir())) or "no folder"))
    try:
        folder = download_beir(top, cache)
    except DataError as exc:
        raise DataError(f"dataset {raw!r} not found (looked in: {looked}) and {exc}") from None
    if sub:
        folder = folder / sub
        if not folder.is_dir():
            raise DataError(f"{folder}: the {top!r} download has no sub-dataset {sub!r}")
    return folder


def load_dataset(
    name_or_path: str | os.PathLike[str],
    *,
    data_dir: str | Path | None = None,
    download: bool = True,
) -> Dataset:
    """`resolve_dataset` then `load_beir`, named by `dataset_name`; a collection of datasets
    (cqadupstack) is named with its sub-datasets, as it holds no corpus of its own."""
    folder = resolve_dataset(name_or_path, data_dir=data_dir, download=download)
    raw = os.fspath(name_or_path)  # a Path is a path, as its text is
    subs = [] if _looks_like_beir(folder, depth=0) else sorted(
        p.name for p in folder.iterdir() if p.is_dir() and _looks_like_beir(p, depth=0))
    if subs:
        shown = ", ".join(subs[:5]) + (f" and {len(subs) - 5} more" if len(subs) > 5 else "")
        raise DataError(f"{folder}: a collection of datasets ({shown}), not one; name one as "
                        f"{raw.rstrip('/')}/{subs[0]}")
    return load_beir(folder, name=dataset_name(raw, folder))


def dataset_name(name_or_path: str, folder: Path) -> str:
    """The name records and embeddings know the dataset `name_or_path` (found at `folder`) by:
    a name it was found by, else the folder's name."""
    here = user_path(name_or_path)  # a folder of that name here is not what a root had
    is_name = bool(_NAME.fullmatch(name_or_path)) and not (
        here.is_dir() and here.resolve() == Path(folder).resolve())
    # "." or ".." name the folder they point to (their own name is empty or ".."); a link
    # last is kept, so a linked dataset keeps the link's name (`named`)
    return name_or_path if is_name else named(folder).name


def download_beir(name: str, dest_root: Path, *, url: str | None = None) -> Path:
    """Download BEIR dataset `name` (a zip) into `dest_root/name` and return that folder.

    `url` defaults to the official `BEIR_URL`; any URL urllib opens works (tests use
    `file://`). An existing `dest_root/name` is returned untouched. The folder appears
    atomically and only after its layout is checked; on any failure nothing is left behind.
    """
    if not re.fullmatch(_SEGMENT, name):
        raise DataError(f"{name!r} is not a dataset name (letters, digits, '_', '-', '.')")
    dest_root = user_path(dest_root)
    target = dest_root / name
    if target.is_dir():
        logger.info("dataset %s already at %s", name, target)
        return target
    if target.exists() or target.is_symlink():  # the final rename failed on it, after the
        # download, in a bare NotADirectoryError (a link to nothing was replaced)
        there = ("a link to nothing" if not target.exists() else
                 "a link to a file" if target.is_symlink() else "a file")
        raise DataError(f"{target}: {there} is where the dataset's folder goes; move it away")
    url = url or BEIR_URL.format(name=name)
    dest_root.mkdir(parents=True, exist_ok=True)
    try:
        return _download_into(name, url, dest_root, target)
    except KeyboardInterrupt as exc:  # nothing of it is kept: say so, not that a rerun resumes
        setattr(exc, _DOWNLOADING, name)
        raise


_DOWNLOADING = "dive_downloading"  # set on an interruption that landed during a download


def interrupted_download(exc: BaseException) -> str | None:
    """The dataset whose download the interruption `exc` broke off (None: not a download)."""
    return getattr(exc, _DOWNLOADING, None)


def _download_into(name: str, url: str, dest_root: Path, target: Path) -> Path:
    # Temporary work inside dest_root so the final rename stays on one filesystem (atomic).
    try:
        work = tempfile.TemporaryDirectory(prefix=f".{name}.download-", dir=dest_root)
    except OSError as exc:  # it named the random folder it could not make, never seen
        raise OSError(exc.errno, exc.strerror, str(dest_root)) from None
    with work as tmp:
        archive = Path(tmp) / f"{name}.zip"
        _fetch(url, archive, desc=name)
        extracted = Path(tmp) / "extracted"
        _unzip(archive, extracted, url=url, root=dest_root)
        found = _dataset_root(extracted, name, url)
        if found is None:
            raise DataError(
                f"{url}: the archive holds no BEIR dataset (corpus.jsonl, queries.jsonl, "
                "qrels/*.tsv) at its top level or one folder down"
            )
        try:
            os.replace(found, target)
        except OSError:
            if not target.is_dir():  # not just another process finishing first
                raise
            logger.info("dataset %s appeared at %s while downloading; keeping it", name, target)
    logger.info("downloaded %s to %s", url, target)
    return target


def _fetch(url: str, dest: Path, *, desc: str) -> None:
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "dive-compress"})
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with (
                open(dest, "wb") as out,
                tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=desc,
                    disable=None,  # no bar when stderr is not a terminal
                    leave=False,
                ) as bar,
            ):
                received = 0
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        raise DataError(f"{url}: download failed: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DataError(f"{url}: download failed: {exc.reason}") from None
    except (OSError, ValueError) as exc:  # timeouts, resets, disk full; ValueError: bad URL
        raise DataError(f"{url}: download failed: {exc}") from None
    except http.client.IncompleteRead:  # a chunked reply cut short: its count is of the last
        # read, not of the download ("0 bytes read" after megabytes came)
        raise DataError(f"{url}: download failed: the connection closed before the reply "
                        "ended; run again") from None
    except http.client.HTTPException as exc:
        raise DataError(f"{url}: download failed: {exc!r}; run again") from None
    # http.client ends a read early without a word when the connection closes before
    # Content-Length bytes came: the zip would then be refused as "not a zip file"
    if total is not None and received != total:
        raise DataError(f"{url}: download failed: the connection closed after {received} of "
                        f"{total} bytes; run again")


# Writing the unpacked files failed (not the archive): disk full, quota, file-size limit...
_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES}


def _unzip(archive: Path, dest: Path, *, url: str, root: Path) -> None:
    """Unpack `archive` into `dest`, a work folder in the cache folder `root`."""
    try:
        with zipfile.ZipFile(archive) as zf:
            links = [m.filename for m in zf.infolist() if stat.S_ISLNK(m.external_attr >> 16)]
            if links:  # zipfile writes a link as a file holding its target's path
                raise DataError(f"{url}: the archive holds a symbolic link ({links[0]}); a "
                                "BEIR archive holds files only")
            # extractall checks each member's CRC as it goes, and drops absolute paths and ".."
            # parts, so a corrupt member raises and no member can escape `dest`.
            zf.extractall(dest)
    except DataError:
        raise
    except OSError as exc:
        if exc.errno in _WRITE_ERRNOS:
            raise DataError(f"{root}: cannot unpack the download there: "
                            f"{exc.strerror}") from None
        raise DataError(f"{url}: not a readable zip archive: {exc}") from None
    # NotImplementedError: a compression method zipfile lacks (e.g. deflate64); RuntimeError:
    # an encrypted member; ValueError (UnicodeDecodeError): a member name zipfile cannot read
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError, RuntimeError,
            ValueError) as exc:
        raise DataError(f"{url}: not a readable zip archive: {exc}") from None


def _dataset_root(extracted: Path, name: str, url: str) -> Path | None:
    """The folder in an unzipped archive that holds the dataset (BEIR zips nest `<name>/`).

    A flat dataset wins over a folder of sub-datasets (cqadupstack): `<name>/` at the top or
    one folder down (a zip's wrapper folder), the top itself, then a single top folder of
    another name (a zip of `<name>` unpacked to `NAME-v2/`); several of those is a
    `DataError`, not a guess."""
    tops: list[Path] = []
    with contextlib.suppress(OSError):
        tops = sorted(
            p for p in extracted.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
        )
    named = [extracted / name, extracted, *(top / name for top in tops)]
    for folder in named:
        if folder.is_dir() and _looks_like_beir(folder, depth=0):
            return folder
    flat = [top for top in tops if _looks_like_beir(top, depth=0)]
    if len(flat) > 1:
        raise DataError(f"{url}: the archive holds several datasets "
                        f"({', '.join(p.name for p in flat)}), none named {name!r}")
    if flat:
        return flat[0]
    for folder in [extracted / name, extracted, *tops]:  # a collection of sub-datasets
        if folder.is_dir() and _looks_like_beir(folder, depth=1):
            return folder
    return None


def _looks_like_beir(folder: Path, *, depth: int) -> bool:
    """Has corpus, queries and a qrels split; or, like cqadupstack, sub-folders that do."""

    def has(rel: str) -> bool:
        return (folder / rel).is_file() or (folder / f"{rel}.gz").is_file()

    if has("corpus.jsonl") and has("queries.jsonl"):
        return any(has(f"qrels/{split}.tsv") for split in ("train", "dev", "test"))
    if depth > 0:
        return any(
            _looks_like_beir(sub, depth=depth - 1) for sub in folder.iterdir() if sub.is_dir()
        )
    return False
