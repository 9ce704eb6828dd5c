"""`dive recommend`: the fewest-bytes configuration keeping a share of frozen nDCG@10."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dive.cli import main
from dive.errors import DataError
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
    assert "--method pca --dim 96 --budget 64 --precision int8" in text
    assert "(96.8% of frozen); first stage 96 bytes/vector" in text


def test_recommend_errors_clearly_when_nothing_meets_the_target(
    byte_records: list[dict[str, Any]], byte_row: Callable[..., dict[str, Any]]
) -> None:
    with pytest.raises(DataError, match=r"no compressed configuration without rescoring keeps "
                       r"99.9% of frozen ndcg@10 \(0.6000, target 0.5994\); the best is "
                       r"frozen d=384 int8 at 0.5980"):
        recommend(byte_records, "scifact", 0.999, rescoring=False)
    with pytest.raises(DataError, match=r"within 40 bytes/vector keeps 95%.*pca d=96 binary"):
        recommend(byte_records, "scifact", 0.95, max_bytes=40, rescoring=False)
    with pytest.raises(DataError, match="no results for dataset 'nfcorpus'; the results have "
                       "scifact"):
        recommend(byte_records, "nfcorpus")
    two = [*byte_records, byte_row("pca", 96, "int8", 96, 0.5, budget="all"),
           byte_row("frozen", 384, "float32", 1536, 0.55, budget="all")]
    with pytest.raises(DataError, match=r"several budgets on scifact \(64, all\); choose one "
                       "with --budget"):
        recommend(two, "scifact")
    assert recommend(two, "scifact", 0.9, budget="all").config.budget == "all"
    with pytest.raises(DataError, match="no frozen float32 run"):
        recommend([r for r in byte_records if r["precision"] != "float32"], "scifact")


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
