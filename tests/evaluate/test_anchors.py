"""Anchors: FAISS and sentence-transformers indexes scored as rows of the grid."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from dive.errors import DataError, DiveError
from dive.evaluate.anchors import Anchor, AnchorIndex, is_anchor, parse_anchor
from dive.evaluate.protocol import GridSpec, run_grid
from dive.evaluate.records import ResultsFile, read_records, record_key
from dive.report.build import write_report
from dive.report.summary import method_label

faiss = pytest.importorskip("faiss")

FULL = 32
ALL = ("faiss-pq:8", "faiss-opq:4", "faiss-pca-sq8", "faiss-pca-sq4", "st-int8", "st-binary")


def unit_rows(n: int, d: int = FULL, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def written_size(index: AnchorIndex, path: Path) -> int:
    binary = index.binary_dim is not None
    (faiss.write_index_binary if binary else faiss.write_index)(index.index, str(path))
    return path.stat().st_size


@pytest.mark.parametrize("spec", ALL)
def test_bytes_per_vector_is_what_the_written_index_stores_per_vector(
    spec: str, tmp_path: Path
) -> None:
    pytest.importorskip("sentence_transformers")
    anchor = parse_anchor(spec)
    dim = FULL if anchor.full_dim else 10  # an odd half for SQ4: ceil(10 / 2) = 5 bytes
    corpus = unit_rows(400)
    built = anchor.build(corpus, dim)
    full = written_size(built, tmp_path / "full.index")
    built.index.reset()  # the trained index without its vectors
    empty = written_size(built, tmp_path / "empty.index")
    stored = (full - empty) / len(corpus)
    assert stored == built.bytes_per_vector == anchor.bytes_per_vector(FULL, dim)
    assert stored < 4 * FULL  # a compressed first stage, whatever the anchor


def test_specs_parse_to_names_and_bad_ones_are_refused() -> None:
    assert parse_anchor(" faiss-pq:16 ") == Anchor("faiss-pq", 16)
    assert parse_anchor("faiss-pq:16").name == "faiss-pq:16"
    assert parse_anchor("st-int8").name == "st-int8"
    assert is_anchor("faiss-opq:8") and is_anchor("faiss-pca-sq4@rescore10")
    assert not is_anchor("pca") and not is_anchor("dive:heads=1")
    for spec, message in (("faiss-lsh", "unknown anchor 'faiss-lsh'"),
                          ("faiss-pq", "needs its bytes per vector"),
                          ("faiss-pq:0", "needs its bytes per vector"),
                          ("st-int8:8", "takes no size .it runs at the full dimension"),
                          ("faiss-pca-sq8:96", "runs at the grid's dimensions")):
        with pytest.raises(DiveError, match=message):
            parse_anchor(spec)


def test_sub_quantizers_must_divide_the_dimension() -> None:
    with pytest.raises(DataError, match="5 sub-quantizers do not divide the embedding dim"):
        parse_anchor("faiss-pq:5").build(unit_rows(300), FULL)


@pytest.mark.parametrize("spec", ["faiss-pq:4", "faiss-opq:4"])
def test_pq_on_too_few_rows_says_in_one_line_how_many_it_needs(spec: str) -> None:
    # checked before FAISS, whose own error is a C++ assertion with its source line
    anchor = parse_anchor(spec)
    with pytest.raises(DataError, match=rf"^anchor {spec}: FAISS PQ training needs at least 256 "
                                        r"corpus rows \(256 per code\), got 255$"):
        anchor.build(unit_rows(255), FULL)
    with pytest.raises(DataError, match=r"^opq4 stage: FAISS PQ training needs at least 256"):
        anchor.build(unit_rows(100), FULL, what="opq4 stage")  # a caller names itself
    assert anchor.build(unit_rows(256), FULL).index.ntotal == 256


def test_opq_on_fewer_rows_than_dimensions_is_refused_before_faiss() -> None:
    # 300 x 384 made FAISS's OPQ training crash the process (a segfault or an abort)
    with pytest.raises(DataError, match=r"^anchor faiss-opq:4: FAISS OPQ training needs at "
                                        r"least as many corpus rows as the vectors' dimension "
                                        r"\(384\), got 300$"):
        parse_anchor("faiss-opq:4").build(unit_rows(300, 384), 384)
    assert parse_anchor("faiss-pq:4").build(unit_rows(300, 384), 384).index.ntotal == 300


def test_pca_on_fewer_rows_than_d_says_in_one_line_how_many_it_needs() -> None:
    # checked before FAISS, which refused it only when the grid reached that run
    with pytest.raises(DataError, match=r"^anchor faiss-pca-sq4: FAISS PCA training to d=16 "
                                        r"needs at least 16 corpus rows \(one per output "
                                        r"dimension\), got 15$"):
        parse_anchor("faiss-pca-sq4").build(unit_rows(15), 16)
    assert parse_anchor("faiss-pca-sq4").build(unit_rows(16), 16).index.ntotal == 16


def test_what_faiss_cannot_train_is_one_line_without_its_source_location(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    # FAISS's own refusal, reached past dive's check of the rows
    monkeypatch.setattr(Anchor, "check_rows", lambda *args, **kwargs: None)
    with pytest.raises(DataError) as caught:
        parse_anchor("faiss-pca-sq8").build(unit_rows(5), 16)
    assert str(caught.value) == ("anchor faiss-pca-sq8: FAISS could not train 'PCA16,L2norm,SQ8' "
                                 "on 5 corpus vectors (PCA matrix cannot output 16 dimensions "
                                 "from 32)")


@pytest.mark.parametrize("block", [7, 65536])
def test_st_int8_ranks_by_the_inner_product_of_sentence_transformers_codes(
        block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The codes are made a block of rows at a time (the whole corpus at once made two float32
    copies of it), the same codes as sentence-transformers makes of the whole."""
    st = pytest.importorskip("sentence_transformers")
    monkeypatch.setattr("dive.evaluate.anchors.QUANTIZE_ROWS", block)
    corpus, queries = unit_rows(300), unit_rows(7, seed=1)
    rows, scores = parse_anchor("st-int8").build(corpus, FULL).search(queries, 10)
    codes = st.quantize_embeddings(corpus, "int8", calibration_embeddings=corpus)
    query_codes = st.quantize_embeddings(queries, "int8", calibration_embeddings=corpus)
    brute = query_codes.astype(np.int64) @ codes.astype(np.int64).T
    expected = -np.sort(-brute, axis=1)[:, :10]
    assert np.array_equal(scores, expected.astype(np.float32))
    assert np.array_equal(np.take_along_axis(brute, rows, axis=1), expected)


@pytest.mark.parametrize("block", [7, 65536])
def test_st_binary_ranks_by_hamming_distance_of_the_sign_bits(
        block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sentence_transformers")
    monkeypatch.setattr("dive.evaluate.anchors.QUANTIZE_ROWS", block)
    corpus, queries = unit_rows(300), unit_rows(7, seed=1)
    rows, scores = parse_anchor("st-binary").build(corpus, FULL).search(queries, 10)
    signs = np.where(corpus > 0, 1, -1)
    brute = np.where(queries > 0, 1, -1) @ signs.T  # d - 2 x Hamming
    assert np.array_equal(scores, -np.sort(-brute, axis=1)[:, :10].astype(np.float32))
    assert np.array_equal(np.take_along_axis(brute, rows, axis=1), scores)


def test_search_never_returns_the_excluded_row() -> None:
    corpus = unit_rows(300)
    index = parse_anchor("faiss-pca-sq8").build(corpus, 16)
    queries = corpus[:4].copy()  # each query's best hit is its own row
    own = index.search(queries, 5)[0][:, 0]
    exclude = np.array([own[0], -1, own[2], -1])
    rows, scores = index.search(queries, 5, exclude)
    assert rows.shape == (4, 5)
    assert rows[0, 0] != own[0] and own[0] not in rows[0] and own[2] not in rows[2]
    assert rows[1, 0] == own[1]  # no exclusion: unchanged
    assert (np.diff(scores, axis=1) <= 0).all()


@pytest.mark.parametrize("k", [5, 40])
def test_a_search_that_leaves_out_a_row_keeps_the_order_of_the_other_hits(k: int) -> None:
    """Guards the stable sort that moves the excluded row last: an unstable one reordered the
    other hits from 17 on (numpy's quicksort sorts 16 or fewer by insertion, which is stable),
    and they came back out of FAISS's order."""
    corpus = unit_rows(300)
    index = parse_anchor("faiss-pca-sq8").build(corpus, 16)
    queries = corpus[:4].copy()
    own = index.search(queries, 1)[0][:, 0]
    exclude = np.array([own[0], -1, own[2], own[3]])
    rows, scores = index.search(queries, k, exclude)
    every, every_scores = index.search(queries, k + 1)  # as deep, nothing left out
    for i, row in enumerate(every):
        kept = row != exclude[i]
        assert np.array_equal(rows[i], row[kept][:k])
        assert np.array_equal(scores[i], every_scores[i][kept][:k])


def test_an_sq4_anchor_at_an_odd_d_states_the_bytes_its_index_stores() -> None:
    """Guards the round-up of a 4-bit code: at d = 7 the index stores ceil(7 / 2) = 4 bytes
    per vector, and the anchor states those, not 7 // 2 = 3."""
    anchor = parse_anchor("faiss-pca-sq4")
    built = anchor.build(unit_rows(300), 7)
    assert anchor.bytes_per_vector(FULL, 7) == built.bytes_per_vector == 4


def test_a_search_that_leaves_out_each_querys_own_row_still_returns_k_hits() -> None:
    """Guards the search one deeper when a row is excluded: each query's own row (its best
    hit) is left out and k real rows, none -1, come back in its place."""
    corpus = unit_rows(300)
    index = parse_anchor("faiss-pca-sq8").build(corpus, 16)
    own = index.search(corpus[:3], 1)[0][:, 0]
    rows, scores = index.search(corpus[:3], 5, exclude=own)
    assert rows.shape == scores.shape == (3, 5)
    assert (rows >= 0).all() and np.isfinite(scores).all()
    assert not (rows == own[:, None]).any()


def test_pq_depends_on_the_seed_only() -> None:
    corpus, queries = unit_rows(400), unit_rows(20, seed=2)
    anchor = parse_anchor("faiss-pq:8")
    first, again = anchor.build(corpus, FULL, 0), anchor.build(corpus, FULL, 0)
    other = anchor.build(corpus, FULL, 1)
    assert np.array_equal(first.search(queries, 10)[1], again.search(queries, 10)[1])
    assert not np.array_equal(first.search(queries, 10)[1], other.search(queries, 10)[1])


@pytest.mark.parametrize("name", ["faiss-pq:8", "faiss-opq:8"])
def test_a_seed_faiss_cannot_hold_is_taken_modulo_its_range(name: str) -> None:
    """A seed of 2**31 or more (dive takes any below 2**63) gave a traceback from `dive index
    --opq` and `dive evaluate --anchors faiss-pq:M`: FAISS's k-means seed is a C int."""
    corpus, queries = unit_rows(400), unit_rows(20, seed=2)
    anchor = parse_anchor(name)
    large, small = (anchor.build(corpus, FULL, seed) for seed in (2**31 + 1, 1))
    assert np.array_equal(large.search(queries, 10)[1], small.search(queries, 10)[1])


def grid(data: tuple[Path, Path], anchors: list[str], **overrides: object) -> GridSpec:
    options: dict[str, object] = dict(
        datasets=[str(data[0])], methods=["frozen", "pca"], ratios=[4], budgets=[8],
        seeds=[0], embeddings_dir=str(data[1]), precisions=["float32", "int8"],
        rescores=[0, 4], anchors=anchors)
    options.update(overrides)
    return GridSpec(**options)  # type: ignore[arg-type]


def test_anchors_are_rows_of_the_grid_with_their_bytes_and_resume(make_tiny, tmp_path: Path
                                                                  ) -> None:
    data = make_tiny(n_docs=300)
    results = tmp_path / "r.jsonl"
    records = run_grid(grid(data, ["faiss-pq:4", "faiss-pca-sq4"]), ResultsFile(results))
    anchors = {method_label(r): r for r in records if is_anchor(r["method"])}
    assert set(anchors) == {"faiss-pq:4", "faiss-pq:4@rescore4", "faiss-pca-sq4",
                            "faiss-pca-sq4@rescore4"}
    assert anchors["faiss-pq:4"]["precision"] == "pq"
    assert anchors["faiss-pq:4"]["bytes_per_vector"] == 4
    assert anchors["faiss-pq:4"]["dim"] == 32 and anchors["faiss-pq:4"]["ratio"] == 1
    assert anchors["faiss-pca-sq4"]["dim"] == 8 and anchors["faiss-pca-sq4"]["precision"] == "int4"
    assert anchors["faiss-pca-sq4"]["bytes_per_vector"] == 4  # 8 dims of 4 bits
    assert anchors["faiss-pq:4@rescore4"]["rescore_with"] == "full"
    assert anchors["faiss-pq:4@rescore4"]["config"]["factory"] == "PQ4np"
    assert anchors["faiss-pq:4"]["n_params"] == 256 * 32  # the codebooks
    assert len({record_key(r) for r in read_records(results)}) == len(records)
    # The funnel re-ranks PQ's candidates by the full embeddings: another ranking.
    assert anchors["faiss-pq:4@rescore4"]["ndcg@10"] != anchors["faiss-pq:4"]["ndcg@10"]
    again = run_grid(grid(data, ["faiss-pq:4", "faiss-pca-sq4"]), ResultsFile(results))
    assert len(read_records(results)) == len(records) == len(again)


def test_anchors_see_embeddings_stored_off_unit_norm_normalised(
    make_tiny, tmp_path: Path, scaled_off_unit_norm: Callable[[Path], Path]
) -> None:
    # As every method does: else an anchor ranks by the imported vectors' norms.
    data = make_tiny()
    scaled = scaled_off_unit_norm(data[1])
    anchors = ["faiss-pca-sq8", "st-int8"]
    options: dict[str, object] = dict(methods=[], precisions=["float32"], rescores=[0, 4])
    want = run_grid(grid(data, anchors, **options), ResultsFile(tmp_path / "unit.jsonl"))
    got = run_grid(grid((data[0], scaled), anchors, **options),
                   ResultsFile(tmp_path / "scaled.jsonl"))
    assert [r["ndcg@10"] for r in got] == pytest.approx([r["ndcg@10"] for r in want])


def test_a_grid_of_anchors_alone_runs_and_bad_anchors_fail_before_any_run(
    make_tiny, tmp_path: Path
) -> None:
    data = make_tiny(n_docs=300)
    records = run_grid(grid(data, ["faiss-pca-sq8"], methods=[], rescores=[0]),
                       ResultsFile(tmp_path / "r.jsonl"))
    assert {r["method"] for r in records} == {"faiss-pca-sq8"}
    with pytest.raises(DiveError, match="unknown anchor 'pq:8'"):
        grid(data, ["pq:8"])
    with pytest.raises(DiveError, match=r"no methods given \(and no anchors\)"):
        grid(data, [], methods=[])
    with pytest.raises(DataError, match="sub-quantizers do not divide"):
        run_grid(grid(data, ["faiss-pq:5"]), ResultsFile(tmp_path / "bad.jsonl"))
    assert not (tmp_path / "bad.jsonl").exists()


@pytest.mark.parametrize("spec", ["faiss-pq:4", "faiss-opq:4"])
def test_too_few_corpus_rows_for_a_pq_anchor_fail_before_any_run(
    spec: str, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """The grid ran and recorded frozen and pca, then stopped at the anchor's index."""
    results = tmp_path / "r.jsonl"
    with pytest.raises(DataError, match=rf"^tiny: anchor {spec}: FAISS PQ training needs at "
                                        r"least 256 corpus rows \(256 per code\), got 120$"):
        run_grid(grid(tiny, [spec]), ResultsFile(results))
    assert not results.exists()


@pytest.mark.parametrize("spec", ["faiss-pca-sq8", "faiss-pca-sq4"])
def test_fewer_corpus_rows_than_a_pca_anchors_d_fail_before_any_run(
    spec: str, make_tiny, tmp_path: Path
) -> None:
    """The grid ran and recorded frozen, then stopped at the anchor's PCA, naming no dataset."""
    data = make_tiny(n_docs=12)
    results = tmp_path / "r.jsonl"
    with pytest.raises(DataError, match=rf"^tiny: anchor {spec}: FAISS PCA training to d=16 "
                                        r"needs at least 16 corpus rows \(one per output "
                                        r"dimension\), got 12$"):
        run_grid(grid(data, [spec], methods=["frozen"], ratios=[2], rescores=[0]),
                 ResultsFile(results))
    assert not results.exists()


def test_anchor_rows_go_through_the_report(make_tiny, tmp_path: Path) -> None:
    data = make_tiny(n_docs=300)
    records = run_grid(grid(data, ["faiss-pq:4", "faiss-pca-sq8"]),
                       ResultsFile(tmp_path / "r.jsonl"))
    files = write_report(records, tmp_path / "report")
    text = files.markdown.read_text()
    assert "## Quality per byte" in text
    assert "| faiss-pq:4 |" in text  # a row of the metric tables
    assert "faiss-pq:4@rescore4" in text
    assert "best anchor" in text and "faiss-pca-sq8 d=8" in text
    assert (tmp_path / "report" / "ndcg_vs_bytes.png").stat().st_size > 0


@pytest.mark.parametrize(("missing", "anchors", "precisions", "message"), [
    ("faiss", ["st-int8"], ["float32"], r"FAISS .* install dive-compress\[faiss\]"),
    ("faiss", [], ["float32", "opq4"], r"needs faiss-cpu; install dive-compress\[faiss\]"),
    ("sentence_transformers", ["faiss-pq:4", "st-binary"], ["float32"],
     r"sentence-transformers anchors need sentence-transformers; install dive-compress\[embed\]"),
])
def test_a_missing_package_an_anchor_or_precision_needs_fails_before_any_run(
    missing: str, anchors: list[str], precisions: list[str], message: str,
    make_tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found at the first run that needed it: every run before it (hours of fits, in a real
    grid) had run and been recorded first."""
    data = make_tiny(n_docs=300)
    monkeypatch.setitem(sys.modules, missing, None)  # `import missing` raises ImportError
    results = tmp_path / "r.jsonl"
    with pytest.raises(DiveError, match=message):
        run_grid(grid(data, anchors, precisions=precisions, rescores=[0]), ResultsFile(results))
    assert not results.exists()


def test_a_grid_whose_faiss_runs_are_all_recorded_reruns_without_faiss(
    make_tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the runs due need the package: a rerun (to add a method, or to report) of a grid
    whose anchor and opqM runs are recorded was refused without FAISS."""
    data = make_tiny(n_docs=300)
    results = ResultsFile(tmp_path / "r.jsonl")
    spec = grid(data, ["faiss-pq:4"], precisions=["float32", "opq4"], rescores=[0])
    first = run_grid(spec, results)
    monkeypatch.setitem(sys.modules, "faiss", None)
    again = run_grid(grid(data, ["faiss-pq:4"], methods=["frozen", "pca", "truncate"],
                          precisions=["float32"], rescores=[0]), results)
    assert {r["method"] for r in again} == {r["method"] for r in first} | {"truncate"}
    with pytest.raises(DiveError, match=r"needs faiss-cpu"):  # truncate's opq4 run is due
        run_grid(grid(data, [], methods=["truncate"], precisions=["float32", "opq4"],
                      rescores=[0]), results)
