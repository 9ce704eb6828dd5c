"""Reading several results files: last record of a run wins; models kept apart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dive.errors import DataError
from dive.report.merge import label_models, merge_records, read_results


def test_later_file_overrides_same_run_and_keeps_others(make_record, jsonl, tmp_path: Path) -> None:
    first = jsonl(tmp_path / "a.jsonl", [make_record(method="pca", ndcg=0.1),
                                         make_record(method="truncate", ndcg=0.2)])
    second = jsonl(tmp_path / "b.jsonl", [make_record(method="pca", ndcg=0.3),
                                          make_record(method="pca", seed=1, ndcg=0.4)])
    records = read_results([first, second])
    assert [(r["method"], r["seed"], r["ndcg@10"]) for r in records] == [
        ("pca", 0, 0.3), ("truncate", 0, 0.2), ("pca", 1, 0.4)]


def test_duplicate_within_one_list_last_wins(make_record) -> None:
    merged = merge_records([make_record(ndcg=0.1), make_record(ndcg=0.2)])
    assert [r["ndcg@10"] for r in merged] == [0.2]


def test_missing_or_empty_files_are_errors(jsonl, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.jsonl: no such results file"):
        read_results([tmp_path / "nope.jsonl"])
    with pytest.raises(DataError, match="no records"):
        read_results([jsonl(tmp_path / "empty.jsonl", [])])


def test_an_empty_file_beside_others_is_warned_of(make_record, jsonl, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """An error alone, it went without a word beside another file (a truncated or mistyped
    results file)."""
    good = jsonl(tmp_path / "r.jsonl", [make_record()])
    empty = jsonl(tmp_path / "empty.jsonl", [])
    with caplog.at_level("WARNING"):
        assert len(read_results([good, empty])) == 1
    assert [r.getMessage() for r in caplog.records] == [
        f"{empty}: no records in this results file"]


def test_bad_line_names_file_and_line(make_record, jsonl, tmp_path: Path) -> None:
    path = jsonl(tmp_path / "r.jsonl", [make_record()])
    with path.open("a") as f:
        f.write("{oops\n")
    with pytest.raises(DataError, match=r"r\.jsonl:2: not valid JSON"):
        read_results([path])


def test_several_models_become_separate_datasets(make_record) -> None:
    one = [make_record(), make_record(method="truncate")]
    assert [r["dataset"] for r in label_models(one)] == ["scifact", "scifact"]
    two = [make_record(), make_record(model="other-model")]
    assert [r["dataset"] for r in label_models(two)] == [
        "scifact (all-MiniLM-L6-v2)", "scifact (other-model)"]


def test_the_default_models_hub_alias_is_the_same_model(make_record, jsonl,
                                                        tmp_path: Path) -> None:
    """Records of the default model under its hub alias (written by an older `dive evaluate
    --model sentence-transformers/all-MiniLM-L6-v2`) are its runs, not another model's."""
    alias = "sentence-transformers/all-MiniLM-L6-v2"
    mixed = [make_record(), make_record(method="truncate", model=alias)]
    assert [r["dataset"] for r in label_models(mixed)] == ["scifact", "scifact"]
    path = jsonl(tmp_path / "r.jsonl", [*mixed, make_record(model=alias, ndcg=0.7)])
    records = read_results([path])  # the same run under either spelling: the last wins
    assert [(r["method"], r["model"], r["ndcg@10"]) for r in records] == [
        ("pca", "all-MiniLM-L6-v2", 0.7), ("truncate", "all-MiniLM-L6-v2", 0.5)]


def test_label_models_returns_copies_and_leaves_its_input_as_it_was(make_record) -> None:
    """Guards the copies: the model was renamed in the caller's own records (the hub alias
    became the bare name), and with one model the very records given came back."""
    alias = "sentence-transformers/all-MiniLM-L6-v2"
    records = [make_record(model=alias), make_record(method="truncate")]
    before = [dict(r) for r in records]
    labelled = label_models(records)
    assert [r["model"] for r in labelled] == ["all-MiniLM-L6-v2", "all-MiniLM-L6-v2"]
    assert records == before
    assert not any(mine is theirs for mine, theirs in zip(records, labelled, strict=True))


def test_a_local_model_folder_under_its_older_spellings_is_one_model(
        make_record, jsonl, tmp_path: Path, local_model: Callable[[str], Path]) -> None:
    """Records an older version wrote as typed (`./m`, `m/`) are the runs of the folder's
    resolved path (read from the working directory), not three models; another folder named
    m is another model."""
    folder = str(local_model("m"))
    path = jsonl(tmp_path / "r.jsonl", [make_record(model="./m"),
                                        make_record(method="truncate", model="m/"),
                                        make_record(model=folder, ndcg=0.7)])
    records = read_results([path])  # the same run under either spelling: the last wins
    assert [(r["method"], r["model"], r["ndcg@10"]) for r in records] == [
        ("pca", folder, 0.7), ("truncate", folder, 0.5)]
    assert [r["dataset"] for r in label_models(records)] == ["scifact", "scifact"]
    other = str(local_model("a/m"))
    assert [r["dataset"] for r in label_models([*records, make_record(model="a/m")])] == [
        f"scifact ({folder})", f"scifact ({folder})", f"scifact ({other})"]


def test_one_cell_with_runs_on_different_data_is_refused(make_record, jsonl,
                                                          tmp_path: Path) -> None:
    path = jsonl(tmp_path / "r.jsonl", [
        make_record(method="random", seed=0, data_fingerprint="7c6bca0b0e19aaaa"),
        make_record(method="random", seed=1, data_fingerprint="dae6fed01357bbbb")])
    with pytest.raises(DataError, match=r"^scifact: runs on different data \(data_fingerprint "
                       r"7c6bca0b for random at d=96 with 64 labelled queries, seed 0, dae6fed0 "
                       r"for random at d=96 with 64 labelled queries, seed 1\).*separate "
                       r"results files"):
        read_results([path])


@pytest.mark.parametrize("other", [{"method": "frozen", "dim": 384}, {"dim": 48},
                                   {"budget": "all"}])
def test_runs_a_report_compares_on_different_data_are_refused(make_record,
                                                              other: dict[str, Any]) -> None:
    """Only one cell's seeds were checked: a rerun of pca on changed qrels was reported
    against frozen's score on the old ones (as "80.1% of frozen"), by `report` and
    `recommend` alike."""
    records = [make_record(data_fingerprint="a" * 16),
               make_record(**other, data_fingerprint="b" * 16)]
    with pytest.raises(DataError, match=r"^scifact: runs on different data \(data_fingerprint "
                                        r"aaaaaaaa for pca at d=96 .*, bbbbbbbb for "):
        merge_records(records)


def test_runs_on_different_data_of_other_models_or_replaced_are_kept(make_record) -> None:
    # A rerun on new data replaces its record; another model's embeddings are other data; a
    # record without a fingerprint (an older file) is not checked.
    records = [
        make_record(seed=0, data_fingerprint="a" * 16),
        make_record(seed=0, data_fingerprint="b" * 16),
        make_record(seed=1, data_fingerprint="b" * 16),
        make_record(seed=2),
        make_record(model="other-model", data_fingerprint="c" * 16),
    ]
    assert len(merge_records(records)) == 4


def test_a_cell_with_a_seed_twice_is_refused_until_merged(make_record) -> None:
    """`summarize` and `configs` counted a rerun's two records of seed 0 as two runs (n = 3 for
    two seeds, the rerun weighing double) and mixed two models' runs into one mean."""
    from dive.report.frontier import configs
    from dive.report.summary import summarize

    runs = [make_record(ndcg=0.2), make_record(seed=1, ndcg=0.4), make_record(ndcg=0.6)]
    for view in (summarize, configs):
        with pytest.raises(DataError, match=r"^scifact: pca at d=96 with 64 labelled queries "
                                            r"has two runs of seed 0 \(a rerun"):
            view(runs)
        (merged,) = view(merge_records(runs))
        assert (merged.n_seeds, merged.mean) == (2, pytest.approx(0.5))
    two_models = [make_record(ndcg=0.2), make_record(ndcg=0.6, model="other-model")]
    with pytest.raises(DataError, match="runs of two models"):
        summarize(two_models)
    assert len(summarize(label_models(two_models))) == 2


def test_recommend_reads_a_rerun_as_its_last_record(byte_records, byte_row) -> None:
    """Passed a rerun of frozen (a lower first record), `recommend` averaged both runs of seed
    0 as two seeds and set a target below the frozen score `dive report` shows."""
    from dive.report.recommend import recommend

    rerun = [byte_row("frozen", 384, "float32", 1536, 0.500), *byte_records]
    assert recommend(rerun, "scifact", 0.95).frozen.mean == pytest.approx(0.600)


def test_one_results_path_is_read_as_one_file(make_record, jsonl, tmp_path: Path) -> None:
    """A path given alone was read letter by letter ("/: is a folder", "q: no such results
    file"), or was not iterable (a Path: a TypeError)."""
    path = jsonl(tmp_path / "q.jsonl", [make_record(ndcg=0.3)])
    for given in (path, str(path)):
        assert [r["ndcg@10"] for r in read_results(given)] == [0.3]


def test_an_unknown_metric_is_refused_naming_those_there_are(make_record) -> None:
    """A typo ("ndgc@10") was a bare KeyError from summarize, text_tables and configs."""
    from dive.report import text_tables
    from dive.report.frontier import configs
    from dive.report.summary import summarize

    for view in (summarize, configs, text_tables):
        with pytest.raises(DataError, match=r"^metric must be one of ndcg@10, recall@100, "
                                            r"mrr@10, got 'ndgc@10'$"):
            view([make_record()], "ndgc@10")
