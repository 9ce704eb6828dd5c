"""Atomic writes: file modes follow the umask, replacing keeps a file's mode; the write lock."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dive._io import atomic_write_bytes, atomic_write_text, locked, resolve_link
from dive.errors import DataError, DiveError


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_new_file_gets_the_mode_the_umask_says(tmp_path: Path, umask: None, mask: int) -> None:
    os.umask(mask)
    atomic_write_text(tmp_path / "a.txt", "x")
    atomic_write_bytes(tmp_path / "b.bin", b"x")
    assert mode(tmp_path / "a.txt") == 0o666 & ~mask
    assert mode(tmp_path / "b.bin") == 0o666 & ~mask


@pytest.mark.parametrize(("old_mode", "mask"), [(0o644, 0o002), (0o664, 0o022), (0o600, 0o002)])
def test_replacing_a_file_keeps_its_mode(
    tmp_path: Path, umask: None, old_mode: int, mask: int
) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text("old\n")
    path.chmod(old_mode)
    os.umask(mask)
    atomic_write_text(path, "new\n")
    assert path.read_text() == "new\n"
    assert mode(path) == old_mode


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_folders_dive_writes_get_the_mode_the_umask_says(
    tiny: tuple[Path, Path], tmp_path: Path, umask: None, mask: int
) -> None:
    # Each is built in a private temporary folder and renamed into place: it must not stay
    # 0700, nor be opened to everyone (0755) under a private umask.
    from dive.cli import main

    data, emb = tiny
    os.umask(mask)
    fit = ["fit", "--dataset", str(data), "--embeddings", str(emb), "--method", "pca",
           "--dim", "8", "--output", str(tmp_path / "model")]
    st = ["export", str(tmp_path / "model"), "--format", "sentence-transformers",
          "--output", str(tmp_path / "st")]
    imported = ["embed", "--dataset", str(data), "--from-npy", str(emb / "corpus.npy"),
                "--ids", str(emb / "corpus_ids.txt"), "--queries-npy", str(emb / "queries.npy"),
                "--query-ids", str(emb / "query_ids.txt"), "--output", str(tmp_path / "imported")]
    for argv in (fit, st, imported):
        assert main(argv) == 0
    for name in ("model", "st", "imported"):
        assert mode(tmp_path / name) == 0o777 & ~mask, name


# --- publish: no output is replaced without overwrite, even one that appeared meanwhile ----


def temp_file(folder: Path, data: bytes) -> Path:
    tmp = folder / ".out.x.tmp"
    tmp.write_bytes(data)
    return tmp


def temp_folder(folder: Path, data: bytes) -> Path:
    tmp = folder / ".out.y.tmp"
    tmp.mkdir()
    (tmp / "config.json").write_bytes(data)
    return tmp


@pytest.mark.parametrize("old_mode", [0o600, 0o664])
def test_a_published_file_keeps_the_mode_of_the_file_it_replaces(
    tmp_path: Path, umask: None, old_mode: int
) -> None:
    # a writer's own temporary file (np.save, a Parquet writer) has the umask's mode
    from dive._io import publish

    os.umask(0o022)
    (tmp_path / "out").write_bytes(b"old")
    (tmp_path / "out").chmod(old_mode)
    publish(temp_file(tmp_path, b"new"), tmp_path / "out", overwrite=True)
    assert (tmp_path / "out").read_bytes() == b"new"
    assert mode(tmp_path / "out") == old_mode


def test_a_published_folder_keeps_the_mode_of_the_folder_it_replaces(
    tmp_path: Path, umask: None
) -> None:
    # a folder built by a plain mkdir (compress's shards) has the umask's mode
    from dive._io import publish

    os.umask(0o022)
    (tmp_path / "out").mkdir()
    (tmp_path / "out").chmod(0o700)
    publish(temp_folder(tmp_path, b"new"), tmp_path / "out", overwrite=True)
    assert (tmp_path / "out" / "config.json").read_bytes() == b"new"
    assert mode(tmp_path / "out") == 0o700


def test_a_folder_is_replaced_by_one_atomic_swap_where_the_system_has_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # two renames (old aside, new in) left a moment with no folder at all for a reader
    from dive._io.atomic import _exchange, replace_path

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x").write_text("a")
    (tmp_path / "b" / "x").write_text("b")
    if not _exchange(tmp_path / "a", tmp_path / "b"):
        pytest.skip("no renameat2(RENAME_EXCHANGE) on this system: the two-rename way is used")
    assert (tmp_path / "a" / "x").read_text() == "b"  # swapped
    assert (tmp_path / "b" / "x").read_text() == "a"

    def no_rename(*args: object) -> None:
        raise AssertionError("replaced by renames, not by one swap")

    monkeypatch.setattr(os, "replace", no_rename)
    replace_path(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "b" / "x").read_text() == "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # the old one removed


def test_publish_links_a_file_to_a_free_target(tmp_path: Path) -> None:
    from dive._io import publish

    publish(temp_file(tmp_path, b"new"), tmp_path / "out", overwrite=False)
    assert (tmp_path / "out").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_publish_keeps_a_file_there_unless_told_to_overwrite(
    tmp_path: Path, overwrite: bool
) -> None:
    from dive._io import publish

    (tmp_path / "out").write_bytes(b"first")
    tmp = temp_file(tmp_path, b"second")
    if overwrite:
        publish(tmp, tmp_path / "out", overwrite=True)
        assert (tmp_path / "out").read_bytes() == b"second"
    else:
        with pytest.raises(DiveError, match=r"out: already exists; pass overwrite=True"):
            publish(tmp, tmp_path / "out", overwrite=False)
        assert (tmp_path / "out").read_bytes() == b"first"
    assert not tmp.exists()


@pytest.mark.parametrize("there", ["nothing", "empty folder"])
def test_publish_renames_a_folder_onto_a_free_or_empty_target(tmp_path: Path, there: str) -> None:
    from dive._io import publish

    if there == "empty folder":
        (tmp_path / "out").mkdir()
    publish(temp_folder(tmp_path, b"new"), tmp_path / "out", overwrite=False)
    assert (tmp_path / "out" / "config.json").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_publish_keeps_a_folder_there_unless_told_to_overwrite(
    tmp_path: Path, overwrite: bool
) -> None:
    from dive._io import publish

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "config.json").write_bytes(b"first")
    tmp = temp_folder(tmp_path, b"second")
    if overwrite:
        publish(tmp, tmp_path / "out", overwrite=True)
        assert (tmp_path / "out" / "config.json").read_bytes() == b"second"
    else:
        with pytest.raises(DiveError, match=r"out: already exists; pass overwrite=True"):
            publish(tmp, tmp_path / "out", overwrite=False)
        assert (tmp_path / "out" / "config.json").read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_publish_refuses_a_folder_another_run_fills_after_the_claim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Between this run's mkdir (the claim) and its rename, another run writes into it.
    import dive._io.atomic as io_module
    from dive.errors import DiveError

    real_rename = os.rename

    def rename_after_another_run(src: Path, dst: Path) -> None:
        (tmp_path / "out" / "config.json").write_bytes(b"other")
        real_rename(src, dst)

    monkeypatch.setattr(io_module.os, "rename", rename_after_another_run)
    tmp = temp_folder(tmp_path, b"mine")
    with pytest.raises(DiveError, match=r"out: already exists"):
        io_module.publish(tmp, tmp_path / "out", overwrite=False)
    assert (tmp_path / "out" / "config.json").read_bytes() == b"other"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# A no-overwrite publish claimed its folder by `mkdir(target, 0o700)`, then renamed onto it.
_KILLED_AFTER_CLAIM = """
import os, signal, sys
from pathlib import Path
from dive import _io
os.rename = lambda *args: os.kill(os.getpid(), signal.SIGKILL)  # after the claim, before this
tmp = Path(sys.argv[1])
tmp.mkdir()
_io.publish(tmp, Path(sys.argv[2]), overwrite=False)
"""


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_claim_left_by_a_killed_run_gives_the_next_folder_the_umask_mode(
    tmp_path: Path, umask: None, overwrite: bool
) -> None:
    """SIGKILL between the claim and the rename left an empty 0700 folder; the rerun's folder
    (or a concurrent --overwrite run's, meeting the claim) kept that mode, as it keeps a
    replaced folder's: `dive fit`'s model, `dive embed`'s embeddings, unreadable to the group
    and others. Now the claim has the mode a new folder gets."""
    import subprocess
    import sys

    from dive._io import publish

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    killed = subprocess.run([sys.executable, "-c", _KILLED_AFTER_CLAIM, str(tmp_path / "a"),
                             str(tmp_path / "out")], env=env, timeout=60, check=False)
    assert killed.returncode == -9 and not any((tmp_path / "out").iterdir())
    publish(temp_folder(tmp_path, b"new"), tmp_path / "out", overwrite=overwrite)
    assert (tmp_path / "out" / "config.json").read_bytes() == b"new"
    assert mode(tmp_path / "out") == 0o755


def test_publish_refuses_a_file_where_a_folder_goes(tmp_path: Path) -> None:
    from dive._io import publish

    (tmp_path / "out").write_bytes(b"first")
    with pytest.raises(DiveError, match=r"out: already exists"):
        publish(temp_folder(tmp_path, b"new"), tmp_path / "out", overwrite=False)
    assert (tmp_path / "out").read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_a_file_published_without_overwrite_gets_the_mode_the_umask_says(
    tmp_path: Path, umask: None, mask: int
) -> None:
    from dive.errors import DiveError

    os.umask(mask)
    atomic_write_text(tmp_path / "a.txt", "x", overwrite=False)
    assert mode(tmp_path / "a.txt") == 0o666 & ~mask
    with pytest.raises(DiveError, match="already exists"):
        atomic_write_bytes(tmp_path / "a.txt", b"y", overwrite=False)
    assert (tmp_path / "a.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_locked_through_a_link_holds_the_real_files_folder(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "links").mkdir()
    (tmp_path / "real" / "r.jsonl").touch()
    link = tmp_path / "links" / "r.jsonl"
    link.symlink_to(tmp_path / "real" / "r.jsonl")
    fd = os.open(tmp_path / "real", os.O_RDONLY)
    try:
        with locked(link), pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a run given the real path waits
    finally:
        os.close(fd)


def test_a_run_waiting_long_for_the_lock_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # it waited without a word while another process held the results file's folder
    import threading

    from dive import _io

    for held_for, said in ((0.2, False), (_io.LOCK_QUIET_SECONDS + 0.3, True)):
        caplog.clear()
        fd = os.open(tmp_path, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)  # another process appending ...
        threading.Timer(held_for, os.close, [fd]).start()  # ... until then
        with locked(tmp_path / "r.jsonl"):
            pass
        line = f"{tmp_path / 'r.jsonl'}: waiting for another process writing there"
        assert (line in caplog.text) is said  # a short wait is not worth a line


def test_resolve_link_follows_every_link_but_a_broken_one(tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    real.touch()
    (tmp_path / "one").symlink_to(real)
    (tmp_path / "two").symlink_to(tmp_path / "one")
    (tmp_path / "broken").symlink_to(tmp_path / "nothing")
    assert resolve_link(tmp_path / "two") == real.resolve()
    assert resolve_link(tmp_path / "broken") == tmp_path / "broken"
    assert resolve_link(tmp_path / "new.txt") == tmp_path / "new.txt"


def test_overwrite_refuses_a_folder_holding_files_added_since_dive_wrote_it(
    tmp_path: Path,
) -> None:
    # replacing the folder deleted a user's notes.txt (and anything else put inside) with it
    from dive._io import MANIFEST, check_output, publish
    from dive.errors import DiveError

    out = tmp_path / "out"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "sub").mkdir()
    (tmp_path / "a" / "config.json").write_bytes(b"first")
    (tmp_path / "a" / "sub" / "part.npy").write_bytes(b"rows")
    publish(tmp_path / "a", out, overwrite=False)
    assert (out / MANIFEST).read_text() == "config.json\nsub/part.npy\n"

    def check() -> None:
        check_output(out, overwrite=True, ours=lambda p: True, what="a folder", folder=True)

    check()  # only what dive wrote, edited or not: replaced
    (out / "config.json").write_bytes(b"edited")
    check()
    (out / "notes.txt").write_text("mine")
    (out / "sub" / "more.txt").write_text("mine too")
    with pytest.raises(DiveError, match=r"out: holds files dive did not write \(notes\.txt, "
                                        r"sub/more\.txt\); replacing the folder would delete"):
        check()
    (out / MANIFEST).unlink()  # a folder from before manifests: replaced as before
    check()


def test_a_hidden_file_a_user_put_in_a_saved_folder_is_one_dive_did_not_write(
    tmp_path: Path,
) -> None:
    """Only the manifest is dive's own hidden file: a user's `.notes` (or `.env`) in the folder
    was deleted with it by an overwrite, were dot-files passed over."""
    from dive._io import check_output, publish

    out = tmp_path / "out"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.json").write_bytes(b"first")
    publish(tmp_path / "a", out, overwrite=False)
    (out / ".notes").write_text("mine")
    with pytest.raises(DiveError, match=r"out: holds files dive did not write \(\.notes\)"):
        check_output(out, overwrite=True, ours=lambda p: True, what="a folder", folder=True)
    assert (out / ".notes").read_text() == "mine"


def test_files_added_past_the_first_three_are_counted_in_the_refusal(tmp_path: Path) -> None:
    """The message names three and says how many more: without the count, five added files
    read as three, and moving those three out met the same refusal again."""
    from dive._io import check_output, publish

    out = tmp_path / "out"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.json").write_bytes(b"first")
    publish(tmp_path / "a", out, overwrite=False)
    for name in "abcde":
        (out / f"{name}.txt").write_text(name)
    with pytest.raises(DiveError, match=r"out: holds files dive did not write \(a\.txt, b\.txt, "
                                        r"c\.txt and 2 more\); replacing"):
        check_output(out, overwrite=True, ours=lambda p: True, what="a folder", folder=True)


@pytest.mark.parametrize("name", ["m", "sub/m"])
def test_check_output_meets_what_would_stop_the_write_before_the_work(
    tmp_path: Path, name: str
) -> None:
    # nothing there, so nothing refused: `dive fit --output notes/m` fitted the whole model,
    # then failed to save it ("a file is in the way"); a read-only folder the same
    from dive._io import check_output, describe_os_error

    (tmp_path / "notes").write_text("mine")
    with pytest.raises(NotADirectoryError) as exc:
        check_output(tmp_path / "notes" / name, overwrite=False, ours=lambda p: True,
                     what="a folder", folder=True)
    assert describe_os_error(exc.value) == (f"{tmp_path / 'notes'}: a file is in the way of "
                                            "a folder needed here")
    assert [p.name for p in tmp_path.iterdir()] == ["notes"]
    check_output(tmp_path / "new" / name, overwrite=False, ours=lambda p: True, what="a folder")
    assert [p.name for p in tmp_path.iterdir()] == ["notes"]  # the check leaves nothing


def test_an_output_suffix_is_compared_without_its_case(tmp_path: Path) -> None:
    """`--plot plot.PNG` is a PNG plot, as `plot.png` is: it was refused as "the name ends
    '.PNG'"; another suffix still is."""
    from dive._io import check_suffix

    check_suffix(tmp_path / "plot.PNG", ".png", "a PNG plot")
    check_suffix(tmp_path / "plot", ".png", "a PNG plot")  # no suffix: taken as it is
    with pytest.raises(DiveError, match=r"plot\.svg: a PNG plot goes here, but the name ends "
                                        r"'\.svg'; name it \*\.png$"):
        check_suffix(tmp_path / "plot.svg", ".png", "a PNG plot")


@pytest.mark.parametrize("spelled", ["..", "absolute"])
def test_an_output_holding_the_current_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelled: str
) -> None:
    """Guards "or holds it": `--output ..` run from a subfolder replaced the folder the shell
    is in, and left it in a deleted one."""
    from dive._io import check_output

    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    path = Path("..") if spelled == ".." else tmp_path
    with pytest.raises(DiveError, match=r": is the current folder or holds it, which an output"):
        check_output(path, overwrite=True, ours=lambda p: True, what="a folder", folder=True)
    assert (tmp_path / "sub").is_dir()


@pytest.mark.parametrize("folder", [False, True])
def test_an_interruption_while_a_temporary_is_made_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folder: bool
) -> None:
    # tempfile.mkstemp made the file before its caller knew the name: a Ctrl-C or SIGTERM
    # landing in between left an empty hidden .NAME.xxxx.tmp behind
    from dive import _io
    from dive._io import temporaries

    real = temporaries._make_temporary

    def made_then_interrupted(tmp: Path, *, folder: bool) -> int:
        os.close(real(tmp, folder=folder))
        raise KeyboardInterrupt

    monkeypatch.setattr(temporaries, "_make_temporary", made_then_interrupted)
    with pytest.raises(KeyboardInterrupt), _io.temporary(tmp_path / "out", folder=folder):
        pass
    with pytest.raises(KeyboardInterrupt), _io.atomic_open(tmp_path / "out.txt"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_a_folder_from_before_manifests_is_judged_by_its_layout(tmp_path: Path) -> None:
    # without .dive-files (an older dive, the shared embeddings), --overwrite deleted a
    # user's NOTES.md with the folder
    from dive._io import check_output
    from dive.errors import DiveError

    out = tmp_path / "emb"
    out.mkdir()
    (out / "corpus.npy").write_bytes(b"x")

    def check(layout: tuple[str, ...]) -> None:
        check_output(out, overwrite=True, ours=lambda p: True, what="a folder", folder=True,
                     layout=layout)

    check(("corpus.npy", "meta.json"))  # only (some of) its own files
    (out / "NOTES.md").write_text("mine")
    with pytest.raises(DiveError, match=r"emb: holds files dive did not write \(NOTES\.md\)"):
        check(("corpus.npy", "meta.json"))
    check(())  # a kind without a known layout: as before


def test_uninterrupted_holds_ctrl_c_until_the_block_ends_then_raises_it(
        default_signals: None) -> None:
    import signal

    from dive._io import uninterrupted

    before = signal.getsignal(signal.SIGINT)
    done = []
    with pytest.raises(KeyboardInterrupt), uninterrupted():
        os.kill(os.getpid(), signal.SIGINT)
        done.append("after the signal")  # not cut short
    assert done == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is before
    with uninterrupted():  # nothing held: nothing raised
        pass


def test_uninterrupted_leaves_a_handler_installed_from_c_alone(
        default_signals: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a host that installed its SIGTERM handler from C (uWSGI, mod_wsgi), Python sees
    None, which `signal.signal` cannot put back: the block raised TypeError, and SIGTERM and
    SIGHUP stayed held, swallowed, for good."""
    import signal

    from dive._io import uninterrupted

    real_signal, real_getsignal = signal.signal, signal.getsignal
    from_c = {signal.SIGTERM}  # as the host's handler reads from Python

    def getsignal(sig: int) -> object:
        return None if sig in from_c else real_getsignal(sig)

    def set_signal(sig: int, handler: object) -> object:
        if sig in from_c:
            if handler is None:
                raise TypeError("signal handler must be signal.SIG_IGN, signal.SIG_DFL, or a "
                                "callable object")
            from_c.discard(sig)
            real_signal(sig, handler)  # type: ignore[arg-type]
            return None
        return real_signal(sig, handler)  # type: ignore[arg-type]

    monkeypatch.setattr(signal, "getsignal", getsignal)
    monkeypatch.setattr(signal, "signal", set_signal)
    with uninterrupted():
        pass
    assert from_c == {signal.SIGTERM}  # never replaced
    assert real_getsignal(signal.SIGHUP) is signal.SIG_DFL  # the others put back


def test_uninterrupted_raises_the_first_signal_it_held(default_signals: None) -> None:
    """SIGTERM then SIGHUP during the block: the one raised after it is the first, which
    decided how the run ends, not a later one."""
    import signal

    from dive._io import uninterrupted

    delivered: list[str] = []
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: delivered.append(signal.Signals(signum).name))
    with uninterrupted():
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGHUP)
        assert delivered == []  # held
    assert delivered == ["SIGTERM"]


def test_an_output_is_written_from_a_thread_other_than_the_main_one(tmp_path: Path) -> None:
    """Only the main thread may set a signal handler: a save from a worker thread (a web
    server's, a thread pool's) failed with "signal only works in main thread"."""
    import threading

    failed: list[BaseException] = []

    def write() -> None:
        try:
            atomic_write_text(tmp_path / "out.txt", "from a thread")
        except BaseException as exc:  # carried to the test's thread
            failed.append(exc)

    worker = threading.Thread(target=write)
    worker.start()
    worker.join()
    assert failed == [] and (tmp_path / "out.txt").read_text() == "from a thread"


# Writes `.out.npy.<random>.tmp` (and a staging folder) through `temporary`, says so, then
# is SIGKILLed, or (with "live") waits to be killed by the test.
_HOLDS_TEMPORARIES = """
import os, signal, sys, time
from pathlib import Path
from dive import _io
target, live = Path(sys.argv[1]), sys.argv[2] == "live"
with _io.temporary(target) as tmp, _io.temporary(target, folder=True) as folder:
    tmp.write_bytes(b"x" * 4096)
    (folder / "part").write_bytes(b"y")
    print("ready", flush=True)
    if live:
        time.sleep(120)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_temporaries_a_killed_write_left_are_removed_and_a_live_writes_kept(
    tmp_path: Path
) -> None:
    """SIGKILL (or the OOM killer) during a write left its hidden temporary file, as large as
    the output (an index of millions of vectors), for good: nothing ever removed it. Now the
    next write to that output removes it, once no process holds its lock; a running write's
    temporaries are never touched, nor is a young one, nor a file dive did not name."""
    import subprocess
    import sys

    from dive._io import DEAD_AFTER, check_output, remove_dead_temporaries

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    target = tmp_path / "out.npy"
    killed = subprocess.run([sys.executable, "-c", _HOLDS_TEMPORARIES, str(target), "dead"],
                            env=env, capture_output=True, text=True, timeout=60, check=False)
    assert killed.returncode == -9 and killed.stdout == "ready\n"
    dead = _temporaries(tmp_path)
    assert len(dead) == 2
    (tmp_path / ".out.npy.notes.tmp").write_text("a user's file")
    assert remove_dead_temporaries(target) == []  # just made: a write may not hold it yet
    old = time.time() - DEAD_AFTER - 1
    for name in (*dead, ".out.npy.notes.tmp"):
        os.utime(tmp_path / name, (old, old))

    live = subprocess.Popen([sys.executable, "-c", _HOLDS_TEMPORARIES, str(target), "live"],
                            env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert live.stdout is not None and live.stdout.readline() == "ready\n"
        running = sorted(set(_temporaries(tmp_path)) - set(dead) - {".out.npy.notes.tmp"})
        for name in running:
            os.utime(tmp_path / name, (old, old))
        check_output(target, overwrite=False, ours=lambda _: True, what="an output")
        assert _temporaries(tmp_path) == sorted([".out.npy.notes.tmp", *running])
    finally:
        live.kill()
        live.wait()
    assert sorted(p.name for p in remove_dead_temporaries(target)) == running
    assert _temporaries(tmp_path) == [".out.npy.notes.tmp"]


def test_a_pipe_given_as_an_input_file_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    """Each was opened with no writer: pyarrow's open and a read waited forever (not even
    Ctrl-C ended pyarrow's), a .npy was "no .npy header", and a pipe among compress's shards
    was left out, exit 0."""
    import numpy as np

    from dive.arrays import load_npy
    from dive.embed.imported import read_npy_vectors
    from dive.embed.store import read_meta
    from dive.errors import DataError
    from dive.scale.discover import discover
    from dive.scale.formats import open_parquet

    pipe = tmp_path / "p.npy"
    os.mkfifo(pipe)
    calls = [lambda: load_npy(pipe), lambda: open_parquet(pipe), lambda: read_meta(pipe),
             lambda: read_npy_vectors(pipe, pipe)]
    shards = tmp_path / "shards"
    shards.mkdir()
    np.save(shards / "a.npy", np.eye(4, dtype=np.float32))
    os.mkfifo(shards / "b.npy")
    calls.append(lambda: discover(shards, "out", "vector", None))
    for call, named in zip(calls, [pipe] * 4 + [shards / "b.npy"], strict=True):
        with pytest.raises(DataError, match=rf"^{named}: not a regular file \(a pipe, socket"):
            call()


def test_a_read_that_fails_as_the_folder_is_swapped_is_read_again_from_the_new_one(
    tmp_path: Path,
) -> None:
    """A save with overwrite swapping the folder mid-read removes the old one's files under
    the read: its FileNotFoundError ended the load, where a read of the new save succeeds; a
    failure with no swap is raised as it is."""
    from dive._io import read_one_save

    folder, new = tmp_path / "f", tmp_path / "new"
    for where, text in ((folder, "old"), (new, "new")):
        where.mkdir()
        (where / "a").write_text(text)
    reads = []

    def read() -> str:
        reads.append("read")
        if len(reads) == 1:  # a save swaps the folder in the middle of this read
            os.rename(folder, tmp_path / "gone")
            os.rename(new, folder)
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(folder / "b"))
        return (folder / "a").read_text()

    assert read_one_save(folder, read) == "new" and len(reads) == 2

    def fails() -> str:
        reads.append("fails")
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(folder / "b"))

    with pytest.raises(FileNotFoundError):
        read_one_save(folder, fails)
    assert reads.count("fails") == 1  # the folder was not swapped: not read again


def test_an_output_name_near_the_file_systems_limit_is_written(tmp_path: Path) -> None:
    """Its temporary, 22 bytes longer, was "file name too long": a legal 250-byte name (or an
    existing results file of that name) could not be written."""
    target = tmp_path / ("é" * 120 + "a" * 10)  # 250 bytes in UTF-8
    atomic_write_text(target, "x")
    atomic_write_text(target, "y")
    assert target.read_text() == "y" and sorted(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("call", ["compress_store", "embed"])
def test_progress_that_is_not_a_bool_is_refused_as_overwrite_is(
    call: str, tmp_path: Path
) -> None:
    """`progress="no"` is true: bars were drawn, where `overwrite="no"` is refused."""
    import numpy as np

    import dive
    from dive.errors import DiveError
    from dive.scale import compress_store

    x = np.eye(8, dtype=np.float32)
    with pytest.raises(DiveError, match=r"^progress must be True or False, got 'no'$"):
        if call == "compress_store":
            np.save(tmp_path / "x.npy", x)
            model = dive.fit(x, method="truncate", dim=4)
            compress_store(model, tmp_path / "x.npy", tmp_path / "y.npy",
                           progress="no")  # type: ignore[arg-type]
        else:
            dive.embed(["a text"], progress="no")  # type: ignore[arg-type]
    assert not (tmp_path / "y.npy").exists()


@pytest.mark.parametrize("value", [" ", "\t", " /data", "/data "])
def test_a_blank_dive_cache_is_refused_by_both_caches(
    value: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """It wrote the cache into a folder named " " in the working folder (an empty value is
    the default cache, as unset)."""
    from dive.data.download import default_cache_dir
    from dive.embed.encode import default_cache_root

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIVE_CACHE", value)
    for where in (default_cache_dir, default_cache_root):
        with pytest.raises(DataError, match=rf"^\$DIVE_CACHE is {re.escape(repr(value))}, with"):
            where()
    monkeypatch.setenv("DIVE_CACHE", "")
    assert default_cache_root() == Path.home() / ".cache" / "dive" / "embeddings"
    monkeypatch.setenv("DIVE_CACHE", "~/c")
    assert default_cache_dir() == Path.home() / "c" / "datasets"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("refusal", [errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS])
def test_a_file_is_published_where_the_file_system_has_no_hard_links(
    refusal: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FUSE file system without a link handler answers ENOSYS: index, compress, export and
    a report failed there after all their work ("function not implemented")."""
    from dive._io import publish

    def no_links(*args: object, **kwargs: object) -> None:
        raise OSError(refusal, os.strerror(refusal))

    monkeypatch.setattr(os, "link", no_links)
    (tmp_path / ".out.abc.tmp").write_text("new")
    publish(tmp_path / ".out.abc.tmp", tmp_path / "out", overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (tmp_path / "out").read_text() == "new"
    (tmp_path / ".out.def.tmp").write_text("newer")
    with pytest.raises(DiveError, match="already exists"):  # still never replaced
        publish(tmp_path / ".out.def.tmp", tmp_path / "out", overwrite=False)
    assert (tmp_path / "out").read_text() == "new"


def test_without_hard_links_a_dangling_link_at_the_output_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards the symlink check of the two-step publish: a link to nothing `exists()` not,
    and was replaced without overwrite."""
    from dive._io import publish

    def no_links(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(os, "link", no_links)
    (tmp_path / "out").symlink_to(tmp_path / "nowhere")
    (tmp_path / ".out.abc.tmp").write_text("new")
    with pytest.raises(DiveError, match="already exists"):
        publish(tmp_path / ".out.abc.tmp", tmp_path / "out", overwrite=False)
    assert os.readlink(tmp_path / "out") == str(tmp_path / "nowhere")


def test_a_folder_of_a_long_name_is_replaced_where_names_cannot_be_swapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an atomic swap (renameat2 refused: NFS, FUSE) the old folder is renamed aside
    under a name cut to fit, as a temporary's is (a 250-byte name's was too long)."""
    import dive._io.atomic

    monkeypatch.setattr(dive._io.atomic, "_exchange", lambda a, b: False)
    out = tmp_path / ("m" * 250)
    out.mkdir()
    (out / "f").write_text("old")
    tmp = tmp_path / ".new.tmp"
    tmp.mkdir()
    (tmp / "f").write_text("new")
    dive._io.atomic.publish(tmp, out, overwrite=True)
    assert (out / "f").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


@pytest.mark.parametrize("refusal", [errno.EINVAL, errno.ENOSYS])
def test_a_folder_is_replaced_by_two_renames_where_the_swap_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refusal: int
) -> None:
    """A file system without RENAME_EXCHANGE (older NFS, some FUSE) answers EINVAL: the save
    failed with "Invalid argument" after all its work, where the two renames do it."""
    import ctypes

    import dive._io.atomic

    class NoExchange:
        def renameat2(self, *args: object) -> int:
            ctypes.set_errno(refusal)
            return -1

    monkeypatch.setattr(dive._io.atomic.ctypes, "CDLL", lambda *args, **kwargs: NoExchange())
    for name, text in (("new", "new"), ("out", "old")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text(text)
    dive._io.atomic.replace_path(tmp_path / "new", tmp_path / "out")
    assert (tmp_path / "out" / "f").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # the old one removed


def test_the_old_folder_is_put_back_when_the_new_one_cannot_be_renamed_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a swap the old folder goes aside first: a failure of the second rename (an I/O
    error) left no output at all, and the old one under a hidden name."""
    import dive._io.atomic

    monkeypatch.setattr(dive._io.atomic, "_exchange", lambda a, b: False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "f").write_text("old")
    tmp = temp_folder(tmp_path, b"new")
    real = os.replace

    def new_one_fails(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(src) == tmp:
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(dst))
        real(src, dst)

    monkeypatch.setattr(os, "replace", new_one_fails)
    with pytest.raises(OSError, match="Input/output error"):
        dive._io.atomic.publish(tmp, out, overwrite=True)
    assert (out / "f").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_users_empty_output_folder_is_kept_when_the_rename_onto_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty folder already there is written into, not claimed: a failed rename (EXDEV)
    removed it as if this run had made it."""
    import dive._io.atomic

    (tmp_path / "out").mkdir()

    def fails(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(dst))

    monkeypatch.setattr(dive._io.atomic.os, "rename", fails)
    with pytest.raises(OSError, match="cross-device"):
        dive._io.atomic.publish(temp_folder(tmp_path, b"new"), tmp_path / "out",
                                overwrite=False)
    assert (tmp_path / "out").is_dir()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("refusal", [errno.ENOLCK, errno.ENOSYS])
def test_a_file_system_without_locks_is_one_line_naming_the_output(
    refusal: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every writing verb said "dive: error: No locks available" (or "Function not
    implemented"), naming no path and no cause."""
    from dive._io import held

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(refusal, os.strerror(refusal))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    said = "this file system refuses file locks (flock), which keep two runs from writing"
    with pytest.raises(DiveError, match=rf"^{tmp_path / 'x.txt'}: {re.escape(said)}"):
        atomic_write_text(tmp_path / "x.txt", "text")
    assert list(tmp_path.iterdir()) == []  # no temporary left
    with pytest.raises(DiveError, match=rf"^{tmp_path / 'r.jsonl'}: {re.escape(said)}"):
        locked(tmp_path / "r.jsonl").__enter__()
    with pytest.raises(DiveError, match=rf"^{tmp_path / 'out'}: {re.escape(said)}"):
        held(tmp_path / ".out.partial", tmp_path / "out").__enter__()


def test_a_tilde_of_no_known_user_stays_as_typed_in_every_verb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`~nosuchuser/m` is a relative path, as a shell leaves it: `Path.expanduser` raised
    RuntimeError ("Could not determine home directory"), a traceback from fit, compress,
    index, dive.save... while evaluate --report made the literal folder."""
    import numpy as np

    import dive

    monkeypatch.chdir(tmp_path)
    corpus = np.random.default_rng(0).standard_normal((20, 8)).astype(np.float32)
    dive.save(dive.fit(corpus, method="pca", dim=2), "~nosuchuser-dive/m")
    assert (tmp_path / "~nosuchuser-dive" / "m").is_dir()
    assert dive.load("~nosuchuser-dive/m").transform(corpus).shape == (20, 2)
    with pytest.raises(DataError, match=r"^~nosuchuser-dive/data: no such dataset folder$"):
        dive.fit("~nosuchuser-dive/data", method="pca", dim=2)


@pytest.mark.parametrize(("failed", "named"), [
    (".out.npy.partial/merged.npy", "out.npy"),
    (".shards.partial/parts/part-0.parquet/part-000.parquet", "shards"),
    (".emb.partial/corpus-000000.npy", "emb"),
    (".y.ray-partial/part.parquet", "y"),
    (".mine.partial", "mine"),  # the work folder itself
    ("a.partial/x.npy", "a.partial/x.npy"),  # not hidden: a user's folder
])
def test_an_error_in_a_work_folder_names_its_output(tmp_path: Path, failed: str,
                                                    named: str) -> None:
    """A write failing in a resumable verb's hidden work folder named a file the user never
    asked for (`.out.npy.partial/merged.npy`)."""
    from dive._io import describe_os_error

    exc = OSError(errno.EFBIG, "File too large", str(tmp_path / failed))
    assert describe_os_error(exc) == f"{tmp_path / named}: file too large"


def test_a_long_names_cut_work_folder_is_named_as_it_is(tmp_path: Path) -> None:
    """Its name holds a cut of the output's name and a digest, not the output's name."""
    from dive._io import describe_os_error, work_folder

    work = work_folder(tmp_path / ("n" * 250))
    exc = OSError(errno.ENOSPC, "No space left on device", str(work / "x.npy"))
    assert describe_os_error(exc) == f"{work / 'x.npy'}: no space left on device"


def test_a_work_folder_name_is_cut_from_the_first_name_past_255_bytes(tmp_path: Path) -> None:
    """`.` + name + `.partial` of a 247-byte name is 256 bytes: counted without its dot, it
    was kept whole, and making the work folder was "file name too long"."""
    from dive._io import work_folder

    whole = work_folder(tmp_path / ("n" * 246))
    assert whole.name == "." + "n" * 246 + ".partial" and len(whole.name) == 255
    cut = work_folder(tmp_path / ("n" * 247))
    assert len(cut.name) <= 255 and cut.name.endswith(".partial")
    assert cut.name != "." + "n" * 247 + ".partial"
    whole.mkdir()
    cut.mkdir()


def test_a_killed_runs_temporary_in_a_work_folder_is_cleared_with_it(tmp_path: Path) -> None:
    """A run killed while it wrote a chunk leaves `.<chunk>.<16 hex>.tmp` in the work folder:
    starting over refused it as a file "no run of dive leaves there"."""
    from dive._io import clear_work_folder

    work = tmp_path / ".out.partial"
    work.mkdir()
    (work / ".corpus-000000.npy.0123456789abcdef.tmp").write_bytes(b"half a chunk")
    (work / "job.json").write_text("{}")
    clear_work_folder(work, lambda name: name == "job.json")
    assert work.is_dir() and list(work.iterdir()) == []
    (work / "notes.txt").write_text("mine")  # still: anything else is refused, and kept
    with pytest.raises(DiveError, match=r"holds 'notes\.txt', which no run of dive leaves"):
        clear_work_folder(work, lambda name: name == "job.json")
    assert (work / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(("text", "code"), [
    ("lance error: LanceError(IO): File too large (os error 27), /src/structural.rs:254:9", 27),
    ("Error while serializing: I/O error: No space left on device (os error 28)", 28),
    ("LanceError(Schema): no such column", None),
])
def test_os_error_in_text_reads_rusts_os_error_number(text: str, code: int | None) -> None:
    from dive._io import os_error_in_text

    found = os_error_in_text(RuntimeError(text), "lancedb:db/t")
    assert (found and (found.errno, found.filename)) == (code and (code, "lancedb:db/t"))
