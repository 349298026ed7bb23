"""What the dbt Python models share: settings from their config, the contract-days to build,
and loaders over DuckDB relations. The models themselves stay a few lines long."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from book_engine.errors import EngineError
from book_engine.surfaces import (
    BOOK_SNAPSHOT_SCHEMA,
    DEPTH_AND_FLOW_SCHEMA,
    MBO_COLUMNS,
    Partition,
    SurfaceSettings,
    book_snapshot_batches,
    depth_and_flow_batches,
)
from spymaster.exchange_time import parse_time


def surface_settings(config: Mapping[str, Any]) -> SurfaceSettings:
    """The engine settings a model receives in its `surface_settings` config (dbt vars)."""
    return SurfaceSettings(
        timezone=str(config["exchange_timezone"]),
        depth_ticks=int(config["depth_ticks"]),
        rest_ms=int(config["resting_ms"]),
        depth_window=(
            parse_time(str(config["depth_window_start"])),
            parse_time(str(config["depth_window_end"])),
        ),
        pre_open=(
            parse_time(str(config["pre_open_start"])),
            parse_time(str(config["pre_open_end"])),
        ),
    )


def source_sha256(lake_dir: str, table: str, symbol: str, day: dt.date) -> str:
    """The SHA-256 of the raw file a bronze partition was landed from (its manifest)."""
    manifest = (
        Path(lake_dir)
        / "bronze"
        / table
        / f"symbol={symbol}"
        / f"dt={day.isoformat()}"
        / "_manifest.json"
    )
    if not manifest.exists():
        raise EngineError(f"{manifest}: no manifest for bronze partition {table} {symbol} {day}")
    return json.loads(manifest.read_text())["sources"][0]["sha256"]


def included_partitions(selection: duckdb.DuckDBPyRelation, lake_dir: str) -> list[Partition]:
    rows = selection.filter("is_included").project("selected_symbol, dt").order("dt").fetchall()
    return [
        Partition(symbol, day, source_sha256(lake_dir, "futures_mbo", symbol, day))
        for symbol, day in rows
    ]


def partitions_to_build(
    session: duckdb.DuckDBPyConnection,
    this: object,
    is_incremental: bool,
    partitions: Sequence[Partition],
    settings: SurfaceSettings,
) -> list[Partition]:
    """Contract-days not yet built from the same input and settings (all of them on a full
    build): a new day does not recompute old ones, a re-landed day is rebuilt."""
    if not is_incremental:
        return list(partitions)
    built = {
        (symbol, day, fingerprint)
        for symbol, day, fingerprint in session.sql(
            f"select distinct symbol, dt, build_fingerprint from {this}"
        ).fetchall()
    }
    return [p for p in partitions if (p.symbol, p.day, p.fingerprint(settings)) not in built]


def mbo_loader(mbo: duckdb.DuckDBPyRelation) -> Callable[[str, dt.date], pa.Table]:
    def load(symbol: str, day: dt.date) -> pa.Table:
        return (
            mbo.filter(f"symbol = '{symbol}' and dt = DATE '{day.isoformat()}'")
            .order("record_index")
            .project(", ".join(MBO_COLUMNS))
            .to_arrow_table()
        )

    return load


def definition_ticks(
    definitions: duckdb.DuckDBPyRelation,
) -> Callable[[str, dt.date, Sequence[int]], Mapping[int, int]]:
    """Tick size (price units) of each instrument: its latest definition on or before the day."""

    def ticks_for(symbol: str, day: dt.date, instrument_ids: Sequence[int]) -> Mapping[int, int]:
        ids = ", ".join(str(int(i)) for i in instrument_ids)
        rows = (
            definitions.filter(f"instrument_id in ({ids}) and dt <= DATE '{day.isoformat()}'")
            .project("instrument_id, dt, record_index, min_price_increment")
            .order("instrument_id, dt, record_index")
            .fetchall()
        )
        ticks = {int(instrument): int(tick) for instrument, _, _, tick in rows}
        missing = sorted({int(i) for i in instrument_ids} - ticks.keys())
        if missing:
            raise EngineError(
                f"futures_mbo symbol={symbol} dt={day}: instrument(s) {missing} have no "
                "definition on or before that day; land the ES.FUT definition file of that day"
            )
        return ticks

    return ticks_for


def surface_reader(
    surface: str,
    *,
    session: duckdb.DuckDBPyConnection,
    this: object,
    is_incremental: bool,
    config: Mapping[str, Any],
    selection: duckdb.DuckDBPyRelation,
    mbo: duckdb.DuckDBPyRelation,
    definitions: duckdb.DuckDBPyRelation,
) -> pa.RecordBatchReader:
    """The rows of `surface` ("book_snapshot" or "depth_and_flow") for every included
    contract-day still to build, streamed one partition at a time."""
    settings = surface_settings(config)
    partitions = included_partitions(selection, str(config["lake_dir"]))
    todo = partitions_to_build(session, this, is_incremental, partitions, settings)
    schema, batches = {
        "book_snapshot": (BOOK_SNAPSHOT_SCHEMA, book_snapshot_batches),
        "depth_and_flow": (DEPTH_AND_FLOW_SCHEMA, depth_and_flow_batches),
    }[surface]
    return pa.RecordBatchReader.from_batches(
        schema, batches(todo, mbo_loader(mbo), definition_ticks(definitions), settings)
    )
