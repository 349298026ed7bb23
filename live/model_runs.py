"""One live model's new rows, computed by DuckDB from its compiled SQL over the live day's
tables: a tail model's rows of a time range, a session model's rows over the session so far,
a model known before the session once, and a source computed in Python (retrieval's signals)
from the rows it reads. Every live parent is read from the live day's rows only: each session
is computed on its own, as the warehouse computes it."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import pyarrow as pa

from live.day_tables import LiveTables
from live.models import LiveModel, LiveSqlError

# a source computed in Python from the live tables: its new rows since its last call
ComputedSource = Callable[[LiveTables], pa.Table]


class ModelRuns:
    def __init__(self, tables: LiveTables, computed: Mapping[str, ComputedSource]) -> None:
        self.tables = tables
        self.models = tables.models
        self.computed = dict(computed)
        # per tail model, the (parent, time column) pairs its rows come from
        self.keyed: dict[str, list[tuple[str, str]]] = {}
        for model in self.models.values():
            if model.recompute == "tail":
                self.keyed[model.name] = self._rows_from(model)
                for parent, column in self.keyed[model.name]:
                    tables.track(parent, column)
                assert model.time_column is not None
                tables.column_type(model.name, model.time_column)

    def _rows_from(self, model: LiveModel) -> list[tuple[str, str]]:
        """The parents (and their time columns) a tail model's rows come from."""
        if model.rows_from is not None:
            return [model.rows_from]
        return [
            (name, parent.time_column)
            for name in model.parents
            if (parent := self.models[name]).is_live and parent.time_column
        ]

    def before_session(self, model: LiveModel) -> pa.Table:
        """The day's rows of a model that needs only earlier sessions (it reads the
        warehouse's sessions with the day)."""
        day = self.tables.day.isoformat()
        rows = self._select(model, model.compiled_sql(), f"where dt = DATE '{day}'")
        self.tables.append(model.name, rows)
        return rows

    def tail(self, model: LiveModel, start: float, end: float) -> pa.Table:
        """The model's rows with a time in [start, end), computed over its parents' rows from
        its lookback before `start`, kept (a model stored in the warehouse) and returned."""
        lower = start - model.lookback_ns
        time = model.time_column
        assert time is not None
        if not any(
            self.tables.may_hold(parent, column, lower, end)
            for parent, column in self.keyed[model.name]
        ):
            return _empty(self.tables, model)  # its rows come from those parents' rows
        new_rows = (
            f"where {time} >= {self.tables.literal(model.name, time, start)} "
            f"and {time} < {self.tables.literal(model.name, time, end)}"
        )
        sql = self._compiled(model, lower, end)
        if model.name in self.tables.views:
            return self._select(model, sql, new_rows)
        with self.tables.lock(model.name):
            rows = self.tables.run(
                model.name,
                f"insert into {self.tables.relation(model.name)} by name "
                f"select * from (\n{sql}\n) {new_rows} returning *",
            )
            self.tables.inserted(model.name, rows)
        return rows

    def session(self, model: LiveModel) -> pa.Table | None:
        """A session model over the session so far (its new rows: None when unchanged), or
        the new rows of a source computed in Python."""
        if model.source is not None:
            if model.source not in self.computed:
                raise LiveSqlError(f"{model.name}: nothing fills live source {model.source!r}")
            rows = self.computed[model.source](self.tables)
            self.tables.append(model.name, rows)
            return rows
        rows = self._select(model, self._compiled(model), "")
        return rows if self.tables.replace(model.name, rows) else None

    def _select(self, model: LiveModel, sql: str, where: str) -> pa.Table:
        return self.tables.run(model.name, f"select * from (\n{sql}\n) {where}")

    def _compiled(
        self, model: LiveModel, lower_ns: float | None = None, upper_ns: float = math.inf
    ) -> str:
        """The model's compiled SQL with each live parent read from the live day's rows (its
        time column in [lower_ns, upper_ns) for a tail run)."""
        sql = model.compiled_sql()
        for name in model.parents:
            parent = self.models[name]
            if not parent.is_live:
                continue
            rows = self.tables.relation(name)
            if lower_ns is not None and parent.time_column:
                time = parent.time_column
                rows = (
                    f"(select * from {rows} "
                    f"where {time} >= {self.tables.literal(name, time, lower_ns)} "
                    f"and {time} < {self.tables.literal(name, time, upper_ns)})"
                )
            sql = sql.replace(parent.relation, rows)
        return sql


def _empty(tables: LiveTables, model: LiveModel) -> pa.Table:
    return tables.schema(model.name).empty_table()
