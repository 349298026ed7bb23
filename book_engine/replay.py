"""Python side of the engine: validate one partition's records once, own the kernel's state,
and turn its output buffers into NumPy rows.

    columns = MboColumns.from_arrow(table)            # one partition, in file order
    for chunk in replay_windows(columns, ticks, config):
        chunk.book_rows, chunk.depth_rows              # 1-second surfaces, bounded buffers
    book = book_at(columns, ticks, at_ns)              # the L3 book at a moment
    events = top_of_book_events(columns, ticks)        # best bid/ask after every event
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from book_engine import kernel as k
from book_engine.errors import EngineError, instrument_list
from foundation.dbn_facts import UNDEF_PRICE

KNOWN_ACTIONS = np.zeros(256, np.bool_)  # by byte code: A C M R T F N
KNOWN_ACTIONS[list(b"ACMRTFN")] = True
KNOWN_SIDES = np.zeros(256, np.bool_)
KNOWN_SIDES[list(b"ABN")] = True
FAR_FUTURE = np.iinfo(np.int64).max


def _char_codes(array: pa.Array | pa.ChunkedArray, name: str) -> np.ndarray:
    """One-character strings as byte codes, straight from the Arrow buffers; a dictionary
    column (as Parquet keeps it) through its few distinct values, never a string per row."""
    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    if any(chunk.null_count for chunk in chunks):
        raise EngineError(f"column {name} has nulls")
    if not chunks:
        return np.zeros(0, np.uint8)
    if not pa.types.is_dictionary(chunks[0].type):
        return _string_codes(pa.chunked_array(chunks).combine_chunks(), name)
    codes = [_string_codes(chunk.dictionary, name)[chunk.indices.to_numpy()] for chunk in chunks]
    return np.concatenate(codes) if len(codes) > 1 else codes[0]


def _string_codes(array: pa.Array, name: str) -> np.ndarray:
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

    @classmethod
    def empty(cls) -> MboColumns:
        return cls(*(np.zeros(0, dtype) for dtype in _COLUMN_DTYPES))

    @classmethod
    def concat(cls, first: MboColumns, second: MboColumns) -> MboColumns:
        return cls(
            *(
                np.concatenate([getattr(first, name), getattr(second, name)])
                for name in cls.__dataclass_fields__
            )
        )

    def slice(self, start: int, stop: int) -> MboColumns:
        return MboColumns(*(getattr(self, name)[start:stop] for name in self.__dataclass_fields__))

    def __len__(self) -> int:
        return len(self.ts_recv)


# MboColumns' fields, in order
_COLUMN_DTYPES = (np.int64, np.int64, np.uint8, np.uint8, np.int64, np.int64, np.int64, np.uint8)


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
    # each book row's spot; without it, spot_price is UNDEF_PRICE and no depth row
    # is emitted (an option's book by second is priced on its future's spot)
    with_spot: bool = True
    # book rows as QUOTE_ROW (time, instrument, best bid and ask, validity) instead of
    # BOOK_ROW: all an option's pricing reads of its replay
    quote_rows: bool = False

    @property
    def book_row(self) -> np.dtype:
        return k.QUOTE_ROW if self.quote_rows else k.BOOK_ROW


@dataclass
class WindowChunk:
    book_rows: np.ndarray
    depth_rows: np.ndarray
    instrument_ids: np.ndarray


@dataclass
class EngineState:
    """Everything the kernel keeps between calls. Instruments get dense indexes in order of
    first appearance; each has a contiguous segment of tick levels (its ladder) in `levels` and
    `flows` (the first `used` levels: ladders and the levels they left), moved when a batch
    brings a price outside it."""

    with_flows: bool
    instrument_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    instruments: np.ndarray = field(
        default_factory=lambda: np.zeros((0, k.N_INSTRUMENT_FIELDS), np.int64)
    )
    levels: np.ndarray = field(default_factory=lambda: _levels(0))
    flows: np.ndarray = field(default_factory=lambda: _flows(0, False))
    priced: np.ndarray = field(default_factory=lambda: np.zeros(0, np.bool_))
    scalars: np.ndarray = field(default_factory=lambda: np.zeros(k.N_SCALARS, np.int64))
    orders: np.ndarray = field(default_factory=lambda: _orders(1 << 10))
    table: np.ndarray = field(default_factory=lambda: np.full((1 << 11, 2), -1, np.int64))
    free: np.ndarray = field(
        default_factory=lambda: np.arange((1 << 10) - 1, -1, -1, dtype=np.int64)
    )
    ring: np.ndarray = field(default_factory=lambda: np.zeros((1 << 16, 3), np.int64))
    dense_of: dict[int, int] = field(default_factory=dict)
    used: int = 0  # levels taken (the rest of `levels` is spare)

    def __post_init__(self) -> None:
        self.scalars[k.S_N_FREE] = self.orders.shape[0]
        self.flows = _flows(0, self.with_flows)

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
        while k.TABLE_SLOTS_PER_ORDER * (hashed + needed) > size:
            size *= 2
        if size != self.table.shape[0]:
            self.table = k.rehash(self.table, size)
        if not self.with_flows:
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

    def admit(self, columns: MboColumns, ticks: TickSizes, margin_ticks: int) -> np.ndarray:
        """Validate a batch of records against the state: known actions and sides, ts_recv
        never going back, a positive tick for every instrument, prices on its grid. New
        instruments get a ladder; a price outside an instrument's ladder lays the ladders out
        again, `margin_ticks` wider on the side that grew. Returns each record's instrument
        as the state numbers it."""
        scan = scan_batch(columns, ticks)
        new_ids = [int(i) for i in scan.ids if int(i) not in self.dense_of]
        missing = [i for i in new_ids if i not in ticks]
        if missing:
            raise EngineError(
                f"records for instrument(s) {instrument_list(missing)} that have no definition "
                "(tick size)"
            )
        bad = {i: ticks[i] for i in new_ids if ticks[i] <= 0}
        if bad:
            raise EngineError(
                f"tick sizes must be positive, got {instrument_list(sorted(bad))}: "
                f"{[bad[i] for i in sorted(bad)][:10]}"
            )
        if new_ids:
            first_recv = dict(
                zip(scan.ids.tolist(), columns.ts_recv[scan.first].tolist(), strict=True)
            )
            self.add_instruments(
                new_ids, [ticks[i] for i in new_ids], [first_recv[i] for i in new_ids]
            )
        to_state = np.array([self.dense_of[int(i)] for i in scan.ids], dtype=np.int64)
        tick_array = self.instruments[to_state, k.I_TICK]
        dense = scan.indexes  # the batch's own: the state's once placed
        remap = not np.array_equal(to_state, np.arange(len(to_state)))
        # the scan checked the grid with these ticks: a second pass only to renumber, or
        # to name the first price off the grid of the lowest (the error's record)
        checked = scan.off_grid < 0 and np.array_equal(scan.ticks, tick_array)
        off_grid = (
            -1
            if checked and not remap
            else k.place_batch(
                dense, columns.price, columns.action, scan.low, tick_array, to_state, remap
            )
        )
        if off_grid >= 0:
            q = dense[off_grid]  # not placed yet
            raise EngineError(
                f"record {off_grid}: price {columns.price[off_grid]} is not on instrument "
                f"{int(scan.ids[q])}'s tick grid of {tick_array[q]}"
            )
        has_prices = scan.low != UNDEF_PRICE
        self._cover(to_state, scan.low, scan.high, has_prices, margin_ticks)
        return dense

    def add_instruments(self, ids: list[int], ticks: list[int], first_recv: list[int]) -> None:
        rows = np.zeros((len(ids), k.N_INSTRUMENT_FIELDS), np.int64)
        rows[:, k.I_TICK] = ticks
        divisors = [k.grid_divisor(tick) for tick in ticks]
        rows[:, k.I_TICK_SHIFT] = [shift for shift, _, _ in divisors]
        rows[:, k.I_TICK_INVERSE] = np.array(
            [inverse for _, inverse, _ in divisors], np.uint64
        ).view(np.int64)
        rows[:, k.I_FIRST_RECV] = first_recv
        rows[:, k.I_PRICE_MIN] = 0
        rows[:, k.I_LEVELS] = 0
        rows[:, k.I_STATE] = k.WAITING
        rows[:, k.I_BEST_BID] = -1
        rows[:, k.I_BEST_ASK] = -1
        rows[:, k.I_LAST_TRADE] = UNDEF_PRICE
        rows[:, k.I_SPOT] = -1
        rows[:, k.I_INVALID_WINDOW] = -1
        for i in ids:
            self.dense_of[i] = len(self.dense_of)
        self.instrument_ids = np.concatenate([self.instrument_ids, np.array(ids, np.int64)])
        self.instruments = np.concatenate([self.instruments, rows])
        self.priced = np.concatenate([self.priced, np.zeros(len(ids), np.bool_)])
        # a one-level (empty) ladder for each new one until its first price
        added = np.arange(len(self.instruments) - len(ids), len(self.instruments))
        self._place(added, np.zeros(len(ids), np.int64), np.ones(len(ids), np.int64))

    def _cover(
        self,
        which: np.ndarray,
        low: np.ndarray,
        high: np.ndarray,
        has_prices: np.ndarray,
        margin_ticks: int,
    ) -> None:
        """Make every instrument's ladder span the batch's [low, high] (where it has prices)."""
        q, low, high = which[has_prices], low[has_prices], high[has_prices]
        tick = self.instruments[q, k.I_TICK]
        price_min = self.instruments[q, k.I_PRICE_MIN]
        new = ~self.priced[q]
        old = ~new
        off_grid = np.flatnonzero(old & ((low - price_min) % tick != 0))
        if off_grid.size:
            i = off_grid[0]
            raise EngineError(
                f"instrument {int(self.instrument_ids[q[i]])}: price {low[i]} is not on its tick "
                f"grid of {tick[i]} from {price_min[i]}"
            )
        top = price_min + (self.instruments[q, k.I_LEVELS] - 1) * tick
        below = old & (low < price_min)
        above = old & (high > top)
        grown = new | below | above
        if not grown.any():
            return
        margin = margin_ticks * tick
        bottom = np.where(new | below, low - margin, price_min)
        top = np.where(new | above, high + margin, top)
        self._place(q[grown], bottom[grown], ((top - bottom) // tick + 1)[grown])
        self.priced[q] = True

    def _place(self, which: np.ndarray, price_min: np.ndarray, levels: np.ndarray) -> None:
        """Give each instrument of `which` a ladder of `levels` levels from `price_min`, after
        the ladders in use: its depth, counts and flows move with their prices, and every level
        index the state holds (orders, best bid and ask, spot) follows. Only these ladders
        move (a ladder laid out again used to move all of them: 30-55 ms for an options day's
        31 MB, a live second's stall); the levels they leave are not used again, and the
        ladders are compacted when the spare levels run out. An unpriced instrument's ladder
        (one empty level until its first price) is not copied: moved by its new price_min, it
        would land on another instrument's levels."""
        needed = int(levels.sum())
        if self.used + needed > self.levels.shape[1]:
            self._compact(needed)
        offsets = self.used + np.concatenate([[0], np.cumsum(levels)[:-1]]).astype(np.int64)
        self._fresh(self.used, self.used + needed)
        state = self.instruments
        delta = np.zeros(state.shape[0], np.int64)  # old level index + delta = new one
        for i, q in enumerate(which.tolist()):
            count = int(state[q, k.I_LEVELS])
            if count == 0 or not self.priced[q]:
                continue
            shift = (state[q, k.I_PRICE_MIN] - price_min[i]) // state[q, k.I_TICK]
            source = slice(int(state[q, k.I_OFFSET]), int(state[q, k.I_OFFSET]) + count)
            target = slice(int(offsets[i] + shift), int(offsets[i] + shift) + count)
            self.levels[:, target] = self.levels[:, source]
            if self.with_flows:
                self.flows[:, target] = self.flows[:, source]
            delta[q] = offsets[i] + shift - state[q, k.I_OFFSET]
        if delta.any():  # new instruments' placeholders move nothing the orders point at
            self._follow(delta)
        state[which, k.I_OFFSET] = offsets
        state[which, k.I_PRICE_MIN] = price_min
        state[which, k.I_LEVELS] = levels
        self.used += needed

    def _compact(self, needed: int) -> None:
        """The ladders in use, in instrument order and without the levels left behind, in new
        arrays with room for `needed` more levels and as many again spare (zeroed lazily: a
        level's pages are written only once a ladder takes it)."""
        state = self.instruments
        levels = state[:, k.I_LEVELS]
        offsets = np.concatenate([[0], np.cumsum(levels)[:-1]]).astype(np.int64)
        in_use = int(levels.sum())
        capacity = 2 * (in_use + needed)
        new_levels = _levels(capacity)
        new_flows = _flows(capacity, self.with_flows)
        delta = offsets - state[:, k.I_OFFSET]
        for q in np.flatnonzero(levels).tolist():
            source = slice(int(state[q, k.I_OFFSET]), int(state[q, k.I_OFFSET] + levels[q]))
            target = slice(int(offsets[q]), int(offsets[q] + levels[q]))
            new_levels[:, target] = self.levels[:, source]
            if self.with_flows:
                new_flows[:, target] = self.flows[:, source]
        self._follow(delta)
        state[:, k.I_OFFSET] = offsets
        self.levels, self.flows, self.used = new_levels, new_flows, in_use

    def _fresh(self, start: int, stop: int) -> None:
        """Levels start..stop about to be taken: no window has touched them yet."""
        self.levels[:, start:stop, k.L_STAMP] = -1
        if self.with_flows:
            self.flows[:, start:stop, k.F_YOUNG_STAMP] = -1

    def _follow(self, delta: np.ndarray) -> None:
        """Every level index the state holds moves by its instrument's `delta`."""
        active = np.flatnonzero(self.orders[:, k.O_INSTRUMENT] >= 0)
        self.orders[active, k.O_LEVEL] += delta[self.orders[active, k.O_INSTRUMENT]]
        for column in (k.I_BEST_BID, k.I_BEST_ASK, k.I_SPOT):
            known = self.instruments[:, column] >= 0
            self.instruments[known, column] += delta[known]


def _levels(capacity: int) -> np.ndarray:
    """Zeroed levels (their stamps are set as ladders take them: EngineState._fresh)."""
    return np.zeros((2, capacity, 4), np.int64)


def _flows(capacity: int, with_flows: bool) -> np.ndarray:
    """The kernel tracks flows when this has more than one level: one more than the ladders
    need keeps that so for a one-level ladder."""
    return np.zeros((2, capacity + 1 if with_flows else 1, 9), np.int64)


def _orders(capacity: int) -> np.ndarray:
    orders = np.zeros((capacity, 8), np.int64)
    orders[:, k.O_INSTRUMENT] = -1
    return orders


@dataclass(frozen=True)
class BatchScan:
    """One pass over a batch of valid records (`scan_batch`)."""

    indexes: np.ndarray  # each record's instrument, numbered in order of first appearance
    ids: np.ndarray  # the instrument ids in that order
    first: np.ndarray  # the position of each one's first record
    low: np.ndarray  # each one's lowest and highest price of a priced action
    high: np.ndarray  # (UNDEF_PRICE and -UNDEF_PRICE: none)
    ticks: np.ndarray  # each one's tick in `ticks` (0: none)
    off_grid: int  # the first priced record off its instrument's grid of ticks (-1: none)


class TickSizes(Mapping[int, int]):
    """Instruments' tick sizes by id, with the ids sorted into arrays once: each batch's scan
    looks its instruments up there (an options chain's 1,200 ticks sorted per batch took
    0.1 ms of a live second)."""

    def __init__(self, ticks: Mapping[int, int]) -> None:
        self._ticks = dict(ticks)
        self.ids = np.array(sorted(self._ticks), np.int64)
        self.sizes = np.array([self._ticks[i] for i in self.ids.tolist()], np.int64)

    def __getitem__(self, instrument_id: int) -> int:
        return self._ticks[instrument_id]

    def __iter__(self) -> Iterator[int]:
        return iter(self._ticks)

    def __len__(self) -> int:
        return len(self._ticks)


def scan_batch(columns: MboColumns, ticks: TickSizes) -> BatchScan:
    """Number a batch's instruments and find their price ranges, checking every record's
    action and side and that ts_recv never goes back (an error naming the first record that
    does not), and whether every price is on its instrument's grid of `ticks`."""
    # a day of ES options has about 1,200-4,000 instruments; a live batch's few records
    # cannot have more ids than records (a power of two: the id table's size)
    capacity = 1 << min(13, max(len(columns) - 1, 0).bit_length())
    while True:
        (
            dense, ids, first, count, low, high, scan_ticks, bad_action, bad_side, backwards,
            off_grid,
        ) = k.scan_batch(
            columns.instrument_id, columns.ts_recv, columns.action, columns.side,
            columns.price, KNOWN_ACTIONS, KNOWN_SIDES, capacity, ticks.ids, ticks.sizes,
        )  # fmt: skip
        if count >= 0:
            break
        capacity *= 4
    for name, values, r in (
        ("action", columns.action, bad_action),
        ("side", columns.side, bad_side),
    ):
        if r >= 0:
            raise EngineError(f"record {r}: unknown {name} {bytes([values[r]])!r}")
    if backwards >= 0:
        raise EngineError(
            f"record {backwards}: ts_recv goes backwards "
            f"({columns.ts_recv[backwards]} after {columns.ts_recv[backwards - 1]})"
        )
    return BatchScan(
        dense, ids[:count], first[:count], low[:count], high[:count], scan_ticks[:count], off_grid
    )


def _prepare(
    columns: MboColumns, ticks: Mapping[int, int], with_flows: bool
) -> tuple[np.ndarray, EngineState]:
    """A new state for one partition's records: ladders exactly as wide as their prices."""
    state = EngineState(with_flows=with_flows)
    return state.admit(columns, TickSizes(ticks), margin_ticks=0), state


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
    config[k.C_WITH_SPOT] = window.with_spot
    config[k.C_LAST_WINDOW_END] = window.range_end_ns
    pre_open = np.array(window.pre_open, dtype=np.int64).reshape(-1, 2)
    return config, pre_open


def replay_windows(
    columns: MboColumns,
    ticks: Mapping[int, int],
    window: WindowConfig,
    *,
    buffer_rows: int | None = None,
) -> Iterator[WindowChunk]:
    """1-second book and depth-and-flow rows of one partition, in chunks of bounded size.

    `ticks` maps instrument_id to its tick in price units (1e-9). Depth rows are emitted for
    windows starting in [depth_from, depth_to) only, within +-depth_ticks of spot."""
    replay = WindowReplay(ticks, window, buffer_rows=buffer_rows, margin_ticks=0)
    yield from replay.push(columns)
    yield from replay.finish()


def replay_batches(
    batches: Iterable[MboColumns], ticks: Mapping[int, int], window: WindowConfig
) -> Iterator[WindowChunk]:
    """replay_windows for a day that comes in batches (a partition's row groups, replayed as
    they load): the same rows. An empty day, or one without a snapshot, is refused once every
    batch has been read (require_snapshot)."""
    replay = WindowReplay(ticks, window)
    records, snapshot = 0, False
    for columns in batches:
        records, snapshot = records + len(columns), snapshot or has_snapshot(columns)
        yield from replay.push(columns)
    require_snapshot_seen(records, snapshot)
    yield from replay.finish()


BUFFER_BYTES = 31 << 20
"""An output buffer's size by default: under glibc's largest mmap threshold (32 MiB), so that
a buffer handed over and freed leaves its pages for the next (book_engine.memory_pages)."""


def _buffer_rows(row: np.dtype) -> int:
    return BUFFER_BYTES // row.itemsize


class WindowReplay:
    """The 1-second windows of a record stream fed in batches of any size: the rows are those
    replay_windows gives for all the records at once (a batch's trailing records after its
    last F_LAST wait for the rest of their event). A window closes when an event completes at
    or after its end, at `close_until` (a live clock), or at `finish`."""

    def __init__(
        self,
        ticks: Mapping[int, int],
        window: WindowConfig,
        *,
        buffer_rows: int | None = None,
        margin_ticks: int = 64,
    ) -> None:
        self.ticks = TickSizes(ticks)
        self.window = window
        self.margin_ticks = margin_ticks
        self.state = EngineState(with_flows=window.depth_to_ns > window.depth_from_ns)
        self.state.scalars[k.S_NEXT_WINDOW_END] = window.range_start_ns + k.WINDOW_NS
        self.config, self.pre_open = _config(window, FAR_FUTURE, emit_events=False)
        self.book_rows = np.zeros(buffer_rows or _buffer_rows(window.book_row), window.book_row)
        self.depth_rows = np.zeros(
            (buffer_rows or _buffer_rows(k.DEPTH_ROW)) if self.state.with_flows else 1, k.DEPTH_ROW
        )
        self.events = np.zeros(1, dtype=k.EVENT_ROW)
        self.pending: MboColumns | None = None  # records after the last F_LAST so far
        self.records_before = 0  # records applied before `pending` (for error messages)
        self.last_ts_recv = np.iinfo(np.int64).min

    def define(self, ticks: Mapping[int, int]) -> None:
        """The instruments' ticks as now defined: a stream may define an instrument after it
        started (an option listed during the session); an instrument's tick never changes."""
        changed = sorted(i for i, tick in self.ticks.items() if ticks.get(i, tick) != tick)
        if changed:
            raise EngineError(f"instrument(s) {instrument_list(changed)} changed their tick size")
        self.ticks = TickSizes({**self.ticks, **ticks})

    @property
    def closed_until_ns(self) -> int:
        """Every window ending at or before this has been emitted."""
        return int(self.state.scalars[k.S_NEXT_WINDOW_END]) - k.WINDOW_NS

    def push(self, batch: MboColumns) -> Iterator[WindowChunk]:
        if len(batch) and batch.ts_recv[0] < self.last_ts_recv:
            raise EngineError(
                f"record {self.records_before + self._pending_count()}: ts_recv goes "
                f"backwards ({batch.ts_recv[0]} after {self.last_ts_recv})"
            )
        columns = batch if self.pending is None else MboColumns.concat(self.pending, batch)
        if not len(columns):
            return
        self.last_ts_recv = int(columns.ts_recv[-1])
        complete = np.flatnonzero(columns.flags & k.F_LAST)
        cut = int(complete[-1]) + 1 if complete.size else 0
        self.pending = columns.slice(cut, len(columns)) if cut < len(columns) else None
        if cut:
            applied = columns.slice(0, cut)
            # windows up to the last event's completion (they close before it applies)
            yield from self._run(applied, min(int(applied.ts_recv[-1]), self.window.range_end_ns))

    def close_until(self, moment_ns: int) -> Iterator[WindowChunk]:
        """Close the windows that end at or before `moment_ns`, every record received before
        it having been pushed: a record received later counts in the window of its own
        completion, never in a closed one. Records waiting for the rest of their event do
        not hold the windows back: their event completes with a record not received yet, at
        or after `moment_ns`, and counts in the window it completes in."""
        moment_ns = min(moment_ns, self.window.range_end_ns)
        if moment_ns < int(self.state.scalars[k.S_NEXT_WINDOW_END]):
            return  # no window ends by then (a paced feed's clock ticks every 5 ms)
        if self.pending is not None:
            # an instrument's windows start at its first record, applied or not (as when
            # every record comes at once): its first may be waiting
            try:
                self.state.admit(self.pending, self.ticks, self.margin_ticks)
            except EngineError as error:
                raise EngineError(_renumbered(str(error), self.records_before)) from error
        yield from self._run(MboColumns.empty(), moment_ns)

    def lose_records(self, after_ns: int) -> Iterator[WindowChunk]:
        """The stream lost records after `after_ns` (a dropped connection): an event still
        waiting for its rest is dropped, and every instrument's book is cleared without a
        snapshot, the kernel's rule for a book no record can be trusted to restate: empty and
        invalid until the next snapshot completes. The clears are restatements, not flow."""
        self.pending = None
        # an instrument first seen from here on is not known to have been empty at a snapshot
        self.state.scalars[k.S_RESTATED] = 0
        ids = self.state.instrument_ids
        n = len(ids)
        if not n:
            return
        clears = MboColumns(
            ts_recv=np.full(n, max(after_ns, self.last_ts_recv), np.int64),
            instrument_id=ids.astype(np.int64),
            action=np.full(n, k.ACTION_CLEAR, np.uint8),
            side=np.full(n, k.ACTION_NONE, np.uint8),  # side N: the same code as action N
            price=np.full(n, UNDEF_PRICE, np.int64),
            size=np.zeros(n, np.int64),
            order_id=np.zeros(n, np.int64),
            flags=np.full(n, k.F_LAST, np.uint8),
        )
        yield from self.push(clears)

    def finish(self) -> Iterator[WindowChunk]:
        """The end of the stream: the trailing records apply as one event, and every window
        up to the range end closes."""
        rest = self.pending if self.pending is not None else MboColumns.empty()
        self.pending = None
        yield from self._run(rest, self.window.range_end_ns)

    def _pending_count(self) -> int:
        return 0 if self.pending is None else len(self.pending)

    def _run(self, columns: MboColumns, close_until_ns: int) -> Iterator[WindowChunk]:
        try:
            dense = self.state.admit(columns, self.ticks, self.margin_ticks)
        except EngineError as error:
            raise EngineError(_renumbered(str(error), self.records_before)) from error
        need_book = len(self.state.instrument_ids)
        need_depth = len(self.state.instrument_ids) * (4 * self.window.depth_ticks + 2)
        if self.book_rows.shape[0] < need_book:
            self.book_rows = np.zeros(need_book, dtype=self.window.book_row)
        if self.state.with_flows and self.depth_rows.shape[0] < need_depth:
            self.depth_rows = np.zeros(need_depth, dtype=k.DEPTH_ROW)
        self.config[k.C_RANGE_END] = close_until_ns
        self.state.scalars[k.S_CURSOR] = 0
        try:
            while True:
                status = _run(
                    columns, dense, self.state, self.config, self.pre_open, self.book_rows,
                    self.depth_rows, self.events,
                )  # fmt: skip
                n_book = int(self.state.scalars[k.S_BOOK_ROWS])
                n_depth = int(self.state.scalars[k.S_DEPTH_ROWS])
                if n_book or n_depth:
                    yield WindowChunk(
                        self._handed_over("book_rows", n_book),
                        self._handed_over("depth_rows", n_depth),
                        self.state.instrument_ids,
                    )
                self.state.scalars[k.S_BOOK_ROWS] = 0
                self.state.scalars[k.S_DEPTH_ROWS] = 0
                if status == k.DONE:
                    break
        except EngineError as error:
            raise EngineError(_renumbered(str(error), self.records_before)) from error
        self.records_before += len(columns)

    def _handed_over(self, name: str, n: int) -> np.ndarray:
        """The first `n` rows of an output buffer, owned by the caller from now on. A mostly
        full buffer is handed over whole and replaced by a fresh one (calloc'd: its pages cost
        nothing until written); copying it would cost a second pass over a busy day's rows."""
        buffer = getattr(self, name)
        if 2 * n < buffer.shape[0]:
            return buffer[:n].copy()
        setattr(self, name, np.zeros(buffer.shape[0], dtype=buffer.dtype))
        return buffer[:n]


def _renumbered(message: str, records_before: int) -> str:
    """`record r` of a batch as the stream's record number."""
    if not records_before or not message.startswith("record "):
        return message
    number, rest = message[len("record ") :].split(":", 1)
    return f"record {int(number) + records_before}:{rest}"


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
    """A day to model starts with its snapshot: an empty day, or one whose records
    never restate the book, would give a book that is never valid."""
    try:
        require_snapshot_seen(len(columns), has_snapshot(columns))
    except EngineError as error:
        raise EngineError(f"{label}: {error}") from None


def has_snapshot(columns: MboColumns) -> bool:
    return bool((columns.flags & k.F_SNAPSHOT).any())


def require_snapshot_seen(records: int, snapshot: bool) -> None:
    """require_snapshot for a day read in batches: its records counted, whether any of them
    was part of a snapshot (the caller names the day)."""
    if records == 0:
        raise EngineError("no records (an empty day)")
    if not snapshot:
        raise EngineError(
            "no snapshot (no record with F_SNAPSHOT): the book is never known; land "
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
    config[k.C_LAST_WINDOW_END] = FAR_FUTURE  # no window: every record applies
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
    config[k.C_LAST_WINDOW_END] = FAR_FUTURE  # no window: every record applies
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
