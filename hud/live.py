"""The day a live feed is computing, as the HUD reads it. The live SQL layers' stages publish
how far each part of the frames has got (the heatmap's own tables, then the layers derived from
them), how far the session tables (levels, episodes) are computed, and when those changed;
each WebSocket awaits the next change. The rows themselves are read with the same queries as
replay, on cursors of the live feed's DuckDB (its `spymaster` catalog: the warehouse's earlier
sessions and the live day); the frame tables' rows of the last `RECENT_SECONDS` are also held
as the stages made them, and each second a part completes is encoded once, as it is
published, for every client following the live edge."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from hud.protocol import FramePart

# how long the frame tables' newest rows are held in memory: a client following the live
# edge reads only these; one further behind reads the feed's database
RECENT_SECONDS = 120
NS = 1_000_000_000


@dataclass(frozen=True)
class LiveState:
    revision: int
    # per frame part, every table of it holds the seconds before this one (naive UTC)
    frames_until: Mapping[FramePart, dt.datetime] = field(default_factory=dict)
    # the session tables (levels, approach episodes) hold the seconds before this one
    session_until: dt.datetime | None = None
    # changes whenever a table of the session payload (levels, episodes, triggers) changed
    session_version: int = 0
    ended: bool = False
    # where the feed lost records: (after this ts_recv in ns, why); books invalid until the
    # next snapshot
    gaps: tuple[tuple[int, str], ...] = ()
    # why the feed failed (then it has ended): the day so far is still served
    failure: str | None = None

    def part_until(self, part: FramePart) -> dt.datetime | None:
        return self.frames_until.get(part)

    @property
    def complete_until(self) -> dt.datetime | None:
        """Every frame table holds the seconds before this one."""
        if len(self.frames_until) < len(FramePart):
            return None
        return min(self.frames_until.values())


@dataclass(frozen=True)
class LiveFrame:
    """One second's frame part as the stream sends it, with the spot prices it holds."""

    second: dt.datetime
    payload: bytes
    spots: pa.Array


# the frames of a part for the seconds [start, end) from the frame tables (hud.live_stream)
FrameEncoder = Callable[[FramePart, dt.datetime, dt.datetime], list[LiveFrame]]
# the live session's payload now, and the spot range it gives (see hud.live_stream)
SessionPayloadBuilder = Callable[[], tuple[bytes, tuple[float, float]]]


@dataclass(frozen=True)
class _Rows:
    first_ns: int  # window_start of its first and last row
    last_ns: int
    rows: pa.Table

    def overlaps(self, start_ns: int, end_ns: int) -> bool:
        return self.last_ns >= start_ns and self.first_ns < end_ns


class LiveDay:
    def __init__(
        self,
        day: dt.date,
        cursor: Callable[[], duckdb.DuckDBPyConnection],
        frame_sources: Mapping[str, pa.Schema],
    ) -> None:
        """`frame_sources`: the tables the frames are read from, by name, with their
        schemas."""
        self.day = day
        self.cursor = cursor
        self._state = LiveState(0)
        self._lock = threading.Lock()
        self._waiting: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._schemas = dict(frame_sources)
        self._recent: dict[str, list[_Rows]] = {name: [] for name in frame_sources}
        # the recent rows hold every row of the seconds from this one (ns); they start with
        # the day: the feed makes every frame row of the day after this is created
        self._recent_from_ns = -(2**63)
        # set by the HUD: each part's seconds are encoded as they are published
        self.encoder: FrameEncoder | None = None
        self._frames: dict[tuple[FramePart, int], LiveFrame] = {}  # by part and second (ns)
        self._publishing = threading.Lock()  # the stages publish from their own threads
        # the session payload last built, shared by every client: (version, bytes, the spot
        # range it gives); built under the lock, so clients asking at once build it once
        self._session_payload: tuple[int, bytes, tuple[float, float]] | None = None
        self._building_session_payload = threading.Lock()
        # the connections woken by the last change that have not yet sent what it brought
        self._handing_over = threading.Condition()
        self._unsent = 0
        self._unsent_revision = 0

    def add_frame_rows(self, table: str, rows: pa.Table) -> None:
        """New rows of a frame source, as the stages made them (inserted in the live day's
        database first, published after)."""
        if not rows.num_rows:
            return
        first, last = pc.min_max(rows.column("window_start")).values()
        held = _Rows(epoch_ns(first.as_py()), epoch_ns(last.as_py()), rows)
        with self._lock:
            self._recent[table].append(held)

    def recent_rows(
        self, start: dt.datetime, end: dt.datetime, tables: frozenset[str]
    ) -> tuple[dt.datetime, dict[str, pa.Table]]:
        """The first second from `start` whose rows are all still held, and the rows held
        from it to `end` (with others) of each of `tables`; the seconds before it are read
        from the live day's database."""
        start_ns, end_ns = epoch_ns(start), epoch_ns(end)
        with self._lock:
            held_ns = min(max(start_ns, self._recent_from_ns), end_ns)
            parts = {
                name: [held.rows for held in self._recent[name] if held.overlaps(held_ns, end_ns)]
                for name in tables
            }
        held_from = EPOCH + dt.timedelta(microseconds=held_ns // 1000)
        return held_from, {
            name: pa.concat_tables(found) if found else self._schemas[name].empty_table()
            for name, found in parts.items()
        }

    def _forget_before(self, complete_until: dt.datetime) -> None:
        """Drop the rows wholly before the last RECENT_SECONDS of complete seconds (under the
        lock): a reader takes the seconds before what is held from the database."""
        horizon = epoch_ns(complete_until) - RECENT_SECONDS * NS
        if horizon <= self._recent_from_ns:
            return
        self._recent_from_ns = horizon
        for name, rows in self._recent.items():
            self._recent[name] = [held for held in rows if held.last_ns >= horizon]
        self._frames = {key: f for key, f in self._frames.items() if key[1] >= horizon}

    def held_frames(
        self, part: FramePart, start: dt.datetime, end: dt.datetime
    ) -> list[LiveFrame] | None:
        """The encoded frames of a part for the seconds [start, end), or None unless all are
        held."""
        with self._lock:
            frames = [
                self._frames.get((part, second))
                for second in range(epoch_ns(start), epoch_ns(end), NS)
            ]
        return None if any(frame is None for frame in frames) else frames

    def _encode(self, part: FramePart, until: dt.datetime) -> None:
        """A part's seconds newly complete, encoded once for every client (not after a jump
        longer than the rows held: a feed catching up)."""
        before = self._state.part_until(part)
        if self.encoder is None or before is None or until <= before:
            return
        if until - before > dt.timedelta(seconds=RECENT_SECONDS):
            return
        frames = self.encoder(part, before, until)
        with self._lock:
            for frame in frames:
                self._frames[(part, epoch_ns(frame.second))] = frame

    def state(self) -> LiveState:
        return self._state

    def session_payload(
        self, version: int, spot: tuple[float, float] | None, build: SessionPayloadBuilder
    ) -> tuple[bytes, tuple[float, float]]:
        """The session payload as of `version` (of the session tables) or later, with a spot
        range holding `spot` (low, high: the prices a client's frames have just shown; None:
        any), and the range it gives. Built by `build` only when the one held is older or its
        range too narrow: every client following the live day shares one build per change."""
        with self._building_session_payload:
            held = self._session_payload
            if (
                held is None
                or held[0] < version
                or (spot is not None and not held[2][0] <= spot[0] <= spot[1] <= held[2][1])
            ):
                payload, spot_range = build()
                held = self._session_payload = (version, payload, spot_range)
            return held[1], held[2]

    def publish(
        self,
        frames_until: Mapping[FramePart, dt.datetime],
        session_until: dt.datetime,
        session_version: int,
        ended: bool = False,
    ) -> None:
        """From the stages' threads: wakes every waiting connection if anything changed (what
        each part and the session tables have reached only moves forward: stages may tell it
        in either order)."""
        with self._publishing:
            for part, until in frames_until.items():
                self._encode(part, until)

            def update(now: LiveState) -> LiveState:
                reached = {
                    part: max(until, now.frames_until.get(part, until))
                    for part, until in frames_until.items()
                }
                return dataclasses.replace(
                    now,
                    frames_until=reached,
                    session_until=max(session_until, now.session_until or session_until),
                    session_version=max(session_version, now.session_version),
                    ended=ended or now.ended,
                )

            self._change(update)

    def fail(self, failure: str) -> None:
        """The feed failed; nothing more will come."""
        self._change(lambda now: dataclasses.replace(now, ended=True, failure=failure))

    def lost_records(self, after_ns: int, reason: str) -> None:
        """The stream lost records after `after_ns`."""
        self._change(lambda now: dataclasses.replace(now, gaps=(*now.gaps, (after_ns, reason))))

    def _change(self, update: Callable[[LiveState], LiveState]) -> None:
        with self._lock:
            state = update(self._state)
            if state == self._state:
                return
            if state.complete_until is not None:
                self._forget_before(state.complete_until)
            self._state = dataclasses.replace(state, revision=self._state.revision + 1)
            waiting = list(self._waiting)
            with self._handing_over:
                self._unsent, self._unsent_revision = len(waiting), self._state.revision
        for loop, event in waiting:
            loop.call_soon_threadsafe(event.set)

    def wait_until_sent(self, timeout_s: float) -> None:
        """Until the connections the last change woke have sent what it brought (at most
        `timeout_s`): the feed's thread waits here before the SQL layers' stages take both
        cores, so a second's heatmap frame is not left waiting behind them."""
        with self._handing_over:
            self._handing_over.wait_for(lambda: self._unsent <= 0, timeout_s)

    def handed_over(self, revision: int) -> None:
        """A connection has sent what the state of `revision` brought."""
        with self._handing_over:
            if revision >= self._unsent_revision and self._unsent > 0:
                self._unsent -= 1
                if not self._unsent:
                    self._handing_over.notify_all()

    async def changed(self, revision: int) -> LiveState:
        """The state once its revision is past `revision`."""
        event = asyncio.Event()
        key = (asyncio.get_running_loop(), event)
        with self._lock:
            self._waiting.add(key)
        try:
            while self._state.revision <= revision:
                await event.wait()
                event.clear()
            return self._state
        finally:
            with self._lock:
                self._waiting.discard(key)


def epoch_ns(moment: dt.datetime) -> int:
    """A naive UTC moment in ns since the epoch."""
    return (moment - EPOCH) // dt.timedelta(microseconds=1) * 1000


EPOCH = dt.datetime(1970, 1, 1)
