"""S-XBM: the FIFO memory keeps the newest `capacity` items; the loss uses selected pairs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dive.losses import CrossBatchMemory, memory_similarity_loss, select_memory_neighbours


def test_memory_is_fifo_with_its_capacity() -> None:
    memory = CrossBatchMemory(capacity=5, dim=2)
    for start in range(0, 12, 3):  # batches of rows 0-2, 3-5, 6-8, 9-11
        rows = torch.arange(start, start + 3)
        memory.enqueue(torch.stack([rows.float(), -rows.float()], dim=1), rows)
        assert len(memory) == min(5, start + 3)
    assert memory.rows.tolist() == [7, 8, 9, 10, 11]
    assert memory.embeddings[:, 0].tolist() == [7.0, 8.0, 9.0, 10.0, 11.0]


def test_neighbours_are_the_most_similar_other_items() -> None:
    memory = CrossBatchMemory(capacity=10, dim=2)
    angles = torch.tensor([0.0, 0.1, 0.5, 1.5, 3.0])
    memory.enqueue(torch.stack([angles.cos(), angles.sin()], dim=1), torch.arange(5))
    teacher = torch.tensor([[1.0, 0.0]])
    picked = select_memory_neighbours(teacher, torch.tensor([0]), memory, k=2)
    assert picked.tolist() == [[1, 2]]  # row 0 itself is excluded
    unknown = select_memory_neighbours(teacher, torch.tensor([99]), memory, k=2)
    assert unknown.tolist() == [[0, 1]]


def test_neighbours_are_chosen_by_cosine_not_by_length() -> None:
    """Neighbours are the most similar by frozen cosine: by dot product a long vector at a
    wide angle outranked a short one pointing the same way."""
    memory = CrossBatchMemory(capacity=4, dim=2)
    memory.enqueue(torch.tensor([[0.1, 0.0], [10.0, 10.0], [0.0, 1.0]]), torch.arange(3))
    picked = select_memory_neighbours(torch.tensor([[1.0, 0.0]]), torch.tensor([9]), memory, 1)
    assert picked.tolist() == [[0]]


def test_loss_is_zero_when_student_equals_teacher_and_positive_otherwise() -> None:
    torch.manual_seed(0)
    teacher = F.normalize(torch.randn(4, 6), dim=-1)
    bank = F.normalize(torch.randn(8, 6), dim=-1)
    picked = torch.randint(0, 8, (4, 3))
    assert float(memory_similarity_loss(teacher, bank, teacher, bank, picked)) == pytest.approx(
        0.0, abs=1e-6
    )
    assert float(memory_similarity_loss(teacher[:, :2], bank[:, :2], teacher, bank, picked)) > 0


def test_the_memory_stores_frozen_values_without_a_gradient_path() -> None:
    """A batch enqueued with its graph kept the graph alive in the memory: every later step's
    loss reached back through freed graphs of earlier steps."""
    memory = CrossBatchMemory(capacity=4, dim=2)
    x = torch.ones(2, 2, requires_grad=True)
    memory.enqueue(x * 2, torch.arange(2))
    assert not memory.embeddings.requires_grad and memory.embeddings.grad_fn is None
    assert memory.embeddings.tolist() == [[2.0, 2.0], [2.0, 2.0]]


def test_the_target_is_the_teachers_cosine_whatever_its_scale() -> None:
    """The target is cos(t_i, t_j): an unnormalised teacher gave a dot product instead, so a
    student with exactly the teacher's angles was pulled away from them."""
    teacher = torch.tensor([[3.0, 0.0], [0.0, 2.0]])
    bank = torch.tensor([[4.0, 0.0], [1.0, 1.0]])
    picked = torch.tensor([[0, 1], [0, 1]])
    loss = memory_similarity_loss(teacher / 7, bank * 5, teacher, bank, picked)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)


def test_rejects_bad_capacity_and_too_small_memory() -> None:
    with pytest.raises(ValueError, match="capacity"):
        CrossBatchMemory(capacity=0, dim=2)
    memory = CrossBatchMemory(capacity=3, dim=2)
    memory.enqueue(torch.zeros(1, 2), torch.tensor([0]))
    with pytest.raises(ValueError, match="too few"):
        select_memory_neighbours(torch.zeros(1, 2), torch.tensor([0]), memory, k=1)


def test_loss_is_the_mean_absolute_gap_between_the_cosines() -> None:
    """L_xbm = mean |cos(s_i, s_j) - cos(t_i, t_j)| over the picked pairs: not squared, and not
    a sum, which grows with the batch and k and rescales the term against the other losses."""
    teacher, bank = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    student = torch.tensor([[2.0, 0.0]])  # normalised first
    student_bank = torch.tensor([[0.6, 0.8], [0.0, 1.0]])  # cosines 0.6 and 0 against 0 and 1
    loss = memory_similarity_loss(student, student_bank, teacher, bank, torch.tensor([[0, 1]]))
    assert float(loss) == pytest.approx((0.6 + 1.0) / 2)
