"""The hidden work folder a compress run builds its output in, so that a killed run resumes:
`Partial` (`.<output name>.partial/` beside the output: `data/`, Parquet `parts/` named by
`part_name`, and `state.json`), and the marker every finished folder output carries
(`OUTPUT_MARKER`), by which `overwrite` knows an earlier output.

Left out: what a chunk computes (`dive.scale.stream`) and publishing the output (`dive._io`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dive._io import atomic_write_text, clear_work_folder, held, work_folder
from dive.compressors.runtime import runtime_digest
from dive.errors import DataError, DiveError

if TYPE_CHECKING:
    from dive.compressors.runtime import Runtime

logger = logging.getLogger(__name__)


STATE_FORMAT = "dive-compress-state"
STATE_VERSION = 1
OUTPUT_MARKER = ".dive-compress.json"  # hidden: shard discovery and Parquet readers skip it


class Partial:
    """The hidden work folder beside the output: data being built, Parquet parts, state."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.root = work_folder(output)
        self.data = self.root / "data"
        self.parts = self.root / "parts"
        self.state_path = self.root / "state.json"

    def _left_by_a_run(self, name: str) -> bool:
        """Whether `name` in the work folder is a run's: anything once its state is there,
        else the data and parts folders (`start` makes the data folder just before it)."""
        return self.state_path.is_file() or name in (self.data.name, self.parts.name)

    def held(self) -> contextlib.AbstractContextManager[None]:
        """Hold the work folder while this run uses it (`dive._io.held`)."""
        return held(self.root, self.output)

    def start(self, job: dict[str, Any]) -> dict[str, Any]:
        """The saved state if it belongs to `job`; otherwise a fresh folder and state (the
        folder itself stays: `held` locks it)."""
        if self.root.is_dir() and any(self.root.iterdir()):
            old = self._read_state()
            if old is not None and old.get("job") == job and self.data.is_dir():
                logger.info("%s: resuming after row %d", self.root, old["rows_done"])
                return old
            clear_work_folder(self.root, self._left_by_a_run)
            why = (
                # a run stopped before its first save, or while publishing (state goes first)
                "left without a state to resume from" if old is None
                else "left by a run with another input, model or settings"
                if old.get("job") != job else "its data folder is missing")
            logger.warning("%s: %s; starting over", self.root, why)
        self.data.mkdir(parents=True)
        state = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "job": job,
            "rows_done": 0,
            "shards_finished": 0,
        }
        self.save(state)
        return state

    def _read_state(self) -> dict[str, Any] | None:
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        ok = (
            isinstance(state, dict)
            and state.get("format") == STATE_FORMAT
            and state.get("version") == STATE_VERSION
            and isinstance(state.get("rows_done"), int)
            and isinstance(state.get("shards_finished"), int)
        )
        return state if ok else None

    def clear_if_published(self) -> None:
        """Remove the work folder of an output that is in place if it holds only what a run
        leaves, no state, and no run holds it: a run killed once its output was in place (the
        state goes first) left it, and a rerun refused because the output exists kept it for
        good, though no run resumes from it."""
        if (not self.output.exists() or not self.root.is_dir() or self.state_path.exists()
                or not all(self._left_by_a_run(e.name) for e in self.root.iterdir())):
            return
        with contextlib.suppress(DiveError), held(self.root, self.output):  # another run's
            shutil.rmtree(self.root, ignore_errors=True)

    def has_saved_rows(self) -> bool:
        """Whether the work folder holds a state with rows done (a rerun of its job resumes)."""
        state = self._read_state()
        return state is not None and state["rows_done"] > 0

    def discard_if_unsaved(self) -> None:
        """Remove the work folder of a run stopped before it saved a row: nothing in it is
        for a rerun to resume (it was left, hidden, after "no chunk was finished yet")."""
        if not self.has_saved_rows():
            shutil.rmtree(self.root, ignore_errors=True)

    def save(self, state: dict[str, Any]) -> None:
        atomic_write_text(self.state_path, json.dumps(state, sort_keys=True) + "\n")

    def damaged(self, what: str) -> DataError:
        return DataError(
            f"{self.root}: partial output damaged ({what}); it has been removed, rerun to "
            "start over"
        )


def part_name(first_row: int) -> str:
    return f"part-{first_row:012d}.parquet"


def write_output_marker(folder: Path, runtime: Runtime) -> None:
    """Mark `folder` as a compress output, so `overwrite` may replace it later."""
    marker = {"format": "dive-compress-output", "model_sha256": runtime_digest(runtime)}
    atomic_write_text(folder / OUTPUT_MARKER, json.dumps(marker, sort_keys=True) + "\n")
