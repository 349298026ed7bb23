"""Walk-forward neighbours of every trigger (see trigger_signals)."""

from retrieval.warehouse import evaluation_settings, retrieval_settings, trigger_signals


def model(dbt, session):
    dbt.config(materialized="table")
    return trigger_signals(
        vectors=dbt.ref("retrieval_vectors"),
        outcomes=dbt.ref("trigger_outcomes"),
        retrieval=retrieval_settings(dbt.config.get("retrieval_settings")),
        evaluation=evaluation_settings(dbt.config.get("evaluation_settings")),
    )
