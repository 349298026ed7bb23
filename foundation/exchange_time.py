"""Exchange wall-clock time (America/New_York by default) to UTC nanoseconds."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

NEW_YORK = "America/New_York"


def utc_ns(day: dt.date, local: dt.time, timezone: str = NEW_YORK) -> int:
    """Nanoseconds since the epoch of a wall-clock time on `day` in `timezone`."""
    moment = dt.datetime.combine(day, local, ZoneInfo(timezone))
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def day_start_ns(day: dt.date) -> int:
    """00:00 UTC of `day`: the start of a Databento daily file."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 10**9


def parse_time(value: str) -> dt.time:
    """'09:30' or '09:30:00'."""
    return dt.time.fromisoformat(value)
