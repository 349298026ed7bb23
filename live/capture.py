"""What a live session received, written as raw DBN into the lake (`raw/`), so the day can be
ingested and built later: one file per product (ES.FUT, ES.OPT), schema and UTC day, in the
layout of Databento's daily files, each written whole when the session ends (records wait in
a hidden part file meanwhile: a folder's hidden files are not ingested)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import databento_dbn as dbn
import numpy as np
from databento.common.symbology import InstrumentMap

from foundation.dbn_files import metadata, write_file
from ingest.bronze_tables import SourceSchema
from ingest.routing import (
    FUTURES_COMBINATION,
    OUTRIGHT_FUTURE,
    USER_DEFINED_PREFIX,
    day_to_date,
    epoch_days,
)
from live.feed import FeedBatch

FUTURES, OPTIONS = "ES.FUT", "ES.OPT"


class RawCapture:
    def __init__(self, raw: Path) -> None:
        self.raw = raw
        self.parts: dict[tuple[str, SourceSchema, int], Path] = {}
        self.dtypes: dict[tuple[str, SourceSchema, int], np.dtype] = {}
        self.instruments: dict[tuple[str, SourceSchema, int], set[int]] = {}

    def add(self, batch: FeedBatch, symbology: InstrumentMap) -> None:
        records = batch.records
        days = epoch_days(records["ts_recv"])
        products = self._products(batch.schema, records, days, symbology)
        for product in np.unique(products):
            for day in np.unique(days):
                rows = (products == product) & (days == day)
                if not rows.any():
                    continue
                key = (str(product), batch.schema, int(day))
                if key not in self.parts:
                    folder = self.raw / str(product) / batch.schema.value
                    folder.mkdir(parents=True, exist_ok=True)
                    self.parts[key] = folder / f".{_name(batch.schema, int(day))}.part"
                    self.parts[key].write_bytes(b"")
                    self.dtypes[key] = records.dtype
                    self.instruments[key] = set()
                chosen = records[rows]
                with self.parts[key].open("ab") as part:
                    part.write(chosen.tobytes())
                self.instruments[key].update(int(i) for i in np.unique(chosen["instrument_id"]))

    def close(self, symbology: InstrumentMap) -> list[Path]:
        """Write every file (idempotent: the same records give the same bytes)."""
        written = []
        for key, part in sorted(self.parts.items(), key=lambda item: str(item[1])):
            product, schema, day_number = key
            day = day_to_date(day_number)
            records = np.frombuffer(part.read_bytes(), dtype=self.dtypes[key])
            symbols = {
                symbol: instrument
                for instrument in sorted(self.instruments[key])
                if (symbol := symbology.resolve(instrument, day)) is not None
            }
            header = metadata(dbn.Schema(schema.value), day, product, symbols)
            target = part.parent / _name(schema, day_number)
            write_file(target, header, records)
            part.unlink()
            written.append(target)
        self.parts.clear()
        return written

    @staticmethod
    def _products(
        schema: SourceSchema, records: np.ndarray, days: np.ndarray, symbology: InstrumentMap
    ) -> np.ndarray:
        """ES.FUT for futures (outrights, spreads, user-defined), ES.OPT for options."""
        if schema is SourceSchema.DEFINITION:
            options = np.isin(records["instrument_class"], [b"C", b"P"])
            return np.where(options, OPTIONS, FUTURES)
        pairs = np.stack([records["instrument_id"].astype(np.int64), days], axis=1)
        keys, inverse = np.unique(pairs, axis=0, return_inverse=True)
        products = [
            product_of(symbology.resolve(instrument, day_to_date(day)))
            for instrument, day in keys.tolist()
        ]
        return np.array(products)[inverse.reshape(-1)]


def product_of(symbol: str | None) -> str:
    """The raw folder of a market record's instrument: ES.FUT for futures (outrights,
    spreads, user-defined), ES.OPT for the rest."""
    symbol = symbol or ""
    futures = (
        OUTRIGHT_FUTURE.match(symbol)
        or FUTURES_COMBINATION.match(symbol)
        or symbol.startswith(USER_DEFINED_PREFIX)
    )
    return FUTURES if futures else OPTIONS


def _name(schema: SourceSchema, day_number: int) -> str:
    day: dt.date = day_to_date(day_number)
    return f"glbx-mdp3-{day:%Y%m%d}.{schema.value}.dbn.zst"
