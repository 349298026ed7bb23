"""The futures surfaces (book_snapshot_1s, depth_and_flow_1s) as Arrow record batches.

Partition by partition: load one (symbol, dt) of MBO in file order, replay it, convert the
engine's rows to Arrow. Callers (the dbt Python models) supply the loaders, so this module
knows DuckDB relations no more than dbt: memory stays bounded by one partition.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from book_engine.errors import EngineError
from book_engine.replay import MboColumns, WindowChunk, WindowConfig, replay_batches
from foundation.arrow_columns import STRING_CODES, categorical, repeated_date, repeated_string
from foundation.dbn_facts import PRICE_SCALE, UNDEF_PRICE
from foundation.exchange_time import day_start_ns, parse_time, utc_ns
from foundation.partitions import Partition

# the kernel's rules: a change rebuilds every contract-day (2: snapshot phase per file, fills;
# 3: a restatement re-bases the levels its window touched; 4: an instrument first seen after a
# snapshot is valid from its first record, and has windows from that record's on)
ENGINE_VERSION = 4
"""Bump when the surfaces change for the same input: incremental models rebuild every day."""

MBO_COLUMNS = ("ts_recv", "instrument_id", "action", "side", "price", "size", "order_id", "flags")

BOOK_SNAPSHOT_SCHEMA = pa.schema(
    [
        ("symbol", STRING_CODES),
        ("dt", pa.date32()),
        ("window_start", pa.timestamp("us")),
        ("best_bid_price", pa.float64()),
        ("best_bid_size", pa.int64()),
        ("best_bid_orders", pa.int64()),
        ("best_ask_price", pa.float64()),
        ("best_ask_size", pa.int64()),
        ("best_ask_orders", pa.int64()),
        ("last_trade_price", pa.float64()),
        ("spot_price", pa.float64()),
        ("book_valid", pa.bool_()),
        ("build_fingerprint", STRING_CODES),
    ]
)
QUANTITY_COLUMNS = (
    "depth_qty_start",
    "depth_qty_end",
    "depth_qty_rest",
    "add_qty",
    "pull_qty",
    "pull_qty_rest",
    "fill_qty",
    "reprice_in_qty",
    "reprice_out_away_qty",
    "reprice_out_toward_qty",
)
DEPTH_AND_FLOW_SCHEMA = pa.schema(
    [
        ("symbol", STRING_CODES),
        ("dt", pa.date32()),
        ("window_start", pa.timestamp("us")),
        ("side", STRING_CODES),
        ("price", pa.float64()),
        ("rel_ticks", pa.int32()),
        *[(name, pa.int64()) for name in QUANTITY_COLUMNS],
        ("window_valid", pa.bool_()),
        ("build_fingerprint", STRING_CODES),
    ]
)


@dataclass(frozen=True)
class SurfaceSettings:
    """dbt vars, as the models pass them in."""

    timezone: str
    depth_ticks: int
    rest_ms: int
    surface_window: tuple[dt.time, dt.time]
    pre_open: tuple[dt.time, dt.time]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SurfaceSettings:
        """The settings a model receives in its `surface_settings` config (dbt vars)."""
        return cls(
            timezone=str(config["exchange_timezone"]),
            depth_ticks=int(config["depth_ticks"]),
            rest_ms=int(config["resting_ms"]),
            surface_window=(
                parse_time(str(config["surface_window_start"])),
                parse_time(str(config["surface_window_end"])),
            ),
            pre_open=(
                parse_time(str(config["pre_open_start"])),
                parse_time(str(config["pre_open_end"])),
            ),
        )

    def window_config(self, day: dt.date) -> WindowConfig:
        start = day_start_ns(day)
        end = start + 86_400 * 1_000_000_000
        return WindowConfig(
            range_start_ns=start,
            range_end_ns=end,
            book_from_ns=start,
            book_to_ns=end,
            depth_from_ns=utc_ns(day, self.surface_window[0], self.timezone),
            depth_to_ns=utc_ns(day, self.surface_window[1], self.timezone),
            depth_ticks=self.depth_ticks,
            rest_ns=self.rest_ms * 1_000_000,
            pre_open=(
                (
                    utc_ns(day, self.pre_open[0], self.timezone),
                    utc_ns(day, self.pre_open[1], self.timezone),
                ),
            ),
        )

    @property
    def fingerprint(self) -> str:
        return (
            f"engine{ENGINE_VERSION}:{self.timezone}:{self.depth_ticks}:{self.rest_ms}:"
            f"{self.surface_window[0]}-{self.surface_window[1]}:{self.pre_open[0]}-{self.pre_open[1]}"
        )


# a contract-day's records in file order, in batches (a partition's row groups)
LoadPartition = Callable[[str, dt.date], Iterable["pa.Table | pa.RecordBatch"]]
TicksFor = Callable[[str, dt.date, Sequence[int]], Mapping[int, int]]


def _prices(values: np.ndarray) -> pa.Array:
    return pa.array(values / PRICE_SCALE, mask=values == UNDEF_PRICE, type=pa.float64())


def _column(rows: np.ndarray, name: str) -> pa.Array:
    """A field of the kernel's row records: NumPy gathers the strided field at memory speed,
    where Arrow would convert it value by value (30x slower)."""
    return pa.array(np.ascontiguousarray(rows[name]))


def _timestamps(window_start_ns: np.ndarray) -> pa.Array:
    return pa.array(window_start_ns // 1000, type=pa.timestamp("us"))


def book_batch(chunk: WindowChunk, partition: Partition, fingerprint: str) -> pa.RecordBatch:
    rows = chunk.book_rows
    n = len(rows)
    return pa.RecordBatch.from_arrays(
        [
            repeated_string(partition.symbol, n),
            repeated_date(partition.day, n),
            _timestamps(rows["window_start"]),
            _prices(rows["bid_price"]),
            _column(rows, "bid_size"),
            _column(rows, "bid_count"),
            _prices(rows["ask_price"]),
            _column(rows, "ask_size"),
            _column(rows, "ask_count"),
            _prices(rows["last_trade_price"]),
            _prices(rows["spot_price"]),
            pa.array(rows["book_valid"].astype(bool)),
            repeated_string(fingerprint, n),
        ],
        schema=BOOK_SNAPSHOT_SCHEMA,
    )


def depth_batch(chunk: WindowChunk, partition: Partition, fingerprint: str) -> pa.RecordBatch:
    rows = chunk.depth_rows
    n = len(rows)
    return pa.RecordBatch.from_arrays(
        [
            repeated_string(partition.symbol, n),
            repeated_date(partition.day, n),
            _timestamps(rows["window_start"]),
            categorical(rows["side"], ["bid", "ask"]),
            _prices(rows["price"]),
            pa.array(rows["rel_ticks"].astype(np.int32)),
            *[_column(rows, name) for name in QUANTITY_COLUMNS],
            pa.array(rows["window_valid"].astype(bool)),
            repeated_string(fingerprint, n),
        ],
        schema=DEPTH_AND_FLOW_SCHEMA,
    )


def futures_chunks(
    partition: Partition,
    load: LoadPartition,
    ticks_for: TicksFor,
    settings: SurfaceSettings,
) -> Iterator[WindowChunk]:
    """The engine's chunks of one futures contract-day: its book and depth-and-flow rows. The
    records are replayed batch by batch as they load (the same rows as all at once): a busy
    day's 26 million records are never all in memory, twice (Arrow, then NumPy)."""
    label = f"futures_mbo symbol={partition.symbol} dt={partition.day}"
    loaded = (MboColumns.from_arrow(batch) for batch in load(partition.symbol, partition.day))
    batches = (columns for columns in loaded if len(columns))
    first = next(batches, None)
    if first is None:
        raise EngineError(f"{label}: no records (an empty day)")
    instrument = int(first.instrument_id[0])

    def one_contract() -> Iterator[MboColumns]:
        # one pass per batch, not a sort of the records: a futures partition is one contract
        for columns in itertools.chain([first], batches):
            ids = columns.instrument_id
            if (ids != instrument).any():
                found = sorted({instrument, *np.unique(ids).tolist()})
                raise EngineError(f"expected one instrument, found {found}")
            yield columns

    ticks = ticks_for(partition.symbol, partition.day, [instrument])
    depth_key = DepthKeyOrder()
    try:
        for chunk in replay_batches(one_contract(), ticks, settings.window_config(partition.day)):
            depth_key.check(chunk.depth_rows)
            yield chunk
    except EngineError as error:
        raise EngineError(f"{label}: {error}") from error


class DepthKeyOrder:
    """depth_and_flow_1s's key within a contract-day (one contract), (window_start, side,
    price), unique by construction: the replay emits each second's rows at once, by price
    level and, at a level, the bid before the ask, so (window_start, price, side) strictly
    increases through the day's rows, chunk after chunk. Checked as the rows are made, the
    warehouse then checks the written partitions' row counts (rows_match_partitions) instead
    of grouping every key."""

    def __init__(self) -> None:
        self._last: tuple[int, int, int] | None = None

    def check(self, rows: np.ndarray) -> None:
        if len(rows) == 0:
            return
        second, price, side = rows["window_start"], rows["price"], rows["side"]
        same_second = second[1:] == second[:-1]
        same_price = same_second & (price[1:] == price[:-1])
        after = (
            (second[1:] > second[:-1])
            | (same_second & (price[1:] > price[:-1]))
            | (same_price & (side[1:] > side[:-1]))
        )
        first = (int(second[0]), int(price[0]), int(side[0]))
        if self._last is not None and not first > self._last:
            row = 0
        elif not after.all():
            row = int(np.argmin(after)) + 1
        else:
            self._last = (int(second[-1]), int(price[-1]), int(side[-1]))
            return
        at = dt.datetime.fromtimestamp(int(second[row]) / 1e9, dt.UTC)
        raise EngineError(
            f"depth_and_flow_1s row at {at:%Y-%m-%d %H:%M:%S} "
            f"{('bid', 'ask')[int(side[row])]} {int(price[row]) / PRICE_SCALE} is not after the "
            "row before it (a key twice or out of order)"
        )


def depth_and_flow_batches(
    partitions: Sequence[Partition],
    load: LoadPartition,
    ticks_for: TicksFor,
    settings: SurfaceSettings,
) -> Iterator[pa.RecordBatch]:
    for partition in partitions:
        for chunk in futures_chunks(partition, load, ticks_for, settings):
            if len(chunk.depth_rows):
                yield depth_batch(chunk, partition, partition.fingerprint)
