"""Option checks shared by the baselines' constructors (torch-free).

Options arrive from spec strings (`smec:stage_steps=100`) as int/float/bool/str; a bad value
raises `DiveError` naming the method, the option and the rule, before any work starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from dive.errors import DiveError

Basis = Literal["identity", "pca"]
BASES: tuple[Basis, ...] = ("identity", "pca")


def check_basis(method: str, basis: str) -> None:
    if basis not in BASES:
        raise DiveError(f"{method}: basis must be one of {', '.join(BASES)}, got {basis!r}")


def check_options(method: str, rules: Sequence[tuple[str, object, bool, str]]) -> None:
    """Each rule is (name, value, ok, description of the valid values)."""
    for name, value, ok, rule in rules:
        if isinstance(value, bool) and rule != "true or false":
            ok = False
        if not ok:
            raise DiveError(f"{method}: {name} must be {rule}, got {value!r}")


def shared_rules(
    *,
    hidden: int | None,
    lr: float,
    batch_size: int,
    min_batch: int,
    patience: int,
    eval_every: int,
    negatives_per_positive: int,
    hard_fraction: float,
    threads: int,
) -> list[tuple[str, object, bool, str]]:
    """The rules for the options every baseline has (adapter, optimiser, gate, mining)."""
    return [
        ("hidden", hidden, hidden is None or hidden >= 1, ">= 1 (or None for D)"),
        ("lr", lr, lr > 0, "> 0"),
        ("batch_size", batch_size, batch_size >= min_batch, f">= {min_batch}"),
        ("patience", patience, patience >= 1, ">= 1"),
        ("eval_every", eval_every, eval_every >= 1, ">= 1"),
        ("negatives_per_positive", negatives_per_positive, negatives_per_positive >= 1, ">= 1"),
        ("hard_fraction", hard_fraction, 0 <= hard_fraction <= 1, "in [0, 1]"),
        ("threads", threads, threads >= 1, ">= 1"),
    ]
