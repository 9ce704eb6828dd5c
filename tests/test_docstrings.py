"""The public API's docstrings: their examples run, and what they state matches the code.

Each documented callable's Parameters section names exactly its signature's parameters with
the same defaults; every `option=value` a Parameters section quotes is a field of the method's
config with that default; every listed attribute exists on a fitted instance.
"""

from __future__ import annotations

import ast
import dataclasses
import doctest
import importlib
import inspect
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import dive.api
import dive.export.folder
from dive.compressors import (
    PCA,
    SMEC,
    Compressor,
    Dive,
    MatryoshkaAdaptor,
    MatryoshkaAdaptorUnsup,
    SearchAdaptor,
)

# module -> the fewest examples its docstrings hold (so a deleted example fails too)
DOCTEST_MODULES = {
    "dive.api": 9,
    "dive.export.folder": 8,
    "dive.compressors.base": 8,
    "dive.compressors.dive": 9,
    "dive.compressors.matryoshka_adaptor": 14,
    "dive.compressors.search_adaptor": 7,
    "dive.compressors.smec": 6,
}
CLASSES: list[type[Compressor]] = [Compressor, Dive, MatryoshkaAdaptorUnsup, MatryoshkaAdaptor,
                                   SearchAdaptor, SMEC]
FUNCTIONS: list[Callable[..., Any]] = [dive.api.fit, dive.api.embed, dive.export.folder.save,
                                       dive.export.folder.load]
HEADER = re.compile(r"^(\w+)\n-{3,}\n", re.MULTILINE)
ENTRY = re.compile(r"^(\S[^:\n]*?)(?: : (.*))?$", re.MULTILINE)
OPTION = re.compile(r"`(\w+)=([^`]+)`")


def sections(obj: object) -> dict[str, str]:
    """The docstring's numpydoc sections by title."""
    parts = HEADER.split(inspect.cleandoc(obj.__doc__ or ""))
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def entries(section: str) -> dict[str, str | None]:
    """Unindented `name : type[, default=...]` lines -> the default's text (None: none given);
    `a, b, **c` lines give each name."""
    out: dict[str, str | None] = {}
    for names, kind in ENTRY.findall(section):
        default = kind.partition("default=")[2] or None
        for name in names.split(", "):
            out[name.strip()] = default
    return out


def config_of(cls: type[Compressor]) -> type | None:
    return getattr(cls, "config_class", None)


@pytest.mark.parametrize(("name", "examples"), DOCTEST_MODULES.items())
def test_docstring_examples_run(name: str, examples: int) -> None:
    # as plain doctest runs them: an example that needs ELLIPSIS says so itself (SMEC's
    # failed under `python -m doctest`, which this test's ELLIPSIS flag had hidden)
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted >= examples, result


@pytest.mark.parametrize("obj", [*CLASSES, *FUNCTIONS], ids=lambda o: o.__qualname__)
def test_parameters_match_the_signature(obj: Any) -> None:
    documented = entries(sections(obj)["Parameters"])
    signature = inspect.signature(obj)
    wanted = {("**" + p.name if p.kind is p.VAR_KEYWORD else p.name): p
              for p in signature.parameters.values()}
    assert list(documented) == list(wanted)
    namespace = vars(importlib.import_module(obj.__module__))
    for name, text in documented.items():
        default = wanted[name].default
        if text is None:
            continue
        assert default is not inspect.Parameter.empty, name
        assert eval(text, namespace) == default, name


@pytest.mark.parametrize("cls", CLASSES[1:], ids=lambda c: c.__name__)
def test_quoted_options_are_config_fields_at_their_defaults(cls: type[Compressor]) -> None:
    config = config_of(cls)
    assert config is not None
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    quoted = OPTION.findall(sections(cls)["Parameters"])
    assert quoted, "no option quoted"
    for name, text in quoted:
        assert name in defaults, name
        assert ast.literal_eval(text) == defaults[name], name


@pytest.mark.parametrize(("cls", "options"), [
    (PCA, {}),
    (Dive, {"steps": 2, "select": False}),
    (MatryoshkaAdaptorUnsup, {"steps": 2}),
    (SearchAdaptor, {"steps": 2}),
    (SMEC, {"stage_steps": 2}),
], ids=lambda v: getattr(v, "__name__", ""))
def test_documented_attributes_exist_after_fit(cls: type[Compressor],
                                               options: dict[str, Any]) -> None:
    documented = cls if cls is not PCA else Compressor
    names = list(entries(sections(documented)["Attributes"]))
    corpus = np.random.default_rng(0).standard_normal((100, 16)).astype(np.float32)
    model = cls(4, **options)
    assert [n for n in names if n.endswith("_") and hasattr(model, n)] == []  # set by fit
    model.fit(corpus)
    missing = [n for n in names if not hasattr(model, n)]
    assert missing == []
    config = config_of(cls)
    for name in names:
        if config is not None and name == "options":
            assert isinstance(getattr(model, name), config)
