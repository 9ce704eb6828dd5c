"""One CLI vocabulary: new spellings in `--help`, old ones still parsing, library errors
about values, not flags."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import pytest

import dive
from dive.cli import main
from dive.cli.errors import FLAG_OF_PARAM, error_line
from dive.cli.parsers import build_parser
from dive.cli.run import HANDLERS
from dive.errors import DataError, DiveError

FIT = ["fit", "--dataset", "d", "--method", "pca", "--dim", "8"]

# (verb, argv with the old spelling, argv with the new one): each must parse the same.
ALIASES = [
    ("evaluate", ["evaluate", "--dataset", "a,b"], ["evaluate", "--datasets", "a,b"]),
    ("evaluate", ["evaluate", "--datasets", "a", "--rescore", "0,4"],
     ["evaluate", "--datasets", "a", "--rescore-factors", "0,4"]),
    ("demo", ["demo", "--out", "runs/x", "--rescore", "4"],
     ["demo", "--output", "runs/x", "--rescore-factors", "4"]),
    ("report", ["report", "a.jsonl", "b.jsonl", "--out", "rep"],
     ["report", "--results", "a.jsonl", "b.jsonl", "--output", "rep"]),
    ("recommend", ["recommend", "a.jsonl", "b.jsonl", "--dataset", "s"],
     ["recommend", "--results", "a.jsonl", "b.jsonl", "--dataset", "s"]),
    ("embed", ["embed", "--dataset", "d", "--out", "e"],
     ["embed", "--dataset", "d", "--output", "e"]),
    ("fit", [*FIT, "--out", "m"], [*FIT, "--output", "m"]),
    ("export", ["export", "m", "--format", "onnx", "--out", "m.onnx"],
     ["export", "m", "--format", "onnx", "--output", "m.onnx"]),
    ("index", ["index", "m", "--embeddings", "e", "--out", "i.faiss"],
     ["index", "m", "--embeddings", "e", "--output", "i.faiss"]),
    ("search", ["search", "i", "m", "--query", "q", "--rescore-with", "f.npy"],
     ["search", "i", "m", "--query", "q", "--rescore-vectors", "f.npy"]),
    ("compress", ["compress", "m", "--input", "x", "--output", "y", "--column", "v"],
     ["compress", "m", "--input", "x", "--output", "y", "--vector-column", "v"]),
    ("compress", ["compress", "m", "--input", "x", "--out", "y"],
     ["compress", "m", "--input", "x", "--output", "y"]),
]

# What each verb's --help must show, and the old spellings it must not.
SHOWN = {
    "evaluate": (["--datasets", "--results", "--rescore-factors", "--rescore-with"],
                 ["--dataset", "--rescore"]),
    "demo": (["--dataset", "--output", "--rescore-factors"], ["--out", "--rescore"]),
    "report": (["--results", "--output"], ["--out"]),
    "recommend": (["--results", "--dataset"], []),
    "embed": (["--dataset", "--output", "--vector-column"], ["--out"]),
    "fit": (["--dataset", "--output"], ["--out"]),
    "export": (["--output"], ["--out"]),
    "index": (["--output"], ["--out"]),
    "search": (["--rescore-vectors", "--rescore-factor"], ["--rescore-with"]),
    "compress": (["--output", "--vector-column"], ["--column", "--out"]),
}


def _verbs() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return parser._subparsers._group_actions[0].choices  # type: ignore[union-attr,no-any-return]


def _flag(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])")


@pytest.mark.parametrize(("verb", "old", "new"), ALIASES, ids=[" ".join(a[1]) for a in ALIASES])
def test_an_old_spelling_parses_to_the_same_arguments(verb: str, old: list[str],
                                                      new: list[str]) -> None:
    parsed = vars(build_parser().parse_args(old))
    assert parsed == vars(build_parser().parse_args(new))
    assert parsed["verb"] == verb


@pytest.mark.parametrize(("argv", "dest", "want"), [
    (["evaluate", "--datasets", "a", "--methods", "pca", "--methods", "truncate,dive"],
     "methods", ["pca", "truncate", "dive"]),
    (["evaluate", "--datasets", "a", "--ratios", "4", "--ratios", "2"], "ratios", [4, 2]),
    (["evaluate", "--datasets", "a", "--datasets", "b"], "datasets", ["a", "b"]),
    (["evaluate", "--datasets", "a", "--rescore", "4", "--rescore-factors", "0"],
     "rescore_factors", None),  # old and new spelling together: refused, as before
    (["evaluate", "--datasets", "a", "--ratios", "8"], "ratios", [8]),  # once: the default goes
    (["demo"], "seeds", [0]),
    # a comma in an option's value stays in it (`1x10x3` was an unknown method); a name does not
    (["evaluate", "--datasets", "a", "--methods", "pca,dive:grid=0x1, 1x10x3@softplus:steps=2,"
      "truncate,dive:heads=1,truncat"], "methods",
     ["pca", "dive:grid=0x1,1x10x3@softplus:steps=2", "truncate", "dive:heads=1", "truncat"]),
    # only an option's value continues: a name that starts with a digit after a bare name (or
    # an option without a value) is a spec of its own, refused as an unknown method by name
    (["evaluate", "--datasets", "a", "--methods", "pca,2bits,dive:grid,0x1"], "methods",
     ["pca", "2bits", "dive:grid", "0x1"]),
])
def test_a_plural_flag_given_twice_takes_both_lists(argv: list[str], dest: str,
                                                    want: list[object] | None) -> None:
    # argparse kept only the last one: `--methods pca --methods truncate` ran truncate alone
    if want is None:
        with pytest.raises(SystemExit):
            build_parser().parse_args(argv)
    else:
        assert getattr(build_parser().parse_args(argv), dest) == want


@pytest.mark.parametrize(("argv", "flag", "times"), [
    (["fit", "--dataset", "a", "--dataset", "b", "--method", "pca", "--dim", "8", "--output",
      "m"], "--dataset", 2),
    (["fit", "--dataset", "a", "--method", "pca", "--dim", "48", "--dim=96", "--output", "m"],
     "--dim", 2),
    (["search", "i.faiss", "m", "-k", "3", "-k", "5", "--query", "x"], "-k", 2),
    # a prefix argparse reads as the flag (`--di` for `--dim`) got past the check: 96 dims
    (["fit", "--dataset", "a", "--method", "pca", "--dim", "48", "--di", "96", "--output",
      "m"], "--dim", 2),
    (["fit", "--dataset", "a", "--method", "pca", "--dim", "8", "--output", "m", "--outp=n"],
     "--output", 2),
])
def test_a_one_value_flag_given_twice_is_refused_not_last_wins(
    argv: list[str], flag: str, times: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dive fit --dataset time --dataset cisi --dim 48 --dim 96` fitted cisi at 96 dims,
    exit 0: argparse keeps the last value without a word."""
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert f"error: argument {flag}: given {times} times; give it once" in (
        capsys.readouterr().err)


@pytest.mark.parametrize("verb", sorted(SHOWN))
def test_help_shows_the_new_spellings_and_hides_the_old(
    verb: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([verb, "--help"])
    text = capsys.readouterr().out
    shown, hidden = SHOWN[verb]
    for name in shown:
        assert _flag(name).search(text), f"dive {verb} --help lacks {name}"
    for name in hidden:
        assert not _flag(name).search(text), f"dive {verb} --help shows the old {name}"


def test_every_verb_has_a_handler_and_every_hidden_alias_is_listed() -> None:
    verbs = _verbs()
    assert set(verbs) == set(HANDLERS) == set(SHOWN)
    for verb, sub in verbs.items():
        hidden = {s for a in sub._actions if a.help == argparse.SUPPRESS for s in a.option_strings}
        assert hidden == set(SHOWN[verb][1]), verb


@pytest.mark.parametrize("argv", [
    ["report", "a.jsonl", "--results", "b.jsonl", "--output", "r"],  # both spellings at once
    ["fit", *FIT[1:], "--out", "m", "--output", "n"],
])
def test_old_and_new_spelling_together_is_one_error_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "not allowed with" in err, err


def test_a_query_the_locale_could_not_decode_is_read_as_the_utf8_it_is() -> None:
    """With LC_ALL=C and UTF-8 mode off, Python keeps each byte of 'é' as a surrogate escape;
    the query was refused as 'not valid UTF-8', although every file is read as UTF-8."""
    args = build_parser().parse_args(["search", "i.faiss", "m", "--query",
                                      "\udcc3\udca9coulement"])
    assert args.query == ["écoulement"]


@pytest.mark.parametrize(("argv", "message"), [
    (["evaluate", "--datasets", "x", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["report", "--output", "r"], "the following arguments are required: --results"),
    (["fit", *FIT[1:]], "the following arguments are required: --output"),
    (["evaluate"], "the following arguments are required: --datasets"),
    # a file named '-' was written (index, export) or a folder made (report)
    (["index", "m", "--embeddings", "e", "--output", "-"],
     "argument --output: '-' (standard output): this verb writes files; give a path"),
    (["report", "--results", "r.jsonl", "--output", "-"], "argument --output: '-'"),
    # an empty path is the current folder: read (--embeddings), searched (--data-dir), or
    # replaced by the cache (embed --output)
    (["evaluate", "--datasets", "x", "--embeddings", ""],
     "argument --embeddings: expected a path, got ''"),
    (["fit", *FIT[1:], "--output", "m", "--data-dir", " "],
     "argument --data-dir: expected a path, got ' '"),
    (["embed", "--dataset", "x", "--output", ""], "argument --output: expected a path, got ''"),
    (["evaluate", "--datasets", "x", "--plot", ""], "argument --plot: expected a path, got ''"),
    (["embed", "--dataset", "x", "--from-npy", "c.npy", "--ids", ""],
     "argument --ids: expected a path, got ''"),
    (["embed", "--dataset", "x", "--from-npy", "c.npy", "--query-ids", " "],
     "argument --query-ids: expected a path, got ' '"),
    (["embed", "--dataset", "x", "--from-parquet", "c.parquet", "--queries-parquet", ""],
     "argument --queries-parquet: expected a path, got ''"),
    # a byte the locale could not decode: the tokenizer's traceback
    (["search", "i.faiss", "m", "--query", "caf\udce9 wing"],
     "argument --query: not valid UTF-8: 'caf\\udce9 wing'"),
    # int() reads "1_0" as 10 and Arabic-Indic digits as ASCII ones
    (["evaluate", "--datasets", "x", "--seeds", "1_0"],
     "argument --seeds: expected an integer, got '1_0'"),
    (["evaluate", "--datasets", "x", "--ratios", "\u0668"],
     "argument --ratios: expected an integer, got '\u0668'"),
    (["fit", *FIT[1:], "--output", "m", "--seed", str(2**63)],  # refused after the load
     f"argument --seed: expected an integer in 0..{2**63 - 1}, got {2**63}"),
    (["fit", *FIT[1:-1], "\u0664\u0668", "--output", "m"],
     "argument --dim: expected an integer, got '\u0664\u0668'"),
])
def test_a_bad_command_line_is_one_clear_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert "--out " not in err and "--dataset " not in err  # old spellings stay hidden


@pytest.mark.parametrize(("argv", "missing"), [
    (["fit", "--dataset", "d"], "--method, --dim, --output"),
    (["fit", "--dataset", "d", "--out", "m"], "--method, --dim"),  # an old spelling satisfies
    (["fit", "--dataset", "d", "--outp", "m"], "--method, --dim"),  # so does a prefix
    (["index", "m"], "--embeddings, --output"),
    (["report"], "--results, --output"),
    (["report", "r.jsonl"], "--output"),  # the results files, once positional
    (["report", "--", "r.jsonl"], "--output"),  # ... also after `--`
    (["recommend"], "--dataset, --results"),
    (["recommend", "--keep", "0.5"], "--dataset, --results"),  # 0.5 is --keep's, not a file
    (["search"], "INDEX_FILE, DIR, --query or --queries-npy"),
    (["search", "i.faiss", "m"], "--query or --queries-npy"),
    (["compress", "m"], "--input, --output"),
])
def test_every_missing_required_flag_is_named_at_once(
    argv: list[str], missing: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A required flag with a hidden old spelling is a required group, which argparse checks
    after the plain required flags and one at a time: `fit --dataset d` named --method and
    --dim, and once they were given, --output."""
    with pytest.raises(SystemExit):
        main(argv)
    assert capsys.readouterr().err == (f"dive {argv[0]}: error: the following arguments are "
                                       f"required: {missing} (see dive {argv[0]} --help)\n")


@pytest.mark.parametrize("verb", ["report", "recommend"])
def test_usage_shows_a_required_results_flag_as_required(
    verb: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Beside its hidden positional spelling `--results` was shown bracketed, as optional."""
    with pytest.raises(SystemExit):
        main([verb, "--help"])
    usage = " ".join(capsys.readouterr().out.split("\n\n", 1)[0].split())
    assert " --results RESULTS.jsonl [RESULTS.jsonl ...] " in usage
    assert "[--results" not in usage


def test_the_cli_adds_the_flag_of_the_parameter_an_error_is_about() -> None:
    assert error_line(DataError("x: no good", param="data_dir")) == "x: no good (--data-dir)"
    assert error_line(DiveError("x: no good")) == "x: no good"
    assert error_line(DiveError("x: no good", param="not_a_flag")) == "x: no good"
    every_flag = {s for sub in _verbs().values() for a in sub._actions for s in a.option_strings}
    assert set(FLAG_OF_PARAM.values()) <= every_flag


def _library_modules() -> list[Path]:
    root = Path(dive.__file__).parent
    return [p for p in sorted(root.rglob("*.py")) if p.relative_to(root).parts[0] != "cli"]


def _raised_strings(tree: ast.AST) -> list[tuple[int, str]]:
    return [(node.lineno, s.value) for node in ast.walk(tree) if isinstance(node, ast.Raise)
            for s in ast.walk(node) if isinstance(s, ast.Constant) and isinstance(s.value, str)]


def test_library_errors_speak_of_values_not_flags() -> None:
    # `--` at the end of a piece of an f-string: a flag named by a value (`--{what}`)
    flag = re.compile(r"(?<![\w-])--(?:[a-z]|$)")
    found = [f"{path.name}:{line}: {text!r}" for path in _library_modules()
             for line, text in _raised_strings(ast.parse(path.read_text()))
             if flag.search(text)]
    assert not found, found


def _named_params(node: ast.Call) -> list[ast.expr]:
    """The parameters a call names an error's `param` by: `param=...` or `about(...)`."""
    about = isinstance(node.func, ast.Name) and node.func.id == "about"
    return [*(node.args if about else []), *(kw.value for kw in node.keywords
                                             if kw.arg == "param")]


def test_every_parameter_a_library_error_names_has_a_flag() -> None:
    modules = [*_library_modules(), *(Path(dive.__file__).parent / "cli").glob("*.py")]
    params = {value.value for path in modules
              for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)
              for value in _named_params(node) if isinstance(value, ast.Constant)}
    assert {"budgets", "method"} <= params
    assert params and params <= set(FLAG_OF_PARAM), params - set(FLAG_OF_PARAM)
