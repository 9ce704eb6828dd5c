"""Method options as frozen dataclasses, built from keyword options or spec strings.

Options from a spec string (`smec:stage_steps=100`) arrive as int/float/bool/str. A config's
`__post_init__` calls `coerce`, which brings each field to its type (a float field takes an
int, an `int | None` field takes "none", a numpy scalar becomes the Python value it holds) or
names the one that is not, then runs the config's own checks; so a config built by hand
(`DiveConfig(heads=2)`) is checked as options are. `build` applies options over a base
config, rejects unknown names with the list of valid ones, and prefixes an error with the
method's name: every error is one `DiveError`, e.g. `smec: stage_steps must be >= 0, got -1`.
An option renamed for one meaning everywhere keeps its old name for one release: the config
class maps it in `renamed` (old -> new), and `build` takes the old name with a
`FutureWarning`. Torch-free.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import numpy as np

from dive.arrays import is_integer
from dive.errors import DiveError

__all__ = ["Rule", "at_least", "build", "check", "coerce"]

T = TypeVar("T")
MAX_INT = 2**31 - 1  # no option counts past it; torch and the C libraries take a C int
Rule = tuple[str, bool, str]  # (option name, whether its value is valid, the valid values)


def check(config: object, rules: Iterable[Rule]) -> None:
    """Raise `DiveError("<name> must be <rule>, got <value>")` for the first failed rule."""
    for name, ok, rule in rules:
        if not ok:
            raise DiveError(f"{name} must be {rule}, got {getattr(config, name)!r}")


def at_least(config: object, bound: int, *names: str, strict: bool = False) -> list[Rule]:
    """One rule per option in `names`: its value is >= `bound` (> `bound` when `strict`)."""
    if strict:
        return [(n, getattr(config, n) > bound, f"> {bound}") for n in names]
    return [(n, getattr(config, n) >= bound, f">= {bound}") for n in names]


def _coerce(field: dataclasses.Field[Any], value: Any) -> Any:
    name, default = field.name, field.default
    # "none" only: "auto" was taken as None too, which for `mine_every` is the old schedule
    if "None" in str(field.type) and (
        value is None or (isinstance(value, str) and value.lower() == "none")
    ):
        return None
    # numpy scalars are taken, and stored as the Python values they hold (JSON-ready)
    if isinstance(default, bool):
        if not isinstance(value, bool | np.bool_):
            raise DiveError(f"{name} must be true or false, got {value!r}")
        return bool(value)
    if isinstance(default, float):
        if not (is_integer(value) or isinstance(value, float | np.floating)):
            raise DiveError(f"{name} must be a number, got {value!r}")
        try:
            number = float(value)
        except OverflowError:  # an integer past float's range (lr=1000...0): a traceback
            number = math.inf
        if not math.isfinite(number):
            raise DiveError(f"{name} must be a finite number, got {_short(value)}")
        return number
    if isinstance(default, int) or "int" in str(field.type):
        if not is_integer(value):
            kind = "an integer or none" if "None" in str(field.type) else "an integer"
            raise DiveError(f"{name} must be {kind}, got {value!r}")
        whole = int(value)
        if abs(whole) > MAX_INT:  # threads=10**20: a ctypes OverflowError deep in torch
            raise DiveError(f"{name} must be between -{MAX_INT} and {MAX_INT}, got "
                            f"{_short(value)}")
        return whole
    if isinstance(default, str) and not isinstance(value, str):
        return str(value)  # e.g. a bare number where a string is expected: the checks judge
    return value


def _short(value: Any) -> str:
    """`value` for an error line: a number of hundreds of digits cut to its first and last."""
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:10]}...{text[-6:]} ({len(text)} digits)"


def coerce(config: object) -> None:
    """Bring each field of the dataclass `config` to its type, in place (it may be frozen),
    or raise `DiveError("<name> must be <type>, got <value>")` for the first that is not."""
    for field in dataclasses.fields(config):  # type: ignore[arg-type]
        value = getattr(config, field.name)
        object.__setattr__(config, field.name, _coerce(field, value))


def _first_caller_outside_dive() -> int:
    """The `stacklevel` that makes a warning point at the first caller outside this package
    from where `warnings.warn` is called: a fixed one pointed at dive's own registry for a
    spec string (`dive.fit(..., method="...:patience=3")`), so a filter by module missed it."""
    frame, level = sys._getframe(2), 2  # the frame that warns is level 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").split(".")[0] == "dive":
        frame, level = frame.f_back, level + 1
    return level


def _current_names(cls: type, method: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """`options` with each old name in `cls.renamed` given as its new one(s), a `FutureWarning`
    (an old name that meant several options sets each of them)."""
    current = dict(options)
    renamed: Mapping[str, str | tuple[str, ...]] = getattr(cls, "renamed", {})
    for old, new in renamed.items():
        if old not in current:
            continue
        names = (new,) if isinstance(new, str) else new
        text = " and ".join(names)
        if any(name in current for name in names):
            raise DiveError(f"{method}: {old} is the old name of {text}; give {text} only")
        warnings.warn(f"{method}: option {old} is now {text} (the old name goes in the next "
                      "release)", FutureWarning, stacklevel=_first_caller_outside_dive())
        value = current.pop(old)
        current.update(dict.fromkeys(names, value))
    return current


def build(cls: type[T], method: str, options: Mapping[str, Any], base: T | None = None) -> T:
    """`cls` from `base` (default: `cls()`) with `options` replaced, or a `DiveError`."""
    options = _current_names(cls, method, options)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise DiveError(
            f"{method}: unknown option(s) {', '.join(unknown)}; valid: {', '.join(fields)}"
        )
    try:  # the config's __post_init__ brings the values to their types and checks them
        start = base if base is not None else cls()
        return dataclasses.replace(start, **options)  # type: ignore[type-var]
    except DiveError as exc:
        raise DiveError(f"{method}: {exc}") from None
