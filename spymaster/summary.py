"""`spymaster summary`: what the warehouse holds, layer by layer."""

from __future__ import annotations

import duckdb

from spymaster.lake import Lake

LAYERS = ("bronze", "silver", "gold")


def warehouse_summary(lake: Lake) -> str:
    if not lake.duckdb_path.exists():
        raise FileNotFoundError(f"{lake.duckdb_path}: no warehouse yet (run `spymaster build`)")
    connection = duckdb.connect(str(lake.duckdb_path), read_only=True)
    try:
        return "\n".join([*_tables(connection), "", *_selection(connection)])
    finally:
        connection.close()


def _tables(connection: duckdb.DuckDBPyConnection) -> list[str]:
    tables = connection.execute(
        "select table_schema, table_name, table_type from information_schema.tables "
        "where table_schema in ('bronze', 'silver', 'gold') order by table_schema, table_name"
    ).fetchall()
    lines = ["tables (rows):"]
    for schema, name, kind in sorted(tables, key=lambda row: (LAYERS.index(row[0]), row[1])):
        (rows,) = connection.execute(f'select count(*) from "{schema}"."{name}"').fetchone()
        label = "view" if kind == "VIEW" else "table"
        lines.append(f"  {schema}.{name:<32} {rows:>14,}  {label}")
    return lines


def _selection(connection: duckdb.DuckDBPyConnection) -> list[str]:
    rows = connection.execute(
        "select dt, coalesce(selected_symbol, '-'), selected_volume, dominance, "
        "coalesce(exclusion_reason, 'included') from silver.contract_day_selection order by dt"
    ).fetchall()
    lines = ["contract-day selection (dt, contract, window volume, dominance, status):"]
    for day, symbol, volume, dominance, status in rows:
        share = f"{dominance:.2f}" if dominance is not None else "   -"
        lines.append(f"  {day}  {symbol:<6} {volume:>10,}  {share}  {status}")
    return lines
