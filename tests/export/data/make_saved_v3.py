"""Write `saved_v3/`: model folders as format 3 wrote them before `Runtime.arrays()` (issue 14).

    PYTHONPATH=<checkout of ef4fb32>/src python tests/export/data/make_saved_v3.py

Two folders (an adapter + centre + projection runtime at int8, and PCA at float32) and
`inputs.npz` with the inputs, each folder's outputs and its `runtime_digest` (what a resumed
`dive compress` compares). `test_folder.py` checks that they still load, compute the same
codes and digest, and save back to the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dive.compressors.precision import calibrate
from dive.compressors.runtime import Adapter, Runtime, runtime_digest
from dive.export.folder import save

ROOT = Path(__file__).with_name("saved_v3")


def main() -> None:
    rng = np.random.default_rng(14)

    def arr(*shape: int, scale: float = 1.0) -> np.ndarray:
        return (scale * rng.standard_normal(shape)).astype(np.float32)

    d_in, d_out, rank = 12, 4, 6
    adapter = Adapter(arr(rank, d_in, scale=0.3), arr(rank, scale=0.1),
                      arr(d_in, rank, scale=0.3), arr(d_in, scale=0.1), activation="gelu")
    runtime = Runtime(d_in, adapter, arr(d_in, scale=0.1), arr(d_out, d_in))
    corpus = arr(40, d_in)
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    runtime = Runtime(d_in, adapter, runtime.center, runtime.projection,
                      calibrate("int8", runtime.embed(corpus)))
    pca = Runtime(d_in, center=corpus.mean(axis=0), projection=np.linalg.svd(
        corpus - corpus.mean(axis=0), full_matrices=False)[2][:d_out].astype(np.float32))
    save(runtime, ROOT / "adapter_int8", summary={"note": "issue 14 fixture"}, overwrite=True)
    save(pca, ROOT / "pca_float32", overwrite=True)
    x = arr(10, d_in)
    np.savez(ROOT / "inputs.npz", x=x, adapter_int8=runtime(x), pca_float32=pca(x),
             adapter_int8_digest=runtime_digest(runtime), pca_float32_digest=runtime_digest(pca))


if __name__ == "__main__":
    main()
