"""What the model-comparison dbt Python models run: read the trigger vectors, outcomes and
retrieval's signals from DuckDB relations, return Arrow tables."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from model_comparison.metrics import MODELS, compare_models
from model_comparison.walk_forward import (
    ComparisonSettings,
    fold_gain_shares,
    walk_forward_folds,
    walk_forward_p_break,
)
from retrieval.evaluation import reliability_table
from retrieval.folds import row_fingerprints
from retrieval.neighbours import RetrievalSettings
from retrieval.warehouse import RELIABILITY_FIELDS, by_level_and_direction, trigger_groups

# retrieval's own P(BREAK) comes from trigger_signals
BASELINES = tuple(model for model in MODELS if model != "retrieval")
NULL_MODEL = "null_retrieval"


@dataclass(frozen=True)
class ReportSettings:
    calibration_bins: int = 10
    bootstrap_samples: int = 1000
    seed: int = 0


def comparison_settings(config: Mapping[str, Any]) -> ComparisonSettings:
    return ComparisonSettings(
        retrieval=RetrievalSettings(
            k=int(config["k"]), min_neighbours=int(config["min_neighbours"])
        ),
        seed=int(config["seed"]),
        max_trees=int(config["max_trees"]),
        training_sessions=int(config["training_sessions"]),
    )


def report_settings(config: Mapping[str, Any]) -> ReportSettings:
    return ReportSettings(
        calibration_bins=int(config["calibration_bins"]),
        bootstrap_samples=int(config["bootstrap_samples"]),
        seed=int(config["seed"]),
    )


SCORES_SCHEMA = pa.schema(
    [
        ("trigger_id", pa.string()),
        ("dt", pa.date32()),
        ("level_id", pa.string()),
        ("approach_dir", pa.string()),
        ("model", pa.string()),
        ("p_break", pa.float64()),
        ("fold_fingerprint", pa.string()),
    ]
)


def _reused(previous: duckdb.DuckDBPyRelation | None, columns: str) -> dict[str, list[tuple]]:
    """The previous rows (`columns`, after the fingerprint) of each fold fingerprint."""
    rows: dict[str, list[tuple]] = {}
    if previous is not None:
        for fingerprint, *values in previous.project(f"fold_fingerprint, {columns}").fetchall():
            rows.setdefault(fingerprint, []).append(tuple(values))
    return rows


def model_scores(
    vectors: duckdb.DuckDBPyRelation,
    outcomes: duckdb.DuckDBPyRelation,
    signals: duckdb.DuckDBPyRelation,
    settings: ComparisonSettings,
    previous: duckdb.DuckDBPyRelation | None = None,
) -> pa.Table:
    """Every trigger's walk-forward P(BREAK) under each model; retrieval's is trigger_signals'
    (the same folds, computed once). The baselines' folds found in `previous` with the same
    fingerprint are taken from it, the others scored."""
    retrieval = dict(signals.project("trigger_id, p_break").fetchall())
    kept = {
        (fingerprint, model, trigger_id): p_break
        for fingerprint, rows in _reused(previous, "model, trigger_id, p_break").items()
        for model, trigger_id, p_break in rows
    }
    kept_folds = {fingerprint for fingerprint, _, _ in kept}
    batches = []
    for level_id, approach_dir, triggers, _ in trigger_groups(vectors, outcomes):
        n = len(triggers.trigger_ids)
        folds = walk_forward_folds(triggers, settings)
        todo = [fold for fold in folds if fold.fingerprint not in kept_folds]
        scored = {}
        for model in BASELINES:
            p_break = walk_forward_p_break(triggers, model, settings, todo)
            for fold in folds:
                if fold.fingerprint in kept_folds:
                    p_break[fold.test] = [
                        kept[(fold.fingerprint, model, trigger_id)]
                        for trigger_id in triggers.trigger_ids[fold.test]
                    ]
            scored[model] = p_break
        scored["retrieval"] = np.array(
            [retrieval.get(trigger_id) for trigger_id in triggers.trigger_ids], dtype=np.float64
        )
        fingerprints = row_fingerprints(n, folds)
        for model, p_break in scored.items():
            batches.append(
                pa.table(
                    {
                        "trigger_id": triggers.trigger_ids,
                        "dt": triggers.sessions,
                        "level_id": [level_id] * n,
                        "approach_dir": [approach_dir] * n,
                        "model": [model] * n,
                        "p_break": pa.array(p_break, from_pandas=True),
                        "fold_fingerprint": fingerprints,
                    },
                    schema=SCORES_SCHEMA,
                )
            )
    return pa.concat_tables(batches) if batches else SCORES_SCHEMA.empty_table()


@dataclass
class EvaluatedGroup:
    """The triggers of a level and direction that every model scored and that have a label."""

    level_id: str
    approach_dir: str
    sessions: np.ndarray
    labels: np.ndarray
    base_rate: np.ndarray
    p_break: dict[str, np.ndarray]


def evaluated_groups(
    scores: duckdb.DuckDBPyRelation,
    outcomes: duckdb.DuckDBPyRelation,
    signals: duckdb.DuckDBPyRelation,
) -> Iterator[EvaluatedGroup]:
    models = [row[0] for row in scores.project("model").distinct().order("model").fetchall()]
    if not models:
        return
    wide = (
        scores.aggregate(
            "trigger_id, level_id, approach_dir, dt, "
            + ", ".join(f"max(p_break) filter (where model = '{m}') as \"{m}\"" for m in models),
            "trigger_id, level_id, approach_dir, dt",
        )
        .join(outcomes.filter("outcome is not null").project("trigger_id, outcome"), "trigger_id")
        .join(signals.project("trigger_id, base_rate_prior"), "trigger_id")
        .filter(" and ".join(f'"{m}" is not null' for m in [*models, "base_rate_prior"]))
        .order("level_id, approach_dir, dt, trigger_id")
        .to_arrow_table()
    )
    for level_id, approach_dir, group in by_level_and_direction(wide):
        yield EvaluatedGroup(
            level_id=level_id,
            approach_dir=approach_dir,
            sessions=group["dt"].astype("datetime64[D]"),
            labels=group["outcome"].astype(str) == "BREAK",
            base_rate=group["base_rate_prior"].astype(np.float64),
            p_break={m: group[m].astype(np.float64) for m in models},
        )


COMPARISON_COLUMNS = (
    ("n", pa.int64()),
    ("sessions", pa.int64()),
    ("base_rate", pa.float64()),
    ("auc", pa.float64()),
    ("auc_ci_low", pa.float64()),
    ("auc_ci_high", pa.float64()),
    ("auc_over_null", pa.float64()),
    ("auc_over_null_ci_low", pa.float64()),
    ("auc_over_null_ci_high", pa.float64()),
    ("within_session_auc", pa.float64()),
    ("within_session_auc_ci_low", pa.float64()),
    ("within_session_auc_ci_high", pa.float64()),
    ("within_session_pairs", pa.int64()),
    ("brier", pa.float64()),
    ("brier_base_rate", pa.float64()),
    ("brier_skill", pa.float64()),
    ("brier_skill_ci_low", pa.float64()),
    ("brier_skill_ci_high", pa.float64()),
    ("log_loss", pa.float64()),
    ("log_loss_base_rate", pa.float64()),
    ("log_loss_skill", pa.float64()),
    ("expected_calibration_error", pa.float64()),
    ("expected_calibration_error_if_calibrated", pa.float64()),
    ("top_decile_lift", pa.float64()),
    ("top_decile_lift_ci_low", pa.float64()),
    ("top_decile_lift_ci_high", pa.float64()),
)


def model_comparison(
    scores: duckdb.DuckDBPyRelation,
    outcomes: duckdb.DuckDBPyRelation,
    signals: duckdb.DuckDBPyRelation,
    settings: ReportSettings,
) -> pa.Table:
    schema = pa.schema(
        [
            ("model", pa.string()),
            ("level_id", pa.string()),
            ("approach_dir", pa.string()),
            *COMPARISON_COLUMNS,
        ]
    )
    rows = []
    for group in evaluated_groups(scores, outcomes, signals):
        results = compare_models(
            group.sessions,
            group.labels,
            group.p_break,
            group.base_rate,
            null_model=NULL_MODEL,
            calibration_bins=settings.calibration_bins,
            bootstrap_samples=settings.bootstrap_samples,
            seed=settings.seed,
        )
        for model, metrics in results.items():
            # undefined metrics (an AUC without both outcomes) are NULL, not NaN
            defined = {
                name: None if metrics[name] != metrics[name] else metrics[name]
                for name, _ in COMPARISON_COLUMNS
            }
            rows.append(
                {"model": model, "level_id": group.level_id, "approach_dir": group.approach_dir}
                | defined
            )
    return pa.Table.from_pylist(rows, schema=schema)


def model_reliability(
    scores: duckdb.DuckDBPyRelation,
    outcomes: duckdb.DuckDBPyRelation,
    signals: duckdb.DuckDBPyRelation,
    settings: ReportSettings,
) -> pa.Table:
    rows = [
        {"model": model, "level_id": group.level_id, "approach_dir": group.approach_dir, **bin_row}
        for group in evaluated_groups(scores, outcomes, signals)
        for model, p_break in group.p_break.items()
        for bin_row in reliability_table(group.labels, p_break, settings.calibration_bins)
    ]
    schema = pa.schema([("model", pa.string()), *RELIABILITY_FIELDS])
    return pa.Table.from_pylist(rows, schema=schema)


TREE_GAIN_SCHEMA = pa.schema(
    [
        ("level_id", pa.string()),
        ("approach_dir", pa.string()),
        ("dt", pa.date32()),
        ("retrieval_index", pa.int32()),
        ("gain_share", pa.float64()),
        ("fold_fingerprint", pa.string()),
    ]
)


def fold_tree_gain(
    vectors: duckdb.DuckDBPyRelation,
    outcomes: duckdb.DuckDBPyRelation,
    settings: ComparisonSettings,
    previous: duckdb.DuckDBPyRelation | None = None,
) -> pa.Table:
    """Per scored fold of each level and direction, and retrieval feature: its share of the
    split gain of the fold's boosted trees (NULL when they split nowhere). The folds found in
    `previous` with the same fingerprint are taken from it, the others fitted."""
    kept = {
        fingerprint: dict(rows)
        for fingerprint, rows in _reused(previous, "retrieval_index, gain_share").items()
    }
    batches = []
    for level_id, approach_dir, triggers, _ in trigger_groups(vectors, outcomes):
        features = triggers.vectors.shape[1]
        for fold in walk_forward_folds(triggers, settings):
            if not fold.scored:
                continue
            if fold.fingerprint in kept:
                shares = [kept[fold.fingerprint][index + 1] for index in range(features)]
            else:
                fitted = fold_gain_shares(triggers, fold, settings)
                shares = [None] * features if fitted is None else fitted.tolist()
            batches.append(
                pa.table(
                    {
                        "level_id": [level_id] * features,
                        "approach_dir": [approach_dir] * features,
                        "dt": [fold.session.astype(object)] * features,
                        "retrieval_index": np.arange(1, features + 1, dtype=np.int32),
                        "gain_share": pa.array(shares, type=pa.float64()),
                        "fold_fingerprint": [fold.fingerprint] * features,
                    },
                    schema=TREE_GAIN_SCHEMA,
                )
            )
    return pa.concat_tables(batches) if batches else TREE_GAIN_SCHEMA.empty_table()
