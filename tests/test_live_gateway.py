"""Live on the Databento gateway (bad input): a dropped connection or
records the gateway skipped are a gap: the books are invalid from the last record received
until a new subscription's snapshot restates them, and the day goes on. Gateway sessions are
made from a day's raw files (tests/gateway.py); everything after the subscription call is the
real code."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import databento as db
import databento_dbn as dbn
import duckdb
import numpy as np
import pytest
from databento.common.error import BentoError
from playwright.sync_api import sync_playwright

from book_engine.errors import EngineError
from foundation.dbn_facts import F_SNAPSHOT
from foundation.exchange_time import day_start_ns
from foundation.lake import Lake
from hud.headless import free_port, launch_chromium
from live.command import LiveHud, LiveRun, run_feed
from live.databento_feed import (
    LIVE_SOURCE,
    MAX_FAILED_SUBSCRIPTIONS,
    MAX_REPLAY_SECONDS,
    RECONNECT_DELAYS_SECONDS,
    GatewayFeed,
    ReplayedRecords,
)
from live.feed import ClockTick, FeedBatch, FeedGap
from live.session import LiveError
from tests.dbn_fixtures import definition as dbn_definition
from tests.dbn_fixtures import mbo as fixture_mbo
from tests.dbn_fixtures import open_interest
from tests.gateway import (
    GatewaySession,
    day_end,
    gateway_records,
    replays_completed,
    subscription_at,
    subscription_before,
)
from tests.markets import warehouse

NS = 1_000_000_000
NEW_YORK = ZoneInfo("America/New_York")
DAY = dt.date(2024, 3, 13)
DAY_START = day_start_ns(DAY)
T0 = DAY_START + 14 * 3600 * NS
REPLAYS_DONE = replays_completed(T0)  # a subscription's replays, empty here


def mbo(ts_recv: int, order_id: int = 1) -> dbn.MBOMsg:
    """An add of instrument 7 (no symbol: ES.OPT's batches)."""
    return fixture_mbo(7, ts_recv, "A", "B", 10**12, 1, order_id)


def run(feed: GatewayFeed) -> list[object]:
    return list(feed)


def test_a_dropped_connection_is_a_gap_then_a_new_subscription() -> None:
    clock = [T0]
    first = GatewaySession(
        [*REPLAYS_DONE, mbo(T0 + 1), mbo(T0 + 2, 2)], clock, T0 + 10 * NS, BentoError("x")
    )
    second = GatewaySession([*REPLAYS_DONE, mbo(T0 + 20 * NS, 3)], clock, day_end(DAY))
    slept: list[float] = []
    warned: list[str] = []
    feed = GatewayFeed(
        iter([first, second]).__next__, DAY_START, day_end(DAY), clock_ns=lambda: clock[0],
        sleep=slept.append, warn=warned.append,
    )  # fmt: skip
    events = run(feed)
    assert [type(e) for e in events] == [FeedBatch, FeedGap, FeedBatch]
    assert events[1] == FeedGap(T0 + 2, "the connection dropped: x")
    assert events[2].offset == 2  # positions go on across subscriptions (the raw capture's)
    assert first.stopped
    assert second.stopped
    assert slept == [0.0, 0.0]  # a session that delivered records is resubscribed at once
    assert warned == [
        f"{LIVE_SOURCE}: the connection dropped: x; the books are invalid until the snapshot"
    ]


def test_skipped_records_resubscribe_and_heartbeats_close_seconds() -> None:
    clock = [T0]
    skipped = dbn.ErrorMsg(T0, "lagging", code=dbn.ErrorCode.SKIPPED_RECORDS_AFTER_SLOW_READING)
    heartbeat = dbn.SystemMsg(T0 + 5 * NS, "Heartbeat", code=dbn.SystemCode.HEARTBEAT)
    warning = dbn.SystemMsg(T0, "falling behind", code=dbn.SystemCode.SLOW_READER_WARNING)
    first = GatewaySession(
        [*REPLAYS_DONE, mbo(T0 + 1), heartbeat, warning, skipped, mbo(T0 + 6 * NS)], clock, 0
    )
    second = GatewaySession(REPLAYS_DONE, clock, day_end(DAY))
    warned: list[str] = []
    feed = GatewayFeed(
        iter([first, second]).__next__, DAY_START, day_end(DAY), clock_ns=lambda: clock[0],
        sleep=lambda _: None, warn=warned.append,
    )  # fmt: skip
    events = run(feed)
    assert events[1:] == [
        ClockTick(T0 + 5 * NS),
        FeedGap(T0 + 1, "the gateway skipped records: lagging"),
    ]  # nothing after the skip is used: the new subscription restates the books
    assert warned[0] == f"{LIVE_SOURCE}: the gateway warns: falling behind"
    assert first.stopped


def test_one_drop_is_one_gap_however_many_subscriptions_then_fail() -> None:
    clock = [T0]
    dropped = GatewaySession([*REPLAYS_DONE, mbo(T0 + 1)], clock, T0, BentoError("reset"))
    resumed = GatewaySession([*REPLAYS_DONE, mbo(T0 + 9 * NS, 2)], clock, day_end(DAY))
    attempts = iter([dropped, BentoError("refused"), BentoError("refused"), resumed])

    def subscribe() -> GatewaySession:
        attempt = next(attempts)
        if isinstance(attempt, BentoError):
            raise attempt
        return attempt

    slept: list[float] = []
    feed = GatewayFeed(
        subscribe, DAY_START, day_end(DAY), clock_ns=lambda: clock[0], sleep=slept.append,
        warn=lambda _: None,
    )  # fmt: skip
    events = run(feed)
    assert [type(e) for e in events] == [FeedBatch, FeedGap, FeedBatch]
    assert slept == [0.0, 0.0, 1.0, 2.0]


def test_the_feed_ends_at_its_stop_inside_a_batch() -> None:
    clock = [T0]
    session = GatewaySession(
        [*REPLAYS_DONE, mbo(T0 + 1), mbo(T0 + 2, 2), mbo(T0 + 3, 3)], clock, T0
    )
    feed = GatewayFeed(iter([session]).__next__, DAY_START, T0 + 3, clock_ns=lambda: clock[0])
    (batch,) = run(feed)
    assert batch.records["ts_recv"].tolist() == [T0 + 1, T0 + 2]
    assert session.stopped


def test_a_heartbeat_after_the_stop_ends_a_quiet_feed() -> None:
    heartbeat = dbn.SystemMsg(T0 + 5 * NS, "Heartbeat", code=dbn.SystemCode.HEARTBEAT)
    session = GatewaySession([*REPLAYS_DONE, mbo(T0 + 1), heartbeat, mbo(T0 + 6 * NS)], [T0], T0)
    feed = GatewayFeed(iter([session]).__next__, DAY_START, T0 + 5 * NS, clock_ns=lambda: T0)
    assert [type(event) for event in run(feed)] == [FeedBatch]
    assert session.stopped


def test_a_gateway_error_stops_the_feed_with_its_text() -> None:
    error = dbn.ErrorMsg(0, "subscription limit reached", code=dbn.ErrorCode.INVALID_SUBSCRIPTION)
    session = GatewaySession([error], [T0], T0)
    feed = GatewayFeed(iter([session]).__next__, DAY_START, day_end(DAY), clock_ns=lambda: T0)
    with pytest.raises(LiveError, match="the gateway reports an error: subscription limit"):
        run(feed)
    assert session.stopped


def test_subscriptions_that_keep_failing_wait_longer_then_give_up() -> None:
    slept: list[float] = []
    attempts = []

    def refused() -> GatewaySession:
        attempts.append(1)
        raise BentoError("Connection to glbx-mdp3.lsg.databento.com:13000 failed")

    feed = GatewayFeed(
        refused, DAY_START, day_end(DAY), clock_ns=lambda: T0, sleep=slept.append,
        warn=lambda _: None,
    )  # fmt: skip
    with pytest.raises(LiveError, match=f"{MAX_FAILED_SUBSCRIPTIONS} subscriptions in a row"):
        run(feed)  # and no gap: nothing was received yet
    assert len(attempts) == MAX_FAILED_SUBSCRIPTIONS + 1
    assert slept[: len(RECONNECT_DELAYS_SECONDS)] == list(RECONNECT_DELAYS_SECONDS)
    assert slept[-1] == RECONNECT_DELAYS_SECONDS[-1]


def statistic(ts_recv: int, quantity: int = 1) -> dbn.StatMsg:
    """An open interest of instrument 7."""
    return open_interest(7, ts_recv, quantity)


def test_replayed_records_are_delivered_once() -> None:
    """An earlier day's record is dropped; within 60 s of the last one delivered, a record
    with the bytes of one delivered is dropped; earlier than that, any record is (records
    arrive in ts_recv order: it was delivered); the bytes are forgotten as the 60 s pass."""
    replayed = ReplayedRecords(DAY_START)
    assert not replayed.deliver(statistic(DAY_START - 1))
    first = [statistic(T0 + i * NS, i) for i in range(3)]
    assert [replayed.deliver(r) for r in first] == [True, True, True]
    assert [replayed.deliver(r) for r in first] == [False, False, False]  # a replay again
    assert replayed.deliver(statistic(T0 + NS, 99))  # the same time, other bytes: new
    assert not replayed.deliver(statistic(T0 - 60 * NS - 1, 5))  # before the window
    later = [statistic(T0 + (61 + i) * NS, i) for i in range(40_000)]
    assert all(replayed.deliver(r) for r in later)
    window = replayed.recent[dbn.StatMsg]
    assert len(window) == 61  # only the last 60 s of bytes are kept
    assert not any(replayed.deliver(r) for r in later[:100])  # older than the window


def test_statistics_and_market_records_wait_for_the_replays() -> None:
    """The replays of two subscriptions and the snapshot may interleave: statistics, market
    records and heartbeats wait until both replays have completed, then the statistics come
    out first, so every definition comes before them and they come before the first market
    record."""
    definition_records = [
        dbn_definition(7, "ESM4 C5000", "C", T0 - 2, underlying="ESM4", strike_points=5000.0)
    ]
    heartbeat = dbn.SystemMsg(T0 + NS, "Heartbeat", code=dbn.SystemCode.HEARTBEAT)
    clock = [T0]
    session = GatewaySession(
        [mbo(T0 + 1), statistic(T0 - 1), heartbeat, REPLAYS_DONE[0], *definition_records,
         REPLAYS_DONE[1], mbo(T0 + 2 * NS, 2)],
        clock, day_end(DAY),
    )  # fmt: skip
    feed = GatewayFeed(iter([session]).__next__, DAY_START, day_end(DAY), clock_ns=lambda: clock[0])
    events = run(feed)
    kinds = [e.schema.value if isinstance(e, FeedBatch) else type(e).__name__ for e in events]
    assert kinds == ["definition", "statistics", "mbo", "ClockTick", "mbo"]


def test_replays_that_never_complete_stop_the_session() -> None:
    """The gateway's heartbeats show how long the replays have held the session."""
    heartbeats = [
        dbn.SystemMsg(T0 + i * 5 * NS, "Heartbeat", code=dbn.SystemCode.HEARTBEAT)
        for i in range(MAX_REPLAY_SECONDS // 5 + 2)
    ]
    session = GatewaySession([mbo(T0 + 1), *heartbeats], [T0], day_end(DAY))
    feed = GatewayFeed(iter([session]).__next__, DAY_START, day_end(DAY), clock_ns=lambda: T0)
    with pytest.raises(LiveError, match=f"did not complete within {MAX_REPLAY_SECONDS} s"):
        run(feed)


def last_included_day(lake: Lake) -> tuple[str, dt.date, list[Path], int]:
    """The end-to-end market's last included day: its contract, date, raw files and the
    research window's opening (ns)."""
    symbol, day = warehouse(
        lake,
        "select selected_symbol, dt from silver.contract_day_selection "
        "where is_included order by dt desc limit 1",
    )[0]
    opening = warehouse(
        lake, "select session_window_start from silver.session_calendar where dt = ?", [day]
    )[0][0]
    opening_ns = int(opening.replace(tzinfo=dt.UTC).timestamp()) * NS
    return symbol, day, lake.raw_day_files(day), opening_ns


def gateway_feed(paths: list[Path], day: dt.date, sessions: list[tuple], stop: int) -> GatewayFeed:
    """The day's feed over one gateway session per subscription, each given as (its records,
    the wall time it ends at, the error it ends with), symbols mapped from the day's files."""
    clock = [0]
    remaining = iter(sessions)

    def subscribe() -> GatewaySession:
        records, ended_at, error = next(remaining)
        return GatewaySession(records, clock, ended_at, error)

    feed = GatewayFeed(
        subscribe, day_start_ns(day), stop, clock_ns=lambda: clock[0], sleep=lambda _: None,
        warn=lambda _: None,
    )  # fmt: skip
    for path in paths:
        feed.symbology[LIVE_SOURCE].insert_metadata(db.DBNStore.from_file(path).metadata)
    return feed


@pytest.fixture(scope="module")
def dropped(
    market_lake: Lake, tmp_path_factory: pytest.TempPathFactory
) -> tuple[LiveRun, Path, dict[str, int]]:
    """The last included day through two gateway sessions: the first drops 30 minutes into
    the session (the client's heartbeat timeout), the records of the next 20 seconds are
    lost, and the second starts with the snapshot of the books at its start; the feed stops
    10 minutes later."""
    symbol, day, paths, opening_ns = last_included_day(market_lake)
    cut = opening_ns + 1800 * NS
    resumed = cut + 20 * NS
    stop = resumed + 600 * NS
    timeout = BentoError("Gateway timeout: 7 second(s) since last message")
    sessions = [
        (subscription_before(paths, day, until_ns=cut), cut + 7 * NS, timeout),
        (subscription_at(paths, resumed), stop, None),
    ]
    feed = gateway_feed(paths, day, sessions, stop)
    out = tmp_path_factory.mktemp("dropped") / "emit"
    moments = {"day": day, "cut": cut, "resumed": resumed, "stop": stop}
    urls: list[str] = []
    hud = LiveHud("127.0.0.1", free_port(), urls.append, lambda run: moments.update(
        page=badges_on_the_page(urls[0], day, run.gaps[0].after_ns, resumed)
    ))  # fmt: skip
    result = run_feed(market_lake, feed, feed.symbology, day, symbol, out, hud=hud)
    return result, out, moments


def badges_on_the_page(url: str, day: dt.date, lost_ns: int, resumed_ns: int) -> dict:
    """The live day's page (the HUD still serves it after the feed) in the gap and after the
    snapshot: the book badge (hidden, title) and the console's errors."""
    seen: dict[str, object] = {"errors": []}
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 800})
        page.on("pageerror", lambda error: seen["errors"].append(str(error)))
        for name, moment_ns in (("during", lost_ns + 5 * NS), ("after", resumed_ns + 60 * NS)):
            second = moment_ns // NS
            clock = dt.datetime.fromtimestamp(second, NEW_YORK).strftime("%H:%M:%S")
            page.goto(f"{url}?session={day}&t={clock}")
            page.wait_for_function(
                f"document.body.dataset.now === '{second}' && "
                "document.body.dataset.complete === '1'",
                timeout=30_000,
            )
            if name == "during":  # the gap's notice names why
                page.wait_for_function(
                    "document.getElementById('book-status').title.includes('lost')"
                )
            seen[name] = page.evaluate(
                "(() => { const b = document.getElementById('book-status'); "
                "return [b.hidden, b.title]; })()"
            )
        browser.close()
    return seen


def rows_by_second(lake: Lake, out: Path, table: str, columns: str, day: dt.date) -> tuple:
    connection = duckdb.connect(str(lake.duckdb_path), read_only=True)
    try:
        live = connection.sql(
            f"select epoch_ns(window_start), {columns} from read_parquet('{out / table}.parquet') "
            "order by all"
        ).fetchall()
        built = connection.sql(
            f"select epoch_ns(window_start), {columns} from silver.{table} "
            f"where dt = DATE '{day}' order by all"
        ).fetchall()
    finally:
        connection.close()
    return live, built


def test_a_dropped_connection_invalidates_the_books_until_the_snapshot(
    market_lake: Lake, dropped: tuple[LiveRun, Path, dict[str, int]]
) -> None:
    result, out, moments = dropped
    cut, resumed = moments["cut"], moments["resumed"]
    (gap,) = result.gaps
    assert gap.after_ns <= cut
    assert "Gateway timeout" in gap.reason
    columns = "best_bid_price, best_bid_size, best_ask_price, best_ask_size, book_valid"
    live, built = rows_by_second(
        market_lake, out, "engine_book_snapshot_1s", columns, moments["day"]
    )
    assert len(live) == len(built) == 86_400
    gap_second = gap.after_ns // NS * NS
    resumed_second = resumed // NS * NS
    before = [i for i, row in enumerate(built) if row[0] < gap_second]
    during = [i for i, row in enumerate(built) if gap_second <= row[0] < resumed_second]
    after = [i for i, row in enumerate(built) if resumed_second < row[0] < moments["stop"] - NS]
    assert [live[i] for i in before] == [built[i] for i in before]
    assert len(during) >= 20
    assert all(not live[i][5] and not live[i][2] and built[i][5] for i in during)
    # the snapshot restates the books exactly: every later second is the warehouse's again
    assert [live[i] for i in after] == [built[i] for i in after]


def test_options_are_invalid_through_the_gap_and_quoted_again_after(
    market_lake: Lake, dropped: tuple[LiveRun, Path, dict[str, int]]
) -> None:
    result, out, moments = dropped
    (gap,) = result.gaps
    columns = "instrument_id, bid_price, ask_price, iv_status"
    live, built = rows_by_second(
        market_lake, out, "engine_options_quotes_1s", columns, moments["day"]
    )
    gap_second, resumed_second = gap.after_ns // NS * NS, moments["resumed"] // NS * NS
    during = [row for row in live if gap_second < row[0] < resumed_second]
    assert during
    assert {row[4] for row in during} == {"invalid_book"}
    after_live = [row[:4] for row in live if resumed_second < row[0] < moments["stop"] - NS]
    after_built = [row[:4] for row in built if resumed_second < row[0] < moments["stop"] - NS]
    assert after_live == after_built
    assert len(after_live) > 1000
    statuses = np.array([row[4] for row in live if resumed_second < row[0] < moments["stop"]])
    assert (statuses == "ok").mean() > 0.5


def test_the_hud_shows_the_books_invalid_through_the_gap_and_why(
    dropped: tuple[LiveRun, Path, dict[str, object]],
) -> None:
    page = dropped[2]["page"]
    hidden, title = page["during"]
    assert not hidden
    assert "the feed lost records after" in title
    assert "Gateway timeout" in title
    assert page["after"][0]  # the snapshot made the book valid again
    assert page["errors"] == []


def test_a_malformed_record_is_named_and_the_hud_keeps_serving_the_day(
    market_lake: Lake, tmp_path: Path
) -> None:
    """A futures record received after a later one (ts_recv going backwards) stops the feed
    with an error naming the partition and the record; the HUD still serves the day so far
    and says why."""
    symbol, day, paths, _ = last_included_day(market_lake)
    records = list(gateway_records(paths, until_ns=day_start_ns(day) + 3600 * NS))
    clock = [0]
    feed = GatewayFeed(
        lambda: GatewaySession([*replays_completed(0), *records, late], clock, day_end(day)),
        day_start_ns(day),
        day_end(day),
        clock_ns=lambda: clock[0],
    )
    symbols = feed.symbology[LIVE_SOURCE]
    for path in paths:
        symbols.insert_metadata(db.DBNStore.from_file(path).metadata)
    last = next(
        r for r in reversed(records)
        if isinstance(r, dbn.MBOMsg) and symbols.resolve(r.instrument_id, day) == symbol
    )  # fmt: skip
    late = dbn.MBOMsg(
        publisher_id=last.publisher_id, instrument_id=last.instrument_id,
        ts_event=last.ts_event, order_id=last.order_id, price=last.price, size=last.size,
        action=last.action, side=last.side, ts_recv=last.ts_recv - NS, flags=last.flags,
        sequence=last.sequence,
    )  # fmt: skip
    urls: list[str] = []
    seen: dict[str, object] = {}

    def after_failure(error: Exception) -> None:
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page()
            page.goto(urls[0])
            page.wait_for_function(
                "document.getElementById('mode-badge').textContent === 'LIVE · failed'"
            )
            seen["banner"] = page.inner_text("#banner")
            browser.close()

    hud = LiveHud("127.0.0.1", free_port(), urls.append, after_failure=after_failure)
    with pytest.raises(EngineError) as raised:
        run_feed(market_lake, feed, feed.symbology, day, symbol, None, hud=hud)
    assert str(raised.value).startswith(
        f"futures_mbo symbol={symbol} dt={day} ({LIVE_SOURCE}): record "
    )
    assert "ts_recv goes backwards" in str(raised.value)
    assert "the live feed failed: futures_mbo" in seen["banner"]
    assert "ts_recv goes backwards" in seen["banner"]


# ---- definitions and statistics sent before a subscription: the gateway's intraday replay


def delivered(events: list[object], schema: str) -> list[bytes]:
    """The records of `schema` the feed delivered, sorted (a batch holds one product's)."""
    return sorted(
        record.tobytes()
        for event in events
        if isinstance(event, FeedBatch) and event.schema.value == schema
        for record in event.records
    )


def schema_records(paths: list[Path], schema: str, **bounds: int) -> list[dbn.DBNRecord]:
    files = [p for p in paths if db.DBNStore.from_file(p).schema == db.Schema(schema)]
    return list(gateway_records(files, **bounds))


def test_a_late_subscription_gets_the_days_definitions_and_statistics_first(
    market_lake: Lake,
) -> None:
    """Joined at the open, after the day's open interest was published: the day's
    definitions and statistics come by the replays, and the books' snapshot, sent here before
    the replays complete, is held until they have: the session sees the day's statistics
    before its first market record, as in the day's files."""
    _, day, paths, opening_ns = last_included_day(market_lake)
    stop = opening_ns + 10 * NS
    events = run(gateway_feed(paths, day, [(subscription_at(paths, opening_ns), stop, None)], stop))
    for schema in ("definition", "statistics"):
        sent = schema_records(paths, schema, until_ns=stop - 1)
        assert [r for r in sent if r.ts_recv <= opening_ns], schema  # replayed
        assert delivered(events, schema) == sorted(bytes(r) for r in sent), schema
    batches = [e for e in events if isinstance(e, FeedBatch)]
    first_market = next(i for i, b in enumerate(batches) if b.schema.value == "mbo")
    replayed = [
        i for i, b in enumerate(batches)
        if b.schema.value == "statistics" and b.records["ts_recv"][0] <= opening_ns
    ]  # fmt: skip
    assert replayed
    assert max(replayed) < first_market
    assert batches[first_market].records["flags"][0] & F_SNAPSHOT


def test_replayed_records_are_delivered_once_after_a_drop(market_lake: Lake) -> None:
    """After a drop, the next subscription replays definitions and statistics again; those
    delivered before are dropped: each of the day's records is delivered once, the
    lost seconds' included."""
    _, day, paths, opening_ns = last_included_day(market_lake)
    cut, resumed = opening_ns + 600 * NS, opening_ns + 620 * NS
    stop = resumed + 60 * NS
    sessions = [
        (subscription_before(paths, day, until_ns=cut), cut, BentoError("reset")),
        (subscription_at(paths, resumed), stop, None),
    ]
    events = run(gateway_feed(paths, day, sessions, stop))
    assert sum(isinstance(e, FeedGap) for e in events) == 1
    for schema in ("definition", "statistics"):
        every = sorted(bytes(r) for r in schema_records(paths, schema, until_ns=stop - 1))
        assert delivered(events, schema) == every, schema


def test_a_session_joined_after_the_open_prices_with_the_days_open_interest(
    market_lake: Lake, tmp_path: Path
) -> None:
    """Joined at the open, half an hour after the options' first second priced: the day's
    open interest (published at midnight) comes by the replay, so every option-second from
    the snapshot on has the warehouse's open interest and quote."""
    symbol, day, paths, opening_ns = last_included_day(market_lake)
    stop = opening_ns + 120 * NS
    feed = gateway_feed(paths, day, [(subscription_at(paths, opening_ns), stop, None)], stop)
    out = tmp_path / "emit"
    run_feed(market_lake, feed, feed.symbology, day, symbol, out)
    columns = "instrument_id, bid_price, ask_price, open_interest, gex is null"
    live, built = rows_by_second(market_lake, out, "engine_options_quotes_1s", columns, day)
    after = lambda rows: [r for r in rows if opening_ns < r[0] < stop - NS]  # noqa: E731
    assert len(after(live)) > 1000
    assert after(live) == after(built)
    assert any(row[4] is not None for row in after(live))
