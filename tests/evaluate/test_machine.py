"""A record names the machine it was computed on, so a replay can tell rounding from code."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

from dive.evaluate.machine import MACHINE_FIELD, machine_difference, machine_facts
from dive.evaluate.protocol import GridSpec, run_grid
from dive.evaluate.records import ResultsFile


def test_every_record_names_this_machine(tiny: tuple[Path, Path]) -> None:
    """A training-free run's torch is "not used" whatever the process loaded before it (a pca
    run after a dive fit recorded torch, the same run in a resumed grid "not loaded")."""
    import torch

    results = ResultsFile(tiny[0].parent / "r.jsonl")
    run_grid(GridSpec(datasets=[str(tiny[0])], methods=["frozen", "pca", "dive:steps=2"],
                      ratios=[2], budgets=[None], seeds=[0], embeddings_dir=str(tiny[1])),
             results)
    lines = (tiny[0].parent / "r.jsonl").read_text().splitlines()
    assert len(lines) == 3
    for line in lines:
        record = json.loads(line)
        machine = record[MACHINE_FIELD]
        learned = record["method"].startswith("dive")
        assert machine == machine_facts(uses_torch=learned)
        assert machine["python"] == platform.python_version()
        assert machine["torch"] == (f"{torch.__version__} "
                                    f"{torch.backends.cpu.get_cpu_capability()}"
                                    if learned else "not used")
        assert machine_difference(record) == "recorded on this machine"


def test_a_replay_names_what_differs_from_the_recorded_machine() -> None:
    assert machine_difference({}) == "the record does not name its machine"
    assert machine_difference({MACHINE_FIELD: machine_facts()}) == "recorded on this machine"
    other = {**machine_facts(), "cpu": "Some Other CPU"}
    said = machine_difference({MACHINE_FIELD: other})
    assert said == f"recorded on another machine: cpu Some Other CPU -> {machine_facts()['cpu']}"


def test_a_caller_changing_the_facts_does_not_change_the_next_record() -> None:
    facts = machine_facts()
    facts["cpu"] = "changed"
    assert machine_facts()["cpu"] != "changed"


def test_naming_the_machine_never_loads_torch() -> None:
    """A training-free grid never loads torch (seconds per process); naming its machine must
    not either."""
    import subprocess

    code = ("import sys; from dive.evaluate.machine import machine_facts; "
            "print(machine_facts()['torch'], 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "not loaded False"


def test_no_fit_of_a_grid_is_charged_torchs_import(tiny: tuple[Path, Path]) -> None:
    """The first learned fit of a process found torch unloaded and counted its import (seconds)
    in its fit_seconds: the grid's first learned method looked slower than the others."""
    import subprocess

    code = f"""
import json, sys
from dive.compressors.dive import Dive
from dive.evaluate.protocol import GridSpec, run_grid
from dive.evaluate.records import ResultsFile
seen, fit = [], Dive.fit
def watched(self, *args, **kwargs):
    seen.append("torch" in sys.modules)
    return fit(self, *args, **kwargs)
Dive.fit = watched
run_grid(GridSpec(datasets=[{str(tiny[0])!r}], methods=["pca", "dive:steps=2"], ratios=[2],
                  budgets=[None], seeds=[0], embeddings_dir={str(tiny[1])!r}),
         ResultsFile({str(tiny[0].parent / "r.jsonl")!r}))
print(json.dumps(seen))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[true]"
