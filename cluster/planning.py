"""Which contract-days an engine model builds, and running them: each day fingerprinted from the
bronze partitions it reads and its settings (a day is rebuilt exactly when one changed), its
rows computed here or as Ray tasks (SPYMASTER_RAY_ADDRESS), and the partitions an engine model
keeps in the lake listed for the warehouse's views."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from cluster.engine_partitions import (
    EngineJob,
    EnginePartitionStore,
    PartitionTimer,
    job_batches,
    job_partitions,
)
from cluster.ray_runtime import requested_address
from foundation.partitions import Partition


def lake_folder(config: Mapping[str, Any]) -> str:
    """The lake of a model's config ($SPYMASTER_LAKE) as an absolute path: Ray workers do
    not share this process's working directory."""
    return str(Path(str(config["lake_dir"])).resolve())


@dataclass(frozen=True)
class BuildInputs:
    """The bronze tables a contract-day's build reads: the day's partition of each of
    `day_tables`, and every partition up to and including the day of `history_tables` (the
    latest definition or statistic on or before the day may come from any of them)."""

    day_tables: tuple[str, ...]
    history_tables: tuple[str, ...]


@cache
def _manifest_sha256(manifest: Path, identity: tuple[int, int, int]) -> str:
    """A manifest's source SHA-256, read once per version of the file (inode, size, mtime)."""
    return json.loads(manifest.read_text())["sources"][0]["sha256"]


def landed_sources(lake_dir: str, table: str, symbol: str) -> dict[dt.date, str]:
    """The source SHA-256 of each landed partition of a table for a symbol, by date."""
    folder = Path(lake_dir) / "bronze" / table / f"symbol={symbol}"
    landed = {}
    for manifest in folder.glob("dt=*/_manifest.json"):
        day = dt.date.fromisoformat(manifest.parent.name.removeprefix("dt="))
        status = manifest.stat()
        landed[day] = _manifest_sha256(
            manifest, (status.st_ino, status.st_size, status.st_mtime_ns)
        )
    return landed


def build_fingerprint(
    lake_dir: str, inputs: BuildInputs, symbol: str, day: dt.date, settings: str
) -> str:
    """One fingerprint per contract-day and model: the settings and the source SHA-256 of
    every bronze partition the build reads. A day is rebuilt exactly when one of them changed
    (a statistics file landed after the day was built, say), or a setting did."""
    digest = hashlib.sha256(settings.encode())
    for table in inputs.day_tables:
        digest.update(
            f"{table}:{landed_sources(lake_dir, table, symbol).get(day, 'absent')};".encode()
        )
    for table in inputs.history_tables:
        for landed_day, sha in sorted(landed_sources(lake_dir, table, symbol).items()):
            if landed_day <= day:
                digest.update(f"{table}:{landed_day}:{sha};".encode())
    return digest.hexdigest()[:32]


def included_days(selection: duckdb.DuckDBPyRelation) -> list[tuple[str, dt.date]]:
    """(selected contract, session date) of every included day, in date order."""
    return selection.filter("is_included").project("selected_symbol, dt").order("dt").fetchall()


def partitions_to_build(
    session: duckdb.DuckDBPyConnection,
    this: object,
    is_incremental: bool,
    partitions: Sequence[Partition],
) -> list[Partition]:
    """Contract-days whose rows were not built from the same inputs and settings (all of them
    on a full build): a new day does not recompute old ones, a changed input rebuilds its day."""
    if not is_incremental:
        return list(partitions)
    built = set(
        session.sql(f"select distinct symbol, dt, build_fingerprint from {this}").fetchall()
    )
    return [p for p in partitions if (p.symbol, p.day, p.fingerprint) not in built]


# per input record, what a task holds at its peak (the records as Arrow and NumPy, the engine's
# state, the rows out); declared to Ray so a node is not overcommitted
FUTURES_TASK_BYTES_PER_RECORD = 160


OPTIONS_TASK_BYTES_PER_RECORD = 240


TASK_BASE_BYTES = 512 << 20


def engine_reader(
    schema: pa.Schema,
    jobs: Iterator[EngineJob],
    lake_dir: str,
    on_partition: PartitionTimer | None,
) -> pa.RecordBatchReader:
    """The jobs' rows for dbt: computed here, or by Ray tasks with SPYMASTER_RAY_ADDRESS
    (`on_partition`, for the benchmark, hears each task's partition and seconds)."""
    batches = job_batches(
        jobs,
        schema,
        lake_root=lake_dir,
        ray_address=requested_address(None),
        on_partition=on_partition,
    )
    return pa.RecordBatchReader.from_batches(schema, batches)


# One row per contract-day partition of an engine model kept in the lake (the rows' Parquet
# file under <lake>/engine/<folder>/symbol=<s>/dt=<d>/), as its manifest names it. The
# warehouse reads such rows through a view (the engine_partitions_view macro): storing them in
# DuckDB too cost more than computing them (the demo's 35.6 M option-seconds: 16 s of wall
# time and 31 s of CPU, where writing them as Parquet costs 5 s).
ENGINE_PARTITIONS_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("dt", pa.date32(), nullable=False),
        pa.field("build_fingerprint", pa.string(), nullable=False),
        pa.field("data_file", pa.string(), nullable=False),
        pa.field("rows", pa.int64(), nullable=False),
    ]
)


def lake_partitions(
    folder: str,
    schema: pa.Schema,
    partitions: Sequence[Partition],
    job: Callable[[Partition], EngineJob],
    lake_dir: str,
    on_partition: PartitionTimer | None,
) -> pa.Table:
    """Each partition's row (ENGINE_PARTITIONS_SCHEMA), in order: as the lake holds it when it
    was written from the same inputs and settings (its build fingerprint), else computed and
    written first (here, or as Ray tasks with SPYMASTER_RAY_ADDRESS)."""
    store = EnginePartitionStore(lake_dir)
    stored = [store.stored(folder, partition) for partition in partitions]
    written = job_partitions(
        (job(p) for p, manifest in zip(partitions, stored, strict=True) if manifest is None),
        schema,
        lake_root=lake_dir,
        ray_address=requested_address(None),
        on_partition=on_partition,
    )
    manifests = [manifest or next(written) for manifest in stored]
    return pa.Table.from_pylist(
        [
            {
                "symbol": manifest["symbol"],
                "dt": dt.date.fromisoformat(manifest["dt"]),
                "build_fingerprint": manifest["build_fingerprint"],
                "data_file": manifest["data_file"],
                "rows": manifest["rows"],
            }
            for manifest in manifests
        ],
        schema=ENGINE_PARTITIONS_SCHEMA,
    )
