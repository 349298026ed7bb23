"""Reliability table of the walk-forward P(BREAK) (see retrieval_reliability)."""

from retrieval.warehouse import evaluation_settings, retrieval_reliability


def model(dbt, session):
    dbt.config(materialized="table")
    return retrieval_reliability(
        signals=dbt.ref("trigger_signals"),
        outcomes=dbt.ref("trigger_outcomes"),
        settings=evaluation_settings(dbt.config.get("evaluation_settings")),
    )
