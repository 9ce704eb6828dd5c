"""Finding a dataset by path or name: data_dir, then $DIVE_DATA, then the cache, then download."""

from __future__ import annotations

import os
import shutil
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

import dive.data.download as download
from dive.data import default_cache_dir, load_dataset, resolve_dataset
from dive.errors import DataError

MakeBeir = Callable[..., Path]  # the `make_beir` fixture of tests/data/conftest.py


@pytest.fixture
def roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Empty roots for data_dir ("arg"), $DIVE_DATA ("env") and the cache; downloads fail."""
    paths = {"arg": tmp_path / "arg", "env": tmp_path / "env", "cache": tmp_path / "c" / "datasets"}
    for p in paths.values():
        p.mkdir(parents=True)
    monkeypatch.setenv("DIVE_DATA", str(paths["env"]))
    monkeypatch.setenv("DIVE_CACHE", str(tmp_path / "c"))
    # Nothing here may reach the network: a download attempt fails loudly on a dead URL.
    monkeypatch.setattr(download, "BEIR_URL", (tmp_path / "no-server").as_uri() + "/{name}.zip")
    return paths


def _put(make_beir: MakeBeir, root: Path) -> Path:
    """A tiny dataset at `root/toy`."""
    return make_beir(f"src-{root.parent.name}-{root.name}").rename(root / "toy")


def test_cache_dir_honours_dive_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIVE_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c" / "datasets"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG cache layout is Linux's")
def test_cache_dir_defaults_to_xdg_then_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIVE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "dive" / "datasets"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "dive" / "datasets"
    # a relative value is invalid (the XDG spec): it cached under whatever folder was current
    monkeypatch.setenv("XDG_CACHE_HOME", "rel/cache")
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "dive" / "datasets"


def test_existing_path_is_used_directly(roots: dict[str, Path], tiny_beir: Path) -> None:
    assert resolve_dataset(str(tiny_beir), data_dir=roots["arg"]) == tiny_beir


def test_missing_path_is_not_searched_or_downloaded(roots: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere/toy: no such dataset folder"):
        resolve_dataset(str(tmp_path / "nowhere" / "toy"))


def test_a_file_is_not_searched_or_downloaded_by_its_name(
    roots: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("corpus.npy").write_bytes(b"not a dataset")
    with pytest.raises(DataError, match=r"^corpus\.npy: is a file, not a dataset folder"):
        resolve_dataset("corpus.npy")
    # a path (not a bare name) was "no such dataset folder", though the file is right there
    with pytest.raises(DataError, match=r"/corpus\.npy: is a file, not a dataset folder"):
        resolve_dataset(str(tmp_path / "corpus.npy"))


@pytest.mark.parametrize("name", ["", "  "])
def test_an_empty_dataset_name_is_refused(
    roots: dict[str, Path], make_beir: MakeBeir, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # "" was the current folder: a dataset there loaded under that folder's name
    monkeypatch.chdir(make_beir())
    with pytest.raises(DataError, match=r"^the dataset name or path is empty"):
        load_dataset(name)


def test_data_dir_beats_dive_data_beats_cache(
    roots: dict[str, Path], make_beir: MakeBeir, caplog: pytest.LogCaptureFixture,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    in_cache = _put(make_beir, roots["cache"])
    assert in_cache == default_cache_dir() / "toy"
    assert resolve_dataset("toy") == in_cache
    in_env = _put(make_beir, roots["env"])
    assert resolve_dataset("toy") == in_env
    caplog.clear()
    assert resolve_dataset("toy", data_dir=roots["arg"]) == in_env  # data_dir lacks it: next
    # said, not at INFO: an edited copy named wrongly there was measured as the stock one
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", f"dataset toy: not in data_dir {roots['arg']}; using {in_env} (from "
                    "$DIVE_DATA)")]
    caplog.clear()
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    _put(make_beir, here)
    monkeypatch.delenv("DIVE_DATA")
    shutil.rmtree(in_cache)
    assert resolve_dataset("toy", data_dir=roots["arg"]) == Path("toy")  # the working directory
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", f"dataset toy: not in data_dir {roots['arg']}; using toy (the working "
                    "directory)")]
    monkeypatch.setenv("DIVE_DATA", str(roots["env"]))
    in_arg = _put(make_beir, roots["arg"])
    assert resolve_dataset("toy", data_dir=roots["arg"]) == in_arg
    assert resolve_dataset("toy", data_dir=str(roots["arg"])) == in_arg


def test_dive_data_may_list_several_folders(
    roots: dict[str, Path], make_beir: MakeBeir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    second = tmp_path / "second"
    second.mkdir()
    found = _put(make_beir, second)
    monkeypatch.setenv("DIVE_DATA", f"{roots['env']}{os.pathsep}{second}")
    assert resolve_dataset("toy") == found


def test_not_found_without_download_lists_where_it_looked(roots: dict[str, Path]) -> None:
    with pytest.raises(DataError) as info:
        resolve_dataset("toy", data_dir=roots["arg"], download=False)
    message = str(info.value)
    assert "'toy' not found and download is off" in message
    assert "\n" not in message
    for source, root in [("data_dir", roots["arg"]), ("$DIVE_DATA", roots["env"])]:
        assert f"{root / 'toy'} ({source})" in message
    assert f"{roots['cache'] / 'toy'} (cache)" in message
    assert "./toy (the working directory)" in message  # looked in too (README), unnamed before


def test_not_found_downloads_into_the_cache(
    roots: dict[str, Path], make_beir: MakeBeir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = tmp_path / "served"
    served.mkdir()
    folder = make_beir("toy")
    with zipfile.ZipFile(served / "toy.zip", "w") as zf:
        for path in folder.rglob("*"):
            if path.is_file():
                zf.write(path, f"toy/{path.relative_to(folder)}")
    monkeypatch.setattr(download, "BEIR_URL", served.as_uri() + "/{name}.zip")
    got = resolve_dataset("toy", data_dir=roots["arg"])
    assert got == roots["cache"] / "toy"
    assert (got / "corpus.jsonl").is_file()
    assert resolve_dataset("toy", download=False) == got  # found in the cache next time


def test_download_failure_surfaces_as_data_error(roots: dict[str, Path]) -> None:
    with pytest.raises(DataError, match=r"toy\.zip: download failed"):
        resolve_dataset("toy")
    assert list(roots["cache"].iterdir()) == []


def test_sub_dataset_name_resolves_inside_a_root(
    roots: dict[str, Path], make_beir: MakeBeir
) -> None:
    (roots["env"] / "bundle").mkdir()
    sub = make_beir("src").rename(roots["env"] / "bundle" / "part")
    assert resolve_dataset("bundle/part") == sub
    ds = load_dataset("bundle/part")
    assert ds.name == "bundle/part" and ds.path == sub


def test_load_dataset_names_by_name_or_folder(
    roots: dict[str, Path], make_beir: MakeBeir, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _put(make_beir, roots["env"])
    by_name = load_dataset("toy")
    assert by_name.name == "toy" and by_name.path == folder
    assert by_name.corpus_ids == ["d1", "d2", "d3", "d4"]
    by_path = load_dataset(str(folder))
    assert by_path.name == "toy" and by_path.qrels == by_name.qrels
    # "." is the folder it names: its name was "", so its cache was the model's folder
    monkeypatch.chdir(folder)
    assert load_dataset(".").name == "toy"
    monkeypatch.chdir(folder / "qrels")
    assert load_dataset("..").name == "toy"
    with pytest.raises(DataError, match="not found and download is off"):
        load_dataset("other", download=False)


def test_a_name_is_looked_up_in_the_roots_before_a_folder_of_that_name_here(
    roots: dict[str, Path], make_beir: MakeBeir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """As documented: `--data-dir`, `$DIVE_DATA`, the cache; a folder here named like the
    dataset used to win silently over `--data-dir`."""
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    local = make_beir("local").rename(here / "toy")
    assert resolve_dataset("toy") == Path("toy")  # in no root: the folder here
    assert resolve_dataset("./toy", data_dir=roots["arg"]) == Path("./toy")  # a path
    in_arg = _put(make_beir, roots["arg"])
    with caplog.at_level("WARNING"):
        assert resolve_dataset("toy", data_dir=roots["arg"]) == in_arg
    assert f"using {in_arg} (from data_dir), not the folder toy here; pass ./toy" in caplog.text
    assert local.is_dir()


def test_no_warning_of_another_folder_here_when_the_root_s_folder_is_the_one_here(
    roots: dict[str, Path], make_beir: MakeBeir, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Run from inside $DIVE_DATA, `toy` warned that it used $DIVE_DATA's toy "not the
    folder toy here; pass ./toy to use that one", of the one folder there is."""
    in_env = _put(make_beir, roots["env"])
    monkeypatch.chdir(roots["env"])
    with caplog.at_level("INFO"):
        assert resolve_dataset("toy") == in_env
    assert f"dataset toy: using {in_env} (from $DIVE_DATA)" in caplog.text
    assert "not the folder" not in caplog.text


def test_a_mistyped_sub_dataset_of_a_collection_at_hand_is_not_downloaded(
    roots: dict[str, Path], make_beir: MakeBeir
) -> None:
    """`bundle/prat` with `bundle` in $DIVE_DATA downloaded the whole `bundle` zip into the
    cache (multi-GB for cqadupstack), then named the cache's copy as lacking `prat`."""
    (roots["env"] / "bundle").mkdir()
    make_beir("src").rename(roots["env"] / "bundle" / "part")
    with pytest.raises(DataError, match=r"env/bundle \(\$DIVE_DATA\) has no sub-dataset 'prat'; "
                                        r"it holds: part$"):
        resolve_dataset("bundle/prat")
    assert list(roots["cache"].iterdir()) == []


def test_a_path_mistyped_below_a_folder_here_is_not_downloaded(
    roots: dict[str, Path], make_beir: MakeBeir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`data/libb` for `./data/lib` was read as sub-dataset `libb` of a BEIR zip named `data`
    and downloaded (a typo below a folder named like a BEIR set fetched that whole set)."""
    here = tmp_path / "here"
    (here / "data").mkdir(parents=True)
    make_beir("local").rename(here / "data" / "lib")
    monkeypatch.chdir(here)
    with pytest.raises(DataError, match=r"^data \(the working directory\) has no sub-dataset "
                                        r"'libb'; it holds: lib$"):
        resolve_dataset("data/libb")
    assert list(roots["cache"].iterdir()) == []


def test_a_sub_dataset_found_in_a_root_keeps_its_name_whatever_folder_is_here(
    roots: dict[str, Path], make_beir: MakeBeir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was `bundle/part` from another folder and `part` where the working directory held a
    `bundle/part` too (records and embeddings are keyed by the name: one dataset, two names)."""
    here = tmp_path / "here"
    (here / "bundle").mkdir(parents=True)
    make_beir("local").rename(here / "bundle" / "part")
    monkeypatch.chdir(here)
    # found in no root, only here: a path to a folder, named by it as ./bundle/part is
    assert load_dataset("bundle/part").name == "part"
    (roots["env"] / "bundle").mkdir()
    make_beir("src").rename(roots["env"] / "bundle" / "part")
    assert load_dataset("bundle/part").name == "bundle/part"
    assert load_dataset("./bundle/part").name == "part"  # the folder here, as a path


def test_load_dataset_takes_a_path_object(roots: dict[str, Path], make_beir: MakeBeir,
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    in_env = _put(make_beir, roots["env"])
    assert load_dataset(in_env).name == "toy"
    here = tmp_path / "here"
    here.mkdir()
    local = make_beir("local").rename(here / "toy")
    monkeypatch.chdir(here)  # Path("./toy") reads "toy": it was looked up, and found in env
    assert load_dataset(Path("./toy")).path == Path("toy") and load_dataset("toy").path == in_env
    assert local.is_dir()
    (roots["env"] / "bundle").mkdir()
    make_beir("src").rename(roots["env"] / "bundle" / "part")
    with pytest.raises(DataError, match=r"name one as .*/bundle/part$"):  # AttributeError: rstrip
        load_dataset(roots["env"] / "bundle")
