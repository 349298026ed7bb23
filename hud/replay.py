"""One client's replay: a session's per-second frames from a moment at a speed, paced by the
wall clock like a live feed. Frames leave up to `LEAD_SECONDS` of wall time early, so the page
has each second before its clock reaches it; the frames are read (through the block cache) a
chunk of `CHUNK_WALL_SECONDS` of wall time at a time, the next chunk while the current one is
being sent, so each read has a chunk's time to finish."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Awaitable, Callable

import pyarrow as pa

from hud.blocks import split_seconds
from hud.protocol import PayloadKind, StreamMode, encode, message_table
from hud.requests import Window
from hud.warehouse import Session, Warehouse

LEAD_SECONDS = 2.0
CHUNK_WALL_SECONDS = 4.0
MIN_CHUNK_SECONDS = 4


def encode_frame(
    frame: dict[str, pa.Table], session: Session, second: dt.datetime, mode: StreamMode
) -> bytes:
    """One second's frame: its frame tables' rows of that second."""
    message = message_table(
        PayloadKind.FRAME, session.session, second, second + dt.timedelta(seconds=1), mode
    )
    return encode({"message": message, **frame})


def encode_frames(
    tables: dict[str, pa.Table],
    session: Session,
    start: dt.datetime,
    end: dt.datetime,
    mode: StreamMode = StreamMode.REPLAY,
) -> list[tuple[dt.datetime, bytes]]:
    """The frames of the seconds [start, end) of a window's frame tables: each the frame
    tables of one second."""
    return [
        (second, encode_frame(frame, session, second, mode))
        for second, frame in split_seconds(tables, start, end)
    ]


async def replay(
    send: Callable[[bytes], Awaitable[None]],
    warehouse: Warehouse,
    window: Window,
    speed: float,
) -> None:
    """Send every second of `window` as a frame, second s at wall time
    (s - window.start) / speed after the call, less the lead."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    chunk = dt.timedelta(seconds=max(MIN_CHUNK_SECONDS, math.ceil(speed * CHUNK_WALL_SECONDS)))

    def read(start: dt.datetime) -> tuple[dt.datetime, list[tuple[dt.datetime, bytes]]]:
        end = min(start + chunk, window.end)
        tables = warehouse.window(window.session, start, end)
        return end, encode_frames(tables, window.session, start, end)

    pending: asyncio.Future | None = asyncio.ensure_future(asyncio.to_thread(read, window.start))
    try:
        while pending is not None:
            end, frames = await pending
            pending = (
                asyncio.ensure_future(asyncio.to_thread(read, end)) if end < window.end else None
            )
            for second, payload in frames:
                due = began + (second - window.start).total_seconds() / speed - LEAD_SECONDS
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await send(payload)
    finally:
        if pending is not None:
            pending.cancel()
