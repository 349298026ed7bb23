"""Walk-forward P(BREAK) of every trigger under each model (see model_scores)."""

from model_comparison.warehouse import comparison_settings, model_scores


def model(dbt, session):
    dbt.config(materialized="table")
    return model_scores(
        vectors=dbt.ref("retrieval_vectors"),
        outcomes=dbt.ref("trigger_outcomes"),
        signals=dbt.ref("trigger_signals"),
        settings=comparison_settings(dbt.config.get("comparison_settings")),
    )
