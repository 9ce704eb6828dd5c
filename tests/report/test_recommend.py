"""`dive recommend`: the fewest-bytes configuration keeping a share of frozen nDCG@10."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dive.cli import main
from dive.cli.parsers import build_parser
from dive.errors import DataError, DiveError
from dive.report.recommend import recommend, render


def test_recommend_picks_the_fewest_bytes_meeting_the_target(
    byte_records: list[dict[str, Any]]
) -> None:
    rec = recommend(byte_records, "scifact", 0.95)
    assert (rec.config.method, rec.config.dim, rec.config.precision, rec.config.rescore) == (
        "pca", 96, "binary", 10)
    assert rec.anchor is not None and rec.anchor.label == "faiss-pq:48@rescore10"
    no_funnel = recommend(byte_records, "scifact", 0.95, rescoring=False)
    assert no_funnel.config.label == "pca@int8" and no_funnel.config.bytes_per_vector == 96
    assert no_funnel.anchor is not None and no_funnel.anchor.label == "faiss-pq:48"
    text = "\n".join(render(no_funnel))
    assert "ship: method pca, d=96, precision int8, no rescoring" in text
    assert "--method pca --dim 96 --precision int8" in text
    assert "(96.8% of frozen); first stage 96 bytes/vector" in text


def test_a_dataset_given_as_its_folder_is_found_by_its_name(
    byte_records: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`evaluate --datasets scifact/` records the folder's name: `recommend --dataset
    scifact/`, as typed for evaluate, was 'no results for dataset'."""
    (tmp_path / "scifact").mkdir()
    monkeypatch.chdir(tmp_path)
    expected = recommend(byte_records, "scifact", 0.95).config
    assert recommend(byte_records, "scifact/", 0.95).config == expected
    assert recommend(byte_records, str(tmp_path / "scifact"), 0.95).config == expected


def test_recommend_errors_clearly_when_nothing_meets_the_target(
    byte_records: list[dict[str, Any]], byte_row: Callable[..., dict[str, Any]]
) -> None:
    with pytest.raises(DataError, match=r"no compressed configuration without rescoring keeps "
                       r"99.9% of frozen ndcg@10 \(0.6000, target 0.5994 on seed 0\); the best is "
                       r"frozen d=384 int8 at 0.5980"):
        recommend(byte_records, "scifact", 0.999, rescoring=False)
    with pytest.raises(DataError, match=r"within 40 bytes/vector keeps 95%.*pca d=96 binary"):
        recommend(byte_records, "scifact", 0.95, max_bytes=40, rescoring=False)
    # a share just below the target, rounded down: 0.59993 / 0.6 read "100.0%" under "keeps 100%"
    close = [*byte_records, byte_row("pca", 192, "int8", 192, 0.59993)]
    with pytest.raises(DataError, match=r"keeps 100% of frozen .* the best is pca d=192 int8 at "
                       r"0\.5999 \(99\.9% of frozen"):
        recommend(close, "scifact", 1.0, rescoring=False)
    with pytest.raises(DataError, match="no results for dataset 'nfcorpus'; the results have "
                       "'scifact'"):
        recommend(byte_records, "nfcorpus")
    # a name recorded with a blank (`evaluate --datasets ' scifact'`) is found as typed, and
    # one typed with a stray blank as recorded: the CLI stripped ' scifact' to 'scifact'
    blank = [{**r, "dataset": " scifact"} for r in byte_records]
    as_typed, slip = (recommend(blank, " scifact", rescoring=False),
                      recommend(byte_records, "scifact ", rescoring=False))
    assert as_typed.paired == slip.paired and as_typed.keep == slip.keep
    assert build_parser().parse_args(
        ["recommend", "--results", "r.jsonl", "--dataset", " scifact"]).dataset == " scifact"
    two = [*byte_records, byte_row("pca", 96, "int8", 96, 0.5, budget="all"),
           byte_row("frozen", 384, "float32", 1536, 0.55, budget="all")]
    with pytest.raises(DataError, match=r"several budgets on scifact \(64, all\); choose one$"):
        recommend(two, "scifact")
    assert recommend(two, "scifact", 0.9, budget="all").config.budget == "all"
    # spelled as evaluate takes it ('ALL' said "no results for budget 'ALL'")
    assert recommend(two, "scifact", 0.9, budget="ALL").config.budget == "all"
    assert recommend(two, "scifact", budget=" 64").config.budget == "64"
    with pytest.raises(DataError, match="no frozen float32 run"):
        recommend([r for r in byte_records if r["precision"] != "float32"], "scifact")
    # frozen was run, at other precisions only: "evaluate with methods including frozen" was
    # not what to do
    with pytest.raises(DataError, match=r"no frozen float32 run to keep a share of \(frozen ran "
                                        r"at binary, int8 only\); evaluate with float32 among "
                                        r"the precisions and 0 among the rescore factors "
                                        r"\(float32 rescored by float32 ranks as float32 "
                                        r"alone, so it runs only unrescored\)$"):
        recommend([r for r in byte_records if r["precision"] != "float32"], "scifact")
    assert recommend(byte_records, "scifact").frozen.precision == "float32"


def test_rows_of_an_earlier_release_are_never_recommended(
    byte_records: list[dict[str, Any]], byte_row: Callable[..., dict[str, Any]]
) -> None:
    best = recommend(byte_records, "scifact", 0.95, rescoring=False).config
    older = byte_row(f"{best.method}@v1", best.dim, "binary", best.dim // 8, 0.6)
    rec = recommend([*byte_records, older], "scifact", 0.95, rescoring=False)
    assert rec.config == best  # not the cheaper row of code `dive fit` no longer builds
    assert "@v1" not in "\n".join(render(rec))
    # only such rows (and frozen): it said none of dive's had run
    alone = [r for r in byte_records if r["method"] == "frozen" and r["precision"] == "float32"]
    with pytest.raises(DataError, match=r"keeps 95% of frozen .*; the compressed configurations "
                                        r"that were run are of an earlier release or unknown "
                                        r"here \(pca@v1\), which dive fit cannot build$"):
        recommend([*alone, older], "scifact", 0.95)
    # an '@' inside a spec is no release: DIVE's grid names its loss so
    spec = byte_row("dive:grid=1x10x3@hinge", 48, "float32", 192, 0.99)
    assert recommend([*alone, spec], "scifact", 0.95).config.method == "dive:grid=1x10x3@hinge"


@pytest.mark.parametrize("method", ["pca:foo=1", "mystery:alpha=3"])
def test_a_spec_this_install_cannot_build_is_named_and_never_recommended(
    byte_records: list[dict[str, Any]], byte_row: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture, method: str
) -> None:
    """A row of another release's option (or a method not installed) was picked, and its
    build line failed: "pca: unknown option(s) foo"."""
    best = recommend(byte_records, "scifact", 0.95, rescoring=False).config
    other = byte_row(method, best.dim, "binary", best.dim // 8, 0.6)
    caplog.clear()
    rec = recommend([*byte_records, other], "scifact", 0.95, rescoring=False)
    assert rec.config == best
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"recommend: left out {method}, which dive fit here cannot build (a method or option "
        "of another release?)"]


def test_dive_recommend_prints_the_pick_and_fails_in_one_line(
    byte_records: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in byte_records))
    assert main(["recommend", "--results", str(path), "--dataset", "scifact",
                 "--keep", "0.95"]) == 0
    out = capsys.readouterr().out
    assert "ship: method pca, d=96, precision binary, rescore 10 x k from the full" in out
    assert main(["recommend", "--results", str(path), "--dataset", "scifact", "--keep", "1.2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no compressed configuration keeps 120% of frozen" in err and "\n" not in err


@pytest.mark.parametrize("verb", ["recommend", "report"])
@pytest.mark.parametrize("keep", ["inf", "nan", "0", "-1", "99", "1e308", "2.000001"])
def test_a_keep_that_is_no_share_is_one_line_for_report_and_recommend(
    byte_records: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    verb: str, keep: str,
) -> None:
    """`--keep inf` was taken: the report was written under "keeping inf% of frozen"."""
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in byte_records))
    where = (["--dataset", "scifact"] if verb == "recommend"
             else ["--output", str(tmp_path / "rep")])
    assert main([verb, "--results", str(path), *where, "--keep", keep]) == 2
    err = capsys.readouterr().err.strip()
    assert "keep must be a positive, finite share of frozen" in err and "\n" not in err
    assert f"got {float(keep)!r}" in err  # as given: 2.000001 is not "2"
    assert err.endswith("(--keep)"), err
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize("what", ["budget", "model"])
def test_several_budgets_or_models_name_the_flag_in_the_cli_only(
    byte_records: list[dict[str, Any]], byte_row: Callable[..., dict[str, Any]], tmp_path: Path,
    capsys: pytest.CaptureFixture[str], what: str,
) -> None:
    """The library said "choose one with --budget" (a flag, in library code): now the error
    names the parameter and `dive recommend` adds its flag."""
    other = {"budget": "all"} if what == "budget" else {"model": "other-model"}
    two = [*byte_records, {**byte_row("pca", 96, "int8", 96, 0.5), **other},
           {**byte_row("frozen", 384, "float32", 1536, 0.55), **other}]
    with pytest.raises(DataError, match=r"choose one$") as exc:
        recommend(two, "scifact")
    assert exc.value.param == what
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in two))
    assert main(["recommend", "--results", str(path), "--dataset", "scifact"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"choose one (--{what})") and "\n" not in err, err


def test_the_default_models_hub_alias_is_not_a_second_model(
    byte_records: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file holding the default model under its name and its hub alias (an older `dive
    evaluate --model sentence-transformers/all-MiniLM-L6-v2`) asked to choose a model."""
    alias = "sentence-transformers/all-MiniLM-L6-v2"
    both = [{**r, "model": alias if i % 2 else "all-MiniLM-L6-v2"}
            for i, r in enumerate(byte_records)]
    rec = recommend(both, "scifact", 0.95)
    assert (rec.model, rec.config.method, rec.config.dim) == ("all-MiniLM-L6-v2", "pca", 96)
    assert recommend(both, "scifact", 0.95, model=alias).config == rec.config
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in both))
    assert main(["recommend", "--results", str(path), "--dataset", "scifact"]) == 0
    assert "--model" not in capsys.readouterr().out  # the default: no --model to build with
    out = tmp_path / "rep"
    assert main(["report", "--results", str(path), "--output", str(out)]) == 0
    assert "model: all-MiniLM-L6-v2;" in (out / "report.md").read_text()


def _unequal_seeds(byte_row: Callable[..., dict[str, Any]]) -> list[dict[str, Any]]:
    """Frozen on seeds 0-2 (mean 0.4167, 0.45 on seed 1); pca on seed 1 only: d=96 int8 keeps
    99% of frozen's mean over all seeds (0.43 / 0.4167) but not on its own queries (0.43 /
    0.45 = 95.6%); d=192 int8 keeps it on both (0.455 / 0.45)."""
    return [byte_row("frozen", 384, "float32", 1536, v, seed=s)
            for s, v in enumerate([0.40, 0.45, 0.40])] + [
        byte_row("pca", 96, "int8", 96, 0.430, seed=1),
        byte_row("pca", 192, "int8", 192, 0.455, seed=1)]


def test_recommend_compares_with_frozen_on_the_seeds_both_ran(
    byte_row: Callable[..., dict[str, Any]]
) -> None:
    rec = recommend(_unequal_seeds(byte_row), "scifact", 0.99)
    assert (rec.config.dim, rec.paired.seeds) == (192, (1,))
    assert rec.share == pytest.approx(0.455 / 0.45) and rec.target == pytest.approx(0.99 * 0.45)
    text = "\n".join(render(rec))
    assert ("(0.4167 at 1536 bytes/vector over seeds 0, 1, 2; on seed 1, which the pick also "
            "ran: 0.4500, target 0.4455)") in text
    assert "nDCG@10 0.4550 ± 0.0000 over 1 seed(s) (101.1% of frozen on seed 1)" in text
    with pytest.raises(DataError, match=r"the best is pca d=96 int8 at 0.4300 \(95.5% of "
                       r"frozen's 0.4500 on seed 1, 96 bytes/vector\)"):
        recommend(_unequal_seeds(byte_row), "scifact", 0.99, max_bytes=100)


def test_recommend_says_which_configurations_share_no_seed_with_frozen(
    byte_row: Callable[..., dict[str, Any]]
) -> None:
    records = [byte_row("frozen", 384, "float32", 1536, 0.40, seed=0),
               byte_row("pca", 96, "int8", 96, 0.50, seed=3)]
    with pytest.raises(DataError, match=r"none of the 1 that were run shares a seed with "
                       r"frozen's, so none can be compared \(they ran seed 3\)"):
        recommend(records, "scifact", 0.99)
    records.append(byte_row("pca", 192, "int8", 192, 0.40, seed=0))
    rec = recommend(records, "scifact", 0.99)
    assert rec.config.dim == 192 and [c.dim for c in rec.unpaired] == [96]
    assert ("not compared: 1 configuration(s) share no seed with frozen (seed 0), e.g. pca "
            "d=96 int8 on seed 3") in "\n".join(render(rec))


def test_the_build_line_names_the_records_model_unless_it_is_the_default(
    byte_records: list[dict[str, Any]]
) -> None:
    def build(model: str) -> list[str]:
        rec = recommend([{**r, "model": model} for r in byte_records], "scifact", 0.95,
                        rescoring=False)
        return [line for line in render(rec) if "dive fit" in line or "record neither" in line]

    # pca learns without labels: `dive fit` would warn that a --budget is not used
    assert build("all-mpnet-base-v2")[0] == (
        "  build: dive fit --dataset scifact --method pca --dim 96 --precision int8 "
        "--model all-mpnet-base-v2 --output MODEL_DIR")
    assert "--model" not in build("all-MiniLM-L6-v2")[0]
    learned = recommend([{**r, "method": "dive"} if r["method"] == "pca" else r
                         for r in byte_records], "scifact", 0.95, rescoring=False)
    assert "--method dive --dim 96 --budget 64 --precision int8" in "\n".join(render(learned))
    assert "--model '/my models/e5'" in build("/my models/e5")[0]  # a path, quoted
    assert "--embeddings" in build("m")[1]  # the records do not state the folders used


def test_the_build_line_gives_the_seed_of_a_fit_that_was_measured(
    byte_records: list[dict[str, Any]], byte_row: Callable[..., dict[str, Any]]
) -> None:
    # fit's default seed 0 built another model than the one measured on seed 3 (on a
    # collection without train qrels, one that had read seed 3's measured queries as labels)
    def build(seeds: list[int]) -> list[str]:
        rows = [{**r, "method": "dive", "seed": s} if r["method"] == "pca" else {**r, "seed": s}
                for r in byte_records for s in seeds]
        rec = recommend(rows, "scifact", 0.95, rescoring=False)
        return [line for line in render(rec) if "dive fit" in line]

    assert "--budget 64 --seed 3 --precision int8" in build([3])[0]
    assert "--seed" not in build([0, 1, 2])[0]  # seed 0 is fit's default, and measured
    assert "--budget 64 --seed 4 --precision" in build([5, 4])[0]

    # an OPQ pick: the index's rotation and codebooks were trained with the run's seed too
    rows = [{**r, "seed": 3} for r in byte_records]
    rows.append(byte_row("pca", 96, "opq8", 8, 0.590, seed=3))
    lines = render(recommend(rows, "scifact", 0.98, rescoring=False))
    assert "  index: dive index MODEL_DIR --embeddings EMB_DIR --opq 8 --seed 3 --output INDEX" \
        in lines
    # the model an OPQ index is built over outputs float32 (the index quantizes it)
    assert next(line for line in lines if "dive fit" in line).endswith(
        "--seed 3 --precision float32 --model m --output MODEL_DIR")


def test_a_funnel_pick_says_how_to_build_the_index_it_serves_from(
    byte_records: list[dict[str, Any]]
) -> None:
    rec = recommend(byte_records, "scifact", 0.98)  # pca d=96 binary, rescored x10
    assert rec.config.rescore == 10
    lines = [line.strip() for line in render(rec)]
    index = lines.index("index: dive index MODEL_DIR --embeddings EMB_DIR --output INDEX")
    # the space named: a model keeping the full dimension cannot be told by width
    assert lines[index + 1] == ("serve: dive search INDEX MODEL_DIR --rescore-vectors FULL.npy "
                                "--rescore-space full --rescore-factor 10")


def test_a_pick_rescored_by_the_compressed_outputs_says_how_to_make_them(
    byte_records: list[dict[str, Any]]
) -> None:
    """It told to serve with COMPRESSED.npy, which `dive compress` of the binary model it
    built cannot write (its outputs are codes; --dtype float32 is refused for it)."""
    records = [{**r, "rescore_with": "compressed", "rescore_bytes_per_vector": 4 * r["dim"]}
               if r.get("rescore") else r for r in byte_records]
    rec = recommend(records, "scifact", 0.98)
    assert (rec.config.precision, rec.config.rescore_with) == ("binary", "compressed")
    lines = [line.strip() for line in render(rec, full_dim=384)]
    # the copy the funnel reads is of the 96-d outputs, not of the 384-d embeddings
    assert ("the funnel also reads a 384-byte float32 copy per candidate (it may stay on disk)"
            in lines)
    made = lines.index("its float32 outputs: dive fit --dataset scifact --method pca --dim 96 "
                       "--precision float32 --model m --output F32_DIR")
    assert lines[made + 1:made + 3] == [
        "then: dive compress F32_DIR --input EMB_DIR/corpus.npy --output COMPRESSED.npy",
        "serve: dive search INDEX MODEL_DIR --rescore-vectors COMPRESSED.npy --rescore-space "
        "compressed --rescore-factor 10"]


def test_the_anchor_for_comparison_is_named_above_the_byte_limit_too(
    byte_records: list[dict[str, Any]]
) -> None:
    # it said "no anchor that was run keeps the target" of an anchor it had run
    rec = recommend(byte_records, "scifact", 0.98, max_bytes=20)
    assert rec.config.bytes_per_vector == 12
    assert rec.anchor is not None and rec.anchor.method == "faiss-pq:48"
    assert "smallest anchor keeping it: faiss-pq:48" in "\n".join(render(rec))


def test_without_anchors_it_says_none_was_run(byte_records: list[dict[str, Any]]) -> None:
    # "no anchor that was run keeps the target", when no anchor was run at all
    ours = [r for r in byte_records if r["method"] in ("frozen", "pca")]
    lines = render(recommend(ours, "scifact", 0.95))
    assert "  no anchor was run to compare with (dive evaluate --anchors)" in lines
    assert "  no anchor that was run keeps the target" not in lines


def test_recommend_says_no_run_fits_the_byte_limit(byte_records: list[dict[str, Any]]) -> None:
    with pytest.raises(DataError, match=r"within 10 bytes/vector keeps 95% .*; none of those "
                       r"that were run fits in 10 bytes/vector: the smallest stores 12 \(pca "
                       r"d=96 binary\)$"):
        recommend(byte_records, "scifact", 0.95, max_bytes=10)
    with pytest.raises(DataError, match=r"no compressed configuration of dive was run"):
        recommend([r for r in byte_records if (r["method"], r["precision"]) == ("frozen", "float32")
                   or "faiss" in r["method"]], "scifact")


def test_a_frozen_that_scores_0_is_one_line_and_the_report_still_writes(
    byte_records: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Frozen nDCG@10 0 (no evaluation query finds a relevant document) was a traceback,
    ZeroDivisionError in the share of frozen, in `dive recommend` and `dive report`."""
    zero = [{**r, "ndcg@10": 0.0} if r["method"] == "frozen" else r for r in byte_records]
    with pytest.raises(DataError, match=r"scifact, 64 labelled queries: frozen float32 ndcg@10 "
                                        r"is 0 on seed 0, so there is no share of it to keep"):
        recommend(zero, "scifact")
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in zero))
    assert main(["recommend", "--results", str(path), "--dataset", "scifact"]) == 2
    assert "no share of it to keep" in capsys.readouterr().err
    assert main(["report", "--results", str(path), "--output", str(tmp_path / "rep")]) == 0
    assert "(frozen scores 0)" in (tmp_path / "rep" / "report.md").read_text()


def test_recommend_says_when_another_configuration_tied_with_the_pick(
    byte_records: list[dict[str, Any]], byte_row: Callable[..., dict[str, Any]]
) -> None:
    # pca-uncentered d=96 int8 stores pca's 96 bytes and scores its 0.581: the label order
    # picked it, and the answer named neither the tie nor pca.
    records = [*byte_records, byte_row("pca-uncentered", 96, "int8", 96, 0.581)]
    rec = recommend(records, "scifact", 0.95, rescoring=False)
    assert rec.config.method == "pca-uncentered"
    assert [c.label for c in rec.tied] == ["pca@int8"]
    assert ("  tied with pca d=96 int8 (also 96 bytes/vector, 96.8% of frozen); picked by "
            "name") in render(rec)
    alone = recommend(byte_records, "scifact", 0.95, rescoring=False)
    assert alone.tied == () and not any("tied" in line for line in render(alone))


def test_a_configuration_of_another_funnel_is_not_tied_with_the_pick(
    byte_records: list[dict[str, Any]], byte_row: Callable[..., dict[str, Any]]
) -> None:
    """The funnel breaks ties before the label: pca d=96 binary rescored x20, at the pick's
    bytes and share, lost on its funnel, not by name; a mutant dropping the funnel from the
    tie rule named it as "tied" with the pick."""
    records = [*byte_records, byte_row("pca-uncentered", 96, "binary", 12, 0.590, rescore=10),
               byte_row("pca", 96, "binary", 12, 0.590, rescore=20)]
    rec = recommend(records, "scifact", 0.95)
    assert (rec.config.method, rec.config.rescore) == ("pca-uncentered", 10)
    assert [(c.label, c.rescore) for c in rec.tied] == [("pca@binary+rescore10", 10)]
    assert not any("rescore 20" in line for line in render(rec))


def test_a_configuration_is_never_kept_where_frozen_scores_zero_on_its_seeds(
    byte_row: Callable[..., dict[str, Any]]
) -> None:
    """0 is not 95% of anything: with frozen at 0 on the one seed a binary pca ran, it was
    recommended as keeping "nan%" of frozen, and the report's tables kept it too."""
    records = [byte_row("frozen", 384, "float32", 1536, v, seed=s)
               for s, v in enumerate([0.0, 0.5])]
    records += [byte_row("pca", 96, "binary", 12, 0.0, seed=0),
                byte_row("dive", 96, "int8", 96, 0.0, seed=0),
                byte_row("dive", 96, "int8", 96, 0.49, seed=1)]
    rec = recommend(records, "scifact", 0.95)
    assert (rec.config.method, rec.config.precision) == ("dive", "int8")
    assert "nan%" not in "\n".join(render(rec))


def test_max_bytes_that_is_not_a_positive_integer_is_refused(byte_records) -> None:
    """"400" was compared with every row's bytes: a TypeError."""
    for max_bytes in ("400", 0):
        with pytest.raises(DiveError, match="max_bytes must be a positive integer"):
            recommend(byte_records, "scifact", max_bytes=max_bytes)  # type: ignore[arg-type]


def test_the_closest_configuration_is_never_one_compared_with_a_frozen_of_0(
    byte_row: Callable[..., dict[str, Any]]
) -> None:
    """The answer to "nothing keeps 95%" named pca binary at "nan% of frozen's 0.0000" (the
    one run beside a frozen of 0), not pca int8 at 91.7%."""
    records = [byte_row("frozen", 384, "float32", 1536, v, seed=s)
               for s, v in enumerate([0.0, 0.6])]
    records += [byte_row("pca", 96, "binary", 12, 0.0, seed=0),
                byte_row("pca", 96, "int8", 96, 0.55, seed=1)]
    with pytest.raises(DataError, match=r"the best is pca d=96 int8 at 0\.5500 \(91\.6% of "
                                        r"frozen's 0\.6000 on seed 1, 96 bytes/vector\)"):
        recommend(records, "scifact", 0.95)


def test_a_tie_within_one_row_label_says_the_smaller_d_was_picked(
    byte_records: list[dict[str, Any]], byte_row: Callable[..., dict[str, Any]]
) -> None:
    """Two `dive@opq12` rows at d=48 and d=96 (12 bytes, the same share): the answer said
    "picked by name" of two configurations of one name."""
    records = [*byte_records, byte_row("dive", 96, "opq12", 12, 0.6),
               byte_row("dive", 48, "opq12", 12, 0.6)]
    rec = recommend(records, "scifact", 0.95)
    assert (rec.config.label, rec.config.dim) == ("dive@opq12", 48)
    assert [c.dim for c in rec.tied] == [96]
    assert render(rec)[-1].endswith("; picked the smaller d")


def test_a_numpy_share_is_a_share(byte_records: list[dict[str, Any]]) -> None:
    """np.float32(0.95) was refused as "not a positive, finite share" (np.float64 passed)."""
    import numpy as np

    assert recommend(byte_records, "scifact", np.float32(0.95)).keep == np.float32(0.95)


@pytest.mark.parametrize("ran", [None, "int8"])  # frozen not run, or at int8 only
def test_a_missing_frozen_names_no_flag_of_recommend(
    byte_records: list[dict[str, Any]], byte_row: Callable[..., dict[str, Any]], tmp_path: Path,
    capsys: pytest.CaptureFixture[str], ran: str | None,
) -> None:
    """"evaluate with methods including frozen (--methods)": recommend has no --methods; the
    flag is dive evaluate's."""
    records = [r for r in byte_records if r["method"] != "frozen"]
    if ran:
        records.append(byte_row("frozen", 384, ran, 384, 0.6))
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert main(["recommend", "--results", str(path), "--dataset", "scifact"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no frozen float32 run to keep a share of" in err
    assert not err.endswith(("(--methods)", "(--precisions)")), err


def test_dive_recommend_passes_no_rescore_and_max_bytes_to_the_pick(
    byte_records: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--no-rescore` and `--max-bytes` reach `recommend`: dropped, the CLI picked a rescored
    configuration, or one over the byte limit, with exit 0."""
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in byte_records))
    base = ["recommend", "--results", str(path), "--dataset", "scifact", "--keep", "0.95"]
    assert main([*base, "--no-rescore"]) == 0
    expected = render(recommend(byte_records, "scifact", 0.95, rescoring=False))
    assert capsys.readouterr().out.splitlines() == expected
    assert main([*base, "--max-bytes", "10"]) == 2
    assert "none of those that were run fits in 10 bytes/vector" in capsys.readouterr().err


def test_a_configuration_at_exactly_max_bytes_is_within_it(byte_records) -> None:
    """`max_bytes` is a bound one may reach: 96 bytes/vector at max_bytes=96 was left out."""
    rec = recommend(byte_records, "scifact", keep=0.95, max_bytes=96, rescoring=False)
    assert (rec.config.method, rec.config.precision, rec.config.bytes_per_vector) == (
        "pca", "int8", 96)
