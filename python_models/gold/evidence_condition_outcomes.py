"""The four conditions and their patterns against the outcomes (see condition_outcomes)."""

from evidence.warehouse import condition_outcomes_table, evidence_settings


def model(dbt, session):
    dbt.config(materialized="table")
    return condition_outcomes_table(
        conditions=dbt.ref("trigger_conditions"),
        outcomes=dbt.ref("trigger_outcomes"),
        settings=evidence_settings(dbt.config.get("evidence_settings")),
    )
