"""What the HUD holds of a live day's newest frame rows: every row of the seconds it says it
holds, and nothing older than RECENT_SECONDS behind the part of the frames that lags; how far
each part and the session tables have got; and the session payload its clients share."""

from __future__ import annotations

import datetime as dt
import math
import time
from concurrent.futures import ThreadPoolExecutor

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from hud.live import RECENT_SECONDS, LiveDay
from hud.protocol import FramePart
from hud.warehouse import FRAME_TABLES, FrameTable

DAY = dt.date(2024, 3, 19)
OPEN = dt.datetime(2024, 3, 19, 13, 30)
SCHEMA = pa.schema([("window_start", pa.timestamp("us")), ("price", pa.float64())])
BOOK = frozenset({"book_snapshot_1s"})


def second_rows(first: int, count: int) -> pa.Table:
    """Two rows per second for `count` seconds from OPEN + `first` s."""
    seconds = [OPEN + dt.timedelta(seconds=first + i // 2) for i in range(2 * count)]
    prices = [float(i) for i in range(2 * count)]
    return pa.table({"window_start": seconds, "price": prices}, SCHEMA)


def seconds_of(table: pa.Table) -> set[dt.datetime]:
    return set(table.column("window_start").to_pylist())


def at(seconds: int) -> dt.datetime:
    return OPEN + dt.timedelta(seconds=seconds)


def both(until: dt.datetime) -> dict[FramePart, dt.datetime]:
    return dict.fromkeys(FramePart, until)


def test_the_newest_rows_are_held_and_older_ones_read_from_the_database() -> None:
    live = LiveDay(DAY, duckdb.connect, {"book_snapshot_1s": SCHEMA})
    # a catch-up's rows in one step, then a paced second at a time
    live.add_frame_rows("book_snapshot_1s", second_rows(0, 300))
    live.publish(both(at(300)), at(300), 0)
    for second in range(300, 310):
        live.add_frame_rows("book_snapshot_1s", second_rows(second, 1))
        live.publish(both(at(second + 1)), at(second + 1), 0)
    frontier = at(310)
    horizon = frontier - dt.timedelta(seconds=RECENT_SECONDS)

    held_from, held = live.recent_rows(horizon, frontier, BOOK)
    assert held_from == horizon
    # the rows of every second asked for (and of others in the same steps)
    wanted = {horizon + dt.timedelta(seconds=i) for i in range(RECENT_SECONDS)}
    assert wanted <= seconds_of(held["book_snapshot_1s"])
    # from one second before the horizon: that second is no longer all held, the caller
    # reads it from the database, and the held rows from the horizon on
    held_from, held = live.recent_rows(horizon - dt.timedelta(seconds=1), frontier, BOOK)
    assert held_from == horizon
    assert wanted <= seconds_of(held["book_snapshot_1s"])
    # no encoder: no frames are held, every client reads its frames itself
    assert live.held_frames(FramePart.HEATMAP, frontier - dt.timedelta(seconds=1), frontier) is None


def test_a_frame_source_without_rows_yet_is_an_empty_table_of_its_schema() -> None:
    live = LiveDay(DAY, duckdb.connect, {"book_snapshot_1s": SCHEMA, "gex_surface_1s": SCHEMA})
    live.add_frame_rows("book_snapshot_1s", second_rows(0, 3))
    held_from, held = live.recent_rows(OPEN, at(3), BOOK | {"gex_surface_1s"})
    assert held_from == OPEN
    assert held["book_snapshot_1s"].num_rows == 6
    assert held["gex_surface_1s"].num_rows == 0
    assert held["gex_surface_1s"].schema == SCHEMA


def test_rows_stay_held_while_the_part_that_lags_has_not_reached_them() -> None:
    """The layers follow the heatmap's tables: the rows of the seconds they have not reached
    yet stay held, however far the heatmap has moved on, and RECENT_SECONDS behind them."""
    live = LiveDay(DAY, duckdb.connect, {"gex_surface_1s": SCHEMA})
    for second in range(600):
        live.add_frame_rows("gex_surface_1s", second_rows(second, 1))
    live.publish({FramePart.HEATMAP: at(600), FramePart.LAYERS: at(200)}, at(600), 0)
    held_from, held = live.recent_rows(OPEN, at(600), frozenset({"gex_surface_1s"}))
    assert held_from == at(200 - RECENT_SECONDS)
    assert min(seconds_of(held["gex_surface_1s"])) == at(200 - RECENT_SECONDS)
    live.publish(both(at(600)), at(600), 0)
    held_from, held = live.recent_rows(OPEN, at(600), frozenset({"gex_surface_1s"}))
    assert held_from == at(600 - RECENT_SECONDS)
    assert min(seconds_of(held["gex_surface_1s"])) == at(600 - RECENT_SECONDS)


def test_each_part_and_the_session_tables_only_move_forward() -> None:
    """The stages publish from their own threads, in any order: what each part and the
    session tables have reached is the furthest any told, and every frame table is complete
    only to the part that lags."""
    live = LiveDay(DAY, duckdb.connect, {"book_snapshot_1s": SCHEMA})
    assert live.state().complete_until is None
    live.publish({FramePart.HEATMAP: at(10), FramePart.LAYERS: at(8)}, at(5), 1)
    live.publish({FramePart.HEATMAP: at(9), FramePart.LAYERS: at(9)}, at(4), 1)
    state = live.state()
    assert state.frames_until == {FramePart.HEATMAP: at(10), FramePart.LAYERS: at(9)}
    assert (state.complete_until, state.session_until, state.revision) == (at(9), at(5), 2)
    revision = state.revision
    live.publish({FramePart.HEATMAP: at(10), FramePart.LAYERS: at(9)}, at(5), 1)
    assert live.state().revision == revision  # nothing new: no client woken


def test_clients_share_one_session_payload_per_change_of_the_session_tables() -> None:
    live = LiveDay(DAY, duckdb.connect, {"book_snapshot_1s": SCHEMA})
    builds: list[tuple[float, float]] = []
    spot_range = [(5000.0, 5010.0)]

    def build() -> tuple[bytes, tuple[float, float]]:
        time.sleep(0.05)  # a build takes a while: clients asking meanwhile wait for it
        builds.append(spot_range[0])
        return f"payload {len(builds)}".encode(), spot_range[0]

    # eight clients woken by the same change ask at once: one build, the same payload
    with ThreadPoolExecutor(8) as clients:
        got = list(clients.map(lambda _: live.session_payload(3, None, build), range(8)))
    assert len(builds) == 1
    assert got == [(b"payload 1", (5000.0, 5010.0))] * 8
    # a client still at that version, or one whose frames are within the range: the same
    assert live.session_payload(3, (5001.0, 5009.5), build) == got[0]
    assert live.session_payload(2, None, build) == got[0]
    # frames outside the range it gives: built again, and that one is shared from then on
    spot_range[0] = (4995.0, 5010.0)
    assert live.session_payload(3, (4998.0, 5004.0), build) == (b"payload 2", (4995.0, 5010.0))
    assert live.session_payload(3, (4999.0, 5001.0), build)[0] == b"payload 2"
    # the session tables changed: built again
    assert live.session_payload(4, None, build)[0] == b"payload 3"
    assert len(builds) == 3


def awkward_rows(frame: FrameTable, rng: np.random.Generator) -> pa.Table:
    """Rows of a frame table's source as the live feed could hold them, and worse: two
    symbols and two days, out of order, repeated seconds, NULL and NaN keys and values."""
    count = 120
    seconds = rng.integers(0, 6, count)
    columns: dict[str, pa.Array] = {
        "symbol": pa.array(rng.choice(["ESM4", "ESU4"], count, p=[0.8, 0.2])),
        "dt": pa.array(rng.choice([DAY, DAY - dt.timedelta(days=1)], count, p=[0.9, 0.1])),
        "window_start": pa.array(
            [OPEN + dt.timedelta(seconds=int(s)) for s in seconds], pa.timestamp("us")
        ),
    }
    nulls = rng.random(count) < 0.05
    for column in frame.columns:
        if column in ("side", "band"):
            columns[column] = pa.array(rng.choice(["ask", "bid", "above"], count), mask=nulls)
        elif column in frame.quantities or column in ("band_order", "options_listed"):
            columns[column] = pa.array(rng.integers(0, 4, count), pa.int64(), mask=nulls)
        elif column == "book_valid":
            columns[column] = pa.array(rng.random(count) < 0.5, mask=nulls)
        elif frame.distinct:  # one value a second, NULL in some seconds
            values = 5000.0 + seconds.astype(float)
            columns[column] = pa.array(values, mask=seconds == 3)
        else:  # prices on a few ticks (repeated keys), a NaN among them
            values = 5000.0 + rng.integers(0, 8, count) * 0.25
            values[rng.random(count) < 0.03] = np.nan
            columns[column] = pa.array(values, mask=nulls)
    return pa.table(columns)


def test_a_frame_table_selected_from_held_rows_is_its_sql() -> None:
    """`FrameTable.select` (what live frames are made of) gives what DuckDB gives for
    `FrameTable.sql()` over the same rows: filters, casts, NULLs last, NaN after numbers,
    distinct rows (rows with equal keys in any order, as SQL leaves them); and rows already
    selected and ordered (a live second's) come out as they are."""
    rng = np.random.default_rng(7)
    start, end = OPEN + dt.timedelta(seconds=1), OPEN + dt.timedelta(seconds=5)
    connection = duckdb.connect()
    for schema in ("silver", "gold"):
        connection.execute(f"create schema {schema}")
    for frame in FRAME_TABLES:
        rows = awkward_rows(frame, rng)
        connection.register("held", rows)
        connection.execute(f"create or replace table {frame.table} as select * from held")
        connection.unregister("held")
        params = {"symbol": "ESM4", "session": DAY, "start": start, "end": end}
        expected = connection.sql(frame.sql(), params=params).to_arrow_table()
        selected = frame.select(rows, "ESM4", DAY, start, end)
        assert selected.schema == expected.schema, frame.name
        # the order of the keys; SQL leaves the order of rows with equal keys open
        keys = ("window_start", *frame.order)
        assert values(selected.select(keys)) == values(expected.select(keys)), frame.name
        assert sorted(values(selected), key=repr) == sorted(values(expected), key=repr)
        again = frame.select(selected_rows(frame, selected), "ESM4", DAY, start, end)
        assert values(again) == values(selected), frame.name


def values(table: pa.Table) -> list[dict[str, object]]:
    """A table's rows, NaN comparable (Arrow's equality holds NaN unequal to itself)."""
    return [
        {
            name: "NaN" if isinstance(value, float) and math.isnan(value) else value
            for name, value in row.items()
        }
        for row in table.to_pylist()
    ]


def selected_rows(frame: FrameTable, selected: pa.Table) -> pa.Table:
    """Selected rows as their source holds them (microsecond times, the symbol and day)."""
    rows = selected.set_column(0, "window_start", selected["window_start"].cast(pa.timestamp("us")))
    rows = rows.append_column("symbol", pa.array(["ESM4"] * rows.num_rows))
    return rows.append_column("dt", pa.array([DAY] * rows.num_rows, pa.date32()))


def test_a_held_quantity_beyond_int32_is_an_error_as_in_sql() -> None:
    frame = next(f for f in FRAME_TABLES if f.name == "depth_and_flow_1s")
    rows = awkward_rows(frame, np.random.default_rng(3))
    rows = rows.filter(pc.is_valid(rows["add_qty"]))
    big = pa.array([2**31] + [1] * (rows.num_rows - 1), pa.int64())
    rows = rows.set_column(rows.schema.get_field_index("add_qty"), "add_qty", big)
    with pytest.raises(ValueError, match="add_qty: a value outside int32"):
        frame.select(rows, "ESM4", DAY, OPEN, OPEN + dt.timedelta(seconds=6))
