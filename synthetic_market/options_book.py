"""ES options of one session: chain, volatility smile, open interest and quote MBO records.

Every option is quoted by a market maker around its Black-76 value on the moving future with a
volatility smile (`smile_volatility`): one resting bid and one resting ask, moved with M
records whenever the rounded quote changes, refilled after trades. Customers add and cancel
orders a few ticks away and trade against the quotes (T, F, then C or M). Open interest is
concentrated at round strikes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from foundation.dbn_facts import F_BAD_TS_RECV, F_LAST, F_SNAPSHOT, PRICE_SCALE, UNDEF_PRICE
from gex.black76 import MINUTES_PER_YEAR
from synthetic_market.futures_book import (
    A_ADD,
    A_CANCEL,
    A_CLEAR,
    A_FILL,
    A_MODIFY,
    A_TRADE,
    NANOS,
    RECORD_DTYPE,
    S_ASK,
    S_BID,
    S_NONE,
)

OPTION_RECORD_DTYPE = np.dtype([*RECORD_DTYPE.descr, ("instrument_id", "i8")])

STRIKE_STEP = 5.0
RATE = 0.0  # futures-style margining: Black-76 without discounting
SMALL_TICK, LARGE_TICK, TICK_SWITCH = 0.05, 0.25, 5.0


@dataclass(frozen=True)
class Smile:
    """sigma(k, tau) = atm(tau) + skew * k + curvature * k^2, with k = ln(K / F)."""

    atm_long: float = 0.14
    atm_short_premium: float = 0.05
    skew: float = -1.2
    curvature: float = 4.0

    def volatility(self, log_moneyness: np.ndarray, years: np.ndarray) -> np.ndarray:
        days = years * 365.0
        atm = self.atm_long + self.atm_short_premium * np.exp(-days / 3.0)
        sigma = atm + self.skew * log_moneyness + self.curvature * log_moneyness**2
        return np.clip(sigma, 0.05, 1.5)

    def vector(self) -> np.ndarray:
        return np.array([self.atm_long, self.atm_short_premium, self.skew, self.curvature])


@nb.njit(cache=True, inline="always")
def _smile(params, forward, strike, years):
    k = math.log(strike / forward)
    atm = params[0] + params[1] * math.exp(-years * 365.0 / 3.0)
    return min(1.5, max(0.05, atm + params[2] * k + params[3] * k * k))


@nb.njit(cache=True, inline="always")
def _black76(forward, strike, years, sigma, is_call):
    root = sigma * math.sqrt(years)
    d1 = (math.log(forward / strike) + 0.5 * root * root) / root
    d2 = d1 - root
    if is_call:
        return forward * 0.5 * math.erfc(-d1 / math.sqrt(2.0)) - strike * 0.5 * math.erfc(
            -d2 / math.sqrt(2.0)
        )
    return strike * 0.5 * math.erfc(d2 / math.sqrt(2.0)) - forward * 0.5 * math.erfc(
        d1 / math.sqrt(2.0)
    )


@nb.njit(cache=True, inline="always")
def _tick(value):
    return SMALL_TICK if value < TICK_SWITCH else LARGE_TICK


@nb.njit(cache=True)
def _quote(forward, strike, years, is_call, smile):
    """Market-maker bid and ask (index points) around the Black-76 value."""
    value = _black76(forward, strike, years, _smile(smile, forward, strike, years), is_call)
    intrinsic = max(forward - strike, 0.0) if is_call else max(strike - forward, 0.0)
    value = max(value, intrinsic)
    half = max(_tick(value), 0.01 * value)
    tick = _tick(value)
    bid = math.floor((value - half) / tick + 1e-9) * tick
    ask = math.ceil((value + half) / tick - 1e-9) * tick
    if bid < tick:
        bid = 0.0
    if ask <= bid:
        ask = bid + tick
    return bid, ask


@nb.njit(cache=True)
def simulate_options(
    seed,
    file_start_ns,
    forward_path,
    activity,
    strikes,
    expirations,
    is_call,
    instrument_ids,
    listed_second,
    smile,
    rate,
    first_order_id,
    out,
):
    """Records of every option of the session into `out` (the futures RECORD_DTYPE plus an
    instrument column); returns the count or -1 when `out` is too small. `listed_second`: -1
    for an option in the start-of-file snapshot, else the second of the file it is listed at
    (its market maker quotes it from the first active second on or after)."""
    np.random.seed(seed)
    n_options = strikes.shape[0]
    capacity = out.shape[0]
    mm_price = np.zeros((n_options, 2))
    mm_size = np.zeros((n_options, 2), np.int64)
    mm_id = np.zeros((n_options, 2), np.int64)
    customer_id = np.full((n_options, 4), -1, np.int64)
    customer_side = np.zeros((n_options, 4), np.int64)
    customer_price = np.zeros((n_options, 4))
    customer_size = np.zeros((n_options, 4), np.int64)
    live = listed_second < 0
    waiting = listed_second >= 0
    next_id = first_order_id
    n = 0
    last_recv = file_start_ns
    snapshot = F_SNAPSHOT | F_BAD_TS_RECV
    forward = forward_path[0]
    atm_weight = np.empty(n_options)
    for i in range(n_options):
        atm_weight[i] = 0.1 + math.exp(-(((strikes[i] - forward) / 40.0) ** 2))
    weight_sum = atm_weight.sum()

    # snapshot per option: R, then the quotes
    for i in range(n_options):
        if waiting[i]:
            continue
        years = max((expirations[i] - file_start_ns) / NANOS / 60.0, 1.0) / MINUTES_PER_YEAR
        bid, ask = _quote(forward, strikes[i], years, is_call[i], smile)
        out[n]["ts_event"] = file_start_ns - 3_600 * NANOS
        out[n]["ts_recv"] = file_start_ns
        out[n]["order_id"] = 0
        out[n]["price"] = UNDEF_PRICE
        out[n]["size"] = 0
        out[n]["flags"] = snapshot
        out[n]["action"] = A_CLEAR
        out[n]["side"] = S_NONE
        out[n]["instrument_id"] = instrument_ids[i]
        n += 1
        for side in range(2):
            price = bid if side == 0 else ask
            mm_price[i, side] = price
            mm_size[i, side] = np.random.randint(5, 60)
            mm_id[i, side] = next_id
            next_id += 1
            if side == 0 and price <= 0.0:
                mm_size[i, side] = 0
                continue
            out[n]["ts_event"] = file_start_ns - np.random.randint(60, 86_400) * NANOS
            out[n]["ts_recv"] = file_start_ns
            out[n]["order_id"] = mm_id[i, side]
            out[n]["price"] = round(price * PRICE_SCALE)
            out[n]["size"] = mm_size[i, side]
            out[n]["flags"] = snapshot
            out[n]["action"] = A_ADD
            out[n]["side"] = S_BID if side == 0 else S_ASK
            out[n]["instrument_id"] = instrument_ids[i]
            n += 1
        out[n - 1]["flags"] = snapshot | F_LAST

    for second in range(forward_path.shape[0]):
        if n + 6 * n_options + 10_000 > capacity:
            return -1
        if activity[second] <= 0.0:
            continue
        second_ns = file_start_ns + second * NANOS
        moved = forward_path[second] != forward
        forward = forward_path[second]
        t_ns = second_ns + np.random.randint(0, 5_000_000)
        for i in range(n_options):
            listing = waiting[i] and second >= listed_second[i]
            if listing:
                waiting[i] = False
                live[i] = True
            if not live[i]:
                continue
            minutes_left = (expirations[i] - second_ns) / NANOS / 60.0
            if minutes_left <= 0.0:
                # expiry: the market maker and customers leave the book
                live[i] = False
                for side in range(2):
                    if mm_size[i, side] > 0:
                        last_recv = max(last_recv + 1, t_ns + 40_000)
                        n = _record(
                            out,
                            n,
                            t_ns,
                            last_recv,
                            mm_id[i, side],
                            mm_price[i, side],
                            mm_size[i, side],
                            F_LAST,
                            A_CANCEL,
                            side,
                            instrument_ids[i],
                        )
                        mm_size[i, side] = 0
                for c in range(4):
                    if customer_id[i, c] >= 0:
                        last_recv = max(last_recv + 1, t_ns + 40_000)
                        n = _record(
                            out,
                            n,
                            t_ns,
                            last_recv,
                            customer_id[i, c],
                            customer_price[i, c],
                            customer_size[i, c],
                            F_LAST,
                            A_CANCEL,
                            customer_side[i, c],
                            instrument_ids[i],
                        )
                        customer_id[i, c] = -1
                continue
            if not moved and second % 15 != 0 and not listing:
                continue
            years = max(minutes_left, 1.0) / MINUTES_PER_YEAR
            bid, ask = _quote(forward, strikes[i], years, is_call[i], smile)
            # customers whose orders the new quote would cross withdraw them first
            for c in range(4):
                if customer_id[i, c] < 0:
                    continue
                price = customer_price[i, c]
                if (customer_side[i, c] == 0 and price >= ask) or (
                    customer_side[i, c] == 1 and bid > 0.0 and price <= bid
                ):
                    last_recv = max(last_recv + 1, t_ns + 40_000)
                    n = _record(
                        out,
                        n,
                        t_ns,
                        last_recv,
                        customer_id[i, c],
                        price,
                        customer_size[i, c],
                        F_LAST,
                        A_CANCEL,
                        customer_side[i, c],
                        instrument_ids[i],
                    )
                    customer_id[i, c] = -1
            for side in range(2):
                price = bid if side == 0 else ask
                if abs(price - mm_price[i, side]) < 1e-9 and mm_size[i, side] > 0:
                    continue
                if side == 0 and price <= 0.0:
                    if mm_size[i, side] > 0:
                        last_recv = max(last_recv + 1, t_ns + 40_000)
                        n = _record(
                            out,
                            n,
                            t_ns,
                            last_recv,
                            mm_id[i, side],
                            mm_price[i, side],
                            mm_size[i, side],
                            F_LAST,
                            A_CANCEL,
                            side,
                            instrument_ids[i],
                        )
                        mm_size[i, side] = 0
                    continue
                last_recv = max(last_recv + 1, t_ns + 40_000)
                if mm_size[i, side] > 0:
                    mm_price[i, side] = price
                    n = _record(
                        out,
                        n,
                        t_ns,
                        last_recv,
                        mm_id[i, side],
                        price,
                        mm_size[i, side],
                        F_LAST,
                        A_MODIFY,
                        side,
                        instrument_ids[i],
                    )
                else:
                    mm_price[i, side] = price
                    mm_size[i, side] = np.random.randint(5, 60)
                    mm_id[i, side] = next_id
                    next_id += 1
                    n = _record(
                        out,
                        n,
                        t_ns,
                        last_recv,
                        mm_id[i, side],
                        price,
                        mm_size[i, side],
                        F_LAST,
                        A_ADD,
                        side,
                        instrument_ids[i],
                    )
            t_ns += 1_000

        # customer flow, concentrated near the money
        events = np.random.poisson(rate * activity[second])
        for _ in range(events):
            if n + 16 > capacity:
                return -1
            pick = np.random.random() * weight_sum
            i = 0
            while i < n_options - 1 and pick > atm_weight[i]:
                pick -= atm_weight[i]
                i += 1
            if not live[i]:
                continue
            t_ns = second_ns + np.random.randint(5_000_000, NANOS)
            t_ns = max(t_ns, last_recv - 30_000)
            recv = max(last_recv + 1, t_ns + 40_000)
            draw = np.random.random()
            slot = np.random.randint(0, 4)
            if draw < 0.45:
                if customer_id[i, slot] < 0 and mm_size[i, 0] > 0:
                    side = np.random.randint(0, 2)
                    tick = _tick(mm_price[i, side])
                    away = np.random.randint(1, 4) * tick
                    price = mm_price[i, 0] - away if side == 0 else mm_price[i, 1] + away
                    if price > 0.0:
                        customer_id[i, slot] = next_id
                        next_id += 1
                        customer_side[i, slot] = side
                        customer_price[i, slot] = price
                        customer_size[i, slot] = np.random.randint(1, 20)
                        n = _record(
                            out,
                            n,
                            t_ns,
                            recv,
                            customer_id[i, slot],
                            price,
                            customer_size[i, slot],
                            F_LAST,
                            A_ADD,
                            side,
                            instrument_ids[i],
                        )
                        last_recv = recv
            elif draw < 0.85:
                if customer_id[i, slot] >= 0:
                    n = _record(
                        out,
                        n,
                        t_ns,
                        recv,
                        customer_id[i, slot],
                        customer_price[i, slot],
                        customer_size[i, slot],
                        F_LAST,
                        A_CANCEL,
                        customer_side[i, slot],
                        instrument_ids[i],
                    )
                    customer_id[i, slot] = -1
                    last_recv = recv
            else:
                side = np.random.randint(0, 2)  # the resting side that is hit
                if mm_size[i, side] <= 0:
                    continue
                quantity = min(mm_size[i, side], np.random.randint(1, 11))
                price = mm_price[i, side]
                aggressor = 1 - side
                n = _record(
                    out,
                    n,
                    t_ns,
                    recv,
                    next_id,
                    price,
                    quantity,
                    0,
                    A_TRADE,
                    aggressor,
                    instrument_ids[i],
                )
                next_id += 1
                n = _record(
                    out,
                    n,
                    t_ns,
                    recv,
                    mm_id[i, side],
                    price,
                    quantity,
                    0,
                    A_FILL,
                    side,
                    instrument_ids[i],
                )
                book_recv = recv + 6_000
                if quantity < mm_size[i, side]:
                    mm_size[i, side] -= quantity
                    n = _record(
                        out,
                        n,
                        t_ns,
                        book_recv,
                        mm_id[i, side],
                        price,
                        mm_size[i, side],
                        F_LAST,
                        A_MODIFY,
                        side,
                        instrument_ids[i],
                    )
                else:
                    n = _record(
                        out,
                        n,
                        t_ns,
                        book_recv,
                        mm_id[i, side],
                        price,
                        mm_size[i, side],
                        F_LAST,
                        A_CANCEL,
                        side,
                        instrument_ids[i],
                    )
                    mm_size[i, side] = 0  # requoted at the next quote update
                last_recv = book_recv
    return n


@nb.njit(cache=True, inline="always")
def _record(out, n, ts_event, ts_recv, order_id, price, size, flags, action, side, instrument_id):
    out[n]["ts_event"] = ts_event
    out[n]["ts_recv"] = ts_recv
    out[n]["order_id"] = order_id
    out[n]["price"] = round(price * PRICE_SCALE)
    out[n]["size"] = size
    out[n]["flags"] = flags
    out[n]["action"] = action
    out[n]["side"] = S_BID if side == 0 else S_ASK
    out[n]["instrument_id"] = instrument_id
    return n + 1


def open_interest(
    strikes: np.ndarray, forward: float, is_quarterly: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Contracts of open interest: peaked near the money, concentrated at round strikes."""
    base = np.where(is_quarterly, 2500.0, 600.0)
    shape = np.exp(-(((strikes - forward) / 150.0) ** 2))
    round_strike = (
        1.0 + 4.0 * (strikes % 100 == 0) + 1.5 * ((strikes % 50 == 0) & (strikes % 100 != 0))
    )
    noise = rng.lognormal(0.0, 0.3, len(strikes))
    return np.maximum(1, np.round(base * shape * round_strike * noise)).astype(np.int64)
