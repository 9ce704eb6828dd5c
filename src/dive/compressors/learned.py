"""What every learned method shares on the torch-free side: a config base and the constructor.

DIVE (`dive.compressors.dive`) and the published baselines (`dive.compressors._baseline`:
Matryoshka-Adaptor, Search-Adaptor, SMEC) hold their hyper-parameters in a frozen dataclass
derived from `LearnedConfig`, built by `dive.compressors.options.build` from keyword options
or a method spec (`smec:stage_steps=100`). `LearnedCompressor` is the one constructor
`Cls(dim, seed, *, config=None, **options)` and the one `config()` policy: the options that
only say how fast a fit runs (`LearnedConfig.speed_fields`: DIVE's workers) are left out of
the recorded config, since they do not change the model. `threads` is recorded: torch's and
BLAS's kernels are deterministic for a fixed thread count only, and a baseline's fit with two
threads differs from its fit with one (outputs up to 0.03 apart on cacm at 48-d).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from dive.compressors.base import Compressor
from dive.compressors.options import Rule, at_least, build, check, coerce
from dive.errors import DiveError, kind_of


@dataclass(frozen=True)
class LearnedConfig:
    """Options every learned method has, with one meaning everywhere (subclasses may change a
    default, not a meaning)."""

    hidden: int | None = None  # adapter width r; None means r = D
    lr: float = 1e-3  # learning rate
    # choose what the fit keeps on the labelled queries (False: DIVE chooses nothing; a
    # baseline keeps its configured setting, still early-stopped on them, as its paper)
    select: bool = True
    min_gain_z: float = 0.0  # leave the start only for a paired gain >= z std errors (0: any)
    eval_every: int = 25  # steps between validation checks
    threads: int | None = 1  # torch + BLAS threads during the fit (None: leave as they are)

    # how fast, not what: options left out of the recorded config (the model is the same)
    speed_fields: ClassVar[tuple[str, ...]] = ()

    def rules(self) -> list[Rule]:
        """(option, valid?, valid values) for every option; subclasses add theirs."""
        return [
            ("hidden", self.hidden is None or self.hidden >= 1, ">= 1 (or None for D)"),
            *at_least(self, 0, "lr", strict=True),
            *at_least(self, 0, "min_gain_z"),
            *at_least(self, 1, "eval_every"),
            ("threads", self.threads is None or self.threads >= 1, ">= 1 (or None)"),
        ]

    def __post_init__(self) -> None:
        coerce(self)
        check(self, self.rules())

    def recorded(self) -> dict[str, Any]:
        """The options as JSON-ready values, less `speed_fields`."""
        values = dataclasses.asdict(self)
        for name in self.speed_fields:
            del values[name]
        return values


class LearnedCompressor(Compressor):
    """A learned method: its options in a frozen `config_class`, built once by the constructor.

    `Cls(dim, seed, **options)` takes any field of `config_class` as a keyword (the registry
    passes `dive:heads=1` this way), or a whole `config=`.

    Parameters
    ----------
    dim, seed
        As for every compressor (`Compressor`).
    config : LearnedConfig or None, default=None
        Every option at once, a `config_class` (anything else raises `DiveError`); None means
        the class's `defaults`, else `config_class()`.
    **options
        Any field of `config_class` by name, applied over `config` (its fields, defaults and
        valid values are listed there); an unknown name or a bad value raises `DiveError`.

    Attributes
    ----------
    options : LearnedConfig
        The options in use, a `config_class`. `config()` returns them with `dim` and `seed`,
        less the `speed_fields` (DIVE's workers), which change how fast a fit runs only.
    runtime_, fit_info_
        As for every compressor (`Compressor`); `fit_info_.summary` is the fit's `FitSummary`.
    """

    config_class: ClassVar[type[LearnedConfig]]
    defaults: ClassVar[LearnedConfig | None] = None  # what options apply to (None: the class's)

    def __init__(
        self,
        dim: int | None = None,
        seed: int = 0,
        *,
        config: LearnedConfig | None = None,
        **options: Any,
    ) -> None:
        super().__init__(dim=dim, seed=seed)
        if config is not None and not isinstance(config, self.config_class):
            raise DiveError(f"{self.method}: config must be a {self.config_class.__name__}, got "
                            f"{kind_of(config)} (options by name go as keywords)")
        self.options = build(self.config_class, self.method, options,
                             base=config if config is not None else self.defaults)

    def config(self) -> dict[str, Any]:
        return {**super().config(), **self.options.recorded()}
