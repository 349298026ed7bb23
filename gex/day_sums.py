"""What is summed per second from one day's options_quotes_1s rows: the zero-gamma level and the
gamma exposure by strike. One description of each serves the options engine (which sums them as
each whole second of quotes leaves it), their dbt models (which sum a day read back from the
warehouse when the engine's partition is missing) and live mode."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import pyarrow as pa

from gex.exposure_by_strike import EXPOSURE_INPUT_COLUMNS, GEX_BY_STRIKE_SCHEMA, gex_by_strike_batch
from gex.options_surface import (
    PROFILE_INPUT_COLUMNS,
    ZERO_GAMMA_SCHEMA,
    ProfileSettings,
    profile_inputs,
    zero_gamma_batch,
)


@dataclass(frozen=True)
class QuoteDaySums:
    """A table summed per second from options_quotes_1s: its engine partition name, schema, the
    quote columns it reads, what else its rows depend on (`settings_label`) and how a group of
    whole seconds' rows are summed (symbol, day, quotes, fingerprint)."""

    model: str
    schema: pa.Schema
    columns: tuple[str, ...]
    settings_label: str
    compute: Callable[[str, dt.date, pa.Table, str], pa.RecordBatch]

    def fingerprint(self, quotes_fingerprint: str) -> str:
        """A day is recomputed when its quotes or these settings change."""
        return f"{quotes_fingerprint}:{self.settings_label}"

    def rows(self, symbol: str, day: dt.date, quotes: pa.Table, fingerprint: str) -> pa.RecordBatch:
        """The sums of whole seconds of options_quotes_1s rows (any other columns ignored)."""
        return self.compute(symbol, day, quotes.select(list(self.columns)), fingerprint)


def _zero_gamma(
    symbol: str, day: dt.date, quotes: pa.Table, fingerprint: str, *, settings: ProfileSettings
) -> pa.RecordBatch:
    return zero_gamma_batch(symbol, day, profile_inputs(quotes), settings, fingerprint)


def _gex_by_strike(
    symbol: str, day: dt.date, quotes: pa.Table, fingerprint: str, *, settings: ProfileSettings
) -> pa.RecordBatch:
    return gex_by_strike_batch(
        symbol, day, quotes, settings.call_sign, settings.put_sign, fingerprint
    )


def zero_gamma_sums(settings: ProfileSettings) -> QuoteDaySums:
    """The zero-gamma levels per second (engine_zero_gamma_1s)."""
    return QuoteDaySums(
        "zero_gamma_1s",
        ZERO_GAMMA_SCHEMA,
        PROFILE_INPUT_COLUMNS,
        str(settings),
        partial(_zero_gamma, settings=settings),
    )


def gex_by_strike_sums(settings: ProfileSettings) -> QuoteDaySums:
    """Dealer-signed gamma exposure by strike and second (engine_gex_by_strike_1s): depends on
    the dealer signs only."""
    return QuoteDaySums(
        "gex_by_strike_1s",
        GEX_BY_STRIKE_SCHEMA,
        EXPOSURE_INPUT_COLUMNS,
        f"signs={settings.call_sign},{settings.put_sign}",
        partial(_gex_by_strike, settings=settings),
    )


def quote_day_sums(settings: ProfileSettings) -> tuple[QuoteDaySums, ...]:
    """Every table summed from the quotes, in the order live mode emits them."""
    return gex_by_strike_sums(settings), zero_gamma_sums(settings)
