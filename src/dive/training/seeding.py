"""Seeding and thread control for one training run, restored afterwards.

`seeded(seed, threads=...)` is the one way a fit makes itself reproducible: it seeds torch's
global generator (used by `nn.Linear` initialisation), optionally caps the threads of torch
*and* of numpy's BLAS (threadpoolctl), and yields a numpy `Generator` for every sampling
decision. Everything it changes is put back on exit, so a fit does not leak global state
into the caller (the benchmark runs many fits in one process).

Why cap BLAS too: a fit interleaves torch steps with numpy GEMMs (search, PCA). On a busy
machine a 2-thread OpenBLAS or torch pool whose threads wait on each other runs small GEMMs
up to tens of times slower than one thread, so one setting must govern both.

Torch's generator and thread count are the process's, so fits in threads of one process take
turns: `seeded` holds a lock for the whole fit (reentrant: a fit inside a fit is fine). Run
fits side by side in processes (the benchmarks and the Ray engine do); a fit's own worker
threads (DIVE's race) do not seed and are not held back.

Left out: `torch.use_deterministic_algorithms`. The CPU kernels these fits use (GEMM,
elementwise, reductions, index_select) are deterministic for a fixed thread count, and
turning the flag on imports torch._dynamo and sympy, seconds per process (the tests check
that two fits with one seed are bitwise equal). Also left out: CUDA and Python's `random`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from threadpoolctl import threadpool_limits

__all__ = ["seeded"]

_ONE_FIT_AT_A_TIME = threading.RLock()  # torch's seed and thread count are process-wide


@contextmanager
def seeded(seed: int, *, threads: int | None = None) -> Iterator[np.random.Generator]:
    """Seed torch and yield `np.random.default_rng(seed)`; restore torch's state on exit.

    `threads` caps torch's and the BLAS libraries' thread pools for the duration (None
    leaves both as they are).
    """
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    with _ONE_FIT_AT_A_TIME, torch.random.fork_rng(devices=[]), \
            threadpool_limits(limits=threads, user_api="blas"):
        old_threads = torch.get_num_threads()  # read under the lock: no other fit's setting
        torch.manual_seed(seed)
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            yield np.random.default_rng(seed)
        finally:
            torch.set_num_threads(old_threads)
