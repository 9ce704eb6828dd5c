"""Load a retrieval dataset stored in the BEIR layout into plain Python lists.

Layout (each file may also be gzipped, e.g. `corpus.jsonl.gz`)::

    <folder>/corpus.jsonl        one JSON object a line: `_id`, `title` (optional), `text`
    <folder>/queries.jsonl       one JSON object a line: `_id`, `text`
    <folder>/qrels/{train,dev,test}.tsv   `query-id<TAB>corpus-id<TAB>score`, header optional

Document text is `(title + " " + text).strip()`, the BEIR convention. Ids (`_id`, the qrels
columns) are read without surrounding whitespace or invisible format characters (`clean_id`),
so `"d1 "` or `"\\u200bd1"` in the corpus is the `d1` the qrels judge; two records of a file
whose ids are then equal are duplicates. Every judgement row is
kept, grade 0 included (trec_eval counts them as judged non-relevant). Any inconsistency is a
`DataError` naming the file and line: this module fails loudly rather than silently dropping
rows, so a benchmark never runs on a quietly truncated dataset.

Left out: embedding, label budgets and query splits (`dive.data.splits`), finding or
downloading a dataset by name (`dive.data.download`), qrels files other than train/dev/test
(BEIR publishes no others; any other file in `qrels/` is named in a warning, since a
`Train.tsv` or `valid.tsv` left unread would silently change the split), and TREC-format
(4-column) qrels.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import unicodedata
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeAlias

from dive._io import as_path, not_a_file
from dive.arrays import is_blank, is_integer_text, is_utf8
from dive.errors import DataError, quoted

logger = logging.getLogger(__name__)

Qrels: TypeAlias = dict[str, dict[str, int]]
"""Relevance judgements of one split: query id -> corpus id -> integer grade."""

SPLITS: tuple[str, ...] = ("train", "dev", "test")
_QRELS_HEADER = ("query-id", "corpus-id", "score")
_FIELDS = ("_id", "title", "text")  # the fields of a record read here
_QUOTED_FIELD = re.compile('"(' + "|".join(_FIELDS) + ')"')
# a short key (the fields above are 5 characters at most) written with a \u escape
_ESCAPED_KEY = re.compile(r'"[^"\\]{0,4}\\u[0-9a-fA-F]{4}[^"]{0,30}"\s*:')
_GRADE_DIGITS = 18  # more is no grade (and int() refuses over 4300 digits with a traceback)


@dataclass(frozen=True)
class Dataset:
    """A BEIR-layout dataset held in memory, rows in file order.

    `qrels` holds only the splits present on disk. The big lists are left out of `repr` so a
    dataset in a log line or traceback stays one line.
    """

    name: str
    path: Path
    corpus_ids: list[str] = field(repr=False)
    corpus_texts: list[str] = field(repr=False)  # title + " " + text, stripped
    query_ids: list[str] = field(repr=False)
    query_texts: list[str] = field(repr=False)
    qrels: dict[str, Qrels] = field(repr=False)  # split name -> qrels

    def __post_init__(self) -> None:
        if len(self.corpus_ids) != len(self.corpus_texts):
            raise ValueError("corpus_ids and corpus_texts differ in length")
        if len(self.query_ids) != len(self.query_texts):
            raise ValueError("query_ids and query_texts differ in length")

    def identical_ids(self) -> frozenset[str]:
        """The queries that are documents of the corpus too: the document with the query's
        id is the query's text, alone (Quora) or after a shorter title (ArguAna). Each is
        never a hit for itself (BEIR's ignore_identical_ids), unless its qrels judge that
        document relevant: the judgement wins (left out, it scored 0 without a word).
        Elsewhere a shared id is a coincidence of numbering (Cranfield query 23 is not
        document 23): nothing is left out, also where that document merely contains a short
        query's words."""
        return self._identical_ids

    @cached_property
    def _identical_ids(self) -> frozenset[str]:
        """`identical_ids`, found once per dataset (every split asks)."""
        text_of = dict(zip(self.corpus_ids, self.corpus_texts, strict=True))

        def is_document(query_id: str, text: str) -> bool:
            doc, text = text_of.get(query_id, ""), text.strip()  # document texts are stripped
            title = len(doc) - len(text) - 1  # the length of what comes before " " + text
            return bool(text) and (doc == text or (doc.endswith(" " + text)
                                                   and title < len(text)))

        def judged_relevant(query_id: str) -> bool:  # a judgement wins over the convention
            return any(judged.get(query_id, {}).get(query_id, 0) > 0
                       for judged in self.qrels.values())

        found = [q for q, text in zip(self.query_ids, self.query_texts, strict=True)
                 if is_document(q, text)]
        kept = [q for q in found if judged_relevant(q)]
        if kept:  # left out, each scored 0 against its own judgement without a word
            logger.warning("%s: %d queries (first %r) judge the document with their own id "
                           "and text relevant; it stays a hit (only unjudged twins are left "
                           "out of their own results)", self.path, len(kept), kept[0])
        return frozenset(found).difference(kept)

    def split(self, name: str) -> Qrels:
        """The qrels of split `name`, or a `DataError` listing the splits this dataset has."""
        try:
            return self.qrels[name]
        except KeyError:
            available = ", ".join(self.qrels) or "none"
            raise DataError(
                f"{self.path}: dataset {self.name!r} has no {name!r} qrels split "
                f"(available: {available})"
            ) from None


def clean_id(text: str) -> str:
    """An id as dive reads it (a dataset's, an imported file's): without the whitespace or the
    invisible format characters around it (Unicode category Cf: the zero-width space U+200B,
    the byte-order mark U+FEFF, ...), which editors and copy-paste leave there unseen. Inside
    an id they are kept."""
    text = text.strip()
    if not text or not (_is_format(text[0]) or _is_format(text[-1])):
        return text
    start, end = 0, len(text)
    while start < end and (text[start].isspace() or _is_format(text[start])):
        start += 1
    while end > start and (text[end - 1].isspace() or _is_format(text[end - 1])):
        end -= 1
    return text[start:end]


def _is_format(char: str) -> bool:
    return unicodedata.category(char) == "Cf"


def _layout_hint(line: str) -> str:
    """Which other qrels layout a refused line reads as, if one: TREC's four columns (drop the
    second), or three fields split by spaces or commas."""
    words = line.split()
    if len(words) == 4:
        return "; TREC's four-column qrels need their second column dropped"
    if "\t" in line:  # tab-separated, with a column too many or too few
        return ""
    for name, fields in (("spaces", words), ("commas", line.split(","))):
        if len(fields) == 3:
            return f"; the line is split by {name}: write tabs between the columns"
    return ""


def _looks_like_header(line: str) -> bool:
    """A qrels header: three or more column names (tab-, space- or comma-separated), the
    last of them not a number (a judgement's last column is its grade)."""
    names = [name for name in re.split(r"[\t ,]+", line) if name]
    return len(names) >= 3 and not _is_number(names[-1])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_beir(path: str | Path, *, name: str | None = None) -> Dataset:
    """Read the BEIR-layout folder `path`; `name` defaults to the folder's name.

    Raises `DataError` (one line, naming file and line) for a missing file (or a broken
    symbolic link or folder in a file's place), malformed JSON, a
    missing `_id`/`text`, duplicate ids, an empty corpus or query file, a malformed qrels row,
    and a test qrels file that labels nothing: no row, no positive grade, or ids that match
    none of the dataset's (a train or dev file like that is a warning). A qrels row naming a
    query that is not in the dataset is skipped and one naming a missing document kept, each
    with a warning: published BEIR files hold a few (`_read_qrels`).
    """
    folder = as_path(path, "load_beir: path", "the path of a BEIR folder")
    if not folder.is_dir():
        raise DataError(f"{folder}: no such dataset folder")
    corpus_path = _find_file(folder, "corpus.jsonl", required=True)
    queries_path = _find_file(folder, "queries.jsonl", required=True)
    assert corpus_path is not None and queries_path is not None  # required=True raised otherwise

    corpus_ids, corpus_texts, corpus_lines = _read_jsonl(corpus_path, with_title=True)
    if not corpus_ids:
        raise DataError(f"{corpus_path}: the corpus is empty")
    query_ids, query_texts, query_lines = _read_jsonl(queries_path, with_title=False)
    if not query_ids:
        raise DataError(f"{queries_path}: no queries")

    qrels: dict[str, Qrels] = {}
    qrels_dir = folder / "qrels"
    for split in SPLITS:
        split_path = _find_file(qrels_dir, f"{split}.tsv", required=False)
        if split_path is not None:
            qrels[split] = _read_qrels(
                split_path,
                queries=query_lines,
                corpus=corpus_lines,
                names=(queries_path.name, corpus_path.name),
                measured=split == "test",
            )
    unread = _unread_qrels(qrels_dir)
    expected = ", ".join(f"{s}.tsv" for s in SPLITS)
    if not qrels:
        found = f"; found only {', '.join(unread)}" if unread else ""
        raise DataError(f"{qrels_dir}: no qrels found (expected one of {expected}{found})")
    if unread:  # e.g. Train.tsv or valid.tsv: labels the user meant to be used
        logger.warning("%s: %s not read: the qrels splits are %s (each may be gzipped)",
                       qrels_dir, ", ".join(unread), expected)
    if "dev" in qrels and "train" not in qrels:  # labels the user likely meant to learn from
        without = ("without train.tsv, a fit learns from half of test.tsv's queries and is "
                   "measured on the other half; rename dev.tsv train.tsv to learn from its "
                   "labels" if "test" in qrels else
                   "without train.tsv or test.tsv there is nothing to learn from or measure "
                   "with; rename dev.tsv train.tsv to learn from its labels, or test.tsv to "
                   "measure with them")
        logger.warning("%s: dev.tsv is not used: %s", qrels_dir, without)
    dataset = Dataset(
        name=name if name is not None else folder.name,
        path=folder,
        corpus_ids=corpus_ids,
        corpus_texts=corpus_texts,
        query_ids=query_ids,
        query_texts=query_texts,
        qrels=qrels,
    )
    logger.info(
        "loaded %s: %d docs, %d queries, qrels %s",
        dataset.name,
        len(corpus_ids),
        len(query_ids),
        ", ".join(f"{s}={sum(len(d) for d in q.values())}" for s, q in qrels.items()),
    )
    return dataset


def _unread_qrels(qrels_dir: Path) -> list[str]:
    """The files of `qrels_dir` that are no split's file (`_find_file` reads only those)."""
    if not qrels_dir.is_dir():
        return []
    read = {f"{split}.tsv{gz}" for split in SPLITS for gz in ("", ".gz")}

    def is_read(file: Path) -> bool:  # Train.tsv is train.tsv where names ignore case (macOS)
        twin = qrels_dir / file.name.lower()
        return file.name in read or (twin.name in read and twin.is_file()
                                     and os.path.samefile(file, twin))

    return sorted(p.name for p in qrels_dir.iterdir()
                  if p.is_file() and not p.name.startswith(".") and not is_read(p))


def _find_file(folder: Path, filename: str, *, required: bool) -> Path | None:
    """`folder/filename`, else its `.gz` twin; the plain file wins when both exist.

    A name there that is no readable file (a broken symbolic link, a folder) is an error: read
    as missing, a `qrels/train.tsv` left unread would silently change the split."""
    plain = folder / filename
    gz = folder / f"{filename}.gz"
    for path in (plain, gz):
        problem = not_a_file(path)
        if problem is not None:
            raise DataError(f"{path}: {problem}")
    if plain.is_file():
        if gz.is_file():
            logger.warning("%s and %s both exist; reading %s", plain, gz.name, plain.name)
        return plain
    if gz.is_file():
        return gz
    if required:
        raise DataError(f"{plain}: missing (nor is there {gz.name})")
    return None


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, decoded line) of a plain or gzipped UTF-8 text file.

    Reads bytes and decodes each line itself so that a bad byte is reported at its exact
    line, and splits on b"\\n" only, so CRLF leaves a trailing "\\r" for callers to strip.
    """
    lineno = 0
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as handle:
            for lineno, raw in enumerate(handle, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(
                        f"{path} line {lineno}: not valid UTF-8 (byte {exc.start})"
                    ) from None
                if lineno == 1 and line.startswith("\ufeff"):
                    line = line[1:]  # a byte-order mark some editors add
                yield lineno, line
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read after line {lineno}: {exc}") from None


def _read_jsonl(path: Path, *, with_title: bool) -> tuple[list[str], list[str], dict[str, int]]:
    """Ids, texts and id -> line number of a corpus (`with_title`) or queries file."""
    ids: list[str] = []
    texts: list[str] = []
    seen: dict[str, int] = {}
    padded: dict[str, str] = {}  # id -> the id as written, where whitespace was stripped
    empty: list[int] = []  # lines of records with no text: they embed as the empty string
    for lineno, line in _lines(path):
        if not line.strip():
            continue  # blank lines, e.g. a trailing one, carry no record
        try:
            obj: Any = json.loads(line)
        except json.JSONDecodeError as exc:
            # the column in the line, not past its newline (json's "line 2 column 1"), and
            # "Invalid control character at" without a second "at"
            column = min(exc.pos, len(line.rstrip("\r\n"))) + 1
            raise DataError(f"{path} line {lineno}: malformed JSON "
                            f"({exc.msg.removesuffix(' at')} at column {column})") from None
        except ValueError:  # json reads an integer of over 4300 digits no further (CVE-2020-10735)
            raise DataError(f"{path} line {lineno}: malformed JSON (a number with too many "
                            "digits)") from None
        except RecursionError:
            raise DataError(f"{path} line {lineno}: malformed JSON (nested too deeply)") from None
        if not isinstance(obj, dict):
            raise DataError(
                f"{path} line {lineno}: expected a JSON object, got {type(obj).__name__}"
            )
        repeated = _repeated_field(line)
        if repeated is not None:
            raise DataError(f"{path} line {lineno}: the object has {repeated!r} more than once "
                            "(JSON keeps only the last)")
        record_id = _field_id(obj, path, lineno)
        written = obj["_id"]
        text = obj.get("text")
        if not isinstance(text, str):
            problem = ("missing 'text' field" if "text" not in obj else
                       "'text' is null" if text is None else "'text' is not a string")
            raise DataError(f"{path} line {lineno}: {problem}")
        first = seen.setdefault(record_id, lineno)
        if first != lineno:
            raise DataError(f"{path} line {lineno}: duplicate id {quoted(record_id)} "
                            f"(first on line {first}{_as_written(written, padded.get(record_id))})")
        if isinstance(written, str) and written != record_id:
            padded[record_id] = written
        if with_title:
            title = obj.get("title")
            if title is None:  # missing or null: no title
                title = ""
            if not isinstance(title, str):  # also false, 0, [] (`or ""` let those pass as "")
                raise DataError(f"{path} line {lineno}: 'title' is not a string")
            text = f"{title} {text}".strip()
        if not is_utf8(record_id + text):  # a lone surrogate escape, e.g. a cut emoji
            raise DataError(f"{path} line {lineno}: a \\u escape encodes half a character "
                            "(a lone surrogate, e.g. an emoji cut in two)")
        if is_blank(text):
            empty.append(lineno)
        ids.append(record_id)
        texts.append(text)
    if empty:
        logger.warning("%s: %d record(s) with no text, or only invisible characters (first "
                       "on line %d); each is embedded as the empty string", path, len(empty),
                       empty[0])
    return ids, texts, seen


def _repeated_field(line: str) -> str | None:
    """The field read here (`_id`, `title`, `text`) that the line's object has twice, if any.

    The line is parsed again, keeping every key, only when its text names a field twice:
    `json.loads` keeps the last value without a word, so `{"_id": "d1", "_id": "d2"}` was d2.
    """
    named = _QUOTED_FIELD.findall(line)  # one scan: a quarter of three str.count's time
    escaped_key = "\\u" in line and _ESCAPED_KEY.search(line)  # "\u005fid" is "_id" too
    if len(named) == len(set(named)) and not escaped_key:
        return None
    pairs = json.loads(line, object_pairs_hook=lambda items: items)  # the top level's keys
    keys = [key for key, _ in pairs]
    return next((name for name in _FIELDS if keys.count(name) > 1), None)


def _as_written(written: object, first: str | None) -> str:
    """How a duplicate's ids were written, where `clean_id` made them equal; else ""."""
    forms = [repr(w) for w in (first, written) if isinstance(w, str) and w != clean_id(w)]
    if not forms:
        return ""
    return (f"; written {' and '.join(forms)}: ids are read without surrounding whitespace or "
            "invisible characters")


def _field_id(obj: dict[str, Any], path: Path, lineno: int) -> str:
    # Integer ids are accepted and made strings: qrels are text, so an int id would never match.
    # A string id is cleaned (`clean_id`), as qrels columns are: "d1 " in the corpus and "d1"
    # in the qrels are one document (unstripped, it was never judged).
    value = obj.get("_id")
    if isinstance(value, str) and clean_id(value):
        if "\n" in value or "\r" in value:  # ids are written one a line (ids files, indexes)
            raise DataError(f"{path} line {lineno}: '_id' {value!r} contains a line break")
        return clean_id(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    problem = ("missing '_id' field" if "_id" not in obj else
               "'_id' is null" if value is None else f"bad '_id' {value!r}")
    raise DataError(f"{path} line {lineno}: {problem}")


def _read_qrels(
    path: Path, *, queries: dict[str, int], corpus: dict[str, int], names: tuple[str, str],
    measured: bool = True,
) -> Qrels:
    """One qrels split; `queries`/`corpus` are the known ids, `names` their file names.

    Published BEIR files hold a few judgements the other files do not back (ArguAna judges a
    document missing from its corpus, NFCorpus a query missing from its queries), so these
    are not errors: a judgement of an unknown query is skipped (it has no text to search
    with); one of an unknown document is kept, so it counts in nDCG's ideal ranking as in
    BEIR's own evaluation (pytrec_eval), though no method can retrieve it. Each kind is
    logged once per file with its count and first line, as is a pair graded again
    otherwise (the last grade is kept, as BEIR's loader keeps it). A file none of whose
    judgements names a known query, or a known document, is an error: its ids do not match;
    so is one without a positive grade (nothing is relevant: every score would be 0). Those
    are errors of the `measured` split (test) only: a train or dev file without a usable
    label is a warning, so that the methods that need no label still run (every verb
    refused the dataset, `embed` included, for a dev file no verb reads).
    """
    def unusable(problem: str) -> None:
        if measured:
            raise DataError(f"{path}: {problem}")
        logger.warning("%s: %s; it gives no label to learn from", path, problem)

    qrels: Qrels = {}
    odd: dict[str, tuple[int, int, str]] = {}  # kind -> (count, first line, first id)
    known_docs = 0
    header_possible = True
    for lineno, line in _lines(path):
        stripped = line.strip()
        if not stripped:
            continue
        cols = [clean_id(c) for c in stripped.split("\t")]
        if header_possible:
            header_possible = False
            # BEIR's header, or another's of any names (query_id corpus_id relevance, space-
            # or comma-separated, TREC's four...): three or more names, the last no number.
            # Anything else is a judgement, read (or refused) as any other line: BEIR's
            # loader skips the first line whatever it holds, and so dropped without a word a
            # first judgement of another layout (`q1 d1 2`, a fourth column, no score).
            if _looks_like_header(stripped):
                continue
        if len(cols) != 3:
            edges = line.rstrip("\r\n").split("\t")
            if len(edges) == 3:  # a blank first or last field, which the strip took
                blank = _QRELS_HEADER[[clean_id(c) for c in edges].index("")]
                raise DataError(f"{path} line {lineno}: empty {blank}")
            raise DataError(
                f"{path} line {lineno}: expected 3 tab-separated columns "
                f"(query-id, corpus-id, score), found {len(cols)}{_layout_hint(stripped)}"
            )
        query_id, doc_id, score = cols
        if not doc_id:  # a document "" counted in the query's ideal ranking
            raise DataError(f"{path} line {lineno}: empty corpus-id")
        if not is_integer_text(score):
            raise DataError(f"{path} line {lineno}: score {quoted(score, 40)} is not an integer")
        if len(score) > _GRADE_DIGITS and len(score.lstrip("+-").lstrip("0")) > _GRADE_DIGITS:
            raise DataError(f"{path} line {lineno}: score {quoted(score, 40)} is too large for a "
                            f"grade (over {_GRADE_DIGITS} digits)")
        grade = int(score)
        if query_id not in queries:
            _count(odd, "query", lineno, query_id)
            continue
        if doc_id in corpus:
            known_docs += 1
        else:
            _count(odd, "corpus", lineno, doc_id)
        judged = qrels.setdefault(query_id, {})
        previous = judged.setdefault(doc_id, grade)
        if previous != grade:
            _count(odd, "regraded", lineno, f"({query_id!r}, {doc_id!r})")
            judged[doc_id] = grade
    mismatch = _report_odd(path, odd, matched=(bool(qrels), known_docs > 0), names=names,
                           known=(queries, corpus))
    if mismatch is not None:
        unusable(mismatch)
    elif not qrels:
        unusable("no judgement rows")
    elif not any(grade > 0 for judged in qrels.values() for grade in judged.values()):
        unusable("no judgement has a positive grade, so no document is relevant to any query"
                 + (" (every score would be 0)" if measured else ""))
    return qrels


def _report_odd(
    path: Path, odd: dict[str, tuple[int, int, str]], *, matched: tuple[bool, bool],
    names: tuple[str, str], known: tuple[dict[str, int], dict[str, int]],
) -> str | None:
    """Warn once per kind of odd judgement in `path`; if no query (`matched[0]`) or no
    document (`matched[1]`) of the file is known, its ids do not match at all: that problem,
    in words (None: they match). `known` holds the query and corpus ids, to name one the
    first unknown id differs from only in its Unicode form."""
    if "regraded" in odd:
        count, lineno, pair = odd["regraded"]
        logger.warning("%s: %d judgement(s) grade a pair judged earlier in the file otherwise "
                       "(first: line %d, %s); the last grade is kept, as BEIR's loader keeps it",
                       path, count, lineno, pair)
    for kind, name, found, ids in (("query", names[0], matched[0], known[0]),
                                   ("corpus", names[1], matched[1], known[1])):
        if kind in odd:
            count, lineno, ident = odd[kind]
            first = f"first: line {lineno}, {kind} id {quoted(ident)}{form_hint(ident, ids)}"
            if not found:
                return f"no judgement names a {kind} id of {name} ({first})"
            what = ("skipped (no query text)" if kind == "query" else
                    "kept: they count in nDCG's ideal, as in BEIR, but cannot be retrieved")
            logger.warning("%s: %d judgement(s) name %s ids not in %s (%s); %s", path, count,
                           kind, name, first, what)
    return None


def form_hint(ident: str, known: Iterable[str]) -> str:
    """Where `ident` and a known id differ only in Unicode form (NFC/NFD, which print alike:
    one file written on macOS, one elsewhere), a note naming both by their code points."""
    target = unicodedata.normalize("NFC", ident)
    match = next((k for k in known if unicodedata.normalize("NFC", k) == target), None)
    if match is None:
        return ""
    return (f", which differs from the known id {quoted(match)} only in its Unicode form "
            f"({ident!a} against {match!a})")


def _count(odd: dict[str, tuple[int, int, str]], kind: str, lineno: int, ident: str) -> None:
    """Count one odd judgement of `kind` (an unknown query or corpus id, a pair graded again),
    keeping the first line and what it named."""
    count, first, first_id = odd.get(kind, (0, lineno, ident))
    odd[kind] = (count + 1, first, first_id)
