"""The CLI's promise for bad input, checked over a table of cases (README, "Errors").

Each case runs `dive` in-process on a small workspace (a tiny dataset, its embeddings, a saved
PCA model, an index, stores, a results file) and checks: a non-zero exit, exactly one line on
stderr naming the problem, no traceback, no file that existed before changed, and no new
file except what a resume needs. File-system faults (disk full, a read-only folder) are
simulated with monkeypatch, since the tests may run as root.
"""

from __future__ import annotations

import builtins
import errno
import fnmatch
import io
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dive.cli import main
from dive.compressors.pca import PCA
from dive.evaluate.records import ResultsFile
from dive.export.folder import save
from tests.conftest import write_tiny_beir

Setup = Callable[[Path, pytest.MonkeyPatch], None]


def record(seed: int) -> dict[str, object]:
    """A valid results record."""
    return {"dataset": "tiny", "model": "m", "method": "pca", "dim": 8, "ratio": 4,
            "budget": "16", "seed": seed, "ndcg@10": 0.5, "recall@100": 0.9, "mrr@10": 0.4,
            "fit_seconds": 0.1, "n_params": 10, "config": {}}


@dataclass(frozen=True)
class Case:
    name: str
    argv: str  # formatted with ws=<workspace>, split on spaces
    error: str  # a substring of the one stderr line
    setup: Setup | None = None
    leaves: tuple[str, ...] = ()  # globs of new files allowed (what a resume needs)


def read_only(folder: str) -> Setup:
    """Refuse every write under ws/`folder`, as a read-only mount would (even for root)."""

    def setup(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        root = str(ws / folder) + os.sep
        real_open, real_mkdir, real_builtin_open = os.open, os.mkdir, builtins.open

        def check(path: object) -> None:
            if isinstance(path, (str, bytes, os.PathLike)) and os.path.abspath(
                os.fsdecode(path)
            ).startswith(root):
                raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))

        def os_open(path: object, flags: int, *args: object, **kwargs: object) -> int:
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                check(path)
            return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

        def mkdir(path: object, *args: object, **kwargs: object) -> None:
            check(path)
            real_mkdir(path, *args, **kwargs)  # type: ignore[arg-type]

        def open_(file: object, mode: str = "r", *args: object, **kwargs: object) -> object:
            if any(c in mode for c in "wax+"):
                check(file)
            return real_builtin_open(file, mode, *args, **kwargs)  # type: ignore[call-overload]

        monkeypatch.setattr(os, "open", os_open)
        monkeypatch.setattr(os, "mkdir", mkdir)
        monkeypatch.setattr(builtins, "open", open_)
        monkeypatch.setattr(io, "open", open_)

    return setup


def disk_full(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dive.scale import stream

    def write(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(stream, "write_npy_rows", write)


def fsync_full(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every fsync fails as on a full disk: where a saved folder's files are flushed."""

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", fsync)


def short_npy_write(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """numpy's own error for a write cut short (a full disk), which carries no errno."""

    def save(*args: object, **kwargs: object) -> None:
        raise OSError("537600 requested and 76768 written")

    monkeypatch.setattr(np, "save", save)


def mount_point(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ws/mnt: an empty folder the system says is a mount point (a container's volume)."""
    (ws / "mnt").mkdir()
    ismount = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == ws / "mnt" or ismount(p))


def mounted_results(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ws/mnt.jsonl: an empty results file the system says is a mount point (one file bound
    into a container, `-v results.jsonl:/app/results.jsonl`)."""
    (ws / "mnt.jsonl").touch()
    ismount = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == ws / "mnt.jsonl" or ismount(p))


def no_run(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a grid run starts: the error is due before the work."""
    from dive.evaluate import protocol

    monkeypatch.setattr(protocol, "run_one", lambda *_: pytest.fail("a run started"))


def edit_model(**fields: object) -> Setup:
    """A copy of the model at ws/edited with config.json fields changed by hand ("DEL" drops)."""

    def setup(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        shutil.copytree(ws / "model", ws / "edited")
        config = json.loads((ws / "edited" / "config.json").read_text())
        config.update(fields)
        config = {k: v for k, v in config.items() if v != "DEL"}
        (ws / "edited" / "config.json").write_text(json.dumps(config))

    return setup


def in_turn(*setups: Setup) -> Setup:
    def setup(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        for each in setups:
            each(ws, monkeypatch)

    return setup


def link(name: str, target: str) -> Setup:
    """ws/`name`, a symbolic link to ws/`target` (which need not exist)."""

    def setup(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        (ws / name).symlink_to(ws / target)

    return setup


def append_line(name: str, text: str) -> Setup:
    def setup(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        with (ws / name).open("a") as handle:
            handle.write(text)

    return setup


def raw_field(name: str, raw: str) -> Setup:
    """ws/`name`, a JSON object's file, with a field whose value is the JSON text `raw` (one
    no Python value writes back: an integer of 5000 digits, 100000 nested lists)."""

    def setup(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        text = (ws / name).read_text()
        (ws / name).write_text(text.replace("{", '{"note": ' + raw + ", ", 1))

    return setup


HUGE, DEEP = "9" * 5000, "[" * 100_000 + "]" * 100_000


def header_of_more_rows(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ws/huge.npy: x.npy's header made to say 10**12 rows (a damaged shape field)."""
    data = (ws / "x.npy").read_bytes()
    (ws / "huge.npy").write_bytes(data.replace(b"(10, 32)", b"(1000000000000, 32)", 1))


def api_vectors(change: str = "") -> Setup:
    """ws/api/{corpus,queries}.parquet: the tiny dataset's vectors as an API would give them,
    the corpus file broken as `change` says."""

    def setup(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        (ws / "api").mkdir()
        for kind, ids_file, npy in (("corpus", "corpus_ids.txt", "corpus.npy"),
                                    ("queries", "query_ids.txt", "queries.npy")):
            ids = (ws / "emb" / ids_file).read_text().split()
            rows = [list(map(float, row)) for row in np.load(ws / "emb" / npy)]
            if kind == "corpus":
                if change == "duplicate":
                    ids[7] = ids[3]
                elif change == "unknown":
                    ids[5] = "not-a-doc"
                elif change == "missing":
                    ids, rows = ids[:-1], rows[:-1]
                elif change == "ragged":
                    rows[6] = rows[6][:-1]
                elif change == "nan":
                    rows[9][4] = float("nan")
                elif change == "zero":
                    rows[2] = [0.0] * len(rows[2])
            id_values: list[Any] = ids
            if kind == "corpus" and change == "binary ids":
                id_values = [ident.encode() for ident in ids]
            table = pa.table({"id": id_values,
                              "vector": pa.array(rows, pa.list_(pa.float32()))})
            pq.write_table(table, ws / "api" / f"{kind}.parquet")

    return setup


def file_text(name: str, text: str) -> Setup:
    def setup(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        (ws / name).write_text(text)

    return setup


def empty_file(name: str) -> Setup:
    def setup(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        (ws / name).write_bytes(b"")

    return setup


def full_vectors(value: float) -> Setup:
    """ws/full.npy: the corpus's full vectors, one per index row, with row 0 set to `value`."""

    def setup(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        full = np.load(ws / "emb" / "corpus.npy")
        full[0] = value
        np.save(ws / "full.npy", full)

    return setup


def partitioned(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ws/shards: a shard, and another in a partition subfolder."""
    (ws / "shards" / "part=1").mkdir(parents=True)
    shutil.copy(ws / "x.npy", ws / "shards" / "a.npy")
    shutil.copy(ws / "x.npy", ws / "shards" / "part=1" / "b.npy")


def embeddings_of_dim(dim: int) -> Setup:
    """ws/emb<dim>: the tiny dataset's embeddings folder cut to its first `dim` dimensions."""

    def setup(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        emb = Path(shutil.copytree(ws / "emb", ws / f"emb{dim}"))
        for name in ("corpus.npy", "queries.npy"):
            x = np.load(emb / name)[:, :dim]
            np.save(emb / name, x / np.linalg.norm(x, axis=1, keepdims=True))
        meta = json.loads((emb / "meta.json").read_text())
        (emb / "meta.json").write_text(json.dumps({**meta, "dim": dim}))

    return setup


def smaller_collection(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ws/other/tiny: a collection of 100 documents whose ids are ws/emb's first 100 (classic
    collections number theirs from 1, so another one's folder holds the same ids and more)."""
    write_tiny_beir(ws / "other", n_docs=100, seed=1)


def lance_table(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ws/db/docs: a LanceDB table whose vectors are in a column named 'embedding'."""
    import lancedb
    import pyarrow as pa

    x = np.load(ws / "x.npy")
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])
    lancedb.connect(str(ws / "db")).create_table(
        "docs", pa.table({"id": [f"d{i}" for i in range(len(x))], "embedding": vectors}))


GRID = "--embeddings {ws}/emb --methods frozen --ratios 2 --budgets all --seeds 0"
EVALUATE = "evaluate --datasets {ws}/tiny " + GRID
FIT_DATA = "fit --dataset {ws}/tiny --embeddings {ws}/emb"
FIT = FIT_DATA + " --method pca --dim 8"
SEARCH = "search {ws}/index.faiss {ws}/model"
COMPRESS = "compress {ws}/model --no-progress --input"
IMPORT = ("embed --dataset {ws}/tiny --from-parquet {ws}/api/corpus.parquet --queries-parquet "
          "{ws}/api/queries.parquet --output {ws}/imported")

CASES = [
    # arguments (issue 12, item 10)
    Case("seeds -1", EVALUATE + " --seeds -1 --results {ws}/r.jsonl", "--seeds: expected an "
         "integer >= 0, got -1"),
    Case("seed -1", FIT + " --seed -1 --output {ws}/m", "--seed: expected an integer >= 0, got -1"),
    Case("index seed -1", "index {ws}/model --embeddings {ws}/emb --opq 2 --seed -1 --output "
         "{ws}/i.faiss", "--seed: expected an integer >= 0, got -1"),
    # an option with nothing to act on was taken without a word
    Case("index opq of one dimension each", "index {ws}/model --embeddings {ws}/emb --opq 8 "
         "--output {ws}/i.faiss", "opq8: 8 sub-quantizers of one dimension each take the bytes "
         "int8 takes, where OPQ cannot help; give M below the dimension 8, or use the int8 "
         "precision"),
    # '-' as a file: evaluate wrote files named '-', report read the file '-' (not stdin)
    Case("evaluate results -", EVALUATE + " --results -", "--results: '-' (standard output): "
         "this verb writes files; give a path"),
    Case("evaluate plot -", EVALUATE + " --results {ws}/r.jsonl --plot -", "--plot: '-' "
         "(standard output): this verb writes files; give a path"),
    # a trailing separator names a folder: Path dropped it, writing the file `new`
    Case("index output a folder", "index {ws}/model --embeddings {ws}/emb --output {ws}/new/",
         "--output: '{ws}/new/' ends in a separator, naming a folder; this writes a file: give "
         "its path"),
    Case("evaluate results a folder", EVALUATE + " --results {ws}/r/", "--results: '{ws}/r/' "
         "ends in a separator, naming a folder; this writes a file: give its path"),
    # and so does a last "." (Path drops it too: the file `r.jsonl` was written)
    Case("evaluate results a folder's dot", EVALUATE + " --results {ws}/r.jsonl/.",
         "--results: '{ws}/r.jsonl/.' ends in '.', naming a folder; this writes a file: give "
         "its path"),
    Case("export onnx a folder's dot", "export {ws}/model --format onnx --output {ws}/m.onnx/.",
         "'{ws}/m.onnx/.' ends in '.', naming a folder; an ONNX export is one file"),
    # and `/..`: refused only after the folder `r.jsonl` was made, and left there empty
    Case("evaluate results a folder's parent", EVALUATE + " --results {ws}/r.jsonl/..",
         "--results: '{ws}/r.jsonl/..' ends in '..', naming a folder; this writes a file: give "
         "its path"),
    Case("report results -", "report --results - --output {ws}/rep", "--results: '-' "
         "(standard input): this verb reads files; give a path"),
    # taken modulo 2**31 without a word (seeds 0 and 2**32 built the same index)
    Case("index seed past FAISS's", "index {ws}/model --embeddings {ws}/emb --opq 2 --seed "
         "4294967296 --output {ws}/i.faiss", "--seed: expected an integer in 0..2147483647, "
         "got 4294967296"),
    # evaluate's --rescore-with names a space; search's old --rescore-with, a file
    Case("search rescore-with a space", SEARCH + " --queries-npy {ws}/q.npy --rescore-with full",
         "a file of vectors, not the space 'full' (evaluate's --rescore-with); here give the "
         "vectors' file, and --rescore-space full to say which they are"),
    Case("index seed without opq", "index {ws}/model --embeddings {ws}/emb --seed 7 --output "
         "{ws}/i.faiss", "--seed is used only with --opq"),
    Case("rescore-with without a factor", EVALUATE + " --precisions int8 --rescore-with "
         "compressed --results {ws}/r.jsonl", "--rescore-with is used only with a rescore "
         "factor above 0 (--rescore-factors)"),
    Case("ratios 0", EVALUATE + " --ratios 0 --results {ws}/r.jsonl", "--ratios: expected an "
         "integer >= 1, got 0"),
    Case("ratios -2", EVALUATE + " --ratios -2 --results {ws}/r.jsonl", "got -2"),
    Case("ratios 2,-2", EVALUATE + " --ratios 2,-2 --results {ws}/r.jsonl", "got -2"),
    Case("k 0", SEARCH + " --queries-npy {ws}/q.npy -k 0", "-k: expected an integer >= 1"),
    Case("k -5", SEARCH + " --queries-npy {ws}/q.npy -k -5", "-k: expected an integer >= 1"),
    Case("methods ,", EVALUATE + " --methods , --results {ws}/r.jsonl", "--methods: expected a "
         "comma-separated list"),
    Case("seeds 0,,1", EVALUATE + " --seeds 0,,1 --results {ws}/r.jsonl",
         "argument --seeds: item 2 of '0,,1' is empty"),
    Case("methods frozen,", EVALUATE + " --methods frozen, --results {ws}/r.jsonl",
         "argument --methods: item 2 of 'frozen,' is empty"),
    Case("data-dir is a file", "evaluate --datasets tiny --data-dir {ws}/afile " + GRID,
         "afile: data_dir is not a folder (--data-dir)"),
    Case("dim not a number", FIT_DATA + " --method pca --dim x --output {ws}/m",
         "--dim: expected an integer"),
    Case("unknown verb", "frobnicate", "invalid choice: 'frobnicate'"),
    # results files (item 11)
    Case("report binary", "report --results {ws}/bin.jsonl --output {ws}/rep",
         "bin.jsonl:1: not UTF-8"),
    Case("report folder", "report --results {ws}/emb --output {ws}/rep", "emb: is a folder"),
    Case("report missing results over an existing output", "report --results {ws}/nope.jsonl "
         "--output {ws}/emb", "nope.jsonl: no such results file"),
    Case("report text metric", "report --results {ws}/results.jsonl --output {ws}/rep",
         "results.jsonl:2: ndcg@10 is 'high'",
         append_line("results.jsonl", json.dumps({**record(seed=5), "ndcg@10": "high"}) + "\n")),
    Case("report null dim", "report --results {ws}/results.jsonl --output {ws}/rep",
         "results.jsonl:2: dim is None",
         append_line("results.jsonl", json.dumps({**record(seed=5), "dim": None}) + "\n")),
    Case("report negative dim", "report --results {ws}/results.jsonl --output {ws}/rep",
         "results.jsonl:2: dim is -4, expected an integer >= 1",
         append_line("results.jsonl", json.dumps({**record(seed=5), "dim": -4}) + "\n")),
    # json reads no integer of over 4300 digits, nor nesting past its recursion limit
    Case("report a number of 5000 digits", "report --results {ws}/results.jsonl --output "
         "{ws}/rep", "results.jsonl:1: not valid JSON (a number with too many digits)",
         raw_field("results.jsonl", HUGE)),
    Case("compress a model whose config nests too deeply", COMPRESS + " {ws}/x.npy --output "
         "{ws}/o.npy", "config.json: not valid JSON (nested too deeply)",
         raw_field("model/config.json", DEEP)),
    Case("search an index meta of a number of 5000 digits", SEARCH + " --queries-npy "
         "{ws}/q.npy", "index.faiss.meta.json: not valid JSON (a number with too many digits)",
         raw_field("index.faiss.meta.json", HUGE)),
    Case("index embeddings meta nested too deeply", "index {ws}/model --embeddings {ws}/emb "
         "--output {ws}/i.faiss", "meta.json: not valid JSON (nested too deeply)",
         raw_field("emb/meta.json", DEEP)),
    Case("report a dim beyond 64 bits", "report --results {ws}/results.jsonl --output {ws}/rep",
         "results.jsonl:2: dim is 1" + "0" * 30 + ", expected an integer",
         append_line("results.jsonl", json.dumps({**record(seed=5), "dim": 10**30}) + "\n")),
    Case("report a config that is no object", "report --results {ws}/results.jsonl --output "
         "{ws}/rep", "results.jsonl:2: config is 5, expected a JSON object",
         append_line("results.jsonl", json.dumps({**record(seed=5), "config": 5}) + "\n")),
    Case("search queries whose header asks 10**12 rows", SEARCH + " --queries-npy "
         "{ws}/huge.npy", "huge.npy: cannot be read into memory", header_of_more_rows),
    Case("method option of 5000 digits", EVALUATE + " --methods pca:foo=" + HUGE
         + " --results {ws}/r.jsonl", "method 'pca': option foo: a number of 5000 digits "
         "(--methods)"),
    Case("seeds beyond 64 bits", EVALUATE + " --seeds 99999999999999999999 --results "
         "{ws}/r.jsonl", "seeds must be integers in 0..2**63-1, got 99999999999999999999 "
         "(--seeds)"),
    Case("a seed past FAISS's with an opq precision (it built seed 0's index)", EVALUATE
         + " --seeds 0,2147483648 --precisions opq4 --results {ws}/r.jsonl",
         "seed 2147483648 is above 2**31-1, the largest seed FAISS takes for the k-means of "
         "opq4; give seeds below 2**31 (--seeds)"),
    Case("search a folder as the index", "search {ws}/model {ws}/model --queries-npy {ws}/q.npy",
         "model: a folder, not an index file"),
    Case("recommend nDCG above 1", "recommend --results {ws}/results.jsonl --dataset tiny "
         "--keep 0.9", "results.jsonl:2: ndcg@10 is 7.5, expected a number in [0, 1]",
         append_line("results.jsonl", json.dumps({**record(seed=5), "ndcg@10": 7.5}) + "\n")),
    Case("report negative fit time", "report --results {ws}/results.jsonl --output {ws}/rep",
         "results.jsonl:2: fit_seconds is -1, expected a number >= 0",
         append_line("results.jsonl", json.dumps({**record(seed=5), "fit_seconds": -1}) + "\n")),
    Case("evaluate binary results", EVALUATE + " --results {ws}/bin.jsonl", "bin.jsonl:1"),
    Case("evaluate another collection's embeddings", "evaluate --datasets {ws}/other/tiny "
         + GRID + " --results {ws}/r.jsonl", "emb: 20 of its 120 corpus rows have ids that are "
         "not in dataset tiny (first: 'd100')", smaller_collection),
    Case("evaluate folder results", EVALUATE + " --results {ws}/emb", "emb: is a folder"),
    # file-system errors (item 12)
    Case("compress disk full", COMPRESS + " {ws}/x.npy --output {ws}/y.npy",
         "y.npy: no space left on device", disk_full, leaves=(".y.npy.partial/*",)),
    Case("fit read-only", FIT + " --output {ws}/ro/m", "ro/m: permission denied", read_only("ro")),
    # a write failing inside the hidden temporary folder named no file, or said only numpy's
    # "537600 requested and 76768 written"
    Case("fit disk full", FIT + " --output {ws}/m", "/m: no space left on device", fsync_full),
    # the whole fit or compress ran, then the rename onto the mount point failed "busy"
    Case("fit onto a mount point", FIT + " --output {ws}/mnt", "mnt: is a mount point, which an "
         "output put in place whole (by one rename) cannot replace; give a path inside it",
         mount_point),
    Case("compress onto a mount point", COMPRESS + " {ws}/x.npy --output {ws}/mnt",
         "mnt: is a mount point", mount_point),
    Case("import disk full", IMPORT, "/imported: written in part only (537600 requested and "
         "76768 written): is the disk full, or a file-size limit (ulimit -f) reached?",
         in_turn(api_vectors(), short_npy_write)),
    # found by the first run's append, after its work
    # the file may be writable, its folder not: the temporary beside it is what was refused
    Case("evaluate read-only", EVALUATE + " --results {ws}/ro/r.jsonl",
         "ro/r.jsonl: permission denied in its folder (every output is written beside its "
         "place, then renamed into it)", in_turn(read_only("ro"), no_run)),
    Case("evaluate results onto a mount point", EVALUATE + " --results {ws}/mnt.jsonl",
         "mnt.jsonl: is a mount point, which a results file rewritten whole (by one rename) "
         "cannot replace", in_turn(mounted_results, no_run)),
    Case("index read-only", "index {ws}/model --embeddings {ws}/emb --output {ws}/ro/i.faiss",
         "ro/i.faiss: permission denied", read_only("ro")),
    Case("report read-only", "report --results {ws}/results.jsonl --output {ws}/ro/rep",
         "permission denied", read_only("ro")),
    Case("export read-only", "export {ws}/model --format onnx --output {ws}/ro/m.onnx",
         "ro/m.onnx: permission denied", read_only("ro")),
    Case("compress read-only", COMPRESS + " {ws}/x.npy --output {ws}/ro/y.npy",
         "permission denied", read_only("ro")),
    Case("index embeddings of another dimension", "index {ws}/model --embeddings {ws}/emb16 "
         "--output {ws}/i.faiss", "emb16/corpus.npy: vectors have dimension 16, but "
         "{ws}/model expects 32", embeddings_of_dim(16)),
    Case("evaluate --plot the results file", EVALUATE + " --results {ws}/new.jsonl --plot "
         "{ws}/new.jsonl --overwrite", "new.jsonl: --results and --plot name the same path"),
    # each of these ran the whole grid, then "a file is in the way of a folder needed here"
    Case("evaluate --plot the report folder", EVALUATE + " --results {ws}/new.jsonl --plot "
         "{ws}/rep.png --report {ws}/rep.png", "rep.png: --plot and --report name the same path",
         no_run),
    Case("evaluate --report inside the plot", EVALUATE + " --results {ws}/new.jsonl --plot "
         "{ws}/p.png --report {ws}/p.png/r", "p.png/r: --report lies inside {ws}/p.png, the "
         "--plot file", no_run),
    Case("evaluate --plot inside the results file", EVALUATE + " --results {ws}/new.jsonl "
         "--plot {ws}/new.jsonl/p.png", "new.jsonl/p.png: --plot lies inside {ws}/new.jsonl, the "
         "--results file", no_run),
    Case("evaluate --overwrite with nothing to replace", EVALUATE + " --results "
         "{ws}/results.jsonl --overwrite", "--overwrite replaces an earlier --plot or --report, "
         "and neither is given; {ws}/results.jsonl is always appended to (start over with a new "
         "--results file)"),
    Case("evaluate --plot a file of the report", EVALUATE + " --results {ws}/new.jsonl --plot "
         "{ws}/rep/ndcg_vs_dim.png --report {ws}/rep", "rep/ndcg_vs_dim.png: --plot names a "
         "file the --report folder gets; name another"),
    Case("evaluate --results a file of the report", EVALUATE + " --results {ws}/rep/report.md "
         "--report {ws}/rep", "rep/report.md: --results names a file the --report folder "
         "gets; name another"),
    Case("index --output a folder", "index {ws}/model --embeddings {ws}/emb --output {ws}/emb",
         "emb: exists and is not a dive index"),
    Case("onnx --output of another suffix", "export {ws}/model --format onnx --output "
         "{ws}/model.txt", "model.txt: an ONNX file dive exported goes here, but the name ends "
         "'.txt'; name it *.onnx"),
    Case("evaluate --plot of another suffix", EVALUATE + " --results {ws}/new.jsonl --plot "
         "{ws}/plot.svg", "plot.svg: a PNG plot goes here, but the name ends '.svg'; name it "
         "*.png"),
    Case("onnx --output a folder", "export {ws}/model --format onnx --output {ws}/emb",
         "emb: exists and is not an ONNX file"),
    Case("fit --overwrite a model folder holding a user's file", FIT + " --output {ws}/model "
         "--overwrite", "model: holds files dive did not write (notes.txt)",
         append_line("model/notes.txt", "mine")),
    Case("fit parent is a file", FIT + " --output {ws}/afile/m", "afile: a file is in the way"),
    Case("evaluate parent is a file", EVALUATE + " --results {ws}/afile/r.jsonl",
         "afile/r.jsonl: a file is in the way"),
    Case("index parent is a file", "index {ws}/model --embeddings {ws}/emb "
         "--output {ws}/afile/i.faiss", "afile: a file is in the way"),
    Case("report parent is a file",
         "report --results {ws}/results.jsonl --output {ws}/afile/rep",
         "afile: a file is in the way"),
    Case("evaluate --report a file", EVALUATE + " --results {ws}/r.jsonl --report {ws}/afile",
         "afile: is a file, not a folder for the report"),
    Case("report --output a file", "report --results {ws}/results.jsonl --output {ws}/afile",
         "afile: is a file, not a folder for the report"),
    # a broken link passed the check (exists() follows it): the grid ran, then exit 2
    Case("evaluate --report a broken link", EVALUATE + " --results {ws}/r.jsonl --report "
         "{ws}/gone", "gone: exists and is not a folder for the report (a link to {ws}/nowhere, "
         "which is missing)", link("gone", "nowhere")),
    # a trailing separator where the output is one file: the file was written without it
    Case("onnx --output in a folder's form", "export {ws}/model --format onnx --output "
         "{ws}/new.onnx/", "'{ws}/new.onnx/' ends in a separator, naming a folder; an ONNX "
         "export is one file: give its path"),
    Case("compress --output in a folder's form", COMPRESS + " {ws}/x.npy --output {ws}/new.npy/",
         "'{ws}/new.npy/' ends in a separator, naming a folder; x.npy is one file, so its output "
         "is one file: give its path"),
    # an empty output column was read as "not given": the vectors went to `vector`
    Case("compress --output-column empty", COMPRESS + " {ws}/x.parquet --output {ws}/o.parquet "
         "--output-column=", "--output-column is empty; give a column name, or leave the flag "
         "out for the input's vector column name"),
    Case("onnx parent is a file", "export {ws}/model --format onnx --output {ws}/afile/m.onnx",
         "afile: a file is in the way"),
    Case("compress parent is a file", COMPRESS + " {ws}/x.npy --output {ws}/afile/y.npy",
         "afile: a file is in the way"),
    Case("compress shards in a subfolder", COMPRESS + " {ws}/shards --output {ws}/small",
         "shards/part=1: a subfolder with shards; dive compress reads only the shards directly "
         "in {ws}/shards", partitioned),
    # compress output suffix (item 15)
    Case("parquet into .npy", COMPRESS + " {ws}/x.parquet --output {ws}/o.npy",
         "o.npy: the output is a parquet file like the input"),
    Case("npy into .parquet", COMPRESS + " {ws}/x.npy --output {ws}/o.parquet",
         "o.parquet: the output is a npy file like the input"),
    # query vectors (items 7 and 16): the .npy is named, not the model folder
    Case("queries NaN", SEARCH + " --queries-npy {ws}/nan.npy", "nan.npy: row 1 contains NaN"),
    Case("queries 3-d", SEARCH + " --queries-npy {ws}/3d.npy", "3d.npy: expected a 2-d"),
    # one rule for both verbs (search read a 1-d file as one query, compress refused it)
    Case("queries 1-d", SEARCH + " --queries-npy {ws}/1d.npy",
         "1d.npy: expected a 2-d (n, dim) array, got shape (32,) (one vector is shape (1, 32))"),
    Case("compress 1-d", COMPRESS + " {ws}/1d.npy --output {ws}/o.npy",
         "1d.npy: expected a 2-d (n, dim) array, got shape (32,) (one vector is shape (1, 32))"),
    Case("queries wrong dim", SEARCH + " --queries-npy {ws}/d31.npy",
         "d31.npy: expected dimension 32, got 31"),
    Case("queries empty", SEARCH + " --queries-npy {ws}/none.npy", "none.npy: no query vectors"),
    Case("queries int8", SEARCH + " --queries-npy {ws}/int8.npy",
         "int8.npy: expected float embeddings, got dtype int8"),
    Case("queries zero row", SEARCH + " --queries-npy {ws}/zero.npy",
         "zero.npy: row 2 has norm 0 and cannot be L2-normalised"),
    Case("compress zero row", COMPRESS + " {ws}/zero.npy --output {ws}/z.npy",
         "zero.npy: row 2 has norm 0"),
    Case("queries not .npy", SEARCH + " --queries-npy {ws}/afile",
         "afile: not a readable .npy array (no .npy header)"),
    Case("rescore vectors not .npy", SEARCH + " --queries-npy {ws}/q.npy --rescore-vectors "
         "{ws}/afile", "afile: not a readable .npy array (no .npy header)"),
    Case("rescore vectors NaN", SEARCH + " --queries-npy {ws}/q.npy --rescore-vectors "
         "{ws}/full.npy", "full.npy: row 0 contains NaN or inf", full_vectors(np.nan)),
    Case("rescore vectors zero row", SEARCH + " --queries-npy {ws}/q.npy --rescore-vectors "
         "{ws}/full.npy", "full.npy: row 0 has norm 0 and cannot be L2-normalised",
         full_vectors(0.0)),
    # wording: the thing named as it is, in the CLI's own spelling
    Case("fit --embeddings a file", "fit --dataset {ws}/tiny --embeddings {ws}/afile --method "
         "pca --dim 8 --output {ws}/m", "afile: is a file, not an embeddings folder"),
    Case("index --embeddings a file", "index {ws}/model --embeddings {ws}/afile --output "
         "{ws}/i.faiss", "afile: is a file, not an embeddings folder"),
    Case("compress without the id column", COMPRESS + " {ws}/x.parquet --output {ws}/o.parquet "
         "--id-column key", "x.parquet: no id column 'key' (columns: id, vector); pass "
         "--id-column '' to carry no ids"),
    Case("recommend an empty results file", "recommend --results {ws}/empty.jsonl --dataset tiny "
         "--keep 0.9", "empty.jsonl: no records in this results file", empty_file("empty.jsonl")),
    # saved-model checksums (item 9)
    Case("edited activation", "index {ws}/edited --embeddings {ws}/emb --output {ws}/i.faiss",
         "do not match config_sha256", edit_model(activation="relu")),
    Case("no weights checksum", "index {ws}/edited --embeddings {ws}/emb --output {ws}/i.faiss",
         "no weights_sha256, so the weights cannot be checked; pass --no-verify to use it "
         "unchecked", edit_model(weights_sha256="DEL")),
    Case("two datasets with one embeddings folder", "evaluate --datasets {ws}/tiny,{ws}/tiny2 "
         + GRID + " --results {ws}/r.jsonl", "--embeddings is one dataset's embeddings folder, "
         "but 2 datasets were given"),
    # a few that already held before issue 12
    Case("malformed corpus line", EVALUATE + " --results {ws}/r.jsonl",
         "corpus.jsonl line 121", append_line("tiny/corpus.jsonl", "{broken\n")),
    # the qrels errors the README lists (they were tested through load_beir only)
    Case("qrels score not an integer", EVALUATE + " --results {ws}/r.jsonl",
         "score '1.0' is not an integer", append_line("tiny/qrels/test.tsv", "q59\td1\t1.0\n")),
    Case("test qrels of unknown ids", EVALUATE + " --results {ws}/r.jsonl",
         "test.tsv: no judgement names a query id of queries.jsonl (first: line 2, query id "
         "'x1')", file_text("tiny/qrels/test.tsv", "query-id\tcorpus-id\tscore\nx1\ty1\t1\n")),
    Case("unknown method", EVALUATE + " --methods pcaa --results {ws}/r.jsonl",
         "unknown method 'pcaa'"),
    # an item after a name, not after an option's value, is a spec of its own, named alone
    Case("unknown method starting with a digit", EVALUATE + " --methods pca,2bits --results "
         "{ws}/r.jsonl", "unknown method '2bits'; valid: "),
    # options a training-free method does not take: named as for the learned methods
    Case("unknown option of pca", FIT_DATA + " --dim 8 --method pca:bogus=1 --output {ws}/m",
         "pca: unknown option(s) bogus; valid: none (--method)"),
    Case("unknown option of frozen", EVALUATE + " --methods frozen:x=1 --results {ws}/r.jsonl",
         "frozen: unknown option(s) x; valid: none (--methods)"),
    # a bad value of a method option or a budget names the flag it came in by
    Case("bad option value", EVALUATE + " --methods dive:steps=-1 --results {ws}/r.jsonl",
         "dive: steps must be >= 0, got -1 (--methods)"),
    Case("spec option without a value", FIT_DATA + " --dim 8 --method pca:x --output {ws}/m",
         "option 'x' is not key=value (--method)"),
    Case("zero budget to evaluate", EVALUATE + " --budgets 0 --results {ws}/r.jsonl",
         "label budget must be a positive integer or 'all', got 0 (--budgets)"),
    Case("zero budget to fit", FIT + " --budget 0 --output {ws}/m",
         "label budget must be a positive integer or 'all', got 0 (--budget)"),
    Case("zero budget to recommend", "recommend --results {ws}/results.jsonl --dataset tiny "
         "--budget 0", "label budget must be a positive integer or 'all', got 0 (--budget)"),
    Case("dim in the spec", FIT_DATA + " --dim 8 --method pca:dim=4 --output {ws}/m",
         "method 'pca:dim=4': dim is not an option of the spec"),
    Case("missing model folder", "index {ws}/nope --embeddings {ws}/emb --output {ws}/i.faiss",
         "nope: no such model folder"),
    Case("model folder a file", "compress {ws}/x.npy --input {ws}/x.npy --output {ws}/y.npy",
         "x.npy: is a file, not a model folder"),
    Case("compress over an existing output", COMPRESS + " {ws}/x.npy --output {ws}/q.npy",
         "q.npy: already exists"),
    # vectors made elsewhere and LanceDB tables (issue 15)
    Case("import duplicate ids", IMPORT, "corpus.parquet: row 7: duplicate id 'd3' (first at "
         "row 3)", api_vectors("duplicate")),
    Case("import id not in the corpus", IMPORT, "corpus.parquet: row 5: id 'not-a-doc' is not "
         "in the corpus of tiny (1 of 120 ids are not)", api_vectors("unknown")),
    Case("import corpus id without a vector", IMPORT, "corpus.parquet: no vector for id "
         "'d119' of the corpus of tiny (1 of 120 ids have none)", api_vectors("missing")),
    Case("import ragged vectors", IMPORT, "corpus.parquet: row 6 (id 'd6'): the vector has "
         "dimension 31, expected 32", api_vectors("ragged")),
    Case("import NaN", IMPORT, "corpus.parquet: row 9 (id 'd9') contains NaN or inf",
         api_vectors("nan")),
    Case("import zero vector", IMPORT, "corpus.parquet: row 2 (id 'd2') is all zeros",
         api_vectors("zero")),
    # ids read as "b'd0'", and a missing id column was told to pass --id-column '', which an
    # import refuses
    Case("import binary ids", IMPORT, "corpus.parquet: id column 'id' holds binary, not strings "
         "or integers (--id-column)", api_vectors("binary ids")),
    Case("import without the id column", IMPORT + " --id-column key", "corpus.parquet: no id "
         "column 'key' (columns: id, vector) (--id-column)", api_vectors()),
    Case("import over embeddings", IMPORT.replace("imported", "emb"), "emb: already exists",
         api_vectors()),
    Case("import --overwrite over embeddings holding a user's file", IMPORT.replace(
         "imported", "emb") + " --overwrite", "emb: holds files dive did not write (NOTES.md)",
         in_turn(api_vectors(), append_line("emb/NOTES.md", "mine"))),
    Case("import npy without ids", "embed --dataset {ws}/tiny --from-npy {ws}/x.npy "
         "--queries-npy {ws}/q.npy", "--from-npy needs --ids, --queries-npy and --query-ids"),
    Case("import npy ids without --from-npy", "embed --dataset {ws}/tiny --ids {ws}/x.npy "
         "--query-ids {ws}/q.npy", "--ids and --query-ids go with --from-npy, which is not "
         "given"),
    Case("import query parquet without --from-parquet", "embed --dataset {ws}/tiny "
         "--queries-parquet {ws}/q.parquet", "--queries-parquet goes with --from-parquet, "
         "which is not given"),
    Case("import npy with a Parquet column", "embed --dataset {ws}/tiny --from-npy {ws}/x.npy "
         "--ids {ws}/ids.txt --queries-npy {ws}/q.npy --query-ids {ws}/qids.txt --id-column "
         "doc", "--id-column goes with --from-parquet, which is not given"),
    Case("encode with Parquet columns", "embed --dataset {ws}/tiny --vector-column emb "
         "--id-column doc", "--id-column and --vector-column go with --from-parquet, which is "
         "not given"),
    Case("import with an encoding setting", "embed --dataset {ws}/tiny --from-npy {ws}/x.npy "
         "--ids {ws}/ids.txt --queries-npy {ws}/q.npy --query-ids {ws}/qids.txt --device cuda "
         "--chunk-size 10", "--device and --chunk-size set how texts are encoded; --from-npy "
         "imports vectors, which are not encoded"),
    Case("import npy ids a folder", "embed --dataset {ws}/tiny --from-npy {ws}/emb/corpus.npy "
         "--ids {ws}/emb --queries-npy {ws}/emb/queries.npy --query-ids {ws}/emb/query_ids.txt "
         "--output {ws}/imported", "emb: is a folder, not a file"),
    Case("query id with a line break", EVALUATE + " --results {ws}/r.jsonl",
         "queries.jsonl line 61: '_id' 'q\\n60' contains a line break",
         append_line("tiny/queries.jsonl", json.dumps({"_id": "q\n60", "text": "x"}) + "\n")),
    Case("import npy ids with a line break", "embed --dataset {ws}/tiny --from-npy "
         "{ws}/emb/corpus.npy --ids {ws}/ids.txt --queries-npy {ws}/emb/queries.npy --query-ids "
         "{ws}/emb/query_ids.txt --output {ws}/imported",
         "ids.txt: line 3: id 'd\\r2' contains a line break",
         append_line("ids.txt", "".join(f"d{i}\n" for i in range(120)).replace("d2\n", "d\r2\n"))),
    Case("lancedb table without the column", COMPRESS + " lancedb:{ws}/db/docs --output "
         "lancedb:{ws}/db/small", "lancedb:{ws}/db/docs: no vector column 'vector' (columns: "
         "id, embedding)", lance_table),
    Case("lancedb no such table", COMPRESS + " lancedb:{ws}/db/nope --output "
         "lancedb:{ws}/db/small", "lancedb:{ws}/db/nope: no such table in {ws}/db (tables: "
         "docs)", lance_table),
]


@pytest.fixture()
def ws(tmp_path: Path, make_tiny: Callable[..., tuple[Path, Path]]) -> Path:
    """The workspace every case runs in."""
    _, emb = make_tiny()
    corpus = np.load(emb / "corpus.npy")
    save(PCA(dim=8).fit(corpus), tmp_path / "model")
    (tmp_path / "ro").mkdir()
    (tmp_path / "afile").write_text("not a folder\n")
    (tmp_path / "bin.jsonl").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe\x00")
    ResultsFile(tmp_path / "results.jsonl").append([record(seed=0)])
    x = corpus[:10]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "q.npy", x[:2])
    for name, bad in (("nan", x.copy()), ("zero", x.copy())):
        bad[1 if name == "nan" else 2] = np.nan if name == "nan" else 0
        np.save(tmp_path / f"{name}.npy", bad)
    np.save(tmp_path / "3d.npy", x.reshape(2, 5, 32))
    np.save(tmp_path / "1d.npy", x[0])
    np.save(tmp_path / "d31.npy", x[:, :31])
    np.save(tmp_path / "none.npy", x[:0])
    np.save(tmp_path / "int8.npy", (x * 127).astype(np.int8))
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        vectors = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 32)
        pq.write_table(pa.table({"id": [f"d{i}" for i in range(10)], "vector": vectors}),
                       tmp_path / "x.parquet")
    except ImportError:
        pass
    try:
        import faiss  # noqa: F401
    except ImportError:
        return tmp_path
    assert main(["index", str(tmp_path / "model"), "--embeddings", str(emb),
                 "--output", str(tmp_path / "index.faiss")]) == 0
    return tmp_path


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(
    case: Case, ws: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = case.argv.format(ws=ws).split()
    needs = {"x.parquet": "pyarrow", "api/": "pyarrow", "index.faiss": "faiss", "onnx": "onnx",
             "lancedb:": "lancedb"}
    for marker, module in needs.items():
        if marker in case.argv:
            pytest.importorskip(module)
    if case.setup is not None:
        case.setup(ws, monkeypatch)
    before = snapshot(ws)
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse exits rather than returning
        code = exc.code
    monkeypatch.undo()  # the read-only simulation must not hide what was written
    err = capsys.readouterr().err
    assert code not in (0, None), err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and case.error.format(ws=ws) in lines[0], lines[0]
    after = snapshot(ws)
    changed = [name for name, value in before.items() if after.get(name) != value]
    assert not changed, changed
    new = [name for name in after if name not in before
           and not any(fnmatch.fnmatch(name, pattern) for pattern in case.leaves)]
    assert not new, new


@pytest.mark.parametrize(("verb", "work"), [
    (FIT + " --output {ws}/ro/m", "dive.fit_record.fit_on_dataset"),
    ("index {ws}/model --embeddings {ws}/emb --output {ws}/ro/i.faiss",
     "dive.export.faiss_index.build_index"),
])
def test_a_read_only_output_folder_is_refused_before_the_work(
    verb: str, work: str, ws: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A fit (minutes to hours for dive) or an index build ran in full, then failed to save."""
    if "index" in verb:
        pytest.importorskip("faiss")

    def work_done(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"{work} ran")

    monkeypatch.setattr(work, work_done)
    read_only("ro")(ws, monkeypatch)
    assert main(verb.format(ws=ws).split()) == 2
    monkeypatch.undo()
    assert f"{ws}/ro/" in capsys.readouterr().err and not any((ws / "ro").iterdir())


@pytest.mark.parametrize("name", ["k 0", "index --output a folder", "queries wrong dim"])
def test_the_real_command_prints_one_line_too(name: str, ws: Path) -> None:
    # Out of process: logging handlers and argparse's own printing are the real ones.
    import subprocess
    import sys

    pytest.importorskip("faiss")
    case = next(c for c in CASES if c.name == name)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-m", "dive.cli", *case.argv.format(ws=ws).split()],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and case.error in done.stderr, done.stderr


@pytest.mark.parametrize("verb", [FIT + " --output {ws}/m", EVALUATE + " --results {ws}/r.jsonl"])
def test_an_empty_model_name_is_refused_not_read_as_the_default(
    verb: str, ws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*verb.format(ws=ws).split(), "--model", " "])
    assert exc.value.code == 2
    assert "--model: expected a name, got ' '" in capsys.readouterr().err
    assert not (ws / "m").exists() and not (ws / "r.jsonl").exists()


def test_an_empty_dataset_name_is_refused_by_recommend(
    ws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--dataset ''` became '.', and the error named the current folder's name."""
    with pytest.raises(SystemExit) as exc:
        main(["recommend", "--results", str(ws / "r.jsonl"), "--dataset", ""])
    assert exc.value.code == 2
    assert "--dataset: expected a name, got ''" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["", "   ", "\u200b", "\x01 "])  # the last two: embedded as ""
def test_an_empty_query_is_refused_not_searched(text: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`dive search INDEX MODEL --query ""` embedded the empty text and printed its hits."""
    with pytest.raises(SystemExit) as exc:
        main(["search", str(tmp_path / "i.faiss"), str(tmp_path / "m"), "--query", "vitamin D",
              "--query", text])
    assert exc.value.code == 2
    assert f"--query: expected query text, got {text!r}" in capsys.readouterr().err


def test_a_control_character_in_a_path_is_escaped_in_the_error_line(
    ws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A path holding a line break split the error in two lines; a terminal escape in it
    restyled the terminal."""
    taken = ws / "a\nb\x1b[31m"
    taken.write_text("mine")
    assert main([*FIT.format(ws=ws).split(), "--output", str(taken)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"dive: error: {ws}/a\\nb\\x1b[31m: exists and is not a saved "
                                "dive compressor folder; refusing to replace it (overwrite "
                                "replaces only what dive wrote)"]
