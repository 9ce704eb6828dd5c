"""`dive-plus`: DIVE with our extension beyond the paper, reported in its own row.

The paper's DIVE (`dive`) trains only with the self-limiting hinge triplet loss. With
hundreds of labels the hinge stops learning early (every triplet meets the margin; see
docs/methods.md), so `dive-plus` lets the selection also pick a softplus (non-self-limiting)
arm: the same model, losses and selection, one more candidate in the grid. With few labels
the selection keeps a softplus arm only on the same paired evidence as any other arm.
When it chooses on a holdout (100+ validation queries), its race also runs the leading arm
on while its best check is in the second half of its runs (`extend_at=0.5`; `dive` only
while it is the last check): a held-out curve that still trends up often dips at its last
check, and with thousands of labels `dive` stopped arms that went on rising
(docs/methods.md). Everything else, including every option, is `dive`'s
(`dive.compressors.dive`).
"""

from __future__ import annotations

from dive.compressors.dive import Dive, DiveConfig

PLUS_GRID = "0x1,1x10x3,1x10@softplus"


class DivePlus(Dive):
    """`Dive` whose default selection grid adds a softplus arm (`PLUS_GRID`) and whose race
    runs a holdout's leader on while its best check is past half its runs (`extend_at=0.5`)."""

    method = "dive-plus"
    extension = True
    defaults = DiveConfig(grid=PLUS_GRID, extend_at=0.5)
