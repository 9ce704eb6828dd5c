"""Every command and method spec README.md and docs/*.md quote parses with today's code.

Users copy commands from the docs, so a flag renamed in a parser or an option renamed in a
method is a broken promise. From each page's fenced code blocks (a line, its backslash
continuations joined) and inline backtick spans (which may wrap across lines), this checks:

- `dive VERB ...` and `python -m dive VERB ...`: parsed by `dive.cli.parsers.build_parser`,
  never run. A code-block line must parse whole. An inline span may be a fragment naming a
  verb's flag (`dive index --opq 12`, `dive search --rescore-vectors`): its missing required
  arguments, and a value missing after its last flag, are let pass, nothing else is.
- `python benchmarks/NAME.py ...` (and `cd benchmarks && python NAME.py ...`): parsed by
  the script's own `build_parser()` (the script is imported, never run); a script without
  one takes no arguments.
- In both, every flag is spelt in full and current: argparse takes an abbreviation, and the
  CLI a hidden old spelling (`--out`) for one release, but the docs show the spelling of today.
- Method specs: each `NAME:key=value...` naming a registered method in an inline span (a
  word of it, or an item of a comma-separated word), and each spec a parsed command passes
  (`--method`, `--methods`, `--spec`, `--baselines`), built by
  `dive.compressors.registry.make_compressor` (its options checked, nothing fitted). An old
  option name still taken with a `FutureWarning` counts as stale; a row label's `@v1` is
  dropped, and the specs in `REFUSED` must stay refused.

Left out: whether a command would succeed (its files, data and results), the `python` blocks
(test_readme.py and test_docs_own_data.py run some of them), the scripts' own docstrings,
`bash benchmarks/ablation.sh`, and bare options without a method name (`anchor_weight=0.3`).
What the docs write for a reader rather than a shell is filled in first: the placeholders in
`PLACEHOLDERS`, alternatives (`--precision float16|int8|binary`, `--from-parquet/--from-npy`:
each is checked) and a shell variable set earlier in the same block (`"$M"`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import os
import re
import shlex
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import util
from pathlib import Path
from types import ModuleType
from unittest import mock

import pytest

from dive.cli.parsers import _method_list, build_parser
from dive.compressors.registry import REGISTRY, make_compressor

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
PAGES = (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))

# Placeholders the docs write in a command for the reader to fill in, in capitals as `--help`
# writes a metavar; each becomes a value of the kind it stands for (None: dropped, `...` elides
# a run of values, `--seeds 0 1 ... 19`). Option values of a spec are filled in the same way.
PLACEHOLDERS: dict[str, str | None] = {
    "SPEC": "dive", "RESULTS": "results.jsonl", "FILE...": "results.jsonl", "DIR": "out",
    "M": "12", "N": "1000", "K": "500", "...": None,
}

# Specs the docs quote as refused on purpose: they must stay refused.
REFUSED: dict[str, str] = {
    "dive:lr=inf": "README's list of refused inputs: an option that is not a finite number",
}

# Where a quote is in a page: its first line.
Where = str
# Which argparse parser parses a command ("dive", or a benchmarks/ script's name).
Program = str

SHELL_SEPARATORS = {"&&", "||", ";", "|"}
SPEC_DESTS = ("method", "methods", "spec", "baselines")  # parsed values that are method specs
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*(\S*)")
SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=")
VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
VERB_WORD = re.compile(r"^([a-z][a-z-]*|-{1,2}[a-z][\w-]*)$")  # `dive` + this is a command
LABEL = re.compile(r"@v\d+$")  # a previous release's rows: `smec:basis=pca@v1`


@dataclass(frozen=True)
class Quote:
    """A code-block line (continuations joined) or an inline span (line breaks as spaces)."""

    where: Where
    text: str
    block: bool  # a code-block line; else an inline span, which may be a fragment
    variables: tuple[tuple[str, str], ...] = ()  # shell variables set earlier in the block


@dataclass(frozen=True)
class Command:
    """One command of a quote, as the program it runs would get its arguments."""

    where: Where
    program: Program
    argv: tuple[str, ...]
    fragment: bool  # an inline span's: a `dive` fragment may leave required arguments out

    def __str__(self) -> str:
        shown = "dive" if self.program == "dive" else f"python benchmarks/{self.program}.py"
        return f"{self.where}: `{' '.join([shown, *map(shlex.quote, self.argv)])}`"


def quotes(text: str, page: str) -> list[Quote]:
    """The code-block lines (not of `python` blocks) and inline spans of a Markdown page."""
    found: list[Quote] = []
    paragraph: list[tuple[int, str]] = []

    def end_paragraph() -> None:
        if paragraph:
            joined = "\n".join(line for _, line in paragraph)
            for m in SPAN.finditer(joined):
                number = paragraph[0][0] + joined.count("\n", 0, m.start())
                found.append(Quote(f"{page}:{number}", " ".join(m.group(2).split()), False))
            paragraph.clear()

    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            if lines[i].strip():
                paragraph.append((i + 1, lines[i]))
            else:
                end_paragraph()
            i += 1
            continue
        end_paragraph()
        i += 1
        variables: dict[str, str] = {}
        start, joined = 0, ""
        while i < len(lines) and not lines[i].strip().startswith(fence.group(1)):
            start, line = start or i + 1, lines[i]
            i += 1
            if line.rstrip().endswith("\\"):
                joined += line.rstrip()[:-1] + " "
                continue
            if fence.group(2) != "python":
                quote = Quote(f"{page}:{start}", (joined + line).strip(), True,
                              tuple(variables.items()))
                found.append(quote)
                variables.update(_assignments(quote))
            start, joined = 0, ""
        i += 1  # the closing fence
    end_paragraph()
    return found


def _words(quote: Quote) -> list[str]:
    """The quote split as a shell would, after the variables set before it (at spaces where
    its quotes do not pair: prose, or a command whose parse then shows the slip)."""
    values = dict(quote.variables)
    text = VARIABLE.sub(lambda m: values.get(m.group(1) or m.group(2), m.group(0)), quote.text)
    try:
        return shlex.split(text, comments=quote.block)
    except ValueError:
        return text.split()


def _assignments(quote: Quote) -> dict[str, str]:
    """A block line setting shell variables (`M="a,b"`): name -> value."""
    words = _words(quote)
    if not words or not all(ASSIGNMENT.match(w) for w in words):
        return {}
    return dict(w.split("=", 1) for w in words)


def commands(quote: Quote) -> list[Command]:
    """The `dive` and benchmark commands of a quote (one per `&&`-, `;`- or `|`-part)."""
    found: list[Command] = []
    in_benchmarks = False
    words = _words(quote)
    parts = [list(g) for sep, g in itertools.groupby(words, lambda w: w in SHELL_SEPARATORS)
             if not sep]
    for part in parts:
        if part[:1] == ["$"]:
            part = part[1:]  # a prompt
        while part and ASSIGNMENT.match(part[0]):
            part = part[1:]  # `VAR=value cmd`
        if part[:2] == ["cd", "benchmarks"]:
            in_benchmarks = True
            continue
        program, argv = _program(part, in_benchmarks)
        if program is not None:
            found.append(Command(quote.where, program, tuple(argv), not quote.block))
    return found


def _program(words: list[str], in_benchmarks: bool) -> tuple[Program | None, list[str]]:
    if words[:3] == ["python", "-m", "dive"]:
        words = ["dive", *words[3:]]
    if words and (words[0] == "dive" or words[0].endswith("/dive")):
        if len(words) > 1 and VERB_WORD.match(words[1]):
            return "dive", words[1:]
        return None, []
    if len(words) > 1 and words[0] in ("python", "python3") and words[1].endswith(".py"):
        script = Path(words[1])
        folder = script.parent.as_posix()
        if folder == "benchmarks" or (folder == "." and in_benchmarks):
            return script.stem, words[2:]
    return None, []


def page_quotes() -> Iterator[Quote]:
    for page in PAGES:
        yield from quotes(page.read_text(), page.relative_to(REPO).as_posix())


def page_commands(program: Callable[[Program], bool]) -> list[Command]:
    return [c for q in page_quotes() for c in commands(q) if program(c.program)]


# --- parsing -------------------------------------------------------------------------------


@cache
def dive_parser(loose: bool = False) -> argparse.ArgumentParser:
    """The `dive` parser; `loose`: no argument of a verb is required (for fragments)."""
    parser = build_parser()
    if loose:
        for verb in _verbs(parser).values():
            for action in verb._actions:
                action.required = False
                if not action.option_strings and action.nargs is None:
                    action.nargs = "?"
            for group in verb._mutually_exclusive_groups:
                group.required = False
    return parser


def _verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace | str:
    """The namespace, or argparse's error line (`--help` parses to an empty namespace)."""
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
        try:
            return parser.parse_args(argv)
        except SystemExit as exc:
            if exc.code == 0:
                return argparse.Namespace()
    return (errors.getvalue().strip().splitlines() or ["parse error"])[-1]


def _filled(argv: tuple[str, ...]) -> list[str]:
    return [v for a in argv if (v := PLACEHOLDERS.get(a, a)) is not None]


def _alternatives(argv: list[str]) -> list[list[str]]:
    """Each command a fragment's alternatives name: `a|b` values, `--a/--b` flags."""
    choices = [w.split("|") if "|" in w
               else w.split("/") if w.startswith("--") and "/--" in w else [w] for w in argv]
    return [list(combo) for combo in itertools.product(*choices)]


def _flags(argv: list[str]) -> list[str]:
    return [w.split("=", 1)[0] for w in argv if re.match(r"^-{1,2}[A-Za-z]", w)]


def _spelling(parsers: list[argparse.ArgumentParser], argv: list[str]) -> list[str]:
    """Each flag not spelt in full (argparse takes abbreviations) or spelt the old way."""
    actions = {o: a for p in parsers for o, a in p._option_string_actions.items()}
    problems = []
    for flag in _flags(argv):
        action = actions.get(flag)
        if action is None:
            problems.append(f"{flag} is not a flag")
        elif action.help == argparse.SUPPRESS:
            new = [o for o, a in actions.items() if a.dest == action.dest
                   and a.help != argparse.SUPPRESS]
            problems.append(f"{flag} is the old spelling of {' / '.join(new) or 'nothing now'}")
    return problems


def _given_specs(parser: argparse.ArgumentParser, argv: list[str],
                 namespace: argparse.Namespace) -> list[str]:
    """The method specs the command gives (not the parser's defaults)."""
    given = {parser._option_string_actions[f].dest for f in _flags(argv)
             if f in parser._option_string_actions}
    specs: list[str] = []
    for dest in SPEC_DESTS:
        value = getattr(namespace, dest, None)
        if dest not in given or not value:
            continue
        items = [value] if isinstance(value, str) else [str(v) for v in value]
        specs += _method_list(",".join(items))
    return specs


def dive_problem(command: Command) -> str | None:
    """Why the docs' `dive` command does not parse as written, or None."""
    verbs = _verbs(dive_parser())
    filled = _filled(command.argv)
    for argv in _alternatives(filled) if command.fragment else [filled]:
        verb = verbs.get(argv[0]) if argv else None
        if argv and argv[0] not in verbs and not argv[0].startswith("-"):
            return f"no verb {argv[0]!r}"
        problems = _spelling([dive_parser(), *([verb] if verb else [])], argv)
        if problems:
            return "; ".join(problems)
        parsed = _parse(dive_parser(), argv)
        if isinstance(parsed, str) and command.fragment:
            loose = argv[:-1] if argv[-1:] == _flags(argv)[-1:] else argv
            parsed = _parse(dive_parser(loose=True), loose)
        if isinstance(parsed, str):
            return parsed
        if verb is not None:
            for spec in _given_specs(verb, argv, parsed):
                if (problem := spec_problem(spec)) is not None:
                    return f"method {spec!r}: {problem}"
    return None


@cache
def script(name: str) -> ModuleType | None:
    """`benchmarks/NAME.py` imported (it reads `os.environ` at import: restored after)."""
    path = BENCHMARKS / f"{name}.py"
    if not path.is_file():
        return None
    spec = util.spec_from_file_location(f"{name}_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = util.module_from_spec(spec)
    sys.modules[spec.name] = module  # a dataclass looks its module up there
    with mock.patch.dict(os.environ), mock.patch.object(sys, "path",
                                                        [str(BENCHMARKS), *sys.path]):
        spec.loader.exec_module(module)  # scripts import their siblings (`from quality ...`)
    return module


def benchmark_problem(command: Command) -> str | None:
    """Why the docs' benchmark command does not parse with its script's parser, or None."""
    module = script(command.program)
    if module is None:
        return f"no script benchmarks/{command.program}.py"
    argv = _filled(command.argv)
    build: Callable[[], argparse.ArgumentParser] | None = getattr(module, "build_parser", None)
    if build is None:
        return "the script takes no arguments (it has no build_parser)" if argv else None
    parser = build()
    problems = _spelling([parser], argv)
    if problems:
        return "; ".join(problems)
    parsed = _parse(parser, argv)
    if isinstance(parsed, str):
        return parsed
    for spec in _given_specs(parser, argv, parsed):
        if (problem := spec_problem(spec)) is not None:
            return f"method {spec!r}: {problem}"
    return None


def spec_problem(spec: str) -> str | None:
    """Why `spec` is not a valid method spec today (an old option name counts), or None."""
    name, *options = spec.split(":")
    filled = [f"{k}={PLACEHOLDERS.get(v) or v}" if sep else k
              for k, sep, v in (o.partition("=") for o in options)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        try:
            make_compressor(":".join([name, *filled]), dim=96)
        except Exception as exc:  # any error is the finding
            return f"{type(exc).__name__}: {exc}"
    return None


def specs(found: Iterable[Quote]) -> list[tuple[Where, str]]:
    """The specs `NAME:key=value...` naming a registered method in inline spans that are not
    commands (a command's are checked as its parser reads them): a span's words, each split
    as `--methods` splits a list. A row label's trailing `@vN` is removed: the spec before it
    is what the docs say reproduces those rows."""
    names = "|".join(re.escape(n) for n in sorted(REGISTRY, key=len, reverse=True))
    spec = re.compile(rf"^({names}):[\w-]+=")
    found_specs = []
    for quote in found:
        if quote.block or commands(quote):
            continue
        for word in quote.text.split():
            try:
                items = _method_list(word)
            except argparse.ArgumentTypeError:  # an empty item: the word as it is
                items = [word]
            found_specs += [(quote.where, LABEL.sub("", i)) for i in items if spec.match(i)]
    return found_specs


def page_specs() -> list[tuple[Where, str]]:
    return specs(page_quotes())


# --- the tests -----------------------------------------------------------------------------


def _report(problems: list[str]) -> None:
    if problems:
        pytest.fail(f"{len(problems)} quoted in the docs do not parse:\n" + "\n".join(problems),
                    pytrace=False)


def test_every_dive_command_parses() -> None:
    _report([f"{c}: {p}" for c in page_commands(lambda p: p == "dive")
             if (p := dive_problem(c)) is not None])


def test_every_benchmark_command_parses_with_its_script() -> None:
    _report([f"{c}: {p}" for c in page_commands(lambda p: p != "dive")
             if (p := benchmark_problem(c)) is not None])


def test_every_quoted_method_spec_is_valid() -> None:
    problems = []
    for where, spec in page_specs():
        problem = spec_problem(spec)
        if spec in REFUSED:
            if problem is None:
                problems.append(f"{where}: `{spec}`: quoted as refused ({REFUSED[spec]}), "
                                "but it is taken now")
        elif problem is not None:
            problems.append(f"{where}: `{spec}`: {problem}")
    _report(problems)


def test_the_pages_quote_what_is_checked() -> None:
    # The extraction finding nothing would pass every test above: the docs quote plenty.
    assert len(page_commands(lambda p: p == "dive")) >= 50
    assert len(page_commands(lambda p: p != "dive")) >= 50
    assert len(page_specs()) >= 30


PAGE = """\
Fit with `dive fit --dataset d --method dive
--dim 96 --out m`; index with `dive index --opq M`.

```bash
M="dive:heads=1,pca"
dive evaluate --datasets d \\
    --methods "$M" --ratio 4
cd benchmarks && python speed.py --fits-only --method dive
```
Then `smec:stage_steps=100` and `dive:no_such=1@v1`.
"""


def test_a_stale_quote_is_reported_at_its_line() -> None:
    found = [c for q in quotes(PAGE, "p.md") for c in commands(q)]
    assert [(str(c), dive_problem(c) if c.program == "dive" else benchmark_problem(c))
            for c in found] == [
        ("p.md:1: `dive fit --dataset d --method dive --dim 96 --out m`",
         "--out is the old spelling of --output"),
        ("p.md:2: `dive index --opq M`", None),
        ("p.md:6: `dive evaluate --datasets d --methods dive:heads=1,pca --ratio 4`",
         "--ratio is not a flag"),
        ("p.md:8: `python benchmarks/speed.py --fits-only --method dive`",
         "--method is not a flag"),
    ]
    assert specs(quotes(PAGE, "p.md")) == [("p.md:10", "smec:stage_steps=100"),
                                           ("p.md:10", "dive:no_such=1")]
    assert spec_problem("smec:stage_steps=100") is None
    assert "unknown option(s) no_such" in str(spec_problem("dive:no_such=1"))
