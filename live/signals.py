"""Retrieval on a live session: each new trigger's neighbours and P(BREAK/REJECT/CHOP) from
the indexes of the sessions before the day, computed as the warehouse's walk-forward computes
them for that day (retrieval.neighbours.set_neighbours, retrieval.evaluation's baselines).

The persisted indexes (`<lake>/indexes`) are those indexes when every session they hold is
before the day (the warehouse built up to yesterday). A day the warehouse already holds (a
replayed day) would find itself and later days in them: its indexes are built in memory from
the warehouse's sessions before it, with the same function."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

import duckdb
import numpy as np
import pyarrow as pa

from foundation.lake import Lake
from live.day_tables import LiveTables
from live.settings import RETRIEVAL_MODELS_YML, model_config
from retrieval.evaluation import EvaluationSettings, walk_forward_baselines
from retrieval.index_store import SetupIndex, index_folder
from retrieval.neighbours import RetrievalSettings, empty_signals, set_neighbours
from retrieval.warehouse import (
    SIGNALS_SCHEMA,
    evaluation_settings,
    labelled_indexes,
    retrieval_settings,
    signals_table,
)


def day_indexes(
    connection: duckdb.DuckDBPyConnection, indexes_dir, day: dt.date, say: Callable[[str], None]
) -> dict[tuple[str, str], SetupIndex]:
    """The index of each level and approach direction over the labelled triggers of the
    warehouse's sessions before `day` (`connection`: the warehouse's catalog)."""
    before = f"dt < DATE '{day.isoformat()}'"
    vectors = connection.sql(f"select * from gold.retrieval_vectors where {before}")
    outcomes = connection.sql(f"select * from gold.trigger_outcomes where {before}")
    features = connection.sql("select * from gold.retrieval_features")
    groups = connection.sql(
        f"select distinct level_id, approach_dir from gold.retrieval_vectors where {before}"
    ).fetchall()
    last = connection.sql("select max(dt) from gold.retrieval_vectors").fetchall()[0][0]
    persisted = all((index_folder(indexes_dir, *group)).exists() for group in groups)
    if persisted and last is not None and last < day:
        say(f"neighbours from the persisted indexes in {indexes_dir} (sessions to {last})")
        return {group: SetupIndex.load(indexes_dir, *group) for group in groups}
    say(
        f"neighbours from indexes of the warehouse's sessions before {day}, built in memory "
        f"(the persisted ones in {indexes_dir} hold sessions to {last})"
    )
    return {
        (index.level_id, index.approach_dir): index
        for index in labelled_indexes(vectors, outcomes, features)
    }


class LiveSignals:
    """The `retrieval_trigger_signals` rows of the triggers that reached `retrieval_vectors`
    since the last call."""

    def __init__(
        self,
        indexes: Mapping[tuple[str, str], SetupIndex],
        day: dt.date,
        retrieval: RetrievalSettings,
        evaluation: EvaluationSettings,
    ) -> None:
        self.indexes = indexes
        self.day = np.datetime64(day, "D")
        self.retrieval = retrieval
        self.evaluation = evaluation
        self.done: set[str] = set()

    def __call__(self, tables: LiveTables) -> pa.Table:
        vectors = tables.rows("retrieval_vectors").to_pylist()
        new = [row for row in vectors if row["trigger_id"] not in self.done]
        tables = [self.signals(row) for row in new]
        self.done.update(row["trigger_id"] for row in new)
        return pa.concat_tables(tables) if tables else SIGNALS_SCHEMA.empty_table()

    def signals(self, trigger: Mapping[str, object]) -> pa.Table:
        signals = empty_signals(1)
        key = (str(trigger["level_id"]), str(trigger["approach_dir"]))
        index = self.indexes.get(key)
        sessions = np.array([self.day])
        base = time_of_day = np.full(1, np.nan)
        if index is not None:
            indexed = index.triggers
            signals.training_triggers[0] = len(indexed.trigger_ids)
            signals.training_sessions[0] = len(np.unique(indexed.sessions))
            if len(indexed.trigger_ids) >= self.retrieval.min_neighbours:
                similarities, positions = index.search(
                    np.asarray(trigger["feature_vector"], dtype=np.float64), self.retrieval.k
                )
                set_neighbours(
                    signals,
                    0,
                    similarities[0],
                    indexed.outcomes[positions[0]],
                    indexed.trigger_ids[positions[0]],
                )
            base, time_of_day = walk_forward_baselines(
                np.concatenate([indexed.sessions, sessions]),
                np.concatenate([index.minutes_since_open, [float(trigger["minutes_since_open"])]]),
                np.concatenate([indexed.outcomes == "BREAK", [False]]),
                np.concatenate([np.ones(len(indexed.outcomes), bool), [False]]),
                self.evaluation,
            )
            base, time_of_day = base[-1:], time_of_day[-1:]
        return signals_table(
            key[0], key[1], np.array([str(trigger["trigger_id"])]), sessions, signals, base,
            time_of_day, np.array(["live"]),
        )  # fmt: skip


def live_signals(tables: LiveTables, lake: Lake, day: dt.date) -> LiveSignals:
    """The day's signals from the indexes of the warehouse's sessions before it, with the
    settings the warehouse's model is given."""
    history = tables.connection.cursor()
    history.execute("use warehouse")
    try:
        indexes = day_indexes(history, lake.indexes, day, print)
    finally:
        history.close()
    config = "retrieval_trigger_signals"
    return LiveSignals(
        indexes,
        day,
        retrieval_settings(model_config(RETRIEVAL_MODELS_YML, config, "retrieval_settings")),
        evaluation_settings(model_config(RETRIEVAL_MODELS_YML, config, "evaluation_settings")),
    )
