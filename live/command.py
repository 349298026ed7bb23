"""`spymaster live`: run the engine on a record stream (today: a day's DBN files replayed)."""

from __future__ import annotations

import datetime as dt
import gc
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pyarrow as pa
import yaml
from databento.common.symbology import InstrumentMap

from book_engine.surfaces import SurfaceSettings
from foundation.exchange_time import day_start_ns, parse_time, utc_ns
from foundation.lake import Lake
from foundation.project import PROJECT_ROOT, project_vars
from gex.options_surface import OptionsSettings, ProfileSettings
from hud.live import LiveDay
from hud.serve import LiveServer
from hud.warehouse import SESSION_SOURCES, frame_sources
from ingest.bronze_tables import SourceSchema
from live.capture import RawCapture
from live.databento_feed import databento_live
from live.emit import ParquetTables
from live.feed import ClockTick, DbnReplay, FeedEvent, FeedGap, Pace
from live.session import FUTURES_MBO, LiveContract, LiveError, LiveSession, LiveSettings
from live.signals import LiveSignals, day_indexes
from live.sql_layers import DATABASE, NS, LiveWarehouse, compile_models
from retrieval.warehouse import evaluation_settings, retrieval_settings

ENGINE_MODELS_YML = PROJECT_ROOT / "python_models" / "silver" / "_engine.yml"
RETRIEVAL_MODELS_YML = PROJECT_ROOT / "python_models" / "gold" / "_retrieval.yml"
# how often the SQL layers catch up, in market time: when paced, the HUD's frame tables every
# second and the rest every 5 seconds (the feature windows' period); every hour at full speed
# (the rows are the same whatever the step; each run has a fixed cost: a tiny day at full speed
# took 74 s with 15-minute steps, 43 s with hourly ones)
PACED_STEP_NS = NS
PACED_REST_STEP_NS = 5 * NS
UNPACED_STEP_NS = 3600 * NS
FRAME_SOURCES = frame_sources()
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
    """The contract with the most volume in the warehouse's latest session before `day` (its
    selected contract, the day included or not): what a live session trades before the
    day's own volume can select. After a roll, that is the new contract from the session
    after the volume moved to it (the latest included day lags by the two days the selection
    trims on each side of a roll). A contract that expires before the day's session window
    opens is an error here (a warehouse not built since the roll), not a day without
    records."""
    symbol, session, expiration = _selection(
        lake,
        day,
        "select selection.selected_symbol, selection.dt, ("
        "    select max(definitions.expiration) from bronze.futures_definitions as definitions"
        "    where definitions.raw_symbol = selection.selected_symbol"
        ") from silver.contract_day_selection as selection"
        " where selection.dt < ? and selection.selected_symbol is not null"
        " order by selection.dt desc limit 1",
        "no session before it in the warehouse's contract selection",
    )
    variables = project_vars()
    timezone = str(variables["exchange_timezone"])
    opens = utc_ns(day, parse_time(str(variables["session_window_start"])), timezone)
    if expiration is not None and expiration <= opens:
        expired = dt.datetime.fromtimestamp(expiration / NS, ZoneInfo(timezone))
        raise LiveError(
            f"{day}: the warehouse's latest session before it ({session}) traded {symbol}, "
            f"which has expired by the day's session window ({expired:%Y-%m-%d %H:%M} "
            f"{timezone}): land and build the sessions since (or pass --symbol)"
        )
    return str(symbol)


def selected_contract(lake: Lake, day: dt.date) -> str:
    """The warehouse's selected contract for the day."""
    (symbol,) = _selection(
        lake,
        day,
        "select selected_symbol from silver.contract_day_selection where dt = ? and is_included",
        "not an included day of the warehouse's contract selection",
    )
    return str(symbol)


def _selection(lake: Lake, day: dt.date, sql: str, missing: str) -> tuple[Any, ...]:
    if not lake.duckdb_path.exists():
        raise LiveError(
            f"{lake.duckdb_path}: no warehouse to take the day's contract from (pass --symbol)"
        )
    connection = duckdb.connect(str(lake.duckdb_path), read_only=True)
    try:
        row = connection.execute(sql, [day]).fetchone()
    finally:
        connection.close()
    if row is None:
        raise LiveError(f"{day}: {missing} (pass --symbol)")
    return row


@dataclass(frozen=True)
class LiveRun:
    records: int
    market_seconds: float
    wall_seconds: float
    rows: dict[str, int]
    written: list[Path]
    # paced: from each second's end to its book row (seconds emitted after the clock started)
    close_latency_seconds: np.ndarray
    # paced: from each second's end to every frame table holding it (what the HUD then reads)
    frame_latency_seconds: np.ndarray
    # paced, with the HUD: from each second's end to its frame encoded, and to the feed's
    # thread going on (the connections it woke have sent the frame, or the bound passed)
    encoded_latency_seconds: np.ndarray
    handed_over_latency_seconds: np.ndarray
    # where the stream lost records (the books were invalid until the next snapshot)
    gaps: list[FeedGap]


@dataclass(frozen=True)
class LiveHud:
    """`--serve`: the HUD of the live day on host:port while the feed runs. `started` gets
    its URL; `after_feed`, when given, runs once the feed has ended, while the HUD still
    serves the day (the command waits there for Ctrl-C); `after_failure` likewise once the
    feed failed (the page shows why; the error is raised after it)."""

    host: str
    port: int
    started: Callable[[str], None]
    after_feed: Callable[[LiveRun], None] | None = None
    after_failure: Callable[[Exception], None] | None = None


def run_replay(
    lake: Lake,
    paths: Sequence[Path],
    speed: float | None,
    emit: Path | None,
    day: dt.date | None,
    symbol: str | None,
    start_ns: int = 0,
    stop_ns: int | None = None,
    hud: LiveHud | None = None,
) -> LiveRun:
    feed = DbnReplay(paths, speed, day, start_ns, stop_ns)
    day = day or feed.day()
    contract = symbol or selected_contract(lake, day)
    return run_feed(lake, feed, feed.symbology, day, contract, emit, pace=feed.pace, hud=hud)


def run_databento(
    lake: Lake,
    emit: Path | None,
    day: dt.date | None,
    symbol: str | None,
    stop_ns: int | None = None,
    hud: LiveHud | None = None,
) -> LiveRun:
    """Today's session from the Databento Live gateway until `stop_ns` (default: the end of
    the day), through dropped connections (each a gap, then a new subscription with the
    snapshot)."""
    day = day or dt.datetime.now(dt.UTC).date()
    feed = databento_live(day, stop_ns or day_start_ns(day + dt.timedelta(days=1)))
    contract = symbol or latest_contract(lake, day)
    return run_feed(lake, feed, feed.symbology, day, contract, emit, capture=lake.raw, hud=hud)


def live_settings() -> LiveSettings:
    options_config = model_config(
        ENGINE_MODELS_YML, "engine_options_quote_partitions", "options_settings"
    )
    return LiveSettings(
        surfaces=SurfaceSettings.from_config(
            model_config(ENGINE_MODELS_YML, "engine_book_snapshot_1s", "surface_settings")
        ),
        options=OptionsSettings.from_config(options_config),
        profile=ProfileSettings.from_config(options_config),
        options_config=options_config,
    )


def contract_choice(warehouse: LiveWarehouse, contract: LiveContract) -> pa.Table:
    """The day's contract_day_selection row live: the contract chosen before the day's volume
    is known, included; the volume columns stay unknown."""
    schema = warehouse.table("contract_day_selection").schema
    row = dict.fromkeys(schema.names)
    row.update(
        dt=contract.day, selected_symbol=contract.symbol, is_low_dominance=False, is_included=True
    )
    return pa.Table.from_pylist([row], schema=schema)


def live_signals(warehouse: LiveWarehouse, lake: Lake, day: dt.date) -> LiveSignals:
    history = warehouse.connection.cursor()
    history.execute("use warehouse")
    try:
        indexes = day_indexes(history, lake.indexes, day, print)
    finally:
        history.close()
    return LiveSignals(
        indexes,
        day,
        retrieval_settings(
            model_config(RETRIEVAL_MODELS_YML, "retrieval_trigger_signals", "retrieval_settings")
        ),
        evaluation_settings(
            model_config(RETRIEVAL_MODELS_YML, "retrieval_trigger_signals", "evaluation_settings")
        ),
    )


def open_live_warehouse(
    lake: Lake, contract: LiveContract, emit: Callable[[str, pa.Table], None]
) -> LiveWarehouse:
    """The SQL layers of the day over the warehouse's earlier sessions, with what is known
    before the session: the contract, calibration, the neighbours' indexes."""
    if not lake.duckdb_path.exists():
        raise LiveError(
            f"{lake.duckdb_path}: no warehouse; live reads its earlier sessions (calibration, "
            "neighbours): build it with `spymaster build` first"
        )
    warehouse = LiveWarehouse(
        lake.duckdb_path,
        contract.day,
        compile_models(),
        emit,
        UNPACED_STEP_NS,
        first=FRAME_SOURCES,
    )
    warehouse.computed["retrieval_indexes"] = live_signals(warehouse, lake, contract.day)
    warehouse.before_session({"contract_choice": contract_choice(warehouse, contract)})
    return warehouse


def run_feed(
    lake: Lake,
    feed: Iterable[FeedEvent],
    symbology: Mapping[str, InstrumentMap],
    day: dt.date,
    symbol: str,
    emit: Path | None,
    capture: Path | None = None,
    pace: Pace | None = None,
    hud: LiveHud | None = None,
) -> LiveRun:
    """Every batch of `feed` through one live session of `symbol` on `day` and the
    warehouse's SQL layers after it; with `capture`, every record received is also written
    there as raw DBN files (even when the session fails: nothing received is lost); with
    `hud`, the HUD draws the day as it is computed."""
    run = _FeedRun(lake, LiveContract(symbol, day), emit, capture, pace)
    try:
        if hud is not None:
            run.serve(lake, hud)
        # the objects made so far (modules, the parsed models, the warehouse's tables: ~240,000)
        # live as long as the run: out of the cyclic collector's way, whose full collections
        # went over all of them, stopping every thread for 120-250 ms about every few minutes
        gc.collect()
        gc.freeze()
        try:
            result = run.consume(feed, symbology)
        except Exception as error:  # the HUD keeps serving the day so far, and says why
            if run.live_day is not None:
                run.live_day.fail(str(error))
            if hud is not None and hud.after_failure is not None:
                hud.after_failure(error)
            raise
        if hud is not None and hud.after_feed is not None:
            hud.after_feed(result)
        return result
    finally:
        run.close()
        gc.unfreeze()  # collected as usual again (at exit too)


# paced, after publishing new frames the feed's thread waits for the connections it woke to
# send them, at most this long per second of market time at 1x (divided by the speed: a
# stalled client costs the feed at most 2% of its pace): otherwise a frame waited for the GIL
# behind the next records' work (up to the 5 ms switch interval, more than once: p99 10-15 ms
# more to the page)
HAND_OVER_S = 0.02


class _FeedRun:
    """One live run: the session, its SQL layers, what it writes and, served, the HUD."""

    def __init__(
        self,
        lake: Lake,
        contract: LiveContract,
        emit: Path | None,
        capture: Path | None,
        pace: Pace | None,
    ) -> None:
        self.tables = ParquetTables(emit) if emit is not None else None
        self.raw = RawCapture(capture) if capture is not None else None
        self.pace = pace
        self.rows: dict[str, int] = {}
        self.writing = threading.Lock()
        self.latencies: list[np.ndarray] = []
        self.frame_latencies: list[float] = []
        self.encoded_latencies: list[float] = []
        self.handed_over_latencies: list[float] = []
        self.frames_until_ns: int | None = None  # the frame tables' frontier last published
        self.publishing = threading.Lock()  # both SQL threads publish
        self.gaps: list[FeedGap] = []
        self.closing = True  # rows the feed's clock closed (not the end of the stream's)
        self.server: LiveServer | None = None
        self.live_day: LiveDay | None = None
        # once the feed has ended: the end of its last second (the live day's frames end there)
        self.end_ns: int | None = None
        self.warehouse = open_live_warehouse(lake, contract, self.write)
        self.warehouse.on_progress = self.publish
        try:
            self.session = LiveSession(lake, contract, live_settings(), self.sink)
        except BaseException:
            self.warehouse.close()
            raise

    def write(self, table: str, batch: pa.RecordBatch | pa.Table) -> None:
        with self.writing:  # the SQL layers' rest thread emits too
            self.rows[table] = self.rows.get(table, 0) + batch.num_rows
            if self.tables is not None and batch.num_rows:
                self.tables.write(table, batch)
        if self.live_day is not None and table in FRAME_SOURCES:
            rows = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
            self.live_day.add_frame_rows(table, rows)

    def sink(self, table: str, batch: pa.RecordBatch) -> None:
        self.warehouse.insert(table, batch)
        if table == FUTURES_MBO:
            return  # bronze: the raw files hold it
        self.write(table, batch)
        pace = self.pace
        paced = pace is not None and pace.started() and self.closing
        if table == "engine_book_snapshot_1s" and paced:
            self.latencies.append(_late(pace, batch))

    def serve(self, lake: Lake, hud: LiveHud) -> None:
        """The HUD over the live day's database, told of every step the SQL layers make."""
        warehouse = self.warehouse
        root = warehouse.connection.cursor()  # the HUD's cursors come from their own connection

        def cursor() -> duckdb.DuckDBPyConnection:
            hud_cursor = root.cursor()
            hud_cursor.execute(f"use {DATABASE}")
            return hud_cursor

        sources = {name: warehouse.table(name).schema for name in FRAME_SOURCES}
        self.live_day = LiveDay(warehouse.day, cursor, sources)
        self.publish()
        self.server = LiveServer(lake, self.live_day, hud.host, hud.port)
        hud.started(self.server.url)

    def publish(self, ended: bool = False) -> None:
        """Tell the HUD how far the live day's frames and session tables are; paced, new
        frames are sent before the feed's thread goes on (see `HAND_OVER_S`)."""
        with self.publishing:
            frames_until, in_database_until, session_version = published(
                self.warehouse, self.end_ns
            )
            due = self._frames_done(frames_until)
            if self.live_day is None:
                return
            self.live_day.publish(frames_until, in_database_until, session_version, ended=ended)
        if not due:  # seconds due: paced
            return
        encoded = time.perf_counter()
        self.live_day.wait_until_sent(HAND_OVER_S / self.pace.speed)
        handed_over = time.perf_counter()
        self.encoded_latencies += [encoded - moment for moment in due]
        self.handed_over_latencies += [handed_over - moment for moment in due]

    def _frames_done(self, frames_until: dt.datetime) -> list[float]:
        """Paced: how late each second the frame tables now hold completed them; when each
        of those seconds ended on the paced clock (none unpaced, or once the feed ended)."""
        until_ns = int(frames_until.replace(tzinfo=dt.UTC).timestamp()) * NS
        before, self.frames_until_ns = self.frames_until_ns, until_ns
        pace = self.pace
        if before is None or not (pace is not None and pace.started() and self.closing):
            return []
        now = time.perf_counter()
        due = [
            pace.due(end_ns) for end_ns in range(max(before, pace.origin_ns) + NS, until_ns + 1, NS)
        ]
        self.frame_latencies += [now - moment for moment in due]
        return due

    def consume(self, feed: Iterable[FeedEvent], symbology: Mapping[str, InstrumentMap]) -> LiveRun:
        session, warehouse, pace = self.session, self.warehouse, self.pace
        started = time.perf_counter()
        first = last = None
        try:
            for batch in feed:
                if isinstance(batch, ClockTick):
                    session.tick(batch.market_ns)
                elif isinstance(batch, FeedGap):
                    session.lose_records(batch.after_ns)
                    self.gaps.append(batch)
                    if self.live_day is not None:
                        self.live_day.lost_records(batch.after_ns, batch.reason)
                else:
                    if batch.schema is not SourceSchema.DEFINITION and len(batch.records):
                        first = int(batch.records["ts_recv"][0]) if first is None else first
                        last = int(batch.records["ts_recv"][-1])
                    if self.raw is not None:
                        self.raw.add(batch, symbology[batch.source])
                    session.apply(batch, symbology[batch.source])
                if pace is not None and pace.speed is not None and pace.started():
                    warehouse.step_ns = PACED_STEP_NS
                    warehouse.rest_step_ns = PACED_REST_STEP_NS
                warehouse.advance(session.watermarks())
            self.closing = False
            # the day's frames end with the feed's last second, not with the calendar day
            self.end_ns = warehouse.day_start_ns if last is None else (last // NS + 1) * NS
            session.finish()
            ends = dict.fromkeys(session.watermarks(), warehouse.day_end_ns)
            warehouse.advance(ends, final=True)
            self.publish(ended=True)
        except BaseException:
            warehouse.wait_for_rest()  # it emits too
            if self.tables is not None:
                self.tables.abort()
            raise
        finally:
            captured = self.raw.close(_merged(symbology)) if self.raw is not None else []
        written = (self.tables.close() if self.tables is not None else []) + captured
        return LiveRun(
            records=session.records,
            market_seconds=0.0 if first is None else (last - first) / 1e9,
            wall_seconds=time.perf_counter() - started,
            rows=self.rows,
            written=written,
            close_latency_seconds=(
                np.concatenate(self.latencies) if self.latencies else np.zeros(0)
            ),
            frame_latency_seconds=np.array(self.frame_latencies),
            encoded_latency_seconds=np.array(self.encoded_latencies),
            handed_over_latency_seconds=np.array(self.handed_over_latencies),
            gaps=self.gaps,
        )

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.warehouse.close()


def published(
    warehouse: LiveWarehouse, end_ns: int | None = None
) -> tuple[dt.datetime, dt.datetime, int]:
    """What the HUD may show of the live day: the second every frame table has reached (at
    most `end_ns`), the second before which every frame table's rows are in the live day's
    database (its reader may drop the rows it holds before it), and a version of the session
    payload's tables."""
    end = end_ns or warehouse.day_end_ns
    frames_until, in_database_until = (
        _second_of(min(end, *(until[name] for name in FRAME_SOURCES)))
        for until in (warehouse.until, warehouse.inserted_until)
    )
    return (
        frames_until,
        in_database_until,
        sum(warehouse.version.get(name, 0) for name in SESSION_SOURCES),
    )


def _second_of(ns: float) -> dt.datetime:
    """The second starting at or before `ns`, naive UTC."""
    return dt.datetime.fromtimestamp(int(ns) // NS, dt.UTC).replace(tzinfo=None)


def _late(pace: Pace, book_rows: pa.RecordBatch) -> np.ndarray:
    """From the moment each second ended (paced market time) to its row, in seconds."""
    ends = book_rows.column("window_start").cast(pa.int64()).to_numpy() * 1000 + 10**9
    now = time.perf_counter()
    ends = ends[ends > pace.origin_ns]  # seconds the paced clock saw end
    late = np.array([now - pace.due(int(end)) for end in ends])
    return late[late >= 0]


def _utc(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / NS, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


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
    for what, late in (
        ("book row", run.close_latency_seconds),
        ("frame tables", run.frame_latency_seconds),
        ("frame encoded for the HUD", run.encoded_latency_seconds),
        ("frame sent to the HUD's clients", run.handed_over_latency_seconds),
    ):
        if len(late):
            p50, p99 = np.percentile(late * 1000, [50, 99])
            lines.append(
                f"  each second's {what} {p50:,.1f} ms after the second ended (median), p99 "
                f"{p99:,.1f} ms, max {late.max() * 1000:,.1f} ms, over {len(late):,} seconds"
            )
    lines += [
        f"  records lost after {_utc(gap.after_ns)}: {gap.reason}; books invalid until the "
        "next snapshot"
        for gap in run.gaps
    ]
    lines += [f"  {table:<28} {count:>12,} rows" for table, count in sorted(run.rows.items())]
    lines += [f"  wrote {path}" for path in run.written]
    return "\n".join(lines)
