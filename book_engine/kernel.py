"""The Numba replay kernel: MBO records in file order to L3 books and 1-second surfaces.

Records are applied in groups that end with an F_LAST record (or the file's last record). A
window boundary is emitted before the first group that completes at or after it, so a
window's book is the book after the last F_LAST record with ts_recv < window end, and a
group's flow belongs to the window in which it completes (records of one event share a
ts_recv in practice). Book semantics follow Databento and CME:

- A adds; C removes the order's remaining size; M changes price and/or size (a price change
  or size increase resets the order's time at price, a size decrease keeps it); an M on an
  unknown order is an add; a C on an unknown order changes nothing.
- T and F never change the book. An F on a resting order marks its pending fill; the C or M
  that follows is a fill (quantity the book loses), not a pull. F on unknown ids (hidden
  iceberg quantity) changes nothing.
- R clears the instrument's book. A record with F_SNAPSHOT starts (or continues) the
  instrument's snapshot; the snapshot phase ends at a snapshot record with F_LAST, or at the
  first record without F_SNAPSHOT (files before 2024), and then every instrument it restated is
  complete at once: in a parent-symbol file F_LAST may stand only on the whole snapshot's last
  record. Snapshot records and clears restate the book: they are not flow. A level untouched
  in the window starts from its restated depth; a level whose flow the window already counted
  is re-based (the start becomes the restated depth and that earlier flow is dropped, as the
  book it changed was replaced), so depth_start >= 0 and
  depth_end = depth_start + add + reprice_in - pull - fill - reprice_out holds exactly.
- A fill is the quantity an F reported: what a C or M then takes beyond it is a pull.
- A book is valid once its snapshot completed; a clear without F_SNAPSHOT invalidates it until
  the next snapshot completes; a crossed book is invalid outside the pre-open intervals. A
  snapshot restates every book of the stream, so an instrument whose first record comes after
  a completed snapshot (and no loss since) had an empty book then, listed since or without
  orders: it is valid from that record.
- An instrument's windows are emitted from its first record on (an option listed during the
  session has no row before it).

All state is in arrays owned by the caller (`EngineState`), so the kernel can stop when an
output buffer is full or the order table must grow, and resume where it stopped.
"""

from __future__ import annotations

import numba as nb
import numpy as np

UNDEF_PRICE = np.int64(2**63 - 1)
F_LAST, F_SNAPSHOT, F_MAYBE_BAD_BOOK = 128, 32, 4
# MBO actions and sides, as the records' ASCII codes
ACTION_ADD, ACTION_CANCEL, ACTION_MODIFY = ord("A"), ord("C"), ord("M")
ACTION_CLEAR, ACTION_TRADE, ACTION_FILL, ACTION_NONE = ord("R"), ord("T"), ord("F"), ord("N")
SIDE_CODE_BID, SIDE_CODE_ASK = ord("B"), ord("A")
PRICED_ACTIONS = (ACTION_ADD, ACTION_MODIFY, ACTION_CANCEL, ACTION_TRADE, ACTION_FILL)
BID, ASK = 0, 1
WINDOW_NS = 1_000_000_000

# scalars
(
    S_CURSOR,
    S_NEXT_WINDOW_END,
    S_N_FREE,
    S_HASH_COUNT,
    S_RING_HEAD,
    S_RING_TAIL,
    S_BOOK_ROWS,
    S_DEPTH_ROWS,
    S_EVENT_ROWS,
    S_RESTATED,  # 1: a snapshot restated every book and no record was lost since
    S_ERROR_RECORD,
    S_UNKNOWN_CANCELS,
    S_UNKNOWN_MODIFIES,
    S_UNKNOWN_FILLS,
    S_DUPLICATE_ADDS,
    S_GROUPS,
    S_IN_SNAPSHOT,  # instruments restated by a snapshot that has not ended yet
) = range(17)
N_SCALARS = 17

# per-instrument fields
(
    I_TICK,
    I_OFFSET,
    I_PRICE_MIN,
    I_LEVELS,
    I_STATE,
    I_BEST_BID,
    I_BEST_ASK,
    I_LAST_TRADE,
    I_SPOT,
    I_ORDERS,
    I_INVALID_WINDOW,
    I_PREV_VALID,
    I_TOUCHED,
    I_SPOT_DIRTY,
    I_SIDE_ORDERS,  # bid orders; I_SIDE_ORDERS + 1: ask orders
) = range(15)
I_APPLIED = 16  # 1 once a record of the instrument was applied
I_FIRST_RECV = 17  # ts_recv of its first record: its windows are emitted from that one's on
# the best levels' depth and orders as last read for a row, valid while I_BEST_READ is 1
# (any record that may move the book sets it to 0): a second's row of an option without
# records in it reads them here, not from its ladder (a cache miss per side)
I_BEST_READ, I_BID_DEPTH, I_BID_ORDERS, I_ASK_DEPTH, I_ASK_ORDERS = range(18, 23)
# the tick as 2**shift * odd, with the odd part's inverse modulo 2**64 (its bits as an int64):
# a price's level without a division (_level_of)
I_TICK_SHIFT, I_TICK_INVERSE = 23, 24
N_INSTRUMENT_FIELDS = 25
WAITING, IN_SNAPSHOT, VALID = 0, 1, 2

# per-level fields, array shape (2 sides, levels, 4)
L_DEPTH, L_COUNT, L_STAMP, L_DEPTH_BEFORE = range(4)
# flow fields, array shape (2 sides, levels, 9): the seven flows, then young quantity and its
# stamp
(
    F_ADD,
    F_PULL,
    F_PULL_REST,
    F_FILL,
    F_REPRICE_IN,
    F_OUT_AWAY,
    F_OUT_TOWARD,
    F_YOUNG,
    F_YOUNG_STAMP,
) = range(9)

# per-order fields, array shape (orders, 8)
# (O_INSTRUMENT is -1 for a free slot; O_YOUNG_WINDOW: the window whose young quantity already
# counts the order, so an order whose queue clock reset twice at one moment counts once)
(
    O_INSTRUMENT,
    O_SIDE,
    O_LEVEL,
    O_SIZE,
    O_ARRIVAL,
    O_FILL_PENDING,
    O_ORDER_ID,
    O_YOUNG_WINDOW,
) = range(8)

# the order table (a hash table, linear probing): (slots, 2) int64, a slot's order_id then its
# instrument << 32 | its row in `orders` (-1: a free slot); 16 bytes, so four slots a cache line.
# It keeps at least this many slots per live order: its linear probes are the
# replay's most frequent cache misses, and a quarter-full table probes fewer slots than a
# half-full one (the realistic day's front contract: 62 -> 57 ns a message)
TABLE_SLOTS_PER_ORDER = 4

# statuses
DONE, FLUSH, GROW, STOPPED = 0, 1, 2, 3
ERR_UNDEF_PRICE, ERR_BAD_SIDE = -3, -4

BOOK_ROW = np.dtype(
    [
        ("window_start", "i8"),
        ("instrument", "i8"),
        ("bid_price", "i8"),
        ("bid_size", "i8"),
        ("bid_count", "i8"),
        ("ask_price", "i8"),
        ("ask_size", "i8"),
        ("ask_count", "i8"),
        ("last_trade_price", "i8"),
        ("spot_price", "i8"),
        ("book_valid", "u1"),
    ]
)
# a book row's top of book only (options: what their pricing reads); the kernel writes
# whichever of the two the caller's buffer holds (_book_detail), a busy day's 17 million
# option-seconds 33 bytes each instead of 81
QUOTE_ROW = np.dtype(
    [
        ("window_start", "i8"),
        ("instrument", "i8"),
        ("bid_price", "i8"),
        ("ask_price", "i8"),
        ("book_valid", "u1"),
    ]
)
DEPTH_ROW = np.dtype(
    [
        ("window_start", "i8"),
        ("instrument", "i8"),
        ("side", "u1"),
        ("price", "i8"),
        ("rel_ticks", "i8"),
        ("depth_qty_start", "i8"),
        ("depth_qty_end", "i8"),
        ("depth_qty_rest", "i8"),
        ("add_qty", "i8"),
        ("pull_qty", "i8"),
        ("pull_qty_rest", "i8"),
        ("fill_qty", "i8"),
        ("reprice_in_qty", "i8"),
        ("reprice_out_away_qty", "i8"),
        ("reprice_out_toward_qty", "i8"),
        ("window_valid", "u1"),
    ]
)
EVENT_ROW = np.dtype(
    [
        ("ts_recv", "i8"),
        ("instrument", "i8"),
        ("bid_price", "i8"),
        ("bid_size", "i8"),
        ("ask_price", "i8"),
        ("ask_size", "i8"),
        ("book_valid", "u1"),
    ]
)
# config vector
(
    C_RANGE_END,
    C_BOOK_FROM,
    C_BOOK_TO,
    C_DEPTH_FROM,
    C_DEPTH_TO,
    C_DEPTH_TICKS,
    C_REST_NS,
    C_STOP_AT,
    C_EMIT_EVENTS,
    C_WITH_SPOT,
    C_LAST_WINDOW_END,
) = range(11)
N_CONFIG = 11


@nb.njit(cache=True, nogil=True)
def scan_batch(
    instrument_id, ts_recv, action, side, price, known_actions, known_sides, capacity,
    tick_ids, tick_sizes,
):  # fmt: skip
    """One pass over a batch of records (a day's 12-32 M: six NumPy and Numba passes over
    them took 0.5 s of a 1.3 s futures replay): each record's instrument numbered in order
    of first appearance, each instrument's first record and its lowest and highest price
    (UNDEF_PRICE and -UNDEF_PRICE without one), and the first record with an action or
    side outside `known_actions` / `known_sides` (256-entry masks) and the first whose
    ts_recv goes back (-1: none). Each instrument's tick is looked up in `tick_ids` (sorted)
    and `tick_sizes` (0: none), and the first priced record whose price is not a whole number
    of ticks from its instrument's first price is found (-1: none): where there is none,
    every price is on the grid of the lowest, and the batch needs no second pass to check.

    Returns (indexes, ids, first, count, low, high, ticks, bad_action, bad_side, backwards,
    off_grid); a count of -1 when there are more than `capacity` instruments (call again
    with more). Ids (>= 0) are found in an open-addressing table of fixed size: an options
    day looks one up for nearly every record, where a typed dict took 3-4 times as long."""
    n = instrument_id.shape[0]
    # int32: half the memory to fault in and read back (a busy day's front contract: 100 MB)
    dense = np.empty(n, np.int32)
    keys = np.full(2 * capacity, -1, np.int64)
    indexes = np.empty(2 * capacity, np.int64)
    ids = np.empty(capacity, np.int64)
    first = np.empty(capacity, np.int64)
    low = np.full(capacity, UNDEF_PRICE, np.int64)
    high = np.full(capacity, -UNDEF_PRICE, np.int64)
    ticks = np.zeros(capacity, np.int64)
    # each tick as 2**shift * odd: a whole number of ticks without a division (grid_multiple)
    shifts = np.zeros(capacity, np.int64)
    inverses = np.zeros(capacity, np.uint64)
    limits = np.zeros(capacity, np.uint64)
    count = 0
    last_id = -1
    last_index = -1
    bad_action = -1
    bad_side = -1
    backwards = -1
    off_grid = -1
    previous = ts_recv[0] if n else 0
    for r in range(n):
        a = action[r]
        if bad_action < 0 and not known_actions[a]:
            bad_action = r
        if bad_side < 0 and not known_sides[side[r]]:
            bad_side = r
        t = ts_recv[r]
        if backwards < 0 and t < previous:
            backwards = r
        previous = t
        value = np.int64(instrument_id[r])
        if value != last_id:
            slot = _id_slot(keys, value)
            if keys[slot] == value:
                last_index = indexes[slot]
            else:
                if count == capacity:
                    return (
                        dense, ids, first, -1, low, high, ticks, bad_action, bad_side,
                        backwards, off_grid,
                    )  # fmt: skip
                ids[count] = value
                first[count] = r
                at = np.searchsorted(tick_ids, value)
                if at < tick_ids.shape[0] and tick_ids[at] == value and tick_sizes[at] > 0:
                    ticks[count] = tick_sizes[at]
                    shifts[count], inverses[count], limits[count] = grid_divisor(tick_sizes[at])
                last_index = count
                count += 1
                keys[slot] = value
                indexes[slot] = last_index
            last_id = value
        dense[r] = last_index
        p = price[r]
        if p != UNDEF_PRICE and _is_priced(a):
            # while none is off, the lowest so far is a whole number of ticks from the first;
            # every price is checked (skipping a repeat of the last, a branch taken at random,
            # cost more than the check)
            if (
                off_grid < 0
                and low[last_index] != UNDEF_PRICE
                and ticks[last_index] > 0
                and not grid_multiple(
                    abs(p - low[last_index]),
                    shifts[last_index],
                    inverses[last_index],
                    limits[last_index],
                )
            ):
                off_grid = r
            low[last_index] = min(low[last_index], p)
            high[last_index] = max(high[last_index], p)
    return dense, ids, first, count, low, high, ticks, bad_action, bad_side, backwards, off_grid


@nb.njit(cache=True, nogil=True)
def grid_divisor(tick):
    """(shift, inverse, limit) for a tick > 0 that is 2**shift * odd: `inverse` is the odd
    part's inverse modulo 2**64 (Newton's iteration), `limit` (2**64 - 1) // odd."""
    if tick <= 0:
        raise ValueError("a tick must be positive")
    shift = 0
    odd = tick
    while odd % 2 == 0:
        odd //= 2
        shift += 1
    inverse = np.uint64(odd)  # right in its low 3 bits: odd * odd = 1 modulo 8
    for _ in range(5):  # each step doubles the bits that are right: 3 -> 96
        inverse *= np.uint64(2) - np.uint64(odd) * inverse
    return shift, inverse, np.uint64(0xFFFFFFFFFFFFFFFF) // np.uint64(odd)


@nb.njit(cache=True, nogil=True)
def grid_multiple(x, shift, inverse, limit):
    """Whether x >= 0 is a whole number of ticks (grid_divisor's): its low `shift` bits are 0
    and the rest times the inverse, modulo 2**64, is at most `limit` (Granlund and
    Montgomery): a multiplication instead of a division."""
    if x & ((np.int64(1) << shift) - 1):
        return False
    return np.uint64(x >> shift) * np.uint64(inverse) <= np.uint64(limit)


@nb.njit(cache=True, nogil=True)
def place_batch(dense, price, action, low, ticks, to_state, remap):
    """The first priced record whose price is off its instrument's tick grid from `low`
    (-1: none); before it, with `remap`, each record's batch index replaced by its
    instrument's index in the state (`to_state`)."""
    checked_price = UNDEF_PRICE
    checked = -1
    for r in range(dense.shape[0]):
        q = dense[r]
        p = price[r]
        # a book's records repeat a few thousand prices: most need no division
        if p != UNDEF_PRICE and (p != checked_price or q != checked) and _is_priced(action[r]):
            if (p - low[q]) % ticks[q] != 0:
                return r
            checked_price = p
            checked = q
        if remap:
            dense[r] = to_state[q]
    return -1


@nb.njit(cache=True, nogil=True)
def _is_priced(a):
    """An action whose price places it on the ladder."""
    return a in PRICED_ACTIONS


# The replay's helpers are compiled functions, not inlined in Numba's IR: LLVM inlines them
# all the same (`spymaster bench --only engine`: the same speed), and the replay compiles in
# 8.6 s instead of 13.4 s on a fresh clone's first build.
@nb.njit(cache=True)
def _hash(order_id, instrument, mask):
    x = np.uint64(order_id) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(instrument + 1) * np.uint64(
        0xC2B2AE3D27D4EB4F
    )
    x ^= x >> np.uint64(31)
    return np.int64(x & np.uint64(mask))


@nb.njit(cache=True)
def _find(table, order_id, instrument):
    """Position of (instrument, order_id) in the hash table, or -1 - (free position)."""
    mask = table.shape[0] - 1
    i = _hash(order_id, instrument, mask)
    while table[i, 1] >= 0:
        if table[i, 1] >> 32 == instrument and table[i, 0] == order_id:
            return i
        i = (i + 1) & mask
    return -1 - i


@nb.njit(cache=True)
def _slot_order(table, position):
    """The order (its row in `orders`) the table's slot holds."""
    return table[position, 1] & 0xFFFFFFFF


@nb.njit(cache=True)
def _erase(table, position):
    """Backward-shift deletion from the linear-probing table."""
    mask = table.shape[0] - 1
    i = position
    j = position
    while True:
        j = (j + 1) & mask
        if table[j, 1] < 0:
            break
        home = _hash(table[j, 0], table[j, 1] >> 32, mask)
        if (j > i and (home <= i or home > j)) or (j < i and home <= i and home > j):
            table[i, 0] = table[j, 0]
            table[i, 1] = table[j, 1]
            i = j
    table[i, 1] = -1


@nb.njit(cache=True)
def rehash(table, new_size):
    """A larger hash table holding the same live orders."""
    fresh = np.full((new_size, 2), -1, np.int64)
    mask = new_size - 1
    for position in range(table.shape[0]):
        if table[position, 1] >= 0:
            i = _hash(table[position, 0], table[position, 1] >> 32, mask)
            while fresh[i, 1] >= 0:
                i = (i + 1) & mask
            fresh[i, 0] = table[position, 0]
            fresh[i, 1] = table[position, 1]
    return fresh


@nb.njit(cache=True)
def _touch(levels, flows, side, level, window, with_flows):
    """First change of a level in this window: remember its depth and clear its flows."""
    if levels[side, level, L_STAMP] != window:
        levels[side, level, L_STAMP] = window
        levels[side, level, L_DEPTH_BEFORE] = levels[side, level, L_DEPTH]
        if with_flows:
            for f in range(7):
                flows[side, level, f] = 0


@nb.njit(cache=True)
def _restate(levels, flows, side, level, delta, window, with_flows):
    """A snapshot or clear changes depth without flow. A level already changed in this window
    is re-based: the flow before the restatement changed a book the exchange replaced, so the
    window starts from the restated depth with the flow after it (never a negative start)."""
    levels[side, level, L_DEPTH] += delta
    if levels[side, level, L_STAMP] == window:
        levels[side, level, L_DEPTH_BEFORE] = levels[side, level, L_DEPTH]
        if with_flows:
            for f in range(7):
                flows[side, level, f] = 0


@nb.njit(cache=True)
def _count(instruments, levels, q, side, level, delta):
    levels[side, level, L_COUNT] += delta
    instruments[q, I_SIDE_ORDERS + side] += delta


@nb.njit(cache=True)
def _after_increase(instruments, q, side, level):
    if side == BID:
        if instruments[q, I_BEST_BID] < 0 or level > instruments[q, I_BEST_BID]:
            instruments[q, I_BEST_BID] = level
    elif instruments[q, I_BEST_ASK] < 0 or level < instruments[q, I_BEST_ASK]:
        instruments[q, I_BEST_ASK] = level


@nb.njit(cache=True)
def _after_decrease(instruments, levels, q, side, level):
    # thin books (options) often empty a side: no ladder scan then
    if instruments[q, I_SIDE_ORDERS + side] == 0:
        instruments[q, I_BEST_BID + side] = -1
        return
    if side == BID:
        if level == instruments[q, I_BEST_BID] and levels[BID, level, L_DEPTH] <= 0:
            first = instruments[q, I_OFFSET]
            best = -1
            for candidate in range(level - 1, first - 1, -1):
                if levels[BID, candidate, L_DEPTH] > 0:
                    best = candidate
                    break
            instruments[q, I_BEST_BID] = best
    elif level == instruments[q, I_BEST_ASK] and levels[ASK, level, L_DEPTH] <= 0:
        last = instruments[q, I_OFFSET] + instruments[q, I_LEVELS]
        best = -1
        for candidate in range(level + 1, last):
            if levels[ASK, candidate, L_DEPTH] > 0:
                best = candidate
                break
        instruments[q, I_BEST_ASK] = best


@nb.njit(cache=True)
def _level_of(instruments, q, price):
    """The ladder level of a price on the instrument's grid (every priced record's is checked
    before the replay): an exact division, as a shift and a multiplication by the inverse of
    the tick's odd part (Granlund and Montgomery)."""
    ticks = np.uint64((price - instruments[q, I_PRICE_MIN]) >> instruments[q, I_TICK_SHIFT])
    return instruments[q, I_OFFSET] + np.int64(ticks * np.uint64(instruments[q, I_TICK_INVERSE]))


@nb.njit(cache=True)
def _spot(instruments, levels, q):
    """Spot: the last trade price if it still has resting depth; else the nearer of best bid
    and ask to it; else the bid, else the ask (a ladder level, or -1)."""
    bid = instruments[q, I_BEST_BID]
    ask = instruments[q, I_BEST_ASK]
    last = instruments[q, I_LAST_TRADE]
    if last != UNDEF_PRICE:
        level = _level_of(instruments, q, last)
        if levels[BID, level, L_DEPTH] > 0 or levels[ASK, level, L_DEPTH] > 0:
            return level
        if bid >= 0 and ask >= 0:
            return bid if level - bid <= ask - level else ask
    if bid >= 0:
        return bid
    return ask


@nb.njit(cache=True)
def _price_of(instruments, q, level):
    return instruments[q, I_PRICE_MIN] + (level - instruments[q, I_OFFSET]) * instruments[q, I_TICK]


def _book_detail(book_rows, n, instruments, levels, q, spot):
    """A BOOK_ROW's fields beyond the quote (QUOTE_ROW: none, and no read of the best levels'
    depth: a cache miss per option and second)."""
    raise NotImplementedError("compiled only (see its overload)")


@nb.extending.overload(_book_detail)
def _book_detail_fields(book_rows, n, instruments, levels, q, spot):
    if "bid_size" not in book_rows.dtype.fields:
        return lambda book_rows, n, instruments, levels, q, spot: None

    def fields(book_rows, n, instruments, levels, q, spot):
        if instruments[q, I_BEST_READ] == 0:
            _read_best(instruments, levels, q)
        book_rows[n]["bid_size"] = instruments[q, I_BID_DEPTH]
        book_rows[n]["bid_count"] = instruments[q, I_BID_ORDERS]
        book_rows[n]["ask_size"] = instruments[q, I_ASK_DEPTH]
        book_rows[n]["ask_count"] = instruments[q, I_ASK_ORDERS]
        book_rows[n]["last_trade_price"] = instruments[q, I_LAST_TRADE]
        book_rows[n]["spot_price"] = _price_of(instruments, q, spot) if spot >= 0 else UNDEF_PRICE

    return fields


@nb.njit(cache=True)
def _book_valid(instruments, q, moment, pre_open):
    if instruments[q, I_STATE] != VALID:
        return False
    bid = instruments[q, I_BEST_BID]
    ask = instruments[q, I_BEST_ASK]
    if bid >= 0 and ask >= 0 and bid >= ask:
        for k in range(pre_open.shape[0]):
            if pre_open[k, 0] <= moment < pre_open[k, 1]:
                return True
        return False
    return True


@nb.njit(cache=True)
def _clear(instruments, levels, flows, orders, table, free, n_free, q, window, with_flows):
    """Empty an instrument's book (R, or the start of its snapshot): a restatement.
    Returns the number of orders freed (pushed on `free` from position `n_free`)."""
    freed = 0
    if instruments[q, I_ORDERS] > 0:
        first = instruments[q, I_OFFSET]
        for level in range(first, first + instruments[q, I_LEVELS]):
            for side in range(2):
                if levels[side, level, L_DEPTH] != 0:
                    _restate(
                        levels,
                        flows,
                        side,
                        level,
                        -levels[side, level, L_DEPTH],
                        window,
                        with_flows,
                    )
                levels[side, level, L_COUNT] = 0
        for order in range(orders.shape[0]):
            if orders[order, O_INSTRUMENT] == q:
                _erase(table, _find(table, orders[order, O_ORDER_ID], q))
                orders[order, O_INSTRUMENT] = -1
                free[n_free + freed] = order
                freed += 1
    instruments[q, I_ORDERS] = 0
    instruments[q, I_SIDE_ORDERS] = 0
    instruments[q, I_SIDE_ORDERS + 1] = 0
    instruments[q, I_BEST_BID] = -1
    instruments[q, I_BEST_ASK] = -1
    instruments[q, I_SPOT_DIRTY] = 1
    instruments[q, I_BEST_READ] = 0
    return freed


@nb.njit(cache=True)
def _end_snapshot(instruments, in_snapshot):
    """The snapshot phase ended: every instrument it restated is complete. Returns 0, the
    instruments still in a snapshot."""
    if in_snapshot > 0:
        for q in range(instruments.shape[0]):
            if instruments[q, I_STATE] == IN_SNAPSHOT:
                instruments[q, I_STATE] = VALID
    return 0


@nb.njit(cache=True)
def _read_best(instruments, levels, q):
    """The best levels' depth and orders into the instrument's row (0 for an empty side)."""
    bid = instruments[q, I_BEST_BID]
    ask = instruments[q, I_BEST_ASK]
    instruments[q, I_BID_DEPTH] = levels[BID, bid, L_DEPTH] if bid >= 0 else 0
    instruments[q, I_BID_ORDERS] = levels[BID, bid, L_COUNT] if bid >= 0 else 0
    instruments[q, I_ASK_DEPTH] = levels[ASK, ask, L_DEPTH] if ask >= 0 else 0
    instruments[q, I_ASK_ORDERS] = levels[ASK, ask, L_COUNT] if ask >= 0 else 0
    instruments[q, I_BEST_READ] = 1


@nb.njit(cache=True)
def _current_spot(instruments, levels, q):
    if instruments[q, I_SPOT_DIRTY]:
        instruments[q, I_SPOT] = _spot(instruments, levels, q)
        instruments[q, I_SPOT_DIRTY] = 0
    return instruments[q, I_SPOT]


@nb.njit(cache=True)
def _push_young(ring, ring_tail, order, order_id, t):
    """The order's time at its price (re)started at t: young until `rest_ns` later. The one
    place an order enters the young-order ring."""
    entry = ring_tail & (ring.shape[0] - 1)
    ring[entry, 0] = order
    ring[entry, 1] = order_id
    ring[entry, 2] = t
    return ring_tail + 1


# nogil: dbt's threads run two engine models at once
@nb.njit(cache=True, nogil=True)
def replay(
    ts_recv,
    instrument,
    action,
    side,
    price,
    size,
    order_id,
    flags,
    config,
    pre_open,
    scalars,
    instruments,
    levels,
    flows,
    orders,
    table,
    free,
    ring,
    book_rows,
    depth_rows,
    event_rows,
):
    """Run from `scalars[S_CURSOR]` until done, an output buffer fills, the order table needs
    to grow, or `config[C_STOP_AT]` is reached. Returns a status (negative: bad input at
    record `scalars[S_ERROR_RECORD]`).

    Hot counters live in local variables (Numba cannot keep array elements in registers:
    every int64 array may alias every other) and are stored back once, on the way out."""
    n = ts_recv.shape[0]
    n_instruments = instruments.shape[0]
    with_flows = flows.shape[1] > 1
    depth_ticks = config[C_DEPTH_TICKS]
    rest_ns = config[C_REST_NS]
    range_end = config[C_RANGE_END]
    stop_at = config[C_STOP_AT]
    emit_events = config[C_EMIT_EVENTS] != 0
    with_spot = config[C_WITH_SPOT] != 0
    last_window_end = config[C_LAST_WINDOW_END]
    ring_mask = ring.shape[0] - 1
    table_size = table.shape[0]
    touched = np.empty(n_instruments, np.int64)

    cursor = scalars[S_CURSOR]
    next_window_end = scalars[S_NEXT_WINDOW_END]
    n_free = scalars[S_N_FREE]
    hash_count = scalars[S_HASH_COUNT]
    ring_head = scalars[S_RING_HEAD]
    ring_tail = scalars[S_RING_TAIL]
    n_book = scalars[S_BOOK_ROWS]
    n_depth = scalars[S_DEPTH_ROWS]
    n_events = scalars[S_EVENT_ROWS]
    groups = scalars[S_GROUPS]
    unknown_cancels = scalars[S_UNKNOWN_CANCELS]
    unknown_modifies = scalars[S_UNKNOWN_MODIFIES]
    unknown_fills = scalars[S_UNKNOWN_FILLS]
    duplicate_adds = scalars[S_DUPLICATE_ADDS]
    in_snapshot = scalars[S_IN_SNAPSHOT]
    restated = scalars[S_RESTATED]
    error_record = -1
    status = DONE

    while True:
        if cursor < n:
            end = cursor
            while end < n - 1 and not (flags[end] & F_LAST):
                end += 1
            completed = ts_recv[end]
            if completed >= stop_at:
                status = STOPPED
                break
        else:
            end = n - 1
            completed = range_end

        # ---- windows that end before this group completes
        flush = False
        while next_window_end <= completed and next_window_end <= range_end:
            window_start = next_window_end - WINDOW_NS
            window = window_start // WINDOW_NS
            emit_book = config[C_BOOK_FROM] <= window_start < config[C_BOOK_TO]
            emit_depth = with_flows and config[C_DEPTH_FROM] <= window_start < config[C_DEPTH_TO]
            if emit_book and n_book + n_instruments > book_rows.shape[0]:
                flush = True
                break
            if emit_depth and n_depth + n_instruments * (4 * depth_ticks + 2) > depth_rows.shape[0]:
                flush = True
                break
            # young orders: still within rest_ns of their arrival at this boundary
            while (
                ring_head < ring_tail
                and ring[ring_head & ring_mask, 2] <= next_window_end - rest_ns
            ):
                ring_head += 1
            if emit_depth:
                for position in range(ring_head, ring_tail):
                    entry = position & ring_mask
                    order = ring[entry, 0]
                    if (
                        orders[order, O_INSTRUMENT] >= 0
                        and orders[order, O_ORDER_ID] == ring[entry, 1]
                        and orders[order, O_ARRIVAL] == ring[entry, 2]
                        and orders[order, O_YOUNG_WINDOW] != window
                    ):
                        orders[order, O_YOUNG_WINDOW] = window
                        s = orders[order, O_SIDE]
                        level = orders[order, O_LEVEL]
                        if flows[s, level, F_YOUNG_STAMP] != window:
                            flows[s, level, F_YOUNG_STAMP] = window
                            flows[s, level, F_YOUNG] = 0
                        flows[s, level, F_YOUNG] += orders[order, O_SIZE]
            # validity feeds the next window's window_valid: needed only around emitted windows
            with_state = (
                emit_book
                or emit_depth
                or (with_flows and config[C_DEPTH_FROM] <= next_window_end < config[C_DEPTH_TO])
            )
            for q in range(n_instruments if with_state else 0):
                if instruments[q, I_FIRST_RECV] >= next_window_end:
                    continue  # no record yet: no window
                valid = _book_valid(instruments, q, next_window_end - 1, pre_open)
                # the last trade's level is a cache miss per instrument and second
                spot = _current_spot(instruments, levels, q) if with_spot else -1
                if emit_book:
                    bid = instruments[q, I_BEST_BID]
                    ask = instruments[q, I_BEST_ASK]
                    book_rows[n_book]["window_start"] = window_start
                    book_rows[n_book]["instrument"] = q
                    book_rows[n_book]["bid_price"] = (
                        _price_of(instruments, q, bid) if bid >= 0 else UNDEF_PRICE
                    )
                    book_rows[n_book]["ask_price"] = (
                        _price_of(instruments, q, ask) if ask >= 0 else UNDEF_PRICE
                    )
                    book_rows[n_book]["book_valid"] = valid
                    _book_detail(book_rows, n_book, instruments, levels, q, spot)
                    n_book += 1
                if emit_depth and spot >= 0:
                    window_valid = (
                        valid
                        and instruments[q, I_PREV_VALID] == 1
                        and instruments[q, I_INVALID_WINDOW] != window
                    )
                    first = instruments[q, I_OFFSET]
                    last = first + instruments[q, I_LEVELS] - 1
                    for level in range(
                        max(first, spot - depth_ticks), min(last, spot + depth_ticks) + 1
                    ):
                        for s in range(2):
                            depth_end = levels[s, level, L_DEPTH]
                            changed = levels[s, level, L_STAMP] == window
                            depth_start = levels[s, level, L_DEPTH_BEFORE] if changed else depth_end
                            if depth_end == 0 and depth_start == 0 and not changed:
                                continue
                            young = (
                                flows[s, level, F_YOUNG]
                                if flows[s, level, F_YOUNG_STAMP] == window
                                else 0
                            )
                            row = depth_rows[n_depth]
                            row["window_start"] = window_start
                            row["instrument"] = q
                            row["side"] = s
                            row["price"] = _price_of(instruments, q, level)
                            row["rel_ticks"] = level - spot
                            row["depth_qty_start"] = depth_start
                            row["depth_qty_end"] = depth_end
                            row["depth_qty_rest"] = depth_end - young
                            row["add_qty"] = flows[s, level, F_ADD] if changed else 0
                            row["pull_qty"] = flows[s, level, F_PULL] if changed else 0
                            row["pull_qty_rest"] = flows[s, level, F_PULL_REST] if changed else 0
                            row["fill_qty"] = flows[s, level, F_FILL] if changed else 0
                            row["reprice_in_qty"] = flows[s, level, F_REPRICE_IN] if changed else 0
                            row["reprice_out_away_qty"] = (
                                flows[s, level, F_OUT_AWAY] if changed else 0
                            )
                            row["reprice_out_toward_qty"] = (
                                flows[s, level, F_OUT_TOWARD] if changed else 0
                            )
                            row["window_valid"] = window_valid
                            n_depth += 1
                instruments[q, I_PREV_VALID] = 1 if valid else 0
            next_window_end += WINDOW_NS
        if flush:
            status = FLUSH
            break
        if cursor >= n:
            status = DONE
            break
        if next_window_end > last_window_end:
            # every window has been emitted: the rest of the records change no row (an options
            # day's quarter after its surface window), they are only checked as when applied
            error_record, status = _first_refused(action, side, price, cursor, end)
            if status < 0:
                break
            cursor = end + 1
            continue

        # ---- room for this group's orders and output
        group_size = end - cursor + 1
        if n_free < group_size or TABLE_SLOTS_PER_ORDER * (hash_count + group_size) > table_size:
            status = GROW
            break
        if with_flows and ring_tail - ring_head + group_size > ring.shape[0]:
            status = GROW
            break
        if emit_events and n_events + n_instruments > event_rows.shape[0]:
            status = FLUSH
            break

        # ---- apply the group
        window = completed // WINDOW_NS
        groups += 1
        n_touched = 0
        for r in range(cursor, end + 1):
            t = ts_recv[r]
            q = instrument[r]
            if emit_events and instruments[q, I_TOUCHED] != groups:
                instruments[q, I_TOUCHED] = groups
                touched[n_touched] = q
                n_touched += 1
            a = action[r]
            f = flags[r]
            snapshot = (f & F_SNAPSHOT) != 0
            if a != ACTION_FILL and a != ACTION_NONE:  # F and N cannot move the book or spot
                instruments[q, I_SPOT_DIRTY] = 1
                instruments[q, I_BEST_READ] = 0
            if snapshot:
                if instruments[q, I_STATE] != IN_SNAPSHOT:
                    freed = _clear(
                        instruments,
                        levels,
                        flows,
                        orders,
                        table,
                        free,
                        n_free,
                        q,
                        window,
                        with_flows,
                    )
                    n_free += freed
                    hash_count -= freed
                    instruments[q, I_STATE] = IN_SNAPSHOT
                    instruments[q, I_INVALID_WINDOW] = window
                    in_snapshot += 1
                if f & F_LAST:
                    # the snapshot's last record (applied below as a restatement all the same)
                    in_snapshot = _end_snapshot(instruments, in_snapshot)
                    restated = 1
            elif in_snapshot > 0:
                in_snapshot = _end_snapshot(instruments, in_snapshot)
                restated = 1
            if instruments[q, I_APPLIED] == 0:
                # its first record: an instrument the snapshot did not restate had an empty
                # book then (listed since, or without orders), so it is valid from here
                instruments[q, I_APPLIED] = 1
                if restated == 1 and not snapshot:
                    instruments[q, I_STATE] = VALID
            if f & F_MAYBE_BAD_BOOK:
                instruments[q, I_INVALID_WINDOW] = window
            if a == ACTION_CLEAR:
                freed = _clear(
                    instruments, levels, flows, orders, table, free, n_free, q, window, with_flows
                )
                n_free += freed
                hash_count -= freed
                instruments[q, I_INVALID_WINDOW] = window
                if not snapshot:
                    instruments[q, I_STATE] = WAITING
                continue
            if a == ACTION_TRADE:
                if price[r] != UNDEF_PRICE:
                    instruments[q, I_LAST_TRADE] = price[r]
                continue
            if a == ACTION_FILL:
                position = _find(table, order_id[r], q)
                if position >= 0:
                    orders[_slot_order(table, position), O_FILL_PENDING] += size[r]
                else:
                    unknown_fills += 1
                continue
            if a != ACTION_ADD and a != ACTION_MODIFY and a != ACTION_CANCEL:  # N
                continue
            position = _find(table, order_id[r], q)
            if a == ACTION_CANCEL and position < 0:
                unknown_cancels += 1
                continue
            new_side = 0
            new_level = -1
            new_size = 0
            if a != ACTION_CANCEL:
                refused = _refused(price[r], side[r])
                if refused < 0:
                    error_record = r
                    status = refused
                    break
                new_side = BID if side[r] == SIDE_CODE_BID else ASK
                new_level = _level_of(instruments, q, price[r])
                new_size = size[r]
            if position < 0:
                # an A, or an M on an unknown order: a new order
                if a == ACTION_MODIFY:
                    unknown_modifies += 1
                if new_size <= 0:
                    continue
                n_free -= 1
                order = free[n_free]
                slot = -1 - position
                table[slot, 0] = order_id[r]
                table[slot, 1] = (q << 32) | order
                hash_count += 1
                orders[order, O_INSTRUMENT] = q
                orders[order, O_SIDE] = new_side
                orders[order, O_LEVEL] = new_level
                orders[order, O_SIZE] = new_size
                # snapshot orders have rested since before the file
                orders[order, O_ARRIVAL] = t - rest_ns if snapshot else t
                orders[order, O_FILL_PENDING] = 0
                orders[order, O_ORDER_ID] = order_id[r]
                orders[order, O_YOUNG_WINDOW] = -1
                instruments[q, I_ORDERS] += 1
                _count(instruments, levels, q, new_side, new_level, 1)
                _after_increase(instruments, q, new_side, new_level)
                if snapshot:
                    _restate(levels, flows, new_side, new_level, new_size, window, with_flows)
                    continue
                _touch(levels, flows, new_side, new_level, window, with_flows)
                levels[new_side, new_level, L_DEPTH] += new_size
                if with_flows:
                    flows[new_side, new_level, F_ADD] += new_size
                    ring_tail = _push_young(ring, ring_tail, order, order_id[r], t)
                continue
            order = _slot_order(table, position)
            old_side = orders[order, O_SIDE]
            old_level = orders[order, O_LEVEL]
            old_size = orders[order, O_SIZE]
            if a == ACTION_ADD:
                duplicate_adds += 1
            leaves = a == ACTION_CANCEL or new_size <= 0
            repriced = not leaves and (new_level != old_level or new_side != old_side)
            # the spot before this record: what a reprice moves away from or toward
            spot_before = -1
            if repriced and with_flows:
                spot_before = _current_spot(instruments, levels, q)
                instruments[q, I_SPOT_DIRTY] = 1  # this record is about to move the book
            if snapshot:
                # a snapshot restates the order: no flow
                _restate(levels, flows, old_side, old_level, -old_size, window, with_flows)
                _count(instruments, levels, q, old_side, old_level, -1)
                _after_decrease(instruments, levels, q, old_side, old_level)
                if not leaves:
                    _restate(levels, flows, new_side, new_level, new_size, window, with_flows)
                    _count(instruments, levels, q, new_side, new_level, 1)
                    _after_increase(instruments, q, new_side, new_level)
                    orders[order, O_SIDE] = new_side
                    orders[order, O_LEVEL] = new_level
                    orders[order, O_SIZE] = new_size
                    orders[order, O_ARRIVAL] = t - rest_ns
                    continue
            else:
                pending = orders[order, O_FILL_PENDING]
                orders[order, O_FILL_PENDING] = 0
                resting = t - orders[order, O_ARRIVAL] >= rest_ns
                _touch(levels, flows, old_side, old_level, window, with_flows)
                remaining = old_size
                if pending > 0:
                    filled = min(pending, old_size)
                    levels[old_side, old_level, L_DEPTH] -= filled
                    if with_flows:
                        flows[old_side, old_level, F_FILL] += filled
                    remaining = old_size - filled
                if leaves:
                    # what the fill did not take was cancelled
                    levels[old_side, old_level, L_DEPTH] -= remaining
                    if with_flows and remaining > 0:
                        flows[old_side, old_level, F_PULL] += remaining
                        if resting:
                            flows[old_side, old_level, F_PULL_REST] += remaining
                    _count(instruments, levels, q, old_side, old_level, -1)
                    _after_decrease(instruments, levels, q, old_side, old_level)
                elif new_level == old_level and new_side == old_side:
                    delta = new_size - remaining
                    levels[old_side, old_level, L_DEPTH] += delta
                    orders[order, O_SIZE] = new_size
                    if delta > 0:
                        # a size increase (an iceberg refill): new quantity, back of the queue
                        if with_flows:
                            flows[old_side, old_level, F_ADD] += delta
                        orders[order, O_ARRIVAL] = t
                        if with_flows:
                            ring_tail = _push_young(ring, ring_tail, order, order_id[r], t)
                        _after_increase(instruments, q, old_side, old_level)
                    else:
                        # a size decrease beyond the fill is a partial cancel
                        if delta < 0 and with_flows:
                            flows[old_side, old_level, F_PULL] -= delta
                            if resting:
                                flows[old_side, old_level, F_PULL_REST] -= delta
                        _after_decrease(instruments, levels, q, old_side, old_level)
                    continue
                else:
                    # a price change: into the new price, back of its queue, then out of here
                    # (in this order the best price follows a quote moved alone at the best:
                    # the other way, a thin book's ladder was searched for the next best)
                    _touch(levels, flows, new_side, new_level, window, with_flows)
                    levels[new_side, new_level, L_DEPTH] += new_size
                    _count(instruments, levels, q, new_side, new_level, 1)
                    if with_flows:
                        flows[new_side, new_level, F_REPRICE_IN] += new_size
                    _after_increase(instruments, q, new_side, new_level)
                    levels[old_side, old_level, L_DEPTH] -= remaining
                    _count(instruments, levels, q, old_side, old_level, -1)
                    if with_flows and remaining > 0:
                        if spot_before >= 0:
                            away = abs(new_level - spot_before) > abs(old_level - spot_before)
                        else:
                            away = (
                                new_level < old_level if old_side == BID else new_level > old_level
                            )
                        if away:
                            flows[old_side, old_level, F_OUT_AWAY] += remaining
                        else:
                            flows[old_side, old_level, F_OUT_TOWARD] += remaining
                    _after_decrease(instruments, levels, q, old_side, old_level)
                    orders[order, O_SIDE] = new_side
                    orders[order, O_LEVEL] = new_level
                    orders[order, O_SIZE] = new_size
                    orders[order, O_ARRIVAL] = t
                    if with_flows:
                        ring_tail = _push_young(ring, ring_tail, order, order_id[r], t)
                    continue
            # the order left the book
            _erase(table, position)
            orders[order, O_INSTRUMENT] = -1
            free[n_free] = order
            n_free += 1
            hash_count -= 1
            instruments[q, I_ORDERS] -= 1
        if status < 0:
            break
        if emit_events:
            for j in range(n_touched):
                q = touched[j]
                bid = instruments[q, I_BEST_BID]
                ask = instruments[q, I_BEST_ASK]
                if instruments[q, I_BEST_READ] == 0:
                    _read_best(instruments, levels, q)
                event = event_rows[n_events]
                event["ts_recv"] = completed
                event["instrument"] = q
                event["bid_price"] = _price_of(instruments, q, bid) if bid >= 0 else UNDEF_PRICE
                event["bid_size"] = instruments[q, I_BID_DEPTH]
                event["ask_price"] = _price_of(instruments, q, ask) if ask >= 0 else UNDEF_PRICE
                event["ask_size"] = instruments[q, I_ASK_DEPTH]
                event["book_valid"] = _book_valid(instruments, q, completed, pre_open)
                n_events += 1
        cursor = end + 1

    scalars[S_CURSOR] = cursor
    scalars[S_NEXT_WINDOW_END] = next_window_end
    scalars[S_N_FREE] = n_free
    scalars[S_HASH_COUNT] = hash_count
    scalars[S_RING_HEAD] = ring_head
    scalars[S_RING_TAIL] = ring_tail
    scalars[S_BOOK_ROWS] = n_book
    scalars[S_DEPTH_ROWS] = n_depth
    scalars[S_EVENT_ROWS] = n_events
    scalars[S_GROUPS] = groups
    scalars[S_UNKNOWN_CANCELS] = unknown_cancels
    scalars[S_UNKNOWN_MODIFIES] = unknown_modifies
    scalars[S_UNKNOWN_FILLS] = unknown_fills
    scalars[S_DUPLICATE_ADDS] = duplicate_adds
    scalars[S_IN_SNAPSHOT] = in_snapshot
    scalars[S_RESTATED] = restated
    scalars[S_ERROR_RECORD] = error_record
    return status


@nb.njit(cache=True, inline="always")
def _refused(price, side):
    """Why an add or modify cannot apply (ERR_UNDEF_PRICE, ERR_BAD_SIDE), or 0."""
    if price == UNDEF_PRICE:
        return ERR_UNDEF_PRICE
    if side != SIDE_CODE_BID and side != SIDE_CODE_ASK:
        return ERR_BAD_SIDE
    return 0


@nb.njit(cache=True)
def _first_refused(action, side, price, first, last):
    """The first add or modify of records first..last that cannot apply, and why (_refused);
    (-1, DONE) when there is none."""
    for r in range(first, last + 1):
        if action[r] == ACTION_ADD or action[r] == ACTION_MODIFY:
            refused = _refused(price[r], side[r])
            if refused < 0:
                return r, refused
    return -1, DONE


@nb.njit(cache=True, nogil=True)
def _id_slot(keys, value):
    """The slot holding `value`, or the empty slot where it goes (Fibonacci hashing; the
    table's size is a power of two)."""
    mask = keys.shape[0] - 1
    slot = np.int64((np.uint64(value) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)) & mask
    while keys[slot] != -1 and keys[slot] != value:
        slot = (slot + 1) & mask
    return slot


@nb.njit(cache=True, nogil=True)
def first_out_of_order(values, strictly):
    """Index of the first value below the one before it (or equal to it, when `strictly`),
    or -1: one pass, no temporary array (a day's 32 M records)."""
    for r in range(1, values.shape[0]):
        if values[r] < values[r - 1] or (strictly and values[r] == values[r - 1]):
            return r
    return -1
