"""Hand-built Databento files for tests, written with databento-dbn record classes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import SimpleNamespace

import databento_dbn as dbn
import zstandard

from foundation.dbn_facts import (
    F_BAD_TS_RECV,
    F_LAST,
    F_SNAPSHOT,
    PRICE_SCALE,
    UNDEF_PRICE,
    UNDEF_TIMESTAMP,
)

DAY_NS = 86_400 * 1_000_000_000


def day_start_ns(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 10**9


def px(points: float) -> int:
    """Index points to DBN fixed-point price."""
    return round(points * PRICE_SCALE)


def mbo(
    instrument_id: int,
    ts_recv: int,
    action: str,
    side: str = "N",
    price: int = UNDEF_PRICE,
    size: int = 0,
    order_id: int = 0,
    flags: int = F_LAST,
    sequence: int = 0,
    ts_event: int | None = None,
) -> dbn.MBOMsg:
    return dbn.MBOMsg(
        publisher_id=1,
        instrument_id=instrument_id,
        ts_event=ts_recv - 1000 if ts_event is None else ts_event,
        order_id=order_id,
        price=price,
        size=size,
        action=dbn.Action(action),
        side=dbn.Side(side),
        ts_recv=ts_recv,
        flags=flags,
        sequence=sequence,
    )


def definition(
    instrument_id: int,
    raw_symbol: str,
    instrument_class: str,
    ts_recv: int,
    *,
    underlying: str = "",
    strike_points: float | None = None,
    expiration: int = UNDEF_TIMESTAMP,
    cfi: str | None = None,
) -> dbn.InstrumentDefMsg:
    is_option = instrument_class in ("C", "P")
    return dbn.InstrumentDefMsg(
        publisher_id=1,
        instrument_id=instrument_id,
        ts_event=ts_recv - 1000,
        ts_recv=ts_recv,
        min_price_increment=UNDEF_PRICE if is_option else px(0.25),
        display_factor=10_000_000,
        raw_symbol=raw_symbol,
        asset="ES",
        security_type="OOF" if is_option else "FUT",
        instrument_class=dbn.InstrumentClass(instrument_class),
        security_update_action=dbn.SecurityUpdateAction.ADD,
        expiration=expiration,
        unit_of_measure_qty=50 * PRICE_SCALE,
        strike_price=px(strike_points) if strike_points is not None else UNDEF_PRICE,
        underlying=underlying,
        cfi=cfi or {"F": "FFIXSX", "S": "FMIXSX", "C": "OCAFPS", "P": "OPAFPS"}[instrument_class],
        unit_of_measure="IPNT",
    )


def open_interest(instrument_id: int, ts_recv: int, contracts: int) -> dbn.StatMsg:
    return dbn.StatMsg(
        publisher_id=1,
        instrument_id=instrument_id,
        ts_event=ts_recv - 1000,
        ts_recv=ts_recv,
        ts_ref=UNDEF_TIMESTAMP,
        price=UNDEF_PRICE,
        quantity=contracts,
        stat_type=dbn.StatType.OPEN_INTEREST,
        update_action=dbn.StatUpdateAction.NEW,
    )


def metadata(
    schema: dbn.Schema,
    start: dt.date,
    end: dt.date,
    symbols: dict[str, int],
    dataset: str = "GLBX.MDP3",
) -> dbn.Metadata:
    interval = SimpleNamespace(start_date=start, end_date=end)
    return dbn.Metadata(
        dataset=dataset,
        start=day_start_ns(start),
        end=day_start_ns(end),
        stype_in=dbn.SType.RAW_SYMBOL,
        stype_out=dbn.SType.INSTRUMENT_ID,
        schema=schema,
        symbols=sorted(symbols),
        mappings=[
            SimpleNamespace(
                raw_symbol=symbol,
                intervals=[
                    SimpleNamespace(
                        start_date=interval.start_date,
                        end_date=interval.end_date,
                        symbol=str(instrument_id),
                    )
                ],
            )
            for symbol, instrument_id in sorted(symbols.items())
        ],
    )


def encode(header: dbn.Metadata, records: Iterable[object]) -> bytes:
    return bytes(header) + b"".join(bytes(record) for record in records)


def write_dbn(
    path: Path,
    schema: dbn.Schema,
    records: Sequence[object],
    symbols: dict[str, int],
    start: dt.date,
    end: dt.date | None = None,
    *,
    compress: bool = True,
    dataset: str = "GLBX.MDP3",
) -> Path:
    """Write a DBN file (zstd unless `compress=False`) covering [start, end) UTC days."""
    header = metadata(schema, start, end or start + dt.timedelta(days=1), symbols, dataset)
    payload = encode(header, records)
    if compress:
        payload = zstandard.ZstdCompressor().compress(payload)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return path


def book_day(
    instrument_id: int, day: dt.date, base_points: float, seed: int = 0
) -> list[dbn.MBOMsg]:
    """A small valid day of one instrument: snapshot, adds, a trade with its fill, a cancel."""
    t0 = day_start_ns(day) + 60 * 10**9
    oid = 1000 * (seed + 1)
    snapshot = F_SNAPSHOT | F_BAD_TS_RECV
    records = [
        mbo(instrument_id, t0, "R", flags=snapshot),
        mbo(instrument_id, t0, "A", "B", px(base_points), 5, oid + 1, flags=snapshot),
        mbo(
            instrument_id, t0, "A", "A", px(base_points + 0.25), 7, oid + 2, flags=F_LAST | snapshot
        ),
        mbo(instrument_id, t0 + 10**9, "A", "B", px(base_points - 0.25), 3, oid + 3),
        mbo(instrument_id, t0 + 2 * 10**9, "T", "B", px(base_points + 0.25), 2, flags=0),
        mbo(instrument_id, t0 + 2 * 10**9, "F", "A", px(base_points + 0.25), 2, oid + 2, flags=0),
        mbo(instrument_id, t0 + 2 * 10**9, "M", "A", px(base_points + 0.25), 5, oid + 2),
        mbo(instrument_id, t0 + 3 * 10**9, "C", "B", px(base_points - 0.25), 3, oid + 3),
    ]
    return records
