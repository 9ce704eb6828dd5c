"""The benchmark grid on a tiny synthetic dataset: records, resume, shared splits."""

from __future__ import annotations

import copy
import json
import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dive.data.beir import Dataset
from dive.data.splits import QuerySplit
from dive.embed import DEFAULT_MODEL
from dive.embed.store import Embeddings
from dive.errors import DataError, DiveError
from dive.evaluate.fingerprint import backfill_fingerprints, data_fingerprint
from dive.evaluate.protocol import GridSpec, RunTask, run_grid, run_one
from dive.evaluate.records import FINGERPRINT_FIELD, REQUIRED_FIELDS, ResultsFile, write_records
from dive.report.merge import read_results


def spec(tiny: tuple[Path, Path], **overrides: object) -> GridSpec:
    options: dict[str, object] = dict(
        datasets=[str(tiny[0])],
        methods=["frozen", "pca", "random"],
        ratios=[2, 4],
        budgets=[8, None],
        seeds=[0, 1],
        embeddings_dir=str(tiny[1]),
    )
    options.update(overrides)
    return GridSpec(**options)  # type: ignore[arg-type]


def test_grid_writes_one_record_per_run_with_required_fields(tiny: tuple[Path, Path]) -> None:
    results = ResultsFile(tiny[0].parent / "r.jsonl")
    records = run_grid(spec(tiny), results)
    # frozen once per (budget, seed); pca and random per ratio too
    assert len(records) == 2 * 2 * (1 + 2 * 2)
    for r in records:
        assert set(REQUIRED_FIELDS) <= set(r)
        assert 0.0 <= r["ndcg@10"] <= 1.0
    dims = {(r["method"], r["dim"]) for r in records}
    assert dims == {("frozen", 32), ("pca", 16), ("pca", 8), ("random", 16), ("random", 8)}
    frozen = [r for r in records if r["method"] == "frozen"]
    assert all(r["ndcg@10"] > 0.3 for r in frozen)  # the planted structure is retrievable


def test_rerun_skips_finished_runs(tiny: tuple[Path, Path]) -> None:
    path = tiny[0].parent / "r.jsonl"
    run_grid(spec(tiny, seeds=[0]), ResultsFile(path))
    before = path.read_bytes()
    fresh: list[object] = []
    records = run_grid(
        spec(tiny, seeds=[0]),
        ResultsFile(path),
        progress=lambda done, total, rec: fresh.append(rec),
    )
    assert path.read_bytes() == before
    assert fresh and all(r is None for r in fresh)
    assert len(records) == 2 * (1 + 2 * 2)


def test_growing_the_grid_only_runs_the_new_cells(tiny: tuple[Path, Path]) -> None:
    path = tiny[0].parent / "r.jsonl"
    run_grid(spec(tiny, seeds=[0]), ResultsFile(path))
    fresh: list[object] = []
    run_grid(
        spec(tiny, seeds=[0, 1]),
        ResultsFile(path),
        progress=lambda done, total, rec: fresh.append(rec),
    )
    assert sum(r is not None for r in fresh) == 2 * (1 + 2 * 2)


def test_unknown_method_fails_before_any_work(tiny: tuple[Path, Path]) -> None:
    path = tiny[0].parent / "r.jsonl"
    with pytest.raises(DiveError, match="unknown method 'pcaa'"):
        run_grid(spec(tiny, methods=["pca", "pcaa"]), ResultsFile(path))
    assert not path.exists()


def test_two_datasets_known_by_one_name_fail_before_any_work(tiny: tuple[Path, Path],
                                                            tmp_path: Path) -> None:
    """`a/tiny` and `b/tiny` both key their records as `tiny`: their runs were merged as if
    they were seeds of one dataset, and the report kept one of them."""
    other = tmp_path / "b" / tiny[0].name
    shutil.copytree(tiny[0], other)
    path = tmp_path / "r.jsonl"
    with pytest.raises(DiveError, match=rf"{tiny[0]} and {other} are both dataset "
                                        rf"'{tiny[0].name}'.*rename one folder"):
        run_grid(spec(tiny, datasets=[str(tiny[0]), str(other)], embeddings_dir=None),
                 ResultsFile(path))
    assert not path.exists()


def test_ratio_must_divide_the_dimension(tiny: tuple[Path, Path]) -> None:
    with pytest.raises(DiveError, match="ratio 3 does not divide"):
        run_grid(spec(tiny, ratios=[3]), ResultsFile(tiny[0].parent / "r.jsonl"))


@pytest.mark.parametrize(("overrides", "message"), [
    ({"ratios": [2, -2]}, "ratios must be integers >= 1, got -2"),
    ({"ratios": [0]}, "ratios must be integers >= 1, got 0"),
    ({"seeds": [0, -1]}, "seeds must be integers >= 0, got -1"),
    # seed 0 was run and recorded, then the split of 2**63 stopped the grid
    ({"seeds": [0, 2**63]}, r"seeds must be integers in 0..2\*\*63-1, got 9223372036854775808"),
    ({"methods": []}, "no methods given"),
    # budget 8 was run and recorded, then -3's record (its split all but 3 queries) refused
    ({"budgets": [8, -3]}, "label budget must be a positive integer or 'all', got -3"),
    ({"budgets": [8, 0]}, "label budget must be a positive integer or 'all', got 0"),
    # a list given as one value: datasets 'c', 'r', 'a', ... were looked up
    ({"datasets": "cranfield"}, "grid: datasets must be a list, got 'cranfield'"),
    ({"seeds": 0}, "grid: seeds must be a list, got 0"),
    ({"top_k": "10"}, "grid: top_k must be integers >= 1, got '10'"),
])
def test_bad_grid_values_fail_before_any_run(
    tiny: tuple[Path, Path], overrides: dict[str, object], message: str
) -> None:
    path = tiny[0].parent / "r.jsonl"
    with pytest.raises(DiveError, match=message):
        run_grid(spec(tiny, **overrides), ResultsFile(path))
    assert not path.exists()


@pytest.mark.parametrize("methods", [
    ["pca", "dive:lr=1e-3", "dive:lr=0.001"],
    ["dive:lr=0.001:steps=60", "dive:steps=60:lr=1e-3"],  # order and spelling of the options
    ["dive:lr=1e-3", "dive:lr=0.5:lr=0.001"],  # the later of a repeated option counts
    # a default spelled out, an option under its old name: both fits ran, bit for bit alike
    ["dive:steps=25", "dive:steps=25:heads=4"],
    ["search-adaptor:patience=50", "search-adaptor:patience_steps=50"],
])
def test_two_spellings_of_one_method_configuration_fail_before_any_run(
    tiny: tuple[Path, Path], methods: list[str]
) -> None:
    """Each spelling is its rows' label: both ran, and were recorded as two methods."""
    path = tiny[0].parent / "r.jsonl"
    first, second = map(re.escape, methods[-2:])
    with pytest.raises(DiveError, match=rf"methods '{first}' and '{second}' are one "
                                        r"configuration \((dive|search-adaptor) with the same "
                                        r"settings\); give it once"):
        run_grid(spec(tiny, methods=methods), ResultsFile(path))
    assert not path.exists()


def test_options_that_differ_are_two_configurations(tiny: tuple[Path, Path]) -> None:
    methods = ["pca", "dive:lr=0.01", "dive:lr=0.001", "search-adaptor:weight_rec_grid=1",
               "search-adaptor:weight_rec_grid=0.1"]
    assert spec(tiny, methods=methods).methods == methods


def test_a_method_spec_is_recorded_as_it_runs_without_surrounding_spaces(
    tiny: tuple[Path, Path]
) -> None:
    records = run_grid(spec(tiny, methods=[" frozen", "pca "], ratios=[4], budgets=[None],
                            seeds=[0]), ResultsFile(tiny[0].parent / "r.jsonl"))
    assert sorted(r["method"] for r in records) == ["frozen", "pca"]


def test_records_count_the_labels_really_used(tiny: tuple[Path, Path]) -> None:
    records = run_grid(spec(tiny, methods=["frozen", "dive"], ratios=[4], budgets=[None],
                            seeds=[0]), ResultsFile(tiny[0].parent / "r.jsonl"))
    n_labels = {r["method"]: r["n_labels"] for r in records}
    assert n_labels == {"frozen": 0, "dive": 40}  # 2/3 of the 60 tiny queries have train labels


def test_a_budget_not_below_the_labelled_pool_is_run_as_budget_all(
    tiny: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Budgets 40 and 10000 train on tiny's 40 labelled queries, as all does: they were
    recorded as rows of their own, repeating all's."""
    records = run_grid(spec(tiny, methods=["frozen", "dive"], ratios=[4],
                            budgets=[16, 40, 10_000, None], seeds=[0]),
                       ResultsFile(tiny[0].parent / "r.jsonl"))
    assert sorted((r["method"], r["budget"]) for r in records) == [
        ("dive", "16"), ("dive", "all"), ("frozen", "16"), ("frozen", "all")]
    assert ("tiny: label budgets 40, 10000 are not below its 40 labelled queries: run as "
            "budget all") in caplog.messages


def test_a_grid_of_budgets_above_the_labelled_pool_runs_budget_all(
    tiny: tuple[Path, Path]
) -> None:
    records = run_grid(spec(tiny, methods=["dive"], ratios=[4], budgets=[10_000], seeds=[0]),
                       ResultsFile(tiny[0].parent / "r.jsonl"))
    assert [(r["budget"], r["n_train"] + r["n_validation"]) for r in records] == [("all", 40)]


def test_unsupervised_methods_are_fitted_once_across_budgets(
    tiny: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dive.evaluate import protocol

    calls: list[tuple[str, int | None]] = []
    real = protocol.run_one

    def counting(task: protocol.RunTask, *args: object) -> dict[str, object]:
        calls.append((task.method, task.budget))
        return real(task, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(protocol, "run_one", counting)
    records = run_grid(spec(tiny, seeds=[0]), ResultsFile(tiny[0].parent / "r.jsonl"))
    assert len(records) == 2 * (1 + 2 * 2)
    assert {budget for _, budget in calls} == {8}  # the 'all' budget reused every fit
    by_budget = {(r["method"], r["dim"], r["budget"]): r["ndcg@10"] for r in records}
    assert by_budget[("pca", 8, "8")] == by_budget[("pca", 8, "all")]


def test_a_learned_method_is_fitted_at_every_budget_with_each_seed(
    tiny: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A learned fit is its own at each budget and seed: reusing the first budget's fit for
    every budget (as label-free fits are), or fitting every seed with seed 0, passed every
    other test."""
    from dive.evaluate import protocol

    calls: list[tuple[str, int | None, int]] = []
    real = protocol.run_one

    def counting(task: protocol.RunTask, *args: object) -> dict[str, object]:
        calls.append((task.method, task.budget, task.seed))
        return real(task, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(protocol, "run_one", counting)
    learned = "dive:steps=5:max_steps=5:select=false"
    records = run_grid(spec(tiny, methods=[learned, "random"], ratios=[4]),
                       ResultsFile(tiny[0].parent / "r.jsonl"))
    assert sorted(calls, key=str) == sorted(
        [(learned, budget, seed) for budget in (8, None) for seed in (0, 1)]
        + [("random", 8, seed) for seed in (0, 1)], key=str)
    assert sorted((r["method"], r["budget"], r["seed"], r["config"]["seed"], r["n_labels"])
                  for r in records) == sorted(
        [(learned, budget, seed, seed, labels) for budget, labels in (("8", 8), ("all", 40))
         for seed in (0, 1)] + [("random", budget, seed, seed, 0)
                                for budget in ("8", "all") for seed in (0, 1)])


def test_a_document_judged_not_relevant_is_no_training_positive() -> None:
    """Grade 0 (TREC qrels list judged, non-relevant documents) and below: a fit reads only
    grades above 0 as relevant, as nDCG does (no shared collection has such grades, so the
    benchmark could not tell)."""
    from dive.evaluate.protocol import labelled_queries

    corpus = np.eye(4, dtype=np.float32)
    emb = Embeddings(corpus, ["a", "b", "c", "d"], corpus[:1], ["q"], {})
    labels = labelled_queries(["q"], {"q": {"a": 2, "b": 0, "c": -1}}, emb, frozenset())
    assert labels.relevant == ({0: 2},)


def fresh_runs(tiny: tuple[Path, Path], path: Path, **overrides: object) -> list[object]:
    """Run the grid into `path`; return the records of the runs not skipped."""
    done: list[object] = []
    run_grid(spec(tiny, seeds=[0], **overrides), ResultsFile(path),
             progress=lambda _done, _total, rec: done.append(rec))
    return [r for r in done if r is not None]


def test_other_embeddings_rerun_instead_of_reusing_old_records(
    tiny: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "r.jsonl"
    fresh_runs(tiny, path)
    other_emb = tmp_path / "other_emb"  # same ids, other vectors
    shutil.copytree(tiny[1], other_emb)
    np.save(other_emb / "corpus.npy", np.roll(np.load(tiny[1] / "corpus.npy"), 1, axis=0))
    rerun = fresh_runs(tiny, path, embeddings_dir=str(other_emb))
    assert len(rerun) == 2 * (1 + 2 * 2)  # nothing reused
    alone = fresh_runs(tiny, tmp_path / "alone.jsonl", embeddings_dir=str(other_emb))
    assert [r["ndcg@10"] for r in rerun] == [r["ndcg@10"] for r in alone]  # type: ignore[index]
    assert "computed from other data" in caplog.text
    caplog.clear()
    assert fresh_runs(tiny, path, embeddings_dir=str(other_emb)) == []  # now on this data too
    assert "computed from other data" not in caplog.text  # it said "running them again"


def test_a_grid_whose_runs_were_recorded_again_on_other_data_runs_them_again(
    tiny: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Data A, then B (every run again), then A: A's runs were skipped as recorded, so its
    table showed A's figures where `dive report` of the same file showed B's, whose records
    are the file's last, and said nothing of A's it dropped."""
    path, other_emb = tmp_path / "r.jsonl", tmp_path / "other_emb"
    shutil.copytree(tiny[1], other_emb)
    np.save(other_emb / "corpus.npy", np.roll(np.load(tiny[1] / "corpus.npy"), 1, axis=0))
    first = run_grid(spec(tiny, seeds=[0]), ResultsFile(path))
    fresh_runs(tiny, path, embeddings_dir=str(other_emb))
    caplog.clear()
    again = fresh_runs(tiny, path)
    assert len(again) == 2 * (1 + 2 * 2)  # every task ran again
    assert "computed from other data" in caplog.text
    caplog.clear()
    report = read_results(path)
    assert f"{len(first)} run(s) recorded again on other data" in caplog.text
    scores = sorted((str(r["method"]), r["dim"], r["ndcg@10"]) for r in report)
    assert scores == sorted((str(r["method"]), r["dim"], r["ndcg@10"]) for r in first)


def test_a_grid_on_changed_data_warns_of_the_files_other_runs_on_the_old(
    tiny: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Rerunning only pca on changed data left frozen's record of the old data in the file,
    without a word: `dive report` then compared them (it now refuses to)."""
    path = tmp_path / "r.jsonl"
    fresh_runs(tiny, path, methods=["frozen", "pca"])
    other_emb = tmp_path / "other_emb"
    shutil.copytree(tiny[1], other_emb)
    np.save(other_emb / "corpus.npy", np.roll(np.load(tiny[1] / "corpus.npy"), 1, axis=0))
    caplog.clear()
    fresh_runs(tiny, path, methods=["pca"], embeddings_dir=str(other_emb))
    assert "2 other run(s) of" in caplog.text and "(frozen) were computed from other data" \
        in caplog.text
    caplog.clear()
    fresh_runs(tiny, path, methods=["frozen"], embeddings_dir=str(other_emb))
    assert "other run(s)" not in caplog.text  # every run of the file is on this data now


def test_records_written_under_the_default_models_hub_alias_resume_under_its_name(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """A file written before records stored the canonical name (model
    sentence-transformers/all-MiniLM-L6-v2): its runs are done for either spelling, and the
    file is left as it is."""
    path = tmp_path / "r.jsonl"
    fresh_runs(tiny, path, model=DEFAULT_MODEL)  # (tiny's own vectors name another model)
    old = [json.loads(line) for line in path.read_text().splitlines()]
    write_records(path, [{**r, "model": "sentence-transformers/all-MiniLM-L6-v2"} for r in old])
    before = path.read_bytes()
    assert fresh_runs(tiny, path, model=DEFAULT_MODEL) == []
    assert fresh_runs(tiny, path, model="sentence-transformers/all-MiniLM-L6-v2") == []
    assert path.read_bytes() == before
    records = run_grid(spec(tiny, seeds=[0], model=DEFAULT_MODEL), ResultsFile(path))
    assert len(records) == len(old)  # the grid's records include them


def test_a_grid_given_no_model_records_the_one_its_embeddings_name(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    # as `dive evaluate` does: the grid recorded DEFAULT_MODEL for another model's vectors,
    # so reports and reruns listed them under it
    assert json.loads((tiny[1] / "meta.json").read_text())["model"] == "synthetic"
    assert {r["model"] for r in fresh_runs(tiny, tmp_path / "r.jsonl")} == {"synthetic"}  # type: ignore[index]


def test_a_grid_given_the_default_models_hub_alias_records_its_name(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    new = fresh_runs(tiny, tmp_path / "r.jsonl", model="sentence-transformers/all-MiniLM-L6-v2")
    assert {r["model"] for r in new} == {"all-MiniLM-L6-v2"}  # type: ignore[index]


def test_any_sentence_transformers_hub_id_is_one_model_with_its_bare_name(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """`sentence-transformers/all-mpnet-base-v2` read the same folder as `all-mpnet-base-v2`
    but was recorded as given: a rerun under the other spelling ran every run again, and a
    report and recommend saw two models."""
    path = tmp_path / "r.jsonl"
    new = fresh_runs(tiny, path, model="sentence-transformers/all-mpnet-base-v2")
    assert {r["model"] for r in new} == {"all-mpnet-base-v2"}  # type: ignore[index]
    assert fresh_runs(tiny, path, model="all-mpnet-base-v2") == []


def test_a_local_model_folder_is_one_model_however_spelled_and_another_folder_another(
    tiny: tuple[Path, Path], tmp_path: Path, local_model: Callable[[str], Path]
) -> None:
    """`./m`, `m/` and the absolute path were recorded as typed: three models, each run three
    times, and `./m` named another folder when the file was read from elsewhere."""
    folder, other = local_model("m"), local_model("a/m")
    path = tmp_path / "r.jsonl"
    new = fresh_runs(tiny, path, model="./m")
    assert {r["model"] for r in new} == {str(folder)}  # type: ignore[index]
    assert fresh_runs(tiny, path, model="m/") == []
    assert fresh_runs(tiny, path, model=str(folder)) == []
    assert len(fresh_runs(tiny, path, model="a/m")) == len(new)  # another folder named m
    assert {json.loads(line)["model"] for line in path.read_text().splitlines()} == {
        str(folder), str(other)}


def test_records_written_under_a_relative_model_path_resume_under_its_resolved_path(
    tiny: tuple[Path, Path], tmp_path: Path, local_model: Callable[[str], Path]
) -> None:
    """A file an older version wrote under `--model ./m`: its runs are done for the folder's
    resolved path (read from the working directory), and the file is left as it is."""
    folder = local_model("m")
    path = tmp_path / "r.jsonl"
    fresh_runs(tiny, path, model="./m")
    old = [json.loads(line) for line in path.read_text().splitlines()]
    write_records(path, [{**r, "model": "./m"} for r in old])
    before = path.read_bytes()
    assert fresh_runs(tiny, path, model=str(folder)) == []
    assert path.read_bytes() == before


def test_changed_dataset_with_the_same_name_reruns(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    fresh_runs(tiny, path)
    qrels = tiny[0] / "qrels" / "test.tsv"
    lines = qrels.read_text().splitlines()
    qrels.write_text("\n".join(lines[: len(lines) // 2]) + "\n")  # half the judgements
    assert len(fresh_runs(tiny, path)) == 2 * (1 + 2 * 2)
    assert fresh_runs(tiny, path) == []  # and the new records are then reused


def test_backfill_lets_a_rerun_skip_records_written_without_a_fingerprint(
    tiny: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "r.jsonl"
    fresh_runs(tiny, path)
    old = [json.loads(line) for line in path.read_text().splitlines()]
    for record in old:
        del record[FINGERPRINT_FIELD]
    write_records(path, old)
    # a rerun says they have no fingerprint; it said they were "computed from other data"
    write_records(tmp_path / "copy.jsonl", old)
    assert len(fresh_runs(tiny, tmp_path / "copy.jsonl")) == len(old)
    assert f"{len(old)} of these runs have records without a data fingerprint" in caplog.text
    assert "computed from other data" not in caplog.text
    # one model's folder stamped on another model's records: refused, where it wrote its
    # fingerprint on both (the run then trusted the wrong one)
    other = [{**r, "model": "other-model"} for r in old]
    write_records(tmp_path / "two.jsonl", [*old, *other])
    with pytest.raises(DataError, match=r"records of several \(dataset, model\) pairs"):
        backfill_fingerprints(tmp_path / "two.jsonl", data_dir=str(tiny[0].parent),
                              embeddings_dir=str(tiny[1]))
    assert backfill_fingerprints(path, data_dir=str(tiny[0].parent),
                                 embeddings_dir=str(tiny[1])) == len(old)
    backfilled = [json.loads(line) for line in path.read_text().splitlines()]
    assert [{k: v for k, v in r.items() if k != FINGERPRINT_FIELD} for r in backfilled] == old
    assert fresh_runs(tiny, path) == []
    assert backfill_fingerprints(path, data_dir=str(tiny[0].parent)) == 0  # nothing left to do


def _fingerprint_data(n: int = 6) -> tuple[Dataset, Embeddings]:
    """A dataset of `n` documents and 3 queries, judged in every split, and its vectors."""
    rng = np.random.default_rng(0)
    docs, queries = [f"d{i}" for i in range(n)], ["q0", "q1", "q2"]
    qrels = {split: {q: {f"d{i}": 1} for i, q in enumerate(queries)}
             for split in ("train", "dev", "test")}
    dataset = Dataset("fp", Path("fp"), docs, docs, queries, queries, qrels)
    emb = Embeddings(rng.standard_normal((n, 4)).astype(np.float32), docs,
                     rng.standard_normal((3, 4)).astype(np.float32), queries)
    return dataset, emb


def test_the_fingerprint_covers_the_query_vectors() -> None:
    """Guards hashing the queries: new query vectors under the same ids reused old scores."""
    dataset, emb = _fingerprint_data()
    moved = replace(emb, queries=emb.queries[::-1].copy())
    assert data_fingerprint(dataset, moved) != data_fingerprint(dataset, emb)


def test_the_fingerprint_covers_the_qrels_grades() -> None:
    """Guards hashing each judgement's grade, not only which pairs are judged."""
    dataset, emb = _fingerprint_data()
    regraded = copy.deepcopy(dataset.qrels)
    regraded["test"]["q0"]["d0"] = 2
    assert (data_fingerprint(replace(dataset, qrels=regraded), emb)
            != data_fingerprint(dataset, emb))


@pytest.mark.parametrize("split", ["train", "dev"])
def test_the_fingerprint_covers_the_training_splits_qrels(split: str) -> None:
    """Guards hashing every qrels split: the labels a learned method trains and selects on."""
    dataset, emb = _fingerprint_data()
    changed = copy.deepcopy(dataset.qrels)
    changed[split]["q1"] = {"d5": 1}
    assert (data_fingerprint(replace(dataset, qrels=changed), emb)
            != data_fingerprint(dataset, emb))


def test_the_fingerprint_covers_rows_past_the_first_chunk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Guards hashing every chunk of rows, not only the first."""
    from dive.evaluate import fingerprint

    monkeypatch.setattr(fingerprint, "_CHUNK_ROWS", 2)
    dataset, emb = _fingerprint_data()
    corpus = emb.corpus.copy()
    corpus[5] = -corpus[5]  # in the third chunk
    assert (data_fingerprint(dataset, replace(emb, corpus=corpus))
            != data_fingerprint(dataset, emb))


def test_records_carry_the_typed_fit_summary_beside_the_diagnostics(
    tiny: tuple[Path, Path],
) -> None:
    records = run_grid(spec(tiny, methods=["pca", "dive"], ratios=[4], budgets=[16], seeds=[0]),
                       ResultsFile(tiny[0].parent / "r.jsonl"))
    by_method = {r["method"]: r for r in records}
    assert by_method["pca"]["fit"] is None and by_method["pca"]["diagnostics"] == {}
    fit, diagnostics = by_method["dive"]["fit"], by_method["dive"]["diagnostics"]
    assert 0 < fit["n_queries"] <= 16 and fit["validation_score"] is not None
    assert fit["validation_curve"][0] == [0, fit["start_score"]]
    assert 0 <= fit["best_step"] <= fit["steps_run"] and fit["seconds"] > 0
    assert "choice" in diagnostics and "curves" in diagnostics  # the old keys stay


@pytest.mark.parametrize(
    ("query_text", "ndcg"),
    [
        # a numbered collection: query "1" is not document "1", which it must still retrieve
        ("which one", 1.0),
        # ArguAna-like: query "1" is document "1" (its text is the document's), never a hit
        # for itself, so the relevant document "2", second nearest, comes first
        ("one text", 1.0),
    ],
)
def test_a_query_leaves_out_its_own_id_only_when_it_is_that_document(
    query_text: str, ndcg: float
) -> None:
    vectors = np.eye(4, dtype=np.float32)
    own = query_text == "one text"
    query = np.array([[1.0, 0.5 if own else 0.0, 0, 0]], dtype=np.float32)
    query /= np.linalg.norm(query)
    dataset = Dataset("d", Path("d"), ["1", "2", "3", "4"], ["Doc one text", "b", "c", "d"],
                      ["1", "9"], [query_text, "other"],
                      {"test": {"1": {"2" if own else "1": 1}, "9": {"3": 1}}})
    emb = Embeddings(vectors, list(dataset.corpus_ids), np.concatenate([query, vectors[2:3]]),
                     ["1", "9"], {})
    split = QuerySplit(("9",), (), ("1",), {"9": {"3": 1}}, {"1": dataset.split("test")["1"]},
                       "test-half", dataset.identical_ids())
    assert split.identical_ids == ({"1"} if own else set())
    record = run_one(RunTask("frozen", 4, 1, None, 0), dataset, emb, split, "m", 10)[0]
    assert record["ndcg@10"] == pytest.approx(ndcg)


def test_a_value_given_twice_is_one_run_and_no_skip(
    tiny: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`--ratios 4,4 --budgets all,all --seeds 0,0` ran each run once, then said it skipped
    3 runs "already in" a results file made a moment before."""
    twice = spec(tiny, methods=["frozen", "pca"], ratios=[4, 4], budgets=[None, None],
                 seeds=[0, 0])
    assert (twice.ratios, twice.budgets, twice.seeds) == ([4], [None], [0])
    with caplog.at_level(logging.INFO):
        records = run_grid(twice, ResultsFile(tmp_path / "r.jsonl"))
    assert len(records) == 2 and "skipped" not in caplog.text


@pytest.mark.parametrize("field", ["methods", "datasets"])
def test_a_method_or_dataset_given_twice_is_run_once_and_no_skip(
    tiny: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture, field: str
) -> None:
    """`--methods pca,pca` (or `--datasets` with the same folder under two spellings, which
    was refused "rename one folder") said it skipped runs "already in" a new results file."""
    twice = {"methods": ["frozen", "pca", "pca"],
             "datasets": [str(tiny[0]), f"{tiny[0]}/", str(tiny[0])]}[field]
    grid = spec(tiny, ratios=[4], budgets=[None], seeds=[0], **{"methods": ["frozen", "pca"],
                                                                  field: twice})
    with caplog.at_level(logging.INFO):
        records = run_grid(grid, ResultsFile(tmp_path / "r.jsonl"))
    assert sorted(r["method"] for r in records) == ["frozen", "pca"]
    assert "skipped" not in caplog.text


def test_where_a_dataset_was_found_is_said_once(tiny: tuple[Path, Path], tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """The grid looked each dataset up twice (its names checked, then its data loaded): a
    warning about a folder of the same name in the working directory came twice."""
    grid = spec(tiny, datasets=["tiny"], data_dir=str(tiny[0].parent), methods=["pca"],
                ratios=[4], budgets=[None], seeds=[0])
    with caplog.at_level(logging.INFO, logger="dive.data.download"):
        run_grid(grid, ResultsFile(tmp_path / "r.jsonl"))
    found = [r.getMessage() for r in caplog.records if r.name == "dive.data.download"]
    assert found == [f"dataset tiny: using {tiny[0]} (from data_dir)"]


def test_a_ratio_a_later_datasets_dimension_refuses_names_the_dataset_and_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--ratios 4` against a second dataset of dimension 30 said only "ratio 4 does not
    divide the embedding dimension 30", and only after the first dataset's runs: every
    dataset is now loaded and checked before any run (then loaded again in its turn, one in
    memory at a time), as a missing one is found."""
    from tests.conftest import write_tiny_beir

    first, first_emb = write_tiny_beir(tmp_path / "a")
    second, second_emb = write_tiny_beir(tmp_path / "b", dim=30)
    second = second.rename(second.with_name("other"))
    shutil.copytree(first_emb, tmp_path / "env" / "synthetic" / "tiny")
    shutil.copytree(second_emb, tmp_path / "env" / "synthetic" / "other")
    monkeypatch.setenv("DIVE_EMBEDDINGS", str(tmp_path / "env"))
    path = tmp_path / "r.jsonl"
    grid = GridSpec(datasets=[str(first), str(second)], methods=["pca"], ratios=[4],
                    budgets=[None], seeds=[0], model="synthetic")
    with pytest.raises(DiveError) as error:
        run_grid(grid, ResultsFile(path))
    assert str(error.value) == "other: ratio 4 does not divide the embedding dimension 30"
    assert error.value.param == "ratios"
    assert not path.exists()
    with pytest.raises(DiveError, match="no such dataset folder"):
        run_grid(replace(grid, datasets=[str(first), str(tmp_path / "missing")]),
                 ResultsFile(tmp_path / "r2.jsonl"))
    assert not (tmp_path / "r2.jsonl").exists()


def test_each_datasets_embeddings_are_said_once_in_grid_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Checked before any run, every dataset after the first said where its embeddings came
    from twice, the first time before the first dataset's line."""
    from dive.embed.encode import SOURCE_LOGGER
    from tests.conftest import write_tiny_beir

    folders = []
    for name in ("one", "two", "three"):
        folder, emb = write_tiny_beir(tmp_path / name)
        folders.append(folder.rename(folder.with_name(name)))
        shutil.copytree(emb, tmp_path / "env" / "synthetic" / name)
    monkeypatch.setenv("DIVE_EMBEDDINGS", str(tmp_path / "env"))
    grid = GridSpec(datasets=[str(f) for f in folders], methods=["pca"], ratios=[4],
                    budgets=[None], seeds=[0], model="synthetic")
    with caplog.at_level(logging.INFO, logger=SOURCE_LOGGER):
        run_grid(grid, ResultsFile(tmp_path / "r.jsonl"))
    said = [r.getMessage().split(":")[0] for r in caplog.records if r.name == SOURCE_LOGGER]
    assert said == ["embeddings for one", "embeddings for two", "embeddings for three"]


def test_without_labelled_queries_the_label_free_methods_are_still_scored(
    tiny: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """A train.tsv that copies test.tsv leaves no labelled query (each is scored, so never
    trained on): the grid refused every method, frozen and pca included."""
    qrels = tiny[0] / "qrels"
    shutil.copy(qrels / "test.tsv", qrels / "train.tsv")
    results = ResultsFile(tiny[0].parent / "r.jsonl")
    records = run_grid(spec(tiny, methods=["frozen", "pca"], ratios=[4], budgets=[None],
                            seeds=[0]), results)
    assert sorted(r["method"] for r in records) == ["frozen", "pca"]
    assert all(r["n_eval"] == 20 and r["n_train"] == 0 for r in records)
    with pytest.raises(DiveError, match=r"^tiny \(for dive\): no labelled training queries in "
                                        r"its train split$") as error:
        run_grid(spec(tiny, methods=["pca", "dive"], ratios=[4], budgets=[None], seeds=[0]),
                 results)
    assert error.value.param == "methods"


def test_an_evaluation_query_a_method_cannot_rank_is_named_by_its_id(
    tiny: tuple[Path, Path]
) -> None:
    """It was "input: row 1", its place among the evaluation queries: no file's row 1."""
    ids = (tiny[1] / "query_ids.txt").read_text().split()
    queries = np.load(tiny[1] / "queries.npy")
    queries[ids.index("q45")] = 0
    queries[ids.index("q45"), -1] = 1  # nothing in the first 8 dimensions truncate keeps
    np.save(tiny[1] / "queries.npy", queries)
    with pytest.raises(DiveError, match=r": query 'q45': has no part in the compressed space "
                                        r".* \(truncate at d=8\)$"):
        run_grid(spec(tiny, methods=["truncate"], ratios=[4], budgets=[None], seeds=[0]),
                 ResultsFile(tiny[0].parent / "r.jsonl"))


def test_a_results_file_that_cannot_be_written_is_refused_before_a_run_not_when_none_is_due(
    tiny: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked before the grid: a read-only file holding every run (mounted into a container)
    was refused, where it only had to be read."""
    from dive.evaluate import protocol, records

    results = ResultsFile(tiny[0].parent / "r.jsonl")
    grid = spec(tiny, methods=["frozen", "pca"], ratios=[4], budgets=[None], seeds=[0])
    done = run_grid(grid, results)

    def read_only(path: Path) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(records, "check_writable", read_only)
    monkeypatch.setattr(protocol, "run_one", lambda *_: pytest.fail("a run started"))
    assert run_grid(grid, results) == done
    with pytest.raises(PermissionError):
        run_grid(replace(grid, seeds=[1]), results)


def test_a_results_write_killed_outright_leaves_nothing_past_the_next_run(
    tiny: tuple[Path, Path]
) -> None:
    """SIGKILL during an append left its hidden temporary beside the results file (0600, as
    large as the file), and no later `dive evaluate` removed it, where every other verb's
    next write does. A temporary no process holds, unchanged for a minute, is now removed when
    a run is due; a live one, or one of another output, stays."""
    import os
    import time

    from dive._io import DEAD_AFTER

    folder = tiny[0].parent
    dead, young, other = (folder / ".r.jsonl.0123456789abcdef.tmp",
                          folder / ".r.jsonl.fedcba9876543210.tmp",
                          folder / ".s.jsonl.0123456789abcdef.tmp")
    for path in (dead, young, other):
        path.write_text("{")
    old = time.time() - DEAD_AFTER - 1
    for path in (dead, other):
        os.utime(path, (old, old))
    results = ResultsFile(folder / "r.jsonl")
    run_grid(spec(tiny, methods=["frozen"], ratios=[4], budgets=[None], seeds=[0]), results)
    assert not dead.exists()
    assert young.exists() and other.exists()


def test_budgets_are_taken_as_the_records_spell_them(tiny: tuple[Path, Path]) -> None:
    """"all" (and "16") raised TypeError: '>=' not supported between 'str' and 'int'."""
    records = run_grid(spec(tiny, methods=["frozen"], ratios=[4], budgets=["8", "all"],
                            seeds=[0]), ResultsFile(tiny[0].parent / "r.jsonl"))
    assert sorted(r["budget"] for r in records) == ["8", "all"]
