"""README's results paragraph quotes figures by hand: `dive`'s on every shared collection
(`benchmarks/results/collections.jsonl`, read by `python benchmarks/all_collections.py
--report-only`) and the all-label SciFact and NFCorpus cells (`benchmarks/results/
quality.jsonl`, read by `python benchmarks/quality.py --report-only`). They must be what the
stored records give, so a rerun that moves them fails here until the paragraph is edited.
Left out: figures of past releases (the paragraph's "rose from", docs/methods.md's release
notes), which describe earlier runs on purpose. Fit seconds depend on the host, but those the
README quotes are the stored records' sums, and are checked as such."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dive.compressors.registry import method_facts
from dive.evaluate.records import record_variant
from dive.report.gains import gains_over_training_free, summarize_gains, target_gains
from dive.report.merge import read_results
from dive.report.summary import base_method, summarize

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results" / "collections.jsonl"
QUALITY = REPO / "benchmarks" / "results" / "quality.jsonl"
README = (REPO / "README.md").read_text(encoding="utf-8")
N = r"(\d\.\d{3})"  # a quoted nDCG@10, three decimals
CLASSIC = ("cranfield", "cisi", "cacm", "npl", "time")
QUOTE = re.compile(
    r"better PCA \(within 0\.002\) in (\d+) of (\d+) cells, mean gain ([+-]\d\.\d{4}), worst "
    r"(-\d\.\d{4}) .*?at 4x with all\s+labels its mean gain is ([+-]\d\.\d{4})", re.DOTALL)


def test_the_readme_quotes_dive_s_figures_over_every_collection_as_the_records_give() -> None:
    quoted = QUOTE.search(README)
    assert quoted, "README.md: the results paragraph's dive figures are not where expected"
    cells = gains_over_training_free(read_results([RESULTS]))
    dive = next(s for s in summarize_gains(cells) if s.method == "dive")
    classic = next(t for t in target_gains(cells, CLASSIC, 4, "all") if t.method == "dive")
    assert dive.worst is not None and dive.worst.gain is not None and dive.mean_gain is not None
    assert classic.mean_gain is not None
    assert quoted.groups() == (
        str(dive.n_won_or_tied), str(dive.n_cells), f"{dive.mean_gain:+.4f}",
        f"{dive.worst.gain:+.4f}", f"{classic.mean_gain:+.4f}")



@pytest.fixture(scope="module")
def means() -> dict[tuple[str, str, str, int], float]:
    """Mean nDCG@10 over seeds of every float32 cell of the quality grid, by (dataset, budget,
    method, dim)."""
    plain = [r for r in read_results([QUALITY]) if record_variant(r)[:2] == ("float32", 0)]
    return {(c.dataset, c.budget, c.method, c.dim): c.mean for c in summarize(plain)}


def _quote(pattern: str) -> tuple[str, ...]:
    found = re.search(pattern.replace(" ", r"\s+"), README)
    assert found, f"README.md: no quote matching {pattern!r}"
    return found.groups()


def _best_baseline(means: dict[tuple[str, str, str, int], float], dataset: str, dim: int
                   ) -> float:
    """The best baseline row (any release) with every label at `dim`."""
    return max(v for (ds, budget, method, d), v in means.items()
               if (ds, budget, d) == (dataset, "all", dim) and _is_baseline(method))


def _is_baseline(method: str) -> bool:
    facts = method_facts(base_method(method))
    return facts is not None and facts.family == "baseline"


def _fmt(*values: float) -> tuple[str, ...]:
    return tuple(f"{v:.3f}" for v in values)


def test_the_readme_quotes_scifact_all_label_figures_as_the_records_give(
        means: dict[tuple[str, str, str, int], float]) -> None:
    dims = (192, 96, 48, 24)
    dive, best, frozen = _quote(
        rf"leads every baseline at every ratio \(({N}/{N}/{N}/{N}) at 192/96/48/24-d vs the "
        rf"best baseline's ({N}/{N}/{N}/{N})\) and beats the uncompressed {N} down to 16x")[::5]
    ours = [means["scifact", "all", "dive", d] for d in dims]
    baselines = [_best_baseline(means, "scifact", d) for d in dims]
    assert (dive, best) == ("/".join(_fmt(*ours)), "/".join(_fmt(*baselines)))
    assert all(o > b for o, b in zip(ours, baselines, strict=True))  # "leads ... every ratio"
    assert (frozen,) == _fmt(means["scifact", "all", "frozen", 384])
    assert min(ours) > means["scifact", "all", "frozen", 384]  # "down to 16x"
    # "with 64 labels it beats it at 2x"
    assert means["scifact", "64", "dive", 192] > means["scifact", "64", "frozen", 384]
    smec, adaptor = _quote(rf"`smec` as published trails supervised Matryoshka-Adaptor with all "
                           rf"SciFact labels \({N} against {N} at 192-d")
    assert (smec, adaptor) == _fmt(means["scifact", "all", "smec", 192],
                                   means["scifact", "all", "matryoshka-adaptor", 192])


def test_the_readme_quotes_nfcorpus_all_label_figures_as_the_records_give(
        means: dict[tuple[str, str, str, int], float]) -> None:
    dims = (192, 96, 48)
    quoted = _quote(rf"On NFCorpus with all labels `dive` leads every baseline at 2x, 4x and 8x "
                    rf"\({N}, {N}, {N} against the best baselines' {N}, {N}, {N}\), and "
                    rf"`dive-plus` by a little more \({N}, {N}, {N}\)")
    ours = [means["nfcorpus", "all", "dive", d] for d in dims]
    baselines = [_best_baseline(means, "nfcorpus", d) for d in dims]
    plus = [means["nfcorpus", "all", "dive-plus", d] for d in dims]
    assert quoted == _fmt(*ours, *baselines, *plus)
    assert all(o > b for o, b in zip(ours, baselines, strict=True))
    assert all(p >= o for p, o in zip(plus, ours, strict=True))  # "by a little more"
    adaptor, dive_plus = _quote(rf"it leads our methods at 24-d \({N} against `dive-plus`'s {N}\)")
    assert (adaptor, dive_plus) == _fmt(means["nfcorpus", "all", "search-adaptor", 24],
                                        means["nfcorpus", "all", "dive-plus", 24])
    assert means["nfcorpus", "all", "search-adaptor", 24] == _best_baseline(means, "nfcorpus", 24)
    (frozen,) = _quote(rf"only 2x reaches the uncompressed {N}")
    assert (frozen,) == _fmt(means["nfcorpus", "all", "frozen", 384])
    reaches = [d for d in (192, 96, 48, 24)
               if means["nfcorpus", "all", "dive", d] >= means["nfcorpus", "all", "frozen", 384]]
    assert reaches == [192]


def test_the_readme_quotes_the_stored_fit_seconds() -> None:
    """"the 96 DIVE fits 26 min" while the records add up to 27.7."""
    quoted = re.search(r"classical rows record (\d+) s of fit time, the (\d+) DIVE fits (\d+) "
                       r"min", README)
    assert quoted, "README.md: the fit-time sentence is not where expected"
    records = read_results([QUALITY])
    classical = {"frozen", "truncate", "random", "pca", "pca-uncentered"}
    dive = [float(r["fit_seconds"]) for r in records if r["method"] == "dive"]
    seconds = sum(float(r["fit_seconds"]) for r in records if r["method"] in classical)
    assert (int(quoted[1]), int(quoted[2]), int(quoted[3])) == (
        round(seconds), len(dive), round(sum(dive) / 60))
    # "about 25 min per seed when run as four parallel processes": no record said so
    low, high = map(int, re.findall(r"published baselines \(five rows\) (\d+)-(\d+) min of fit "
                                    r"time per seed", README.replace("\n", " "))[0])
    baselines = {"matryoshka-adaptor-unsup", "matryoshka-adaptor", "search-adaptor", "smec",
                 "smec:basis=pca"}
    per_seed = [round(sum(float(r["fit_seconds"]) for r in records
                          if r["method"] in baselines and r["seed"] == seed) / 60)
                for seed in sorted({r["seed"] for r in records})]
    assert (low, high) == (min(per_seed), max(per_seed))
