"""The results file: atomic appends, resume by key, clear errors on bad lines."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from dive.errors import DataError
from dive.evaluate.records import ResultsFile, read_records, record_key, write_records


def record(method: str = "pca", seed: int = 0) -> dict[str, Any]:
    return {
        "dataset": "tiny",
        "model": "m",
        "method": method,
        "dim": 8,
        "ratio": 4,
        "budget": "16",
        "seed": seed,
        "ndcg@10": 0.5,
        "recall@100": 0.9,
        "mrr@10": 0.4,
        "fit_seconds": 0.1,
        "n_params": 10,
        "config": {},
    }


def test_append_persists_and_reload_knows_the_keys(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    ResultsFile(path).append([record(seed=0)])
    ResultsFile(path).append([record(seed=1)])
    reloaded = ResultsFile(path)
    assert len(reloaded.records) == 2
    assert record_key(record(seed=1)) in reloaded
    assert record_key(record(seed=2)) not in reloaded


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.jsonl"
    results = ResultsFile(path)
    results.append([record(seed=0)])
    before = path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        results.append([record(seed=1)])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.jsonl"]


def test_malformed_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    ResultsFile(path).append([record()])
    with path.open("a") as f:
        f.write("{not json\n")
    with pytest.raises(DataError, match=r"r\.jsonl:2: not valid JSON \(.*, column 2\)"):
        read_records(path)


def test_record_missing_fields_is_named(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"dataset": "x"}\n')
    with pytest.raises(DataError, match=r"r\.jsonl:1: record lacks model"):
        read_records(path)


@pytest.mark.parametrize(("field", "value", "problem"), [
    ("ndcg@10", 5, r"ndcg@10 is 5, expected a number in \[0, 1\]"),
    ("dim", "8", r"dim is '8', expected an integer"),
    ("budget", 0, r"budget is 0, expected a positive integer or 'all'"),
    ("model", None, r"model is None, expected a name"),
])
def test_append_refuses_a_record_the_reader_would_refuse_and_writes_nothing(
    tmp_path: Path, field: str, value: object, problem: str
) -> None:
    # one such record made the whole file unreadable, and every later append failed
    path = tmp_path / "r.jsonl"
    ResultsFile(path).append([record()])
    before = path.read_bytes()
    with pytest.raises(DataError, match=rf"r\.jsonl: new record 1: {problem}"):
        ResultsFile(path).append([record(seed=1), {**record(seed=2), field: value}])
    assert path.read_bytes() == before
    ResultsFile(path).append([record(seed=3)])
    assert len(read_records(path)) == 2


@pytest.mark.parametrize(("content", "message"), [
    (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", r"r\.jsonl:1: not UTF-8 text"),
    (None, r"r\.jsonl: is a folder"),
    ("ndcg@10", r"r\.jsonl:2: ndcg@10 is 'high', expected a finite number"),
    ("dim", r"r\.jsonl:2: dim is None, expected an integer"),
])
def test_unreadable_results_are_one_error_naming_file_and_line(
    tmp_path: Path, content: Any, message: str
) -> None:
    path = tmp_path / "r.jsonl"
    if content is None:
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        ResultsFile(path).append([record(seed=0)])
        bad = {**record(seed=1), content: "high" if content == "ndcg@10" else None}
        path.write_text(path.read_text() + json.dumps(bad) + "\n")
    with pytest.raises(DataError, match=message):
        read_records(path)
@pytest.mark.parametrize(("method", "precision"), [("faiss-pq:4", "pq"), ("pca", "opq4")])
def test_a_code_without_its_bytes_per_vector_is_named_with_its_line(
    tmp_path: Path, method: str, precision: str
) -> None:
    """A `pq` or `opqM` record without `bytes_per_vector` read, then `dive report` and
    `dive recommend` failed with "precision 'pq' is not one of ...", naming no file or line."""
    path = tmp_path / "r.jsonl"
    ResultsFile(path).append([record(seed=0)])
    bad = {**record(method=method, seed=1), "precision": precision}
    path.write_text(path.read_text() + json.dumps(bad) + "\n")
    with pytest.raises(DataError, match=rf"r\.jsonl:2: record lacks bytes_per_vector, which "
                                        rf"precision '{precision}' needs"):
        read_records(path)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("method", None, r"r\.jsonl:2: method is None, expected a name"),
    ("dataset", "", r"r\.jsonl:2: dataset is '', expected a name"),
    ("budget", -5, r"r\.jsonl:2: budget is -5, expected a positive integer or 'all'"),
    ("budget", "some", r"r\.jsonl:2: budget is 'some', expected a positive integer or 'all'"),
])
def test_a_damaged_key_field_is_one_error_not_a_row_of_its_own(
    tmp_path: Path, field: str, value: Any, message: str
) -> None:
    """A null method became a method named "None" in the report, and a budget of -5 its own
    column that `dive recommend` asked the user to choose."""
    path = tmp_path / "r.jsonl"
    ResultsFile(path).append([record(seed=0)])
    path.write_text(path.read_text() + json.dumps({**record(seed=1), field: value}) + "\n")
    with pytest.raises(DataError, match=message):
        read_records(path)


def _append_many(path: Path, method: str, n: int, start: multiprocessing.synchronize.Event) -> None:
    results = ResultsFile(path)  # read once, before the other process writes anything
    start.wait()
    for seed in range(n):
        results.append([record(method=method, seed=seed)])


def _race(jobs: list[tuple[Path, str]], n: int) -> None:
    """One process per (path, method), each appending n records once all have started."""
    context = multiprocessing.get_context("fork")
    start = context.Event()
    workers = [context.Process(target=_append_many, args=(path, method, n, start))
               for path, method in jobs]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0


def _every(n: int) -> list[tuple[str, int]]:
    return sorted((method, seed) for method in ("pca", "random") for seed in range(n))


def test_two_processes_appending_to_one_file_keep_every_record(tmp_path: Path) -> None:
    path, n = tmp_path / "r.jsonl", 25
    _race([(path, "pca"), (path, "random")], n)
    lines = path.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line valid JSON
    assert sorted((r["method"], r["seed"]) for r in records) == _every(n)


# A results file given as a symbolic link: the file it leads to gets the records.


def linked(tmp_path: Path) -> tuple[Path, Path]:
    """real/r.jsonl (empty) and links/r.jsonl -> it, in another folder."""
    (tmp_path / "real").mkdir()
    (tmp_path / "links").mkdir()
    real = tmp_path / "real" / "r.jsonl"
    real.touch()
    link = tmp_path / "links" / "r.jsonl"
    link.symlink_to(real)
    return real, link


def test_append_through_a_link_writes_the_real_file_and_keeps_the_link(tmp_path: Path) -> None:
    real, link = linked(tmp_path)
    ResultsFile(link).append([record(seed=0)])
    ResultsFile(link).append([record(seed=1)])
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert [json.loads(line)["seed"] for line in real.read_text().splitlines()] == [0, 1]
    assert sorted(p.name for p in (tmp_path / "links").iterdir()) == ["r.jsonl"]


def test_write_records_keeps_a_link_and_a_new_path_is_a_plain_file(tmp_path: Path) -> None:
    real, link = linked(tmp_path)
    write_records(link, [record()])
    assert link.is_symlink() and len(real.read_text().splitlines()) == 1
    new = tmp_path / "new.jsonl"
    write_records(new, [record()])
    assert new.is_file() and not new.is_symlink()


def test_runs_given_the_link_and_the_real_path_keep_every_record(tmp_path: Path) -> None:
    real, link = linked(tmp_path)
    _race([(link, "pca"), (real, "random")], 25)
    assert link.is_symlink()
    records = [json.loads(line) for line in real.read_text().splitlines()]
    assert sorted((r["method"], r["seed"]) for r in records) == _every(25)


def test_a_results_path_that_is_a_pipe_or_device_is_refused_before_it_is_read(
    tmp_path: Path,
) -> None:
    # /dev/zero was read without end (killed for memory); a FIFO waits for a writer. This one
    # gets a writer that closes at once, so a read would end (empty) instead of hanging.
    fifo = tmp_path / "r.jsonl"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: os.close(os.open(fifo, os.O_WRONLY)), daemon=True)
    writer.start()
    with pytest.raises(DataError, match=r"r\.jsonl: is not a regular file, expected a JSONL"):
        ResultsFile(fifo)
    assert fifo.exists() and not fifo.is_file()  # left as it was


@pytest.mark.parametrize("spelled", ["ALL", " all", "064", 64, " 64 "])
def test_a_hand_edited_budget_is_read_as_the_runner_writes_it(tmp_path: Path,
                                                              spelled: Any) -> None:
    """"ALL" and "064" were cells of their own beside "all" and "64": a report showed the
    same runs twice, and a rerun of the grid ran them again."""
    canonical = "all" if str(spelled).strip().lower() == "all" else "64"
    path = tmp_path / "r.jsonl"
    ResultsFile(path).append([{**record(seed=0), "budget": canonical}])
    path.write_text(path.read_text() + json.dumps({**record(seed=1), "budget": spelled}) + "\n")
    assert [r["budget"] for r in read_records(path)] == [canonical, canonical]
    reloaded = ResultsFile(path)
    assert record_key({**record(seed=1), "budget": canonical}) in reloaded


@pytest.mark.parametrize(("precision", "size", "stored"), [
    ("int8", 1, 8), ("binary", 8, 1), ("float32", 8, 32), ("opq4", 8, 4)])
def test_a_methods_edited_bytes_per_vector_is_refused_naming_what_it_stores(
    tmp_path: Path, precision: str, size: int, stored: int
) -> None:
    """An int8 d=8 record edited to 1 byte was read, and `dive recommend` shipped it as the
    cheapest configuration by bytes it does not store."""
    path = tmp_path / "r.jsonl"
    good = {**record(seed=0), "precision": precision, "bytes_per_vector": stored}
    bad = {**record(seed=1), "precision": precision, "bytes_per_vector": size}
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError, match=rf"r\.jsonl:2: bytes_per_vector is {size}, but "
                                        rf"{precision} at dim 8 stores {stored}$"):
        read_records(path)


def test_an_anchors_bytes_per_vector_is_its_own(tmp_path: Path) -> None:
    """An anchor's code size is not a function of its dimension alone (`pq`: M bytes)."""
    path = tmp_path / "r.jsonl"
    anchor = {**record(method="faiss-pq:3"), "precision": "pq", "bytes_per_vector": 3}
    path.write_text(json.dumps(anchor) + "\n")
    assert read_records(path)[0]["bytes_per_vector"] == 3


def test_appends_read_the_file_again_only_when_another_process_changed_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each append read and parsed the whole file: a 12-run grid on a file of 10k records
    took 23 s, its runs 1 s of it."""
    from dive.evaluate import records as module

    path = tmp_path / "r.jsonl"
    write_records(path, [record(seed=s) for s in range(50)])
    reads: list[Path] = []
    real = module.read_records
    monkeypatch.setattr(module, "read_records",
                        lambda p: reads.append(Path(p)) or real(p))  # type: ignore[func-returns-value]
    results = ResultsFile(path)
    for seed in range(50, 55):
        results.append([record(seed=seed)])
    assert len(reads) == 1  # when it was opened
    ResultsFile(path).append([record(method="other")])  # another process's append
    results.append([record(seed=55)])
    assert len(reads) == 3  # the other's, when it was opened, and this one's after its append
    assert [r["seed"] for r in read_records(path)][-7:] == [50, 51, 52, 53, 54, 0, 55]
    assert read_records(path)[-2]["method"] == "other"


def test_a_funnel_rescored_with_full_or_compressed_vectors_is_two_runs(tmp_path: Path) -> None:
    """Guards `rescore_with` in the key: without it a run rescoring with the compressed
    vectors was taken for the one rescoring with the full ones, and skipped on resume."""
    path = tmp_path / "r.jsonl"
    funnel = {**record(), "precision": "int8", "rescore": 4}
    full, compressed = ({**funnel, "rescore_with": s} for s in ("full", "compressed"))
    assert record_key(full) != record_key(compressed)
    ResultsFile(path).append([full])
    results = ResultsFile(path)
    assert record_key(compressed) not in results
    results.append([compressed])
    assert [r["rescore_with"] for r in read_records(path)] == ["full", "compressed"]


def test_a_metric_above_one_is_refused(tmp_path: Path) -> None:
    """Guards the metrics' upper bound: an edited ndcg@10 of 1.2 was read, and won a report."""
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({**record(), "ndcg@10": 1.2}) + "\n")
    with pytest.raises(DataError, match=r"r\.jsonl:1: ndcg@10 is 1\.2, expected a number in "
                                        r"\[0, 1\]"):
        read_records(path)


def test_a_batch_with_a_run_already_recorded_still_writes_its_new_records(tmp_path: Path) -> None:
    """Guards the skip of a run already recorded: it ended the whole append, so the new
    records before it were never written and those after it were dropped."""
    path = tmp_path / "r.jsonl"
    ResultsFile(path).append([record(seed=0)])
    ResultsFile(path).append([record(seed=1), record(seed=0), record(seed=2)])
    assert [r["seed"] for r in read_records(path)] == [0, 1, 2]
    ResultsFile(path).append([record(seed=3), record(seed=3)])  # one run twice in a batch
    assert [r["seed"] for r in read_records(path)] == [0, 1, 2, 3]


def test_append_leaves_the_callers_record_as_it_was(tmp_path: Path) -> None:
    """Guards the copy `append` checks: its budget was rewritten in the caller's own dict
    (64 became "64"), under a runner that still held it."""
    mine = {**record(), "budget": 64, "config": {"dim": 8}}
    before = json.loads(json.dumps(mine))
    ResultsFile(tmp_path / "r.jsonl").append([mine])
    assert mine == before
    assert type(mine["budget"]) is int


@pytest.mark.parametrize(("seed", "accepted"), [(2**63 - 1, True), (2**63, False)])
def test_a_seed_beyond_64_bits_is_refused(tmp_path: Path, seed: int, accepted: bool) -> None:
    """Guards the bound: 2**63 fits no int64 array of the report and is refused; 2**63 - 1,
    the largest that fits, is read."""
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(record(seed=seed)) + "\n")
    if accepted:
        assert read_records(path)[0]["seed"] == seed
    else:
        with pytest.raises(DataError, match=rf"r\.jsonl:1: seed is {seed}, expected an integer$"):
            read_records(path)
