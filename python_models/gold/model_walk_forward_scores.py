"""Walk-forward P(BREAK) of every trigger under each model (see model_scores)."""

from model_comparison.warehouse import comparison_settings, model_scores
from retrieval.warehouse import previous_folds


def model(dbt, session):
    # the whole (small) table is written each build, its unchanged folds taken from itself
    dbt.config(
        materialized="incremental",
        incremental_strategy="whole_table",
        on_schema_change="sync_all_columns",
    )
    return model_scores(
        vectors=dbt.ref("retrieval_vectors"),
        outcomes=dbt.ref("trigger_outcomes"),
        signals=dbt.ref("trigger_signals"),
        settings=comparison_settings(dbt.config.get("comparison_settings")),
        previous=previous_folds(session, dbt.this, dbt.is_incremental),
    )
