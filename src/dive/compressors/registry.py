"""Methods by name, and method specs with options (`dive:heads=1:ntxent_weight=0`).

A spec is a registry name optionally followed by `:key=value` options passed to the
constructor; values are parsed as int, float, bool or left as strings. The full spec string
is the method's label in results, so ablations are ordinary rows.
"""

from __future__ import annotations

from typing import Any

from dive.compressors.base import Compressor
from dive.compressors.frozen import Frozen
from dive.compressors.pca import PCA, PCAUncentered
from dive.compressors.random_projection import RandomProjection
from dive.compressors.truncate import Truncate
from dive.errors import DiveError

REGISTRY: dict[str, type[Compressor]] = {
    cls.method: cls for cls in (Frozen, Truncate, PCA, PCAUncentered, RandomProjection)
}


def _parse_value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split `name:key=value:...` into the registry name and its options."""
    name, *parts = spec.strip().split(":")
    if name not in REGISTRY:
        raise DiveError(f"unknown method {name!r}; valid: {', '.join(sorted(REGISTRY))}")
    options: dict[str, Any] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise DiveError(f"method {spec!r}: option {part!r} is not key=value")
        options[key.replace("-", "_")] = _parse_value(value)
    return name, options


def make_compressor(spec: str, dim: int | None, seed: int = 0) -> Compressor:
    """Build the compressor a spec names, with `dim` and `seed` set."""
    name, options = parse_spec(spec)
    try:
        return REGISTRY[name](dim=dim, seed=seed, **options)
    except TypeError as exc:
        raise DiveError(f"method {spec!r}: {exc}") from None
