"""Writing a report folder: with overwrite, an earlier report's plots this one does not draw
go; nothing that is not dive's plot does."""

from __future__ import annotations

from pathlib import Path

import pytest

from dive.errors import DiveError
from dive.report.build import BUDGET_PLOT, DIM_PLOT, FRONTIER_PLOT, write_report


def test_overwrite_removes_an_earlier_reports_plot_this_one_does_not_draw(
    make_record, byte_records, tmp_path: Path
) -> None:
    at_4x = [make_record(method="pca", dim=96), make_record(method="pca", dim=192)]
    first = write_report([*at_4x, *byte_records], tmp_path)
    assert {p.name for p in first.plots} == {DIM_PLOT, BUDGET_PLOT, FRONTIER_PLOT}
    with pytest.raises(DiveError, match="already exists; pass overwrite=True"):
        write_report([make_record(method="pca", dim=192)], tmp_path)  # kept by default
    assert {p.name for p in tmp_path.iterdir()} >= {DIM_PLOT, BUDGET_PLOT, FRONTIER_PLOT}
    second = write_report([make_record(method="pca", dim=192)], tmp_path,
                          overwrite=True, ratio=4)  # no 4× run
    assert [p.name for p in second.plots] == [DIM_PLOT]
    assert sorted(p.name for p in tmp_path.iterdir()) == [DIM_PLOT, "report.md", "summary.csv"]
    assert sorted(p.name for p in second.removed) == sorted([BUDGET_PLOT, FRONTIER_PLOT])


def test_plots_are_removed_from_the_image_folder_only_when_pngs(make_record,
                                                                tmp_path: Path) -> None:
    images = tmp_path / "img"
    write_report([make_record(method="pca", dim=96)], tmp_path, image_dir=images)
    notes = images / FRONTIER_PLOT
    notes.write_text("my notes\n")  # not a PNG: not dive's to remove
    files = write_report([make_record(method="pca", dim=192)], tmp_path, image_dir=images,
                         overwrite=True, ratio=4)
    assert sorted(p.name for p in images.iterdir()) == sorted([DIM_PLOT, FRONTIER_PLOT])
    assert notes.read_text() == "my notes\n"
    assert [p.name for p in files.removed] == [BUDGET_PLOT]


def test_an_interrupted_report_leaves_nothing_and_a_rerun_writes_it(
    make_record, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # plots were written one by one before the Markdown: an interruption left a plot that
    # the rerun then refused to replace ("already exists")
    import dive.report.build as build

    records = [make_record(method="pca", dim=96), make_record(method="pca", dim=192)]

    def interrupted(*args: object, **kwargs: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "render_report", interrupted)
    (tmp_path / "rep").mkdir()
    with pytest.raises(KeyboardInterrupt):
        write_report(records, tmp_path / "rep")
    assert list((tmp_path / "rep").iterdir()) == []  # no plot, no hidden staging folder
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]  # the folder given is kept
    monkeypatch.undo()
    files = write_report(records, tmp_path / "rep")
    assert sorted(p.name for p in (tmp_path / "rep").iterdir()) == sorted(
        [DIM_PLOT, BUDGET_PLOT, "report.md", "summary.csv"])
    assert files.markdown.read_text().count(DIM_PLOT) == 1


def test_ctrl_c_while_the_files_are_put_in_place_lands_after_the_whole_report(
    make_record, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, default_signals: None
) -> None:
    # between two renames it left plots without their Markdown, which a rerun refused to
    # replace; the interruption now waits the milliseconds until every file is in place
    import os
    import signal

    import dive.report.build as build

    real = build.publish
    sent: list[Path] = []

    def publish_then_interrupt(tmp: Path, target: Path, **kwargs: bool) -> None:
        if not sent:
            sent.append(target)
            os.kill(os.getpid(), signal.SIGINT)  # delivered at once unless held
        real(tmp, target, **kwargs)

    monkeypatch.setattr(build, "publish", publish_then_interrupt)
    records = [make_record(method="pca", dim=96), make_record(method="pca", dim=192)]
    with pytest.raises(KeyboardInterrupt):
        write_report(records, tmp_path / "rep")
    assert sent and sent[0].suffix == ".png"  # the first file put in place is a plot
    assert sorted(p.name for p in (tmp_path / "rep").iterdir()) == sorted(
        [DIM_PLOT, BUDGET_PLOT, "report.md", "summary.csv"])


def test_an_interrupted_report_takes_back_the_folders_it_made(
    make_record, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report folder (and its missing parents) stayed, empty, after an interruption that
    `dive report` said had written nothing."""
    import dive.report.build as build

    def interrupted(*args: object, **kwargs: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "plot_ndcg_vs_dim", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_report([make_record(method="pca", dim=96)], tmp_path / "a" / "rep")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_made_for_a_report_is_kept_once_another_run_wrote_into_it(
    make_record, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dive.report.build as build

    def another_run_then_interrupted(*args: object, **kwargs: object) -> str:
        (tmp_path / "a" / "rep" / "notes.txt").write_text("theirs\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "render_report", another_run_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_report([make_record(method="pca", dim=96)], tmp_path / "a" / "rep")
    assert [p.name for p in (tmp_path / "a" / "rep").iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_two_reports_into_one_folder_leave_one_whole_report(
    make_record, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overwrite: bool
) -> None:
    # another run's report lands while this one is being made: its files were mixed with this
    # one's (its plot, this one's Markdown and CSV), both runs exiting 0
    import dive.report.build as build

    mine = [make_record(method="pca", dim=96), make_record(method="pca", dim=192)]
    theirs = [make_record(method="truncate", dim=192)]
    real = build.render_report

    def while_another_run_writes(*args: object, **kwargs: object) -> str:
        monkeypatch.setattr(build, "render_report", real)
        write_report(theirs, tmp_path / "rep", overwrite=True)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    for name, records in (("mine", mine), ("theirs", theirs)):  # each one's report, alone
        write_report(records, tmp_path / name)
    monkeypatch.setattr(build, "render_report", while_another_run_writes)
    if overwrite:
        write_report(mine, tmp_path / "rep", overwrite=True)
    else:
        with pytest.raises(DiveError, match="already exists; pass overwrite=True"):
            write_report(mine, tmp_path / "rep")
    winner = tmp_path / ("mine" if overwrite else "theirs")
    assert {p.name: p.read_bytes() for p in (tmp_path / "rep").iterdir()} == {
        p.name: p.read_bytes() for p in winner.iterdir()}


@pytest.mark.parametrize(("names", "message"), [
    ({"markdown_name": "../notes.md"}, r"markdown_name must be a file name, not a path, got "
                                       r"'\.\./notes\.md'"),
    ({"markdown_name": "ABS"}, r"markdown_name must be a file name, not a path"),
    ({"csv_name": "sub/s.csv"}, r"csv_name must be a file name, not a path, got 'sub/s\.csv'"),
    ({"markdown_name": "r.md", "csv_name": "r.md"}, r"csv_name 'r\.md' is also markdown_name's"),
    ({"csv_name": DIM_PLOT}, rf"csv_name '{DIM_PLOT}' is also a plot's file name"),
    ({"markdown_name": FRONTIER_PLOT}, rf"markdown_name '{FRONTIER_PLOT}' is also a plot's"),
])
def test_file_names_that_are_paths_or_clash_are_refused_before_anything_is_written(
    make_grid, tmp_path: Path, names: dict[str, str], message: str
) -> None:
    """`markdown_name="../notes.md"` wrote the report over the user's notes.md, then said it
    "already exists"; the CSV named as the Markdown was lost, with a traceback, and the plots
    left in place."""
    notes = tmp_path / "notes.md"
    notes.write_text("my own notes\n")
    if names.get("markdown_name") == "ABS":
        names = {"markdown_name": str(notes)}
    with pytest.raises(DiveError, match=message):
        write_report(make_grid(), tmp_path / "out", **names)  # type: ignore[arg-type]
    assert notes.read_text() == "my own notes\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.md"]


@pytest.mark.parametrize("name", ["report.md", "summary.csv", DIM_PLOT])
def test_a_fifo_where_an_output_goes_is_refused_not_waited_on(make_record, tmp_path: Path,
                                                              name: str) -> None:
    """The check whether a file there is dive's own opened it to read its first bytes: on a
    FIFO that waits for a writer, forever (`dive report`, `demo` and `evaluate --plot`)."""
    import os
    import threading

    os.mkfifo(tmp_path / name)
    refused: list[BaseException] = []

    def report() -> None:
        try:
            write_report([make_record(method="pca", dim=96)], tmp_path, overwrite=True)
        except DiveError as exc:
            refused.append(exc)

    thread = threading.Thread(target=report, daemon=True)
    thread.start()
    thread.join(timeout=30)
    if thread.is_alive():  # let the stuck reader go: a writer that closes at once
        os.close(os.open(tmp_path / name, os.O_WRONLY | os.O_NONBLOCK))
        thread.join()
    assert len(refused) == 1
    assert str(refused[0]).startswith(f"{tmp_path / name}: exists and is not ")
    assert str(refused[0]).endswith("; refusing to replace it (overwrite replaces only what "
                                    "dive wrote)")


def test_a_report_file_that_cannot_be_replaced_leaves_the_old_report_whole(
    make_record, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --overwrite, the plots and summary.csv were replaced one by one, then report.md
    could not be (a file the user may not replace): the folder held a mix of two reports."""
    import dive.report.build as build

    write_report([make_record(method="pca", dim=96), make_record(method="pca", dim=192)],
                 tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    publish = build.publish

    def refused_at_the_markdown(tmp: Path, target: Path, **kwargs: object) -> None:
        if target.name == "report.md":
            raise PermissionError(1, "Operation not permitted", str(target))
        publish(tmp, target, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(build, "publish", refused_at_the_markdown)
    with pytest.raises(PermissionError):
        write_report([make_record(method="truncate", dim=96)], tmp_path, overwrite=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_arguments_of_the_wrong_kind_are_refused_before_anything_is_written(
    make_record, tmp_path: Path
) -> None:
    """ratio "4" logged a '%d format' traceback and dropped its plot; keep "0.99" was a
    TypeError; a results path was read as records character by character; sections "Hello"
    became five one-letter sections."""
    records = [make_record(method="pca", dim=96)]
    for kwargs, said in (({"ratio": "4"}, "ratio must be an integer >= 1, got '4'"),
                         ({"ratio": 0}, "ratio must be an integer >= 1, got 0"),
                         ({"keep": "0.99"}, "keep must be a positive, finite share"),
                         ({"sections": "Hello"}, "sections must be a list, got 'Hello'")):
        with pytest.raises(DiveError, match=said):
            write_report(records, tmp_path / "out", **kwargs)
    with pytest.raises(DiveError, match=r"records must be a list, got 'r\.jsonl' .*read_results"):
        write_report("r.jsonl", tmp_path / "out")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_a_dataset_named_with_a_byte_of_another_encoding_is_reported_readably(
    make_grid, tmp_path: Path
) -> None:
    """A folder `cranfield<0xE9>` (Latin-1) recorded its name as Python keeps it, with a lone
    surrogate: the report stopped in matplotlib's set_text (TypeError), nothing written; the
    same name's bytes read under LC_ALL=C (`cr\\udcc3\\udca2nfield`) never met the UTF-8 one."""
    from dive.report.recommend import recommend

    latin = [{**r, "dataset": "cranfield\udce9"} for r in make_grid(datasets=("scifact",))]
    report = write_report(latin, tmp_path / "r")
    assert "cranfield\\\\xe9" in report.markdown.read_text(encoding="utf-8")  # Markdown's \\
    c_locale = [{**r, "dataset": "cr\udcc3\udca2nfield"} for r in make_grid(datasets=("scifact",))]
    labels = [{**r, "model": "lab\udce9", "method": r["method"] + "\udc80"}
              for r in make_grid(datasets=("scifact",))]  # a model label of another encoding
    report = write_report(labels, tmp_path / "m")
    assert "lab\\xe9" in report.markdown.read_text(encoding="utf-8")
    for typed in ("cr\udcc3\udca2nfield", "crânfield"):  # refused as "no results" before
        assert recommend(c_locale, typed, budget="all").config.dataset == "crânfield"
    # two names of other bytes (Latin-1's é and è) stay two datasets: as U+FFFD both, the
    # report and recommend read one's records as the other's
    apart = [{**r, "dataset": f"caf{byte}", "ndcg@10": r["ndcg@10"] * scale}
             for byte, scale in (("\udce9", 1.0), ("\udce8", 0.5))
             for r in make_grid(datasets=("scifact",))]
    text = write_report(apart, tmp_path / "apart").markdown.read_text(encoding="utf-8")
    assert "caf\\\\xe9" in text and "caf\\\\xe8" in text
    frozen = {name: recommend(apart, name, budget="all").frozen.mean
              for name in ("caf\udce9", "caf\udce8")}
    assert frozen["caf\udce9"] == 2 * frozen["caf\udce8"]
    # named by its folder's path, or by a model label of such bytes, as evaluate was given it
    # (both were "no results": the path was looked for with the escape in its name)
    (tmp_path / "caf\udce9").mkdir()
    by_path = recommend(apart, str(tmp_path / "caf\udce9"), budget="all")
    assert by_path.frozen.mean == frozen["caf\udce9"]
    labelled = [{**r, "model": "lab\udce9"} for r in make_grid(datasets=("scifact",))]
    assert recommend(labelled, "scifact", budget="all", model="lab\udce9").model == "lab\\xe9"


def test_the_csv_of_several_models_keeps_each_dataset_its_name(make_record,
                                                               tmp_path: Path) -> None:
    """With two models, summary.csv's dataset column read `nfcorpus (m2)`, as the page's
    tables label it, beside a model column saying m2: a join on the dataset broke as soon as
    another model's file came into the report."""
    import csv

    records = [make_record(method="pca", dim=96), {**make_record(method="pca", dim=96),
                                                   "model": "m2"}]
    write_report(records, tmp_path)
    with (tmp_path / "summary.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["dataset"], r["model"]) for r in rows} == {
        (records[0]["dataset"], records[0]["model"]), (records[0]["dataset"], "m2")}
    assert f"{records[0]['dataset']} (m2)" in (tmp_path / "report.md").read_text()


def test_every_view_lists_the_rows_in_one_order(byte_row, tmp_path: Path) -> None:
    """report.md sorted the variants of a method by their labels (`@binary` first, rescore10
    before rescore4) where summary.csv and the gains list them as the records first name
    them."""
    import csv

    records = [byte_row("frozen", 384, "float32", 1536, 0.6)]
    records += [byte_row("frozen", 384, precision, size, 0.55, rescore=factor)
                for precision, size, factor in (("int8", 384, 0), ("int8", 384, 4),
                                                ("int8", 384, 10), ("binary", 48, 0))]
    write_report(records, tmp_path)
    with (tmp_path / "summary.csv").open(encoding="utf-8") as handle:
        in_csv = [r["method"] for r in csv.DictReader(handle)]
    assert in_csv == ["frozen", "frozen@int8", "frozen@int8+rescore4", "frozen@int8+rescore10",
                      "frozen@binary"]
    table = (tmp_path / "report.md").read_text().split("| method |", 1)[1].split("\n\n", 1)[0]
    in_page = [line.split(" | ", 1)[0].lstrip("| ") for line in table.splitlines()[2:]]
    assert in_page == in_csv


def test_a_dataset_with_no_run_at_the_budget_plots_ratio_is_named_as_left_out(
    make_record, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """cisi run at 4x and cranfield at 8x: the 4x budget plot drew cisi alone, without a
    word, under a caption naming no dataset."""
    records = [make_record(dataset="cisi", dim=96), make_record(dataset="cranfield", dim=48)]
    with caplog.at_level("WARNING"):
        report = write_report(records, tmp_path, ratio=4)
    assert BUDGET_PLOT in {p.name for p in report.plots}
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"cranfield: no run at compression ratio 4: not in {BUDGET_PLOT}"]
