"""The HUD server's API on the built end-to-end market: every endpoint's values are the
warehouse's values, the WebSocket frames are the window's seconds, and every bad input is a 4xx
naming its parameter."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator

import duckdb
import pyarrow as pa
import pytest
from starlette.testclient import TestClient

from foundation.lake import Lake
from hud.protocol import decode
from hud.server import create_app
from hud.warehouse import FRAME_TABLES, required_columns
from tests.markets import warehouse

pytestmark = pytest.mark.dbt


@pytest.fixture(scope="module")
def client(market_lake: Lake) -> Iterator[TestClient]:
    app = create_app(market_lake)
    with TestClient(app) as test_client:
        yield test_client
    app.state.warehouse.close()


@pytest.fixture(scope="module")
def session(market_lake: Lake) -> dict[str, object]:
    """The last included session: it has calibration, triggers and neighbours."""
    (day, symbol, start, end) = warehouse(
        market_lake,
        "select selection.dt, selected_symbol, surface_window_start, surface_window_end "
        "from silver.contract_day_selection as selection "
        "join silver.session_calendar using (dt) where is_included order by dt desc limit 1",
    )[0]
    return {"day": day, "symbol": symbol, "start": start, "end": end}


def z(moment: dt.datetime) -> str:
    return moment.isoformat() + "Z"


def tables_of(response) -> dict[str, pa.Table]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.apache.arrow.stream"
    return decode(response.content)


def next_notice(socket) -> dict[str, object]:
    """The next JSON message, skipping frames still in flight."""
    while True:
        message = socket.receive()
        if message.get("text") is not None:
            return json.loads(message["text"])


def as_rows(table: pa.Table) -> list[tuple[object, ...]]:
    return [tuple(row.values()) for row in table.to_pylist()]


def test_sessions_are_the_included_days_with_their_contract(
    client: TestClient, market_lake: Lake
) -> None:
    tables = tables_of(client.get("/api/sessions"))
    assert tables["message"].to_pylist()[0]["kind"] == "sessions"
    expected = warehouse(
        market_lake,
        "select selection.dt, selected_symbol, surface_window_start, surface_window_end, "
        "session_window_start, session_window_end, "
        "(select count(*) from gold.trigger_vectors as t where t.dt = selection.dt), "
        "false as is_live "  # no live feed serves this warehouse
        "from silver.contract_day_selection as selection join silver.session_calendar using (dt) "
        "where is_included order by dt",
    )
    assert as_rows(tables["sessions"]) == expected
    assert len(expected) >= 3


def test_session_tables_are_the_warehouse_rows(
    client: TestClient, market_lake: Lake, session: dict[str, object]
) -> None:
    tables = tables_of(client.get("/api/session", params={"session": str(session["day"])}))
    summary = tables["session"].to_pylist()[0]
    assert (summary["session"], summary["symbol"]) == (session["day"], session["symbol"])
    assert (summary["start"], summary["end"]) == (session["start"], session["end"])
    spot = warehouse(
        market_lake,
        "select min(spot_price), max(spot_price) from silver.book_snapshot_1s "
        "where dt = ? and window_start >= ? and window_start < ?",
        [session["day"], session["start"], session["end"]],
    )[0]
    assert (summary["spot_low"], summary["spot_high"]) == spot
    assert (summary["tick_size"], summary["level_zone_ticks"]) == (0.25, 20)

    levels = warehouse(
        market_lake,
        "select level_id, level_price, valid_from, valid_to from silver.session_levels "
        "where dt = ? and level_kind = 'real' and valid_from < ? and valid_to > ? "
        "order by level_id, valid_from",
        [session["day"], session["end"], session["start"]],
    )
    assert as_rows(tables["session_levels"]) == levels

    episodes = tables["approach_episodes"]
    assert (
        episodes.num_rows
        == warehouse(
            market_lake,
            "select count(*) from gold.approach_episodes where dt = ? and level_kind = 'real'",
            [session["day"]],
        )[0][0]
    )
    triggered = episodes.filter(pa.compute.is_valid(episodes["trigger_id"])).to_pylist()
    outcomes = {
        row[0]: row[1:]
        for row in warehouse(
            market_lake,
            "select trigger_id, ts, outcome, outcome_known_ts, seconds_to_first_hit "
            "from gold.trigger_outcomes where dt = ? and level_kind = 'real'",
            [session["day"]],
        )
    }
    assert len(triggered) == len(outcomes) > 0
    for row in triggered:
        assert (
            row["trigger_ts"],
            row["outcome"],
            row["outcome_known_ts"],
            row["seconds_to_first_hit"],
        ) == outcomes[row["trigger_id"]]

    signals = {
        row[0]: row[1:]
        for row in warehouse(
            market_lake,
            "select trigger_id, p_break, p_reject, p_chop, neighbour_trigger_ids, "
            "neighbour_similarities from gold.trigger_signals where dt = ?",
            [session["day"]],
        )
    }
    sent = {row["trigger_id"]: row for row in tables["trigger_signals"].to_pylist()}
    assert sent.keys() == signals.keys()
    neighbours: dict[str, list[dict[str, object]]] = {}
    for row in tables["trigger_neighbours"].to_pylist():
        neighbours.setdefault(row["trigger_id"], []).append(row)
    with_neighbours = 0
    for trigger_id, (p_break, p_reject, p_chop, ids, similarities) in signals.items():
        assert (sent[trigger_id]["p_break"], sent[trigger_id]["p_reject"]) == (p_break, p_reject)
        assert sent[trigger_id]["p_chop"] == p_chop
        rows = neighbours.get(trigger_id, [])
        assert [row["neighbour_trigger_id"] for row in rows] == ids
        assert [row["similarity"] for row in rows] == similarities
        assert [row["neighbour_rank"] for row in rows] == list(range(1, len(ids) + 1))
        with_neighbours += bool(ids)
    assert with_neighbours > 0
    # each neighbour row carries that neighbour's own outcome
    first = next(row for rows in neighbours.values() for row in rows)
    assert warehouse(
        market_lake,
        "select dt, ts, outcome from gold.trigger_outcomes where trigger_id = ?",
        [first["neighbour_trigger_id"]],
    )[0] == (first["neighbour_session"], first["neighbour_ts"], first["outcome"])


# The frame tables as an analyst would select them: every column the server sends.
def expected_window(
    lake: Lake, table: str, session: dict[str, object], start: dt.datetime, end: dt.datetime
) -> list[tuple[object, ...]]:
    spec = next(frame for frame in FRAME_TABLES if frame.name == table)
    order = ", ".join(("window_start", *spec.order))
    return warehouse(
        lake,
        f"select {'distinct ' if spec.distinct else ''}window_start, {', '.join(spec.columns)} "
        f"from {spec.table} where dt = ? and window_start >= ? and window_start < ? "
        f"order by {order}",
        [session["day"], start, end],
    )


def test_window_holds_every_frame_table_exactly_as_the_warehouse(
    client: TestClient, market_lake: Lake, session: dict[str, object]
) -> None:
    start = session["start"] + dt.timedelta(minutes=50)
    end = start + dt.timedelta(seconds=90)
    tables = tables_of(
        client.get(
            "/api/window",
            params={"session": str(session["day"]), "start": z(start), "end": z(end)},
        )
    )
    message = tables["message"].to_pylist()[0]
    assert (message["kind"], message["start"], message["end"]) == ("window", start, end)
    for frame in FRAME_TABLES:
        expected = expected_window(market_lake, frame.name, session, start, end)
        assert expected, frame.name
        assert as_rows(tables[frame.name]) == expected, frame.name
    # gamma exposure's per-second columns: one row per second
    assert tables["gex_levels_1s"].num_rows == tables["book_snapshot_1s"].num_rows == 90


def test_a_frame_table_selected_from_rows_in_memory_is_its_query(
    market_lake: Lake, session: dict[str, object]
) -> None:
    """What the live HUD sends from the rows it holds is what replay's query reads: the same
    rows, columns, types and order, whether the rows given span more than the window and two
    days, shuffled, or are the window's own in its order (a live second's: nothing to filter
    or reorder)."""
    start = session["start"] + dt.timedelta(minutes=50)
    end = start + dt.timedelta(seconds=30)
    params = {"symbol": session["symbol"], "session": session["day"], "start": start, "end": end}
    connection = duckdb.connect(str(market_lake.duckdb_path), read_only=True)
    try:
        for frame in FRAME_TABLES:
            query = connection.sql(frame.sql(), params=params).to_arrow_table()
            assert query.num_rows, frame.name
            wider = connection.sql(
                f"select * from {frame.table} where window_start >= $start - interval 5 second "
                "and window_start < $end + interval 5 second or dt < $session "
                "order by random()",
                params={"start": start, "end": end, "session": session["day"]},
            ).to_arrow_table()
            own = connection.sql(
                f"select * from {frame.table} where symbol = $symbol and dt = $session "
                "and window_start >= $start and window_start < $end "
                f"order by {', '.join(('window_start', *frame.order))}",
                params=params,
            ).to_arrow_table()
            for held in (wider, own):
                selected = frame.select(held, session["symbol"], session["day"], start, end)
                assert selected.schema == query.schema, frame.name
                assert selected.equals(query), frame.name
    finally:
        connection.close()


def test_replay_frames_are_the_seconds_of_the_window(
    client: TestClient, session: dict[str, object]
) -> None:
    start = session["start"] + dt.timedelta(minutes=40)
    seconds = 12
    window = tables_of(
        client.get(
            "/api/window",
            params={
                "session": str(session["day"]),
                "start": z(start),
                "end": z(start + dt.timedelta(seconds=seconds)),
            },
        )
    )
    frames = []
    with client.websocket_connect("/api/stream") as socket:
        socket.send_text(
            json.dumps(
                {"op": "replay", "session": str(session["day"]), "from": z(start), "speed": 600}
            )
        )
        frames = [decode(socket.receive_bytes()) for _ in range(seconds)]
        socket.send_text(json.dumps({"op": "stop"}))
    for offset, frame in enumerate(frames):
        message = frame["message"].to_pylist()[0]
        second = start + dt.timedelta(seconds=offset)
        assert (message["kind"], message["mode"], message["start"]) == ("frame", "replay", second)
    for frame_table in FRAME_TABLES:
        streamed = [row for frame in frames for row in as_rows(frame[frame_table.name])]
        assert streamed == as_rows(window[frame_table.name]), frame_table.name


def test_replay_reaches_the_session_end_and_says_so(
    client: TestClient, session: dict[str, object]
) -> None:
    start = session["end"] - dt.timedelta(seconds=3)
    with client.websocket_connect("/api/stream") as socket:
        socket.send_text(
            json.dumps(
                {"op": "replay", "session": str(session["day"]), "from": z(start), "speed": 60}
            )
        )
        seconds = [
            decode(socket.receive_bytes())["message"].to_pylist()[0]["start"] for _ in range(3)
        ]
        assert json.loads(socket.receive_text()) == {
            "type": "end",
            "session": str(session["day"]),
        }
    assert seconds == [start + dt.timedelta(seconds=i) for i in range(3)]


@pytest.mark.parametrize(
    ("params", "status", "parameter", "words"),
    [
        ({}, 400, "session", "missing parameter session"),
        ({"session": "2024-13-40"}, 400, "session", "is not a date"),
        ({"session": "2024-03-12' or 1=1 --"}, 400, "session", "is not a date"),
        ({"session": "1999-01-04"}, 404, "session", "no included session on 1999-01-04"),
        ({"start": "soon"}, 400, "start", "is not an ISO-8601 time"),
        ({"start": "2020-01-01T00:00:00Z"}, 400, "start", "is outside session"),
        ({"end": None}, 400, "end", "missing parameter end"),
        ({"end": "START"}, 400, "end", "is not after start"),
        ({"end": "START+2h"}, 400, "end", "longer than 3600 s"),
    ],
)
def test_bad_window_requests_name_the_parameter(
    client: TestClient,
    session: dict[str, object],
    params: dict[str, str | None],
    status: int,
    parameter: str,
    words: str,
) -> None:
    start = session["start"] + dt.timedelta(minutes=10)
    values = {"START": z(start), "START+2h": z(start + dt.timedelta(hours=2))}
    query = {
        "session": str(session["day"]),
        "start": z(start),
        "end": z(start + dt.timedelta(seconds=5)),
    }
    if not params:
        query = {}
    for key, value in params.items():
        if value is None:
            query.pop(key)
        else:
            query[key] = values.get(value, value)
    response = client.get("/api/window", params=query)
    assert response.status_code == status
    body = response.json()
    assert body["parameter"] == parameter
    assert words in body["error"]


def test_evidence_is_the_warehouse_rows_of_the_choice(
    client: TestClient, market_lake: Lake
) -> None:
    """The pictures at the chosen kind of level (BREAK, REJECT and their difference) and the
    condition table of the level, direction and window at both kinds; absent parameters are
    the pooled table at real levels over the primary window (30 s)."""
    tables = tables_of(client.get("/api/evidence"))
    assert tables["message"]["kind"].to_pylist() == ["evidence"]
    assert tables["evidence"].to_pylist() == [
        {"kind": "real", "level": "ALL", "direction": "ALL", "window_seconds": 30}
    ]
    level = warehouse(
        market_lake, "select min(level_id) from gold.condition_outcomes where level_id <> 'ALL'"
    )[0][0]
    tables = tables_of(
        client.get("/api/evidence", params={"kind": "placebo", "level": level, "dir": "UP"})
    )
    composite = tables["trigger_composite"]
    assert set(composite["outcome"].to_pylist()) == {"BREAK", "REJECT", "REJECT_MINUS_BREAK"}
    assert as_rows(composite.select(["outcome", "second_offset", "ticks_from_level", "side",
                                     "triggers"])) == warehouse(
        market_lake,
        "select outcome, second_offset, ticks_from_level, side, triggers "
        "from gold.trigger_composite where level_kind = 'placebo' "
        "and outcome in ('BREAK', 'REJECT', 'REJECT_MINUS_BREAK') "
        "order by outcome, second_offset, side, ticks_from_level",
    )  # fmt: skip
    # the pictures travel as float32: the table's values to float32's precision
    depth = warehouse(
        market_lake,
        "select sum(depth_share) from gold.trigger_composite where level_kind = 'placebo' "
        "and outcome in ('BREAK', 'REJECT', 'REJECT_MINUS_BREAK')",
    )[0][0]
    assert sum(composite["depth_share"].to_pylist()) == pytest.approx(depth, rel=1e-5)
    conditions = tables["condition_outcomes"]
    assert as_rows(conditions.select(["level_kind", "grouping", "member", "held", "n"])) == (
        warehouse(
            market_lake,
            "select level_kind, grouping, member, held, n from gold.condition_outcomes "
            "where level_id = ? and approach_dir = 'UP' and window_seconds = 30 "
            "order by level_kind desc, grouping = 'pattern', grouping, member, held desc",
            [level],
        )
    )
    assert (
        len(tables["evidence_choices"])
        == warehouse(
            market_lake,
            "select count(*) from (select distinct level_id, approach_dir, window_seconds "
            "from gold.condition_outcomes)",
        )[0][0]
    )


@pytest.mark.parametrize(
    ("params", "status", "parameter", "words"),
    [
        ({"kind": "fake"}, 400, "kind", "is not one of real, placebo"),
        ({"level": "PM_MIDDLE"}, 404, "level", "has no triggers (levels: ALL,"),
        ({"dir": "SIDEWAYS"}, 400, "dir", "is not one of UP, DOWN, ALL"),
        ({"window": "soon"}, 400, "window", "is not a whole number of seconds"),
        ({"window": "7"}, 404, "window", "the conditions cover [5, 10, 30] seconds"),
    ],
)
def test_bad_evidence_requests_name_the_parameter(
    client: TestClient, params: dict[str, str], status: int, parameter: str, words: str
) -> None:
    response = client.get("/api/evidence", params=params)
    assert response.status_code == status
    body = response.json()
    assert body["parameter"] == parameter
    assert words in body["error"]


def test_unknown_session_of_the_session_endpoint_is_a_404(client: TestClient) -> None:
    response = client.get("/api/session", params={"session": "2031-01-06"})
    assert response.status_code == 404
    assert response.json()["parameter"] == "session"


def test_stream_commands_are_checked_and_the_connection_stays_open(
    client: TestClient, session: dict[str, object]
) -> None:
    start = z(session["start"] + dt.timedelta(minutes=5))
    with client.websocket_connect("/api/stream") as socket:
        for command, parameter in [
            ("not json", "op"),
            (json.dumps({"op": "rewind"}), "op"),
            (json.dumps({"op": "replay", "session": str(session["day"]), "from": start}), None),
            (
                json.dumps(
                    {"op": "replay", "session": str(session["day"]), "from": start, "speed": 0}
                ),
                "speed",
            ),
            (
                json.dumps(
                    {"op": "replay", "session": str(session["day"]), "from": "2001-01-01T00:00:00"}
                ),
                "from",
            ),
            (json.dumps({"op": "replay", "from": start}), "session"),
        ]:
            socket.send_text(command)
            if parameter is None:  # a good command: it streams, then the next one replaces it
                assert "message" in decode(socket.receive_bytes())
                socket.send_text(json.dumps({"op": "stop"}))
                continue
            reply = next_notice(socket)
            assert reply["type"] == "error"
            assert reply["parameter"] == parameter, reply
        socket.send_bytes(b"\x00\x01")
        assert next_notice(socket)["parameter"] == "op"


def test_static_files_come_only_from_the_package(client: TestClient) -> None:
    assert client.get("/").status_code == 200
    assert "spymaster HUD" in client.get("/").text
    assert client.get("/static/js/main.js").status_code == 200
    arrow = client.get("/static/vendor/apache-arrow/LICENSE.txt")
    assert arrow.status_code == 200
    assert "Apache License" in arrow.text
    for path in (
        "/static/../server.py",
        "/static/%2e%2e/server.py",
        "/static/..%2fserver.py",
        "/static/%2e%2e/%2e%2e/spymaster/lake.py",
        "/static//etc/passwd",
        "/static/js/../../server.py",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
    missing = client.get("/api/nowhere")
    assert missing.status_code == 404
    assert missing.json()["error"].startswith("Not Found")


def test_the_server_never_writes_to_the_lake(client: TestClient, market_lake: Lake) -> None:
    def snapshot() -> dict[str, tuple[int, int]]:
        return {
            str(path): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in market_lake.root.rglob("*")
            if path.is_file()
        }

    before = snapshot()
    day = warehouse(
        market_lake, "select max(dt) from silver.contract_day_selection where is_included"
    )[0][0]
    assert client.get("/api/sessions").status_code == 200
    assert client.get("/api/session", params={"session": str(day)}).status_code == 200
    assert snapshot() == before
    # the connection itself refuses writes
    with pytest.raises(duckdb.Error, match="read-only"):
        client.app.state.warehouse.query("create table gold.scratch as select 1 as x")


def test_a_lake_without_the_tables_says_what_to_build(tmp_path) -> None:
    lake = Lake(tmp_path / "lake")
    lake.root.mkdir()
    app = create_app(lake)
    with TestClient(app) as client:
        response = client.get("/api/sessions")
        assert response.status_code == 503
        assert "no warehouse in this lake yet" in response.json()["error"]
        assert response.json()["command"] == "spymaster build"
        connection = duckdb.connect(str(lake.duckdb_path))
        connection.execute("create schema silver")
        connection.execute(
            "create table silver.contract_day_selection as "
            "select date '2024-03-12' as dt, 'ESM4' as selected_symbol, true as is_included"
        )
        connection.close()
        body = client.get("/api/sessions").json()
        assert "lacks silver.session_calendar" in body["error"]
        assert "gold.trigger_signals" in body["error"]
        assert body["command"].startswith("spymaster build --select ")
        assert "+trigger_signals" in body["command"].split()
        assert "+contract_day_selection" not in body["command"]
    app.state.warehouse.close()


def empty_copy(market_lake: Lake, lake: Lake) -> None:
    """A warehouse with every table the HUD reads, and no rows."""
    lake.root.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect(str(lake.duckdb_path))
    connection.execute(f"attach '{market_lake.duckdb_path}' as market (read_only)")
    for schema, table in required_columns():
        connection.execute(f"create schema if not exists {schema}")
        connection.execute(
            f"create table {schema}.{table} as select * from market.{schema}.{table} limit 0"
        )
    connection.close()


def test_a_warehouse_held_by_a_writer_is_a_503_until_it_is_free(
    market_lake: Lake, tmp_path
) -> None:
    lake = Lake(tmp_path / "lake")
    empty_copy(market_lake, lake)
    # another process holds the write lock, as a running `spymaster build` does
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "sys.stdin.readline()",
            str(lake.duckdb_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    app = create_app(lake)
    try:
        assert writer.stdout.readline() == "held\n"
        with TestClient(app) as client:
            busy = client.get("/api/sessions")
            assert busy.status_code == 503
            assert "a running `spymaster build` holds it" in busy.json()["error"]
            writer.communicate("\n", timeout=30)
            free = client.get("/api/sessions")
            assert free.status_code == 200
            assert decode(free.content)["sessions"].num_rows == 0
    finally:
        writer.kill()
        app.state.warehouse.close()
