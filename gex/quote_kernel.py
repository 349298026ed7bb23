"""Per option and second, in one compiled pass over the engine's book rows: mid, the status of
the implied volatility, the volatility itself (warm-started from the option's previous second),
gamma and unsigned gamma exposure.

A second whose quote gives no volatility (one-sided, missing, crossed, under intrinsic value,
unsolvable) carries the option's last solved volatility forward while it is at most
`carry_ns` old (status `carried`), repriced at this second's spot and time to expiry: a quote
gap is not a jump of the option's exposure to zero and back. A book that is not valid, or a
second without spot, carries nothing."""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from foundation.dbn_facts import PRICE_SCALE, UNDEF_PRICE
from gex.black76 import MINUTES_PER_YEAR, _gamma, _implied_volatility_and_d1, _norm_pdf

IV_STATUSES = (
    "ok",
    "no_quote",
    "crossed",
    "below_intrinsic",
    "unsolvable",
    "no_spot",
    "invalid_book",
    "carried",
)
OK, NO_QUOTE, CROSSED, BELOW_INTRINSIC, UNSOLVABLE, NO_SPOT, INVALID_BOOK, CARRIED = range(8)
_UNDEF_PRICE = np.int64(UNDEF_PRICE)
_SECOND_NS = 1_000_000_000
_MINUTE_NS = 60e9


FLOAT_COLUMNS = ("bid", "ask", "mid", "spot", "minutes", "sigma", "gamma", "exposure")
CODE_COLUMNS = ("status", "age")


def option_rows_out(n: int) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """option_rows' outputs for n rows: FLOAT_COLUMNS and CODE_COLUMNS (int32)."""
    return (
        tuple(np.empty(n) for _ in FLOAT_COLUMNS),
        tuple(np.empty(n, np.int32) for _ in CODE_COLUMNS),
    )


# a batch's options go to the threads in alternate blocks of 16: a second's rows run option
# after option, and threads writing alternate options wrote into the same cache lines (the
# realistic day's pricing on two threads: 1.68 s by alternate options, 1.33 s by blocks)
_BLOCK_SHIFT = 4


# nogil: dbt's threads run two engine models at once, and a batch's options split over both
# cores (`part` of `parts`)
@nb.njit(cache=True, nogil=True)
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
    carry_ns,
    last_sigma,
    last_solved_ns,
    floats,
    codes,
    part,
    parts,
):
    """Rows in time order (the engine's), those of the options whose block of 16 chain
    positions is `part` modulo `parts`. `spot_seconds` sorted; `last_sigma` (NaN at first)
    and `last_solved_ns` (the second it was solved) per option, updated in place. Writes the
    columns of options_quotes_1s that are computed into `floats` and `codes`
    (option_rows_out); the age of the volatility in seconds is -1 where there is none."""
    bid, ask, mid, spot, minutes, sigma, gamma, exposure = floats
    status, age = codes
    cursor = 0
    for i in range(window_start.shape[0]):
        o = option[i]
        if (o >> _BLOCK_SHIFT) % parts != part:
            continue
        t = window_start[i]
        mid[i] = spot[i] = sigma[i] = gamma[i] = np.nan
        age[i] = -1
        # no open contracts: no exposure, whatever the volatility
        exposure[i] = 0.0 if open_interest[o] == 0.0 else np.nan
        while cursor < spot_seconds.shape[0] and spot_seconds[cursor] < t:
            cursor += 1
        if cursor < spot_seconds.shape[0] and spot_seconds[cursor] == t:
            spot[i] = spot_values[cursor]
        bid[i] = _points(bid_price[i])
        ask[i] = _points(ask_price[i])
        minutes[i] = max((expiration_ns[o] - (t + _SECOND_NS)) / _MINUTE_NS, min_minutes)
        years = minutes[i] / MINUTES_PER_YEAR
        quoted = not (math.isnan(bid[i]) or math.isnan(ask[i]))
        d1 = math.nan
        if quoted and bid[i] >= ask[i]:
            status[i] = CROSSED  # the engine holds a crossed book invalid: name the cause
        elif book_valid[i] == 0:
            status[i] = INVALID_BOOK
            continue
        elif not quoted:
            status[i] = NO_QUOTE
        else:
            mid[i] = 0.5 * (bid[i] + ask[i])
            status[i], d1 = _solve(
                i, o, t, mid, spot, strikes, is_call, years, rate, last_sigma, last_solved_ns, sigma
            )
        if status[i] != OK:
            stale = math.isnan(last_sigma[o]) or t - last_solved_ns[o] > carry_ns
            if math.isnan(spot[i]) or stale:
                continue
            status[i] = CARRIED
            sigma[i] = last_sigma[o]
            d1 = math.nan
        age[i] = (t - last_solved_ns[o]) // _SECOND_NS
        gamma[i] = _gamma_given_d1(d1, spot[i], strikes[o], years, sigma[i], rate)
        if not math.isnan(open_interest[o]):
            exposure[i] = gamma[i] * open_interest[o] * multiplier[o]


@nb.njit(cache=True, inline="always")
def _points(price):
    """An engine price in index points; NaN for none."""
    return np.nan if price == _UNDEF_PRICE else price / PRICE_SCALE


@nb.njit(cache=True, inline="always")
def _gamma_given_d1(d1, forward, strike, years, sigma, rate):
    """Gamma, from the solver's d1 when it priced at this volatility (the same operations as
    _gamma's, so the same bits, without its logarithm)."""
    if math.isnan(d1):
        return _gamma(forward, strike, years, sigma, rate)
    return math.exp(-rate * years) * _norm_pdf(d1) / (forward * (sigma * math.sqrt(years)))


@nb.njit(cache=True, inline="always")
def _solve(i, o, t, mid, spot, strikes, is_call, years, rate, last_sigma, last_solved_ns, sigma):
    """The status of solving row i's mid for volatility, and d1 at the volatility (NaN when
    the solver did not price there); on success the volatility is stored in `sigma[i]` and
    remembered as the option's last solved one."""
    if math.isnan(spot[i]):
        return NO_SPOT, math.nan
    f, k = spot[i], strikes[o]
    intrinsic = math.exp(-rate * years) * (max(f - k, 0.0) if is_call[o] else max(k - f, 0.0))
    if mid[i] <= intrinsic:
        return BELOW_INTRINSIC, math.nan
    guess = 0.2 if math.isnan(last_sigma[o]) else last_sigma[o]
    solved, d1 = _implied_volatility_and_d1(mid[i], f, k, years, rate, is_call[o], guess)
    if math.isnan(solved):
        return UNSOLVABLE, math.nan
    last_sigma[o] = solved
    last_solved_ns[o] = t
    sigma[i] = solved
    return OK, d1


@nb.njit(cache=True, nogil=True)
def option_columns(
    option,
    instrument_ids,
    strikes,
    is_call,
    expiration_ns,
    expires_on_day,
    open_interest,
    multiplier,
):
    """Per row, its option's columns of options_quotes_1s in one pass (`option` indexes the
    chain's arrays): instrument id, strike, right (0 call, 1 put), expiration in
    microseconds, whether it expires on the day, open interest (0 where unknown), whether it
    is unknown, and the multiplier."""
    n = option.shape[0]
    instrument = np.empty(n, np.uint32)
    strike = np.empty(n)
    right = np.empty(n, np.int32)
    expiration_us = np.empty(n, np.int64)
    zero_dte = np.empty(n, np.bool_)
    contracts = np.empty(n, np.int64)
    contracts_unknown = np.empty(n, np.bool_)
    per_point = np.empty(n)
    for i in range(n):
        o = option[i]
        instrument[i] = instrument_ids[o]
        strike[i] = strikes[o]
        right[i] = 0 if is_call[o] else 1
        expiration_us[i] = expiration_ns[o] // 1000
        zero_dte[i] = expires_on_day[o]
        unknown = math.isnan(open_interest[o])
        contracts[i] = 0 if unknown else np.int64(open_interest[o])
        contracts_unknown[i] = unknown
        per_point[i] = multiplier[o]
    return (
        instrument,
        strike,
        right,
        expiration_us,
        zero_dte,
        contracts,
        contracts_unknown,
        per_point,
    )
