"""What every learned method's training shares: seeding, batches, mining, the gate, AdamW and
the training loop itself.

Kept generic on purpose (DIVE, Matryoshka-Adaptor, Search-Adaptor and SMEC all use these
pieces): nothing here knows about a model. Each method supplies only what a step computes
(its loss) and what a check does (its score, its re-mining) to `TrainingLoop`. `batches`,
`mining` and `gate` are numpy-only; importing the package imports torch (`seeding`, `optim`,
`loop`).
`tensors.shared_tensor` turns a fit's numpy inputs into tensors without a copy, a read-only
(memory-mapped) corpus included.
"""

from __future__ import annotations

from dive.training.batches import RelevanceIndex, sample_rows
from dive.training.gate import Checkpoint, ValidationGate, validation_ndcg
from dive.training.loop import TrainingLoop
from dive.training.mining import NegativePools, mine_pools, pools_from_rankings
from dive.training.optim import AdamW
from dive.training.seeding import seeded

__all__ = [
    "AdamW",
    "Checkpoint",
    "NegativePools",
    "RelevanceIndex",
    "TrainingLoop",
    "ValidationGate",
    "mine_pools",
    "pools_from_rankings",
    "sample_rows",
    "seeded",
    "validation_ndcg",
]
