"""Product quantization after a compressor (`opq{M}`): in the grid, in `dive index` and search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dive.cli import main
from dive.errors import DataError, DiveError
from dive.evaluate.funnel import Outputs, Variant, score_variants
from dive.evaluate.product import check_stage, product_index, stage_bytes
from dive.evaluate.protocol import GridSpec, run_grid
from dive.evaluate.records import ResultsFile, read_records, record_key
from dive.report.frontier import configs, frontier_section
from dive.report.recommend import recommend, render
from dive.report.summary import method_label

faiss = pytest.importorskip("faiss")


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    faiss.omp_set_num_threads(1)


def unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_stage_names_and_their_bytes() -> None:
    assert [check_stage(s) for s in ("int8", "opq12")] == ["int8", "opq12"]
    assert (stage_bytes("opq12", 96), stage_bytes("int8", 96), stage_bytes("binary", 96)) == (
        12, 96, 12)
    for bad in ("opq", "opq0", "pq12", "OPQ12", 12):
        with pytest.raises(DiveError, match="or opqM"):
            check_stage(bad)


def test_search_returns_the_brute_force_top_k_over_the_decoded_codes() -> None:
    corpus, queries = unit_rows(400, 16, 1), unit_rows(30, 16, 2)
    index = product_index("opq4", corpus, seed=0)
    assert index.bytes_per_vector == 4
    rows, scores = index.search(queries, 10)
    # Asymmetric distance: the float query against what each stored code decodes to (OPQ's
    # rotation is orthonormal, so undoing it leaves the inner product unchanged).
    decoded = index.index.sa_decode(index.index.sa_encode(corpus))
    exact = queries @ decoded.T
    want = np.argsort(-exact, axis=1, kind="stable")[:, :10]
    np.testing.assert_allclose(scores, np.take_along_axis(exact, want, axis=1), atol=1e-4)
    for got, wanted, s in zip(rows, want, np.take_along_axis(exact, want, axis=1), strict=True):
        sure = wanted[s > s[-1] + 1e-4]  # ties at the cut may come in either order
        assert set(sure.tolist()) <= set(got.tolist())


def test_m_must_divide_the_dimension() -> None:
    with pytest.raises(DataError, match="opq5: 5 sub-quantizers do not divide the dimension 16"):
        product_index("opq5", unit_rows(300, 16, 0))
    # M = d: `dive index --opq 48` on 48-d outputs built what `dive evaluate` leaves out
    with pytest.raises(DataError, match=r"^opq16: 16 sub-quantizers of one dimension each take "
                                        r"the bytes int8 takes, where OPQ cannot help; give M "
                                        r"below the dimension 16, or use the int8 precision$"):
        product_index("opq16", unit_rows(300, 16, 0))


def scored_outputs() -> tuple[Outputs, dict[str, dict[str, int]]]:
    """16-d outputs of 400 documents and 40 queries, each query's 5 nearest documents
    relevant."""
    corpus, queries = unit_rows(400, 16, 1), unit_rows(40, 16, 2)
    out = Outputs(queries, corpus, queries, corpus, [f"q{i}" for i in range(40)],
                  [f"d{j}" for j in range(400)], np.full(40, -1))
    nearest = np.argsort(-(queries @ corpus.T), axis=1)[:, :5]
    return out, {f"q{i}": {f"d{j}": 1 for j in row} for i, row in enumerate(nearest)}


def test_an_opq_stage_is_searched_as_deep_as_its_deepest_funnel() -> None:
    """Guards the shared stage's depth: it was searched as deep as the first of its variants
    needed, so opq4 rescored x10 listed after opq4 alone re-ranked only its top 10, and scored
    otherwise than when it was scored alone."""
    out, qrels = scored_outputs()
    funnel = Variant("opq4", 10, "full")
    together = score_variants([Variant("opq4"), funnel], out, qrels, top_k=10)
    alone = score_variants([funnel], out, qrels, top_k=10)
    assert together[1] == alone[0]
    assert together[1][0]["ndcg@10"] > together[0][0]["ndcg@10"]  # the funnel re-ranked


def test_an_opq_stages_codes_depend_on_the_seed() -> None:
    """Guards the seed of the stage's k-means (as `faiss-pq:M`'s): every seed of a grid
    scored the codes trained with seed 0, so its seeds showed no spread from them."""
    out, qrels = scored_outputs()
    first, again, other = (score_variants([Variant("opq4")], out, qrels, top_k=10, seed=seed)
                           for seed in (0, 0, 1))
    assert first == again
    assert first != other


def grid(data: tuple[Path, Path], **overrides: object) -> GridSpec:
    options: dict[str, object] = dict(
        datasets=[str(data[0])], methods=["frozen", "pca"], ratios=[4], budgets=[8],
        seeds=[0], embeddings_dir=str(data[1]), precisions=["float32", "opq4", "opq3", "opq8"],
        rescores=[0, 4])
    options.update(overrides)
    return GridSpec(**options)  # type: ignore[arg-type]


def test_the_grid_scores_compressed_outputs_at_an_opq_stage_and_resumes(
    make_tiny, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = make_tiny(n_docs=300)
    results = tmp_path / "r.jsonl"
    records = run_grid(grid(data), ResultsFile(results))
    assert "precision opq3, opq8 left out, no run of the grid can use it: M must divide a " \
        "compressed dimension d and be below it (the grid's d: 8;" in caplog.text
    labels = {method_label(r): r for r in records}
    # pca d=8: opq4 runs (4 divides 8), opq3 cannot, opq8 (one dimension per sub-quantizer) is
    # left to int8; frozen never gets one (that is the anchor itself)
    assert set(labels) == {"frozen", "pca", "pca@float32+rescore4", "pca@opq4",
                           "pca@opq4+rescore4"}
    opq = labels["pca@opq4"]
    assert (opq["precision"], opq["bytes_per_vector"], opq["dim"]) == ("opq4", 4, 8)
    assert labels["pca@opq4+rescore4"]["rescore_bytes_per_vector"] == 4 * 32
    assert opq["ndcg@10"] != labels["pca"]["ndcg@10"]  # 4 bytes are not 32
    # the stage's OPQ rotation (8 x 8) and 4 codebooks of 256 centroids (2 values each)
    assert opq["n_params"] == labels["pca"]["n_params"] + 8 * 8 + 4 * 256 * 2
    assert len({record_key(r) for r in read_records(results)}) == len(records) == 5
    again = run_grid(grid(data), ResultsFile(results))
    assert len(again) == 5 and len(read_records(results)) == 5  # nothing run twice


def test_a_grid_that_no_opq_stage_asked_for_can_code_is_refused_before_any_run(
    make_tiny, tmp_path: Path
) -> None:
    data = make_tiny(n_docs=300)
    results = tmp_path / "r.jsonl"
    for methods in (["pca"], ["frozen"]):  # d = 8, and the full dimension alone
        only = grid(data, methods=methods, precisions=["opq3"])
        with pytest.raises(DataError, match=r"no run of the grid on .*: precision opq3 codes "
                           r"none of its outputs; M must divide"):
            run_grid(only, ResultsFile(results))
    assert not results.exists()


def test_too_few_corpus_rows_for_an_opq_stage_fail_before_any_run(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """The grid ran and recorded frozen, then stopped at pca's opq2 index."""
    results = tmp_path / "r.jsonl"
    with pytest.raises(DataError, match=r"^tiny: precision opq2: FAISS PQ training needs at "
                                        r"least 256 corpus rows \(256 per code\), got 120$"):
        run_grid(grid(tiny, precisions=["float32", "opq2"], rescores=[0]), ResultsFile(results))
    assert not results.exists()


def test_a_record_may_have_an_opq_stage_but_not_a_bad_one(tmp_path: Path) -> None:
    base = ('{"dataset": "d", "model": "m", "method": "pca", "dim": 8, "budget": "8", '
            '"seed": 0, "ratio": 4, "ndcg@10": 0.5, "recall@100": 0.5, "mrr@10": 0.5, '
            '"fit_seconds": 1, "n_params": 1, "config": {}, "bytes_per_vector": 4')
    (tmp_path / "r.jsonl").write_text(base + ', "precision": "opq4"}\n')
    assert read_records(tmp_path / "r.jsonl")[0]["precision"] == "opq4"
    (tmp_path / "r.jsonl").write_text(base + ', "precision": "opqx"}\n')
    with pytest.raises(DataError, match="precision is 'opqx'"):
        read_records(tmp_path / "r.jsonl")


def test_recommend_says_how_to_build_an_opq_index(make_tiny, tmp_path: Path) -> None:
    data = make_tiny(n_docs=300)
    records = run_grid(grid(data, precisions=["opq4"], rescores=[0, 30]),
                       ResultsFile(tmp_path / "r.jsonl"))
    records += run_grid(grid(data, methods=["frozen"], precisions=["float32"], rescores=[0]),
                        ResultsFile(tmp_path / "r.jsonl"))
    assert any(c.precision == "opq4" for c in configs(records))
    rec = recommend(records, dataset=records[0]["dataset"], budget="8", keep=0.5)
    lines = "\n".join(render(rec))
    assert rec.config.precision == "opq4", lines
    assert "--precision float32 --model synthetic --output MODEL_DIR" in lines  # its vectors
    assert "dive index MODEL_DIR --embeddings EMB_DIR --opq 4 --output INDEX" in lines


def test_a_grid_of_frozen_at_other_precisions_returns_its_float32_reference(
    make_tiny, tmp_path: Path
) -> None:
    # evaluate --report of such a grid had no reference (no percentages, no title figure),
    # where the warning of a missing reference had found it in the results file
    data = make_tiny(n_docs=300)
    path = tmp_path / "r.jsonl"
    run_grid(grid(data, methods=["frozen"], precisions=["float32"], rescores=[0]),
             ResultsFile(path))
    records = run_grid(grid(data, methods=["frozen", "pca"], precisions=["binary"],
                            rescores=[4]), ResultsFile(path))
    assert {(r["method"], r["precision"], r["rescore"]) for r in records} >= {
        ("frozen", "float32", 0), ("frozen", "binary", 4), ("pca", "binary", 4)}
    assert "(frozen float32: " in frontier_section(records)


def test_dive_index_opq_writes_m_bytes_per_vector_and_searches(
    make_tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    beir, emb = make_tiny(n_docs=300)
    assert main(["fit", "--dataset", str(beir), "--embeddings", str(emb), "--method", "pca",
                 "--dim", "8", "--output", str(tmp_path / "m")]) == 0
    for name, extra in (("idx.faiss", ["--opq", "4"]), ("flat.faiss", [])):
        assert main(["index", str(tmp_path / "m"), "--embeddings", str(emb), *extra,
                     "--output", str(tmp_path / name)]) == 0
    out = capsys.readouterr().out
    # "flat" read as exact, for an index of lossy codes
    assert "(8-d opq4, 4 bytes/vector, exhaustive over PQ codes)" in out
    assert "(8-d float32, 32 bytes/vector, flat)" in out
    from dive.export.faiss_index import load_index, search_index

    loaded, flat = load_index(tmp_path / "idx.faiss"), load_index(tmp_path / "flat.faiss")
    assert (loaded.precision, loaded.dim, loaded.bytes_per_vector, len(loaded)) == (
        "opq4", 8, 4, 300)
    # what the file stores per vector: its size less that of the same index holding nothing
    full = (tmp_path / "idx.faiss").stat().st_size
    loaded.index.reset()
    faiss.write_index(loaded.index, str(tmp_path / "empty.faiss"))
    assert (full - (tmp_path / "empty.faiss").stat().st_size) / 300 == 4
    loaded = load_index(tmp_path / "idx.faiss")
    queries = unit_rows(5, 8, 3)
    rows, _ = search_index(loaded, queries, 10)
    exact, _ = search_index(flat, queries, 10)
    assert rows.shape == (5, 10) and len(set(rows[0]) & set(exact[0])) >= 3  # a close ranking
    np.save(tmp_path / "q.npy", unit_rows(2, 32, 4))
    capsys.readouterr()
    assert main(["search", str(tmp_path / "idx.faiss"), str(tmp_path / "m"),
                 "--queries-npy", str(tmp_path / "q.npy"), "-k", "3"]) == 0
    assert len([ln for ln in capsys.readouterr().out.splitlines() if ln[:1].isdigit()]) == 6


def test_dive_index_trains_its_opq_codes_with_the_seed_given(
    make_tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`index --opq 4 --seed S` trains the rotation and codebooks with S: the same seed gives
    the same index file, another seed another one (the seed was not passed on: every index
    was seed 0's)."""
    beir, emb = make_tiny(n_docs=300)
    assert main(["fit", "--dataset", str(beir), "--embeddings", str(emb), "--method", "pca",
                 "--dim", "8", "--output", str(tmp_path / "m")]) == 0
    made = {}
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert main(["index", str(tmp_path / "m"), "--embeddings", str(emb), "--opq", "4",
                     "--seed", seed, "--output", str(tmp_path / f"{name}.faiss")]) == 0
        made[name] = (tmp_path / f"{name}.faiss").read_bytes()
    assert made["a"] == made["b"] and made["a"] != made["c"]


def test_bad_opq_index_requests_are_one_line(make_tiny, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    beir, emb = make_tiny(n_docs=300)
    assert main(["fit", "--dataset", str(beir), "--embeddings", str(emb), "--method", "pca",
                 "--dim", "8", "--output", str(tmp_path / "m")]) == 0
    index = ["index", str(tmp_path / "m"), "--embeddings", str(emb), "--output",
             str(tmp_path / "i.faiss")]
    capsys.readouterr()
    assert main([*index, "--opq", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "opq3: 3 sub-quantizers do not divide the dimension 8" in err and "\n" not in err
    with pytest.raises(SystemExit) as exit_info:
        main([*index, "--opq", "4", "--hnsw"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    assert not (tmp_path / "i.faiss").exists()


def test_a_grid_whose_float32_runs_are_all_rescored_by_themselves_is_refused(
    make_tiny, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """float32 rescored by the vectors it ranks by is dropped (the same ranking): a grid of
    nothing else ran no run, printed an empty table and exited 0."""
    data = make_tiny(n_docs=300)
    results = tmp_path / "r.jsonl"
    for methods, rescore_with in ((["pca"], "compressed"), (["frozen"], "full")):
        only = grid(data, methods=methods, precisions=["float32"], rescores=[4],
                    rescore_with=rescore_with)
        with pytest.raises(DataError, match=r"no run of the grid on .*: float32 rescored by "
                           r"float32 vectors ranks as float32 alone") as error:
            run_grid(only, ResultsFile(results))
        assert error.value.param == "rescores"
    assert not results.exists()
    # beside a run that is left, the one dropped is named
    records = run_grid(grid(data, precisions=["float32"], rescores=[4]), ResultsFile(results))
    assert [method_label(r) for r in records] == ["pca@float32+rescore4"]
    assert "frozen d=32 left out: float32 rescored by float32 vectors" in caplog.text


def test_a_float32_run_dropped_beside_other_precisions_is_named(
    make_tiny, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`--precisions float32,int8 --rescore-factors 4` ran frozen at int8 only, without a word:
    no frozen float32 reference, and the report then advised adding float32, which was there."""
    data = make_tiny(n_docs=300)
    records = run_grid(grid(data, methods=["frozen", "pca"], precisions=["float32", "int8"],
                            rescores=[4]), ResultsFile(tmp_path / "r.jsonl"))
    assert "frozen@float32" not in [method_label(r) for r in records]
    assert "frozen d=32 at float32 left out: float32 rescored by float32 vectors" in caplog.text
    assert "pca d=" not in caplog.text  # pca's float32 is rescored by the full vectors


def test_a_grid_without_float32_says_frozen_has_no_reference(
    make_tiny, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`--precisions int8` ran frozen at int8 only without a word; `recommend` and the report
    found the float32 reference missing only later. Said unless the results hold it."""
    data = make_tiny(n_docs=300)
    kept = ResultsFile(tmp_path / "kept.jsonl")
    run_grid(grid(data, methods=["frozen", "pca"], precisions=["float32"], rescores=[0]), kept)
    int8 = grid(data, methods=["frozen", "pca"], precisions=["int8"], rescores=[0, 4])
    assert "frozen@int8" in [method_label(r) for r in run_grid(int8, kept)]
    assert "float32 run" not in caplog.text
    # an opq stage, which never codes frozen, is not among the precisions it runs at (it read
    # "frozen runs at int8, opq4 only")
    with_opq = grid(data, methods=["frozen", "pca"], precisions=["int8", "opq4"], rescores=[0])
    run_grid(with_opq, ResultsFile(tmp_path / "new.jsonl"))
    assert (f": frozen runs at int8 only, and {tmp_path / 'new.jsonl'} holds no float32 run of "
            "it, the reference reports and recommend keep a share of: add float32 to the "
            "precisions (with rescore factor 0)" in caplog.text)
    caplog.clear()  # an opq stage alone: frozen had no run, and not a word was said
    run_grid(grid(data, methods=["frozen", "pca"], precisions=["opq4"], rescores=[0]),
             ResultsFile(tmp_path / "opq.jsonl"))
    assert (": frozen runs at none of the precisions asked (an opq stage never codes a "
            "full-dimension method): add float32 to the precisions" in caplog.text)


def test_a_full_dimension_method_that_transforms_its_input_is_rescored_by_the_full_vectors(
    make_tiny, tmp_path: Path
) -> None:
    """Centred PCA at d = D ranks otherwise than the embeddings: its float32 rescored by them
    was dropped (or the grid refused) as "a full-dimension method rescored by anything"."""
    data = make_tiny(n_docs=300)
    records = run_grid(grid(data, methods=["frozen", "pca"], ratios=[1], precisions=["float32"],
                            rescores=[0, 4]), ResultsFile(tmp_path / "r.jsonl"))
    assert sorted(method_label(r) for r in records) == [
        "frozen", "pca", "pca@float32+rescore4"]
    by = {method_label(r): r["ndcg@10"] for r in records}
    assert by["pca@float32+rescore4"] != by["pca"]


def test_an_opq_stage_left_out_at_one_d_is_said_where(
    make_tiny, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """opq8 runs at d=16 but not at d=8 (M = d): the d=8 row showed '-' without a word."""
    data = make_tiny(n_docs=300)
    records = run_grid(grid(data, methods=["pca"], ratios=[2, 4], precisions=["float32", "opq8"],
                            rescores=[0]), ResultsFile(tmp_path / "r.jsonl"))
    assert {(r["precision"], r["dim"]) for r in records} == {
        ("float32", 16), ("float32", 8), ("opq8", 16)}
    assert "precision opq8 left out at d=8: M must divide d and be below it" in caplog.text
