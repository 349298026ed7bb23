"""One client's live stream: the live day's frames from a moment, each second sent as soon as
every frame table holds it, and the session payload (levels, episodes, triggers, signals)
again whenever it changed or spot left the price range it gave. Frames and payloads are those
of replay, marked live."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from functools import partial

import pyarrow as pa
import pyarrow.compute as pc

from hud.blocks import split_seconds
from hud.live import FrameEncoder, LiveFrame
from hud.protocol import PayloadKind, StreamMode, encode, message_table
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
    warehouse: Warehouse, session: Session, start: dt.datetime, end: dt.datetime
) -> list[LiveFrame]:
    """The live frames of the seconds [start, end) from the frame tables."""
    tables = warehouse.live_window(session, start, end)
    return [
        LiveFrame(
            second,
            encode_frame(frame, session, second, StreamMode.LIVE),
            frame["book_snapshot_1s"].column("spot_price").combine_chunks(),
        )
        for second, frame in split_seconds(tables, start, end)
    ]


def frame_encoder(warehouse: Warehouse) -> FrameEncoder:
    """What the live day encodes each second with as it is published."""
    live = warehouse.live
    assert live is not None

    def encode(start: dt.datetime, end: dt.datetime) -> list[LiveFrame]:
        session = warehouse.session(live.day)
        return [] if session is None else live_frames(warehouse, session, start, end)

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
    sent = window.start  # every second before this one has been sent
    session_version = None
    spot_range = (float("inf"), float("-inf"))
    revision = -1
    gaps_sent = 0
    while True:
        state = await live.changed(revision)
        revision = state.revision
        for after_ns, reason in state.gaps[gaps_sent:]:
            await send_json({"type": "feed-gap", "after": after_ns / 1e9, "reason": reason})
        gaps_sent = len(state.gaps)
        frontier = min(state.frames_until or session.start, session.end)
        frames: list[LiveFrame] = []
        if frontier > sent:
            start, end = sent, frontier

            # encoded as they were published (a client at the edge), else read now
            frames = live.held_frames(start, end) or await asyncio.to_thread(
                live_frames, warehouse, session, start, end
            )
            for frame in frames:
                await send(frame.payload)
            sent = frontier
        live.handed_over(revision)  # the feed's thread may go on
        shown = None  # the spot range of the frames just sent
        spot = pa.chunked_array([frame.spots for frame in frames], pa.float64())
        if len(spot) and spot.null_count < len(spot):
            shown = (pc.min(spot).as_py(), pc.max(spot).as_py())
        stale = shown is not None and (shown[0] < spot_range[0] or shown[1] > spot_range[1])
        if stale or state.session_version != session_version:
            session_version = state.session_version
            payload, spot_range = await asyncio.to_thread(
                live.session_payload,
                session_version,
                shown if stale else None,
                partial(session_payload, warehouse, session),
            )
            await send(payload)
        if state.ended and sent >= frontier:
            if state.failure is not None:
                await send_json({"type": "live-failed", "error": state.failure})
            await send_json({"type": "live-end", "session": session.session.isoformat()})
            return
