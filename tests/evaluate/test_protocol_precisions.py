"""The grid at several precisions and rescore factors: one fit, one record per variant."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dive.cli import main
from dive.compressors.base import Compressor
from dive.errors import DataError, DiveError
from dive.evaluate.protocol import GridSpec, run_grid
from dive.evaluate.records import ResultsFile, read_records, record_key
from dive.report.summary import method_label, summarize


def spec(tiny: tuple[Path, Path], **overrides: object) -> GridSpec:
    options: dict[str, object] = dict(
        datasets=[str(tiny[0])], methods=["frozen", "pca"], ratios=[4], budgets=[8],
        seeds=[0], embeddings_dir=str(tiny[1]), precisions=["float32", "int8", "binary"],
        rescores=[0, 4],
    )
    options.update(overrides)
    return GridSpec(**options)  # type: ignore[arg-type]


@pytest.fixture()
def fits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The method of every compressor fitted from now on."""
    calls: list[str] = []
    real = Compressor.fit

    def counting(self: Compressor, *args: Any, **kwargs: Any) -> Compressor:
        calls.append(self.method)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Compressor, "fit", counting)
    return calls


def test_each_fit_is_scored_at_every_variant_without_refitting(
    tiny: tuple[Path, Path], fits: list[str]
) -> None:
    records = run_grid(spec(tiny), ResultsFile(tiny[0].parent / "r.jsonl"))
    assert sorted(fits) == ["frozen", "pca"]  # one fit each, whatever the variants
    pca = {(r["precision"], r["rescore"]): r for r in records if r["method"] == "pca"}
    frozen = {(r["precision"], r["rescore"]) for r in records if r["method"] == "frozen"}
    assert set(pca) == {(p, f) for p in ("float32", "int8", "binary") for f in (0, 4)}
    assert frozen == set(pca) - {("float32", 4)}  # frozen rescored by itself changes nothing
    assert len({record_key(r) for r in records}) == len(records) == 11
    assert {p: r["bytes_per_vector"] for (p, f), r in pca.items() if f == 0} == {
        "float32": 32, "int8": 8, "binary": 1}  # d = 32 / 4 = 8
    assert pca[("binary", 4)]["rescore_with"] == "full"
    assert pca[("binary", 4)]["rescore_bytes_per_vector"] == 4 * 32
    assert "rescore_with" not in pca[("binary", 0)]
    assert len({r["fit_seconds"] for r in pca.values()}) == 1  # the same fit


def test_the_float32_record_is_the_one_a_float32_grid_writes(tiny: tuple[Path, Path]) -> None:
    plain = run_grid(spec(tiny, precisions=["float32"], rescores=[0]),
                     ResultsFile(tiny[0].parent / "plain.jsonl"))
    many = run_grid(spec(tiny), ResultsFile(tiny[0].parent / "many.jsonl"))
    for r in plain:
        assert len(record_key(r)) == 6  # the key records had before precisions existed
        twin = next(m for m in many if record_key(m) == record_key(r))
        assert (twin["ndcg@10"], twin["recall@100"]) == (r["ndcg@10"], r["recall@100"])


def test_a_funnel_covering_the_corpus_scores_as_exact_full_search(
    tiny: tuple[Path, Path]
) -> None:
    # 120 documents: a factor of 12 gives the @10 metrics 120 candidates, Recall@100 1200.
    records = run_grid(spec(tiny, rescores=[0, 12]), ResultsFile(tiny[0].parent / "r.jsonl"))
    frozen = next(r for r in records if method_label(r) == "frozen")
    for r in records:
        if r["rescore"] == 12:
            for metric in ("ndcg@10", "recall@100", "mrr@10"):
                assert r[metric] == pytest.approx(frozen[metric], abs=1e-12), method_label(r)
    binary = next(r for r in records if method_label(r) == "pca@binary")
    assert binary["ndcg@10"] < frozen["ndcg@10"]  # without the funnel, 1 byte loses quality


def test_rescoring_with_the_compressed_outputs(tiny: tuple[Path, Path]) -> None:
    records = run_grid(spec(tiny, rescores=[0, 12], rescore_with="compressed"),
                       ResultsFile(tiny[0].parent / "r.jsonl"))
    labels = {method_label(r): r for r in records}
    assert "pca@float32+rescore12-compressed" not in labels  # float32 by itself: not run
    funnel = labels["pca@binary+rescore12-compressed"]
    assert funnel["rescore_bytes_per_vector"] == 4 * 8
    assert funnel["ndcg@10"] == pytest.approx(labels["pca"]["ndcg@10"], abs=1e-12)


def test_growing_the_variants_runs_only_the_new_ones(tiny: tuple[Path, Path],
                                                    fits: list[str]) -> None:
    path = tiny[0].parent / "r.jsonl"
    run_grid(spec(tiny, precisions=["float32"], rescores=[0]), ResultsFile(path))
    assert len(read_records(path)) == 2
    done: list[object] = []
    run_grid(spec(tiny, precisions=["float32", "int8"]), ResultsFile(path),
             progress=lambda _d, _t, rec: done.append(rec))
    new = read_records(path)[2:]
    assert sorted(method_label(r) for r in new) == [
        "frozen@int8", "frozen@int8+rescore4", "pca@float32+rescore4", "pca@int8",
        "pca@int8+rescore4"]
    run_grid(spec(tiny, precisions=["float32", "int8"]), ResultsFile(path))
    assert len(read_records(path)) == 7  # nothing left to run
    assert sorted(fits) == ["frozen", "frozen", "pca", "pca"]  # the second grid fitted once


def test_report_rows_keep_precisions_apart(tiny: tuple[Path, Path]) -> None:
    records = run_grid(spec(tiny, rescores=[0]), ResultsFile(tiny[0].parent / "r.jsonl"))
    cells = {(c.method, c.dim): c.mean for c in summarize(records)}
    assert set(cells) == {("frozen", 32), ("frozen@int8", 32), ("frozen@binary", 32),
                          ("pca", 8), ("pca@int8", 8), ("pca@binary", 8)}


@pytest.mark.parametrize(("overrides", "message"), [
    ({"precisions": ["float32", "int4"]},
     "precision 'int4' is not one of float32, float16, int8, binary"),
    ({"rescores": [0, -1]}, "rescores must be integers >= 0, got -1"),
    ({"rescore_with": "disk"}, "rescore_with 'disk' is not one of full, compressed"),
])
def test_bad_variant_settings_fail_before_any_run(tiny: tuple[Path, Path],
                                                  overrides: dict[str, object],
                                                  message: str) -> None:
    with pytest.raises(DiveError, match=message):
        spec(tiny, **overrides)


def test_evaluate_cli_with_precisions_and_rescore(tiny: tuple[Path, Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "r.jsonl"
    assert main(["evaluate", "--datasets", str(tiny[0]), "--embeddings", str(tiny[1]),
                 "--methods", "pca", "--ratios", "4", "--budgets", "8", "--seeds", "0",
                 "--precisions", "float32,binary", "--rescore-factors", "0,4",
                 "--results", str(results)]) == 0
    out = capsys.readouterr().out
    for label in ("pca ", "pca@float32+rescore4", "pca@binary ", "pca@binary+rescore4"):
        assert label in out
    assert len(read_records(results)) == 4


def test_rescoring_normalises_embeddings_stored_off_unit_norm(
    tiny: tuple[Path, Path], tmp_path: Path, scaled_off_unit_norm: Callable[[Path], Path]
) -> None:
    # An imported folder keeps its vectors as given (meta.json: normalized false); rescoring
    # must score them as every other step does, by cosine, not by their norms.
    scaled = scaled_off_unit_norm(tiny[1])
    options: dict[str, object] = dict(methods=["pca"], precisions=["float32"], rescores=[4])
    want = run_grid(spec(tiny, **options), ResultsFile(tmp_path / "unit.jsonl"))
    got = run_grid(spec(tiny, embeddings_dir=str(scaled), **options),
                   ResultsFile(tmp_path / "scaled.jsonl"))
    assert [r["ndcg@10"] for r in got] == pytest.approx([r["ndcg@10"] for r in want])


def test_a_bad_precision_name_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--datasets", "x", "--precisions", "float32,int4"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "precision 'int4' is not one of float32, float16, int8, binary" in err
    assert "\n" not in err


def test_records_with_a_bad_variant_are_refused(tmp_path: Path) -> None:
    base = ('{"dataset": "d", "model": "m", "method": "pca", "dim": 8, "budget": "8", '
            '"seed": 0, "ratio": 4, "ndcg@10": 0.5, "recall@100": 0.5, "mrr@10": 0.5, '
            '"fit_seconds": 1, "n_params": 1, "config": {}')
    for extra, message in ((', "precision": "int4"', "precision is 'int4'"),
                           (', "rescore": -2', "rescore is -2"),
                           (', "rescore": 4, "rescore_with": "disk"', "rescore_with is 'disk'")):
        (tmp_path / "r.jsonl").write_text(base + extra + "}\n")
        with pytest.raises(DataError, match=message):
            read_records(tmp_path / "r.jsonl")


def test_a_record_counts_the_values_its_first_stage_was_fitted(tiny: tuple[Path, Path]) -> None:
    records = run_grid(spec(tiny, rescores=[0]), ResultsFile(tiny[0].parent / "r.jsonl"))
    pca = {r["precision"]: r["n_params"] for r in records if r["method"] == "pca"}
    # int8 adds its calibration ranges (a low and a width per output, d = 8), as the saved
    # int8 model counts them; float16 and binary codes need no fitted value
    assert pca == {"float32": pca["float32"], "int8": pca["float32"] + 2 * 8,
                   "binary": pca["float32"]}
    assert {r["n_params"] for r in records if r["method"] == "frozen"} == {0, 2 * 32}


def test_a_funnel_orders_documents_tied_at_rank_10_as_a_run_without_rescoring() -> None:
    """Two identical documents tie at rank 10: trec_eval ranks the larger id first, so the
    relevant `d00` falls to rank 11 in the float32 run. The funnel's cut to k kept the lower
    row, `d00`: float16 rescored by the very float32 vectors scored above float32 alone."""
    from dive.evaluate.funnel import Outputs, Variant, score_variants

    rng = np.random.default_rng(0)
    query = np.array([[1.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    # rows 1-9 nearer the query than rows 0 and 10 (the twins), the rest farther
    angles = np.concatenate([[0.5], np.linspace(0.1, 0.4, 9), [0.5], rng.uniform(0.6, 1.5, 9)])
    corpus = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles),
                       np.zeros_like(angles)], axis=1).astype(np.float32)
    ids = [f"d{i:02d}" for i in range(len(corpus))]
    out = Outputs(query, corpus, query, corpus, ["q"], ids, np.array([-1]))
    qrels = {"q": {"d00": 1}}
    plain, funnel = (m for m, _ in score_variants(
        [Variant(), Variant("float16", 3, "compressed")], out, qrels, top_k=100))
    assert plain["ndcg@10"] == 0.0  # d10 holds rank 10, as trec_eval orders the tie
    assert (funnel["ndcg@10"], funnel["mrr@10"]) == (plain["ndcg@10"], plain["mrr@10"])


def test_a_funnel_rescores_all_of_its_candidates() -> None:
    """Guards the funnel's depth: it re-ranked one candidate fewer than r x k, so a relevant
    document the first stage put at rank k (r = 1) was never found by the funnel."""
    from dive.evaluate.funnel import Outputs, Variant, score_funnel
    from dive.evaluate.metrics import evaluate_run
    from dive.evaluate.search import rescore, to_run

    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((50, 8)).astype(np.float32)
    queries = rng.standard_normal((4, 8)).astype(np.float32)
    ids, query_ids = [f"d{i:02d}" for i in range(50)], [f"q{i}" for i in range(4)]
    out = Outputs(queries, corpus, queries, corpus, query_ids, ids, np.full(4, -1))
    # a poor first stage: the 10 farthest documents, nearest first
    rows = np.argsort(queries @ corpus.T, axis=1)[:, :10][:, ::-1].copy()
    scores = np.take_along_axis(queries @ corpus.T, rows, axis=1)
    qrels = {q: {ids[row[-1]]: 1} for q, row in zip(query_ids, rows, strict=True)}
    got = score_funnel(rows, scores, Variant("int8", 1, "full"), out, qrels, top_k=10)
    want = evaluate_run(to_run(query_ids, ids, *rescore(queries, corpus, rows, 10)), qrels)
    assert got == want
    assert got["recall@100"] == 1.0  # the candidate at rank 10 is kept
