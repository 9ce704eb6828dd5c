"""Label budgets and query splits: nested budgets, validation sizes, no test leakage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dive.data import Dataset, load_beir
from dive.data.splits import hold_out, make_split, n_validation, parse_budget
from dive.errors import DiveError


def test_budgets_are_nested_and_never_touch_test_queries(tiny: tuple[Path, Path]) -> None:
    dataset = load_beir(tiny[0])
    small, large = make_split(dataset, 8, seed=0), make_split(dataset, 20, seed=0)
    assert set(small.train_ids + small.validation_ids) < set(large.train_ids + large.validation_ids)
    labelled = set(large.train_ids + large.validation_ids)
    assert labelled <= set(dataset.split("train"))
    assert not labelled & set(large.eval_ids)
    assert set(large.eval_ids) == set(dataset.split("test"))


def test_validation_is_a_fifth_with_floor_and_none_below_eight() -> None:
    assert n_validation(7) == 0
    assert n_validation(8) == 4
    assert n_validation(64) == 13
    assert n_validation(809) == 162


def test_all_budget_takes_every_labelled_train_query(tiny: tuple[Path, Path]) -> None:
    dataset = load_beir(tiny[0])
    split = make_split(dataset, None, seed=1)
    assert len(split.train_ids) + len(split.validation_ids) == len(dataset.split("train"))
    assert len(split.validation_ids) == n_validation(len(dataset.split("train")))


def test_a_budget_above_the_pool_is_capped_with_a_warning_and_counted(
    tiny: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    dataset = load_beir(tiny[0])
    pool = len(dataset.split("train"))
    split = make_split(dataset, 10 * pool, seed=0)
    assert split.n_labels == pool == len(split.train_ids) + len(split.validation_ids)
    assert f"label budget {10 * pool} exceeds the {pool} labelled queries" in caplog.text
    assert make_split(dataset, 8, seed=0).n_labels == 8


def test_a_budget_of_exactly_the_pool_takes_it_all_without_a_warning(
    tiny: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """A budget equal to the labelled pool was warned of as one that "exceeds" it, though it
    takes every query and nothing is capped; one query more is the first that exceeds it."""
    dataset = load_beir(tiny[0])
    pool = len(dataset.split("train"))
    assert make_split(dataset, pool, seed=0).n_labels == pool
    assert "exceeds" not in caplog.text
    assert make_split(dataset, pool + 1, seed=0).n_labels == pool
    assert f"label budget {pool + 1} exceeds the {pool} labelled queries" in caplog.text


@pytest.mark.parametrize("with_train", [True, False])
def test_the_split_does_not_depend_on_the_qrels_files_row_order(with_train: bool) -> None:
    """The labelled pool was drawn from the queries in the order the qrels file lists them:
    the same qrels with their rows reversed (a sorted or regenerated file) gave another split
    for the same seed, so another set of training labels and scored queries."""
    ids = [f"q{i}" for i in range(12)]
    docs = [f"d{i}" for i in range(12)]

    def dataset(order: list[str]) -> Dataset:
        judged = {q: {docs[int(q[1:])]: 1} for q in order}
        qrels = {"test": {"x": {"d0": 1}}, "train": judged} if with_train else {"test": judged}
        queries = [*ids, "x"]
        return Dataset("d", Path("d"), docs, docs, queries, queries, qrels)

    for seed in range(3):
        split = make_split(dataset(ids), 6, seed=seed)
        assert make_split(dataset(ids[::-1]), 6, seed=seed) == split
        assert make_split(dataset(ids[::-1]), None, seed=seed) == make_split(dataset(ids), None,
                                                                             seed=seed)


def test_seed_changes_the_sample_but_is_reproducible(tiny: tuple[Path, Path]) -> None:
    dataset = load_beir(tiny[0])
    assert make_split(dataset, 10, 0) == make_split(dataset, 10, 0)
    assert make_split(dataset, 10, 0).train_ids != make_split(dataset, 10, 1).train_ids


@pytest.mark.parametrize("seed", [-1, 2**63, 1.5, "0"])
def test_a_seed_numpy_refuses_is_a_dive_error_naming_the_seed(
    tiny: tuple[Path, Path], seed: Any
) -> None:
    # dive.fit(dataset, method="dive", seed=-1) ended in numpy's bare "expected non-negative
    # integer" traceback
    with pytest.raises(DiveError, match=r"seed must be an integer in 0\.\.2\*\*63-1, got"):
        make_split(load_beir(tiny[0]), 10, seed)


@pytest.mark.parametrize("n_queries", [60, 61])
def test_without_train_split_test_queries_are_halved(make_tiny: Any, n_queries: int) -> None:
    """An odd count gives the extra query to the evaluation half (a mutant that gave it to
    the labels passed with an even count)."""
    data, _ = make_tiny(with_train=False, n_queries=n_queries)
    dataset = load_beir(data)
    split = make_split(dataset, None, seed=0)
    labelled = set(split.train_ids + split.validation_ids)
    assert split.source == "test-half"
    assert not labelled & set(split.eval_ids)
    assert len(labelled) == len(dataset.split("test")) // 2
    assert set(split.eval_qrels) == set(split.eval_ids)


def test_the_last_of_the_drawn_labels_validate() -> None:
    cut = 20 - n_validation(20)
    assert hold_out(list(range(20))) == (list(range(cut)), list(range(cut, 20)))
    assert hold_out(list(range(7))) == (list(range(7)), [])


def test_parse_budget() -> None:
    assert parse_budget("all") is None
    assert parse_budget("64") == 64
    with pytest.raises(DiveError, match="positive integer or 'all'"):
        parse_budget("0")
    with pytest.raises(DiveError, match="positive integer or 'all'"):
        parse_budget("many")
    assert parse_budget(np.int64(3)) == 3
    assert parse_budget(" 16 ") == 16
    # int() would take 2.7 as 2, True as 1, "1_6" as 16 and Arabic-Indic digits as 16
    for value in (2.7, True, "2.5", "1_6", "\u0661\u0666"):
        with pytest.raises(DiveError, match="positive integer or 'all'"):
            parse_budget(value)  # type: ignore[arg-type]


def test_a_query_judged_in_train_and_test_is_scored_and_never_trained_on(
    make_beir: Any, default_qrels_tsv: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    qrels = dict(default_qrels_tsv, test="query-id\tcorpus-id\tscore\nq2\td2\t1\n")
    dataset = load_beir(make_beir(qrels=qrels))  # q1 and q2 train, q2 also test
    split = make_split(dataset, None, seed=0)
    assert split.train_ids + split.validation_ids == ("q1",) and split.eval_ids == ("q2",)
    assert "1 queries judged in both its train and test qrels (e.g. 'q2')" in caplog.text


@pytest.mark.parametrize("with_train", [True, False])
def test_dev_split_tunes_inside_the_labelled_pool_and_never_reads_evaluation_queries(
    make_tiny: Any, with_train: bool
) -> None:
    data, _ = make_tiny(with_train=with_train)
    dataset = load_beir(data)
    protocol, dev = make_split(dataset, None, seed=0), make_split(dataset, None, seed=0, dev=True)
    pool = set(protocol.train_ids + protocol.validation_ids)
    labelled = set(dev.train_ids + dev.validation_ids)
    assert labelled | set(dev.eval_ids) == pool  # the pool, split in two ...
    assert not labelled & set(dev.eval_ids)
    assert not pool & set(protocol.eval_ids)  # ... never the protocol's evaluation queries
    assert len(dev.eval_ids) - len(labelled) in (0, 1)
    # the labels are the first half of the pool as the protocol draws it, the rest is scored
    drawn = protocol.train_ids + protocol.validation_ids
    assert dev.train_ids + dev.validation_ids == drawn[:len(drawn) // 2]
    assert dev.source == f"{protocol.source}-dev"
    assert all(dev.eval_qrels[q] == protocol.label_qrels[q] for q in dev.eval_ids)


def test_only_queries_that_are_documents_are_identical_ids() -> None:
    # "a" is a document too (its text is the document's, after a title: ArguAna), "q" too
    # (the same text: Quora); "1" and "2" share ids with documents by a coincidence of
    # numbering (Cranfield)
    # "3" is a document whose text ends with the short query "3" is (only its words)
    dataset = Dataset("d", Path("d"), ["a", "1", "2", "3", "q"],
                      ["Title the argument", "one", "two", "a paper on topic7", "the question"],
                      ["a", "1", "2", "3", "q"],
                      ["the argument", "what is two", "query", "topic7", "the question \n"],
                      {"test": {"a": {"2": 1}, "1": {"2": 1}, "2": {"3": 1}, "3": {"3": 1},
                                "q": {"1": 1}}})
    assert dataset.identical_ids() == {"a", "q"}
    for seed in range(3):  # wherever "a" falls, labelled or scored
        assert make_split(dataset, None, seed=seed).identical_ids == {"a", "q"}


def test_a_title_one_character_shorter_than_the_query_is_a_shorter_title() -> None:
    """As documented, the query's text after a shorter title: a title one character shorter
    than the query was not one (the text had to be over half the document, space included)."""
    dataset = Dataset("d", Path("d"), ["a", "b"], ["abc abcd", "abcd abcd"], ["a", "b"],
                      ["abcd", "abcd"], {"test": {"a": {"b": 1}, "b": {"a": 1}}})
    assert dataset.identical_ids() == {"a"}  # "b"'s title is as long as its text: not shorter


def test_a_query_judging_its_own_document_relevant_keeps_it_as_a_hit(
    caplog: pytest.LogCaptureFixture
) -> None:
    """A known-item set numbered from 1, each query the text of the document it judges
    relevant, scored nDCG@10 0.0000 with no word: the identical-ids convention left out of
    each query's results the one document its qrels judge relevant."""
    dataset = Dataset("d", Path("d"), ["1", "2", "3"], ["one", "two", "three"],
                      ["1", "2", "3"], ["one", "two", "three"],
                      {"test": {"1": {"1": 1}, "2": {"2": 1, "3": 1}, "3": {"1": 1}}})
    assert dataset.identical_ids() == {"3"}  # "3" does not judge its own twin: left out
    assert "2 queries (first '1') judge the document with their own id and text relevant; " \
        "it stays a hit" in caplog.text


@pytest.mark.parametrize("with_train", [False, True])
def test_a_query_judged_with_no_relevant_document_is_measured_in_both_modes(
    with_train: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """With a train split it was measured (scoring 0, as in BEIR); without one it was left
    out of both halves, so the same qrels scored other queries by mode, without a word."""
    ids = [f"q{i}" for i in range(8)]
    test = {q: {"d0": 1} for q in ids[:6]} | {"q6": {"d0": 0}, "q7": {"d1": 0, "d0": 0}}
    qrels = {"test": test} | ({"train": {"t0": {"d0": 1}, "t1": {"d1": 1}}} if with_train
                              else {})
    queries = [*ids, "t0", "t1"]
    dataset = Dataset("d", Path("d"), ["d0", "d1"], ["zero", "one"], queries,
                      [f"text {q}" for q in queries], qrels)
    for seed in range(3):
        split = make_split(dataset, None, seed=seed)
        assert {"q6", "q7"} <= set(split.eval_ids)
        assert not {"q6", "q7"} & {*split.train_ids, *split.validation_ids}
        assert len(split.eval_ids) == (6 if with_train else 3) + 2
    assert "2 test queries (e.g. 'q6') are judged with no relevant document in the corpus" \
        in caplog.text


@pytest.mark.parametrize("with_train", [False, True])
def test_a_query_whose_relevant_documents_the_corpus_lacks_is_never_drawn_to_learn_from(
    with_train: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Drawn by a budget, the fit left it out: 4 of 5 budget-5 queries of a probe's data, the
    record still saying 5; with budget 1 the fit stopped, 'no query has a relevant row'.
    Without a train split it is measured (scoring 0), as a query judged grade 0 only."""
    ids = [f"q{i}" for i in range(10)]
    judged = {q: ({"gone": 1} if i % 2 else {"d0": 1}) for i, q in enumerate(ids)}
    qrels = ({"test": {"x": {"d0": 1}}, "train": judged} if with_train else {"test": judged})
    queries = [*ids, "x"]
    dataset = Dataset("d", Path("d"), ["d0", "d1"], ["zero", "one"], queries,
                      [f"text {q}" for q in queries], qrels)
    missing = {q for i, q in enumerate(ids) if i % 2}
    for seed in range(5):
        split = make_split(dataset, 1, seed=seed)
        assert not missing & {*split.train_ids, *split.validation_ids}
        if not with_train:
            assert missing <= set(split.eval_ids)
    # measured without a train split, as the test queries' warning says; with one, left out
    # of the pool without a word: a user's train qrels of another corpus version taught nothing
    left_out = "5 train queries (e.g. 'q1') are judged with no relevant document in the corpus"
    assert (left_out in caplog.text) is with_train
