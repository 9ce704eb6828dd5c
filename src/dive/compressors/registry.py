"""Methods by name, and method specs with options (`dive:heads=1:ntxent_weight=0`).

A spec is a registry name optionally followed by `:key=value` options passed to the
constructor; values are parsed as int, float, bool or left as strings. The full spec string
is the method's label in results, so ablations are ordinary rows.

`method_facts` reads what callers need to know about a method from its class (family, labels,
full dimension only, ...; see `dive.compressors.base.Compressor`), and `display_order` is the
order results list the registered methods in: by family, the training-free references last
among the classical ones (beside the learned methods measured against them), then registry
order. The registry's own order is the order grids run methods in.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from dive.arrays import is_integer_text
from dive.compressors.base import FAMILIES, Compressor, Family
from dive.errors import DiveError, kind_of


def _checked(name: str, cls: type[Compressor]) -> type[Compressor]:
    """`cls`, once it declares a family (what every caller's facts start from)."""
    family = getattr(cls, "family", None)
    if family not in FAMILIES:
        raise DiveError(f"method {name!r}: {cls.__name__}.family is {family!r}; declare one "
                        f"of {', '.join(FAMILIES)}")
    return cls


class _LazyRegistry(MutableMapping[str, type[Compressor]]):
    """Name -> compressor class, importing each method's module on first use.

    Learned methods import torch; loading a saved model or listing names must not.
    """

    def __init__(self, entries: dict[str, str]) -> None:
        self._entries: dict[str, str | type[Compressor]] = dict(entries)

    def __getitem__(self, name: str) -> type[Compressor]:
        entry = self._entries[name]
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            entry = self._entries[name] = _checked(name, getattr(import_module(module), attr))
        return entry

    def __setitem__(self, name: str, cls: type[Compressor]) -> None:
        self._entries[name] = _checked(name, cls)

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


# One line per method: registry name -> "module:Class".
REGISTRY = _LazyRegistry(
    {
        "frozen": "dive.compressors.frozen:Frozen",
        "truncate": "dive.compressors.truncate:Truncate",
        "pca": "dive.compressors.pca:PCA",
        "pca-uncentered": "dive.compressors.pca:PCAUncentered",
        "random": "dive.compressors.random_projection:RandomProjection",
        "dive": "dive.compressors.dive:Dive",
        "dive-plus": "dive.compressors.dive_plus:DivePlus",
        "matryoshka-adaptor-unsup": "dive.compressors.matryoshka_adaptor:MatryoshkaAdaptorUnsup",
        "matryoshka-adaptor": "dive.compressors.matryoshka_adaptor:MatryoshkaAdaptor",
        "search-adaptor": "dive.compressors.search_adaptor:SearchAdaptor",
        "smec": "dive.compressors.smec:SMEC",
    }
)


@dataclass(frozen=True)
class MethodFacts:
    """What callers need to know about a registered method, as its class declares it."""

    name: str
    family: Family
    supervised: bool  # uses labelled queries
    full_dim_only: bool  # one run at the input dimension, whatever the ratio
    training_free_reference: bool  # gains over training-free are measured against it
    extension: bool  # ours beyond a published method: grids run it only when named

    @property
    def training_free(self) -> bool:
        return self.family in ("reference", "classical")


def method_facts(name: str) -> MethodFacts | None:
    """The facts of registry name `name` (imports its module); None when it is not registered."""
    if name not in REGISTRY:
        return None
    cls = REGISTRY[name]
    return MethodFacts(name, cls.family, cls.supervised, cls.full_dim_only,
                       cls.training_free_reference, cls.extension)


def all_method_facts() -> list[MethodFacts]:
    """Every registered method's facts, in registry order."""
    return [facts for name in REGISTRY if (facts := method_facts(name)) is not None]


def display_order() -> list[str]:
    """Registered methods in the order results list them (see the module docstring)."""
    facts = all_method_facts()
    position = {f.name: i for i, f in enumerate(facts)}
    facts.sort(key=lambda f: (FAMILIES.index(f.family), f.training_free_reference,
                              position[f.name]))
    return [f.name for f in facts]


def _parse_value(text: str) -> Any:
    """A spec value as a bool, an int, a float or the text. Numbers are read only as written
    in ASCII without spaces or underscores: `int()` and `float()` also take "1_0" as 10, " 2"
    as 2 and other scripts' digits, where the key beside them is refused with a space."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if is_integer_text(text):
        try:
            return int(text)
        except ValueError:  # over 4300 digits, which int() reads no further: out of any range
            raise DiveError(f"a number of {len(text)} digits") from None
    if text.isascii() and text == text.strip() and "_" not in text:
        try:
            return float(text)
        except ValueError:
            pass
    return text


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split `name:key=value:...` into the registry name and its options. An option given
    again replaces the earlier value, as a repeated command-line flag does, so a spec is
    changed by appending to it (`FAST + ":steps=200"` in the tests)."""
    if not isinstance(spec, str):
        raise DiveError(f"method is {kind_of(spec)}; expected a method name or spec such as "
                        "'dive' or 'smec:stage_steps=100'")
    name, *parts = spec.strip().split(":")
    if name not in REGISTRY:
        raise DiveError(f"unknown method {name!r}; valid: {', '.join(sorted(REGISTRY))}")
    options: dict[str, Any] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise DiveError(f"method {spec!r}: option {part!r} is not key=value")
        try:
            options[key.replace("-", "_")] = _parse_value(value)
        except DiveError as exc:
            raise DiveError(f"method {name!r}: option {key}: {exc}") from None
    return name, options


def make_compressor(spec: str, dim: int | None, seed: int = 0) -> Compressor:
    """Build the compressor a spec names, with `dim` and `seed` set."""
    name, options = parse_spec(spec)
    cls = REGISTRY[name]
    given = [key for key in ("dim", "seed") if key in options]
    if given:
        raise DiveError(f"method {spec!r}: {' and '.join(given)} is not an option of the spec; "
                        "it is given apart from it")
    params = inspect.signature(cls).parameters
    # A class taking **options checks them itself (`dive.compressors.options.build`).
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        valid = [key for key in params if key not in ("dim", "seed")]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise DiveError(f"{name}: unknown option(s) {', '.join(unknown)}; "
                            f"valid: {', '.join(valid) or 'none'}")
    try:
        return cls(dim=dim, seed=seed, **options)
    except TypeError as exc:
        raise DiveError(f"method {spec!r}: {exc}") from None
