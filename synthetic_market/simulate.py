"""`spymaster simulate`: write N consecutive trading days of a synthetic GLBX market.

Layout, as Databento delivers daily parent-symbol files:

    <out>/ES.FUT/mbo/glbx-mdp3-YYYYMMDD.mbo.dbn.zst            outrights and their spread
    <out>/ES.FUT/definition/glbx-mdp3-YYYYMMDD.definition.dbn.zst
    <out>/ES.OPT/mbo/, definition/, statistics/                 the option chain of each day
    <out>/ground_truth/approaches.parquet                       planted approaches (tests only)
    <out>/ground_truth/market.json                              contracts, roll, smile, scale

Two quarterly contracts trade each day; the front's share of volume rolls to the next
contract around CME's roll date (eight days before expiry). The session's dominant contract
carries the choreographed price path and its planted signatures; the other outright follows it
at a fixed calendar basis. Options are listed on the dominant contract. Everything is
deterministic for a given seed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import databento_dbn as dbn
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from foundation.dbn_facts import PRICE_SCALE, UNDEF_PRICE, UNDEF_TIMESTAMP
from foundation.dbn_files import metadata, write_file
from synthetic_market.calendar import (
    FuturesContract,
    OptionExpiry,
    SessionTimes,
    front_and_next,
    option_expiries,
    option_symbol,
    trading_days,
)
from synthetic_market.dbn_files import FIRST_SEQUENCE, mbo_records
from synthetic_market.futures_book import NANOS, RECORD_DTYPE, BookParams, simulate_book
from synthetic_market.options_book import (
    OPTION_RECORD_DTYPE,
    STRIKE_STEP,
    Smile,
    open_interest,
    simulate_options,
)
from synthetic_market.price_path import (
    PLANTED_DTYPE,
    PathConfig,
    build_session_path,
    session_start_prices,
)
from synthetic_market.scales import INTRADAY_LISTING_EDGE_POINTS, SCALES

TICK = 0.25
SPREAD_TICK = 0.05
CALENDAR_BASIS_TICKS = 249  # the deferred contract trades 62.25 points over the front
OPTION_EVENTS_PER_SECOND = 560.0


@dataclass(frozen=True)
class MarketConfig:
    sessions: int = 12
    seed: int = 7
    scale: float = SCALES["demo"]
    signal_strength: float = 1.0
    signature_noise: float = 0.2
    start_date: dt.date = dt.date(2024, 3, 4)
    first_price: float = 5100.0
    # Strikes listed on each side of the first price, points; None: 60 below realistic scale,
    # 500 at it. A narrower chain makes a cheaper market where options are not the subject.
    strike_range: float | None = None
    # The exchange lists strikes during the session as the future moves: the next strike
    # beyond the chain of the day's daily expiry (both rights) each time the future comes
    # within this many points of the chain's outermost strike; None: no listings. (The demo's
    # 60-point chain lists after 10-point moves; a realistic 500-point one hardly ever.)
    intraday_listing_edge_points: float | None = INTRADAY_LISTING_EDGE_POINTS

    @property
    def strike_range_points(self) -> float:
        if self.strike_range is not None:
            return self.strike_range
        return 60.0 if self.scale < 0.5 else 500.0


def volume_shares(days: list[dt.date], front: FuturesContract) -> list[tuple[float, float]]:
    """(front, next) share of outright volume per day: the roll at CME's roll date."""
    roll_index = next((i for i, day in enumerate(days) if day >= front.roll_date), len(days))
    shares = []
    for i, day in enumerate(days):
        offset = i - roll_index
        front_share = {-1: 0.8, 0: 0.45, 1: 0.2}.get(offset, 0.95 if offset < 0 else 0.06)
        if day >= front.expiry_date:
            front_share = 0.0
        shares.append((front_share, 0.99 - front_share if front_share else 1.0))
    return shares


def option_instrument_id(expiry: OptionExpiry, is_call: bool, strike: float) -> int:
    """A stable id per option: expiry day, quarterly or not, right and strike, bit-packed."""
    days = (expiry.expiry_date - dt.date(2020, 1, 1)).days
    code = (((days << 1 | expiry.is_quarterly) << 1 | is_call) << 12) | round(strike / STRIKE_STEP)
    return 100_000_000 + code


@dataclass(frozen=True)
class SessionTask:
    index: int
    day: dt.date
    start_ticks: int
    shares: tuple[float, float]
    config: MarketConfig
    out: Path


def simulate_session(task: SessionTask) -> dict[str, object]:
    """Write one day's files; returns counts and the day's planted approaches."""
    started = time.perf_counter()
    config = task.config
    rng = np.random.default_rng([config.seed, task.index])
    signature_rng = np.random.default_rng([config.seed, task.index, 1])
    times = SessionTimes(task.day)
    front, after = front_and_next(config.start_date)
    front_share, next_share = task.shares
    dominant = front if front_share >= next_share else after
    path = build_session_path(
        times,
        task.start_ticks,
        PathConfig(signal_strength=config.signal_strength, signature_noise=config.signature_noise),
        rng,
        signature_rng,
    )
    basis = CALENDAR_BASIS_TICKS if dominant is front else -CALENDAR_BASIS_TICKS
    futures: dict[str, int] = {}
    blocks: list[tuple[np.ndarray, int]] = []
    for contract, share in ((front, front_share), (after, next_share)):
        if share <= 0:
            continue
        is_dominant = contract is dominant
        contract_path = path.best_bid if is_dominant else path.best_bid + basis
        planted = path.planted if is_dominant else np.zeros(0, dtype=PLANTED_DTYPE)
        # A contract's depth and trading follow its share of the volume: the deferred book is
        # thin and mostly requotes (pulls its touch) rather than trades when price moves.
        params = BookParams(
            target_orders=max(20.0, 700.0 * share), p_sweep_trade=min(1.0, 2.0 * share)
        ).vector(config.scale)
        records = _run_book(rng, times, contract_path, path.activity * share, params, planted, TICK)
        futures[contract.symbol] = contract.instrument_id
        blocks.append((records, contract.instrument_id))
    spread = FuturesContract(f"{front.symbol}-{after.symbol}", 4003, front.expiry_date)
    if front_share > 0:
        spread_ticks = round(-CALENDAR_BASIS_TICKS * TICK / SPREAD_TICK)
        spread_params = BookParams(target_orders=60.0).vector(config.scale)
        records = _run_book(
            rng,
            times,
            np.full(len(path.best_bid), spread_ticks, dtype=np.int64),
            path.activity * 0.01,
            spread_params,
            np.zeros(0, dtype=PLANTED_DTYPE),
            SPREAD_TICK,
        )
        futures[spread.symbol] = spread.instrument_id
        blocks.append((records, spread.instrument_id))
    records = np.concatenate([block for block, _ in blocks])
    instrument = np.concatenate([np.full(len(b), i, dtype=np.int64) for b, i in blocks])
    order = np.argsort(records["ts_recv"], kind="stable")
    futures_mbo = mbo_records(records[order], instrument[order], rng)
    stamp = f"{task.day:%Y%m%d}"
    written = {
        "futures_mbo": write_file(
            task.out / "ES.FUT" / "mbo" / f"glbx-mdp3-{stamp}.mbo.dbn.zst",
            metadata(dbn.Schema.MBO, task.day, "ES.FUT", futures),
            futures_mbo,
        )
    }
    definitions = [
        _future_definition(times, contract, "F")
        for contract in (front, after)
        if contract.symbol in futures
    ]
    if front_share > 0:
        definitions.append(_future_definition(times, spread, "S"))
    written["futures_definition"] = write_file(
        task.out / "ES.FUT" / "definition" / f"glbx-mdp3-{stamp}.definition.dbn.zst",
        metadata(dbn.Schema.DEFINITION, task.day, "ES.FUT", futures),
        definitions,
    )
    options_mbo, option_count = _options(task, times, path.best_bid, path.activity, dominant, rng)
    return {
        "day": task.day,
        "dominant": dominant.symbol,
        "futures_records": len(futures_mbo),
        "options_records": options_mbo,
        "options": option_count,
        "approaches": path.approaches,
        "bytes": sum(written.values()),
        "seconds": time.perf_counter() - started,
    }


def _run_book(
    rng: np.random.Generator,
    times: SessionTimes,
    best_bid: np.ndarray,
    activity: np.ndarray,
    params: np.ndarray,
    planted: np.ndarray,
    tick: float,
) -> np.ndarray:
    planted_matrix = (
        planted.view(np.int64).reshape(len(planted), 8)
        if len(planted)
        else np.zeros((0, 8), dtype=np.int64)
    )
    expected = params[0] * float(activity.sum())
    seed = int(rng.integers(0, 2**31 - 1))
    first_id = int(rng.integers(10**12, 9 * 10**12))

    def simulate(out: np.ndarray) -> int:
        count = simulate_book(
            seed,
            times.file_start,
            best_bid,
            activity,
            params,
            planted_matrix,
            first_id,
            round(tick * PRICE_SCALE),
            out,
        )
        if count == -2:
            raise RuntimeError(f"{times.day}: the price path left the simulated book's range")
        return count

    return _records_of(simulate, RECORD_DTYPE, int(expected * 2.2) + 200_000)


def _records_of(
    simulate: Callable[[np.ndarray], int], dtype: np.dtype, capacity: int
) -> np.ndarray:
    """The records a kernel writes into `out` (it returns their count, or -1 when `out` is too
    small: then it runs again on twice the capacity)."""
    while True:
        out = np.zeros(capacity, dtype=dtype)
        count = simulate(out)
        if count >= 0:
            return out[:count].copy()  # a copy frees the unused capacity
        capacity *= 2


def _future_definition(
    times: SessionTimes, contract: FuturesContract, kind: str
) -> dbn.InstrumentDefMsg:
    is_spread = kind == "S"
    return dbn.InstrumentDefMsg(
        publisher_id=1,
        instrument_id=contract.instrument_id,
        ts_event=times.file_start - 86_400 * 10**9,
        ts_recv=times.file_start,
        min_price_increment=round((SPREAD_TICK if is_spread else TICK) * PRICE_SCALE),
        display_factor=10_000_000,
        raw_symbol=contract.symbol,
        asset="ES",
        security_type="FUT",
        instrument_class=dbn.InstrumentClass.FUTURE_SPREAD
        if is_spread
        else dbn.InstrumentClass.FUTURE,
        security_update_action=dbn.SecurityUpdateAction.ADD,
        expiration=contract.expiration_ns,
        unit_of_measure_qty=UNDEF_PRICE if is_spread else 50 * PRICE_SCALE,
        strike_price=UNDEF_PRICE,
        cfi="FMIXSX" if is_spread else "FFIXSX",
        group="ES",
        exchange="XCME",
        currency="USD",
        unit_of_measure="CTRCT" if is_spread else "IPNT",
        maturity_year=contract.expiry_date.year,
        maturity_month=contract.expiry_date.month,
    )


@dataclass(frozen=True)
class OptionSeries:
    """Options of one session: each with its expiry, right and strike, and the second of the
    file it is listed at (-1: in the start-of-file snapshot)."""

    symbols: list[str]
    expiries: list[OptionExpiry]
    is_call: np.ndarray
    strikes: np.ndarray
    instrument_ids: np.ndarray
    listed_second: np.ndarray

    @staticmethod
    def of(
        underlying: FuturesContract,
        options: list[tuple[OptionExpiry, str, float, int]],
    ) -> OptionSeries:
        """`options`: (expiry, right, strike, listed second) each."""
        return OptionSeries(
            symbols=[option_symbol(e, underlying, r, int(k)) for e, r, k, _ in options],
            expiries=[e for e, *_ in options],
            is_call=np.array([r == "C" for _, r, _, _ in options], dtype=np.bool_),
            strikes=np.array([k for _, _, k, _ in options], dtype=np.float64),
            instrument_ids=np.array(
                [option_instrument_id(e, r == "C", k) for e, r, k, _ in options], dtype=np.int64
            ),
            listed_second=np.array([s for *_, s in options], dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.symbols)


def intraday_listings(
    day: dt.date,
    forward_path: np.ndarray,
    strikes_grid: np.ndarray,
    expiries: list[OptionExpiry],
    file_start_ns: int,
    edge_points: float | None,
) -> list[tuple[OptionExpiry, str, float, int]]:
    """Strikes the exchange lists during the session as the future moves: the next 5-point
    strike beyond the chain of the day's daily (0DTE) expiry, both rights, each time the
    forward comes within `edge_points` of the chain's outermost strike on that side (None: no
    listings); until it expires. (expiry, right, strike, second listed), by second.

    Only a daily expiry listed that day (Monday to Thursday; a Friday's is the week's, in the
    chains since Monday): each listed option is new, never in an earlier session's files."""
    expiries = [e for e in expiries if e.expiry_date == day and day.weekday() != 4]
    if edge_points is None or not expiries:
        return []
    highest = np.maximum.accumulate(forward_path)
    lowest = np.minimum.accumulate(forward_path)
    listed: list[tuple[int, float]] = []
    for direction, extreme in ((1.0, highest), (-1.0, -lowest)):
        edge = strikes_grid[-1] if direction > 0 else strikes_grid[0]
        k = 1
        while True:
            # the k-th strike beyond the edge, once the forward nears the (k-1)-th
            threshold = direction * edge + (k - 1) * STRIKE_STEP - edge_points
            second = int(np.searchsorted(extreme, threshold, side="right"))
            if second >= len(forward_path):
                break
            listed.append((second, float(edge + direction * k * STRIKE_STEP)))
            k += 1
    return [
        (expiry, right, strike, second)
        for second, strike in sorted(listed)
        for expiry in expiries
        if file_start_ns + second * NANOS < expiry.expiration_ns
        for right in ("C", "P")
    ]


def merge_by_ts_recv(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Two record arrays, each in ts_recv order, as one in ts_recv order: at equal ts_recv,
    `first`'s records come first (a stable sort of the two, in linear time)."""
    at = np.searchsorted(first["ts_recv"], second["ts_recv"], side="right")
    at += np.arange(len(second))
    merged = np.empty(len(first) + len(second), dtype=first.dtype)
    taken = np.zeros(len(merged), np.bool_)
    taken[at] = True
    merged[at] = second
    merged[~taken] = first
    return merged


def _simulate_series(
    series: OptionSeries,
    seed: int,
    first_order_id: Callable[[], int],
    times: SessionTimes,
    forward_path: np.ndarray,
    activity: np.ndarray,
    smile: Smile,
    rate: float,
) -> np.ndarray:
    expirations = np.array([e.expiration_ns for e in series.expiries], dtype=np.int64)
    expected = rate * float(activity.sum())
    return _records_of(
        lambda out: simulate_options(
            seed,
            times.file_start,
            forward_path,
            activity,
            series.strikes,
            expirations,
            series.is_call,
            series.instrument_ids,
            series.listed_second,
            smile.vector(),
            rate,
            first_order_id(),
            out,
        ),
        OPTION_RECORD_DTYPE,
        int(expected * 3) + 40 * len(series) + 200_000,
    )


def _options(
    task: SessionTask,
    times: SessionTimes,
    best_bid: np.ndarray,
    activity: np.ndarray,
    underlying: FuturesContract,
    rng: np.random.Generator,
) -> tuple[int, int]:
    config = task.config
    forward_path = best_bid * TICK + TICK / 2
    center = round(forward_path[0] / STRIKE_STEP) * STRIKE_STEP
    half = config.strike_range_points
    strikes_grid = np.arange(center - half, center + half + 1, STRIKE_STEP)
    expiries = option_expiries(task.day, underlying)
    chain = OptionSeries.of(
        underlying,
        [
            (expiry, right, float(strike), -1)
            for expiry in expiries
            for right in ("C", "P")
            for strike in strikes_grid
        ],
    )
    smile = Smile()
    rate = OPTION_EVENTS_PER_SECOND * config.scale
    seed = int(rng.integers(0, 2**31 - 1))
    first_ids: list[int] = []

    def first_order_id() -> int:
        first_ids.append(int(rng.integers(10**12, 9 * 10**12)))
        return first_ids[-1]

    records = _simulate_series(
        chain, seed, first_order_id, times, forward_path, activity, smile, rate
    )
    records = mbo_records(records, records["instrument_id"], rng)
    # strikes listed during the session draw from a stream of their own: the chain's records,
    # its open interest and everything after are the same with or without them
    listing_rng = np.random.default_rng([seed, 1])
    listed = OptionSeries.of(
        underlying,
        intraday_listings(
            task.day,
            forward_path,
            strikes_grid,
            expiries,
            times.file_start,
            config.intraday_listing_edge_points,
        ),
    )
    if len(listed):
        # order ids after every one the chain's market could have used
        listing_first_id = first_ids[-1] + len(records) + 1
        listed_records = _simulate_series(
            listed,
            int(listing_rng.integers(0, 2**31 - 1)),
            lambda: listing_first_id,
            times,
            forward_path,
            activity,
            smile,
            rate * len(listed) / len(chain),
        )
        records = merge_by_ts_recv(
            records, mbo_records(listed_records, listed_records["instrument_id"], listing_rng)
        )
        records["sequence"] = np.arange(len(records)) + FIRST_SEQUENCE
    stamp = f"{task.day:%Y%m%d}"
    symbols = {
        symbol: int(i)
        for series in (chain, listed)
        for symbol, i in zip(series.symbols, series.instrument_ids, strict=True)
    }
    write_file(
        task.out / "ES.OPT" / "mbo" / f"glbx-mdp3-{stamp}.mbo.dbn.zst",
        metadata(dbn.Schema.MBO, task.day, "ES.OPT", symbols),
        records,
    )
    definitions = [
        _option_definition(chain, k, underlying, ts_recv=times.file_start)
        for k in range(len(chain))
    ] + [
        _option_definition(
            listed,
            k,
            underlying,
            ts_recv=times.file_start + int(listed.listed_second[k]) * NANOS,
        )
        for k in range(len(listed))
    ]
    write_file(
        task.out / "ES.OPT" / "definition" / f"glbx-mdp3-{stamp}.definition.dbn.zst",
        metadata(dbn.Schema.DEFINITION, task.day, "ES.OPT", symbols),
        definitions,
    )
    # open interest is published for the options listed before the session, not the new ones
    interest = open_interest(
        chain.strikes,
        float(forward_path[0]),
        np.array([e.is_quarterly for e in chain.expiries]),
        rng,
    )
    statistics = [
        dbn.StatMsg(
            publisher_id=1,
            instrument_id=int(instrument_id),
            ts_event=times.file_start + 1_000_000 + k * 1000,
            ts_recv=times.file_start + 2_000_000 + k * 1000,
            ts_ref=times.file_start - 86_400 * 10**9,
            price=UNDEF_PRICE,
            quantity=int(contracts),
            stat_type=dbn.StatType.OPEN_INTEREST,
            update_action=dbn.StatUpdateAction.NEW,
        )
        for k, (instrument_id, contracts) in enumerate(
            zip(chain.instrument_ids, interest, strict=True)
        )
    ]
    write_file(
        task.out / "ES.OPT" / "statistics" / f"glbx-mdp3-{stamp}.statistics.dbn.zst",
        metadata(dbn.Schema.STATISTICS, task.day, "ES.OPT", symbols),
        statistics,
    )
    return len(records), len(chain) + len(listed)


def _option_definition(
    series: OptionSeries, k: int, underlying: FuturesContract, ts_recv: int
) -> dbn.InstrumentDefMsg:
    expiry, right = series.expiries[k], "C" if series.is_call[k] else "P"
    return dbn.InstrumentDefMsg(
        publisher_id=1,
        instrument_id=int(series.instrument_ids[k]),
        ts_event=ts_recv - 86_400 * 10**9 if series.listed_second[k] < 0 else ts_recv - 1_000_000,
        ts_recv=ts_recv,
        min_price_increment=UNDEF_PRICE,
        display_factor=10_000_000,
        raw_symbol=series.symbols[k],
        asset="ES",
        security_type="OOF",
        instrument_class=dbn.InstrumentClass.CALL if right == "C" else dbn.InstrumentClass.PUT,
        security_update_action=dbn.SecurityUpdateAction.ADD,
        expiration=expiry.expiration_ns,
        unit_of_measure_qty=50 * PRICE_SCALE,
        strike_price=round(float(series.strikes[k]) * PRICE_SCALE),
        underlying=underlying.symbol,
        underlying_id=underlying.instrument_id,
        cfi=("OC" if right == "C" else "OP") + ("AFPS" if expiry.is_quarterly else "EFPS"),
        group=expiry.root,
        exchange="XCME",
        currency="USD",
        strike_price_currency="USD",
        unit_of_measure="IPNT",
        maturity_year=expiry.expiry_date.year,
        maturity_month=expiry.expiry_date.month,
    )


def simulate_market(out: Path, config: MarketConfig, workers: int = 1) -> list[dict[str, object]]:
    """Write the market under `out` (see the module docstring); returns per-day summaries."""
    days = trading_days(config.start_date, config.sessions)
    front, _ = front_and_next(config.start_date)
    shares = volume_shares(days, front)
    starts = session_start_prices(
        config.first_price, len(days), np.random.default_rng([config.seed, 10_000])
    )
    tasks = [SessionTask(i, day, starts[i], shares[i], config, out) for i, day in enumerate(days)]
    if workers > 1:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            results = list(pool.map(simulate_session, tasks))
    else:
        results = [simulate_session(task) for task in tasks]
    _write_ground_truth(out, config, results, front)
    return results


def _write_ground_truth(
    out: Path, config: MarketConfig, results: list[dict[str, object]], front: FuturesContract
) -> None:
    folder = out / "ground_truth"
    folder.mkdir(parents=True, exist_ok=True)
    approaches = [a for result in results for a in result["approaches"]]  # type: ignore[union-attr]
    table = pa.Table.from_pylist(approaches) if approaches else pa.table({})
    temporary = folder / ".approaches.parquet.tmp"
    pq.write_table(table, temporary)
    os.replace(temporary, folder / "approaches.parquet")

    description = {
        "config": {**dataclasses.asdict(config), "start_date": config.start_date.isoformat()},
        "front": front.symbol,
        "roll_date": front.roll_date.isoformat(),
        "smile": dataclasses.asdict(Smile()),
        "dominant_by_day": {str(r["day"]): r["dominant"] for r in results},
        "undefined_timestamp": UNDEF_TIMESTAMP,
    }
    (folder / "market.json").write_text(json.dumps(description, indent=2, sort_keys=True) + "\n")
