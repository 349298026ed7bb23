"""The book engine, one rule per test, on hand-built DBN records with answers checked by hand."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os
import subprocess
import sys

import databento as db
import databento_dbn as dbn
import numpy as np
import pytest

from book_engine import kernel
from book_engine.errors import EngineError
from book_engine.replay import (
    MboColumns,
    TickSizes,
    WindowConfig,
    WindowReplay,
    book_at,
    replay_windows,
    scan_batch,
)
from foundation.dbn_facts import F_LAST, F_SNAPSHOT, UNDEF_PRICE
from tests.dbn_fixtures import day_start_ns, encode, mbo, metadata, px

DAY = dt.date(2024, 5, 8)
T0 = day_start_ns(DAY)
SECOND = 1_000_000_000
MS = 1_000_000
ES = 1
TICKS = {ES: px(0.25)}
SNAP = F_SNAPSHOT


def columns(records: list[dbn.MBOMsg], symbols: dict[str, int] | None = None) -> MboColumns:
    """Records through real DBN bytes and the databento decoder."""
    header = metadata(dbn.Schema.MBO, DAY, DAY + dt.timedelta(days=1), symbols or {"ESM4": ES})
    store = db.DBNStore.from_bytes(io.BytesIO(encode(header, records)))
    return MboColumns.from_dbn(store.to_ndarray())


def snapshot(*orders: tuple[str, float, int, int], at: int = T0) -> list[dbn.MBOMsg]:
    """R and the resting orders (side, price, size, id) with F_SNAPSHOT, F_LAST on the last."""
    records = [mbo(ES, at, "R", flags=SNAP)]
    for i, (side, price, size, order_id) in enumerate(orders):
        last = F_LAST if i == len(orders) - 1 else 0
        records.append(mbo(ES, at, "A", side, px(price), size, order_id, flags=SNAP | last))
    return records


def windows(
    records: list[dbn.MBOMsg],
    seconds: int = 4,
    pre_open: tuple = (),
    ticks: dict[int, int] = TICKS,
    symbols: dict[str, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    config = WindowConfig(
        range_start_ns=T0,
        range_end_ns=T0 + seconds * SECOND,
        book_from_ns=T0,
        book_to_ns=T0 + seconds * SECOND,
        depth_from_ns=T0,
        depth_to_ns=T0 + seconds * SECOND,
        depth_ticks=40,
        pre_open=pre_open,
    )
    chunks = list(replay_windows(columns(records, symbols), ticks, config))
    return (
        np.concatenate([c.book_rows for c in chunks]),
        np.concatenate([c.depth_rows for c in chunks]),
    )


def level(depth: np.ndarray, second: int, side: int, price: float) -> np.void:
    rows = depth[
        (depth["window_start"] == T0 + second * SECOND)
        & (depth["side"] == side)
        & (depth["price"] == px(price))
    ]
    assert len(rows) == 1, f"no row for second {second}, side {side}, price {price}"
    return rows[0]


BID, ASK = 0, 1
BASE = snapshot(("B", 100.00, 5, 1), ("A", 100.25, 5, 2))


def test_modify_on_unknown_order_adds_it() -> None:
    records = [*BASE, mbo(ES, T0 + 200 * MS, "M", "B", px(99.75), 3, 77)]
    _, depth = windows(records)
    row = level(depth, 0, BID, 99.75)
    assert (row["depth_qty_start"], row["depth_qty_end"], row["add_qty"]) == (0, 3, 3)
    assert book_at(columns(records), TICKS).unknown_modifies == 1


def test_price_change_and_size_increase_reset_the_resting_clock_size_decrease_does_not() -> None:
    records = [
        *BASE,
        mbo(ES, T0 + 10 * MS, "A", "B", px(99.50), 5, 10),  # decreased later: still resting
        mbo(ES, T0 + 10 * MS, "A", "B", px(99.25), 5, 11),  # increased later: young again
        mbo(ES, T0 + 10 * MS, "A", "B", px(99.00), 5, 12),  # repriced later: young at 98.75
        mbo(ES, T0 + 700 * MS, "M", "B", px(99.50), 4, 10),
        mbo(ES, T0 + 700 * MS, "M", "B", px(99.25), 7, 11),
        mbo(ES, T0 + 700 * MS, "M", "B", px(98.75), 5, 12),
    ]
    _, depth = windows(records)
    assert level(depth, 0, BID, 99.50)["depth_qty_rest"] == 4
    assert level(depth, 0, BID, 99.25)["depth_qty_rest"] == 0
    assert level(depth, 0, BID, 98.75)["depth_qty_rest"] == 0
    # a second later every order has rested 500 ms
    assert level(depth, 1, BID, 99.25)["depth_qty_rest"] == 7
    assert level(depth, 1, BID, 98.75)["depth_qty_rest"] == 5


def test_pulls_count_as_resting_only_after_500_ms_at_the_price() -> None:
    records = [
        *BASE,
        mbo(ES, T0 + 100 * MS, "A", "A", px(100.50), 2, 20),
        mbo(ES, T0 + 100 * MS, "A", "A", px(100.50), 3, 21),
        mbo(ES, T0 + 400 * MS, "C", "A", px(100.50), 2, 20),  # 300 ms old: a young pull
        mbo(ES, T0 + 900 * MS, "C", "A", px(100.50), 3, 21),  # 800 ms old: a resting pull
    ]
    _, depth = windows(records)
    row = level(depth, 0, ASK, 100.50)
    assert (row["add_qty"], row["pull_qty"], row["pull_qty_rest"], row["depth_qty_end"]) == (
        5,
        5,
        3,
        0,
    )


def test_cancel_after_a_fill_is_a_fill_not_a_pull() -> None:
    records = [
        *BASE,
        mbo(ES, T0 + 300 * MS, "T", "A", px(100.00), 5, 900, flags=0),
        mbo(ES, T0 + 300 * MS, "F", "B", px(100.00), 5, 1, flags=0),
        mbo(ES, T0 + 300 * MS, "C", "B", px(100.00), 5, 1),
    ]
    _, depth = windows(records)
    row = level(depth, 0, BID, 100.00)
    assert (row["fill_qty"], row["pull_qty"], row["depth_qty_end"]) == (5, 0, 0)


def test_partial_fill_reduces_by_modify_and_iceberg_refill_adds() -> None:
    records = [
        *BASE,
        mbo(ES, T0 + 300 * MS, "T", "B", px(100.25), 2, 901, flags=0),
        mbo(ES, T0 + 300 * MS, "F", "A", px(100.25), 2, 2, flags=0),
        mbo(ES, T0 + 300 * MS, "M", "A", px(100.25), 3, 2),  # 5 -> 3: a fill of 2
        mbo(ES, T0 + 1800 * MS, "T", "A", px(100.00), 5, 902, flags=0),
        mbo(ES, T0 + 1800 * MS, "F", "B", px(100.00), 5, 1, flags=0),
        mbo(ES, T0 + 1800 * MS, "M", "B", px(100.00), 5, 1),  # refilled to 5: fill 5, add 5
    ]
    _, depth = windows(records)
    ask = level(depth, 0, ASK, 100.25)
    assert (ask["fill_qty"], ask["pull_qty"], ask["depth_qty_end"]) == (2, 0, 3)
    bid = level(depth, 1, BID, 100.00)
    assert (bid["fill_qty"], bid["add_qty"], bid["depth_qty_start"], bid["depth_qty_end"]) == (
        5,
        5,
        5,
        5,
    )
    assert bid["depth_qty_rest"] == 0  # the refill went to the back of the queue


def test_cancel_after_a_partial_fill_pulls_the_unfilled_rest() -> None:
    records = [
        *BASE,
        mbo(ES, T0 + 600 * MS, "T", "A", px(100.00), 2, 903, flags=0),
        mbo(ES, T0 + 600 * MS, "F", "B", px(100.00), 2, 1, flags=0),
        mbo(ES, T0 + 600 * MS, "C", "B", px(100.00), 3, 1),  # 2 filled, the other 3 cancelled
    ]
    _, depth = windows(records)
    row = level(depth, 0, BID, 100.00)
    assert (row["fill_qty"], row["pull_qty"], row["pull_qty_rest"], row["depth_qty_end"]) == (
        2,
        3,
        3,
        0,
    )


def test_an_order_refilled_twice_in_one_event_is_young_once() -> None:
    """F5 M5 F5 M5: the iceberg's queue clock resets twice at one ts_recv; its 5 contracts are
    young once, so the resting depth is 0, not -5."""
    at = T0 + 800 * MS  # young at the window's end: under 500 ms at the price
    records = [
        *BASE,
        mbo(ES, at, "F", "B", px(100.00), 5, 1, flags=0),
        mbo(ES, at, "M", "B", px(100.00), 5, 1, flags=0),
        mbo(ES, at, "F", "B", px(100.00), 5, 1, flags=0),
        mbo(ES, at, "M", "B", px(100.00), 5, 1),
    ]
    _, depth = windows(records)
    row = level(depth, 0, BID, 100.00)
    assert (row["fill_qty"], row["add_qty"], row["depth_qty_end"]) == (10, 10, 5)
    assert row["depth_qty_rest"] == 0


def test_an_add_and_its_size_increase_in_one_event_are_young_once() -> None:
    at = T0 + 800 * MS
    records = [
        *BASE,
        mbo(ES, at, "A", "B", px(99.75), 5, 70, flags=0),
        mbo(ES, at, "M", "B", px(99.75), 8, 70),
    ]
    _, depth = windows(records)
    row = level(depth, 0, BID, 99.75)
    assert (row["add_qty"], row["depth_qty_end"], row["depth_qty_rest"]) == (8, 8, 0)


def test_fills_on_unknown_orders_change_nothing() -> None:
    records = [*BASE, mbo(ES, T0 + 300 * MS, "F", "B", px(100.00), 4, 555)]
    _, depth = windows(records)
    row = level(depth, 0, BID, 100.00)
    assert (row["fill_qty"], row["depth_qty_end"]) == (0, 5)
    assert book_at(columns(records), TICKS).unknown_fills == 1


def test_reprice_away_from_and_toward_spot() -> None:
    records = [
        *snapshot(
            ("B", 100.00, 5, 1), ("A", 100.25, 5, 2), ("A", 101.00, 4, 3), ("B", 99.00, 6, 4)
        ),
        mbo(ES, T0 + 100 * MS, "T", "B", px(100.25), 1, 903, flags=0),
        mbo(ES, T0 + 100 * MS, "F", "A", px(100.25), 1, 2, flags=0),
        mbo(ES, T0 + 100 * MS, "M", "A", px(100.25), 4, 2),  # spot is now 100.25
        mbo(ES, T0 + 200 * MS, "M", "A", px(101.50), 4, 3),  # away from spot
        mbo(ES, T0 + 300 * MS, "M", "B", px(99.50), 6, 4),  # toward spot
    ]
    _, depth = windows(records)
    assert level(depth, 0, ASK, 101.00)["reprice_out_away_qty"] == 4
    assert level(depth, 0, ASK, 101.50)["reprice_in_qty"] == 4
    assert level(depth, 0, BID, 99.00)["reprice_out_toward_qty"] == 6
    assert level(depth, 0, BID, 99.50)["reprice_in_qty"] == 6


def test_the_best_prices_follow_a_quote_repriced_alone_at_the_best() -> None:
    """A thin book (an option's): the only order at each best moves away, then back toward
    the other side; each second's best is where it went, then the next order once it
    leaves."""
    records = [
        *snapshot(("B", 100.00, 5, 1), ("A", 100.25, 5, 2), ("B", 97.00, 1, 3), ("A", 103, 1, 4)),
        mbo(ES, T0 + 100 * MS, "M", "B", px(99.75), 5, 1),  # away
        mbo(ES, T0 + 100 * MS, "M", "A", px(100.75), 5, 2),
        mbo(ES, T0 + 1100 * MS, "M", "B", px(100.25), 5, 1),  # toward, past where it was
        mbo(ES, T0 + 1100 * MS, "M", "A", px(100.50), 5, 2),
        mbo(ES, T0 + 2100 * MS, "C", "B", px(100.25), 5, 1),
        mbo(ES, T0 + 2100 * MS, "C", "A", px(100.50), 5, 2),
    ]
    book, _ = windows(records)
    best = [
        (row["bid_price"], row["bid_size"], row["ask_price"], row["ask_size"]) for row in book[:3]
    ]
    assert best == [
        (px(99.75), 5, px(100.75), 5),
        (px(100.25), 5, px(100.50), 5),
        (px(97.00), 1, px(103.00), 1),
    ]
    final = book_at(columns(records), TICKS).books[ES]
    assert [(lv.price, lv.size) for lv in final.bids] == [(px(97.00), 1)]
    assert [(lv.price, lv.size) for lv in final.asks] == [(px(103.00), 1)]


def test_spot_is_the_last_trade_price_while_it_has_depth() -> None:
    records = [
        *BASE,
        mbo(ES, T0 + 100 * MS, "T", "B", px(100.25), 2, 904, flags=0),
        mbo(ES, T0 + 100 * MS, "F", "A", px(100.25), 2, 2, flags=0),
        mbo(ES, T0 + 100 * MS, "M", "A", px(100.25), 3, 2),
        mbo(ES, T0 + 1100 * MS, "C", "A", px(100.25), 3, 2),  # the trade price empties
        mbo(ES, T0 + 1100 * MS, "A", "A", px(100.75), 3, 5),
    ]
    book, _ = windows(records)
    spots = {int((row["window_start"] - T0) // SECOND): row["spot_price"] for row in book}
    assert spots[0] == px(100.25)  # last trade with depth
    assert spots[1] == px(100.00)  # nearest of bid 100.00 and ask 100.75 to 100.25


def test_windows_without_spot_have_the_same_books_and_no_depth() -> None:
    """An option's book by second (priced on its future's spot): no spot, no depth rows."""
    records = [
        *BASE,
        mbo(ES, T0 + 100 * MS, "T", "B", px(100.25), 2, 904, flags=0),
        mbo(ES, T0 + 100 * MS, "F", "A", px(100.25), 2, 2, flags=0),
        mbo(ES, T0 + 100 * MS, "M", "A", px(100.25), 3, 2),
        mbo(ES, T0 + 1100 * MS, "M", "B", px(99.75), 5, 1),
    ]
    config = WindowConfig(T0, T0 + 3 * SECOND, T0, T0 + 3 * SECOND, T0, T0 + 3 * SECOND, 40)
    with_spot, without = (
        list(replay_windows(columns(records), TICKS, dataclasses.replace(config, with_spot=spot)))
        for spot in (True, False)
    )
    books = [np.concatenate([c.book_rows for c in chunks]) for chunks in (with_spot, without)]
    assert (books[0]["spot_price"] == px(100.25)).all()
    assert (books[1]["spot_price"] == UNDEF_PRICE).all()
    others = [name for name in books[0].dtype.names if name != "spot_price"]
    assert books[0][others].tolist() == books[1][others].tolist()
    assert sum(len(c.depth_rows) for c in with_spot) > 0
    assert sum(len(c.depth_rows) for c in without) == 0


def test_spot_without_trades_is_the_bid() -> None:
    book, _ = windows(list(BASE))
    assert book[0]["spot_price"] == px(100.00)


def test_window_book_is_after_the_last_f_last_before_its_end() -> None:
    """An event that straddles a window boundary belongs to the window it completes in."""
    records = [
        *snapshot(("B", 100.00, 5, 1), ("B", 99.75, 2, 3), ("A", 100.25, 5, 2)),
        mbo(ES, T0 + SECOND - 1000, "C", "B", px(100.00), 5, 1, flags=0),
        mbo(ES, T0 + SECOND + 1000, "A", "A", px(100.50), 1, 4),
    ]
    book, depth = windows(records)
    assert (book[0]["bid_price"], book[0]["bid_size"]) == (px(100.00), 5)
    assert (book[1]["bid_price"], book[1]["bid_size"]) == (px(99.75), 2)
    assert level(depth, 1, BID, 100.00)["pull_qty"] == 5
    assert level(depth, 0, BID, 100.00)["pull_qty"] == 0


def test_clear_empties_the_instruments_book() -> None:
    records = [
        *BASE,
        mbo(ES, T0 + 100 * MS, "A", "B", px(99.75), 2, 30),
        *snapshot(("B", 101.00, 1, 40), ("A", 101.25, 1, 41), at=T0 + 2 * SECOND),
    ]
    state = book_at(columns(records), TICKS)
    book = state.books[ES]
    assert [(lvl.price, lvl.size) for lvl in book.bids] == [(px(101.00), 1)]
    assert [(lvl.price, lvl.size) for lvl in book.asks] == [(px(101.25), 1)]
    assert book.orders == 2


def test_clear_without_snapshot_invalidates_until_the_book_is_rebuilt() -> None:
    records = [
        *BASE,
        mbo(ES, T0 + 1500 * MS, "R"),  # a clear that is no snapshot
        mbo(ES, T0 + 1600 * MS, "A", "B", px(100.00), 1, 50),
        *snapshot(("B", 100.00, 5, 1), ("A", 100.25, 5, 2), at=T0 + 3500 * MS),
    ]
    book, depth = windows(records, seconds=5)
    assert book["book_valid"].tolist() == [1, 0, 0, 1, 1]
    valid_by_second = {
        int((row["window_start"] - T0) // SECOND): row["window_valid"] for row in depth
    }
    assert valid_by_second[1] == 0
    assert valid_by_second[3] == 0  # rebuilt inside the window: not a clean window
    assert valid_by_second[4] == 1


def test_lost_records_invalidate_every_book_until_the_next_snapshot() -> None:
    """A live stream that lost records (a dropped connection): the event waiting for its rest
    is dropped, the book is empty and invalid from the loss until a resubscription's snapshot
    completes, and the clears are no flow."""
    config = WindowConfig(T0, T0 + 5 * SECOND, T0, T0 + 5 * SECOND, T0, T0 + 5 * SECOND, 40)
    replay = WindowReplay(TICKS, config)
    before = [*BASE, mbo(ES, T0 + 1200 * MS, "A", "B", px(99.75), 3, 7, flags=0)]
    chunks = list(replay.push(columns(before)))
    chunks += list(replay.lose_records(T0 + 1200 * MS))
    after = snapshot(("B", 100.50, 2, 60), ("A", 100.75, 4, 61), at=T0 + 3500 * MS)
    chunks += list(replay.push(columns(after)))
    chunks += list(replay.finish())
    book = np.concatenate([c.book_rows for c in chunks])
    depth = np.concatenate([c.depth_rows for c in chunks])
    assert book["book_valid"].tolist() == [1, 0, 0, 1, 1]
    assert book["bid_price"].tolist()[3:] == [px(100.50)] * 2
    assert book["bid_size"].tolist()[1:3] == [0, 0]
    second_one = depth[depth["window_start"] == T0 + SECOND]
    assert second_one["add_qty"].sum() == second_one["pull_qty"].sum() == 0  # 99.75 never landed
    assert not depth[depth["window_start"] == T0 + 2 * SECOND]["depth_qty_end"].any()


def test_file_without_clear_snapshot_ends_at_the_first_live_record() -> None:
    """Files before 2024: adds with F_SNAPSHOT, no R, no F_LAST."""
    records = [
        mbo(ES, T0, "A", "B", px(100.00), 5, 1, flags=SNAP),
        mbo(ES, T0, "A", "A", px(100.25), 5, 2, flags=SNAP),
        mbo(ES, T0 + 1500 * MS, "A", "B", px(99.75), 1, 3),
    ]
    book, _ = windows(records)
    assert book["book_valid"].tolist() == [0, 1, 1, 1]
    assert book[1]["bid_price"] == px(100.00)


OPTION = 2
TWO = {"ESM4": ES, "ESM4 C5000": OPTION}
TWO_TICKS = {ES: px(0.25), OPTION: px(0.05)}


def test_a_snapshot_with_f_last_on_its_last_record_only_makes_every_instrument_valid() -> None:
    """Parent-symbol files (ES.OPT): F_LAST may stand only on the whole snapshot's last
    record; every instrument restated is valid when the snapshot ends, traded or not."""
    records = [
        mbo(ES, T0, "R", flags=SNAP),
        mbo(ES, T0, "A", "B", px(100.00), 5, 1, flags=SNAP),
        mbo(ES, T0, "A", "A", px(100.25), 5, 2, flags=SNAP),
        mbo(OPTION, T0, "R", flags=SNAP),
        mbo(OPTION, T0, "A", "B", px(10.00), 3, 3, flags=SNAP),
        mbo(OPTION, T0, "A", "A", px(10.10), 3, 4, flags=SNAP | F_LAST),
        mbo(OPTION, T0 + 1500 * MS, "A", "B", px(10.05), 1, 5),
    ]
    book, depth = windows(records, ticks=TWO_TICKS, symbols=TWO)
    futures = book[book["instrument"] == 0]
    assert futures["book_valid"].tolist() == [1, 1, 1, 1]
    assert (futures[0]["bid_price"], futures[0]["ask_price"]) == (px(100.00), px(100.25))
    assert depth[depth["instrument"] == 0]["window_valid"][-4:].all()


def test_a_snapshot_without_f_last_ends_for_every_instrument_at_the_first_live_record() -> None:
    """Files before 2024 (no R, no F_LAST): the first record without F_SNAPSHOT ends the
    snapshot of every instrument it restated."""
    records = [
        mbo(ES, T0, "A", "B", px(100.00), 5, 1, flags=SNAP),
        mbo(ES, T0, "A", "A", px(100.25), 5, 2, flags=SNAP),
        mbo(OPTION, T0, "A", "B", px(10.00), 3, 3, flags=SNAP),
        mbo(OPTION, T0 + 1500 * MS, "A", "B", px(10.05), 1, 5),
    ]
    book, _ = windows(records, ticks=TWO_TICKS, symbols=TWO)
    assert book[book["instrument"] == 0]["book_valid"].tolist() == [0, 1, 1, 1]


def test_an_option_listed_during_the_session_is_valid_from_its_first_record() -> None:
    """The snapshot restated every book: an option whose first record comes after it had an
    empty book then (it was listed since). It has no row before that record's second, its
    book is valid from it, and a stream that meets it in a later batch gives the same rows."""
    records = [
        *BASE,
        mbo(ES, T0 + 500 * MS, "A", "B", px(99.75), 1, 3),
        mbo(OPTION, T0 + 2300 * MS, "A", "B", px(10.00), 3, 10),
        mbo(OPTION, T0 + 2300 * MS, "A", "A", px(10.10), 2, 11),
        mbo(ES, T0 + 3200 * MS, "A", "A", px(100.50), 1, 4),
    ]
    book, depth = windows(records, ticks=TWO_TICKS, symbols=TWO)
    option = book[book["instrument"] == 1]
    assert option["window_start"].tolist() == [T0 + 2 * SECOND, T0 + 3 * SECOND]
    assert option["book_valid"].tolist() == [1, 1]
    assert (option[0]["bid_price"], option[0]["ask_price"]) == (px(10.00), px(10.10))
    assert len(book[book["instrument"] == 0]) == 4
    assert depth[depth["instrument"] == 1]["window_start"].min() == T0 + 2 * SECOND
    # the option joins a replay that already laid out the future's ladder
    config = WindowConfig(T0, T0 + 4 * SECOND, T0, T0 + 4 * SECOND, T0, T0 + 4 * SECOND, 40)
    replay = WindowReplay(TWO_TICKS, config)
    stream = columns(records, TWO)
    chunks = list(replay.push(stream.slice(0, 4))) + list(replay.push(stream.slice(4, 7)))
    chunks += list(replay.finish())
    np.testing.assert_array_equal(np.concatenate([c.book_rows for c in chunks]), book)
    np.testing.assert_array_equal(np.concatenate([c.depth_rows for c in chunks]), depth)


def test_an_instrument_first_seen_after_lost_records_waits_for_a_snapshot() -> None:
    """After a loss nothing says what the new instrument's book held: invalid until the next
    snapshot restates it. Without any snapshot, never valid."""
    config = WindowConfig(T0, T0 + 4 * SECOND, T0, T0 + 4 * SECOND, T0, T0 + 4 * SECOND, 40)
    replay = WindowReplay(TWO_TICKS, config)
    chunks = list(replay.push(columns(BASE, TWO)))
    chunks += list(replay.lose_records(T0 + 500 * MS))
    late = [mbo(OPTION, T0 + 1500 * MS, "A", "B", px(10.00), 3, 10)]
    chunks += list(replay.push(columns(late, TWO)))
    chunks += list(replay.finish())
    book = np.concatenate([c.book_rows for c in chunks])
    assert book[book["instrument"] == 1]["book_valid"].tolist() == [0, 0, 0]
    no_snapshot = [mbo(ES, T0 + 1500 * MS, "A", "B", px(100.00), 3, 10)]
    book, _ = windows(no_snapshot)
    assert book["book_valid"].tolist() == [0, 0, 0]


def test_a_restatement_inside_a_second_rebases_the_levels_it_touched() -> None:
    """Add 3 at 1.1 s, re-snapshot at 1.5 s: the flow before the restatement changed a book
    the exchange then replaced. The second starts from the restated depth (never -3) with the
    flow after it, so depth_end = depth_start + flows still holds."""
    records = [
        *BASE,
        mbo(ES, T0 + 1100 * MS, "A", "B", px(99.75), 3, 30),
        mbo(ES, T0 + 1200 * MS, "A", "B", px(100.00), 2, 31),
        *snapshot(("B", 100.00, 4, 1), ("A", 100.25, 5, 2), at=T0 + 1500 * MS),
        mbo(ES, T0 + 1700 * MS, "A", "B", px(100.00), 1, 32),
    ]
    _, depth = windows(records)
    gone = level(depth, 1, BID, 99.75)
    assert (gone["depth_qty_start"], gone["add_qty"], gone["depth_qty_end"]) == (0, 0, 0)
    restated = level(depth, 1, BID, 100.00)
    assert (restated["depth_qty_start"], restated["add_qty"], restated["depth_qty_end"]) == (
        4,
        1,
        5,
    )
    assert restated["window_valid"] == 0
    assert (depth["depth_qty_start"] >= 0).all()
    assert (
        depth["depth_qty_start"]
        + depth["add_qty"]
        + depth["reprice_in_qty"]
        - depth["pull_qty"]
        - depth["fill_qty"]
        - depth["reprice_out_away_qty"]
        - depth["reprice_out_toward_qty"]
        == depth["depth_qty_end"]
    ).all()


def test_snapshot_records_are_not_flow_and_conservation_holds() -> None:
    _, depth = windows(list(BASE))
    row = level(depth, 0, BID, 100.00)
    assert (row["depth_qty_start"], row["add_qty"], row["depth_qty_end"]) == (5, 0, 5)


def test_crossed_book_is_valid_only_in_the_pre_open() -> None:
    records = [*BASE, mbo(ES, T0 + 100 * MS, "A", "B", px(100.50), 1, 60)]
    crossed, _ = windows(records, seconds=2)
    assert crossed["book_valid"].tolist() == [0, 0]
    in_pre_open, _ = windows(records, seconds=2, pre_open=((T0, T0 + SECOND),))
    assert in_pre_open["book_valid"].tolist() == [1, 0]


def test_undef_price_never_becomes_a_price() -> None:
    records = [*BASE, mbo(ES, T0 + 100 * MS, "T", "B", UNDEF_PRICE, 1, 905)]
    state = book_at(columns(records), TICKS)
    assert state.books[ES].last_trade_price is None
    assert [lvl.price for lvl in state.books[ES].bids] == [px(100.00)]
    with pytest.raises(EngineError, match=r"record 3: an add or modify with UNDEF_PRICE"):
        book_at(columns([*BASE, mbo(ES, T0 + 100 * MS, "A", "B", UNDEF_PRICE, 1, 61)]), TICKS)


def test_records_after_the_last_window_are_checked_not_applied() -> None:
    """Once every window is emitted the rest of the day changes no row (an options day's
    quarter after its surface window): its records are checked as the replay would, not
    applied."""
    config = WindowConfig(T0, T0 + 2 * SECOND, T0, T0 + 2 * SECOND, T0, T0 + 2 * SECOND, 40)
    during = [*BASE, mbo(ES, T0 + 1500 * MS, "A", "B", px(99.75), 3, 61)]
    after = [mbo(ES, T0 + 2 * SECOND + i * MS, "A", "A", px(100.50), 1, 70 + i) for i in (1, 2)]

    def replayed(records: list[dbn.MBOMsg]) -> tuple[list[np.ndarray], int]:
        replay = WindowReplay(TICKS, config)
        chunks = [*replay.push(columns(records)), *replay.finish()]
        rows = [
            np.concatenate([getattr(c, name) for c in chunks])
            for name in ("book_rows", "depth_rows")
        ]
        return rows, int(replay.state.scalars[kernel.S_HASH_COUNT])

    (book, depth), orders = replayed(during)
    (book_after, depth_after), orders_after = replayed([*during, *after])
    assert book_after.tobytes() == book.tobytes()
    assert depth_after.tobytes() == depth.tobytes()
    assert orders == orders_after == 3  # the later adds never reached the book
    unpriced = [*during, after[0], mbo(ES, T0 + 3 * SECOND, "A", "B", UNDEF_PRICE, 1, 80)]
    with pytest.raises(EngineError, match=r"record 5: an add or modify with UNDEF_PRICE"):
        replayed(unpriced)
    sideless = [*during, mbo(ES, T0 + 3 * SECOND, "M", "N", px(99.75), 1, 61)]
    with pytest.raises(EngineError, match=r"record 4: an add or modify without a bid or ask"):
        replayed(sideless)


def test_timestamps_going_backwards_are_an_error() -> None:
    records = [
        *BASE,
        mbo(ES, T0 + 200 * MS, "A", "B", px(99.75), 1, 62),
        mbo(ES, T0 + 100 * MS, "A", "B", px(99.75), 1, 63),
    ]
    with pytest.raises(EngineError, match=r"record 4: ts_recv goes backwards"):
        book_at(columns(records), TICKS)


@pytest.mark.parametrize(
    ("bad_action", "bad_side", "message"),
    [
        (None, 4, r"record 4: unknown side b'X'"),
        (3, None, r"record 3: unknown action b'X'"),
        (4, 3, r"record 4: unknown action b'X'"),  # actions are checked before sides
    ],
)
def test_an_unknown_action_or_side_is_an_error_naming_the_first_record(
    bad_action: int | None, bad_side: int | None, message: str
) -> None:
    added = [mbo(ES, T0 + i * MS, "A", "B", px(99.75), 1, 62 + i) for i in (1, 2)]
    records = columns([*BASE, *added])
    if bad_action is not None:
        records.action[bad_action] = ord("X")
    if bad_side is not None:
        records.side[bad_side] = ord("X")
    with pytest.raises(EngineError, match=message):
        book_at(records, TICKS)


def test_records_of_an_instrument_without_a_definition_are_an_error() -> None:
    with pytest.raises(EngineError, match=r"instrument\(s\) \[1\] that have no definition"):
        book_at(columns(list(BASE)), {})


def test_a_message_names_a_few_of_many_instruments_without_a_definition() -> None:
    """A day's options without definitions are thousands of instruments: the message names
    the first ten in order of appearance and how many there are."""
    records = [mbo(1000 + i, T0 + i * MS, "A", "B", px(99.75), 1, 10 + i) for i in range(25)]
    first_ten = ", ".join(str(1000 + i) for i in range(10))
    with pytest.raises(
        EngineError, match=rf"instrument\(s\) \[{first_ten}, \.\.\.\] \(25 in all\) that have"
    ):
        book_at(columns(records), {})


def test_partition_without_snapshot_has_only_invalid_windows() -> None:
    records = [
        mbo(ES, T0 + 100 * MS, "A", "B", px(100.00), 5, 1),
        mbo(ES, T0 + 200 * MS, "A", "A", px(100.25), 5, 2),
    ]
    book, depth = windows(records)
    assert not book["book_valid"].any()
    assert not depth["window_valid"].any()
    assert not book_at(columns(records), TICKS).books[ES].valid


def test_price_off_the_tick_grid_is_an_error() -> None:
    with pytest.raises(EngineError, match=r"record 3: price .* is not on instrument 1's tick grid"):
        book_at(columns([*BASE, mbo(ES, T0 + 100 * MS, "A", "B", px(100.10), 1, 64)]), TICKS)


def test_the_off_grid_price_named_is_the_first_off_the_grid_of_the_lowest() -> None:
    """The scan checks each price against its instrument's first; where it finds one off, the
    record named is still the first off the grid of the lowest price (here the first)."""
    records = [
        mbo(ES, T0 + 100 * MS, "A", "B", px(100.10), 1, 11),
        mbo(ES, T0 + 200 * MS, "A", "B", px(100.00), 1, 12),
        mbo(ES, T0 + 300 * MS, "A", "A", px(100.25), 1, 13),
    ]
    assert scan_batch(columns(records), TickSizes(TICKS)).off_grid == 1
    with pytest.raises(EngineError, match=r"record 0: price .* is not on instrument 1's tick grid"):
        book_at(columns(records), TICKS)


@pytest.mark.parametrize(
    "tick", [1, 2, 3, 5, 7, 250_000_000, 50_000_000, 5_000_000, 1 << 40, 3**30, 999_999_937]
)
def test_grid_multiple_agrees_with_the_remainder(tick: int) -> None:
    shift, inverse, limit = kernel.grid_divisor(tick)
    # typed as the scan holds them (a Python int over 2**63 would be another signature)
    shift, inverse, limit = np.int64(shift), np.uint64(inverse), np.uint64(limit)
    rng = np.random.default_rng(tick % 1_000)
    values = np.concatenate(
        [
            np.arange(0, 50 * tick, max(tick // 7, 1))[:2_000],
            rng.integers(0, 10**13, 2_000) // tick * tick,  # whole numbers of ticks
            rng.integers(0, 10**13, 2_000),
            [0, tick, tick - 1, tick + 1, 2**62 // tick * tick, 2**62 // tick * tick + 1],
        ]
    )
    found = [kernel.grid_multiple(x, shift, inverse, limit) for x in values]
    assert found == [int(x) % tick == 0 for x in values.tolist()]
    # a whole number of ticks, divided exactly as the replay finds a price's level
    multiples = values[np.array(found)]
    quotients = (multiples >> shift).astype(np.uint64) * inverse  # modulo 2**64
    assert quotients.astype(np.int64).tolist() == (multiples // tick).tolist()


def test_importing_the_engine_turns_off_numpys_huge_page_advice() -> None:
    """A process that runs the engine backs its new arrays with ordinary pages (see
    book_engine.memory_pages): checked in a fresh interpreter, where NumPy's default is on."""
    probe = (
        "from numpy._core import multiarray as m; before = m._get_madvise_hugepage(); "
        "import book_engine.replay; print(before, m._get_madvise_hugepage())"
    )
    environment = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=environment
    )
    assert done.stdout.split() == ["True", "False"]


def test_importing_the_engine_keeps_freed_pages_for_the_next_arrays() -> None:
    """Batches of 8 MiB columns made and freed again and again fault their pages in once
    (book_engine.memory_pages), where glibc's defaults fault them in again batch after batch
    (about a thousand faults a batch here): checked in a fresh interpreter."""
    probe = (
        "import resource, numpy as np, book_engine\n"
        "faults = []\n"
        "for _ in range(4):\n"
        "    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "    batch = [np.ones(1 << 20) for _ in range(3)]\n"
        "    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n"
        "    del batch\n"
        "print(*faults)\n"
    )

    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True)
    first, *again = (int(n) for n in done.stdout.split())
    assert first > 5_000  # 24 MiB of 4 KiB pages, faulted in once
    assert max(again) < 50


def test_scan_batch_numbers_ids_in_order_of_first_appearance_with_their_price_ranges() -> None:
    rng = np.random.default_rng(7)
    # 20,000 ids (more than the first table holds), in runs and interleaved, large and small
    ids = rng.choice(np.concatenate([np.arange(20_000), [2**31 - 1, 42_000_003]]), 200_000)
    ids = np.repeat(ids, rng.integers(1, 4, len(ids))).astype(np.int64)
    n = len(ids)
    actions = rng.choice(np.frombuffer(b"ACMRTFN", np.uint8), n)
    prices = rng.integers(1, 1_000, n) * 250_000_000
    prices[rng.random(n) < 0.1] = UNDEF_PRICE
    columns = MboColumns(
        ts_recv=np.arange(n, dtype=np.int64),
        instrument_id=ids,
        action=actions,
        side=np.full(n, ord("B"), np.uint8),
        price=prices,
        size=np.ones(n, np.int64),
        order_id=np.arange(n, dtype=np.int64),
        flags=np.full(n, 128, np.uint8),
    )
    scan = scan_batch(columns, TickSizes({}))
    assert scan.off_grid == -1  # no tick: not checked
    assert not scan.ticks.any()
    ticks = dict.fromkeys(np.unique(ids).tolist(), 250000000)
    assert scan_batch(columns, TickSizes(ticks)).off_grid == -1
    # the first priced record off its instrument's grid, counted from its first price
    priced = (prices != UNDEF_PRICE) & np.isin(actions, np.frombuffer(b"ACMTF", np.uint8))
    seen = set()
    off = None
    for r in np.flatnonzero(priced).tolist():
        if ids[r] in seen and off is None and r > n // 2 and r % 3 == 0:
            off = r
        seen.add(int(ids[r]))
    prices_off = prices.copy()
    prices_off[off] += 100_000_000
    scanned = scan_batch(dataclasses.replace(columns, price=prices_off), TickSizes(ticks))
    assert scanned.off_grid == off
    assert scanned.ticks.tolist() == [250_000_000] * len(scanned.ids)
    expected: dict[int, int] = {}
    low: dict[int, int] = {}
    high: dict[int, int] = {}
    for r, value in enumerate(ids.tolist()):
        if value not in expected:
            expected[value] = len(expected)
            assert scan.first[expected[value]] == r
        if prices[r] != UNDEF_PRICE and chr(actions[r]) in "ACMTF":
            low[value] = min(low.get(value, UNDEF_PRICE), int(prices[r]))
            high[value] = max(high.get(value, -UNDEF_PRICE), int(prices[r]))
    assert scan.ids.tolist() == list(expected)
    assert scan.indexes.tolist() == [expected[value] for value in ids.tolist()]
    assert scan.low.tolist() == [low.get(value, UNDEF_PRICE) for value in expected]
    assert scan.high.tolist() == [high.get(value, -UNDEF_PRICE) for value in expected]
    empty = scan_batch(MboColumns.empty(), TickSizes({}))
    assert [len(part) for part in (empty.indexes, empty.ids, empty.first, empty.low)] == [0] * 4
