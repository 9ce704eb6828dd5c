"""Training losses, one small pure function of tensors per module.

DIVE's three terms live here (hinge triplet, head-wise NT-Xent, similarity anchor); the
baselines' losses join them as they are written. Nothing here knows about models or data.
"""

from __future__ import annotations

from dive.losses.cross_batch_memory import (
    CrossBatchMemory,
    memory_similarity_loss,
    select_memory_neighbours,
)
from dive.losses.headwise_ntxent import headwise_ntxent_loss
from dive.losses.hinge_triplet import active_ratio, hinge_triplet_loss, triplet_margins
from dive.losses.pairwise_similarity import (
    pairwise_similarity_loss,
    prefix_cosine,
    topk_similarity_loss,
)
from dive.losses.query_prediction import query_prediction_loss
from dive.losses.ranking import graded_ranking_loss
from dive.losses.reconstruction import reconstruction_loss
from dive.losses.similarity_anchor import similarity_anchor_loss

__all__ = [
    "CrossBatchMemory",
    "active_ratio",
    "graded_ranking_loss",
    "headwise_ntxent_loss",
    "hinge_triplet_loss",
    "memory_similarity_loss",
    "pairwise_similarity_loss",
    "prefix_cosine",
    "query_prediction_loss",
    "reconstruction_loss",
    "select_memory_neighbours",
    "similarity_anchor_loss",
    "topk_similarity_loss",
    "triplet_margins",
]
