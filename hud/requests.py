"""Parameters of HUD requests: parsed once, and every mistake named (HTTP 4xx with JSON)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass

from hud.warehouse import Session, Warehouse

# One request reads at most an hour of seconds; the page asks for what it shows.
MAX_WINDOW_SECONDS = 3600
MAX_SPEED = 600.0


class RequestError(Exception):
    """A request the server refuses: the HTTP status, the message and the parameter at fault."""

    def __init__(self, status: int, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.parameter = parameter

    def body(self) -> dict[str, object]:
        return {"error": str(self), "parameter": self.parameter}


def required(params: Mapping[str, object], name: str, meaning: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise RequestError(400, f"missing parameter {name} ({meaning})", name)
    if not isinstance(value, str):
        raise RequestError(400, f"parameter {name} must be a string ({meaning})", name)
    return value


def session_of(params: Mapping[str, object], warehouse: Warehouse) -> Session:
    """The `session` parameter: an included session date, YYYY-MM-DD."""
    value = required(params, "session", "a session date, YYYY-MM-DD")
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise RequestError(
            400, f"session {value!r} is not a date (YYYY-MM-DD)", "session"
        ) from None
    session = warehouse.session(day)
    if session is None:
        raise RequestError(
            404, f"no included session on {day} in the warehouse (see /api/sessions)", "session"
        )
    return session


def moment_of(params: Mapping[str, object], name: str, session: Session) -> dt.datetime:
    """An ISO-8601 time (UTC unless it carries an offset), floored to its second, within the
    session's seconds (an end may equal the session's end). Naive UTC."""
    value = required(params, name, "an ISO-8601 time such as 2024-03-12T14:30:00Z")
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RequestError(
            400, f"{name} {value!r} is not an ISO-8601 time (e.g. 2024-03-12T14:30:00Z)", name
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    moment = moment.replace(microsecond=0)
    if not session.start <= moment <= session.end:
        raise RequestError(
            400,
            f"{name} {value} is outside session {session.session}, which covers "
            f"{session.start.isoformat()}Z to {session.end.isoformat()}Z",
            name,
        )
    return moment


@dataclass(frozen=True)
class Window:
    session: Session
    start: dt.datetime
    end: dt.datetime


def window_of(params: Mapping[str, object], warehouse: Warehouse) -> Window:
    """`session`, `start` and `end`: at least one second, at most MAX_WINDOW_SECONDS."""
    session = session_of(params, warehouse)
    start = moment_of(params, "start", session)
    end = moment_of(params, "end", session)
    if end <= start:
        raise RequestError(400, f"end {end.isoformat()}Z is not after start", "end")
    if (end - start).total_seconds() > MAX_WINDOW_SECONDS:
        raise RequestError(
            400,
            f"window of {(end - start).total_seconds():.0f} s is longer than "
            f"{MAX_WINDOW_SECONDS} s; ask for it in parts",
            "end",
        )
    if start == session.end:
        raise RequestError(400, f"start {start.isoformat()}Z is the session's end", "start")
    return Window(session, start, end)


LEVEL_KINDS = ("real", "placebo")
POOLED = "ALL"


@dataclass(frozen=True)
class EvidenceQuery:
    """`kind` (real or placebo levels), `level` and `dir` (ALL pools them), `window` (seconds
    before the trigger the conditions cover; the primary window when absent)."""

    kind: str
    level: str
    direction: str
    window: int


def evidence_of(
    params: Mapping[str, object], choices: list[tuple[str, str, int]], primary_window: int
) -> EvidenceQuery:
    """Each parameter checked against what gold.condition_outcomes holds (`choices`: its
    level, direction and window rows)."""
    if not choices:
        raise RequestError(404, "gold.condition_outcomes is empty: no labelled triggers yet")
    kind = params.get("kind") or "real"
    if kind not in LEVEL_KINDS:
        raise RequestError(400, f"kind {kind!r} is not one of {', '.join(LEVEL_KINDS)}", "kind")
    level = params.get("level") or POOLED
    levels = sorted({row[0] for row in choices})
    if level not in levels:
        raise RequestError(
            404, f"level {level!r} has no triggers (levels: {', '.join(levels)})", "level"
        )
    direction = params.get("dir") or POOLED
    if direction not in ("UP", "DOWN", POOLED):
        raise RequestError(400, f"dir {direction!r} is not one of UP, DOWN, ALL", "dir")
    windows = sorted({row[2] for row in choices})
    value = params.get("window")
    try:
        window = primary_window if value in (None, "") else int(str(value))
    except ValueError:
        raise RequestError(
            400, f"window {value!r} is not a whole number of seconds", "window"
        ) from None
    if window not in windows:
        raise RequestError(
            404, f"window {window} s: the conditions cover {windows} seconds", "window"
        )
    if (level, direction, window) not in set(choices):
        raise RequestError(404, f"no triggers of {level} approached {direction}", "dir")
    return EvidenceQuery(str(kind), str(level), str(direction), window)


@dataclass(frozen=True)
class StreamCommand:
    """`{"op": "replay", "session": ..., "from": ..., "speed": ...}`, `{"op": "live",
    "session": ..., "from": ...}` (the live day's frames from `from` as they are computed) or
    `{"op": "stop"}`."""

    op: str
    window: Window | None = None
    speed: float = 1.0


def stream_command_of(text: str, warehouse: Warehouse) -> StreamCommand:
    try:
        command = json.loads(text)
    except ValueError:
        raise RequestError(400, "a stream message must be a JSON object", "op") from None
    if not isinstance(command, dict):
        raise RequestError(400, "a stream message must be a JSON object", "op")
    op = command.get("op")
    if op == "stop":
        return StreamCommand("stop")
    if op not in ("replay", "live"):
        raise RequestError(400, f"op {op!r} is not one of 'replay', 'live', 'stop'", "op")
    session = session_of(command, warehouse)
    start = moment_of(command, "from", session)
    if start == session.end:
        raise RequestError(400, f"from {start.isoformat()}Z is the session's end", "from")
    if op == "live":
        if warehouse.live is None or warehouse.live.day != session.session:
            live = (
                "no session is live here"
                if warehouse.live is None
                else (f"the live session is {warehouse.live.day}")
            )
            raise RequestError(400, f"session {session.session} is not live ({live})", "session")
        return StreamCommand("live", Window(session, start, session.end))
    speed = command.get("speed", 1)
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0 < speed <= MAX_SPEED:
        raise RequestError(400, f"speed {speed!r} is not a number in (0, {MAX_SPEED:g}]", "speed")
    return StreamCommand("replay", Window(session, start, session.end), float(speed))
