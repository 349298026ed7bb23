"""What the HUD holds of a live day's newest frame rows: every row of the seconds it says it
holds, and nothing older than RECENT_SECONDS once the frontier has moved past them and the
live day's database holds them; and the session payload its clients share."""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor

import duckdb
import pyarrow as pa

from hud.live import RECENT_SECONDS, LiveDay

DAY = dt.date(2024, 3, 19)
OPEN = dt.datetime(2024, 3, 19, 13, 30)
SCHEMA = pa.schema([("window_start", pa.timestamp("us")), ("price", pa.float64())])


def second_rows(first: int, count: int) -> pa.Table:
    """Two rows per second for `count` seconds from OPEN + `first` s."""
    seconds = [OPEN + dt.timedelta(seconds=first + i // 2) for i in range(2 * count)]
    prices = [float(i) for i in range(2 * count)]
    return pa.table({"window_start": seconds, "price": prices}, SCHEMA)


def seconds_of(table: pa.Table) -> set[dt.datetime]:
    return set(table.column("window_start").to_pylist())


def test_the_newest_rows_are_held_and_older_ones_read_from_the_database() -> None:
    live = LiveDay(DAY, duckdb.connect, {"book_snapshot_1s": SCHEMA})
    # a catch-up's rows in one step, then a paced second at a time
    live.add_frame_rows("book_snapshot_1s", second_rows(0, 300))
    live.publish(OPEN + dt.timedelta(seconds=300), OPEN + dt.timedelta(seconds=300), 0)
    for second in range(300, 310):
        live.add_frame_rows("book_snapshot_1s", second_rows(second, 1))
        until = OPEN + dt.timedelta(seconds=second + 1)
        live.publish(until, until, 0)
    frontier = OPEN + dt.timedelta(seconds=310)
    horizon = frontier - dt.timedelta(seconds=RECENT_SECONDS)

    held_from, held = live.recent_rows(horizon, frontier)
    assert held_from == horizon
    # the rows of every second asked for (and of others in the same steps)
    wanted = {horizon + dt.timedelta(seconds=i) for i in range(RECENT_SECONDS)}
    assert wanted <= seconds_of(held["book_snapshot_1s"])
    # from one second before the horizon: that second is no longer all held, the caller
    # reads it from the database, and the held rows from the horizon on
    held_from, held = live.recent_rows(horizon - dt.timedelta(seconds=1), frontier)
    assert held_from == horizon
    assert wanted <= seconds_of(held["book_snapshot_1s"])
    # no encoder: no frames are held, every client reads its frames itself
    assert live.held_frames(frontier - dt.timedelta(seconds=1), frontier) is None


def test_a_frame_source_without_rows_yet_is_an_empty_table_of_its_schema() -> None:
    live = LiveDay(DAY, duckdb.connect, {"book_snapshot_1s": SCHEMA, "gex_surface_1s": SCHEMA})
    live.add_frame_rows("book_snapshot_1s", second_rows(0, 3))
    held_from, held = live.recent_rows(OPEN, OPEN + dt.timedelta(seconds=3))
    assert held_from == OPEN
    assert held["book_snapshot_1s"].num_rows == 6
    assert held["gex_surface_1s"].num_rows == 0
    assert held["gex_surface_1s"].schema == SCHEMA


def test_rows_the_database_does_not_hold_yet_stay_held() -> None:
    """A frame model's rows reach the live day's database with the rest's thread, which can
    lag: the rows of the seconds it does not hold yet stay held, however far the frames have
    moved on, and are dropped once it holds them."""
    live = LiveDay(DAY, duckdb.connect, {"gex_surface_1s": SCHEMA})
    for second in range(600):
        live.add_frame_rows("gex_surface_1s", second_rows(second, 1))
    lagging = OPEN + dt.timedelta(seconds=60)
    frontier = OPEN + dt.timedelta(seconds=600)
    live.publish(frontier, lagging, 0)
    held_from, held = live.recent_rows(OPEN, frontier)
    assert held_from == lagging
    assert {lagging + dt.timedelta(seconds=i) for i in range(540)} <= seconds_of(
        held["gex_surface_1s"]
    )
    live.publish(frontier, frontier, 0)
    horizon = frontier - dt.timedelta(seconds=RECENT_SECONDS)
    held_from, held = live.recent_rows(OPEN, frontier)
    assert held_from == horizon
    assert min(seconds_of(held["gex_surface_1s"])) == horizon


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
