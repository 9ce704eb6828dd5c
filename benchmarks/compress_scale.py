"""Compress stores of growing size and show that peak memory stays flat (a script, not a test).

    python benchmarks/compress_scale.py                          # 0.25 .. 4 GB, 384 -> 96
    python benchmarks/compress_scale.py --sizes-gb 0.25,1 --workdir /big/disk
    python benchmarks/compress_scale.py --index --precision int8  # `dive index` instead
    python benchmarks/compress_scale.py --parquet                 # a Parquet store instead

With `--index`, each store becomes the corpus of an embeddings folder and the child runs
`dive index` on it (a flat FAISS index of the model's outputs): its peak then holds the index
itself, so it grows with the corpus by the index's bytes (printed), not the store's.

For each size, writes a store of random L2-normalised float32 vectors to a temporary folder
chunk by chunk (never the whole array in memory), runs `python -m dive.cli compress` on it in
a child process measured with GNU `/usr/bin/time -v` (Debian: `apt-get install -y time`;
without it the child's `getrusage(RUSAGE_CHILDREN).ru_maxrss` is used), prints the store size,
vectors per second and the child's peak resident set size, then deletes the store and its
output before the next size. The model is PCA (`--dim` -> `--out-dim`) fitted on a sample and
saved as a model folder, as a user would pass it; `--method` fits another that needs no
labels instead (`matryoshka-adaptor-unsup`: a model with an adapter, whose hidden layer adds to
the peak).

With `--parquet`, the store is a Parquet file (an `id` string column and a `vector`
fixed-size-list float32 column, one row group per 65536 rows) and the output one too.

Left out: cold-cache reads (the freshly written store is mostly in the page cache; dropping
caches needs root and disturbs the machine) and the Ray engine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from script_io import script_main

from dive.cli.parsers import _int_at_least, _precision
from dive.compressors.precision import CODE_DTYPES
from dive.compressors.registry import make_compressor
from dive.compressors.runtime import Runtime
from dive.errors import DiveError
from dive.export import save
from dive.scale.formats import create_npy

GNU_TIME = Path("/usr/bin/time")
CHUNK = 65536


def write_store(path: Path, n: int, dim: int, seed: int) -> None:
    """An (n, dim) float32 .npy of unit vectors, written CHUNK rows at a time."""
    rng = np.random.default_rng(seed)
    offset = create_npy(path, n, dim, np.dtype(np.float32))
    with path.open("r+b") as f:
        f.seek(offset)
        for start in range(0, n, CHUNK):
            x = rng.standard_normal((min(CHUNK, n - start), dim), dtype=np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            f.write(x.data)


def write_parquet_store(path: Path, n: int, dim: int, seed: int) -> None:
    """The same vectors as `write_store`, as Parquet: ids and vectors, CHUNK rows a group."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    schema = pa.schema([("id", pa.string()), ("vector", pa.list_(pa.float32(), dim))])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, n, CHUNK):
            x = rng.standard_normal((min(CHUNK, n - start), dim), dtype=np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            vectors = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), dim)
            ids = pa.array([f"doc{i}" for i in range(start, start + len(x))])
            writer.write_table(pa.Table.from_arrays([ids, vectors], schema=schema))


def write_folder_files(folder: Path, n: int, dim: int) -> None:
    """The rest of an embeddings folder around `folder/corpus.npy`: ids, one query, meta."""
    with (folder / "corpus_ids.txt").open("w") as f:
        for start in range(0, n, CHUNK):
            f.write("".join(f"doc{i}\n" for i in range(start, min(n, start + CHUNK))))
    query = np.zeros((1, dim), dtype=np.float32)
    query[0, 0] = 1.0
    np.save(folder / "queries.npy", query)
    (folder / "query_ids.txt").write_text("q0\n")
    meta = {"model": "random", "dim": dim, "normalized": True, "n_corpus": n, "n_queries": 1}
    (folder / "meta.json").write_text(json.dumps(meta))


def measure(cmd: list[str]) -> tuple[float, int]:
    """Run `cmd`; return (wall seconds, peak RSS in KiB) of that process alone."""
    if GNU_TIME.exists():
        started = time.perf_counter()
        done = subprocess.run([str(GNU_TIME), "-v", *cmd], capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"{cmd[3]} failed:\n{done.stderr}")
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
        assert match, done.stderr
        return seconds, int(match.group(1))
    # A fresh middle process, so RUSAGE_CHILDREN covers this one command only.
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "rc = subprocess.run(sys.argv[1:], stderr=subprocess.DEVNULL).returncode; "
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)"
    )
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True)
    wall, rss, rc = out.stdout.split()
    if rc != "0":
        sys.exit(f"{cmd[3]} failed")
    return float(wall), int(rss)


def sizes_gb(text: str) -> list[float]:
    """An argparse type: comma-separated store sizes in GB, each finite and > 0 (`abc` stopped
    the script with a traceback once the model was fitted)."""
    try:
        sizes = [float(v) for v in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or not all(math.isfinite(s) and s > 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"expected comma-separated sizes in GB > 0, got {text!r}")
    return sizes


def store_rows(size_gb: float, dim: int) -> int:
    """Vectors of a store of `size_gb` GB of `dim`-d float32 rows."""
    return int(size_gb * 1e9) // (4 * dim)


def check_sizes(sizes: list[float], dim: int) -> None:
    """`DiveError` for a size below one vector: its empty store reached the child, whose
    failure was dumped with every line of `/usr/bin/time -v`."""
    for size in sizes:
        if store_rows(size, dim) < 1:
            raise DiveError(f"--sizes-gb {size:g}: below one {dim}-d float32 vector "
                            f"({4 * dim} bytes)")


def check_codes(out: Path, n: int, runtime: Runtime) -> None:
    """`DiveError` unless the .npy at `out` holds `n` rows of the codes `runtime` outputs:
    binary ones are uint8 of ceil(d/8) bytes, not d columns (docs/quantization.md)."""
    codes = np.load(out, mmap_mode="r")
    shape, dtype = (n, runtime.code_width), np.dtype(CODE_DTYPES[runtime.precision])
    if codes.shape != shape or codes.dtype != dtype:
        raise DiveError(f"{out}: {codes.dtype} of shape {codes.shape}, expected {dtype} of "
                        f"shape {shape} ({runtime.precision} codes)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes-gb", type=sizes_gb, default="0.25,0.5,1,2,4",
                        help="store sizes in GB (1e9)")
    parser.add_argument("--dim", type=_int_at_least(1), default=384, help="input dimension")
    parser.add_argument("--out-dim", type=_int_at_least(1), default=96, help="output dimension")
    parser.add_argument("--batch-size", type=_int_at_least(1), default=65536,
                        help="dive compress chunk")
    parser.add_argument("--workdir", default=None, help="folder for the temporary stores")
    parser.add_argument("--index", action="store_true", help="run `dive index` on an "
                        "embeddings folder around each store instead of `dive compress`")
    parser.add_argument("--precision", type=_precision, default="float32",
                        help="the model's output precision")
    parser.add_argument("--method", default="pca", help="a method needing no labels, fitted on "
                        "a 20k sample (matryoshka-adaptor-unsup: a model with an adapter)")
    parser.add_argument("--parquet", action="store_true", help="a Parquet store (ids and "
                        "vectors) instead of a .npy one")
    return parser


def main() -> None:
    args = build_parser().parse_args()

    check_sizes(args.sizes_gb, args.dim)
    if args.workdir is not None and not Path(args.workdir).is_dir():
        raise DiveError(f"{args.workdir}: no such folder (--workdir)")
    work = Path(tempfile.mkdtemp(prefix="dive-scale-", dir=args.workdir))
    try:
        rng = np.random.default_rng(0)
        sample = rng.standard_normal((20_000, args.dim), dtype=np.float32)
        model = work / "model"
        fitted = make_compressor(args.method, args.out_dim).fit(sample)
        fitted.runtime_ = fitted.fitted_runtime().with_precision(args.precision, sample)
        save(fitted, model)
        tool = "/usr/bin/time -v" if GNU_TIME.exists() else "getrusage(RUSAGE_CHILDREN)"
        if args.index and args.parquet:
            raise DiveError("--index reads an embeddings folder (.npy); leave out --parquet")
        kind = "parquet" if args.parquet else "npy"
        of = " of parquet" if args.parquet else ""
        verb = "dive index" if args.index else f"dive compress{of}, batch {args.batch_size}"
        print(f"# {verb}: {args.method} {args.dim} -> {args.out_dim} {args.precision}; "
              f"RSS by {tool}")
        print(f"# {os.cpu_count()} CPUs visible; store freshly written (page cache warm)")
        extra = f" {'index MB':>9}" if args.index else ""
        print(f"{'store GB':>9} {'vectors':>11} {'seconds':>8} {'vectors/s':>11} "
              f"{'peak RSS MB':>12}{extra}")
        for size in args.sizes_gb:
            n = store_rows(size, args.dim)
            folder = work / "embeddings"
            store = folder / "corpus.npy" if args.index else work / f"store.{kind}"
            out = work / ("out.faiss" if args.index else f"out.{kind}")
            store.parent.mkdir(exist_ok=True)
            write = write_parquet_store if args.parquet else write_store
            write(store, n, args.dim, seed=int(size * 1000))
            if args.index:
                write_folder_files(folder, n, args.dim)
                cmd = [sys.executable, "-m", "dive.cli", "index", str(model),
                       "--embeddings", str(folder), "--output", str(out)]
            else:
                cmd = [
                    sys.executable, "-m", "dive.cli", "compress", str(model),
                    "--input", str(store), "--output", str(out),
                    "--batch-size", str(args.batch_size), "--no-progress",
                ]  # fmt: skip
            seconds, rss_kib = measure(cmd)
            if args.index:
                extra = f" {out.stat().st_size / 1e6:9.0f}"
            elif args.parquet:
                import pyarrow.parquet as pq

                assert pq.ParquetFile(out).metadata.num_rows == n
            else:
                check_codes(out, n, fitted.runtime_)
            gb = store.stat().st_size / 1e9
            print(f"{gb:9.2f} {n:11,d} {seconds:8.1f} {n / seconds:11,.0f} "
                  f"{rss_kib / 1024:12.0f}{extra}")
            sys.stdout.flush()
            shutil.rmtree(folder, ignore_errors=True)
            for path in (*work.glob("store.*"), *work.glob("out.*")):
                path.unlink(missing_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(script_main("compress_scale.py", main))
