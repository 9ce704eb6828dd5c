"""`dive report` and `dive recommend`: what results files already hold, as a report or a
choice."""

from __future__ import annotations

import argparse

from dive.cli.interrupts import written_in_full


def cmd_report(args: argparse.Namespace) -> int:
    from dive.report.build import check_report_output, write_report
    from dive.report.merge import read_results

    records = read_results(args.results)  # what is wrong with the input is said first
    check_report_output(args.output, overwrite=args.overwrite)
    files = write_report(records, args.output, keep=args.keep, ratio=args.ratio,
                         overwrite=args.overwrite)
    written_in_full(args, files.markdown.parent)
    print(f"{len(records)} runs from {len(args.results)} file(s)")
    for path in files.all():
        print(f"wrote {path}")
    for path in files.removed:
        print(f"removed {path} (an earlier report's plot this one does not draw)")
    if args.gains:
        from dive.report.gains import gains_over_training_free, summary_text

        # No target set of collections: only the per-method table is printed.
        cells = gains_over_training_free(records)
        print(summary_text(cells, target_name="", datasets=(), ratio=0, budget="").rstrip())
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from dive.report.merge import read_results
    from dive.report.recommend import recommend, render

    rec = recommend(read_results(args.results), args.dataset, args.keep, budget=args.budget,
                    model=args.model, rescoring=not args.no_rescore, max_bytes=args.max_bytes)
    print("\n".join(render(rec)))
    return 0

