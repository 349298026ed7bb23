"""The walk-forward trees' split gain per fold and retrieval feature (see tree_feature_gain)."""

from model_comparison.warehouse import comparison_settings, fold_tree_gain
from retrieval.warehouse import previous_folds


def model(dbt, session):
    # the whole (small) table is written each build, its unchanged folds taken from itself
    dbt.config(
        materialized="incremental",
        incremental_strategy="whole_table",
        on_schema_change="sync_all_columns",
    )
    return fold_tree_gain(
        vectors=dbt.ref("retrieval_vectors"),
        outcomes=dbt.ref("trigger_outcomes"),
        settings=comparison_settings(dbt.config.get("comparison_settings")),
        previous=previous_folds(session, dbt.this, dbt.is_incremental),
    )
