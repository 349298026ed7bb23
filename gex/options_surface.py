"""Options of one contract-day through the book engine, to quotes, implied volatility, gamma
and gamma exposure per option and second (options_quotes_1s), and the zero-gamma level per
second.

Per option and second: the top of book after the second's last event (the same engine as the
futures), its mid, the implied volatility solved from the mid with Black-76 on the underlying
future's spot, gamma, and gex = gamma x open interest x multiplier (contracts of the future to
hedge per 1-point move, times the multiplier), unsigned: the dealer sign policy is applied
downstream and recorded there. Memory stays bounded by one partition and the engine's chunks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

import numba as nb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from book_engine.errors import EngineError
from book_engine.replay import MboColumns, WindowConfig, replay_batches
from foundation.arrow_columns import (
    STRING_CODES,
    categorical,
    nan_as_null,
    repeated_date,
    repeated_string,
)
from foundation.computed_ahead import computed_ahead
from foundation.exchange_time import day_start_ns, parse_time, utc_ns
from gex.black76 import MINUTES_PER_YEAR
from gex.profile import instrument_order_within_seconds, zero_gamma_levels
from gex.quote_kernel import IV_STATUSES, option_columns, option_rows, option_rows_out

SPLIT_ROWS = 100_000
"""A batch of at least this many option-seconds is priced on two threads (alternate blocks of
options each); fewer (a live second's) on one: a hand-over costs about 0.1 ms."""
_OTHER_CORE = ThreadPoolExecutor(1, thread_name_prefix="option-rows")

# never-null columns are required: Parquet then writes no definition level per value (the
# realistic day's quotes 2.62 -> 2.03 s), and a null there fails the write
OPTIONS_QUOTES_SCHEMA = pa.schema(
    [
        pa.field("symbol", STRING_CODES, nullable=False),
        pa.field("dt", pa.date32(), nullable=False),
        pa.field("window_start", pa.timestamp("us"), nullable=False),
        pa.field("instrument_id", pa.uint32(), nullable=False),
        pa.field("raw_symbol", STRING_CODES, nullable=False),
        pa.field("strike_price", pa.float64(), nullable=False),
        pa.field("option_right", STRING_CODES, nullable=False),
        pa.field("expiration", pa.timestamp("us"), nullable=False),
        pa.field("is_0dte", pa.bool_(), nullable=False),
        ("bid_price", pa.float64()),
        ("ask_price", pa.float64()),
        ("mid_price", pa.float64()),
        ("futures_spot", pa.float64()),
        pa.field("minutes_to_expiry", pa.float64(), nullable=False),
        ("implied_volatility", pa.float64()),
        pa.field("iv_status", STRING_CODES, nullable=False),
        ("iv_age_seconds", pa.int32()),
        ("gamma", pa.float64()),
        ("open_interest", pa.int64()),
        pa.field("multiplier", pa.float64(), nullable=False),
        ("gex", pa.float64()),
        pa.field("build_fingerprint", STRING_CODES, nullable=False),
    ]
)
ZERO_GAMMA_SCHEMA = pa.schema(
    [
        ("symbol", STRING_CODES),
        ("dt", pa.date32()),
        ("window_start", pa.timestamp("us")),
        ("zero_gamma_level", pa.float64()),
        ("zero_gamma_level_0dte", pa.float64()),
        ("build_fingerprint", STRING_CODES),
    ]
)


@dataclass(frozen=True)
class OptionsChain:
    """The options of one underlying on one day, as the definitions and statistics give them."""

    instrument_ids: np.ndarray  # int64
    raw_symbols: list[str]
    strikes: np.ndarray  # float64, index points
    is_call: np.ndarray  # bool
    expiration_ns: np.ndarray  # int64
    multiplier: np.ndarray  # float64 (50 for ES)
    tick: np.ndarray  # int64 price units: the engine's ladder grid
    open_interest: np.ndarray  # float64, NaN when missing

    def index(self) -> dict[int, int]:
        return {int(instrument): i for i, instrument in enumerate(self.instrument_ids)}

    def positions(self, instrument_ids: np.ndarray) -> np.ndarray:
        """Each instrument's position in the chain (its ids are sorted, options_chain); an
        instrument not in it is the caller's error (the replay takes the chain's only)."""
        positions, missing = _positions(self.instrument_ids, instrument_ids)
        if missing >= 0:
            raise EngineError(
                f"option {instrument_ids[missing]}, which the chain does not hold, reached the "
                "quotes"
            )
        return positions

    @cached_property
    def raw_symbol_labels(self) -> pa.StringArray:
        """`raw_symbols` as Arrow strings (made once: a second's quotes label every option)."""
        return pa.array(self.raw_symbols, pa.string())

    def ticks(self) -> dict[int, int]:
        """Each option's tick (price units): the engine's ladder grid. A record of an option
        not in the chain is the engine's error (no definition)."""
        return dict(zip(self.instrument_ids.tolist(), self.tick.tolist(), strict=True))

    def expiry_dates(self, timezone: str) -> np.ndarray:
        """The date each option expires on, in the exchange time zone (computed once)."""
        cache = self.__dict__.setdefault("_expiry_dates_by_zone", {})
        if timezone not in cache:
            cache[timezone] = self._expiry_dates(timezone)
        return cache[timezone]

    def _expiry_dates(self, timezone: str) -> np.ndarray:
        zone = ZoneInfo(timezone)
        return np.array(
            [
                dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).astimezone(zone).date()
                for ns in self.expiration_ns
            ],
            dtype=object,
        )


@nb.njit(cache=True, nogil=True)
def _positions(sorted_ids, ids):
    """Each id's position in `sorted_ids`, and the first id not there (-1: none). Rows come
    option after option within a second, so the next position is tried before a search."""
    positions = np.empty(ids.shape[0], np.int64)
    at = 0
    for i in range(ids.shape[0]):
        wanted = ids[i]
        if at + 1 < sorted_ids.shape[0] and sorted_ids[at + 1] == wanted:
            at += 1
        elif not (at < sorted_ids.shape[0] and sorted_ids[at] == wanted):
            at = np.searchsorted(sorted_ids, wanted)
            if at == sorted_ids.shape[0] or sorted_ids[at] != wanted:
                return positions, i
        positions[i] = at
    return positions, -1


@dataclass(frozen=True)
class SpotSeries:
    """The underlying future's spot by second (window starts in ns, sorted)."""

    seconds: np.ndarray
    spot: np.ndarray

    def at(self, window_start: np.ndarray) -> np.ndarray:
        if len(self.seconds) == 0:
            return np.full(len(window_start), np.nan)
        position = np.minimum(np.searchsorted(self.seconds, window_start), len(self.seconds) - 1)
        found = self.seconds[position] == window_start
        return np.where(found, self.spot[position], np.nan)


@dataclass(frozen=True)
class OptionsSettings:
    timezone: str
    surface_window: tuple[dt.time, dt.time]
    min_minutes_to_expiry: float
    rate: float
    iv_carry_seconds: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> OptionsSettings:
        """The settings a model receives in its `options_settings` config (dbt vars)."""
        return cls(
            timezone=str(config["exchange_timezone"]),
            surface_window=(
                parse_time(str(config["surface_window_start"])),
                parse_time(str(config["surface_window_end"])),
            ),
            min_minutes_to_expiry=float(config["min_minutes_to_expiry"]),
            rate=float(config["black76_rate"]),
            iv_carry_seconds=int(config["iv_carry_seconds"]),
        )

    def window_config(self, day: dt.date) -> WindowConfig:
        start, end = (utc_ns(day, t, self.timezone) for t in self.surface_window)
        return WindowConfig(
            range_start_ns=day_start_ns(day),
            range_end_ns=end,
            book_from_ns=start,
            book_to_ns=end,
            with_spot=False,
            quote_rows=True,
        )


OPTIONS_BOOK_SCHEMA = pa.schema(
    [
        pa.field("window_start", pa.timestamp("us"), nullable=False),
        pa.field("instrument_id", pa.uint32(), nullable=False),
        pa.field("bid_price", pa.int64(), nullable=False),
        pa.field("ask_price", pa.int64(), nullable=False),
        pa.field("book_valid", pa.bool_(), nullable=False),
    ]
)
"""Each option's top of book after each second's last event (the engine's price units), in
the replay's order: what the quotes need of the options' replay, which needs no spot."""


@nb.njit(cache=True, nogil=True)
def _quote_row_columns(rows, instrument_ids):
    """The replay's QUOTE_ROW rows as OPTIONS_BOOK_SCHEMA's columns, in one pass (the fields
    one by one took five strided passes: 0.17 s of the realistic day's 2.4 s replay)."""
    n = rows.shape[0]
    window_us = np.empty(n, np.int64)
    instrument = np.empty(n, np.uint32)
    bid = np.empty(n, np.int64)
    ask = np.empty(n, np.int64)
    valid = np.empty(n, np.bool_)
    for i in range(n):
        window_us[i] = rows[i]["window_start"] // 1000
        instrument[i] = instrument_ids[rows[i]["instrument"]]
        bid[i] = rows[i]["bid_price"]
        ask[i] = rows[i]["ask_price"]
        valid[i] = rows[i]["book_valid"] != 0
    return window_us, instrument, bid, ask, valid


def options_book_batches(
    symbol: str,
    day: dt.date,
    options: Iterable[MboColumns],
    chain: OptionsChain,
    settings: OptionsSettings,
) -> Iterator[pa.RecordBatch]:
    """OPTIONS_BOOK_SCHEMA rows of one contract-day: the book engine over its options, the
    day's records coming in batches (a partition's row groups), replayed as they load."""
    try:
        for chunk in replay_batches(options, chain.ticks(), settings.window_config(day)):
            if len(chunk.book_rows) == 0:
                continue
            window_us, instrument, bid, ask, valid = _quote_row_columns(
                chunk.book_rows, chunk.instrument_ids
            )
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array(window_us, pa.timestamp("us")),
                    pa.array(instrument),
                    pa.array(bid),
                    pa.array(ask),
                    pa.array(valid),
                ],
                schema=OPTIONS_BOOK_SCHEMA,
            )
    except EngineError as error:
        raise EngineError(f"options_mbo symbol={symbol} dt={day}: {error}") from error


def quote_batches(
    symbol: str,
    day: dt.date,
    options: Iterable[MboColumns],
    chain: OptionsChain,
    spot_by_second: SpotSeries,
    settings: OptionsSettings,
    fingerprint: str,
) -> Iterator[pa.RecordBatch]:
    """options_quotes_1s rows of one contract-day, from its options' records, with the
    underlying future's spot: the replay (run ahead on a thread of its own, beside the
    volatility and gamma), then the quotes."""
    book = computed_ahead(options_book_batches(symbol, day, options, chain, settings))
    return book_quote_batches(symbol, day, book, chain, spot_by_second, settings, fingerprint)


def book_quote_batches(
    symbol: str,
    day: dt.date,
    book: Iterable[pa.RecordBatch],
    chain: OptionsChain,
    spot_by_second: SpotSeries,
    settings: OptionsSettings,
    fingerprint: str,
) -> Iterator[pa.RecordBatch]:
    """options_quotes_1s rows of one contract-day from its options' book by second
    (OPTIONS_BOOK_SCHEMA batches in replay order, options_book_batches), with the underlying
    future's spot."""
    # per option: the last solved volatility (warm start, carried through quote gaps) and when
    last_sigma = np.full(len(chain.instrument_ids), np.nan)
    last_solved_ns = np.zeros(len(chain.instrument_ids), np.int64)
    for batch in book:
        if batch.num_rows == 0:
            continue
        option = chain.positions(batch.column("instrument_id").to_numpy())
        yield quote_batch(
            symbol,
            day,
            batch.column("window_start").cast(pa.int64()).to_numpy() * 1000,
            batch.column("bid_price").to_numpy(),
            batch.column("ask_price").to_numpy(),
            batch.column("book_valid").to_numpy(zero_copy_only=False).view(np.uint8),
            option,
            chain,
            spot_by_second,
            settings,
            fingerprint,
            (last_sigma, last_solved_ns),
        )


def quote_batch(
    symbol: str,
    day: dt.date,
    window_start: np.ndarray,
    bid_price: np.ndarray,
    ask_price: np.ndarray,
    book_valid: np.ndarray,
    option: np.ndarray,
    chain: OptionsChain,
    spot_by_second: SpotSeries,
    settings: OptionsSettings,
    fingerprint: str,
    last_solved: tuple[np.ndarray, np.ndarray],
) -> pa.RecordBatch:
    """options_quotes_1s rows of some option-seconds in time order (the engine's), given as
    the book's columns; `last_solved` is carried from one batch to the next."""
    # one layout for the kernel whoever calls (a replay chunk's fields, Arrow's read-only
    # buffers): contiguous and writable, so it is compiled once
    window_start, bid_price, ask_price, book_valid, option = (
        np.require(column, requirements=["C", "W"])
        for column in (window_start, bid_price, ask_price, book_valid, option)
    )
    floats, codes = option_rows_out(len(window_start))

    def rows_of(part: int, parts: int) -> None:
        option_rows(
            window_start,
            bid_price,
            ask_price,
            book_valid,
            option,
            chain.strikes,
            chain.is_call,
            chain.expiration_ns,
            chain.open_interest,
            chain.multiplier,
            spot_by_second.seconds,
            spot_by_second.spot,
            settings.rate,
            settings.min_minutes_to_expiry,
            settings.iv_carry_seconds * 1_000_000_000,
            *last_solved,
            floats,
            codes,
            part,
            parts,
        )

    if len(window_start) < SPLIT_ROWS:
        rows_of(0, 1)
    else:  # each option's rows depend on its own earlier rows only: half the options each
        other_half = _OTHER_CORE.submit(rows_of, 1, 2)
        rows_of(0, 2)
        other_half.result()
    bid, ask, mid, spot, minutes, sigma, option_gamma, exposure = floats
    status, age = codes
    keep = chain.expiration_ns[option] > window_start  # expired options have no rows
    if keep.all():
        keep = slice(None)  # the usual chunk: views, not copies of every column
    option = option[keep]
    n = len(option)
    instrument, strike, right, expiration_us, zero_dte, contracts, unknown, per_point = (
        option_columns(
            option,
            chain.instrument_ids,
            chain.strikes,
            chain.is_call,
            chain.expiration_ns,
            chain.expiry_dates(settings.timezone) == day,
            chain.open_interest,
            chain.multiplier,
        )
    )
    return pa.RecordBatch.from_arrays(
        [
            repeated_string(symbol, n),
            repeated_date(day, n),
            pa.array(window_start[keep] // 1000, pa.timestamp("us")),
            pa.array(instrument),
            categorical(option, chain.raw_symbol_labels),
            pa.array(strike),
            categorical(right, ["C", "P"]),
            pa.array(expiration_us, pa.timestamp("us")),
            pa.array(zero_dte),
            *[nan_as_null(column[keep]) for column in (bid, ask, mid, spot, minutes, sigma)],
            categorical(status[keep], IV_STATUSES),
            pa.array(age[keep], mask=age[keep] < 0),
            nan_as_null(option_gamma[keep]),
            pa.array(contracts, mask=unknown),
            pa.array(per_point),
            nan_as_null(exposure[keep]),
            repeated_string(fingerprint, n),
        ],
        schema=OPTIONS_QUOTES_SCHEMA,
    )


class WholeSeconds:
    """options_quotes_1s batches in time order, regrouped so that no second is split between
    two tables (a replay chunk can end mid-second): what per-second sums can take one table
    at a time."""

    def __init__(self, label: str) -> None:
        self.label = label  # names the partition in errors
        self._pending: list[pa.RecordBatch] = []  # the last second seen, maybe not complete
        self._pending_second = -1

    def add(self, batch: pa.RecordBatch) -> list[pa.Table]:
        """The seconds `batch` completes."""
        if batch.num_rows == 0:
            return []
        micros = batch.column("window_start").cast(pa.int64()).to_numpy()
        if micros[0] < self._pending_second or not (micros[1:] >= micros[:-1]).all():
            raise EngineError(f"{self.label}: options_quotes_1s rows out of time order")
        complete = []
        if micros[0] != self._pending_second:
            complete += self.finish()
        last_second = int(np.searchsorted(micros, micros[-1]))  # its first row
        if last_second > 0:
            complete.append(pa.Table.from_batches([*self._pending, batch.slice(0, last_second)]))
            self._pending = []
        self._pending.append(batch.slice(last_second))
        self._pending_second = int(micros[-1])
        return complete

    def finish(self) -> list[pa.Table]:
        """The rows held (the last second seen), if any."""
        held = [pa.Table.from_batches(self._pending)] if self._pending else []
        self._pending = []
        return held


@dataclass(frozen=True)
class ProfileSettings:
    half_width_points: float
    step_points: float
    rate: float
    call_sign: float
    put_sign: float

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ProfileSettings:
        """The zero-gamma profile's settings from the options models' config (dbt vars)."""
        return cls(
            half_width_points=float(config["zero_gamma_half_width_points"]),
            step_points=float(config["zero_gamma_step_points"]),
            rate=float(config["black76_rate"]),
            call_sign=float(config["dealer_sign_call"]),
            put_sign=float(config["dealer_sign_put"]),
        )


PROFILE_INPUT_COLUMNS = (
    "window_start",
    "instrument_id",
    "option_right",
    "is_0dte",
    "strike_price",
    "minutes_to_expiry",
    "implied_volatility",
    "open_interest",
    "multiplier",
    "futures_spot",
)


def profile_inputs(quotes: pa.Table) -> pa.Table:
    """The options_quotes_1s rows the zero-gamma profile counts (PROFILE_INPUT_COLUMNS): those
    with a volatility and an open interest."""
    return quotes.select(PROFILE_INPUT_COLUMNS).filter(
        pc.and_(pc.is_valid(quotes["implied_volatility"]), pc.is_valid(quotes["open_interest"]))
    )


def zero_gamma_batch(
    symbol: str, day: dt.date, quotes: pa.Table, settings: ProfileSettings, fingerprint: str
) -> pa.RecordBatch:
    """Zero-gamma levels per second (all expiries, and 0DTE only) from one day's
    options_quotes_1s rows (PROFILE_INPUT_COLUMNS) in any order: each second's sums run in
    instrument order, so the same rows give the same bits however they were read; rows without
    a volatility or open interest do not count."""
    if quotes.num_rows == 0:
        return pa.RecordBatch.from_pylist([], schema=ZERO_GAMMA_SCHEMA)
    micros = quotes["window_start"].cast(pa.int64()).to_numpy()
    by_time = None
    if len(micros) > 1 and not (micros[1:] >= micros[:-1]).all():
        by_time = np.argsort(micros, kind="stable")
        micros = micros[by_time]
    instruments = pc.unique(quotes["instrument_id"]).sort()
    rank = pc.index_in(quotes["instrument_id"], value_set=instruments).to_numpy().astype(np.int64)
    if by_time is not None:
        rank = rank[by_time]
    by_instrument, twice = instrument_order_within_seconds(micros, rank, len(instruments))
    if twice >= 0:
        row = int(twice if by_time is None else by_time[twice])
        raise EngineError(
            f"options_quotes_1s symbol={symbol} dt={day}: instrument "
            f"{quotes['instrument_id'][row].as_py()} has two rows at "
            f"{quotes['window_start'][row].as_py()}"
        )
    order = by_instrument if by_time is None else by_time[by_instrument]
    micros = micros[by_instrument]
    starts = np.concatenate([[0], np.flatnonzero(np.diff(micros)) + 1, [len(micros)]]).astype(
        np.int64
    )

    def floats(name: str) -> np.ndarray:
        return quotes[name].cast(pa.float64()).to_numpy(zero_copy_only=False)[order]

    calls = pc.equal(quotes["option_right"], "C").to_numpy(zero_copy_only=False)[order]
    sign = np.where(calls, settings.call_sign, settings.put_sign)
    weight = sign * floats("open_interest") * floats("multiplier")
    zero_dte = quotes["is_0dte"].to_numpy(zero_copy_only=False)[order]
    spot = floats("futures_spot")[starts[:-1]]
    common = (
        starts,
        floats("strike_price"),
        floats("minutes_to_expiry") / MINUTES_PER_YEAR,
        floats("implied_volatility"),
    )
    profile = (spot, settings.half_width_points, settings.step_points, settings.rate)
    levels = zero_gamma_levels(*common, weight, *profile)
    levels_0dte = zero_gamma_levels(*common, np.where(zero_dte, weight, np.nan), *profile)
    n = len(starts) - 1
    return pa.RecordBatch.from_arrays(
        [
            repeated_string(symbol, n),
            repeated_date(day, n),
            pa.array(micros[starts[:-1]], pa.timestamp("us")),
            nan_as_null(levels),
            nan_as_null(levels_0dte),
            repeated_string(fingerprint, n),
        ],
        schema=ZERO_GAMMA_SCHEMA,
    )
