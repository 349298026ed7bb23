"""One client's live stream: the live day's frames from a moment, each part of a second sent
as soon as its tables hold it (the heatmap's own tables first, the layers after), the session
payload (levels, episodes, triggers, signals) again whenever it changed or spot left the price
range it gave, and how far the session tables reach whenever that moved. Frames and payloads
are those of replay, marked live."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from functools import partial

import pyarrow as pa
import pyarrow.compute as pc

from hud.blocks import split_seconds
from hud.live import FrameEncoder, LiveFrame
from hud.protocol import FramePart, PayloadKind, StreamMode, encode, message_table
from hud.replay import encode_frame
from hud.requests import Window
from hud.warehouse import Session, Warehouse


def session_payload(warehouse: Warehouse, session: Session) -> tuple[bytes, tuple[float, float]]:
    """The session payload marked live, and the spot range it gives."""
    tables = warehouse.session_tables(session)
    summary = tables["session"].to_pylist()[0]
    message = message_table(
        PayloadKind.SESSION, session.session, session.start, session.end, StreamMode.LIVE
    )
    low, high = summary["spot_low"], summary["spot_high"]
    spot = (float("inf"), float("-inf")) if low is None else (low, high)
    return encode({"message": message, **tables}), spot


def live_frames(
    warehouse: Warehouse, session: Session, part: FramePart, start: dt.datetime, end: dt.datetime
) -> list[LiveFrame]:
    """A part's live frames of the seconds [start, end) from its tables."""
    tables = warehouse.live_window(session, part, start, end)
    frames = []
    for second, frame in split_seconds(tables, start, end):
        book = frame.get("book_snapshot_1s")
        spots = book.column("spot_price").combine_chunks() if book else pa.array([], pa.float64())
        payload = encode_frame(frame, session, second, StreamMode.LIVE)
        frames.append(LiveFrame(second, payload, spots))
    return frames


def frame_encoder(warehouse: Warehouse) -> FrameEncoder:
    """What the live day encodes each part's seconds with as they are published."""
    live = warehouse.live
    assert live is not None

    def encode(part: FramePart, start: dt.datetime, end: dt.datetime) -> list[LiveFrame]:
        session = warehouse.session(live.day)
        return [] if session is None else live_frames(warehouse, session, part, start, end)

    return encode


async def stream_live(
    send: Callable[[bytes], Awaitable[None]],
    send_json: Callable[[dict[str, object]], Awaitable[None]],
    warehouse: Warehouse,
    window: Window,
) -> None:
    live = warehouse.live
    assert live is not None
    session = window.session
    sent = dict.fromkeys(FramePart, window.start)  # per part: every second before it was sent
    session_version = None
    session_until = None
    spot_range = (float("inf"), float("-inf"))
    revision = -1
    gaps_sent = 0
    while True:
        state = await live.changed(revision)
        revision = state.revision
        for after_ns, reason in state.gaps[gaps_sent:]:
            await send_json({"type": "feed-gap", "after": after_ns / 1e9, "reason": reason})
        gaps_sent = len(state.gaps)
        frontiers = {}
        shown = []  # the spots of the frames just sent
        for part in FramePart:  # the heatmap's first
            frontier = min(state.part_until(part) or session.start, session.end)
            frontiers[part] = frontier
            if frontier <= sent[part]:
                continue
            start, end = sent[part], frontier
            # encoded as they were published (a client at the edge), else read now
            frames = live.held_frames(part, start, end) or await asyncio.to_thread(
                live_frames, warehouse, session, part, start, end
            )
            for frame in frames:
                await send(frame.payload)
                shown.append(frame.spots)
            sent[part] = frontier
        live.handed_over(revision)  # the feed's thread may go on
        spot = pa.chunked_array(shown, pa.float64())
        moved = None  # the spot range of the frames just sent
        if len(spot) and spot.null_count < len(spot):
            moved = (pc.min(spot).as_py(), pc.max(spot).as_py())
        stale = moved is not None and (moved[0] < spot_range[0] or moved[1] > spot_range[1])
        if stale or state.session_version != session_version:
            session_version = state.session_version
            payload, spot_range = await asyncio.to_thread(
                live.session_payload,
                session_version,
                moved if stale else None,
                partial(session_payload, warehouse, session),
            )
            await send(payload)
        if state.session_until is not None and state.session_until != session_until:
            session_until = state.session_until
            until = (session_until - dt.datetime(1970, 1, 1)).total_seconds()
            await send_json({"type": "session-until", "until": until})
        if state.ended and all(sent[part] >= frontiers[part] for part in FramePart):
            if state.failure is not None:
                await send_json({"type": "live-failed", "error": state.failure})
            await send_json({"type": "live-end", "session": session.session.isoformat()})
            return
