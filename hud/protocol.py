"""The HUD's wire format (docs/hud.md): Arrow IPC throughout.

Every HTTP response body and every binary WebSocket frame is a sequence of Arrow IPC streams,
one per table, back to back. Each stream's schema metadata names its table under
`spymaster.table`; tables that come from the warehouse keep its table and column names. The
first stream is always `message`: one row saying what the payload is (its kind, session,
the seconds it covers and whether it is replay or live), so replay and live frames share one
shape. Errors are JSON (`{"error": ..., "parameter": ...}`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from enum import StrEnum

import pyarrow as pa

TABLE_KEY = b"spymaster.table"
MESSAGE_TABLE = "message"


class PayloadKind(StrEnum):
    """What a payload holds (the `kind` column of its `message` table)."""

    SESSIONS = "sessions"
    SESSION = "session"
    WINDOW = "window"
    FRAME = "frame"
    EVIDENCE = "evidence"


class FramePart(StrEnum):
    """Which frame tables a frame holds: replay sends both parts of a second in one frame;
    live sends the heatmap's own tables as soon as the second closes and the layers derived
    from them (and from the options) in a later frame of the same second."""

    HEATMAP = "heatmap"
    LAYERS = "layers"


class StreamMode(StrEnum):
    REPLAY = "replay"
    LIVE = "live"


MESSAGE_SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("mode", pa.string()),
        ("session", pa.date32()),
        ("start", pa.timestamp("ms")),
        ("end", pa.timestamp("ms")),
    ]
)


def message_table(
    kind: PayloadKind,
    session: dt.date | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    mode: StreamMode = StreamMode.REPLAY,
) -> pa.Table:
    """The one-row `message` table that opens every payload (times are naive UTC)."""
    return pa.table(
        {
            "kind": [str(kind)],
            "mode": [str(mode)],
            "session": [session],
            "start": [start],
            "end": [end],
        },
        schema=MESSAGE_SCHEMA,
    )


def encode(tables: Mapping[str, pa.Table]) -> bytes:
    """Tables as back-to-back Arrow IPC streams, each named in its schema metadata."""
    sink = pa.BufferOutputStream()
    for name, table in tables.items():
        named = table.replace_schema_metadata({TABLE_KEY: name.encode()})
        # an empty table still sends one (empty) batch: apache-arrow's reader of back-to-back
        # streams reads the next stream's batches as this one's after a stream without any
        batches = named.to_batches() or [
            pa.RecordBatch.from_arrays(
                [pa.array([], field.type) for field in named.schema], schema=named.schema
            )
        ]
        with pa.ipc.new_stream(sink, named.schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def decode(payload: bytes) -> dict[str, pa.Table]:
    """The tables of a payload by name (what the page does with apache-arrow's
    RecordBatchReader.readAll)."""
    reader = pa.BufferReader(payload)
    tables: dict[str, pa.Table] = {}
    while reader.tell() < reader.size():
        table = pa.ipc.open_stream(reader).read_all()
        tables[table.schema.metadata[TABLE_KEY].decode()] = table
    return tables
