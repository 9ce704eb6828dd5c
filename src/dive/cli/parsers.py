"""The `dive` command line's vocabulary: one small parser builder per verb.

One flag means one thing in every verb: `--output` is where a verb writes, `--results` the
results JSONL file(s), a plural (`--datasets`, `--methods`, `--rescore-factors`) takes a
comma-separated list (every list, when given twice: `Joined`) and its singular one value.
Spellings replaced for this (`--out`, `evaluate --dataset`, `evaluate --rescore`, `search
--rescore-with`, `compress --column`, and results files given positionally) still parse, as
hidden aliases kept for one release: `--help` shows only the new spellings. What each verb
does is `dive.cli`'s; this module only describes its arguments, so the parser is testable
without running anything.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from dive import __version__
from dive._io import refuse_folder_form, user_path
from dive.arrays import SEED_LIMIT, is_blank, is_integer_text, is_utf8
from dive.cli.stdout import stdout_failed
from dive.errors import DiveError

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

OVERWRITE_HELP = ("replace an existing output of the kind this command writes (README, "
                  "'--overwrite': what each verb checks); anything else is never replaced")
DATA_DIR_HELP = ("folder of BEIR datasets by name, looked in first (then $DIVE_DATA, the "
                 "cache, a folder of that name here, a download)")
EMBEDDING_MODEL_HELP = ("sentence-transformers model name or path (embeddings folder name; "
                        "default: the model --embeddings' meta.json names, else "
                        "all-MiniLM-L6-v2)")
RESCORE_FACTOR = 4  # `search`: index candidates per hit that --rescore-vectors re-ranks


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help with each option's default, except an unset one (`None` says nothing)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return action.help if action.default is None else super()._get_help_string(action)

    def add_usage(self, usage: str | None, actions: Iterable[argparse.Action],
                  groups: Iterable[argparse._MutuallyExclusiveGroup],
                  prefix: str | None = None) -> None:
        # Each group as its visible members: argparse brackets a group's flag as optional
        # when its members are not side by side in the usage, as a required flag beside a
        # hidden positional spelling is (`report --results`, once positional).
        shown = []
        for group in groups:
            visible = argparse._MutuallyExclusiveGroup(group._container, required=group.required)
            visible._group_actions = [a for a in group._group_actions
                                      if a.help is not argparse.SUPPRESS]
            if visible._group_actions:  # argparse refuses an empty group
                shown.append(visible)
        super().add_usage(usage, actions, shown, prefix)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like every other `dive` error."""

    _given: frozenset[argparse.Action | None] = frozenset()  # the flags' actions, as parsed
    _words = False  # whether a word that no flag takes as its value was given

    def error(self, message: str) -> NoReturn:
        missing = re.fullmatch(r"the following arguments are required: (.+)|one of the "
                               r"arguments (.+) is required", message)
        if missing:
            # A required flag with hidden aliases is a required group, which argparse checks
            # after the plain required flags, one at a time: a command missing three was
            # told of them in three rounds.
            names = (missing[1].split(", ") if missing[1] else
                     [" or ".join(missing[2].split())])
            names += [name for name in self._missing_groups() if name not in names]
            message = f"the following arguments are required: {', '.join(names)}"
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def _missing_groups(self) -> list[str]:
        """Each required group (flags that exclude each other, hidden aliases among them) of
        which nothing was given, named by its visible flags (`--query or --queries-npy`). A
        positional spelling (`report`'s old results files) counts as given beside a word
        that no flag takes as its value."""
        names = []
        for group in self._mutually_exclusive_groups:
            members = group._group_actions
            positional = not all(a.option_strings for a in members)
            if (group.required and not self._given.intersection(members)
                    and not (positional and self._words)):
                names.append(" or ".join("/".join(a.option_strings) for a in members
                                         if a.option_strings and a.help is not argparse.SUPPRESS))
        return names

    def _word_given(self, tokens: Sequence[str]) -> bool:
        """Whether `tokens` hold a word that no flag before it takes as its value, as
        argparse reads them (`--keep 0.5`: a value; a flag of nargs `+` takes every word up
        to the next flag)."""
        taking = 0  # words the last flag still takes; -1: any number
        for token in tokens:
            if token.startswith("-") and token != "-":
                action = self._flag_action(token.split("=", 1)[0])
                nargs = None if action is None else action.nargs
                taking = (0 if "=" in token or action is None else
                          1 if nargs in (None, "?") else
                          nargs if isinstance(nargs, int) else -1)
            elif taking > 0:
                taking -= 1
            elif not taking:
                return True
        return False

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        """As argparse's, but a failed write to stdout (`--help` or `--version` into a full
        disk or a closed pipe) ends with `stdout_failed`'s status, as a verb's printing does:
        argparse drops the error, so with PYTHONUNBUFFERED=1, where this write is the one that
        fails, the text was lost with exit 0. A failed write to stderr has nowhere to be
        told."""
        if not message:
            return
        file = file or sys.stderr
        try:
            file.write(message)
        except OSError as exc:
            if file is sys.stdout:
                raise SystemExit(stdout_failed(exc)) from None

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        tokens = list(sys.argv[1:] if args is None else args)
        after = tokens.index("--") if "--" in tokens else len(tokens)  # then positional only
        self._given = frozenset(self._flag_action(t.split("=", 1)[0]) for t in tokens[:after]
                                if t.startswith("-"))
        self._words = after < len(tokens) - 1 or self._word_given(tokens[:after])
        if args is not None:
            self._refuse_repeated(args)
        parsed, extra = super().parse_known_args(args, namespace)
        if extra and " " in self.prog:
            # A verb's parser gets every argument after the verb: one it does not know is an
            # error of that verb, pointing to its help rather than to `dive --help`.
            self.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed, extra

    def _refuse_repeated(self, args: Sequence[str]) -> None:
        """A one-value flag given twice (`--dim 48 --dim 96`): argparse keeps the last
        without a word, and the run silently did less than typed (a plural flag takes both
        lists: `Joined`)."""
        tokens = list(args)
        if "--" in tokens:  # what follows it is positional
            tokens = tokens[:tokens.index("--")]
        given = [self._flag_action(t.split("=", 1)[0]) for t in tokens if t.startswith("-")]
        for action in self._actions:
            if type(action) is argparse._StoreAction and given.count(action) > 1:
                self.error(f"argument {'/'.join(action.option_strings)}: given "
                           f"{given.count(action)} times; give it once")

    def _flag_action(self, name: str) -> argparse.Action | None:
        """The action a long flag `name` gives, read as argparse reads it: the flag itself, or
        a prefix of one flag only (`--di` for `--dim`, when no other flag starts so)."""
        exact = [a for a in self._actions if name in a.option_strings]
        if exact or not (name.startswith("--") and self.allow_abbrev):
            return exact[0] if exact else None
        prefixed = {a for a in self._actions for flag in a.option_strings if flag.startswith(name)}
        return prefixed.pop() if len(prefixed) == 1 else None


def _int_at_least(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        # ASCII digits only, as --budgets and method options take them: int() reads "1_0" as
        # 10 and "٨" as 8
        if not is_integer_text(text.strip()):
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"expected an integer in {minimum}..{maximum}, "
                                             f"got {value}")
        return value

    return parse


def _int_list(minimum: int) -> Callable[[str], list[int]]:
    one = _int_at_least(minimum)

    def parse(text: str) -> list[int]:
        return [one(v) for v in _str_list(text, what="comma-separated integers")]

    return parse


def _recorded_name(text: str) -> str:
    """A name as the results record it, blanks at its ends included (`evaluate --datasets
    ' data'` records ' data'); an empty one is refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a name, got {text!r}")
    return text


def _name(text: str) -> str:
    """A name or path, stripped unless it is a path as typed (a folder ` data`: stripped, it
    was looked up, and downloaded, as `data`); an empty one is refused (the verbs read it as
    "not given" and used the default without a word)."""
    return text if os.path.exists(user_path(_recorded_name(text))) else text.strip()


def _query_text(text: str) -> str:
    """A query as typed; an empty or blank one (`is_blank`: a zero-width space alone too) is
    refused (it was embedded and searched, and its hits printed, as if it asked for
    something)."""
    if is_blank(text):
        raise argparse.ArgumentTypeError(f"expected query text, got {text!r}")
    if not is_utf8(text):  # bytes the locale could not decode (LC_ALL=C, UTF-8 mode off)
        try:
            return os.fsencode(text).decode("utf-8")  # the bytes as typed, read as UTF-8
        except (UnicodeError, ValueError):  # not UTF-8 either: the tokenizer's traceback
            raise argparse.ArgumentTypeError(f"not valid UTF-8: {text!r}") from None
    return text


def _str_list(text: str, what: str = "a comma-separated list") -> list[str]:
    """The comma-separated items of `text`, stripped. An empty item ('0,,1', a trailing comma)
    is refused, not dropped: it is a slip, and the run would quietly do less than typed."""
    values = [v.strip() for v in text.split(",")]
    if not any(values):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    if "" in values:
        raise argparse.ArgumentTypeError(f"item {values.index('') + 1} of {text!r} is empty")
    return values


def _dataset_list(text: str) -> list[str]:
    """Comma-separated dataset names or folders; a folder whose own name has a comma or
    blanks at an end (it exists as typed) is one dataset, which no split could give."""
    return [text] if ("," in text or text != text.strip()) and user_path(text).is_dir() else (
        _str_list(text))


def _method_list(text: str) -> list[str]:
    """Comma-separated method specs. A comma inside an option's value stays in it (DIVE's
    `grid=0x1,1x10x3`): an item that does not start with a letter, as a method name does,
    continues the option that ends the spec before it."""
    specs: list[str] = []
    for item in _str_list(text):
        if specs and "=" in specs[-1].rsplit(":", 1)[-1] and not item[0].isalpha():
            specs[-1] += f",{item}"
        else:
            specs.append(item)
    return specs


class Joined(argparse.Action):
    """A plural flag given more than once takes every list it was given: argparse's own store
    keeps only the last one, and the run silently did less than typed."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        current: list[Any] | None = getattr(namespace, self.dest, None)
        if current is None or current is parser.get_default(self.dest):
            current = []  # the first time: the list given replaces the default
        setattr(namespace, self.dest, [*current, *values])


def _precision(text: str) -> str:
    from dive.compressors.precision import check_precision

    try:
        return check_precision(text.strip())
    except DiveError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _stage_list(text: str) -> list[str]:
    from dive.evaluate.product import check_stage

    try:
        return [check_stage(v) for v in _str_list(text)]
    except DiveError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _anchor_list(text: str) -> list[str]:
    from dive.evaluate.anchors import parse_anchor

    try:
        return [parse_anchor(v).name for v in _str_list(text)]
    except DiveError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _methods_of(*families: str) -> str:
    """The registered methods of `families` but our extensions, in registry order: a verb's
    default `--methods`."""
    from dive.compressors.registry import all_method_facts

    return ",".join(f.name for f in all_method_facts() if f.family in families
                    and not f.extension)


_ALIAS_KEYS = ("type", "nargs", "action", "metavar", "choices")


def _add_renamed(p: argparse.ArgumentParser, flag: str, *, old: Sequence[str],
                 required: bool = False, **kwargs: Any) -> None:
    """Add `flag`, and each `old` spelling of it as a hidden alias (kept for one release).

    They share one destination and exclude each other; a required flag is satisfied by
    either spelling.
    """
    group = p.add_mutually_exclusive_group(required=required)
    action = group.add_argument(flag, **kwargs)
    same = {key: value for key, value in kwargs.items() if key in _ALIAS_KEYS}
    for name in old:
        group.add_argument(name, dest=action.dest, default=argparse.SUPPRESS,
                           help=argparse.SUPPRESS, **same)


def _path(text: str) -> str:
    """A path, a leading `~` expanded (the shell leaves `--output=~/m` as it is: it was a
    folder named `~` for some flags and the home folder for others); an empty one is refused:
    `Path("")` is the current folder, so `--embeddings ""` read it, `--data-dir ""` searched
    it and `embed --output ""` wrote to the cache."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r}")
    return os.path.expanduser(text)


def _input_path(text: str) -> str:
    """An input file's path; '-' is refused: no verb reads its standard input, and a file
    named '-' is not what the user meant."""
    if text.strip() == "-":
        raise argparse.ArgumentTypeError("'-' (standard input): this verb reads files; give a "
                                         "path")
    return _path(text)


def _vectors_file(text: str) -> str:
    """search's `--rescore-vectors FILE` (once `--rescore-with`): evaluate's `--rescore-with
    full|compressed` names a space, which here is `--rescore-space`."""
    if text in ("full", "compressed") and not os.path.exists(text):
        raise argparse.ArgumentTypeError(f"a file of vectors, not the space {text!r} (evaluate's "
                                         f"--rescore-with); here give the vectors' file, and "
                                         f"--rescore-space {text} to say which they are")
    return _path(text)


def _output_path(text: str) -> str:
    """An output path; '-' is refused: every verb writes files, and a file named '-' is not
    the standard output the user meant."""
    if text.strip() == "-":
        raise argparse.ArgumentTypeError("'-' (standard output): this verb writes files; give "
                                         "a path")
    return _path(text)


def _output_file(text: str) -> str:
    """An output path naming a file: one ending in a separator names a folder (Path drops
    the slash, and `--output new/` wrote the file `new`)."""
    try:
        refuse_folder_form(text)
    except DiveError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return _output_path(text)


def _add_output(p: argparse.ArgumentParser, help: str, *, metavar: str, required: bool = True,
                default: str | None = None) -> None:
    _add_renamed(p, "--output", old=["--out"], required=required, default=default,
                 metavar=metavar, help=help,
                 type=_output_file if metavar == "FILE" else _output_path)


def _add_results_read(p: argparse.ArgumentParser, help: str) -> None:
    """`--results FILE...`: the results files a verb reads (once given positionally)."""
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--results", nargs="+", action="extend", metavar="RESULTS.jsonl",
                       type=_input_path,
                       help=help)
    group.add_argument("results", nargs="*", action="extend", default=argparse.SUPPRESS,
                       help=argparse.SUPPRESS)


def _add_overwrite(p: argparse.ArgumentParser, help: str = OVERWRITE_HELP) -> None:
    p.add_argument("--overwrite", action="store_true", help=help)


def _add_no_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (for logs: a bar redraws itself with carriage returns)")


def _add_no_verify(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-verify", action="store_true",
                   help="load the model folder without checking its checksums")


def _add_model_dir(p: argparse.ArgumentParser, help: str = "saved compressor folder") -> None:
    p.add_argument("model_dir", metavar="DIR", type=_path, help=help)
    _add_no_verify(p)


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=_path, default=None, help=DATA_DIR_HELP)


def _add_grid_options(
    p: argparse.ArgumentParser, *, methods: str, budgets: str, seeds: str
) -> None:
    p.add_argument("--methods", type=_method_list, action=Joined, default=_str_list(methods),
                   help="comma-separated method specs (name or name:key=value:...; a value "
                        "may hold commas: dive:grid=0x1,1x10x3)")
    p.add_argument("--ratios", type=_int_list(1), action=Joined, default=[2, 4, 8, 16],
                   help="compression ratios D/d")
    p.add_argument("--budgets", type=_str_list, action=Joined, default=_str_list(budgets),
                   help="label budgets: numbers of training queries, or 'all'")
    p.add_argument("--seeds", type=_int_list(0), action=Joined, default=_int_list(0)(seeds),
                   help="random seeds")
    p.add_argument("--precisions", type=_stage_list, action=Joined, default=["float32"],
                   help="first-stage index precisions each fit is scored at (float32, float16, "
                        "int8, binary, or opqM: FAISS OPQ+PQ of the outputs at M bytes, where "
                        "M divides d and is below it), without refitting")
    _add_renamed(p, "--rescore-factors", old=["--rescore"], type=_int_list(0), action=Joined,
                 default=[0],
                 help="funnel factors: the first stage keeps factor x k candidates, rescored "
                      "by float32 vectors to the top k (0: no rescoring)")
    p.add_argument("--rescore-with", choices=["full", "compressed"], default=None,
                   help="what a funnel rescores with: the full embeddings (when not given) or "
                        "the compressed float32 outputs")
    p.add_argument("--anchors", type=_anchor_list, action=Joined, default=[],
                   help="indexes users run instead, scored as rows at their bytes per vector: "
                        "faiss-pq:M, faiss-opq:M (M bytes), faiss-pca-sq8, faiss-pca-sq4 (at "
                        "each ratio), st-int8, st-binary (full dimension)")
    p.add_argument("--model", type=_name, default=None, help=EMBEDDING_MODEL_HELP)
    _add_data_dir(p)
    p.add_argument("--embeddings", type=_path, default=None,
                   help="precomputed embeddings folder for a single dataset "
                        "(default: $DIVE_EMBEDDINGS/<model>/<dataset>, cache, encode)")
    _add_no_progress(p)


Subparsers = argparse._SubParsersAction  # the `dive` parser's, of `_Parser`s


def _verb(sub: Subparsers[_Parser], name: str, help: str) -> _Parser:
    p = sub.add_parser(name, help=help, formatter_class=DefaultsHelpFormatter)
    # The global flags after the verb too, where a user puts every other flag; SUPPRESS
    # leaves the value given before the verb when they are not repeated here.
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show tracebacks (as `dive --debug VERB`)")
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="log each finished run (as `dive -v VERB`)")
    return p


def add_evaluate(sub: Subparsers[_Parser]) -> _Parser:
    p = _verb(sub, "evaluate", "run the benchmark grid and print a table")
    _add_renamed(p, "--datasets", old=["--dataset"], required=True, type=_dataset_list,
                 action=Joined, help="dataset names or BEIR folders, comma-separated (a "
                                     "folder with a comma in its name is one)")
    p.add_argument("--results", type=_output_file, default="results.jsonl",
                   help="JSONL results file (appended; runs already there are skipped)")
    p.add_argument("--plot", type=_output_file, default=None,
                   help="also write an nDCG@10-vs-dimension PNG here")
    p.add_argument("--report", type=_output_path, default=None, metavar="DIR",
                   help="also write the report of this grid's runs (the files `dive report` "
                        "writes; `dive report --results FILE` reports every run of the file) "
                        "into this folder")
    _add_overwrite(p, "replace an existing --plot / --report of the kind evaluate writes (a "
                      "PNG, a report folder; --results is always appended)")
    _add_grid_options(p, methods=_methods_of("reference", "classical"), budgets="16,64,256,all",
                      seeds="0,1,2")
    return p


def add_demo(sub: Subparsers[_Parser]) -> _Parser:
    p = _verb(sub, "demo", "every method on one dataset: table + plot")
    p.add_argument("--dataset", type=_name, default="scifact", help="dataset name or BEIR folder")
    _add_output(p, "folder for results.jsonl and the plot (a rerun resumes the run there and "
                   "redraws the plot; a first run replaces no file there)", metavar="DIR",
                required=False, default="runs/demo")
    _add_overwrite(p, "start over: replace the folder's results.jsonl once the new run is done")
    _add_grid_options(p, methods=_methods_of("reference", "classical", "learned"), budgets="64",
                      seeds="0")
    return p


def add_report(sub: Subparsers[_Parser]) -> _Parser:
    p = _verb(sub, "report", "Markdown tables, CSV and plots from results files")
    _add_results_read(p, "results files, merged in order (a run repeated later wins)")
    _add_output(p, "folder for report.md, summary.csv and the PNG plots", metavar="DIR")
    p.add_argument("--keep", type=float, default=0.99,
                   help="report the smallest d keeping this share of frozen nDCG@10 (0.99: 99%%; "
                        "at most 2)")
    p.add_argument("--ratio", type=_int_at_least(1), default=None,
                   help="compression ratio of the nDCG@10-vs-label-budget plot (default: 4 "
                        "when it was run, else the middle ratio run, as evaluate --report)")
    p.add_argument("--gains", action="store_true",
                   help="also print each method's nDCG@10 against the better of pca and "
                        "pca-uncentered at the same cell: cells won or tied, mean gain, worst")
    _add_overwrite(p)
    return p


def add_recommend(sub: Subparsers[_Parser]) -> _Parser:
    p = _verb(sub, "recommend", "the fewest-bytes configuration keeping a share of frozen "
              "nDCG@10, from results files")
    _add_results_read(p, "results of `dive evaluate --precisions ... --rescore-factors ...` "
                         "(merged)")
    p.add_argument("--dataset", type=_recorded_name, required=True,
                   help="dataset name as in the results")
    p.add_argument("--keep", type=float, default=0.99,
                   help="share of frozen float32 nDCG@10 to keep (0.99: 99%%; at most 2)")
    p.add_argument("--budget", default=None,
                   help="label budget of the runs to choose from (needed when several ran)")
    p.add_argument("--model", type=_name, default=None,
                   help="embedding model of the runs (needed when several ran)")
    p.add_argument("--no-rescore", action="store_true",
                   help="only first stages searched alone (no float32 funnel)")
    p.add_argument("--max-bytes", type=_int_at_least(1), default=None,
                   help="only first stages storing at most this many bytes per vector")
    return p


def add_embed(sub: Subparsers[_Parser]) -> _Parser:
    p = _verb(sub, "embed", "embed a BEIR-layout dataset into an embeddings folder, or import "
              "vectors made elsewhere (Parquet, .npy)")
    p.add_argument("--dataset", type=_name, required=True, help="dataset name or BEIR folder")
    _add_data_dir(p)
    _add_output(p, "embeddings folder to write (default: the embeddings cache, "
                   "<cache>/<model>/<dataset>, where evaluate and fit given that --model "
                   "look after $DIVE_EMBEDDINGS/<model>/<dataset>; imported vectors go "
                   "under their --model label, 'imported' by default)", metavar="DIR",
                required=False)
    p.add_argument("--model", type=_name, default=None,
                   help="sentence-transformers model name or local folder (default "
                        "all-MiniLM-L6-v2, offline); with imported vectors, their label "
                        "(default 'imported')")
    # Encoding settings, without defaults here: given with imported vectors, which are not
    # encoded, they are refused (`dive.cli`); one not given takes the library's default.
    p.add_argument("--batch-size", type=_int_at_least(1), default=None,
                   help="texts per batch (default: 32)")
    p.add_argument("--device", default=None,
                   help="torch device: cpu, cuda, cuda:1, mps (default: cpu)")
    p.add_argument("--chunk-size", type=_int_at_least(1), default=None,
                   help="texts encoded and saved at a time (the resume step) (default: 4096)")
    source = p.add_mutually_exclusive_group()  # one source of imported vectors
    source.add_argument("--from-parquet", type=_path, default=None, metavar="FILE",
                        help="import the corpus vectors of this Parquet file instead of encoding")
    p.add_argument("--queries-parquet", type=_path, default=None, metavar="FILE",
                   help="with --from-parquet: the query vectors")
    # No defaults here: given without --from-parquet they are refused (`dive.cli`), not ignored.
    p.add_argument("--id-column", default=None,
                   help="with --from-parquet: the id column (default: id)")
    p.add_argument("--vector-column", default=None,
                   help="with --from-parquet: the vector column (default: vector)")
    source.add_argument("--from-npy", type=_path, default=None, metavar="FILE",
                        help="import the corpus vectors of this (n, D) .npy instead of encoding")
    p.add_argument("--ids", type=_path, default=None, metavar="FILE",
                   help="with --from-npy: the corpus ids, one a line, in row order")
    p.add_argument("--queries-npy", type=_path, default=None, metavar="FILE",
                   help="with --from-npy: the query vectors")
    p.add_argument("--query-ids", type=_path, default=None, metavar="FILE",
                   help="with --from-npy: the query ids, one a line")
    _add_overwrite(p)
    _add_no_progress(p)
    return p


def add_fit(sub: Subparsers[_Parser]) -> _Parser:
    p = _verb(sub, "fit", "fit one compressor on a dataset and save it as a folder")
    p.add_argument("--dataset", type=_name, required=True, help="dataset name or BEIR folder")
    p.add_argument("--method", required=True, help="method spec (name or name:key=value:...)")
    p.add_argument("--dim", type=_int_at_least(1), required=True, help="output dimension d")
    p.add_argument("--budget", default=None,
                   help="training queries for supervised methods (a number or 'all'; "
                        "default: all, as dive.fit)")
    # past 2**63 - 1 it was refused by the fit, once the embeddings were loaded (or encoded)
    p.add_argument("--seed", type=_int_at_least(0, SEED_LIMIT - 1), default=0,
                   help="random seed (also picks the labels)")
    p.add_argument("--model", type=_name, default=None, help=EMBEDDING_MODEL_HELP)
    _add_data_dir(p)
    p.add_argument("--embeddings", type=_path, default=None,
                   help="precomputed embeddings folder (default: "
                        "$DIVE_EMBEDDINGS/<model>/<dataset>, cache, encode)")
    p.add_argument("--precision", type=_precision, default="float32",
                   help="what the model outputs: float32, float16, int8 (ranges calibrated on "
                        "the corpus outputs) or binary (packed sign bits)")
    _add_output(p, "model folder to write", metavar="DIR")
    _add_overwrite(p)
    _add_no_progress(p)
    return p


def add_export(sub: Subparsers[_Parser]) -> _Parser:
    p = _verb(sub, "export", "export a saved compressor to ONNX or sentence-transformers")
    _add_model_dir(p, "saved compressor folder (from `dive fit`)")
    p.add_argument("--format", required=True, choices=["onnx", "sentence-transformers"],
                   help="output format")
    _add_output(p, "ONNX file, or folder for the sentence-transformers module/model",
                metavar="PATH")
    p.add_argument("--model", type=_name, default=None,
                   help="sentence-transformers only: bundle this base model with the module "
                        "into one loadable model folder (default: the module folder alone)")
    _add_overwrite(p)
    return p


def add_index(sub: Subparsers[_Parser]) -> _Parser:
    p = _verb(sub, "index", "build a FAISS index of an embeddings folder's compressed corpus")
    _add_model_dir(p)
    p.add_argument("--embeddings", type=_path, required=True, metavar="EMB_DIR",
                   help="embeddings folder whose corpus is compressed and indexed")
    _add_output(p, "index file (the ids go to FILE.ids.txt)", metavar="FILE")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--hnsw", action="store_true",
                      help="approximate HNSW index instead of exact")
    kind.add_argument("--opq", type=_int_at_least(1), default=None, metavar="M",
                      help="FAISS OPQ+PQ index of the float32 outputs: M bytes per vector "
                           "(M divides d and is below it), trained on the corpus")
    p.add_argument("--seed", type=_int_at_least(0, 2**31 - 1), default=None,
                   help="seed of the OPQ/PQ k-means (with --opq; 0 when not given; FAISS "
                        "takes up to 2**31 - 1)")
    _add_overwrite(p)
    return p


def add_search(sub: Subparsers[_Parser]) -> _Parser:
    p = _verb(sub, "search", "search an index with queries compressed by a saved compressor")
    p.add_argument("index", metavar="INDEX_FILE", type=_path, help="index file from `dive index`")
    _add_model_dir(p, "saved compressor folder used for the index")
    queries = p.add_mutually_exclusive_group(required=True)
    queries.add_argument("--query", action="append", metavar="TEXT", type=_query_text,
                         help="query text, embedded with --model (repeatable)")
    queries.add_argument("--queries-npy", type=_path, default=None, metavar="FILE",
                         help=".npy of query embeddings (n, D), normalised to unit length here")
    p.add_argument("--model", type=_name, default=None,
                   help="model embedding --query (default: the one the compressor was fitted on)")
    p.add_argument("-k", type=_int_at_least(1), default=10, help="hits per query")
    _add_renamed(p, "--rescore-vectors", old=["--rescore-with"], type=_vectors_file, default=None,
                 metavar="FILE",
                 help="re-rank the index's first --rescore-factor x k hits by these float "
                      "vectors (full embeddings or compressed float32, one row per index row "
                      "in its order, e.g. the embeddings folder's corpus.npy)")
    p.add_argument("--rescore-factor", type=_int_at_least(1), default=None,
                   help="with --rescore-vectors: candidates per hit taken from the index "
                        f"({RESCORE_FACTOR} if not given)")
    p.add_argument("--rescore-space", choices=["full", "compressed"], default=None,
                   help="what --rescore-vectors holds: the full embeddings or the compressed "
                        "float32 outputs (default: told by their width; needed when the "
                        "compressor keeps the dimension)")
    return p


def add_compress(sub: Subparsers[_Parser]) -> _Parser:
    p = _verb(sub, "compress", "compress an embedding store (.npy, Parquet, shards) in bounded "
              "memory, resumably")
    _add_model_dir(p)
    p.add_argument("--input", required=True, metavar="X", type=_path,
                   help=".npy file, Parquet file, folder of .npy or Parquet shards, or a LanceDB "
                        "table, lancedb:PATH/TABLE")
    _add_output(p, "output file or folder, same layout as the input (Ray: a Parquet folder); "
                   "LanceDB: a new table, or the input table with --output-column",
                metavar="Y")
    p.add_argument("--batch-size", type=_int_at_least(1), default=65536,
                   help="vectors per chunk (memory use and the resume step)")
    p.add_argument("--dtype", choices=["float32", "float16"], default=None,
                   help="element type of a float32 model's output (default: what the model "
                        "outputs at its precision: float32, or its float16/int8/binary codes)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: streaming, resumable; ray: Ray Data over Parquet "
                        "(joins $RAY_ADDRESS or starts a local cluster)")
    # No defaults here: a column flag given with a .npy input is refused (`dive.cli`), and
    # one not given takes the library's default, which the help states.
    _add_renamed(p, "--vector-column", old=["--column"], default=None,
                 help="Parquet/LanceDB: the vector column (default: vector)")
    p.add_argument("--id-column", default=None,
                   help="Parquet/LanceDB: id column carried to the output ('' for none) "
                        "(default: id)")
    p.add_argument("--output-column", default=None,
                   help="Parquet/LanceDB: name of the compressed vector column (default: "
                        "the --vector-column name)")
    _add_overwrite(p, OVERWRITE_HELP + "; only once the new one is complete")
    _add_no_progress(p)
    return p


VERBS: tuple[Callable[[Subparsers[_Parser]], _Parser], ...] = (
    add_evaluate, add_demo, add_report, add_recommend, add_embed, add_fit, add_export,
    add_index, add_search, add_compress,
)


def build_parser() -> argparse.ArgumentParser:
    """The `dive` parser: the global flags, then one subcommand per builder in `VERBS`."""
    parser = _Parser(prog="dive", description="Compress embeddings for vector search with few "
                     "labels.", formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--version", action="version", version=f"dive {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each finished run")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for add_verb in VERBS:
        add_verb(sub)
    return parser
