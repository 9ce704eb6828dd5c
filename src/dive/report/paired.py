"""A score as a share of the frozen reference, both averaged over the seeds both ran.

On a collection without train qrels the queries a run is evaluated on (half of them) change
with the seed, so a mean over seeds 0-2 and a mean over seed 1 score different queries and
their ratio is not a share of anything. Every "keeps X% of frozen" answer (`dive recommend`,
the report's smallest dimension and fewest bytes) therefore compares a configuration with
frozen on the seeds they share, as `dive.report.gains` compares a method with its references;
a configuration sharing no seed with frozen is not compared at all (`pair` gives None) and the
callers say so. Left out: grouping records into configurations (the callers' job) and any
weighting of seeds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

# Means are averages of float32-derived scores; a hair of slack keeps "exactly at the target"
# (e.g. keep=1.0 with a configuration that reproduces frozen) from failing on rounding.
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Paired:
    """A configuration against frozen on the seeds both ran."""

    seeds: tuple[int, ...]  # the shared seeds, ascending (never empty)
    score: float  # the configuration's mean over `seeds`
    std: float  # its population std over `seeds`
    reference: float  # frozen's mean over the same seeds

    @property
    def share(self) -> float:
        """The configuration's mean as a share of frozen's, on the same seeds (NaN when
        frozen scores 0 there: a share of nothing)."""
        return self.score / self.reference if self.reference else math.nan

    def keeps(self, keep: float) -> bool:
        """Whether the score is at least `keep` x frozen's on the same seeds; never where
        frozen scores 0 there (0 was "kept" at any share, and recommended as "nan%")."""
        return self.reference > 0 and self.score >= keep * self.reference - TOLERANCE


def pair(scores: Mapping[int, float], reference: Mapping[int, float]) -> Paired | None:
    """`scores` (seed -> metric) against `reference` (frozen's) on their shared seeds; None
    when they share none."""
    seeds = tuple(sorted(set(scores) & set(reference)))
    if not seeds:
        return None
    mine = [scores[s] for s in seeds]
    return Paired(seeds, float(np.mean(mine)), float(np.std(mine)),
                  float(np.mean([reference[s] for s in seeds])))


def on_fewer_seeds(compared: tuple[int, ...], *ran: tuple[int, ...]) -> bool:
    """Whether a comparison on the seeds `compared` left out a seed one of its sides `ran`
    (an empty `ran`: not known): then its means are not those the tables show, and the seeds
    are named beside them."""
    return any(side and compared != side for side in ran)


def seed_list(seeds: Iterable[int]) -> str:
    """`seed 1`, `seeds 0, 2`: how a set of seeds reads in a message."""
    seeds = sorted(set(seeds))
    return f"seed{'s' if len(seeds) != 1 else ''} {seed_ranges(seeds)}"


def seed_ranges(seeds: Iterable[int]) -> str:
    """`0, 1, 2, 5`; four or more consecutive seeds as a range, `0-419, 421` (a results file
    of hundreds of seeds spelt out each in every cell of a report)."""
    runs: list[list[int]] = []
    for seed in sorted(set(seeds)):
        if runs and seed == runs[-1][-1] + 1:
            runs[-1].append(seed)
        else:
            runs.append([seed])
    return ", ".join(f"{run[0]}-{run[-1]}" if len(run) >= 4 else ", ".join(map(str, run))
                     for run in runs)
