"""Dealer-signed gamma exposure by strike and second (engine_gex_by_strike_1s), summed where the
per-option rows already are instead of in SQL over every option-second (a busy day's
gex_surface_1s spent most of its 11 s grouping 17 million option-seconds).

Per second and listed strike: calls, puts, and each of them 0DTE only, summed in instrument
order (the same inputs give the same bits) over the options whose exposure is known; NULL where
the strike lists options of that right and expiry set but none has a known exposure, so an
unknown sum never reads as a known zero. With the open interest per right and the second's
counts, which gex_surface_1s sums over strikes."""

from __future__ import annotations

import datetime as dt

import numba as nb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from book_engine.errors import EngineError
from foundation.arrow_columns import STRING_CODES, nan_as_null, repeated_date, repeated_string

GEX_BY_STRIKE_SCHEMA = pa.schema(
    [
        ("symbol", STRING_CODES),
        ("dt", pa.date32()),
        ("window_start", pa.timestamp("us")),
        ("strike_price", pa.float64()),
        ("call_gex", pa.float64()),
        ("put_gex", pa.float64()),
        ("call_gex_0dte", pa.float64()),
        ("put_gex_0dte", pa.float64()),
        ("call_open_interest", pa.int64()),
        ("put_open_interest", pa.int64()),
        ("options_listed", pa.int64()),
        ("options_in_exposure", pa.int64()),
        ("options_without_open_interest", pa.int64()),
        ("build_fingerprint", STRING_CODES),
    ]
)
# what the sums read of options_quotes_1s
EXPOSURE_INPUT_COLUMNS = (
    "window_start",
    "strike_price",
    "instrument_id",
    "option_right",
    "is_0dte",
    "open_interest",
    "gex",
)
# the four sums: calls, puts, then the same rights 0DTE only (right + 2)
_CALL, _PUT = 0, 1


@nb.njit(cache=True, inline="always")
def _add_option(g, right, zero_dte, open_interest, sign, gex, state):
    """One option's row into its strike's running state, in instrument order."""
    sums, known, listed, interest, counts = state
    counts[g, 0] += 1
    if np.isnan(open_interest):
        counts[g, 2] += 1
    else:
        interest[g, right] += np.int64(open_interest)
    known_gex = not np.isnan(gex)
    if known_gex:
        counts[g, 1] += 1
    for bucket in (right, right + 2):
        if bucket > _PUT and not zero_dte:
            continue
        listed[g, bucket] += 1
        if known_gex:
            known[g, bucket] += 1
            sums[g, bucket] += sign * gex


# nogil: dbt's threads run two engine models at once
@nb.njit(cache=True, nogil=True)
def strike_sums(
    window_start, strike_slot, instrument_rank, is_call, is_0dte, open_interest, gex, signs
):
    """Rows grouped by second (window_start non-decreasing), one per option and second, in any
    order within a second; `strike_slot` and `instrument_rank` the rank of the row's strike and
    instrument id among the day's; `open_interest` and `gex` NaN where unknown; `signs` the
    dealer sign of calls and puts. Per (second, strike), in strike order: the second's first
    row, the strike's slot, the four signed sums in instrument order (NaN where none is known
    but some are listed), open interest per right and the counts; first, -1, or the row of an
    option that appears twice in a second."""
    n = window_start.shape[0]
    slots = int(strike_slot.max()) + 1 if n else 0
    row_of = np.full(int(instrument_rank.max()) + 1 if n else 0, -1, np.int64)
    state = (
        np.zeros((slots, 4)),  # signed sums
        np.zeros((slots, 4), np.int64),  # options with a known gex
        np.zeros((slots, 4), np.int64),  # options listed
        np.zeros((slots, 2), np.int64),  # open interest per right
        np.zeros((slots, 3), np.int64),  # listed, in exposure, without open interest
    )
    sums, known, listed, interest, counts = state
    out_row = np.empty(n, np.int64)
    out_slot = np.empty(n, np.int64)
    out_sums = np.empty((n, 4))
    out_interest = np.empty((n, 2), np.int64)
    out_counts = np.empty((n, 3), np.int64)
    groups, a = 0, 0
    while a < n:
        b = a + 1
        while b < n and window_start[b] == window_start[a]:
            b += 1
        for r in range(a, b):  # a counting sort by instrument: no sort per second
            if row_of[instrument_rank[r]] >= 0:
                return r, out_row[:0], out_slot[:0], out_sums[:0], out_interest[:0], out_counts[:0]
            row_of[instrument_rank[r]] = r
        for rank in range(row_of.shape[0]):
            r = row_of[rank]
            if r < 0:
                continue
            row_of[rank] = -1
            right = _CALL if is_call[r] else _PUT
            _add_option(
                strike_slot[r], right, is_0dte[r], open_interest[r], signs[right], gex[r], state
            )
        for g in range(slots):
            if counts[g, 0] == 0:
                continue
            out_row[groups] = a
            out_slot[groups] = g
            for bucket in range(4):
                empty = listed[g, bucket] > 0 and known[g, bucket] == 0
                out_sums[groups, bucket] = np.nan if empty else sums[g, bucket]
            # element by element: a row assignment compiles a broadcast (seconds on a fresh
            # clone) for nothing
            for k in range(2):
                out_interest[groups, k] = interest[g, k]
                interest[g, k] = 0
            for k in range(3):
                out_counts[groups, k] = counts[g, k]
                counts[g, k] = 0
            for bucket in range(4):
                sums[g, bucket] = 0.0
                known[g, bucket] = 0
                listed[g, bucket] = 0
            groups += 1
        a = b
    return (
        -1,
        out_row[:groups],
        out_slot[:groups],
        out_sums[:groups],
        out_interest[:groups],
        out_counts[:groups],
    )


def gex_by_strike_batch(
    symbol: str,
    day: dt.date,
    quotes: pa.Table,
    call_sign: float,
    put_sign: float,
    fingerprint: str,
) -> pa.RecordBatch:
    """engine_gex_by_strike_1s rows of one day's options_quotes_1s rows
    (EXPOSURE_INPUT_COLUMNS); rows out of time order are put in it first."""
    micros = quotes["window_start"].cast(pa.int64()).to_numpy()
    if len(micros) > 1 and not (micros[1:] >= micros[:-1]).all():
        quotes = quotes.take(np.argsort(micros, kind="stable"))
        micros = quotes["window_start"].cast(pa.int64()).to_numpy()

    def floats(name: str) -> np.ndarray:
        return quotes[name].cast(pa.float64()).to_numpy(zero_copy_only=False)

    strikes = pc.unique(quotes["strike_price"]).sort()
    instruments = pc.unique(quotes["instrument_id"]).sort()
    result = strike_sums(
        micros,
        pc.index_in(quotes["strike_price"], value_set=strikes).to_numpy().astype(np.int64),
        pc.index_in(quotes["instrument_id"], value_set=instruments).to_numpy().astype(np.int64),
        pc.equal(quotes["option_right"], "C").to_numpy(zero_copy_only=False),
        quotes["is_0dte"].to_numpy(zero_copy_only=False),
        floats("open_interest"),
        floats("gex"),
        np.array([call_sign, put_sign], dtype=np.float64),
    )
    twice, rows, slots, sums, interest, counts = result
    if twice >= 0:
        row = int(twice)
        raise EngineError(
            f"options_quotes_1s symbol={symbol} dt={day}: instrument "
            f"{quotes['instrument_id'][row].as_py()} has two rows at "
            f"{quotes['window_start'][row].as_py()}"
        )
    n = len(rows)
    return pa.RecordBatch.from_arrays(
        [
            repeated_string(symbol, n),
            repeated_date(day, n),
            pa.array(micros[rows], pa.timestamp("us")),
            pa.array(strikes.to_numpy()[slots]),
            *[nan_as_null(sums[:, bucket]) for bucket in range(4)],
            pa.array(interest[:, _CALL]),
            pa.array(interest[:, _PUT]),
            *[pa.array(counts[:, column]) for column in range(3)],
            repeated_string(fingerprint, n),
        ],
        schema=GEX_BY_STRIKE_SCHEMA,
    )
