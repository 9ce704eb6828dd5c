"""A fit's numpy inputs as torch tensors, sharing their memory.

`torch.from_numpy` shares an array's memory, and warns that writing to it is "undefined
behavior" when numpy marks the array read-only: a memory-mapped `.npy`
(`np.load(path, mmap_mode="r")`), a buffer from Arrow or pandas. Under `-W error` that warning
stopped every learned fit on such a corpus. A fit reads its inputs and never writes them, so
`shared_tensor` shares a read-only array as it is, without the warning: a copy would double
the corpus's memory. Left out: tensors a fit writes into (torch makes those itself).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

__all__ = ["shared_tensor"]


def shared_tensor(arr: np.ndarray) -> torch.Tensor:
    """`torch.from_numpy(arr)`, without torch's warning when `arr` is read-only (a fit's
    input, which it never writes)."""
    if arr.flags.writeable:
        return torch.from_numpy(arr)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable",
                                category=UserWarning)
        return torch.from_numpy(arr)
