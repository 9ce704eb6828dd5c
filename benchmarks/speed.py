"""Speed benchmark: fit time, compression throughput and exact-search speed, on CPU.

    python benchmarks/speed.py [--ratios 2,4,8,16] [--rows 200000] [--repeats 3] [--out FILE]
    python benchmarks/speed.py --fits-only --labels all --methods smec,matryoshka-adaptor
    python benchmarks/speed.py --fits-only --methods pca,dive --ratios 4 --distractors 200000
    python benchmarks/speed.py --bytes-search [--corpus-rows 1000000] [--queries 200]

Four tables, all measured in one run on this machine (2 BLAS/torch threads, the project's
reference CPU budget):

1. fit seconds of every registered method (`dive.compressors.registry.REGISTRY`) at each
   ratio on the SciFact corpus embeddings; supervised methods get 64 labelled train queries
   from the benchmark protocol's split (seed 0). Best of `--repeats` fits, fewer for slow
   methods (see `FIT_REPEAT_BUDGET_S`).
2. compression throughput: each fitted compressor's `transform` on `--rows` random unit
   vectors, next to plain numpy float32 matmuls of the same weight shapes on the same input
   (X @ W.T with W (d, D); adapters add their two matrices), best of `--repeats`, and their
   ratio (SPEC target: >= 0.5).
3. exact search (`dive.evaluate.search.top_k`, top-100) of all SciFact queries over the corpus
   at D and at each d (PCA-compressed), queries/s and the speed-up over D, beside the rate of
   the score matrix alone (what the top-k selection adds is the difference);
4. the protocol's own costs: seconds to load the SciFact BEIR folder (`load_beir`) and
   milliseconds per `ndcg_from_rankings` call on `NDCG_CASE` random top-100 rankings (what
   the unit tests once bounded; timings belong here, not in tests).

`--bytes-search` is a mode of its own: first-stage exact search (the FAISS index `dive index`
builds: `IndexFlatIP` for float32, `IndexScalarQuantizer` for float16/int8 codes,
`IndexBinaryFlat` for binary) over `--corpus-rows` synthetic unit vectors, one row per
(d, precision) in `BYTES_CONFIGS`, queries/s against bytes per vector with float32 at the
full 384 dims as the reference in the same run (the issue's target: >= 6x its queries/s at
48 bytes per vector). The corpus is Gaussian, so only speed is measured; lower d are its
first d coordinates, renormalised.

Timings that are compared interleave (each round times every candidate once), so load from
other processes slows them alike; the header prints the load average.

Embeddings come from `--embeddings`, else `$DIVE_EMBEDDINGS/<model>/scifact`, else
`<repo>/../shared/data/embeddings/<model>/scifact`; the BEIR copy (for the label split) from
`--data`, `$DIVE_DATA/scifact` or `<repo>/../shared/data/beir/scifact`. Nothing is encoded
or downloaded. Left out: GPU timings, memory profiling (see the scale benchmark) and ONNX.
"""

from __future__ import annotations

import os

# BLAS reads these once, at import: set them before numpy loads. setdefault keeps a caller's
# explicit choice.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import argparse  # noqa: E402
import functools  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from quality import at_least_one, check_page, write_page  # noqa: E402
from script_io import check_methods, check_ratios, label_budget, script_main  # noqa: E402

from dive.cli.parsers import DefaultsHelpFormatter, _int_at_least, _method_list  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATASET = "scifact"
DEFAULT_MODEL = "all-MiniLM-L6-v2"


def _int_list(text: str) -> list[int]:
    """Comma-separated positive integers (a ratio of 0 divided by zero)."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}"
                                         ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=DefaultsHelpFormatter)
    p.add_argument("--ratios", type=_int_list, default=[2, 4, 8, 16], help="ratios D/d")
    # counts at parsing: --rows 0 divided by zero after every fit, --distractors -1 and
    # --rows -3 stopped numpy there, and --full-dim 0 printed an empty table, exit 0
    p.add_argument("--rows", type=at_least_one, default=200_000,
                   help="random unit vectors compressed in the throughput test")
    p.add_argument("--repeats", type=at_least_one, default=3, help="best of this many timings")
    p.add_argument("--methods", type=_method_list, default=None,
                   help="comma-separated method specs (default: every registered method)")
    p.add_argument("--labels", type=label_budget, default="64",
                   help="labelled train queries for supervised fits (a number or 'all')")
    p.add_argument("--threads", type=at_least_one, default=2, help="torch threads")
    p.add_argument("--model", default=DEFAULT_MODEL, help="embeddings subfolder (model name)")
    p.add_argument("--embeddings", default=None, help="SciFact embeddings folder")
    p.add_argument("--data", default=None, help="SciFact BEIR folder")
    p.add_argument("--fits-only", action="store_true",
                   help="time the fits only (skip the throughput and search tables)")
    p.add_argument("--bytes-search", action="store_true",
                   help="only the first-stage search table: queries/s against bytes per vector")
    p.add_argument("--corpus-rows", type=at_least_one, default=1_000_000,
                   help="--bytes-search: synthetic corpus vectors")
    p.add_argument("--queries", type=at_least_one, default=200, help="--bytes-search: queries")
    p.add_argument("-k", type=at_least_one, default=100, help="--bytes-search: hits per query")
    p.add_argument("--full-dim", type=at_least_one, default=384,
                   help="--bytes-search: dimension of the float32 reference")
    p.add_argument("--distractors", type=_int_at_least(0), default=0,
                   help="add this many synthetic documents to the corpus the fits see "
                        "(`with_distractors`; fit cost against corpus size)")
    p.add_argument("--out", default=None, help="also write the Markdown tables here")
    return p


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def with_distractors(corpus: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """`corpus` and `n` more rows: random corpus rows, each moved by Gaussian noise of total
    norm about 0.5 and renormalised (cosine about 0.9 to its source), so they sit among the
    real documents as near-duplicates; only the cost of a fit at that size is measured."""
    rng = np.random.default_rng(seed)
    extra = corpus[rng.integers(0, len(corpus), n)]
    noise = rng.standard_normal(extra.shape, dtype=np.float32) * (0.5 / corpus.shape[1] ** 0.5)
    extra = extra + noise
    extra /= np.linalg.norm(extra, axis=1, keepdims=True)
    return np.concatenate([corpus, extra.astype(np.float32)])


def _find(explicit: str | None, env: str, shared: str, *parts: str) -> Path:
    """`explicit` (which must exist: another folder's figures were printed in its place),
    else `$env/<parts>`, else `<repo>/../shared/data/<shared>/<parts>`; the script that calls
    it exits, naming itself, when none is a folder."""
    script = Path(sys.argv[0]).name
    if explicit:
        if not Path(explicit).is_dir():
            sys.exit(f"{script}: {explicit}: no such folder")
        return Path(explicit)
    candidates = [Path(os.environ[env], *parts)] if os.environ.get(env) else []
    candidates.append(REPO.parent.joinpath("shared", "data", shared, *parts))
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    looked = ", ".join(dict.fromkeys(str(c) for c in candidates))
    sys.exit(f"{script}: no {'/'.join(parts)} folder; looked in {looked}")


def best_of(fns: Sequence[Callable[[], Any]], repeats: int) -> list[float]:
    """Fastest wall-clock seconds of each function over `repeats` rounds.

    Each round times every function once, in turn, so a burst of load from other processes
    slows all of them alike instead of one, and their ratios stay fair.
    """
    best = [float("inf")] * len(fns)
    for _ in range(max(repeats, 1)):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def weight_shapes(runtime: Any) -> list[tuple[int, int]]:
    """The (out, in) shapes of the matrices a runtime multiplies by, in order."""
    shapes = []
    if runtime.adapter is not None:
        shapes += [runtime.adapter.w1.shape, runtime.adapter.w2.shape]
    if runtime.projection is not None:
        shapes.append(runtime.projection.shape)
    return [(int(a), int(b)) for a, b in shapes]


def gemm_chain(
    x: np.ndarray, shapes: Sequence[tuple[int, int]], seed: int = 0
) -> Callable[[], Any]:
    """Plain float32 matmuls with the given weight shapes, the first and last on `x`'s rows.

    An adapter's two matrices chain (x -> r -> D); the projection applies to a (n, D) input.
    """
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(s, dtype=np.float32) for s in shapes]

    def run() -> Any:
        h = x
        out = None
        for w in weights:
            src = h if w.shape[1] == h.shape[1] else x
            out = src @ w.T
            h = out
        return out

    return run


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    align = ["---:" if i else ":---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def rate(n: float) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k" if n >= 1e3 else f"{n:.0f}"


# Fits are repeated (best of `--repeats`) only while they are cheap: a slow learned method
# is timed once rather than tripling the benchmark's run time.
FIT_REPEAT_BUDGET_S = 5.0


def fit_all(
    methods: Sequence[str], dims: Sequence[int], corpus: np.ndarray, train: Any, repeats: int
) -> tuple[dict[tuple[str, int], Any], list[list[str]]]:
    """Fit every method at every d (full-dimension methods once); fitted models and table rows.

    Each fit's time is the best of up to `repeats` fits, stopping once they have taken
    `FIT_REPEAT_BUDGET_S` in total."""
    from dive.compressors.registry import make_compressor
    from dive.evaluate.protocol import full_dim_only

    full = corpus.shape[1]
    fitted: dict[tuple[str, int], Any] = {}
    rows = []
    for method in methods:
        full_only = full_dim_only(method)
        cells = []
        for d in dims:
            if full_only and (method, full) in fitted:
                cells.append("")
                continue
            dim = full if full_only else d
            times: list[float] = []
            while len(times) < max(repeats, 1) and sum(times) < FIT_REPEAT_BUDGET_S:
                compressor = make_compressor(method, dim, seed=0)
                start = time.perf_counter()
                compressor.fit(corpus, train if compressor.supervised else None)
                times.append(time.perf_counter() - start)
            seconds = min(times)
            fitted[(method, dim)] = compressor
            cells.append(f"{seconds:.3f}" + (f" (d={full})" if full_only else ""))
        label = method + (" (supervised)" if compressor.supervised else "")
        rows.append([label, *cells])
        print(f"fitted {method}", file=sys.stderr)
    return fitted, rows


def throughput(
    fitted: dict[tuple[str, int], Any], n_rows: int, full: int, repeats: int
) -> tuple[list[list[str]], list[float]]:
    """Transform vs same-shape GEMM rates on random unit vectors: table rows and the ratios."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n_rows, full), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rows, ratios = [], []
    for (method, dim), compressor in fitted.items():
        shapes = weight_shapes(compressor.fitted_runtime())

        def transform(c: Any = compressor) -> Any:
            return c.transform(x)

        fns = [transform, gemm_chain(x, shapes)] if shapes else [transform]
        seconds = best_of(fns, repeats)
        transform_rate = n_rows / seconds[0]
        gemm_text = ratio_text = "-"
        if shapes:
            gemm_rate = n_rows / seconds[1]
            ratios.append(transform_rate / gemm_rate)
            gemm_text, ratio_text = rate(gemm_rate), f"{ratios[-1]:.2f}"
        weights = " + ".join(f"{a}x{b}" for a, b in shapes) or "-"
        rows.append([method, str(dim), weights, rate(transform_rate), gemm_text, ratio_text])
        print(f"throughput {method} d={dim}", file=sys.stderr)
    return rows, ratios


def search_speed(
    fitted: dict[tuple[str, int], Any], queries: np.ndarray, corpus: np.ndarray,
    dims: Sequence[int], repeats: int,
) -> list[list[str]]:
    """Exact top-100 queries/s at D and at each d (PCA output when fitted, else any method),
    and the rate of the score matrix alone (Q @ C.T), which shows what top-k selection costs."""
    from dive.evaluate.search import top_k

    full = corpus.shape[1]
    # a d no method was fitted at (`--methods frozen`: none) has no vectors to search
    dims = [d for d in dims if any(dim == d for _, dim in fitted)]
    pairs = []
    for d in [full, *dims]:
        q, c = queries, corpus
        if d != full:
            at_d = [model for (_, dim), model in fitted.items() if dim == d]
            compressor = fitted.get(("pca", d), at_d[0])
            q, c = compressor.transform(queries), compressor.transform(corpus)
        pairs.append((q, c))
    fns: list[Callable[[], Any]] = []
    for q, c in pairs:
        fns.append(functools.partial(top_k, q, c, 100))
        fns.append(functools.partial(np.matmul, q, c.T))
    seconds = best_of(fns, repeats)
    n = len(queries)
    search_s, score_s = seconds[0::2], seconds[1::2]
    rows = []
    for d, t_search, t_score in zip([full, *dims], search_s, score_s, strict=True):
        rows.append([
            str(d), f"{full // d}×",
            f"{n / t_search:,.0f}", f"{search_s[0] / t_search:.2f}×",
            f"{n / t_score:,.0f}", f"{score_s[0] / t_score:.2f}×",
        ])
    return rows


NDCG_CASE = (200, 3000)  # (queries, corpus rows) of the nDCG timing


def ndcg_speed(repeats: int, n_queries: int = NDCG_CASE[0], n_docs: int = NDCG_CASE[1],
               seed: int = 0) -> float:
    """Best seconds of one `ndcg_from_rankings` call on `n_queries` random top-100 rankings,
    each query judging 3 rows inside its ranking and 4 anywhere, grades -1..3."""
    from dive.evaluate.metrics import ndcg_from_rankings

    rng = np.random.default_rng(seed)
    ranked = np.stack([rng.choice(n_docs, size=100, replace=False) for _ in range(n_queries)])
    relevant = []
    for row in ranked:
        judged = np.concatenate([row[rng.integers(0, 30, 3)], rng.integers(0, n_docs, 4)])
        relevant.append({int(r): int(rng.integers(-1, 4)) for r in judged})
    ndcg_from_rankings(ranked, relevant)  # warm-up
    return best_of([functools.partial(ndcg_from_rankings, ranked, relevant)], repeats)[0]


# (d as a share of the full dimension, precision): the reference first, then by falling bytes.
BYTES_CONFIGS = (
    (1, "float32"), (1, "float16"), (1, "int8"), (4, "float32"), (2, "int8"), (4, "int8"),
    (8, "int8"), (1, "binary"), (32, "float32"), (2, "binary"), (4, "binary"),
)


def bytes_search(
    n_rows: int, full: int, n_queries: int, k: int, repeats: int, seed: int = 0
) -> list[list[str]]:
    """Queries/s of exact top-k through dive's FAISS indexes at each `BYTES_CONFIGS` entry,
    on `n_rows` synthetic vectors; rows of (d, precision, bytes/vector, queries/s, speed-up
    over the first entry). Built one at a time, timed interleaved."""
    from dive.compressors.precision import calibrate
    from dive.export.faiss_index import build_index, search_index

    rng = np.random.default_rng(seed)
    corpus = np.empty((n_rows, full), dtype=np.float32)
    for start in range(0, n_rows, 100_000):  # in blocks: no float64 copy of the corpus
        block = rng.standard_normal((min(100_000, n_rows - start), full), dtype=np.float32)
        corpus[start : start + len(block)] = _unit(block)
    queries = rng.standard_normal((n_queries, full), dtype=np.float32)
    built = []
    for share, precision in BYTES_CONFIGS:
        d = full // share
        if d < 1:
            continue
        x = _unit(corpus[:, :d]) if d < full else corpus
        quantizer = calibrate(precision, x)
        index = build_index(quantizer.encode(x), quantizer=quantizer)
        del x
        built.append((d, precision, index, _unit(queries[:, :d])))
        print(f"built {precision} d={d}: {index.bytes_per_vector} bytes/vector", file=sys.stderr)
    del corpus
    fns = [functools.partial(search_index, index, q, k) for _, _, index, q in built]
    seconds = best_of(fns, repeats)
    rows = []
    for (d, precision, index, _), t in zip(built, seconds, strict=True):
        rows.append([str(d), precision, str(index.bytes_per_vector), f"{n_queries / t:,.0f}",
                     f"{seconds[0] / t:.2f}×"])
    return rows


def _unit(x: np.ndarray) -> np.ndarray:
    """A new float32 array of `x`'s rows scaled to unit norm."""
    return np.ascontiguousarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=np.float32)


def bytes_main(args: argparse.Namespace) -> str:
    """The `--bytes-search` report."""
    import faiss

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    rows = bytes_search(args.corpus_rows, args.full_dim, args.queries, args.k, args.repeats)
    return "\n\n".join([
        "# dive first-stage search speed against bytes per vector",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; numpy "
        f"{np.__version__}, faiss {faiss.__version__} ({faiss.omp_get_max_threads()} threads); "
        f"best of {args.repeats}; total {time.perf_counter() - started:.0f} s; 1-minute load "
        f"average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after.",
        f"Exact top-{args.k} of {args.queries} queries over {args.corpus_rows:,} synthetic unit "
        f"vectors through the FAISS index `dive index` builds for each precision; speed-up "
        f"against float32 at d={args.full_dim} in the same run.\n\n"
        + table(["d", "precision", "bytes/vector", "queries/s", "speed-up vs float32"], rows),
        target_line(rows),
    ]) + "\n"


def target_line(rows: Sequence[Sequence[str]], budget: int = 48, target: float = 6.0) -> str:
    """The fastest row at `budget` bytes per vector against the float32 reference (row 0)."""
    at_budget = [r for r in rows if int(r[2]) == budget]
    if not at_budget:
        return f"No configuration at {budget} bytes per vector was run."
    best = max(at_budget, key=lambda r: float(r[4].rstrip("×")))
    speedup = float(best[4].rstrip("×"))
    verdict = "met" if speedup >= target else "missed"
    return (f"At {budget} bytes per vector the fastest first stage is {best[1]} at d={best[0]}: "
            f"{speedup:.2f}× the queries/s of float32 at d={rows[0][0]} (target ≥ {target:g}×: "
            f"{verdict}).")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.out:  # refused before the work, not after it
        check_page(Path(args.out), "speed.py")
    if args.bytes_search:
        text = bytes_main(args)
        print(text)
        if args.out:
            write_page(Path(args.out), text, "speed.py")
        return 0
    import torch

    torch.set_num_threads(args.threads)

    from dive.compressors.registry import REGISTRY
    from dive.data.beir import load_beir
    from dive.data.splits import make_split, parse_budget
    from dive.embed import get_embeddings
    from dive.evaluate.protocol import training_data
    from dive.report.summary import method_order

    methods = method_order(args.methods or REGISTRY)
    # each built before the first fit, as run_grid does (a typo was met after every other fit)
    check_methods(methods, "--methods")
    emb_dir = _find(args.embeddings, "DIVE_EMBEDDINGS", "embeddings", args.model, DATASET)
    data_dir = _find(args.data, "DIVE_DATA", "beir", DATASET)
    load_started = time.perf_counter()
    dataset = load_beir(data_dir, name=DATASET)
    load_seconds = time.perf_counter() - load_started
    emb = get_embeddings(dataset, args.model, embeddings_dir=emb_dir, progress=False)
    full = emb.dim
    check_ratios(args.ratios, full)  # floored (7 gave d=54), where quality.py refuses it
    dims = [full // r for r in args.ratios]
    train = training_data(make_split(dataset, parse_budget(args.labels), 0), emb)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]

    # Untimed: the first LAPACK/BLAS calls of a process pay one-off set-up costs.
    np.linalg.eigh(emb.corpus[:512].T @ emb.corpus[:512])
    corpus = with_distractors(emb.corpus, args.distractors) if args.distractors else emb.corpus
    fitted, fit_rows = fit_all(methods, dims, corpus, train, args.repeats)
    if not args.fits_only:
        thr_rows, ratios = throughput(fitted, args.rows, full, args.repeats)
        search_rows = search_speed(fitted, emb.queries, emb.corpus, dims, args.repeats)
        ndcg_seconds = ndcg_speed(args.repeats)

    n_val = len(train.validation) if train.validation else 0
    parts = [
        "# dive speed benchmark",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"OMP/BLAS threads {os.environ.get('OMP_NUM_THREADS')}; "
        f"best of {args.repeats}; total {time.perf_counter() - started:.0f} s; 1-minute load "
        f"average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (other processes "
        "on the same cores slow every figure).",
        f"## Fit seconds\n\n{DATASET} corpus {emb.corpus.shape[0]} x {full} "
        + (f"and {args.distractors} synthetic near-duplicates (`--distractors`) "
           if args.distractors else "")
        + f"({args.model}); supervised methods: {args.labels} labelled queries "
        f"({len(train.train)} train + {n_val} validation), seed 0; best of up to "
        f"{args.repeats} fits (fewer once they pass {FIT_REPEAT_BUDGET_S:g} s).\n\n"
        + table(["method", *(f"d={d} ({full // d}×)" for d in dims)], fit_rows),
    ]
    if not args.fits_only:
        parts += [
            f"## Compression throughput\n\n{args.rows} random unit vectors x {full}, "
            "float32. `transform` is the fitted compressor's numpy runtime (input checks, "
            "batching, adapter, centring, projection, L2 normalisation); GEMM is plain numpy "
            "`X @ W.T` with the runtime's weight shapes on the same input.\n\n"
            + table(["method", "d", "weights", "transform vectors/s", "GEMM vectors/s",
                     "transform / GEMM"], thr_rows),
            f"## Exact search\n\n`top_k`, k=100: all {len(emb.queries)} {DATASET} queries "
            f"over {emb.corpus.shape[0]} documents.\n\n"
            + table(["d", "ratio", "top_k queries/s", "speed-up vs D", "scores only "
                     "(Q @ C.T) queries/s", "speed-up vs D"], search_rows),
        ]
        if ratios:
            parts.append(f"Lowest transform / GEMM ratio: {min(ratios):.2f} (target >= 0.5).")
        parts.append(
            f"## Protocol costs\n\nLoading the {DATASET} BEIR folder: {load_seconds:.2f} s "
            f"(one run, cold or warm page cache as found). `ndcg_from_rankings`, "
            f"{NDCG_CASE[0]} queries x top-100 over {NDCG_CASE[1]} rows: "
            f"{ndcg_seconds * 1e3:.1f} ms a call.")
    text = "\n\n".join(parts) + "\n"
    print(text)
    if args.out:
        write_page(Path(args.out), text, "speed.py")
    return 0


if __name__ == "__main__":
    sys.exit(script_main("speed.py", main))
