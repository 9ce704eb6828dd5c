"""`dive-plus`: DIVE with our extension beyond the paper, reported in its own row.

The paper's DIVE (`dive`) trains only with the self-limiting hinge triplet loss. With
hundreds of labels the hinge stops learning early (every triplet meets the margin; see
docs/methods.md), so `dive-plus` lets the selection also pick a softplus (non-self-limiting)
arm: the same model, losses and selection, one more candidate in the grid. With few labels
the selection keeps a softplus arm only on the same paired evidence as any other arm.
Everything else, including every option, is `dive`'s (`dive.compressors.dive`).
"""

from __future__ import annotations

from dive.compressors.dive import Dive, DiveConfig

PLUS_GRID = "0x1,1x10x3,1x10@softplus"


class DivePlus(Dive):
    """`Dive` whose default selection grid adds a softplus arm (`PLUS_GRID`)."""

    method = "dive-plus"
    extension = True
    defaults = DiveConfig(grid=PLUS_GRID)
