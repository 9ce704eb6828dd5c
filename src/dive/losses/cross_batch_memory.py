"""SMEC's selectable cross-batch memory (S-XBM): a FIFO of past batches and its loss (SPEC 4.4).

The memory holds the *frozen* embeddings (and corpus rows) of the last `capacity` items seen,
oldest dropped first. For each item i of the current batch, its k nearest memory items by
frozen cosine are selected, and the loss keeps the compressed similarities close to the
frozen ones on exactly those pairs:

    L_xbm = mean_{i, j in topk_mem(i)} | cos(s_i, s_j) - cos(t_i, t_j) |

with t the frozen (teacher) embeddings and s the compressed (student) ones. The student side
of the memory is recomputed by the caller with the current model from the stored frozen
vectors, so it is never stale (original XBM stores features and tolerates their drift; with a
model this small recomputing is cheap). An item never selects itself (same corpus row).
Left out: anything about which model produced the student vectors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["CrossBatchMemory", "memory_similarity_loss", "select_memory_neighbours"]


class CrossBatchMemory:
    """FIFO memory of frozen embeddings and their corpus rows, at most `capacity` items."""

    def __init__(self, capacity: int, dim: int) -> None:
        if capacity < 1:
            raise ValueError(f"memory capacity must be >= 1, got {capacity}")
        if dim < 1:
            raise ValueError(f"memory dim must be >= 1, got {dim}")
        self.capacity = capacity
        self.dim = dim
        self.embeddings = torch.zeros((0, dim))
        self.rows = torch.zeros((0,), dtype=torch.long)

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def enqueue(self, embeddings: torch.Tensor, rows: torch.Tensor) -> None:
        """Append a batch (oldest items leave first once the memory is full)."""
        if embeddings.ndim != 2 or embeddings.shape[1] != self.dim:
            raise ValueError(
                f"memory expects (n, {self.dim}) embeddings, got {tuple(embeddings.shape)}"
            )
        if rows.shape != (embeddings.shape[0],):
            raise ValueError(f"rows must be ({embeddings.shape[0]},), got {tuple(rows.shape)}")
        self.embeddings = torch.cat([self.embeddings, embeddings.detach().to(torch.float32)])
        self.rows = torch.cat([self.rows, rows.to(torch.long)])
        if len(self) > self.capacity:
            self.embeddings = self.embeddings[-self.capacity :]
            self.rows = self.rows[-self.capacity :]


def select_memory_neighbours(
    teacher: torch.Tensor,
    rows: torch.Tensor,
    memory: CrossBatchMemory,
    k: int,
) -> torch.Tensor:
    """Memory positions (B, k') of each item's k most similar memory items by frozen cosine.

    k' = min(k, len(memory) - 1) when an item may be in the memory, so every selected
    position is another item; raises when the memory is too small to select anything.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    kk = min(k, len(memory) - 1)
    if kk < 1:
        raise ValueError(f"the memory holds {len(memory)} items: too few to select neighbours")
    with torch.no_grad():
        sims = F.normalize(teacher, dim=-1) @ F.normalize(memory.embeddings, dim=-1).T
        sims = sims.masked_fill(rows[:, None] == memory.rows[None, :], float("-inf"))
        return sims.topk(kk, dim=1).indices


def memory_similarity_loss(
    student: torch.Tensor,
    student_memory: torch.Tensor,
    teacher: torch.Tensor,
    teacher_memory: torch.Tensor,
    neighbours: torch.Tensor,
) -> torch.Tensor:
    """L_xbm over the selected pairs; `neighbours` (B, k) indexes the memory tensors. A scalar."""
    if student.ndim != 2 or teacher.ndim != 2 or student.shape[0] != teacher.shape[0]:
        raise ValueError(
            f"student (B, d) and teacher (B, D) must share B, got "
            f"{tuple(student.shape)} and {tuple(teacher.shape)}"
        )
    if student_memory.shape[0] != teacher_memory.shape[0]:
        raise ValueError(
            f"student memory has {student_memory.shape[0]} rows, teacher memory "
            f"{teacher_memory.shape[0]}"
        )
    if neighbours.ndim != 2 or neighbours.shape[0] != student.shape[0]:
        raise ValueError(
            f"neighbours must be (B, k) with B = {student.shape[0]}, got {tuple(neighbours.shape)}"
        )
    if neighbours.shape[1] == 0:
        raise ValueError("no memory neighbours selected")
    s = F.normalize(student, dim=-1)
    s_mem = F.normalize(student_memory, dim=-1)[neighbours]  # (B, k, d)
    with torch.no_grad():
        t = F.normalize(teacher, dim=-1)
        t_mem = F.normalize(teacher_memory, dim=-1)[neighbours]
        target = torch.einsum("bd,bkd->bk", t, t_mem)
    return (torch.einsum("bd,bkd->bk", s, s_mem) - target).abs().mean()
