"""`spymaster serve` as a user starts it: the printed URL, the real server under many clients,
and a clear message for every way it cannot start."""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

from foundation.lake import Lake
from hud.headless import free_port, served
from hud.protocol import decode
from spymaster.cli import main
from tests.markets import warehouse

pytestmark = pytest.mark.dbt


@pytest.fixture(scope="module")
def server(market_lake: Lake) -> Iterator[str]:
    with served(market_lake) as (url, _process):
        yield url


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_serve_prints_its_url_and_serves_the_page_and_the_api(server: str) -> None:
    assert server.startswith("http://127.0.0.1:")
    status, page = get(server)
    assert status == 200
    assert b"spymaster HUD" in page
    status, body = get(server + "api/sessions")
    assert status == 200
    assert decode(body)["sessions"].num_rows >= 3


def test_a_client_that_drops_mid_stream_disturbs_nobody_else(
    server: str, market_lake: Lake
) -> None:
    day, start = warehouse(
        market_lake,
        "select dt, surface_window_start + interval 30 minute from silver.session_calendar "
        "join silver.contract_day_selection using (dt) where is_included order by dt limit 1",
    )[0]
    command = json.dumps(
        {"op": "replay", "session": str(day), "from": start.isoformat() + "Z", "speed": 60}
    )
    stream = server.replace("http", "ws") + "api/stream"
    # max_queue=None: the client keeps reading what it does not ask for, as a browser does
    with connect(stream, max_size=None, max_queue=None) as staying:
        staying.send(command)
        seconds = [decode(staying.recv())["message"].to_pylist()[0]["start"] for _ in range(5)]
        with connect(stream, max_size=None, max_queue=None) as dropping:
            dropping.send(command)
            dropping.recv()
            dropping.socket.shutdown(socket.SHUT_RDWR)  # gone: no close handshake
            dropping.socket.close()
        seconds += [decode(staying.recv())["message"].to_pylist()[0]["start"] for _ in range(60)]
    assert seconds == [start + dt.timedelta(seconds=i) for i in range(65)]
    assert get(server + "api/sessions")[0] == 200


def test_build_says_the_server_holds_the_warehouse(
    server: str, market_lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["build", "--lake", str(market_lake.root), "--select", "session_calendar"]) == 1
    error = capsys.readouterr().err
    assert f"build failed: {market_lake.duckdb_path} is open in another process" in error
    assert "stop `spymaster serve`" in error


def test_serve_refuses_a_missing_lake(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--lake", str(tmp_path / "nowhere")]) == 1
    assert f"serve failed: {tmp_path / 'nowhere'}: no lake here" in capsys.readouterr().err


@pytest.mark.parametrize("port", ["0", "70000"])
def test_serve_refuses_an_impossible_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], port: str
) -> None:
    assert main(["serve", "--lake", str(tmp_path), "--port", port]) == 1
    assert f"--port {port} is not a TCP port" in capsys.readouterr().err


def test_serve_names_a_port_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--lake", str(tmp_path), "--port", str(port)]) == 1
    assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err


def test_serve_names_an_unknown_host(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--lake", str(tmp_path), "--host", "no-such-host.invalid"]) == 1
    assert "--host no-such-host.invalid: not an address of this machine" in capsys.readouterr().err


def test_serve_warns_when_asked_to_listen_beyond_this_machine(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("spymaster")),
            "serve",
            "--lake",
            str(tmp_path),
            "--host",
            "0.0.0.0",
            "--port",
            str(free_port()),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().startswith("spymaster HUD on http://0.0.0.0:")
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=30)
    assert "warning: serving on 0.0.0.0: anyone who can reach this machine" in errors
    # the lake has no warehouse: said at start, and by the page
    assert "no warehouse in this lake yet" in errors
