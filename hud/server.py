"""The HUD's web server: a Starlette app of thin handlers over the warehouse queries.

HTTP (GET; Arrow IPC bodies, see `protocol`):
  /                    the page
  /static/...          the page's modules, styles and vendored apache-arrow (package files only)
  /api/sessions        the included sessions
  /api/session         ?session=YYYY-MM-DD: bounds, levels, episodes, triggers, neighbours
  /api/window          ?session=&start=&end=: every frame table for the seconds [start, end)
  /api/evidence        ?kind=real|placebo&level=&dir=&window=: the composite pictures by outcome
                       and the condition table of a level and direction
WebSocket:
  /api/stream          JSON commands in (replay, live, stop), one binary frame per second out;
                       live also sends the session payload again when it changes
Errors are JSON with the parameter at fault; the server answers every request and survives
every client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import pyarrow as pa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from foundation.lake import Lake
from foundation.project import project_vars
from hud.live import LiveDay
from hud.live_stream import frame_encoder, stream_live
from hud.protocol import PayloadKind, StreamMode, encode, message_table
from hud.replay import replay
from hud.requests import (
    RequestError,
    StreamCommand,
    evidence_of,
    session_of,
    stream_command_of,
    window_of,
)
from hud.warehouse import Warehouse, WarehouseUnavailableError

STATIC_DIR = Path(__file__).resolve().parent / "static"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
log = logging.getLogger("spymaster.hud")


def _arrow(payload: bytes) -> Response:
    return Response(payload, media_type=ARROW_STREAM, headers={"Cache-Control": "no-store"})


def _error(status: int, message: str, parameter: str | None = None, **extra: object) -> Response:
    return JSONResponse({"error": message, "parameter": parameter, **extra}, status_code=status)


def _answers(
    handler: Callable[[Request, Warehouse], Awaitable[bytes]],
) -> Callable[[Request], Awaitable[Response]]:
    """Every API handler's errors as JSON: the caller's mistakes as 4xx naming the parameter,
    an unusable warehouse as 503 with the command that builds it, anything else as 500."""

    async def endpoint(request: Request) -> Response:
        warehouse: Warehouse = request.app.state.warehouse
        try:
            return _arrow(await handler(request, warehouse))
        except RequestError as error:
            return _error(error.status, str(error), error.parameter)
        except WarehouseUnavailableError as error:
            return _error(503, str(error), command=error.command)
        except Exception:
            log.exception("%s failed", request.url)
            return _error(500, f"the server failed on {request.url.path}; see its log")

    return endpoint


async def _sessions(request: Request, warehouse: Warehouse) -> bytes:
    def payload() -> bytes:
        mode = StreamMode.REPLAY if warehouse.live is None else StreamMode.LIVE
        return encode(
            {
                "message": message_table(PayloadKind.SESSIONS, mode=mode),
                "sessions": warehouse.sessions(),
            }
        )

    return await run_in_threadpool(payload)


async def _session(request: Request, warehouse: Warehouse) -> bytes:
    def payload() -> bytes:
        session = session_of(request.query_params, warehouse)
        return encode(
            {
                "message": message_table(
                    PayloadKind.SESSION, session.session, session.start, session.end
                ),
                **warehouse.session_tables(session),
            }
        )

    return await run_in_threadpool(payload)


async def _window(request: Request, warehouse: Warehouse) -> bytes:
    def payload() -> bytes:
        window = window_of(request.query_params, warehouse)
        # a live day's window ends at the live frontier: the page asks again for the rest
        end = max(window.start, warehouse.available_end(window.session, window.end))
        return encode(
            {
                "message": message_table(
                    PayloadKind.WINDOW, window.session.session, window.start, end
                ),
                **warehouse.window(window.session, window.start, end),
            }
        )

    return await run_in_threadpool(payload)


async def _evidence(request: Request, warehouse: Warehouse) -> bytes:
    def payload() -> bytes:
        choices = [tuple(row.values()) for row in warehouse.evidence_choices().to_pylist()]
        primary = int(project_vars()["condition_primary_window_seconds"])
        query = evidence_of(request.query_params, choices, primary)
        return encode(
            {
                "message": message_table(PayloadKind.EVIDENCE),
                "evidence": pa.table(
                    {
                        "kind": [query.kind],
                        "level": [query.level],
                        "direction": [query.direction],
                        "window_seconds": pa.array([query.window], pa.int32()),
                    }
                ),
                **warehouse.evidence(query.kind, query.level, query.direction, query.window),
            }
        )

    return await run_in_threadpool(payload)


async def _page(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})


class _StreamConnection:
    """One WebSocket: commands in (`replay`, `live`, `stop`), frames out; a new command
    replaces the running stream. Mistakes come back as `{"type": "error", ...}` and the
    connection stays open; a client that leaves ends only its own stream."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.warehouse: Warehouse = websocket.app.state.warehouse
        self.running: asyncio.Task | None = None

    async def send_json(self, body: dict[str, object]) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self.websocket.send_text(json.dumps(body))

    async def run(self, command: StreamCommand) -> None:
        window = command.window
        try:
            if command.op == "live":
                await stream_live(self.websocket.send_bytes, self.send_json, self.warehouse, window)
                return
            await replay(self.websocket.send_bytes, self.warehouse, window, command.speed)
            await self.send_json({"type": "end", "session": window.session.session.isoformat()})
        except WarehouseUnavailableError as error:
            await self.send_json({"type": "error", "error": str(error), "command": error.command})
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the client left: nobody else is concerned
        except Exception:
            log.exception("%s failed", command.op)
            await self.send_json(
                {"type": "error", "error": f"the {command.op} stream failed; see the server log"}
            )

    async def stop(self) -> None:
        if self.running is not None:
            self.running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.running
            self.running = None

    async def command(self, text: str) -> None:
        try:
            command = await run_in_threadpool(stream_command_of, text, self.warehouse)
        except RequestError as error:
            await self.send_json({"type": "error", **error.body()})
            return
        except WarehouseUnavailableError as error:
            await self.send_json({"type": "error", "error": str(error), "command": error.command})
            return
        await self.stop()
        if command.op != "stop":
            self.running = asyncio.create_task(self.run(command))

    async def serve(self) -> None:
        await self.websocket.accept()
        try:
            while True:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("text") is None:
                    await self.send_json(
                        {"type": "error", "error": "send commands as JSON text", "parameter": "op"}
                    )
                    continue
                await self.command(message["text"])
        except WebSocketDisconnect:
            pass
        finally:
            await self.stop()


async def _stream(websocket: WebSocket) -> None:
    await _StreamConnection(websocket).serve()


async def _not_found(request: Request, exc: HTTPException) -> Response:
    return _error(exc.status_code, f"{exc.detail}: {request.url.path}")


def create_app(lake: Lake, live: LiveDay | None = None) -> Starlette:
    """The HUD over the lake's warehouse, or with `live` over a live feed's database."""
    app = Starlette(
        routes=[
            Route("/", _page),
            Route("/api/sessions", _answers(_sessions)),
            Route("/api/session", _answers(_session)),
            Route("/api/window", _answers(_window)),
            Route("/api/evidence", _answers(_evidence)),
            WebSocketRoute("/api/stream", _stream),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        exception_handlers={HTTPException: _not_found},
    )
    app.state.warehouse = Warehouse(lake, live)
    if live is not None:
        live.encoder = frame_encoder(app.state.warehouse)
    return app
