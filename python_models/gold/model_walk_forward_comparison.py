"""Every model's walk-forward metrics per level and direction (see model_comparison)."""

from model_comparison.warehouse import model_comparison, report_settings


def model(dbt, session):
    dbt.config(materialized="table")
    return model_comparison(
        scores=dbt.ref("model_scores"),
        outcomes=dbt.ref("trigger_outcomes"),
        signals=dbt.ref("trigger_signals"),
        settings=report_settings(dbt.config.get("report_settings")),
    )
