"""`spymaster live`: run the engine on a record stream (today: a day's DBN files replayed)."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import yaml
from databento.common.symbology import InstrumentMap

from ingest.bronze_tables import SourceSchema
from live.capture import RawCapture
from live.databento_feed import DatabentoLive
from live.emit import ParquetTables
from live.feed import DbnReplay, FeedBatch
from live.session import LiveContract, LiveError, LiveSession, LiveSettings
from spymaster.dbt_models import options_settings, profile_settings, surface_settings
from spymaster.lake import PROJECT_ROOT, Lake, project_vars

ENGINE_MODELS_YML = PROJECT_ROOT / "python_models" / "silver" / "_engine.yml"
_TEMPLATE = re.compile(r"\{\{\s*var\('(\w+)'\)((?:\['\w+'\])*)\s*\}\}")


def model_config(yml: Path, model: str, key: str) -> dict[str, Any]:
    """A dbt model's config block as dbt renders it from the project's vars: live runs the
    engine with the very settings the warehouse's models are given."""
    models = yaml.safe_load(yml.read_text())["models"]
    config = next(m for m in models if m["name"] == model)["config"][key]
    variables = project_vars()
    return {
        name: _TEMPLATE.sub(lambda match: _rendered(variables, match), str(value))
        for name, value in config.items()
        if "env_var(" not in str(value)
    }


def _rendered(variables: dict[str, Any], match: re.Match[str]) -> str:
    value = variables[match.group(1)]
    for key in re.findall(r"\['(\w+)'\]", match.group(2)):
        value = value[key]
    return str(value)


def parse_speed(value: str) -> float | None:
    """`max` (None: as fast as possible) or a positive multiple of real time."""
    if value == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        raise ValueError(f"--speed {value!r}: a positive number or max") from None
    if not speed > 0:
        raise ValueError(f"--speed {value!r}: a positive number or max")
    return speed


def latest_contract(lake: Lake, day: dt.date) -> str:
    """The contract the warehouse selected on its latest included day up to `day`: what a
    live session trades before the day's own volume can select (a roll shows a day late)."""
    return _selection(lake, day, "dt <= ? and is_included order by dt desc limit 1")


def selected_contract(lake: Lake, day: dt.date) -> str:
    """The warehouse's selected contract for the day."""
    return _selection(lake, day, "dt = ? and is_included")


def _selection(lake: Lake, day: dt.date, condition: str) -> str:
    if not lake.duckdb_path.exists():
        raise LiveError(
            f"{lake.duckdb_path}: no warehouse to take the day's contract from (pass --symbol)"
        )
    connection = duckdb.connect(str(lake.duckdb_path), read_only=True)
    try:
        row = connection.execute(
            f"select selected_symbol from silver.contract_day_selection where {condition}",
            [day],
        ).fetchone()
    finally:
        connection.close()
    if row is None:
        raise LiveError(
            f"{day}: not an included day of the warehouse's contract selection (pass --symbol)"
        )
    return str(row[0])


@dataclass(frozen=True)
class LiveRun:
    records: int
    market_seconds: float
    wall_seconds: float
    rows: dict[str, int]
    written: list[Path]


def run_replay(
    lake: Lake,
    paths: Sequence[Path],
    speed: float | None,
    emit: Path | None,
    day: dt.date | None,
    symbol: str | None,
) -> LiveRun:
    feed = DbnReplay(paths, speed, day)
    day = day or feed.day()
    return run_feed(lake, feed, feed.symbology, day, symbol or selected_contract(lake, day), emit)


def run_databento(
    lake: Lake, emit: Path | None, day: dt.date | None, symbol: str | None
) -> LiveRun:
    """Today's session from the Databento Live gateway, until the connection ends."""
    feed = DatabentoLive()
    day = day or dt.datetime.now(dt.UTC).date()
    contract = symbol or latest_contract(lake, day)
    return run_feed(lake, feed, feed.symbology, day, contract, emit, capture=lake.raw)


def live_settings() -> LiveSettings:
    options_config = model_config(ENGINE_MODELS_YML, "engine_options_quotes_1s", "options_settings")
    return LiveSettings(
        surfaces=surface_settings(
            model_config(ENGINE_MODELS_YML, "engine_book_snapshot_1s", "surface_settings")
        ),
        options=options_settings(options_config),
        profile=profile_settings(options_config),
        options_config=options_config,
    )


def run_feed(
    lake: Lake,
    feed: Iterable[FeedBatch],
    symbology: Mapping[str, InstrumentMap],
    day: dt.date,
    symbol: str,
    emit: Path | None,
    capture: Path | None = None,
) -> LiveRun:
    """Every batch of `feed` through one live session of `symbol` on `day`; with `capture`,
    every record received is also written there as raw DBN files (even when the session
    fails: nothing received is lost)."""
    tables = ParquetTables(emit) if emit is not None else None
    raw = RawCapture(capture) if capture is not None else None
    rows: dict[str, int] = {}

    def sink(table: str, batch: pa.RecordBatch) -> None:
        rows[table] = rows.get(table, 0) + batch.num_rows
        if tables is not None:
            tables.write(table, batch)

    session = LiveSession(lake, LiveContract(symbol, day), live_settings(), sink)
    started = time.perf_counter()
    first = last = None
    try:
        for batch in feed:
            if batch.schema is not SourceSchema.DEFINITION and len(batch.records):
                first = int(batch.records["ts_recv"][0]) if first is None else first
                last = int(batch.records["ts_recv"][-1])
            if raw is not None:
                raw.add(batch, symbology[batch.source])
            session.apply(batch, symbology[batch.source])
        session.finish()
    except BaseException:
        if tables is not None:
            tables.abort()
        raise
    finally:
        captured = raw.close(_merged(symbology)) if raw is not None else []
    written = (tables.close() if tables is not None else []) + captured
    return LiveRun(
        records=session.records,
        market_seconds=0.0 if first is None else (last - first) / 1e9,
        wall_seconds=time.perf_counter() - started,
        rows=rows,
        written=written,
    )


def _merged(symbology: Mapping[str, InstrumentMap]) -> InstrumentMap:
    if len(symbology) == 1:
        return next(iter(symbology.values()))
    raise ValueError("raw capture needs one symbol map (a live source)")


def format_run(run: LiveRun) -> str:
    lines = [
        f"replayed {run.records:,} records ({run.market_seconds:,.0f} s of market time) in "
        f"{run.wall_seconds:,.1f} s: {run.market_seconds / max(run.wall_seconds, 1e-9):,.0f}x "
        "real time"
    ]
    lines += [f"  {table:<28} {count:>12,} rows" for table, count in sorted(run.rows.items())]
    lines += [f"  wrote {path}" for path in run.written]
    return "\n".join(lines)
