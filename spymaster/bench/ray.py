"""`spymaster bench --only ray`: the engine models' contract-days in this process and as
tasks of a local Ray, on the HUD benchmark's market (two realistic sessions, built once).

Each model's readers run as dbt runs them (a full build of every included day), reading the
built warehouse for their inputs; the rows are consumed, not stored (the models whose rows
stay in the lake write their partitions there, as in a build; the options' are removed before
each run, so that each run computes them). Measured per model: the
wall time both ways, and per contract-day the seconds its Ray task took (computing and writing
its partition).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from book_engine import warehouse as futures
from cluster.engine_partitions import ENGINE_FOLDER
from cluster.ray_runtime import RAY_ADDRESS_ENV_VAR, cluster_cpus, ray_session
from foundation.lake import Lake
from foundation.project import PROJECT_ROOT, dbt_command
from gex import warehouse as options_models

MODELS = (
    "engine_book_snapshot_1s",
    "engine_depth_and_flow_partitions",
    "engine_options_book_partitions",
    "engine_options_quote_partitions",
    "engine_gex_by_strike_partitions",
    "engine_zero_gamma_partitions",
)


def _model_configs(lake: Lake) -> dict[str, dict[str, Any]]:
    """Each engine model's config as dbt renders it for this lake."""
    with tempfile.TemporaryDirectory(prefix="spymaster-bench-parse-") as target:
        subprocess.run(
            dbt_command(["parse", "--target-path", target, "--quiet"]),
            env=lake.environment(),
            cwd=PROJECT_ROOT,
            check=True,
        )
        nodes = json.loads((Path(target) / "manifest.json").read_text())["nodes"]
    return {node["name"]: node["config"] for node in nodes.values() if node["name"] in MODELS}


def _readers(
    connection: duckdb.DuckDBPyConnection, configs: Mapping[str, Mapping[str, Any]]
) -> dict[str, Callable[..., pa.RecordBatchReader]]:
    schemas = dict(
        connection.execute(
            "select table_name, table_schema from information_schema.tables"
        ).fetchall()
    )

    def table(name: str) -> duckdb.DuckDBPyRelation:
        return connection.table(f"{schemas[name]}.{name}")

    full_build = {"session": connection, "this": None, "is_incremental": False}

    def surface(name: str) -> Mapping[str, Any]:
        return configs[name]["surface_settings"]

    def options(name: str) -> Mapping[str, Any]:
        return configs[name]["options_settings"]

    return {
        "engine_book_snapshot_1s": lambda **timer: futures.book_snapshot_reader(
            **full_build,
            config=surface("engine_book_snapshot_1s"),
            selection=table("contract_day_selection"),
            definitions=table("futures_definitions"),
            **timer,
        ),
        "engine_depth_and_flow_partitions": lambda **timer: futures.depth_and_flow_partitions(
            config=surface("engine_depth_and_flow_partitions"),
            selection=table("contract_day_selection"),
            definitions=table("futures_definitions"),
            **timer,
        ),
        "engine_options_book_partitions": lambda **timer: options_models.options_book_partitions(
            config=options("engine_options_book_partitions"),
            selection=table("contract_day_selection"),
            definitions=table("options_definitions"),
            statistics=table("options_statistics"),
            **timer,
        ),
        "engine_options_quote_partitions": lambda **timer: options_models.options_quote_partitions(
            config=options("engine_options_quote_partitions"),
            selection=table("contract_day_selection"),
            definitions=table("options_definitions"),
            statistics=table("options_statistics"),
            book=table("book_snapshot_1s"),
            **timer,
        ),
        "engine_gex_by_strike_partitions": lambda **timer: options_models.quote_day_partitions(
            "gex_by_strike_1s",
            config=options("engine_gex_by_strike_partitions"),
            quote_partitions=table("engine_options_quote_partitions"),
            quotes=table("engine_options_quotes_1s"),
            **timer,
        ),
        "engine_zero_gamma_partitions": lambda **timer: options_models.quote_day_partitions(
            "zero_gamma_1s",
            config=options("engine_zero_gamma_partitions"),
            quote_partitions=table("engine_options_quote_partitions"),
            quotes=table("engine_options_quotes_1s"),
            **timer,
        ),
    }


# computed again by each run: their partitions are removed first (the depth-and-flow ones are
# written by the book snapshot's replay, which each run repeats; the sums by the quotes' run
# too, removed so that their models sum each day's quotes read back from the warehouse)
RECOMPUTED_FOLDERS = {
    "engine_options_book_partitions": options_models.OPTIONS_BOOK_FOLDER,
    "engine_options_quote_partitions": options_models.OPTIONS_QUOTES_FOLDER,
    "engine_gex_by_strike_partitions": "gex_by_strike_1s",
    "engine_zero_gamma_partitions": "zero_gamma_1s",
}


def _consume(
    lake: Lake, name: str, run: Callable[[], pa.RecordBatchReader | pa.Table]
) -> tuple[int, float]:
    """Rows of one model's run and its seconds: a reader's rows as they are consumed, or the
    rows of the lake partitions a partitions model lists."""
    if name in RECOMPUTED_FOLDERS:
        shutil.rmtree(lake.root / ENGINE_FOLDER / RECOMPUTED_FOLDERS[name], ignore_errors=True)
    started = time.perf_counter()
    result = run()
    if isinstance(result, pa.Table):
        rows = sum(result.column("rows").to_pylist())
    else:
        rows = sum(batch.num_rows for batch in result)
    return rows, time.perf_counter() - started


def bench_ray(lake: Lake) -> dict[str, Any]:
    configs = _model_configs(lake)
    connection = duckdb.connect(str(lake.duckdb_path), read_only=True)
    try:
        readers = _readers(connection, configs)
        results: dict[str, Any] = {"models": {}}
        os.environ.pop(RAY_ADDRESS_ENV_VAR, None)
        for name in MODELS:
            rows, seconds = _consume(lake, name, readers[name])
            results["models"][name] = {"rows": rows, "in_process_seconds": seconds}
        started = time.perf_counter()
        with ray_session("auto") as address:
            results["ray_start_seconds"] = time.perf_counter() - started
            results["cpus"] = cluster_cpus()
            os.environ[RAY_ADDRESS_ENV_VAR] = address
            try:
                for name in MODELS:
                    tasks: list[float] = []
                    run = functools.partial(
                        readers[name],
                        on_partition=lambda _manifest, seconds, into=tasks: into.append(seconds),
                    )
                    rows, seconds = _consume(lake, name, run)
                    measured = results["models"][name]
                    if rows != measured["rows"]:
                        raise SystemExit(
                            f"bench: {name} gave {rows} rows through Ray, "
                            f"{measured['rows']} without"
                        )
                    # no task where every partition was in the lake already
                    measured.update(
                        ray_seconds=seconds,
                        partitions=len(tasks),
                        task_median_seconds=statistics.median(tasks) if tasks else 0.0,
                        task_max_seconds=max(tasks, default=0.0),
                    )
            finally:
                os.environ.pop(RAY_ADDRESS_ENV_VAR, None)
        return results
    finally:
        connection.close()


def print_ray(result: Mapping[str, Any]) -> None:
    models = result["models"]
    per_model = "; ".join(
        f"{name.removeprefix('engine_')} {m['partitions']} days, task median "
        f"{m['task_median_seconds']:.2f} s (max {m['task_max_seconds']:.2f}), "
        f"wall {m['in_process_seconds']:.1f} s here / {m['ray_seconds']:.1f} s on Ray"
        for name, m in models.items()
    )
    here = sum(m["in_process_seconds"] for m in models.values())
    on_ray = sum(m["ray_seconds"] for m in models.values())
    print(
        f"ray   the engine models on the HUD market, in this process and as tasks of a local "
        f"Ray ({result['cpus']} CPUs, started in {result['ray_start_seconds']:.1f} s): "
        f"{per_model}; all {len(models)} {here:.1f} s here, {on_ray:.1f} s on Ray",
        flush=True,
    )
