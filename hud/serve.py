"""`spymaster serve`: the HUD on a local port, with a clear word for every way it cannot start."""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys
import threading

import uvicorn

from foundation.lake import Lake
from hud.live import LiveDay
from hud.server import create_app
from hud.warehouse import WarehouseUnavailableError


class ServeError(Exception):
    """The server cannot start: the message names the lake, host or port."""


def _listening_socket(host: str, port: int) -> socket.socket:
    if not 0 < port < 65536:
        raise ServeError(f"--port {port} is not a TCP port (1-65535)")
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
    except socket.gaierror as error:
        raise ServeError(f"--host {host}: not an address of this machine ({error})") from None
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise ServeError(
                f"port {port} on {host} is in use (another spymaster serve?); choose --port"
            ) from None
        raise ServeError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    listener.listen(128)
    return listener


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _warn_if_public(host: str) -> None:
    if not _is_loopback(host):
        print(
            f"warning: serving on {host}: anyone who can reach this machine can read the "
            "warehouse (the default, 127.0.0.1, is this machine only)",
            file=sys.stderr,
        )


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def _config(app: object) -> uvicorn.Config:
    return uvicorn.Config(app, log_level="warning", ws="websockets-sansio", lifespan="off")


def serve(lake: Lake, host: str, port: int) -> None:
    if not lake.root.is_dir():
        raise ServeError(f"{lake.root}: no lake here (a folder made by `spymaster ingest`)")
    listener = _listening_socket(host, port)
    _warn_if_public(host)
    app = create_app(lake)
    try:
        app.state.warehouse.open()
    except WarehouseUnavailableError as error:
        print(f"warning: {error} (the page says so too)", file=sys.stderr)
    print(f"spymaster HUD on {_url(host, port)}  (lake {lake.root}; Ctrl-C stops)", flush=True)
    uvicorn.Server(_config(app)).run(sockets=[listener])


class LiveServer:
    """The HUD of a live day, served from a thread while the feed runs in the caller's."""

    def __init__(self, lake: Lake, live: LiveDay, host: str, port: int) -> None:
        listener = _listening_socket(host, port)
        _warn_if_public(host)
        self.url = _url(host, port)
        app = create_app(lake, live)
        app.state.warehouse.open()
        self._server = uvicorn.Server(_config(app))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [listener]}, name="hud", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
