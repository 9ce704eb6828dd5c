"""What every learned method's training shares: seeding, batches, mining, the gate, AdamW.

Kept generic on purpose (Matryoshka-Adaptor, Search-Adaptor and SMEC can use the same
pieces as DIVE): nothing here knows about a model. The loops themselves live with each
method, which differ too much in what a step computes to share one loop without a pile of
switches. `batches`, `mining` and `gate` are numpy-only; importing the package imports torch
(`seeding`, `optim`).
"""

from __future__ import annotations

from dive.training.batches import RelevanceIndex, sample_rows
from dive.training.gate import Checkpoint, ValidationGate, validation_ndcg
from dive.training.mining import NegativePools, mine_pools, pools_from_rankings
from dive.training.optim import AdamW
from dive.training.seeding import seeded

__all__ = [
    "AdamW",
    "Checkpoint",
    "NegativePools",
    "RelevanceIndex",
    "ValidationGate",
    "mine_pools",
    "pools_from_rankings",
    "sample_rows",
    "seeded",
    "validation_ndcg",
]
