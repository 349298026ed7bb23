"""Which contract a live day trades: the warehouse's selected contract of a day it holds (a
replayed day), else the volume leader of its latest session before the day."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from foundation.exchange_time import parse_time, utc_ns
from foundation.lake import Lake
from foundation.project import project_vars
from live.session import LiveError

NS = 1_000_000_000


def latest_contract(lake: Lake, day: dt.date) -> str:
    """The contract with the most volume in the warehouse's latest session before `day` (its
    selected contract, the day included or not): what a live session trades before the
    day's own volume can select. After a roll, that is the new contract from the session
    after the volume moved to it (the latest included day lags by the two days the selection
    trims on each side of a roll). A contract that expires before the day's session window
    opens is an error here (a warehouse not built since the roll), not a day without
    records."""
    symbol, session, expiration = _selection(
        lake,
        day,
        "select selection.selected_symbol, selection.dt, ("
        "    select max(definitions.expiration) from bronze.futures_definitions as definitions"
        "    where definitions.raw_symbol = selection.selected_symbol"
        ") from silver.contract_day_selection as selection"
        " where selection.dt < ? and selection.selected_symbol is not null"
        " order by selection.dt desc limit 1",
        "no session before it in the warehouse's contract selection",
    )
    variables = project_vars()
    timezone = str(variables["exchange_timezone"])
    opens = utc_ns(day, parse_time(str(variables["session_window_start"])), timezone)
    if expiration is not None and expiration <= opens:
        expired = dt.datetime.fromtimestamp(expiration / NS, ZoneInfo(timezone))
        raise LiveError(
            f"{day}: the warehouse's latest session before it ({session}) traded {symbol}, "
            f"which has expired by the day's session window ({expired:%Y-%m-%d %H:%M} "
            f"{timezone}): land and build the sessions since (or pass --symbol)"
        )
    return str(symbol)


def selected_contract(lake: Lake, day: dt.date) -> str:
    """The warehouse's selected contract for the day."""
    (symbol,) = _selection(
        lake,
        day,
        "select selected_symbol from silver.contract_day_selection where dt = ? and is_included",
        "not an included day of the warehouse's contract selection",
    )
    return str(symbol)


def _selection(lake: Lake, day: dt.date, sql: str, missing: str) -> tuple[Any, ...]:
    if not lake.duckdb_path.exists():
        raise LiveError(
            f"{lake.duckdb_path}: no warehouse to take the day's contract from (pass --symbol)"
        )
    connection = duckdb.connect(str(lake.duckdb_path), read_only=True)
    try:
        row = connection.execute(sql, [day]).fetchone()
    finally:
        connection.close()
    if row is None:
        raise LiveError(f"{day}: {missing} (pass --symbol)")
    return row
