"""Write fixed_weight_v1.npz: the baselines' outputs before the selection grid (issue 16).

Run once with the sources of the commit before the grid (f21db84) first on the path:

    PYTHONPATH=<checkout of f21db84>/src python tests/compressors/data/make_fixed_weight_v1.py

It fits Search-Adaptor and the supervised Matryoshka-Adaptor with their fixed weights on the
synthetic fixture of `tests/compressors/conftest.py` (30 graded queries: 20 train, 10
validation) and stores each `transform(corpus)`. `test_fixed_weight_v1.py` checks that a
one-point grid reproduces them (bit for bit on the machine that wrote them, within 1e-3 on
another CPU).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dive.arrays import l2_normalize
from dive.compressors import LabelledQueries, TrainingData, make_compressor

SPECS = {
    "search-adaptor": "search-adaptor:steps=60:eval_every=10:hidden=16:batch_size=32:lr=0.01",
    "matryoshka-adaptor": (
        "matryoshka-adaptor:steps=40:supervised_steps=30:eval_every=10:batch_size=64:hidden=16"
    ),
}


def fixture() -> tuple[np.ndarray, TrainingData]:
    """The conftest corpus and `make_labels(30, graded=True)`, split 20 train / 10 validation."""
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    x = (rng.standard_normal((200, 16)) * np.linspace(3, 0.2, 16)) @ basis
    corpus = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    rng = np.random.default_rng(1)
    docs = rng.choice(len(corpus), 30, replace=False)
    queries = l2_normalize(corpus[docs] + 0.3 * rng.standard_normal((30, 16)))
    relevant = tuple({int(d): 2, int((d + 1) % len(corpus)): 1} for d in docs)
    train = LabelledQueries(queries[:20], relevant[:20])
    return corpus, TrainingData(train, LabelledQueries(queries[20:], relevant[20:]))


def main() -> None:
    corpus, labels = fixture()
    outputs = {
        name: make_compressor(spec, 4, seed=1).fit(corpus, labels).transform(corpus)
        for name, spec in SPECS.items()
    }
    np.savez(Path(__file__).with_name("fixed_weight_v1.npz"), **outputs)


if __name__ == "__main__":
    main()
