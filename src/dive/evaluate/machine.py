"""What machine a run was computed on, for its record.

A learned fit replayed on another machine can differ in the last bits of a float (another
CPU's vector kernels, another BLAS build), and a selection made by a margin that small can
then go the other way. A record that names its machine lets a replay tell that apart from a
change of code: `machine_difference` names what differs. The description names the
CPU, the kernels numpy's BLAS and torch picked for it, and the versions of the numeric
libraries; never a host name or anything else personal.
"""

from __future__ import annotations

import functools
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from threadpoolctl import threadpool_info

MACHINE_FIELD = "machine"


def _cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas() -> str:
    """numpy's BLAS: library, version and the kernel architecture it picked."""
    for lib in threadpool_info():
        if lib.get("user_api") == "blas" and "numpy" in str(lib.get("filepath", "")):
            return " ".join(str(lib[k]) for k in ("internal_api", "version", "architecture")
                            if lib.get(k))
    return "unknown"


def _torch() -> str:
    """torch's version and the CPU vector capability its kernels use, where the process has
    loaded it (a training-free run never does, and its figures owe torch nothing)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return "not loaded"
    return f"{torch.__version__} {torch.backends.cpu.get_cpu_capability()}"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


NOT_USED = "not used"  # a training-free run's torch: its figures owe torch nothing


def machine_facts(uses_torch: bool = True) -> dict[str, Any]:
    """This machine, as a record's `machine` field states it (a new dict each call); the torch
    of a run that `uses_torch` (a learned fit), else `NOT_USED`: what the process had loaded
    depended on the runs before (a resumed grid recorded a pca run apart from a whole one)."""
    return {**_fixed_facts(), "torch": _torch() if uses_torch else NOT_USED}


@functools.cache
def _fixed_facts() -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "arch": platform.machine(),
        "blas": _blas(),
        "numpy": _version("numpy"),
        "python": platform.python_version(),
    }


def machine_difference(record: dict[str, Any]) -> str:
    """How the machine `record` names differs from this one, in words for a replay's output."""
    recorded = record.get(MACHINE_FIELD)
    if not isinstance(recorded, dict):
        return "the record does not name its machine"
    unknown = (NOT_USED, "not loaded")  # torch of a training-free run, now or before
    changes = [f"{key} {recorded.get(key)!s} -> {value}"
               for key, value in machine_facts().items() if recorded.get(key) != value
               and not (key == "torch" and (recorded.get(key) in unknown or value in unknown))]
    return "recorded on this machine" if not changes else \
        "recorded on another machine: " + ", ".join(changes)
