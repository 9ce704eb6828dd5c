"""Fits on one and two threads: where a cause of run-to-run difference was found (repeated rows
added in a varying order), two-thread fits are bitwise one another. Across thread counts the
kernels may split a sum another way (BLAS splits a long inner product over the threads on
some CPUs; Search-Adaptor on cacm, 48-d: weights apart after three steps), so every learned
method records its `threads` (docs/methods.md)."""

from __future__ import annotations

import numpy as np
import pytest

from dive.arrays import l2_normalize
from dive.compressors import Compressor, LabelledQueries, TrainingData, make_compressor


def problem() -> tuple[np.ndarray, TrainingData]:
    """Big enough for torch to split the candidates' backward over two threads."""
    rng = np.random.default_rng(0)
    corpus = l2_normalize(rng.standard_normal((1500, 128))).astype(np.float32)
    docs = rng.choice(len(corpus), 64, replace=False)
    queries = l2_normalize(corpus[docs] + 0.5 * rng.standard_normal((64, 128)))
    return corpus, TrainingData(LabelledQueries(queries, tuple({int(d): 1} for d in docs)))


@pytest.mark.parametrize("spec", ["search-adaptor:steps=10",
                                  "matryoshka-adaptor:steps=0:supervised_steps=10"])
def test_fits_on_two_threads_are_bitwise_one_model(spec: str) -> None:
    """Matryoshka-Adaptor and Search-Adaptor gave another model on every two-thread fit: the
    backward of their candidates' gather added repeated rows in a varying order. A one-thread
    fit is the same model up to the rounding of sums split another way: bitwise on some CPUs,
    not on all (an AVX-512 machine's BLAS split a 1500-long inner product over two threads)."""
    corpus, labels = problem()
    one, *two = [make_compressor(f"{spec}:select=false:threads={threads}", 4, seed=0)
                 .fit(corpus, labels).transform(corpus) for threads in (1, 2, 2, 2)]
    for other in two[1:]:
        np.testing.assert_array_equal(other, two[0])
    np.testing.assert_allclose(two[0], one, atol=1e-5)


def test_fits_in_threads_of_one_process_are_bitwise_their_fits_alone() -> None:
    """Each fit seeds torch's one generator and sets its one thread count: fits running at once
    in threads reseeded each other, and a Matryoshka-Adaptor came out another model.

    The models are compared by their outputs once every fit is done: a transform run while
    another thread's fit caps the process's BLAS threads (`seeding.seeded`) may round
    differently (a last bit, on OpenBLAS 0.3.31), which says nothing of the model."""
    from concurrent.futures import ThreadPoolExecutor

    corpus, labels = problem()
    specs = ["matryoshka-adaptor:steps=5:supervised_steps=5:select=false",
             "search-adaptor:steps=10:select=false", "smec:stage_steps=5:select=false"] * 2

    def fit(spec: str) -> Compressor:
        return make_compressor(spec, 8, seed=0).fit(corpus, labels)

    alone = [fit(spec).transform(corpus[:200]) for spec in specs]
    for _ in range(2):
        with ThreadPoolExecutor(len(specs)) as pool:
            together = list(pool.map(fit, specs))
        for a, model in zip(alone, together, strict=True):
            np.testing.assert_array_equal(model.transform(corpus[:200]), a)


def test_int8_ranges_are_bitwise_the_same_at_any_blas_thread_count() -> None:
    """`dive fit --precision int8` calibrated outside the fit's thread cap: a shell allowing
    two BLAS threads saved other `quantizer.low` / `width` bits than one allowing one."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    corpus = l2_normalize(rng.standard_normal((3000, 384))).astype(np.float32)
    runtime = make_compressor("pca", 48).fit(corpus).runtime_
    ranges = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads, user_api="blas"):
            quantizer = runtime.with_precision("int8", corpus).quantizer
        assert quantizer is not None
        ranges.append((quantizer.low, quantizer.width))
    np.testing.assert_array_equal(ranges[0][0], ranges[1][0])
    np.testing.assert_array_equal(ranges[0][1], ranges[1][1])
