"""What the dbt Python models share: settings from their config, the contract-days to build,
and loaders over DuckDB relations. The models themselves stay a few lines long."""

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
import numpy as np
import pyarrow as pa

from book_engine.errors import EngineError
from book_engine.replay import MboColumns
from book_engine.surfaces import (
    BOOK_SNAPSHOT_SCHEMA,
    DEPTH_AND_FLOW_SCHEMA,
    ENGINE_VERSION,
    MBO_COLUMNS,
    Partition,
    SurfaceSettings,
    book_snapshot_batches,
    depth_and_flow_batches,
)
from gex.exposure_by_strike import (
    EXPOSURE_INPUT_COLUMNS,
    GEX_BY_STRIKE_SCHEMA,
    gex_by_strike_batch,
)
from gex.options_surface import (
    OPTIONS_QUOTES_SCHEMA,
    PROFILE_INPUT_COLUMNS,
    ZERO_GAMMA_SCHEMA,
    OptionsChain,
    OptionsSettings,
    ProfileSettings,
    SpotSeries,
    quote_batches,
    zero_gamma_batch,
)
from spymaster.dbn_facts import PRICE_SCALE, UNDEF_PRICE
from spymaster.exchange_time import parse_time, utc_ns


def surface_settings(config: Mapping[str, Any]) -> SurfaceSettings:
    """The engine settings a model receives in its `surface_settings` config (dbt vars)."""
    return SurfaceSettings(
        timezone=str(config["exchange_timezone"]),
        depth_ticks=int(config["depth_ticks"]),
        rest_ms=int(config["resting_ms"]),
        surface_window=(
            parse_time(str(config["surface_window_start"])),
            parse_time(str(config["surface_window_end"])),
        ),
        pre_open=(
            parse_time(str(config["pre_open_start"])),
            parse_time(str(config["pre_open_end"])),
        ),
    )


@dataclass(frozen=True)
class BuildInputs:
    """The bronze tables a contract-day's build reads: the day's partition of each of
    `day_tables`, and every partition up to and including the day of `history_tables` (the
    latest definition or statistic on or before the day may come from any of them)."""

    day_tables: tuple[str, ...]
    history_tables: tuple[str, ...]


SURFACE_INPUTS = BuildInputs(("futures_mbo",), ("futures_definitions",))
QUOTE_INPUTS = BuildInputs(
    ("futures_mbo", "options_mbo"), ("options_definitions", "options_statistics")
)


@cache
def _manifest_sha256(manifest: Path, identity: tuple[int, int, int]) -> str:
    """A manifest's source SHA-256, read once per version of the file (inode, size, mtime)."""
    return json.loads(manifest.read_text())["sources"][0]["sha256"]


def _landed(lake_dir: str, table: str, symbol: str) -> dict[dt.date, str]:
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
        digest.update(f"{table}:{_landed(lake_dir, table, symbol).get(day, 'absent')};".encode())
    for table in inputs.history_tables:
        for landed_day, sha in sorted(_landed(lake_dir, table, symbol).items()):
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


def in_file_order(table: pa.Table) -> pa.Table:
    """The records in file order. A partition is one Parquet file written in that order and
    DuckDB keeps a scan's order, so sorting (a third of a busy day's load) is only needed
    when the check finds otherwise."""
    record_index = table.column("record_index").to_numpy()
    if len(record_index) > 1 and not (record_index[1:] > record_index[:-1]).all():
        return table.sort_by("record_index")
    return table


def mbo_loader(mbo: duckdb.DuckDBPyRelation) -> Callable[[str, dt.date], pa.Table]:
    def load(symbol: str, day: dt.date) -> pa.Table:
        table = (
            mbo.filter(f"symbol = '{symbol}' and dt = DATE '{day.isoformat()}'")
            .project(", ".join([*MBO_COLUMNS, "record_index"]))
            .to_arrow_table()
        )
        return in_file_order(table).drop_columns(["record_index"])

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
    lake_dir = str(config["lake_dir"])
    partitions = [
        Partition(
            symbol,
            day,
            build_fingerprint(lake_dir, SURFACE_INPUTS, symbol, day, settings.fingerprint),
        )
        for symbol, day in included_days(selection)
    ]
    todo = partitions_to_build(session, this, is_incremental, partitions)
    schema, batches = {
        "book_snapshot": (BOOK_SNAPSHOT_SCHEMA, book_snapshot_batches),
        "depth_and_flow": (DEPTH_AND_FLOW_SCHEMA, depth_and_flow_batches),
    }[surface]
    return pa.RecordBatchReader.from_batches(
        schema, batches(todo, mbo_loader(mbo), definition_ticks(definitions), settings)
    )


# ---- options: quotes, implied volatility and gamma exposure (gex_surface_1s)


def options_settings(config: Mapping[str, Any]) -> OptionsSettings:
    return OptionsSettings(
        timezone=str(config["exchange_timezone"]),
        surface_window=(
            parse_time(str(config["surface_window_start"])),
            parse_time(str(config["surface_window_end"])),
        ),
        min_minutes_to_expiry=float(config["min_minutes_to_expiry"]),
        rate=float(config["black76_rate"]),
        iv_carry_seconds=int(config["iv_carry_seconds"]),
    )


def options_chain(
    definitions: duckdb.DuckDBPyRelation,
    statistics: duckdb.DuckDBPyRelation,
    symbol: str,
    day: dt.date,
    open_interest_before_ns: int,
    options_tick: float,
) -> OptionsChain:
    """Options of an underlying that day: the latest definition of each on or before the day,
    and its latest open interest (stat_type 9) received before the session."""
    records = definitions.filter(f"symbol = '{symbol}' and dt <= DATE '{day.isoformat()}'").project(
        "instrument_id, dt, record_index, raw_symbol, strike_price, instrument_class, "
        "expiration, unit_of_measure_qty, min_price_increment"
    )
    # the latest record of each instrument wins: sort by (instrument, dt, record order)
    by_instrument = {row[0]: row[3:] for row in sorted(records.fetchall())}
    statistics_rows = statistics.filter(
        f"symbol = '{symbol}' and dt <= DATE '{day.isoformat()}' and stat_type = 9 "
        "and update_action = 1 "
        f"and ts_recv < {open_interest_before_ns}"
    ).project("instrument_id, ts_recv, record_index, quantity")
    interest = {row[0]: row[3] for row in sorted(statistics_rows.fetchall())}
    ids = sorted(by_instrument)
    rows = [by_instrument[i] for i in ids]
    tick = round(options_tick * PRICE_SCALE)
    return OptionsChain(
        instrument_ids=np.array(ids, dtype=np.int64),
        raw_symbols=[row[0] for row in rows],
        strikes=np.array([row[1] / PRICE_SCALE for row in rows]),
        is_call=np.array([row[2] == "C" for row in rows]),
        expiration_ns=np.array([row[3] for row in rows], dtype=np.int64),
        multiplier=np.array([row[4] / PRICE_SCALE for row in rows]),
        tick=np.array(
            [tick if row[5] in (None, UNDEF_PRICE) else row[5] for row in rows], dtype=np.int64
        ),
        open_interest=np.array([float(interest.get(i, np.nan)) for i in ids]),
    )


def options_quotes_reader(
    *,
    session: duckdb.DuckDBPyConnection,
    this: object,
    is_incremental: bool,
    config: Mapping[str, Any],
    selection: duckdb.DuckDBPyRelation,
    options_mbo: duckdb.DuckDBPyRelation,
    definitions: duckdb.DuckDBPyRelation,
    statistics: duckdb.DuckDBPyRelation,
    book: duckdb.DuckDBPyRelation,
) -> pa.RecordBatchReader:
    """options_quotes_1s rows of every included contract-day whose options were landed."""
    settings = options_settings(config)
    lake_dir = str(config["lake_dir"])
    label = (
        f"engine{ENGINE_VERSION}:{settings}:{config['options_tick_size']}:"
        f"open_interest_before={config['surface_window_start']}"
    )
    partitions = [
        Partition(symbol, day, build_fingerprint(lake_dir, QUOTE_INPUTS, symbol, day, label))
        for symbol, day in included_days(selection)
        # a contract-day without options landed has no quotes
        if day in _landed(lake_dir, "options_mbo", symbol)
    ]
    todo = partitions_to_build(session, this, is_incremental, partitions)

    def batches() -> Iterator[pa.RecordBatch]:
        for partition in todo:
            fingerprint = partition.fingerprint
            day, symbol = partition.day, partition.symbol
            chain = options_chain(
                definitions,
                statistics,
                symbol,
                day,
                open_interest_cutoff_ns(config, day),
                float(config["options_tick_size"]),
            )
            options = MboColumns.from_arrow(mbo_loader(options_mbo)(symbol, day))
            spots = (
                book.filter(
                    f"symbol = '{symbol}' and dt = DATE '{day.isoformat()}' and book_valid "
                    "and spot_price is not null"
                )
                .project("epoch_ns(window_start) as second, spot_price")
                .order("second")
                .fetchnumpy()
            )
            spot = SpotSeries(
                np.asarray(spots["second"], np.int64), np.asarray(spots["spot_price"])
            )
            yield from quote_batches(symbol, day, options, chain, spot, settings, fingerprint)

    return pa.RecordBatchReader.from_batches(OPTIONS_QUOTES_SCHEMA, batches())


def profile_settings(config: Mapping[str, Any]) -> ProfileSettings:
    return ProfileSettings(
        half_width_points=float(config["zero_gamma_half_width_points"]),
        step_points=float(config["zero_gamma_step_points"]),
        rate=float(config["black76_rate"]),
        call_sign=float(config["dealer_sign_call"]),
        put_sign=float(config["dealer_sign_put"]),
    )


def open_interest_cutoff_ns(config: Mapping[str, Any], day: dt.date) -> int:
    """Open interest counts when received before the first second the options are priced
    (the surface window's start): every second's exposure uses only what was known by then,
    and a live session can price from that second on."""
    return utc_ns(
        day, parse_time(str(config["surface_window_start"])), str(config["exchange_timezone"])
    )


def quote_days(quotes: duckdb.DuckDBPyRelation, settings: str) -> list[Partition]:
    """Each day of options_quotes_1s, fingerprinted by its quotes' fingerprint and `settings`:
    a model over the quotes recomputes a day when either changed."""
    return [
        Partition(symbol, day, f"{quotes_fingerprint}:{settings}")
        for symbol, day, quotes_fingerprint in quotes.project("symbol, dt, build_fingerprint")
        .distinct()
        .order("dt, symbol")
        .fetchall()
    ]


def zero_gamma_reader(
    *,
    session: duckdb.DuckDBPyConnection,
    this: object,
    is_incremental: bool,
    config: Mapping[str, Any],
    quotes: duckdb.DuckDBPyRelation,
) -> pa.RecordBatchReader:
    """The zero-gamma level per second of every day of options_quotes_1s; incremental: a day is
    recomputed only when its quotes or the profile settings changed."""
    settings = profile_settings(config)
    todo = partitions_to_build(session, this, is_incremental, quote_days(quotes, str(settings)))

    def batches() -> Iterator[pa.RecordBatch]:
        for partition in todo:
            symbol, day, fingerprint = partition.symbol, partition.day, partition.fingerprint
            table = (
                quotes.filter(
                    f"symbol = '{symbol}' and dt = DATE '{day.isoformat()}' "
                    "and implied_volatility is not null and open_interest is not null"
                )
                .project(", ".join(PROFILE_INPUT_COLUMNS))
                .order("window_start")
                .to_arrow_table()
            )
            yield zero_gamma_batch(symbol, day, table, settings, fingerprint)

    return pa.RecordBatchReader.from_batches(ZERO_GAMMA_SCHEMA, batches())


def gex_by_strike_reader(
    *,
    session: duckdb.DuckDBPyConnection,
    this: object,
    is_incremental: bool,
    config: Mapping[str, Any],
    quotes: duckdb.DuckDBPyRelation,
) -> pa.RecordBatchReader:
    """Dealer-signed gamma exposure by strike and second of every day of options_quotes_1s;
    incremental: a day is recomputed only when its quotes or the dealer signs changed."""
    call_sign, put_sign = float(config["dealer_sign_call"]), float(config["dealer_sign_put"])
    partitions = quote_days(quotes, f"signs={call_sign},{put_sign}")
    todo = partitions_to_build(session, this, is_incremental, partitions)

    def batches() -> Iterator[pa.RecordBatch]:
        for partition in todo:
            symbol, day = partition.symbol, partition.day
            table = (
                quotes.filter(f"symbol = '{symbol}' and dt = DATE '{day.isoformat()}'")
                .project(", ".join(EXPOSURE_INPUT_COLUMNS))
                .to_arrow_table()
            )
            yield gex_by_strike_batch(
                symbol, day, table, call_sign, put_sign, partition.fingerprint
            )

    return pa.RecordBatchReader.from_batches(GEX_BY_STRIKE_SCHEMA, batches())
