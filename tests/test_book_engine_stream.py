"""The engine fed batch by batch (live): the same rows as the whole partition at once, on the
real ESH4 and ESM4 files cut at random places, inside events too, with ladders that must
grow as prices move."""

from __future__ import annotations

from pathlib import Path

import databento as db
import numpy as np
import pytest

from book_engine.errors import EngineError
from book_engine.replay import MboColumns, WindowConfig, WindowReplay, replay_windows
from spymaster.exchange_time import day_start_ns
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


def test_a_clock_closes_a_second_before_the_next_record_arrives(
    real_day: tuple[MboColumns, int, WindowConfig],
) -> None:
    """Closing each second by the clock as the records' own times pass it changes nothing;
    a second closes as soon as the clock passes its end."""
    columns, instrument, config = real_day
    expected_book, expected_depth = rows(replay_windows(columns, {instrument: TICK}, config))
    replay = WindowReplay({instrument: TICK}, config)
    seconds = columns.ts_recv // 1_000_000_000
    starts = np.flatnonzero(np.r_[True, seconds[1:] != seconds[:-1]])
    chunks = []
    for start, stop in zip(starts, np.r_[starts[1:], len(columns)], strict=True):
        chunks += list(replay.push(columns.slice(int(start), int(stop))))
        # the clock at the start of the next second: this one may close now
        moment = (int(seconds[start]) + 1) * 1_000_000_000
        closed = list(replay.close_until(moment))
        if replay.pending is None and closed:
            assert max(c.book_rows["window_start"].max() for c in closed) == moment - 1_000_000_000
        chunks += closed
    chunks += list(replay.finish())
    book, depth = rows(chunks)
    np.testing.assert_array_equal(book, expected_book)
    np.testing.assert_array_equal(depth, expected_depth)


def test_a_batch_going_back_in_time_is_named_by_its_stream_record(
    real_day: tuple[MboColumns, int, WindowConfig],
) -> None:
    columns, instrument, config = real_day
    replay = WindowReplay({instrument: TICK}, config)
    list(replay.push(columns))
    with pytest.raises(EngineError, match=rf"record {len(columns)}: ts_recv goes backwards"):
        list(replay.push(columns.slice(0, 10)))


def test_an_instrument_without_a_definition_is_named() -> None:
    day = day_start_ns(__import__("datetime").date(2024, 3, 4))
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
