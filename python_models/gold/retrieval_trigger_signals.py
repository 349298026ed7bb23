"""Walk-forward neighbours of every trigger (see trigger_signals)."""

from retrieval.warehouse import (
    evaluation_settings,
    previous_folds,
    retrieval_settings,
    trigger_signals,
)


def model(dbt, session):
    # the whole table is written each build, its unchanged folds taken from itself
    dbt.config(
        materialized="incremental",
        incremental_strategy="whole_table",
        on_schema_change="sync_all_columns",
    )
    return trigger_signals(
        vectors=dbt.ref("retrieval_vectors"),
        outcomes=dbt.ref("trigger_outcomes"),
        retrieval=retrieval_settings(dbt.config.get("retrieval_settings")),
        evaluation=evaluation_settings(dbt.config.get("evaluation_settings")),
        previous=previous_folds(session, dbt.this, dbt.is_incremental),
    )
