"""What the HUD reads from the warehouse: read-only, every parameter bound, every value as the
table holds it (whole-contract quantities travel as int32, times as millisecond timestamps,
labels such as `side` dictionary-encoded)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from foundation.lake import Lake
from foundation.project import project_vars
from hud.blocks import BlockCache
from hud.live import LiveDay, epoch_ns
from hud.protocol import FramePart

# The server's share of the machine: replay clients are many small queries. (Set after
# connecting: a process's connections to one file must share their open configuration.)
CONNECTION_SETTINGS = "set memory_limit = '512MB'; set threads = 2"


@dataclass(frozen=True)
class FrameTable:
    """What the server selects from a per-second warehouse table for the page: `name` on the
    wire, read from `schema.source` (the same table unless a part of one is sent on its own)."""

    schema: str
    name: str
    columns: tuple[str, ...]
    # whole contracts (BIGINT in the warehouse): sent as int32, the same values
    quantities: frozenset[str] = frozenset()
    order: tuple[str, ...] = ()
    source: str | None = None
    # the per-second columns of a per-strike table: one row per second, not per strike
    distinct: bool = False
    # live sends the heatmap's own tables as soon as a second closes, the layers derived
    # from them (and from the options) in a later frame of the same second
    part: FramePart = FramePart.HEATMAP

    @property
    def table(self) -> str:
        return f"{self.schema}.{self.source or self.name}"

    def sql(self) -> str:
        select = ",\n    ".join(
            f"cast({column} as integer) as {column}" if column in self.quantities else column
            for column in self.columns
        )
        order = ", ".join(("window_start", *self.order))
        return (
            f"select{' distinct' if self.distinct else ''}\n"
            "    cast(window_start as timestamp_ms) as window_start,\n    "
            f"{select}\nfrom {self.table}\n"
            "where symbol = $symbol and dt = $session\n"
            "    and window_start >= $start and window_start < $end\n"
            f"order by {order}"
        )

    def select(
        self, rows: pa.Table, symbol: str, session: dt.date, start: dt.datetime, end: dt.datetime
    ) -> pa.Table:
        """What `sql()` selects, from rows of its table held in memory (a live feed's newest
        rows): the same columns, types, rows and order. In NumPy: a live second is a few
        dozen rows, where each Arrow compute call costs 20-30 us whatever the size."""
        unit = rows.schema.field("window_start").type.unit
        times = rows.column("window_start").to_numpy().view(np.int64)  # NULL: the smallest
        selected = (times >= _ticks(start, unit)) & (times < _ticks(end, unit))
        selected &= rows.column("symbol").to_numpy() == symbol
        selected &= rows.column("dt").to_numpy() == np.datetime64(session, "D")
        if not selected.all():
            rows, times = rows.filter(selected), times[selected]
        # the rows' order (None: already ordered); a table holding one value a second is
        # ordered once its repeats are left out
        order = None if self.distinct else _order(times, [rows.column(c) for c in self.order])
        table = pa.table(
            {
                "window_start": _arrow_array(_milliseconds(times, unit), pa.timestamp("ms"), order),
                **{
                    column: _int32(rows.column(column), column, order)
                    if column in self.quantities
                    else _taken(rows.column(column), order)
                    for column in self.columns
                },
            }
        )
        return _distinct(table) if self.distinct else table


_TICKS_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def _ticks(moment: dt.datetime, unit: str) -> int:
    """A naive UTC moment as a timestamp of `unit` counts."""
    return epoch_ns(moment) * _TICKS_PER_SECOND[unit] // 1_000_000_000


def _milliseconds(times: np.ndarray, unit: str) -> np.ndarray:
    """Timestamps of `unit` as milliseconds (cast(... as timestamp_ms): whole seconds here)."""
    per_second = _TICKS_PER_SECOND[unit]
    if per_second >= 1_000:
        return times // (per_second // 1_000)
    return times * 1_000


def _arrow_array(values: np.ndarray, type_: pa.DataType, order: np.ndarray | None) -> pa.Array:
    """NumPy values without NULLs as an Arrow array, in `order` (None: as they are)."""
    values = np.ascontiguousarray(values if order is None else values[order])
    return pa.Array.from_buffers(type_, len(values), [None, pa.py_buffer(values)])


def _taken(column: pa.ChunkedArray, order: np.ndarray | None) -> pa.ChunkedArray:
    return column if order is None else column.take(order)


def _int32(column: pa.ChunkedArray, name: str, order: np.ndarray | None) -> pa.Array:
    """cast(... as integer): out of range is an error, as in DuckDB."""
    if column.null_count:
        return _taken(pc.cast(column, pa.int32()), order)  # NULLs kept where they are
    values = column.to_numpy()
    narrow = values.astype(np.int32)
    if (narrow != values).any():
        raise ValueError(f"{name}: a value outside int32 ({values.min()}..{values.max()})")
    return _arrow_array(narrow, pa.int32(), order)


def _order(times: np.ndarray, keys: list[pa.ChunkedArray]) -> np.ndarray | None:
    """The permutation that sorts the rows by time, then `keys` ascending (SQL's order: NULL
    last), or None when they are in that order already."""
    if any(key.null_count for key in keys):
        table = pa.table({"t": times, **{str(i): key for i, key in enumerate(keys)}})
        order = pc.sort_indices(table, [(name, "ascending") for name in table.column_names])
        order = order.to_numpy()
        return None if bool(np.all(order[1:] > order[:-1])) else order
    columns = [times, *(key.to_numpy() for key in keys)]
    ordered = None  # neighbouring rows in order on the columns from this one on
    for values in reversed(columns):
        before, after = values[:-1], values[1:]
        ordered = (
            before < after if ordered is None else (before < after) | ((before == after) & ordered)
        )
    if bool(np.all(ordered)):
        return None
    return np.lexsort(columns[::-1])  # stable; NaN last, as in DuckDB


def _distinct(table: pa.Table) -> pa.Table:
    """`select distinct ... order by window_start` of columns that hold one value a second:
    the first row of each second when the others repeat it (rows in time order, no NULL or
    NaN to compare), else as SQL does."""
    if table.num_rows <= 1:
        return table
    times = table.column("window_start").to_numpy()
    repeated = times[1:] == times[:-1]
    if bool(np.all(times[1:] >= times[:-1])):
        for column in table.columns:
            if column.null_count:
                break
            values = column.to_numpy()
            if not np.all((values[1:] == values[:-1]) | ~repeated):
                break
        else:
            return table.filter(np.concatenate(([True], ~repeated)))
    names = table.column_names
    distinct = table.group_by(names, use_threads=False).aggregate([]).select(names)
    return distinct.take(pc.sort_indices(distinct, [("window_start", "ascending")]))


FRAME_TABLES = (
    # the heatmap's own tables are the book engine's rows of the session's contract (what the
    # book_snapshot_1s and depth_and_flow_1s views select): live draws them as the engine
    # makes them, before any SQL layer
    FrameTable(
        "silver",
        "book_snapshot_1s",
        (
            "best_bid_price", "best_bid_size", "best_ask_price", "best_ask_size",
            "last_trade_price", "spot_price", "book_valid",
        ),
        frozenset({"best_bid_size", "best_ask_size"}),
        source="engine_book_snapshot_1s",
    ),
    FrameTable(
        "silver",
        "depth_and_flow_1s",
        (
            "side", "price", "depth_qty_start", "depth_qty_end", "depth_qty_rest",
            "add_qty", "pull_qty", "pull_qty_rest", "fill_qty", "reprice_in_qty",
            "reprice_out_away_qty", "reprice_out_toward_qty", "window_valid",
        ),
        frozenset({
            "depth_qty_start", "depth_qty_end", "depth_qty_rest", "add_qty", "pull_qty",
            "pull_qty_rest", "fill_qty", "reprice_in_qty", "reprice_out_away_qty",
            "reprice_out_toward_qty",
        }),
        ("side", "price"),
        source="engine_depth_and_flow_1s",
    ),
    FrameTable(
        "silver",
        "vacuum_surface_1s",
        ("side", "price", "pull_add_log", "fill_intensity"),
        order=("side", "price"),
        part=FramePart.LAYERS,
    ),
    FrameTable(
        "gold",
        "vacuum_score_1s",
        ("side", "price", "vacuum_score"),
        order=("side", "price"),
        part=FramePart.LAYERS,
    ),
    FrameTable(
        "gold",
        "physics_bands_1s",
        ("side", "band", "band_order", "vacuum_score", "ease", "side_score"),
        order=("side", "band_order"),
        part=FramePart.LAYERS,
    ),
    FrameTable(
        "silver",
        "gex_surface_1s",
        (
            "strike_price", "call_gex", "put_gex", "net_gex", "call_gex_0dte", "put_gex_0dte",
            "net_gex_0dte", "options_without_exposure",
        ),
        frozenset({"options_without_exposure"}),
        order=("strike_price",),
        part=FramePart.LAYERS,
    ),
    # gex_surface_1s's columns that hold one value per second (the same on every strike)
    FrameTable(
        "silver",
        "gex_levels_1s",
        (
            "zero_gamma_level", "zero_gamma_level_0dte", "call_wall", "put_wall",
            "call_wall_0dte", "put_wall_0dte", "options_listed", "options_in_exposure",
            "options_without_open_interest",
        ),
        frozenset({"options_listed", "options_in_exposure", "options_without_open_interest"}),
        source="gex_surface_1s",
        distinct=True,
        part=FramePart.LAYERS,
    ),
)  # fmt: skip

SESSIONS_SQL = """
with triggers as (
    select dt, count(*) as triggers
    from gold.trigger_vectors
    group by dt
)
select
    selection.dt as session,
    selection.selected_symbol as symbol,
    cast(calendar.surface_window_start as timestamp_ms) as surface_window_start,
    cast(calendar.surface_window_end as timestamp_ms) as surface_window_end,
    cast(calendar.session_window_start as timestamp_ms) as session_window_start,
    cast(calendar.session_window_end as timestamp_ms) as session_window_end,
    coalesce(triggers.triggers, 0) as triggers
from silver.contract_day_selection as selection
inner join silver.session_calendar as calendar using (dt)
left join triggers using (dt)
where selection.is_included
order by selection.dt
"""

SPOT_RANGE_SQL = """
select min(spot_price) as spot_low, max(spot_price) as spot_high
from silver.engine_book_snapshot_1s
where symbol = $symbol and dt = $session and window_start >= $start and window_start < $end
"""

LEVELS_SQL = """
select
    level_id,
    level_price,
    cast(valid_from as timestamp_ms) as valid_from,
    cast(valid_to as timestamp_ms) as valid_to
from silver.session_levels
where
    symbol = $symbol and dt = $session and level_kind = 'real'
    and valid_from < $end and valid_to > $start
order by level_id, valid_from
"""

EPISODES_SQL = """
select
    episodes.episode_id,
    episodes.level_id,
    episodes.approach_dir,
    episodes.entry_level_price,
    cast(episodes.zone_entry_ts as timestamp_ms) as zone_entry_ts,
    cast(episodes.zone_exit_ts as timestamp_ms) as zone_exit_ts,
    episodes.is_triggered,
    cast(episodes.trigger_second as timestamp_ms) as trigger_second,
    episodes.trigger_level_price,
    triggers.trigger_id,
    cast(triggers.ts as timestamp_ms) as trigger_ts,
    outcomes.break_price,
    outcomes.reject_price,
    outcomes.outcome,
    cast(outcomes.outcome_known_ts as timestamp_ms) as outcome_known_ts,
    outcomes.first_hit,
    outcomes.seconds_to_first_hit,
    outcomes.max_favorable_excursion_ticks,
    outcomes.max_adverse_excursion_ticks
from gold.approach_episodes as episodes
left join gold.trigger_vectors as triggers using (episode_id)
left join gold.trigger_outcomes as outcomes using (trigger_id)
where episodes.symbol = $symbol and episodes.dt = $session and episodes.level_kind = 'real'
order by episodes.zone_entry_ts, episodes.level_id
"""

SIGNALS_SQL = """
select
    trigger_id,
    level_id,
    approach_dir,
    neighbour_count,
    p_break,
    p_reject,
    p_chop,
    similarity_mean,
    similarity_std,
    similarity_max,
    similarity_min,
    training_sessions,
    training_triggers,
    base_rate_prior,
    time_of_day_rate_prior
from gold.trigger_signals
where dt = $session
order by trigger_id
"""

NEIGHBOURS_SQL = """
with ranked as (
    select
        trigger_id,
        unnest(generate_series(1, len(neighbour_trigger_ids))) as neighbour_rank,
        unnest(neighbour_trigger_ids) as neighbour_trigger_id,
        unnest(neighbour_similarities) as similarity
    from gold.trigger_signals
    where dt = $session
)
select
    ranked.trigger_id,
    cast(ranked.neighbour_rank as integer) as neighbour_rank,
    ranked.neighbour_trigger_id,
    ranked.similarity,
    outcomes.dt as neighbour_session,
    cast(outcomes.ts as timestamp_ms) as neighbour_ts,
    outcomes.level_price,
    outcomes.outcome,
    outcomes.seconds_to_first_hit,
    outcomes.max_favorable_excursion_ticks,
    outcomes.max_adverse_excursion_ticks
from ranked
inner join gold.trigger_outcomes as outcomes on ranked.neighbour_trigger_id = outcomes.trigger_id
order by ranked.trigger_id, ranked.neighbour_rank
"""

# The evidence view: the typical book around a trigger by outcome (pooled over levels and
# directions, mirrored as if from below) and the four conditions of one level and direction.
EVIDENCE_OUTCOMES = ("BREAK", "REJECT", "REJECT_MINUS_BREAK")
COMPOSITE_MEASURES = ("depth_share", "pull_add_log_rest")
COMPOSITE_VALUES = tuple(
    f"{measure}{end}" for measure in COMPOSITE_MEASURES for end in ("", "_ci_low", "_ci_high")
)
COMPOSITE_SQL = f"""
select
    outcome,
    second_offset,
    ticks_from_level,
    side,
    cast(triggers as integer) as triggers,
    cast(sessions as integer) as sessions,
    {", ".join(f"cast({value} as float) as {value}" for value in COMPOSITE_VALUES)}
from gold.trigger_composite
where level_kind = $kind and outcome in {EVIDENCE_OUTCOMES}
order by outcome, second_offset, side, ticks_from_level
"""
CONDITION_COLUMNS = (
    "level_kind", "grouping", "member", "held", "n", "sessions", "break_share",
    "reject_share", "chop_share", "break_share_ci_low", "break_share_ci_high",
    "reject_share_ci_low", "reject_share_ci_high", "base_rate", "lift", "lift_ci_low",
    "lift_ci_high", "separation", "p_value", "p_value_holm", "tests_in_family",
    "is_significant",
)  # fmt: skip
CONDITIONS_SQL = f"""
select {", ".join(CONDITION_COLUMNS)}
from gold.condition_outcomes
where level_id = $level and approach_dir = $direction and window_seconds = $window
order by level_kind desc, grouping = 'pattern', grouping, member, held desc
"""
EVIDENCE_CHOICES_SQL = """
select distinct level_id, approach_dir, window_seconds
from gold.condition_outcomes
order by all
"""

# Beyond the frame tables: what the session and evidence queries read (table -> columns).
SESSION_COLUMNS: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("silver", "contract_day_selection"): ("dt", "selected_symbol", "is_included"),
    ("silver", "session_calendar"): (
        "dt", "surface_window_start", "surface_window_end", "session_window_start",
        "session_window_end",
    ),
    ("silver", "session_levels"): (
        "level_id", "level_kind", "level_price", "valid_from", "valid_to",
    ),
    ("gold", "approach_episodes"): (
        "episode_id", "level_id", "level_kind", "approach_dir", "zone_entry_ts", "zone_exit_ts",
        "trigger_second",
    ),
    ("gold", "trigger_vectors"): ("trigger_id", "episode_id", "ts"),
    ("gold", "trigger_outcomes"): ("trigger_id", "outcome", "outcome_known_ts", "first_hit"),
    ("gold", "trigger_signals"): (
        "trigger_id", "p_break", "neighbour_trigger_ids", "neighbour_similarities",
    ),
    ("gold", "trigger_composite"): (
        "level_kind", "outcome", "second_offset", "ticks_from_level", "side", "triggers",
        "sessions", *COMPOSITE_VALUES,
    ),
    ("gold", "condition_outcomes"): (
        *CONDITION_COLUMNS, "level_id", "approach_dir", "window_seconds",
    ),
}  # fmt: skip


def frame_sources() -> frozenset[str]:
    """The warehouse tables the frames are read from."""
    return frozenset(table.source or table.name for table in FRAME_TABLES)


# the warehouse tables each part of a frame is read from
FRAME_PARTS: dict[FramePart, frozenset[str]] = {
    part: frozenset(table.source or table.name for table in FRAME_TABLES if table.part is part)
    for part in FramePart
}


# The tables of the session payload that change during a live session.
SESSION_SOURCES = frozenset(
    {
        "session_levels",
        "approach_episodes",
        "trigger_vectors",
        "trigger_outcomes",
        "trigger_signals",
    }
)


def required_columns() -> dict[tuple[str, str], tuple[str, ...]]:
    """Every table and column the HUD reads."""
    required = {key: set(columns) for key, columns in SESSION_COLUMNS.items()}
    for table in FRAME_TABLES:
        key = (table.schema, table.source or table.name)
        required.setdefault(key, set()).update(("symbol", "dt", "window_start", *table.columns))
    return {key: tuple(sorted(columns)) for key, columns in required.items()}


class WarehouseUnavailableError(Exception):
    """The lake has no warehouse the HUD can read; the message says what to run."""

    def __init__(self, message: str, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command


@dataclass(frozen=True)
class Session:
    """An included session: its contract and the seconds the surfaces cover (naive UTC)."""

    session: dt.date
    symbol: str
    start: dt.datetime
    end: dt.datetime
    research_start: dt.datetime
    research_end: dt.datetime


def missing_from(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """The required tables and columns the warehouse lacks, as `schema.table` or
    `schema.table.column`."""
    present: dict[tuple[str, str], set[str]] = {}
    for schema, table, column in connection.execute(
        "select table_schema, table_name, column_name from information_schema.columns"
    ).fetchall():
        present.setdefault((schema, table), set()).add(column)
    missing = []
    for (schema, table), columns in required_columns().items():
        if (schema, table) not in present:
            missing.append(f"{schema}.{table}")
            continue
        missing += [
            f"{schema}.{table}.{column}"
            for column in columns
            if column not in present[(schema, table)]
        ]
    return missing


def build_command(missing: list[str]) -> str:
    """The dbt selection that builds what is missing, with everything it needs."""
    models = sorted({name.split(".")[1] for name in missing})
    return "spymaster build --select " + " ".join(f"+{model}" for model in models)


class Warehouse:
    """A read-only connection to a lake's DuckDB file, opened on first use (and retried on the
    next request while the file is missing, locked by a writer or incomplete); with `live`,
    the live feed's database instead, whose live day is complete only up to its frontier."""

    def __init__(self, lake: Lake, live: LiveDay | None = None) -> None:
        self.lake = lake
        self.live = live
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._sessions: dict[dt.date, Session] | None = None
        self._lock = threading.Lock()
        self._blocks = BlockCache(self.read_window, self.complete_until)

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        if self.live is not None:
            return self.live.cursor()
        return self._connect().cursor()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._connection is not None:
                return self._connection
            path = self.lake.duckdb_path
            if not path.is_file():
                raise WarehouseUnavailableError(
                    f"{path}: no warehouse in this lake yet; land data with `spymaster ingest` "
                    "and build it with `spymaster build`",
                    "spymaster build",
                )
            try:
                connection = duckdb.connect(str(path), read_only=True)
            except duckdb.Error as error:
                raise WarehouseUnavailableError(
                    f"{path}: cannot open the warehouse read-only ({error}); a running "
                    "`spymaster build` holds it until it finishes"
                ) from error
            connection.execute(CONNECTION_SETTINGS)
            missing = missing_from(connection)
            if missing:
                connection.close()
                command = build_command(missing)
                raise WarehouseUnavailableError(
                    f"{path}: the warehouse lacks {', '.join(missing)}; build it with `{command}`",
                    command,
                )
            self._connection = connection
            return connection

    def open(self) -> None:
        """Open the warehouse now and check its tables (WarehouseUnavailableError says why
        not); requests open it on first use otherwise."""
        if self.live is None:
            self._connect()
            return
        cursor = self.live.cursor()
        try:
            missing = missing_from(cursor)
        finally:
            cursor.close()
        if missing:
            raise WarehouseUnavailableError(
                f"the live day's database lacks {', '.join(missing)}", build_command(missing)
            )

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def query(self, sql: str, params: Mapping[str, object] | None = None) -> pa.Table:
        """One query on its own cursor: safe from many threads at once."""
        cursor = self._cursor()
        try:
            return cursor.sql(sql, params=dict(params or {})).to_arrow_table()
        finally:
            cursor.close()

    def sessions(self) -> pa.Table:
        """The included sessions; `is_live` marks the day a live feed is computing."""
        table = self.query(SESSIONS_SQL)
        live = [
            self.live is not None and day == self.live.day for day in table["session"].to_pylist()
        ]
        return table.append_column("is_live", pa.array(live, pa.bool_()))

    def complete_until(self, session: Session) -> dt.datetime | None:
        """Where the session's frame tables end for now: the live frontier on the live day,
        None (all of it) otherwise."""
        if self.live is None or session.session != self.live.day:
            return None
        return self.live.state().complete_until or session.start

    def session_until(self, session: Session) -> dt.datetime | None:
        """Where the session tables (levels, approach episodes) end for now on the live day:
        an episode reaching it is still open; None (all of it) otherwise."""
        if self.live is None or session.session != self.live.day:
            return None
        return self.live.state().session_until or session.start

    def available_end(self, session: Session, end: dt.datetime) -> dt.datetime:
        """`end`, or the live frontier if that comes first."""
        until = self.complete_until(session)
        return end if until is None else min(end, until)

    def session(self, day: dt.date) -> Session | None:
        """The included session of that date, or None."""
        if self._sessions is None:
            table = self.sessions().to_pylist()
            self._sessions = {
                row["session"]: Session(
                    row["session"],
                    row["symbol"],
                    row["surface_window_start"],
                    row["surface_window_end"],
                    row["session_window_start"],
                    row["session_window_end"],
                )
                for row in table
            }
        return self._sessions.get(day)

    def session_tables(self, session: Session) -> dict[str, pa.Table]:
        """What the page needs once per session: its bounds and conventions, levels, approach
        episodes with their triggers and outcomes, and each trigger's signals and neighbours."""
        params = _params(session, session.start, session.end)
        spot = self.query(SPOT_RANGE_SQL, params).to_pylist()[0]
        settings = project_vars()
        summary = pa.table(
            {
                "session": [session.session],
                "symbol": [session.symbol],
                "start": pa.array([session.start], pa.timestamp("ms")),
                "end": pa.array([session.end], pa.timestamp("ms")),
                "session_window_start": pa.array([session.research_start], pa.timestamp("ms")),
                "session_window_end": pa.array([session.research_end], pa.timestamp("ms")),
                "spot_low": [spot["spot_low"]],
                "spot_high": [spot["spot_high"]],
                "tick_size": [float(settings["futures_tick_size"])],
                "surface_depth_ticks": [int(settings["surface_depth_ticks"])],
                "level_zone_ticks": [int(settings["level_zone_ticks"])],
                "trigger_ticks": [int(settings["trigger_ticks"])],
                "strike_step": [float(settings["option_strike_step"])],
                "exchange_timezone": [str(settings["exchange_timezone"])],
                "live_until": pa.array([self.complete_until(session)], pa.timestamp("ms")),
                "live_session_until": pa.array([self.session_until(session)], pa.timestamp("ms")),
                "outcome_horizon_seconds": [
                    (int(settings["label_primary_horizon"]) + 1) * int(settings["bar_seconds"])
                ],
            }
        )
        return {
            "session": summary,
            "session_levels": self.query(LEVELS_SQL, params),
            "approach_episodes": self.query(
                EPISODES_SQL, {"symbol": session.symbol, "session": session.session}
            ),
            "trigger_signals": self.query(SIGNALS_SQL, {"session": session.session}),
            "trigger_neighbours": self.query(NEIGHBOURS_SQL, {"session": session.session}),
        }

    def evidence_choices(self) -> pa.Table:
        """The levels, directions and windows gold.condition_outcomes holds."""
        return self.query(EVIDENCE_CHOICES_SQL)

    def evidence(self, kind: str, level: str, direction: str, window: int) -> dict[str, pa.Table]:
        """The evidence view's tables: the composite pictures at `kind` levels and the
        condition table of a level (or ALL) and direction (or ALL) for a window, both kinds."""
        return {
            "trigger_composite": self.query(COMPOSITE_SQL, {"kind": kind}),
            "condition_outcomes": self.query(
                CONDITIONS_SQL, {"level": level, "direction": direction, "window": window}
            ),
            "evidence_choices": self.evidence_choices(),
        }

    def read_window(
        self,
        session: Session,
        start: dt.datetime,
        end: dt.datetime,
        tables: tuple[FrameTable, ...] = FRAME_TABLES,
    ) -> dict[str, pa.Table]:
        """Each frame table's rows of the seconds [start, end) from the warehouse; the
        tables are read at once (each query's fixed cost overlaps the others')."""
        params = _params(session, start, end)
        rows = _FRAME_QUERIES.map(lambda table: self.query(table.sql(), params), tables)
        return {table.name: result for table, result in zip(tables, rows, strict=True)}

    def window(self, session: Session, start: dt.datetime, end: dt.datetime) -> dict[str, pa.Table]:
        """Every frame table's rows of the seconds [start, end), one batch each, through the
        block cache (a live frontier's seconds straight from the live tables)."""
        if end <= start:
            tables = self.read_window(session, start, start)
        else:
            tables = self._blocks.window(session, start, end)
        return {name: _compact(table) for name, table in tables.items()}

    def live_window(
        self, session: Session, part: FramePart, start: dt.datetime, end: dt.datetime
    ) -> dict[str, pa.Table]:
        """A part's tables of the seconds just completed live: those the feed still holds (the
        last `RECENT_SECONDS`) from the rows its stages have just made, the ones before from
        its database; never cached."""
        assert self.live is not None
        tables = tuple(table for table in FRAME_TABLES if table.part is part)
        held_from, recent = self.live.recent_rows(start, end, FRAME_PARTS[part])
        rows = {
            table.name: table.select(
                recent[table.source or table.name], session.symbol, session.session, held_from, end
            )
            for table in tables
        }
        if held_from > start:
            older = self.read_window(session, start, held_from, tables)
            rows = {name: pa.concat_tables([older[name], rows[name]]) for name in rows}
        return {name: _compact(table) for name, table in rows.items()}


_FRAME_QUERIES = ThreadPoolExecutor(len(FRAME_TABLES), thread_name_prefix="hud-frame-query")
LABEL = pa.dictionary(pa.int8(), pa.string())


def _compact(table: pa.Table) -> pa.Table:
    """One record batch, labels (`side`, `band`) as dictionaries of int8 codes."""
    for index, field in enumerate(table.schema):
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            labels = pc.dictionary_encode(table.column(index)).cast(LABEL)
            table = table.set_column(index, field.name, labels)
        elif pa.types.is_dictionary(field.type) and field.type != LABEL:  # the engine's codes
            table = table.set_column(index, field.name, table.column(index).cast(LABEL))
    return table.combine_chunks()


def _params(session: Session, start: dt.datetime, end: dt.datetime) -> dict[str, object]:
    return {"symbol": session.symbol, "session": session.session, "start": start, "end": end}
