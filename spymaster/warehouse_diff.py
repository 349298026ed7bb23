"""`spymaster diff`: two lakes' warehouses compared table by table, row for row.

Speed work must not change outputs: build the same raw files before and after a change into
two lakes; every table and view of the silver and gold layers must then hold the same rows
(bronze holds the raw records, whose landing the ingest tests check). Rows are compared as
multisets on every column but build_fingerprint, which names inputs and engine settings rather
than a value: row counts and summed row hashes first, EXCEPT ALL both ways where those differ.
Text naming a path inside either lake (an index's folder) is compared relative to it, so the
same market built into two folders is the same. A table only one side has is a difference."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from foundation.lake import Lake

IGNORED_COLUMNS = ("build_fingerprint",)
SCHEMAS = ("silver", "gold")


@dataclass(frozen=True)
class TableDiff:
    table: str
    rows: int
    only_here: int
    only_there: int
    note: str = ""

    @property
    def same(self) -> bool:
        return not self.note and self.only_here == 0 and self.only_there == 0


def _tables(
    connection: duckdb.DuckDBPyConnection, catalog: str
) -> dict[str, list[tuple[str, str]]]:
    """(column, type) of every compared table, in column order."""
    rows = connection.execute(
        "select table_schema || '.' || table_name, "
        "list((column_name, data_type) order by ordinal_position) "
        "from information_schema.columns where table_catalog = ? and table_schema in "
        f"({', '.join(repr(schema) for schema in SCHEMAS)}) group by all",
        [catalog],
    ).fetchall()
    return {
        table: [tuple(column) for column in columns if column[0] not in IGNORED_COLUMNS]
        for table, columns in rows
    }


def _projection(columns: list[tuple[str, str]], lakes: tuple[Lake, Lake]) -> str:
    """The compared columns; in text, either lake's folder reads `<lake>/`."""

    def relative(name: str) -> str:
        expression = f'"{name}"'
        for lake in lakes:
            root = str(lake.root).replace("'", "''")
            expression = f"replace({expression}, '{root}/', '<lake>/')"
        return f'{expression} as "{name}"'

    return ", ".join(
        relative(name) if data_type == "VARCHAR" else f'"{name}"' for name, data_type in columns
    )


def diff_warehouses(lake: Lake, other: Lake) -> list[TableDiff]:
    for side in (lake, other):
        if not side.duckdb_path.exists():
            raise FileNotFoundError(f"{side.duckdb_path}: no warehouse (run `spymaster build`)")
    connection = duckdb.connect(str(lake.duckdb_path), read_only=True)
    try:
        connection.execute(f"attach '{other.duckdb_path}' as other (read_only)")
        here_catalog = connection.execute("select current_database()").fetchone()[0]
        here, there = _tables(connection, here_catalog), _tables(connection, "other")
        diffs = []
        for table in sorted(here.keys() | there.keys()):
            if table not in there or table not in here:
                side = "this lake" if table in here else "the other lake"
                diffs.append(TableDiff(table, 0, 0, 0, f"only in {side}"))
                continue
            if here[table] != there[table]:
                diffs.append(TableDiff(table, 0, 0, 0, "different columns"))
                continue
            mine = f"select {_projection(here[table], (lake, other))} from {here_catalog}.{table}"
            theirs = f"select {_projection(there[table], (lake, other))} from other.{table}"
            names = ", ".join(f'"{name}"' for name, _ in here[table])
            diffs.append(TableDiff(table, *compare_rows(connection, mine, theirs, names)))
        return diffs
    finally:
        connection.close()


def compare_rows(
    connection: duckdb.DuckDBPyConnection, mine: str, theirs: str, columns: str
) -> tuple[int, int, int]:
    """Two queries' rows as multisets over `columns` (quoted, comma-separated): rows of
    `mine`, rows only in `mine`, rows only in `theirs`. One scan a side: equal row counts and
    sums of row hashes are equal multisets but for a 2^-64 chance; rows are matched (EXCEPT
    ALL both ways) only where those differ."""
    summary = f"select count(*), sum(hash({columns})::hugeint) from "
    rows, mine_hash = connection.execute(f"{summary} ({mine})").fetchone()
    if (rows, mine_hash) == connection.execute(f"{summary} ({theirs})").fetchone():
        return rows, 0, 0
    only_mine, only_theirs = connection.execute(
        f"select (select count(*) from ({mine} except all {theirs})), "
        f"(select count(*) from ({theirs} except all {mine}))"
    ).fetchone()
    return rows, only_mine, only_theirs


def format_diff(diffs: list[TableDiff]) -> str:
    def verdict(diff: TableDiff) -> str:
        if diff.same:
            return "same"
        return diff.note or f"{diff.only_here:,} rows only here, {diff.only_there:,} only there"

    lines = [f"  {d.table:<48} {d.rows:>12,} rows  {verdict(d)}" for d in diffs]
    differing = sum(not d.same for d in diffs)
    outcome = f"{differing} differ" if differing else "all the same"
    lines.append(f"{len(diffs)} tables, {outcome}")
    return "\n".join(lines)
