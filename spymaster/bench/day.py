"""`spymaster bench --only day`: a busy real-scale day from raw DBN to every gold table.

The day (`spymaster simulate --scale 2 --sessions 1`: about 31 M futures and 31 M options MBO
records) is generated once into target/bench/busy-day/raw. Each run lands it into a fresh lake
with `spymaster ingest --workers 2`, then runs `spymaster build` (dbt build: every model and
every data test; dbt's unit tests run in `make test`), each in its own process tree. Per
stage: wall time and the peak of the tree's summed resident memory (sampled every 20 ms, so
every worker and dbt's threads count); per dbt node: its execution time from
run_results.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from foundation.lake import Lake
from foundation.project import PROJECT_ROOT
from synthetic_market.simulate import MarketConfig, simulate_market

BUSY_DAY = MarketConfig(sessions=1, seed=7, scale=2.0)
FOLDER = PROJECT_ROOT / "target" / "bench" / "busy-day"
_SAMPLE_SECONDS = 0.02
_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") / 1024


def busy_day_raw(folder: Path) -> Path:
    """The busy day's raw DBN files, generated once (a marker says they are complete)."""
    raw = folder / "raw"
    marker = folder / "generated.json"
    wanted = json.dumps(
        {"sessions": BUSY_DAY.sessions, "seed": BUSY_DAY.seed, "scale": BUSY_DAY.scale}
    )
    if marker.exists() and marker.read_text() == wanted:
        return raw
    if raw.exists():  # an interrupted earlier run: start again
        shutil.rmtree(raw)
    print(f"bench day: generating the busy day into {raw} (once)", flush=True)
    simulate_market(raw, BUSY_DAY, workers=2)
    marker.write_text(wanted)
    return raw


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # the process ended while we looked
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _tree_rss_mib(root: int) -> float:
    """Summed resident memory of `root` and all its descendants, now."""
    tree = _children()
    pending, total_pages = [root], 0
    while pending:
        pid = pending.pop()
        pending.extend(tree.get(pid, []))
        try:
            total_pages += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except OSError:
            continue
    return total_pages * _PAGE_KIB / 1024


def run_stage(name: str, command: Sequence[str], env: dict[str, str]) -> dict[str, Any]:
    """Run one stage's command; its wall time and its process tree's peak resident memory."""
    peak = 0.0
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output: list[bytes] = []
    reader = threading.Thread(target=lambda: output.extend(process.stdout or []), daemon=True)
    reader.start()
    while process.poll() is None:
        peak = max(peak, _tree_rss_mib(process.pid))
        time.sleep(_SAMPLE_SECONDS)
    seconds = time.perf_counter() - started
    reader.join()
    text = b"".join(output).decode(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"bench day: {name} failed ({' '.join(command)}):\n{text[-6000:]}")
    return {"seconds": seconds, "peak_rss_mib": peak}


def _node_times(run_results: Path) -> list[dict[str, Any]]:
    results = json.loads(run_results.read_text())["results"]
    nodes = []
    for result in results:
        unique_id = result["unique_id"]
        kind = unique_id.split(".")[0]
        name = unique_id.split(".", 2)[2]
        if kind == "model" and name.split(".")[-1].startswith("engine_"):
            kind = "engine model"
        nodes.append({"node": name, "kind": kind, "seconds": float(result["execution_time"])})
    return sorted(nodes, key=lambda node: -node["seconds"])


def _bronze_records(lake: Lake) -> dict[str, int]:
    connection = duckdb.connect()
    try:
        return {
            table: int(
                connection.execute(
                    f"select count(*) from {lake.read_bronze_sql(table)}"
                ).fetchone()[0]
            )
            for table in ("futures_mbo", "options_mbo")
        }
    finally:
        connection.close()


def bench_day(folder: Path = FOLDER) -> dict[str, Any]:
    raw = busy_day_raw(folder)
    lake = Lake(folder / "lake")
    if lake.root.exists():
        shutil.rmtree(lake.root)
    spymaster = str(Path(sys.executable).with_name("spymaster"))
    env = lake.environment()
    target = folder / "dbt-target"
    ingest = run_stage(
        "ingest",
        [spymaster, "ingest", "--lake", str(lake.root), "--raw", str(raw), "--workers", "2"],
        env,
    )
    build = run_stage(
        "build", [spymaster, "build", "--lake", str(lake.root), "--target-path", str(target)], env
    )
    nodes = _node_times(target / "run_results.json")
    records = _bronze_records(lake)
    by_kind: dict[str, float] = {}
    for node in nodes:
        by_kind[node["kind"]] = by_kind.get(node["kind"], 0.0) + node["seconds"]
    return {
        "market": {"sessions": BUSY_DAY.sessions, "seed": BUSY_DAY.seed, "scale": BUSY_DAY.scale},
        "records": records,
        "stages": {"ingest": ingest, "build": build},
        "raw_to_gold_seconds": ingest["seconds"] + build["seconds"],
        "peak_rss_mib": max(ingest["peak_rss_mib"], build["peak_rss_mib"]),
        "ingest_records_per_second_per_worker": sum(records.values()) / ingest["seconds"] / 2,
        "dbt_node_seconds_by_kind": by_kind,
        "dbt_nodes": nodes,
    }


def print_day(measured: dict[str, Any], slowest: int = 12) -> None:
    records = measured["records"]
    stages = measured["stages"]
    print(
        "day  busy generated day ({futures:,} futures + {options:,} options MBO records), raw "
        "DBN to every gold table with dbt's data tests: {total:.1f} s, peak RSS {peak:,.0f} MiB; "
        "ingest (2 workers) {ingest:.1f} s ({per_worker:,.0f} records/s per worker, peak "
        "{ingest_peak:,.0f} MiB); build {build:.1f} s (peak {build_peak:,.0f} MiB)".format(
            futures=records["futures_mbo"],
            options=records["options_mbo"],
            total=measured["raw_to_gold_seconds"],
            peak=measured["peak_rss_mib"],
            ingest=stages["ingest"]["seconds"],
            per_worker=measured["ingest_records_per_second_per_worker"],
            ingest_peak=stages["ingest"]["peak_rss_mib"],
            build=stages["build"]["seconds"],
            build_peak=stages["build"]["peak_rss_mib"],
        )
    )
    kinds = ", ".join(
        f"{kind} {seconds:.1f} s" for kind, seconds in measured["dbt_node_seconds_by_kind"].items()
    )
    print(f"day  dbt node time by kind (2 threads, so more than the wall): {kinds}")
    top = ", ".join(
        f"{node['node']} {node['seconds']:.1f} s" for node in measured["dbt_nodes"][:slowest]
    )
    print(f"day  slowest nodes: {top}", flush=True)
