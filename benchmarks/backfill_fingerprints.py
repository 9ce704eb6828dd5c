"""Add the data fingerprint to results records written before records carried one.

    python benchmarks/backfill_fingerprints.py benchmarks/results/quality.jsonl \\
        benchmarks/results/ablation.jsonl [--data-dir DIR] [--embeddings DIR]

Each file's records without `data_fingerprint` get the fingerprint of the data they name,
loaded as `dive evaluate` loads it ($DIVE_DATA / $DIVE_EMBEDDINGS, else
<repo>/../shared/data/{beir,embeddings} when present, else the cache). Run it only where that
data is the data that produced the records: from then on a rerun skips them on its word.
Nothing else in a record changes; a file already backfilled is left as it is.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", nargs="+", help="JSONL results files, rewritten in place")
    p.add_argument("--data-dir", default=None, help="folder holding the BEIR datasets by name")
    p.add_argument("--embeddings", default=None,
                   help="embeddings folder (only for files of a single dataset)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    shared = REPO.parent / "shared" / "data"
    for var, sub in (("DIVE_DATA", "beir"), ("DIVE_EMBEDDINGS", "embeddings")):
        if (shared / sub).is_dir():
            os.environ.setdefault(var, str(shared / sub))

    from script_io import require_results_file

    from dive.errors import DiveError
    from dive.evaluate.fingerprint import backfill_fingerprints

    try:
        for path in args.results:
            require_results_file(path)  # a mistyped name was '0 record(s)', as an empty file
            added = backfill_fingerprints(path, data_dir=args.data_dir,
                                          embeddings_dir=args.embeddings)
            print(f"{path}: fingerprint added to {added} record(s)")
    except DiveError as exc:
        print(f"backfill: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
