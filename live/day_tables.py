"""The live day's tables: one in-memory DuckDB whose `spymaster` catalog has the warehouse's
schemas and tables, so compiled SQL and the HUD's queries run unchanged. A live model's
relation there is the warehouse's sessions before the day followed by the live day's rows
(held in the in-memory database's own catalog); every other relation is the warehouse's.

Rows come from several threads (the feed's, one per stage): a table's rows are appended under
its own lock, and each insert is committed before the table's version moves, so a reader that
sees a version sees its rows."""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from collections.abc import Collection, Mapping
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from live.models import LiveModel, LiveSqlError

DATABASE = "spymaster"  # the warehouse file's catalog: what compiled SQL names
LIVE_ROWS = "memory"  # the live day's rows (the in-memory database's own catalog)


class RowTimes:
    """The times one column of a table holds, as disjoint closed intervals of ns (each insert
    adds its rows' min and max; rows replaced are not forgotten: an over-approximation), so
    whether a range may hold rows is known without a query."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self._lock = threading.Lock()

    def add(self, low: int, high: int) -> None:
        with self._lock:
            first = bisect.bisect_left(self.ends, low)  # the intervals [low, high] overlaps
            after = bisect.bisect_right(self.starts, high)
            if first < after:
                low, high = min(low, self.starts[first]), max(high, self.ends[after - 1])
            self.starts[first:after] = [low]
            self.ends[first:after] = [high]

    def overlaps(self, lower: float, upper: float) -> bool:
        """Whether a time in [lower, upper) may be held."""
        with self._lock:
            before = bisect.bisect_left(self.starts, upper)
            return before > 0 and self.ends[before - 1] >= lower


class LiveTables:
    """The live day's rows of every live model, beside the warehouse's earlier sessions."""

    def __init__(self, warehouse: Path, day: dt.date, models: Mapping[str, LiveModel]) -> None:
        self.day = day
        self.models = models
        self.connection = duckdb.connect()
        try:
            self.connection.execute(f"attach '{_quoted(warehouse)}' as warehouse (read_only)")
        except duckdb.Error as error:
            raise LiveSqlError(
                f"{warehouse}: cannot open the warehouse read-only ({error})"
            ) from None
        self.connection.execute(f"attach ':memory:' as {DATABASE}")
        # a live statement reads a few seconds' rows, on each stage's own thread: run on that
        # thread alone (DuckDB's worker threads cost more than they save here, and the stages
        # would take their turns on them)
        self.connection.execute("set threads = 1")
        live = [model for model in models.values() if model.is_live]
        read = {parent for model in live for parent in model.parents}
        # a view of the warehouse that no live model reads (options_quotes_1s: a row per
        # option and second, as many as the engine's) is a view live too: its rows are
        # computed for --emit and the HUD's cursor, never stored a second time (read through a
        # view, the views book_snapshot_1s and depth_and_flow_1s made their readers two to
        # three times slower: those are stored)
        self.views = {
            model.name
            for model in live
            if model.recompute == "tail" and model.materialized == "view" and model.name not in read
        }
        self._columns = self._warehouse_columns()
        self._mirror(live)
        self._check_history(live)
        # a table's version moves with its rows: a session model reruns when a parent's moved
        self.version: dict[str, int] = {model.name: 0 for model in live}
        self._locks = {model.name: threading.Lock() for model in live}
        self._pending: dict[str, list[pa.Table]] = {}
        self._pending_lock = threading.Lock()
        # the time columns runs ask about: which times each table's rows hold
        self._times: dict[tuple[str, str], RowTimes] = {}
        self._local = threading.local()  # each thread's own cursor
        self._schemas: dict[str, pa.Schema] = {}

    # -- layout ---------------------------------------------------------------------------

    def _warehouse_columns(self) -> dict[str, dict[str, str]]:
        columns: dict[str, dict[str, str]] = {}
        for table, column, kind in self.connection.execute(
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_catalog = 'warehouse' order by table_name, ordinal_position"
        ).fetchall():
            columns.setdefault(table, {})[column] = kind
        return columns

    def _mirror(self, live: list[LiveModel]) -> None:
        """`spymaster.<schema>.<table>`: the warehouse's relation, and for a live model the
        warehouse's sessions before the day followed by the live day's rows."""
        relations = self.connection.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = 'warehouse' order by all"
        ).fetchall()
        missing = sorted({m.name for m in live} - {name for _, name in relations})
        if missing:
            raise LiveSqlError(
                f"the warehouse has no {', '.join(missing)}: run `spymaster build` first"
            )
        names = {model.name for model in live}
        for schema, name in relations:
            for catalog in (DATABASE, LIVE_ROWS):
                self.connection.execute(f'create schema if not exists {catalog}."{schema}"')
            source = f'warehouse."{schema}"."{name}"'
            if name in self.views:
                continue
            if name not in names:
                self.connection.execute(
                    f'create view {DATABASE}."{schema}"."{name}" as select * from {source}'
                )
                continue
            rows = f'{LIVE_ROWS}."{schema}"."{name}"'
            self.connection.execute(f"create table {rows} as select * from {source} limit 0")
            self.connection.execute(
                f'create view {DATABASE}."{schema}"."{name}" as select * from {source} '
                f"where dt < DATE '{self.day.isoformat()}' union all select * from {rows}"
            )
        for name in sorted(self.views):  # after every relation their compiled SQL reads
            model = self.models[name]
            self.connection.execute(
                f'create view {DATABASE}."{model.schema}"."{name}" as {model.compiled_sql()}'
            )

    def _check_history(self, live: list[LiveModel]) -> None:
        """A model read live but not declared live must not be per session: its rows of the
        day would be the warehouse's (a replayed day's future) or missing (a new day)."""
        for model in live:
            if model.source is not None:
                continue
            for parent in model.parents:
                if not self.models[parent].is_live and "dt" in self._columns.get(parent, {}):
                    raise LiveSqlError(
                        f"{model.name} reads {parent}, which has rows per session (dt) but no "
                        "meta.live: declare how it is kept current live"
                    )

    def column_type(self, table: str, column: str) -> str:
        kind = self._columns.get(table, {}).get(column)
        if kind is None:
            raise LiveSqlError(f"{table}: meta.live names no column {column!r}")
        return kind

    def literal(self, table: str, column: str, ns: float) -> str:
        """`ns` as a SQL value of a time column."""
        kind = self.column_type(table, column)
        ns = int(min(max(ns, -(2**62)), 2**62))
        if kind == "BIGINT":
            return str(ns)
        if kind.startswith("TIMESTAMP"):
            return f"make_timestamp({ns // 1000})"
        raise LiveSqlError(f"{table}: time column {column} of type {kind} is not a time")

    def relation(self, table: str) -> str:
        """The live day's rows of a live model (as SQL names them)."""
        model = self.models[table]
        return f'{LIVE_ROWS}."{model.schema}"."{table}"'

    # -- rows in --------------------------------------------------------------------------

    def add(self, table: str, rows: pa.Table | pa.RecordBatch) -> None:
        """A source's new rows, kept until a run reads them (`flush`): a paced feed delivers
        hundreds of small batches a second, and each INSERT has a fixed cost."""
        if not rows.num_rows:
            return
        part = rows if isinstance(rows, pa.Table) else pa.Table.from_batches([rows])
        with self._pending_lock:
            self._pending.setdefault(table, []).append(part)

    def flush(self, tables: Collection[str]) -> None:
        """Every row added to `tables` so far, inserted (one chunk a table: DuckDB's Arrow scan
        costs about 0.3 ms a chunk, and a paced second brings hundreds)."""
        for table in sorted(tables):
            with self._locks[table]:
                with self._pending_lock:
                    parts = self._pending.pop(table, [])
                if parts:
                    self._append(table, pa.concat_tables(parts).combine_chunks())

    def append(self, table: str, rows: pa.Table) -> None:
        if rows.num_rows:
            with self._locks[table]:
                self._append(table, rows)

    def _append(self, table: str, rows: pa.Table) -> None:
        live_insert = rows  # read by DuckDB's replacement scan (half a register's cost)
        self.cursor().execute(
            f"insert into {self.relation(table)} by name select * from live_insert"
        )
        del live_insert
        self.inserted(table, rows)

    def lock(self, table: str) -> threading.Lock:
        """Held by whoever inserts into the table."""
        return self._locks[table]

    def inserted(self, table: str, rows: pa.Table) -> None:
        """`rows` were just committed to the table (under its lock)."""
        if rows.num_rows:
            self._held(table, rows)
            self.version[table] += 1

    def replace(self, table: str, rows: pa.Table) -> bool:
        """The table's rows become `rows` (a session model over the session so far), in one
        transaction; False when they already were."""
        with self._locks[table]:
            if rows.equals(self.rows(table)):
                return False
            db = self.cursor()
            db.execute("begin transaction")
            try:
                db.execute(f"delete from {self.relation(table)}")
                if rows.num_rows:
                    live_insert = rows  # read by DuckDB's replacement scan
                    db.execute(
                        f"insert into {self.relation(table)} by name select * from live_insert"
                    )
                    del live_insert
                db.execute("commit")
            except BaseException:
                db.execute("rollback")
                raise
            self._held(table, rows)
            self.version[table] += 1
            return True

    # -- rows out -------------------------------------------------------------------------

    def run(self, name: str, statement: str) -> pa.Table:
        """A statement's rows, on this thread's cursor; a failure names the model."""
        try:
            return self.cursor().sql(statement).to_arrow_table()
        except duckdb.Error as error:
            raise LiveSqlError(f"{name}: {error}") from None

    def schema(self, table: str) -> pa.Schema:
        """A model's columns as the live day's relation holds them."""
        if table not in self._schemas:
            model = self.models[table]
            self._schemas[table] = (
                self.cursor()
                .sql(f'select * from {DATABASE}."{model.schema}"."{table}" limit 0')
                .to_arrow_table()
                .schema
            )
        return self._schemas[table]

    def rows(self, table: str) -> pa.Table:
        """The live day's rows of a live model."""
        return self.cursor().sql(f"select * from {self.relation(table)}").to_arrow_table()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's own cursor (DuckDB's connections are not shared between threads)."""
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._local.cursor = self.connection.cursor()
        return cursor

    def catalog_cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor on the `spymaster` catalog (what the HUD queries)."""
        cursor = self.connection.cursor()
        cursor.execute(f"use {DATABASE}")
        return cursor

    # -- which times a table holds --------------------------------------------------------

    def track(self, table: str, column: str) -> None:
        """Note the times `column` of `table` holds from now on (before any row is added)."""
        self.column_type(table, column)
        self._times.setdefault((table, column), RowTimes())

    def may_hold(self, table: str, column: str, lower: float, upper: float) -> bool:
        """Whether the table's rows may have a `column` time in [lower, upper)."""
        return self._times[(table, column)].overlaps(lower, upper)

    def _held(self, table: str, rows: pa.Table) -> None:
        for (name, column), times in self._times.items():
            if name == table and rows.num_rows:
                low, high = pc.min_max(pc.cast(rows.column(column), pa.int64())).values()
                if low.is_valid:
                    scale = _ns_per_unit(rows.schema.field(column).type)
                    times.add(low.as_py() * scale, high.as_py() * scale)

    def close(self) -> None:
        self.connection.close()


def _ns_per_unit(kind: pa.DataType) -> int:
    if pa.types.is_timestamp(kind):
        return {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}[kind.unit]
    return 1


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")
