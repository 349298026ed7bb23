"""Query a test lake's bronze Parquet directly with DuckDB, or compare its files' bytes."""

from __future__ import annotations

import hashlib
from typing import Any

import duckdb

from foundation.lake import Lake
from ingest.bronze_tables import ALL_TABLES


def bronze_sql(lake: Lake, sql: str) -> list[tuple[Any, ...]]:
    """Run `sql` with every landed bronze table available under its table name."""
    connection = duckdb.connect()
    for table in ALL_TABLES:
        if lake.is_landed(table):
            connection.execute(
                f"create view {table} as select * from {lake.read_bronze_sql(table)}"
            )
    rows = connection.execute(sql).fetchall()
    connection.close()
    return rows


def bronze_files(lake: Lake) -> dict[str, str]:
    """SHA-256 of every bronze file but ingest's own bookkeeping, by path in the lake."""
    return {
        str(path.relative_to(lake.bronze)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(lake.bronze.rglob("*"))
        if path.is_file() and "_ingest" not in path.parts
    }
