"""FAISS indexes per level and approach direction, written under <lake>/indexes/."""

from pathlib import Path

from retrieval.warehouse import persist_indexes


def model(dbt, session):
    dbt.config(materialized="table")
    settings = dbt.config.get("index_settings")
    return persist_indexes(
        vectors=dbt.ref("retrieval_vectors"),
        outcomes=dbt.ref("trigger_outcomes"),
        features=dbt.ref("retrieval_features"),
        indexes_dir=Path(settings["lake_dir"]) / "indexes",
    )
