"""The futures surfaces for dbt's Python models: book_snapshot_1s rows of every contract-day still
to build, and the lake partitions of depth_and_flow_1s that the same replay writes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from book_engine.bronze_input import bronze_mbo_batches, landed_manifest
from book_engine.definitions import definition_ticks
from book_engine.surfaces import (
    BOOK_SNAPSHOT_SCHEMA,
    DEPTH_AND_FLOW_SCHEMA,
    SurfaceSettings,
    book_batch,
    depth_and_flow_batches,
    depth_batch,
    futures_chunks,
)
from cluster.engine_partitions import EngineJob, EnginePartitionStore, PartitionTimer
from cluster.planning import (
    FUTURES_TASK_BYTES_PER_RECORD,
    TASK_BASE_BYTES,
    BuildInputs,
    build_fingerprint,
    engine_reader,
    included_days,
    lake_folder,
    lake_partitions,
    partitions_to_build,
)
from foundation.computed_ahead import computed_ahead
from foundation.partitions import Partition

SURFACE_INPUTS = BuildInputs(("futures_mbo",), ("futures_definitions",))


def surface_rows(
    partition: Partition,
    *,
    surface: str,
    lake_dir: str,
    ticks: Mapping[int, int],
    settings: SurfaceSettings,
) -> Iterator[pa.RecordBatch]:
    """The rows of `surface` for one contract-day (in the dbt process or a Ray task)."""
    load = lambda symbol, day: bronze_mbo_batches(lake_dir, "futures_mbo", symbol, day)  # noqa: E731
    if surface == "depth_and_flow":
        return depth_and_flow_batches([partition], load, lambda *_: ticks, settings)
    return _book_snapshot_writing_depth_and_flow(partition, load, ticks, settings, lake_dir)


def _book_snapshot_writing_depth_and_flow(
    partition: Partition,
    load: Callable[[str, dt.date], pa.Table],
    ticks: Mapping[int, int],
    settings: SurfaceSettings,
    lake_dir: str,
) -> Iterator[pa.RecordBatch]:
    """book_snapshot_1s rows of one contract-day. The same replay's depth_and_flow_1s rows
    are written to the lake's engine partitions, where the depth-and-flow model (built after
    this one) reads them: each futures day is replayed once for both surfaces."""
    store = EnginePartitionStore(lake_dir)
    with store.writing("depth_and_flow_1s", partition, DEPTH_AND_FLOW_SCHEMA) as depth:
        # the next chunk's replay runs beside this chunk's conversion and Parquet writing
        for chunk in computed_ahead(futures_chunks(partition, load, lambda *_: ticks, settings)):
            if len(chunk.depth_rows):
                depth.write_batch(depth_batch(chunk, partition, partition.fingerprint))
            if len(chunk.book_rows):
                yield book_batch(chunk, partition, partition.fingerprint)


def book_snapshot_reader(
    *,
    session: duckdb.DuckDBPyConnection,
    this: object,
    is_incremental: bool,
    config: Mapping[str, Any],
    selection: duckdb.DuckDBPyRelation,
    definitions: duckdb.DuckDBPyRelation,
    on_partition: PartitionTimer | None = None,
) -> pa.RecordBatchReader:
    """book_snapshot_1s rows of every included contract-day still to build, one partition at
    a time (a Ray task each with --ray); the same replay writes the day's depth_and_flow_1s
    partition to the lake."""
    settings = SurfaceSettings.from_config(config)
    lake_dir = lake_folder(config)
    partitions = _surface_partitions(lake_dir, selection, settings)
    todo = partitions_to_build(session, this, is_incremental, partitions)
    job = _surface_job("book_snapshot", lake_dir, definition_ticks(definitions), settings)
    return engine_reader(BOOK_SNAPSHOT_SCHEMA, map(job, todo), lake_dir, on_partition)


def depth_and_flow_partitions(
    *,
    config: Mapping[str, Any],
    selection: duckdb.DuckDBPyRelation,
    definitions: duckdb.DuckDBPyRelation,
    on_partition: PartitionTimer | None = None,
) -> pa.Table:
    """The lake partitions of depth_and_flow_1s rows, one per included contract-day
    (ENGINE_PARTITIONS_SCHEMA). The book snapshot's replay of a day writes them; a day without
    its partition (the lake's engine folder removed, say) is replayed here."""
    settings = SurfaceSettings.from_config(config)
    lake_dir = lake_folder(config)
    return lake_partitions(
        DEPTH_AND_FLOW_FOLDER,
        DEPTH_AND_FLOW_SCHEMA,
        _surface_partitions(lake_dir, selection, settings),
        _surface_job("depth_and_flow", lake_dir, definition_ticks(definitions), settings),
        lake_dir,
        on_partition,
    )


def _surface_partitions(
    lake_dir: str, selection: duckdb.DuckDBPyRelation, settings: SurfaceSettings
) -> list[Partition]:
    return [
        Partition(
            symbol,
            day,
            build_fingerprint(lake_dir, SURFACE_INPUTS, symbol, day, settings.fingerprint),
        )
        for symbol, day in included_days(selection)
    ]


def _surface_job(
    surface: str,
    lake_dir: str,
    ticks_for: Callable[[str, dt.date, Sequence[int]], Mapping[int, int]],
    settings: SurfaceSettings,
) -> Callable[[Partition], EngineJob]:
    def job(partition: Partition) -> EngineJob:
        landed = landed_manifest(lake_dir, "futures_mbo", partition.symbol, partition.day)
        return EngineJob(
            model=f"{surface}_1s",
            partition=partition,
            compute=surface_rows,
            arguments={
                "surface": surface,
                "lake_dir": lake_dir,
                "ticks": ticks_for(partition.symbol, partition.day, landed["instrument_ids"]),
                "settings": settings,
            },
            memory_bytes=TASK_BASE_BYTES + landed["records"] * FUTURES_TASK_BYTES_PER_RECORD,
        )

    return job


DEPTH_AND_FLOW_FOLDER = "depth_and_flow_1s"
