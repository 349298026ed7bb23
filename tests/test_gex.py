"""Black-76, implied volatility, option quotes through the engine, gamma exposure and the
zero-gamma level, on known values and hand-built DBN records."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import math

import databento as db
import databento_dbn as dbn
import duckdb
import numpy as np
import pyarrow as pa
import pytest

from book_engine.errors import EngineError
from book_engine.replay import MboColumns
from foundation.arrow_columns import nan_as_null
from foundation.dbn_facts import F_LAST, F_SNAPSHOT, UNDEF_PRICE
from foundation.exchange_time import utc_ns
from gex.black76 import (
    MAX_VOLATILITY,
    MIN_VOLATILITY,
    MINUTES_PER_YEAR,
    _implied_volatility_and_d1,
    gamma,
    implied_volatility,
    price,
)
from gex.chain import chain_cutoff_ns, options_chain
from gex.exposure_by_strike import gex_by_strike_batch
from gex.options_surface import (
    PROFILE_INPUT_COLUMNS,
    OptionsChain,
    OptionsSettings,
    ProfileSettings,
    SpotSeries,
    WholeSeconds,
    quote_batches,
    zero_gamma_batch,
)
from gex.profile import (
    PARALLEL_FROM_SECONDS,
    _crossing,
    _exposure,
    zero_gamma_levels,
)
from gex.quote_kernel import FLOAT_COLUMNS, IV_STATUSES, option_rows, option_rows_out
from ingest.landing import ingest
from tests.dbn_fixtures import encode, mbo, metadata, px

# ---- Black-76 known values and the solver


def test_black76_known_values() -> None:
    """F = K = 100, T = 1, sigma = 0.2, r = 0.05: call 7.5771 (about 7.5775), gamma 0.018880."""
    one = np.ones(1)
    call = price(100 * one, 100 * one, one, 0.2 * one, 0.05, np.array([True]))[0]
    put = price(100 * one, 100 * one, one, 0.2 * one, 0.05, np.array([False]))[0]
    assert call == pytest.approx(7.5775, abs=5e-4)
    # at the money, put-call parity for futures: C - P = e^(-rT) (F - K) = 0
    assert put == pytest.approx(call, abs=1e-12)
    assert gamma(100 * one, 100 * one, one, 0.2 * one, 0.05)[0] == pytest.approx(0.018880, abs=1e-6)


def test_gamma_is_the_second_derivative_of_the_price() -> None:
    forward, strike, years, sigma, rate, bump = 5000.0, 5050.0, 0.05, 0.18, 0.04, 0.5

    def value(f: float) -> float:
        return price(
            np.array([f]), np.array([strike]), np.array([years]), np.array([sigma]), rate,
            np.array([True]),
        )[0]  # fmt: skip

    numeric = (value(forward + bump) - 2 * value(forward) + value(forward - bump)) / bump**2
    analytic = gamma(
        np.array([forward]), np.array([strike]), np.array([years]), np.array([sigma]), rate
    )[0]
    assert analytic == pytest.approx(numeric, rel=1e-5)


def test_price_to_volatility_to_price_round_trip() -> None:
    """A grid of strikes, expiries (0DTE minutes to two years), volatilities and both rights."""
    strikes = np.linspace(4000.0, 6000.0, 41)
    minutes = np.array([1.0, 30.0, 390.0, 1_440.0, 10_080.0, 43_200.0, 262_800.0, 1_051_200.0])
    sigmas = np.array([0.06, 0.12, 0.2, 0.45, 1.2])
    grid = np.array(np.meshgrid(strikes, minutes, sigmas, [0.0, 1.0])).reshape(4, -1)
    strike, years, sigma, is_call = grid[0], grid[1] / MINUTES_PER_YEAR, grid[2], grid[3] == 1.0
    forward = np.full(len(strike), 5000.0)
    for rate in (0.0, 0.05):
        premium = price(forward, strike, years, sigma, rate, is_call)
        intrinsic = np.exp(-rate * years) * np.where(
            is_call, np.maximum(forward - strike, 0), np.maximum(strike - forward, 0)
        )
        # where time value is lost to rounding, no volatility can be read back: not solvable
        readable = premium - intrinsic > 1e-6 * np.maximum(premium, 1.0)
        assert readable.sum() > 0.5 * len(strike)
        solved = implied_volatility(premium, forward, strike, years, rate, is_call)
        assert not np.isnan(solved[readable]).any()
        repriced = price(forward, strike, years, solved, rate, is_call)
        assert np.abs(repriced[readable] - premium[readable]).max() < 1e-9 * 5000
        vega_weighted = readable & (premium - intrinsic > 1e-2)
        assert np.abs(solved[vega_weighted] - sigma[vega_weighted]).max() < 1e-6


def test_volatility_is_nan_where_no_volatility_prices_the_option() -> None:
    forward, strike, years = np.full(5, 5000.0), np.full(5, 4900.0), np.full(5, 0.1)
    calls = np.ones(5, dtype=bool)
    prices = np.array([99.0, 100.0, 5000.0, 0.0, -1.0])  # under, at, above bounds; 0; negative
    assert np.isnan(implied_volatility(prices, forward, strike, years, 0.0, calls)).all()


@pytest.mark.parametrize("guess", [MIN_VOLATILITY * 1.5, 0.2, MAX_VOLATILITY * 0.9])
def test_a_price_just_outside_the_volatility_bounds_is_unsolvable_from_any_start(guess) -> None:
    """The solver prices a bound only when no step showed which side of it the price lies:
    prices just under the lowest volatility's and just over the highest's are NaN, and just
    inside solvable, whichever side the warm start approaches them from."""
    cases = [  # forward, strike, years, is_call: near the money, where the floor has time value
        (5000.0, 5000.0, 2.0, True),
        (5000.0, 5000.25, 1.0, False),
        (5000.0, 4999.75, 0.5, True),
        (5000.0, 5000.0, 1.0 / 365, False),
    ]
    for forward, strike, years, is_call in cases:
        f, k, t, c = (np.array([value]) for value in (forward, strike, years, is_call))
        floor = price(f, k, t, np.array([MIN_VOLATILITY]), 0.0, c)[0]
        ceiling = price(f, k, t, np.array([MAX_VOLATILITY]), 0.0, c)[0]
        intrinsic = max(forward - strike, 0.0) if is_call else max(strike - forward, 0.0)
        for target, solvable in (
            (floor - 1e-7 * (floor - intrinsic), False),
            (floor + 1e-3 * (floor - intrinsic), True),
            (ceiling * (1 + 1e-9), False),
            (ceiling * (1 - 1e-4), True),
        ):
            solved = _implied_volatility_and_d1(
                target, forward, strike, years, 0.0, is_call, guess
            )[0]
            assert np.isnan(solved) != solvable, (forward, strike, years, is_call, target)


# ---- option quotes through the engine, on hand-built records

DAY = dt.date(2024, 3, 12)  # New York is UTC-4 that day
ZONE = "America/New_York"
SECOND = 1_000_000_000
OPEN = utc_ns(DAY, dt.time(9, 0), ZONE)  # the surface window starts here
SNAPSHOT_AT = OPEN - 60 * SECOND
SETTINGS = OptionsSettings(
    timezone=ZONE,
    surface_window=(dt.time(9, 0), dt.time(9, 0, 4)),
    min_minutes_to_expiry=1.0,
    rate=0.0,
    iv_carry_seconds=60,
)
SPOT = 5000.0
MONTH_OUT = utc_ns(DAY + dt.timedelta(days=30), dt.time(16, 0), ZONE)
TODAY_CLOSE = utc_ns(DAY, dt.time(16, 0), ZONE)


def chain(*options: tuple[int, float, bool, int, float]) -> OptionsChain:
    """(instrument, strike, is_call, expiration ns, open interest or NaN) per option."""
    return OptionsChain(
        instrument_ids=np.array([o[0] for o in options], dtype=np.int64),
        raw_symbols=[f"ESM4 {'C' if o[2] else 'P'}{o[1]:g}" for o in options],
        strikes=np.array([o[1] for o in options]),
        is_call=np.array([o[2] for o in options]),
        expiration_ns=np.array([o[3] for o in options], dtype=np.int64),
        multiplier=np.full(len(options), 50.0),
        tick=np.full(len(options), px(0.05), dtype=np.int64),
        open_interest=np.array([o[4] for o in options]),
    )


def quote(instrument: int, bid: float | None, ask: float | None, at: int = SNAPSHOT_AT) -> list:
    """An option's snapshot: R, then its bid and ask orders (F_LAST on the last)."""
    records = [mbo(instrument, at, "R", flags=F_SNAPSHOT)]
    sides = [(side, p) for side, p in (("B", bid), ("A", ask)) if p is not None]
    for k, (side, p) in enumerate(sides):
        last = F_LAST if k == len(sides) - 1 else 0
        order_id = instrument * 10 + k
        records.append(mbo(instrument, at, "A", side, px(p), 10, order_id, flags=F_SNAPSHOT | last))
    return records


def columns(records: list) -> MboColumns:
    ids = sorted({r.instrument_id for r in records})
    header = metadata(
        dbn.Schema.MBO, DAY, DAY + dt.timedelta(days=1), {f"OPT{i}": i for i in ids}, "GLBX.MDP3"
    )
    store = db.DBNStore.from_bytes(io.BytesIO(encode(header, records)))
    return MboColumns.from_dbn(store.to_ndarray())


def quote_rows(
    records: list, options: OptionsChain, spot: SpotSeries | None = None
) -> list[dict[str, object]]:
    seconds = OPEN + SECOND * np.arange(4)
    spot = spot or SpotSeries(seconds, np.full(4, SPOT))
    batches = quote_batches("ESM4", DAY, [columns(records)], options, spot, SETTINGS, "test")
    return pa.Table.from_batches(list(batches)).to_pylist()


def black76_mid(strike: float, is_call: bool, sigma: float, expiration: int) -> float:
    years = (expiration - (OPEN + SECOND)) / 6e10 / MINUTES_PER_YEAR
    value = price(
        np.array([SPOT]), np.array([strike]), np.array([years]), np.array([sigma]), 0.0,
        np.array([is_call]),
    )[0]  # fmt: skip
    return round(value / 0.05) * 0.05


def test_positions_in_the_chain_in_any_order_and_an_unknown_option_named() -> None:
    options = chain(*[(100 + 7 * k, 5000.0 + k, True, MONTH_OUT, 1.0) for k in range(6)])
    ids = np.array([100, 107, 114, 135, 100, 128, 121, 121, 107, 100], dtype=np.uint32)
    assert options.positions(ids).tolist() == [0, 1, 2, 5, 0, 4, 3, 3, 1, 0]
    assert len(options.positions(ids[:0])) == 0
    for unknown in (99, 101, 136):
        with pytest.raises(EngineError, match=f"option {unknown}, which the chain does not hold"):
            options.positions(np.array([100, 107, unknown, 114], dtype=np.uint32))


@pytest.mark.parametrize("rows", [0, 1, 7, 8, 9, 16, 17, 1001])
def test_float_columns_hold_nan_as_null(rows: int) -> None:
    """What pa.array(from_pandas=True) gives, whatever the length and where the NaNs fall."""
    values = np.random.default_rng(rows).normal(size=rows)
    for nan_share in (0.0, 0.3, 1.0):
        some = values.copy()
        some[np.random.default_rng(rows + 1).random(rows) < nan_share] = np.nan
        array = nan_as_null(some)
        assert array.equals(pa.array(some, from_pandas=True))
        assert array.null_count == np.isnan(some).sum()


def test_pricing_half_the_options_on_each_of_two_threads_gives_the_same_bits() -> None:
    """Every column, and the volatility each option carries to the next batch, are those of
    one pass over all the rows, whichever thread prices which option (quote_batch splits a
    batch of SPLIT_ROWS or more)."""
    rng = np.random.default_rng(3)
    strikes = 4500.0 + 25.0 * np.arange(41)  # blocks of 16, 16 and 9: rows do not alternate
    options = chain(
        *[
            (10 + k, strikes[k], k % 3 != 0, MONTH_OUT, np.nan if k == 5 else 100.0 * k)
            for k in range(41)
        ]
    )
    seconds = 120
    window_start = np.repeat(OPEN + SECOND * np.arange(seconds), 41)
    option = np.tile(np.arange(41), seconds)
    value = np.array([black76_mid(strikes[o], o % 3 != 0, 0.18, MONTH_OUT) for o in option])
    half_spread = 0.05 * rng.integers(0, 3, len(option))
    bid_price = np.array([px(v - h) for v, h in zip(value, half_spread, strict=True)])
    ask_price = np.array([px(v + h) for v, h in zip(value, half_spread, strict=True)])
    gone = rng.random(len(option)) < 0.1  # one-sided quotes: carried volatilities
    bid_price[gone] = UNDEF_PRICE
    book_valid = (rng.random(len(option)) > 0.02).astype(np.uint8)
    spot = SpotSeries(OPEN + SECOND * np.arange(seconds), SPOT + rng.normal(0, 2, seconds))

    def priced(parts: int) -> tuple[list[np.ndarray], np.ndarray]:
        last = (np.full(41, np.nan), np.zeros(41, np.int64))
        floats, codes = option_rows_out(len(option))
        for part in range(parts):
            option_rows(
                window_start, bid_price, ask_price, book_valid, option, options.strikes,
                options.is_call, options.expiration_ns, options.open_interest,
                options.multiplier, spot.seconds, spot.spot, SETTINGS.rate,
                SETTINGS.min_minutes_to_expiry, SETTINGS.iv_carry_seconds * SECOND, *last,
                floats, codes, part, parts,
            )  # fmt: skip
        return [*floats, *codes], last[0]

    (one, carried_one), (two, carried_two) = priced(1), priced(2)
    for column_one, column_two in zip(one, two, strict=True):
        assert column_one.tobytes() == column_two.tobytes()
    assert carried_one.tobytes() == carried_two.tobytes()
    statuses = set(one[len(FLOAT_COLUMNS)].tolist())
    assert {IV_STATUSES.index(name) for name in ("ok", "carried", "invalid_book")} <= statuses


def test_quotes_volatility_gamma_and_exposure_of_a_chain() -> None:
    call_mid = black76_mid(5000, True, 0.2, MONTH_OUT)
    put_mid = black76_mid(4950, False, 0.2, MONTH_OUT)
    options = chain(
        (11, 5000.0, True, MONTH_OUT, 1200.0),
        (12, 4950.0, False, MONTH_OUT, 800.0),
        (13, 5100.0, True, MONTH_OUT, math.nan),  # no open interest in the statistics
        (14, 4900.0, False, MONTH_OUT, 50.0),  # crossed book
        (15, 4000.0, True, MONTH_OUT, 50.0),  # mid under intrinsic value
        (16, 5200.0, True, MONTH_OUT, 50.0),  # bid only
    )
    records = (
        quote(11, call_mid - 0.5, call_mid + 0.5)
        + quote(12, put_mid - 0.5, put_mid + 0.5)
        + quote(13, 20.0, 21.0)
        + quote(14, 30.0, 29.5)
        + quote(15, 990.0, 999.9)
        + quote(16, 3.0, None)
    )
    rows = quote_rows(records, options)
    assert len(rows) == 6 * 4  # every option, every second of the window
    second = {r["instrument_id"]: r for r in rows if r["window_start"].second == 1}

    call = second[11]
    assert (call["iv_status"], call["option_right"], call["is_0dte"]) == ("ok", "C", False)
    assert call["mid_price"] == pytest.approx(call_mid)
    assert call["implied_volatility"] == pytest.approx(0.2, abs=2e-4)  # mid rounded to 0.05
    years = call["minutes_to_expiry"] / MINUTES_PER_YEAR
    assert call["minutes_to_expiry"] == pytest.approx((MONTH_OUT - OPEN - 2 * SECOND) / 6e10)
    expected_gamma = gamma(
        np.array([SPOT]), np.array([5000.0]), np.array([years]),
        np.array([call["implied_volatility"]]), 0.0,
    )[0]  # fmt: skip
    assert call["gamma"] == pytest.approx(expected_gamma, rel=1e-12)
    assert call["gex"] == pytest.approx(expected_gamma * 1200 * 50, rel=1e-12)
    assert second[12]["implied_volatility"] == pytest.approx(0.2, abs=3e-4)

    missing = second[13]
    assert missing["iv_status"] == "ok"
    assert missing["gamma"] > 0
    assert missing["open_interest"] is None
    assert missing["gex"] is None

    crossed = second[14]
    assert crossed["iv_status"] == "crossed"
    assert crossed["mid_price"] is None
    assert crossed["implied_volatility"] is None
    assert crossed["gex"] is None

    assert second[15]["iv_status"] == "below_intrinsic"
    assert second[15]["implied_volatility"] is None
    assert second[16]["iv_status"] == "no_quote"
    assert second[16]["ask_price"] is None


def test_zero_dte_floor_and_expired_options() -> None:
    """0DTE to the real expiry timestamp; in its last minute T is floored; once expired the
    option has no rows."""
    soon = OPEN + 2 * SECOND  # expires inside the window
    options = chain((21, 5000.0, True, TODAY_CLOSE, 10.0), (22, 5000.0, False, soon, 10.0))
    rows = quote_rows(quote(21, 14.0, 15.0) + quote(22, 0.5, 1.0), options)
    today = [r for r in rows if r["instrument_id"] == 21]
    assert all(r["is_0dte"] for r in today)
    assert len(today) == 4
    assert today[0]["minutes_to_expiry"] == pytest.approx(7 * 60 - 1 / 60)
    expiring = [r for r in rows if r["instrument_id"] == 22]
    assert [r["window_start"].second for r in expiring] == [0, 1]
    assert [r["minutes_to_expiry"] for r in expiring] == [1.0, 1.0]


def test_second_without_futures_spot_is_flagged() -> None:
    options = chain((31, 5000.0, True, MONTH_OUT, 10.0))
    seconds = OPEN + SECOND * np.array([0, 1, 3])  # the future had no valid book at second 2
    rows = quote_rows(quote(31, 60.0, 61.0), options, SpotSeries(seconds, np.full(3, SPOT)))
    assert [r["iv_status"] for r in rows] == ["ok", "ok", "no_spot", "ok"]
    assert rows[2]["futures_spot"] is None
    assert rows[2]["gex"] is None


def test_option_book_before_its_snapshot_completes_is_invalid() -> None:
    options = chain((41, 5000.0, True, MONTH_OUT, 10.0))
    # an R without F_SNAPSHOT empties the book; it stays invalid until rebuilt
    records = [*quote(41, 60.0, 61.0), mbo(41, OPEN + SECOND + SECOND // 2, "R")]
    rows = quote_rows(records, options)
    assert [r["iv_status"] for r in rows] == ["ok", "invalid_book", "invalid_book", "invalid_book"]


def test_a_quote_gap_carries_the_last_volatility_within_its_age_limit() -> None:
    """The bid leaves at 1.5 s: seconds 1-3 carry second 0's volatility, repriced at each
    second's spot, up to `iv_carry_seconds` old; after that the option has no volatility."""
    mid = black76_mid(5000, True, 0.2, MONTH_OUT)
    options = chain((71, 5000.0, True, MONTH_OUT, 100.0))
    records = [
        *quote(71, mid - 0.5, mid + 0.5),
        mbo(71, OPEN + 3 * SECOND // 2, "C", "B", px(mid - 0.5), 10, 710),
    ]
    seconds = OPEN + SECOND * np.arange(4)
    moving = SpotSeries(seconds, np.array([SPOT, SPOT, SPOT + 10, SPOT + 20]))
    rows = quote_rows(records, options, moving)
    assert [r["iv_status"] for r in rows] == ["ok", "carried", "carried", "carried"]
    assert [r["iv_age_seconds"] for r in rows] == [0, 1, 2, 3]
    assert {r["implied_volatility"] for r in rows} == {rows[0]["implied_volatility"]}
    years = rows[2]["minutes_to_expiry"] / MINUTES_PER_YEAR
    repriced = gamma(
        np.array([SPOT + 10]), np.array([5000.0]), np.array([years]),
        np.array([rows[0]["implied_volatility"]]), 0.0,
    )[0]  # fmt: skip
    assert rows[2]["gamma"] == pytest.approx(repriced, rel=1e-12)
    assert rows[2]["gex"] == pytest.approx(repriced * 100 * 50, rel=1e-12)
    assert rows[2]["mid_price"] is None

    short = dataclasses.replace(SETTINGS, iv_carry_seconds=1)
    batches = quote_batches("ESM4", DAY, [columns(records)], options, moving, short, "test")
    limited = pa.Table.from_batches(list(batches)).to_pylist()
    assert [r["iv_status"] for r in limited] == ["ok", "carried", "no_quote", "no_quote"]
    assert [r["gex"] is None for r in limited] == [False, False, True, True]


def test_an_invalid_book_or_a_second_without_spot_carries_nothing() -> None:
    options = chain((72, 5000.0, True, MONTH_OUT, 10.0))
    records = [*quote(72, 60.0, 61.0), mbo(72, OPEN + 3 * SECOND // 2, "R")]
    assert [r["iv_status"] for r in quote_rows(records, options)] == ["ok"] + ["invalid_book"] * 3
    gap = [*quote(72, 60.0, 61.0), mbo(72, OPEN + 3 * SECOND // 2, "C", "B", px(60.0), 10, 720)]
    spot = SpotSeries(OPEN + SECOND * np.array([0, 2]), np.full(2, SPOT))
    statuses = [r["iv_status"] for r in quote_rows(gap, options, spot)]
    assert statuses == ["ok", "no_quote", "carried", "no_quote"]


def test_an_option_without_open_contracts_has_exposure_zero_whatever_its_volatility() -> None:
    """Open interest 0 (an option listed after the day's statistics): gamma x 0 is 0 even in a
    second without a volatility, so the strike's sum stays known."""
    options = chain((73, 5000.0, True, MONTH_OUT, 0.0), (74, 5000.0, False, MONTH_OUT, 0.0))
    records = [*quote(73, 60.0, 61.0), *quote(74, 3.0, None), mbo(73, OPEN + 3 * SECOND // 2, "R")]
    spot = SpotSeries(OPEN + SECOND * np.array([0, 1, 3]), np.full(3, SPOT))
    rows = quote_rows(records, options, spot)
    call = [r for r in rows if r["instrument_id"] == 73]
    assert [r["iv_status"] for r in call] == ["ok", "invalid_book", "invalid_book", "invalid_book"]
    assert call[0]["gamma"] > 0
    put = [r for r in rows if r["instrument_id"] == 74]
    assert [r["iv_status"] for r in put] == ["no_quote"] * 4
    assert {r["implied_volatility"] for r in put} == {None}
    assert [r["gex"] for r in call + put] == [0.0] * 8
    assert {r["open_interest"] for r in rows} == {0}


def test_option_without_definition_is_an_error_naming_partition_and_instrument() -> None:
    options = chain((51, 5000.0, True, MONTH_OUT, 10.0))
    with pytest.raises(EngineError, match=r"symbol=ESM4 dt=2024-03-12.*\[777\]"):
        quote_rows(quote(51, 60.0, 61.0) + quote(777, 1.0, 2.0), options)


def test_later_records_do_not_change_earlier_quotes() -> None:
    options = chain((61, 5000.0, True, MONTH_OUT, 10.0), (62, 4950.0, False, MONTH_OUT, 20.0))
    base = quote(61, 60.0, 61.0) + quote(62, 40.0, 41.0)
    later = [
        mbo(61, OPEN + 2 * SECOND + 5, "C", "B", px(60.0), 10, 610),
        mbo(62, OPEN + 2 * SECOND + 9, "A", "A", px(40.5), 3, 999),
    ]
    before = [r for r in quote_rows(base, options) if r["window_start"].second < 2]
    after = quote_rows(base + later, options)
    assert [r for r in after if r["window_start"].second < 2] == before
    changed = [r for r in after if r["window_start"].second == 2]
    assert {r["instrument_id"]: r["iv_status"] for r in changed} == {61: "carried", 62: "ok"}


# ---- the chain from bronze: definitions and open interest


def test_open_interest_is_the_latest_value_before_the_session(tmp_path) -> None:
    connection = duckdb.connect()
    session_start = utc_ns(DAY, dt.time(9, 30), ZONE)
    midnight = utc_ns(DAY, dt.time(0, 0), ZONE)
    day_before = midnight - 86_400 * SECOND
    connection.execute(
        "create table definitions as select * from (values "
        f"(11, DATE '2024-03-11', 0, 'ESM4 C5000', {px(5000)}, 'C', 10, {px(50)}, {UNDEF_PRICE}, "
        f"{day_before}),"
        f"(11, DATE '2024-03-12', 0, 'ESM4 C5000', {px(5000)}, 'C', 20, {px(50)}, {UNDEF_PRICE}, "
        f"{midnight}),"
        f"(12, DATE '2024-03-12', 1, 'ESM4 P4950', {px(4950)}, 'P', 20, {px(50)}, {px(0.05)}, "
        f"{midnight}),"
        # listed after the day's open interest was published: no open contracts then
        f"(13, DATE '2024-03-12', 2, 'ESM4 C5300', {px(5300)}, 'C', 20, {px(50)}, {px(0.05)}, "
        f"{session_start - 1_800 * SECOND})"
        ") t(instrument_id, dt, record_index, raw_symbol, strike_price, instrument_class, "
        "expiration, unit_of_measure_qty, min_price_increment, ts_recv)"
    )
    connection.execute("alter table definitions add column symbol varchar default 'ESM4'")
    connection.execute(
        "create table statistics as select * from (values "
        f"(11, DATE '2024-03-11', {session_start - 86_400 * SECOND}, 0, 9, 1, 900),"
        f"(11, DATE '2024-03-12', {session_start - 3_600 * SECOND}, 0, 9, 1, 1000),"
        f"(11, DATE '2024-03-12', {session_start + SECOND}, 1, 9, 1, 5555),"  # during the session
        f"(12, DATE '2024-03-12', {session_start - SECOND}, 2, 3, 1, 7)"  # not open interest
        ") t(instrument_id, dt, ts_recv, record_index, stat_type, update_action, quantity)"
    )
    connection.execute("alter table statistics add column symbol varchar default 'ESM4'")
    options = options_chain(
        connection.table("definitions"),
        connection.table("statistics"),
        "ESM4",
        DAY,
        session_start,
        0.05,
    )
    assert options.instrument_ids.tolist() == [11, 12, 13]
    assert options.expiration_ns.tolist() == [20, 20, 20]  # the latest definition wins
    assert options.strikes.tolist() == [5000.0, 4950.0, 5300.0]
    assert options.is_call.tolist() == [True, False, True]
    assert options.multiplier.tolist() == [50.0, 50.0, 50.0]
    # UNDEF tick: the options_tick_size
    assert options.tick.tolist() == [px(0.05), px(0.05), px(0.05)]
    assert options.open_interest[0] == 1000
    assert math.isnan(options.open_interest[1])  # defined before, no statistic: unknown
    assert options.open_interest[2] == 0


def test_definitions_count_when_received_before_the_first_second_priced() -> None:
    """A definition received after the cutoff changes nothing that day: no second uses a
    definition from its future, and a live session reading the chain later gets the same
    chain. An option listed after the cutoff takes its first definition."""
    connection = duckdb.connect()
    cutoff = utc_ns(DAY, dt.time(9, 0), ZONE)
    midnight = utc_ns(DAY, dt.time(0, 0), ZONE)
    hour = 3_600 * SECOND

    def chain_read_at(moment_ns: int) -> OptionsChain:
        """The chain from the definitions received before `moment_ns` (what live holds)."""
        known = connection.table("definitions").filter(f"ts_recv < {moment_ns}")
        return options_chain(known, connection.table("statistics"), "ESM4", DAY, cutoff, 0.05)

    connection.execute(
        "create table definitions as select * from (values "
        f"(11, 0, 'ESM4 C5000', {px(5000)}, 'C', 10, {px(50)}, {midnight}),"
        f"(11, 1, 'ESM4 C5000', {px(5000)}, 'C', 20, {px(50)}, {cutoff - SECOND}),"
        f"(11, 2, 'ESM4 C5000', {px(5000)}, 'C', 30, {px(50)}, {cutoff}),"  # at the cutoff
        f"(13, 3, 'ESM4 C5300', {px(5300)}, 'C', 20, {px(50)}, {cutoff + hour}),"  # listed
        f"(13, 4, 'ESM4 C5305', {px(5305)}, 'C', 40, {px(5)}, {cutoff + 2 * hour})"
        ") t(instrument_id, record_index, raw_symbol, strike_price, instrument_class, "
        "expiration, unit_of_measure_qty, ts_recv)"
    )
    connection.execute(
        f"alter table definitions add column min_price_increment bigint default {UNDEF_PRICE}"
    )
    connection.execute("alter table definitions add column dt date default DATE '2024-03-12'")
    connection.execute("alter table definitions add column symbol varchar default 'ESM4'")
    connection.execute(
        "create table statistics (instrument_id bigint, dt date, ts_recv bigint, "
        "record_index bigint, stat_type bigint, update_action bigint, quantity bigint, "
        "symbol varchar)"
    )
    day_end = midnight + 24 * hour
    options = chain_read_at(day_end)
    assert options.instrument_ids.tolist() == [11, 13]
    assert options.expiration_ns.tolist() == [20, 20]
    assert options.raw_symbols == ["ESM4 C5000", "ESM4 C5300"]
    assert options.strikes.tolist() == [5000.0, 5300.0]
    assert options.multiplier.tolist() == [50.0, 50.0]
    # live reads the chain when an option first shows up: after its listing, the same chain
    for moment in (cutoff + hour + SECOND, cutoff + 2 * hour + SECOND):
        read = chain_read_at(moment)
        assert read.instrument_ids.tolist() == [11, 13]
        assert read.expiration_ns.tolist() == options.expiration_ns.tolist()
        assert read.strikes.tolist() == options.strikes.tolist()


def test_open_interest_counts_when_received_before_the_first_second_priced() -> None:
    """The surface window opens at 09:00 New York (13:00 UTC in March after the clocks
    change): a value received at 09:10 would otherwise reach back to the 09:00 seconds."""
    config = {"surface_window_start": "09:00", "exchange_timezone": "America/New_York"}
    cutoff = chain_cutoff_ns(config, dt.date(2024, 3, 12))
    assert cutoff == utc_ns(dt.date(2024, 3, 12), dt.time(9, 0), "America/New_York")
    assert cutoff == int(dt.datetime(2024, 3, 12, 13, 0, tzinfo=dt.UTC).timestamp()) * 10**9


def test_real_option_definitions_give_the_chain(shared_data, raw, lake) -> None:
    """The real ES.OPT definition sample: 'ESM4 C4250' and 'ESM4 C3550' on ESM4, no open
    interest in the sample (so flagged missing)."""
    source = shared_data / "definition-glbx-es-opt.dbn.zst"
    (raw / source.name).symlink_to(source)
    ingest(raw, lake, workers=1)
    records = db.DBNStore.from_file(source).to_ndarray()
    connection = duckdb.connect()
    definitions = connection.sql(f"select * from {lake.read_bronze_sql('options_definitions')}")
    statistics = connection.sql(
        "select 'ESM4' as symbol, DATE '2024-01-01' as dt, 0::uinteger as instrument_id, "
        "0::bigint as ts_recv, 0 as record_index, 9 as stat_type, 1 as update_action, "
        "0 as quantity where false"
    )
    day = max(definitions.project("dt").fetchnumpy()["dt"]).astype(dt.date)
    options = options_chain(definitions, statistics, "ESM4", day, 2**62, 0.05)
    assert sorted(options.raw_symbols) == ["ESM4 C3550", "ESM4 C4250"]
    by_id = {int(r["instrument_id"]): r for r in records}
    for i, instrument in enumerate(options.instrument_ids):
        record = by_id[int(instrument)]
        assert options.strikes[i] == record["strike_price"] / 1e9
        assert options.expiration_ns[i] == record["expiration"]
        assert options.is_call[i]
        assert options.multiplier[i] == 50.0
    assert np.isnan(options.open_interest).all()


# ---- the zero-gamma level


def profile_quotes(
    strikes: list[float],
    calls: list[bool],
    interest: list[float],
    spot: float = SPOT,
    minutes: float = 7 * 1440.0,
) -> pa.Table:
    n = len(strikes)
    values = {
        "window_start": pa.array([dt.datetime(2024, 3, 12, 14, 0)] * n, pa.timestamp("us")),
        "instrument_id": pa.array(range(100, 100 + n), pa.uint32()),
        "option_right": ["C" if c else "P" for c in calls],
        "is_0dte": [False] * n,
        "strike_price": strikes,
        "minutes_to_expiry": [minutes] * n,
        "implied_volatility": [0.2] * n,
        "open_interest": interest,
        "multiplier": [50.0] * n,
        "futures_spot": [spot] * n,
    }
    return pa.table({name: values[name] for name in PROFILE_INPUT_COLUMNS})


PROFILE = ProfileSettings(
    half_width_points=100.0, step_points=5.0, rate=0.0, call_sign=1.0, put_sign=-1.0
)


def net_exposure(table: pa.Table, forward: float) -> float:
    rows = table.to_pylist()
    total = 0.0
    for r in rows:
        g = gamma(
            np.array([forward]), np.array([r["strike_price"]]),
            np.array([r["minutes_to_expiry"] / MINUTES_PER_YEAR]), np.array([0.2]), 0.0,
        )[0]  # fmt: skip
        sign = 1.0 if r["option_right"] == "C" else -1.0
        total += sign * g * r["open_interest"] * r["multiplier"]
    return total


def test_zero_gamma_lies_between_the_strikes_where_the_profile_changes_sign() -> None:
    """Puts at 4950 (dealers short: -), calls at 5050 (+): below 4950 the profile is
    negative, above 5050 positive; it crosses zero once between them."""
    table = profile_quotes([4950.0, 5050.0], [False, True], [1000.0, 1000.0])
    level = zero_gamma_batch("ESM4", DAY, table, PROFILE, "test").to_pylist()[0]
    zero = level["zero_gamma_level"]
    assert net_exposure(table, 4950.0) < 0 < net_exposure(table, 5050.0)
    assert 4950.0 < zero < 5050.0
    assert net_exposure(table, zero - 0.01) < 0 < net_exposure(table, zero + 0.01)
    assert level["zero_gamma_level_0dte"] is None  # no 0DTE options


def test_zero_gamma_is_the_crossing_nearest_spot_or_none() -> None:
    # one day out, calls at 4900 and 5100 around puts at 5000: two crossings, spot nearer
    # the upper one
    table = profile_quotes(
        [4900.0, 5000.0, 5100.0], [True, False, True], [900, 1000, 900], 5040, 1440.0
    )
    assert net_exposure(table, 5000.0) < 0 < net_exposure(table, 4900.0)
    zero = zero_gamma_batch("ESM4", DAY, table, PROFILE, "test").to_pylist()[0]["zero_gamma_level"]
    assert 5000.0 < zero < 5100.0
    assert abs(net_exposure(table, zero)) < 1e-6 * abs(net_exposure(table, 5100.0))
    calls_only = profile_quotes([4950.0, 5050.0], [True, True], [1000.0, 1000.0])
    level = zero_gamma_batch("ESM4", DAY, calls_only, PROFILE, "test").to_pylist()[0]
    assert level["zero_gamma_level"] is None


def test_zero_gamma_is_the_same_bits_whatever_the_order_of_its_rows() -> None:
    """Each second's options are summed in instrument order, however the rows were read; an
    option twice in a second is an error naming it."""
    rng = np.random.default_rng(11)
    n = 60
    seconds = []
    for second in range(8):
        table = profile_quotes(
            list(rng.uniform(4800, 5200, n).round()),
            list(rng.random(n) < 0.5),
            list(10 ** rng.uniform(0, 6, n)),  # magnitudes apart: the sum's order shows
            spot=float(rng.uniform(4980, 5020)),
        )
        at = dt.datetime(2024, 3, 12, 14, 0, second)
        table = table.set_column(0, "window_start", pa.array([at] * n, pa.timestamp("us")))
        volatility = table.schema.get_field_index("implied_volatility")
        seconds.append(
            table.set_column(volatility, "implied_volatility", pa.array(rng.uniform(0.1, 0.4, n)))
        )
    ordered = pa.concat_tables(seconds)
    expected = zero_gamma_batch("ESM4", DAY, ordered, PROFILE, "test")
    shuffled = ordered.take(rng.permutation(ordered.num_rows))
    assert zero_gamma_batch("ESM4", DAY, shuffled, PROFILE, "test").equals(expected)
    twice = pa.concat_tables([ordered, ordered.slice(65, 1)])
    with pytest.raises(EngineError, match=r"dt=2024-03-12: instrument 105 has two rows at"):
        zero_gamma_batch("ESM4", DAY, twice, PROFILE, "test")


def test_zero_gamma_matches_a_dense_scan_of_random_chains() -> None:
    rng = np.random.default_rng(5)
    seconds, per_second = 40, 60
    strikes = np.tile(np.arange(4850.0, 5150.0, 5.0), seconds)
    years = rng.choice([0.5, 3.0, 30.0], len(strikes)) / 365
    sigma = rng.uniform(0.1, 0.35, len(strikes))
    weight = rng.choice([-1.0, 1.0], len(strikes)) * rng.uniform(10, 3000, len(strikes)) * 50
    spot = rng.uniform(4950, 5050, seconds)
    starts = np.arange(0, seconds * per_second + 1, per_second)
    levels = zero_gamma_levels(starts, strikes, years, sigma, weight, spot, 100.0, 5.0, 0.0)
    for s in range(seconds):
        rows = slice(starts[s], starts[s + 1])
        grid = np.arange(spot[s] - 100.0, spot[s] + 100.0 + 1e-9, 0.05)
        profile = np.array(
            [np.sum(weight[rows] * gamma(np.full(per_second, f), strikes[rows], years[rows],
                                         sigma[rows], 0.0)) for f in grid]
        )  # fmt: skip
        changes = np.flatnonzero(np.sign(profile[:-1]) != np.sign(profile[1:]))
        if len(changes) == 0:
            assert np.isnan(levels[s])
            continue
        nearest = min((grid[i] + 0.025 for i in changes), key=lambda c: abs(c - spot[s]))
        assert abs(levels[s] - nearest) <= 0.03, (s, levels[s], nearest)


def test_zero_gamma_of_a_few_seconds_is_the_same_as_among_many() -> None:
    """A live second (fewer than PARALLEL_FROM_SECONDS: on the calling thread) gets the very
    level it gets among a day's seconds (the parallel loop)."""
    rng = np.random.default_rng(9)
    seconds, per_second = 3 * PARALLEL_FROM_SECONDS, 60
    strikes = np.tile(np.arange(4850.0, 5150.0, 5.0), seconds)
    years = rng.choice([0.5, 3.0, 30.0], len(strikes)) / 365
    sigma = rng.uniform(0.1, 0.35, len(strikes))
    sigma[rng.random(len(strikes)) < 0.05] = np.nan
    weight = rng.choice([-1.0, 1.0], len(strikes)) * rng.uniform(10, 3000, len(strikes)) * 50
    spot = rng.uniform(4950, 5050, seconds)
    spot[4] = np.nan
    starts = np.arange(0, seconds * per_second + 1, per_second)
    together = zero_gamma_levels(starts, strikes, years, sigma, weight, spot, 100.0, 5.0, 0.0)
    assert np.isfinite(together).sum() > seconds // 2
    for s in range(seconds):
        rows = slice(starts[s], starts[s + 1])
        alone = zero_gamma_levels(
            np.array([0, per_second]), strikes[rows], years[rows], sigma[rows], weight[rows],
            spot[s : s + 1], 100.0, 5.0, 0.0,
        )  # fmt: skip
        np.testing.assert_array_equal(alone, together[s : s + 1])


def test_zero_gamma_searching_outward_from_spot_finds_the_whole_grids_nearest_crossing() -> None:
    """The kernel evaluates brackets outward from spot and stops early; the level must be
    bit for bit the nearest of every crossing on the whole grid, refined the same way (the
    definition, scanned here bracket by bracket). The chains put puts and calls a few points
    from spot, so seconds have crossings on both sides of it at unequal distances."""
    rng = np.random.default_rng(23)
    seconds, per_second, half_width, step = 400, 3, 100.0, 5.0
    spot = rng.uniform(4990.0, 5010.0, seconds)
    # per second: a narrow short-gamma bump a few points from spot on a broad long-gamma one
    offsets = np.column_stack(
        [rng.uniform(-4.0, 4.0, seconds), np.full(seconds, -30.0), np.full(seconds, 30.0)]
    )
    strikes = (spot[:, None] + offsets).ravel()
    years = np.tile([0.05, 5.0, 5.0], seconds) / 365
    sigma = np.tile([0.02, 0.2, 0.2], seconds) * rng.uniform(0.8, 1.2, 3 * seconds)
    weight = (
        np.column_stack(
            [-rng.uniform(1.0, 3.0, seconds), np.ones(seconds), np.ones(seconds)]
        ).ravel()
        * 1000.0
    )
    starts = np.arange(0, seconds * per_second + 1, per_second)
    levels = zero_gamma_levels(starts, strikes, years, sigma, weight, spot, half_width, step, 0.0)
    far_side_first = 0
    for s in range(seconds):
        rows = slice(starts[s], starts[s + 1])
        # as the kernel computes them (libm, not numpy's vectorised log)
        log_strike = np.array([math.log(k) for k in strikes[rows]])
        root = np.array([v * math.sqrt(t) for v, t in zip(sigma[rows], years[rows], strict=True)])
        scale = weight[rows] * (1.0 / math.sqrt(2.0 * math.pi)) / root
        prices = [spot[s] - half_width + g * step for g in range(int(2 * half_width / step) + 1)]
        values = [_exposure(p, log_strike, root, scale) for p in prices]
        crossings = []
        for g in range(1, len(prices)):
            if values[g] == 0.0:
                crossings.append(prices[g])
            elif values[g - 1] * values[g] < 0.0:
                crossings.append(
                    _crossing(prices[g - 1], prices[g], values[g - 1], values[g],
                              log_strike, root, scale)
                )  # fmt: skip
        if not crossings:
            assert np.isnan(levels[s])
            continue
        nearest = min(crossings, key=lambda c: (abs(c - spot[s]), c))
        assert levels[s] == nearest, (s, levels[s], nearest, crossings)
        # the bracket just above spot is searched first: count seconds where it crosses but
        # a crossing below spot is nearer
        above = [c for c in crossings if spot[s] < c <= spot[s] + step]
        far_side_first += bool(above) and nearest < spot[s]
    assert far_side_first >= 20


def test_whole_seconds_never_split_a_second_between_tables() -> None:
    """Replay chunks can end mid-second: the per-second sums must get each second whole, in
    time order, and a batch going back in time is an error naming the partition."""
    table = profile_quotes([4950.0, 5000.0, 5050.0], [True, False, True], [10.0, 20.0, 30.0])
    at = [dt.datetime(2024, 3, 12, 14, 0, second) for second in (0, 0, 0, 1, 1, 1, 2, 2, 2)]
    rows = (
        pa.concat_tables([table] * 3)
        .combine_chunks()
        .set_column(0, "window_start", pa.array(at, pa.timestamp("us")))
    )
    whole = WholeSeconds("options_mbo symbol=ESM4 dt=2024-03-12")
    tables = []
    for start, stop in ((0, 2), (2, 4), (4, 5), (5, 9)):  # cuts inside seconds 0 and 1
        [batch] = rows.slice(start, stop - start).to_batches()
        tables += whole.add(batch)
    tables += whole.finish()
    seconds = [t["window_start"].unique().to_pylist() for t in tables]
    assert seconds == [[at[0]], [at[3]], [at[6]]]
    assert pa.concat_tables(tables).equals(rows)
    assert whole.finish() == []
    with pytest.raises(EngineError, match=r"symbol=ESM4 dt=2024-03-12: .* out of time order"):
        whole.add(rows.slice(0, 1).to_batches()[0])


def exposure_quotes(
    rows: list[tuple[int, float, int, str, bool, int | None, float | None]],
) -> pa.Table:
    """options_quotes_1s rows (second, strike, instrument, right, 0DTE, open interest, gex)."""
    start = dt.datetime(2024, 3, 12, 15)
    columns = list(zip(*rows, strict=True))
    return pa.table(
        {
            "window_start": pa.array(
                [start + dt.timedelta(seconds=s) for s in columns[0]], pa.timestamp("us")
            ),
            "strike_price": pa.array(columns[1], pa.float64()),
            "instrument_id": pa.array(columns[2], pa.uint32()),
            "option_right": pa.array(columns[3]),
            "is_0dte": pa.array(columns[4]),
            "open_interest": pa.array(columns[5], pa.int64()),
            "gex": pa.array(columns[6], pa.float64()),
        }
    )


def test_exposure_by_strike_signs_sums_in_instrument_order_and_counts() -> None:
    """Hand-computed: calls +, puts - (dealer signs); a put without open interest or exposure
    makes its strike's put sum unknown (NULL), not 0; the 0DTE call feeds the 0DTE sums too;
    rows in any order within a second sum in instrument order (1e16 + 1 - 1e16 is 0 in that
    order, 1 in another); per strike the open interest by right and the counts."""
    quotes = exposure_quotes(
        [
            (0, 5000.0, 12, "P", False, 40, 4.0),
            (0, 5000.0, 11, "C", False, 100, 10.0),
            (0, 5005.0, 21, "C", True, 30, 3.0),
            (0, 4995.0, 31, "P", False, None, None),
            (0, 5100.0, 43, "C", False, 1, -1e16),
            (0, 5100.0, 41, "C", False, 1, 1e16),
            (0, 5100.0, 42, "C", False, 1, 1.0),
            (1, 5000.0, 11, "C", False, 100, 12.0),
        ]
    )
    batch = gex_by_strike_batch("ESM4", dt.date(2024, 3, 12), quotes, 1.0, -1.0, "f")
    rows = [
        (
            row["window_start"].second, row["strike_price"], row["call_gex"], row["put_gex"],
            row["call_gex_0dte"], row["put_gex_0dte"], row["call_open_interest"],
            row["put_open_interest"], row["options_listed"], row["options_in_exposure"],
            row["options_without_open_interest"],
        )
        for row in batch.to_pylist()
    ]  # fmt: skip
    assert rows == [
        (0, 4995.0, 0.0, None, 0.0, 0.0, 0, 0, 1, 0, 1),
        (0, 5000.0, 10.0, -4.0, 0.0, 0.0, 100, 40, 2, 2, 0),
        (0, 5005.0, 3.0, 0.0, 3.0, 0.0, 30, 0, 1, 1, 0),
        (0, 5100.0, 0.0, 0.0, 0.0, 0.0, 3, 0, 3, 3, 0),
        (1, 5000.0, 12.0, 0.0, 0.0, 0.0, 100, 0, 1, 1, 0),
    ]
    # the same rows in another order (seconds interleaved) give the same bits
    shuffled = quotes.take(pa.array([7, 4, 2, 0, 6, 3, 5, 1]))
    again = gex_by_strike_batch("ESM4", dt.date(2024, 3, 12), shuffled, 1.0, -1.0, "f")
    assert again.equals(batch)


def test_an_option_twice_in_one_second_is_named() -> None:
    quotes = exposure_quotes(
        [(0, 5000.0, 11, "C", False, 100, 10.0), (0, 5000.0, 11, "C", False, 100, 10.0)]
    )
    with pytest.raises(EngineError, match="instrument 11 has two rows at 2024-03-12 15:00:00"):
        gex_by_strike_batch("ESM4", dt.date(2024, 3, 12), quotes, 1.0, -1.0, "f")
