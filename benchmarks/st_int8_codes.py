"""Check: how dive's int8 corpus codes differ from sentence-transformers' `quantize_embeddings`.

Both calibrate on the corpus itself and floor on the same grid (docs/quantization.md); this
prints where the codes differ: the dimensions that differ on many rows (with the range the
corpus spans on each: a dimension constant over the corpus, which dive widens to
`MIN_WIDTH`), then how many other codes differ and by how much at most.

    python benchmarks/st_int8_codes.py                       # scifact, all-MiniLM-L6-v2
    python benchmarks/st_int8_codes.py --dataset nfcorpus

Reads `$DIVE_EMBEDDINGS/<model>/<dataset>/corpus.npy`; needs sentence-transformers.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from script_io import script_main

from dive.compressors.precision import calibrate
from dive.embed import load_embeddings

MANY = 100  # rows on which a dimension's codes differ for it to be named on its own


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="scifact")
    p.add_argument("--model", default="all-MiniLM-L6-v2")
    args = p.parse_args()
    import sentence_transformers
    from sentence_transformers.util.quantization import quantize_embeddings

    root = Path(os.environ.get("DIVE_EMBEDDINGS", "../shared/data/embeddings"))
    corpus = load_embeddings(root / args.model / args.dataset).corpus  # one line if missing
    ours = calibrate("int8", corpus).encode(corpus).astype(np.int64)
    theirs = np.asarray(quantize_embeddings(corpus, "int8", calibration_embeddings=corpus),
                        dtype=np.int64)
    differ = ours != theirs
    per_dim = differ.sum(axis=0)
    named = np.flatnonzero(per_dim >= MANY)
    print(f"sentence-transformers {sentence_transformers.__version__}, {args.dataset} "
          f"{corpus.shape[0]} x {corpus.shape[1]}")
    for dim in named:
        print(f"dimension {dim}: {per_dim[dim]} rows differ, corpus range "
              f"{np.ptp(corpus[:, dim]):.3g}, largest difference "
              f"{np.abs(ours - theirs)[:, dim].max()} steps")
    rest = np.delete(differ, named, axis=1)
    steps = np.abs(np.delete(ours - theirs, named, axis=1))
    print(f"other dimensions: {int(rest.sum())} codes differ, by at most "
          f"{int(steps.max())} step(s)")


if __name__ == "__main__":
    sys.exit(script_main("st_int8_codes.py", main))
