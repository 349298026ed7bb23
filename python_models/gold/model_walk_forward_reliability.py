"""Every model's reliability table per level and direction (see model_reliability)."""

from model_comparison.warehouse import model_reliability, report_settings


def model(dbt, session):
    dbt.config(materialized="table")
    return model_reliability(
        scores=dbt.ref("model_scores"),
        outcomes=dbt.ref("trigger_outcomes"),
        signals=dbt.ref("trigger_signals"),
        settings=report_settings(dbt.config.get("report_settings")),
    )
