"""Loading BEIR-layout folders: the happy path, CRLF, gzip, and every malformed input."""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from dive.data import Dataset, load_beir
from dive.data.beir import clean_id, form_hint
from dive.errors import DataError

MakeBeir = Callable[..., Path]  # the `make_beir` fixture of tests/data/conftest.py


def test_loads_ids_texts_and_qrels_in_file_order(tiny_beir: Path) -> None:
    ds = load_beir(tiny_beir)
    assert ds.name == "ds"
    assert ds.path == tiny_beir
    assert ds.corpus_ids == ["d1", "d2", "d3", "d4"]
    # title + " " + text, stripped: an empty or missing title leaves no leading space.
    assert ds.corpus_texts == [
        "Cats Cats purr.",
        "Dogs bark.",
        "No title here.",
        "Birds Birds sing.",
    ]
    assert ds.query_ids == ["q1", "q2", "q3"]
    assert ds.query_texts == ["what purrs", "what barks", "unjudged query"]
    assert ds.qrels == {
        "train": {"q1": {"d1": 1}, "q2": {"d2": 2, "d4": 0}},  # grade 0 is kept
        "test": {"q1": {"d3": 1}, "q2": {"d2": 1}},
    }
    assert set(ds.qrels) == {"train", "test"}  # only splits present on disk


def test_name_argument_overrides_folder_name(tiny_beir: Path) -> None:
    assert load_beir(str(tiny_beir), name="other").name == "other"


def test_repr_is_short(tiny_beir: Path) -> None:
    text = repr(load_beir(tiny_beir))
    assert "Cats purr" not in text and "ds" in text


def test_split_returns_qrels_or_names_available_splits(tiny_beir: Path) -> None:
    ds = load_beir(tiny_beir)
    assert ds.split("test") == {"q1": {"d3": 1}, "q2": {"d2": 1}}
    with pytest.raises(DataError, match=r"ds.*no 'dev' qrels split \(available: train, test\)"):
        ds.split("dev")


def test_dataset_rejects_mismatched_lengths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="corpus_ids and corpus_texts"):
        Dataset("x", tmp_path, ["a"], [], [], [], {})


def test_crlf_everywhere_is_tolerated(make_beir: MakeBeir) -> None:
    crlf = make_beir(newline="\r\n")
    corpus = crlf / "corpus.jsonl"
    corpus.write_bytes(corpus.read_bytes().replace(b"\n", b"\r\n"))
    assert b"\r\n" in (crlf / "qrels" / "test.tsv").read_bytes()
    lf = load_beir(make_beir("lf"))
    ds = load_beir(crlf)
    assert (ds.corpus_ids, ds.corpus_texts, ds.qrels) == (lf.corpus_ids, lf.corpus_texts, lf.qrels)


def test_gzipped_files_load_like_plain_ones(make_beir: MakeBeir) -> None:
    gz = make_beir("gz", gz=True)
    assert (gz / "corpus.jsonl.gz").is_file() and not (gz / "corpus.jsonl").exists()
    assert (gz / "qrels" / "train.tsv.gz").is_file()
    plain, zipped = load_beir(make_beir("plain")), load_beir(gz)
    assert zipped.corpus_texts == plain.corpus_texts
    assert zipped.query_ids == plain.query_ids
    assert zipped.qrels == plain.qrels


def test_header_is_optional_and_blank_lines_ignored(make_beir: MakeBeir) -> None:
    folder = make_beir(qrels={"test": "q1\td1\t1\n\nq2\td2\t0\n"})
    assert load_beir(folder).split("test") == {"q1": {"d1": 1}, "q2": {"d2": 0}}


@pytest.mark.parametrize("header", ["query_id\tcorpus_id\tscore", "qid\tdocid\trelevance",
                                    # any names (docs/own-data.md): these were "expected 3
                                    # tab-separated columns, found 1 (or 4)"
                                    "query-id corpus-id score", "qid,docid,rel",
                                    "qid\titer\tdocid\trel"])
def test_a_header_of_other_names_is_skipped_as_beir_skips_it(make_beir: MakeBeir,
                                                             header: str) -> None:
    """BEIR's loader skips the first line whatever it holds; here it was "line 1: score
    'score' is not an integer". A first line whose score is an integer is a judgement."""
    folder = make_beir(qrels={"test": f"{header}\nq1\td1\t1\n"})
    assert load_beir(folder).split("test") == {"q1": {"d1": 1}}


def test_a_first_judgement_whose_grade_is_not_an_integer_is_refused_not_skipped(
        make_beir: MakeBeir) -> None:
    """A first line `q2 d2 1.5` was taken for a header: q2's judgement dropped without a
    word, where the same line further down is refused."""
    folder = make_beir(qrels={"test": "q2\td2\t1.5\nq1\td1\t1\n"})
    with pytest.raises(DataError, match=r"test\.tsv line 1: score '1\.5' is not an integer"):
        load_beir(folder)


@pytest.mark.parametrize(("first", "error"), [
    ("q2 d2 2", "expected 3 tab-separated columns (query-id, corpus-id, score), found 1; the "
                "line is split by spaces: write tabs between the columns"),
    ("q2,d2,2", "expected 3 tab-separated columns (query-id, corpus-id, score), found 1; the "
                "line is split by commas: write tabs between the columns"),
    ("q2\td2\t2\t0", "expected 3 tab-separated columns (query-id, corpus-id, score), found 4; "
                    "TREC's four-column qrels need their second column dropped"),
    ("q2 0 d2 2", "expected 3 tab-separated columns (query-id, corpus-id, score), found 1; "
                  "TREC's four-column qrels need their second column dropped"),
    ("q2\td2", "expected 3 tab-separated columns (query-id, corpus-id, score), found 2"),
    ("q2\td2\t", "empty score"),
])
def test_a_first_judgement_of_another_layout_is_refused_not_skipped_as_a_header(
        make_beir: MakeBeir, first: str, error: str) -> None:
    """Each of these first lines was skipped as a header: q2's judgement dropped without a
    word (nDCG@10 0.93 where the data meant 0.99), the same line on line 2 refused."""
    folder = make_beir(qrels={"test": f"{first}\nq1\td1\t1\n"})
    with pytest.raises(DataError, match=re.escape(f"test.tsv line 1: {error}")):
        load_beir(folder)


def test_field_names_written_twice_elsewhere_in_a_record_are_fine(make_beir: MakeBeir) -> None:
    # a text quoting "text", and a nested object with its own "_id": one of each field
    corpus = ('{"_id": "d1", "text": "the \\"text\\" field", "meta": {"_id": 3, "text": 1}}\n'
              '{"_id": "d2", "text": "b"}\n')
    folder = make_beir(corpus=corpus, qrels={"test": "q1\td1\t1\n"})
    assert load_beir(folder).corpus_texts == ['the "text" field', "b"]


def test_integer_ids_become_strings(make_beir: MakeBeir) -> None:
    corpus = '{"_id": 7, "text": "seven"}\n'
    queries = '{"_id": 1, "text": "q"}\n'
    folder = make_beir(corpus=corpus, queries=queries, qrels={"test": "1\t7\t1\n"})
    ds = load_beir(folder)
    assert ds.corpus_ids == ["7"] and ds.query_ids == ["1"]
    assert ds.qrels == {"test": {"1": {"7": 1}}}


def test_ids_are_stripped_in_corpus_and_queries_as_in_qrels(
    make_beir: MakeBeir, caplog: pytest.LogCaptureFixture
) -> None:
    # "d1 " was kept as is while the qrels' "d1" was stripped: the document was never judged
    corpus = '{"_id": "d1 ", "text": "one"}\n{"_id": "\\td2", "text": "two"}\n'
    queries = '{"_id": " q1", "text": "q"}\n{"_id": "q2", "text": "r"}\n'
    qrels = {"test": HEADER + "q1\td1\t1\n q2 \t d2\t1\n"}
    with caplog.at_level(logging.WARNING, logger="dive.data.beir"):
        ds = load_beir(make_beir(corpus=corpus, queries=queries, qrels=qrels))
    assert ds.corpus_ids == ["d1", "d2"] and ds.query_ids == ["q1", "q2"]
    assert ds.split("test") == {"q1": {"d1": 1}, "q2": {"d2": 1}}
    assert "not in" not in caplog.text


def test_ids_lose_invisible_format_characters_at_their_ends(
    make_beir: MakeBeir, caplog: pytest.LogCaptureFixture
) -> None:
    # a zero-width space or byte-order mark (Unicode "Cf") was kept: "\u200bd1" was never judged
    corpus = ('{"_id": "\\u200bd1", "text": "one"}\n{"_id": "d2\\ufeff", "text": "two"}\n'
              '{"_id": " \\u2060d3\\u200b ", "text": "three"}\n'
              '{"_id": "d\\u200d4", "text": "four"}\n')
    queries = '{"_id": "q0", "text": "p"}\n{"_id": "\\ufeffq1\\u200e", "text": "q"}\n'
    qrels = {"test": HEADER + "q1\u200b\td1\t1\nq1\td2\u200b\t1\nq1\td3\t1\nq0\td\u200d4\t1\n"}
    with caplog.at_level(logging.WARNING, logger="dive.data.beir"):
        ds = load_beir(make_beir(corpus=corpus, queries=queries, qrels=qrels))
    assert ds.corpus_ids == ["d1", "d2", "d3", "d\u200d4"]  # inside an id they are kept
    assert ds.query_ids == ["q0", "q1"]
    assert ds.split("test") == {"q1": {"d1": 1, "d2": 1, "d3": 1}, "q0": {"d\u200d4": 1}}
    assert "not in" not in caplog.text


@pytest.mark.parametrize("ident", ["d1", "MED-10", "4983", "doc id", "d\u200d1", "\u00e9t\u00e9",
                                   "\U0001f469\u200d\U0001f4bb", "a\tb"])
def test_clean_ids_are_read_unchanged(ident: str) -> None:
    assert clean_id(ident) == ident


@pytest.mark.parametrize(
    ("corpus", "message"),
    [
        ('{"_id": "d1", "text": "a"}\n{"_id": "d1 ", "text": "b"}\n',
         r"^\S*corpus\.jsonl line 2: duplicate id 'd1' \(first on line 1; written 'd1 ': ids "
         r"are read without surrounding whitespace or invisible characters\)$"),
        ('{"_id": "d1", "text": "a"}\n{"_id": "\\u200bd1", "text": "b"}\n',
         r"corpus\.jsonl line 2: duplicate id 'd1' \(first on line 1; written '\\u200bd1': ids"),
        ('{"_id": " d1", "text": "a"}\n{"_id": "d1", "text": "b"}\n',
         r"corpus\.jsonl line 2: duplicate id 'd1' \(first on line 1; written ' d1': ids"),
        ('{"_id": 7, "text": "a"}\n{"_id": "7", "text": "b"}\n',
         r"corpus\.jsonl line 2: duplicate id '7' \(first on line 1\)$"),
        ('{"_id": "d1", "text": "a"}\n{"_id": " ", "text": "b"}\n',
         r"corpus\.jsonl line 2: bad '_id' ' '$"),
    ],
)
def test_ids_equal_after_stripping_are_duplicates(
    make_beir: MakeBeir, corpus: str, message: str
) -> None:
    with pytest.raises(DataError, match=message):
        load_beir(make_beir(corpus=corpus, qrels={"test": "q1\td1\t1\n"}))


def test_corrupt_gzip_is_a_data_error(make_beir: MakeBeir) -> None:
    folder = make_beir(gz=True)
    (folder / "queries.jsonl.gz").write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(DataError, match=r"queries\.jsonl\.gz: cannot read"):
        load_beir(folder)


def _corpus_with(bad_line: str) -> str:
    return json.dumps({"_id": "d1", "text": "ok"}) + "\n" + bad_line + "\n"


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('{"_id": "x", "text": ', r"corpus\.jsonl line 2: malformed JSON"),
        # the column where the line ends, not json's "column 1" of a line past its newline
        ('{"_id": "x", "text": "abc"', r"corpus\.jsonl line 2: malformed JSON \(Expecting ',' "
                                      r"delimiter at column 27\)$"),
        ('{"_id": "x", "text": "a\tb"}',  # json's message ends in "at": it read "at at"
         r"corpus\.jsonl line 2: malformed JSON \(Invalid control character at column 24\)$"),
        ('["_id", "text"]', r"corpus\.jsonl line 2: expected a JSON object, got list"),
        ('{"text": "no id"}', r"corpus\.jsonl line 2: missing '_id' field"),
        ('{"_id": "", "text": "empty id"}', r"corpus\.jsonl line 2: bad '_id' ''"),
        ('{"_id": "d\\n9", "text": "t"}',
         r"corpus\.jsonl line 2: '_id' 'd\\n9' contains a line break"),
        ('{"_id": "d9\\r", "text": "t"}',
         r"corpus\.jsonl line 2: '_id' 'd9\\r' contains a line break"),
        ('{"_id": "d9", "text": "cut \\ud83c"}',  # a traceback when encoded or hashed
         r"corpus\.jsonl line 2: a \\u escape encodes half a character"),
        ('{"_id": "d9"}', r"corpus\.jsonl line 2: missing 'text' field"),
        ('{"_id": "d9", "text": null}', r"corpus\.jsonl line 2: 'text' is null"),
        ('{"_id": null, "text": "t"}', r"corpus\.jsonl line 2: '_id' is null"),
        # a bool is an int to Python: true was read as the id "True"
        ('{"_id": true, "text": "t"}', r"corpus\.jsonl line 2: bad '_id' True$"),
        # in the id, not the text: it was kept, an id no UTF-8 file (ids, index) can hold
        ('{"_id": "d\\ud83d", "text": "t"}',
         r"corpus\.jsonl line 2: a \\u escape encodes half a character"),
        # a byte-order mark is dropped from line 1 only: further down it is not an editor's
        ('\ufeff{"_id": "d9", "text": "t"}',
         r"corpus\.jsonl line 2: malformed JSON \(Unexpected UTF-8 BOM"),
        ('{"_id": "d9", "text": 5}', r"corpus\.jsonl line 2: 'text' is not a string"),
        ('{"_id": "d9", "title": 5, "text": "t"}', r"corpus\.jsonl line 2: 'title' is not a"),
        ('{"_id": "d9", "title": false, "text": "t"}', r"corpus\.jsonl line 2: 'title' is not a"),
        ('{"_id": "d9", "title": [], "text": "t"}', r"corpus\.jsonl line 2: 'title' is not a"),
        # json.loads keeps the last value without a word
        ('{"_id": "d9", "_id": "d1", "text": "t"}',
         r"corpus\.jsonl line 2: the object has '_id' more than once \(JSON keeps only the "
         r"last\)$"),
        ('{"_id": "d9", "text": "a", "title": "x", "text": "b"}',
         r"corpus\.jsonl line 2: the object has 'text' more than once"),
        # a key written with an escape ("\u005fid" is "_id") was not seen: the last id won
        ('{"_id": "d9", "\\u005fid": "d1", "text": "t"}',
         r"corpus\.jsonl line 2: the object has '_id' more than once"),
        # tracebacks: json refuses integers of over 4300 digits, and recursion runs out
        ('{"_id": ' + "1" * 5000 + ', "text": "t"}',
         r"corpus\.jsonl line 2: malformed JSON \(a number with too many digits\)$"),
        ('{"_id": "d9", "text": "t", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
         r"corpus\.jsonl line 2: malformed JSON \(nested too deeply\)$"),
        (
            '{"_id": "d1", "text": "again"}',
            r"corpus\.jsonl line 2: duplicate id 'd1' \(first on line 1\)",
        ),
    ],
)
def test_bad_corpus_line_names_file_and_line(
    make_beir: MakeBeir, bad_line: str, message: str
) -> None:
    folder = make_beir(corpus=_corpus_with(bad_line), qrels={"test": "q1\td1\t1\n"})
    with pytest.raises(DataError, match=message):
        load_beir(folder)


def test_bad_queries_line_names_file_and_line(make_beir: MakeBeir) -> None:
    queries = '{"_id": "q1", "text": "a"}\n\n{"_id": "q1", "text": "b"}\n'
    with pytest.raises(
        DataError, match=r"queries\.jsonl line 3: duplicate id 'q1' \(first on line 1\)"
    ):
        load_beir(make_beir(queries=queries))
    with pytest.raises(DataError, match=r"queries\.jsonl line 1: missing 'text' field"):
        load_beir(make_beir("b", queries='{"_id": "q1", "title": "t"}\n'))
    with pytest.raises(DataError,
                       match=r"queries\.jsonl line 1: '_id' 'q\\n1' contains a line break"):
        load_beir(make_beir("c", queries='{"_id": "q\\n1", "text": "a"}\n'))


def test_invalid_utf8_names_the_line(make_beir: MakeBeir) -> None:
    folder = make_beir()
    path = folder / "corpus.jsonl"
    path.write_bytes(path.read_bytes() + b'{"_id": "d9", "text": "\xff"}\n')
    with pytest.raises(DataError, match=r"corpus\.jsonl line 5: not valid UTF-8"):
        load_beir(folder)


def test_a_byte_order_mark_on_the_first_line_is_dropped(make_beir: MakeBeir) -> None:
    """Some editors save UTF-8 with a byte-order mark: json refused it on line 1."""
    folder = make_beir(corpus='\ufeff{"_id": "d1", "text": "a"}\n',
                       queries='\ufeff{"_id": "q1", "text": "b"}\n',
                       qrels={"test": "\ufeffq1\td1\t1\n"})
    assert (folder / "corpus.jsonl").read_bytes().startswith(b"\xef\xbb\xbf")
    ds = load_beir(folder)
    assert (ds.corpus_ids, ds.query_ids, ds.qrels) == (["d1"], ["q1"], {"test": {"q1": {"d1": 1}}})


def test_empty_corpus_and_empty_queries_are_errors(make_beir: MakeBeir) -> None:
    with pytest.raises(DataError, match=r"corpus\.jsonl: the corpus is empty"):
        load_beir(make_beir("a", corpus="\n"))
    with pytest.raises(DataError, match=r"queries\.jsonl: no queries"):
        load_beir(make_beir("b", queries=""))


@pytest.mark.parametrize("missing", ["corpus.jsonl", "queries.jsonl"])
def test_missing_corpus_or_queries_file(tiny_beir: Path, missing: str) -> None:
    (tiny_beir / missing).unlink()
    with pytest.raises(DataError, match=rf"{missing}: missing \(nor is there {missing}\.gz\)"):
        load_beir(tiny_beir)


@pytest.mark.parametrize("name", ["qrels/train.tsv", "qrels/train.tsv.gz", "corpus.jsonl"])
def test_a_broken_link_or_folder_in_a_file_s_place_is_named(tiny_beir: Path, name: str) -> None:
    # Before, a broken qrels/train.tsv was read as no train split: every command then fell
    # back to splitting the test queries 50/50, without a word.
    plain = tiny_beir / name.removesuffix(".gz")
    (tiny_beir / "elsewhere.tsv").write_bytes(plain.read_bytes())
    plain.unlink()
    (tiny_beir / name).symlink_to(tiny_beir / "moved-away.tsv")
    with pytest.raises(DataError, match=rf"{re.escape(name)}: a broken symbolic link \(to "
                                        rf".*moved-away\.tsv\)"):
        load_beir(tiny_beir)
    (tiny_beir / name).unlink()
    (tiny_beir / name).mkdir()
    with pytest.raises(DataError, match=rf"{re.escape(name)}: a folder, not a file$"):
        load_beir(tiny_beir)
    (tiny_beir / name).rmdir()
    os.mkfifo(tiny_beir / name)  # read as missing, an unread train.tsv changed the split
    with pytest.raises(DataError, match=rf"{re.escape(name)}: not a regular file \(a pipe, "):
        load_beir(tiny_beir)
    (tiny_beir / name).unlink()
    (tiny_beir / "elsewhere.tsv").rename(plain)  # the same file in place loads as before
    assert "train" in load_beir(tiny_beir).qrels


def test_no_qrels_at_all(make_beir: MakeBeir) -> None:
    with pytest.raises(DataError, match=r"qrels: no qrels found \(expected one of train\.tsv"):
        load_beir(make_beir(qrels={}))
    with pytest.raises(DataError, match=r"qrels: no qrels found"):
        load_beir(make_beir("b", qrels={"extra": "q1\td1\t1\n"}))  # only known splits count


def test_a_qrels_file_of_no_split_is_named_in_a_warning(
    make_beir: MakeBeir, caplog: pytest.LogCaptureFixture
) -> None:
    # Train.tsv (on a case-sensitive file system) or valid.tsv would be dropped unsaid: the
    # run would then split the test queries 50/50 instead of training on these labels
    rows = HEADER + "q1\td1\t1\n"
    folder = make_beir(qrels={"test": rows, "Train": rows, "valid": rows})
    with caplog.at_level(logging.WARNING, logger="dive.data.beir"):
        assert set(load_beir(folder).qrels) == {"test"}
    assert re.search(r"qrels: Train\.tsv, valid\.tsv not read: the qrels splits are "
                     r"train\.tsv, dev\.tsv, test\.tsv", caplog.text)
    with pytest.raises(DataError, match=r"no qrels found \(.*; found only valid\.tsv\)$"):
        load_beir(make_beir("b", qrels={"valid": rows}))


def test_dev_labels_without_train_labels_are_said_to_be_unused(
    make_beir: MakeBeir, caplog: pytest.LogCaptureFixture
) -> None:
    """dev.tsv is read (a split of the dataset) but no fit or evaluation uses it: without a
    train.tsv its labels were left out without a word, and half of test.tsv trained."""
    rows = HEADER + "q1\td1\t1\n"
    with caplog.at_level(logging.WARNING, logger="dive.data.beir"):
        load_beir(make_beir("a", qrels={"test": rows, "dev": rows}))
        assert "dev.tsv is not used: without train.tsv" in caplog.text
        caplog.clear()
        load_beir(make_beir("b", qrels={"test": rows, "dev": rows, "train": rows}))
        assert "dev.tsv" not in caplog.text  # NFCorpus's layout: train.tsv trains
        caplog.clear()
        # dev.tsv alone: the warning spoke of a test.tsv that is not there
        load_beir(make_beir("c", qrels={"dev": rows}))
        assert ("dev.tsv is not used: without train.tsv or test.tsv there is nothing to learn "
                "from or measure with; rename dev.tsv train.tsv to learn from its labels, or "
                "test.tsv to measure with them\n") in caplog.text
        assert "half of test.tsv" not in caplog.text


def test_records_with_no_text_are_named_in_a_warning(
    make_beir: MakeBeir, caplog: pytest.LogCaptureFixture
) -> None:
    # a zero-width space or control characters alone embed as "" too (the tokenizer drops
    # them); they were not counted
    corpus = ('{"_id": "d1", "text": "one"}\n{"_id": "d2", "title": " ", "text": ""}\n'
              '{"_id": "d3", "text": "\\u200b"}\n{"_id": "d4", "text": "\\u0001 \\u0002"}\n')
    queries = '{"_id": "q1", "text": "q"}\n{"_id": "q2", "text": "  "}\n'
    folder = make_beir(corpus=corpus, queries=queries, qrels={"test": "q1\td1\t1\n"})
    with caplog.at_level(logging.WARNING, logger="dive.data.beir"):
        assert load_beir(folder).query_texts == ["q", "  "]  # kept, as the file has them
    assert re.search(r"corpus\.jsonl: 3 record\(s\) with no text, or only invisible "
                     r"characters \(first on line 2\)", caplog.text)
    assert re.search(r"queries\.jsonl: 1 record\(s\) with no text, or only invisible "
                     r"characters \(first on line 2\)", caplog.text)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere: no such dataset folder"):
        load_beir(tmp_path / "nowhere")


HEADER = "query-id\tcorpus-id\tscore\n"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("q1\td1\n", r"test\.tsv line 2: expected 3 tab-separated columns .* found 2"),
        ("q1\td1\t1\t0\n", r"test\.tsv line 2: expected 3 .* found 4"),
        ("q1 d1 1\n", r"test\.tsv line 2: expected 3 .* found 1"),
        ("q1\td1\t1\nq2\td2\t1.5\n", r"test\.tsv line 3: score '1\.5' is not an integer"),
        ("q1\td1\thigh\n", r"test\.tsv line 2: score 'high' is not an integer"),
        # int() reads it as 10, a grade no one wrote
        ("q1\td1\t1_0\n", r"test\.tsv line 2: score '1_0' is not an integer"),
        # int() refused it with a traceback (over 4300 digits); no grade has 19
        ("q1\td1\t" + "9" * 5000 + "\n",
         r"test\.tsv line 2: score '9{40}'\.\.\. \(5000 chars\) is too large for a grade "
         r"\(over 18 digits\)$"),
        ("q1\td1\t" + "9" * 19 + "\n", r"test\.tsv line 2: score '9{19}' is too large"),
        (
            "q9\td1\t1\nq8\td1\t1\n",
            r"test\.tsv: no judgement names a query id of queries\.jsonl \(first: line 2, query "
            r"id 'q9'\)",
        ),
        (
            "q1\td8\t1\nq2\td9\t1\n",
            r"test\.tsv: no judgement names a corpus id of corpus\.jsonl \(first: line 2, corpus "
            r"id 'd8'\)",
        ),
        ("", r"test\.tsv: no judgement rows"),
        # it judged a document "" that counted in the ideal ranking (a perfect run: 0.613)
        ("q1\td1\t1\nq1\t\t1\n", r"test\.tsv line 3: empty corpus-id$"),
        # a blank first or last field was "expected 3 tab-separated columns ..., found 2"
        ("q1\td1\t1\nq1\td1\t\n", r"test\.tsv line 3: empty score$"),
        ("q1\td1\t1\n\td1\t1\n", r"test\.tsv line 3: empty query-id$"),
        # a first field of whitespace only: a ValueError traceback ('' is not in list)
        ("q1\td1\t1\n \td1\t1\n", r"test\.tsv line 3: empty query-id$"),
        ("q1\td1\t0\nq2\td2\t-1\n", r"test\.tsv: no judgement has a positive grade"),
    ],
)
def test_bad_qrels_row_names_file_and_line(make_beir: MakeBeir, rows: str, message: str) -> None:
    folder = make_beir(qrels={"train": "q1\td1\t1\n", "test": HEADER + rows})
    with pytest.raises(DataError, match=message):
        load_beir(folder)


@pytest.mark.parametrize(("split", "rows", "problem"), [
    ("dev", "q1\td1\t0\n", "no judgement has a positive grade"),
    ("train", "q1\td1\t0\nq2\td2\t-1\n", "no judgement has a positive grade"),
    ("train", "q1\td8\t1\n", "no judgement names a corpus id of corpus.jsonl"),
    ("train", "q9\td1\t1\n", "no judgement names a query id of queries.jsonl"),
    ("train", "", "no judgement rows"),
])
def test_a_train_or_dev_file_without_a_usable_label_is_a_warning(
    make_beir: MakeBeir, caplog: pytest.LogCaptureFixture, split: str, rows: str, problem: str
) -> None:
    # every verb refused the dataset (embed included; no verb reads dev.tsv), where the
    # methods that need no label can still be scored on the test split
    from dive.data.splits import make_split

    folder = make_beir(qrels={split: HEADER + rows, "test": HEADER + "q1\td1\t1\nq2\td2\t1\n"})
    with caplog.at_level(logging.WARNING, logger="dive.data.beir"):
        dataset = load_beir(folder)
    assert f"{split}.tsv: {problem}" in caplog.text
    assert "it gives no label to learn from" in caplog.text
    assert "every score would be 0" not in caplog.text  # nothing is scored on it
    split_ = make_split(dataset, None, 0)
    if split == "train":  # measured on every test query, with no label to learn from
        assert split_.eval_ids == ("q1", "q2") and not split_.label_qrels
    else:  # dev.tsv is not read: half of test labels, as without it
        assert split_.source == "test-half" and len(split_.eval_ids) == 1


def _load_test_qrels(
    make_beir: MakeBeir, caplog: pytest.LogCaptureFixture, rows: str
) -> tuple[dict[str, dict[str, int]], str]:
    """The test split loaded from `rows`, and every warning it logged, one per line."""
    with caplog.at_level(logging.WARNING, logger="dive.data.beir"):
        qrels = load_beir(make_beir(qrels={"test": HEADER + rows})).split("test")
    return qrels, "\n".join(r.getMessage() for r in caplog.records)


def test_judgements_the_other_files_do_not_back_are_skipped_or_kept_with_a_warning(
    make_beir: MakeBeir, caplog: pytest.LogCaptureFixture
) -> None:
    # as in published BEIR files: a query missing from queries.jsonl (NFCorpus), a document
    # missing from corpus.jsonl (ArguAna)
    rows = "q1\td1\t1\nq9\td1\t1\nq2\td9\t2\nq8\td2\t1\nq2\td2\t1\nq1\td7\t1\n"
    qrels, warned = _load_test_qrels(make_beir, caplog, rows)
    # unknown queries skipped; unknown documents kept (nDCG's ideal counts them, as in BEIR)
    assert qrels == {"q1": {"d1": 1, "d7": 1}, "q2": {"d9": 2, "d2": 1}}
    assert re.search(r"test\.tsv: 2 judgement\(s\) name query ids not in queries\.jsonl "
                     r"\(first: line 3, query id 'q9'\); skipped", warned)
    assert re.search(r"test\.tsv: 2 judgement\(s\) name corpus ids not in corpus\.jsonl "
                     r"\(first: line 4, corpus id 'd9'\); kept", warned)


def test_a_pair_graded_again_keeps_its_last_grade_with_a_warning(
    make_beir: MakeBeir, caplog: pytest.LogCaptureFixture
) -> None:
    rows = "q1\td1\t1\nq1\td1\t2\nq2\td2\t1\nq2\td2\t0\n"
    qrels, warned = _load_test_qrels(make_beir, caplog, rows)
    assert qrels == {"q1": {"d1": 2}, "q2": {"d2": 0}}  # the last line wins, as in BEIR
    assert re.search(r"test\.tsv: 2 judgement\(s\) grade a pair judged earlier .* \(first: "
                     r"line 3, \('q1', 'd1'\)\); the last grade is kept", warned)


def test_a_grade_s_leading_zeros_do_not_count_as_digits(make_beir: MakeBeir) -> None:
    folder = make_beir(qrels={"test": HEADER + "q1\td1\t" + "0" * 30 + "2\n"})
    assert load_beir(folder).split("test") == {"q1": {"d1": 2}}


def test_repeated_identical_qrels_row_is_accepted(make_beir: MakeBeir) -> None:
    folder = make_beir(qrels={"test": HEADER + "q1\td1\t1\nq1\td1\t1\n"})
    assert load_beir(folder).split("test") == {"q1": {"d1": 1}}


def test_bad_row_in_gzipped_crlf_qrels_reports_its_line(make_beir: MakeBeir) -> None:
    folder = make_beir(qrels={})
    (folder / "qrels").mkdir()
    with gzip.open(folder / "qrels" / "dev.tsv.gz", "wb") as fh:
        fh.write(b"query-id\tcorpus-id\tscore\r\nq1\td1\t1\r\nq1\td2\tnope\r\n")
    with pytest.raises(DataError, match=r"dev\.tsv\.gz line 3: score 'nope' is not an integer"):
        load_beir(folder)


def test_plain_file_wins_over_gz_twin(
    make_beir: MakeBeir, caplog: pytest.LogCaptureFixture
) -> None:
    folder = make_beir()
    with gzip.open(folder / "queries.jsonl.gz", "wt") as fh:
        fh.write('{"_id": "gzq", "text": "stale"}\n')
    assert load_beir(folder).query_ids == ["q1", "q2", "q3"]
    assert "both exist" in caplog.text


def test_an_id_that_differs_only_in_its_unicode_form_is_named_as_such(
    make_beir: MakeBeir,
) -> None:
    """'café' (NFD, as macOS writes it) against a corpus id 'café' (NFC) printed two ids
    that look the same, with no hint why they did not match."""
    nfc = "caf\u00e9"
    folder = make_beir(corpus=f'{{"_id": "{nfc}", "text": "x"}}\n{{"_id": "d2", "text": "y"}}\n',
                       qrels={"test": HEADER + "q1\tcafe\u0301\t1\n"})
    with pytest.raises(DataError, match=re.escape(
            "no judgement names a corpus id of corpus.jsonl (first: line 2, corpus id "
            "'cafe\u0301', which differs from the known id 'caf\u00e9' only in its Unicode form "
            "('cafe\\u0301' against 'caf\\xe9'))")):
        load_beir(folder)


def test_the_unicode_form_hint_names_only_ids_equal_once_composed() -> None:
    """As `dive embed --from-npy` words an ids file's unknown id, beside the qrels' first."""
    assert form_hint("cafe\u0301", ["d1", "caf\u00e9"]) == (
        ", which differs from the known id 'caf\u00e9' only in its Unicode form ('cafe\\u0301' "
        "against 'caf\\xe9')")
    assert form_hint("cafe", ["caf\u00e9"]) == ""  # another word, not another form
    assert form_hint("K1", ["\u212a1"]).startswith(", which differs from the known id '\u212a1'")
    assert form_hint("caf\u00e8", ["caf\u00e9"]) == ""  # another letter, not another form
