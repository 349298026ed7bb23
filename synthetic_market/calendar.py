"""Trading days, ES contract months, session times and option expiries of the synthetic market."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from foundation.exchange_time import day_start_ns, utc_ns

__all__ = ["day_start_ns", "utc_ns"]
QUARTERLY_MONTHS = {3: "H", 6: "M", 9: "U", 12: "Z"}
ROLL_DAYS_BEFORE_EXPIRY = 8  # CME's roll date: the Thursday eight days before expiry


def third_friday(year: int, month: int) -> dt.date:
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(4 - first.weekday()) % 7 + 14)


def trading_days(start: dt.date, sessions: int) -> list[dt.date]:
    """`sessions` consecutive weekdays from `start` (exchange holidays are not modelled)."""
    days: list[dt.date] = []
    day = start
    while len(days) < sessions:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


@dataclass(frozen=True)
class FuturesContract:
    symbol: str
    instrument_id: int
    expiry_date: dt.date

    @property
    def expiration_ns(self) -> int:
        """ES futures stop trading at 09:30 New York on the third Friday of the month."""
        return utc_ns(self.expiry_date, dt.time(9, 30))

    @property
    def roll_date(self) -> dt.date:
        return self.expiry_date - dt.timedelta(days=ROLL_DAYS_BEFORE_EXPIRY)


def quarterly_contract(year: int, month: int, instrument_id: int) -> FuturesContract:
    symbol = f"ES{QUARTERLY_MONTHS[month]}{year % 10}"
    return FuturesContract(symbol, instrument_id, third_friday(year, month))


def front_and_next(day: dt.date) -> tuple[FuturesContract, FuturesContract]:
    """The quarterly contract expiring next after `day` and the one after it."""
    candidates = []
    for year in (day.year, day.year + 1):
        for month in QUARTERLY_MONTHS:
            if third_friday(year, month) > day:
                candidates.append((year, month))
    (y1, m1), (y2, m2) = sorted(candidates)[:2]
    return quarterly_contract(y1, m1, 4001), quarterly_contract(y2, m2, 4002)


@dataclass(frozen=True)
class SessionTimes:
    """UTC nanosecond boundaries of one session date (the Databento daily file's day)."""

    day: dt.date

    @property
    def file_start(self) -> int:
        return day_start_ns(self.day)

    @property
    def file_end(self) -> int:
        return day_start_ns(self.day + dt.timedelta(days=1))

    def at(self, hour: int, minute: int = 0) -> int:
        return utc_ns(self.day, dt.time(hour, minute))


@dataclass(frozen=True)
class OptionExpiry:
    """One option expiry listed in a session: its date, CME root and expiration time."""

    root: str
    expiry_date: dt.date
    expiration_ns: int
    is_quarterly: bool


_WEEKDAY_LETTER = {0: "A", 1: "B", 2: "C", 3: "D"}


def weekly_root(expiry: dt.date) -> str:
    """CME roots of ES weeklies: EW1-EW4 on Fridays, E1A-E5A Mondays ... E1D-E5D Thursdays."""
    week = (expiry.day - 1) // 7 + 1
    if expiry.weekday() == 4:
        return f"EW{week}"
    return f"E{week}{_WEEKDAY_LETTER[expiry.weekday()]}"


def option_expiries(day: dt.date, underlying: FuturesContract) -> list[OptionExpiry]:
    """Expiries listed on `day`: the 0DTE daily, the next Friday weekly and the quarterly."""
    expiries = [
        OptionExpiry(weekly_root(day), day, utc_ns(day, dt.time(16, 0)), is_quarterly=False)
    ]
    friday = day + dt.timedelta(days=(4 - day.weekday()) % 7 or 7)
    if friday < underlying.expiry_date:
        expiries.append(
            OptionExpiry(weekly_root(friday), friday, utc_ns(friday, dt.time(16, 0)), False)
        )
    if underlying.expiry_date > day:
        expiries.append(
            OptionExpiry("ES", underlying.expiry_date, underlying.expiration_ns, is_quarterly=True)
        )
    return expiries


def option_symbol(
    expiry: OptionExpiry, underlying: FuturesContract, right: str, strike: int
) -> str:
    """`ESM4 C5000` for quarterlies, `E2CH4 P4990` style for weeklies and dailies."""
    month_code = underlying.symbol[2:]
    if expiry.is_quarterly:
        return f"{underlying.symbol} {right}{strike}"
    return f"{expiry.root}{month_code} {right}{strike}"
