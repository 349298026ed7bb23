"""The 1-second surfaces on a generated day: conservation, fills, causality."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import databento as db
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from book_engine.bronze_input import bronze_mbo, bronze_mbo_batches, in_file_order
from book_engine.errors import EngineError
from book_engine.kernel import DEPTH_ROW
from book_engine.replay import MboColumns, WindowConfig, replay_windows
from book_engine.surfaces import MBO_COLUMNS, DepthKeyOrder, SurfaceSettings, futures_chunks
from foundation.dbn_facts import PRICE_SCALE
from foundation.exchange_time import day_start_ns, utc_ns
from foundation.lake_files import MANIFEST_FILE
from foundation.partitions import Partition
from ingest.bronze_tables import SourceSchema, to_record_batch
from tests.replay import ReplayBook

DAY = dt.date(2024, 3, 4)
FRONT = 4001
TICKS = {FRONT: 250_000_000}
START, END = day_start_ns(DAY), day_start_ns(DAY + dt.timedelta(days=1))
# every second of the day, every price: nothing of the day's flow is left out
WHOLE_DAY = WindowConfig(START, END, START, END, START, END, depth_ticks=4000)


@pytest.fixture(scope="module")
def front(demo_day: Path) -> np.ndarray:
    records = db.DBNStore.from_file(
        demo_day / "ES.FUT" / "mbo" / "glbx-mdp3-20240304.mbo.dbn.zst"
    ).to_ndarray()
    return records[records["instrument_id"] == FRONT]


def surfaces(records: np.ndarray, config: WindowConfig) -> tuple[np.ndarray, np.ndarray]:
    chunks = list(replay_windows(MboColumns.from_dbn(records), TICKS, config, buffer_rows=1 << 18))
    return np.concatenate([c.book_rows for c in chunks]), np.concatenate(
        [c.depth_rows for c in chunks]
    )


@pytest.fixture(scope="module")
def whole_day(front: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return surfaces(front, WHOLE_DAY)


def test_depth_is_conserved_exactly_for_every_second_price_and_side(
    whole_day: tuple[np.ndarray, np.ndarray],
) -> None:
    _, depth = whole_day
    balance = (
        depth["depth_qty_start"] + depth["add_qty"] + depth["reprice_in_qty"] - depth["pull_qty"]
        - depth["fill_qty"] - depth["reprice_out_away_qty"] - depth["reprice_out_toward_qty"]
    )  # fmt: skip
    assert len(depth) > 1_000_000
    assert np.array_equal(depth["depth_qty_end"], balance)
    assert (depth["depth_qty_rest"] <= depth["depth_qty_end"]).all()
    assert (depth["pull_qty_rest"] <= depth["pull_qty"]).all()


def test_consecutive_windows_chain_start_to_end(whole_day: tuple[np.ndarray, np.ndarray]) -> None:
    """A level's start depth is its end depth one second earlier."""
    _, depth = whole_day
    key = np.stack([depth["side"].astype(np.int64), depth["price"]], axis=1)
    order = np.lexsort((depth["window_start"], key[:, 1], key[:, 0]))
    rows = depth[order]
    same_level = (rows["side"][1:] == rows["side"][:-1]) & (rows["price"][1:] == rows["price"][:-1])
    next_second = rows["window_start"][1:] == rows["window_start"][:-1] + 1_000_000_000
    chained = same_level & next_second
    assert chained.sum() > 100_000
    assert np.array_equal(rows["depth_qty_start"][1:][chained], rows["depth_qty_end"][:-1][chained])


def test_total_fill_equals_the_quantity_fills_remove(
    front: np.ndarray, whole_day: tuple[np.ndarray, np.ndarray]
) -> None:
    """Independently: each C or M that follows an F removes min(F size, book size) plus any
    further decrease (an iceberg refill after the fill is new quantity, not less fill)."""
    book = ReplayBook()
    pending: dict[int, int] = {}
    removed_by_fills = 0
    for i in range(len(front)):
        action = front["action"][i].decode()
        order_id = int(front["order_id"][i])
        size = int(front["size"][i])
        if action == "F" and order_id in book.orders:
            pending[order_id] = pending.get(order_id, 0) + size
        elif action in "CM" and order_id in pending and order_id in book.orders:
            old = book.orders[order_id][2]
            filled = min(pending.pop(order_id), old)
            new = 0 if action == "C" else size
            removed_by_fills += filled + max(0, old - filled - new)
        book.apply(i, action, front["side"][i].decode(), int(front["price"][i]), size, order_id)
    _, depth = whole_day
    assert removed_by_fills > 10_000
    assert int(depth["fill_qty"].sum()) == removed_by_fills


def test_rows_before_t_do_not_depend_on_records_after_t(front: np.ndarray) -> None:
    cut = utc_ns(DAY, dt.time(10, 30))
    config = dataclasses.replace(
        WHOLE_DAY,
        depth_from_ns=utc_ns(DAY, dt.time(10, 0)),
        depth_to_ns=utc_ns(DAY, dt.time(11, 0)),
        depth_ticks=200,
    )
    book, depth = surfaces(front, config)
    later = front["ts_recv"].astype(np.int64) >= cut
    perturbed = front.copy()
    perturbed["size"][later] = perturbed["size"][later] * 2 + 1
    perturbed["price"][later & (perturbed["action"] == b"A")] += 250_000_000
    truncated = front[~later]
    for other in (perturbed, truncated):
        other_book, other_depth = surfaces(other, config)
        before = book["window_start"] + 1_000_000_000 <= cut
        assert np.array_equal(
            book[before], other_book[other_book["window_start"] + 1_000_000_000 <= cut]
        )
        depth_before = depth["window_start"] + 1_000_000_000 <= cut
        other_before = other_depth["window_start"] + 1_000_000_000 <= cut
        assert depth_before.sum() > 10_000
        assert np.array_equal(depth[depth_before], other_depth[other_before])
    assert not np.array_equal(book, surfaces(perturbed, config)[0])


def _landed_partition(root: Path, table: pa.Table, row_group_size: int) -> None:
    """`table` as the futures partition ESM4 of DAY, in row groups of `row_group_size`."""
    partition = root / "bronze" / "futures_mbo" / "symbol=ESM4" / f"dt={DAY.isoformat()}"
    partition.mkdir(parents=True)
    pq.write_table(table, partition / "data.parquet", row_group_size=row_group_size)
    (partition / MANIFEST_FILE).write_text(json.dumps({"data_file": "data.parquet"}))


def test_a_day_replayed_row_group_by_row_group_gives_the_rows_of_the_whole_day(
    front: np.ndarray, tmp_path: Path
) -> None:
    """futures_chunks feeds the replay a partition's row groups as they load: the same book
    and depth-and-flow rows as the day's records replayed at once."""
    records = to_record_batch(SourceSchema.MBO, front, 0)
    _landed_partition(tmp_path, pa.Table.from_batches([records]), row_group_size=20_000)
    batches = list(bronze_mbo_batches(str(tmp_path), "futures_mbo", "ESM4", DAY))
    assert len(batches) == -(-len(front) // 20_000) > 10
    # depth rows from 09:30 to 12:30 New York, as the warehouse's defaults
    settings = SurfaceSettings(
        timezone="America/New_York", depth_ticks=40, rest_ms=500,
        surface_window=(dt.time(9, 30), dt.time(12, 30)), pre_open=(dt.time(9, 29), dt.time(9, 30)),
    )  # fmt: skip
    streamed = list(
        futures_chunks(
            Partition("ESM4", DAY, "f"),
            lambda symbol, day: bronze_mbo_batches(str(tmp_path), "futures_mbo", symbol, day),
            lambda *_: TICKS,
            settings,
        )
    )
    whole = list(replay_windows(MboColumns.from_dbn(front), TICKS, settings.window_config(DAY)))
    for field in ("book_rows", "depth_rows"):
        got = np.concatenate([getattr(chunk, field) for chunk in streamed])
        expected = np.concatenate([getattr(chunk, field) for chunk in whole])
        assert len(got) > 10_000
        assert got.tobytes() == expected.tobytes()


def test_row_groups_are_read_one_by_one_only_when_their_record_indexes_follow_each_other(
    tmp_path: Path,
) -> None:
    """Each row group sorted on its own when the groups' ranges follow each other; a file
    whose groups overlap is read whole and sorted."""
    records = pa.table(
        {**{name: [1, 2, 3, 4, 5, 6] for name in MBO_COLUMNS}, "record_index": [1, 0, 3, 2, 5, 4]}
    )
    _landed_partition(tmp_path / "follow", records, row_group_size=2)
    groups = list(bronze_mbo_batches(str(tmp_path / "follow"), "futures_mbo", "ESM4", DAY))
    assert [group.column("ts_recv").to_pylist() for group in groups] == [[2, 1], [4, 3], [6, 5]]
    crossed = records.take([0, 2, 1, 3, 4, 5])  # record_index 1, 3 | 0, 2 | 5, 4
    _landed_partition(tmp_path / "crossed", crossed, row_group_size=2)
    [whole] = bronze_mbo_batches(str(tmp_path / "crossed"), "futures_mbo", "ESM4", DAY)
    assert whole.column("ts_recv").to_pylist() == [2, 1, 4, 3, 6, 5]


def test_a_partition_loads_in_file_order_whatever_order_the_file_holds(tmp_path: Path) -> None:
    """The engine reads a partition in record_index order: as the file holds it when that is
    already the order, sorted when it is not."""
    records = pa.table(
        {
            "symbol": ["ESM4"] * 4 + ["ESU4"],
            "dt": [DAY] * 5,
            **{name: [1, 2, 3, 4, 5] for name in MBO_COLUMNS},
            "record_index": [2, 0, 3, 1, 0],
        }
    )
    partition = tmp_path / "bronze" / "futures_mbo" / "symbol=ESM4" / f"dt={DAY.isoformat()}"
    partition.mkdir(parents=True)
    pq.write_table(records.slice(0, 4).drop_columns(["symbol", "dt"]), partition / "data.parquet")
    (partition / MANIFEST_FILE).write_text(json.dumps({"data_file": "data.parquet"}))
    loaded = bronze_mbo(str(tmp_path), "futures_mbo", "ESM4", DAY)
    assert loaded.column_names == list(MBO_COLUMNS)
    assert loaded.column("ts_recv").to_pylist() == [2, 4, 1, 3]
    in_order = records.slice(0, 4).sort_by("record_index")
    assert in_file_order(in_order) is in_order
    # a scan's chunks: each in order, the second starting before the first ended
    first, second = in_order.slice(0, 2), in_order.slice(2, 2)
    assert in_file_order(pa.concat_tables([first, second])).num_rows == 4
    crossed = pa.concat_tables([second, first])
    assert crossed.column("record_index").num_chunks == 2
    assert in_file_order(crossed).column("record_index").to_pylist() == [0, 1, 2, 3]


def depth_rows(keys: list[tuple[int, int, float]]) -> np.ndarray:
    """DEPTH_ROW rows with the given (second, side: 0 bid / 1 ask, price) keys."""
    rows = np.zeros(len(keys), dtype=DEPTH_ROW)
    start = utc_ns(dt.date(2024, 3, 12), dt.time(14, 0), "UTC")
    for row, (second, side, price) in zip(rows, keys, strict=True):
        row["window_start"] = start + second * 1_000_000_000
        row["side"] = side
        row["price"] = round(price * PRICE_SCALE)
    return rows


def test_the_depth_key_must_increase_through_a_day_chunk_after_chunk() -> None:
    """The replay's depth rows come each second by price and, at a price, the bid before the
    ask (a crossed or locked level has both): a key twice or out of order, within a chunk or
    across two, is an error naming the row."""
    order = DepthKeyOrder()
    order.check(depth_rows([(0, 0, 4999.0), (0, 0, 5000.0), (0, 1, 5000.0), (0, 1, 5000.25)]))
    order.check(depth_rows([(1, 1, 4990.0), (1, 0, 4990.25), (1, 1, 5001.0)]))
    order.check(depth_rows([]))
    with pytest.raises(EngineError, match=r"14:00:01 ask 5001.0 is not after the row before"):
        order.check(depth_rows([(1, 1, 5001.0)]))  # the last key again, in the next chunk
    with pytest.raises(EngineError, match=r"14:00:00 bid 5000.0 is not after"):
        DepthKeyOrder().check(depth_rows([(0, 0, 5000.0), (0, 0, 5000.0)]))
    with pytest.raises(EngineError, match=r"14:00:00 bid 5000.0 is not after"):
        DepthKeyOrder().check(depth_rows([(0, 1, 5000.0), (0, 0, 5000.0)]))
    with pytest.raises(EngineError, match=r"14:00:00 ask 4999.0 is not after"):
        DepthKeyOrder().check(depth_rows([(0, 0, 5000.0), (0, 1, 4999.0)]))


def test_the_engine_reads_actions_and_sides_through_parquets_dictionaries(tmp_path: Path) -> None:
    """bronze_mbo reads action and side as the dictionaries Parquet keeps (no string per
    record): each row group's codes map back to the same bytes, in file order; a value that
    is not one character is refused by name."""
    actions, sides = list("AMCTFRNA"), list("BABANNAB")
    records = pa.table(
        {
            **{name: list(range(8)) for name in MBO_COLUMNS},
            "action": actions,
            "side": sides,
            "record_index": list(range(8)),
        }
    )
    partition = tmp_path / "bronze" / "options_mbo" / "symbol=ESM4" / f"dt={DAY.isoformat()}"
    partition.mkdir(parents=True)
    # row groups of 3: each chunk read back has its own dictionary
    pq.write_table(records, partition / "data.parquet", row_group_size=3)
    (partition / MANIFEST_FILE).write_text(json.dumps({"data_file": "data.parquet"}))
    loaded = bronze_mbo(str(tmp_path), "options_mbo", "ESM4", DAY)
    assert pa.types.is_dictionary(loaded.column("action").type)
    assert loaded.column("action").num_chunks == 3
    columns = MboColumns.from_arrow(loaded)
    assert bytes(columns.action) == "".join(actions).encode()
    assert bytes(columns.side) == "".join(sides).encode()
    assert columns.action.dtype == np.uint8
    assert columns.action.flags.c_contiguous

    two_characters = records.set_column(
        records.schema.get_field_index("side"), "side", pa.array(["B"] * 7 + ["AB"])
    )
    pq.write_table(two_characters, partition / "data.parquet", row_group_size=3)
    with pytest.raises(EngineError, match="column side must hold one character per record"):
        MboColumns.from_arrow(bronze_mbo(str(tmp_path), "options_mbo", "ESM4", DAY))
    # the same columns as plain strings (what a caller's own table holds) give the same codes
    plain = MboColumns.from_arrow(records)
    assert bytes(plain.action) == bytes(columns.action)
