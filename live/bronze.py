"""The bronze tables a live session reads besides market-by-order records: definitions and
statistics. Earlier days come from the lake's landed partitions; the live day's records are
routed and converted exactly as ingest lands them (ingest.routing, ingest.bronze_tables), so
the engine's readers (book_engine.definitions, gex.chain) get the relations the warehouse's
models get."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pyarrow as pa

from foundation.lake import Lake
from ingest.bronze_tables import (
    AssetClass,
    Records,
    SourceSchema,
    arrow_schema,
    table_name,
    to_record_batch,
)
from ingest.landing import route_groups
from ingest.routing import (
    OptionDefinitions,
    Router,
    day_to_date,
    epoch_days,
    latest_option_definitions,
)

LIVE_TABLES = {
    table_name(AssetClass.FUTURES, SourceSchema.DEFINITION): SourceSchema.DEFINITION,
    table_name(AssetClass.OPTIONS, SourceSchema.DEFINITION): SourceSchema.DEFINITION,
    table_name(AssetClass.OPTIONS, SourceSchema.STATISTICS): SourceSchema.STATISTICS,
}


class LiveBronze:
    def __init__(self, lake: Lake, day: dt.date) -> None:
        self.day = day
        self.connection = duckdb.connect()
        for table, schema in LIVE_TABLES.items():
            columns = arrow_schema(schema)
            live = pa.schema([*columns, ("symbol", pa.string()), ("dt", pa.date32())])
            self.connection.register(f"{table}_empty", live.empty_table())
            self.connection.execute(f"create table live_{table} as select * from {table}_empty")
            self.connection.unregister(f"{table}_empty")
            names = ", ".join(live.names)
            sources = [f"select {names} from live_{table}"]
            if lake.is_landed(table):
                sources.insert(
                    0,
                    f"select {names} from {lake.read_bronze_sql(table)} "
                    f"where dt < DATE '{day.isoformat()}'",
                )
            self.connection.execute(f"create view {table} as " + " union all ".join(sources))

    def relation(self, table: str) -> duckdb.DuckDBPyRelation:
        return self.connection.table(table)

    def land(self, router: Router, schema: SourceSchema, records: np.ndarray, offset: int) -> None:
        """The records' rows of the live tables, routed as ingest routes them; other days and
        filtered rows are left out as ingest leaves them out."""
        days = epoch_days(records["ts_recv"])
        route_ids = router.route_rows(records, days, offset)
        for route_id, day, rows in route_groups(route_ids, days):
            if route_id < 0:
                continue
            route = router.landed[route_id]
            if route.table not in LIVE_TABLES:
                continue
            part = to_record_batch(schema, Records(records, offset, rows))
            part = part.append_column("symbol", pa.array([route.symbol] * part.num_rows))
            part = part.append_column("dt", pa.array([day_to_date(day)] * part.num_rows))
            self.connection.register("live_rows", part)
            self.connection.execute(f"insert into live_{route.table} select * from live_rows")
            self.connection.unregister("live_rows")


class LiveOptionDefinitions(OptionDefinitions):
    """Option routing over the live bronze definitions (earlier days and the feed's own)."""

    def __init__(self, bronze: LiveBronze) -> None:
        self._bronze = bronze
        self._known = {}

    def _query(self, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], tuple[str, str] | None]:
        found: dict[tuple[int, int], tuple[str, str] | None] = dict.fromkeys(pairs)
        table = table_name(AssetClass.OPTIONS, SourceSchema.DEFINITION)
        found.update(latest_option_definitions(self._bronze.connection, table, pairs))
        return found
