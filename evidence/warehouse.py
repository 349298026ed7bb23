"""What the evidence dbt Python models run: DuckDB relations in, Arrow tables out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb
import pyarrow as pa

from evidence.condition_outcomes import EvidenceSettings, condition_outcomes


def condition_outcomes_table(
    conditions: duckdb.DuckDBPyRelation,
    outcomes: duckdb.DuckDBPyRelation,
    settings: EvidenceSettings,
) -> pa.Table:
    joined = conditions.join(outcomes.project("trigger_id, outcome"), "trigger_id", how="left")
    return condition_outcomes(joined.order("trigger_id").to_arrow_table(), settings)


def evidence_settings(config: Mapping[str, Any]) -> EvidenceSettings:
    windows = config["windows"]
    if isinstance(windows, str):  # a list var rendered into the model's config
        windows = windows.strip("[]").split(",")
    return EvidenceSettings(
        windows=tuple(int(w) for w in windows),
        bootstrap_samples=int(config["bootstrap_samples"]),
        permutations=int(config["permutations"]),
        min_triggers=int(config["min_triggers"]),
        alpha=float(config["alpha"]),
        seed=int(config["seed"]),
    )
