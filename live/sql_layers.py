"""The warehouse's SQL layers on a live session: every model declared `meta.live` runs its
compiled SQL (what `dbt compile` renders from the same models the warehouse builds) over the
session so far, inside one in-memory DuckDB whose `spymaster` catalog has the warehouse's
schemas and tables, so the compiled SQL and the HUD's queries run unchanged.

A model's `meta.live` says how it is kept current:
- `source`: filled by the live session (the engine's tables, the contract's futures records,
  the contract choice, the retrieval signals);
- `recompute: before_session`: needs only earlier sessions (calibration, the calendar): run once;
- `recompute: tail`: rows keyed by `time_column`, complete `period_seconds` after it; each run
  reads its parents from `lookback_seconds` before its first new row and keeps the new rows;
- `recompute: session`: small per-day tables (bars, levels, episodes, triggers) recomputed over
  the session so far.
Every model computes each session on its own, so live rows read only the live day; history (an
earlier session's calibration, a neighbour's outcome) comes from the warehouse, before the day.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import json
import math
import os
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb
import pyarrow as pa

from foundation.lake import Lake
from foundation.project import PROJECT_ROOT, dbt_command, project_digest
from live.array_models import (
    ArrayModel,
    ArrayModels,
    ArrayProcess,
    ArrayProcessError,
    RecentRows,
    TimeSpans,
)
from live.array_sql import ArrayQuery, ArraySqlError, HeldTable, TableRows

NS = 1_000_000_000
NS_PER_UNIT = {"s": NS, "ms": 1_000_000, "us": 1_000, "ns": 1}
DATABASE = "spymaster"  # the warehouse file's catalog: what compiled SQL names
LIVE_ROWS = "memory"  # the live day's rows (the in-memory database's own catalog)
ARRAY_SPAN_NS = 300 * NS  # the most market time an array model computes at once
# the array models computed from this source's rows run in a process of their own, while the
# feed's thread computes the others (live.array_models)
PARALLEL_SOURCE = "options_engine"

Emit = Callable[[str, pa.Table], None]

# Live queries read their few rows through the DB-API result: the relation API's
# `sql().to_arrow_table()` binds a query twice, and binding is most of a small query's cost
warnings.filterwarnings(
    "ignore",
    message="Arrow output on a DB-API result makes an extra copy",
    category=UserWarning,
    module=__name__,
)


class LiveSqlError(Exception):
    """The SQL layers cannot run live; the message names the model or relation."""


@dataclass(frozen=True)
class LiveModel:
    name: str
    schema: str
    relation: str  # as compiled SQL names it: "spymaster"."<schema>"."<name>"
    sql: str | None
    parents: tuple[str, ...]
    source: str | None
    recompute: str | None
    time_column: str | None = None
    period_ns: int = 0
    lookback_ns: int = 0
    # (parent, its column): the parent whose rows this model's rows come from, when not all
    # time-keyed parents make rows (a trigger vector per triggered episode)
    rows_from: tuple[str, str] | None = None
    materialized: str | None = None  # as dbt builds it in the warehouse


# under the project's target/; v1: the fields _compiled_nodes keeps
COMPILED_NODES = "live-models-v1-{digest}.json"


@cache
def compile_models() -> dict[str, LiveModel]:
    """Every model and seed of the project as `dbt compile` renders it with the project's vars,
    against a scratch lake (compiling never opens the warehouse). Compiled once per version of
    the project's files and dbt (target/live-models-<digest>.json): a compile costs 10-17 s
    of every live start."""
    cached = PROJECT_ROOT / "target" / COMPILED_NODES.format(digest=project_digest())
    if cached.exists():
        nodes = json.loads(cached.read_text())
    else:
        nodes = _compiled_nodes()
        cached.parent.mkdir(parents=True, exist_ok=True)
        part = cached.with_name(f".{cached.name}.{os.getpid()}.part")
        part.write_text(json.dumps(nodes, sort_keys=True))
        part.replace(cached)
    models = {}
    for node in nodes:
        live = (node["config"].get("meta") or {}).get("live") or {}
        models[node["name"]] = LiveModel(
            name=node["name"],
            schema=node["schema"],
            relation=node["relation_name"],
            sql=node.get("compiled_code"),
            parents=tuple(
                parent.split(".")[-1]
                for parent in node.get("depends_on", {}).get("nodes", [])
                if parent.split(".")[0] in ("model", "seed")
            ),
            source=live.get("source"),
            recompute=live.get("recompute"),
            time_column=live.get("time_column"),
            period_ns=int(live.get("period_seconds", 0)) * NS,
            lookback_ns=int(live.get("lookback_seconds", 0)) * NS,
            rows_from=tuple(live["rows_from"].split(".")) if "rows_from" in live else None,
            materialized=node["config"].get("materialized"),
        )
    return models


def _compiled_nodes() -> list[dict]:
    """The models' and seeds' manifest nodes (the fields live reads) from `dbt compile`."""
    with tempfile.TemporaryDirectory(prefix="spymaster-live-") as scratch:
        target = Path(scratch) / "target"
        command = dbt_command(
            ["compile", "--target-path", str(target), "--no-populate-cache", "--quiet"]
        )
        done = subprocess.run(
            command,
            env=Lake(Path(scratch)).environment(),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise LiveSqlError(f"dbt compile failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        manifest = json.loads((target / "manifest.json").read_text())
    fields = ("name", "schema", "relation_name", "compiled_code", "depends_on", "config")
    return sorted(
        (
            {field: node.get(field) for field in fields}
            for node in manifest["nodes"].values()
            if node["resource_type"] in ("model", "seed")
        ),
        key=lambda node: node["name"],
    )


def live_order(models: Mapping[str, LiveModel], first: Collection[str] = ()) -> list[LiveModel]:
    """The live models, each after its live parents; `first` (with what they read) before the
    others."""
    ordered: list[LiveModel] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for parent in models[name].parents:
            if _is_live(models[parent]):
                visit(parent)
        ordered.append(models[name])

    for name in [*sorted(first), *sorted(models)]:
        if _is_live(models[name]):
            visit(name)
    return ordered


def _closure(models: Mapping[str, LiveModel], names: Collection[str]) -> set[str]:
    """`names` and every live model they read, transitively."""
    found: set[str] = set()
    pending = [name for name in names if _is_live(models[name])]
    while pending:
        name = pending.pop()
        if name not in found:
            found.add(name)
            pending += [p for p in models[name].parents if _is_live(models[p])]
    return found


def _is_live(model: LiveModel) -> bool:
    return model.source is not None or model.recompute is not None


class RowTimes:
    """The times one column of a table holds, as disjoint closed intervals of ns (each insert
    adds its rows' min and max; rows replaced are not forgotten: an over-approximation), so
    whether a range may hold rows is known without a query."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self._lock = threading.Lock()  # the table's writer and another thread's reader

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


class LiveWarehouse:
    """The live day's rows of every live model, beside the warehouse's earlier sessions."""

    def __init__(
        self,
        warehouse: Path,
        day: dt.date,
        models: Mapping[str, LiveModel],
        emit: Emit,
        step_ns: int,
        computed: Mapping[str, Callable[[LiveWarehouse], pa.Table]] | None = None,
        first: Collection[str] = (),
        rest_step_ns: int | None = None,
    ) -> None:
        """`computed`: per `meta.live.source` kind computed in Python from the live tables
        (retrieval's signals), the function returning the new rows since its last call.
        `first`: models each step brings up to date before the others (what the HUD draws
        every second); `on_progress`, when set, is called once they are and after the rest.
        `rest_step_ns`: how often the models after them are brought up to date (default:
        every step)."""
        self.day = day
        self.models = models
        self.order = live_order(models, first)
        self._first_count = len(_closure(models, first))  # the head of `order`
        # the `first` models kept up to date second by second run their compiled SQL over
        # arrays (live.array_sql), not as DuckDB queries: on two cores a query's fixed costs
        # (3-20 ms a model) were most of a frame's time; their rows, and the rows they read,
        # go into DuckDB later, with the rest's
        self._arrays = {
            model.name: model
            for model in self.order[: self._first_count]
            if model.recompute == "tail"
        }
        # the tables the other `first` models compute from: their rows are inserted before
        # those models run; the rest's (the contract's records) by the rest's thread, off
        # the frames' path
        self._first_reads = {
            parent
            for model in self.order[: self._first_count]
            if model.source is None
            and model.name not in self._arrays
            and model.recompute != "before_session"  # computed before the day's rows come
            for parent in model.parents
        }
        self.on_progress: Callable[[], None] | None = None
        self.emit = emit
        self.step_ns = step_ns
        self.rest_step_ns = step_ns if rest_step_ns is None else rest_step_ns
        self._rest_stepped_ns = -math.inf
        self.computed = dict(computed or {})
        self.day_start_ns = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()) * NS
        self.day_end_ns = self.day_start_ns + 86_400 * NS
        # each live model's rows are complete before this (sources: set by the session)
        self.until: dict[str, float] = {
            model.name: self.day_start_ns
            for model in self.order
            if model.recompute != "before_session"
        }
        # per source kind, how far its rows were complete at the last step
        self._stepped: dict[str, float] = {}
        # each model's rows before this are all in the database (its rows may reach the
        # database after `until`: they wait there for the rest's thread, which inserts them)
        self.inserted_until: dict[str, float] = dict.fromkeys(self.until, self.day_start_ns)
        # a table's version changes with its rows; a model reruns when a parent's changed
        self.version: dict[str, int] = dict.fromkeys(self.until, 0)
        self._read: dict[str, dict[str, int]] = {}
        self._pending: dict[str, list[pa.Table]] = {}
        # the models after the `first` ones run on a thread of their own: their runs must not
        # hold the next seconds' frames
        self._rest: threading.Thread | None = None
        self._rest_error: BaseException | None = None
        self._owner = threading.current_thread()
        self._local = threading.local()  # the rest's own cursor
        self.connection = duckdb.connect()
        try:
            self.connection.execute(f"attach '{_quoted(warehouse)}' as warehouse (read_only)")
        except duckdb.Error as error:
            raise LiveSqlError(
                f"{warehouse}: cannot open the warehouse read-only ({error})"
            ) from None
        self.connection.execute(f"attach ':memory:' as {DATABASE}")
        # a view of the warehouse that no live model reads (options_quotes_1s: a row per
        # option and second, as many as the engine's) is a view live too: its rows are
        # computed for --emit and the HUD's cursor, never stored a second time
        read = {parent for model in self.order for parent in model.parents}
        self._views = {
            model.name
            for model in self.order
            if model.recompute == "tail"
            and model.materialized == "view"
            and model.name not in self._arrays
            and model.name not in read
        }
        self._mirror()
        self._check_history()
        self._types: dict[tuple[str, str], str] = {}
        for model in self.order:  # every declared column exists
            if model.time_column:
                self._column_type(model, model.time_column)
            if model.rows_from:
                self._column_type(self.models[model.rows_from[0]], model.rows_from[1])
        # per tail model, the (parent, time column) pairs its rows come from; their row times
        self._keyed = {
            model.name: self._rows_from(model) for model in self.order if model.recompute == "tail"
        }
        self._times: dict[tuple[str, str], RowTimes] = {
            pair: RowTimes() for pairs in self._keyed.values() for pair in pairs
        }
        # the array models computed on the feed's thread, and those in a process of their own
        self._array_models = ArrayModels()
        self._parallel: ArrayProcess | None = None
        self._array_reads: set[str] = set()  # every live table an array model reads
        self._prepare_arrays()
        self._first_models = _parallel_first(
            self.order[: self._first_count], set(self._parallel.names if self._parallel else ())
        )
        self._parallel_runs: list[tuple[LiveModel, int]] = []  # asked for, not collected

    # -- layout ---------------------------------------------------------------------------

    def _mirror(self) -> None:
        """`spymaster.<schema>.<table>`: the warehouse's relation, and for a live model the
        warehouse's sessions before the day followed by the live day's rows."""
        relations = self.connection.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = 'warehouse' order by all"
        ).fetchall()
        found = {name for _, name in relations}
        missing = [m.name for m in self.order if m.name not in found]
        if missing:
            raise LiveSqlError(
                f"the warehouse has no {', '.join(missing)}: run `spymaster build` first"
            )
        live = {model.name for model in self.order}
        views = []
        for schema, name in relations:
            for catalog in (DATABASE, LIVE_ROWS):
                self.connection.execute(f'create schema if not exists {catalog}."{schema}"')
            source = f'warehouse."{schema}"."{name}"'
            if name in self._views:
                views.append(self.models[name])
                continue
            if name not in live:
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
        for model in views:  # after every relation its compiled SQL reads
            self.connection.execute(
                f'create view {DATABASE}."{model.schema}"."{model.name}" as {self._sql(model)}'
            )

    def _check_history(self) -> None:
        """A model read live but not declared live must not be per session: its rows of the
        day would be the warehouse's (a replayed day's future) or missing (a new day)."""
        for model in self.order:
            if model.source is not None:
                continue
            for parent in model.parents:
                other = self.models[parent]
                if _is_live(other):
                    continue
                columns = self._columns(other)
                if "dt" in columns:
                    raise LiveSqlError(
                        f"{model.name} reads {parent}, which has rows per session (dt) but no "
                        "meta.live: declare how it is kept current live"
                    )

    def _columns(self, model: LiveModel) -> dict[str, str]:
        return dict(
            self._db.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_catalog = 'warehouse' and table_schema = ? and table_name = ?",
                [model.schema, model.name],
            ).fetchall()
        )

    def _rows_from(self, model: LiveModel) -> list[tuple[str, str]]:
        """The parents (and their time columns) a tail model's rows come from."""
        if model.rows_from is not None:
            return [model.rows_from]
        return [
            (name, self.models[name].time_column)
            for name in model.parents
            if _is_live(self.models[name]) and self.models[name].time_column
        ]

    def _column_type(self, model: LiveModel, column: str) -> str:
        key = (model.name, column)
        if key not in self._types:
            columns = self._columns(model)
            if column not in columns:
                raise LiveSqlError(f"{model.name}: meta.live names no column {column!r}")
            self._types[key] = columns[column]
        return self._types[key]

    def _literal(self, model: LiveModel, ns: float, column: str | None = None) -> str:
        """`ns` as a value of the model's time column (or `column`)."""
        kind = self._column_type(model, column or model.time_column)
        ns = int(min(max(ns, -(2**62)), 2**62))
        if kind == "BIGINT":
            return str(ns)
        if kind.startswith("TIMESTAMP"):
            return f"make_timestamp({ns // 1000})"
        raise LiveSqlError(f"{model.name}: time column {column} of type {kind} is not a time")

    # -- rows in --------------------------------------------------------------------------

    def insert(self, table: str, rows: pa.Table | pa.RecordBatch) -> None:
        """A source's new rows, kept until the next step reads them: a paced feed delivers
        hundreds of small batches a second, and each INSERT has a fixed cost."""
        if not rows.num_rows:
            return
        part = rows if isinstance(rows, pa.Table) else pa.Table.from_batches([rows])
        self._pending.setdefault(table, []).append(part)
        self._track(table, part)

    def _track(self, table: str, rows: pa.Table) -> None:
        """Rows of a table the array models read: held for them, their times noted."""
        if table in self._array_reads:
            spans = TimeSpans(rows)
            self._array_models.add(table, HeldTable(rows), spans)
            if self._parallel is not None:
                self._parallel.add(table, rows)
            self._held(table, spans)

    # -- the models computed over arrays ---------------------------------------------------

    def _prepare_arrays(self) -> None:
        """Parse each array model's compiled SQL, read the tables it reads that are not
        per day, and run it once on no rows: a construct the evaluator does not implement
        is named now, not mid-session. Then the models computed from the options engine's
        rows start in their process."""
        models = self._array_models
        for name, model in self._arrays.items():
            try:
                query = ArrayQuery(self._sql(model), self.connection)
            except ArraySqlError as error:
                raise LiveSqlError(f"{name}: cannot be computed live ({error})") from None
            assert model.time_column is not None  # a tail model's
            models.models[name] = ArrayModel(
                name, query, self._live_schema(model), model.time_column, frozenset(model.parents)
            )
            for parent in (self.models[p] for p in model.parents):
                if _is_live(parent):  # an array model is a tail model: by time if keyed
                    models.recent.setdefault(parent.name, RecentRows(parent.time_column))
                    models.schemas[parent.name] = self._live_schema(parent)
                else:
                    table = self._db.sql(
                        f'select * from {DATABASE}."{parent.schema}"."{parent.name}"'
                    ).to_arrow_table()
                    models.static[(parent.schema, parent.name)] = TableRows(
                        table.schema, [HeldTable(table)]
                    )
        for name in self._arrays:
            model = models.models[name]
            try:
                model.query.run_as(
                    lambda schema, table, model=model: models.input(model, schema, table),
                    model.schema,
                )
            except ArraySqlError as error:
                raise LiveSqlError(f"{name}: cannot be computed live ({error})") from None
        self._array_reads = set(models.recent)
        parallel = {name for name in self._arrays if PARALLEL_SOURCE in self._sources_of(name)}
        if parallel:
            try:
                self._parallel = ArrayProcess(models.subset(parallel))
            except ArrayProcessError as error:
                raise LiveSqlError(str(error)) from None
            self._array_models = models.without(parallel)

    def _sources_of(self, name: str) -> set[str]:
        """The source kinds a model's rows come from."""
        model = self.models[name]
        sources = {model.source} if model.source else set()
        for parent in model.parents:
            if parent in self.models:
                sources |= self._sources_of(parent)
        return sources

    def _sql(self, model: LiveModel) -> str:
        if model.sql is None:
            raise LiveSqlError(f"{model.name}: no compiled SQL")
        return model.sql

    def _live_schema(self, model: LiveModel) -> pa.Schema:
        return (
            self._db.sql(f'select * from {LIVE_ROWS}."{model.schema}"."{model.name}" limit 0')
            .to_arrow_table()
            .schema
        )

    def _array_tail(self, model: LiveModel, start: float, lower: float, end: float) -> pa.Table:
        """The model's new rows [start, end), computed over its parents' rows from `lower`."""
        try:
            held = self._array_models.run(model.name, start, lower, end)
        except ArraySqlError as error:
            raise LiveSqlError(f"{model.name}: {error}") from None
        spans = TimeSpans(held.table)
        self._array_models.add(model.name, held, spans)
        if self._parallel is not None:
            self._parallel.add(model.name, held.table)
        return self._array_rows(model, spans)

    def _array_rows(self, model: LiveModel, spans: TimeSpans) -> pa.Table:
        rows = spans.rows
        self._pending.setdefault(model.name, []).append(rows)  # into DuckDB with the rest's
        self._held(model.name, spans)
        return rows

    def _start_parallel(self, model: LiveModel, first: int, last: int) -> None:
        assert self._parallel is not None
        try:
            self._parallel.start_run(model.name, first, first - model.lookback_ns, last)
        except ArrayProcessError as error:
            raise LiveSqlError(str(error)) from None
        self._parallel_runs.append((model, last))

    def _collect(self, until: dict[str, float]) -> None:
        """The runs asked of the array models' process, in order, as `_tail` ends them."""
        runs, self._parallel_runs = self._parallel_runs, []
        for model, last in runs:
            assert self._parallel is not None
            try:
                _, rows = self._parallel.result()
            except ArraySqlError as error:
                raise LiveSqlError(f"{model.name}: {error}") from None
            except ArrayProcessError as error:
                raise LiveSqlError(str(error)) from None
            self._array_rows(model, TimeSpans(rows))
            self._array_done(model, rows, last, until)

    def _array_done(
        self, model: LiveModel, rows: pa.Table, last: int, until: dict[str, float]
    ) -> None:
        """An array model's run to `last` made `rows` (wherever it ran)."""
        if rows.num_rows:
            self._changed(model.name)
        self.emit(model.name, rows)
        until[model.name] = self.until[model.name] = last

    def _forget_arrays(self) -> None:
        """Drop the held rows no array model reads again."""
        horizon = min(
            (self.until[name] - model.lookback_ns for name, model in self._arrays.items()),
            default=-math.inf,
        )
        self._array_models.forget_before(horizon)
        if self._parallel is not None:
            self._parallel.forget_before(horizon)

    def _flush(self, tables: Collection[str] | None = None) -> None:
        """Insert the pending rows of `tables` (default: every table)."""
        for table, parts in self._take_pending(tables).items():
            self._insert_now(table, _one_chunk(parts))

    def _take_pending(self, tables: Collection[str] | None = None) -> dict[str, list[pa.Table]]:
        if tables is None:
            pending, self._pending = self._pending, {}
            return pending
        return {table: self._pending.pop(table) for table in tables if table in self._pending}

    def _insert_now(self, table: str, rows: pa.Table) -> None:
        if not rows.num_rows:
            return
        self._append(table, rows)
        self._changed(table)

    def _changed(self, table: str) -> None:
        """After its rows are committed: the HUD may read a new version only once it holds."""
        self.version[table] = self.version.get(table, 0) + 1

    def _append(self, table: str, rows: pa.Table) -> None:
        model = self.models[table]
        self._db.register("live_insert", rows)
        try:
            self._db.execute(
                f'insert into {LIVE_ROWS}."{model.schema}"."{table}" by name '
                "select * from live_insert"
            )
        finally:
            self._db.unregister("live_insert")
        if table not in self._array_reads and table not in self._arrays:  # else on arrival
            self._held(table, TimeSpans(rows))

    def _held(self, table: str, spans: TimeSpans) -> None:
        """Note the times of rows just inserted into `table`."""
        if not spans.rows.num_rows:
            return
        for (name, column), times in self._times.items():
            if name == table:
                span = spans.of(column)
                if span is not None:
                    times.add(*span)

    def before_session(self, choices: Mapping[str, pa.Table]) -> None:
        """The day's rows of the models known before it starts: the choices made for it (per
        source kind: the contract) and the models that need only earlier sessions."""
        for model in self.order:
            if model.source in choices:
                self._insert_now(model.name, choices[model.source])
                self._track(model.name, choices[model.source])
                self.emit(model.name, choices[model.source])
                self.until[model.name] = math.inf
        for model in self.order:
            if model.recompute == "before_session":
                rows = self._query(model, f"where dt = DATE '{self.day.isoformat()}'")
                self._insert_now(model.name, rows)
                self._track(model.name, rows)
                self.emit(model.name, rows)

    # -- advancing ------------------------------------------------------------------------

    @property
    def _db(self) -> duckdb.DuckDBPyConnection:
        return getattr(self._local, "db", self.connection)

    def advance(self, sources: Mapping[str, float], final: bool = False) -> None:
        """The rows of each source kind are complete before `sources[kind]` (ns): bring every
        model up to date once a source has moved `step_ns` of market time since the last step
        (or `final`): the options' rows of a second come just after the future's, and each
        source's seconds are drawn as soon as they are complete. The
        models after the `first` ones are brought up to date on a thread, from the rows
        complete when it starts; the next due step after it finished starts it again, and
        `final` waits for it and runs them here."""
        self._raise_rest_error()
        for model in self.order:
            if model.source in sources:
                self.until[model.name] = sources[model.source]
        stepped = self._stepped
        if not final and all(
            ns - stepped.get(kind, -math.inf) < self.step_ns for kind, ns in sources.items()
        ):
            return
        self._stepped = dict(sources)
        front = max(sources.values(), default=-math.inf)
        self._flush(self._first_reads)
        rest_due = self._rest_due(front, final)
        rest = self.order[self._first_count :]
        self._bring_first(self._first_models, set(sources), final)
        self._forget_arrays()
        if self.on_progress is not None:
            self.on_progress()
        if not rest_due:
            return
        if not final:
            self._start_rest(rest, set(sources))
            return
        self._join_rest()
        self._flush()
        self.inserted_until = dict(self.until)
        self._bring_all_up_to_date(rest, set(sources), final, self.until)
        if final:
            for model in self.order:
                if model.recompute == "session":
                    self.emit(model.name, self.table(model.name))
        if self.on_progress is not None:
            self.on_progress()

    def _start_rest(self, models: list[LiveModel], sources: set[str]) -> None:
        """The models on a thread, each reading its parents' rows complete at this moment
        (the feed's thread goes on adding rows; a source's `until` may be ahead of its rows
        waiting to be inserted, so the rows complete now are the ones it reads); the rows
        still pending are inserted there first."""
        until = dict(self.until)
        pending = self._take_pending()  # every row made before `until`, not yet inserted
        cursor = self.connection.cursor()

        def run() -> None:
            self._local.db = cursor
            try:
                for table, parts in pending.items():
                    self._insert_now(table, _one_chunk(parts))
                self.inserted_until = dict(until)
                self._bring_all_up_to_date(models, sources, False, until)
                if self.on_progress is not None:
                    self.on_progress()
            except BaseException as error:  # raised on the feed's thread at its next step
                self._rest_error = error
            finally:
                cursor.close()

        self._rest = threading.Thread(target=run, name="live-sql-rest", daemon=True)
        self._rest.start()

    def _join_rest(self) -> None:
        if self._rest is not None:
            self._rest.join()
            self._rest = None
        self._raise_rest_error()

    def _raise_rest_error(self) -> None:
        if self._rest is not None and self._rest.is_alive():
            return  # its error, if any, is stored when it ends
        error, self._rest_error = self._rest_error, None
        if error is not None:
            raise error

    def wait_for_rest(self) -> None:
        """Let a running rest thread end (the feed failed: its error is the one to report)."""
        if self._rest is not None:
            self._rest.join()

    def _rest_due(self, front: float, final: bool) -> bool:
        """Whether this step also brings the models after the `first` ones up to date (not
        while their thread still runs)."""
        if not final and self._rest is not None and self._rest.is_alive():
            return False
        due = final or front - self._rest_stepped_ns >= self.rest_step_ns
        if due:
            self._rest_stepped_ns = front
        return due

    def _bring_all_up_to_date(
        self, models: list[LiveModel], sources: set[str], final: bool, until: dict[str, float]
    ) -> None:
        for model in models:
            if _computed_here(model, sources, until):
                self._bring_up_to_date(model, final, until)

    def _bring_first(self, models: list[LiveModel], sources: set[str], final: bool) -> None:
        """The `first` models, one after the other on the feed's thread (they run over
        arrays and hold the GIL, so a second thread would only take turns with this one:
        measured, a frame step p50 45.8 ms on two threads, 39.5 ms on one), but for those
        of the array models' process: asked for as soon as their parents' rows are, and
        collected when a model reads them or at the end."""
        until = self.until
        parallel = self._parallel
        with parallel.beside() if parallel is not None else contextlib.nullcontext():
            for model in models:
                if not _computed_here(model, sources, until):
                    continue
                if any(running.name in model.parents for running, _ in self._parallel_runs):
                    self._collect(until)
                self._bring_up_to_date(model, final, until)
            self._collect(until)

    def _bring_up_to_date(self, model: LiveModel, final: bool, until: dict[str, float]) -> None:
        """`until`: how far each model's rows are complete, as this run reads them (updated
        with the model's own progress, as is `self.until`)."""
        ready = min((until[p] for p in model.parents if p in until), default=self.day_end_ns)
        if model.recompute == "tail":
            self._tail(model, ready, until)
        elif ready > until[model.name] or final:
            if self._parents_changed(model):
                self._recompute(model)
            until[model.name] = self.until[model.name] = ready

    def _parents_changed(self, model: LiveModel) -> bool:
        """Whether a live parent's rows changed since the model last read them (the same
        rows give the same result: no need to recompute)."""
        seen = {p: self.version[p] for p in model.parents if p in self.version}
        changed = self._read.get(model.name) != seen
        self._read[model.name] = seen
        return changed

    def _recompute(self, model: LiveModel) -> None:
        """A session model over the session so far, or the new rows of a computed source."""
        if model.source is None:
            rows = self._query(model, "")
            if rows.equals(self.table(model.name)):
                return
            self._db.execute("begin transaction")  # readers see the old rows or the new
            try:
                self._db.execute(f'delete from {LIVE_ROWS}."{model.schema}"."{model.name}"')
                if rows.num_rows:
                    self._append(model.name, rows)
                self._db.execute("commit")
            except BaseException:
                self._db.execute("rollback")
                raise
            self._changed(model.name)
        elif model.source in self.computed:
            rows = self.computed[model.source](self)
            self._insert_now(model.name, rows)
            self.emit(model.name, rows)
        else:
            raise LiveSqlError(f"{model.name}: nothing fills live source {model.source!r}")

    def _tail(self, model: LiveModel, ready: float, until: dict[str, float]) -> None:
        start = until[model.name]
        end = ready if model.period_ns == 0 else ready // model.period_ns * model.period_ns
        end = min(end, self.day_end_ns)
        if end <= start:
            return
        lower = start - model.lookback_ns
        if not any(self._times[pair].overlaps(lower, end) for pair in self._keyed[model.name]):
            # its rows come from its time-keyed parents' rows
            until[model.name] = self.until[model.name] = end
            return
        if model.name in self._arrays:
            # five minutes at a time: a step of the unpaced feed covers an hour, and the
            # array models hold every intermediate column of what they compute at once
            for first in range(int(start), int(end), ARRAY_SPAN_NS):
                last = min(first + ARRAY_SPAN_NS, int(end))
                if self._parallel is not None and model.name in self._parallel.names:
                    self._start_parallel(model, first, last)  # `_collect` goes on
                    continue
                rows = self._array_tail(model, first, first - model.lookback_ns, last)
                self._array_done(model, rows, last, until)
            return
        time = model.time_column
        new_rows = (
            f"where {time} >= {self._literal(model, start)} "
            f"and {time} < {self._literal(model, end)}"
        )
        if model.name in self._views:
            rows = self._run(
                model, f"select * from (\n{self._compiled(model, lower, end)}\n) {new_rows}"
            )
            self.emit(model.name, rows)
            until[model.name] = self.until[model.name] = end
            return
        # one statement inserts the new rows and returns them as the table holds them
        rows = self._run(
            model,
            f'insert into {LIVE_ROWS}."{model.schema}"."{model.name}" by name '
            f"select * from (\n{self._compiled(model, lower, end)}\n) {new_rows} returning *",
        )
        if rows.num_rows:
            self._held(model.name, TimeSpans(rows))
            self._changed(model.name)
        self.emit(model.name, rows)
        until[model.name] = self.until[model.name] = end

    def _query(self, model: LiveModel, where: str) -> pa.Table:
        """The model's rows over the session so far (`before_session`: over the warehouse's
        earlier sessions with the day) that satisfy `where`."""
        return self._run(model, f"select * from (\n{self._compiled(model)}\n) {where}")

    def _compiled(
        self, model: LiveModel, lower_ns: float | None = None, upper_ns: float = math.inf
    ) -> str:
        """The model's compiled SQL with each live parent read from the live day's rows (its
        time column in [lower_ns, upper_ns) for a tail run); `before_session` models read the
        warehouse's earlier sessions with the day."""
        sql = self._sql(model)
        if model.recompute != "before_session":
            for name in model.parents:
                parent = self.models[name]
                if not _is_live(parent):
                    continue
                rows = f'{LIVE_ROWS}."{parent.schema}"."{parent.name}"'
                if model.recompute == "tail" and parent.time_column and lower_ns is not None:
                    time = parent.time_column
                    rows = (
                        f"(select * from {rows} where {time} >= {self._literal(parent, lower_ns)}"
                        f" and {time} < {self._literal(parent, upper_ns)})"
                    )
                sql = sql.replace(parent.relation, rows)
        return sql

    def _run(self, model: LiveModel, statement: str) -> pa.Table:
        try:
            return self._db.execute(statement).to_arrow_table()
        except duckdb.Error as error:
            raise LiveSqlError(f"{model.name}: {error}") from None

    def table(self, name: str) -> pa.Table:
        if threading.current_thread() is self._owner:  # pending rows are the feed thread's
            self._flush()
        model = self.models[name]
        return self._db.sql(f'select * from {LIVE_ROWS}."{model.schema}"."{name}"').to_arrow_table()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor on the `spymaster` catalog (what the HUD queries)."""
        cursor = self.connection.cursor()
        cursor.execute(f"use {DATABASE}")
        return cursor

    def close(self) -> None:
        if self._rest is not None:
            self._rest.join()
        if self._parallel is not None:
            self._parallel.close()
        self.connection.close()


def _parallel_first(order: list[LiveModel], parallel: set[str]) -> list[LiveModel]:
    """`order` (each model after its parents) with each model of `parallel` moved up to
    just after its last computed parent (a source's rows are there before a step): asked
    for as soon as it can be."""
    names = {model.name for model in order if model.source is None}
    placed: list[LiveModel] = []
    rest = list(order)
    while rest:
        done = {model.name for model in placed}
        ready = [
            model
            for model in rest
            if model.name in parallel and all(p in done or p not in names for p in model.parents)
        ]
        chosen = ready[0] if ready else rest[0]
        placed.append(chosen)
        rest.remove(chosen)
    return placed


def _one_chunk(parts: list[pa.Table]) -> pa.Table:
    """The parts as one chunk: DuckDB's Arrow scan costs about 0.3 ms per chunk (1,300 chunks
    of a paced feed's 5 ms batches, 6,500 MBO records: 410 ms to insert, 12 ms as one)."""
    return pa.concat_tables(parts).combine_chunks()


def _computed_here(model: LiveModel, sources: Collection[str], until: Mapping[str, float]) -> bool:
    """Not filled by the session, chosen or computed before it."""
    return model.source not in sources and until.get(model.name, math.inf) != math.inf


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")
