"""The day a live feed is computing, as the HUD reads it. The feed's thread publishes how far
every frame table has got and when the session tables changed; each WebSocket awaits the next
change. The rows themselves are read with the same queries as replay, on cursors of the live
feed's DuckDB (its `spymaster` catalog: the warehouse's earlier sessions and the live day)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class LiveState:
    revision: int
    # every frame table holds the seconds before this one (naive UTC); None: none yet
    frames_until: dt.datetime | None
    # changes whenever a table of the session payload (levels, episodes, triggers) changed
    session_version: int
    ended: bool
    # where the feed lost records: (after this ts_recv in ns, why); books invalid until the
    # next snapshot
    gaps: tuple[tuple[int, str], ...] = ()
    # why the feed failed (then it has ended): the day so far is still served
    failure: str | None = None


class LiveDay:
    def __init__(self, day: dt.date, cursor: Callable[[], duckdb.DuckDBPyConnection]) -> None:
        self.day = day
        self.cursor = cursor
        self._state = LiveState(0, None, 0, False)
        self._lock = threading.Lock()
        self._waiting: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def state(self) -> LiveState:
        return self._state

    def publish(
        self, frames_until: dt.datetime | None, session_version: int, ended: bool = False
    ) -> None:
        """From the feed's threads: wakes every waiting connection if anything changed (what
        the frames and the session tables have reached only moves forward: the SQL layers'
        two threads may tell it in either order)."""
        self._change(
            lambda now: dataclasses.replace(
                now,
                frames_until=max(frames_until, now.frames_until or frames_until)
                if frames_until is not None
                else now.frames_until,
                session_version=max(session_version, now.session_version),
                ended=ended or now.ended,
            )
        )

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
            self._state = dataclasses.replace(state, revision=self._state.revision + 1)
            waiting = list(self._waiting)
        for loop, event in waiting:
            loop.call_soon_threadsafe(event.set)

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
