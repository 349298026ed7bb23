"""Engine rows: the per-second book of each included contract-day (see book_snapshot_1s)."""

from book_engine.warehouse import book_snapshot_reader


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
    return book_snapshot_reader(
        session=session,
        this=dbt.this,
        is_incremental=dbt.is_incremental,
        config=dbt.config.get("surface_settings"),
        selection=dbt.ref("contract_day_selection"),
        definitions=dbt.ref("futures_definitions"),
    )
