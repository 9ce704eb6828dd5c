"""README's results paragraph quotes `dive`'s figures on every shared collection by hand: they
must be what the stored records give (`benchmarks/results/collections.jsonl`, the file
`python benchmarks/all_collections.py --report-only` reads), so a rerun that moves them fails
here until the paragraph is edited. Left out: the other hand-quoted figures (release notes in
docs/methods.md describe past runs on purpose)."""

from __future__ import annotations

import re
from pathlib import Path

from dive.report.gains import gains_over_training_free, summarize_gains, target_gains
from dive.report.merge import read_results

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results" / "collections.jsonl"
CLASSIC = ("cranfield", "cisi", "cacm", "npl", "time")
QUOTE = re.compile(
    r"better PCA \(within 0\.002\) in (\d+) of (\d+) cells, mean gain ([+-]\d\.\d{4}), worst "
    r"(-\d\.\d{4}) .*?at 4x with all\s+labels its mean gain is ([+-]\d\.\d{4})", re.DOTALL)


def test_the_readme_quotes_dive_s_figures_over_every_collection_as_the_records_give() -> None:
    quoted = QUOTE.search((REPO / "README.md").read_text(encoding="utf-8"))
    assert quoted, "README.md: the results paragraph's dive figures are not where expected"
    cells = gains_over_training_free(read_results([RESULTS]))
    dive = next(s for s in summarize_gains(cells) if s.method == "dive")
    classic = next(t for t in target_gains(cells, CLASSIC, 4, "all") if t.method == "dive")
    assert dive.worst is not None and dive.worst.gain is not None and dive.mean_gain is not None
    assert classic.mean_gain is not None
    assert quoted.groups() == (
        str(dive.n_won_or_tied), str(dive.n_cells), f"{dive.mean_gain:+.4f}",
        f"{dive.worst.gain:+.4f}", f"{classic.mean_gain:+.4f}")

