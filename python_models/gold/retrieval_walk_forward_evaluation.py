"""Walk-forward evaluation per level and approach direction (see retrieval_evaluation)."""

from retrieval.warehouse import evaluation_settings, retrieval_evaluation


def model(dbt, session):
    dbt.config(materialized="table")
    return retrieval_evaluation(
        signals=dbt.ref("trigger_signals"),
        outcomes=dbt.ref("trigger_outcomes"),
        settings=evaluation_settings(dbt.config.get("evaluation_settings")),
    )
