"""The walk-forward trees' split gain per retrieval feature (see tree_feature_gain)."""

from model_comparison.warehouse import comparison_settings, tree_feature_gain


def model(dbt, session):
    dbt.config(materialized="table")
    return tree_feature_gain(
        vectors=dbt.ref("retrieval_vectors"),
        outcomes=dbt.ref("trigger_outcomes"),
        settings=comparison_settings(dbt.config.get("comparison_settings")),
    )
