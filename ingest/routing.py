"""Which bronze table and partition each record belongs to.

Futures are told apart by their raw symbol in the file's own symbology (an outright `ESM4`
lands; a spread `ESM4-ESU4` or a user-defined `UD:...` instrument is filtered out). Any other
instrument is an option, routed to its underlying future through the option definitions
already landed in bronze for that day (the latest definition on or before it): option files
therefore need their day's definitions landed first, which ingest does by landing every
definition file before anything else.
Definition records route themselves by their own instrument class.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
from databento.common.symbology import InstrumentMap

from foundation.dbn_facts import NANOS_PER_DAY
from foundation.lake import Lake
from ingest.bronze_tables import AssetClass, SourceSchema, table_name
from ingest.errors import IngestError

OUTRIGHT_FUTURE = re.compile(r"^[A-Z][A-Z0-9]{0,3}[FGHJKMNQUVXZ]\d{1,2}$")
FUTURES_COMBINATION = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z][A-Z0-9]*)+$")
USER_DEFINED_PREFIX = "UD:"
OPTION_CLASSES = frozenset({"C", "P"})
EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class Route:
    """A destination: bronze table and partition symbol (the date comes from each record)."""

    table: str
    symbol: str


def epoch_days(ts_recv: np.ndarray) -> np.ndarray:
    return (ts_recv // np.uint64(NANOS_PER_DAY)).astype(np.int64)


def day_to_date(day: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(day))


class OptionDefinitions:
    """Option instrument -> (instrument class, underlying) from landed bronze definitions."""

    def __init__(self, lake: Lake) -> None:
        self._lake = lake
        self._known: dict[tuple[int, int], tuple[str, str] | None] = {}

    def lookup(self, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], tuple[str, str] | None]:
        """For (instrument_id, epoch day) pairs, the latest definition on or before that day."""
        missing = [pair for pair in pairs if pair not in self._known]
        if missing:
            self._known.update(self._query(missing))
        return {pair: self._known[pair] for pair in pairs}

    def _query(self, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], tuple[str, str] | None]:
        found: dict[tuple[int, int], tuple[str, str] | None] = dict.fromkeys(pairs)
        definitions = table_name(AssetClass.OPTIONS, SourceSchema.DEFINITION)
        if not self._lake.is_landed(definitions):
            return found
        connection = duckdb.connect()
        try:
            found.update(
                latest_option_definitions(
                    connection, self._lake.read_bronze_sql(definitions), pairs
                )
            )
        finally:
            connection.close()
        return found


def latest_option_definitions(
    connection: duckdb.DuckDBPyConnection, definitions: str, pairs: list[tuple[int, int]]
) -> dict[tuple[int, int], tuple[str, str]]:
    """(instrument class, underlying) of each (instrument_id, epoch day) pair with a definition
    on or before that day in `definitions` (a relation of bronze options_definitions rows):
    the latest day's, of that day the last record."""
    wanted = pa.table(
        {
            "instrument_id": pa.array([pair[0] for pair in pairs], type=pa.uint32()),
            "dt": pa.array([day_to_date(pair[1]) for pair in pairs], type=pa.date32()),
        }
    )
    connection.register("wanted_definitions", wanted)
    try:
        rows = connection.execute(
            f"""
            with definitions as (
                select instrument_id, dt, instrument_class, underlying
                from {definitions}
                qualify row_number() over (
                    partition by instrument_id, dt order by record_index desc
                ) = 1
            )
            select wanted.instrument_id, wanted.dt, definitions.instrument_class,
                definitions.underlying
            from wanted_definitions as wanted
            asof join definitions
                on wanted.instrument_id = definitions.instrument_id
                and wanted.dt >= definitions.dt
            """
        ).fetchall()
    finally:
        connection.unregister("wanted_definitions")
    return {
        (int(instrument_id), (day - EPOCH).days): (instrument_class, underlying)
        for instrument_id, day, instrument_class, underlying in rows
    }


class Router:
    """Routes the rows of each decoded chunk; one instance per source file.

    A row's route id is an index into `landed` (>= 0) or, for rows that are not landed,
    `-1 - i` with i an index into `filtered_reasons`.
    """

    def __init__(
        self,
        path: Path,
        schema: SourceSchema,
        symbology: InstrumentMap,
        option_definitions: OptionDefinitions,
    ) -> None:
        self.path = path
        self.schema = schema
        self._symbology = symbology
        self._option_definitions = option_definitions
        self.landed: list[Route] = []
        self.filtered_reasons: list[str] = []
        self._ids: dict[Route | str, int] = {}
        self._pair_route: dict[tuple[int, int], int] = {}
        self._known_keys = np.zeros(0, np.int64)  # (instrument id << 32 | day), sorted
        self._known_routes = np.zeros(0, np.int64)  # the route id of each known key

    def route_rows(self, chunk: np.ndarray, days: np.ndarray, offset: int) -> np.ndarray:
        """Route id per row; `offset` is the file position of the chunk's first record."""
        if self.schema is SourceSchema.DEFINITION:
            return self._route_definitions(chunk, offset)
        keys = (chunk["instrument_id"].astype(np.int64) << 32) | days
        # look the keys up among those already routed (sorted): a binary search over a few
        # (futures) or a few thousand (options) keys instead of sorting the chunk
        slots = np.searchsorted(self._known_keys, keys)
        if (
            len(self._known_keys) == 0
            or not (self._known_keys[np.minimum(slots, len(self._known_keys) - 1)] == keys).all()
        ):
            self._learn(np.unique(keys[~np.isin(keys, self._known_keys)]))
            slots = np.searchsorted(self._known_keys, keys)
        return self._known_routes[slots]

    def _learn(self, new_keys: np.ndarray) -> None:
        """Route (instrument id, day) keys seen for the first time, in key order."""
        pairs = [(int(key >> 32), int(key & 0xFFFFFFFF)) for key in new_keys]
        self._resolve(pairs)
        keys = np.concatenate([self._known_keys, new_keys])
        routes = np.concatenate(
            [self._known_routes, np.array([self._pair_route[pair] for pair in pairs], np.int64)]
        )
        order = np.argsort(keys)
        self._known_keys, self._known_routes = keys[order], routes[order]

    def _land(self, table: str, symbol: str) -> int:
        route = Route(table, symbol)
        if route not in self._ids:
            self._ids[route] = len(self.landed)
            self.landed.append(route)
        return self._ids[route]

    def _filter(self, reason: str) -> int:
        if reason not in self._ids:
            self._ids[reason] = -1 - len(self.filtered_reasons)
            self.filtered_reasons.append(reason)
        return self._ids[reason]

    def _resolve(self, pairs: list[tuple[int, int]]) -> None:
        futures_table = table_name(AssetClass.FUTURES, self.schema)
        options_table = table_name(AssetClass.OPTIONS, self.schema)
        needs_definition: list[tuple[int, int]] = []
        symbols: dict[tuple[int, int], str | None] = {}
        for pair in pairs:
            symbol = self._symbology.resolve(pair[0], day_to_date(pair[1]))
            symbols[pair] = symbol
            if symbol is not None and OUTRIGHT_FUTURE.match(symbol):
                self._pair_route[pair] = self._land(futures_table, symbol)
            elif symbol is not None and FUTURES_COMBINATION.match(symbol):
                self._pair_route[pair] = self._filter(f"futures spread {symbol}")
            elif symbol is not None and symbol.startswith(USER_DEFINED_PREFIX):
                self._pair_route[pair] = self._filter(f"user-defined instrument {symbol}")
            else:
                needs_definition.append(pair)
        if not needs_definition:
            return
        definitions = self._option_definitions.lookup(needs_definition)
        for pair in needs_definition:
            definition = definitions[pair]
            label = symbols[pair] or "no symbol in the file's symbology"
            if definition is None:
                raise IngestError(
                    f"{self.path}: instrument {pair[0]} ({label}) on {day_to_date(pair[1])} is "
                    "not a futures outright or spread by its symbol and has no option definition "
                    "landed on or before that day: put that day's definition file in the raw folder"
                )
            instrument_class, underlying = definition
            if instrument_class in OPTION_CLASSES:
                self._pair_route[pair] = self._land(options_table, underlying)
            else:
                self._pair_route[pair] = self._filter(
                    f"instrument class {instrument_class} ({label})"
                )

    def _route_definitions(self, chunk: np.ndarray, offset: int) -> np.ndarray:
        classes = chunk["instrument_class"]
        options = (classes == b"C") | (classes == b"P")
        futures = (classes == b"F") | (~options & np.char.startswith(chunk["cfi"], b"F"))
        route_ids = np.empty(len(chunk), dtype=np.int64)
        for mask, table, key_field in (
            (futures, table_name(AssetClass.FUTURES, SourceSchema.DEFINITION), "raw_symbol"),
            (options, table_name(AssetClass.OPTIONS, SourceSchema.DEFINITION), "underlying"),
        ):
            rows = np.flatnonzero(mask)
            keys, inverse = np.unique(chunk[key_field][rows], return_inverse=True)
            if (keys == b"").any():
                row = rows[np.flatnonzero(chunk[key_field][rows] == b"")[0]]
                raise IngestError(
                    f"{self.path}: record {offset + row}, definition "
                    f"{chunk['raw_symbol'][row].decode()!r} (instrument "
                    f"{int(chunk['instrument_id'][row])}) has no {key_field}"
                )
            ids = np.array([self._land(table, key.decode()) for key in keys], dtype=np.int64)
            route_ids[rows] = ids[inverse]
        rest = np.flatnonzero(~futures & ~options)
        classes_rest, inverse = np.unique(classes[rest], return_inverse=True)
        ids = np.array(
            [self._filter(f"instrument class {c.decode() or '?'}") for c in classes_rest],
            dtype=np.int64,
        )
        route_ids[rest] = ids[inverse]
        return route_ids
