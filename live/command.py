"""`spymaster live`: the warehouse's engine and SQL layers on a record stream (a day's DBN
files replayed at a chosen speed, or the Databento Live gateway), optionally drawn by the HUD as
they are computed."""

from __future__ import annotations

import datetime as dt
import gc
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
from databento.common.symbology import InstrumentMap

from foundation.exchange_time import day_start_ns
from foundation.lake import Lake
from hud.live import LiveDay
from hud.protocol import FramePart
from hud.serve import LiveServer
from hud.warehouse import FRAME_PARTS, SESSION_SOURCES, frame_sources
from ingest.bronze_tables import SourceSchema
from live.capture import RawCapture
from live.contracts import latest_contract, selected_contract
from live.databento_feed import databento_live
from live.emit import ParquetTables
from live.feed import ClockTick, DbnReplay, FeedEvent, FeedGap, Pace
from live.layers import LiveLayers, open_live_layers
from live.session import FUTURES_MBO, LiveContract, LiveSession
from live.settings import live_settings

NS = 1_000_000_000
# how much market time the SQL layers' stages wait to gather before running again: a second
# when paced or live (the HUD draws each), an hour at full speed (the rows are the same
# whatever the step; each run has a fixed cost)
PACED_STEP_NS = NS
UNPACED_STEP_NS = 3600 * NS
FRAME_SOURCES = frame_sources()
# the session tables (levels, approach episodes) hold the seconds before this model's frontier
EPISODES = "approach_episodes"
# the source of the heatmap's own tables (the book engine's rows)
HEATMAP_SOURCE = "futures_engine"
# paced, the longest the feed waits for the HUD's connections to send a second's heatmap
# frames before the stages start on its layers, per second of market time at 1x (2%)
HAND_OVER_S = 0.02


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


@dataclass(frozen=True)
class LiveRun:
    records: int
    market_seconds: float
    wall_seconds: float
    rows: dict[str, int]
    written: list[Path]
    # paced: from each second's end to its book row (seconds emitted after the clock started)
    close_latency_seconds: np.ndarray
    # paced: from each second's end to the HUD's tables of each part holding it ("heatmap",
    # "layers"), and to the session tables (levels, episodes) reaching it ("session")
    stage_latency_seconds: dict[str, np.ndarray]
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
    return run_feed(
        lake, feed, feed.symbology, day, contract, emit, capture=lake.raw, hud=hud, real_time=True
    )


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
    real_time: bool = False,
) -> LiveRun:
    """Every batch of `feed` through one live session of `symbol` on `day` and the
    warehouse's SQL layers after it; with `capture`, every record received is also written
    there as raw DBN files (even when the session fails: nothing received is lost); with
    `hud`, the HUD draws the day as it is computed. `real_time`: a live source (the SQL layers
    step a second at a time from the start), else paced by `pace` once it starts."""
    step_ns = PACED_STEP_NS if real_time else UNPACED_STEP_NS
    run = _FeedRun(lake, LiveContract(symbol, day), emit, capture, pace, step_ns)
    try:
        if hud is not None:
            run.serve(lake, hud)
        # the objects made so far (modules, the parsed models: ~240,000) live as long as the
        # run: out of the cyclic collector's way, whose full collections went over all of
        # them, stopping every thread for 120-250 ms about every few minutes
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


@dataclass
class _Frontiers:
    """Paced: how far each stage's tables reach, and how late each second got there."""

    until_ns: dict[str, int] = field(default_factory=dict)
    late: dict[str, list[float]] = field(default_factory=dict)

    def moved(self, stage: str, until_ns: int, pace: Pace | None, paced: bool) -> None:
        before = self.until_ns.get(stage)
        self.until_ns[stage] = until_ns
        if before is None or not paced or pace is None or until_ns <= before:
            return
        now = time.perf_counter()
        late = self.late.setdefault(stage, [])
        for end_ns in range(max(before, pace.origin_ns) + NS, until_ns + 1, NS):
            late.append(now - pace.due(end_ns))


class _FeedRun:
    """One live run: the session, its SQL layers, what it writes and, served, the HUD."""

    def __init__(
        self,
        lake: Lake,
        contract: LiveContract,
        emit: Path | None,
        capture: Path | None,
        pace: Pace | None,
        step_ns: int,
    ) -> None:
        self.tables = ParquetTables(emit) if emit is not None else None
        self.raw = RawCapture(capture) if capture is not None else None
        self.pace = pace
        self.rows: dict[str, int] = {}
        self.writing = threading.Lock()  # every stage emits
        self.publishing = threading.Lock()
        self.latencies: list[np.ndarray] = []
        self.frontiers = _Frontiers()
        self.gaps: list[FeedGap] = []
        self.closing = True  # rows the feed's clock closed (not the end of the stream's)
        self.server: LiveServer | None = None
        self.live_day: LiveDay | None = None
        # once the feed has ended: the end of its last second (the live day's frames end there)
        self.end_ns: int | None = None
        self.heatmap_until_ns = 0  # the engine's rows are complete before this
        self.layers: LiveLayers = open_live_layers(lake, contract, self.write, step_ns)
        self.layers.stages.on_progress = self.publish
        if pace is not None and pace.speed is not None:
            pace.before_start = self._start_pace
        try:
            self.session = LiveSession(lake, contract, live_settings(), self.sink)
        except BaseException:
            self.layers.close()
            raise

    def write(self, table: str, batch: pa.RecordBatch | pa.Table) -> None:
        with self.writing:
            self.rows[table] = self.rows.get(table, 0) + batch.num_rows
            if self.tables is not None and batch.num_rows:
                self.tables.write(table, batch)
        if self.live_day is not None and table in FRAME_SOURCES:
            rows = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
            self.live_day.add_frame_rows(table, rows)

    def sink(self, table: str, batch: pa.RecordBatch) -> None:
        self.layers.tables.add(table, batch)
        if table == FUTURES_MBO:
            return  # bronze: the raw files hold it
        self.write(table, batch)
        if table == "engine_book_snapshot_1s" and self._paced():
            self.latencies.append(_late(self.pace, batch))

    def _paced(self) -> bool:
        pace = self.pace
        return pace is not None and pace.speed is not None and pace.started() and self.closing

    def serve(self, lake: Lake, hud: LiveHud) -> None:
        """The HUD over the live day's database, told of every step the SQL layers make."""
        tables = self.layers.tables
        sources = {name: tables.schema(name) for name in FRAME_SOURCES}
        self.live_day = LiveDay(tables.day, tables.catalog_cursor, sources)
        self.publish()
        self.server = LiveServer(lake, self.live_day, hud.host, hud.port)
        hud.started(self.server.url)

    def publish(self, stage: str | None = None, ended: bool = False) -> None:
        """Tell the HUD how far each part of the live day's frames and its session tables
        have got (from any stage's thread, and the feed's)."""
        stages = self.layers.stages
        until = stages.snapshot()
        end = self.end_ns or stages.day_end_ns
        with self.publishing:
            # the heatmap's tables are the engine's rows: complete to the feed's watermark,
            # which the stages hear of after the HUD (see _hand_over)
            until.update(dict.fromkeys(FRAME_PARTS[FramePart.HEATMAP], self.heatmap_until_ns))
            reached = {
                str(part): int(min(end, *(until[name] for name in sources)))
                for part, sources in FRAME_PARTS.items()
            }
            reached["session"] = int(min(end, until[EPISODES]))
            for name, until_ns in reached.items():
                self.frontiers.moved(name, until_ns // NS * NS, self.pace, self._paced())
            if self.live_day is None:
                return
            versions = self.layers.tables.version
            self.live_day.publish(
                {part: _second_of(reached[str(part)]) for part in FRAME_PARTS},
                _second_of(reached["session"]),
                sum(versions.get(name, 0) for name in SESSION_SOURCES),
                ended=ended,
            )

    def _start_pace(self) -> None:
        """The stages, a second at a time from now on, work off what the catch-up left them
        before the paced clock starts: its first seconds are not late for that."""
        self.layers.stages.step_ns = PACED_STEP_NS
        self.layers.stages.advance(self.session.watermarks())
        self.layers.stages.settle()

    def _hand_over(self) -> None:
        """Paced, with the HUD: the heatmap frames just published are sent before the stages
        start on the second's layers (at most `HAND_OVER_S` of wall time per second of market
        time, so a stalled client costs the feed little)."""
        if self.live_day is not None and self._paced():
            self.live_day.wait_until_sent(HAND_OVER_S / self.pace.speed)

    def consume(self, feed: Iterable[FeedEvent], symbology: Mapping[str, InstrumentMap]) -> LiveRun:
        session, stages = self.session, self.layers.stages
        started = time.perf_counter()
        first = last = None
        stages.start()
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
                watermarks = session.watermarks()
                if watermarks[HEATMAP_SOURCE] // NS > self.heatmap_until_ns // NS:
                    self.heatmap_until_ns = watermarks[HEATMAP_SOURCE]
                    self.publish()  # the heatmap's seconds the engine has just closed
                    self._hand_over()
                stages.advance(watermarks)
            self.closing = False
            # the day's frames end with the feed's last second, not with the calendar day
            day_start = stages.day_end_ns - 86_400 * NS
            self.end_ns = day_start if last is None else (last // NS + 1) * NS
            session.finish()
            self.heatmap_until_ns = stages.day_end_ns
            stages.finish()
            self.publish(ended=True)
        except BaseException:
            stages.stop()  # they emit too
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
            stage_latency_seconds={
                name: np.array(late) for name, late in self.frontiers.late.items()
            },
            gaps=self.gaps,
        )

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.layers.close()


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
        ("heatmap tables", run.stage_latency_seconds.get("heatmap", np.zeros(0))),
        ("layer tables", run.stage_latency_seconds.get("layers", np.zeros(0))),
        ("session tables", run.stage_latency_seconds.get("session", np.zeros(0))),
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
