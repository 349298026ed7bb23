"""Per option and second, in one compiled pass over the engine's book rows: mid, the status of
the implied volatility, the volatility itself (warm-started from the option's previous second),
gamma and unsigned gamma exposure."""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from gex.black76 import MINUTES_PER_YEAR, _gamma, _implied_volatility
from spymaster.dbn_facts import PRICE_SCALE, UNDEF_PRICE

IV_STATUSES = (
    "ok",
    "no_quote",
    "crossed",
    "below_intrinsic",
    "unsolvable",
    "no_spot",
    "invalid_book",
)
OK, NO_QUOTE, CROSSED, BELOW_INTRINSIC, UNSOLVABLE, NO_SPOT, INVALID_BOOK = range(7)
_UNDEF_PRICE = np.int64(UNDEF_PRICE)
_SECOND_NS = 1_000_000_000
_MINUTE_NS = 60e9


@nb.njit(cache=True)
def option_rows(
    window_start,
    bid_price,
    ask_price,
    book_valid,
    option,
    strikes,
    is_call,
    expiration_ns,
    open_interest,
    multiplier,
    spot_seconds,
    spot_values,
    rate,
    min_minutes,
    last_sigma,
):
    """Rows in time order (the engine's). `spot_seconds` sorted; `last_sigma` per option, NaN
    at first, updated in place. Returns the columns of options_quotes_1s that are computed."""
    n = window_start.shape[0]
    bid = np.full(n, np.nan)
    ask = np.full(n, np.nan)
    mid = np.full(n, np.nan)
    spot = np.full(n, np.nan)
    minutes = np.empty(n)
    sigma = np.full(n, np.nan)
    status = np.empty(n, np.int8)
    gamma = np.full(n, np.nan)
    exposure = np.full(n, np.nan)
    cursor = 0
    for i in range(n):
        o = option[i]
        t = window_start[i]
        while cursor < spot_seconds.shape[0] and spot_seconds[cursor] < t:
            cursor += 1
        if cursor < spot_seconds.shape[0] and spot_seconds[cursor] == t:
            spot[i] = spot_values[cursor]
        if bid_price[i] != _UNDEF_PRICE:
            bid[i] = bid_price[i] / PRICE_SCALE
        if ask_price[i] != _UNDEF_PRICE:
            ask[i] = ask_price[i] / PRICE_SCALE
        minutes[i] = max((expiration_ns[o] - (t + _SECOND_NS)) / _MINUTE_NS, min_minutes)
        years = minutes[i] / MINUTES_PER_YEAR
        quoted = not (math.isnan(bid[i]) or math.isnan(ask[i]))
        if quoted and bid[i] >= ask[i]:
            status[i] = CROSSED  # the engine holds a crossed book invalid: name the cause
            continue
        if book_valid[i] == 0:
            status[i] = INVALID_BOOK
            continue
        if not quoted:
            status[i] = NO_QUOTE
            continue
        mid[i] = 0.5 * (bid[i] + ask[i])
        if math.isnan(spot[i]):
            status[i] = NO_SPOT
            continue
        f, k = spot[i], strikes[o]
        intrinsic = math.exp(-rate * years) * (max(f - k, 0.0) if is_call[o] else max(k - f, 0.0))
        if mid[i] <= intrinsic:
            status[i] = BELOW_INTRINSIC
            continue
        guess = 0.2 if math.isnan(last_sigma[o]) else last_sigma[o]
        solved = _implied_volatility(mid[i], f, k, years, rate, is_call[o], guess)
        if math.isnan(solved):
            status[i] = UNSOLVABLE
            continue
        last_sigma[o] = solved
        status[i] = OK
        sigma[i] = solved
        gamma[i] = _gamma(f, k, years, solved, rate)
        if not math.isnan(open_interest[o]):
            exposure[i] = gamma[i] * open_interest[o] * multiplier[o]
    return bid, ask, mid, spot, minutes, sigma, status, gamma, exposure
