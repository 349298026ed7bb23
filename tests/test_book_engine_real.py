"""The engine's book equals an independent replay on the real ESH4 and ESM4 files."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import databento as db
import numpy as np
import pytest

from book_engine.replay import MboColumns, WindowConfig, book_at, replay_windows, top_of_book_events
from foundation.dbn_facts import UNDEF_PRICE
from foundation.exchange_time import day_start_ns, utc_ns
from tests.replay import ReplayBook, replay

FILES = {
    "ESM4": ("orderbooks_mbo_2024-05-08T00-00-00_2024-05-08T00-00-02.dbn.zst", 5602),
    "ESH4": ("esh4-glbx-mdp3-20231225.mbo.dbn.zst", 17077),
}
TICK = 250_000_000


@pytest.fixture(params=sorted(FILES))
def real_file(request: pytest.FixtureRequest, shared_data: Path) -> tuple[np.ndarray, int]:
    name, instrument = FILES[request.param]
    return db.DBNStore.from_file(shared_data / name).to_ndarray(), instrument


def test_best_bid_and_ask_equal_an_independent_replay_at_every_f_last(
    real_file: tuple[np.ndarray, int],
) -> None:
    records, instrument = real_file
    events, _ = top_of_book_events(MboColumns.from_dbn(records), {instrument: TICK})
    expected = []
    for _, book in replay(records):
        bid, ask = book.best("B"), book.best("A")
        expected.append(
            (
                UNDEF_PRICE if bid is None else bid,
                0 if bid is None else book.depth["B"][bid],
                UNDEF_PRICE if ask is None else ask,
                0 if ask is None else book.depth["A"][ask],
            )
        )
    engine = list(
        zip(
            events["bid_price"],
            events["bid_size"],
            events["ask_price"],
            events["ask_size"],
            strict=True,
        )
    )
    assert len(engine) == len(expected) > 100
    assert engine == expected


def test_final_book_equals_an_independent_replay_level_by_level(
    real_file: tuple[np.ndarray, int],
) -> None:
    records, instrument = real_file
    state = book_at(MboColumns.from_dbn(records), {instrument: TICK})
    final = ReplayBook()
    for _, book in replay(records):
        final = book
    orders_at = Counter((side, price) for side, price, _ in final.orders.values())
    for side, levels in (("B", state.books[instrument].bids), ("A", state.books[instrument].asks)):
        expected = sorted(
            (
                (price, size, orders_at[(side, price)])
                for price, size in final.depth[side].items()
                if size > 0
            ),
            reverse=side == "B",
        )
        assert [(lvl.price, lvl.size, lvl.orders) for lvl in levels] == expected
    assert state.books[instrument].orders == len(final.orders)


def test_christmas_reopen_is_crossed_but_valid_in_the_pre_open(shared_data: Path) -> None:
    """ESH4 2023-12-25: the book is crossed before the 18:00 New York reopen."""
    day = dt.date(2023, 12, 25)
    name, instrument = FILES["ESH4"]
    records = db.DBNStore.from_file(shared_data / name).to_ndarray()
    pre_open = ((utc_ns(day, dt.time(17, 0)), utc_ns(day, dt.time(18, 0))),)
    start, end = day_start_ns(day), day_start_ns(day + dt.timedelta(days=1))
    config = WindowConfig(start, end, start, end, pre_open=pre_open)
    book = np.concatenate(
        [
            c.book_rows
            for c in replay_windows(MboColumns.from_dbn(records), {instrument: TICK}, config)
        ]
    )
    before_open = book[
        (book["window_start"] >= utc_ns(day, dt.time(17, 30)))
        & (book["window_start"] < utc_ns(day, dt.time(18, 0)))
    ]
    crossed = before_open["bid_price"] >= before_open["ask_price"]
    assert crossed.any()
    assert before_open["book_valid"].all()
    evening = book[book["window_start"] >= utc_ns(day, dt.time(18, 30))]
    assert (evening["bid_price"] < evening["ask_price"]).all()
    assert evening["book_valid"].all()
