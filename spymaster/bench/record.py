"""Where each benchmark's results go: `benchmarks/<name>.json`, with the date of the run and the
machine it ran on (docs/performance.md quotes each file in a table). Written whole, then
renamed into place."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path
from typing import Any

from foundation.project import PROJECT_ROOT

RESULTS_DIR = PROJECT_ROOT / "benchmarks"


def machine() -> dict[str, Any]:
    """The CPU model, its cores and the memory: what the figures depend on."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or platform.machine(),
    )
    memory_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 2**20, 1),
        "python": platform.python_version(),
    }


def write_results(name: str, results: dict[str, Any]) -> Path:
    """`benchmarks/<name>.json`: the results with the run's date (UTC) and the machine."""
    path = RESULTS_DIR / f"{name}.json"
    record = {
        "benchmark": name,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "results": results,
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    part.write_text(json.dumps(record, indent=1, sort_keys=True, default=str) + "\n")
    part.replace(path)
    return path
