"""Numba simulator of one instrument's order book, emitting Databento MBO records.

The best bid follows the session path second by second: an up-move sweeps the best ask queue
(T for the aggressor, F for every resting order hit, then the C that removes each, F_LAST on
the last) and a bid joins at the old ask, so the spread is one tick almost always; a
down-move mirrors it. Between moves, background events arrive in bursts (the path's activity
times the rate): adds on a hump-shaped depth profile (some cancelled within milliseconds, some
within seconds, icebergs among them), cancels, modifies (mostly repricing, some size
decreases) and trades that never empty the touch. A fully filled iceberg refills with an M of
larger size (to the back of the queue); some trades also fill hidden quantity on order ids
never added (an F with no C or M after it). Planted actions (pulls, reprices away, stacked
orders) are applied during their windows.

State is flat arrays: per-order fields in one int64 matrix, per-price FIFO queues as linked
lists of order slots, a free list, a list of live orders for uniform sampling and a heap of
scheduled cancels; scalars in one small int64 vector.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from foundation.dbn_facts import F_BAD_TS_RECV, F_LAST, F_SNAPSHOT, UNDEF_PRICE
from synthetic_market.price_path import ASK, BID, PULL, STACK

A_ADD, A_CANCEL, A_MODIFY, A_CLEAR, A_TRADE, A_FILL = (ord(c) for c in "ACMRTF")
S_BID, S_ASK, S_NONE = ord("B"), ord("A"), ord("N")
LEVELS = 16_384  # price levels, centred on the session's opening price
PROFILE_TICKS = 25
MAX_ORDERS = 1 << 18
NANOS = 1_000_000_000
EVENT_BUFFER = 1 << 16

RECORD_DTYPE = np.dtype(
    [
        ("ts_event", "i8"),
        ("ts_recv", "i8"),
        ("order_id", "i8"),
        ("price", "i8"),
        ("size", "i8"),
        ("flags", "u1"),
        ("action", "u1"),
        ("side", "u1"),
    ]
)

# per-order fields (rows of the order matrix)
O_SIDE, O_LEVEL, O_SIZE, O_RESERVE, O_DISPLAY, O_ID, O_PREV, O_NEXT, O_ALIVE_POS = range(9)
# scalars of the state vector
N_ALIVE, N_FREE, BEST_BID, BEST_ASK, NEXT_ID, N_OUT, LAST_RECV, HEAP_SIZE, BASE = range(9)


@dataclass(frozen=True)
class BookParams:
    """Event mix and shapes; `events_per_second` is at activity 1.0 and scale 1.0."""

    events_per_second: float = 450.0
    p_add: float = 0.44
    p_cancel: float = 0.265
    p_modify: float = 0.19
    p_trade: float = 0.085
    p_flicker: float = 0.22
    flicker_seconds: float = 0.003
    p_short: float = 0.3
    short_seconds: float = 6.0
    target_orders: float = 700.0
    add_size_sigma: float = 1.05
    trade_size_sigma: float = 1.5
    p_iceberg: float = 0.01
    p_hidden_fill: float = 0.03
    latency_ns: float = 60_000.0
    profile_decay_ticks: float = 6.0
    p_reprice: float = 0.82
    p_sweep_trade: float = 1.0  # share of path moves made by a trade (else the touch is pulled)
    join_orders: float = 3.0  # mean extra orders joining a new touch right after a move

    def vector(self, scale: float) -> np.ndarray:
        values = [getattr(self, name) for name in self.__dataclass_fields__]
        values[0] *= scale
        return np.array(values, dtype=np.float64)


# The helpers called with constant sides and flags get one signature each (and `_emit` is
# inlined): Numba would otherwise compile a specialisation per combination of literal
# arguments, 22 of them, a third of a fresh clone's first simulation.
_I = nb.int64
_ROWS = nb.types.Array(nb.int64, 1, "C")
_TABLE = nb.types.Array(nb.int64, 2, "C")
_OUT = nb.types.Array(nb.from_dtype(RECORD_DTYPE), 1, "C", aligned=False)
_LINK_SIGNATURE = (_TABLE, _ROWS, _ROWS, _TABLE, _TABLE, _TABLE, _I, _I, _I, _I)
_NEW_ORDER_SIGNATURE = (_TABLE, _ROWS, _ROWS, _ROWS, _TABLE, _TABLE, _TABLE, _I, _I, _I)
_ADD_SIGNATURE = (_OUT, _TABLE, _ROWS, _ROWS, _ROWS, _TABLE, _TABLE, _TABLE, *(_I,) * 7)
_TRADE_SIGNATURE = (
    _OUT, _TABLE, _ROWS, _ROWS, _ROWS, _TABLE, _TABLE, _TABLE, _ROWS, *(_I,) * 6, nb.boolean, _I
)  # fmt: skip


@nb.njit(cache=True)
def _draw_size(sigma: float) -> int:
    return max(1, math.ceil(math.exp(np.random.normal(0.0, sigma)) - 0.5))


@nb.njit(cache=True, inline="always")
def _emit(out, state, ts_event, ts_recv, order_id, price, size, flags, action, side):
    n = state[N_OUT]
    out[n]["ts_event"] = ts_event
    out[n]["ts_recv"] = ts_recv
    out[n]["order_id"] = order_id
    out[n]["price"] = price
    out[n]["size"] = size
    out[n]["flags"] = flags
    out[n]["action"] = action
    out[n]["side"] = S_BID if side == BID else S_ASK if side == ASK else S_NONE
    state[N_OUT] = n + 1
    state[LAST_RECV] = max(state[LAST_RECV], ts_recv)


@nb.njit([_LINK_SIGNATURE], cache=True)
def _link(orders, state, alive, head, tail, depth, slot, side, level, size):
    """Append a slot to the back of the queue at (side, level)."""
    orders[O_SIDE, slot] = side
    orders[O_LEVEL, slot] = level
    orders[O_SIZE, slot] = size
    orders[O_PREV, slot] = tail[side, level]
    orders[O_NEXT, slot] = -1
    if tail[side, level] >= 0:
        orders[O_NEXT, tail[side, level]] = slot
    else:
        head[side, level] = slot
    tail[side, level] = slot
    depth[side, level] += size
    if orders[O_ALIVE_POS, slot] < 0:
        orders[O_ALIVE_POS, slot] = state[N_ALIVE]
        alive[state[N_ALIVE]] = slot
        state[N_ALIVE] += 1


@nb.njit(cache=True)
def _unlink(orders, head, tail, depth, slot):
    """Take a slot out of its queue (it stays a live order)."""
    side = orders[O_SIDE, slot]
    level = orders[O_LEVEL, slot]
    if orders[O_PREV, slot] >= 0:
        orders[O_NEXT, orders[O_PREV, slot]] = orders[O_NEXT, slot]
    else:
        head[side, level] = orders[O_NEXT, slot]
    if orders[O_NEXT, slot] >= 0:
        orders[O_PREV, orders[O_NEXT, slot]] = orders[O_PREV, slot]
    else:
        tail[side, level] = orders[O_PREV, slot]
    depth[side, level] -= orders[O_SIZE, slot]


@nb.njit(cache=True)
def _release(orders, state, alive, free, slot):
    """Forget an order that left the book."""
    position = orders[O_ALIVE_POS, slot]
    last = alive[state[N_ALIVE] - 1]
    alive[position] = last
    orders[O_ALIVE_POS, last] = position
    orders[O_ALIVE_POS, slot] = -1
    state[N_ALIVE] -= 1
    free[state[N_FREE]] = slot
    state[N_FREE] += 1


@nb.njit([_NEW_ORDER_SIGNATURE], cache=True)
def _new_order(orders, state, alive, free, head, tail, depth, side, level, size):
    state[N_FREE] -= 1
    slot = free[state[N_FREE]]
    orders[O_ALIVE_POS, slot] = -1
    orders[O_RESERVE, slot] = 0
    orders[O_DISPLAY, slot] = size
    orders[O_ID, slot] = state[NEXT_ID]
    state[NEXT_ID] += 1
    _link(orders, state, alive, head, tail, depth, slot, side, level, size)
    return slot


@nb.njit(cache=True)
def _price(state, level, tick_price):
    return (level + state[BASE]) * tick_price


@nb.njit([_ADD_SIGNATURE], cache=True)
def _add(
    out,
    orders,
    state,
    alive,
    free,
    head,
    tail,
    depth,
    tick_price,
    t_ns,
    ts_recv,
    side,
    level,
    size,
    flags,
):
    slot = _new_order(orders, state, alive, free, head, tail, depth, side, level, size)
    _emit(
        out,
        state,
        t_ns,
        ts_recv,
        orders[O_ID, slot],
        _price(state, level, tick_price),
        size,
        flags,
        A_ADD,
        side,
    )
    return slot


@nb.njit(cache=True)
def _cancel(out, orders, state, alive, free, head, tail, depth, tick_price, t_ns, ts_recv, slot):
    level = orders[O_LEVEL, slot]
    side = orders[O_SIDE, slot]
    _emit(
        out,
        state,
        t_ns,
        ts_recv,
        orders[O_ID, slot],
        _price(state, level, tick_price),
        orders[O_SIZE, slot],
        F_LAST,
        A_CANCEL,
        side,
    )
    _unlink(orders, head, tail, depth, slot)
    _release(orders, state, alive, free, slot)


@nb.njit(cache=True)
def _reprice(
    out, orders, state, alive, head, tail, depth, tick_price, t_ns, ts_recv, slot, new_level
):
    """M to another price: the order keeps its id and goes to the back of the new queue."""
    side = orders[O_SIDE, slot]
    size = orders[O_SIZE, slot]
    _unlink(orders, head, tail, depth, slot)
    _link(orders, state, alive, head, tail, depth, slot, side, new_level, size)
    _emit(
        out,
        state,
        t_ns,
        ts_recv,
        orders[O_ID, slot],
        _price(state, new_level, tick_price),
        size,
        F_LAST,
        A_MODIFY,
        side,
    )


@nb.njit(cache=True)
def _empties_touch(orders, state, depth, slot):
    """Would removing this order empty the best bid or ask? The path alone moves price."""
    side = orders[O_SIDE, slot]
    level = orders[O_LEVEL, slot]
    touch = state[BEST_BID] if side == BID else state[BEST_ASK]
    return level == touch and depth[side, level] <= orders[O_SIZE, slot]


@nb.njit([_TRADE_SIGNATURE], cache=True)
def _trade(
    out,
    orders,
    state,
    alive,
    free,
    head,
    tail,
    depth,
    filled,
    tick_price,
    t_ns,
    ts_recv,
    side,
    level,
    quantity,
    sweep,
    hidden,
):
    """A marketable order of `quantity` against the queue of `side` at `level`: T for the
    aggressor, F per resting order, then C or M for each filled order, F_LAST on the last."""
    price = _price(state, level, tick_price)
    aggressor = BID if side == ASK else ASK
    aggressor_id = state[NEXT_ID]
    state[NEXT_ID] += 1
    _emit(out, state, t_ns, ts_recv, aggressor_id, price, quantity + hidden, 0, A_TRADE, aggressor)
    remaining = quantity
    n_filled = 0
    slot = head[side, level]
    while remaining > 0 and slot >= 0:
        fill = min(remaining, orders[O_SIZE, slot])
        _emit(out, state, t_ns, ts_recv, orders[O_ID, slot], price, fill, 0, A_FILL, side)
        filled[n_filled] = slot
        n_filled += 1
        remaining -= fill
        slot = orders[O_NEXT, slot]
    if hidden > 0:
        # iceberg quantity the book never showed: a fill on an order id never added
        _emit(out, state, t_ns, ts_recv, state[NEXT_ID], price, hidden, 0, A_FILL, side)
        state[NEXT_ID] += 1
    book_recv = ts_recv + 5_000 + np.random.randint(0, 5_000)
    remaining = quantity
    for i in range(n_filled):
        slot = filled[i]
        fill = min(remaining, orders[O_SIZE, slot])
        remaining -= fill
        left = orders[O_SIZE, slot] - fill
        order_id = orders[O_ID, slot]
        if left > 0:
            depth[side, level] -= fill
            orders[O_SIZE, slot] = left
            _emit(out, state, t_ns, book_recv, order_id, price, left, 0, A_MODIFY, side)
        elif orders[O_RESERVE, slot] > 0 and not sweep:
            refill = min(orders[O_DISPLAY, slot], orders[O_RESERVE, slot])
            orders[O_RESERVE, slot] -= refill
            _unlink(orders, head, tail, depth, slot)
            _link(orders, state, alive, head, tail, depth, slot, side, level, refill)
            _emit(out, state, t_ns, book_recv, order_id, price, refill, 0, A_MODIFY, side)
        else:
            _emit(
                out,
                state,
                t_ns,
                book_recv,
                order_id,
                price,
                orders[O_SIZE, slot],
                0,
                A_CANCEL,
                side,
            )
            _unlink(orders, head, tail, depth, slot)
            _release(orders, state, alive, free, slot)
    out[state[N_OUT] - 1]["flags"] = F_LAST


@nb.njit(cache=True)
def _scan(depth, side, start):
    """The best non-empty level of a side, searching away from the spread from `start`."""
    level = start
    step = -1 if side == BID else 1
    while 0 < level < LEVELS - 1:
        if depth[side, level] > 0:
            return level
        level += step
    return start


@nb.njit(cache=True)
def _heap_push(heap, size, time, slot, order_id):
    i = size
    heap[0, i] = time
    heap[1, i] = slot
    heap[2, i] = order_id
    while i > 0:
        parent = (i - 1) // 2
        if heap[0, parent] <= heap[0, i]:
            break
        for row in range(3):
            heap[row, parent], heap[row, i] = heap[row, i], heap[row, parent]
        i = parent
    return size + 1


@nb.njit(cache=True)
def _heap_pop(heap, size):
    size -= 1
    for row in range(3):
        heap[row, 0] = heap[row, size]
    i = 0
    while True:
        left = 2 * i + 1
        smallest = i
        if left < size and heap[0, left] < heap[0, smallest]:
            smallest = left
        if left + 1 < size and heap[0, left + 1] < heap[0, smallest]:
            smallest = left + 1
        if smallest == i:
            return size
        for row in range(3):
            heap[row, smallest], heap[row, i] = heap[row, i], heap[row, smallest]
        i = smallest


@nb.njit(cache=True)
def simulate_book(
    seed, file_start_ns, best_bid_path, activity, params, planted, first_order_id, tick_price, out
):
    """Fill `out` (RECORD_DTYPE) with one instrument's records for one file.

    Returns the number of records, -1 when `out` is too small, -2 when the path leaves the
    price range."""
    np.random.seed(seed)
    rate, p_add, p_cancel, p_modify, p_trade = params[0], params[1], params[2], params[3], params[4]
    p_flicker, flicker_seconds, p_short, short_seconds = params[5], params[6], params[7], params[8]
    target_orders, add_sigma, trade_sigma = params[9], params[10], params[11]
    p_iceberg, p_hidden, latency, decay, p_reprice = (
        params[12],
        params[13],
        params[14],
        params[15],
        params[16],
    )
    p_sweep_trade = params[17]
    join_orders = params[18]
    total = p_add + p_cancel + p_modify + p_trade
    capacity = out.shape[0]

    orders = np.zeros((9, MAX_ORDERS), np.int64)
    orders[O_ALIVE_POS, :] = -1
    alive = np.zeros(MAX_ORDERS, np.int64)
    free = np.arange(MAX_ORDERS - 1, -1, -1).astype(np.int64)
    head = np.full((2, LEVELS), -1, np.int64)
    tail = np.full((2, LEVELS), -1, np.int64)
    depth = np.zeros((2, LEVELS), np.int64)
    heap = np.zeros((3, MAX_ORDERS), np.int64)
    filled = np.zeros(MAX_ORDERS, np.int64)
    state = np.zeros(9, np.int64)
    state[N_FREE] = MAX_ORDERS
    state[NEXT_ID] = first_order_id
    state[LAST_RECV] = file_start_ns
    state[BASE] = best_bid_path[0] - LEVELS // 2
    state[BEST_BID] = LEVELS // 2
    state[BEST_ASK] = LEVELS // 2 + 1

    profile = np.empty(PROFILE_TICKS)
    for k in range(PROFILE_TICKS):
        profile[k] = (k + 1.0) ** 0.9 * math.exp(-k / decay)
    cumulative_profile = np.cumsum(profile / profile.sum())
    lat = int(latency)

    # ---- start-of-file snapshot: R, then the resting orders; F_LAST on the last of them
    snapshot = F_SNAPSHOT | F_BAD_TS_RECV
    _emit(
        out,
        state,
        file_start_ns - 3_600 * NANOS,
        file_start_ns,
        0,
        UNDEF_PRICE,
        0,
        snapshot,
        A_CLEAR,
        -1,
    )
    for side in range(2):
        for k in range(PROFILE_TICKS):
            level = state[BEST_BID] - k if side == BID else state[BEST_ASK] + k
            for _ in range(
                max(
                    1 if k == 0 else 0,
                    np.random.poisson(
                        target_orders
                        / 2
                        * (cumulative_profile[k] - (cumulative_profile[k - 1] if k else 0.0))
                    ),
                )
            ):
                placed = file_start_ns - np.random.randint(60, 172_800) * NANOS
                _add(
                    out,
                    orders,
                    state,
                    alive,
                    free,
                    head,
                    tail,
                    depth,
                    tick_price,
                    placed,
                    file_start_ns,
                    side,
                    level,
                    _draw_size(add_sigma),
                    snapshot,
                )
    out[state[N_OUT] - 1]["flags"] = snapshot | F_LAST

    times = np.zeros(EVENT_BUFFER, np.float64)
    kinds = np.zeros(EVENT_BUFFER, np.int64)
    heap_size = 0
    for second in range(best_bid_path.shape[0]):
        if state[N_OUT] + 50_000 > capacity:
            return -1
        if activity[second] <= 0.0:
            continue
        second_ns = file_start_ns + second * NANOS
        target = best_bid_path[second] - state[BASE]
        if target < PROFILE_TICKS + 8 or target > LEVELS - PROFILE_TICKS - 8:
            return -2

        # ---- the path: sweeps through the touch, then repairs so that bid = target, ask = +1
        t_ns = second_ns + np.random.randint(0, 2_000_000)
        for _ in range(256):
            best_bid, best_ask = state[BEST_BID], state[BEST_ASK]
            recv = max(state[LAST_RECV] + 1, t_ns + lat)
            if best_ask <= target or best_bid > target:
                up = best_ask <= target
                side = ASK if up else BID
                level = best_ask if up else best_bid
                beyond = level + 1 if up else level - 1
                if depth[side, beyond] == 0:
                    _add(
                        out,
                        orders,
                        state,
                        alive,
                        free,
                        head,
                        tail,
                        depth,
                        tick_price,
                        t_ns,
                        recv,
                        side,
                        beyond,
                        _draw_size(add_sigma),
                        F_LAST,
                    )
                    recv = max(state[LAST_RECV] + 1, t_ns + 20_000 + lat)
                if np.random.random() < p_sweep_trade:
                    _trade(
                        out,
                        orders,
                        state,
                        alive,
                        free,
                        head,
                        tail,
                        depth,
                        filled,
                        tick_price,
                        t_ns + 20_000,
                        recv,
                        side,
                        level,
                        depth[side, level],
                        True,
                        0,
                    )
                else:
                    while head[side, level] >= 0:
                        recv = max(state[LAST_RECV] + 1, t_ns + 20_000 + lat)
                        _cancel(
                            out,
                            orders,
                            state,
                            alive,
                            free,
                            head,
                            tail,
                            depth,
                            tick_price,
                            t_ns + 20_000,
                            recv,
                            head[side, level],
                        )
                # the other side joins at the swept price, a few orders within milliseconds
                join = BID if up else ASK
                for joiner in range(1 + np.random.poisson(join_orders)):
                    joined_at = t_ns + 60_000 + joiner * np.random.randint(50_000, 2_000_000)
                    recv = max(state[LAST_RECV] + 1, joined_at + lat)
                    _add(
                        out,
                        orders,
                        state,
                        alive,
                        free,
                        head,
                        tail,
                        depth,
                        tick_price,
                        joined_at,
                        recv,
                        join,
                        level,
                        _draw_size(add_sigma),
                        F_LAST,
                    )
                if up:
                    state[BEST_ASK] = _scan(depth, ASK, beyond)
                    state[BEST_BID] = level
                else:
                    state[BEST_BID] = _scan(depth, BID, beyond)
                    state[BEST_ASK] = level
            elif best_bid < target:
                _add(
                    out,
                    orders,
                    state,
                    alive,
                    free,
                    head,
                    tail,
                    depth,
                    tick_price,
                    t_ns,
                    recv,
                    BID,
                    target,
                    _draw_size(add_sigma),
                    F_LAST,
                )
                state[BEST_BID] = target
            elif best_ask > target + 1:
                _add(
                    out,
                    orders,
                    state,
                    alive,
                    free,
                    head,
                    tail,
                    depth,
                    tick_price,
                    t_ns,
                    recv,
                    ASK,
                    target + 1,
                    _draw_size(add_sigma),
                    F_LAST,
                )
                state[BEST_ASK] = target + 1
            else:
                break
            t_ns += 100_000

        # ---- this second's events in time order: background arrivals, then planted actions
        n_events = min(np.random.poisson(rate * activity[second]), EVENT_BUFFER // 2)
        for e in range(n_events):
            times[e] = np.random.random()
            kinds[e] = -1
        for p in range(planted.shape[0]):
            if planted[p, 0] <= second < planted[p, 1]:
                for _ in range(np.random.poisson(planted[p, 6] / (planted[p, 1] - planted[p, 0]))):
                    if n_events < EVENT_BUFFER:
                        times[n_events] = np.random.random()
                        kinds[n_events] = p
                        n_events += 1
        order = np.argsort(times[:n_events])
        for e in range(n_events):
            if state[N_OUT] + 8_000 > capacity:
                return -1
            index = order[e]
            t_ns = max(second_ns + int(times[index] * NANOS), state[LAST_RECV] - lat + 1)
            # scheduled cancels fall due first
            while heap_size > 0 and heap[0, 0] <= t_ns:
                due, slot, wanted = heap[0, 0], heap[1, 0], heap[2, 0]
                heap_size = _heap_pop(heap, heap_size)
                if (
                    orders[O_ALIVE_POS, slot] >= 0
                    and orders[O_ID, slot] == wanted
                    and not _empties_touch(orders, state, depth, slot)
                ):
                    _cancel(
                        out,
                        orders,
                        state,
                        alive,
                        free,
                        head,
                        tail,
                        depth,
                        tick_price,
                        due,
                        max(state[LAST_RECV] + 1, due + lat),
                        slot,
                    )
            recv = max(state[LAST_RECV] + 1, t_ns + int(lat * (0.5 + np.random.random())))
            kind = kinds[index]
            if kind >= 0:
                _planted(
                    out,
                    orders,
                    state,
                    alive,
                    free,
                    head,
                    tail,
                    depth,
                    tick_price,
                    t_ns,
                    recv,
                    planted[kind],
                    add_sigma,
                )
            else:
                draw = np.random.random() * total
                if draw < p_add:
                    side = BID if np.random.random() < 0.5 else ASK
                    k = np.searchsorted(cumulative_profile, np.random.random())
                    level = state[BEST_BID] - k if side == BID else state[BEST_ASK] + k
                    size = _draw_size(add_sigma)
                    slot = _add(
                        out,
                        orders,
                        state,
                        alive,
                        free,
                        head,
                        tail,
                        depth,
                        tick_price,
                        t_ns,
                        recv,
                        side,
                        level,
                        size,
                        F_LAST,
                    )
                    if np.random.random() < p_iceberg:
                        orders[O_RESERVE, slot] = size * np.random.randint(3, 12)
                    lifetime = np.random.random()
                    if lifetime < p_flicker + p_short:
                        mean = flicker_seconds if lifetime < p_flicker else short_seconds
                        due = recv + 1 + int(np.random.exponential(mean) * NANOS)
                        heap_size = _heap_push(heap, heap_size, due, slot, orders[O_ID, slot])
                elif draw < p_add + p_cancel * min(3.0, state[N_ALIVE] / target_orders):
                    slot = alive[np.random.randint(0, state[N_ALIVE])]
                    if not _empties_touch(orders, state, depth, slot):
                        _cancel(
                            out,
                            orders,
                            state,
                            alive,
                            free,
                            head,
                            tail,
                            depth,
                            tick_price,
                            t_ns,
                            recv,
                            slot,
                        )
                elif draw < p_add + p_cancel + p_modify:
                    slot = alive[np.random.randint(0, state[N_ALIVE])]
                    if not _empties_touch(orders, state, depth, slot):
                        side, level, size = (
                            orders[O_SIDE, slot],
                            orders[O_LEVEL, slot],
                            orders[O_SIZE, slot],
                        )
                        if np.random.random() < p_reprice or size < 2:
                            step = np.random.randint(1, 4)
                            toward = np.random.random() < 0.45
                            new_level = level + step if (side == BID) == toward else level - step
                            if side == BID and new_level >= state[BEST_ASK]:
                                new_level = level - step
                            if side == ASK and new_level <= state[BEST_BID]:
                                new_level = level + step
                            _reprice(
                                out,
                                orders,
                                state,
                                alive,
                                head,
                                tail,
                                depth,
                                tick_price,
                                t_ns,
                                recv,
                                slot,
                                new_level,
                            )
                        else:
                            smaller = np.random.randint(1, size)
                            depth[side, level] -= size - smaller
                            orders[O_SIZE, slot] = smaller
                            _emit(
                                out,
                                state,
                                t_ns,
                                recv,
                                orders[O_ID, slot],
                                _price(state, level, tick_price),
                                smaller,
                                F_LAST,
                                A_MODIFY,
                                side,
                            )
                else:
                    buy = np.random.random() < 0.5
                    side = ASK if buy else BID
                    level = state[BEST_ASK] if buy else state[BEST_BID]
                    if depth[side, level] > 1:
                        quantity = min(_draw_size(trade_sigma), depth[side, level] - 1)
                        hidden = np.random.randint(1, 4) if np.random.random() < p_hidden else 0
                        _trade(
                            out,
                            orders,
                            state,
                            alive,
                            free,
                            head,
                            tail,
                            depth,
                            filled,
                            tick_price,
                            t_ns,
                            recv,
                            side,
                            level,
                            quantity,
                            False,
                            hidden,
                        )
            if depth[BID, state[BEST_BID]] == 0:
                state[BEST_BID] = _scan(depth, BID, state[BEST_BID])
            if depth[ASK, state[BEST_ASK]] == 0:
                state[BEST_ASK] = _scan(depth, ASK, state[BEST_ASK])
    return state[N_OUT]


@nb.njit(cache=True)
def _planted(
    out, orders, state, alive, free, head, tail, depth, tick_price, t_ns, recv, action, add_sigma
):
    """One planted action: a stacked add, or a pull / reprice-away of an order in the band."""
    kind, side = action[2], action[3]
    low, high = action[4] - state[BASE], action[5] - state[BASE]
    if kind == STACK:
        level = np.random.randint(low, high + 1)
        if (side == BID and level < state[BEST_ASK]) or (side == ASK and level > state[BEST_BID]):
            _add(
                out,
                orders,
                state,
                alive,
                free,
                head,
                tail,
                depth,
                tick_price,
                t_ns,
                recv,
                side,
                level,
                _draw_size(add_sigma) + 1,
                F_LAST,
            )
        return
    candidates = 0
    for level in range(low, high + 1):
        if depth[side, level] > 0:
            candidates += 1
    if candidates == 0:
        return
    pick = np.random.randint(0, candidates)
    chosen = low
    for level in range(low, high + 1):
        if depth[side, level] > 0:
            if pick == 0:
                chosen = level
                break
            pick -= 1
    slot = tail[side, chosen] if np.random.random() < 0.5 else head[side, chosen]
    if _empties_touch(orders, state, depth, slot):
        return
    if kind == PULL:
        _cancel(out, orders, state, alive, free, head, tail, depth, tick_price, t_ns, recv, slot)
    else:
        shift = max(1, action[7] + np.random.randint(-1, 2))
        new_level = chosen + shift if side == ASK else chosen - shift
        _reprice(
            out, orders, state, alive, head, tail, depth, tick_price, t_ns, recv, slot, new_level
        )
