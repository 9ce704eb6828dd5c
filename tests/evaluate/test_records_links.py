"""A results file given as a symbolic link: the file it leads to gets the records."""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.synchronize
from pathlib import Path
from typing import Any

from dive.evaluate.records import ResultsFile, write_records


def record(method: str = "pca", seed: int = 0) -> dict[str, Any]:
    return {
        "dataset": "tiny", "model": "m", "method": method, "dim": 8, "ratio": 4, "budget": "16",
        "seed": seed, "ndcg@10": 0.5, "recall@100": 0.9, "mrr@10": 0.4, "fit_seconds": 0.1,
        "n_params": 10, "config": {},
    }


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


def _append_many(path: Path, method: str, n: int, start: multiprocessing.synchronize.Event) -> None:
    results = ResultsFile(path)
    start.wait()
    for seed in range(n):
        results.append([record(method=method, seed=seed)])


def test_runs_given_the_link_and_the_real_path_keep_every_record(tmp_path: Path) -> None:
    real, link = linked(tmp_path)
    n = 25
    context = multiprocessing.get_context("fork")
    start = context.Event()
    workers = [context.Process(target=_append_many, args=(path, method, n, start))
               for path, method in ((link, "pca"), (real, "random"))]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert link.is_symlink()
    records = [json.loads(line) for line in real.read_text().splitlines()]
    assert sorted((r["method"], r["seed"]) for r in records) == sorted(
        (method, seed) for method in ("pca", "random") for seed in range(n)
    )
