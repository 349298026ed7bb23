"""The options chain of a contract-day as known when its first second is priced."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import duckdb
import numpy as np

from foundation.dbn_facts import PRICE_SCALE, UNDEF_PRICE
from foundation.exchange_time import parse_time, utc_ns
from gex.options_surface import OptionsChain


def options_chain(
    definitions: duckdb.DuckDBPyRelation,
    statistics: duckdb.DuckDBPyRelation,
    symbol: str,
    day: dt.date,
    cutoff_ns: int,
    options_tick: float,
) -> OptionsChain:
    """Options of an underlying that day as known when its first second is priced
    (`cutoff_ns`, chain_cutoff_ns): each option's latest definition received before then,
    and its latest open interest (stat_type 9) received before then. An option first defined
    later (listed during the session) takes its first definition, the one its records follow,
    and had no open contracts when the day's open interest was published: its open interest
    is 0, not unknown. A definition received after that changes nothing that day, so every
    second uses only what was known by then, and a live session reading the chain at any
    later moment gets this same chain."""
    records = definitions.filter(f"symbol = '{symbol}' and dt <= DATE '{day.isoformat()}'").project(
        "instrument_id, dt, record_index, raw_symbol, strike_price, instrument_class, "
        "expiration, unit_of_measure_qty, min_price_increment, ts_recv"
    )
    # in (instrument, dt, record order): the latest record before the cutoff wins, else the first
    by_instrument: dict[int, tuple[object, ...]] = {}
    first_defined_ns: dict[int, int] = {}
    for row in sorted(records.fetchall()):
        instrument, ts_recv = row[0], row[-1]
        if instrument not in by_instrument or ts_recv < cutoff_ns:
            by_instrument[instrument] = row[3:]
        first_defined_ns[instrument] = min(first_defined_ns.get(instrument, ts_recv), ts_recv)
    statistics_rows = statistics.filter(
        f"symbol = '{symbol}' and dt <= DATE '{day.isoformat()}' and stat_type = 9 "
        "and update_action = 1 "
        f"and ts_recv < {cutoff_ns}"
    ).project("instrument_id, ts_recv, record_index, quantity, dt")
    interest = {}
    published_ns = None  # when the day's open interest came (None: no statistics that day)
    for instrument, ts_recv, _, quantity, stat_day in sorted(statistics_rows.fetchall()):
        interest[instrument] = quantity
        if stat_day == day:
            published_ns = max(published_ns or ts_recv, ts_recv)

    def open_interest(instrument: int) -> float:
        if instrument in interest:
            return float(interest[instrument])
        if published_ns is not None and first_defined_ns[instrument] > published_ns:
            return 0.0
        return np.nan

    ids = sorted(by_instrument)
    rows = [by_instrument[i] for i in ids]
    tick = round(options_tick * PRICE_SCALE)
    return OptionsChain(
        instrument_ids=np.array(ids, dtype=np.int64),
        raw_symbols=[row[0] for row in rows],
        strikes=np.array([row[1] / PRICE_SCALE for row in rows]),
        is_call=np.array([row[2] == "C" for row in rows]),
        expiration_ns=np.array([row[3] for row in rows], dtype=np.int64),
        multiplier=np.array([row[4] / PRICE_SCALE for row in rows]),
        tick=np.array(
            [tick if row[5] in (None, UNDEF_PRICE) else row[5] for row in rows], dtype=np.int64
        ),
        open_interest=np.array([open_interest(i) for i in ids]),
    )


def chain_cutoff_ns(config: Mapping[str, Any], day: dt.date) -> int:
    """The first second the options are priced (the surface window's start): definitions and
    open interest count when received before it (options_chain), so every second's exposure
    uses only what was known by then, and a live session can price from that second on."""
    return utc_ns(
        day, parse_time(str(config["surface_window_start"])), str(config["exchange_timezone"])
    )
