"""`dive fit`: one compressor fitted on a dataset and saved, with what its fit selected."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dive.cli.interrupts import written_in_full
from dive.cli.logs import show_fit_progress
from dive.errors import DiveError, about

if TYPE_CHECKING:
    from dive.compressors.base import FitSummary


def _shown(value: Any) -> Any:
    """`value` with every float at 6 significant digits (0.1 * 3 prints as 0.3), for display."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _shown(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_shown(v) for v in value]
    return value


def _fit_lines(fit: FitSummary, precision: str) -> list[str]:
    """What `dive fit` prints about a learned fit, from its typed summary only; its scores are
    the float32 outputs' (the saved model's `precision` is applied after the fit)."""
    import json

    selected = json.dumps(_shown(fit.selected), separators=(",", ":"))
    lines = [f"kept step {fit.best_step} of {fit.steps_run}: {selected}"]
    if fit.validation_score is not None:
        # printed under "(binary, 6 bytes/vector)", it read as the binary model's score
        before = "" if precision == "float32" else f", in float32, before the {precision} codes"
        lines.append(f"held-out nDCG@10 on {fit.n_queries} labelled queries: "
                     f"{fit.validation_score:.4f} (start {fit.start_score:.4f}{before})")
    return lines


def cmd_fit(args: argparse.Namespace) -> int:
    from dive.compressors.precision import bytes_per_vector
    from dive.compressors.registry import make_compressor
    from dive.data import load_dataset
    from dive.data.splits import parse_budget
    from dive.embed import get_embeddings
    from dive.embed.encode import default_model_for
    from dive.export.folder import check_model_output, save, with_precision
    from dive.fit_record import fit_on_dataset

    with about("method"):
        compressor = make_compressor(args.method, args.dim, args.seed)  # a bad spec fails first
    check_model_output(Path(args.output), overwrite=args.overwrite)
    show_fit_progress()
    with about("budget"):
        budget = parse_budget(args.budget)  # None: every labelled training query
    if not compressor.supervised and args.budget is not None:
        logging.getLogger(__name__).warning("%s learns without labels; --budget is not used",
                                            compressor.method)
    dataset = load_dataset(args.dataset, data_dir=args.data_dir)
    # Recorded under the model the embeddings were made with; a --model that the folder
    # contradicts is kept, with get_embeddings' warning (its vectors may be that model's under
    # another name: a hub id and its download). Either is recorded as model_label names it.
    model_name = args.model or default_model_for(args.embeddings)
    emb = get_embeddings(dataset, model_name, embeddings_dir=args.embeddings,
                         progress=not args.no_progress)
    if compressor.full_dim_only and args.dim != emb.dim:
        raise DiveError(f"{args.method} keeps all {emb.dim} input dimensions: give --dim "
                        f"{emb.dim}, or a compressing method for --dim {args.dim}")
    summary = fit_on_dataset(compressor, dataset, emb, model_name=model_name, budget=budget,
                             seed=args.seed)
    fitted = compressor.fit_info_.summary
    # int8 is calibrated on the corpus outputs, the vectors an index will hold.
    model = with_precision(compressor, args.precision, emb.corpus)
    out = save(model, args.output, summary=summary, overwrite=args.overwrite)
    written_in_full(args, out)
    runtime = model.fitted_runtime()
    print(f"{args.method}: {runtime.input_dim} -> {runtime.output_dim} dims "
          f"({runtime.precision}, {bytes_per_vector(runtime.precision, runtime.output_dim)} "
          f"bytes/vector), {runtime.n_params} parameters, fitted in "
          f"{summary['fit_seconds']:.2f}s")
    if summary.get("label_source") == "test-half":
        # The protocol's split (make_split): without train qrels half the judged queries are
        # kept for measuring, so a fit on "all" labels learns from the other half only.
        print(f"labels: {summary['n_labels']} queries, from half of the judged test queries "
              "(no qrels/train.tsv: the other half is kept for measuring; a dataset with one "
              "has its labels used in full)")
    for line in _fit_lines(fitted, runtime.precision) if fitted is not None else []:
        print(line)
    print(f"saved: {out}")
    return 0

