"""What the futures' definitions tell the engine: each instrument's tick size."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence

import duckdb

from book_engine.errors import EngineError, instrument_list


def definition_ticks(
    definitions: duckdb.DuckDBPyRelation,
) -> Callable[[str, dt.date, Sequence[int]], Mapping[int, int]]:
    """Tick size (price units) of each instrument: its latest definition on or before the day."""

    def ticks_for(symbol: str, day: dt.date, instrument_ids: Sequence[int]) -> Mapping[int, int]:
        ids = ", ".join(str(int(i)) for i in instrument_ids)
        rows = (
            definitions.filter(f"instrument_id in ({ids}) and dt <= DATE '{day.isoformat()}'")
            .project("instrument_id, dt, record_index, min_price_increment")
            .order("instrument_id, dt, record_index")
            .fetchall()
        )
        ticks = {int(instrument): int(tick) for instrument, _, _, tick in rows}
        missing = sorted({int(i) for i in instrument_ids} - ticks.keys())
        if missing:
            raise EngineError(
                f"futures_mbo symbol={symbol} dt={day}: instrument(s) {instrument_list(missing)} "
                "have no definition on or before that day; land the ES.FUT definition file of "
                "that day"
            )
        return ticks

    return ticks_for
