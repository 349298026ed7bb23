"""Python side of the engine: validate one partition's records once, own the kernel's state,
and turn its output buffers into NumPy rows.

    columns = MboColumns.from_arrow(table)            # one partition, in file order
    for chunk in replay_windows(columns, ticks, config):
        chunk.book_rows, chunk.depth_rows              # 1-second surfaces, bounded buffers
    book = book_at(columns, ticks, at_ns)              # the L3 book at a moment
    events = top_of_book_events(columns, ticks)        # best bid/ask after every event
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from book_engine import kernel as k
from book_engine.errors import EngineError
from spymaster.dbn_facts import UNDEF_PRICE

ACTIONS = frozenset(b"ACMRTFN")
SIDES = frozenset(b"ABN")
FAR_FUTURE = np.iinfo(np.int64).max


def _char_codes(array: pa.Array | pa.ChunkedArray, name: str) -> np.ndarray:
    """One-character strings as byte codes, straight from the Arrow buffers."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.null_count:
        raise EngineError(f"column {name} has nulls")
    if pa.types.is_large_string(array.type):
        array = array.cast(pa.string())
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[
        array.offset : array.offset + len(array) + 1
    ]
    if len(array) and not np.array_equal(np.diff(offsets), np.ones(len(array), dtype=np.int32)):
        raise EngineError(f"column {name} must hold one character per record")
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)
    return data[offsets[0] : offsets[0] + len(array)].copy()


@dataclass(frozen=True)
class MboColumns:
    """The MBO fields the engine reads, one partition in file order."""

    ts_recv: np.ndarray
    instrument_id: np.ndarray
    action: np.ndarray
    side: np.ndarray
    price: np.ndarray
    size: np.ndarray
    order_id: np.ndarray
    flags: np.ndarray

    @classmethod
    def from_arrow(cls, table: pa.Table) -> MboColumns:
        def numbers(name: str, dtype: type) -> np.ndarray:
            column = table.column(name)
            if column.null_count:
                raise EngineError(f"column {name} has nulls")
            return np.ascontiguousarray(column.to_numpy(), dtype=dtype)

        return cls(
            ts_recv=numbers("ts_recv", np.int64),
            instrument_id=numbers("instrument_id", np.int64),
            action=_char_codes(table.column("action"), "action"),
            side=_char_codes(table.column("side"), "side"),
            price=numbers("price", np.int64),
            size=numbers("size", np.int64),
            order_id=np.ascontiguousarray(table.column("order_id").to_numpy()).view(np.int64),
            flags=numbers("flags", np.uint8),
        )

    @classmethod
    def from_dbn(cls, records: np.ndarray) -> MboColumns:
        """Straight from a databento MBO record array (`DBNStore.to_ndarray()`)."""
        return cls(
            ts_recv=records["ts_recv"].astype(np.int64),
            instrument_id=records["instrument_id"].astype(np.int64),
            action=np.ascontiguousarray(records["action"]).view(np.uint8),
            side=np.ascontiguousarray(records["side"]).view(np.uint8),
            price=records["price"].astype(np.int64),
            size=records["size"].astype(np.int64),
            order_id=records["order_id"].astype(np.uint64).view(np.int64),
            flags=np.ascontiguousarray(records["flags"]).astype(np.uint8),
        )

    def __len__(self) -> int:
        return len(self.ts_recv)


@dataclass(frozen=True)
class WindowConfig:
    """Which windows to emit (UTC ns ranges of window starts) and how."""

    range_start_ns: int
    range_end_ns: int
    book_from_ns: int
    book_to_ns: int
    depth_from_ns: int = 0
    depth_to_ns: int = 0
    depth_ticks: int = 200
    rest_ns: int = 500_000_000
    pre_open: tuple[tuple[int, int], ...] = ()


@dataclass
class WindowChunk:
    book_rows: np.ndarray
    depth_rows: np.ndarray
    instrument_ids: np.ndarray


@dataclass
class EngineState:
    """Everything the kernel keeps between calls."""

    instrument_ids: np.ndarray
    instruments: np.ndarray
    levels: np.ndarray
    flows: np.ndarray
    scalars: np.ndarray = field(default_factory=lambda: np.zeros(k.N_SCALARS, np.int64))
    orders: np.ndarray = field(default_factory=lambda: _orders(1 << 10))
    table: np.ndarray = field(default_factory=lambda: np.full((1 << 11, 3), -1, np.int64))
    free: np.ndarray = field(
        default_factory=lambda: np.arange((1 << 10) - 1, -1, -1, dtype=np.int64)
    )
    ring: np.ndarray = field(default_factory=lambda: np.zeros((1 << 16, 3), np.int64))

    def __post_init__(self) -> None:
        self.scalars[k.S_N_FREE] = self.orders.shape[0]

    def grow(self, needed: int) -> None:
        """Room for `needed` more orders: larger order, hash and ring arrays."""
        capacity = self.orders.shape[0]
        free_count = int(self.scalars[k.S_N_FREE])
        if free_count < needed:
            extra = max(capacity, needed)
            self.orders = np.concatenate([self.orders, _orders(extra)], axis=0)
            free = np.empty(capacity + extra, dtype=np.int64)  # every slot may be free at once
            free[:free_count] = self.free[:free_count]
            free[free_count : free_count + extra] = np.arange(
                capacity + extra - 1, capacity - 1, -1
            )
            self.free = free
            self.scalars[k.S_N_FREE] = free_count + extra
        hashed = int(self.scalars[k.S_HASH_COUNT])
        size = self.table.shape[0]
        while 2 * (hashed + needed) > size:
            size *= 2
        if size != self.table.shape[0]:
            self.table = k.rehash(self.table, size)
        if self.flows.shape[1] == 1:
            return  # young orders are tracked only for depth rows
        pending = int(self.scalars[k.S_RING_TAIL] - self.scalars[k.S_RING_HEAD])
        ring_size = self.ring.shape[0]
        while pending + needed > ring_size:
            ring_size *= 2
        if ring_size != self.ring.shape[0]:
            ring = np.zeros((ring_size, 3), np.int64)
            head, tail = int(self.scalars[k.S_RING_HEAD]), int(self.scalars[k.S_RING_TAIL])
            old_mask = self.ring.shape[0] - 1
            positions = np.arange(head, tail)
            ring[positions & (ring_size - 1)] = self.ring[positions & old_mask]
            self.ring = ring


def _orders(capacity: int) -> np.ndarray:
    orders = np.zeros((capacity, 8), np.int64)
    orders[:, k.O_INSTRUMENT] = -1
    return orders


def _prepare(
    columns: MboColumns, ticks: Mapping[int, int], with_flows: bool
) -> tuple[np.ndarray, EngineState]:
    """Validate the records once; dense instrument indexes and the per-instrument ladders."""
    for name, values, allowed in (
        ("action", columns.action, ACTIONS),
        ("side", columns.side, SIDES),
    ):
        mask = np.zeros(256, dtype=np.bool_)
        mask[list(allowed)] = True
        r = k.first_outside(values, mask)
        if r >= 0:
            raise EngineError(f"record {r}: unknown {name} {bytes([values[r]])!r}")
    backwards = np.flatnonzero(np.diff(columns.ts_recv) < 0)
    if backwards.size:
        r = int(backwards[0]) + 1
        raise EngineError(
            f"record {r}: ts_recv goes backwards "
            f"({columns.ts_recv[r]} after {columns.ts_recv[r - 1]})"
        )
    dense, ids = k.dense_instruments(columns.instrument_id)
    missing = [int(i) for i in ids if int(i) not in ticks]
    if missing:
        raise EngineError(
            f"records for instrument(s) {missing} that have no definition (tick size)"
        )
    tick_array = np.array([ticks[int(i)] for i in ids], dtype=np.int64)
    if (tick_array <= 0).any():
        given = dict(zip(ids.tolist(), tick_array.tolist(), strict=True))
        raise EngineError(f"tick sizes must be positive, got {given}")
    price_min, levels_per, off_grid = k.ladder_geometry(
        dense, columns.price, columns.action, tick_array, len(ids)
    )
    if off_grid >= 0:
        raise EngineError(
            f"record {off_grid}: price {columns.price[off_grid]} is not on instrument "
            f"{int(ids[dense[off_grid]])}'s tick grid of {tick_array[dense[off_grid]]}"
        )
    instruments = np.zeros((len(ids), k.N_INSTRUMENT_FIELDS), np.int64)
    instruments[:, k.I_TICK] = tick_array
    instruments[:, k.I_PRICE_MIN] = price_min
    instruments[:, k.I_LEVELS] = levels_per
    instruments[:, k.I_OFFSET] = np.concatenate([[0], np.cumsum(levels_per)[:-1]])
    instruments[:, k.I_STATE] = k.WAITING
    instruments[:, k.I_BEST_BID] = -1
    instruments[:, k.I_BEST_ASK] = -1
    instruments[:, k.I_LAST_TRADE] = UNDEF_PRICE
    instruments[:, k.I_SPOT] = -1
    instruments[:, k.I_INVALID_WINDOW] = -1
    total = int(levels_per.sum())
    levels = np.zeros((2, total, 4), np.int64)
    levels[:, :, k.L_STAMP] = -1
    flows = np.zeros((2, total if with_flows else 1, 9), np.int64)
    flows[:, :, k.F_YOUNG_STAMP] = -1
    state = EngineState(instrument_ids=ids, instruments=instruments, levels=levels, flows=flows)
    return dense, state


_ERRORS = {
    k.ERR_UNDEF_PRICE: "an add or modify with UNDEF_PRICE",
    k.ERR_BAD_SIDE: "an add or modify without a bid or ask side",
}


def _run(
    columns: MboColumns,
    dense: np.ndarray,
    state: EngineState,
    config: np.ndarray,
    pre_open: np.ndarray,
    book_rows: np.ndarray,
    depth_rows: np.ndarray,
    event_rows: np.ndarray,
) -> int:
    """Call the kernel until it stops for a reason other than growing."""
    while True:
        status = k.replay(
            columns.ts_recv, dense, columns.action, columns.side, columns.price, columns.size,
            columns.order_id, columns.flags, config, pre_open, state.scalars, state.instruments,
            state.levels, state.flows, state.orders, state.table, state.free, state.ring,
            book_rows, depth_rows, event_rows,
        )  # fmt: skip
        if status == k.GROW:
            cursor = int(state.scalars[k.S_CURSOR])
            end = cursor
            while end < len(columns) - 1 and not columns.flags[end] & k.F_LAST:
                end += 1
            state.grow(end - cursor + 1)
            continue
        if status < 0:
            record = int(state.scalars[k.S_ERROR_RECORD])
            raise EngineError(f"record {record}: {_ERRORS[status]}")
        return status


def _config(window: WindowConfig, stop_at: int, emit_events: bool) -> tuple[np.ndarray, np.ndarray]:
    config = np.zeros(k.N_CONFIG, np.int64)
    config[k.C_RANGE_END] = window.range_end_ns
    config[k.C_BOOK_FROM] = window.book_from_ns
    config[k.C_BOOK_TO] = window.book_to_ns
    config[k.C_DEPTH_FROM] = window.depth_from_ns
    config[k.C_DEPTH_TO] = window.depth_to_ns
    config[k.C_DEPTH_TICKS] = window.depth_ticks
    config[k.C_REST_NS] = window.rest_ns
    config[k.C_STOP_AT] = stop_at
    config[k.C_EMIT_EVENTS] = emit_events
    pre_open = np.array(window.pre_open, dtype=np.int64).reshape(-1, 2)
    return config, pre_open


def _start(state: EngineState, window: WindowConfig) -> None:
    state.scalars[k.S_NEXT_WINDOW_END] = window.range_start_ns + k.WINDOW_NS


def replay_windows(
    columns: MboColumns,
    ticks: Mapping[int, int],
    window: WindowConfig,
    *,
    buffer_rows: int = 1 << 20,
) -> Iterator[WindowChunk]:
    """1-second book and depth-and-flow rows of one partition, in chunks of bounded size.

    `ticks` maps instrument_id to its tick in price units (1e-9). Depth rows are emitted for
    windows starting in [depth_from, depth_to) only, within +-depth_ticks of spot."""
    with_flows = window.depth_to_ns > window.depth_from_ns
    dense, state = _prepare(columns, ticks, with_flows)
    _start(state, window)
    config, pre_open = _config(window, FAR_FUTURE, emit_events=False)
    n_instruments = len(state.instrument_ids)
    book_rows = np.zeros(max(buffer_rows, n_instruments), dtype=k.BOOK_ROW)
    depth_size = max(buffer_rows, n_instruments * (4 * window.depth_ticks + 2)) if with_flows else 1
    depth_rows = np.zeros(depth_size, dtype=k.DEPTH_ROW)
    events = np.zeros(1, dtype=k.EVENT_ROW)
    while True:
        status = _run(columns, dense, state, config, pre_open, book_rows, depth_rows, events)
        n_book = int(state.scalars[k.S_BOOK_ROWS])
        n_depth = int(state.scalars[k.S_DEPTH_ROWS])
        if n_book or n_depth:
            yield WindowChunk(
                book_rows[:n_book].copy(), depth_rows[:n_depth].copy(), state.instrument_ids
            )
        state.scalars[k.S_BOOK_ROWS] = 0
        state.scalars[k.S_DEPTH_ROWS] = 0
        if status == k.DONE:
            return


@dataclass(frozen=True)
class BookLevel:
    price: int
    size: int
    orders: int


@dataclass(frozen=True)
class InstrumentBook:
    instrument_id: int
    valid: bool
    orders: int
    bids: list[BookLevel]
    asks: list[BookLevel]
    last_trade_price: int | None


@dataclass(frozen=True)
class BookState:
    ts_recv: int | None  # of the last record applied
    books: dict[int, InstrumentBook]
    unknown_cancels: int
    unknown_modifies: int
    unknown_fills: int


def require_snapshot(columns: MboColumns, label: str) -> None:
    """A day to model starts with its snapshot (SPEC 12): an empty day, or one whose records
    never restate the book, would give a book that is never valid."""
    if len(columns.flags) == 0:
        raise EngineError(f"{label}: no records (an empty day)")
    if not (columns.flags & k.F_SNAPSHOT).any():
        raise EngineError(
            f"{label}: no snapshot (no record with F_SNAPSHOT): the book is never known; land "
            "the day's file as Databento delivers it, starting with its snapshot"
        )


def book_at(
    columns: MboColumns,
    ticks: Mapping[int, int],
    at_ns: int | None = None,
    *,
    pre_open: tuple[tuple[int, int], ...] = (),
) -> BookState:
    """The L3 book after the last record with F_LAST whose ts_recv < at_ns (default: all)."""
    dense, state = _prepare(columns, ticks, with_flows=False)
    window = WindowConfig(0, 0, 0, 0, pre_open=pre_open)
    state.scalars[k.S_NEXT_WINDOW_END] = FAR_FUTURE
    config, pre_open_array = _config(
        window, at_ns if at_ns is not None else FAR_FUTURE, emit_events=False
    )
    config[k.C_RANGE_END] = -1
    empty_book = np.zeros(1, dtype=k.BOOK_ROW)
    empty_depth = np.zeros(1, dtype=k.DEPTH_ROW)
    empty_events = np.zeros(1, dtype=k.EVENT_ROW)
    _run(columns, dense, state, config, pre_open_array, empty_book, empty_depth, empty_events)
    applied = int(state.scalars[k.S_CURSOR])
    moment = int(columns.ts_recv[applied - 1]) if applied else None
    books = {}
    for q, instrument_id in enumerate(state.instrument_ids.tolist()):
        row = state.instruments[q]
        first, count = int(row[k.I_OFFSET]), int(row[k.I_LEVELS])
        depth = state.levels[:, first : first + count, k.L_DEPTH]
        orders = state.levels[:, first : first + count, k.L_COUNT]

        def side_levels(
            s: int, best_first: slice, depth=depth, orders=orders, row=row
        ) -> list[BookLevel]:
            indexes = np.flatnonzero(depth[s] > 0)[best_first]
            return [
                BookLevel(
                    int(row[k.I_PRICE_MIN] + i * row[k.I_TICK]), int(depth[s, i]), int(orders[s, i])
                )
                for i in indexes
            ]

        valid = k._book_valid(state.instruments, q, moment or 0, pre_open_array)
        last = int(row[k.I_LAST_TRADE])
        books[instrument_id] = InstrumentBook(
            instrument_id=instrument_id,
            valid=bool(valid),
            orders=int(row[k.I_ORDERS]),
            bids=side_levels(k.BID, slice(None, None, -1)),
            asks=side_levels(k.ASK, slice(None)),
            last_trade_price=None if last == UNDEF_PRICE else last,
        )
    return BookState(
        ts_recv=moment,
        books=books,
        unknown_cancels=int(state.scalars[k.S_UNKNOWN_CANCELS]),
        unknown_modifies=int(state.scalars[k.S_UNKNOWN_MODIFIES]),
        unknown_fills=int(state.scalars[k.S_UNKNOWN_FILLS]),
    )


def top_of_book_events(
    columns: MboColumns, ticks: Mapping[int, int], *, pre_open: tuple[tuple[int, int], ...] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Best bid and ask (price, size) after every F_LAST event, per instrument touched:
    (EVENT_ROW rows with dense instrument indexes, instrument ids)."""
    dense, state = _prepare(columns, ticks, with_flows=False)
    window = WindowConfig(0, 0, 0, 0, pre_open=pre_open)
    state.scalars[k.S_NEXT_WINDOW_END] = FAR_FUTURE
    config, pre_open_array = _config(window, FAR_FUTURE, emit_events=True)
    config[k.C_RANGE_END] = -1
    chunks = []
    events = np.zeros(max(1 << 16, len(state.instrument_ids)), dtype=k.EVENT_ROW)
    empty_book = np.zeros(1, dtype=k.BOOK_ROW)
    empty_depth = np.zeros(1, dtype=k.DEPTH_ROW)
    while True:
        status = _run(
            columns, dense, state, config, pre_open_array, empty_book, empty_depth, events
        )
        chunks.append(events[: int(state.scalars[k.S_EVENT_ROWS])].copy())
        state.scalars[k.S_EVENT_ROWS] = 0
        if status == k.DONE:
            return np.concatenate(chunks), state.instrument_ids
