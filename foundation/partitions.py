"""The unit of the engine's work: one contract-day (a (symbol, dt) partition of the lake)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Partition:
    """One contract-day to replay, and the fingerprint of everything its rows are built from
    (its inputs and the settings; written on every row, for incremental builds)."""

    symbol: str
    day: dt.date
    fingerprint: str
