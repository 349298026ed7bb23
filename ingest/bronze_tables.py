"""Bronze tables: which DBN fields land in which Parquet column, with which exact type.

Every bronze table is hive-partitioned `<table>/symbol=<contract>/dt=<YYYY-MM-DD>/`, where
`symbol` is the outright future the records belong to (the contract itself for futures, the
underlying future for options, the spread itself for futures spread definitions) and `dt` is
the UTC date of the record's ts_recv (for Databento daily files: the file's date).
The dbt contracts in models/bronze/ declare the same columns; a test keeps the two in step.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from foundation.dbn_facts import (
    F_BAD_TS_RECV,
    F_LAST,
    F_MAYBE_BAD_BOOK,
    F_SNAPSHOT,
    F_TOB,
    UNDEF_INT32,
    UNDEF_STAT_QUANTITY,
    UNDEF_STAT_QUANTITY_V1,
    UNDEF_TIMESTAMP,
)

INGEST_VERSION = 1
"""Bump when a bronze table's columns or routing change: every source lands again."""


class AssetClass(enum.StrEnum):
    FUTURES = "futures"
    OPTIONS = "options"


class SourceSchema(enum.StrEnum):
    """DBN schemas that ingest lands; any other schema is refused."""

    MBO = "mbo"
    TRADES = "trades"
    MBP_1 = "mbp-1"
    DEFINITION = "definition"
    STATISTICS = "statistics"

    @property
    def table_suffix(self) -> str:
        return {
            SourceSchema.MBO: "mbo",
            SourceSchema.TRADES: "trades",
            SourceSchema.MBP_1: "mbp_1",
            SourceSchema.DEFINITION: "definitions",
            SourceSchema.STATISTICS: "statistics",
        }[self]


def table_name(asset: AssetClass, schema: SourceSchema) -> str:
    return f"{asset.value}_{schema.table_suffix}"


ALL_TABLES: tuple[str, ...] = tuple(
    table_name(asset, schema) for schema in SourceSchema for asset in AssetClass
)


class RecordError(ValueError):
    """A record holds a value that cannot land; carries the offending row within the chunk."""

    def __init__(self, row: int, message: str) -> None:
        super().__init__(message)
        self.row = row


# records gathered at a time (Records._gather): 16 k MBO records are 896 KiB, within a core's L2
GATHER_SLICE_RECORDS = 1 << 14


class Records:
    """Some rows of a chunk of DBN records (all of them when `rows` is None), read field by
    field: the fields are gathered once, contiguous, whatever reads them (a flag column, the
    partition's counts), all at the first read, a slice of records at a time. A chunk split
    between partitions is gathered per partition, never converted whole and then split."""

    def __init__(self, chunk: np.ndarray, offset: int, rows: np.ndarray | None = None) -> None:
        self.chunk = chunk
        self.offset = offset  # the file position of the chunk's first record
        self.rows = rows
        self._fields: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.chunk) if self.rows is None else len(self.rows)

    @property
    def names(self) -> tuple[str, ...]:
        return self.chunk.dtype.names

    def field(self, name: str) -> np.ndarray:
        if not self._fields:
            self._gather()
        return self._fields[name]

    def _gather(self) -> None:
        """Every field of these rows, contiguous: a slice of records at a time, each field of
        the slice copied out while its records are in the core's cache (a field at a time
        over the whole chunk read the chunk from memory once per field)."""
        n = len(self)
        names = self.names
        fields = {name: np.empty(n, self.chunk.dtype[name]) for name in names}
        for start in range(0, n, GATHER_SLICE_RECORDS):
            stop = min(start + GATHER_SLICE_RECORDS, n)
            if self.rows is None:
                part = self.chunk[start:stop]
                for name in names:
                    fields[name][start:stop] = part[name]
            else:
                rows = self.rows[start:stop]
                for name in names:
                    fields[name][start:stop] = self.chunk[name][rows]
        self._fields = fields

    def chunk_row(self, row: int) -> int:
        """The position in the chunk of the `row`-th of these records."""
        return row if self.rows is None else int(self.rows[row])

    def record_index(self) -> np.ndarray:
        """Each record's position in its file."""
        if self.rows is None:
            return np.arange(self.offset, self.offset + len(self.chunk), dtype=np.int64)
        return self.rows.astype(np.int64) + self.offset


Extractor = Callable[[Records], pa.Array]


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    extract: Extractor


def _int(field: str, arrow_type: pa.DataType) -> Extractor:
    def extract(records: Records) -> pa.Array:
        return pa.array(records.field(field), type=arrow_type)

    return extract


def _required_ns(field: str) -> Extractor:
    """uint64 nanoseconds to int64; a missing (UNDEF) timestamp is an error."""

    def extract(records: Records) -> pa.Array:
        values = records.field(field)
        bad = np.flatnonzero(values >= np.uint64(2**63))
        if bad.size:
            raise RecordError(int(bad[0]), f"{field} is undefined ({int(values[bad[0]])})")
        return pa.array(values.view(np.int64))

    return extract


def _optional_ns(field: str) -> Extractor:
    """uint64 nanoseconds to int64, UNDEF_TIMESTAMP as NULL."""

    def extract(records: Records) -> pa.Array:
        values = records.field(field)
        return pa.array(values.view(np.int64), mask=values == np.uint64(UNDEF_TIMESTAMP))

    return extract


def _int32_undef_null(field: str) -> Extractor:
    def extract(records: Records) -> pa.Array:
        values = records.field(field).astype(np.int32)
        return pa.array(values, mask=values == UNDEF_INT32)

    return extract


def _stat_quantity(records: Records) -> pa.Array:
    """int64 quantity; DBN v1 stored it as int32 with its own UNDEF, mapped to today's."""
    values = records.field("quantity")
    if values.dtype.itemsize == 4:
        wide = values.astype(np.int64)
        wide[values == UNDEF_STAT_QUANTITY_V1] = UNDEF_STAT_QUANTITY
        return pa.array(wide)
    return pa.array(values.astype(np.int64))


def _char(field: str, *, nul_is_null: bool = False) -> Extractor:
    """A one-byte DBN char as a one-character string, built straight from the bytes.

    MBO actions and sides must be printable; definition enums may be NUL (unset): NULL.
    """

    def extract(records: Records) -> pa.Array:
        data = records.field(field).view(np.uint8)
        unset = data == 0 if nul_is_null else np.zeros(len(data), dtype=bool)
        bad = np.flatnonzero(((data < 0x20) | (data > 0x7E)) & ~unset)
        if bad.size:
            raise RecordError(int(bad[0]), f"{field} is not a printable character ({data[bad[0]]})")
        offsets = np.arange(len(data) + 1, dtype=np.int32)
        validity = None if not unset.any() else pa.py_buffer(np.packbits(~unset, bitorder="little"))
        return pa.StringArray.from_buffers(
            len(data), pa.py_buffer(offsets), pa.py_buffer(data), validity
        )

    return extract


def _text(field: str) -> Extractor:
    def extract(records: Records) -> pa.Array:
        return pa.array(np.char.decode(records.field(field), "utf-8").tolist(), type=pa.string())

    return extract


def _flag(bit: int) -> Extractor:
    def extract(records: Records) -> pa.Array:
        return pa.array((records.field("flags") & np.uint8(bit)) != 0)

    return extract


def _record_index(records: Records) -> pa.Array:
    return pa.array(records.record_index())


_HEADER = (
    Column("ts_recv", pa.int64(), _required_ns("ts_recv")),
    Column("ts_event", pa.int64(), _required_ns("ts_event")),
    Column("rtype", pa.uint8(), _int("rtype", pa.uint8())),
    Column("publisher_id", pa.uint16(), _int("publisher_id", pa.uint16())),
    Column("instrument_id", pa.uint32(), _int("instrument_id", pa.uint32())),
)
_FLAGS = (
    Column("flags", pa.uint8(), _int("flags", pa.uint8())),
    Column("is_last", pa.bool_(), _flag(F_LAST)),
    Column("is_tob", pa.bool_(), _flag(F_TOB)),
    Column("is_snapshot", pa.bool_(), _flag(F_SNAPSHOT)),
    Column("is_bad_ts_recv", pa.bool_(), _flag(F_BAD_TS_RECV)),
    Column("is_maybe_bad_book", pa.bool_(), _flag(F_MAYBE_BAD_BOOK)),
)
_RECORD_INDEX = (Column("record_index", pa.int64(), _record_index),)
_TRADE_FIELDS = (
    Column("action", pa.string(), _char("action")),
    Column("side", pa.string(), _char("side")),
    Column("depth", pa.uint8(), _int("depth", pa.uint8())),
    Column("price", pa.int64(), _int("price", pa.int64())),
    Column("size", pa.uint32(), _int("size", pa.uint32())),
    *_FLAGS,
    Column("ts_in_delta", pa.int32(), _int("ts_in_delta", pa.int32())),
    Column("sequence", pa.uint32(), _int("sequence", pa.uint32())),
)

_COLUMNS: dict[SourceSchema, tuple[Column, ...]] = {
    SourceSchema.MBO: (
        *_HEADER,
        Column("action", pa.string(), _char("action")),
        Column("side", pa.string(), _char("side")),
        Column("price", pa.int64(), _int("price", pa.int64())),
        Column("size", pa.uint32(), _int("size", pa.uint32())),
        Column("channel_id", pa.uint8(), _int("channel_id", pa.uint8())),
        Column("order_id", pa.uint64(), _int("order_id", pa.uint64())),
        *_FLAGS,
        Column("ts_in_delta", pa.int32(), _int("ts_in_delta", pa.int32())),
        Column("sequence", pa.uint32(), _int("sequence", pa.uint32())),
        *_RECORD_INDEX,
    ),
    SourceSchema.TRADES: (*_HEADER, *_TRADE_FIELDS, *_RECORD_INDEX),
    SourceSchema.MBP_1: (
        *_HEADER,
        *_TRADE_FIELDS,
        Column("bid_px_00", pa.int64(), _int("bid_px_00", pa.int64())),
        Column("ask_px_00", pa.int64(), _int("ask_px_00", pa.int64())),
        Column("bid_sz_00", pa.uint32(), _int("bid_sz_00", pa.uint32())),
        Column("ask_sz_00", pa.uint32(), _int("ask_sz_00", pa.uint32())),
        Column("bid_ct_00", pa.uint32(), _int("bid_ct_00", pa.uint32())),
        Column("ask_ct_00", pa.uint32(), _int("ask_ct_00", pa.uint32())),
        *_RECORD_INDEX,
    ),
    SourceSchema.DEFINITION: (
        *_HEADER,
        Column("raw_symbol", pa.string(), _text("raw_symbol")),
        Column("instrument_class", pa.string(), _char("instrument_class", nul_is_null=True)),
        Column(
            "security_update_action", pa.string(), _char("security_update_action", nul_is_null=True)
        ),
        Column("security_type", pa.string(), _text("security_type")),
        Column("asset", pa.string(), _text("asset")),
        Column("security_group", pa.string(), _text("group")),
        Column("exchange", pa.string(), _text("exchange")),
        Column("cfi", pa.string(), _text("cfi")),
        Column("currency", pa.string(), _text("currency")),
        Column("underlying", pa.string(), _text("underlying")),
        Column("underlying_id", pa.uint32(), _int("underlying_id", pa.uint32())),
        Column("strike_price", pa.int64(), _int("strike_price", pa.int64())),
        Column("strike_price_currency", pa.string(), _text("strike_price_currency")),
        Column("expiration", pa.int64(), _optional_ns("expiration")),
        Column("activation", pa.int64(), _optional_ns("activation")),
        Column("min_price_increment", pa.int64(), _int("min_price_increment", pa.int64())),
        Column("display_factor", pa.int64(), _int("display_factor", pa.int64())),
        Column("unit_of_measure", pa.string(), _text("unit_of_measure")),
        Column("unit_of_measure_qty", pa.int64(), _int("unit_of_measure_qty", pa.int64())),
        Column("contract_multiplier", pa.int32(), _int32_undef_null("contract_multiplier")),
        Column("min_lot_size_round_lot", pa.int32(), _int32_undef_null("min_lot_size_round_lot")),
        Column("high_limit_price", pa.int64(), _int("high_limit_price", pa.int64())),
        Column("low_limit_price", pa.int64(), _int("low_limit_price", pa.int64())),
        Column("max_price_variation", pa.int64(), _int("max_price_variation", pa.int64())),
        Column("maturity_year", pa.uint16(), _int("maturity_year", pa.uint16())),
        Column("maturity_month", pa.uint8(), _int("maturity_month", pa.uint8())),
        Column(
            "user_defined_instrument",
            pa.string(),
            _char("user_defined_instrument", nul_is_null=True),
        ),
        Column("match_algorithm", pa.string(), _char("match_algorithm", nul_is_null=True)),
        Column("channel_id", pa.uint16(), _int("channel_id", pa.uint16())),
        *_RECORD_INDEX,
    ),
    SourceSchema.STATISTICS: (
        *_HEADER,
        Column("ts_ref", pa.int64(), _optional_ns("ts_ref")),
        Column("stat_type", pa.uint16(), _int("stat_type", pa.uint16())),
        Column("price", pa.int64(), _int("price", pa.int64())),
        Column("quantity", pa.int64(), _stat_quantity),
        Column("update_action", pa.uint8(), _int("update_action", pa.uint8())),
        Column("stat_flags", pa.uint8(), _int("stat_flags", pa.uint8())),
        Column("channel_id", pa.uint16(), _int("channel_id", pa.uint16())),
        Column("ts_in_delta", pa.int32(), _int("ts_in_delta", pa.int32())),
        Column("sequence", pa.uint32(), _int("sequence", pa.uint32())),
        *_RECORD_INDEX,
    ),
}


def columns(schema: SourceSchema) -> tuple[Column, ...]:
    return _COLUMNS[schema]


def arrow_schema(schema: SourceSchema) -> pa.Schema:
    return pa.schema([pa.field(column.name, column.type) for column in _COLUMNS[schema]])


def to_record_batch(
    schema: SourceSchema, chunk: np.ndarray | Records, offset: int = 0
) -> pa.RecordBatch:
    """Convert DBN records (a structured array slice, or some of its rows) to a bronze
    record batch. `offset` is the file position of a structured array's first record, kept
    as `record_index`; a RecordError names the row within the chunk."""
    records = chunk if isinstance(chunk, Records) else Records(chunk, offset)
    try:
        arrays = [column.extract(records) for column in _COLUMNS[schema]]
    except RecordError as error:
        raise RecordError(records.chunk_row(error.row), str(error)) from None
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema(schema))
