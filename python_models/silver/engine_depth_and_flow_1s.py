"""Engine rows: per-second depth and flow by price (see depth_and_flow_1s)."""

from spymaster.dbt_models import surface_reader


def model(dbt, session):
    dbt.config(
        materialized="incremental",
        incremental_strategy="delete+insert",
        # a new engine column (with a new engine version, which rebuilds every day) is added
        on_schema_change="sync_all_columns",
        unique_key=["symbol", "dt"],
    )
    # lineage: the engine reads the partitions' Parquet files itself (on any Ray node)
    dbt.ref("futures_mbo")
    # after the book snapshot, whose replay of each day writes this model's rows to the lake
    # (read back here); a day without them (a full refresh of this model alone after the
    # lake's engine folder was removed, say) is replayed here
    dbt.ref("engine_book_snapshot_1s")
    return surface_reader(
        "depth_and_flow",
        session=session,
        this=dbt.this,
        is_incremental=dbt.is_incremental,
        config=dbt.config.get("surface_settings"),
        selection=dbt.ref("contract_day_selection"),
        definitions=dbt.ref("futures_definitions"),
    )
