"""The book engine's per-second depth and flow by price, in the lake's engine partitions; one
row per contract-day's partition (read through the engine_depth_and_flow_1s view, then
depth_and_flow_1s)."""

from book_engine.warehouse import depth_and_flow_partitions


def model(dbt, session):
    # the lake's partitions are the incremental state: a contract-day whose partition was
    # written from the same inputs and settings (its build fingerprint) is not replayed again
    dbt.config(materialized="table")
    # lineage: the engine reads the partitions' Parquet files itself (on any Ray node)
    dbt.ref("futures_mbo")
    # after the book snapshot, whose replay of each day writes this model's partitions; a day
    # without one (the lake's engine folder removed, say) is replayed here
    dbt.ref("engine_book_snapshot_1s")
    return depth_and_flow_partitions(
        config=dbt.config.get("surface_settings"),
        selection=dbt.ref("contract_day_selection"),
        definitions=dbt.ref("futures_definitions"),
    )
