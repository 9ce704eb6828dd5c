"""`benchmarks/quality.py`'s README headline: the 64-label tables, from the results file."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from tests.report.conftest import record


def test_the_headline_keeps_each_embedding_model_apart(
    load_script: Callable[[str], ModuleType], tmp_path: Path
) -> None:
    quality = load_script("quality")
    # pca 0.60 with one model, 0.40 with the other: averaged as seeds they read 0.5000 ± 0.1000.
    records = [record(method="frozen", dim=384, ndcg=0.70), record(method="pca", ndcg=0.60),
               record(method="frozen", dim=384, ndcg=0.55, model="mpnet"),
               record(method="pca", ndcg=0.40, model="mpnet")]
    results = tmp_path / "quality.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in records))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{quality.HEADLINE_START}\nold\n{quality.HEADLINE_END}\nend\n")
    quality.update_readme(argparse.Namespace(results=str(results)), readme)
    text = readme.read_text()
    assert "**scifact (all-MiniLM-L6-v2)**" in text and "**scifact (mpnet)**" in text
    assert "0.6000 ± 0.0000 (−0.100)" in text and "0.4000 ± 0.0000 (−0.150)" in text
    assert "0.5000" not in text


def test_a_page_written_elsewhere_names_the_results_and_docs_it_came_from(
    load_script: Callable[[str], ModuleType], tmp_path: Path
) -> None:
    """Its notice named only `--results`: the command it printed rewrote the repository's
    docs/ (and README headline) from the other file, and its rerun command ran into the
    default results file."""
    quality = load_script("quality")
    results, docs = tmp_path / "alt.jsonl", tmp_path / "pages"
    notice = quality.generated_by("quality.py", results, quality.DEFAULT_RESULTS, docs)
    options = f" --results {quality.shown(results)} --docs {quality.shown(docs)}"
    assert f"`python benchmarks/quality.py{options} --report-only`" in notice
    assert f"Rerun `python benchmarks/quality.py{options}` to add" in notice
    default = quality.generated_by("quality.py", quality.DEFAULT_RESULTS,
                                   quality.DEFAULT_RESULTS, quality.DEFAULT_DOCS, stage=True)
    assert "`python benchmarks/quality.py --report-only`" in default
    assert "Rerun a stage of `python benchmarks/quality.py` to add" in default
