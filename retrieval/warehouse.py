"""What the retrieval dbt Python models run: read trigger vectors and outcomes from DuckDB
relations, return Arrow tables. The models themselves stay a few lines long."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

import retrieval.evaluation
import retrieval.folds
import retrieval.metric
import retrieval.neighbours
import retrieval.scaling
from retrieval.evaluation import (
    EvaluationSettings,
    evaluate,
    reliability_table,
    walk_forward_baselines,
)
from retrieval.folds import code_digest, fold_fingerprints, row_fingerprints
from retrieval.index_store import SetupIndex
from retrieval.neighbours import RetrievalSettings, Signals, TriggerSet, walk_forward

SIGNALS_SCHEMA = pa.schema(
    [
        ("trigger_id", pa.string()),
        ("dt", pa.date32()),
        ("level_id", pa.string()),
        ("approach_dir", pa.string()),
        ("neighbour_count", pa.int64()),
        ("p_break", pa.float64()),
        ("p_reject", pa.float64()),
        ("p_chop", pa.float64()),
        ("similarity_mean", pa.float64()),
        ("similarity_std", pa.float64()),
        ("similarity_max", pa.float64()),
        ("similarity_min", pa.float64()),
        ("training_sessions", pa.int64()),
        ("training_triggers", pa.int64()),
        ("base_rate_prior", pa.float64()),
        ("time_of_day_rate_prior", pa.float64()),
        ("neighbour_trigger_ids", pa.list_(pa.string())),
        ("neighbour_similarities", pa.list_(pa.float64())),
        # what the row's fold read (retrieval.folds); live rows say `live`
        ("fold_fingerprint", pa.string()),
    ]
)


def retrieval_settings(config: Mapping[str, Any]) -> RetrievalSettings:
    return RetrievalSettings(k=int(config["k"]), min_neighbours=int(config["min_neighbours"]))


def evaluation_settings(config: Mapping[str, Any]) -> EvaluationSettings:
    return EvaluationSettings(
        time_of_day_minutes=int(config["time_of_day_minutes"]),
        time_of_day_prior_weight=float(config["time_of_day_prior_weight"]),
        bootstrap_samples=int(config["bootstrap_samples"]),
        reliability_bins=int(config["reliability_bins"]),
    )


def by_level_and_direction(
    table: pa.Table,
) -> Iterator[tuple[str, str, dict[str, np.ndarray]]]:
    """The table's columns split by (level_id, approach_dir), in order of first appearance."""
    if table.num_rows == 0:
        return
    columns = {
        name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names
    }
    keys = np.char.add(columns["level_id"].astype(str), "|" + columns["approach_dir"].astype(str))
    for key in dict.fromkeys(keys):
        rows = keys == key
        level_id, approach_dir = key.split("|")
        yield level_id, approach_dir, {name: values[rows] for name, values in columns.items()}


def trigger_groups(
    vectors: duckdb.DuckDBPyRelation, outcomes: duckdb.DuckDBPyRelation
) -> Iterator[tuple[str, str, TriggerSet, np.ndarray]]:
    """Per level and approach direction, its triggers in time order, with minutes since open."""
    table = (
        vectors.join(outcomes.project("trigger_id, outcome"), "trigger_id", how="left")
        .project(
            "trigger_id, level_id, approach_dir, dt, ts, minutes_since_open, feature_vector, "
            "coalesce(outcome, '') as outcome"
        )
        .order("level_id, approach_dir, ts, trigger_id")
        .to_arrow_table()
    )
    for level_id, approach_dir, group in by_level_and_direction(table):
        yield (
            level_id,
            approach_dir,
            TriggerSet(
                trigger_ids=group["trigger_id"].astype(str),
                sessions=group["dt"].astype("datetime64[D]"),
                vectors=np.stack(group["feature_vector"]).astype(np.float64),
                outcomes=group["outcome"].astype(str),
            ),
            group["minutes_since_open"].astype(np.float64),
        )


def signals_table(
    level_id: str,
    approach_dir: str,
    trigger_ids: np.ndarray,
    sessions: np.ndarray,
    signals: Signals,
    base_rate: np.ndarray,
    time_of_day_rate: np.ndarray,
    fold_fingerprints: np.ndarray,
) -> pa.Table:
    n = len(trigger_ids)
    return pa.table(
        {
            "trigger_id": trigger_ids,
            "dt": sessions,
            "level_id": [level_id] * n,
            "approach_dir": [approach_dir] * n,
            "neighbour_count": signals.neighbour_count,
            "p_break": pa.array(signals.p_break, from_pandas=True),
            "p_reject": pa.array(signals.p_reject, from_pandas=True),
            "p_chop": pa.array(signals.p_chop, from_pandas=True),
            "similarity_mean": pa.array(signals.similarity_mean, from_pandas=True),
            "similarity_std": pa.array(signals.similarity_std, from_pandas=True),
            "similarity_max": pa.array(signals.similarity_max, from_pandas=True),
            "similarity_min": pa.array(signals.similarity_min, from_pandas=True),
            "training_sessions": signals.training_sessions,
            "training_triggers": signals.training_triggers,
            "base_rate_prior": pa.array(base_rate, from_pandas=True),
            "time_of_day_rate_prior": pa.array(time_of_day_rate, from_pandas=True),
            "neighbour_trigger_ids": signals.neighbour_ids,
            "neighbour_similarities": signals.neighbour_similarities,
            "fold_fingerprint": fold_fingerprints,
        },
        schema=SIGNALS_SCHEMA,
    )


def trigger_signals(
    vectors: duckdb.DuckDBPyRelation,
    outcomes: duckdb.DuckDBPyRelation,
    retrieval: RetrievalSettings,
    evaluation: EvaluationSettings,
    previous: duckdb.DuckDBPyRelation | None = None,
) -> pa.Table:
    """Every trigger's walk-forward neighbours and baselines, with its fold's fingerprint (see
    retrieval.folds); the folds found in `previous` with the same fingerprint are taken from
    it, the others searched."""
    kept, kept_rows = _kept_folds(previous)
    salt = _signals_code_digest() + repr((retrieval, evaluation)).encode()
    batches = []
    for level_id, approach_dir, triggers, minutes in trigger_groups(vectors, outcomes):
        labelled = triggers.outcomes != ""
        folds = fold_fingerprints(
            triggers.sessions,
            labelled,
            salt=salt,
            test_parts=(triggers.sessions, triggers.trigger_ids, triggers.vectors, minutes),
            earlier_parts=(triggers.trigger_ids, triggers.vectors, triggers.outcomes, minutes),
        )
        todo = [fold.session for fold in folds if fold.fingerprint not in kept_rows]
        signals = walk_forward(triggers, retrieval, sessions=todo)
        base, time_of_day = walk_forward_baselines(
            triggers.sessions, minutes, triggers.outcomes == "BREAK", labelled, evaluation
        )
        computed = signals_table(
            level_id, approach_dir, triggers.trigger_ids, triggers.sessions, signals, base,
            time_of_day, row_fingerprints(len(triggers.trigger_ids), folds),
        )  # fmt: skip
        for fold in folds:
            rows = kept_rows.get(fold.fingerprint)
            batches.append(computed.take(fold.test) if rows is None else kept.take(rows))
    return pa.concat_tables(batches) if batches else SIGNALS_SCHEMA.empty_table()


def _kept_folds(previous: duckdb.DuckDBPyRelation | None) -> tuple[pa.Table, dict[str, list[int]]]:
    """The previous table (in its row order) and the positions of each fold's rows."""
    if previous is None:
        return SIGNALS_SCHEMA.empty_table(), {}
    kept = previous.to_arrow_table().select(SIGNALS_SCHEMA.names).cast(SIGNALS_SCHEMA)
    rows: dict[str, list[int]] = {}
    for position, fingerprint in enumerate(kept["fold_fingerprint"].to_pylist()):
        rows.setdefault(fingerprint, []).append(position)
    return kept, rows


@cache
def _signals_code_digest() -> bytes:
    return code_digest(
        (retrieval.evaluation, retrieval.folds, retrieval.metric, retrieval.neighbours,
         retrieval.scaling, sys.modules[__name__]),
        ("faiss-cpu", "numpy"),
    )  # fmt: skip


EVALUATION_COLUMNS = (
    "n", "sessions", "base_rate", "auc", "auc_ci_low", "auc_ci_high", "brier",
    "brier_base_rate", "brier_time_of_day", "brier_skill", "brier_skill_ci_low",
    "brier_skill_ci_high", "log_loss", "log_loss_base_rate", "log_loss_time_of_day",
    "top_decile_lift", "top_decile_lift_ci_low", "top_decile_lift_ci_high",
)  # fmt: skip


def _evaluated(signals: duckdb.DuckDBPyRelation, outcomes: duckdb.DuckDBPyRelation) -> pa.Table:
    return (
        signals.filter("p_break is not null")
        .join(outcomes.filter("outcome is not null").project("trigger_id, outcome"), "trigger_id")
        .project(
            "trigger_id, level_id, approach_dir, dt, outcome = 'BREAK' as is_break, p_break, "
            "base_rate_prior, time_of_day_rate_prior"
        )
        .order("level_id, approach_dir, dt, trigger_id")
        .to_arrow_table()
    )


def retrieval_evaluation(
    signals: duckdb.DuckDBPyRelation,
    outcomes: duckdb.DuckDBPyRelation,
    settings: EvaluationSettings,
) -> pa.Table:
    rows = []
    for level_id, approach_dir, group in by_level_and_direction(_evaluated(signals, outcomes)):
        result = evaluate(
            group["dt"].astype("datetime64[D]"),
            group["is_break"].astype(bool),
            group["p_break"].astype(np.float64),
            group["base_rate_prior"].astype(np.float64),
            group["time_of_day_rate_prior"].astype(np.float64),
            settings,
        )
        rows.append({"level_id": level_id, "approach_dir": approach_dir, **result.metrics})
    schema = pa.schema(
        [("level_id", pa.string()), ("approach_dir", pa.string())]
        + [
            (name, pa.int64() if name in ("n", "sessions") else pa.float64())
            for name in EVALUATION_COLUMNS
        ]
    )
    # undefined metrics (an AUC without both outcomes) are NULL, not NaN
    return pa.Table.from_pylist(
        [
            {name: None if row[name] != row[name] else row[name] for name in schema.names}
            for row in rows
        ],
        schema=schema,
    )


# a reliability bin (retrieval.evaluation.reliability_table) of a level and direction
RELIABILITY_FIELDS = (
    ("level_id", pa.string()),
    ("approach_dir", pa.string()),
    ("bin", pa.int64()),
    ("p_low", pa.float64()),
    ("p_high", pa.float64()),
    ("n", pa.int64()),
    ("mean_p_break", pa.float64()),
    ("break_rate", pa.float64()),
)


def retrieval_reliability(
    signals: duckdb.DuckDBPyRelation,
    outcomes: duckdb.DuckDBPyRelation,
    settings: EvaluationSettings,
) -> pa.Table:
    rows = [
        {"level_id": level_id, "approach_dir": approach_dir, **bin_row}
        for level_id, approach_dir, group in by_level_and_direction(_evaluated(signals, outcomes))
        for bin_row in reliability_table(
            group["is_break"].astype(bool),
            group["p_break"].astype(np.float64),
            settings.reliability_bins,
        )
    ]
    return pa.Table.from_pylist(rows, schema=pa.schema(RELIABILITY_FIELDS))


def labelled_indexes(
    vectors: duckdb.DuckDBPyRelation,
    outcomes: duckdb.DuckDBPyRelation,
    features: duckdb.DuckDBPyRelation,
) -> Iterator[SetupIndex]:
    """One index per level and approach direction over its labelled triggers."""
    names: dict[str, list[str]] = {}
    for level_id, name in (
        features.order("level_id, retrieval_index").project("level_id, feature_name").fetchall()
    ):
        names.setdefault(level_id, []).append(name)
    for level_id, approach_dir, triggers, minutes in trigger_groups(vectors, outcomes):
        labelled = triggers.outcomes != ""
        if not labelled.any():
            continue
        kept = TriggerSet(
            trigger_ids=triggers.trigger_ids[labelled],
            sessions=triggers.sessions[labelled],
            vectors=triggers.vectors[labelled],
            outcomes=triggers.outcomes[labelled],
        )
        yield SetupIndex.build(level_id, approach_dir, kept, names[level_id], minutes[labelled])


def persist_indexes(
    vectors: duckdb.DuckDBPyRelation,
    outcomes: duckdb.DuckDBPyRelation,
    features: duckdb.DuckDBPyRelation,
    indexes_dir: Path,
) -> pa.Table:
    """One index per level and approach direction over every labelled trigger; returns what
    was written."""
    rows = []
    for index in labelled_indexes(vectors, outcomes, features):
        folder = index.save(indexes_dir)
        kept = index.triggers
        rows.append(
            {
                "level_id": index.level_id,
                "approach_dir": index.approach_dir,
                "index_path": str(folder),
                "vectors": len(kept.trigger_ids),
                "dimensions": kept.vectors.shape[1],
                "sessions": len(np.unique(kept.sessions)),
                "first_dt": kept.sessions.min().astype(object),
                "last_dt": kept.sessions.max().astype(object),
            }
        )
    schema = pa.schema(
        [
            ("level_id", pa.string()),
            ("approach_dir", pa.string()),
            ("index_path", pa.string()),
            ("vectors", pa.int64()),
            ("dimensions", pa.int64()),
            ("sessions", pa.int64()),
            ("first_dt", pa.date32()),
            ("last_dt", pa.date32()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def previous_folds(
    session: duckdb.DuckDBPyConnection, this: object, is_incremental: bool
) -> duckdb.DuckDBPyRelation | None:
    """The rows a walk-forward table already holds, to reuse the folds whose fingerprint is
    unchanged; None on a full build (or a table written before folds had fingerprints)."""
    if not is_incremental:
        return None
    previous = session.sql(f"select * from {this}")
    return previous if "fold_fingerprint" in previous.columns else None
