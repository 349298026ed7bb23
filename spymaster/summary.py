"""`spymaster summary`: what the warehouse holds, layer by layer."""

from __future__ import annotations

import duckdb

from spymaster.lake import Lake, project_vars

LAYERS = ("bronze", "silver", "gold")


def warehouse_summary(lake: Lake) -> str:
    if not lake.duckdb_path.exists():
        raise FileNotFoundError(f"{lake.duckdb_path}: no warehouse yet (run `spymaster build`)")
    connection = duckdb.connect(str(lake.duckdb_path), read_only=True)
    try:
        return "\n".join(
            [*_tables(connection), "", *_selection(connection), "", *_surfaces(connection)]
        )
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


def _surfaces(connection: duckdb.DuckDBPyConnection) -> list[str]:
    rows = connection.execute(
        """
        with book as (
            select dt, symbol, count(*) as seconds, avg(book_valid::int) as valid_share,
                avg((best_ask_price - best_bid_price) / {tick})
                    filter (where book_valid) as mean_spread_ticks
            from silver.book_snapshot_1s group by dt, symbol
        ),
        flow as (
            select dt, count(*) as depth_rows, sum(add_qty) as added, sum(pull_qty) as pulled,
                sum(fill_qty) as filled
            from silver.depth_and_flow_1s group by dt
        )
        select book.dt, book.symbol, book.seconds, book.valid_share, book.mean_spread_ticks,
            coalesce(flow.depth_rows, 0), flow.added, flow.pulled, flow.filled
        from book left join flow using (dt) order by book.dt
        """.format(tick=float(project_vars()["futures_tick_size"]))
    ).fetchall()
    lines = [
        "surfaces per included day (seconds, valid, mean spread in ticks, depth rows, "
        "added / pulled / filled contracts):"
    ]
    for day, symbol, seconds, valid, spread, depth_rows, added, pulled, filled in rows:
        lines.append(
            f"  {day}  {symbol:<6} {seconds:>7,}  {valid:5.1%}  {spread or 0:5.2f}  "
            f"{depth_rows:>11,}  {added or 0:>9,} / {pulled or 0:>9,} / {filled or 0:>9,}"
        )
    return lines
