"""The engine fed batch by batch (live): the same rows as the whole partition at once, on the
real ESH4 and ESM4 files cut at random places, inside events too, with ladders that must
grow as prices move."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import databento as db
import numpy as np
import pytest

from book_engine.errors import EngineError
from book_engine.kernel import F_LAST, QUOTE_ROW, UNDEF_PRICE
from book_engine.replay import MboColumns, WindowConfig, WindowReplay, replay_windows
from foundation.exchange_time import day_start_ns
from tests.test_book_engine_real import FILES, TICK


def day_config(records: np.ndarray) -> WindowConfig:
    """Book rows for the whole UTC day of the records, depth rows for every second with any."""
    start = int(records["ts_recv"][0]) // 86_400_000_000_000 * 86_400_000_000_000
    end = start + 86_400_000_000_000
    first = int(records["ts_recv"][0]) // 1_000_000_000 * 1_000_000_000
    last = int(records["ts_recv"][-1]) // 1_000_000_000 * 1_000_000_000 + 3_000_000_000
    return WindowConfig(start, end, start, end, depth_from_ns=first, depth_to_ns=last)


def rows(chunks) -> tuple[np.ndarray, np.ndarray]:
    chunks = list(chunks)
    return (
        np.concatenate([c.book_rows for c in chunks]),
        np.concatenate([c.depth_rows for c in chunks]),
    )


@pytest.fixture(params=sorted(FILES))
def real_day(
    request: pytest.FixtureRequest, shared_data: Path
) -> tuple[MboColumns, int, WindowConfig]:
    name, instrument = FILES[request.param]
    records = db.DBNStore.from_file(shared_data / name).to_ndarray()
    return MboColumns.from_dbn(records), instrument, day_config(records)


@pytest.mark.parametrize("seed", [1, 2])
def test_batches_of_any_size_give_the_rows_of_the_whole_partition(
    real_day: tuple[MboColumns, int, WindowConfig], seed: int
) -> None:
    columns, instrument, config = real_day
    expected_book, expected_depth = rows(replay_windows(columns, {instrument: TICK}, config))
    assert len(expected_depth) > 1000
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, len(columns)), size=200, replace=False))
    # a narrow margin: the ladder is laid out again many times as prices move
    replay = WindowReplay({instrument: TICK}, config, margin_ticks=1, buffer_rows=5000)
    chunks = []
    for start, stop in zip(np.r_[0, cuts], np.r_[cuts, len(columns)], strict=True):
        chunks += list(replay.push(columns.slice(int(start), int(stop))))
    chunks += list(replay.finish())
    book, depth = rows(chunks)
    np.testing.assert_array_equal(book, expected_book)
    np.testing.assert_array_equal(depth, expected_depth)


@pytest.mark.parametrize("straddling", [False, True])
def test_a_clock_closes_a_second_before_the_next_record_arrives(
    real_day: tuple[MboColumns, int, WindowConfig], straddling: bool
) -> None:
    """Closing each second by the clock as the records' own times pass it changes nothing;
    a second closes as soon as the clock passes its end, even with an event's first records
    waiting for its last (`straddling`: every second's last event completes in the next
    second with a record there)."""
    columns, instrument, config = real_day
    seconds = columns.ts_recv // 1_000_000_000
    starts = np.flatnonzero(np.r_[True, seconds[1:] != seconds[:-1]])
    if straddling:
        flags = columns.flags.copy()
        flags[starts[1:] - 1] &= ~np.uint8(F_LAST)
        columns = dataclasses.replace(columns, flags=flags)
    expected_book, expected_depth = rows(replay_windows(columns, {instrument: TICK}, config))
    replay = WindowReplay({instrument: TICK}, config)
    chunks, waiting = [], 0
    for start, stop in zip(starts, np.r_[starts[1:], len(columns)], strict=True):
        chunks += list(replay.push(columns.slice(int(start), int(stop))))
        # the clock at the start of the next second: this one may close now
        moment = (int(seconds[start]) + 1) * 1_000_000_000
        chunks += list(replay.close_until(moment))
        assert replay.closed_until_ns == min(
            max(moment, config.range_start_ns), config.range_end_ns
        )
        waiting += replay.pending is not None
    chunks += list(replay.finish())
    assert waiting >= (len(starts) - 1 if straddling else 0)
    book, depth = rows(chunks)
    np.testing.assert_array_equal(book, expected_book)
    np.testing.assert_array_equal(depth, expected_depth)


def test_an_instrument_first_seen_in_a_waiting_event_has_a_row_in_the_second_closed() -> None:
    """The windows of an instrument start at its first record, as when every record comes at
    once: the clock closing a second while that record's event waits for its last record
    (received in the next second) emits the instrument's empty book for it."""
    day = day_start_ns(dt.date(2024, 3, 4))
    second = 1_000_000_000
    config = WindowConfig(day, day + 3 * second, day, day + 3 * second)

    def records(ts: list[int], ids: list[int], sides: bytes, prices: list[int], flags: list[int]):
        n = len(ts)
        return MboColumns(
            ts_recv=np.array(ts, np.int64),
            instrument_id=np.array(ids, np.int64),
            action=np.full(n, ord("A"), np.uint8),
            side=np.frombuffer(sides, np.uint8).copy(),
            price=np.array(prices, np.int64) * TICK,
            size=np.arange(1, n + 1, dtype=np.int64),
            order_id=np.arange(1, n + 1, dtype=np.int64),
            flags=np.array(flags, np.uint8),
        )

    # instrument 7: a bid in second 0; instrument 9: an ask at 0.9 s whose event completes
    # with a bid at 1.2 s
    stream = records(
        [day + second // 10, day + 9 * second // 10, day + 12 * second // 10],
        [7, 9, 9], b"BAB", [20_000, 20_004, 20_001], [F_LAST, 0, F_LAST],
    )  # fmt: skip
    ticks = {7: TICK, 9: TICK}
    expected_book, _ = rows(replay_windows(stream, ticks, config))
    replay = WindowReplay(ticks, config)
    assert list(replay.push(stream.slice(0, 2))) == []
    closed, _ = rows(replay.close_until(day + second))
    # second 0: instrument 9's ask waits for its event's last record
    assert closed[["window_start", "instrument", "bid_price", "ask_price"]].tolist() == [
        (day, 0, 20_000 * TICK, UNDEF_PRICE),
        (day, 1, UNDEF_PRICE, UNDEF_PRICE),
    ]
    later, _ = rows([*replay.push(stream.slice(2, 3)), *replay.finish()])
    np.testing.assert_array_equal(np.concatenate([closed, later]), expected_book)
    assert later[later["window_start"] == day + second][
        ["instrument", "bid_price", "ask_price"]
    ].tolist() == [
        (0, 20_000 * TICK, UNDEF_PRICE),
        (1, 20_001 * TICK, 20_004 * TICK),
    ]


def test_a_batch_going_back_in_time_is_named_by_its_stream_record(
    real_day: tuple[MboColumns, int, WindowConfig],
) -> None:
    columns, instrument, config = real_day
    replay = WindowReplay({instrument: TICK}, config)
    list(replay.push(columns))
    with pytest.raises(EngineError, match=rf"record {len(columns)}: ts_recv goes backwards"):
        list(replay.push(columns.slice(0, 10)))


def test_an_instrument_without_a_definition_is_named() -> None:
    day = day_start_ns(dt.date(2024, 3, 4))
    config = WindowConfig(day, day + 86_400_000_000_000, day, day + 86_400_000_000_000)
    replay = WindowReplay({}, config)
    records = MboColumns(
        ts_recv=np.array([day + 5], np.int64),
        instrument_id=np.array([42], np.int64),
        action=np.array([ord("A")], np.uint8),
        side=np.array([ord("B")], np.uint8),
        price=np.array([5000 * 10**9], np.int64),
        size=np.array([1], np.int64),
        order_id=np.array([1], np.int64),
        flags=np.array([128], np.uint8),
    )
    with pytest.raises(EngineError, match=r"instrument\(s\) \[42\] that have no definition"):
        list(replay.push(records))


@pytest.mark.parametrize(("first_price", "cleared_side"), [(11, "bid"), (1, "ask")])
def test_an_instrument_first_seen_in_a_later_batch_leaves_the_others_levels_alone(
    first_price: int, cleared_side: str
) -> None:
    """Instrument 7's ladder spans ticks 100..110 (its bid at 100, its ask at 110); instrument
    9 first appears in a later batch, at `first_price` ticks. Laying its ladder out used to
    move its empty placeholder level by its new price_min onto level 11 - first_price, one
    of 7's: that side's depth read 0 from then on."""
    day = day_start_ns(dt.date(2024, 3, 4))
    second = 1_000_000_000
    config = WindowConfig(day, day + 3 * second, day, day + 3 * second)
    stream = MboColumns(
        ts_recv=np.array([day + 1, day + 2, day + second + 5], np.int64),
        instrument_id=np.array([7, 7, 9], np.int64),
        action=np.full(3, ord("A"), np.uint8),
        side=np.frombuffer(b"BAB", np.uint8).copy(),
        price=np.array([100, 110, first_price], np.int64) * TICK,
        size=np.array([10, 20, 30], np.int64),
        order_id=np.array([1, 2, 3], np.int64),
        flags=np.full(3, F_LAST, np.uint8),
    )
    ticks = {7: TICK, 9: TICK}
    expected, _ = rows(replay_windows(stream, ticks, config))
    replay = WindowReplay(ticks, config, margin_ticks=0)
    book, _ = rows(
        [*replay.push(stream.slice(0, 2)), *replay.push(stream.slice(2, 3)), *replay.finish()]
    )
    seven = book[book["instrument"] == 0]
    assert seven[["bid_size", "ask_size"]].tolist() == [(10, 20)] * 3, cleared_side
    np.testing.assert_array_equal(book, expected)


def many_instruments(seed: int, day: int) -> tuple[MboColumns, dict[int, int]]:
    """A random day of 40 instruments listed one after another, each with adds, cancels,
    price and size modifies and trades around its own price (a few ticks to a few hundred,
    so ladders laid out again land on each other's levels), one record per event."""
    rng = np.random.default_rng(seed)
    n, instruments = 12_000, 40
    centres = rng.integers(20, 400, instruments)
    listed = np.sort(rng.integers(0, n // 2, instruments))
    listed[0] = 0
    resting: dict[int, dict[int, tuple[int, int]]] = {i: {} for i in range(instruments)}
    records = []
    next_order = 1
    for r in range(n):
        q = int(rng.integers(0, int(np.searchsorted(listed, r, side="right"))))
        orders = resting[q]
        choice = rng.random()
        side = int(rng.integers(0, 2))
        price = int(centres[q]) + (1 if side else -1) * int(rng.integers(1, 15))
        if choice < 0.05:
            order, action, size = 0, "T", int(rng.integers(1, 9))
        elif not orders or choice < 0.45:
            order, action, size = next_order, "A", int(rng.integers(1, 9))
            next_order += 1
            orders[order] = (side, price)
        else:
            order = int(rng.choice(list(orders)))
            side, resting_price = orders[order]
            price = int(centres[q]) + (1 if side else -1) * int(rng.integers(1, 15))
            if choice < 0.7:
                action, size, price = "C", int(rng.integers(1, 9)), resting_price
                del orders[order]
            else:
                action, size = "M", int(rng.integers(1, 9))
                orders[order] = (side, price)
        records.append((day + 50_000_000 * (r + 1), 100 + q, action, "BA"[side],
                        price * TICK, size, order))  # fmt: skip
    ts, ids, actions, sides, prices, sizes, order_ids = zip(*records, strict=True)
    columns = MboColumns(
        ts_recv=np.array(ts, np.int64),
        instrument_id=np.array(ids, np.int64),
        action=np.frombuffer("".join(actions).encode(), np.uint8).copy(),
        side=np.frombuffer("".join(sides).encode(), np.uint8).copy(),
        price=np.array(prices, np.int64),
        size=np.array(sizes, np.int64),
        order_id=np.array(order_ids, np.int64),
        flags=np.full(n, F_LAST, np.uint8),
    )
    return columns, {100 + q: TICK for q in range(instruments)}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batches_of_many_instruments_joining_over_time_give_the_whole_rows(seed: int) -> None:
    """As the options' engine meets a live day: instruments first seen in later batches, and
    ladders (with their flows) laid out again around each other's, give the book and depth
    rows of every record at once."""
    day = day_start_ns(dt.date(2024, 3, 4))
    columns, ticks = many_instruments(seed, day)
    end = int(columns.ts_recv[-1]) // 1_000_000_000 * 1_000_000_000 + 1_000_000_000
    config = WindowConfig(day, end, day, end, depth_from_ns=day, depth_to_ns=end)
    expected, expected_depth = rows(replay_windows(columns, ticks, config))
    assert len(np.unique(expected["instrument"])) == 40
    assert len(expected_depth) > 10_000
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, len(columns)), size=300, replace=False))
    replay = WindowReplay(ticks, config, margin_ticks=1)
    chunks = []
    for start, stop in zip(np.r_[0, cuts], np.r_[cuts, len(columns)], strict=True):
        chunks += list(replay.push(columns.slice(int(start), int(stop))))
    book, depth = rows([*chunks, *replay.finish()])
    np.testing.assert_array_equal(book, expected)
    np.testing.assert_array_equal(depth, expected_depth)


@pytest.mark.parametrize("seed", [1, 2])
def test_quote_rows_are_the_book_rows_quote_fields(seed: int) -> None:
    """An option's replay keeps only the quote of each book row (QUOTE_ROW): the same
    seconds, instruments, best prices and validity as whole BOOK_ROWs, in batches too."""
    day = day_start_ns(dt.date(2024, 3, 4))
    columns, ticks = many_instruments(seed, day)
    end = int(columns.ts_recv[-1]) // 1_000_000_000 * 1_000_000_000 + 1_000_000_000
    config = WindowConfig(day, end, day, end, with_spot=False)
    whole, _ = rows(replay_windows(columns, ticks, config))
    assert len(np.unique(whole["instrument"])) == 40
    assert (whole["bid_size"] > 0).any()  # a whole row has more than its quote
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, len(columns)), size=300, replace=False))
    replay = WindowReplay(ticks, dataclasses.replace(config, quote_rows=True), margin_ticks=1)
    chunks = []
    for start, stop in zip(np.r_[0, cuts], np.r_[cuts, len(columns)], strict=True):
        chunks += list(replay.push(columns.slice(int(start), int(stop))))
    quotes, _ = rows([*chunks, *replay.finish()])
    assert quotes.dtype == QUOTE_ROW
    np.testing.assert_array_equal(quotes, whole[list(QUOTE_ROW.names)].astype(QUOTE_ROW))
