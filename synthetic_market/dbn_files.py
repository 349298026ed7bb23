"""Writing Databento files: DBN metadata through databento-dbn, records as struct arrays."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import databento_dbn as dbn
import numpy as np
import zstandard

from spymaster.dbn_facts import F_LAST, F_SNAPSHOT
from synthetic_market.calendar import day_start_ns

# The DBN version 3 MBO record (56 bytes), with action and side as raw bytes.
MBO_DTYPE = np.dtype(
    [
        ("length", "u1"),
        ("rtype", "u1"),
        ("publisher_id", "<u2"),
        ("instrument_id", "<u4"),
        ("ts_event", "<u8"),
        ("order_id", "<u8"),
        ("price", "<i8"),
        ("size", "<u4"),
        ("flags", "u1"),
        ("channel_id", "u1"),
        ("action", "u1"),
        ("side", "u1"),
        ("ts_recv", "<u8"),
        ("ts_in_delta", "<i4"),
        ("sequence", "<u4"),
    ]
)
GLBX_PUBLISHER = 1


def mbo_records(
    records: np.ndarray, instrument_id: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Simulator records (already in file order) as DBN MBO structs with sequence numbers.
    As in Databento's parent-symbol files, F_LAST stands only on the last record of the whole
    start-of-file snapshot, not on each instrument's last (SPEC 2)."""
    out = np.zeros(len(records), dtype=MBO_DTYPE)
    out["length"] = MBO_DTYPE.itemsize // 4
    out["rtype"] = int(dbn.RType.MBO.value)
    out["publisher_id"] = GLBX_PUBLISHER
    out["instrument_id"] = instrument_id
    for field in ("ts_event", "order_id", "price", "size", "flags", "action", "side", "ts_recv"):
        out[field] = records[field]
    snapshot = np.flatnonzero(out["flags"] & F_SNAPSHOT)
    if len(snapshot):
        out["flags"][snapshot] &= ~np.uint8(F_LAST)
        out["flags"][snapshot[-1]] |= np.uint8(F_LAST)
    out["ts_in_delta"] = rng.integers(12_000, 19_000, len(records))
    out["sequence"] = np.arange(1, len(records) + 1) + 1_000_000
    return out


def metadata(
    schema: dbn.Schema, day: dt.date, parent: str, instruments: dict[str, int]
) -> dbn.Metadata:
    """Header of a daily parent-symbol file (`ES.FUT`, `ES.OPT`) with its symbology."""
    return dbn.Metadata(
        dataset="GLBX.MDP3",
        start=day_start_ns(day),
        end=day_start_ns(day + dt.timedelta(days=1)),
        stype_in=dbn.SType.PARENT,
        stype_out=dbn.SType.INSTRUMENT_ID,
        schema=schema,
        symbols=[parent],
        mappings=[
            SimpleNamespace(
                raw_symbol=symbol,
                intervals=[
                    SimpleNamespace(
                        start_date=day,
                        end_date=day + dt.timedelta(days=1),
                        symbol=str(instrument_id),
                    )
                ],
            )
            for symbol, instrument_id in sorted(instruments.items())
        ],
    )


class RawFileExistsError(FileExistsError):
    """A raw file already there with other content: raw files are never modified."""


def write_file(path: Path, header: dbn.Metadata, body: np.ndarray | Sequence[object]) -> int:
    """Write a zstd DBN file atomically; `body` is a record struct array or dbn records.

    A file already at `path` with the same bytes is left untouched (re-runs are idempotent);
    one with other bytes is an error, never overwritten.
    """
    payload = (
        body.view(np.uint8)
        if isinstance(body, np.ndarray)
        else b"".join(bytes(record) for record in body)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    compressor = zstandard.ZstdCompressor(level=3)
    with temporary.open("wb") as handle, compressor.stream_writer(handle) as writer:
        writer.write(bytes(header))
        writer.write(payload)
    if path.exists():
        same = _same_bytes(path, temporary)
        temporary.unlink()
        if not same:
            raise RawFileExistsError(
                f"{path}: a different file is already there; raw files are never modified "
                "(write the market to another --out folder)"
            )
        return path.stat().st_size
    os.replace(temporary, path)
    return path.stat().st_size


def _same_bytes(first: Path, second: Path) -> bool:
    if first.stat().st_size != second.stat().st_size:
        return False
    with first.open("rb") as a, second.open("rb") as b:
        while True:
            chunk = a.read(1 << 20)
            if chunk != b.read(1 << 20):
                return False
            if not chunk:
                return True
