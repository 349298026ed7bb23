"""`spymaster book`: the reconstructed L3 book of one contract-day at a moment, from bronze."""

from __future__ import annotations

import datetime as dt
import json

from book_engine.bronze_input import bronze_mbo
from book_engine.replay import BookState, MboColumns, book_at, require_snapshot
from foundation.dbn_facts import PRICE_SCALE
from foundation.exchange_time import parse_time, utc_ns
from foundation.lake import Lake
from foundation.project import project_vars
from ingest.partitions import PartitionKey, read_manifest


class BookCommandError(ValueError):
    """A request the command cannot answer (no such partition, a bad time)."""


def parse_moment(value: str) -> int:
    """Integer nanoseconds since the epoch, or an ISO-8601 time (UTC unless it says otherwise)."""
    if value.lstrip("-").isdigit():
        return int(value)
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def load_partition(lake: Lake, symbol: str, day: dt.date) -> MboColumns:
    if read_manifest(lake.root, PartitionKey("futures_mbo", symbol, day)) is None:
        folder = lake.partition_dir("futures_mbo", symbol, day.isoformat())
        raise BookCommandError(f"{folder}: no bronze futures_mbo partition for {symbol} on {day}")
    return MboColumns.from_arrow(bronze_mbo(str(lake.root), "futures_mbo", symbol, day))


def pre_open_of(day: dt.date) -> tuple[tuple[int, int], ...]:
    """The day's pre-open interval (dbt vars pre_open_start/end, exchange time zone)."""
    timezone = str(project_vars()["exchange_timezone"])
    start, end = (
        parse_time(str(project_vars()[name])) for name in ("pre_open_start", "pre_open_end")
    )
    return ((utc_ns(day, start, timezone), utc_ns(day, end, timezone)),)


def reconstruct(lake: Lake, symbol: str, day: dt.date, at_ns: int | None, tick: float) -> BookState:
    columns = load_partition(lake, symbol, day)
    require_snapshot(columns, f"futures_mbo symbol={symbol} dt={day}")
    instruments = sorted(set(columns.instrument_id.tolist()))
    ticks = {instrument: round(tick * PRICE_SCALE) for instrument in instruments}
    return book_at(columns, ticks, at_ns, pre_open=pre_open_of(day))


def book_json(state: BookState, symbol: str, depth: int) -> dict[str, object]:
    """The printed object: one contract, prices in index points, best levels first."""
    (book,) = state.books.values()
    return {
        "symbol": symbol,
        "ts_recv": state.ts_recv,
        "valid": book.valid,
        "orders": book.orders,
        "bids": [
            [level.price / PRICE_SCALE, level.size, level.orders] for level in book.bids[:depth]
        ],
        "asks": [
            [level.price / PRICE_SCALE, level.size, level.orders] for level in book.asks[:depth]
        ],
    }


def book_text(payload: dict[str, object]) -> str:
    moment = payload["ts_recv"]
    when = (
        dt.datetime.fromtimestamp(moment / 1e9, tz=dt.UTC).isoformat()
        if moment is not None
        else "-"
    )
    lines = [
        f"{payload['symbol']} after ts_recv {moment} ({when}): "
        f"{'valid' if payload['valid'] else 'NOT valid'}, {payload['orders']:,} orders",
        f"{'bid orders':>10} {'bid size':>9} {'price':>10} {'ask size':<9} {'ask orders':<10}",
    ]
    for price, size, orders in reversed(payload["asks"]):
        lines.append(f"{'':>10} {'':>9} {price:>10.2f} {size:<9} {orders:<10}")
    for price, size, orders in payload["bids"]:
        lines.append(f"{orders:>10} {size:>9} {price:>10.2f}")
    return "\n".join(lines)


def run_book(
    lake_arg: str | None,
    symbol: str,
    day: dt.date,
    at_ns: int | None,
    depth: int,
    as_json: bool,
) -> str:
    lake = Lake.resolve(lake_arg)
    tick = float(project_vars()["futures_tick_size"])
    state = reconstruct(lake, symbol, day, at_ns, tick)
    payload = book_json(state, symbol, depth)
    return json.dumps(payload) if as_json else book_text(payload)
